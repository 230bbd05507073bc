//! Records a verdict can rely on: recipient names that cannot forge output or
//! pass for one another, and a ledger file that holds the whole ledger.

use crate::common;

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
    let count: i64 = common::ledger::query_one(&copy, "SELECT COUNT(*) FROM recipients");
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

/// Runs SQL statements on a ledger file directly, as someone with write
/// access to the database (but not the home's key) could.
/// The copy in `dir` whose file name mentions `who`.
fn copy_of(dir: &std::path::Path, who: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().contains(who))
        .unwrap_or_else(|| panic!("no copy for {who} in {}", dir.display()))
}

/// Swapped names, a copy moved to someone else, a deleted copy row and a
/// chain cut short with its head rewritten: each once made `trace` accuse
/// the wrong person or nobody while `audit verify` said intact. Now every
/// row a verdict reads carries a MAC, the head is MAC'd and the copies are
/// checked against the chain: exit 11, the row named, nobody accused.
#[test]
fn records_altered_behind_the_ledgers_back_accuse_nobody() {
    let home = TestHome::new();
    let copies = home.mark_for(
        &common::fixture("speech_en_f_8k_allison_demo-congrats.wav"),
        3,
    );
    let leak = copy_of(&copies, "r03");
    let (code, verdict) = home.trace(&leak);
    assert_eq!(code, 0);
    assert_eq!(common::home::accused(&verdict), ["r03"]);
    let intact = home.ok(&["audit", "verify"]);
    assert!(
        intact.contains("3 recipients, 1 work and 3 copies authenticated"),
        "{intact}"
    );

    let ledger = home.root().join("ledger.sqlite");
    let head = home.root().join("audit.head");
    let saved = (
        std::fs::read(&ledger).unwrap(),
        std::fs::read(&head).unwrap(),
    );
    let restore = || {
        std::fs::write(&ledger, &saved.0).unwrap();
        std::fs::write(&head, &saved.1).unwrap();
    };
    // A trace names the first altered row it reads, `audit verify` the
    // first in the ledger: either of `rows` when the edit touched several.
    let refused_naming = |rows: &[&str]| {
        for args in [
            vec!["trace", leak.to_str().unwrap(), "--json"],
            vec!["audit", "verify"],
        ] {
            let out = home.run(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(11), "{args:?}: {stderr}");
            assert!(
                rows.iter().any(|needle| stderr.contains(needle)),
                "{args:?}: {stderr}"
            );
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
            assert!(!String::from_utf8_lossy(&out.stdout).contains("r01"));
        }
    };
    let refused = |needle: &str| refused_naming(&[needle]);

    common::ledger::tamper(
        &ledger,
        &[
            "UPDATE recipients SET name = 'tmp' WHERE name = 'r01'",
            "UPDATE recipients SET name = 'r01' WHERE name = 'r03'",
            "UPDATE recipients SET name = 'r03' WHERE name = 'tmp'",
        ],
    );
    refused_naming(&["recipient row 1 was altered", "recipient row 3 was altered"]);
    restore();

    common::ledger::tamper(
        &ledger,
        &[
            "UPDATE copies SET recipient_id = 999 WHERE recipient_id = 1",
            "UPDATE copies SET recipient_id = 1 WHERE recipient_id = 3",
            "UPDATE copies SET recipient_id = 3 WHERE recipient_id = 999",
        ],
    );
    refused_naming(&["copy row 1 was altered", "copy row 3 was altered"]);
    restore();

    common::ledger::tamper(&ledger, &["DELETE FROM copies WHERE recipient_id = 3"]);
    refused("is missing from the copies table");
    restore();

    // A row forged with a MAC copied from another row.
    common::ledger::tamper(
        &ledger,
        &["UPDATE recipients SET mac = (SELECT mac FROM recipients WHERE id = 1) WHERE id = 2"],
    );
    refused("recipient row 2 was altered");
    restore();

    // The newest audit rows deleted and the head rewritten to match, first
    // without a MAC, then with the old head's MAC.
    let head_text = String::from_utf8(saved.1.clone()).unwrap();
    let seq: i64 = head_text
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let delete = format!("DELETE FROM audit WHERE seq = {seq}");
    common::ledger::tamper(&ledger, &["DROP TRIGGER audit_no_delete", &delete]);
    let earlier = |with_mac: &str| {
        let hash: String =
            common::ledger::query_one(&ledger, "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1");
        format!("{} {hash}{with_mac}\n", seq - 1)
    };
    std::fs::write(&head, earlier("")).unwrap();
    refused("the recorded head of the audit chain is not authenticated");
    let old_mac = head_text.split_whitespace().nth(2).unwrap().to_string();
    std::fs::write(&head, earlier(&format!(" {old_mac}"))).unwrap();
    refused("audit.head) was altered");
    restore();

    let (code, verdict) = home.trace(&leak);
    assert_eq!(code, 0);
    assert_eq!(common::home::accused(&verdict), ["r03"]);
}

/// A ledger written before rows carried MACs is sealed once, on the first
/// open, when its chain is intact; its old leaks trace as before.
#[test]
fn an_older_ledger_is_sealed_on_first_open() {
    let home = TestHome::new();
    let copies = home.mark_for(
        &common::fixture("speech_en_f_8k_allison_demo-congrats.wav"),
        2,
    );
    let ledger = home.root().join("ledger.sqlite");
    // Back to the schema and head format such homes have.
    common::ledger::tamper(
        &ledger,
        &[
            "ALTER TABLE recipients DROP COLUMN mac",
            "ALTER TABLE recipients DROP COLUMN retired_at",
            "ALTER TABLE works DROP COLUMN mac",
            "ALTER TABLE copies DROP COLUMN mac",
            "DROP TABLE ledger_upgrade",
            "DELETE FROM _sqlx_migrations WHERE version = 4",
        ],
    );
    let head = home.root().join("audit.head");
    let text = std::fs::read_to_string(&head).unwrap();
    let unsealed: Vec<&str> = text.split_whitespace().take(2).collect();
    std::fs::write(&head, format!("{}\n", unsealed.join(" "))).unwrap();

    let intact = home.ok(&["audit", "verify"]);
    assert!(intact.contains("2 copies authenticated"), "{intact}");
    assert_eq!(
        std::fs::read_to_string(&head)
            .unwrap()
            .split_whitespace()
            .count(),
        4
    );
    let (code, verdict) = home.trace(&copy_of(&copies, "r02"));
    assert_eq!(code, 0);
    assert_eq!(common::home::accused(&verdict), ["r02"]);
}

/// "Ana Lima", "Ana.Lima", "Ana_Lima" and "Ana,Lima" all slug to `Ana_Lima`,
/// and a name of symbols only to nothing: their copies once overwrote one
/// another, and a trace accused whoever's mark won. File names now carry
/// the ledger id, so each recipient gets a file of their own, audio and
/// text alike, and each copy traces to its holder.
#[test]
fn names_that_slug_alike_get_files_of_their_own() {
    let home = TestHome::new();
    let people = ["Ana Lima", "Ana.Lima", "Ana_Lima", "Ana,Lima", "\u{1F600}"];
    for name in people {
        home.ok(&["recipient", "add", name]);
    }
    let out = home.path("copies");
    home.ok(&[
        "mark",
        common::fixture("speech_en_f_8k_allison_demo-congrats.wav")
            .to_str()
            .unwrap(),
        "--all",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "speech_en_f_8k_allison_demo-congrats.r1-Ana_Lima.wav",
            "speech_en_f_8k_allison_demo-congrats.r2-Ana_Lima.wav",
            "speech_en_f_8k_allison_demo-congrats.r3-Ana_Lima.wav",
            "speech_en_f_8k_allison_demo-congrats.r4-Ana_Lima.wav",
            "speech_en_f_8k_allison_demo-congrats.r5.wav",
        ]
    );
    for (file, who) in [(&files[1], "Ana.Lima"), (&files[3], "Ana,Lima")] {
        let (code, verdict) = home.trace(&out.join(file));
        assert_eq!(code, 0, "{verdict}");
        assert_eq!(common::home::accused(&verdict), [who]);
    }

    let texts = home.path("texts");
    home.ok(&[
        "text",
        "mark",
        common::fixture("transcripts/asterisk-core-sounds-en.txt")
            .to_str()
            .unwrap(),
        "--all",
        "--out",
        texts.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_dir(&texts).unwrap().count(), people.len());
}

/// `recipient rename` keeps the id (so every copy still names the person,
/// under the new name); `recipient remove` deletes someone who holds no
/// copy and retires someone who does: kept for tracing, never marked again.
/// Both are audited and leave the ledger verifiable.
#[test]
fn recipients_are_renamed_and_removed_without_losing_their_copies() {
    let home = TestHome::new();
    for name in ["Ana", "Bo", "Cy"] {
        home.ok(&["recipient", "add", name]);
    }
    let work = common::fixture("speech_en_f_8k_allison_demo-congrats.wav");
    let out = home.path("copies");
    let mark = |who: &[&str], dir: &std::path::Path| {
        let mut args = vec![
            "mark",
            work.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ];
        args.extend_from_slice(who);
        home.run(&args)
    };
    assert!(mark(&["--to", "Ana", "--to", "Bo"], &out).status.success());
    let bo_copy = copy_of(&out, "Bo");
    let ana_copy = copy_of(&out, "Ana");

    assert!(home
        .ok(&["recipient", "rename", "Bo", "Bo Berg"])
        .contains("renamed recipient 2 to Bo Berg"));
    refused(
        &home,
        &["recipient", "rename", "Bo Berg", "Ana"],
        "already exists",
    );
    refused(
        &home,
        &["recipient", "rename", "Cy", "Ana\u{200b}"],
        "invisible",
    );
    refused(
        &home,
        &["recipient", "rename", "Nobody", "X"],
        "no recipient named",
    );
    let (code, verdict) = home.trace(&bo_copy);
    assert_eq!(code, 0);
    assert_eq!(common::home::accused(&verdict), ["Bo Berg"]);

    assert!(home
        .ok(&["recipient", "remove", "Cy"])
        .contains("removed recipient Cy"));
    assert!(home
        .ok(&["recipient", "remove", "Ana"])
        .contains("retired recipient Ana"));
    let list = home.ok(&["recipient", "list"]);
    assert!(!list.contains("Cy"), "{list}");
    assert!(
        list.contains("Ana") && list.contains("removed; holds copies"),
        "{list}"
    );
    let (code, verdict) = home.trace(&ana_copy);
    assert_eq!(code, 0);
    assert_eq!(common::home::accused(&verdict), ["Ana"]);

    // A retired recipient is left out of --all and refused by name.
    let again = home.path("again");
    let out_all = mark(&["--all"], &again);
    assert!(out_all.status.success());
    assert_eq!(std::fs::read_dir(&again).unwrap().count(), 1);
    let refused_mark = mark(&["--to", "Ana"], &home.path("refused"));
    assert_eq!(refused_mark.status.code(), Some(12));
    assert!(String::from_utf8_lossy(&refused_mark.stderr).contains("was removed"));

    home.ok(&["audit", "verify"]);
    let log = home.ok(&["audit", "log"]);
    for needle in [r#""renamed":2"#, r#""removed":3"#, r#""retired":1"#] {
        assert!(log.contains(needle), "{needle}: {log}");
    }
}

/// `backup` takes a consistent copy; `restore` from it alone brings back a
/// home whose ledger was lost, or the whole home, and an old leak traces to
/// the same verdict. An intact home, another home and a backup without its
/// key are refused.
#[test]
fn a_home_restored_from_its_backup_gives_the_same_verdict() {
    let home = TestHome::new();
    let copies = home.mark_for(
        &common::fixture("speech_en_f_8k_allison_demo-congrats.wav"),
        3,
    );
    let leak = copy_of(&copies, "r02");
    let verdict_of = |home: &TestHome| {
        let (code, verdict) = home.trace(&leak);
        assert_eq!(code, 0, "{verdict}");
        (
            common::home::accused(&verdict),
            verdict["accused"][0]["false_accusation_bound"].clone(),
            verdict["work"]["id"].clone(),
        )
    };
    let before = verdict_of(&home);
    assert_eq!(before.0, ["r02"]);

    let backup = home.path("backup");
    let said = home.ok(&["backup", backup.to_str().unwrap()]);
    assert!(
        said.contains("3 recipients, 1 work, 3 copies and 1 master"),
        "{said}"
    );
    assert_eq!(mode(&backup), 0o700);
    assert_eq!(mode(&backup.join("keystore/master.key")), 0o600);
    assert_eq!(mode(&backup.join("ledger.sqlite")), 0o600);
    let again = home.run(&["backup", backup.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(6));

    // An intact home is never overwritten.
    let refused = home.run(&["restore", backup.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is intact"));

    // The ledger lost, its write-ahead log left behind.
    let ledger = home.root().join("ledger.sqlite");
    std::fs::remove_file(&ledger).unwrap();
    std::fs::write(home.root().join("ledger.sqlite-wal"), b"stale log").unwrap();
    assert_eq!(
        home.run(&["trace", leak.to_str().unwrap()]).status.code(),
        Some(11)
    );
    let said = home.ok(&["restore", backup.to_str().unwrap()]);
    assert!(said.contains("3 copies authenticated"), "{said}");
    assert_eq!(verdict_of(&home), before);
    home.ok(&["audit", "verify"]);

    // The whole home lost.
    std::fs::remove_dir_all(home.root()).unwrap();
    home.ok(&["restore", backup.to_str().unwrap()]);
    assert_eq!(mode(&home.root().join("keystore/master.key")), 0o600);
    assert_eq!(verdict_of(&home), before);

    // Another home is not this one.
    let other = TestHome::new();
    std::fs::remove_file(other.root().join("ledger.sqlite")).unwrap();
    let foreign = other.run(&["restore", backup.to_str().unwrap()]);
    assert_eq!(foreign.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&foreign.stderr).contains("another master key"));

    // Without the key in it, a backup restores only with --key.
    let keyless = home.path("keyless");
    home.ok(&["backup", keyless.to_str().unwrap(), "--without-key"]);
    assert!(!keyless.join("keystore").exists());
    let elsewhere = home.path("elsewhere");
    let restore_to = |extra: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_earmark"));
        command
            .args(["restore", keyless.to_str().unwrap()])
            .args(extra)
            .env("EARMARK_HOME", &elsewhere);
        command.output().unwrap()
    };
    let no_key = restore_to(&[]);
    assert_eq!(no_key.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("--key"));
    let key = home.root().join("keystore/master.key");
    assert!(restore_to(&["--key", key.to_str().unwrap()])
        .status
        .success());
}

/// A payload opens only in its own home, and the recording must agree: an
/// identifier read from audio that is not its work (here work 1's payload
/// embedded, by someone holding the key, into another recording) accuses
/// nobody once the leak fails to register against work 1's master.
#[test]
fn an_identifier_on_the_wrong_recording_accuses_nobody() {
    let home = TestHome::new();
    let copies = home.mark_for(
        &common::fixture("speech_en_f_8k_allison_demo-congrats.wav"),
        2,
    );
    let (code, verdict) = home.trace(&copy_of(&copies, "r01"));
    assert_eq!(
        (code, common::home::accused(&verdict)),
        (0, vec!["r01".to_string()])
    );

    let payload: String = common::ledger::query_one(
        &home.root().join("ledger.sqlite"),
        "SELECT payload FROM copies WHERE recipient_id = 1",
    );
    let master = std::fs::read_to_string(home.root().join("keystore/master.key")).unwrap();
    let engine_key = earmark_keys::SecretKey::from_file_text(&master)
        .unwrap()
        .derive(earmark_keys::Label("earmark/v1/home/engine-key"));
    let key_file = home.path("engine.key");
    std::fs::write(&key_file, engine_key.to_file_text().as_bytes()).unwrap();
    let forged = home.path("forged.wav");
    home.ok(&[
        "embed",
        common::fixture("speech_cs_mf_22k_fillets_kitchen_dialogue.wav")
            .to_str()
            .unwrap(),
        forged.to_str().unwrap(),
        "--key",
        key_file.to_str().unwrap(),
        "--payload",
        &payload,
    ]);
    let out = home.run(&["trace", forged.to_str().unwrap(), "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(3), "{value}");
    assert!(common::home::accused(&value).is_empty(), "{value}");
    assert!(
        value["notes"]
            .to_string()
            .contains("does not match its master"),
        "{value}"
    );
}

/// Two look-alike names added at the same moment: the check runs inside
/// the transaction that inserts, so exactly one gets in, whatever the
/// timing.
#[test]
fn concurrent_look_alikes_cannot_both_get_in() {
    for _ in 0..5 {
        let home = TestHome::new();
        let added: Vec<bool> = std::thread::scope(|scope| {
            let runs: Vec<_> = ["Bob", "\u{412}ob"]
                .into_iter()
                .map(|name| {
                    let home = &home;
                    scope.spawn(move || home.run(&["recipient", "add", name]).status.success())
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(added.iter().filter(|&&ok| ok).count(), 1, "{added:?}");
        let list = home.ok(&["recipient", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    }
}
