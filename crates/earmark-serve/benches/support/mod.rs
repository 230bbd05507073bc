//! What the service benchmarks share: the service on a loopback port with
//! an in-process worker, percentiles, and the runtime.

use std::time::Duration;

use earmark::Home;
use earmark_jobs::{Jobs, WorkerOptions};

/// The service of `home` on a free loopback port, with a worker of
/// `options`; stopped by [`Running::stop`].
pub struct Running {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub async fn start(home: &Home, options: WorkerOptions) -> Running {
        let jobs = Jobs::open(home).await.expect("the queue");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(earmark_serve::serve(
            earmark_serve::Service::new(jobs, earmark_serve::DEFAULT_UPLOAD_LIMIT_BYTES),
            listener,
            Some(options),
            async {
                let _ = stopped.await;
            },
        ));
        Running { base, stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The `p`th percentile of `sorted` (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `work` on a multi-threaded runtime.
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work)
}
