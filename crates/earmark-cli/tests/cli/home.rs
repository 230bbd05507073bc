//! The home, the ledger, `mark` and `trace` end to end: real recordings, real
//! codecs (ffmpeg), a real SQLite ledger file, real concurrent and killed
//! processes.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::home::{accused, TestHome};
use common::{ffmpeg, fixture};

const SPEECH: &str = "speech_en_f_8k_allison_demo-congrats.wav";

fn copy_of(out: &Path, recipient: &str) -> PathBuf {
    common::copy_named(
        out,
        "speech_en_f_8k_allison_demo-congrats",
        recipient,
        "wav",
    )
}

/// Where the copy of recipient `id`, named `rNN`, goes, before it exists.
fn copy_path(out: &Path, id: usize) -> PathBuf {
    out.join(format!(
        "speech_en_f_8k_allison_demo-congrats.r{id}-r{id:02}.wav"
    ))
}

#[test]
fn init_creates_a_private_home_once_and_other_commands_need_it() {
    let home = TestHome::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(home.root().join("keystore/master.key")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
        let dir = std::fs::metadata(home.root()).unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    }
    let again = home.run(&["init"]);
    assert_eq!(again.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let elsewhere = tempfile::tempdir().unwrap();
    for args in [
        &["recipient", "list"][..],
        &["audit", "verify"],
        &["trace", "x.wav"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_earmark"))
            .args(args)
            .env("EARMARK_HOME", elsewhere.path().join("none"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(10), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("run `earmark init` first"), "{stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_earmark"))
        .args(["recipient", "list"])
        .env_remove("EARMARK_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no home directory"));
}

#[test]
fn recipients_are_unique_and_a_bad_csv_imports_nothing() {
    let home = TestHome::new();
    home.ok(&[
        "recipient",
        "add",
        "Ana Lima",
        "--email",
        "ana@example.org",
        "--org",
        "Daily",
    ]);
    let dup = home.run(&["recipient", "add", "Ana Lima"]);
    assert_eq!(dup.status.code(), Some(12));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let csv = home.path("bad.csv");
    std::fs::write(
        &csv,
        "name,email,org\nBo,bo@x.org,A\nCy,,\n,nobody@x.org,C\nDee,,\n",
    )
    .unwrap();
    let out = home.run(&["recipient", "import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(12));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 4: a recipient needs a name (nothing imported)"),
        "{stderr}"
    );
    let list = home.ok(&["recipient", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "only Ana: {list}");

    std::fs::write(&csv, "name,email\nBo,bo@x.org\nAna Lima,\n").unwrap();
    let out = home.run(&["recipient", "import", csv.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("line 3: a recipient named 'Ana Lima' already exists"));

    std::fs::write(&csv, "name,email\nBo,bo@x.org\nCy,\n").unwrap();
    assert!(home
        .ok(&["recipient", "import", csv.to_str().unwrap()])
        .contains("imported 2"));
    let unknown = home.run(&[
        "mark",
        &fixture(SPEECH).to_string_lossy(),
        "--to",
        "Bo",
        "--to",
        "Zed",
        "--out",
        "x",
    ]);
    assert_eq!(unknown.status.code(), Some(12));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no recipient named 'Zed'"));
}

/// The mission in one test: 30 recipients, one copy leaked through MP3 64k
/// and cut to a random 10 s; trace names exactly that recipient. Marking is
/// idempotent, and the audit chain records it all.
#[test]
fn a_leaked_mp3_excerpt_names_its_recipient() {
    let home = TestHome::new();
    let out = home.mark_for(&fixture(SPEECH), 30);
    let leaker = "r17";
    let mp3 = home.path("leak.mp3");
    ffmpeg(&[
        "-i",
        copy_of(&out, leaker).to_str().unwrap(),
        "-c:a",
        "libmp3lame",
        "-b:a",
        "64k",
        mp3.to_str().unwrap(),
    ]);
    let start = common::excerpt_start(17, 30.0, 10.0);
    let clip = home.path("clip.wav");
    common::cut(&mp3, &clip, start, 10.0);
    let (code, value) = home.trace(&clip);
    assert_eq!(code, 0, "{value}");
    assert_eq!(accused(&value), vec![leaker.to_string()], "{value}");
    let a = &value["accused"][0];
    assert!(a["false_accusation_bound"].as_f64().unwrap() <= 1e-6);
    assert!(value["identifier_blocks_read"].as_u64().unwrap() >= 1);
    assert!(value["positions_read"].is_u64());
    assert_eq!(value["work"]["title"], "Demo");
    assert!(!value["segments"].as_array().unwrap().is_empty());

    // Marking again gives the identical copy.
    let before = std::fs::read(copy_of(&out, leaker)).unwrap();
    home.ok(&[
        "mark",
        fixture(SPEECH).to_str().unwrap(),
        "--to",
        leaker,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(copy_of(&out, leaker)).unwrap(), before);
    assert!(home.ok(&["audit", "verify"]).contains("audit chain intact"));
    let log = home.ok(&["audit", "log"]);
    assert!(log.contains("mark") && log.contains("trace"));
}

/// WhatsApp-style: Opus 16 kbit/s voice, 30 s.
#[test]
fn an_opus_voice_message_names_its_recipient() {
    let home = TestHome::new();
    let out = home.mark_for(&fixture(SPEECH), 5);
    let opus = home.path("leak.opus");
    common::opus_voice_16k(&copy_of(&out, "r03"), &opus);
    let (code, value) = home.trace(&opus);
    assert_eq!(code, 0, "{value}");
    assert_eq!(accused(&value), vec!["r03".to_string()]);
}

/// Lossy deliveries are marked, encoded, then checked from the encoded file;
/// each still names its recipient.
#[test]
fn mp3_and_opus_copies_are_checked_after_encoding() {
    let home = TestHome::new();
    home.ok(&["recipient", "add", "Ann"]);
    home.ok(&["recipient", "add", "Ben"]);
    let out = home.path("lossy");
    for (work, format) in [
        (SPEECH, "mp3"),
        ("speech_cs_mf_22k_fillets_kitchen_dialogue.wav", "opus"),
    ] {
        home.ok(&[
            "mark",
            fixture(work).to_str().unwrap(),
            "--all",
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        let stem = work.trim_end_matches(".wav");
        for name in ["Ann", "Ben"] {
            let copy = common::copy_named(&out, stem, name, format);
            let (code, value) = home.trace(&copy);
            assert_eq!(code, 0, "{format}: {value}");
            assert_eq!(accused(&value), vec![name.to_string()], "{format}");
        }
    }
}

/// Unmarked audio, another home's copies and a mix of two copies: nobody
/// innocent is ever named.
#[test]
fn nothing_found_is_said_and_mixes_never_name_a_third() {
    let home = TestHome::new();
    let out = home.mark_for(&fixture(SPEECH), 6);
    let (code, value) = home.trace(&fixture(SPEECH));
    assert_eq!(code, 3);
    assert_eq!(value["found"], false);
    assert!(accused(&value).is_empty());
    // The unmarked original plays the registered work, and carries no mark.
    let text = home.run(&["trace", fixture(SPEECH).to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.starts_with("nobody accused:") && text.contains("plays a registered work"),
        "{text}"
    );

    let other = TestHome::new();
    let other_out = other.mark_for(&fixture(SPEECH), 2);
    let (code, _) = home.trace(&copy_of(&other_out, "r01"));
    assert_eq!(code, 3, "another home's copy names nobody here");

    // Averages of two copies, and a splice: at most the two colluders.
    for (a, b) in [("r01", "r02"), ("r03", "r05"), ("r04", "r06")] {
        let combine = |kind: &str, filter: &str| {
            let path = home.path(&format!("{kind}-{a}-{b}.wav"));
            ffmpeg(&[
                "-i",
                copy_of(&out, a).to_str().unwrap(),
                "-i",
                copy_of(&out, b).to_str().unwrap(),
                "-filter_complex",
                filter,
                path.to_str().unwrap(),
            ]);
            path
        };
        let mix = combine("mix", "amix=inputs=2:normalize=1");
        let (_, value) = home.trace(&mix);
        for name in accused(&value) {
            assert!(
                name == a || name == b,
                "{name} accused from a mix of {a} and {b}"
            );
        }
        let splice = combine(
            "splice",
            "[0]atrim=0:15[x];[1]atrim=15:30,asetpts=PTS-STARTPTS[y];[x][y]concat=n=2:v=0:a=1",
        );
        let (code, value) = home.trace(&splice);
        assert_eq!(code, 0);
        let mut names = accused(&value);
        names.sort();
        assert_eq!(
            names,
            vec![a.to_string(), b.to_string()],
            "a splice names both"
        );
    }
}

/// Runs `f` on a direct connection to the home's ledger file.
fn with_ledger<T>(home: &TestHome, f: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> T) -> T {
    common::ledger::with_sqlite(&home.root().join("ledger.sqlite"), false, f)
}

fn ledger_sql(home: &TestHome, statements: &[&'static str]) {
    with_ledger(home, async |conn| {
        for s in statements {
            sqlx::query(*s).execute(&mut *conn).await.unwrap();
        }
    });
}

#[test]
fn audit_verify_detects_edited_and_deleted_rows() {
    let home = TestHome::new();
    for name in ["a", "b", "c", "d"] {
        home.ok(&["recipient", "add", name]);
    }
    assert!(home.ok(&["audit", "verify"]).contains("4 rows"));
    // The log refuses edits through SQL...
    let refused = std::panic::catch_unwind(|| {
        ledger_sql(&home, &["UPDATE audit SET detail = '{}' WHERE seq = 2"])
    });
    assert!(refused.is_err(), "the append-only trigger refuses updates");
    // ...and whoever removes the triggers is caught by the chain.
    ledger_sql(
        &home,
        &[
            "DROP TRIGGER audit_no_update",
            "DROP TRIGGER audit_no_delete",
            "UPDATE audit SET detail = '{\"added\":9}' WHERE seq = 2",
        ],
    );
    let out = home.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&out.stderr).contains("row 2 was altered"));

    let fresh = TestHome::new();
    for name in ["a", "b", "c"] {
        fresh.ok(&["recipient", "add", name]);
    }
    ledger_sql(
        &fresh,
        &[
            "DROP TRIGGER audit_no_delete",
            "DELETE FROM audit WHERE seq = 3",
        ],
    );
    let out = fresh.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rows 3–3 were deleted"));
}

/// Checks what a `mark` run left: every recorded copy exists with its hash,
/// every copy in place decodes whole and is recorded, and the chain holds.
fn assert_consistent(home: &TestHome, out: &Path) {
    let rows: Vec<(String, String)> = with_ledger(home, async |conn| {
        use sqlx::Row;
        let rows = sqlx::query("SELECT path, output_hash FROM copies")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        rows.iter()
            .map(|r| (r.get("path"), r.get("output_hash")))
            .collect()
    });
    for (path, hash) in &rows {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("recorded copy {path}: {e}"));
        use sha2::Digest;
        let actual: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(&actual, hash, "{path}");
    }
    if out.exists() {
        for entry in std::fs::read_dir(out).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue; // partial work of a killed run, never a copy
            }
            let audio = earmark_audio_io::read(&path).expect("a copy in place is complete");
            assert_eq!(audio.frames(), 242_214, "{name}");
        }
    }
    assert!(home.ok(&["audit", "verify"]).contains("audit chain intact"));
}

#[test]
fn concurrent_marks_both_succeed_and_killed_marks_leave_no_half_copies() {
    let home = TestHome::new();
    let csv = home.path("people.csv");
    let mut text = String::from("name\n");
    for i in 1..=12 {
        text.push_str(&format!("p{i:02}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    home.ok(&["recipient", "import", csv.to_str().unwrap()]);
    let out = home.path("copies");
    let work = fixture(SPEECH);
    let spawn = |to: &str| {
        let mut args = vec!["mark", work.to_str().unwrap()];
        for name in to.split(',') {
            args.extend(["--to", name]);
        }
        args.extend(["--out", out.to_str().unwrap()]);
        home.command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn("p01,p02,p03");
    let second = spawn("p04,p05,p06");
    for child in [first, second] {
        let done = child.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    assert_consistent(&home, &out);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 6);

    // Kill runs at several moments; each leaves a consistent ledger and directory.
    for delay_ms in [50u64, 150, 300, 600] {
        let mut child = spawn("p07,p08,p09,p10,p11,p12");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        assert_consistent(&home, &out);
    }
    // A rerun completes what was interrupted.
    home.ok(&[
        "mark",
        work.to_str().unwrap(),
        "--all",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_consistent(&home, &out);
    let copies = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(copies, 12);
}

/// `mark` keeps the master byte for byte; `work list` and `work show` report
/// it; `work forget` asks for confirmation, removes it, is audited, and
/// tracing still works (blind).
#[test]
fn masters_are_kept_listed_and_forgotten_on_confirmation() {
    let home = TestHome::new();
    let out = home.mark_for(&fixture(SPEECH), 3);
    let list: serde_json::Value =
        serde_json::from_str(&home.ok(&["work", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let work = &list[0];
    assert_eq!(work["id"], 1);
    assert_eq!(work["title"], "Demo");
    assert_eq!(work["recipients"], 3);
    assert_eq!(work["rate"], 8000);
    assert_eq!(work["master_kept"], true);
    let master = home
        .root()
        .join("masters")
        .join(work["content_hash"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&master).unwrap(),
        std::fs::read(fixture(SPEECH)).unwrap()
    );
    let show: serde_json::Value =
        serde_json::from_str(&home.ok(&["work", "show", "1", "--json"])).unwrap();
    assert_eq!(show["copies"].as_array().unwrap().len(), 3);
    assert_eq!(show["copies"][0]["recipient"], "r01");

    // Without --yes and without a terminal to ask on: refused, nothing removed.
    let refused = home.run(&["work", "forget", "1"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert!(master.is_file());
    let text = home.ok(&["work", "forget", "1", "--yes"]);
    assert!(text.contains("blind"), "{text}");
    assert!(!master.exists());
    let list: serde_json::Value =
        serde_json::from_str(&home.ok(&["work", "list", "--json"])).unwrap();
    assert_eq!(list[0]["master_kept"], false);
    assert!(home.ok(&["audit", "log"]).contains("forget"));
    home.ok(&["audit", "verify"]);
    let (code, value) = home.trace(&copy_of(&out, "r02"));
    assert_eq!(code, 0);
    assert_eq!(accused(&value), ["r02"]);
    assert_eq!(value["method"], "blind");
    // An unknown work is refused.
    assert_ne!(home.run(&["work", "show", "9"]).status.code(), Some(0));
}

#[test]
fn an_epsilon_that_is_not_a_probability_is_refused_before_any_verdict() {
    let home = TestHome::new();
    home.mark_for(&fixture(SPEECH), 3);
    // The unmarked master of a registered work: nobody must ever be named.
    let master = fixture(SPEECH);
    let transcript = fixture("transcripts/asterisk-prompts.srt");
    for bad in ["NaN", "0", "1", "2", "-1", "abc", "inf"] {
        for args in [
            vec!["trace", master.to_str().unwrap(), "--epsilon", bad],
            vec![
                "text",
                "trace",
                transcript.to_str().unwrap(),
                "--epsilon",
                bad,
            ],
        ] {
            let out = home.run(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
            assert!(stderr.contains("epsilon"), "{stderr}");
            assert!(!String::from_utf8_lossy(&out.stdout).contains("ACCUSED"));
        }
    }
    let (code, value) = home.trace(&master);
    assert_eq!(code, 3, "{value}");
    assert!(accused(&value).is_empty());
}

#[test]
fn key_files_with_non_ascii_or_odd_length_hex_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    for text in [
        format!("earmark-key-v1 a\u{e9}{}\n", "0".repeat(61)),
        format!("earmark-key-v1 {}\n", "0".repeat(63)),
        format!("earmark-key-v1 {}\u{1F600}\n", "0".repeat(60)),
    ] {
        std::fs::write(&key, text).unwrap();
        let out = common::earmark(&[
            "extract",
            fixture(SPEECH).to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn a_damaged_landmark_index_is_rebuilt_from_the_masters() {
    let home = TestHome::new();
    let out = home.mark_for(&fixture(SPEECH), 3);
    let index = home.root().join("landmarks.idx");
    let whole = std::fs::metadata(&index).unwrap().len();
    std::fs::write(&index, b"damaged").unwrap();
    // Tracing rebuilds what it reads...
    let (code, value) = home.trace(&copy_of(&out, "r02"));
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["method"], "informed", "{value}");
    assert_eq!(accused(&value), vec!["r02".to_string()]);
    // ...and marking another work keeps every other work's landmarks.
    std::fs::write(&index, b"damaged").unwrap();
    home.ok(&[
        "mark",
        fixture("speech_cs_mf_22k_fillets_kitchen_dialogue.wav")
            .to_str()
            .unwrap(),
        "--all",
        "--out",
        home.path("dialogue").to_str().unwrap(),
    ]);
    assert!(std::fs::metadata(&index).unwrap().len() > whole);
    let (code, value) = home.trace(&copy_of(&out, "r03"));
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["method"], "informed", "{value}");
    assert_eq!(value["work"]["id"], 1, "{value}");
    assert_eq!(accused(&value), vec!["r03".to_string()]);
}

/// A recipient row deleted behind the ledger's back: the integrity check
/// names the copy that points at nobody, and nobody is accused.
#[test]
fn a_copy_naming_a_recipient_missing_from_the_ledger_accuses_nobody() {
    let home = TestHome::new();
    let out = home.mark_for(&fixture(SPEECH), 3);
    let leak = copy_of(&out, "r02");
    ledger_sql(
        &home,
        &[
            "PRAGMA foreign_keys = OFF",
            "DELETE FROM recipients WHERE name = 'r02'",
        ],
    );
    let traced = home.run(&["trace", leak.to_str().unwrap(), "--json"]);
    assert_eq!(traced.status.code(), Some(11));
    assert!(traced.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&traced.stderr);
    assert!(
        stderr.contains("names recipient 2, who is not in the ledger"),
        "{stderr}"
    );
}

#[test]
fn mark_delivers_and_records_every_copy_or_none() {
    let home = TestHome::new();
    for name in ["r01", "r02", "r03"] {
        home.ok(&["recipient", "add", name]);
    }
    let out = home.path("copies");
    // r02's copy cannot be put in place: its name is taken by a directory.
    std::fs::create_dir_all(copy_path(&out, 2).join("blocked")).unwrap();
    let speech = fixture(SPEECH);
    let args = [
        "mark",
        speech.to_str().unwrap(),
        "--all",
        "--out",
        out.to_str().unwrap(),
    ];
    let failed = home.run(&args);
    assert_ne!(failed.status.code(), Some(0));
    assert_ne!(failed.status.code(), Some(101));
    assert!(!copy_path(&out, 1).exists());
    assert!(!copy_path(&out, 3).exists());
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let copies = with_ledger(&home, async |conn| {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM copies")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get::<i64, _>("n")
    });
    assert_eq!(copies, 0);
    // A rerun once the obstacle is gone completes the set.
    std::fs::remove_dir_all(copy_path(&out, 2)).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&home.ok(&[&args[..], &["--json"]].concat())).unwrap();
    assert_eq!(json["copies"].as_array().unwrap().len(), 3, "{json}");
    for r in ["r01", "r02", "r03"] {
        assert!(copy_of(&out, r).is_file());
    }
    assert_consistent(&home, &out);
    assert!(home.ok(&["audit", "verify"]).contains("audit chain intact"));
}
