//! Delivery links through the service: how fast links are made (5,000 in
//! one request), how long the first fetch of a 5-minute 44.1 kHz stereo
//! master waits for its render (time to first byte), and the latency of
//! downloads of a copy already rendered (p50, p99; time to first byte and
//! to the last).
//!
//! The master is the bundled 15 s stereo excerpt played 20 times (sox).
//! Nothing is random. `cargo bench -p earmark-serve --bench links`
//! (`EARMARK_BENCH_DOWNLOADS`, default 200, sets how many downloads are
//! timed).

use std::path::Path;
use std::time::{Duration, Instant};

use earmark::{Home, Role};
use earmark_jobs::WorkerOptions;

mod support;
use support::{ms, percentile, Running};

const RECIPIENTS: usize = 5_000;

/// A 5-minute 44.1 kHz stereo master in `dir`.
fn five_minute_master(dir: &Path) -> std::path::PathBuf {
    let excerpt = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/music_metal_44k_muldjord_chaos_god.wav");
    let master = dir.join("album-track.wav");
    let status = std::process::Command::new("sox")
        .arg(&excerpt)
        .arg(&master)
        .args(["repeat", "19"])
        .status()
        .expect("sox runs (scripts/setup.sh installs it)");
    assert!(status.success());
    master
}

/// Fetches `url` until the copy is served; the time to its first byte
/// from the first request.
async fn first_render(client: &reqwest::Client, url: &str) -> (Duration, usize) {
    let started = Instant::now();
    loop {
        let mut response = client.get(url).send().await.expect("an answer");
        if response.status().as_u16() == 200 {
            let first = response.chunk().await.expect("a body").expect("a byte");
            let ttfb = started.elapsed();
            let mut bytes = first.len();
            while let Some(chunk) = response.chunk().await.expect("the body") {
                bytes += chunk.len();
            }
            return (ttfb, bytes);
        }
        assert_eq!(response.status().as_u16(), 202);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run() {
    let downloads: usize = std::env::var("EARMARK_BENCH_DOWNLOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path().join("home");
    Home::init(&root).await.expect("a new home");
    let home = Home::open(&root).await.expect("the home opens");
    let csv: String = std::iter::once("name".to_string())
        .chain((1..=RECIPIENTS).map(|i| format!("Reviewer {i:05}")))
        .collect::<Vec<_>>()
        .join("\n");
    home.import_recipients(csv.as_bytes(), Path::new("reviewers.csv"))
        .await
        .expect("the recipients");
    home.add_user("label", Role::Sender).await.expect("a user");
    let token = home
        .create_token("label", None, None)
        .await
        .expect("a token");
    let master = five_minute_master(dir.path());
    let work = home
        .add_work(&master, Some("Album track"))
        .await
        .expect("the work")
        .work
        .id;
    let server = Running::start(&home, WorkerOptions::default()).await;
    let base = server.base.clone();
    let client = reqwest::Client::new();

    let ids: Vec<i64> = (1..=RECIPIENTS as i64).collect();
    let made_at = Instant::now();
    let response = client
        .post(format!("{base}/api/v1/works/{work}/deliveries"))
        .bearer_auth(token.secret.as_str())
        .json(&serde_json::json!({"recipients": ids, "format": "mp3", "expires": "30d"}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 201);
    let made: Vec<serde_json::Value> = response.json().await.expect("the links");
    let making = made_at.elapsed();
    assert_eq!(made.len(), RECIPIENTS);
    println!(
        "links: {RECIPIENTS} made in one request in {:.0} ms ({:.0} links/s)",
        ms(making),
        RECIPIENTS as f64 / making.as_secs_f64()
    );

    let link = |n: usize| format!("{base}{}", made[n]["link"].as_str().expect("a link"));
    let (ttfb, bytes) = first_render(&client, &link(0)).await;
    println!(
        "first fetch of a 5-minute 44.1 kHz stereo master as MP3: first byte after {:.2} s ({:.1} MB)",
        ttfb.as_secs_f64(),
        bytes as f64 / 1e6
    );

    let cached = link(0);
    let mut first_bytes = Vec::with_capacity(downloads);
    let mut whole = Vec::with_capacity(downloads);
    for _ in 0..downloads {
        let sent = Instant::now();
        let mut response = client.get(&cached).send().await.expect("an answer");
        assert_eq!(response.status().as_u16(), 200);
        response.chunk().await.expect("a body");
        first_bytes.push(sent.elapsed());
        while response.chunk().await.expect("the body").is_some() {}
        whole.push(sent.elapsed());
    }
    first_bytes.sort();
    whole.sort();
    println!(
        "cached copy ({:.1} MB), {downloads} downloads: first byte p50 {:.1} ms, p99 {:.1} ms; whole file p50 {:.1} ms, p99 {:.1} ms",
        bytes as f64 / 1e6,
        ms(percentile(&first_bytes, 50.0)),
        ms(percentile(&first_bytes, 99.0)),
        ms(percentile(&whole, 50.0)),
        ms(percentile(&whole, 99.0)),
    );
    server.stop().await;
    home.close().await;
}

fn main() {
    support::block_on(run());
}
