//! earmark's home: where the master key and the ledger live.
//!
//! Owns: locating the home (`--home`, `$EARMARK_HOME`, the XDG data
//! directory), creating it (a 0700 directory, a 0600 master key, a ledger
//! database with versioned migrations, SQLite today, whose dialect is kept
//! to one private module so that a shared PostgreSQL ledger can follow
//! without changing this API), and every read and write of the
//! ledger: recipients, works, delivered copies and the append-only,
//! HMAC-chained audit log; and the masters store, byte-for-byte copies of
//! the registered works' files named by their SHA-256 (which informed
//! tracing needs). Must not touch: audio decoding, the watermark, or how
//! identifiers are coded (`earmark-codes`).
//!
//! The API is asynchronous and owns no runtime: every operation of a
//! [`Ledger`] is an `async fn` on a sqlx pool, run on the caller's tokio
//! runtime. [`Ledger::close`] folds the write-ahead log into the file when
//! the caller is done. Writers take the database's write lock up front and
//! wait up to [`BUSY_TIMEOUT`] for it, so concurrent `earmark` processes
//! queue instead of failing or corrupting the ledger.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use earmark_keys::{Label, SecretKey};

pub mod actor;
mod backup;
mod integrity;
pub use backup::{restore, BackupReport, Manifest, RestoreReport, BACKUP_FORMAT};
mod audit;
mod checked;
mod checkpoint;
mod links;
mod masters;
pub mod names;
mod recipients;
mod store;
mod users;
pub use links::{Download, Link, NewLink};
pub use recipients::{read_recipient_csv, CsvRows};
pub use users::{Role, Token, User};
mod works;
use integrity::CopyRow;
pub use integrity::{Counts, HEAD_LABEL, ROW_LABEL};
pub use masters::Ingested;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Row, SqlSafeStr};
pub use works::{Reservation, WorkSpec};

/// How long a writer waits for another process's transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
/// Label of the audit chain's HMAC key (derived from the master key).
pub const AUDIT_LABEL: Label = Label("earmark/v1/ledger/audit");
/// The previous hash of the first audit row.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const MASTER_KEY_FILE: &str = "keystore/master.key";

/// A head to record: the newest audit row's seq and hash, and the ids
/// issued then.
type HeadAt = (i64, String, integrity::Issued);
const LEDGER_FILE: &str = "ledger.sqlite";
const AUDIT_HEAD_FILE: &str = "audit.head";
/// The home's random identity, also stored in its ledger.
const HOME_ID_FILE: &str = "home.id";
/// Label of the home id: a MAC under a fresh random key, so the id is random
/// and tells nothing about any key the home keeps.
const HOME_ID_LABEL: Label = Label("earmark/v1/ledger/home-id");
/// Folder of the masters store: one byte-for-byte copy of each registered
/// work's file, named by its SHA-256.
const MASTERS_DIR: &str = "masters";
/// File holding the landmark index of every registered master.
const LANDMARKS_FILE: &str = "landmarks.idx";
/// Lock file serialising writers of [`LANDMARKS_FILE`].
const LANDMARKS_LOCK: &str = "landmarks.lock";

/// Why the home or the ledger could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// No home directory could be determined.
    #[error("no home directory: EARMARK_HOME, XDG_DATA_HOME and HOME are all unset")]
    NoHomeDirectory,
    /// The home has not been created.
    #[error("no earmark home at {0}")]
    NotInitialised(PathBuf),
    /// `init` on an existing home.
    #[error("an earmark home already exists at {0}")]
    AlreadyInitialised(PathBuf),
    /// The master key file is unreadable or damaged.
    #[error("master key {path}: {message}")]
    MasterKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file of the home could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The database refused or failed.
    #[error("ledger: {message}")]
    Database {
        /// One line for the user, the cause included.
        message: String,
        /// The database's own error, if there was one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A recipient name is taken.
    #[error("a recipient named {0} already exists")]
    DuplicateRecipient(String),
    /// A recipient name is blank, too long or holds invisible characters.
    #[error("{0}")]
    BadName(#[from] names::NameError),
    /// A new name could be taken for an existing recipient's.
    #[error("the name {name} looks like that of the existing recipient {existing}; add something that tells them apart")]
    ConfusableRecipient {
        /// The new name, escaped.
        name: String,
        /// The existing one, escaped.
        existing: String,
    },
    /// A recipient name is not in the ledger.
    #[error("no recipient named {0}")]
    UnknownRecipient(String),
    /// Another command changed what this one relied on, between reading
    /// and writing; nothing was recorded, and running it again is safe.
    #[error("{0}; nothing was recorded, run the command again")]
    Conflict(String),
    /// A file changed while it was being read into the home.
    #[error("{0} changed while it was being read; nothing was recorded")]
    SourceChanged(PathBuf),
    /// A work id is not in the ledger.
    #[error("no work with id {0}")]
    UnknownWork(i64),
    /// A user name is taken.
    #[error("a user named {0} already exists")]
    DuplicateUser(String),
    /// A user name is not in the ledger.
    #[error("no user named {0}")]
    UnknownUser(String),
    /// A token id is not in the ledger.
    #[error("no token with id {0}")]
    UnknownToken(i64),
    /// A link id is not in the ledger.
    #[error("no link with id {0}")]
    UnknownLink(i64),
    /// The home cannot be written: every command records in its ledger.
    #[error("the home at {path} cannot be written ({source}); earmark records every command, reads included, in its ledger. Make it writable (a read-only mount, a full disk, another user's files) and try again; nothing was changed")]
    ReadOnlyHome {
        /// The home.
        path: PathBuf,
        /// Why a file could not be created in it.
        source: std::io::Error,
    },
    /// The ledger of a home that holds records is empty, damaged or another
    /// home's: refused, never replaced by a new one.
    #[error("{path}: {detail}, yet this home has recorded deliveries; earmark will not start a new ledger in place of a lost one (an old leak would then accuse whoever gets its identifier next). Restore ledger.sqlite from a backup; nothing was changed")]
    LedgerLost {
        /// The ledger file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A record a verdict relies on fails its check: nobody is accused on
    /// such a ledger.
    #[error("the ledger fails its integrity check: {0}. Nobody is accused on records that may have been altered")]
    Tampered(String),
    /// A restore would roll the home back below the ids it had issued.
    #[error("{0}")]
    Rollback(String),
    /// A backup taken without the master key, restored without one.
    #[error("{0} holds no master key (it was taken without one)")]
    BackupWithoutKey(PathBuf),
    /// A backup cannot be written where asked.
    #[error("{0}")]
    BackupTarget(String),
    /// A backup cannot be restored: not one, damaged, or of another home.
    #[error("{0}")]
    BadBackup(String),
    /// A CSV row is bad; nothing was imported.
    #[error("{path}, line {line}: {message} (nothing imported)")]
    BadCsv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        LedgerError::Database {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The home directory to use: `explicit`, else `$EARMARK_HOME`, else
/// `$XDG_DATA_HOME/earmark`, else `$HOME/.local/share/earmark`.
pub fn locate_home(explicit: Option<&Path>) -> Result<PathBuf, LedgerError> {
    let non_empty = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = non_empty("EARMARK_HOME") {
        return Ok(path);
    }
    if let Some(data) = non_empty("XDG_DATA_HOME") {
        return Ok(data.join("earmark"));
    }
    non_empty("HOME")
        .map(|home| home.join(".local/share/earmark"))
        .ok_or(LedgerError::NoHomeDirectory)
}

/// The versioned schema, compiled into the binary.
fn migrator() -> Migrator {
    let migration = |version: i64, name: &'static str, sql: &'static str| {
        Migration::new(
            version,
            Cow::Borrowed(name),
            MigrationType::Simple,
            sql.into_sql_str(),
            false,
        )
    };
    Migrator::with_migrations(vec![
        migration(1, "ledger", include_str!("../migrations/0001_ledger.sql")),
        migration(
            2,
            "transcripts",
            include_str!("../migrations/0002_transcripts.sql"),
        ),
        migration(
            3,
            "home identity",
            include_str!("../migrations/0003_home_identity.sql"),
        ),
        migration(
            4,
            "row MACs",
            include_str!("../migrations/0004_row_macs.sql"),
        ),
        migration(5, "users", include_str!("../migrations/0005_users.sql")),
        migration(6, "links", include_str!("../migrations/0006_links.sql")),
    ])
}

/// Creates a home at `root`: the directory (0700), the ledger with its
/// schema and the home id, and last a new master key (0600), whose
/// presence is what makes a home. Refuses an existing home. A run killed
/// before the key was in place left a ledger without records, which the
/// next `init` clears and makes again; a ledger with records but no key is
/// a lost key, refused.
pub async fn init(root: &Path) -> Result<(), LedgerError> {
    let key_path = root.join(MASTER_KEY_FILE);
    if key_path.exists() {
        return Err(LedgerError::AlreadyInitialised(root.to_path_buf()));
    }
    let db_path = root.join(LEDGER_FILE);
    if db_path.exists() {
        if half_made(&db_path).await? {
            for leftover in [
                db_path.clone(),
                root.join(format!("{LEDGER_FILE}-wal")),
                root.join(format!("{LEDGER_FILE}-shm")),
                root.join(HOME_ID_FILE),
            ] {
                match std::fs::remove_file(&leftover) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&leftover)(e)),
                }
            }
        } else {
            return Err(LedgerError::MasterKey {
                path: key_path,
                message: "missing, while the ledger beside it holds records: restore the key (or the whole home) from a backup; nothing was changed".into(),
            });
        }
    }
    create_private_dir(root)?;
    create_private_dir(&root.join("keystore"))?;
    remove_stale_partials(root);
    remove_stale_partials(&root.join("keystore"));
    // Created empty and private first: SQLite takes an empty file as a new
    // database, and gives its log files the database file's mode.
    write_new_private_file(&db_path, b"")?;
    let ledger = Ledger::connect(&db_path, true).await?;
    let made = async {
        ledger.migrate().await?;
        ledger.claim_for(root, &new_home_id()).await
    }
    .await;
    ledger.close().await;
    made?;
    let partial = root.join(format!(
        "keystore/.master.key.{}.partial",
        std::process::id()
    ));
    write_new_private_file(&partial, SecretKey::generate().to_file_text().as_bytes())?;
    std::fs::rename(&partial, &key_path).map_err(io(&key_path))?;
    if let Ok(dir) = std::fs::File::open(root.join("keystore")) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Whether the ledger at `path` is what a killed `init` leaves: no
/// recipient, work or audit row (or not even its tables).
async fn half_made(path: &Path) -> Result<bool, LedgerError> {
    if std::fs::metadata(path).map_err(io(path))?.len() == 0 {
        return Ok(true);
    }
    let ledger = Ledger::connect(path, false).await?;
    let half_made = async {
        let mut rows = 0i64;
        for table in ["recipients", "works", "audit"] {
            if store::has_table(&ledger.pool, table).await? {
                rows += sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM {table}"
                )))
                .fetch_one(&ledger.pool)
                .await?;
            }
        }
        Ok(rows == 0)
    }
    .await;
    ledger.close().await;
    half_made
}

fn new_home_id() -> String {
    let mac = SecretKey::generate().mac(HOME_ID_LABEL, b"");
    hex::encode(&mac[..16])
}

/// Creates `path` (and its parents) as a directory only its owner can
/// enter; an existing one, such as a 0755 directory given to `init`, is
/// tightened to 0700.
#[cfg(unix)]
fn create_private_dir(path: &Path) -> Result<(), LedgerError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io(path))?;
    tighten(path, 0o700)
}

/// Takes away every permission `path` has beyond `mode`.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> Result<(), LedgerError> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)
        .map_err(io(path))?
        .permissions()
        .mode();
    if current & 0o777 & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))
            .map_err(io(path))?;
    }
    Ok(())
}

/// Removes `dir`'s temporary files and directories (`.<name>.<pid>.partial`,
/// or `.<name>.<pid>.partial.<ext>` for delivered copies) whose process is
/// gone: a run killed midway left them for ever. A live process's file is
/// kept, so concurrent runs are safe; without `/proc` nothing is removed.
pub fn remove_stale_partials(dir: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix('.') else {
            continue;
        };
        let Some(at) = rest.rfind(".partial") else {
            continue;
        };
        let tail = &rest[at + ".partial".len()..];
        if !(tail.is_empty() || (tail.starts_with('.') && !tail[1..].contains('.'))) {
            continue;
        }
        let Some(pid) = rest[..at]
            .rsplit('.')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !proc.join(pid.to_string()).exists() {
            // A killed backup leaves a staging directory of this form.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir_all(entry.path());
            } else {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(unix)]
fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), LedgerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// An opened home: its master key and ledger.
pub struct Home {
    /// The home directory.
    pub root: PathBuf,
    /// The master secret; per-purpose keys derive from it and are never stored.
    pub master: SecretKey,
    /// The ledger.
    pub ledger: Ledger,
    /// The home's random identity (`home.id`, and in the ledger).
    pub id: String,
}

impl Home {
    /// Opens the home at `root`, bringing the ledger's schema up to date.
    pub async fn open(root: &Path) -> Result<Home, LedgerError> {
        let key_path = root.join(MASTER_KEY_FILE);
        let db_path = root.join(LEDGER_FILE);
        if !key_path.is_file() {
            return Err(LedgerError::NotInitialised(root.to_path_buf()));
        }
        if !db_path.is_file() {
            return Err(if root.join(HOME_ID_FILE).exists() {
                LedgerError::LedgerLost {
                    path: db_path,
                    detail: "the file is missing".into(),
                }
            } else {
                LedgerError::NotInitialised(root.to_path_buf())
            });
        }
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(&key_path).map_err(|e| {
            LedgerError::MasterKey {
                path: key_path.clone(),
                message: e.to_string(),
            }
        })?);
        let master = SecretKey::from_file_text(&text).map_err(|e| LedgerError::MasterKey {
            path: key_path.clone(),
            message: e.to_string(),
        })?;
        // SQLite only says "unable to open database file" of a home it
        // cannot write (its log and index files live beside the ledger).
        if let Err(source) = tempfile::tempfile_in(root) {
            return Err(LedgerError::ReadOnlyHome {
                path: root.to_path_buf(),
                source,
            });
        }
        // Homes made before these files were created private are tightened.
        tighten(root, 0o700)?;
        tighten(&key_path, 0o600)?;
        tighten(&db_path, 0o600)?;
        remove_stale_partials(root);
        remove_stale_partials(&root.join(MASTERS_DIR));
        let home_id = match std::fs::read_to_string(root.join(HOME_ID_FILE)) {
            Ok(id) => Some(id.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&root.join(HOME_ID_FILE))(e)),
        };
        let used = home_id.is_some()
            || root.join(AUDIT_HEAD_FILE).exists()
            || std::fs::read_dir(root.join(MASTERS_DIR)).is_ok_and(|mut d| d.next().is_some());
        let lost = |detail: String| LedgerError::LedgerLost {
            path: db_path.clone(),
            detail,
        };
        // Checked before SQLite touches the file: opening an empty file would
        // make it a new, empty ledger.
        if used && std::fs::metadata(&db_path).map_err(io(&db_path))?.len() == 0 {
            return Err(lost("the file is empty".into()));
        }
        let mut ledger = Ledger::connect(&db_path, false).await?;
        let tables = ledger.table_count().await?;
        if used && tables == 0 {
            return Err(lost("it holds no tables".into()));
        }
        ledger.migrate().await?;
        let recorded = ledger.home_identity().await?;
        let id = match (home_id, recorded) {
            (Some(id), Some(recorded)) if id == recorded => id,
            (Some(id), Some(recorded)) => {
                return Err(lost(format!(
                    "it belongs to the home {recorded}, this home is {id}"
                )))
            }
            (Some(id), None) => return Err(lost(format!("it does not name this home ({id})"))),
            // A home made before homes had an identity: given one now.
            (None, _) => ledger.claim_for(root, &new_home_id()).await?,
        };
        ledger.audit_key = master.derive(AUDIT_LABEL);
        ledger.row_key = master.derive(ROW_LABEL);
        ledger.head_key = master.derive(HEAD_LABEL);
        ledger.head_path = root.join(AUDIT_HEAD_FILE);
        ledger.home_id = id.clone();
        ledger.finish_upgrades().await?;
        Ok(Home {
            root: root.to_path_buf(),
            ledger,
            master,
            id,
        })
    }
}

impl Home {
    /// The landmark index's bytes, as last written (empty if none was).
    /// The file is replaced atomically, so a reader never sees half of one.
    pub fn read_landmarks(&self) -> Result<Vec<u8>, LedgerError> {
        let path = self.root.join(LANDMARKS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Replaces the landmark index by `update(current bytes)`, holding an
    /// exclusive lock so that concurrent `mark` runs each add their work:
    /// written to a temporary file, fsynced, then renamed into place.
    pub fn update_landmarks(
        &self,
        update: impl FnOnce(Vec<u8>) -> Vec<u8>,
    ) -> Result<(), LedgerError> {
        use std::os::unix::fs::OpenOptionsExt;
        let lock_path = self.root.join(LANDMARKS_LOCK);
        // Private whatever the umask: the home's files are 0600.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let bytes = update(self.read_landmarks()?);
        let target = self.root.join(LANDMARKS_FILE);
        let partial = self
            .root
            .join(format!(".{LANDMARKS_FILE}.{}.partial", std::process::id()));
        let _ = std::fs::remove_file(&partial);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                f.sync_all()
            })
            .map_err(io(&partial))?;
        std::fs::rename(&partial, &target).map_err(io(&target))?;
        drop(lock);
        Ok(())
    }
}

/// A recipient.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Recipient {
    /// Ledger id: the recipient index the watermark carries.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// E-mail address, if given.
    pub email: Option<String>,
    /// Organisation, if given.
    pub org: Option<String>,
    /// When added (UTC, RFC 3339).
    pub created_at: String,
    /// When removed while holding copies (UTC, RFC 3339): kept so that
    /// their copies still name them, but never marked for again.
    pub retired_at: Option<String>,
}

/// What [`Ledger::remove_recipient`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Removal {
    /// They held no copy: their row is gone.
    Deleted(Recipient),
    /// They hold copies: kept and marked retired.
    Retired {
        /// The recipient, as retired.
        recipient: Recipient,
        /// Copies they hold.
        copies: usize,
    },
}

/// A registered recording.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Work {
    /// Ledger id: the work index the watermark carries.
    pub id: i64,
    /// SHA-256 of the master file, hex.
    pub content_hash: String,
    /// Title, if given.
    pub title: Option<String>,
    /// Duration, seconds.
    pub duration_s: f64,
    /// Sample rate, Hz.
    pub rate: i64,
    /// Channel count.
    pub channels: i64,
    /// When registered (UTC, RFC 3339).
    pub created_at: String,
    /// What the work is: [`AUDIO`] or [`TRANSCRIPT`].
    pub kind: String,
    /// Spoken words (transcripts only).
    pub words: Option<i64>,
}

/// [`Work::kind`] of a recording.
pub const AUDIO: &str = "audio";
/// [`Work::kind`] of a transcript (duration, rate and channels are 0).
pub const TRANSCRIPT: &str = "transcript";

/// A delivered copy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CopyRecord {
    /// The work.
    pub work_id: i64,
    /// The recipient.
    pub recipient_id: i64,
    /// Engine payload (hex).
    pub payload: String,
    /// SHA-256 of the delivered file, hex.
    pub output_hash: String,
    /// `wav` or `flac`.
    pub format: String,
    /// Where it was written.
    pub path: String,
    /// When (UTC, RFC 3339); set by the ledger when recorded.
    pub created_at: String,
}

/// One audit row.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Sequence number, from 1.
    pub seq: i64,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// `mark`, `trace`, `recipient`, …
    pub action: String,
    /// JSON details.
    pub detail: String,
    /// The previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// The ledger database.
pub struct Ledger {
    pool: store::Pool,
    audit_key: SecretKey,
    row_key: SecretKey,
    head_key: SecretKey,
    head_path: PathBuf,
    /// Ids of new works reserved by marks of this process that have not
    /// finished, so that concurrent marks reserve different ones.
    reserved_works: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<i64>>>,
    /// What the last full check of this ledger verified, advanced by every
    /// check since: held in memory only, where no one who can write the
    /// database or the home's files can reach it.
    verified: std::sync::Mutex<Option<integrity::Verified>>,
    /// The seq of the checkpoint last stored on disk or loaded from it.
    stored_checkpoint: std::sync::atomic::AtomicI64,
    /// The home this ledger belongs to (empty for a backup's copy, which
    /// keeps no checkpoint).
    home_id: String,
}

fn copy_from_row(row: &crate::store::DbRow) -> CopyRecord {
    CopyRecord {
        work_id: row.get("work_id"),
        recipient_id: row.get("recipient_id"),
        payload: row.get("payload"),
        output_hash: row.get("output_hash"),
        format: row.get("format"),
        path: row.get("path"),
        created_at: row.get("created_at"),
    }
}

/// Now, UTC, RFC 3339.
fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formats any date")
}

fn recipient_from(row: &crate::store::DbRow) -> Recipient {
    Recipient {
        id: row.get("id"),
        name: row.get("name"),
        email: row.get("email"),
        org: row.get("org"),
        created_at: row.get("created_at"),
        retired_at: row.get("retired_at"),
    }
}

fn work_from(row: &crate::store::DbRow) -> Work {
    Work {
        id: row.get("id"),
        content_hash: row.get("content_hash"),
        title: row.get("title"),
        duration_s: row.get("duration_s"),
        rate: row.get("rate"),
        channels: row.get("channels"),
        created_at: row.get("created_at"),
        kind: row.get("kind"),
        words: row.get("words"),
    }
}

/// The SQL for the next id of `table` (`recipients` or `works`, a fixed
/// name): above every id it holds, and above every id the home had issued
/// before a restore rolled it back (recorded in the chained `restore` audit
/// row), so that no id, and no identifier sealing it, is issued twice.
fn next_id_sql(table: &'static str) -> String {
    format!(
        "MAX(COALESCE((SELECT MAX(id) FROM {table}), 0), {}) + 1",
        store::issued_before_restore_sql(table)
    )
}

/// Inserts a recipient and MACs the row.
async fn insert_recipient(
    conn: &mut crate::store::Connection,
    row_key: &SecretKey,
    name: &str,
    email: Option<&str>,
    org: Option<&str>,
) -> Result<Recipient, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO recipients (id, name, email, org, created_at) VALUES ({}, ?, ?, ?, ?) RETURNING *",
        next_id_sql("recipients")
    )))
    .bind(name)
    .bind(email)
    .bind(org)
    .bind(now())
    .fetch_one(&mut *conn)
    .await?;
    let recipient = recipient_from(&row);
    seal_recipient(conn, row_key, &recipient).await?;
    Ok(recipient)
}

/// Writes `mac` as the MAC of row `id` of `table` (a fixed name).
async fn store_mac(
    conn: &mut crate::store::Connection,
    table: &'static str,
    id: i64,
    mac: String,
) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET mac = ? WHERE id = ?"
    )))
    .bind(mac)
    .bind(id)
    .execute(conn)
    .await
    .map(drop)
}

/// Writes the MAC of a recipient row as it now stands.
async fn seal_recipient(
    conn: &mut crate::store::Connection,
    row_key: &SecretKey,
    r: &Recipient,
) -> Result<(), sqlx::Error> {
    store_mac(
        conn,
        "recipients",
        r.id,
        integrity::recipient_mac(row_key, r),
    )
    .await
}

/// Writes the MAC of a work row as it now stands.
async fn seal_work(
    conn: &mut crate::store::Connection,
    row_key: &SecretKey,
    w: &Work,
) -> Result<(), sqlx::Error> {
    store_mac(conn, "works", w.id, integrity::work_mac(row_key, w)).await
}

/// Writes the MAC of a copy row as it now stands.
async fn seal_copy(
    conn: &mut crate::store::Connection,
    row_key: &SecretKey,
    c: &CopyRow,
) -> Result<(), sqlx::Error> {
    store_mac(conn, "copies", c.id, integrity::copy_mac(row_key, c)).await
}

fn copy_row_from(row: &crate::store::DbRow) -> CopyRow {
    CopyRow {
        id: row.get("id"),
        copy: copy_from_row(row),
        mac: row.get("mac"),
    }
}

/// The audit chain's link: an HMAC over the previous row's hash and this
/// row's fields, each length-prefixed.
pub(crate) fn chain_hash(
    audit_key: &SecretKey,
    prev_hash: &str,
    seq: i64,
    at: &str,
    action: &str,
    detail: &str,
) -> String {
    let mut message = Vec::new();
    for field in [prev_hash, &seq.to_string(), at, action, detail] {
        message.extend_from_slice(&(field.len() as u64).to_be_bytes());
        message.extend_from_slice(field.as_bytes());
    }
    hex::encode(audit_key.mac(AUDIT_LABEL, &message))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Ledger {
    /// Folds everything the write-ahead log holds into the database file
    /// and closes the connections, so that the file alone is the whole
    /// ledger (a backup of it, a copy by hand). Best effort: a concurrent
    /// reader may keep the log for the next close to fold.
    pub async fn close(&self) {
        store::checkpoint(&self.pool).await;
        self.pool.close().await;
    }

    async fn connect(path: &Path, create: bool) -> Result<Ledger, LedgerError> {
        let pool = store::connect(path, create)
            .await
            .map_err(|e| LedgerError::Database {
                message: format!("{}: {e}", path.display()),
                source: Some(Box::new(e)),
            })?;
        Ok(Ledger {
            pool,
            audit_key: SecretKey::from_bytes([0; 32]),
            row_key: SecretKey::from_bytes([0; 32]),
            head_key: SecretKey::from_bytes([0; 32]),
            head_path: PathBuf::new(),
            reserved_works: Default::default(),
            verified: Default::default(),
            stored_checkpoint: Default::default(),
            home_id: String::new(),
        })
    }

    /// Brings the schema up to date ([`migrator`]).
    async fn migrate(&self) -> Result<(), LedgerError> {
        migrator()
            .run(&self.pool)
            .await
            .map_err(|e| LedgerError::Database {
                message: e.to_string(),
                source: Some(Box::new(e)),
            })
    }

    /// Tables in the database, the backend's own aside.
    async fn table_count(&self) -> Result<i64, LedgerError> {
        Ok(store::table_count(&self.pool).await?)
    }

    /// The home id this ledger records, if any.
    async fn home_identity(&self) -> Result<Option<String>, LedgerError> {
        let row = sqlx::query("SELECT id FROM home_identity")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Records `id` as this ledger's home, then writes it to the home's
    /// `home.id` (0600), in that order: a crash between leaves a ledger
    /// that names a home whose file is missing, which the next open
    /// repairs by claiming it afresh only if the ledger names none.
    async fn claim_for(&self, root: &Path, id: &str) -> Result<String, LedgerError> {
        let recorded = async {
            let mut tx = crate::store::begin_write(&self.pool).await?;
            let existing = sqlx::query("SELECT id FROM home_identity")
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.get::<String, _>(0));
            let id = match existing {
                Some(existing) => existing,
                None => {
                    sqlx::query("INSERT INTO home_identity (id) VALUES (?)")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    id.to_string()
                }
            };
            tx.commit().await?;
            Ok::<_, LedgerError>(id)
        }
        .await?;
        let path = root.join(HOME_ID_FILE);
        let partial = root.join(format!(".{HOME_ID_FILE}.{}.partial", std::process::id()));
        let _ = std::fs::remove_file(&partial);
        write_new_private_file(&partial, format!("{recorded}\n").as_bytes())?;
        std::fs::rename(&partial, &path).map_err(io(&path))?;
        Ok(recorded)
    }
}

fn audit_entry_from(row: &crate::store::DbRow) -> AuditEntry {
    AuditEntry {
        seq: row.get("seq"),
        at: row.get("at"),
        action: row.get("action"),
        detail: row.get("detail"),
        prev_hash: row.get("prev_hash"),
        hash: row.get("hash"),
    }
}
