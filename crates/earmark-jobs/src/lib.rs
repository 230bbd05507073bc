//! earmark's background jobs: traces and batch marks, queued in the home
//! and run by workers, so that no request waits seconds for a verdict.
//!
//! Owns: the queue (apalis on SQLite, in `jobs.sqlite` beside the ledger,
//! never in it: the ledger holds only what its chain seals), the job table
//! (who asked, when, the state, progress and result of each job), the
//! spool of uploads waiting for a job, the directory each mark job
//! delivers into, and the worker loop with its retries. A job runs one
//! library call ([`earmark::Home::trace_leak`], [`earmark::Home::mark_work`])
//! acting as the user who asked ([`earmark::acting_as`]) and stores what it
//! returns, as it returns it.
//!
//! Must not own: any verdict, any rule about recipients, works or who may
//! do what (the `earmark` library's), HTTP (the service's) or terminal
//! output (the command's).
//!
//! A job's result is written in the one statement that marks it done: a
//! worker killed midway leaves the job running, and the queue hands it to
//! a live worker once the dead one's heartbeat lapses, never a half
//! result.

#![forbid(unsafe_code)]

mod error;
mod spool;
mod table;
mod worker;

use std::path::PathBuf;

use apalis::prelude::TaskSink;
use apalis_sqlite::{SqlitePool, SqliteStorage};
use earmark::{Format, Home, Profile, User};
use serde::{Deserialize, Serialize};

pub use error::JobError;
pub use spool::{Spooled, DEFAULT_UPLOAD_LIMIT_BYTES};
pub use table::{JobKind, JobState, JobView};
pub use worker::{WorkerOptions, DEFAULT_HEARTBEAT};

/// The queue's database, beside the ledger in the home.
pub const JOBS_DATABASE: &str = "jobs.sqlite";
/// Uploads waiting for their job, and their spool files while they arrive.
pub const SPOOL_DIR: &str = "spool";
/// Where mark jobs deliver (one directory per job) and link copies are
/// kept: the library's delivery directory.
pub use earmark::DELIVERIES_DIR;
/// Seconds after a failed render before a request queues the copy's
/// render again.
pub const RENDER_RETRY_S: i64 = 60;
/// The queue's name in the apalis tables.
const QUEUE: &str = "earmark";

/// What the queue carries: the id of a job in the job table, where the
/// request, its state and its result live.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ticket {
    job: String,
}

/// The recipients a mark job is for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Recipients {
    /// By name.
    Names(Vec<String>),
    /// By ledger id.
    Ids(Vec<i64>),
}

/// What a job was asked to do, as stored with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum JobRequest {
    Trace {
        /// The uploaded leak, in the spool.
        leak: String,
        /// The work the analyst says it is, if they say.
        work: Option<i64>,
    },
    Mark {
        work: i64,
        recipients: Recipients,
        format: Format,
        /// Jobs queued before profiles existed carry none: the default.
        #[serde(default)]
        profile: Profile,
    },
    /// Renders the copy a delivery link fetches.
    Render { link: i64, work: i64 },
}

/// The job queue of one home: submitting, reading and running jobs.
/// Cheap to clone; every clone shares the pool.
#[derive(Clone)]
pub struct Jobs {
    home: Home,
    pool: SqlitePool,
    queue: SqliteStorage<Ticket>,
    root: PathBuf,
}

impl Jobs {
    /// Opens (creating if need be) the queue of `home`.
    pub async fn open(home: &Home) -> Result<Jobs, JobError> {
        let root = home.root().to_path_buf();
        for dir in [SPOOL_DIR, DELIVERIES_DIR] {
            spool::create_private_dir(&root.join(dir))?;
        }
        // Uploads a killed service was receiving; a live one's stay.
        earmark::remove_stale_partials(&root.join(SPOOL_DIR));
        let pool = table::connect(&root.join(JOBS_DATABASE)).await?;
        SqliteStorage::setup(&pool).await.map_err(JobError::queue)?;
        table::create(&pool).await?;
        let queue = SqliteStorage::new(&pool).with_config(queue_config(DEFAULT_HEARTBEAT));
        Ok(Jobs {
            home: home.clone(),
            pool,
            queue,
            root,
        })
    }

    /// The home the jobs run against.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Closes the queue's database (folding its write-ahead log).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A new private file in the spool for an upload to be written into;
    /// removed when dropped unless a job takes it.
    pub fn spool_file(&self) -> Result<Spooled, JobError> {
        Spooled::create(&self.root.join(SPOOL_DIR))
    }

    /// Queues a trace of the leak uploaded into `leak` (from
    /// [`Jobs::spool_file`]), for `user`, who must be allowed to trace.
    /// `work` is the work the leak is said to be, if known.
    pub async fn submit_trace(
        &self,
        user: &User,
        leak: Spooled,
        work: Option<i64>,
    ) -> Result<JobView, JobError> {
        require(user, earmark::Action::Trace)?;
        let id = table::new_job_id()?;
        let name = format!("{id}.leak");
        leak.keep_as(&self.root.join(SPOOL_DIR).join(&name))?;
        let request = JobRequest::Trace { leak: name, work };
        self.enqueue(&user.name, &id, JobKind::Trace, &request, None)
            .await
    }

    /// Queues the marking of work `work` for `recipients` in `format`, with
    /// `profile`, for
    /// `user`, who must be allowed to mark. The work must be registered
    /// with its master kept, and the recipients must exist: both are
    /// checked now, so that a mistake is answered at once.
    pub async fn submit_mark(
        &self,
        user: &User,
        work: i64,
        recipients: Recipients,
        format: Format,
        profile: Profile,
    ) -> Result<JobView, JobError> {
        require(user, earmark::Action::Mark)?;
        let found = self.home.work(work).await?;
        if !self.home.work_detail(found.id).await?.summary.master_kept {
            return Err(earmark::Error::Usage(format!(
                "work {work}'s master was forgotten; it cannot be marked again"
            ))
            .into());
        }
        self.home.select(&recipients.selection()).await?;
        let id = table::new_job_id()?;
        let request = JobRequest::Mark {
            work,
            recipients,
            format,
            profile,
        };
        self.enqueue(&user.name, &id, JobKind::Mark, &request, None)
            .await
    }

    /// Queues the rendering of `link`'s copy, unless a render of the same
    /// copy is queued or running already, or failed less than
    /// [`RENDER_RETRY_S`] ago, whose job is returned instead: however many
    /// recipients press Download at once, each copy is rendered once.
    pub async fn submit_render(&self, link: &earmark::Link) -> Result<JobView, JobError> {
        let copy = format!(
            "render w{} r{} {}",
            link.work_id, link.recipient_id, link.format
        );
        if let Some(id) = table::unfinished(&self.pool, &copy).await? {
            return self.job(&id).await;
        }
        // A render that just failed would fail again: its job is answered
        // (state `failed`, with the library's reason) until a minute has
        // passed, rather than queuing one render per request.
        if let Some(id) = table::recently_failed(&self.pool, &copy, RENDER_RETRY_S).await? {
            return self.job(&id).await;
        }
        let id = table::new_job_id()?;
        let request = JobRequest::Render {
            link: link.id,
            work: link.work_id,
        };
        let by = format!("link {}", link.id);
        match self
            .enqueue(&by, &id, JobKind::Render, &request, Some(&copy))
            .await
        {
            Err(JobError::Queue(_)) => match table::unfinished(&self.pool, &copy).await? {
                // Another download queued it meanwhile.
                Some(other) => self.job(&other).await,
                None => Err(JobError::Queue(format!(
                    "the render of link {} could not be queued",
                    link.id
                ))),
            },
            queued => queued,
        }
    }

    async fn enqueue(
        &self,
        submitted_by: &str,
        id: &str,
        kind: JobKind,
        request: &JobRequest,
        copy: Option<&str>,
    ) -> Result<JobView, JobError> {
        table::insert(&self.pool, id, kind, submitted_by, request, copy).await?;
        let mut queue = self.queue.clone();
        if let Err(e) = queue
            .push(Ticket {
                job: id.to_string(),
            })
            .await
        {
            // Never a job that no worker will run.
            let _ = table::delete(&self.pool, id).await;
            return Err(JobError::Queue(e.to_string()));
        }
        tracing::info!(job = id, kind = kind.as_str(), by = %submitted_by, "queued");
        self.job(id).await
    }

    /// The job with id `id`.
    pub async fn job(&self, id: &str) -> Result<JobView, JobError> {
        table::get(&self.pool, id)
            .await?
            .ok_or_else(|| JobError::UnknownJob(earmark::terminal_safe(id).into_owned()))
    }

    /// Where mark job `id` delivers its copies.
    fn deliveries(&self, id: &str) -> PathBuf {
        self.root.join(DELIVERIES_DIR).join("jobs").join(id)
    }

    fn spooled(&self, name: &str) -> PathBuf {
        self.root.join(SPOOL_DIR).join(name)
    }
}

impl Recipients {
    /// The library's selection of the same recipients.
    pub fn selection(&self) -> earmark::Selection {
        match self {
            Recipients::Names(names) => earmark::Selection::Named(names.clone()),
            Recipients::Ids(ids) => earmark::Selection::Ids(ids.clone()),
        }
    }
}

/// Refuses `user` an action their role does not allow (the library's
/// rule), so that no front end can queue a job its caller may not run.
fn require(user: &User, action: earmark::Action) -> Result<(), JobError> {
    if earmark::permitted(user.role, action) {
        Ok(())
    } else {
        Err(JobError::Forbidden(format!(
            "{} {} may not {action:?}",
            user.role.as_str(),
            earmark::terminal_safe(&user.name)
        )))
    }
}

/// The queue's settings: a worker that misses two heartbeats is taken for
/// dead, and its jobs go back to the queue.
fn queue_config(heartbeat: std::time::Duration) -> apalis_sqlite::Config {
    apalis_sqlite::Config::default()
        .queue(QUEUE)
        .heartbeat_interval(heartbeat)
        .missed_heartbeats(2)
        // A worker takes only what it can start: the rest stay for others.
        .batch_size(1)
}
