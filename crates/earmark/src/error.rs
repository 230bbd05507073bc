//! Every way a library call can fail, as one enum: front ends map each
//! variant to their own signal (an exit code, an HTTP status).

use earmark_audio_io::AudioError;
use earmark_engine::EngineError;
use earmark_ledger::LedgerError;
use serde::Serialize;

use crate::accuse::BadEpsilon;

/// Why an operation failed. Each message is one line meant for the user;
/// [`Error::kind`] classifies it for a front end. New kinds of failure may
/// be added, so a match on the variants needs a catch-all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    #[error("{message}")]
    Key {
        /// One line for the user, the cause included.
        message: String,
        /// The failure reading or writing the file, if there was one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// An output could not be written.
    #[error("{message}")]
    Write {
        /// One line for the user, the cause included.
        message: String,
        /// The failure writing, if there was one.
        #[source]
        source: Option<std::io::Error>,
    },
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
    /// The caller cancelled the operation ([`crate::Progress::cancelled`]).
    #[error("cancelled; nothing was recorded")]
    Cancelled,
    /// A work asked for by id is of the other kind (a transcript given to
    /// audio tracing, or a recording to text tracing).
    #[error("work {work} is a {}, not a {}", if *.transcript { "transcript" } else { "recording" }, if *.transcript { "recording" } else { "transcript" })]
    OtherKindOfWork {
        /// The work's id.
        work: i64,
        /// Whether it is a transcript.
        transcript: bool,
    },
    /// A record the verdict relies on is missing or inconsistent.
    #[error("{0}")]
    Integrity(String),
    /// A token or password was refused: unknown, wrong, expired or revoked.
    #[error("{0}")]
    Unauthorized(String),
    /// No delivery link has this secret.
    #[error("no such link")]
    UnknownLink,
    /// A delivery link that was revoked, has expired or is used up.
    #[error("this link no longer works: {0}")]
    LinkGone(String),
}

impl Error {
    /// [`Error::Write`] with no underlying failure.
    pub(crate) fn write(message: impl Into<String>) -> Self {
        Error::Write {
            message: message.into(),
            source: None,
        }
    }

    /// [`Error::Write`] caused by `source`: "`context`: `source`".
    pub(crate) fn write_failed(context: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Write {
            message: format!("{context}: {source}"),
            source: Some(source),
        }
    }

    /// [`Error::Key`] with no underlying failure.
    pub(crate) fn key(message: impl Into<String>) -> Self {
        Error::Key {
            message: message.into(),
            source: None,
        }
    }

    /// [`Error::Key`] caused by `source`: "`context`: `source`".
    pub(crate) fn key_failed(context: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Key {
            message: format!("{context}: {source}"),
            source: Some(source),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is: the one classification every
/// front end maps to its own signal (the command's exit code, the
/// service's HTTP status), each in one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad arguments, payload or ε.
    Usage,
    /// Audio that cannot be read: missing, empty, corrupt, unsupported,
    /// too long, or changed while read.
    BadAudio,
    /// A key file missing, damaged, about to be overwritten, or not this
    /// home's.
    BadKey,
    /// An output that cannot be written.
    WriteFailed,
    /// Audio too short or too silent to carry the mark; a transcript with
    /// too few slots.
    TooLittleSignal,
    /// A program that is needed (ffmpeg, ffprobe, sox) is not installed.
    MissingTool,
    /// No home, or `init` on an existing one.
    NoHome,
    /// The ledger is damaged, altered, lost, unwritable or locked, or a
    /// backup is bad.
    Ledger,
    /// Unknown, duplicate, look-alike or malformed recipients.
    BadRecipients,
    /// A transcript or leaked text that cannot be read.
    BadText,
    /// A work id the ledger does not hold.
    UnknownWork,
    /// The caller cancelled the operation.
    Cancelled,
    /// A token or password refused.
    Unauthorized,
    /// A delivery link no one made.
    UnknownLink,
    /// A delivery link revoked, expired or used up.
    LinkGone,
}

impl ErrorKind {
    /// Every kind, for front ends that check their table covers them all.
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::Usage,
        ErrorKind::BadAudio,
        ErrorKind::BadKey,
        ErrorKind::WriteFailed,
        ErrorKind::TooLittleSignal,
        ErrorKind::MissingTool,
        ErrorKind::NoHome,
        ErrorKind::Ledger,
        ErrorKind::BadRecipients,
        ErrorKind::BadText,
        ErrorKind::UnknownWork,
        ErrorKind::Cancelled,
        ErrorKind::Unauthorized,
        ErrorKind::UnknownLink,
        ErrorKind::LinkGone,
    ];
}

impl Error {
    /// The kind of this failure.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Error::Usage(_) | Error::Epsilon(_) => K::Usage,
            Error::Audio(AudioError::Write { .. } | AudioError::UnsupportedOutput(_)) => {
                K::WriteFailed
            }
            Error::Audio(AudioError::MissingTool { .. }) => K::MissingTool,
            Error::Audio(_) => K::BadAudio,
            Error::Engine(EngineError::NoSound { .. }) => K::TooLittleSignal,
            Error::Engine(
                EngineError::BadStrength(_)
                | EngineError::BadProfile(_)
                | EngineError::BadFingerprint(_),
            ) => K::Usage,
            Error::Engine(EngineError::BadChannels | EngineError::BadRate(_)) => K::BadAudio,
            Error::Ledger(e) => ledger_kind(e),
            Error::Key { .. } => K::BadKey,
            Error::Write { .. } => K::WriteFailed,
            Error::Recipients(_) => K::BadRecipients,
            Error::Text(_) => K::BadText,
            Error::TooLittleSignal(_) => K::TooLittleSignal,
            Error::MissingTool(_) => K::MissingTool,
            Error::OtherKindOfWork { .. } => K::Usage,
            Error::Cancelled => K::Cancelled,
            Error::Integrity(_) => K::Ledger,
            Error::Unauthorized(_) => K::Unauthorized,
            Error::UnknownLink => K::UnknownLink,
            Error::LinkGone(_) => K::LinkGone,
        }
    }
}

fn ledger_kind(error: &LedgerError) -> ErrorKind {
    use ErrorKind as K;
    match error {
        LedgerError::NoHomeDirectory
        | LedgerError::NotInitialised(_)
        | LedgerError::AlreadyInitialised(_) => K::NoHome,
        LedgerError::MasterKey { .. } => K::BadKey,
        LedgerError::BackupTarget(_) => K::WriteFailed,
        LedgerError::UnknownWork(_) => K::UnknownWork,
        LedgerError::UnknownLink(_) => K::UnknownLink,
        LedgerError::DuplicateUser(_)
        | LedgerError::UnknownUser(_)
        | LedgerError::UnknownToken(_) => K::Usage,
        LedgerError::SourceChanged(_) => K::BadAudio,
        LedgerError::DuplicateRecipient(_)
        | LedgerError::BadName(_)
        | LedgerError::ConfusableRecipient { .. }
        | LedgerError::UnknownRecipient(_)
        | LedgerError::BadCsv { .. } => K::BadRecipients,
        LedgerError::Io { .. }
        | LedgerError::Database { .. }
        | LedgerError::LedgerLost { .. }
        | LedgerError::Tampered(_)
        | LedgerError::BadBackup(_)
        | LedgerError::ReadOnlyHome { .. }
        | LedgerError::Conflict(_)
        | LedgerError::Rollback(_)
        | LedgerError::BackupWithoutKey(_) => K::Ledger,
    }
}

#[cfg(test)]
mod tests {
    /// A service shares one home between its tasks and threads.
    #[test]
    fn a_home_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<crate::Home>();
        shared::<crate::Error>();
    }
}
