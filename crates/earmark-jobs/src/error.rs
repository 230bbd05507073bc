//! How queueing or reading a job fails.

/// A job could not be queued or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The library refused the request (a bad upload, an unknown work or
    /// recipient, a damaged ledger).
    #[error(transparent)]
    Earmark(#[from] earmark::Error),
    /// The caller's role does not allow what they asked.
    #[error("{0}")]
    Forbidden(String),
    /// No job has this id.
    #[error("no job has id {0}")]
    UnknownJob(String),
    /// An upload is larger than the service takes.
    #[error("the upload is larger than {limit_bytes} bytes; nothing was recorded")]
    TooLarge {
        /// The limit, bytes.
        limit_bytes: u64,
    },
    /// The queue's database failed.
    #[error("the job queue failed: {0}")]
    Queue(String),
    /// A file of the spool or the deliveries could not be written.
    #[error("{message}")]
    Write {
        /// What failed, with the path.
        message: String,
        /// The failure underneath.
        #[source]
        source: Option<std::io::Error>,
    },
}

impl JobError {
    pub(crate) fn queue(e: impl std::fmt::Display) -> Self {
        JobError::Queue(e.to_string())
    }

    /// [`JobError::Write`] caused by `source`: "`context`: `source`".
    pub fn write(context: impl std::fmt::Display, source: std::io::Error) -> Self {
        JobError::Write {
            message: format!("{context}: {source}"),
            source: Some(source),
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::queue(e)
    }
}
