//! The ledger as an attacker edits it: someone with the database file but
//! not the key rewrites rows, deletes them, inserts copies of them and
//! moves their MACs about, then asks for a verdict.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use earmark::{Epsilon, Home, MarkRequest, NoProgress, Selection, TraceRequest};

/// The recipients of the template home; the leak is [`HOLDER`]'s copy.
const RECIPIENTS: [&str; 4] = ["Ana", "Bo", "Cy", "Dee"];
/// Who leaked, by name; their id is the second issued.
const HOLDER: &str = "Bo";
const HOLDER_ID: i64 = 2;
/// Length of the leak cut from the holder's copy, seconds.
const LEAK_S: usize = 12;

/// A home with one work marked for [`RECIPIENTS`], and a leak of the
/// holder's copy, made once per process.
struct Template {
    home: PathBuf,
    leak: PathBuf,
}

fn scratch_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("earmark-fuzz-ledger-{}", std::process::id()))
}

/// The runtime the library's ledger runs on, one per process.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| runtime().block_on(make_template()))
}

async fn make_template() -> Template {
    {
        let root = scratch_root();
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("scratch directory");
        let home_dir = root.join("template");
        Home::init(&home_dir).await.expect("a new home");
        let home = Home::open(&home_dir).await.expect("the new home opens");
        for name in RECIPIENTS {
            home.add_recipient(name, None, None)
                .await
                .expect("a recipient");
        }
        let work = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/speech_en_f_8k_allison_demo-congrats.wav");
        let copies = root.join("copies");
        let report = home
            .mark(
                &MarkRequest {
                    work,
                    recipients: Selection::All,
                    out: copies.into(),
                    format: earmark::Format::Wav,
                    title: Some("call".into()),
                    settings: Default::default(),
                },
                std::sync::Arc::new(NoProgress),
            )
            .await
            .expect("the template marks");
        let copy = report
            .copies
            .iter()
            .find(|c| c.recipient == HOLDER)
            .expect("the holder's copy");
        assert_eq!(copy.recipient_id, HOLDER_ID);
        let mut audio = earmark_audio_io::read(&copy.path).expect("the copy reads");
        let start = 3 * audio.rate as usize;
        let end = start + LEAK_S * audio.rate as usize;
        for channel in &mut audio.channels {
            *channel = channel[start..end.min(channel.len())].to_vec();
        }
        let leak = root.join("leak.wav");
        earmark_audio_io::write(&leak, &audio).expect("the leak writes");
        home.close().await;
        Template {
            home: home_dir,
            leak,
        }
    }
}

/// One hand edit of the ledger, decoded from four bytes: the operation,
/// two row ids (1–5: the rows that exist, and one that does not) and a
/// table.
fn edit(op: u8, a: u8, b: u8, c: u8) -> String {
    let a = 1 + a % 5;
    let b = 1 + b % 5;
    let table = ["recipients", "works", "copies"][c as usize % 3];
    match op % 14 {
        0 => format!(
            "UPDATE recipients SET name = 'swap' WHERE id = {a}; \
             UPDATE recipients SET name = (SELECT name FROM recipients WHERE id = {b}) WHERE id = {a}; \
             UPDATE recipients SET name = (SELECT name FROM recipients WHERE id = {a}) WHERE id = {b}"
        ),
        1 => format!("UPDATE copies SET recipient_id = {b} WHERE id = {a}"),
        2 => format!(
            "UPDATE copies SET payload = (SELECT payload FROM copies WHERE id = {b}) WHERE id = {a}"
        ),
        3 => format!("UPDATE {table} SET mac = (SELECT mac FROM {table} WHERE id = {b}) WHERE id = {a}"),
        4 => format!("DELETE FROM {table} WHERE id = {a}"),
        5 => format!(
            "INSERT INTO copies (id, work_id, recipient_id, payload, output_hash, format, path, created_at, mac) \
             SELECT 100 + {b} * 10 + {a}, work_id, {b}, payload, output_hash, 'flac', path, created_at, mac \
             FROM copies WHERE id = {a}"
        ),
        6 => format!(
            "UPDATE recipients SET id = 1000 WHERE id = {a}; \
             UPDATE recipients SET id = {a} WHERE id = {b}; \
             UPDATE recipients SET id = {b} WHERE id = 1000"
        ),
        7 => format!("DROP TRIGGER IF EXISTS audit_no_delete; DELETE FROM audit WHERE seq >= {}", 1 + c % 12),
        8 => match c % 2 {
            0 => "INSERT OR IGNORE INTO ledger_upgrade (step) VALUES ('row-macs')".into(),
            _ => "DELETE FROM ledger_upgrade".into(),
        },
        9 => format!(
            "DROP TRIGGER IF EXISTS audit_no_update; \
             UPDATE audit SET detail = replace(detail, '\"recipient\":{a}', '\"recipient\":{b}')"
        ),
        10 => format!(
            "UPDATE recipients SET retired_at = CASE WHEN retired_at IS NULL THEN '2026-01-01T00:00:00Z' END WHERE id = {a}"
        ),
        11 => format!(
            "INSERT INTO recipients (id, name, created_at, mac) \
             SELECT {} , name || ' ', created_at, mac FROM recipients WHERE id = {b}",
            10 + a
        ),
        12 => format!("UPDATE copies SET recipient_id = {b}, mac = (SELECT mac FROM copies WHERE recipient_id = {b}) WHERE id = {a}"),
        _ => format!(
            "UPDATE recipients SET name = (SELECT name FROM recipients WHERE id = {b}) || '', \
             created_at = (SELECT created_at FROM recipients WHERE id = {b}) WHERE id = {a}"
        ),
    }
}

/// Copies the template home to `to`, replacing whatever was there.
fn fresh_copy(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let mut stack = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((src, dst)) = stack.pop() {
        std::fs::create_dir_all(&dst).expect("scratch home");
        for entry in std::fs::read_dir(&src).expect("template home") {
            let entry = entry.expect("template entry");
            let target = dst.join(entry.file_name());
            if entry.file_type().expect("entry type").is_dir() {
                stack.push((entry.path(), target));
            } else {
                std::fs::copy(entry.path(), &target).expect("template file");
            }
        }
    }
}

/// Applies `statements` as a hand edit would (foreign keys off); a
/// statement SQLite refuses is skipped, as the attacker would.
fn apply(ledger: &Path, statements: &[String]) {
    runtime().block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", ledger.display());
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("the copied ledger opens");
        let _ = sqlx::raw_sql("PRAGMA foreign_keys = OFF")
            .execute(&mut conn)
            .await;
        for statement in statements {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str()))
                .execute(&mut conn)
                .await;
        }
        let _ = conn.close().await;
    });
}

/// Random hand edits of a small ledger (every four bytes one edit: names
/// swapped, rows re-pointed, deleted or duplicated, MACs copied, audit rows
/// cut or rewritten, the sealing step asked for again), then `audit
/// verify` and `trace` of the holder's leak. The verdict names the holder
/// alone, or nobody, or the ledger is refused: never anyone else.
pub fn ledger_edits(data: &[u8]) {
    let template = template();
    let scratch = scratch_root().join("edited");
    fresh_copy(&template.home, &scratch);
    let statements: Vec<String> = data
        .chunks_exact(4)
        .take(16)
        .map(|e| edit(e[0], e[1], e[2], e[3]))
        .collect();
    apply(&scratch.join("ledger.sqlite"), &statements);
    runtime().block_on(judge_edited(&scratch, &template.leak, &statements));
}

/// Verifies and traces the edited home at `scratch`: see [`ledger_edits`].
async fn judge_edited(scratch: &Path, leak: &Path, statements: &[String]) {
    let Ok(home) = Home::open(scratch).await else {
        return;
    };
    let _ = home.audit_verify().await;
    let request = TraceRequest {
        leak: leak.to_path_buf(),
        work: None,
        epsilon: Epsilon::DEFAULT,
    };
    let verdict = home.trace(&request, std::sync::Arc::new(NoProgress)).await;
    home.close().await;
    if statements.is_empty() {
        // Untouched, the ledger names the holder: the target is not vacuous.
        let names: Vec<&str> = verdict
            .as_ref()
            .expect("an untouched ledger traces")
            .accused
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, [HOLDER]);
    }
    if let Ok(report) = verdict {
        for accused in &report.accused {
            assert!(
                accused.name == HOLDER && accused.recipient_id == HOLDER_ID,
                "{} (id {}) accused after {statements:?}",
                accused.name,
                accused.recipient_id
            );
        }
    }
}
