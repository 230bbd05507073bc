//! earmark's benchmark: the instrument every robustness, false-alarm,
//! quality and speed claim is measured with.
//!
//! Owns: the named attack suite and its chains ([`attack`]), the calls to
//! Debian's ffmpeg and sox that run real codecs ([`tools`]), objective
//! quality measures ([`metrics`]) and the perceptual helper ([`perceptual`]),
//! the parallel runner ([`run()`]), the side-by-side adapter for another
//! watermarking tool ([`external`]), informed tracing of the same excerpts
//! against their originals ([`informed`]), the transcript-canary quote
//! trials ([`text`]) and the reports: Markdown, JSON and PNG
//! plots ([`report`]).
//!
//! Must not touch: the watermark's internals (it uses the engine's public
//! API only, exactly as the `earmark` command does), key files, or argument
//! parsing (the command line lives in `earmark-cli`). Every random choice
//! (keys, payloads, noise, excerpt offsets, rooms) derives from the seed
//! through labelled HKDF sub-keys, so a run is reproducible bit for bit.

#![forbid(unsafe_code)]

pub mod acoustics;
pub mod attack;
pub mod external;
pub mod informed;
pub mod metrics;
pub mod perceptual;
pub mod report;
pub mod run;
pub mod text;
pub mod tools;

pub use attack::{parse_list, Attack, BadAttack, Chain};
pub use external::ExternalTool;
pub use report::Report;
pub use run::{run, Config, Suite};

/// Why a benchmark could not run (per-file and per-attack problems are
/// recorded in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A program the attacks need is missing.
    #[error("{tool} not found: install the Debian package(s) `{package}` (scripts/setup.sh does)")]
    MissingTool {
        /// The program.
        tool: &'static str,
        /// The Debian package(s) that provide it.
        package: &'static str,
    },
    /// The corpus directory cannot be listed or holds no usable recording.
    #[error("corpus {0}")]
    Corpus(String),
    /// An attack failed on one file (recorded, not fatal).
    #[error("{0}")]
    Attack(String),
    /// The output directory or a report could not be written.
    #[error("cannot write {0}")]
    Output(String),
    /// The external tool's settings are unusable.
    #[error("external tool: {0}")]
    External(String),
}
