//! The rows a verdict reads, each checked as it is read, so that a trace
//! costs what it reads and not what the home has recorded.
//!
//! A ledger's first check is the full one ([`Ledger::verify`]); it leaves
//! what it derived from the chain (the deliveries and names recorded up to
//! its last row) in memory. From then on [`Ledger::require_current`]
//! checks only the audit rows appended since, from the last verified row,
//! whose hash must be unchanged, to the authenticated head, and takes them
//! in. Every row a verdict then reads is held to that: its MAC, a
//! recipient's name to the one the chain last gave, and a work's copies to
//! exactly the deliveries the chain recorded. A row that disagrees is
//! first re-read after taking in rows another process appended meanwhile,
//! then refused. `audit verify` still checks everything. The state is also
//! stored on disk under the key ([`crate::checkpoint`]), so that a new
//! process starts from it.

use sqlx::Row;

use crate::checkpoint::CHECKPOINT_EVERY_ROWS;
use crate::integrity::{self, CopyRow, Verified};
use crate::store::DbRow;
use crate::{
    copy_row_from, recipient_from, work_from, CopyRecord, Ledger, LedgerError, Recipient, Work,
};

impl Ledger {
    /// Checks the audit rows appended since this ledger's last check (all
    /// of them, the first time): the verdict's precondition, at a cost
    /// that does not grow with the history.
    pub async fn require_current(&self) -> Result<(), LedgerError> {
        let loaded = self.verified_anchor().is_none() && self.load_stored_checkpoint();
        match self.check_since_anchor().await {
            Err(LedgerError::Tampered(problem)) if loaded => {
                // The stored checkpoint is only a shortcut: whatever it
                // disagrees with is judged by the full check.
                tracing::debug!(%problem, "the stored checkpoint does not fit the ledger; checking all of it");
                *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = None;
                self.require_intact().await.map(drop)
            }
            checked => checked,
        }
    }

    /// Takes the stored checkpoint as the verified state; whether there
    /// was one.
    fn load_stored_checkpoint(&self) -> bool {
        if self.home_id.is_empty() {
            return false;
        }
        let Some(state) = self.load_checkpoint(&self.home_id) else {
            return false;
        };
        self.stored_checkpoint
            .store(state.seq, std::sync::atomic::Ordering::Relaxed);
        *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
        true
    }

    /// Stores `state` as the checkpoint when it is `forced` (a full check
    /// just made it) or [`CHECKPOINT_EVERY_ROWS`] rows past the stored one.
    /// Best effort: a home whose checkpoint cannot be written still works,
    /// checking more.
    pub(crate) fn keep_checkpoint(&self, state: &Verified, forced: bool) {
        use std::sync::atomic::Ordering;
        if self.home_id.is_empty() {
            return;
        }
        let stored = self.stored_checkpoint.load(Ordering::Relaxed);
        if !forced && state.seq - stored < CHECKPOINT_EVERY_ROWS {
            return;
        }
        match self.store_checkpoint(&self.home_id, state) {
            Ok(()) => self.stored_checkpoint.store(state.seq, Ordering::Relaxed),
            Err(e) => tracing::debug!(error = %e, "cannot store the checked state"),
        }
    }

    /// [`Ledger::require_current`] from the verified state in memory; the
    /// full check when there is none.
    async fn check_since_anchor(&self) -> Result<(), LedgerError> {
        let Some((seq, hash)) = self.verified_anchor() else {
            self.require_intact().await?;
            return Ok(());
        };
        let head = self.read_head()?;
        // From the older of the head and the last verified row, so that a
        // head moved back is held to the row it names.
        let from = head.as_ref().map_or(seq, |h| h.seq.min(seq)).max(1);
        let rows = sqlx::query("SELECT * FROM audit WHERE seq >= ? ORDER BY seq")
            .bind(from)
            .fetch_all(&self.pool)
            .await?;
        let log: Vec<_> = rows.iter().map(crate::audit_entry_from).collect();
        integrity::check_chain_span(
            &self.audit_key,
            Some(&self.head_key),
            &log,
            head.as_ref(),
            Some((seq, &hash)),
        )
        .map_err(LedgerError::Tampered)?;
        // Another check may have advanced the state meanwhile; the rows it
        // took in are skipped.
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = verified.as_mut() {
            state.advance(&log);
            self.keep_checkpoint(state, false);
        }
        Ok(())
    }

    /// The last verified audit row's seq and hash, or `None` before the
    /// first check.
    fn verified_anchor(&self) -> Option<(i64, String)> {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|v| (v.seq, v.hash.clone()))
    }

    /// Runs `check` against the verified state; if it fails, takes in the
    /// rows appended meanwhile and runs it once more.
    async fn held_to_chain(
        &self,
        check: impl Fn(&Verified) -> Result<(), String>,
    ) -> Result<(), LedgerError> {
        if self.verified_anchor().is_none() {
            self.require_current().await?;
        }
        let first = self.with_verified(&check);
        if first.is_ok() {
            return Ok(());
        }
        self.require_current().await?;
        self.with_verified(&check).map_err(LedgerError::Tampered)
    }

    fn with_verified(
        &self,
        check: &impl Fn(&Verified) -> Result<(), String>,
    ) -> Result<(), String> {
        match self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(state) => check(state),
            None => Err("the ledger has not been checked".into()),
        }
    }

    /// The work with ledger id `id`, its row's MAC checked.
    pub async fn checked_work(&self, id: i64) -> Result<Option<Work>, LedgerError> {
        let row = sqlx::query("SELECT * FROM works WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| self.work_checked(r)).transpose()
    }

    /// Every work, each row's MAC checked.
    pub async fn checked_works(&self) -> Result<Vec<Work>, LedgerError> {
        let rows = sqlx::query("SELECT * FROM works ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.work_checked(r)).collect()
    }

    /// The work a row holds, once its MAC is checked.
    fn work_checked(&self, row: &DbRow) -> Result<Work, LedgerError> {
        let work = work_from(row);
        integrity::mac_matches(
            &format!("work row {}", work.id),
            &row.get("mac"),
            integrity::work_mac(&self.row_key, &work),
        )
        .map_err(LedgerError::Tampered)?;
        Ok(work)
    }

    /// The recipient with id `id`, their row's MAC checked and their name
    /// the one the chain last gave them.
    pub async fn checked_recipient(&self, id: i64) -> Result<Option<Recipient>, LedgerError> {
        let row = sqlx::query("SELECT * FROM recipients WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let recipient = recipient_from(&row);
        integrity::mac_matches(
            &format!("recipient row {id}"),
            &row.get("mac"),
            integrity::recipient_mac(&self.row_key, &recipient),
        )
        .map_err(LedgerError::Tampered)?;
        self.held_to_chain(|state| integrity::name_matches(&recipient, &state.names))
            .await?;
        Ok(Some(recipient))
    }

    /// The copies of `work` (delivered to `recipient` only, when given),
    /// each row's MAC checked, and together exactly the deliveries the
    /// chain recorded for them.
    pub async fn checked_copies(
        &self,
        work: i64,
        recipient: Option<i64>,
    ) -> Result<Vec<CopyRecord>, LedgerError> {
        let rows = match recipient {
            Some(r) => {
                sqlx::query(
                    "SELECT * FROM copies WHERE work_id = ? AND recipient_id = ? ORDER BY id",
                )
                .bind(work)
                .bind(r)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT * FROM copies WHERE work_id = ? ORDER BY id")
                    .bind(work)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let copies: Vec<CopyRow> = rows.iter().map(copy_row_from).collect();
        for c in &copies {
            integrity::mac_matches(
                &format!("copy row {}", c.id),
                &c.mac,
                integrity::copy_mac(&self.row_key, c),
            )
            .map_err(LedgerError::Tampered)?;
        }
        self.held_to_chain(|state| {
            integrity::copies_match(&copies, &state.deliveries_of(work, recipient))
        })
        .await?;
        Ok(copies.into_iter().map(|c| c.copy).collect())
    }
}
