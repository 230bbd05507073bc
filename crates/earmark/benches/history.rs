//! Trace latency against the size of the home's history: the same leak
//! traced in a fresh home (3 recipients, 1 work) and in a busy one that also
//! holds 10,000 recipients, 1,000 works and 100,000 audit rows, by a home
//! kept open (a service) and by one opened for each trace (a command-line
//! run). A verdict's checks should not grow with the history, so fresh and
//! busy should be close.
//!
//! `cargo bench -p earmark --bench history` (synthetic records from
//! `EARMARK_BENCH_SEED`, default 1). Building the busy home takes a minute.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use earmark::{Epsilon, Format, Home, MarkRequest, NoProgress, Selection, TraceRequest};
use earmark_ledger::{CopyRecord, WorkSpec, AUDIO};
use sha2::{Digest, Sha256};

/// Recipients the busy home adds to the fresh home's three.
const RECIPIENTS: usize = 10_000;
/// Works the busy home registers besides the traced one.
const WORKS: usize = 999;
/// Copies recorded of each of those works: one audit row each.
const COPIES_PER_WORK: usize = 100;

/// A home with Ana, Bo and Cy and the bundled recording marked for them;
/// returns the home's root and Bo's copy, the leak.
async fn marked_home(dir: &Path) -> (PathBuf, PathBuf) {
    let root = dir.join("home");
    Home::init(&root).await.expect("a new home");
    let home = Home::open(&root).await.expect("the home opens");
    for name in ["Ana", "Bo", "Cy"] {
        home.add_recipient(name, None, None)
            .await
            .expect("a recipient");
    }
    let master = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/speech_en_f_8k_allison_demo-congrats.wav");
    let marked = home
        .mark(
            &MarkRequest {
                work: master,
                recipients: Selection::All,
                out: dir.join("copies").into(),
                format: Format::Wav,
                title: None,
                settings: Default::default(),
            },
            Arc::new(NoProgress),
        )
        .await
        .expect("the recording marks");
    home.close().await;
    let leak = marked
        .copies
        .iter()
        .find(|c| c.recipient == "Bo")
        .expect("Bo's copy")
        .path
        .clone();
    (root, leak)
}

/// Adds the busy home's history to the home at `root`: recipients imported
/// in one go, then works with their copies recorded a work at a time.
async fn add_history(root: &Path, seed: u64) {
    let home = earmark_ledger::Home::open(root)
        .await
        .expect("the home opens");
    let mut csv = String::from("name\n");
    for k in 0..RECIPIENTS {
        csv.push_str(&format!("Recipient {k:05}\n"));
    }
    home.ledger
        .import_recipients(csv.as_bytes(), Path::new("recipients.csv"))
        .await
        .expect("the recipients import");
    for w in 0..WORKS {
        let content_hash = hex(&Sha256::digest(format!("{seed}/work/{w}")));
        let reservation = home
            .ledger
            .reserve_work(&WorkSpec {
                content_hash,
                title: Some(format!("Work {w}")),
                kind: AUDIO,
                duration_s: 60.0,
                rate: 8_000,
                channels: 1,
                words: None,
            })
            .await
            .expect("a work id");
        let copies: Vec<CopyRecord> = (0..COPIES_PER_WORK)
            .map(|c| {
                // Recipients 4.. are the imported ones.
                let recipient_id = 4 + ((w * COPIES_PER_WORK + c) % RECIPIENTS) as i64;
                let digest = Sha256::digest(format!("{seed}/copy/{w}/{c}"));
                CopyRecord {
                    work_id: reservation.work.id,
                    recipient_id,
                    payload: hex(&digest[..8]),
                    output_hash: hex(&digest),
                    format: "wav".into(),
                    path: format!("/srv/copies/{w}/{c}.wav"),
                    created_at: String::new(),
                }
            })
            .collect();
        home.ledger
            .record_delivery(&reservation, &copies, || Ok(()))
            .await
            .expect("the copies record");
    }
    home.ledger.close().await;
}

/// Copies the directory `from` to the new directory `to`, files and
/// subdirectories (a home holds no links).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("the home lists") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn benches(c: &mut Criterion) {
    let seed = std::env::var("EARMARK_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let fresh_dir = tempfile::tempdir().expect("a temporary directory");
    let busy_dir = tempfile::tempdir().expect("a temporary directory");
    let (fresh_root, leak) = runtime.block_on(marked_home(fresh_dir.path()));
    // The busy home is a copy of the fresh one with the history added: the
    // same key, the same copies and the same leak, so that only the
    // history differs.
    let busy_root = busy_dir.path().join("home");
    copy_tree(&fresh_root, &busy_root);
    runtime.block_on(add_history(&busy_root, seed));
    let mut group = c.benchmark_group("trace");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for (name, root) in [("fresh home", &fresh_root), ("busy home", &busy_root)] {
        let home = runtime.block_on(Home::open(root)).expect("the home opens");
        let request = TraceRequest {
            leak: leak.clone(),
            work: None,
            epsilon: Epsilon::DEFAULT,
        };
        // The verdict is checked once, outside the timing.
        let verdict = runtime
            .block_on(home.trace(&request, Arc::new(NoProgress)))
            .expect("the leak traces");
        assert_eq!(verdict.accused.len(), 1);
        assert_eq!(verdict.accused[0].name, "Bo");
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(home.trace(&request, Arc::new(NoProgress)))
                    .expect("the leak traces")
            })
        });
        // What every trace ran first before it checked only what it reads.
        group.bench_function(format!("{name}, the full check alone"), |b| {
            b.iter(|| {
                runtime
                    .block_on(home.audit_verify())
                    .expect("the check runs")
            })
        });
        runtime.block_on(home.close());
        // As a command-line run traces: a new process opens the home, which
        // starts from the checked state stored on disk.
        group.bench_function(format!("{name}, opened for each trace"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let home = Home::open(root).await.expect("the home opens");
                    let verdict = home.trace(&request, Arc::new(NoProgress)).await;
                    home.close().await;
                    verdict.expect("the leak traces")
                })
            })
        });
    }
    group.finish();
}

criterion_group!(history, benches);
criterion_main!(history);
