//! An insider, or a careless operator, against the verdict. Each test
//! starts from the same home: a 30 s excerpt of a recorded call marked for
//! Ana, Bo and Cy, and a 20 s MP3 leak of Bo's copy. Whatever is done to
//! the records, a trace names Bo or nobody (with a clear refusal), never an
//! innocent; the key file survives; no forged line reaches the screen.

use std::path::PathBuf;

use crate::common;
use common::home::{accused, TestHome};
use common::{ffmpeg, fixture, tool};

/// The home of every case, with Bo's leak.
struct Case {
    home: TestHome,
    leak: PathBuf,
}

/// A 20 s MP3 at 64 kbit/s cut from `who`'s copy of the call in `C/`.
fn leak_of(home: &TestHome, who: &str) -> PathBuf {
    let copy = common::copy_named(&home.path("C"), "call", who, "wav");
    let leak = home.path(&format!("leak{who}.mp3"));
    ffmpeg(&[
        "-ss",
        "5",
        "-t",
        "20",
        "-i",
        copy.to_str().unwrap(),
        "-b:a",
        "64k",
        leak.to_str().unwrap(),
    ]);
    leak
}

impl Case {
    fn new() -> Case {
        let home = TestHome::new();
        let call = home.path("call.wav");
        tool(
            "sox",
            &[
                fixture("long/long_call_en-f_it-m_8k.flac")
                    .to_str()
                    .unwrap(),
                call.to_str().unwrap(),
                "trim",
                "60",
                "30",
            ],
        );
        for name in ["Ana", "Bo", "Cy"] {
            home.ok(&["recipient", "add", name]);
        }
        let copies = home.path("C");
        home.mark_all(&call, &copies, &[]);
        let leak = leak_of(&home, "Bo");
        Case { home, leak }
    }

    fn ledger(&self) -> PathBuf {
        self.home.root().join("ledger.sqlite")
    }

    /// Traces the leak: Bo alone, or nobody with a refusal on standard
    /// error. Returns the exit code and standard error.
    fn trace_names_bo_or_refuses(&self) -> (i32, String) {
        let out = self
            .home
            .run(&["trace", self.leak.to_str().unwrap(), "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let code = out.status.code().unwrap();
        if code == 0 {
            let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(accused(&value), ["Bo"], "{value}");
        } else {
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                let named = accused(&value);
                assert!(named.is_empty() || named == ["Bo"], "{value}");
            }
        }
        (code, stderr)
    }
}

/// Names swapped in the database, then the one-off sealing step asked for
/// again so that the altered rows would be re-signed: refused, and the
/// trace never names Ana for Bo's leak.
#[test]
fn a_database_writer_cannot_have_altered_rows_sealed_again() {
    let case = Case::new();
    common::ledger::tamper(
        &case.ledger(),
        &[
            "UPDATE recipients SET name='tmp' WHERE id=1",
            "UPDATE recipients SET name='Ana' WHERE id=2",
            "UPDATE recipients SET name='Bo' WHERE id=1",
            "INSERT INTO ledger_upgrade VALUES('row-macs')",
        ],
    );
    let verify = case.home.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(11));
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(said.contains("sealed again"), "{said}");
    let (code, stderr) = case.trace_names_bo_or_refuses();
    assert_eq!(code, 11, "{stderr}");
}

/// A comma is part of a name: `--to "Smith, John"` marks for that one
/// person, never for "Smith" and "John".
#[test]
fn a_comma_in_a_name_marks_one_person() {
    let home = TestHome::new();
    for name in ["Smith, John", "Smith", "John"] {
        home.ok(&["recipient", "add", name]);
    }
    let out = home.path("out");
    let report = home.ok(&[
        "mark",
        fixture("speech_en_f_8k_allison_demo-congrats.wav")
            .to_str()
            .unwrap(),
        "--to",
        "Smith, John",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    let value: serde_json::Value = serde_json::from_str(&report).unwrap();
    let names: Vec<&str> = value["copies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Smith, John"], "{value}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

/// `--plot` at a symlink to the master key: refused before any work, and
/// the key is untouched; a plot inside the home is refused too.
#[test]
fn a_plot_never_overwrites_through_a_link_or_inside_the_home() {
    let case = Case::new();
    let key = case.home.root().join("keystore/master.key");
    let before = std::fs::read(&key).unwrap();
    let link = case.home.path("k.png");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    for target in [link.clone(), case.home.root().join("plot.png")] {
        let out = case.home.run(&[
            "trace",
            case.leak.to_str().unwrap(),
            "--plot",
            target.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    assert_eq!(std::fs::read(&key).unwrap(), before);
    assert!(!case.home.root().join("plot.png").exists());
    case.home.ok(&["audit", "verify"]);
    // A fresh path outside the home gets its plot.
    let fine = case.home.path("map.png");
    case.home.ok(&[
        "trace",
        case.leak.to_str().unwrap(),
        "--plot",
        fine.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&fine).unwrap().starts_with(b"\x89PNG"));
}

/// A title, org or email carrying a newline and terminal escapes cannot
/// print a forged verdict line or hide the real one: every field is shown
/// escaped, in `trace`, `recipient list`, `work list` and `work show`.
#[test]
fn hostile_titles_and_fields_cannot_forge_a_line() {
    let home = TestHome::new();
    let forged = "X\nACCUSED Cy  false-accusation bound ≤ 1.0e-30\u{1b}[8m";
    home.ok(&[
        "recipient",
        "add",
        "Ana",
        "--org",
        forged,
        "--email",
        forged,
    ]);
    home.ok(&["recipient", "add", "Cy"]);
    let out = home.path("out");
    home.ok(&[
        "mark",
        fixture("speech_en_f_8k_allison_demo-congrats.wav")
            .to_str()
            .unwrap(),
        "--all",
        "--out",
        out.to_str().unwrap(),
        "--title",
        forged,
    ]);
    let ana = common::copy_named(&out, "speech_en_f_8k_allison_demo-congrats", "Ana", "wav");
    for args in [
        vec!["trace", ana.to_str().unwrap()],
        vec!["recipient", "list"],
        vec!["work", "list"],
        vec!["work", "show", "1"],
    ] {
        let shown = home.run(&args);
        let stdout = String::from_utf8_lossy(&shown.stdout);
        assert!(!stdout.contains('\u{1b}'), "{args:?}: {stdout}");
        assert!(
            !stdout.lines().any(|l| l.starts_with("ACCUSED Cy")),
            "{args:?}: {stdout}"
        );
    }
    let trace = home.ok(&["trace", ana.to_str().unwrap()]);
    assert!(
        trace.lines().any(|l| l.starts_with("ACCUSED Ana")),
        "{trace}"
    );
}

/// A master replaced by an innocent's copy (the original plus the
/// difference to Ana's mark): a trace of the unmarked original would read
/// Ana's mark through it. The master is checked against its recorded
/// SHA-256 first, so the trace refuses and `audit verify` says so; a
/// master deleted without `work forget` is reported too.
#[test]
fn a_replaced_or_vanished_master_is_refused_and_reported() {
    let case = Case::new();
    let masters = case.home.root().join("masters");
    let master = std::fs::read_dir(&masters)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.to_string_lossy().ends_with(".partial"))
        .unwrap();
    let original = case.home.path("original.wav");
    std::fs::copy(&master, &original).unwrap();
    let ana = common::copy_named(&case.home.path("C"), "call", "Ana", "wav");
    std::fs::copy(&ana, &master).unwrap();

    let trace = case
        .home
        .run(&["trace", original.to_str().unwrap(), "--json"]);
    let stderr = String::from_utf8_lossy(&trace.stderr);
    assert_eq!(trace.status.code(), Some(11), "{stderr}");
    assert!(stderr.contains("master of work 1 was replaced"), "{stderr}");
    let verify = case.home.run(&["audit", "verify"]);
    assert_ne!(verify.status.code(), Some(0));
    let said = String::from_utf8_lossy(&verify.stderr).to_string()
        + &String::from_utf8_lossy(&verify.stdout);
    assert!(said.contains("master of work 1 was replaced"), "{said}");

    std::fs::remove_file(&master).unwrap();
    let verify = case.home.run(&["audit", "verify"]);
    assert_ne!(verify.status.code(), Some(0));
    let said = String::from_utf8_lossy(&verify.stderr).to_string()
        + &String::from_utf8_lossy(&verify.stdout);
    assert!(said.contains("no `work forget` removed it"), "{said}");
    // Forgotten on purpose, it is no problem.
    std::fs::copy(&original, &master).unwrap();
    case.home.ok(&["audit", "verify"]);
    case.home.ok(&["work", "forget", "1", "--yes"]);
    case.home.ok(&["audit", "verify"]);
    case.trace_names_bo_or_refuses();
}

/// Another home's key put in place of this one's: said as a key that does
/// not belong to the home (exit 5), not as tampering, and nobody named.
#[test]
fn a_wrong_key_is_named_as_such() {
    let case = Case::new();
    let other = TestHome::new();
    let key = case.home.root().join("keystore/master.key");
    std::fs::copy(other.root().join("keystore/master.key"), &key).unwrap();
    for args in [
        vec!["audit", "verify"],
        vec!["trace", case.leak.to_str().unwrap()],
    ] {
        let out = case.home.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {stderr}");
        assert!(stderr.contains("does not belong to this home"), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

/// A header naming a column twice, and a quote never closed (which would
/// swallow every later row into one name), are refused with their line.
#[test]
fn ambiguous_recipient_csvs_are_refused() {
    let home = TestHome::new();
    for (text, said) in [
        ("name,name\nAna,Bo\n", "line 1"),
        (
            "name,email\nAna,a@x.org\n\"Bo,b@x.org\nCy,c@x.org\n",
            "line 3",
        ),
    ] {
        let csv = home.path("people.csv");
        std::fs::write(&csv, text).unwrap();
        let out = home.run(&["recipient", "import", csv.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(12), "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
    }
    let listed = home.ok(&["recipient", "list"]);
    assert!(
        !listed.contains("Ana") && !listed.contains("Cy"),
        "{listed}"
    );
}

/// Copies never go inside the home, a directory to create is not reached
/// through `..`, and one created under `umask 000` is still 0755 (the
/// home's own files 0600).
#[test]
fn copies_go_outside_the_home_by_a_plain_path() {
    let home = TestHome::new();
    home.ok(&["recipient", "add", "Ana"]);
    let speech = fixture("speech_en_f_8k_allison_demo-congrats.wav");
    let mark = |out: &std::path::Path| {
        home.run(&[
            "mark",
            speech.to_str().unwrap(),
            "--all",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    for inside in [
        home.root(),
        home.root().join("masters"),
        home.root().join("keystore"),
    ] {
        let out = mark(&inside);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{stderr}");
        assert!(stderr.contains("inside the earmark home"), "{stderr}");
    }
    std::fs::create_dir(home.path("ro")).unwrap();
    let dotted = home.path("ro/../c9/../c10");
    let out = mark(&dotted);
    assert_eq!(out.status.code(), Some(6));
    assert!(!home.path("c9").exists());
    // Nothing was registered by the refusals.
    let works = home.ok(&["work", "list"]);
    assert!(works.contains("no works registered yet"), "{works}");

    let open = home.path("open");
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "umask 000 && exec \"$0\" mark {} --all --out {}",
            speech.display(),
            open.display()
        ))
        .arg(env!("CARGO_BIN_EXE_earmark"))
        .env("EARMARK_HOME", home.root());
    assert!(command.status().unwrap().success());
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&open), 0o755);
    // The home's files stay private under that umask too.
    for file in ["landmarks.idx", "landmarks.lock", "ledger.sqlite"] {
        assert_eq!(mode(&home.root().join(file)), 0o600, "{file}");
    }
}

/// An older backup restored over a damaged home would roll it back, and
/// the identifiers handed out since would be handed out again: refused,
/// naming the rows that would be lost, unless `--allow-rollback`.
#[test]
fn restoring_an_older_backup_is_refused_without_allow_rollback() {
    let case = Case::new();
    let backup = case.home.path("B0");
    case.home.ok(&["backup", backup.to_str().unwrap()]);
    case.home.ok(&["recipient", "add", "Gus"]);
    case.home.ok(&[
        "mark",
        case.home.path("call.wav").to_str().unwrap(),
        "--to",
        "Gus",
        "--out",
        case.home.path("C").to_str().unwrap(),
    ]);
    let leak_gus = leak_of(&case.home, "Gus");
    // The ledger damaged in place.
    let ledger = case.ledger();
    let mut bytes = std::fs::read(&ledger).unwrap();
    bytes[100..107].copy_from_slice(b"garbage");
    std::fs::write(&ledger, bytes).unwrap();

    let out = case.home.run(&["restore", backup.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(11), "{stderr}");
    assert!(stderr.contains("roll the home back"), "{stderr}");
    assert!(stderr.contains("--allow-rollback"), "{stderr}");

    case.home
        .ok(&["restore", backup.to_str().unwrap(), "--allow-rollback"]);
    let log = case.home.ok(&["audit", "log", "--json"]);
    assert!(log.contains("rolled_back_from"), "{log}");
    case.home.ok(&["audit", "verify"]);
    case.trace_names_bo_or_refuses();

    // Gus's id is never handed out again: Hal, added after the rollback,
    // gets another, and Gus's leak does not name him.
    let hal = case.home.ok(&["recipient", "add", "Hal", "--json"]);
    let hal: serde_json::Value = serde_json::from_str(&hal).unwrap();
    assert_eq!(hal["id"], 5, "{hal}");
    case.home.ok(&[
        "mark",
        case.home.path("call.wav").to_str().unwrap(),
        "--to",
        "Hal",
        "--out",
        case.home.path("C2").to_str().unwrap(),
    ]);
    let (_, verdict) = case.home.trace(&leak_gus);
    assert!(!accused(&verdict).contains(&"Hal".to_string()), "{verdict}");
}

/// What a killed `backup` or `restore` left is cleared by the next run:
/// a backup's staging directory beside its destination, and a restore's
/// partial ledger in the directory restored into (which a retry must not
/// refuse as "not empty").
#[test]
fn debris_of_killed_backups_and_restores_is_cleared() {
    let home = TestHome::new();
    home.ok(&["recipient", "add", "Ana"]);
    let dead = 4_194_000; // above any pid this test's machine hands out
    let staging = home.path(&format!(".B1.{dead}.partial"));
    std::fs::create_dir_all(staging.join("keystore")).unwrap();
    std::fs::write(staging.join("ledger.sqlite"), b"half a ledger").unwrap();
    let backup = home.path("B2");
    home.ok(&["backup", backup.to_str().unwrap()]);
    assert!(!staging.exists());

    let fresh = home.path("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::write(
        fresh.join(format!(".ledger.sqlite.{dead}.partial")),
        b"half",
    )
    .unwrap();
    let restored = std::process::Command::new(env!("CARGO_BIN_EXE_earmark"))
        .args(["restore", backup.to_str().unwrap()])
        .env("EARMARK_HOME", &fresh)
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
}

/// A `mark` that fails registers no work and keeps no master, whatever
/// failed: the output place, a missing encoder, or unreadable input. The
/// next work then takes the first id, as if nothing had been tried.
#[test]
fn a_failed_mark_leaves_no_work_behind() {
    let home = TestHome::new();
    home.ok(&["recipient", "add", "Ana"]);
    let speech = home.path("speech.wav");
    tool(
        "sox",
        &[
            fixture("long/long_call_en-f_it-m_8k.flac")
                .to_str()
                .unwrap(),
            speech.to_str().unwrap(),
            "trim",
            "60",
            "12",
        ],
    );
    let speech_arg = speech.to_str().unwrap();
    let refused = |out: std::process::Output, code: i32, what: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{what}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
    };
    refused(
        home.run(&["mark", speech_arg, "--all", "--out", "/proc/nope"]),
        6,
        "an output directory that cannot be made",
    );
    let no_tools = home.path("no-tools");
    std::fs::create_dir(&no_tools).unwrap();
    let out = home
        .command(&["mark", speech_arg, "--all", "--out"])
        .arg(home.path("mp3"))
        .args(["--format", "mp3"])
        .env("PATH", &no_tools)
        .output()
        .unwrap();
    refused(out, 8, "MP3 copies without ffmpeg");
    assert!(!home.path("mp3").read_dir().unwrap().any(|_| true));
    let garbage = home.path("garbage.wav");
    let mut bytes = std::fs::read(&speech).unwrap();
    bytes.truncate(44);
    bytes.extend(std::iter::repeat_n(0xA5u8, 4000));
    bytes[8..12].copy_from_slice(b"JUNK");
    std::fs::write(&garbage, bytes).unwrap();
    let out = home
        .command(&["mark", garbage.to_str().unwrap(), "--all", "--out"])
        .arg(home.path("g"))
        .output()
        .unwrap();
    refused(out, 4, "unreadable audio");

    let works = home.ok(&["work", "list"]);
    assert!(works.contains("no works registered yet"), "{works}");
    let masters: Vec<_> = std::fs::read_dir(home.root().join("masters"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(masters.is_empty(), "{masters:?}");
    home.ok(&["audit", "verify"]);
    let done = home.ok(&[
        "mark",
        speech_arg,
        "--all",
        "--out",
        home.path("C").to_str().unwrap(),
        "--json",
    ]);
    let done: serde_json::Value = serde_json::from_str(&done).unwrap();
    assert_eq!(done["work"], 1, "{done}");
}

/// The bound a verdict prints is the one held against ε: a trace at that
/// ε names Bo, one just below it names nobody and says what evidence it set
/// aside, and a far stricter ε says the same rather than that nothing was
/// found.
#[test]
fn the_printed_bound_is_the_one_compared_with_epsilon() {
    let case = Case::new();
    let (code, value) = case.home.trace(&case.leak);
    assert_eq!(code, 0, "{value}");
    assert_eq!(accused(&value), ["Bo"], "{value}");
    let bound = value["accused"][0]["false_accusation_bound"]
        .as_f64()
        .unwrap();
    let leak = case.leak.to_str().unwrap();
    let at = |epsilon: f64| {
        let out = case.home.run(&[
            "trace",
            leak,
            "--json",
            "--epsilon",
            &format!("{epsilon:e}"),
        ]);
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code().unwrap(), value)
    };
    let (code, value) = at(bound * 1.001);
    assert_eq!(
        (code, accused(&value)),
        (0, vec!["Bo".to_string()]),
        "{value}"
    );
    let (code, value) = at(bound * 0.999);
    assert_eq!(code, 3, "{value}");
    assert!(accused(&value).is_empty(), "{value}");
    assert_eq!(value["withheld"][0]["name"], "Bo", "{value}");
    let withheld = value["withheld"][0]["false_accusation_bound"]
        .as_f64()
        .unwrap();
    assert!(withheld >= bound * 0.999, "{withheld} against {bound}");

    let out = case.home.run(&["trace", leak, "--epsilon", "1e-300"]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nobody accused at ε = 1.0e-300"), "{text}");
    assert!(text.contains("withheld Bo"), "{text}");
    assert!(!text.contains("nothing found"), "{text}");
}

/// A work the ledger does not hold is its own failure, exit 14, and said
/// as such, whether traced by audio or by text.
#[test]
fn an_unknown_work_has_its_own_exit_code() {
    let case = Case::new();
    let out = case
        .home
        .run(&["trace", case.leak.to_str().unwrap(), "--work", "9"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(14), "{stderr}");
    assert!(stderr.contains("no work with id 9"), "{stderr}");
}

/// A missing helper program is exit 8 wherever it is needed: an AMR leak
/// without ffmpeg's tools, as MP3 copies without ffmpeg are.
#[test]
fn a_missing_helper_program_is_exit_8_for_reading_too() {
    let case = Case::new();
    let amr = case.home.path("leak.amr");
    let wav = case.home.path("leak.wav");
    ffmpeg(&["-i", case.leak.to_str().unwrap(), wav.to_str().unwrap()]);
    tool(
        "sox",
        &[
            wav.to_str().unwrap(),
            "-r",
            "8000",
            "-c",
            "1",
            "-t",
            "amr-nb",
            amr.to_str().unwrap(),
        ],
    );
    let no_tools = case.home.path("no-tools");
    std::fs::create_dir(&no_tools).unwrap();
    let out = case
        .home
        .command(&["trace", amr.to_str().unwrap()])
        .env("PATH", &no_tools)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("not installed"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

/// Notes print after a verdict that accuses, as they do after one that
/// does not: a leak whose file ends early names Bo and says so.
#[test]
fn notes_print_when_someone_is_accused() {
    let case = Case::new();
    let copy = common::copy_named(&case.home.path("C"), "call", "Bo", "wav");
    let bytes = std::fs::read(&copy).unwrap();
    let cut = case.home.path("cut.wav");
    std::fs::write(&cut, &bytes[..bytes.len() * 7 / 10]).unwrap();
    let out = case.home.run(&["trace", cut.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("ACCUSED Bo "), "{text}");
    assert!(text.contains("note: the file ends early"), "{text}");
}

/// A work of the other kind given by id is a usage error, said by the
/// library in words and mended by the command line's hint.
#[test]
fn a_work_of_the_other_kind_is_refused_with_the_command_to_use() {
    let case = Case::new();
    let quote = case.home.path("quote.txt");
    std::fs::write(
        &quote,
        "Please enter your password followed by the pound key.",
    )
    .unwrap();
    let out = case
        .home
        .run(&["text", "trace", quote.to_str().unwrap(), "--work", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("work 1 is a recording, not a transcript; trace it with `earmark trace`"),
        "{stderr}"
    );
}
