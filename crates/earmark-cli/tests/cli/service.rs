//! `earmark serve` and `earmark worker` as processes: a trace job answers
//! exactly what `earmark trace --json` prints, and a worker killed with
//! SIGKILL mid-trace leaves the job to another, which finishes it.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::home::TestHome;
use crate::common::{fixture, opus_voice_16k};

/// A child process killed (SIGKILL) when dropped, so that no failed test
/// leaves a server or a worker behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Sends SIGTERM and waits (at most 30 s) for a clean exit.
    fn terminate(mut self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                return;
            }
            assert!(Instant::now() < deadline, "it did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `earmark serve` on a free loopback port with `extra` flags; its base URL.
fn serve(home: &TestHome, extra: &[&str]) -> (Running, String) {
    serve_logging(home, extra, Stdio::null())
}

/// [`serve`] logging each step (`-v`) to `log`.
fn serve_logging(home: &TestHome, extra: &[&str], log: impl Into<Stdio>) -> (Running, String) {
    let mut args = vec![
        "-v",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--heartbeat",
        "1s",
    ];
    args.extend_from_slice(extra);
    let mut child = home
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line.trim().rsplit("http://").next().unwrap().to_string();
    (Running(child), format!("http://{address}"))
}

fn worker(home: &TestHome) -> Running {
    Running(
        home.command(&["worker", "--heartbeat", "1s", "--concurrency", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// An analyst with a token; the token.
fn analyst_token(home: &TestHome) -> String {
    home.ok(&["user", "add", "Dana", "--role", "analyst"]);
    let created: serde_json::Value =
        serde_json::from_str(&home.ok(&["token", "create", "--user", "Dana", "--json"])).unwrap();
    created["secret"].as_str().unwrap().to_string()
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Uploads `leak` to `POST /traces`; the job's id.
fn submit_trace(base: &str, token: &str, leak: &Path) -> String {
    let bytes = std::fs::read(leak).unwrap();
    let job: serde_json::Value = block_on(async {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("leak.wav"),
        );
        let response = reqwest::Client::new()
            .post(format!("{base}/api/v1/traces"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        response.json().await.unwrap()
    });
    job["id"].as_str().unwrap().to_string()
}

fn job(base: &str, token: &str, id: &str) -> serde_json::Value {
    block_on(async {
        let response = reqwest::Client::new()
            .get(format!("{base}/api/v1/traces/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    })
}

/// Polls job `id` until `done(job)` (at most `limit`).
fn wait_for(
    base: &str,
    token: &str,
    id: &str,
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let job = job(base, token, id);
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} is stuck: {job}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The copy in `out` of the recipient named `name`.
fn copy_for(out: &Path, name: &str) -> std::path::PathBuf {
    std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(&format!("-{name}.")))
        .unwrap()
}

/// Whether a job has finished, either way.
fn finished(job: &serde_json::Value) -> bool {
    job["state"] == "done" || job["state"] == "failed"
}

/// `earmark serve` answers on loopback and stops cleanly on SIGTERM.
#[test]
fn the_service_answers_and_stops_on_sigterm() {
    use std::io::{Read, Write};
    let home = TestHome::new();
    let (server, base) = serve(&home, &[]);
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"ok\""), "{answer}");
    server.terminate();
}

#[test]
fn a_trace_job_answers_exactly_what_trace_json_prints() {
    let home = TestHome::new();
    let out = home.mark_for(&fixture("speech_en_f_8k_allison_demo-congrats.wav"), 3);
    let copy = copy_for(&out, "r02");
    let leak = home.path("voice-note.opus");
    opus_voice_16k(&copy, &leak);
    let token = analyst_token(&home);
    let (server, base) = serve(&home, &[]);
    let id = submit_trace(&base, &token, &leak);
    let job = wait_for(&base, &token, &id, Duration::from_secs(120), finished);
    assert_eq!(job["state"], "done", "{job}");
    let (code, printed) = home.trace(&leak);
    assert_eq!(code, 0);
    assert_eq!(job["result"], printed);
    assert_eq!(crate::common::home::accused(&printed), ["r02"]);
    server.terminate();
}

#[test]
fn a_worker_killed_mid_trace_leaves_the_job_to_the_next_which_finishes_it() {
    let home = TestHome::new();
    // A six-minute call: its trace takes seconds, time to kill the worker.
    let out = home.mark_for(&fixture("long/long_call_en-f_it-m_8k.flac"), 2);
    let copy = copy_for(&out, "r02");
    let token = analyst_token(&home);
    let (server, base) = serve(&home, &["--no-worker"]);
    let id = submit_trace(&base, &token, &copy);
    assert_eq!(job(&base, &token, &id)["state"], "queued");

    let first = worker(&home);
    wait_for(&base, &token, &id, Duration::from_secs(60), |j| {
        j["state"] == "running"
    });
    drop(first); // SIGKILL, mid-trace
    let stranded = job(&base, &token, &id);
    assert_eq!(stranded["state"], "running", "{stranded}");
    assert!(stranded["result"].is_null(), "{stranded}");

    let second = worker(&home);
    let rerun = wait_for(&base, &token, &id, Duration::from_secs(120), finished);
    assert_eq!(rerun["state"], "done", "{rerun}");
    assert_eq!(rerun["runs"], 2, "{rerun}");
    assert_eq!(crate::common::home::accused(&rerun["result"]), ["r02"]);
    second.terminate();
    server.terminate();
    assert!(home.ok(&["audit", "verify"]).contains("intact"));
}

#[test]
fn sigterm_lets_the_job_under_way_finish_before_the_service_stops() {
    let home = TestHome::new();
    let out = home.mark_for(&fixture("long/long_call_en-f_it-m_8k.flac"), 2);
    let copy = copy_for(&out, "r01");
    let token = analyst_token(&home);
    let (server, base) = serve(&home, &[]);
    let id = submit_trace(&base, &token, &copy);
    wait_for(&base, &token, &id, Duration::from_secs(60), |j| {
        j["state"] == "running"
    });
    server.terminate();
    // Served again, the job is finished, by its first and only run.
    let (server, base) = serve(&home, &["--no-worker"]);
    let done = job(&base, &token, &id);
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["runs"], 1, "{done}");
    assert_eq!(crate::common::home::accused(&done["result"]), ["r01"]);
    server.terminate();
}

/// Work 1: the fixture `recording`, marked for `recipient` alone.
fn work_marked_for(home: &TestHome, recipient: &str, recording: &str) {
    home.ok(&["recipient", "add", recipient]);
    home.mark_all(&fixture(recording), &home.path("copies"), &[]);
}

/// A new link to `recipient`'s copy of work 1 (with `extra` flags) on the
/// service at `base`: its URL.
fn link_to(home: &TestHome, recipient: &str, extra: &[&str], base: &str) -> String {
    let mut args = vec![
        "link",
        "create",
        "--work",
        "1",
        "--to",
        recipient,
        "--base-url",
        base,
    ];
    args.extend_from_slice(extra);
    let made = home.ok(&args);
    let url = made.split_whitespace().last().unwrap().to_string();
    assert!(url.starts_with(&format!("{base}/d/eml_")), "{made}");
    url
}

/// Asks link `url` once: its status.
fn fetch_status(url: &str) -> u16 {
    block_on(async { reqwest::get(url).await.unwrap().status().as_u16() })
}

#[test]
fn a_worker_killed_mid_render_records_no_copy_and_the_next_request_renders_it() {
    let home = TestHome::new();
    // A six-minute call as MP3: its render takes seconds.
    work_marked_for(&home, "Reviewer", "long/long_call_en-f_it-m_8k.flac");
    home.ok(&["recipient", "add", "Listener"]);
    let (server, base) = serve(&home, &["--no-worker"]);
    let url = link_to(&home, "Listener", &["--format", "mp3"], &base);
    assert_eq!(fetch_status(&url), 202);

    let first = worker(&home);
    let jobs = home.root().join("jobs.sqlite");
    let deadline = Instant::now() + Duration::from_secs(60);
    while crate::common::ledger::query_one::<i64>(
        &jobs,
        "SELECT COUNT(*) FROM earmark_jobs WHERE kind = 'render' AND state = 'running'",
    ) == 0
    {
        assert!(Instant::now() < deadline, "the render never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(first); // SIGKILL, mid-render
                 // No copy is recorded for Listener (only Reviewer's, by `mark`).
    let listed: serde_json::Value =
        serde_json::from_str(&home.ok(&["work", "show", "1", "--json"])).unwrap();
    let copies = listed["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 1, "{listed}");
    assert_eq!(copies[0]["recipient"], "Reviewer");
    assert_eq!(fetch_status(&url), 202);

    let second = worker(&home);
    let deadline = Instant::now() + Duration::from_secs(120);
    while fetch_status(&url) != 200 {
        assert!(Instant::now() < deadline, "the render was never finished");
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed: serde_json::Value =
        serde_json::from_str(&home.ok(&["work", "show", "1", "--json"])).unwrap();
    for copy in listed["copies"].as_array().unwrap() {
        let path = copy["path"].as_str().unwrap();
        assert!(
            Path::new(path).is_file(),
            "a recorded copy without its file: {path}"
        );
    }
    second.terminate();
    server.terminate();
    assert!(home.ok(&["audit", "verify"]).contains("intact"));
}

#[test]
fn a_link_secret_never_reaches_the_log() {
    let home = TestHome::new();
    work_marked_for(&home, "Ana", "speech_en_f_8k_allison_demo-congrats.wav");
    let log = home.path("serve.log");
    let (server, base) = serve_logging(&home, &[], std::fs::File::create(&log).unwrap());
    let url = link_to(&home, "Ana", &[], &base);
    let secret = url.rsplit('/').next().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fetch_status(&url) != 200 {
        assert!(Instant::now() < deadline, "the copy was never served");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.terminate();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("/d/…"), "{logged}");
    assert!(!logged.contains(&secret[4..]), "the secret was logged");
}
