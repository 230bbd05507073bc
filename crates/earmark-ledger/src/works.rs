//! Works and their copies: a work is registered in the same transaction as
//! the first copies made of it, so a failed or killed `mark` leaves no work
//! behind, and no work id is ever taken by one that was not delivered.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::{
    copy_from_row, copy_row_from, next_id_sql, now, seal_copy, seal_work, work_from, CopyRecord,
    Ledger, LedgerError, Work,
};

/// What a work is registered as: everything of [`Work`] but its id and time.
#[derive(Clone, Debug)]
pub struct WorkSpec {
    /// SHA-256 of the master file, hex.
    pub content_hash: String,
    /// Title, if given; replaces an earlier one.
    pub title: Option<String>,
    /// [`crate::AUDIO`] or [`crate::TRANSCRIPT`].
    pub kind: &'static str,
    /// Duration, seconds (0 for transcripts).
    pub duration_s: f64,
    /// Sample rate, Hz (0 for transcripts).
    pub rate: u32,
    /// Channel count (0 for transcripts).
    pub channels: usize,
    /// Spoken words (transcripts only).
    pub words: Option<i64>,
}

/// A work about to receive copies: registered already, or given the id it
/// will be registered under when its first copies are recorded. A new
/// work's id stays reserved in this process until the reservation is
/// dropped.
#[derive(Debug)]
pub struct Reservation {
    /// The work as it will stand once recorded (its id is the one to mark
    /// with).
    pub work: Work,
    /// Whether the work is registered only when its copies are recorded.
    pub new: bool,
    /// Holds the new work's id among the process's reserved ones.
    _held: Option<HeldId>,
}

/// A reserved work id, given back when dropped.
#[derive(Debug)]
struct HeldId {
    reserved: Arc<Mutex<BTreeSet<i64>>>,
    id: i64,
}

impl Drop for HeldId {
    fn drop(&mut self) {
        if let Ok(mut reserved) = self.reserved.lock() {
            reserved.remove(&self.id);
        }
    }
}

impl Ledger {
    /// The work registered with SHA-256 `content_hash`, if one is.
    pub async fn work_by_content(&self, content_hash: &str) -> Result<Option<Work>, LedgerError> {
        let row = sqlx::query("SELECT * FROM works WHERE content_hash = ?")
            .bind(content_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(work_from))
    }

    /// The registered work of `spec`'s content (its title as `spec` gives
    /// it), or an id for a new one: above every registered work and every
    /// id other marks of this process hold. Nothing is written: the
    /// reservation holds only if no other process registers a work at or
    /// above it before [`Ledger::record_delivery`], which refuses it
    /// otherwise with [`LedgerError::Conflict`].
    pub async fn reserve_work(&self, spec: &WorkSpec) -> Result<Reservation, LedgerError> {
        if let Some(work) = self.work_by_content(&spec.content_hash).await? {
            let title = spec.title.clone().or(work.title.clone());
            return Ok(Reservation {
                work: Work { title, ..work },
                new: false,
                _held: None,
            });
        }
        let next: i64 = async {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT {}",
                next_id_sql("works")
            )))
            .fetch_one(&self.pool)
            .await
        }
        .await?;
        // Above every id another mark of this process holds: concurrent
        // marks of new works take different ids instead of all but one
        // being refused and made again.
        let id = {
            let mut reserved = self
                .reserved_works
                .lock()
                .map_err(|_| LedgerError::Database {
                    message: "a mark panicked while reserving".into(),
                    source: None,
                })?;
            let id = reserved.last().map_or(next, |&last| next.max(last + 1));
            reserved.insert(id);
            id
        };
        let held = HeldId {
            reserved: Arc::clone(&self.reserved_works),
            id,
        };
        Ok(Reservation {
            work: Work {
                id,
                content_hash: spec.content_hash.clone(),
                title: spec.title.clone(),
                duration_s: spec.duration_s,
                rate: spec.rate as i64,
                channels: spec.channels as i64,
                created_at: String::new(),
                kind: spec.kind.to_string(),
                words: spec.words,
            },
            new: true,
            _held: Some(held),
        })
    }

    /// Records a delivered copy (replacing the record of the same work,
    /// recipient and format) and appends the audit row, in one transaction.
    pub async fn record_copy(&self, copy: &CopyRecord) -> Result<(), LedgerError> {
        self.record_copies(std::slice::from_ref(copy), || Ok(()))
            .await
    }

    /// Records every copy of `copies`, of works already registered, each
    /// with its audit row, in one transaction; see
    /// [`Ledger::record_delivery`].
    pub async fn record_copies(
        &self,
        copies: &[CopyRecord],
        deliver: impl FnOnce() -> Result<(), LedgerError> + Send,
    ) -> Result<(), LedgerError> {
        self.record(None, copies, deliver).await.map(|_| ())
    }

    /// Registers `reservation`'s work if it is new (or updates its title)
    /// and records every copy of `copies`, each with its audit row, in one
    /// transaction. `deliver` runs after the rows are written and before
    /// they are committed: if it fails, nothing is recorded; if it succeeds,
    /// everything is (or, should the commit itself fail, nothing is and the
    /// error says so). Put the copies in place in `deliver`, so that what
    /// the ledger holds and what was delivered cannot part.
    ///
    /// A new work whose id was taken meanwhile, or whose content was
    /// registered meanwhile, is refused with [`LedgerError::Conflict`]:
    /// its copies carry an id that is not theirs, so they must be made
    /// again.
    pub async fn record_delivery(
        &self,
        reservation: &Reservation,
        copies: &[CopyRecord],
        deliver: impl FnOnce() -> Result<(), LedgerError> + Send,
    ) -> Result<Work, LedgerError> {
        self.record(Some(reservation), copies, deliver)
            .await
            .map(|work| work.expect("a reservation gives a work"))
    }

    async fn record(
        &self,
        reservation: Option<&Reservation>,
        copies: &[CopyRecord],
        deliver: impl FnOnce() -> Result<(), LedgerError> + Send,
    ) -> Result<Option<Work>, LedgerError> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let work = match reservation {
            Some(r) => Some(register(&mut tx, &self.row_key, r).await?),
            None => None,
        };
        let mut head = None;
        if let (Some(work), Some(true), true) =
            (&work, reservation.map(|r| r.new), copies.is_empty())
        {
            // A work registered with no copy yet (an upload): its own row.
            let detail = serde_json::json!({
                "work": work.id,
                "content_hash": work.content_hash,
                "title": work.title,
            });
            head = Some(
                self.append_audit(&mut tx, "work", &detail.to_string())
                    .await?,
            );
        }
        for copy in copies {
            let detail = format!(
                r#"{{"work":{},"recipient":{},"format":"{}","output_hash":"{}"}}"#,
                copy.work_id, copy.recipient_id, copy.format, copy.output_hash
            );
            let row = sqlx::query(
                "INSERT INTO copies (work_id, recipient_id, payload, output_hash, format, path, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (work_id, recipient_id, format) DO UPDATE SET \
                 payload = excluded.payload, output_hash = excluded.output_hash, path = excluded.path \
                 RETURNING *",
            )
            .bind(copy.work_id)
            .bind(copy.recipient_id)
            .bind(&copy.payload)
            .bind(&copy.output_hash)
            .bind(&copy.format)
            .bind(&copy.path)
            .bind(now())
            .fetch_one(&mut *tx)
            .await?;
            seal_copy(&mut tx, &self.row_key, &copy_row_from(&row)).await?;
            head = Some(self.append_audit(&mut tx, "mark", &detail).await?);
        }
        deliver()?;
        tx.commit().await?;
        if let Some(head) = head {
            self.write_head(&head)?;
        }
        Ok(work)
    }

    /// The work with ledger id `id`.
    pub async fn work(&self, id: i64) -> Result<Option<Work>, LedgerError> {
        let row = sqlx::query("SELECT * FROM works WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(work_from))
    }

    /// Every work, by id.
    pub async fn works(&self) -> Result<Vec<Work>, LedgerError> {
        let rows = sqlx::query("SELECT * FROM works ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(work_from).collect())
    }

    /// Every copy of `work`, in the order recorded.
    pub async fn copies_of(&self, work: i64) -> Result<Vec<CopyRecord>, LedgerError> {
        let rows = sqlx::query("SELECT * FROM copies WHERE work_id = ? ORDER BY id")
            .bind(work)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(copy_from_row).collect())
    }

    /// Ids of the recipients who received at least one copy of `work`, ascending.
    pub async fn recipients_of(&self, work: i64) -> Result<Vec<i64>, LedgerError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT recipient_id FROM copies WHERE work_id = ? ORDER BY recipient_id",
        )
        .bind(work)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }
}

/// Inserts `reservation`'s work if it is new, under its reserved id, or
/// updates the title of the registered one; the row is MAC'd either way.
async fn register(
    tx: &mut crate::store::Connection,
    row_key: &earmark_keys::SecretKey,
    reservation: &Reservation,
) -> Result<Work, LedgerError> {
    let spec = &reservation.work;
    if !reservation.new {
        let row = sqlx::query("SELECT * FROM works WHERE id = ? AND content_hash = ?")
            .bind(spec.id)
            .bind(&spec.content_hash)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(LedgerError::UnknownWork(spec.id))?;
        let work = work_from(&row);
        if spec.title.is_none() || spec.title == work.title {
            return Ok(work);
        }
        sqlx::query("UPDATE works SET title = ? WHERE id = ?")
            .bind(&spec.title)
            .bind(spec.id)
            .execute(&mut *tx)
            .await?;
        let work = Work {
            title: spec.title.clone(),
            ..work
        };
        seal_work(tx, row_key, &work).await?;
        return Ok(work);
    }
    let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM works WHERE content_hash = ?")
        .bind(&spec.content_hash)
        .fetch_optional(&mut *tx)
        .await?;
    // The id must be free, and above what a restore recorded as issued
    // before it rolled the home back. Ids need not follow one another: a
    // reservation that failed leaves a gap, whose copies were never
    // delivered, and marks of one process commit in any order.
    let unusable: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM works WHERE id = ?) OR ? <= {}",
        crate::store::issued_before_restore_sql("works")
    )))
    .bind(spec.id)
    .bind(spec.id)
    .fetch_one(&mut *tx)
    .await?;
    if taken.is_some() || unusable {
        return Err(LedgerError::Conflict(format!(
            "another command registered a work while work {} was being marked",
            spec.id
        )));
    }
    let row = sqlx::query(
        "INSERT INTO works (id, content_hash, title, duration_s, rate, channels, created_at, kind, words) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
    )
    .bind(spec.id)
    .bind(&spec.content_hash)
    .bind(&spec.title)
    .bind(spec.duration_s)
    .bind(spec.rate)
    .bind(spec.channels)
    .bind(now())
    .bind(&spec.kind)
    .bind(spec.words)
    .fetch_one(&mut *tx)
    .await?;
    let work = work_from(&row);
    seal_work(tx, row_key, &work).await?;
    Ok(work)
}
