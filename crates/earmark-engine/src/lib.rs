//! The watermark engine: a keyed, inaudible mark in band-energy differences,
//! embedded with knowledge of the host and read back blindly from excerpts.
//!
//! Owns: the mark's geometry and keyed layout ([`layout`]), the cell readings
//! shared by embedder and detector ([`features`]), the payload and its
//! authentication tag ([`payload`]), embedding ([`embed()`]) with its
//! profiles ([`profile`]) and masking model ([`perceptual`]), blind
//! detection with its false-positive bound ([`extract`]), and the informed
//! reading against a master ([`informed`]) with its models of what the
//! channel made of the host: of levels, or of the room a leak was played in.
//!
//! Must not touch: files, codecs, the terminal, or anything about recipients.
//! Audio comes in and goes out as planar `f32` channels with a sample rate;
//! `earmark-audio-io` reads and writes files, the CLI talks to people.
//!
//! # Design in one paragraph
//! The analysis signal is the mono downmix at 8 kHz. In 24 bands of 125 Hz
//! between 350 and 3350 Hz (inside the phone band) and 20 ms tiles, a *cell*
//! is one band over two consecutive tiles; it carries one keyed ±1 symbol as
//! the sign of the energy difference between its tiles. A 4 s block of 2400
//! cells holds a 400-cell pilot, 40 cells numbering the block, 120
//! fingerprint cells (one code position each, for a collusion-resistant code
//! chosen by the caller) and 384 coded bits (64-bit payload + 24-bit tag,
//! rate-1/4 convolutional code), and repeats for the whole recording.
//! The embedder measures each cell as the detector will and adds only the
//! modulation it still needs (informed embedding). The detector finds the
//! block offset (and, failing that, time and frequency scale) by correlating with the
//! pilot, sums every repetition into soft bits, runs list Viterbi and keeps
//! the best candidate whose tag verifies.

#![forbid(unsafe_code)]

pub mod detect;
pub mod embed;
pub mod features;
mod host;
pub mod informed;
pub mod layout;
pub mod payload;
pub mod perceptual;
pub mod profile;
mod room;

pub use detect::{
    extract, BlockRead, Detection, Extractor, FingerprintReading, Found, Scale, SearchGrid, Segment,
};
pub use embed::{embed, embed_fingerprinted, EmbedReport, Embedder};
pub use informed::{
    payload_tail, read_informed, CellReading, InformedReading, KnownPayloads, PayloadScore,
};
pub use profile::{MarkSettings, Profile};

/// Lowest sample rate the engine accepts, Hz.
pub const MIN_RATE: u32 = 8_000;
/// Highest sample rate the engine accepts, Hz.
pub const MAX_RATE: u32 = 192_000;

/// Why the engine refused its input.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EngineError {
    /// No channels, or channels of different lengths.
    #[error("audio has no channels or channels of unequal length")]
    BadChannels,
    /// Sample rate outside [`MIN_RATE`]..=[`MAX_RATE`].
    #[error("sample rate {0} Hz is outside the supported 8000–192000 Hz")]
    BadRate(u32),
    /// Strength outside the accepted range.
    #[error("strength {0} is outside the accepted range 0.05–8")]
    BadStrength(f32),
    /// A profile name that is not one of [`Profile::ALL`].
    #[error("unknown profile {0:?}: use transparent, balanced or robust")]
    BadProfile(String),
    /// A fingerprint of the wrong length.
    #[error("a fingerprint has {0} bits; the engine carries exactly {FINGERPRINT_POSITIONS}", FINGERPRINT_POSITIONS = layout::FINGERPRINT_POSITIONS)]
    BadFingerprint(usize),
    /// Not enough audible audio to carry one block.
    #[error("input has no sound to carry the mark: {duration_s:.1} s of silence")]
    NoSound {
        /// Input duration, seconds.
        duration_s: f64,
    },
}

/// Refuses a stream with no channels or a rate outside [`MIN_RATE`]..=[`MAX_RATE`].
pub(crate) fn check_format(rate: u32, channels: usize) -> Result<(), EngineError> {
    if channels == 0 {
        return Err(EngineError::BadChannels);
    }
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(EngineError::BadRate(rate));
    }
    Ok(())
}

/// [`check_format`], and channels of equal length.
pub(crate) fn check_input(channels: &[Vec<f32>], rate: u32) -> Result<(), EngineError> {
    check_format(rate, channels.len())?;
    if channels.iter().any(|c| c.len() != channels[0].len()) {
        return Err(EngineError::BadChannels);
    }
    Ok(())
}

pub(crate) use earmark_dsp::downmix;
