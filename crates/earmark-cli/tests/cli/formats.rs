//! Every input format the engine promises, made by real encoders, decodes
//! with the right rate and channel count, and WAV/FLAC outputs round-trip.

use crate::common;

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

/// Makes `name` in `dir` from `source` as a phone or legacy format: sox for
/// AMR-NB 12.2k, GSM 06.10 WAV and µ-law `.au`, ffmpeg for the rest.
fn phone_format(source: &std::path::Path, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    let (src, dst) = (source.to_str().unwrap(), out.to_str().unwrap());
    match name {
        "call.amr" => tool(
            "sox",
            &[src, "-r", "8000", "-c", "1", "-t", "amr-nb", "-C", "7", dst],
        ),
        "call.3gp" => {
            let amr = phone_format(source, dir, "call.amr");
            ffmpeg(&["-i", amr.to_str().unwrap(), "-c:a", "copy", dst]);
        }
        "gsm.wav" => tool(
            "sox",
            &[src, "-r", "8000", "-c", "1", "-e", "gsm-full-rate", dst],
        ),
        "call.au" => tool("sox", &[src, "-e", "u-law", dst]),
        "old.wma" => ffmpeg(&["-i", src, "-c:a", "wmav2", "-b:a", "64k", dst]),
        "clip.mp4" => ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=64x64:d=40",
            "-i",
            src,
            "-shortest",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            dst,
        ]),
        "voice.mkv" => ffmpeg(&["-i", src, "-c:a", "libopus", "-b:a", "32k", dst]),
        other => panic!("no recipe for {other}"),
    }
    out
}

const PHONE_FORMATS: [&str; 7] = [
    "call.amr",
    "call.3gp",
    "gsm.wav",
    "call.au",
    "old.wma",
    "clip.mp4",
    "voice.mkv",
];

/// Leaks arrive as phone recordings (AMR-NB in `.amr` and `.3gp`, decoded
/// by sox's reference AMR library: ffmpeg's own AMR decoder fails on
/// comfort-noise frames and lost the mark in 8 of 8 keys tried), PBX
/// recordings (GSM in WAV), `.au`, `.wma`, and video (AAC in MP4 with a
/// video track, Opus in Matroska). symphonia reads some; ffmpeg decodes
/// the rest, streamed through a pipe. In each, `extract` finds the payload
/// and `trace` names the recipient.
#[test]
fn phone_legacy_and_video_formats_are_read_and_traced() {
    let s = Scratch::new();
    let payload = "0123456789abcdef";
    let marked = s.marked_fixture("speech_en_f_8k_allison_demo-congrats.wav", payload);
    for name in PHONE_FORMATS {
        let file = phone_format(&marked, &s.path(""), name);
        let (code, value) = s.extract(&file);
        assert_eq!(code, 0, "{name}: {value}");
        assert_eq!(value["payload"], payload, "{name}: {value}");
    }

    let home = common::home::TestHome::new();
    let copies = home.mark_for(&fixture("speech_en_f_8k_allison_demo-congrats.wav"), 2);
    let copy = copy_named(
        &copies,
        "speech_en_f_8k_allison_demo-congrats",
        "r02",
        "wav",
    );
    let leaks = home.path("leaks");
    std::fs::create_dir_all(&leaks).unwrap();
    for name in PHONE_FORMATS {
        let leak = phone_format(&copy, &leaks, name);
        let (code, verdict) = home.trace(&leak);
        assert_eq!(code, 0, "{name}: {verdict}");
        assert_eq!(common::home::accused(&verdict), ["r02"], "{name}");
    }
}

/// Unknown is not damaged: junk is "unsupported", a WAV cut inside its
/// header is "corrupt", both exit 4; and a GSM WAV without ffmpeg on the
/// PATH says which package reads it, exit 8 (a missing program).
#[test]
fn unsupported_corrupt_and_missing_decoder_are_told_apart() {
    let s = Scratch::new();
    let junk = s.path("notes.xyz");
    std::fs::write(&junk, b"these are meeting notes, not audio").unwrap();
    let out = earmark(&["extract", junk.to_str().unwrap(), "--key", s.key_str()]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported or unrecognised"));

    let wav = std::fs::read(fixture("speech_en_f_8k_allison_demo-congrats.wav")).unwrap();
    let cut = s.path("cut.wav");
    std::fs::write(&cut, &wav[..30]).unwrap();
    let out = earmark(&["extract", cut.to_str().unwrap(), "--key", s.key_str()]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));

    let gsm = phone_format(
        &fixture("speech_en_f_8k_allison_demo-congrats.wav"),
        &s.path(""),
        "gsm.wav",
    );
    let empty_path = s.path("no-programs");
    std::fs::create_dir_all(&empty_path).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_earmark"))
        .args(["extract", gsm.to_str().unwrap(), "--key", s.key_str()])
        .env("PATH", &empty_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A missing program, not unreadable audio: exit 8, as everywhere.
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("Debian package ffmpeg"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
