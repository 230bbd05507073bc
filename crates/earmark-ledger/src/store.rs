//! The database behind the ledger, and the statements whose dialect is the
//! backend's own. The rest of the crate names only the types and functions
//! here, and its public API names no database, so a PostgreSQL backend
//! changes this file (an enum of pools in place of the alias) and brings
//! its own migrations, without touching the ledger's callers.
//!
//! SQLite is the backend: one file in WAL mode, synchronous writes, foreign
//! keys on, and a write lock taken at the start of every writing
//! transaction so that concurrent processes queue (`BEGIN IMMEDIATE`).

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::BUSY_TIMEOUT;

/// The backend.
pub(crate) type Db = sqlx::Sqlite;
/// A pool of connections to the ledger.
pub(crate) type Pool = sqlx::Pool<Db>;
/// One connection, or a transaction's.
pub(crate) type Connection = <Db as sqlx::Database>::Connection;
/// A row as read.
pub(crate) type DbRow = <Db as sqlx::Database>::Row;
/// A transaction on the pool.
pub(crate) type Transaction = sqlx::Transaction<'static, Db>;

/// Opens the ledger database at `path` (created if `create`).
pub(crate) async fn connect(path: &Path, create: bool) -> Result<Pool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
}

/// Begins a transaction that holds the write lock from its start, waiting
/// up to [`BUSY_TIMEOUT`] for another process's.
pub(crate) async fn begin_write(pool: &Pool) -> Result<Transaction, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Folds the write-ahead log into the database file (best effort).
pub(crate) async fn checkpoint(pool: &Pool) {
    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await;
}

/// Tables in the database, the backend's own aside.
pub(crate) async fn table_count(pool: &Pool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_one(pool)
    .await
}

/// Whether the database holds a table named `table`.
pub(crate) async fn has_table(pool: &Pool, table: &str) -> Result<bool, sqlx::Error> {
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(table)
            .fetch_one(pool)
            .await?;
    Ok(count > 0)
}

/// Writes a consistent copy of the whole database to the new file `dest`.
pub(crate) async fn copy_to(pool: &Pool, dest: &Path) -> Result<(), sqlx::Error> {
    sqlx::query("VACUUM INTO ?")
        .bind(dest.to_string_lossy().into_owned())
        .execute(pool)
        .await
        .map(drop)
}

/// SQL for the highest id of `table` (`recipients` or `works`) that the
/// `restore` audit rows record as issued before a rollback, or 0.
pub(crate) fn issued_before_restore_sql(table: &'static str) -> String {
    format!(
        "COALESCE((SELECT MAX(CAST(json_extract(detail, '$.issued.{table}') AS INTEGER)) \
                   FROM audit WHERE action = 'restore'), 0)"
    )
}
