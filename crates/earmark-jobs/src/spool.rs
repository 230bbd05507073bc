//! The spool: uploads written to private files in the home as they
//! arrive, kept for their job or removed.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::JobError;

/// The largest upload taken by default, bytes (2 GiB).
pub const DEFAULT_UPLOAD_LIMIT_BYTES: u64 = 2 << 30;

/// A private spool file being written or waiting for its job. Dropped
/// without being taken by a job, it is removed.
#[derive(Debug)]
pub struct Spooled {
    path: PathBuf,
    kept: bool,
}

impl Spooled {
    /// A new empty file (0600, created exclusively) in `dir`.
    pub(crate) fn create(dir: &Path) -> Result<Spooled, JobError> {
        let mut random = [0u8; 12];
        getrandom::fill(&mut random).map_err(|e| {
            JobError::write(
                "no randomness for a spool file name",
                std::io::Error::other(e.to_string()),
            )
        })?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = dir.join(format!(".upload-{name}.{}.partial", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| JobError::write(path.display(), e))?;
        Ok(Spooled { path, kept: false })
    }

    /// Where to write the upload.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the file to `target` (in the same directory tree) and keeps it.
    pub(crate) fn keep_as(mut self, target: &Path) -> Result<(), JobError> {
        std::fs::rename(&self.path, target).map_err(|e| JobError::write(target.display(), e))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates `dir` (0700) if it is missing.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), JobError> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(JobError::write(dir.display(), e)),
    }
}
