//! An earmark home in a temporary directory, driven through the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A home in a temporary directory, driven through the binary.
pub struct TestHome {
    dir: tempfile::TempDir,
}

impl TestHome {
    pub fn new() -> Self {
        let home = TestHome {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = home.run(&["init"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        home
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_earmark"));
        c.args(args).env("EARMARK_HOME", self.root());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("earmark runs")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Adds `n` recipients r01…rNN and marks `work` for all of them.
    pub fn mark_for(&self, work: &Path, n: usize) -> PathBuf {
        let csv = self.path("people.csv");
        let mut text = String::from("name,email,org\n");
        for i in 1..=n {
            text.push_str(&format!("r{i:02},r{i:02}@example.org,Press\n"));
        }
        std::fs::write(&csv, text).unwrap();
        self.ok(&["recipient", "import", csv.to_str().unwrap()]);
        let out = self.path("copies");
        self.mark_all(work, &out, &["--title", "Demo"]);
        out
    }

    /// Marks `work` for every recipient into `out`, with `extra` arguments;
    /// panics on failure.
    pub fn mark_all(&self, work: &Path, out: &Path, extra: &[&str]) -> String {
        let mut args = vec![
            "mark",
            work.to_str().unwrap(),
            "--all",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    pub fn trace(&self, leak: &Path) -> (i32, serde_json::Value) {
        let out = self.run(&["trace", leak.to_str().unwrap(), "--json"]);
        let code = out.status.code().unwrap();
        let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("trace JSON ({e}): {}", String::from_utf8_lossy(&out.stderr))
        });
        (code, value)
    }
}

/// Names of the accused in `trace --json` output.
pub fn accused(value: &serde_json::Value) -> Vec<String> {
    value["accused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}
