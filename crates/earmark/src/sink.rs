//! Where marked copies go: a directory, or any store a front end supplies
//! (a service's blob store). Each copy is written whole at a staging path
//! the sink gives, read back, and only then published, inside the ledger
//! transaction that records it: a recorded copy is always a published one,
//! and a set that fails midway is taken back and leaves nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Result;

/// A destination for marked copies.
pub trait CopySink: Send + Sync + std::fmt::Debug {
    /// Checks the destination before anything is read or registered
    /// (`home` is the earmark home, where copies must never go).
    fn check(&self, home: &Path) -> Result<()>;
    /// Makes the destination ready for a set of copies, and removes what a
    /// killed run left staged there.
    fn prepare(&self) -> Result<()>;
    /// Where the copy under `partial_name` (unique to this operation) is
    /// written before it is published.
    fn staging_path(&self, partial_name: &str) -> PathBuf;
    /// Where the copy named `file_name` is once published: recorded in the
    /// ledger and reported.
    fn target(&self, file_name: &str) -> PathBuf;
    /// Publishes a fully written, checked copy: from `staged` to `target`.
    fn publish(&self, staged: &Path, target: &Path) -> std::io::Result<()>;
    /// Takes a published copy back to where it was staged (its set failed).
    fn withdraw(&self, target: &Path, staged: &Path);
    /// Makes the publications of a set durable.
    fn sync(&self);
    /// Where the copies are, for reports.
    fn location(&self) -> PathBuf;
}

/// Where a `mark` puts its copies.
#[derive(Clone, Debug)]
pub enum Destination {
    /// A directory, created if missing (never inside the home, never
    /// reached through `..` when it must be created).
    Directory(PathBuf),
    /// A sink of the caller's.
    Sink(Arc<dyn CopySink>),
}

impl From<PathBuf> for Destination {
    fn from(dir: PathBuf) -> Self {
        Destination::Directory(dir)
    }
}

impl From<&Path> for Destination {
    fn from(dir: &Path) -> Self {
        Destination::Directory(dir.to_path_buf())
    }
}

impl Destination {
    /// The sink this destination writes through.
    pub fn sink(&self) -> Arc<dyn CopySink> {
        match self {
            Destination::Directory(dir) => Arc::new(DirectorySink { dir: dir.clone() }),
            Destination::Sink(sink) => Arc::clone(sink),
        }
    }
}

/// Copies as files in one directory, published by renaming them from
/// their hidden partial names in the same directory.
#[derive(Clone, Debug)]
pub struct DirectorySink {
    /// The directory.
    pub dir: PathBuf,
}

impl CopySink for DirectorySink {
    fn check(&self, home: &Path) -> Result<()> {
        crate::output::check_output_dir(&self.dir, home)
    }

    fn prepare(&self) -> Result<()> {
        crate::output::create_output_dir(&self.dir)?;
        // Copies a killed run left half-written.
        earmark_ledger::remove_stale_partials(&self.dir);
        Ok(())
    }

    fn staging_path(&self, partial_name: &str) -> PathBuf {
        self.dir.join(partial_name)
    }

    fn target(&self, file_name: &str) -> PathBuf {
        self.dir.join(file_name)
    }

    fn publish(&self, staged: &Path, target: &Path) -> std::io::Result<()> {
        std::fs::rename(staged, target)
    }

    fn withdraw(&self, target: &Path, staged: &Path) {
        let _ = std::fs::rename(target, staged);
    }

    fn sync(&self) {
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
    }

    fn location(&self) -> PathBuf {
        self.dir.clone()
    }
}
