//! Bad input gets one clear line and a distinct exit code, never a panic.

use crate::common;

use common::*;
use std::io::Write;

/// `earmark embed INPUT OUT --key KEY --payload PAYLOAD` as arguments.
fn embed_args<'a>(
    input: &'a std::path::Path,
    out: &'a std::path::Path,
    s: &'a Scratch,
    payload: &'a str,
) -> Vec<&'a str> {
    vec![
        "embed",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--key",
        s.key_str(),
        "--payload",
        payload,
    ]
}

fn expect_failure(args: &[&str], code: i32, needle: &str) {
    let out = earmark(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "args {args:?}: stderr {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    assert!(stderr.contains(needle), "'{needle}' not in: {stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn damaged_and_non_audio_files_are_refused() {
    let s = Scratch::new();
    let wav = std::fs::read(fixture("speech_en_m_16k_cmuarctic_a0007.wav")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.wav", Vec::new(), "no audio samples"),
        (
            "text.wav",
            b"this is not audio at all\n".repeat(50),
            "unsupported",
        ),
        (
            "random.bin",
            (0..5000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
            "unsupported",
        ),
        ("header_only.wav", wav[..44].to_vec(), ""),
        ("truncated_header.wav", wav[..20].to_vec(), ""),
        (
            "corrupt.flac",
            {
                let mut v = b"fLaC".to_vec();
                v.extend((0..3000u32).map(|i| (i * 7919 % 251) as u8));
                v
            },
            "",
        ),
        (
            "huge_header.wav",
            {
                // A RIFF header that claims 4 GB of data, followed by almost nothing.
                let mut v = wav[..44].to_vec();
                v[40..44].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
                v[4..8].copy_from_slice(&0xFFFF_FFF8u32.to_le_bytes());
                v.extend_from_slice(&[0u8; 10]);
                v
            },
            "",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = s.path(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        let out = s.path("out.wav");
        for args in [
            vec!["extract", path.to_str().unwrap(), "--key", s.key_str()],
            vec![
                "embed",
                path.to_str().unwrap(),
                out.to_str().unwrap(),
                "--key",
                s.key_str(),
                "--payload",
                "0000000000000001",
            ],
        ] {
            let result = earmark(&args);
            let stderr = String::from_utf8_lossy(&result.stderr);
            let code = result.status.code();
            // Either refused as bad audio (4) or, for a header with a few samples, too little signal (7).
            assert!(
                code == Some(4) || code == Some(7),
                "{name}: exit {code:?}, stderr {stderr}"
            );
            assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
            assert!(stderr.to_lowercase().contains(needle), "{name}: {stderr}");
            assert!(!out.exists(), "{name}: an output was written");
        }
    }
}

#[test]
fn missing_file_and_unknown_output_format() {
    let s = Scratch::new();
    expect_failure(
        &["extract", "/nonexistent/file.wav", "--key", s.key_str()],
        4,
        "cannot read",
    );
    let input = fixture("music_metal_44k_muldjord_chaos_god.wav");
    let out = s.path("out.xyz");
    expect_failure(
        &embed_args(&input, &out, &s, "0000000000000001"),
        6,
        "use .wav or .flac",
    );
}

/// A 4 s recording is marked, with a warning that reading its mark back
/// needs the master; a silent one is refused.
#[test]
fn short_input_is_marked_with_a_warning_and_silence_is_refused() {
    let s = Scratch::new();
    let input = fixture("speech_en_m_16k_cmuarctic_a0007.wav");
    let out = s.path("out.wav");
    let done = earmark(&embed_args(&input, &out, &s, "0000000000000001"));
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning:") && stderr.contains("against its master"),
        "{stderr}"
    );
    assert!(out.is_file());
    let silence = s.path("silence.wav");
    earmark_audio_io::write(
        &silence,
        &earmark_audio_io::Audio {
            channels: vec![vec![0.0; 12 * 8000]],
            rate: 8000,
            sample_format: earmark_audio_io::SampleFormat::Int(16),
        },
    )
    .unwrap();
    let out = s.path("silence-out.wav");
    expect_failure(
        &embed_args(&silence, &out, &s, "0000000000000001"),
        7,
        "no sound to carry the mark",
    );
    assert!(!out.exists(), "nothing is left behind");
}

#[test]
fn keys_are_private_never_overwritten_and_checked() {
    let s = Scratch::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&s.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = std::fs::read(&s.key).unwrap();
    expect_failure(&["keygen", s.key_str()], 5, "refusing to overwrite");
    assert_eq!(std::fs::read(&s.key).unwrap(), before);
    // The key never appears in the output of any command.
    let text = String::from_utf8(before).unwrap();
    let secret = text.split_whitespace().nth(1).unwrap();
    let out = earmark(&["keygen", s.path("k2").to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));

    let input = fixture("music_metal_44k_muldjord_chaos_god.wav");
    expect_failure(
        &[
            "extract",
            input.to_str().unwrap(),
            "--key",
            "/nonexistent.key",
        ],
        5,
        "cannot read key file",
    );
    let bad = s.path("bad.key");
    std::fs::write(&bad, "earmark-key-v1 1234\n").unwrap();
    expect_failure(
        &[
            "extract",
            input.to_str().unwrap(),
            "--key",
            bad.to_str().unwrap(),
        ],
        5,
        "damaged",
    );
}

#[test]
fn bad_payload_is_a_usage_error() {
    let s = Scratch::new();
    let input = fixture("music_metal_44k_muldjord_chaos_god.wav");
    let out = s.path("out.wav");
    expect_failure(
        &embed_args(&input, &out, &s, "xyz"),
        2,
        "16 hexadecimal digits",
    );
}

/// A minimal WAV: `format` 1 (integer PCM) or 3 (float), mono, `bits` wide.
fn wav_bytes(format: u16, rate: u32, bits: u16, body: &[u8]) -> Vec<u8> {
    let align = bits / 8;
    let mut v = b"RIFF".to_vec();
    v.extend((4 + 8 + 16 + 8 + body.len() as u32).to_le_bytes());
    v.extend(b"WAVEfmt ");
    v.extend(16u32.to_le_bytes());
    v.extend(format.to_le_bytes());
    v.extend(1u16.to_le_bytes());
    v.extend(rate.to_le_bytes());
    v.extend((rate * align as u32).to_le_bytes());
    v.extend(align.to_le_bytes());
    v.extend(bits.to_le_bytes());
    v.extend(b"data");
    v.extend((body.len() as u32).to_le_bytes());
    v.extend(body);
    v
}

/// Headers with no rate, samples that are not numbers, and paths that are
/// not files are refused (exit 4) before anything is read or written; a
/// FIFO or `/dev/zero` used to hang.
#[test]
fn absurd_headers_non_finite_samples_and_non_files_are_refused() {
    let s = Scratch::new();
    let tone: Vec<f32> = (0..48_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
    let pcm16: Vec<u8> = tone
        .iter()
        .flat_map(|&x| ((x * 32_767.0) as i16).to_le_bytes())
        .collect();
    let pcm24: Vec<u8> = tone
        .iter()
        .flat_map(|&x| ((x * 8_388_607.0) as i32).to_le_bytes()[..3].to_vec())
        .collect();
    let mut float = tone.clone();
    float[1_000] = f32::NAN;
    float[2_000] = f32::INFINITY;
    let float: Vec<u8> = float.iter().flat_map(|x| x.to_le_bytes()).collect();
    let cases = [
        ("zero_hz_16.wav", wav_bytes(1, 0, 16, &pcm16), "0 Hz"),
        ("zero_hz_24.wav", wav_bytes(1, 0, 24, &pcm24), "0 Hz"),
        (
            "nan.wav",
            wav_bytes(3, 16_000, 32, &float),
            "NaN or infinite",
        ),
    ];
    let out = s.path("out.wav");
    for (name, bytes, needle) in cases {
        let path = s.path(name);
        std::fs::write(&path, bytes).unwrap();
        expect_failure(
            &["extract", path.to_str().unwrap(), "--key", s.key_str()],
            4,
            needle,
        );
        expect_failure(&embed_args(&path, &out, &s, "0000000000000001"), 4, needle);
        assert!(!out.exists(), "{name}: an output was written");
    }
    let fifo = s.path("fifo.wav");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for path in [
        fifo.as_path(),
        std::path::Path::new("/dev/zero"),
        s.path("").as_path(),
    ] {
        expect_failure(
            &["extract", path.to_str().unwrap(), "--key", s.key_str()],
            4,
            "not a regular file",
        );
        expect_failure(
            &embed_args(path, &out, &s, "0000000000000001"),
            4,
            "not a regular file",
        );
    }
}

/// A file cut short is read as far as it goes, and the output says so: a
/// 16-bit WAV (read in blocks) and a FLAC (read through symphonia), each
/// cut to about 60 % of its bytes, still give their payload, with a note
/// in the text and the JSON that the file ends early.
#[test]
fn a_file_cut_short_is_read_as_far_as_it_goes_with_a_note() {
    let s = Scratch::new();
    let payload = "0123456789abcdef";
    let marked = s.marked_fixture("speech_cs_mf_22k_fillets_kitchen_dialogue.wav", payload);
    let flac = s.path("marked.flac");
    tool("sox", &[marked.to_str().unwrap(), flac.to_str().unwrap()]);
    for whole in [marked, flac] {
        let bytes = std::fs::read(&whole).unwrap();
        let cut = s.path(&format!(
            "cut.{}",
            whole.extension().unwrap().to_str().unwrap()
        ));
        std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
        let (code, value) = s.extract(&cut);
        assert_eq!(code, 0, "{value}");
        assert_eq!(value["payload"], payload, "{value}");
        let notes = value["notes"].to_string();
        assert!(
            notes.contains("the file ends early"),
            "{}: {value}",
            cut.display()
        );
        let text = earmark(&["extract", cut.to_str().unwrap(), "--key", s.key_str()]);
        assert!(String::from_utf8_lossy(&text.stdout).contains("note: the file ends early"));
        // The whole file carries no such note.
        let (_, value) = s.extract(&whole);
        assert!(value["notes"].as_array().unwrap().is_empty(), "{value}");
    }
}

/// A Matroska header whose element size overflows made symphonia panic
/// (exit 101, a backtrace) in every command that reads audio; fuzzing the
/// audio front found it. The reader turns a decoder's panic into one line,
/// exit 4.
#[test]
fn a_decoder_panic_on_a_malformed_file_is_one_line() {
    let s = Scratch::new();
    let bad = fixture("malformed/ebml-size-overflow.mkv");
    let out = s.path("out.wav");
    expect_failure(
        &["extract", bad.to_str().unwrap(), "--key", s.key_str()],
        4,
        "malformed",
    );
    expect_failure(
        &embed_args(&bad, &out, &s, "0123456789abcdef"),
        4,
        "malformed",
    );
    assert!(!out.exists());
}

/// An MP4 whose 'stsc' table claims 4,066,322,942 entries in a 28-byte box
/// made symphonia allocate 65 GB and abort the process; fuzzing found it.
/// Sample-table counts are checked against their boxes first: one line,
/// exit 4.
#[test]
fn an_mp4_table_claiming_more_than_its_box_is_one_line() {
    let s = Scratch::new();
    let bad = fixture("malformed/stsc-count-overflow.m4a");
    expect_failure(
        &["extract", bad.to_str().unwrap(), "--key", s.key_str()],
        4,
        "'stsc' table claims",
    );
}

/// The same inside a `moov` box that claims more bytes than the file has:
/// symphonia still reads it as far as the bytes go, so its tables are
/// checked against what is there (fuzzing found an `stts` of 4,294,967,295
/// entries, a 34 GB allocation).
#[test]
fn an_mp4_table_inside_a_box_past_the_file_end_is_one_line() {
    let s = Scratch::new();
    let bad = fixture("malformed/stts-count-past-file-end.m4a");
    expect_failure(
        &["extract", bad.to_str().unwrap(), "--key", s.key_str()],
        4,
        "'stts' table claims",
    );
}
