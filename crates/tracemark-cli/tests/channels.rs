//! Round trips through real codecs on real recordings: the engine's channel
//! promises, checked end to end through the `tracemark` binary.

mod common;

use common::*;

const PAYLOAD: &str = "0123456789abcdef";

fn assert_found(scratch: &Scratch, clip: &std::path::Path, what: &str) {
    let (code, json) = scratch.extract(clip);
    assert_eq!(code, 0, "{what}: no watermark found: {json}");
    assert_eq!(json["found"], true, "{what}");
    assert_eq!(json["payload"], PAYLOAD, "{what}");
    let p = json["p_value"].as_f64().unwrap();
    assert!(p < 1e-6, "{what}: p-value {p} too weak");
    assert!(
        !json["segments"].as_array().unwrap().is_empty(),
        "{what}: no segments"
    );
}

#[test]
fn clean_round_trip_keeps_format_and_reads_back() {
    let s = Scratch::new();
    for (name, rate, channels) in [
        ("music_metal_44k_muldjord_chaos_god.wav", 44_100, 2),
        ("speech_cs_mf_22k_fillets_kitchen_dialogue.wav", 22_050, 1),
        ("speech_en_f_8k_allison_demo-congrats.wav", 8_000, 1),
    ] {
        let marked = s.path(&format!("marked_{name}"));
        s.embed(&fixture(name), &marked, PAYLOAD);
        let original = tracemark_audio_io::read(&fixture(name)).unwrap();
        let copy = tracemark_audio_io::read(&marked).unwrap();
        assert_eq!(copy.rate, rate);
        assert_eq!(copy.channels.len(), channels);
        assert_eq!(copy.frames(), original.frames(), "{name}: length changed");
        assert_found(&s, &marked, name);
    }
}

#[test]
fn mp3_64k_then_random_10s_excerpt() {
    let s = Scratch::new();
    for (seed, name) in [
        (1u64, "music_metal_44k_muldjord_chaos_god.wav"),
        (2, "speech_cs_mf_22k_fillets_kitchen_dialogue.wav"),
    ] {
        let marked = s.path("marked.wav");
        s.embed(&fixture(name), &marked, PAYLOAD);
        let mp3 = s.path("leak.mp3");
        ffmpeg(&[
            "-i",
            marked.to_str().unwrap(),
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            mp3.to_str().unwrap(),
        ]);
        let duration = tracemark_audio_io::read(&mp3).unwrap().duration_s();
        let clip = s.path("clip.wav");
        cut(&mp3, &clip, excerpt_start(seed, duration, 10.0), 10.0);
        assert_found(&s, &clip, &format!("{name} via MP3 64k, 10 s"));
    }
}

#[test]
fn eight_khz_phone_band_30s() {
    let s = Scratch::new();
    let marked = s.path("marked.wav");
    s.embed(
        &fixture("speech_en_f_8k_allison_demo-congrats.wav"),
        &marked,
        PAYLOAD,
    );
    let phone = s.path("phone.wav");
    ffmpeg(&[
        "-i",
        marked.to_str().unwrap(),
        "-af",
        "highpass=f=300:poles=2,lowpass=f=3400:poles=2,aresample=8000",
        "-ac",
        "1",
        phone.to_str().unwrap(),
    ]);
    let clip = s.path("clip.wav");
    cut(&phone, &clip, 0.1, 30.0);
    assert_found(&s, &clip, "8 kHz phone band");
}

#[test]
fn opus_16k_voice_30s() {
    let s = Scratch::new();
    let marked = s.path("marked.wav");
    s.embed(
        &fixture("speech_en_f_8k_allison_demo-congrats.wav"),
        &marked,
        PAYLOAD,
    );
    let opus = s.path("voice.opus");
    ffmpeg(&[
        "-i",
        marked.to_str().unwrap(),
        "-c:a",
        "libopus",
        "-b:a",
        "16k",
        "-application",
        "voip",
        opus.to_str().unwrap(),
    ]);
    // Read the Opus file directly: exercises the Ogg/Opus decoding path too.
    assert_found(&s, &opus, "Opus 16k voice");
}

#[test]
fn resample_to_8k_and_back_then_10s_excerpt() {
    let s = Scratch::new();
    let marked = s.path("marked.wav");
    s.embed(
        &fixture("music_metal_44k_muldjord_chaos_god.wav"),
        &marked,
        PAYLOAD,
    );
    let low = s.path("low.wav");
    ffmpeg(&[
        "-i",
        marked.to_str().unwrap(),
        "-ar",
        "8000",
        low.to_str().unwrap(),
    ]);
    let back = s.path("back.wav");
    ffmpeg(&[
        "-i",
        low.to_str().unwrap(),
        "-ar",
        "44100",
        back.to_str().unwrap(),
    ]);
    let clip = s.path("clip.wav");
    cut(&back, &clip, excerpt_start(3, 15.0, 10.0), 10.0);
    assert_found(&s, &clip, "8 kHz resample round trip");
}

#[test]
fn wrong_key_and_unmarked_audio_never_yield_a_payload() {
    let s = Scratch::new();
    let other = Scratch::new();
    let mut clips = 0;
    for name in [
        "music_metal_44k_muldjord_chaos_god.wav",
        "speech_cs_mf_22k_fillets_kitchen_dialogue.wav",
        "speech_en_f_8k_allison_demo-congrats.wav",
    ] {
        let marked = s.path("marked.wav");
        s.embed(&fixture(name), &marked, PAYLOAD);
        let original = tracemark_audio_io::read(&fixture(name)).unwrap();
        let copy = tracemark_audio_io::read(&marked).unwrap();
        for audio in [&original, &copy] {
            let rate = audio.rate as usize;
            let clip_len = 10 * rate;
            let mut start = 0;
            while start + clip_len <= audio.frames() {
                let clip: Vec<Vec<f32>> = audio
                    .channels
                    .iter()
                    .map(|c| c[start..start + clip_len].to_vec())
                    .collect();
                for key in [&other, &s] {
                    if std::ptr::eq(key, &s) && std::ptr::eq(audio, &copy) {
                        continue; // the right key on the marked copy is supposed to find it
                    }
                    let k = tracemark_keys::SecretKey::from_file_text(
                        &std::fs::read_to_string(&key.key).unwrap(),
                    )
                    .unwrap();
                    let d = tracemark_engine::extract(
                        &clip,
                        audio.rate,
                        &k,
                        &tracemark_engine::SearchGrid::default(),
                    )
                    .unwrap();
                    assert!(
                        d.found.is_empty(),
                        "{name} at {start}: false payload {:?}",
                        d.found
                    );
                    clips += 1;
                }
                start += rate; // one clip per second of offset
            }
        }
    }
    assert!(clips > 100, "only {clips} clips examined");
}

#[test]
fn unmarked_file_reports_not_found_with_exit_code_3() {
    let s = Scratch::new();
    let (code, json) = s.extract(&fixture("music_metal_44k_muldjord_chaos_god.wav"));
    assert_eq!(code, 3);
    assert_eq!(json["found"], false);
    assert!(json["payload"].is_null());
}
