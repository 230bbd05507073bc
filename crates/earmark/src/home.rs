//! The home: its master key, ledger, masters store and landmark index, and
//! the operations on recipients, works and the audit log.

use std::path::{Path, PathBuf};

use earmark_ledger::{AuditEntry, LedgerError, Recipient, Work};
use serde::Serialize;

use crate::{Error, Result};

/// An opened home. Every operation that marks, traces or records goes
/// through it. Cloning it is cheap, and every clone is the same home:
/// share one among the tasks of a service.
#[derive(Clone)]
pub struct Home {
    pub(crate) inner: std::sync::Arc<earmark_ledger::Home>,
}

/// Whom an operation is for.
#[derive(Clone, Debug)]
pub enum Selection {
    /// Everyone in the ledger.
    All,
    /// These recipients, by name.
    Named(Vec<String>),
    /// The recipients named in the `name` column of a CSV file.
    Csv(PathBuf),
    /// These recipients, by ledger id.
    Ids(Vec<i64>),
}

/// One registered work, as `work list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct WorkSummary {
    /// Ledger id.
    pub id: i64,
    /// `audio` or `transcript`.
    pub kind: String,
    /// Title, if given.
    pub title: Option<String>,
    /// Spoken words (transcripts only).
    pub words: Option<i64>,
    /// Duration, seconds (0 for transcripts).
    pub duration_s: f64,
    /// Sample rate, Hz (0 for transcripts).
    pub rate: i64,
    /// Channel count (0 for transcripts).
    pub channels: i64,
    /// Recipients holding a copy.
    pub recipients: usize,
    /// When registered (UTC, RFC 3339).
    pub registered: String,
    /// SHA-256 of the master file, hex.
    pub content_hash: String,
    /// Whether the master is still in the store (informed tracing needs it).
    pub master_kept: bool,
}

/// One delivered copy, as `work show` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveredCopy {
    /// The recipient's name (`None` if the ledger no longer holds them).
    pub recipient: Option<String>,
    /// Recipient id.
    pub recipient_id: i64,
    /// Output format.
    pub format: String,
    /// Where it was written.
    pub path: String,
    /// SHA-256 of the delivered file, hex.
    pub output_hash: String,
    /// When (UTC, RFC 3339).
    pub delivered: String,
}

/// One work in detail.
#[derive(Clone, Debug, Serialize)]
pub struct WorkDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: WorkSummary,
    /// Its copies.
    pub copies: Vec<DeliveredCopy>,
    /// Where its master is kept, if it is.
    #[serde(skip)]
    pub master_path: Option<PathBuf>,
}

/// What `work forget` did.
#[derive(Clone, Debug, Serialize)]
pub struct ForgetReport {
    /// The work.
    pub work: i64,
    /// Whether a master was removed (false: none was kept).
    pub removed: bool,
}

/// The audit chain's state.
#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    /// Whether every row chains and verifies.
    pub intact: bool,
    /// Audit rows checked.
    pub rows: usize,
    /// Recipient, work and copy rows whose MAC was checked (all 0 when
    /// the check stopped at a problem).
    pub records: earmark_ledger::Counts,
    /// What is wrong, when it is not intact.
    pub problem: Option<String>,
}

impl Home {
    /// The home directory to use: `explicit`, else `$EARMARK_HOME`, else
    /// `$XDG_DATA_HOME/earmark`, else `$HOME/.local/share/earmark`.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
        Ok(earmark_ledger::locate_home(explicit)?)
    }

    /// Creates a home at `root`: a 0700 directory, a new 0600 master key and
    /// the ledger. Refuses an existing home.
    pub async fn init(root: &Path) -> Result<()> {
        Ok(earmark_ledger::init(root).await?)
    }

    /// Restores the backup at `backup` as the home at `root` (empty, or a
    /// home of the same identity whose ledger was lost or damaged), with
    /// the key file `key` when the backup holds none. A home whose
    /// authenticated head is ahead of the backup's is not rolled back
    /// unless `allow_rollback` ([`earmark_ledger::restore`]).
    pub async fn restore(
        backup: &Path,
        root: &Path,
        key: Option<&Path>,
        allow_rollback: bool,
    ) -> Result<earmark_ledger::RestoreReport> {
        Ok(earmark_ledger::restore(backup, root, key, allow_rollback).await?)
    }

    /// Takes a consistent backup of this home into the new directory
    /// `dest`, the master key included when `with_key`; audited.
    pub async fn backup(
        &self,
        dest: &Path,
        with_key: bool,
    ) -> Result<earmark_ledger::BackupReport> {
        Ok(self.inner.backup(dest, with_key).await?)
    }

    /// Opens the home at `root`.
    pub async fn open(root: &Path) -> Result<Home> {
        Ok(Home {
            inner: std::sync::Arc::new(earmark_ledger::Home::open(root).await?),
        })
    }

    /// Folds the ledger's write-ahead log into its file and closes it, so
    /// that the file alone holds everything recorded (a copy by hand, a
    /// backup by file). Call it before the process ends; a home dropped
    /// unclosed loses nothing, and its log is folded by the next open.
    pub async fn close(&self) {
        self.ledger().close().await;
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Creates an output file at `path` for the user (a plot, a report):
    /// exclusively, never through a link, never inside this home
    /// ([`crate::create_output_file`]).
    pub fn create_output(&self, path: &Path) -> Result<std::fs::File> {
        crate::create_output_file(path, Some(self.root()))
    }

    pub(crate) fn ledger(&self) -> &earmark_ledger::Ledger {
        &self.inner.ledger
    }

    /// Adds one recipient (names are unique), audited.
    pub async fn add_recipient(
        &self,
        name: &str,
        email: Option<&str>,
        org: Option<&str>,
    ) -> Result<Recipient> {
        Ok(self.ledger().add_recipient(name, email, org).await?)
    }

    /// Imports recipients from a CSV read from `source` (header naming
    /// `name`, optionally `email` and `org`); all or nothing, audited.
    /// `source_name` names the source in messages and the audit log.
    pub async fn import_recipients(
        &self,
        source: impl std::io::Read,
        source_name: &Path,
    ) -> Result<Vec<Recipient>> {
        Ok(self.ledger().import_recipients(source, source_name).await?)
    }

    /// Renames a recipient (checked as a new name is), audited. Their id,
    /// and so the identifier in every copy they hold, stays.
    pub async fn rename_recipient(&self, old: &str, new: &str) -> Result<Recipient> {
        Ok(self.ledger().rename_recipient(old, new).await?)
    }

    /// Removes a recipient, audited: one who holds copies is retired (kept,
    /// so that their copies still name them, never marked for again).
    pub async fn remove_recipient(&self, name: &str) -> Result<earmark_ledger::Removal> {
        Ok(self.ledger().remove_recipient(name).await?)
    }

    /// Every recipient, by id, retired ones included.
    pub async fn recipients(&self) -> Result<Vec<Recipient>> {
        Ok(self.ledger().recipients().await?)
    }

    /// The recipients a selection names; at least one. Retired recipients
    /// are left out of `All` and refused by name.
    pub async fn select(&self, selection: &Selection) -> Result<Vec<Recipient>> {
        let chosen = match selection {
            Selection::All => self
                .ledger()
                .recipients()
                .await?
                .into_iter()
                .filter(|r| r.retired_at.is_none())
                .collect(),
            Selection::Named(names) => self.ledger().recipients_named(names).await?,
            Selection::Ids(ids) => {
                let mut chosen = Vec::with_capacity(ids.len());
                for &id in ids {
                    match self.recipient(id).await? {
                        Some(r) => chosen.push(r),
                        None => return Err(Error::Recipients(format!("no recipient has id {id}"))),
                    }
                }
                chosen
            }
            Selection::Csv(path) => self.ledger().recipients_named(&names_in_csv(path)?).await?,
        };
        if let Some(r) = chosen.iter().find(|r| r.retired_at.is_some()) {
            return Err(Error::Recipients(format!(
                "{} was removed; they are kept only so that the copies they hold still name them",
                earmark_ledger::names::printable(&r.name)
            )));
        }
        if chosen.is_empty() {
            return Err(Error::Recipients("no recipients to mark for".into()));
        }
        Ok(chosen)
    }

    /// The work with ledger id `id`.
    pub async fn work(&self, id: i64) -> Result<Work> {
        Ok(self
            .ledger()
            .work(id)
            .await?
            .ok_or(LedgerError::UnknownWork(id))?)
    }

    async fn summary(&self, w: &Work) -> Result<WorkSummary> {
        Ok(WorkSummary {
            id: w.id,
            kind: w.kind.clone(),
            title: w.title.clone(),
            words: w.words,
            duration_s: w.duration_s,
            rate: w.rate,
            channels: w.channels,
            recipients: self.ledger().recipients_of(w.id).await?.len(),
            registered: w.created_at.clone(),
            content_hash: w.content_hash.clone(),
            master_kept: self.inner.master_path(&w.content_hash).is_file(),
        })
    }

    /// Every registered work.
    pub async fn works(&self) -> Result<Vec<WorkSummary>> {
        let mut summaries = Vec::new();
        for w in self.ledger().works().await? {
            summaries.push(self.summary(&w).await?);
        }
        Ok(summaries)
    }

    /// One work with its delivered copies.
    pub async fn work_detail(&self, id: i64) -> Result<WorkDetail> {
        let w = self.work(id).await?;
        let summary = self.summary(&w).await?;
        let mut copies = Vec::new();
        for c in self.ledger().copies_of(id).await? {
            copies.push(DeliveredCopy {
                recipient: self
                    .ledger()
                    .recipient(c.recipient_id)
                    .await?
                    .map(|r| r.name),
                recipient_id: c.recipient_id,
                format: c.format,
                path: c.path,
                output_hash: c.output_hash,
                delivered: c.created_at,
            });
        }
        let master_path = summary
            .master_kept
            .then(|| self.inner.master_path(&w.content_hash));
        Ok(WorkDetail {
            summary,
            copies,
            master_path,
        })
    }

    /// Removes a work's master from the store (its records stay, and
    /// tracing it becomes blind), audited.
    pub async fn forget_work(&self, id: i64) -> Result<ForgetReport> {
        let w = self.work(id).await?;
        let removed = self.inner.forget_master(&w.content_hash)?;
        self.audit(
            "forget",
            serde_json::json!({"work": id, "content_hash": w.content_hash, "removed": removed}),
        )
        .await?;
        Ok(ForgetReport { work: id, removed })
    }

    /// Checks the audit chain and every record a verdict relies on
    /// ([`earmark_ledger::Ledger::verify`]).
    /// The stored masters are checked too: each must be the file whose
    /// SHA-256 its work recorded, and only `work forget` may remove one.
    pub async fn audit_verify(&self) -> Result<AuditReport> {
        let verdict = match self.ledger().verify().await? {
            Ok(records) => {
                // Hashing every master takes a while: off the async threads.
                let home = self.clone();
                match crate::blocking(move || home.masters_problem()).await? {
                    None => Ok(records),
                    Some(problem) => Err(problem),
                }
            }
            Err(problem) => Err(problem),
        };
        Ok(match verdict {
            Ok(records) => AuditReport {
                intact: true,
                rows: records.audit_rows,
                records,
                problem: None,
            },
            Err(problem) => AuditReport {
                intact: false,
                rows: 0,
                records: Default::default(),
                problem: Some(problem),
            },
        })
    }

    /// The audit log, oldest first.
    pub async fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        Ok(self.ledger().audit_log().await?)
    }

    pub(crate) async fn audit(&self, action: &str, detail: serde_json::Value) -> Result<()> {
        Ok(self.ledger().audit(action, &detail.to_string()).await?)
    }

    /// The recipient with id `id`, if the ledger holds them, checked as a
    /// verdict's reads are ([`earmark_ledger::Ledger::checked_recipient`]).
    pub(crate) async fn recipient(&self, id: i64) -> Result<Option<Recipient>> {
        Ok(self.ledger().checked_recipient(id).await?)
    }

    /// The work with ledger id `id`, checked as a verdict's reads are.
    pub(crate) async fn checked_work(&self, id: i64) -> Result<Work> {
        Ok(self
            .ledger()
            .checked_work(id)
            .await?
            .ok_or(LedgerError::UnknownWork(id))?)
    }
}

/// Names in the `name` column of a CSV.
fn names_in_csv(path: &Path) -> Result<Vec<String>> {
    let bad = |e: &dyn std::fmt::Display| Error::Recipients(format!("{}: {e}", path.display()));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| bad(&e))?;
    let headers = reader.headers().map_err(|e| bad(&e))?.clone();
    let column = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case("name"))
        .ok_or_else(|| bad(&"the header must name a 'name' column"))?;
    let mut names = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad(&e))?;
        if let Some(name) = record.get(column).filter(|n| !n.is_empty()) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// SHA-256 of a file, hex, streamed.
pub(crate) fn file_hash(path: &Path) -> Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let open_error = |e: std::io::Error| {
        Error::Audio(earmark_audio_io::AudioError::Open {
            path: path.display().to_string(),
            source: e,
        })
    };
    earmark_audio_io::check_regular_file(path)?;
    let mut file = std::fs::File::open(path).map_err(open_error)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(open_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file name of `recipient`'s copy of a work whose file is `stem`:
/// `<stem>.r<id>-<slug>.<ext>`. The ledger id makes it unique (names that
/// slug alike, such as "Ana Lima" and "Ana.Lima", or a name of symbols
/// only, can never share a file); the slug makes it readable.
pub(crate) fn copy_file_name(stem: &str, recipient: &Recipient, ext: &str) -> String {
    match slug(&recipient.name) {
        s if s.is_empty() => format!("{stem}.r{}.{ext}", recipient.id),
        s => format!("{stem}.r{}-{s}.{ext}", recipient.id),
    }
}

/// The temporary name `recipient`'s copy is written under before it is
/// moved into place as [`copy_file_name`].
pub(crate) fn partial_file_name(stem: &str, recipient: &Recipient, ext: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Unique per call, so that two marks of one work for one recipient in
    // one process (a service) never share a file.
    static CALLS: AtomicU64 = AtomicU64::new(0);
    // The process id, last, lets the next run tell a killed run's file
    // (removed by [`earmark_ledger::remove_stale_partials`]) from a live
    // one's.
    format!(
        ".{stem}.r{}.{}.{}.partial.{ext}",
        recipient.id,
        CALLS.fetch_add(1, Ordering::Relaxed),
        std::process::id()
    )
}

/// A file-name-safe form of a name.
pub(crate) fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_string()
}
