//! The worker: takes jobs from the queue and runs each as one library call,
//! acting as the user who asked for it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis::prelude::{BackendExt, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use earmark::{CopySink, Destination, DirectorySink, Epsilon, ErrorKind, Leak, Progress};

use crate::table::{self, JobState};
use crate::{queue_config, JobError, JobRequest, Jobs, Ticket};

/// How often a worker tells the queue it is alive. A worker silent for
/// two of these is taken for dead and its jobs are run by another.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// A job that has been started this many times without finishing (its
/// worker died each time) is failed rather than started again.
const MAX_RUNS: i64 = 3;
/// How often an idle worker asks the queue for a job: the most a queued
/// job waits for an idle worker.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// How often a running job's progress is written to the job table.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The worker's name in the queue, unique among live workers.
    pub name: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// See [`DEFAULT_HEARTBEAT`].
    pub heartbeat: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        let mut random = [0u8; 4];
        let _ = getrandom::fill(&mut random);
        WorkerOptions {
            name: format!(
                "earmark-{}-{}",
                std::process::id(),
                random
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}

impl Jobs {
    /// Runs jobs until `shutdown` completes. Jobs under way when it does
    /// are left running in the queue and are run again by the next worker
    /// (their results are written only when they finish).
    pub async fn run_worker(
        &self,
        options: WorkerOptions,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), JobError> {
        let backend = self
            .queue
            .clone()
            .with_config(queue_config(options.heartbeat))
            .poll_with_interval(POLL_EVERY);
        tracing::info!(worker = %options.name, concurrency = options.concurrency, "worker started");
        let worker = WorkerBuilder::new(options.name.as_str())
            .backend(backend)
            .data(self.clone())
            .concurrency(options.concurrency.max(1))
            .build(run_ticket);
        worker
            .run_until(async move {
                shutdown.await;
                Ok::<(), std::io::Error>(())
            })
            .await
            .map_err(JobError::queue)
    }

    /// Runs job `id` once: its result, or the library's refusal, is
    /// written in one statement; a job already finished is left as it is.
    pub(crate) async fn execute(&self, id: &str) -> Result<(), JobError> {
        let Some((request, state, user, runs)) = table::claim(&self.pool, id).await? else {
            tracing::warn!(job = id, "the queue holds a job the job table does not");
            return Ok(());
        };
        if matches!(state, JobState::Done | JobState::Failed) {
            return Ok(());
        }
        if runs > MAX_RUNS {
            let error = serde_json::json!({
                "error": format!("the job was started {MAX_RUNS} times and never finished; it is not run again"),
                "kind": "cancelled",
            });
            table::finish(&self.pool, id, JobState::Failed, None, Some(&error)).await?;
            self.clean_up(&request);
            return Ok(());
        }
        tracing::info!(job = id, run = runs, user = %user, "running");
        let progress = Arc::new(JobProgress::default());
        let reporter = self.report_progress(id, Arc::clone(&progress));
        let outcome = earmark::acting_as(&user, self.perform(id, &request, progress)).await;
        reporter.abort();
        match outcome {
            Ok(result) => {
                table::finish(&self.pool, id, JobState::Done, Some(&result), None).await?;
                tracing::info!(job = id, "done");
            }
            Err(e) if e.kind() == ErrorKind::Cancelled => {
                // Shutting down: the job stays running, to be run again.
                return Err(e.into());
            }
            Err(e) => {
                let error = serde_json::json!({
                    "error": e.to_string(),
                    "kind": e.kind(),
                });
                tracing::warn!(job = id, error = %e, "failed");
                table::finish(&self.pool, id, JobState::Failed, None, Some(&error)).await?;
            }
        }
        self.clean_up(&request);
        Ok(())
    }

    /// The library call a job stands for, and its report as the JSON text
    /// the command prints (numbers exactly as it writes them).
    async fn perform(
        &self,
        id: &str,
        request: &JobRequest,
        progress: Arc<JobProgress>,
    ) -> Result<String, earmark::Error> {
        let value = match request {
            JobRequest::Trace { leak, work } => {
                let report = self
                    .home
                    .trace_leak(
                        Leak::Upload(self.spooled(leak)),
                        *work,
                        Epsilon::DEFAULT,
                        progress,
                    )
                    .await?;
                serde_json::to_string(&report)
            }
            JobRequest::Mark {
                work,
                recipients,
                format,
                profile,
            } => {
                let sink = JobDeliveries(DirectorySink {
                    dir: self.deliveries(id),
                });
                let report = self
                    .home
                    .mark_work(
                        *work,
                        recipients.selection(),
                        Destination::Sink(Arc::new(sink)),
                        *format,
                        earmark::MarkSettings::profile(*profile),
                        progress,
                    )
                    .await?;
                serde_json::to_string(&report)
            }
            JobRequest::Render { link, work } => {
                let link = self
                    .home
                    .links(Some(*work))
                    .await?
                    .into_iter()
                    .find(|l| l.id == *link)
                    .ok_or_else(|| {
                        earmark::Error::Integrity(format!("link {link} is gone from the ledger"))
                    })?;
                let sink = JobDeliveries(DirectorySink {
                    dir: self.home.link_copies_dir(&link),
                });
                let report = self
                    .home
                    .render_link(&link, Destination::Sink(Arc::new(sink)), progress)
                    .await?;
                serde_json::to_string(&report)
            }
        };
        value.map_err(|e| earmark::Error::Usage(format!("a report did not serialise: {e}")))
    }

    /// Writes `progress` to job `id`'s row every [`PROGRESS_EVERY`] until
    /// aborted.
    fn report_progress(&self, id: &str, progress: Arc<JobProgress>) -> tokio::task::JoinHandle<()> {
        let (pool, id) = (self.pool.clone(), id.to_string());
        tokio::spawn(async move {
            let mut last = None;
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                let now = progress.snapshot();
                if last.as_ref() != Some(&now) {
                    let _ = table::set_progress(&pool, &id, now.0.as_deref(), now.1).await;
                    last = Some(now);
                }
            }
        })
    }

    /// Removes what a finished job no longer needs: a trace's upload.
    fn clean_up(&self, request: &JobRequest) {
        if let JobRequest::Trace { leak, .. } = request {
            let _ = std::fs::remove_file(self.spooled(leak));
        }
    }
}

async fn run_ticket(ticket: Ticket, jobs: Data<Jobs>) -> Result<(), BoxDynError> {
    jobs.execute(&ticket.job).await.map_err(Into::into)
}

/// Progress of a running job, as the library reports it: the stage under
/// way and the fraction of it done.
#[derive(Default)]
struct JobProgress {
    state: Mutex<(Option<String>, u64, u64)>,
}

impl JobProgress {
    fn snapshot(&self) -> (Option<String>, f64) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let fraction = if state.1 == 0 {
            0.0
        } else {
            (state.2 as f64 / state.1 as f64).min(1.0)
        };
        (state.0.clone(), fraction)
    }
}

impl Progress for JobProgress {
    fn start(&self, stage: &str, total: u64) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (Some(stage.to_string()), total, 0);
    }

    fn advance(&self, steps: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.2 = state.2.saturating_add(steps);
    }

    fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.2 = state.1;
    }
}

/// A mark job's copies: files in the job's own directory under the home's
/// deliveries, where the service keeps them for their recipients.
#[derive(Debug)]
struct JobDeliveries(DirectorySink);

impl CopySink for JobDeliveries {
    fn check(&self, _home: &Path) -> earmark::Result<()> {
        // The directory is the job's own, named by the queue, never by a caller.
        Ok(())
    }
    fn prepare(&self) -> earmark::Result<()> {
        self.0.prepare()
    }
    fn staging_path(&self, partial_name: &str) -> PathBuf {
        self.0.staging_path(partial_name)
    }
    fn target(&self, file_name: &str) -> PathBuf {
        self.0.target(file_name)
    }
    fn publish(&self, staged: &Path, target: &Path) -> std::io::Result<()> {
        self.0.publish(staged, target)
    }
    fn withdraw(&self, target: &Path, staged: &Path) {
        self.0.withdraw(target, staged)
    }
    fn sync(&self) {
        self.0.sync()
    }
    fn location(&self) -> PathBuf {
        self.0.location()
    }
}
