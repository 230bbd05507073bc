//! A command line people can script: JSON from every command that reports
//! something, the exit codes in `--help`, shell completions and a manual page.

use crate::common;

use common::home::TestHome;
use common::*;

fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn every_reporting_command_speaks_json() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("home");
    let mut init = std::process::Command::new(env!("CARGO_BIN_EXE_earmark"));
    init.args(["init", "--json"]).env("EARMARK_HOME", &at);
    let out = init.output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        json_of(&String::from_utf8_lossy(&out.stdout))["home"],
        at.to_str().unwrap()
    );

    let key = dir.path().join("k.key");
    let out = earmark(&["keygen", key.to_str().unwrap(), "--json"]);
    assert_eq!(
        json_of(&String::from_utf8_lossy(&out.stdout))["key_file"],
        key.to_str().unwrap()
    );

    let home = TestHome::new();
    let added = json_of(&home.ok(&["recipient", "add", "Ana", "--json"]));
    assert_eq!(
        (added["id"].as_i64(), added["name"].as_str()),
        (Some(1), Some("Ana"))
    );
    let csv = home.path("p.csv");
    std::fs::write(&csv, "name\nBo\nCy\n").unwrap();
    let imported = json_of(&home.ok(&["recipient", "import", csv.to_str().unwrap(), "--json"]));
    assert_eq!(imported.as_array().unwrap().len(), 2);
    let renamed = json_of(&home.ok(&["recipient", "rename", "Bo", "Bo Berg", "--json"]));
    assert_eq!(renamed["name"], "Bo Berg");
    let removed = json_of(&home.ok(&["recipient", "remove", "Cy", "--json"]));
    assert_eq!(removed["outcome"], "deleted");

    let marked = json_of(
        &home.ok(&[
            "mark",
            fixture("speech_en_f_8k_allison_demo-congrats.wav")
                .to_str()
                .unwrap(),
            "--all",
            "--out",
            home.path("copies").to_str().unwrap(),
            "--json",
        ]),
    );
    assert_eq!(marked["copies"].as_array().unwrap().len(), 2, "{marked}");
    let verified = json_of(&home.ok(&["audit", "verify", "--json"]));
    assert_eq!(verified["intact"], true);
    assert_eq!(verified["records"]["copies"], 2);
    let forgotten = json_of(&home.ok(&["work", "forget", "1", "--yes", "--json"]));
    assert_eq!(
        (forgotten["work"].as_i64(), forgotten["removed"].as_bool()),
        (Some(1), Some(true))
    );
}

#[test]
fn help_lists_exit_codes_and_completions_and_man_page_come_from_it() {
    let help = String::from_utf8(earmark(&["--help"]).stdout).unwrap();
    assert!(help.contains("Exit codes:"), "{help}");
    for code in 2..=15 {
        assert!(
            help.contains(&format!("\n  {code:<3} ")),
            "exit {code} missing: {help}"
        );
    }
    let bash = earmark(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = String::from_utf8(bash.stdout).unwrap();
    assert!(script.contains("recipient") && script.contains("--epsilon"));
    // The script is valid bash.
    let checked = std::process::Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for shell in ["zsh", "fish"] {
        let out = earmark(&["completions", shell]);
        assert!(out.status.success() && out.stdout.len() > 1000, "{shell}");
    }
    let man = String::from_utf8(earmark(&["man"]).stdout).unwrap();
    assert!(
        man.contains(".TH earmark 1") && man.contains(".SH \"EXIT STATUS\""),
        "{man}"
    );
    assert!(!man.contains("EXTRA"), "{man}");
}

/// The help reads in the order of the work, with the global options under
/// their own heading; `man --dir` writes a page for every command, each
/// with its exit status, and every page the top one refers to exists.
#[test]
fn help_is_grouped_and_every_command_has_a_manual_page() {
    let help = String::from_utf8(earmark(&["--help"]).stdout).unwrap();
    let at = |needle: &str| {
        help.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {help}"))
    };
    assert!(help.starts_with("earmark: find who leaked"), "{help}");
    assert!(at("Set up:") < at("Recipients:"));
    assert!(at("  init ") < at("  mark ") && at("  mark ") < at("  trace "));
    assert!(at("  trace ") < at("  keygen ") && at("  keygen ") < at("  completions "));
    assert!(at("Global options:") < at("Exit codes:"));
    let trace_help = String::from_utf8(earmark(&["trace", "--help"]).stdout).unwrap();
    let options = trace_help.find("Options:").unwrap();
    let global = trace_help.find("Global options:").unwrap();
    assert!(
        options < global && trace_help[global..].contains("--home"),
        "{trace_help}"
    );

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man");
    let out = earmark(&["man", "--dir", pages.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for page in [
        "earmark.1",
        "earmark-init.1",
        "earmark-mark.1",
        "earmark-trace.1",
        "earmark-recipient-add.1",
        "earmark-text-mark.1",
        "earmark-audit-verify.1",
        "earmark-man.1",
    ] {
        assert!(written.iter().any(|w| w == page), "{page} in {written:?}");
    }
    for page in &written {
        let text = std::fs::read_to_string(pages.join(page)).unwrap();
        assert!(text.contains(".SH \"EXIT STATUS\""), "{page}");
        assert!(text.contains("\\fB14\\fR"), "{page}");
        // Every page another page refers to was written.
        for (k, _) in text.match_indices("(1)") {
            let start = text[..k]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\\'))
                .map_or(0, |i| i + 1);
            let name = text[start..k].replace("\\-", "-");
            if name.starts_with("earmark") {
                assert!(
                    written.contains(&format!("{name}.1")),
                    "{page} refers to {name}(1)"
                );
            }
        }
    }
    // Pages are never overwritten.
    let again = earmark(&["man", "--dir", pages.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(6));
}

/// `-v` logs the steps to standard error, `RUST_LOG` is honoured, and by
/// default and with `-q` standard error stays empty on success.
#[test]
fn verbose_logs_steps_and_quiet_keeps_stderr_empty() {
    let home = TestHome::new();
    home.ok(&["recipient", "add", "Ana"]);
    let work = fixture("speech_en_f_8k_allison_demo-congrats.wav");
    let mark = |flag: Option<&str>, out: &str| {
        let mut args = vec!["mark", work.to_str().unwrap(), "--all", "--out"];
        let dir = home.path(out);
        let dir = dir.to_str().unwrap().to_string();
        args.push(&dir);
        args.extend(flag);
        let out = home.run(&args);
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let logged = mark(Some("-v"), "a");
    assert!(
        logged.contains("INFO") && logged.contains("read the master"),
        "{logged}"
    );
    assert!(
        !logged.contains('\u{1b}'),
        "colour codes on a pipe: {logged}"
    );
    assert_eq!(mark(None, "b"), "");
    assert_eq!(mark(Some("-q"), "c"), "");
    let mut with_env = home.command(&["recipient", "list"]);
    with_env.env("RUST_LOG", "debug");
    assert!(with_env.output().unwrap().status.success());
}

/// On a terminal, `embed` and `extract` of more than a minute of audio draw
/// a progress bar on standard error; with `-q`, or off a terminal, nothing.
/// The terminal is `script`'s pseudo-terminal.
#[test]
fn long_inputs_show_progress_on_a_terminal_only() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        common::cannot_run_here(
            "`script` (util-linux) gives the test its terminal, and it is missing",
        );
        return;
    }
    let s = Scratch::new();
    let speech = fixture("speech_en_f_8k_allison_demo-congrats.wav");
    let long = s.path("long.wav");
    let sp = speech.to_str().unwrap();
    tool("sox", &[sp, sp, sp, long.to_str().unwrap()]);
    let marked = s.path("marked.wav");
    let on_terminal = |command: String| {
        let out = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bin = env!("CARGO_BIN_EXE_earmark");
    let embed = format!(
        "{bin} embed {} {} --key {} --payload 0123456789abcdef",
        long.display(),
        marked.display(),
        s.key_str()
    );
    assert!(on_terminal(embed).contains("embedding ["));
    let extract = format!("{bin} extract {} --key {}", marked.display(), s.key_str());
    assert!(on_terminal(extract.clone()).contains("extracting ["));
    assert!(!on_terminal(format!(
        "{bin} -q extract {} --key {}",
        marked.display(),
        s.key_str()
    ))
    .contains("extracting ["));
    let piped = earmark(&["extract", marked.to_str().unwrap(), "--key", s.key_str()]);
    assert!(piped.stderr.is_empty());
}

/// The README's exit-code table is the one `--help` prints, row for row.
#[test]
fn the_readmes_exit_codes_are_the_programs() {
    let help = String::from_utf8(earmark(&["--help"]).stdout).unwrap();
    let from_help: Vec<(String, String)> = help
        .split("Exit codes:")
        .nth(1)
        .expect("--help lists exit codes")
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (code, meaning) = l.split_once(char::is_whitespace)?;
            Some((code.to_string(), meaning.trim().to_string()))
        })
        .collect();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let table = readme
        .split("| code | meaning |")
        .nth(1)
        .expect("the README has an exit-code table");
    let from_readme: Vec<(String, String)> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].to_string(), cells[1].to_string())
        })
        .collect();
    assert_eq!(from_readme, from_help);
}

/// The audit log's columns line up: every time is given to the second.
#[test]
fn the_audit_log_lines_up() {
    let home = common::home::TestHome::new();
    for name in ["Ana", "Bo", "Cy"] {
        home.ok(&["recipient", "add", name]);
    }
    let log = home.ok(&["audit", "log"]);
    let times: Vec<&str> = log
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(times.len(), 3, "{log}");
    for t in times {
        assert_eq!(t.len(), "2026-01-01T00:00:00Z".len(), "{log}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{log}");
    }
}
