//! The queue on a real home: what a killed service left in the spool is
//! swept when the queue opens, and nothing of a live one's or of a queued
//! job's.

use earmark::Home;
use earmark_jobs::{Jobs, SPOOL_DIR};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_the_queue_sweeps_only_the_uploads_of_dead_processes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("home");
    Home::init(&root).await.unwrap();
    let home = Home::open(&root).await.unwrap();
    let jobs = Jobs::open(&home).await.unwrap();
    jobs.close().await;
    let spool = root.join(SPOOL_DIR);
    // No process has this id (above Linux's pid_max).
    let dead = spool.join(".upload-0a0b0c.4194305.partial");
    let live = spool.join(format!(".upload-0d0e0f.{}.partial", std::process::id()));
    let queued = spool.join("0123456789abcdef0123456789abcdef.leak");
    for file in [&dead, &live, &queued] {
        std::fs::write(file, b"bytes").unwrap();
    }
    let jobs = Jobs::open(&home).await.unwrap();
    assert!(!dead.exists());
    assert!(live.exists());
    assert!(queued.exists());
    jobs.close().await;
    home.close().await;
}
