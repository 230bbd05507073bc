//! Exit codes and the one-line failure messages behind them.

use earmark::{AudioError, EngineError, Error, LedgerError};

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
/// A program the benchmark needs (ffmpeg, sox) is not installed.
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

/// The exit codes, for `earmark --help` (kept beside the constants above).
pub const HELP: &str = "\
Exit codes:
  0   done; `trace`/`extract` found a mark
  2   usage: bad arguments, payload or epsilon
  3   no watermark found; `trace` accuses nobody
  4   unreadable audio: missing, empty, corrupt, unsupported, too long
  5   key file missing, damaged or about to be overwritten
  6   output not writable (disk full, no such directory)
  7   audio too short or too silent to carry the mark
  8   a program that is needed (ffmpeg, sox) is missing
  9   `bench --gate` failed
  10  no home, or `init` on an existing one
  11  ledger: damaged, altered, lost, unwritable or locked; a bad backup
  12  unknown, duplicate, look-alike or malformed recipients
  13  unreadable transcript or leaked text";

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

/// The exit code of each library error.
fn code_of(error: &Error) -> i32 {
    match error {
        Error::Usage(_) | Error::Epsilon(_) => USAGE,
        Error::Audio(AudioError::Write { .. } | AudioError::UnsupportedOutput(_)) => WRITE_FAILED,
        Error::Audio(_) => BAD_AUDIO,
        Error::Engine(EngineError::TooLittleSignal { .. }) => TOO_LITTLE_SIGNAL,
        Error::Engine(EngineError::BadStrength(_) | EngineError::BadFingerprint(_)) => USAGE,
        Error::Engine(EngineError::BadChannels | EngineError::BadRate(_)) => BAD_AUDIO,
        Error::Ledger(
            LedgerError::NoHomeDirectory
            | LedgerError::NotInitialised(_)
            | LedgerError::AlreadyInitialised(_),
        ) => NO_HOME,
        Error::Ledger(LedgerError::MasterKey { .. }) => BAD_KEY,
        Error::Ledger(LedgerError::BackupTarget(_)) => WRITE_FAILED,
        Error::Ledger(
            LedgerError::DuplicateRecipient(_)
            | LedgerError::BadName(_)
            | LedgerError::ConfusableRecipient { .. }
            | LedgerError::UnknownRecipient(_)
            | LedgerError::UnknownWork(_)
            | LedgerError::BadCsv { .. },
        ) => BAD_RECIPIENTS,
        Error::Ledger(
            LedgerError::Io { .. }
            | LedgerError::Database(_)
            | LedgerError::LedgerLost { .. }
            | LedgerError::Tampered(_)
            | LedgerError::BadBackup(_)
            | LedgerError::ReadOnlyHome { .. }
            | LedgerError::Conflict(_),
        ) => LEDGER,
        Error::Ledger(LedgerError::SourceChanged(_)) => BAD_AUDIO,
        Error::Key(_) => BAD_KEY,
        Error::Write(_) => WRITE_FAILED,
        Error::Recipients(_) => BAD_RECIPIENTS,
        Error::Text(_) => BAD_TEXT,
        Error::TooLittleSignal(_) => TOO_LITTLE_SIGNAL,
        Error::MissingTool(_) => MISSING_TOOL,
        Error::Integrity(_) => LEDGER,
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            code: code_of(&error),
            message: error.to_string(),
        }
    }
}
