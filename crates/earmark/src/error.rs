//! Every way a library call can fail, as one enum: front ends map each
//! variant to their own signal (an exit code, an HTTP status).

use earmark_audio_io::AudioError;
use earmark_engine::EngineError;
use earmark_ledger::LedgerError;

use crate::accuse::BadEpsilon;

/// Why an operation failed. Each message is one line meant for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request that makes no sense as given (an argument, a payload, a
    /// confirmation missing).
    #[error("{0}")]
    Usage(String),
    /// The false-accusation budget is not a probability.
    #[error(transparent)]
    Epsilon(#[from] BadEpsilon),
    /// Audio could not be read or written.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The watermark engine refused the signal or a parameter.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The home or its ledger failed, or refused a request.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A key file is missing, damaged, or would be overwritten.
    #[error("{0}")]
    Key(String),
    /// An output could not be written.
    #[error("{0}")]
    Write(String),
    /// Unknown, duplicate or malformed recipients.
    #[error("{0}")]
    Recipients(String),
    /// A transcript or leaked text could not be read.
    #[error("{0}")]
    Text(String),
    /// Too little signal to carry a mark (a transcript with too few slots,
    /// a self-check that failed).
    #[error("{0}")]
    TooLittleSignal(String),
    /// An outside program the request needs is not installed.
    #[error("{0}")]
    MissingTool(String),
    /// A record the verdict relies on is missing or inconsistent.
    #[error("{0}")]
    Integrity(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
