//! The job table: one row per job, beside apalis's own tables in the
//! queue's database. apalis decides which worker runs a job and when it is
//! retried; this table says what the job is for, who asked, how far it
//! got and what it found.

use std::path::Path;
use std::str::FromStr;

use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use serde::Serialize;
use sqlx::Row;

use crate::{JobError, JobRequest};

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Traces an uploaded leak.
    Trace,
    /// Marks a registered work for recipients.
    Mark,
    /// Renders the copy a delivery link fetches.
    Render,
}

impl JobKind {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Trace => "trace",
            JobKind::Mark => "mark",
            JobKind::Render => "render",
        }
    }
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// A worker has it (or had it, and died: it will be run again).
    Running,
    /// Finished; `result` holds what the library returned.
    Done,
    /// Refused by the library (a bad upload, a damaged ledger); `error`
    /// says why. Not retried: the same input would fail the same way.
    Failed,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
}

impl FromStr for JobState {
    type Err = JobError;
    fn from_str(s: &str) -> Result<Self, JobError> {
        Ok(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            other => {
                return Err(JobError::queue(format!(
                    "a job is in unknown state {other}"
                )))
            }
        })
    }
}

/// A job as a caller sees it.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    /// The job's id (32 hex digits).
    pub id: String,
    /// What it does.
    pub kind: JobKind,
    /// Where it stands.
    pub state: JobState,
    /// The stage under way, if the library named one.
    pub stage: Option<String>,
    /// How much of the job is done, 0 to 1.
    pub progress: f64,
    /// Who asked for it.
    pub submitted_by: String,
    /// When it was queued (UTC, RFC 3339).
    pub submitted_at: String,
    /// When it finished (UTC, RFC 3339).
    pub finished_at: Option<String>,
    /// How many times a worker started it.
    pub runs: i64,
    /// What the library returned: for a trace exactly the report
    /// `earmark trace --json` prints, for a mark the report of
    /// `earmark mark --json`.
    pub result: Option<Box<serde_json::value::RawValue>>,
    /// Why it failed: `{error, kind}` as the library's error says.
    pub error: Option<serde_json::Value>,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS earmark_jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    request      TEXT NOT NULL,
    state        TEXT NOT NULL,
    stage        TEXT,
    progress     REAL NOT NULL DEFAULT 0,
    runs         INTEGER NOT NULL DEFAULT 0,
    result       TEXT,
    error        TEXT,
    finished_at  TEXT,
    copy         TEXT
)";

/// At most one unfinished render of each copy.
const ONE_RENDER_PER_COPY: &str = "CREATE UNIQUE INDEX IF NOT EXISTS earmark_jobs_one_render     ON earmark_jobs (copy) WHERE copy IS NOT NULL AND state IN ('queued', 'running')";

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')";

/// Opens the queue's database, creating it private if it is missing.
pub(crate) async fn connect(path: &Path) -> Result<SqlitePool, JobError> {
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(JobError::write(path.display(), e)),
        }
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(30));
    Ok(SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?)
}

pub(crate) async fn create(pool: &SqlitePool) -> Result<(), JobError> {
    sqlx::query(SCHEMA).execute(pool).await?;
    // A queue made before renders were jobs has no `copy` column.
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('earmark_jobs')")
            .fetch_all(pool)
            .await?;
    if !columns.iter().any(|c| c == "copy") {
        sqlx::query("ALTER TABLE earmark_jobs ADD COLUMN copy TEXT")
            .execute(pool)
            .await?;
    }
    sqlx::query(ONE_RENDER_PER_COPY).execute(pool).await?;
    Ok(())
}

/// A new job id: 128 random bits, hex, so that ids cannot be guessed.
pub(crate) fn new_job_id() -> Result<String, JobError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| JobError::queue(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) async fn insert(
    pool: &SqlitePool,
    id: &str,
    kind: JobKind,
    user: &str,
    request: &JobRequest,
    copy: Option<&str>,
) -> Result<(), JobError> {
    let request = serde_json::to_string(request).map_err(JobError::queue)?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO earmark_jobs (id, kind, submitted_by, submitted_at, request, state, copy) \
         VALUES (?, ?, ?, {NOW}, ?, 'queued', ?)"
    )))
    .bind(id)
    .bind(kind.as_str())
    .bind(user)
    .bind(request)
    .bind(copy)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn delete(pool: &SqlitePool, id: &str) -> Result<(), JobError> {
    sqlx::query("DELETE FROM earmark_jobs WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn get(pool: &SqlitePool, id: &str) -> Result<Option<JobView>, JobError> {
    let Some(row) = sqlx::query("SELECT * FROM earmark_jobs WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let json = |name: &str| -> Option<serde_json::Value> {
        row.get::<Option<String>, _>(name)
            .and_then(|text| serde_json::from_str(&text).ok())
    };
    let kind = match row.get::<String, _>("kind").as_str() {
        "trace" => JobKind::Trace,
        "render" => JobKind::Render,
        _ => JobKind::Mark,
    };
    Ok(Some(JobView {
        id: row.get("id"),
        kind,
        state: row.get::<String, _>("state").parse()?,
        stage: row.get("stage"),
        progress: row.get("progress"),
        submitted_by: row.get("submitted_by"),
        submitted_at: row.get("submitted_at"),
        finished_at: row.get("finished_at"),
        runs: row.get("runs"),
        result: row
            .get::<Option<String>, _>("result")
            .and_then(|text| serde_json::value::RawValue::from_string(text).ok()),
        error: json("error"),
    }))
}

/// The request and state of job `id`, for a worker about to run it.
pub(crate) async fn claim(
    pool: &SqlitePool,
    id: &str,
) -> Result<Option<(JobRequest, JobState, String, i64)>, JobError> {
    let row = sqlx::query(
        "UPDATE earmark_jobs SET runs = runs + 1, \
         state = CASE WHEN state IN ('queued', 'running') THEN 'running' ELSE state END \
         WHERE id = ? RETURNING request, state, submitted_by, runs",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let request = serde_json::from_str(&row.get::<String, _>("request"))
        .map_err(|e| JobError::queue(format!("job {id} holds an unreadable request: {e}")))?;
    Ok(Some((
        request,
        row.get::<String, _>("state").parse()?,
        row.get("submitted_by"),
        row.get("runs"),
    )))
}

pub(crate) async fn set_progress(
    pool: &SqlitePool,
    id: &str,
    stage: Option<&str>,
    progress: f64,
) -> Result<(), JobError> {
    sqlx::query(
        "UPDATE earmark_jobs SET stage = ?, progress = ? WHERE id = ? AND state = 'running'",
    )
    .bind(stage)
    .bind(progress)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends job `id` in `state` with its result or error, in one statement.
pub(crate) async fn finish(
    pool: &SqlitePool,
    id: &str,
    state: JobState,
    result: Option<&str>,
    error: Option<&serde_json::Value>,
) -> Result<(), JobError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE earmark_jobs SET state = ?, result = ?, error = ?, \
         progress = CASE WHEN ? = 'done' THEN 1 ELSE progress END, finished_at = {NOW} \
         WHERE id = ?"
    )))
    .bind(state.as_str())
    .bind(result)
    .bind(error.map(|v| v.to_string()))
    .bind(state.as_str())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The unfinished render of `copy`, if one is queued or running.
pub(crate) async fn unfinished(pool: &SqlitePool, copy: &str) -> Result<Option<String>, JobError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM earmark_jobs WHERE copy = ? AND state IN ('queued', 'running')",
    )
    .bind(copy)
    .fetch_optional(pool)
    .await?)
}

/// The render of `copy` that failed within the last `seconds`, if one did.
pub(crate) async fn recently_failed(
    pool: &SqlitePool,
    copy: &str,
    seconds: i64,
) -> Result<Option<String>, JobError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM earmark_jobs WHERE copy = ? AND state = 'failed' \
         AND finished_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', printf('-%d seconds', ?)) \
         ORDER BY finished_at DESC LIMIT 1",
    )
    .bind(copy)
    .bind(seconds)
    .fetch_optional(pool)
    .await?)
}
