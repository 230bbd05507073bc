//! earmark's application layer: every decision the product makes.
//!
//! Owns: the home (opening it, its recipients, works and audit log),
//! marking (one copy per recipient, delivered and recorded all or nothing),
//! tracing (which work a leak is, reading it blind or through the stored
//! master, and the tamper map), the accusation policy with its
//! false-accusation bound ([`accuse`]), transcript canaries, and the keyed
//! home-less commands ([`embed_file`], [`extract_file`]). Results are typed
//! reports that serialise to the JSON the command prints.
//!
//! The API is asynchronous and owns no runtime: the ledger's operations
//! are `async fn` on the caller's tokio runtime, and the seconds of signal
//! processing in marking and tracing run on its blocking threads, so a
//! service's worker threads are never held. A [`Home`] is cheap to clone
//! and is shared by every task of a process.
//!
//! Must not own: argument parsing, terminal output, progress bars or exit
//! codes. Those belong to front ends (the `earmark` command, a service),
//! which call this crate and never copy a rule out of it. Progress is
//! reported through [`Progress`]; failures are one [`Error`] enum.
//!
//! # The main path
//!
//! Open a home, add recipients, mark a recording for each of them, and trace
//! a leaked copy back to its recipient:
//!
//! ```
//! use std::sync::Arc;
//!
//! use earmark::{Epsilon, Format, Home, MarkRequest, NoProgress, Selection, TraceRequest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let root = dir.path().join("home");
//! Home::init(&root).await?; // a master key (0600) and an empty ledger
//! let home = Home::open(&root).await?;
//! for name in ["Ana", "Bo", "Cy"] {
//!     home.add_recipient(name, None, None).await?;
//! }
//!
//! // A bundled 8 kHz recording stands in for the sensitive one.
//! let master = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
//!     .join("../../tests/fixtures/speech_en_f_8k_allison_demo-congrats.wav");
//! let request = MarkRequest {
//!     work: master,
//!     recipients: Selection::All,
//!     out: dir.path().join("copies").into(),
//!     format: Format::Wav,
//!     title: Some("Board meeting".into()),
//!     settings: Default::default(),
//! };
//! let marked = home.mark(&request, Arc::new(NoProgress)).await?;
//! assert_eq!(marked.copies.len(), 3);
//!
//! // Bo's copy turns up somewhere it should not.
//! let leak = marked.copies.iter().find(|c| c.recipient == "Bo").unwrap();
//! let verdict = home
//!     .trace(
//!         &TraceRequest {
//!             leak: leak.path.clone(),
//!             work: None,
//!             epsilon: Epsilon::DEFAULT,
//!         },
//!         Arc::new(NoProgress),
//!     )
//!     .await?;
//! assert_eq!(verdict.accused.len(), 1);
//! assert_eq!(verdict.accused[0].name, "Bo");
//! // The chance that this accusation is wrong, bounded above.
//! assert!(verdict.accused[0].false_accusation_bound <= 1e-6);
//! home.close().await;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod accuse;
mod error;
mod home;
mod informed;
mod keyed;
mod leak;
mod links;
mod mark;
mod masters;
mod output;
mod sink;
mod text;
mod trace;
mod users;
mod works;

pub use accuse::{Epsilon, Evidence, Method};
pub use earmark_text::{LeftOutBecause, SlotFailure};
pub use error::{Error, ErrorKind, Result};
pub use home::{
    AuditReport, DeliveredCopy, ForgetReport, Home, Selection, WorkDetail, WorkSummary,
};
pub use informed::{analysis_signal, read_through_master, Informed, MAX_INFORMED_S};
pub use keyed::{create_key_file, embed_file, extract_file, load_key_file, parse_payload};
pub use leak::{check_upload, Leak};
pub use links::{offered_name, NewLinkReport, DELIVERIES_DIR, LINK_PREFIX};
pub use mark::{CopyReport, Format, MarkReport, MarkRequest, ENGINE_KEY_LABEL};
pub use output::create_output_file;
pub use sink::{CopySink, Destination, DirectorySink};
pub use text::{
    load_transcript, read_text, text_check, Misread, ShortlistEntry, TextCheckReport,
    TextCopyReport, TextFormat, TextMarkReport, TextMarkRequest, TextShortlist, TextTraceReport,
    MAX_TEXT_BYTES, MIN_SLOTS,
};
pub use trace::{
    Accusation, LinkDelivery, RankedRecipient, RegistrationReport, TraceReport, TraceRequest,
    WorkRef,
};
pub use users::{permitted, Action, NewToken, NewUser, Role, Token, User, TOKEN_PREFIX};
pub use works::AddedWork;

pub use earmark_align::{Edit, Match, Registration, Stretch};
pub use earmark_audio_io::{inside_decoder, AudioError};
pub use earmark_engine::{
    Detection, EmbedReport, EngineError, Found, MarkSettings, Profile, Segment,
};
pub use earmark_keys::SecretKey;
pub use earmark_ledger::actor::acting_as;
pub use earmark_ledger::names::terminal_safe;
pub use earmark_ledger::remove_stale_partials;
pub use earmark_ledger::{
    AuditEntry, BackupReport, CopyRecord, Counts, Download, LedgerError, Link, Recipient, Removal,
    RestoreReport, Work,
};

/// Where a long operation stands, for a front end to show. Every method
/// has an empty default, so a caller that shows nothing passes
/// [`NoProgress`].
pub trait Progress: Send + Sync {
    /// A stage of `total` steps begins.
    fn start(&self, _stage: &str, _total: u64) {}
    /// `steps` more steps of the current stage are done.
    fn advance(&self, _steps: u64) {}
    /// The current stage is over.
    fn finish(&self) {}
    /// Whether the caller wants the operation stopped. Marking asks at
    /// every chunk of every copy and extraction at every chunk read, so an
    /// operation stops within a fraction of a second with
    /// [`Error::Cancelled`]; a cancelled `mark` records nothing and leaves
    /// no file.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Progress through an input, reported in whole seconds of audio, and only
/// for inputs over a minute (shorter ones finish before a bar would help).
pub(crate) struct AudioSeconds<'a> {
    progress: &'a dyn Progress,
    rate_hz: f64,
    frames: u64,
    reported_s: u64,
    active: bool,
}

impl<'a> AudioSeconds<'a> {
    /// Starts `stage` if the input announces more than a minute.
    pub(crate) fn start(
        progress: &'a dyn Progress,
        stage: &str,
        rate_hz: u32,
        frames_hint: Option<u64>,
    ) -> Self {
        let total_s = frames_hint.map_or(0.0, |f| f as f64 / rate_hz.max(1) as f64);
        let active = total_s > 60.0;
        if active {
            progress.start(stage, total_s.ceil() as u64);
        }
        AudioSeconds {
            progress,
            rate_hz: rate_hz.max(1) as f64,
            frames: 0,
            reported_s: 0,
            active,
        }
    }

    /// `frames` more frames were handled.
    pub(crate) fn add(&mut self, frames: usize) {
        if !self.active {
            return;
        }
        self.frames += frames as u64;
        let seconds = (self.frames as f64 / self.rate_hz) as u64;
        if seconds > self.reported_s {
            self.progress.advance(seconds - self.reported_s);
            self.reported_s = seconds;
        }
    }
}

impl Drop for AudioSeconds<'_> {
    fn drop(&mut self) {
        if self.active {
            self.progress.finish();
        }
    }
}

/// Runs a future to completion from blocking code. The heavy parts of
/// marking and tracing run on a blocking thread of the caller's runtime
/// ([`blocking`]) and reach the asynchronous ledger through this.
pub(crate) trait Wait: std::future::Future + Sized {
    /// The future's output, waited for on this thread. Only called on a
    /// thread [`blocking`] started, which knows its runtime.
    fn wait(self) -> Self::Output {
        tokio::runtime::Handle::current().block_on(self)
    }
}

impl<F: std::future::Future> Wait for F {}

/// Runs `work` on a blocking thread of the caller's tokio runtime, so that
/// seconds of signal processing never hold one of its worker threads. A
/// panic inside goes on unwinding in the caller; a runtime shutting down
/// meanwhile is [`Error::Cancelled`]. Whoever the caller acts as
/// ([`acting_as`]) is still acting on that thread.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let actor = earmark_ledger::actor::current();
    let work = move || earmark_ledger::actor::acting_as_blocking(actor, work);
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Cancelled),
    }
}

/// Shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
