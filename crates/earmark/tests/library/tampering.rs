//! A home kept open by a service checks, on every trace, only what the
//! trace reads and the audit rows appended since its last check. These
//! tests edit the database behind an open home, as someone who can write it
//! but does not hold the key would, and hold the next trace in the same
//! process to the verdict a fresh process would give: refused, never
//! someone else named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use earmark::{
    Epsilon, ErrorKind, Format, Home, MarkReport, MarkRequest, NoProgress, Selection, TraceRequest,
};

use super::{fixture, home_for_three, mark_demo};

/// A home with Ana, Bo and Cy, the bundled recording marked for them and
/// traced once from Bo's copy (so the home has checked its ledger).
async fn traced_home() -> (tempfile::TempDir, PathBuf, Home, MarkReport, TraceRequest) {
    let (dir, root, home) = home_for_three().await;
    let marked = mark_demo(&home, dir.path().join("copies")).await;
    let bo = marked.copies.iter().find(|c| c.recipient == "Bo").unwrap();
    let request = TraceRequest {
        leak: bo.path.clone(),
        work: None,
        epsilon: Epsilon::DEFAULT,
    };
    let first = home.trace(&request, Arc::new(NoProgress)).await.unwrap();
    assert_eq!(first.accused[0].name, "Bo");
    (dir, root, home, marked, request)
}

/// Runs `statements` on the ledger through a connection of its own, with
/// the triggers that guard the audit table dropped first.
pub(crate) async fn edit(root: &Path, statements: &[&str]) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", root.join("ledger.sqlite").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for statement in [
        "PRAGMA foreign_keys = OFF",
        "DROP TRIGGER IF EXISTS audit_no_delete",
        "DROP TRIGGER IF EXISTS audit_no_update",
    ]
    .iter()
    .chain(statements)
    {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

/// The next trace in the same process after `statements`: refused as
/// tampering, like `audit verify`.
async fn refused_after(statements: &[&str]) {
    let (_dir, root, home, _marked, request) = traced_home().await;
    edit(&root, statements).await;
    let verdict = home.trace(&request, Arc::new(NoProgress)).await;
    let error = verdict.expect_err("the edited ledger is refused");
    assert_eq!(error.kind(), ErrorKind::Ledger, "{error}");
    assert!(!home.audit_verify().await.unwrap().intact);
}

#[tokio::test]
async fn a_copy_moved_to_someone_else_is_refused() {
    // Ana's copy row goes, and Bo's now says it is hers.
    refused_after(&[
        "DELETE FROM copies WHERE recipient_id = 1",
        "UPDATE copies SET recipient_id = 1 WHERE recipient_id = 2",
    ])
    .await;
}

#[tokio::test]
async fn a_deleted_copy_is_refused() {
    refused_after(&["DELETE FROM copies WHERE recipient_id = 3"]).await;
}

#[tokio::test]
async fn the_newest_audit_rows_deleted_are_refused() {
    refused_after(&["DELETE FROM audit WHERE seq >= (SELECT MAX(seq) - 1 FROM audit)"]).await;
}

#[tokio::test]
async fn two_recipients_rows_swapped_are_refused() {
    refused_after(&[
        "UPDATE recipients SET id = 100 WHERE id = 1",
        "UPDATE recipients SET id = 1 WHERE id = 2",
        "UPDATE recipients SET id = 2 WHERE id = 100",
    ])
    .await;
}

/// What a new audit row from another process adds is taken in, not taken
/// for tampering: a recipient added and marked for behind the open home's
/// back is traced by it.
#[tokio::test]
async fn rows_another_process_appends_are_taken_in() {
    let (dir, root, home, _marked, _request) = traced_home().await;
    let other = Home::open(&root).await.unwrap();
    other.add_recipient("Dee", None, None).await.unwrap();
    let again = other
        .mark(
            &MarkRequest {
                work: fixture("speech_en_f_8k_allison_demo-congrats.wav"),
                recipients: Selection::Named(vec!["Dee".into()]),
                out: dir.path().join("more").into(),
                format: Format::Wav,
                title: None,
                settings: Default::default(),
            },
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    other.close().await;
    let verdict = home
        .trace(
            &TraceRequest {
                leak: again.copies[0].path.clone(),
                work: None,
                epsilon: Epsilon::DEFAULT,
            },
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    let names: Vec<&str> = verdict.accused.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Dee"]);
    assert!(home.audit_verify().await.unwrap().intact);
}

/// A new process starts from the checked state stored on disk, and still
/// refuses an edit made since; a stored state that does not verify is
/// ignored, and the whole ledger is checked instead.
#[tokio::test]
async fn a_new_process_starts_from_the_stored_checkpoint() {
    let (_dir, root, home, _marked, request) = traced_home().await;
    home.close().await;
    assert!(root.join("audit.verified").is_file());

    // Garbage in place of the checkpoint: ignored, the trace still names Bo.
    std::fs::write(root.join("audit.verified"), b"00\n{}").unwrap();
    let reopened = Home::open(&root).await.unwrap();
    let verdict = reopened
        .trace(&request, Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(verdict.accused[0].name, "Bo");
    reopened.close().await;

    // An edit made while no process had the home open.
    edit(&root, &["DELETE FROM copies WHERE recipient_id = 3"]).await;
    let reopened = Home::open(&root).await.unwrap();
    let error = reopened
        .trace(&request, Arc::new(NoProgress))
        .await
        .expect_err("the edited ledger is refused");
    assert_eq!(error.kind(), ErrorKind::Ledger, "{error}");
}
