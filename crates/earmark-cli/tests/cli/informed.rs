//! Informed tracing end to end: a recorded call is marked for six
//! recipients, 30 s excerpts of one recipient's copy go through real speech
//! codecs (sox's AMR-NB and GSM, ffmpeg's Opus in voice mode) and through
//! tempo, speed and pitch changes, and `trace` must register them against
//! the stored master, name that recipient and nobody else. Splices and cuts
//! must show up in the tamper map where they were made.

use crate::common;

use std::path::{Path, PathBuf};

use common::home::{accused, TestHome};
use common::{cut, ffmpeg, fixture, tool};

const CALL: &str = "long/long_call_en-f_it-m_8k.flac";
const RECIPIENTS: usize = 6;

/// The copy of recipient `n` (1-based) in `copies`.
fn copy(copies: &Path, n: usize) -> PathBuf {
    common::copy_named(copies, "long_call_en-f_it-m_8k", &format!("r{n:02}"), "wav")
}

/// sox in repeatable mode: its dither is otherwise seeded from the clock.
fn sox(args: &[&str]) {
    tool("sox", &[&["-R"], args].concat());
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Applies `channel` to `input` (a WAV excerpt), writing a WAV to `output`.
fn through(channel: &str, input: &Path, output: &Path, scratch: &Path) {
    let coded = scratch.join(format!("{channel}.coded"));
    match channel {
        "amr-nb-12.2k" | "amr-nb-4.75k" => {
            let amr = coded.with_extension("amr");
            let mode = if channel.ends_with("12.2k") { "7" } else { "0" };
            let to_amr = ["-r", "8000", "-c", "1", "-t", "amr-nb", "-C", mode];
            sox(&[&[s(input)], &to_amr[..], &[s(&amr)]].concat());
            sox(&[s(&amr), s(output)]);
        }
        "gsm" => {
            let gsm = coded.with_extension("gsm");
            sox(&[s(input), "-r", "8000", "-c", "1", "-t", "gsm", s(&gsm)]);
            sox(&[s(&gsm), "-e", "signed", "-b", "16", s(output)]);
        }
        "opus-8k-voice" | "opus-12k-voice" => {
            let ogg = coded.with_extension("ogg");
            let rate = if channel.starts_with("opus-8k") {
                "8k"
            } else {
                "12k"
            };
            let voice = ["-c:a", "libopus", "-b:a", rate, "-application", "voip"];
            ffmpeg(&[&["-i", s(input)], &voice[..], &[s(&ogg)]].concat());
            ffmpeg(&["-i", s(&ogg), "-ar", "8000", s(output)]);
        }
        "tempo-0.9" => sox(&[s(input), s(output), "tempo", "0.9"]),
        "tempo-1.1" => sox(&[s(input), s(output), "tempo", "1.1"]),
        "speed-0.9" => sox(&[s(input), s(output), "speed", "0.9"]),
        "speed-1.1" => sox(&[s(input), s(output), "speed", "1.1"]),
        "pitch-200" => sox(&[s(input), s(output), "pitch", "-200"]),
        "pitch+200" => sox(&[s(input), s(output), "pitch", "200"]),
        other => panic!("unknown channel {other}"),
    }
}

fn marked_home() -> (TestHome, PathBuf) {
    let home = TestHome::new();
    let copies = home.mark_for(&fixture(CALL), RECIPIENTS);
    (home, copies)
}

#[test]
fn a_recipient_is_named_through_codecs_and_time_and_pitch_changes() {
    let (home, copies) = marked_home();
    let channels = [
        "amr-nb-12.2k",
        "amr-nb-4.75k",
        "gsm",
        "opus-8k-voice",
        "opus-12k-voice",
        "tempo-0.9",
        "tempo-1.1",
        "speed-0.9",
        "speed-1.1",
        "pitch-200",
        "pitch+200",
    ];
    for (k, channel) in channels.iter().enumerate() {
        let recipient = k % RECIPIENTS + 1;
        let excerpt = home.path(&format!("excerpt-{k}.wav"));
        let start = 10.0 + 30.0 * k as f64;
        cut(&copy(&copies, recipient), &excerpt, start, 30.0);
        let leak = home.path(&format!("leak-{channel}.wav"));
        through(channel, &excerpt, &leak, &home.path(""));
        let (code, value) = home.trace(&leak);
        assert_eq!(code, 0, "{channel}: {value:#}");
        assert_eq!(value["method"], "informed", "{channel}: {value:#}");
        assert_eq!(
            accused(&value),
            vec![format!("r{recipient:02}")],
            "{channel}: {value:#}"
        );
        let alignment = value["alignment"].as_array().unwrap();
        assert!(!alignment.is_empty(), "{channel}: {value:#}");
        // The excerpt starts where it was cut from the master.
        let offset = alignment[0]["master_start_s"].as_f64().unwrap()
            - alignment[0]["leak_start_s"].as_f64().unwrap()
                * value["registration"]["time_scale"].as_f64().unwrap();
        assert!(
            (offset - start).abs() < 0.5,
            "{channel}: starts at {offset} s: {value:#}"
        );
    }
}

#[test]
fn a_splice_of_two_copies_with_foreign_audio_is_mapped() {
    let (home, copies) = marked_home();
    // r02's 100–112 s, 2 s of another recording, r05's 112–130 s.
    let first = home.path("first.wav");
    let second = home.path("second.wav");
    let foreign = home.path("foreign.wav");
    cut(&copy(&copies, 2), &first, 100.0, 12.0);
    cut(&copy(&copies, 5), &second, 112.0, 18.0);
    sox(&[
        s(&fixture("speech_cs_mf_22k_fillets_kitchen_dialogue.wav")),
        "-r",
        "8000",
        "-c",
        "1",
        s(&foreign),
        "trim",
        "5",
        "2",
    ]);
    let leak = home.path("splice.wav");
    sox(&[s(&first), s(&foreign), s(&second), s(&leak)]);
    let plot = home.path("map.png");
    let out = home.run(&["trace", s(&leak), "--json", "--plot", s(&plot)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names = accused(&value);
    names.sort();
    assert_eq!(names, vec!["r02", "r05"], "{value:#}");
    // Each is found in their own stretch.
    for a in value["accused"].as_array().unwrap() {
        let (lo, hi) = if a["name"] == "r02" {
            (0.0, 12.0)
        } else {
            (14.0, 32.0)
        };
        if !a["evidence"]
            .as_array()
            .unwrap()
            .contains(&"identifier".into())
        {
            continue;
        }
        for seg in a["segments"].as_array().unwrap() {
            let (start, end) = (
                seg["start_s"].as_f64().unwrap(),
                seg["end_s"].as_f64().unwrap(),
            );
            assert!(start >= lo - 0.5 && end <= hi + 0.5, "{a:#}");
        }
    }
    let inserted = value["inserted"].as_array().unwrap();
    assert_eq!(inserted.len(), 1, "{value:#}");
    let start = inserted[0]["leak_start_s"].as_f64().unwrap();
    let end = inserted[0]["leak_end_s"].as_f64().unwrap();
    assert!(
        (start - 12.0).abs() <= 0.25 && (end - 14.0).abs() <= 0.25,
        "{value:#}"
    );
    let png = std::fs::read(&plot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn a_cut_is_located_and_an_unregistered_recording_is_not_traced() {
    let (home, copies) = marked_home();
    // r03's 200–212 s and 213–230 s: one second removed at leak time 12 s.
    let first = home.path("first.wav");
    let second = home.path("second.wav");
    cut(&copy(&copies, 3), &first, 200.0, 12.0);
    cut(&copy(&copies, 3), &second, 213.0, 17.0);
    let leak = home.path("cut.wav");
    sox(&[s(&first), s(&second), s(&leak)]);
    let (code, value) = home.trace(&leak);
    assert_eq!(code, 0, "{value:#}");
    assert_eq!(accused(&value), vec!["r03"], "{value:#}");
    let removed = value["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 1, "{value:#}");
    let at = removed[0]["leak_start_s"].as_f64().unwrap();
    let from = removed[0]["master_start_s"].as_f64().unwrap();
    let to = removed[0]["master_end_s"].as_f64().unwrap();
    assert!((at - 12.0).abs() <= 0.25, "{value:#}");
    assert!(
        (from - 212.0).abs() <= 0.25 && (to - 213.0).abs() <= 0.25,
        "{value:#}"
    );
    assert!(
        value["inserted"].as_array().unwrap().is_empty(),
        "{value:#}"
    );

    // A recording that was never registered.
    let other = home.path("other.wav");
    sox(&[
        s(&fixture("speech_cs_mf_22k_fillets_kitchen_dialogue.wav")),
        s(&other),
    ]);
    let (code, value) = home.trace(&other);
    assert_eq!(code, 3, "{value:#}");
    assert_eq!(value["found"], false);
    assert!(accused(&value).is_empty());
    let notes = value["notes"].to_string();
    assert!(notes.contains("no registered work"), "{value:#}");
}

#[test]
fn without_its_master_a_work_is_traced_blind() {
    let (home, copies) = marked_home();
    let excerpt = home.path("excerpt.wav");
    cut(&copy(&copies, 4), &excerpt, 60.0, 30.0);
    home.ok(&["work", "forget", "1", "--yes"]);
    let (code, value) = home.trace(&excerpt);
    assert_eq!(code, 0, "{value:#}");
    assert_eq!(value["method"], "blind", "{value:#}");
    assert_eq!(accused(&value), vec!["r04"], "{value:#}");
    assert!(
        value["notes"].to_string().contains("not in the store"),
        "{value:#}"
    );
    // A damaged landmark index is rebuilt from the masters it can find,
    // and says so; the work whose master is gone is still traced blind.
    std::fs::write(home.root().join("landmarks.idx"), b"not an index").unwrap();
    let (code, value) = home.trace(&excerpt);
    assert_eq!(code, 0, "{value:#}");
    assert_eq!(accused(&value), vec!["r04"], "{value:#}");
    assert!(
        value["notes"]
            .to_string()
            .contains("landmark index was damaged"),
        "{value:#}"
    );
}

/// A leak cut from one piece of a copy, through a phone codec, reads as one
/// stretch of the master: no edit that nobody made, and the accused's mark
/// covers it without a gap.
#[test]
fn a_leak_cut_from_one_piece_is_one_stretch() {
    let (home, copies) = marked_home();
    let piece = home.path("piece.wav");
    cut(&copy(&copies, 2), &piece, 120.0, 15.0);
    let leak = home.path("piece-amr.wav");
    through("amr-nb-12.2k", &piece, &leak, &home.path(""));
    let (code, value) = home.trace(&leak);
    assert_eq!(code, 0, "{value:#}");
    assert_eq!(accused(&value), vec!["r02"], "{value:#}");
    let stretches = value["alignment"].as_array().unwrap();
    assert_eq!(stretches.len(), 1, "{value:#}");
    assert!(
        value["inserted"].as_array().unwrap().is_empty(),
        "{value:#}"
    );
    assert!(value["removed"].as_array().unwrap().is_empty(), "{value:#}");
    let master_start = stretches[0]["master_start_s"].as_f64().unwrap();
    assert!((master_start - 120.0).abs() <= 0.25, "{value:#}");
    let segments = value["accused"][0]["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 1, "{value:#}");
}

/// A quiet recording, 12 s with 3.6 s of sound (a voice in wind, as a
/// field recording), is marked rather than refused: `mark` warns that its
/// copies are read back through the master, records how much of each
/// carries the mark, and `trace` names the recipient whose copy leaked,
/// and nobody else. Marked `transparent`, as such a recording would be.
#[test]
fn a_quiet_recording_is_marked_and_its_copies_are_traced() {
    let home = TestHome::new();
    let voice =
        earmark_audio_io::read(&fixture("speech_en_f_8k_allison_demo-congrats.wav")).unwrap();
    let rate = voice.rate as usize;
    // 3.6 s of the call in the middle of 12 s of silence.
    let mut samples = vec![0.0f32; 12 * rate];
    let from = 4 * rate;
    let sound = (3.6 * rate as f64) as usize;
    samples[from..from + sound].copy_from_slice(&voice.channels[0][2 * rate..2 * rate + sound]);
    let work = home.path("wind.wav");
    earmark_audio_io::write(
        &work,
        &earmark_audio_io::Audio {
            channels: vec![samples],
            rate: voice.rate,
            sample_format: earmark_audio_io::SampleFormat::Int(16),
        },
    )
    .unwrap();
    let csv = home.path("people.csv");
    std::fs::write(
        &csv,
        "name,email,org\nr01,a@example.org,P\nr02,b@example.org,P\nr03,c@example.org,P\n",
    )
    .unwrap();
    home.ok(&["recipient", "import", csv.to_str().unwrap()]);
    let out = home.path("copies");
    let marked = home.run(&[
        "mark",
        work.to_str().unwrap(),
        "--all",
        "--out",
        out.to_str().unwrap(),
        "--profile",
        "transparent",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&marked.stderr);
    assert!(marked.status.success(), "{stderr}");
    assert!(
        stderr.contains("against the master") || stderr.contains("against its master"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&marked.stdout).unwrap();
    assert!(report["warning"].is_string(), "{report}");
    for copy in report["copies"].as_array().unwrap() {
        let marked_s = copy["marked_s"].as_f64().unwrap();
        assert!((1.0..=3.7).contains(&marked_s), "{copy}");
    }
    let leak = common::copy_named(&out, "wind", "r02", "wav");
    let (code, verdict) = home.trace(&leak);
    assert_eq!(
        accused(&verdict),
        vec!["r02".to_string()],
        "exit {code}: {verdict}"
    );
}
