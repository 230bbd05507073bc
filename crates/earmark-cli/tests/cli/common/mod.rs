//! Shared helpers for the end-to-end tests: fixtures, the built binary, real
//! codecs through Debian's ffmpeg and sox.
#![allow(dead_code)]

pub mod home;
pub mod ledger;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Says that a test cannot run here. A run never passes without testing, so
/// this fails the test with `reason`, unless `EARMARK_TEST_ALLOW_SKIP=1` is
/// set: that opt-out (for a user without root, say) is documented in
/// docs/testing.md, and CI never sets it. Returns when skipping is allowed.
pub fn cannot_run_here(reason: &str) {
    if std::env::var_os("EARMARK_TEST_ALLOW_SKIP").is_some_and(|v| v == "1") {
        eprintln!("skipped, as EARMARK_TEST_ALLOW_SKIP=1 allows: {reason}");
    } else {
        panic!("cannot run here: {reason} (EARMARK_TEST_ALLOW_SKIP=1 skips such tests)");
    }
}

/// True when the full statistical matrices run: `scripts/test.sh --full`
/// sets `EARMARK_TEST_FULL=1`. Otherwise a heavy trial runs one case of each
/// kind it covers (docs/testing.md lists what the full run adds).
pub fn full_matrices() -> bool {
    std::env::var_os("EARMARK_TEST_FULL").is_some_and(|v| v == "1")
}

/// The repository's test fixtures folder.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// The copy `mark` or `text mark` wrote in `dir` for the recipient named
/// `name` (whose slug is the name itself): `<stem>.r<id>-<name>.<ext>`.
pub fn copy_named(dir: &Path, stem: &str, name: &str, ext: &str) -> PathBuf {
    let (head, tail) = (format!("{stem}.r"), format!("-{name}.{ext}"));
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| {
            let file = p.file_name().unwrap().to_str().unwrap();
            file.starts_with(&head)
                && file.ends_with(&tail)
                && file[head.len()..file.len() - tail.len()]
                    .chars()
                    .all(|c| c.is_ascii_digit())
        })
        .unwrap_or_else(|| panic!("no copy for {name} in {}", dir.display()))
}

/// Runs the `earmark` binary with `args`.
pub fn earmark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_earmark"))
        .args(args)
        .output()
        .expect("earmark binary runs")
}

/// Runs a tool and panics with its stderr if it fails.
pub fn tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed for this test ({e}); run scripts/setup.sh")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffmpeg with quiet logging, overwriting outputs.
pub fn ffmpeg(args: &[&str]) {
    let mut all = vec!["-hide_banner", "-loglevel", "error", "-y"];
    all.extend_from_slice(args);
    tool("ffmpeg", &all);
}

/// Encodes `input` as a WhatsApp-style voice message: mono Opus at 16 kbit/s
/// in voice mode.
pub fn opus_voice_16k(input: &Path, output: &Path) {
    ffmpeg(&[
        "-i",
        input.to_str().unwrap(),
        "-ac",
        "1",
        "-c:a",
        "libopus",
        "-b:a",
        "16k",
        "-application",
        "voip",
        output.to_str().unwrap(),
    ]);
}

/// A scratch directory with a fresh key in it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("test.key");
        let out = earmark(&["keygen", key.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Scratch { dir, key }
    }

    /// A scratch directory with a key derived from `seed`, so that a test's
    /// outcome does not depend on the draw of a random key.
    pub fn seeded(seed: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("test.key");
        let text = earmark_keys::SecretKey::from_seed(seed).to_file_text();
        std::fs::write(&key, text.as_bytes()).expect("key written");
        Scratch { dir, key }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn key_str(&self) -> &str {
        self.key.to_str().unwrap()
    }

    /// Embeds `payload` into `input`, writing `output`; asserts success.
    pub fn embed(&self, input: &Path, output: &Path, payload: &str) {
        let out = earmark(&[
            "embed",
            input.to_str().unwrap(),
            output.to_str().unwrap(),
            "--key",
            self.key_str(),
            "--payload",
            payload,
        ]);
        assert!(
            out.status.success(),
            "embed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Embeds `payload` into the fixture `name`; returns the marked copy's path.
    pub fn marked_fixture(&self, name: &str, payload: &str) -> PathBuf {
        let marked = self.path("marked.wav");
        self.embed(&fixture(name), &marked, payload);
        marked
    }

    /// Extracts from `input` with this scratch's key; returns (exit code, JSON).
    pub fn extract(&self, input: &Path) -> (i32, serde_json::Value) {
        let out = earmark(&[
            "extract",
            input.to_str().unwrap(),
            "--key",
            self.key_str(),
            "--json",
        ]);
        let code = out.status.code().expect("exit code");
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "extract printed no JSON ({e}); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, json)
    }
}

/// A deterministic excerpt start in `[0, duration − length]`, seconds.
pub fn excerpt_start(seed: u64, duration_s: f64, length_s: f64) -> f64 {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    x ^= x >> 33;
    let unit = (x % 1_000_000) as f64 / 1_000_000.0;
    unit * (duration_s - length_s).max(0.0)
}

/// Cuts `length_s` seconds from `input` starting at `start_s` into `output` (WAV).
pub fn cut(input: &Path, output: &Path, start_s: f64, length_s: f64) {
    ffmpeg(&[
        "-i",
        input.to_str().unwrap(),
        "-ss",
        &format!("{start_s:.3}"),
        "-t",
        &format!("{length_s:.3}"),
        output.to_str().unwrap(),
    ]);
}
