//! The service on a real loopback socket with a real worker, asked by a
//! real HTTP client: every route for every role and every kind of bad
//! token, uploads good and bad, trace and mark jobs end to end, delivery
//! links.

mod jobs;
mod links;
mod matrix;
mod openapi;
mod uploads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use earmark::{Home, Role};
use earmark_jobs::{Jobs, WorkerOptions};

/// A running service over a fresh home with one user (and token) per role.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub dir: tempfile::TempDir,
    pub home: Home,
    /// Each role's token, in [`Role::ALL`] order.
    pub tokens: Vec<(Role, String)>,
}

/// The bundled 30 s recording the jobs mark and trace.
pub fn master() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/speech_en_f_8k_allison_demo-congrats.wav")
}

impl Server {
    /// Starts the service with a worker in the process, taking uploads of
    /// at most `upload_limit_bytes`.
    pub async fn start_with_limit(upload_limit_bytes: u64) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("home");
        Home::init(&root).await.unwrap();
        let home = Home::open(&root).await.unwrap();
        let mut tokens = Vec::new();
        for role in Role::ALL {
            let name = format!("{} user", role.as_str());
            home.add_user(&name, role).await.unwrap();
            let token = home.create_token(&name, None, None).await.unwrap();
            tokens.push((role, token.secret.to_string()));
        }
        let jobs = Jobs::open(&home).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = WorkerOptions {
            heartbeat: Duration::from_secs(1),
            ..WorkerOptions::default()
        };
        let task = tokio::spawn(earmark_serve::serve(
            earmark_serve::Service::new(jobs, upload_limit_bytes),
            listener,
            Some(worker),
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            base,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            dir,
            home,
            tokens,
        }
    }

    pub async fn start() -> Server {
        Self::start_with_limit(earmark_serve::DEFAULT_UPLOAD_LIMIT_BYTES).await
    }

    /// The token of `role`'s user.
    pub fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A multipart upload of `bytes` as the `file` field, with `fields`.
    pub fn form(bytes: Vec<u8>, fields: &[(&str, &str)]) -> reqwest::multipart::Form {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("upload.wav"),
        );
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        form
    }

    /// POSTs `form` to `path` as `role` and returns the JSON answer with
    /// its status.
    pub async fn upload(
        &self,
        role: Role,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(self.token(role))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn get(&self, role: Role, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(self.token(role))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn post_json(
        &self,
        role: Role,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(self.token(role))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Polls job `path` until it is done or failed (at most `limit`).
    pub async fn finished(&self, role: Role, path: &str, limit: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let (status, job) = self.get(role, path).await;
            assert_eq!(status, 200, "{job}");
            if job["state"] == "done" || job["state"] == "failed" {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} did not finish: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the service and its worker.
    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.task.take().unwrap())
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
        self.home.close().await;
    }
}

/// An error's body names it in one line, with its kind and the request id
/// the header carries.
pub async fn assert_error(response: reqwest::Response, status: u16, what: &str) {
    assert_eq!(response.status().as_u16(), status, "{what}");
    let id = response
        .headers()
        .get("x-request-id")
        .expect("a request id")
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_json_error(&body, &id, what);
}

pub fn assert_json_error(body: &serde_json::Value, request_id: &str, what: &str) {
    assert_eq!(body["request_id"], request_id, "{what}: {body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        !message.is_empty() && !message.contains('\n'),
        "{what}: {body}"
    );
    assert!(body["kind"].is_string(), "{what}: {body}");
}

/// Encodes `input` as 16 kbit/s Opus voice (a messenger's voice note) and
/// back to WAV, with Debian's ffmpeg.
pub fn opus_voice_16k(input: &Path, output: &Path) {
    let opus = output.with_extension("opus");
    for args in [
        vec![
            "-i",
            input.to_str().unwrap(),
            "-c:a",
            "libopus",
            "-b:a",
            "16k",
            "-application",
            "voip",
            opus.to_str().unwrap(),
        ],
        vec!["-i", opus.to_str().unwrap(), output.to_str().unwrap()],
    ] {
        let status = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y"])
            .args(&args)
            .status()
            .expect("ffmpeg runs (scripts/setup.sh installs it)");
        assert!(status.success(), "ffmpeg {args:?}");
    }
}
