//! Leaks that arrive as bytes or as a stream (an upload) rather than as a
//! file: spooled once into a private temporary file in the home, in
//! 64 KiB chunks, so that tracing reads them as it reads any file, in
//! bounded memory, and the file is gone when the trace ends.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use earmark_audio_io::AudioError;

use crate::{Epsilon, Error, Home, Progress, Result, TraceReport, TraceRequest};

/// How a spooled leak is named in messages, for want of a file name.
const UPLOAD_NAME: &str = "the uploaded leak";
/// Bytes copied at a time while spooling.
const SPOOL_CHUNK_BYTES: usize = 64 * 1024;

/// A leaked recording to trace.
pub enum Leak {
    /// A file.
    Path(PathBuf),
    /// Bytes already in memory.
    Bytes(Vec<u8>),
    /// A stream, read once to its end: an upload's body, a pipe.
    Reader(Box<dyn Read + Send>),
    /// A file the caller spooled from an upload: read as a file, and named
    /// "the uploaded leak" in messages, never by its path.
    Upload(PathBuf),
}

impl std::fmt::Debug for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leak::Path(path) => f.debug_tuple("Path").field(path).finish(),
            Leak::Upload(path) => f.debug_tuple("Upload").field(path).finish(),
            Leak::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Leak::Reader(_) => f.write_str("Reader"),
        }
    }
}

impl From<PathBuf> for Leak {
    fn from(path: PathBuf) -> Self {
        Leak::Path(path)
    }
}

impl From<Vec<u8>> for Leak {
    fn from(bytes: Vec<u8>) -> Self {
        Leak::Bytes(bytes)
    }
}

impl Home {
    /// [`Home::trace`] of a leak given as a file, as bytes or as a stream.
    /// Bytes and streams are first written to a private temporary file in
    /// the home (removed when the trace ends, or by the next open of the
    /// home if the process is killed), and messages name them
    /// "the uploaded leak". [`Progress::cancelled`] is asked at every chunk.
    pub async fn trace_leak(
        &self,
        leak: Leak,
        work: Option<i64>,
        epsilon: Epsilon,
        progress: Arc<dyn Progress>,
    ) -> Result<TraceReport> {
        let home = self.clone();
        crate::blocking(move || {
            let mut spooled = None;
            let uploaded = !matches!(leak, Leak::Path(_));
            let path = match leak {
                Leak::Path(path) | Leak::Upload(path) => path,
                Leak::Bytes(bytes) => spooled
                    .insert(home.spool(&mut bytes.as_slice(), &*progress)?)
                    .path()
                    .to_path_buf(),
                Leak::Reader(mut reader) => spooled
                    .insert(home.spool(&mut reader, &*progress)?)
                    .path()
                    .to_path_buf(),
            };
            let request = TraceRequest {
                leak: path,
                work,
                epsilon,
            };
            let traced = home.trace_blocking(&request, &*progress);
            match (traced, uploaded) {
                (Err(Error::Audio(e)), true) => {
                    Err(Error::Audio(e.said_of(Path::new(UPLOAD_NAME))))
                }
                (traced, _) => traced,
            }
        })
        .await
    }

    /// Copies `source` to its end into a new private file in the home,
    /// named as a partial of this process so that a killed run's is
    /// removed by the next open.
    fn spool(
        &self,
        source: &mut dyn Read,
        progress: &dyn Progress,
    ) -> Result<tempfile::NamedTempFile> {
        let root = self.root();
        let write_error = |e: std::io::Error| Error::write_failed(root.display(), e);
        let mut file = tempfile::Builder::new()
            .prefix(".leak.")
            .suffix(&format!(".{}.partial", std::process::id()))
            .tempfile_in(root)
            .map_err(write_error)?;
        let mut buffer = vec![0u8; SPOOL_CHUNK_BYTES];
        loop {
            if progress.cancelled() {
                return Err(Error::Cancelled);
            }
            let n = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Audio(AudioError::Open {
                        path: UPLOAD_NAME.into(),
                        source,
                    }))
                }
            };
            file.write_all(&buffer[..n]).map_err(write_error)?;
        }
        file.flush().map_err(write_error)?;
        Ok(file)
    }
}

/// Whether the upload at `path` opens as audio (a known container and
/// codec, with a track), without decoding it: a service refuses a file that
/// is not audio at once, before queuing a trace of it. Messages name it
/// "the uploaded leak".
pub fn check_upload(path: &Path) -> Result<()> {
    crate::mark::require_regular_file(path)?;
    earmark_audio_io::AudioReader::open(path)
        .map(|_| ())
        .map_err(|e| Error::Audio(e.said_of(Path::new(UPLOAD_NAME))))
}
