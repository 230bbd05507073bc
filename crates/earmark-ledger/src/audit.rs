//! The audit chain and its head: rows appended in the transaction of what
//! they record, the MAC'd head beside the database, the full check a
//! verdict relies on, and the one-off sealing step of older homes.

use std::io::Write;
use std::path::Path;

use crate::integrity::{self, Counts, Head};
use sqlx::Row;

use crate::{
    audit_entry_from, chain_hash, copy_row_from, io, now, recipient_from, seal_copy,
    seal_recipient, seal_work, work_from, AuditEntry, HeadAt, Ledger, LedgerError, AUDIT_GENESIS,
    MASTER_KEY_FILE,
};

impl Ledger {
    /// Appends an audit row for `action` with JSON `detail`.
    pub async fn audit(&self, action: &str, detail: &str) -> Result<(), LedgerError> {
        let tx = crate::store::begin_write(&self.pool).await?;
        self.commit_audited(tx, action, detail).await
    }

    /// Appends the audit row for `action` to `tx`, commits it, then moves
    /// the head file: the one way every audited change ends.
    pub(crate) async fn commit_audited(
        &self,
        mut tx: crate::store::Transaction,
        action: &str,
        detail: &str,
    ) -> Result<(), LedgerError> {
        let head = self.append_audit(&mut tx, action, detail).await?;
        tx.commit().await?;
        self.write_head(&head)
    }

    /// Appends an audit row in `tx`; returns the head it makes, with the
    /// ids issued as of `tx`.
    pub(crate) async fn append_audit(
        &self,
        tx: &mut crate::store::Transaction,
        action: &str,
        detail: &str,
    ) -> Result<HeadAt, LedgerError> {
        let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
        let (seq, prev_hash) = match last {
            Some(row) => (row.get::<i64, _>("seq") + 1, row.get::<String, _>("hash")),
            None => (1, AUDIT_GENESIS.to_string()),
        };
        let at = now();
        let detail = &*crate::actor::signed(detail);
        let hash = chain_hash(&self.audit_key, &prev_hash, seq, &at, action, detail);
        sqlx::query("INSERT INTO audit (seq, at, action, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(seq)
            .bind(&at)
            .bind(action)
            .bind(detail)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut **tx)
            .await?;
        let ids = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM recipients), (SELECT COALESCE(MAX(id), 0) FROM works)",
        )
        .fetch_one(&mut **tx)
        .await?;
        let issued = integrity::Issued {
            recipients: ids.get(0),
            works: ids.get(1),
        };
        Ok((seq, hash, issued))
    }

    /// Records the chain's head outside the database, so that deleting the
    /// newest rows is detected too (temporary file, fsync, rename).
    pub(crate) fn write_head(&self, head: &HeadAt) -> Result<(), LedgerError> {
        self.write_head_marked(head, false)
    }

    /// [`Ledger::write_head`], marked as written while sealing when
    /// `sealing` (see [`integrity::head_mac`]).
    pub(crate) fn write_head_marked(
        &self,
        (seq, hash, issued): &HeadAt,
        sealing: bool,
    ) -> Result<(), LedgerError> {
        let dir = self.head_path.parent().unwrap_or(Path::new("."));
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
        let line = Head::line(&self.head_key, *seq, hash, *issued, sealing);
        writeln!(temp, "{line}").map_err(io(&self.head_path))?;
        temp.as_file().sync_all().map_err(io(&self.head_path))?;
        // A concurrent writer may have appended after us: never move the head back.
        if let Some(current) = self.read_head()? {
            if current.seq > *seq {
                return Ok(());
            }
        }
        temp.persist(&self.head_path)
            .map_err(|e| io(&self.head_path)(e.error))?;
        Ok(())
    }

    pub(crate) fn read_head(&self) -> Result<Option<Head>, LedgerError> {
        match std::fs::read_to_string(&self.head_path) {
            Ok(text) => Ok(Some(Head::parse(&text).unwrap_or(Head {
                seq: -1,
                hash: String::new(),
                mac: Some(String::new()),
                issued: None,
                sealing: false,
            }))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&self.head_path)(e)),
        }
    }

    /// The audit log, oldest first.
    pub async fn audit_log(&self) -> Result<Vec<AuditEntry>, LedgerError> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(audit_entry_from).collect())
    }

    /// Everything [`Ledger::verify`] reads, from one snapshot. The head is
    /// read first: it is written after its rows commit, so a snapshot taken
    /// after it holds every row it names.
    pub(crate) async fn snapshot(&self) -> Result<integrity::Snapshot, LedgerError> {
        let head = self.read_head()?;
        let mut tx = self.pool.begin().await?;
        let audit = sqlx::query("SELECT * FROM audit ORDER BY seq")
            .fetch_all(&mut *tx)
            .await?;
        let recipients = sqlx::query("SELECT * FROM recipients ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let works = sqlx::query("SELECT * FROM works ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let copies = sqlx::query("SELECT * FROM copies ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(integrity::Snapshot {
            head,
            audit: audit.iter().map(audit_entry_from).collect(),
            recipients: recipients
                .iter()
                .map(|r| (recipient_from(r), r.get("mac")))
                .collect(),
            works: works.iter().map(|w| (work_from(w), w.get("mac"))).collect(),
            copies: copies.iter().map(copy_row_from).collect(),
        })
    }

    /// Checks everything a verdict relies on: the audit chain (every row's
    /// hash, the links, the numbering, and the authenticated head kept
    /// outside the database), the MAC of every recipient, work and copy
    /// row, and that the copies table holds exactly the deliveries the
    /// chain recorded. Returns what was checked, or the first problem,
    /// naming its row.
    ///
    /// A key under which neither the first audit row nor the head verifies
    /// is not this home's: that is [`LedgerError::MasterKey`], not a
    /// finding about the records.
    pub async fn verify(&self) -> Result<Result<Counts, String>, LedgerError> {
        let snapshot = self.snapshot().await?;
        if !integrity::key_fits(&self.audit_key, &self.head_key, &snapshot) {
            let root = self.head_path.parent().unwrap_or(Path::new("."));
            return Err(LedgerError::MasterKey {
                path: root.join(MASTER_KEY_FILE),
                message: "this key does not belong to this home: neither the first audit row nor the recorded head verifies under it".into(),
            });
        }
        Ok(
            match integrity::check(&self.audit_key, &self.row_key, &self.head_key, &snapshot) {
                Ok((counts, verified)) => {
                    self.keep_checkpoint(&verified, true);
                    *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(verified);
                    Ok(counts)
                }
                Err(problem) => Err(problem),
            },
        )
    }

    /// [`Ledger::verify`] as an error: what a verdict calls first.
    pub async fn require_intact(&self) -> Result<Counts, LedgerError> {
        self.verify().await?.map_err(LedgerError::Tampered)
    }

    /// Carries out the one-off steps a migration left for the program
    /// (they need the key, which SQL does not have). `row-macs` gives the
    /// rows written before rows were MAC'd their MAC, and the head its
    /// MAC, once, and only if the chain is intact and its head is either
    /// the unauthenticated kind such homes wrote, or one this home's key
    /// marked as written while sealing (a crash came before the sealing
    /// committed). A database writer without the key who asks for the step
    /// again on a sealed home is refused: the home's head says it is not
    /// sealing, and only the key can say otherwise.
    ///
    /// The order: the sealing head, then the rows and the step's removal
    /// in one transaction, then the plain head.
    pub(crate) async fn finish_upgrades(&self) -> Result<(), LedgerError> {
        let pending: Vec<String> = async {
            sqlx::query_scalar("SELECT step FROM ledger_upgrade")
                .fetch_all(&self.pool)
                .await
        }
        .await?;
        if !pending.iter().any(|s| s == "row-macs") {
            return Ok(());
        }
        let snapshot = self.snapshot().await?;
        let head_key = match &snapshot.head {
            Some(head) if head.mac.is_some() => {
                if !head.sealing || !head.authentic(&self.head_key) {
                    return Err(LedgerError::Tampered(
                        "the ledger asks for its rows to be sealed again, which only an older ledger's first open does: someone who can write the database added that step".into(),
                    ));
                }
                Some(&self.head_key)
            }
            _ => None,
        };
        if let Err(problem) = integrity::check_chain(
            &self.audit_key,
            head_key,
            &snapshot.audit,
            snapshot.head.as_ref(),
        ) {
            return Err(LedgerError::Tampered(format!(
                "{problem} (found while sealing the rows of an older ledger)"
            )));
        }
        let issued = integrity::issued_in(&snapshot);
        let last = snapshot
            .audit
            .last()
            .map(|e| (e.seq, e.hash.clone(), issued));
        if let Some(last) = &last {
            self.write_head_marked(last, true)?;
        }
        async {
            let mut tx = crate::store::begin_write(&self.pool).await?;
            for (r, _) in &snapshot.recipients {
                seal_recipient(&mut tx, &self.row_key, r).await?;
            }
            for (w, _) in &snapshot.works {
                seal_work(&mut tx, &self.row_key, w).await?;
            }
            for c in &snapshot.copies {
                seal_copy(&mut tx, &self.row_key, c).await?;
            }
            sqlx::query("DELETE FROM ledger_upgrade WHERE step = 'row-macs'")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<(), LedgerError>(())
        }
        .await?;
        if let Some(last) = &last {
            self.write_head(last)?;
        }
        Ok(())
    }
}
