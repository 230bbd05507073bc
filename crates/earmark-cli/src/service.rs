//! `earmark serve` and `earmark worker`: the team service, and workers
//! that run its jobs without serving HTTP.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use earmark_jobs::{JobError, Jobs, WorkerOptions};

use crate::exit::Failure;
use crate::home::open;

/// How `earmark serve` runs.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8750")]
    listen: std::net::SocketAddr,
    /// The largest upload taken (a master or a leak), MiB.
    #[arg(long, default_value_t = earmark_serve::DEFAULT_UPLOAD_LIMIT_BYTES >> 20)]
    max_upload_mib: u64,
    /// Serve only: leave the jobs to `earmark worker` processes.
    #[arg(long)]
    no_worker: bool,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// How a worker runs.
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Jobs run at once [default: the number of cores].
    #[arg(long)]
    concurrency: Option<usize>,
    /// How often the worker tells the queue it is alive; one silent for two
    /// of these is taken for dead and its jobs are run again.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
}

impl WorkerArgs {
    fn options(&self) -> WorkerOptions {
        let defaults = WorkerOptions::default();
        WorkerOptions {
            concurrency: self.concurrency.unwrap_or(defaults.concurrency).max(1),
            heartbeat: self.heartbeat.max(Duration::from_secs(1)),
            ..defaults
        }
    }
}

fn job_failure(e: JobError) -> Failure {
    match e {
        JobError::Earmark(e) => e.into(),
        other => Failure::write(other.to_string()),
    }
}

/// `earmark serve`: the API on `listen`, with a worker in the process
/// unless told otherwise, until SIGTERM or Ctrl-C; requests under way
/// finish first, jobs under way are run again by the next worker.
pub async fn serve(home: Option<&Path>, args: &ServeArgs) -> Result<ExitCode, Failure> {
    let home = open(home).await?;
    let jobs = Jobs::open(&home).await.map_err(job_failure)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let bound = listener.local_addr().unwrap_or(args.listen);
    tracing::info!(%bound, "serving");
    outln!("serving {} on http://{bound}", home.root().display());
    let service =
        earmark_serve::Service::new(jobs.clone(), args.max_upload_mib.saturating_mul(1 << 20));
    let worker = (!args.no_worker).then(|| args.worker.options());
    let served =
        earmark_serve::serve(service, listener, worker, earmark_serve::termination()).await;
    jobs.close().await;
    served.map_err(|e| Failure::usage(format!("the service stopped: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// `earmark worker`: runs the home's queued jobs until SIGTERM or Ctrl-C.
pub async fn worker(home: Option<&Path>, args: &WorkerArgs) -> Result<ExitCode, Failure> {
    let home = open(home).await?;
    let jobs = Jobs::open(&home).await.map_err(job_failure)?;
    let options = args.options();
    outln!(
        "worker {} running the jobs of {}",
        options.name,
        home.root().display()
    );
    let ran = jobs.run_worker(options, earmark_serve::termination()).await;
    jobs.close().await;
    ran.map_err(job_failure)?;
    Ok(ExitCode::SUCCESS)
}
