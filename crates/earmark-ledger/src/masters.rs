//! The master store: `masters/<sha-256>`, a byte-for-byte copy of every
//! file marked, kept for informed tracing and checked against its name
//! wherever it is read.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::Digest;

use crate::{create_private_dir, io, remove_stale_partials, Home, LedgerError, MASTERS_DIR};

/// Tells apart the temporary files of concurrent ingests in one process.
static INGESTS: AtomicU64 = AtomicU64::new(0);

/// A master taken into the store.
#[derive(Clone, Debug)]
pub struct Ingested {
    /// SHA-256 of the bytes stored, hex.
    pub content_hash: String,
    /// Where they are.
    pub path: PathBuf,
    /// Whether this call put them there (no master of that content was
    /// stored before), so that a failed `mark` knows to take it away.
    pub fresh: bool,
}

impl Home {
    /// Where the master of the work with SHA-256 `content_hash` (hex) is kept,
    /// whatever its format: `masters/<hash>`. The file is a byte-for-byte
    /// copy of what was marked, so nothing is lost.
    pub fn master_path(&self, content_hash: &str) -> PathBuf {
        self.root.join(MASTERS_DIR).join(content_hash)
    }

    /// Copies `source` into the store, hashing the bytes as they are
    /// copied: what is stored is exactly what was hashed, however the
    /// source changes later, so the caller reads the stored copy. The copy
    /// goes to a private temporary file, is fsynced, then renamed, so a
    /// crash leaves no master or a whole one.
    ///
    /// A source that changes while it is copied (its size or modification
    /// time differ before and after, or fewer bytes come than it had) is
    /// refused with [`LedgerError::SourceChanged`].
    pub fn ingest_master(&self, source: &Path) -> Result<Ingested, LedgerError> {
        let dir = self.root.join(MASTERS_DIR);
        create_private_dir(&dir)?;
        // Temporary files of killed runs.
        remove_stale_partials(&dir);
        let partial = dir.join(format!(
            ".ingest-{}.{}.partial",
            INGESTS.fetch_add(1, Ordering::Relaxed),
            std::process::id()
        ));
        let copied = copy_hashing(source, &partial);
        let content_hash = match copied {
            Ok(hash) => hash,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        let path = self.master_path(&content_hash);
        let fresh = !path.is_file();
        // Replacing a stored master by the same bytes also repairs one that
        // was altered in place.
        std::fs::rename(&partial, &path).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            io(&path)(e)
        })?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(Ingested {
            content_hash,
            path,
            fresh,
        })
    }

    /// Removes the master of `content_hash`; `false` if there was none.
    pub fn forget_master(&self, content_hash: &str) -> Result<bool, LedgerError> {
        let target = self.master_path(content_hash);
        match std::fs::remove_file(&target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&target)(e)),
        }
    }
}

/// Copies `source` to a new private file `to` (fsynced), returning the
/// SHA-256 (hex) of the bytes copied.
fn copy_hashing(source: &Path, to: &Path) -> Result<String, LedgerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let changed = || LedgerError::SourceChanged(source.to_path_buf());
    let mut from = std::fs::File::open(source).map_err(io(source))?;
    let before = from.metadata().map_err(io(source))?;
    // Created private whatever the source's mode.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(io(to))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buffer).map_err(io(source))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n]).map_err(io(to))?;
        total += n as u64;
    }
    out.sync_all().map_err(io(to))?;
    let after = from.metadata().map_err(io(source))?;
    if total != before.len()
        || after.len() != before.len()
        || after.modified().ok() != before.modified().ok()
    {
        return Err(changed());
    }
    Ok(hex::encode(hasher.finalize()))
}
