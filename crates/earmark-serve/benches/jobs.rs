//! Trace jobs through the service: how many 30 s leaks the worker traces
//! per minute, and how long `POST /traces` takes until the job is queued
//! (p50, p99), with the worker busy meanwhile.
//!
//! A home with ten recipients marked on the bundled 30 s call; each leak is
//! one of their copies as a 16 kbit/s Opus voice note (Debian's ffmpeg).
//! `EARMARK_BENCH_TRACES` leaks (default 100, cycling through the ten) are
//! uploaded one after another as fast as the service answers, then the run
//! waits for every job. Nothing is random: the same run gives the same
//! jobs.
//!
//! `cargo bench -p earmark-serve --bench jobs`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use earmark::{Format, Home, MarkRequest, NoProgress, Role, Selection};
use earmark_jobs::WorkerOptions;

mod support;
use support::{ms, percentile, Running};

const RECIPIENTS: usize = 10;

fn opus_voice_16k(input: &Path, output: &Path) {
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(["-c:a", "libopus", "-b:a", "16k", "-application", "voip"])
        .arg(output)
        .status()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(status.success());
}

/// The home, an analyst's token and the leaks (one per recipient).
async fn prepared(dir: &Path) -> (Home, String, Vec<PathBuf>) {
    let root = dir.join("home");
    Home::init(&root).await.expect("a new home");
    let home = Home::open(&root).await.expect("the home opens");
    for i in 1..=RECIPIENTS {
        home.add_recipient(&format!("Member {i:02}"), None, None)
            .await
            .expect("a recipient");
    }
    home.add_user("analyst", Role::Analyst)
        .await
        .expect("a user");
    let token = home
        .create_token("analyst", None, None)
        .await
        .expect("a token");
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
        .expect("the copies");
    let leaks = marked
        .copies
        .iter()
        .enumerate()
        .map(|(i, copy)| {
            let leak = dir.join(format!("leak-{i:02}.opus"));
            opus_voice_16k(&copy.path, &leak);
            leak
        })
        .collect();
    (home, token.secret.to_string(), leaks)
}

async fn run() {
    let traces: usize = std::env::var("EARMARK_BENCH_TRACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (home, token, leaks) = prepared(dir.path()).await;
    let options = WorkerOptions::default();
    let cores = options.concurrency;
    let server = Running::start(&home, options).await;
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let bodies: Vec<Vec<u8>> = leaks
        .iter()
        .map(|l| std::fs::read(l).expect("a leak"))
        .collect();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(traces);
    let mut ids = Vec::with_capacity(traces);
    for n in 0..traces {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bodies[n % bodies.len()].clone())
                .file_name("leak.opus"),
        );
        let sent = Instant::now();
        let response = client
            .post(format!("{base}/api/v1/traces"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .expect("the service answers");
        assert_eq!(response.status().as_u16(), 202);
        let job: serde_json::Value = response.json().await.expect("a job");
        latencies.push(sent.elapsed());
        ids.push(job["id"].as_str().expect("an id").to_string());
    }
    let mut right = 0;
    for (n, id) in ids.iter().enumerate() {
        loop {
            let job: serde_json::Value = client
                .get(format!("{base}/api/v1/traces/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("the service answers")
                .json()
                .await
                .expect("a job");
            if job["state"] == "done" {
                let expected = format!("Member {:02}", n % RECIPIENTS + 1);
                if job["result"]["accused"][0]["name"] == expected.as_str() {
                    right += 1;
                }
                break;
            }
            assert_ne!(job["state"], "failed", "{job}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "trace jobs: {traces} leaks of 30 s (Opus 16k, {} kB each), {cores} worker slots",
        bodies[0].len() / 1000
    );
    println!(
        "  throughput {:.0} jobs/min ({:.2} s for all), {right}/{traces} named the right recipient",
        traces as f64 / elapsed.as_secs_f64() * 60.0,
        elapsed.as_secs_f64()
    );
    println!(
        "  POST /traces until queued: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().expect("a latency"))
    );
    server.stop().await;
    home.close().await;
}

fn main() {
    support::block_on(run());
}
