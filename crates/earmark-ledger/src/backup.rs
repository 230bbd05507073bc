//! Backups of a home, and restoring one.
//!
//! A backup is a directory: `ledger.sqlite` (a consistent online copy made
//! with SQLite's `VACUUM INTO`, taken while other commands may be writing),
//! `audit.head` for that copy, `home.id`, `landmarks.idx`, the masters of
//! the registered works, `backup.json` (what it holds), and, unless left
//! out, `keystore/master.key`. It is built under a temporary name beside
//! its destination and renamed into place, so it exists whole or not at
//! all.
//!
//! Restoring puts such a directory back as a home: into an empty place, or
//! over a home of the same identity and key whose ledger was lost or
//! damaged. A home whose ledger is intact is never overwritten.

use std::path::{Path, PathBuf};

use earmark_keys::{Label, SecretKey};

use crate::{
    create_private_dir, integrity, io, tighten, write_new_private_file, Counts, Home, Ledger,
    LedgerError, AUDIT_HEAD_FILE, HOME_ID_FILE, LANDMARKS_FILE, LEDGER_FILE, MASTERS_DIR,
    MASTER_KEY_FILE,
};

/// What `backup.json` says a backup holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Always [`BACKUP_FORMAT`].
    pub format: String,
    /// The home it was taken from.
    pub home_id: String,
    /// When (UTC, RFC 3339).
    pub created_at: String,
    /// What its ledger holds, all authenticated when it was taken.
    pub audit_rows: usize,
    /// Recipient rows.
    pub recipients: usize,
    /// Work rows.
    pub works: usize,
    /// Copy rows.
    pub copies: usize,
    /// Masters kept (content hashes).
    pub masters: Vec<String>,
    /// Whether `keystore/master.key` is in it.
    pub key_included: bool,
}

/// The manifest's `format`.
pub const BACKUP_FORMAT: &str = "earmark-backup-1";
const MANIFEST_FILE: &str = "backup.json";
/// Label of the value two keys are compared by (never the keys themselves).
const KEY_CHECK_LABEL: Label = Label("earmark/v1/ledger/backup-key-check");

/// A backup taken.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackupReport {
    /// The backup directory.
    pub path: PathBuf,
    /// What it holds.
    pub manifest: Manifest,
}

/// A backup restored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RestoreReport {
    /// The home restored.
    pub home: PathBuf,
    /// What the backup held.
    pub manifest: Manifest,
    /// Whether a home with a lost or damaged ledger was repaired (rather
    /// than a new place filled).
    pub repaired: bool,
    /// The restored ledger, checked after the restore.
    pub records: Counts,
}

/// The sequence number (and the ids issued) the home at `root` had recorded, when its
/// authentic head says it had issued a recipient or work id that the
/// backup's ledger has not: refused unless `allow`, else returned for the
/// audit row. Rows that issue nothing (traces, listings, the backup's own
/// row) may be lost without harm. A head that is not authentic is no
/// high-water mark (the ledger check that follows says what is wrong).
fn rollback(
    root: &Path,
    backup: &Path,
    master: &SecretKey,
    allow: bool,
) -> Result<Option<(i64, Option<integrity::Issued>)>, LedgerError> {
    let read = |path: PathBuf| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| crate::integrity::Head::parse(&text))
    };
    let head_key = master.derive(crate::HEAD_LABEL);
    let Some(current) = read(root.join(AUDIT_HEAD_FILE)).filter(|h| h.authentic(&head_key)) else {
        return Ok(None);
    };
    let Some(backup_head) = read(backup.join(AUDIT_HEAD_FILE)) else {
        return Ok(None);
    };
    let ahead = match (current.issued, backup_head.issued) {
        (Some(now), Some(then)) => now.ahead_of(&then),
        // A head written before ids were recorded: any row may have issued one.
        _ => current.seq > backup_head.seq,
    };
    if !ahead {
        return Ok(None);
    }
    if !allow {
        return Err(LedgerError::Rollback(format!(
            "the home at {} had issued recipient or work ids that the backup does not hold (audit rows {}–{} would be lost): restoring it would roll the home back and hand the same identifiers out again; nothing restored",
            root.display(),
            backup_head.seq + 1,
            current.seq
        )));
    }
    Ok(Some((current.seq, current.issued)))
}

fn bad(message: impl Into<String>) -> LedgerError {
    LedgerError::BadBackup(message.into())
}

/// Copies `from` to `to` (a new file, 0600) and flushes it to disk.
fn copy_private(from: &Path, to: &Path) -> Result<(), LedgerError> {
    std::fs::copy(from, to).map_err(io(to))?;
    tighten(to, 0o600)?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(io(to))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Home {
    /// Takes a backup of this home into `dest`, which must not exist (its
    /// parent must). The ledger is checked first: a damaged one is not
    /// backed up under a fresh head, which would launder the damage.
    /// `with_key` puts the master key in the backup; without it, restoring
    /// needs the key file given separately.
    pub async fn backup(&self, dest: &Path, with_key: bool) -> Result<BackupReport, LedgerError> {
        self.ledger.require_intact().await?;
        if dest.exists() {
            return Err(LedgerError::BackupTarget(format!(
                "{} already exists; a backup goes into a new directory",
                dest.display()
            )));
        }
        let name = dest
            .file_name()
            .ok_or_else(|| {
                LedgerError::BackupTarget(format!("{} is not a directory name", dest.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // What a killed backup left beside its destination.
        crate::remove_stale_partials(parent);
        let staging = parent.join(format!(".{name}.{}.partial", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        let result = self.fill_backup(&staging, with_key);
        let manifest = match result.await {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        std::fs::rename(&staging, dest).map_err(io(dest))?;
        sync_dir(parent);
        self.ledger
            .audit(
                "backup",
                &serde_json::json!({
                    "to": dest.display().to_string(),
                    "audit_rows": manifest.audit_rows,
                    "key_included": with_key,
                })
                .to_string(),
            )
            .await?;
        Ok(BackupReport {
            path: dest.to_path_buf(),
            manifest,
        })
    }

    async fn fill_backup(&self, staging: &Path, with_key: bool) -> Result<Manifest, LedgerError> {
        create_private_dir(staging)?;
        let live_head = self.ledger.read_head()?;
        // Inside a 0700 directory: private before it is tightened below.
        let db = staging.join(LEDGER_FILE);
        crate::store::copy_to(&self.ledger.pool, &db).await?;
        tighten(&db, 0o600)?;
        let copy = Ledger::open_file(&db, &self.master, &staging.join(AUDIT_HEAD_FILE)).await?;
        let checked = async {
            let snapshot = copy.snapshot().await?;
            // The copy must continue the chain the live head vouches for.
            integrity::check_chain(
                &copy.audit_key,
                Some(&copy.head_key),
                &snapshot.audit,
                live_head.as_ref(),
            )
            .map_err(|p| {
                LedgerError::Tampered(format!("{p} (in the copy taken for the backup)"))
            })?;
            if let Some(last) = snapshot.audit.last() {
                let issued = integrity::issued_in(&snapshot);
                copy.write_head(&(last.seq, last.hash.clone(), issued))?;
            }
            let counts = copy.require_intact().await?;
            Ok::<_, LedgerError>((snapshot, counts))
        }
        .await;
        // Closed before the copy is checked out of staging, so that its
        // write-ahead log is folded into the file.
        copy.close().await;
        let (snapshot, counts) = checked?;
        copy_private(&self.root.join(HOME_ID_FILE), &staging.join(HOME_ID_FILE))?;
        let landmarks = self.read_landmarks()?;
        write_new_private_file(&staging.join(LANDMARKS_FILE), &landmarks)?;
        let masters_dir = staging.join(MASTERS_DIR);
        create_private_dir(&masters_dir)?;
        let mut masters = Vec::new();
        for (work, _) in &snapshot.works {
            let source = self.master_path(&work.content_hash);
            if source.is_file() && !masters.contains(&work.content_hash) {
                copy_private(&source, &masters_dir.join(&work.content_hash))?;
                masters.push(work.content_hash.clone());
            }
        }
        if with_key {
            create_private_dir(&staging.join("keystore"))?;
            copy_private(
                &self.root.join(MASTER_KEY_FILE),
                &staging.join(MASTER_KEY_FILE),
            )?;
        }
        let manifest = Manifest {
            format: BACKUP_FORMAT.into(),
            home_id: self.id.clone(),
            created_at: crate::now(),
            audit_rows: counts.audit_rows,
            recipients: counts.recipients,
            works: counts.works,
            copies: counts.copies,
            masters,
            key_included: with_key,
        };
        let text = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
        write_new_private_file(&staging.join(MANIFEST_FILE), text.as_bytes())?;
        sync_dir(&masters_dir);
        sync_dir(staging);
        Ok(manifest)
    }
}

/// Reads a backup's manifest.
fn read_manifest(backup: &Path) -> Result<Manifest, LedgerError> {
    let path = backup.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad(format!("{}: not an earmark backup ({e})", backup.display())))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| bad(format!("{}: damaged manifest ({e})", path.display())))?;
    if manifest.format != BACKUP_FORMAT {
        return Err(bad(format!(
            "{}: backup format {:?}, this earmark reads {BACKUP_FORMAT:?}",
            backup.display(),
            manifest.format
        )));
    }
    Ok(manifest)
}

fn read_key(path: &Path) -> Result<SecretKey, LedgerError> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        LedgerError::MasterKey {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })?);
    SecretKey::from_file_text(&text).map_err(|e| LedgerError::MasterKey {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn same_key(a: &SecretKey, b: &SecretKey) -> bool {
    a.mac(KEY_CHECK_LABEL, b"") == b.mac(KEY_CHECK_LABEL, b"")
}

/// Restores the backup at `backup` as the home at `root`. `key` is the
/// master key file to use when the backup holds none (or must match it
/// when it does). `root` must be empty or missing, or a home of the same
/// identity and key whose ledger is lost or fails its check.
///
/// A home keeps its high-water mark outside the ledger: `audit.head`, under
/// the key's MAC. Restoring over a home whose authentic head is ahead of
/// the backup's would roll it back, and the identifiers handed out since
/// the backup would be handed out again (a leak of a lost copy would then
/// accuse its id's next holder). That is refused unless `allow_rollback`,
/// and then the rows lost are recorded in the restore's audit row.
pub async fn restore(
    backup: &Path,
    root: &Path,
    key: Option<&Path>,
    allow_rollback: bool,
) -> Result<RestoreReport, LedgerError> {
    let manifest = read_manifest(backup)?;
    let backup_key = backup.join(MASTER_KEY_FILE);
    let master = match (backup_key.is_file(), key) {
        (true, Some(given)) => {
            let (inside, given_key) = (read_key(&backup_key)?, read_key(given)?);
            if !same_key(&inside, &given_key) {
                return Err(bad(format!(
                    "{} is not the key this backup holds",
                    given.display()
                )));
            }
            inside
        }
        (true, None) => read_key(&backup_key)?,
        (false, Some(given)) => read_key(given)?,
        (false, None) => return Err(LedgerError::BackupWithoutKey(backup.to_path_buf())),
    };
    let home_key = root.join(MASTER_KEY_FILE);
    let repaired = home_key.exists();
    let mut rolled_back = None;
    if !repaired {
        // What a killed restore left is no reason to refuse the retry.
        crate::remove_stale_partials(root);
    }
    if repaired {
        if !same_key(&read_key(&home_key)?, &master) {
            return Err(bad(format!(
                "the home at {} has another master key than the backup; nothing restored",
                root.display()
            )));
        }
        match std::fs::read_to_string(root.join(HOME_ID_FILE)) {
            Ok(id) if id.trim() != manifest.home_id => {
                return Err(bad(format!(
                    "the home at {} is {}, the backup is of {}; nothing restored",
                    root.display(),
                    id.trim(),
                    manifest.home_id
                )))
            }
            _ => {}
        }
        if let Ok(home) = Home::open(root).await {
            if home.ledger.verify().await?.is_ok() {
                return Err(bad(format!(
                    "the ledger of the home at {} is intact; restoring would replace it. Restore into a new directory to compare, or move this home away first",
                    root.display()
                )));
            }
        }
        rolled_back = rollback(root, backup, &master, allow_rollback)?;
    } else if std::fs::read_dir(root).is_ok_and(|mut d| d.next().is_some()) {
        return Err(bad(format!(
            "{} is not empty and holds no earmark home; restore into a new directory",
            root.display()
        )));
    }

    // The ledger, checked under the key before anything in the home moves.
    create_private_dir(root)?;
    let partial = root.join(format!(".{LEDGER_FILE}.{}.partial", std::process::id()));
    let _ = std::fs::remove_file(&partial);
    copy_private(&backup.join(LEDGER_FILE), &partial)?;
    let head_partial = root.join(format!(".{AUDIT_HEAD_FILE}.{}.partial", std::process::id()));
    let _ = std::fs::remove_file(&head_partial);
    if backup.join(AUDIT_HEAD_FILE).is_file() {
        copy_private(&backup.join(AUDIT_HEAD_FILE), &head_partial)?;
    }
    let checked = async {
        let ledger = Ledger::open_file(&partial, &master, &head_partial).await?;
        let checked = async {
            let recorded = ledger.home_identity().await?;
            if recorded.as_deref() != Some(manifest.home_id.as_str()) {
                return Err(bad(
                    "the backup's ledger does not name the home its manifest names",
                ));
            }
            ledger.require_intact().await
        }
        .await;
        ledger.close().await;
        checked
    }
    .await;
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&partial);
        let _ = std::fs::remove_file(&head_partial);
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(root.join(format!(
                ".{LEDGER_FILE}.{}.partial{suffix}",
                std::process::id()
            )));
        }
        return Err(match e {
            LedgerError::Tampered(p) => bad(format!("the backup fails its check: {p}")),
            other => other,
        });
    }

    // Everything but the ledger first; the ledger's rename is the commit.
    if !repaired {
        create_private_dir(&root.join("keystore"))?;
        write_new_private_file(&home_key, master.to_file_text().as_bytes())?;
    }
    let id_partial = root.join(format!(".{HOME_ID_FILE}.{}.partial", std::process::id()));
    let _ = std::fs::remove_file(&id_partial);
    write_new_private_file(&id_partial, format!("{}\n", manifest.home_id).as_bytes())?;
    std::fs::rename(&id_partial, root.join(HOME_ID_FILE)).map_err(io(root))?;
    let masters = root.join(MASTERS_DIR);
    create_private_dir(&masters)?;
    for hash in &manifest.masters {
        let target = masters.join(hash);
        if !target.is_file() {
            let staged = masters.join(format!(".{hash}.{}.partial", std::process::id()));
            copy_private(&backup.join(MASTERS_DIR).join(hash), &staged)?;
            std::fs::rename(&staged, &target).map_err(io(&target))?;
        }
    }
    // The backup's index: one built since may name works the restored
    // ledger does not hold, under ids it will give to other works.
    let landmarks_partial = root.join(format!(".{LANDMARKS_FILE}.{}.partial", std::process::id()));
    let _ = std::fs::remove_file(&landmarks_partial);
    copy_private(&backup.join(LANDMARKS_FILE), &landmarks_partial)?;
    std::fs::rename(&landmarks_partial, root.join(LANDMARKS_FILE)).map_err(io(root))?;
    if head_partial.is_file() {
        std::fs::rename(&head_partial, root.join(AUDIT_HEAD_FILE)).map_err(io(root))?;
    }
    // The lost ledger's checked state does not describe the restored one.
    let _ = std::fs::remove_file(root.join(crate::checkpoint::CHECKPOINT_FILE));
    // A log left by the lost ledger would be replayed into the restored one.
    for suffix in ["-wal", "-shm"] {
        let stale = root.join(format!("{LEDGER_FILE}{suffix}"));
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&stale)(e)),
        }
    }
    std::fs::rename(&partial, root.join(LEDGER_FILE)).map_err(io(root))?;
    sync_dir(root);

    let home = Home::open(root).await?;
    let records = home.ledger.require_intact().await?;
    home.ledger
        .audit(
            "restore",
            &serde_json::json!({
                "from": backup.display().to_string(),
                "backup_taken": manifest.created_at,
                "repaired": repaired,
                "rolled_back_from": rolled_back.map(|(seq, _)| seq),
                // New ids start above these, so none is issued twice.
                "issued": rolled_back.and_then(|(_, issued)| issued).map(|i| {
                    serde_json::json!({"recipients": i.recipients, "works": i.works})
                }),
            })
            .to_string(),
        )
        .await?;
    Ok(RestoreReport {
        home: root.to_path_buf(),
        manifest,
        repaired,
        records,
    })
}

impl Ledger {
    /// Opens the ledger file `path` under `master`'s keys with its head at
    /// `head_path`, outside any home: a backup's copy.
    async fn open_file(
        path: &Path,
        master: &SecretKey,
        head_path: &Path,
    ) -> Result<Ledger, LedgerError> {
        let mut ledger = Ledger::connect(path, false).await?;
        if !crate::store::has_table(&ledger.pool, "audit").await? {
            return Err(bad(format!("{}: not an earmark ledger", path.display())));
        }
        ledger.audit_key = master.derive(crate::AUDIT_LABEL);
        ledger.row_key = master.derive(crate::ROW_LABEL);
        ledger.head_key = master.derive(crate::HEAD_LABEL);
        ledger.head_path = head_path.to_path_buf();
        Ok(ledger)
    }
}
