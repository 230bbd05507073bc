//! The library called as a service would call it: from inside a tokio
//! runtime, on a real home, a real recording and a real SQLite ledger.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use earmark::{
    Epsilon, ErrorKind, Format, Home, Leak, MarkReport, MarkRequest, NoProgress, Progress,
    Selection, TraceRequest,
};

mod tampering;
mod users;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// A request to mark the bundled 8 kHz recording for everyone, into `out`.
fn demo_request(out: PathBuf) -> MarkRequest {
    MarkRequest {
        work: fixture("speech_en_f_8k_allison_demo-congrats.wav"),
        recipients: Selection::All,
        out: out.into(),
        format: Format::Wav,
        title: None,
        settings: Default::default(),
    }
}

/// Marks the bundled recording for everyone in `home`, into `out`.
async fn mark_demo(home: &Home, out: PathBuf) -> MarkReport {
    home.mark(&demo_request(out), std::sync::Arc::new(NoProgress))
        .await
        .unwrap()
}

/// A new home in a temporary directory with Ana, Bo and Cy in it: the
/// directory (kept alive), the home's root, the home.
async fn home_for_three() -> (tempfile::TempDir, PathBuf, Home) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("home");
    Home::init(&root).await.unwrap();
    let home = Home::open(&root).await.unwrap();
    for name in ["Ana", "Bo", "Cy"] {
        home.add_recipient(name, None, None).await.unwrap();
    }
    (dir, root, home)
}

#[tokio::test]
async fn a_home_marks_and_traces_inside_a_tokio_runtime() {
    let (dir, _root, home) = home_for_three().await;
    let out = dir.path().join("copies");
    let report = home
        .mark(
            &MarkRequest {
                work: fixture("speech_en_f_8k_allison_demo-congrats.wav"),
                recipients: Selection::All,
                out: out.clone().into(),
                format: Format::Wav,
                title: Some("Demo".into()),
                settings: Default::default(),
            },
            std::sync::Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(report.copies.len(), 3);
    let bo = report.copies.iter().find(|c| c.recipient == "Bo").unwrap();
    let verdict = home
        .trace(
            &TraceRequest {
                leak: bo.path.clone(),
                work: None,
                epsilon: Epsilon::DEFAULT,
            },
            std::sync::Arc::new(NoProgress),
        )
        .await
        .unwrap();
    let names: Vec<&str> = verdict.accused.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Bo"]);
    assert!(verdict.accused[0].false_accusation_bound <= 1e-6);
    // The JSON keeps the field names scripts use.
    let json = serde_json::to_value(&verdict).unwrap();
    assert_eq!(json["method"], "informed");
    assert_eq!(json["accused"][0]["evidence"][0], "identifier");
    assert!(json["accused"][0]["false_accusation_bound"].is_f64());
    assert!(home.audit_verify().await.unwrap().intact);
    drop(home);
}

#[test]
fn epsilon_is_held_to_the_open_unit_interval() {
    for bad in ["NaN", "nan", "0", "1", "2", "-1", "abc", "inf", "1e-400"] {
        assert!(bad.parse::<Epsilon>().is_err(), "{bad}");
    }
    assert!(Epsilon::new(f64::NAN).is_err());
    assert_eq!("1e-9".parse::<Epsilon>().unwrap().get(), 1e-9);
}

/// Says "cancel" from its `after`-th question on.
struct CancelAfter {
    asked: AtomicU64,
    after: u64,
}

impl Progress for CancelAfter {
    fn cancelled(&self) -> bool {
        self.asked.fetch_add(1, Ordering::Relaxed) >= self.after
    }
}

#[tokio::test]
async fn a_cancelled_mark_records_nothing_and_leaves_no_file() {
    let (dir, root, home) = home_for_three().await;
    let out = dir.path().join("copies");
    let request = demo_request(out.clone());
    // At once, and after some chunks of some copies have been written.
    for after in [0, 3] {
        let cancel = std::sync::Arc::new(CancelAfter {
            asked: AtomicU64::new(0),
            after,
        });
        let error = home.mark(&request, cancel).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
        assert!(home.works().await.unwrap().is_empty());
        let left: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
        assert!(home.audit_verify().await.unwrap().intact);
        let masters: Vec<_> = std::fs::read_dir(root.join("masters"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(masters.is_empty(), "{masters:?}");
    }
    // Not cancelled, the same request marks.
    let report = home
        .mark(&request, std::sync::Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(report.copies.len(), 3);
}

#[test]
fn a_cancelled_extraction_stops() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("k");
    earmark::create_key_file(&key_path).unwrap();
    let key = earmark::load_key_file(&key_path).unwrap();
    let cancel = CancelAfter {
        asked: AtomicU64::new(0),
        after: 1,
    };
    let error = earmark::extract_file(
        &fixture("speech_en_f_8k_allison_demo-congrats.wav"),
        &key,
        &cancel,
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
}

/// Four marks of new works and eight traces at once, as tasks of one
/// multi-threaded runtime sharing one home: every mark gets its own work id, every trace names the
/// holder of the copy it was given, and the ledger verifies afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn marks_and_traces_run_at_once_on_one_home() {
    let (dir, _root, home) = home_for_three().await;
    let first = mark_demo(&home, dir.path().join("first")).await;
    let mut marks = Vec::new();
    for k in 0..4 {
        let excerpt = dir.path().join(format!("excerpt{k}.wav"));
        let made = std::process::Command::new("sox")
            .arg(fixture("long/long_call_en-f_it-m_8k.flac"))
            .arg(&excerpt)
            .args(["trim", &(30 + 60 * k).to_string(), "20"])
            .status()
            .expect("sox runs (Debian package sox)");
        assert!(made.success());
        let home = home.clone();
        let out = dir.path().join(format!("copies{k}"));
        marks.push(tokio::spawn(async move {
            home.mark(
                &MarkRequest {
                    work: excerpt,
                    recipients: Selection::All,
                    out: out.into(),
                    format: Format::Wav,
                    title: None,
                    settings: Default::default(),
                },
                std::sync::Arc::new(NoProgress),
            )
            .await
        }));
    }
    let mut traces = Vec::new();
    for k in 0..8 {
        let copy = first.copies[k % 3].clone();
        let home = home.clone();
        traces.push(tokio::spawn(async move {
            let report = home
                .trace(
                    &TraceRequest {
                        leak: copy.path.clone(),
                        work: None,
                        epsilon: Epsilon::DEFAULT,
                    },
                    std::sync::Arc::new(NoProgress),
                )
                .await;
            (copy.recipient, report)
        }));
    }
    let mut works = vec![first.work];
    for mark in marks {
        works.push(
            mark.await
                .unwrap()
                .expect("a concurrent mark succeeds")
                .work,
        );
    }
    works.sort_unstable();
    works.dedup();
    assert_eq!(works.len(), 5, "{works:?}");
    for trace in traces {
        let (holder, report) = trace.await.unwrap();
        let report = report.expect("a concurrent trace succeeds");
        let named: Vec<&str> = report.accused.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(named, [holder.as_str()]);
    }
    assert!(home.audit_verify().await.unwrap().intact);
    assert_eq!(home.works().await.unwrap().len(), 5);
}

/// A leak given as bytes or as a stream (an upload) is traced as the same
/// file would be, and leaves nothing behind in the home; an empty upload is
/// refused as audio, named as the upload, not as a temporary file.
#[tokio::test]
async fn a_leak_traces_from_bytes_and_from_a_stream() {
    let (dir, root, home) = home_for_three().await;
    let report = mark_demo(&home, dir.path().join("copies")).await;
    let cy = report.copies.iter().find(|c| c.recipient == "Cy").unwrap();
    let bytes = std::fs::read(&cy.path).unwrap();
    let stream: Box<dyn std::io::Read + Send> = Box::new(std::fs::File::open(&cy.path).unwrap());
    for leak in [Leak::Bytes(bytes), Leak::Reader(stream)] {
        let verdict = home
            .trace_leak(
                leak,
                None,
                Epsilon::DEFAULT,
                std::sync::Arc::new(NoProgress),
            )
            .await
            .unwrap();
        let names: Vec<&str> = verdict.accused.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Cy"]);
    }
    let error = home
        .trace_leak(
            Leak::Bytes(Vec::new()),
            None,
            Epsilon::DEFAULT,
            std::sync::Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadAudio, "{error}");
    assert!(error.to_string().contains("the uploaded leak"), "{error}");
    let left: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(home.audit_verify().await.unwrap().intact);
}

/// A failure caused by the system carries that cause as its source, for an
/// embedder to inspect, besides saying it in its one line.
#[test]
fn errors_carry_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-key");
    let error = earmark::load_key_file(&missing).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadKey);
    let source = std::error::Error::source(&error).expect("a source");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("an I/O error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(error.to_string().contains("no-such-key"), "{error}");

    let error = earmark::create_key_file(&dir.path().join("no/such/dir/key")).unwrap_err();
    assert!(std::error::Error::source(&error).is_some(), "{error}");
}

/// A store of the caller's that stages copies in one directory and
/// publishes them into another, failing its `fail_at`-th publication.
#[derive(Debug)]
struct BlobStore {
    root: PathBuf,
    fail_at: usize,
    published: std::sync::atomic::AtomicUsize,
}

impl BlobStore {
    fn new(root: PathBuf, fail_at: usize) -> Self {
        BlobStore {
            root,
            fail_at,
            published: Default::default(),
        }
    }

    fn files(&self, dir: &str) -> Vec<String> {
        std::fs::read_dir(self.root.join(dir))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl earmark::CopySink for BlobStore {
    fn check(&self, _home: &Path) -> earmark::Result<()> {
        Ok(())
    }

    fn prepare(&self) -> earmark::Result<()> {
        for dir in ["staging", "blobs"] {
            std::fs::create_dir_all(self.root.join(dir)).unwrap();
        }
        Ok(())
    }

    fn staging_path(&self, partial_name: &str) -> PathBuf {
        self.root.join("staging").join(partial_name)
    }

    fn target(&self, file_name: &str) -> PathBuf {
        self.root.join("blobs").join(file_name)
    }

    fn publish(&self, staged: &Path, target: &Path) -> std::io::Result<()> {
        if self.published.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(std::io::Error::other("the store is full"));
        }
        std::fs::rename(staged, target)
    }

    fn withdraw(&self, target: &Path, staged: &Path) {
        std::fs::rename(target, staged).unwrap();
    }

    fn sync(&self) {}

    fn location(&self) -> PathBuf {
        self.root.join("blobs")
    }
}

/// Copies go through a caller's sink: published where it says, recorded
/// with that place, and traced; a sink that fails midway leaves nothing
/// published, nothing staged and nothing recorded.
#[tokio::test]
async fn copies_go_through_a_sink_all_or_nothing() {
    let (dir, _root, home) = home_for_three().await;
    let failing = std::sync::Arc::new(BlobStore::new(dir.path().join("failing"), 2));
    let mut request = demo_request(dir.path().join("unused"));
    request.out = earmark::Destination::Sink(failing.clone());
    let error = home
        .mark(&request, std::sync::Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("the store is full"), "{error}");
    assert!(
        failing.files("blobs").is_empty(),
        "{:?}",
        failing.files("blobs")
    );
    assert!(
        failing.files("staging").is_empty(),
        "{:?}",
        failing.files("staging")
    );
    assert!(home.works().await.unwrap().is_empty());
    assert!(home.audit_verify().await.unwrap().intact);

    let store = std::sync::Arc::new(BlobStore::new(dir.path().join("store"), usize::MAX));
    request.out = earmark::Destination::Sink(store.clone());
    let marked = home
        .mark(&request, std::sync::Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(marked.out, dir.path().join("store/blobs"));
    assert_eq!(store.files("blobs").len(), 3);
    assert!(store.files("staging").is_empty());
    let cy = marked.copies.iter().find(|c| c.recipient == "Cy").unwrap();
    assert!(cy.path.starts_with(dir.path().join("store/blobs")));
    let verdict = home
        .trace_leak(
            Leak::Path(cy.path.clone()),
            None,
            Epsilon::DEFAULT,
            std::sync::Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(verdict.accused[0].name, "Cy");
    let detail = home.work_detail(marked.work).await.unwrap();
    assert!(detail
        .copies
        .iter()
        .all(|c| Path::new(&c.path).starts_with(dir.path().join("store/blobs"))));
}
