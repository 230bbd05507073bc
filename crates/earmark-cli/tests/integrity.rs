//! Records a verdict can rely on: recipient names that cannot forge output or
//! pass for one another, and a ledger file that holds the whole ledger.

mod common;

use common::home::TestHome;

fn refused(home: &TestHome, args: &[&str], needle: &str) {
    let out = home.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(12), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

#[test]
fn names_that_forge_lines_or_pass_for_others_are_refused() {
    let home = TestHome::new();
    home.ok(&["recipient", "add", "Bob"]);
    home.ok(&["recipient", "add", "Jose\u{301}"]); // NFD: stored as NFC
    refused(
        &home,
        &["recipient", "add", "x\nACCUSED Bob"],
        "invisible or control character U+000A",
    );
    refused(
        &home,
        &["recipient", "add", "Bob\u{200b}"],
        "invisible or control character U+200B",
    );
    refused(
        &home,
        &["recipient", "add", "\u{412}ob"],
        "looks like that of the existing recipient 'Bob'",
    );
    refused(&home, &["recipient", "add", "bob"], "'Bob'");
    refused(&home, &["recipient", "add", "Jos\u{e9}"], "already exists");
    refused(
        &home,
        &["recipient", "add", &"a".repeat(201)],
        "at most 200",
    );
    refused(&home, &["recipient", "add", "   "], "needs a name");

    let csv = home.path("people.csv");
    std::fs::write(&csv, "name\nCy\n\u{412}ob\n").unwrap();
    refused(
        &home,
        &["recipient", "import", csv.to_str().unwrap()],
        "line 3: the name '\u{412}ob' looks like 'Bob'",
    );
    std::fs::write(&csv, "name\nCy\nC\u{443}\n").unwrap(); // Cyrillic u
    refused(
        &home,
        &["recipient", "import", csv.to_str().unwrap()],
        "looks like 'Cy'",
    );

    let list = home.ok(&["recipient", "list"]);
    let names: Vec<&str> = list
        .lines()
        .filter(|l| l.contains("Bob") || l.contains("Jos"))
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(list.contains("Jos\u{e9}"), "{list}");
    assert!(!list.contains("ACCUSED") && !list.contains("Cy"), "{list}");
}

#[test]
fn the_ledger_file_alone_holds_the_whole_ledger_after_each_command() {
    let home = TestHome::new();
    for name in ["Ana", "Bo", "Cy"] {
        home.ok(&["recipient", "add", name]);
    }
    let wal = home.root().join("ledger.sqlite-wal");
    let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(wal_bytes, 0, "the write-ahead log still holds records");

    // A copy of ledger.sqlite by itself, as a backup by hand would take.
    let copy = home.path("copy.sqlite");
    std::fs::copy(home.root().join("ledger.sqlite"), &copy).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let count: i64 = runtime.block_on(async {
        use sqlx::{Connection, Row};
        let url = format!("sqlite://{}?mode=ro", copy.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let row = sqlx::query("SELECT COUNT(*) FROM recipients")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        row.get(0)
    });
    assert_eq!(count, 3);
}

/// `mark` hashed its input before looking at it, so a device or a FIFO
/// hung it; now it is refused at once and nothing is recorded.
#[test]
fn mark_refuses_devices_and_pipes_at_once() {
    let home = TestHome::new();
    home.ok(&["recipient", "add", "Ana"]);
    let fifo = home.path("call.wav");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out_dir = home.path("copies");
    for input in [fifo.to_str().unwrap(), "/dev/zero"] {
        let out = home.run(&["mark", input, "--all", "--out", out_dir.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{input}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{stderr}");
    }
    assert!(home
        .ok(&["work", "list"])
        .lines()
        .all(|l| !l.contains("call")));
}

/// A reader that stops early (`| head -1`) ends the command quietly with
/// success instead of a panic; 3,000 recipients are far more than a pipe
/// buffers, so the write really fails.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    let home = TestHome::new();
    let csv = home.path("many.csv");
    let mut text = String::from("name\n");
    for i in 0..3_000 {
        text.push_str(&format!("Person number {i:05} of the press office\n"));
    }
    std::fs::write(&csv, text).unwrap();
    home.ok(&["recipient", "import", csv.to_str().unwrap()]);
    for listing in ["recipient list", "recipient list --json", "audit log"] {
        let script =
            format!("\"$0\" {listing} | head -c 10 >/dev/null; echo \"status ${{PIPESTATUS[0]}}\"");
        let out = std::process::Command::new("bash")
            .args(["-c", &script, env!("CARGO_BIN_EXE_earmark")])
            .env("EARMARK_HOME", home.root())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stdout.contains("status 0"), "{listing}: {stdout} {stderr}");
        assert!(!stderr.contains("panicked"), "{listing}: {stderr}");
        assert!(stderr.trim().is_empty(), "{listing}: {stderr}");
    }
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The home, its key, ledger and masters are private whatever the modes of
/// what they come from: `init` tightens an existing 0755 directory, and a
/// 0777 input gives a 0600 master in a 0700 store. A temporary file left by
/// a killed run goes on the next one; a live run's stays.
#[test]
fn home_files_are_private_and_stale_partials_go() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shared");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_earmark"))
            .args(args)
            .env("EARMARK_HOME", &root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["init"]);
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("keystore")), 0o700);
    assert_eq!(mode(&root.join("keystore/master.key")), 0o600);
    assert_eq!(mode(&root.join("ledger.sqlite")), 0o600);

    let input = dir.path().join("call.wav");
    std::fs::copy(
        common::fixture("speech_en_f_8k_allison_demo-congrats.wav"),
        &input,
    )
    .unwrap();
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o777)).unwrap();
    run(&["recipient", "add", "Ana"]);
    let copies = dir.path().join("copies");
    run(&[
        "mark",
        input.to_str().unwrap(),
        "--all",
        "--out",
        copies.to_str().unwrap(),
    ]);
    let masters = root.join("masters");
    assert_eq!(mode(&masters), 0o700);
    let stored: Vec<_> = std::fs::read_dir(&masters)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(mode(&stored[0]), 0o600);

    let finished = std::process::Command::new("true").spawn().unwrap();
    let dead = finished.id();
    let mut finished = finished;
    finished.wait().unwrap();
    let stale = masters.join(format!(".abcd.{dead}.partial"));
    let live = masters.join(format!(".abcd.{}.partial", std::process::id()));
    std::fs::write(&stale, b"half a master").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    run(&["work", "list"]);
    assert!(!stale.exists(), "a dead run's temporary file stays");
    assert!(live.exists(), "a live run's temporary file went");
}

/// A lost, emptied or swapped ledger is refused (exit 11), never replaced by
/// a new one: identifiers restarting at 1 under the same key would make an
/// old leak accuse whoever is added next.
#[test]
fn a_lost_or_foreign_ledger_is_refused_not_recreated() {
    let home = TestHome::new();
    assert_eq!(mode(&home.root().join("home.id")), 0o600);
    home.ok(&["recipient", "add", "Ana"]);
    home.ok(&[
        "mark",
        common::fixture("speech_en_f_8k_allison_demo-congrats.wav")
            .to_str()
            .unwrap(),
        "--all",
        "--out",
        home.path("copies").to_str().unwrap(),
    ]);
    let ledger = home.root().join("ledger.sqlite");
    let saved = std::fs::read(&ledger).unwrap();
    let refused = |needle: &str| {
        for args in [
            &["recipient", "list"][..],
            &["trace", "x.wav"],
            &["audit", "verify"],
        ] {
            let out = home.run(args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(11), "{args:?}: {stderr}");
            assert!(stderr.contains(needle), "{args:?}: {stderr}");
            assert!(
                stderr.contains("Restore ledger.sqlite from a backup"),
                "{stderr}"
            );
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        }
    };

    std::fs::write(&ledger, b"").unwrap();
    refused("the file is empty");
    assert_eq!(
        std::fs::metadata(&ledger).unwrap().len(),
        0,
        "the ledger was re-created"
    );

    std::fs::remove_file(&ledger).unwrap();
    refused("the file is missing");
    assert_eq!(home.run(&["init"]).status.code(), Some(10));

    let other = TestHome::new();
    std::fs::copy(other.root().join("ledger.sqlite"), &ledger).unwrap();
    refused("belongs to the home");

    std::fs::write(&ledger, &saved).unwrap();
    assert!(home.ok(&["recipient", "list"]).contains("Ana"));
    home.ok(&["audit", "verify"]);
}
