//! Transcript canaries end to end: `text mark` on plain text, SRT and
//! WebVTT from the Asterisk prompt texts (the transcript of the corpus's
//! Allison recordings), `text trace` on retyped quotes set in other prose,
//! mixes of two recipients, and bad input. A real SQLite ledger throughout.

use crate::common;

use std::path::{Path, PathBuf};

use common::fixture;
use common::home::TestHome;

const PLAIN: &str = "transcripts/asterisk-core-sounds-en.txt";
const SRT: &str = "transcripts/asterisk-prompts.srt";
const VTT: &str = "transcripts/asterisk-prompts.vtt";
const PEOPLE: [&str; 6] = ["ana", "ben", "chloe", "dev", "emma", "femi"];

fn home_with_people() -> TestHome {
    let home = TestHome::new();
    for p in PEOPLE {
        home.ok(&["recipient", "add", p]);
    }
    home
}

fn mark(home: &TestHome, transcript: &Path, out: &str) -> PathBuf {
    let out = home.path(out);
    let stdout = home.ok(&[
        "text",
        "mark",
        transcript.to_str().unwrap(),
        "--all",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("for 6 recipients"), "{stdout}");
    out
}

/// The spoken words of a marked plain transcript (labels stripped).
fn spoken_words(copy: &Path) -> Vec<String> {
    std::fs::read_to_string(copy)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, t)| t.to_string()))
        .flat_map(|t| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// What a newspaper does to a quote: curly quotes and apostrophes, lower
/// case, collapsed whitespace, commas dropped, a cut marked by an ellipsis,
/// an editor's bracket.
fn retype(words: &[String]) -> String {
    let mut w: Vec<String> = words.to_vec();
    let mid = w.len() / 2;
    w.splice(mid..mid + 6, ["…".to_string()]);
    w.insert(10, "[sic]".to_string());
    w.join(" ")
        .replace('\'', "\u{2019}")
        .replace(", ", " ")
        .to_lowercase()
}

fn trace(home: &TestHome, leak: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["text", "trace", leak.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = home.run(&args);
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), value)
}

fn accused(value: &serde_json::Value) -> Vec<String> {
    value["transcripts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["accused"].as_array().cloned().unwrap_or_default())
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn retyped_quotes_in_an_article_name_their_recipient_only() {
    let home = home_with_people();
    let out = mark(&home, &fixture(PLAIN), "copies");
    let copies: Vec<PathBuf> = PEOPLE
        .iter()
        .map(|p| common::copy_named(&out, "asterisk-core-sounds-en", p, "txt"))
        .collect();
    // Every copy differs from every other, and all keep every label.
    let texts: Vec<String> = copies
        .iter()
        .map(|c| std::fs::read_to_string(c).unwrap())
        .collect();
    let master = std::fs::read_to_string(fixture(PLAIN)).unwrap();
    let labels = |t: &str| {
        t.lines()
            .map(|l| l.split_once(": ").map(|(a, _)| a.to_string()))
            .collect::<Vec<_>>()
    };
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(labels(t), labels(&master));
        for u in &texts[i + 1..] {
            assert_ne!(t, u);
        }
    }
    // One long retyped quote of chloe's copy inside unrelated prose.
    let words = spoken_words(&copies[2]);
    let article = home.path("article.txt");
    std::fs::write(
        &article,
        format!(
            "The system, according to documents seen by this newspaper, told callers: “{}” The firm did not reply.\n",
            retype(&words[200..2200])
        ),
    )
    .unwrap();
    let (code, value) = trace(&home, &article, &[]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(accused(&value), ["chloe"], "{value}");
    let fragments = value["transcripts"][0]["fragments"].as_array().unwrap();
    assert_eq!(fragments.len(), 1, "{value}");
    assert!(
        fragments[0]["matched_words"].as_u64().unwrap() > 1900,
        "{value}"
    );
    let bound = value["transcripts"][0]["accused"][0]["false_accusation_bound"]
        .as_f64()
        .unwrap();
    assert!(bound <= 1e-6, "{bound}");

    // Two partial quotes of dev's copy, far apart, with prose between.
    let words = spoken_words(&copies[3]);
    std::fs::write(
        &article,
        format!(
            "It began: “{}”. Later in the same call, after a pause, the voice went on: “{}”. Nobody commented.",
            retype(&words[0..1300]),
            retype(&words[1900..3200])
        ),
    )
    .unwrap();
    let (code, value) = trace(&home, &article, &[]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(accused(&value), ["dev"], "{value}");
    assert_eq!(
        value["transcripts"][0]["fragments"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{value}"
    );

    // A mix of two recipients' quotes names one or both of them, never a third.
    let (a, b) = (spoken_words(&copies[0]), spoken_words(&copies[4]));
    std::fs::write(
        &article,
        format!(
            "“{}” And elsewhere: “{}”",
            retype(&a[0..1300]),
            retype(&b[1900..3200])
        ),
    )
    .unwrap();
    let (_, value) = trace(&home, &article, &[]);
    let named = accused(&value);
    assert!(named.iter().all(|n| n == "ana" || n == "emma"), "{value}");
    assert!(!named.is_empty(), "{value}");

    // A short quote carries too few slots: nobody is named (exit 3), and
    // the matched fragment is still shown.
    std::fs::write(&article, format!("“{}”", retype(&words[300..360]))).unwrap();
    let (code, value) = trace(&home, &article, &[]);
    assert_eq!(code, 3, "{value}");
    assert!(accused(&value).is_empty());
    assert_eq!(value["found"], true);

    // Text from no registered transcript.
    std::fs::write(
        &article,
        "The weather in the valley was mild for the season, and the harvest came early this year.",
    )
    .unwrap();
    let (code, value) = trace(&home, &article, &[]);
    assert_eq!(code, 3);
    assert_eq!(value["found"], false);
    let human = home.run(&["text", "trace", article.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("matches no registered transcript"));

    // Audio tracing refuses a transcript's id.
    let out = home.run(&["trace", article.to_str().unwrap(), "--work", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a transcript"));

    // The ledger knows the work as a transcript.
    let list = home.ok(&["work", "list", "--json"]);
    let works: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(works[0]["kind"], "transcript");
    assert_eq!(works[0]["recipients"], 6);
    assert!(works[0]["words"].as_u64().unwrap() > 3000);
}

/// Every line of `text` that is structure: cue numbers, timings, headers,
/// notes, styles and the voice tags and labels that open a cue's text.
fn structure(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            let l = l.trim_end_matches('\r');
            if let Some((label, _)) = l.split_once(": ") {
                format!("{label}: …")
            } else if let Some(rest) = l.strip_prefix("<v Allison>") {
                format!(
                    "<v Allison>…{}",
                    if rest.ends_with("</v>") { "</v>" } else { "" }
                )
            } else {
                l.to_string()
            }
        })
        .collect()
}

#[test]
fn srt_and_webvtt_keep_cues_timings_and_labels() {
    let home = home_with_people();
    for (fixture_name, ext) in [(SRT, "srt"), (VTT, "vtt")] {
        let original = std::fs::read_to_string(fixture(fixture_name)).unwrap();
        let out = mark(&home, &fixture(fixture_name), &format!("copies-{ext}"));
        let mut seen = Vec::new();
        for p in PEOPLE {
            let copy = common::copy_named(&out, "asterisk-prompts", p, ext);
            let text = std::fs::read_to_string(&copy).unwrap();
            assert_eq!(structure(&text), structure(&original), "{}", copy.display());
            assert_eq!(
                text.matches("\r\n").count(),
                original.matches("\r\n").count()
            );
            assert!(!seen.contains(&text));
            seen.push(text);
        }
        // A copy passes the self-check's parse, and a quote of one cue run
        // names its recipient.
        let check = home.ok(&[
            "text",
            "check",
            fixture(fixture_name).to_str().unwrap(),
            "--variants",
            "16",
        ]);
        assert!(check.contains("self-check passed"), "{check}");
    }
    // A quote taken from femi's WebVTT copy, tags and timings stripped as a
    // reader would see it.
    let copy = common::copy_named(&home.path("copies-vtt"), "asterisk-prompts", "femi", "vtt");
    let spoken: Vec<String> = std::fs::read_to_string(copy)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("<v Allison>"))
        .map(|l| l.trim_end_matches("</v>").to_string())
        .collect();
    let words: Vec<String> = spoken
        .join(" ")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(words.len() > 1700);
    let article = home.path("vtt-article.txt");
    std::fs::write(
        &article,
        format!("Transcript excerpt: {}", retype(&words[..1700])),
    )
    .unwrap();
    let (code, value) = trace(&home, &article, &[]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(accused(&value), ["femi"], "{value}");
}

#[test]
fn bad_text_input_gets_one_line_and_its_own_exit_code() {
    let home = home_with_people();
    let dir = home.path("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let cases = [
        (write("empty.txt", b""), "empty"),
        (write("blank.txt", b"  \n\n "), "empty"),
        (
            write("binary.txt", &[0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3, 0, 0]),
            "binary",
        ),
        (
            write("latin1.txt", b"caf\xe9 au lait, s'il vous pla\xeet"),
            "not UTF-8",
        ),
        (
            write("broken.srt", b"1\nthis is not a timing line\nhello\n"),
            "not a valid SRT",
        ),
        (
            write("novtt.vtt", b"00:01.000 --> 00:02.000\nhello\n"),
            "WEBVTT",
        ),
        (dir.join("missing.txt"), "No such file"),
        (
            {
                // A 33 MiB file (sparse): refused by its size before it is read.
                let p = dir.join("huge.txt");
                std::fs::File::create(&p)
                    .unwrap()
                    .set_len(33 << 20)
                    .unwrap();
                p
            },
            "too large",
        ),
    ];
    for (path, expected) in &cases {
        for command in ["mark", "trace"] {
            let mut args = vec!["text", command, path.to_str().unwrap()];
            if command == "mark" {
                args.extend(["--to", "ana", "--out", dir.to_str().unwrap()]);
            } else if path.extension().is_some_and(|e| e != "txt") {
                continue; // any text may be a leak; only transcripts are parsed as subtitles
            }
            let out = home.run(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(13), "{args:?}: {stderr}");
            assert!(stderr.contains(expected), "{args:?}: {stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        }
    }
    // Too short to carry a codeword.
    let short = write(
        "short.txt",
        b"Alice: We will not sign it. I am sure they are not ready.\n",
    );
    let out = home.run(&[
        "text",
        "mark",
        short.to_str().unwrap(),
        "--to",
        "ana",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown work, and a recording's id given to text tracing.
    let leak = write(
        "leak.txt",
        b"Please enter your password followed by the pound key.",
    );
    let out = home.run(&["text", "trace", leak.to_str().unwrap(), "--work", "42"]);
    assert_eq!(out.status.code(), Some(14));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no work with id 42"));
    // Nothing was registered by any failure.
    let list = home.ok(&["work", "list", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&list).unwrap(),
        serde_json::json!([])
    );
    home.ok(&["audit", "verify"]);
}

/// A home whose six people were each given the plain transcript, and the
/// spoken words of `who`'s copy.
fn home_with_the_words_of(who: &str) -> (TestHome, Vec<String>) {
    let home = home_with_people();
    let out = mark(&home, &fixture(PLAIN), "copies");
    let copy = common::copy_named(&out, "asterisk-core-sounds-en", who, "txt");
    let words = spoken_words(&copy);
    (home, words)
}

/// A quote too short to accuse anyone still narrows the field: the
/// recipients whose variant agrees with what it reads are listed, with the
/// number of innocents chance alone would put there, and nobody is accused.
#[test]
fn a_quote_too_short_to_accuse_gives_a_shortlist_holding_its_source() {
    let (home, words) = home_with_the_words_of("dev");
    let leak = home.path("quote.txt");
    std::fs::write(&leak, format!("“{}”", words[300..450].join(" "))).unwrap();
    let (code, value) = trace(&home, &leak, &[]);
    assert_eq!(code, 3, "{value}");
    assert!(accused(&value).is_empty(), "{value}");
    let list = &value["transcripts"][0]["shortlist"];
    let k = list["clean_positions"].as_u64().unwrap();
    assert!(k >= 1, "{value}");
    let names: Vec<&str> = list["consistent_with"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["mismatches"], 0, "{value}");
            e["name"].as_str().unwrap()
        })
        .collect();
    assert!(names.contains(&"dev"), "{value}");
    assert_eq!(list["recipients_compared"], 6, "{value}");
    let expected = list["expected_innocents"].as_f64().unwrap();
    assert!(
        (expected - 6.0 * 0.5f64.powi(k as i32)).abs() < 1e-9,
        "{value}"
    );
    assert!(
        list["statement"]
            .as_str()
            .unwrap()
            .starts_with("not an accusation"),
        "{value}"
    );
    // Allowing disagreements can only widen the list.
    let (_, loose) = trace(&home, &leak, &["--shortlist-mismatches", "2"]);
    let loose_list = &loose["transcripts"][0]["shortlist"];
    assert!(
        loose_list["consistent_with"].as_array().unwrap().len() >= names.len(),
        "{loose}"
    );
    assert!(loose_list["expected_innocents"].as_f64().unwrap() >= expected);
    // In words too.
    let text = home.run(&["text", "trace", leak.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("not an accusation"), "{stdout}");
    assert!(stdout.contains("consistent with dev"), "{stdout}");
    assert!(!stdout.contains("ACCUSED"), "{stdout}");
}

/// Two 300-word quotes of one copy in two articles, each too short to name
/// anyone, name their source when traced together: one accusation within
/// one ε, with the assumption of one source stated and each fragment's
/// leak given.
#[test]
fn two_leaks_from_one_source_traced_together_name_it() {
    let (home, words) = home_with_the_words_of("dev");
    let article = |name: &str, range: std::ops::Range<usize>| {
        let path = home.path(name);
        std::fs::write(
            &path,
            format!("The memo said: “{}” No comment.", words[range].join(" ")),
        )
        .unwrap();
        path
    };
    let (first, second) = (article("a.txt", 1800..2100), article("b.txt", 2400..2700));
    for alone in [&first, &second] {
        let (code, value) = trace(&home, alone, &[]);
        assert_eq!(code, 3, "{value}");
        assert!(accused(&value).is_empty(), "{value}");
        assert!(value["assumption"].is_null(), "{value}");
    }
    let (code, value) = trace(&home, &first, &[second.to_str().unwrap()]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(accused(&value), ["dev"], "{value}");
    assert!(value["assumption"].as_str().unwrap().contains("one source"));
    let leaks: Vec<&str> = value["leaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(leaks, [first.to_str().unwrap(), second.to_str().unwrap()]);
    let fragments = value["transcripts"][0]["fragments"].as_array().unwrap();
    let from: Vec<u64> = fragments
        .iter()
        .map(|f| f["leak"].as_u64().unwrap())
        .collect();
    assert_eq!(from, [0, 1], "{value}");
    let bound = value["transcripts"][0]["accused"][0]["false_accusation_bound"]
        .as_f64()
        .unwrap();
    assert!(bound <= 1e-6, "{value}");
}

/// A plain-text call transcript (three speakers, fillers, dash
/// interruptions, ambiguous contractions, spelled numbers) passes the
/// self-check; the slots left out because their other rendering would
/// change what is said are named by rule, with their words and line; the
/// copies differ, and a retyped quote of one names its recipient.
#[test]
fn a_plain_text_call_transcript_passes_and_names_what_it_leaves_out() {
    let call = fixture("transcripts/call-three-speakers.txt");
    let home = home_with_people();
    let check = home.ok(&["text", "check", call.to_str().unwrap()]);
    assert!(check.contains("self-check passed"), "{check}");
    let report: serde_json::Value =
        serde_json::from_str(&home.ok(&["text", "check", call.to_str().unwrap(), "--json"]))
            .unwrap();
    assert_eq!(report["passed"], true, "{report}");
    assert!(report["words"].as_u64().unwrap() >= 1500, "{report}");
    let density =
        report["codeword_positions"].as_f64().unwrap() / report["words"].as_f64().unwrap();
    assert!(density >= 0.083, "{density} positions per word");
    let counted: u64 = report["left_out_by_rule"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(
        counted as usize,
        report["left_out"].as_array().unwrap().len()
    );
    for slot in report["left_out"].as_array().unwrap() {
        let line = slot["line"].as_u64().unwrap() as usize;
        let text = std::fs::read_to_string(&call).unwrap();
        let on_line = text.lines().nth(line - 1).unwrap();
        let original = slot["original"].as_str().unwrap();
        let inside = &original[original.find('[').unwrap() + 1..original.find(']').unwrap()];
        assert!(
            on_line.contains(inside),
            "{slot}: line {line} is {on_line:?}"
        );
        assert!(!slot["rule"].as_str().unwrap().is_empty(), "{slot}");
        assert_ne!(slot["original"], slot["variant"], "{slot}");
    }
    let out = home.path("call-copies");
    let stdout = home.ok(&[
        "text",
        "mark",
        call.to_str().unwrap(),
        "--all",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("for 6 recipients"), "{stdout}");
    let copy = common::copy_named(&out, "call-three-speakers", "dev", "txt");
    let words = spoken_words(&copy);
    let article = home.path("call-article.txt");
    std::fs::write(
        &article,
        format!("The call, as leaked: {}", retype(&words[..900])),
    )
    .unwrap();
    let (code, value) = trace(&home, &article, &[]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(accused(&value), ["dev"], "{value}");
}
