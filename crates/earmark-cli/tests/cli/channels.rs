//! Round trips through real codecs on real recordings: the engine's channel
//! promises, checked end to end through the `earmark` binary.

use crate::common;

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
    let s = Scratch::seeded(1);
    for (name, rate, channels) in [
        ("music_metal_44k_muldjord_chaos_god.wav", 44_100, 2),
        ("speech_cs_mf_22k_fillets_kitchen_dialogue.wav", 22_050, 1),
        ("speech_en_f_8k_allison_demo-congrats.wav", 8_000, 1),
    ] {
        let marked = s.path(&format!("marked_{name}"));
        s.embed(&fixture(name), &marked, PAYLOAD);
        let original = earmark_audio_io::read(&fixture(name)).unwrap();
        let copy = earmark_audio_io::read(&marked).unwrap();
        assert_eq!(copy.rate, rate);
        assert_eq!(copy.channels.len(), channels);
        assert_eq!(copy.frames(), original.frames(), "{name}: length changed");
        assert_found(&s, &marked, name);
    }
}

#[test]
fn mp3_64k_then_random_10s_excerpt() {
    let s = Scratch::seeded(2);
    for (seed, name) in [
        (1u64, "music_metal_44k_muldjord_chaos_god.wav"),
        (2, "speech_cs_mf_22k_fillets_kitchen_dialogue.wav"),
    ] {
        let marked = s.marked_fixture(name, PAYLOAD);
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
        let duration = earmark_audio_io::read(&mp3).unwrap().duration_s();
        let clip = s.path("clip.wav");
        cut(&mp3, &clip, excerpt_start(seed, duration, 10.0), 10.0);
        assert_found(&s, &clip, &format!("{name} via MP3 64k, 10 s"));
    }
}

#[test]
fn eight_khz_phone_band_30s() {
    let s = Scratch::seeded(3);
    let marked = s.marked_fixture("speech_en_f_8k_allison_demo-congrats.wav", PAYLOAD);
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
    let s = Scratch::seeded(4);
    let marked = s.marked_fixture("speech_en_f_8k_allison_demo-congrats.wav", PAYLOAD);
    let opus = s.path("voice.opus");
    common::opus_voice_16k(&marked, &opus);
    // Read the Opus file directly: exercises the Ogg/Opus decoding path too.
    assert_found(&s, &opus, "Opus 16k voice");
}

#[test]
fn resample_to_8k_and_back_then_10s_excerpt() {
    let s = Scratch::seeded(5);
    let marked = s.marked_fixture("music_metal_44k_muldjord_chaos_god.wav", PAYLOAD);
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
    let s = Scratch::seeded(6);
    let other = Scratch::seeded(7);
    // A 10 s clip at every second of offset in the full matrix (over 100
    // clips); every fourth second otherwise.
    let (step_s, at_least) = if common::full_matrices() {
        (1, 100)
    } else {
        (4, 25)
    };
    let mut clips = 0;
    for name in [
        "music_metal_44k_muldjord_chaos_god.wav",
        "speech_cs_mf_22k_fillets_kitchen_dialogue.wav",
        "speech_en_f_8k_allison_demo-congrats.wav",
    ] {
        let marked = s.marked_fixture(name, PAYLOAD);
        let original = earmark_audio_io::read(&fixture(name)).unwrap();
        let copy = earmark_audio_io::read(&marked).unwrap();
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
                    let k = earmark_keys::SecretKey::from_file_text(
                        &std::fs::read_to_string(&key.key).unwrap(),
                    )
                    .unwrap();
                    let d = earmark_engine::extract(
                        &clip,
                        audio.rate,
                        &k,
                        &earmark_engine::SearchGrid::default(),
                    )
                    .unwrap();
                    assert!(
                        d.found.is_empty(),
                        "{name} at {start}: false payload {:?}",
                        d.found
                    );
                    clips += 1;
                }
                start += step_s * rate;
            }
        }
    }
    assert!(clips > at_least, "only {clips} clips examined");
}

#[test]
fn unmarked_file_reports_not_found_with_exit_code_3() {
    let s = Scratch::seeded(8);
    let (code, json) = s.extract(&fixture("music_metal_44k_muldjord_chaos_god.wav"));
    assert_eq!(code, 3);
    assert_eq!(json["found"], false);
    assert!(json["payload"].is_null());
}

/// Runs sox with `effect` on `input`, writing `output`.
fn sox(input: &std::path::Path, output: &std::path::Path, effect: &[&str]) {
    // -R: sox's dither is otherwise seeded from the clock.
    let mut args = vec!["-R", input.to_str().unwrap(), output.to_str().unwrap()];
    args.extend_from_slice(effect);
    tool("sox", &args);
}

#[test]
fn speed_tempo_and_pitch_changes_are_found_by_the_scale_search() {
    let s = Scratch::seeded(9);
    let marked = s.marked_fixture("music_metal_44k_muldjord_chaos_god.wav", PAYLOAD);
    for (name, effect) in [
        ("speed +5 %", vec!["speed", "1.05", "rate", "44100"]),
        ("speed -5 %", vec!["speed", "0.95", "rate", "44100"]),
        ("tempo +5 %", vec!["tempo", "1.05"]),
        ("tempo -4 %", vec!["tempo", "0.96"]),
        ("pitch +100 cents", vec!["pitch", "100", "rate", "44100"]),
        ("pitch -100 cents", vec!["pitch", "-100", "rate", "44100"]),
    ] {
        let changed = s.path("changed.wav");
        sox(&marked, &changed, &effect);
        let clip = s.path("clip.wav");
        cut(&changed, &clip, 1.5, 10.0);
        assert_found(&s, &clip, name);
    }
}

/// Encodes `input` at 8 kHz mono with sox's `codec` options into a `.ext`
/// file, decodes it back to 16-bit PCM WAV, and returns the WAV's path.
fn through_phone_codec(
    s: &Scratch,
    input: &std::path::Path,
    codec: &[&str],
    ext: &str,
) -> std::path::PathBuf {
    let coded = s.path(&format!("call.{ext}"));
    let mut args = vec!["-R", input.to_str().unwrap(), "-r", "8000", "-c", "1"];
    args.extend_from_slice(codec);
    args.push(coded.to_str().unwrap());
    tool("sox", &args);
    let wav = s.path(&format!("{ext}.wav"));
    let mut back: Vec<&str> = vec!["-R"];
    back.extend(codec.iter().take(2).copied());
    back.extend_from_slice(&["-r", "8000", "-c", "1", coded.to_str().unwrap()]);
    back.extend_from_slice(&["-e", "signed-integer", "-b", "16", wav.to_str().unwrap()]);
    tool("sox", &back);
    wav
}

#[test]
fn amr_nb_and_gsm_phone_codecs_30s() {
    let s = Scratch::seeded(10);
    let marked = s.marked_fixture("speech_en_f_8k_allison_demo-congrats.wav", PAYLOAD);
    // AMR-NB 12.2 kbit/s and GSM 06.10 through sox's reference codecs.
    let amr_wav = through_phone_codec(&s, &marked, &["-t", "amr-nb", "-C", "7"], "amr");
    let clip = s.path("clip.wav");
    cut(&amr_wav, &clip, 0.2, 30.0);
    assert_found(&s, &clip, "AMR-NB 12.2k");
    let gsm_wav = through_phone_codec(&s, &marked, &["-t", "gsm"], "gsm");
    assert_found(&s, &gsm_wav, "GSM 06.10");
}

#[test]
fn spliced_copies_are_each_found_in_their_own_stretch() {
    let s = Scratch::seeded(11);
    let speech = fixture("speech_en_f_8k_allison_demo-congrats.wav");
    let (a, b) = (s.path("a.wav"), s.path("b.wav"));
    s.embed(&speech, &a, "aaaaaaaaaaaaaaaa");
    s.embed(&speech, &b, "bbbbbbbbbbbbbbbb");
    let a = earmark_audio_io::read(&a).unwrap();
    let b = earmark_audio_io::read(&b).unwrap();
    let foreign_path = s.path("foreign.wav");
    ffmpeg(&[
        "-i",
        fixture("music_metal_44k_muldjord_chaos_god.wav")
            .to_str()
            .unwrap(),
        "-ar",
        "8000",
        "-ac",
        "1",
        foreign_path.to_str().unwrap(),
    ]);
    let foreign = earmark_audio_io::read(&foreign_path).unwrap();
    let sec = 8000usize;
    // 0–20 s copy A, 20–30 s foreign music, 30–50 s copy B from its 5 s mark.
    let mut spliced = a.channels[0][..20 * sec].to_vec();
    spliced.extend_from_slice(&foreign.channels[0][..10 * sec]);
    spliced.extend_from_slice(&b.channels[0][5 * sec..25 * sec]);
    let leak = earmark_audio_io::Audio {
        channels: vec![spliced],
        ..a.clone()
    };
    let leak_path = s.path("leak.wav");
    earmark_audio_io::write(&leak_path, &leak).unwrap();
    let (code, json) = s.extract(&leak_path);
    assert_eq!(code, 0);
    let payloads = json["payloads"].as_array().unwrap();
    assert_eq!(payloads.len(), 2, "{json}");
    for (payload, from, to) in [
        ("aaaaaaaaaaaaaaaa", 0.0, 20.0),
        ("bbbbbbbbbbbbbbbb", 30.0, 50.0),
    ] {
        let entry = payloads.iter().find(|p| p["payload"] == payload).unwrap();
        for seg in entry["segments"].as_array().unwrap() {
            let (start, end) = (
                seg["start_s"].as_f64().unwrap(),
                seg["end_s"].as_f64().unwrap(),
            );
            assert!(
                start >= from - 2.5 && end <= to + 2.5,
                "{payload}: segment {start}–{end}"
            );
        }
        let covered: f64 = entry["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["end_s"].as_f64().unwrap() - s["start_s"].as_f64().unwrap())
            .sum();
        assert!(covered >= 10.0, "{payload}: only {covered} s attributed");
    }
}
