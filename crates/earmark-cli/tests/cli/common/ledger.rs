//! Direct access to a ledger file, as someone with the file (and not the
//! key) could edit it: for tests that tamper with records or inspect them.

use std::path::Path;

/// Runs `f` on a connection to the SQLite file at `path`, read-only when
/// `read_only`; sqlx's async API on a runtime of its own.
pub fn with_sqlite<T>(
    path: &Path,
    read_only: bool,
    f: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> T,
) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        let mode = if read_only { "?mode=ro" } else { "" };
        let url = format!("sqlite://{}{mode}", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let value = f(&mut conn).await;
        conn.close().await.unwrap();
        value
    })
}

/// The first column of the first row `sql` returns, read-only.
pub fn query_one<T>(path: &Path, sql: &'static str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    with_sqlite(path, true, async |conn| {
        use sqlx::Row;
        sqlx::query(sql)
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    })
}

/// Runs `statements` as a hand edit would: foreign keys off (sqlx turns
/// them on; someone editing the file by hand need not).
pub fn tamper(path: &Path, statements: &[&str]) {
    with_sqlite(path, false, async |conn| {
        sqlx::raw_sql("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .unwrap();
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
                .execute(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    })
}
