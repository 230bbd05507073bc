//! Another watermarking tool, run through the same corpus, excerpts and
//! attacks as earmark so that the report can put the two side by side.
//!
//! The tool is described by two shell command templates and a regular
//! expression: `{in}`, `{out}` and `{payload}` are replaced by the input
//! path, the output path and the payload (16 lowercase hex digits, 64 bits;
//! a tool wanting more can pad it in the template, e.g. `{payload}0000…`).

use std::path::Path;
use std::process::Command;

use regex::Regex;

use crate::BenchError;

/// A watermarking tool driven from the command line.
#[derive(Clone, Debug)]
pub struct ExternalTool {
    /// Name shown in the report.
    pub name: String,
    /// Embedding command template: `{in}`, `{out}`, `{payload}`.
    pub embed: String,
    /// Extraction command template: `{in}`.
    pub extract: String,
    /// Finds the recovered payload in the extraction's output (stdout then
    /// stderr): the first capture group, or the whole match.
    pub parse: Regex,
}

/// What the external tool read from one excerpt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    /// It printed something the pattern matched.
    Payload(String),
    /// It printed nothing the pattern matched.
    Nothing,
}

impl ExternalTool {
    /// Builds the adapter; the pattern must compile.
    pub fn new(name: &str, embed: &str, extract: &str, parse: &str) -> Result<Self, BenchError> {
        let parse = Regex::new(parse).map_err(|e| BenchError::External(format!("--parse: {e}")))?;
        for (what, template, needed) in [
            ("--embed", embed, &["{in}", "{out}", "{payload}"][..]),
            ("--extract", extract, &["{in}"][..]),
        ] {
            if let Some(missing) = needed.iter().find(|n| !template.contains(*n)) {
                return Err(BenchError::External(format!(
                    "{what} must contain {missing}"
                )));
            }
        }
        Ok(ExternalTool {
            name: name.to_string(),
            embed: embed.to_string(),
            extract: extract.to_string(),
            parse,
        })
    }

    /// Embeds `payload` into `input`, writing `output` (a WAV).
    pub fn embed(&self, input: &Path, output: &Path, payload: u64) -> Result<(), BenchError> {
        let command = self
            .embed
            .replace("{in}", &quote(input))
            .replace("{out}", &quote(output))
            .replace("{payload}", &format!("{payload:016x}"));
        let result = shell(&command)?;
        if !result.status.success() {
            return Err(BenchError::External(format!(
                "{} embed failed: {}",
                self.name,
                last_line(&result.stderr)
            )));
        }
        if !output.is_file() {
            return Err(BenchError::External(format!(
                "{} embed wrote no {}",
                self.name,
                output.display()
            )));
        }
        Ok(())
    }

    /// Runs the extraction on `input` and applies the pattern. A non-zero
    /// exit is not an error: many tools signal "nothing found" that way.
    pub fn extract(&self, input: &Path) -> Result<Reading, BenchError> {
        let command = self.extract.replace("{in}", &quote(input));
        let result = shell(&command)?;
        for stream in [&result.stdout, &result.stderr] {
            let text = String::from_utf8_lossy(stream);
            if let Some(found) = self.parse.captures(&text) {
                let text = found
                    .get(1)
                    .or_else(|| found.get(0))
                    .map_or("", |m| m.as_str());
                return Ok(Reading::Payload(text.trim().to_ascii_lowercase()));
            }
        }
        Ok(Reading::Nothing)
    }
}

impl Reading {
    /// Whether this reading is `payload` (the tool may print more digits).
    pub fn matches(&self, payload: u64) -> bool {
        matches!(self, Reading::Payload(text) if text.starts_with(&format!("{payload:016x}")))
    }
}

fn shell(command: &str) -> Result<std::process::Output, BenchError> {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .map_err(|e| BenchError::External(format!("cannot run sh: {e}")))
}

/// Single-quotes a path for `sh`.
fn quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no message)")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_must_name_their_placeholders() {
        assert!(ExternalTool::new("x", "cp {in} {out}", "cat {in}", ".*").is_err());
        assert!(ExternalTool::new("x", "cp {in} {out} {payload}", "cat", ".*").is_err());
        assert!(ExternalTool::new("x", "cp {in} {out} {payload}", "cat {in}", "(").is_err());
        assert!(
            ExternalTool::new("x", "cp {in} {out} {payload}", "cat {in}", "([0-9a-f]+)").is_ok()
        );
    }

    #[test]
    fn readings_match_by_prefix() {
        assert!(Reading::Payload("0123456789abcdef0000".into()).matches(0x0123_4567_89ab_cdef));
        assert!(!Reading::Payload("0123".into()).matches(0x0123_4567_89ab_cdef));
        assert!(!Reading::Nothing.matches(0));
    }
}
