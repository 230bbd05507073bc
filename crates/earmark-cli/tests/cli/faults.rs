//! Faults, as tests: runs killed at random points, a full disk and a
//! read-only home. After each, what a user relies on still holds: the
//! ledger verifies, every recorded copy exists with its hash, no partial
//! file survives the next run, and nobody innocent is accused.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::fixture;
use common::home::TestHome;

const SPEECH: &str = "speech_en_f_8k_allison_demo-congrats.wav";
const TRANSCRIPT: &str = "transcripts/asterisk-core-sounds-en.txt";
/// Seed of the kill times: the same kills on every run.
const KILL_SEED: u64 = 0x6b69_6c6c_2d39;
/// Kills of each of the five commands: 7 in the full matrix, 3 otherwise
/// (the first three of the same seeded sequence).
fn kills_per_command() -> usize {
    if common::full_matrices() {
        7
    } else {
        3
    }
}

/// splitmix64: the kill times, from [`KILL_SEED`].
struct KillTimes(u64);

impl KillTimes {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / 2f64.powi(64)
    }
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Files under `dir` (one level, and `masters`/`keystore` below a home)
/// whose names mark them as temporary.
fn partials(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("masters"), dir.join("keystore")] {
        if let Ok(entries) = std::fs::read_dir(&sub) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().contains(".partial") {
                    found.push(e.path());
                }
            }
        }
    }
    found
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The ledger verifies, and every copy it records is on disk with the
/// recorded hash.
fn assert_records_hold(home: &TestHome, after: &str) {
    let verify = home.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "after {after}: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    for work in json(&home.ok(&["work", "list", "--json"]))
        .as_array()
        .unwrap()
    {
        let id = work["id"].to_string();
        let detail = json(&home.ok(&["work", "show", &id, "--json"]));
        for copy in detail["copies"].as_array().unwrap() {
            let path = Path::new(copy["path"].as_str().unwrap());
            assert!(
                path.is_file(),
                "after {after}: {} is recorded but gone",
                path.display()
            );
            assert_eq!(
                sha256(path),
                copy["output_hash"].as_str().unwrap(),
                "after {after}: {} differs from its record",
                path.display()
            );
        }
    }
}

/// Runs `command` whole and returns how long it took.
fn timed(mut command: Command) -> Duration {
    let start = Instant::now();
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

/// Starts `command`, kills it (SIGKILL) after `delay`, and reaps it.
fn kill_after(mut command: Command, delay: Duration) {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

fn people_csv(home: &TestHome, tag: &str) -> PathBuf {
    let path = home.path(&format!("people-{tag}.csv"));
    std::fs::write(
        &path,
        format!("name,email,org\n{tag} one,,\n{tag} two,,\n{tag} three,,\n"),
    )
    .unwrap();
    path
}

/// `mark`, `text mark`, `recipient import`, `init` and `work forget`, each
/// killed at seeded random points within its own running time; after each
/// kill the records hold, the next whole run succeeds and leaves no
/// partial file, and at the end every copy traces to its holder alone.
#[test]
fn runs_killed_at_random_points_lose_nothing_recorded() {
    let home = TestHome::new();
    home.ok(&[
        "recipient",
        "import",
        people_csv(&home, "p").to_str().unwrap(),
    ]);
    let (speech, transcript) = (fixture(SPEECH), fixture(TRANSCRIPT));
    let (copies, texts) = (home.path("copies"), home.path("texts"));
    let mark = || {
        home.command(&[
            "mark",
            speech.to_str().unwrap(),
            "--all",
            "--out",
            copies.to_str().unwrap(),
        ])
    };
    let text_mark = || {
        home.command(&[
            "text",
            "mark",
            transcript.to_str().unwrap(),
            "--all",
            "--out",
            texts.to_str().unwrap(),
        ])
    };
    let import = |tag: &str| {
        let csv = people_csv(&home, tag);
        home.command(&["recipient", "import", csv.to_str().unwrap()])
    };
    let init = |at: &Path| {
        let mut c = home.command(&["init"]);
        c.env("EARMARK_HOME", at);
        c
    };
    let forget = || home.command(&["work", "forget", "1", "--yes"]);

    // Each command once, whole: its running time bounds the kill times.
    let durations = [
        timed(mark()),
        timed(text_mark()),
        timed(import("whole")),
        timed(init(&home.path("init-whole"))),
        timed(forget()),
    ];
    let mut times = KillTimes(KILL_SEED);
    let mut kills = 0;
    for round in 0..kills_per_command() {
        for (kind, whole) in durations.iter().enumerate() {
            let delay = whole.mul_f64(1.2 * times.next());
            let after = format!("kill {kills} (command {kind}, after {delay:?})");
            match kind {
                0 => {
                    kill_after(mark(), delay);
                    assert_records_hold(&home, &after);
                    timed(mark());
                    assert!(
                        partials(&copies).is_empty(),
                        "{after}: {:?}",
                        partials(&copies)
                    );
                }
                1 => {
                    kill_after(text_mark(), delay);
                    assert_records_hold(&home, &after);
                    timed(text_mark());
                    assert!(
                        partials(&texts).is_empty(),
                        "{after}: {:?}",
                        partials(&texts)
                    );
                }
                2 => {
                    kill_after(import(&format!("k{round}")), delay);
                    assert_records_hold(&home, &after);
                    timed(import(&format!("r{round}")));
                }
                3 => {
                    let at = home.path(&format!("init-{round}"));
                    kill_after(init(&at), delay);
                    // Either the home was made whole, or `init` makes it now.
                    let again = init(&at).output().unwrap();
                    assert!(
                        matches!(again.status.code(), Some(0) | Some(10)),
                        "{after}: {}",
                        String::from_utf8_lossy(&again.stderr)
                    );
                    let mut list = home.command(&["recipient", "list"]);
                    list.env("EARMARK_HOME", &at);
                    let listed = list.output().unwrap();
                    assert!(
                        listed.status.success(),
                        "{after}: {}",
                        String::from_utf8_lossy(&listed.stderr)
                    );
                    assert!(partials(&at).is_empty(), "{after}: {:?}", partials(&at));
                }
                _ => {
                    kill_after(forget(), delay);
                    assert_records_hold(&home, &after);
                    // The next mark stores the master again.
                    timed(mark());
                }
            }
            kills += 1;
        }
    }
    assert_eq!(kills, 5 * kills_per_command());
    assert!(
        partials(&home.root()).is_empty(),
        "{:?}",
        partials(&home.root())
    );

    for who in ["p one", "p two", "p three"] {
        let slug = who.replace(' ', "_");
        let copy = common::copy_named(
            &copies,
            "speech_en_f_8k_allison_demo-congrats",
            &slug,
            "wav",
        );
        let (code, verdict) = home.trace(&copy);
        assert_eq!(code, 0, "{verdict}");
        assert_eq!(common::home::accused(&verdict), [who]);
        let text = common::copy_named(&texts, "asterisk-core-sounds-en", &slug, "txt");
        let out = home.ok(&["text", "trace", text.to_str().unwrap(), "--json"]);
        let accused: Vec<String> = json(&out)["transcripts"][0]["accused"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(accused, [who]);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A tmpfs of `size` mounted at `dir` for the test's lifetime.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` when mounting is not possible (not root, or a container
    /// without the right) and skipping is allowed; otherwise that fails.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        if !is_root() {
            common::cannot_run_here("mounting a small tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        if !out.status.success() {
            common::cannot_run_here(&format!(
                "cannot mount a tmpfs ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

fn one_line_failure(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A disk that fills while copies are written, or while the master is
/// stored: one line, a distinct exit code, no copy recorded, no partial
/// file left, and a ledger that verifies.
#[test]
fn a_full_disk_fails_cleanly_and_records_nothing() {
    let home = TestHome::new();
    home.ok(&[
        "recipient",
        "import",
        people_csv(&home, "p").to_str().unwrap(),
    ]);
    let speech = fixture(SPEECH);
    // Three 30 s copies at 8 kHz (480 kB each) do not fit in 700 kB.
    let out_dir = home.path("small-out");
    let Some(_out) = Tmpfs::mount(&out_dir, "700k") else {
        return;
    };
    let failed = home.run(&[
        "mark",
        speech.to_str().unwrap(),
        "--all",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    one_line_failure(&failed, 6, "No space left on device");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
    // Not even the work is registered: it would be one with no copies.
    let works = json(&home.ok(&["work", "list", "--json"]));
    assert!(works.as_array().unwrap().is_empty(), "{works}");
    assert_records_hold(&home, "a full output disk");

    // A home on a disk too small for the master (480 kB), with room for
    // the new ledger and its write-ahead log.
    let small = home.path("small-home");
    let Some(_home_disk) = Tmpfs::mount(&small, "420k") else {
        return;
    };
    let at = small.join("home");
    let run = |args: &[&str]| {
        let mut c = home.command(args);
        c.env("EARMARK_HOME", &at);
        c.output().unwrap()
    };
    assert!(run(&["init"]).status.success());
    assert!(run(&["recipient", "add", "Ana"]).status.success());
    let failed = run(&[
        "mark",
        speech.to_str().unwrap(),
        "--all",
        "--out",
        home.path("copies").to_str().unwrap(),
    ]);
    one_line_failure(&failed, 11, "No space left on device");
    assert!(partials(&at).is_empty(), "{:?}", partials(&at));
    assert!(run(&["audit", "verify"]).status.success());
}

/// A home on a read-only mount: every command says in one line that the
/// home cannot be written, exit 11, and the ledger is intact once the
/// mount is writable again.
#[test]
fn a_read_only_home_is_refused_in_one_line() {
    let home = TestHome::new();
    let mount = home.path("ro");
    let Some(disk) = Tmpfs::mount(&mount, "8m") else {
        return;
    };
    let at = mount.join("home");
    let run = |args: &[&str]| {
        let mut c = home.command(args);
        c.env("EARMARK_HOME", &at);
        c.output().unwrap()
    };
    assert!(run(&["init"]).status.success());
    assert!(run(&["recipient", "add", "Ana"]).status.success());
    let copies = home.path("copies");
    let speech = fixture(SPEECH);
    assert!(run(&[
        "mark",
        speech.to_str().unwrap(),
        "--all",
        "--out",
        copies.to_str().unwrap()
    ])
    .status
    .success());
    disk.remount("ro");
    let copy = common::copy_named(
        &copies,
        "speech_en_f_8k_allison_demo-congrats",
        "Ana",
        "wav",
    );
    for args in [
        vec!["recipient", "add", "Bo"],
        vec!["recipient", "list"],
        vec!["trace", copy.to_str().unwrap()],
        vec!["audit", "verify"],
    ] {
        one_line_failure(&run(&args), 11, "cannot be written");
    }
    disk.remount("rw");
    assert!(run(&["audit", "verify"]).status.success());
}

/// The write-ahead log deleted while `mark` runs once lost every record
/// while the command said it delivered them. The log is folded into the
/// ledger from the open file when the command ends, so the records stay.
#[test]
fn a_log_deleted_during_mark_loses_no_record() {
    let home = TestHome::new();
    let csv = home.path("twenty.csv");
    let names: String = (1..=20).map(|i| format!("n{i:02}\n")).collect();
    std::fs::write(&csv, format!("name\n{names}")).unwrap();
    home.ok(&["recipient", "import", csv.to_str().unwrap()]);
    let speech = fixture(SPEECH);
    let mut child = home
        .command(&[
            "mark",
            speech.to_str().unwrap(),
            "--all",
            "--out",
            home.path("copies").to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wal = home.root().join("ledger.sqlite-wal");
    let start = Instant::now();
    while !wal.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let _ = std::fs::remove_file(&wal);
    assert!(child.wait().unwrap().success());
    let detail = json(&home.ok(&["work", "show", "1", "--json"]));
    assert_eq!(detail["copies"].as_array().unwrap().len(), 20, "{detail}");
    assert_records_hold(&home, "the log deleted during mark");
}
