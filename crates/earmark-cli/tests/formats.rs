//! Every input format the engine promises, made by real encoders, decodes
//! with the right rate and channel count, and WAV/FLAC outputs round-trip.

mod common;

use common::*;

#[test]
fn reads_every_promised_format() {
    let s = Scratch::new();
    let source = fixture("music_metal_44k_muldjord_chaos_god.wav");
    let src = source.to_str().unwrap();
    let cases: &[(&str, &[&str], u32)] = &[
        ("s24.wav", &["-c:a", "pcm_s24le"], 44_100),
        ("s32.wav", &["-c:a", "pcm_s32le"], 44_100),
        ("f32.wav", &["-c:a", "pcm_f32le"], 44_100),
        ("a.flac", &["-c:a", "flac"], 44_100),
        ("a.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"], 44_100),
        ("a.m4a", &["-c:a", "aac", "-b:a", "128k"], 44_100),
        ("a.ogg", &["-c:a", "libvorbis", "-b:a", "96k"], 44_100),
        ("a.opus", &["-c:a", "libopus", "-b:a", "64k"], 48_000),
        ("a.webm", &["-c:a", "libopus", "-b:a", "64k"], 48_000),
        ("r96k.wav", &["-ar", "96000"], 96_000),
        ("r8k_mono.wav", &["-ar", "8000", "-ac", "1"], 8_000),
        (
            "six.wav",
            &["-af", "pan=5.1|FL=c0|FR=c1|FC=c0|LFE=c1|BL=c0|BR=c1"],
            44_100,
        ),
    ];
    for (name, args, rate) in cases {
        let path = s.path(name);
        let mut all = vec!["-i", src];
        all.extend_from_slice(args);
        all.push(path.to_str().unwrap());
        ffmpeg(&all);
        let audio = earmark_audio_io::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(audio.rate, *rate, "{name}");
        let expected_channels = if name.starts_with("six") {
            6
        } else if name.contains("mono") {
            1
        } else {
            2
        };
        assert_eq!(audio.channels.len(), expected_channels, "{name}");
        assert!(
            (audio.duration_s() - 15.0).abs() < 0.1,
            "{name}: {} s",
            audio.duration_s()
        );
    }
}

#[test]
fn wav_and_flac_outputs_keep_rate_channels_length_and_samples() {
    let s = Scratch::new();
    let original =
        earmark_audio_io::read(&fixture("speech_cs_mf_22k_fillets_kitchen_dialogue.wav")).unwrap();
    for name in ["copy.wav", "copy.flac"] {
        let path = s.path(name);
        earmark_audio_io::write(&path, &original).unwrap();
        let back = earmark_audio_io::read(&path).unwrap();
        assert_eq!(back.rate, original.rate, "{name}");
        assert_eq!(back.channels.len(), original.channels.len(), "{name}");
        assert_eq!(back.frames(), original.frames(), "{name}");
        // 16-bit in, 16-bit out: bit exact.
        assert_eq!(back.channels, original.channels, "{name}: samples changed");
    }
    // The FLAC is also valid for ffmpeg.
    let wav = s.path("from_flac.wav");
    ffmpeg(&[
        "-i",
        s.path("copy.flac").to_str().unwrap(),
        wav.to_str().unwrap(),
    ]);
}

#[test]
fn float_input_is_written_back_as_float() {
    let s = Scratch::new();
    let f32_wav = s.path("f32.wav");
    ffmpeg(&[
        "-i",
        fixture("music_metal_44k_muldjord_chaos_god.wav")
            .to_str()
            .unwrap(),
        "-c:a",
        "pcm_f32le",
        f32_wav.to_str().unwrap(),
    ]);
    let marked = s.path("marked.wav");
    s.embed(&f32_wav, &marked, "00000000000000ff");
    let back = earmark_audio_io::read(&marked).unwrap();
    assert_eq!(back.sample_format, earmark_audio_io::SampleFormat::Float32);
    let (code, json) = s.extract(&marked);
    assert_eq!(code, 0);
    assert_eq!(json["payload"], "00000000000000ff");
}
