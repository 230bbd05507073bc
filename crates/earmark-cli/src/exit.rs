//! Exit codes and the one-line failure messages behind them.

use earmark::{Error, ErrorKind};

/// Usage error: bad arguments or payload (clap also exits 2).
pub const USAGE: i32 = 2;
/// Extraction ran but found no watermark.
pub const NOT_FOUND: i32 = 3;
/// The input audio could not be read: missing, empty, corrupt, unsupported or too large.
pub const BAD_AUDIO: i32 = 4;
/// The key file is missing, damaged, or would be overwritten.
pub const BAD_KEY: i32 = 5;
/// The output could not be written.
pub const WRITE_FAILED: i32 = 6;
/// The input is too short or too silent to carry the mark.
pub const TOO_LITTLE_SIGNAL: i32 = 7;
/// A program that is needed (ffmpeg, ffprobe, sox) is not installed.
pub const MISSING_TOOL: i32 = 8;
/// The benchmark ran, but its gate (required recovery, no false alarm) failed.
pub const GATE_FAILED: i32 = 9;
/// No earmark home (not created, or no place for one), or `init` on an existing one.
pub const NO_HOME: i32 = 10;
/// The ledger failed (database error, locked too long) or its audit chain is broken.
pub const LEDGER: i32 = 11;
/// Unknown, duplicate or malformed recipients (including a bad CSV row).
pub const BAD_RECIPIENTS: i32 = 12;
/// A transcript or leaked text could not be read: missing, empty, binary,
/// not UTF-8, too large, or malformed subtitles.
pub const BAD_TEXT: i32 = 13;
/// A work id the ledger does not hold.
pub const UNKNOWN_WORK: i32 = 14;
/// The operation was cancelled (by a program embedding the library; the
/// command itself is stopped by a signal instead).
pub const CANCELLED: i32 = 15;
/// A token or password was refused (by the service's library calls).
pub const UNAUTHORIZED: i32 = 16;
/// No delivery link has that secret.
pub const UNKNOWN_LINK: i32 = 17;
/// A delivery link revoked, expired or used up.
pub const LINK_GONE: i32 = 18;

/// One exit code: the number, the library's kind of failure it stands
/// for (none for the codes that are not failures of the library), and its
/// meaning as `--help`, the man pages and the README say it.
pub struct ExitStatus {
    /// The code.
    pub code: i32,
    /// The failures it stands for.
    pub kind: Option<ErrorKind>,
    /// What it means, in one line.
    pub meaning: &'static str,
}

/// Every exit code: the one table the help, the man pages and the README
/// come from (the README's copy is checked against it by a test).
pub const TABLE: &[ExitStatus] = &[
    ExitStatus { code: 0, kind: None, meaning: "done; `trace` or `extract` found a mark" },
    ExitStatus { code: USAGE, kind: Some(ErrorKind::Usage), meaning: "usage: bad arguments, payload or ε" },
    ExitStatus { code: NOT_FOUND, kind: None, meaning: "no watermark found; nobody accused" },
    ExitStatus {
        code: BAD_AUDIO,
        kind: Some(ErrorKind::BadAudio),
        meaning: "unreadable audio: missing, empty, corrupt, unsupported, too long, or changed while read",
    },
    ExitStatus {
        code: BAD_KEY,
        kind: Some(ErrorKind::BadKey),
        meaning: "key file missing, damaged, about to be overwritten, or not this home's",
    },
    ExitStatus { code: WRITE_FAILED, kind: Some(ErrorKind::WriteFailed), meaning: "output not writable" },
    ExitStatus {
        code: TOO_LITTLE_SIGNAL,
        kind: Some(ErrorKind::TooLittleSignal),
        meaning: "audio too short or too silent to carry the mark; a transcript with too few slots",
    },
    ExitStatus {
        code: MISSING_TOOL,
        kind: Some(ErrorKind::MissingTool),
        meaning: "a program that is needed (ffmpeg, ffprobe, sox) is missing",
    },
    ExitStatus { code: GATE_FAILED, kind: None, meaning: "`bench --gate` failed" },
    ExitStatus { code: NO_HOME, kind: Some(ErrorKind::NoHome), meaning: "no home, or `init` on an existing one" },
    ExitStatus {
        code: LEDGER,
        kind: Some(ErrorKind::Ledger),
        meaning: "ledger damaged, altered, lost, unwritable or locked; a bad backup",
    },
    ExitStatus {
        code: BAD_RECIPIENTS,
        kind: Some(ErrorKind::BadRecipients),
        meaning: "unknown, duplicate, look-alike or malformed recipients",
    },
    ExitStatus { code: BAD_TEXT, kind: Some(ErrorKind::BadText), meaning: "unreadable transcript or leaked text" },
    ExitStatus { code: UNKNOWN_WORK, kind: Some(ErrorKind::UnknownWork), meaning: "no work with that id" },
    ExitStatus { code: CANCELLED, kind: Some(ErrorKind::Cancelled), meaning: "cancelled; nothing recorded" },
    ExitStatus { code: UNAUTHORIZED, kind: Some(ErrorKind::Unauthorized), meaning: "a token or password refused" },
    ExitStatus { code: UNKNOWN_LINK, kind: Some(ErrorKind::UnknownLink), meaning: "no delivery link with that secret" },
    ExitStatus { code: LINK_GONE, kind: Some(ErrorKind::LinkGone), meaning: "a delivery link revoked, expired or used up" },
];

/// The exit codes as `earmark --help` ends with them.
pub fn help() -> String {
    let mut out = String::from("Exit codes:");
    for status in TABLE {
        out.push_str(&format!("\n  {:<3} {}", status.code, status.meaning));
    }
    out
}

/// The exit code of a kind of failure.
pub fn code_of(kind: ErrorKind) -> i32 {
    TABLE
        .iter()
        .find(|s| s.kind == Some(kind))
        .map_or(USAGE, |s| s.code)
}

/// A failure with its exit code and one-line message.
#[derive(Debug)]
pub struct Failure {
    /// Process exit code.
    pub code: i32,
    /// One line for standard error.
    pub message: String,
}

impl Failure {
    pub fn usage(message: String) -> Self {
        Failure {
            code: USAGE,
            message,
        }
    }

    pub fn write(message: String) -> Self {
        Failure {
            code: WRITE_FAILED,
            message,
        }
    }

    pub fn bench(error: earmark_bench::BenchError) -> Self {
        use earmark_bench::BenchError;
        let code = match error {
            BenchError::MissingTool { .. } => MISSING_TOOL,
            BenchError::Corpus(_) | BenchError::Attack(_) => BAD_AUDIO,
            BenchError::Output(_) => WRITE_FAILED,
            BenchError::External(_) => USAGE,
        };
        Failure {
            code,
            message: error.to_string(),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let message = match hint(&error) {
            Some(hint) => format!("{error}; {hint}"),
            None => error.to_string(),
        };
        Failure {
            code: code_of(error.kind()),
            message,
        }
    }
}

/// What to do about `error` on the command line: the library's messages
/// say what is wrong and name no command or flag; the commands and flags
/// that mend it are this front end's to name.
fn hint(error: &Error) -> Option<&'static str> {
    use earmark::LedgerError as L;
    Some(match error {
        Error::Ledger(L::NoHomeDirectory) => "set one of them, or pass --home",
        Error::Ledger(L::NotInitialised(_)) => "run `earmark init` first",
        Error::Ledger(L::Tampered(_)) => {
            "restore the home from a backup (`earmark restore`) or find out who changed it"
        }
        Error::Ledger(L::Rollback(_)) => "pass --allow-rollback to accept that",
        Error::Ledger(L::BackupWithoutKey(_)) => "pass the key file with --key",
        Error::OtherKindOfWork {
            transcript: true, ..
        } => "trace text with `earmark text trace`",
        Error::OtherKindOfWork {
            transcript: false, ..
        } => "trace it with `earmark trace`",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of failure has exactly one code, and no two rows share one.
    #[test]
    fn every_kind_has_one_code_and_codes_are_distinct() {
        for kind in ErrorKind::ALL {
            assert_eq!(
                TABLE.iter().filter(|s| s.kind == Some(kind)).count(),
                1,
                "{kind:?}"
            );
        }
        let mut codes: Vec<i32> = TABLE.iter().map(|s| s.code).collect();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len());
    }
}
