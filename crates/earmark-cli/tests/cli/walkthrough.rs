//! README.md's "Five minutes with earmark", run as a reader would
//! (`scripts/walkthrough.sh`): every output block the README shows is what
//! the commands before it print, with the figures that vary from home to
//! home masked.

use std::path::Path;

/// `line` with every number as `#` (signs, decimals and exponents
/// included) and its runs of spaces as one.
fn masked(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let signed = (chars[i] == '+' || chars[i] == '-')
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            && (i == 0 || chars[i - 1] == ' ');
        if chars[i].is_ascii_digit() || signed {
            i += 1;
            while i < chars.len() {
                let c = chars[i];
                let next_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
                let exponent = c == 'e'
                    && chars
                        .get(i + 1)
                        .is_some_and(|&n| n.is_ascii_digit() || n == '-' || n == '+');
                if c.is_ascii_digit() || (c == '.' && next_digit) {
                    i += 1;
                } else if exponent {
                    i += 2;
                } else {
                    break;
                }
            }
            out.push('#');
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The lines of an output block as compared: masked; the ranking's
/// recipients in any order (where the code reads little, its order is
/// chance; the accusation says who is named); an
/// accusation without the stretches its mark covers, and the tamper map's
/// stretch and edit lines as one line (through a heavy codec the edges of
/// a splice, and so these, vary from home to home; the splice and cut
/// tests of `informed.rs` hold the tamper map to where edits were made).
fn comparable(block: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut ranking: Vec<String> = Vec::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let m = masked(line);
        if m.contains(" score # bound ") {
            ranking.push(m);
            continue;
        }
        let kind = line.split_whitespace().next().unwrap_or("");
        if line.starts_with("  ") && matches!(kind, "leak" | "REMOVED" | "INSERTED") {
            let tag = "tamper map".to_string();
            if lines.last() != Some(&tag) {
                lines.push(tag);
            }
            continue;
        }
        if m.starts_with("ACCUSED ") {
            lines.push(m.split(" in ").next().unwrap_or(&m).to_string());
            continue;
        }
        lines.push(m);
    }
    ranking.sort();
    lines.extend(ranking);
    lines
}

/// The README section's output blocks: each fenced block without a
/// language that follows a shell block, by the number of that shell block.
fn readme_outputs(readme: &str) -> Vec<(usize, String)> {
    let section = readme
        .split("## Five minutes with earmark")
        .nth(1)
        .expect("the README has its walkthrough")
        .split("\n## ")
        .next()
        .unwrap();
    let mut outputs = Vec::new();
    let mut shell_blocks = 0;
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line == "```sh" || line == "```" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            if line == "```sh" {
                shell_blocks += 1;
            } else {
                outputs.push((shell_blocks, body.join("\n")));
            }
        }
    }
    outputs
}

#[test]
fn the_readme_walkthrough_prints_what_the_readme_shows() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("bash")
        .arg(repo.join("scripts/walkthrough.sh"))
        .env("EARMARK_BIN", env!("CARGO_BIN_EXE_earmark"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scratch = printed
        .lines()
        .find_map(|l| l.strip_prefix("=== scratch "))
        .expect("the walkthrough names its scratch directory")
        .to_string();
    assert!(!Path::new(&scratch).exists(), "{scratch} was left behind");
    let printed = printed.replace(&scratch, "…");
    let mut blocks: Vec<&str> = printed.split("=== block ").skip(1).collect();
    if let Some(last) = blocks.last_mut() {
        *last = last.split("=== scratch").next().unwrap();
    }
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let shown = readme_outputs(&readme);
    assert!(shown.len() >= 4, "{shown:?}");
    for (block, expected) in shown {
        let actual = blocks[block - 1]
            .split_once('\n')
            .map_or("", |(_, rest)| rest);
        assert_eq!(
            comparable(&expected),
            comparable(actual),
            "block {block} of the README walkthrough:\nREADME shows:\n{expected}\nthe commands print:\n{actual}"
        );
    }
}

#[test]
fn masking_keeps_words_and_hides_figures() {
    assert_eq!(
        masked("ACCUSED Bo Berg  false-accusation bound ≤ 1.9e-25  by identifier  in 0.0–20.0 s"),
        "ACCUSED Bo Berg false-accusation bound ≤ # by identifier in #–# s"
    );
    assert_eq!(
        masked("time scale 1.001, pitch +4 cents, the 3 recipients"),
        "time scale #, pitch # cents, the # recipients"
    );
}
