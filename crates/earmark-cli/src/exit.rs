//! Exit codes and the one-line failure messages behind them.

use earmark_audio_io::AudioError;
use earmark_engine::EngineError;

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

    pub fn recipients(message: String) -> Self {
        Failure {
            code: BAD_RECIPIENTS,
            message,
        }
    }

    pub fn audio_path(path: &std::path::Path, error: std::io::Error) -> Self {
        Failure {
            code: BAD_AUDIO,
            message: format!("{}: {error}", path.display()),
        }
    }

    pub fn text(message: String) -> Self {
        Failure {
            code: BAD_TEXT,
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

    pub fn key(message: String) -> Self {
        Failure {
            code: BAD_KEY,
            message,
        }
    }

    pub fn audio(error: AudioError) -> Self {
        let code = match error {
            AudioError::Write { .. } | AudioError::UnsupportedOutput(_) => WRITE_FAILED,
            _ => BAD_AUDIO,
        };
        Failure {
            code,
            message: error.to_string(),
        }
    }

    pub fn engine(error: EngineError) -> Self {
        let code = match error {
            EngineError::TooLittleSignal { .. } => TOO_LITTLE_SIGNAL,
            EngineError::BadStrength(_) | EngineError::BadFingerprint(_) => USAGE,
            EngineError::BadChannels | EngineError::BadRate(_) => BAD_AUDIO,
        };
        Failure {
            code,
            message: error.to_string(),
        }
    }
}
