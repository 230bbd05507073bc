//! Where a leak comes from in its master, and how it was changed on the way.
//!
//! Owns: the spectral features used for matching ([`spectrum`]); the
//! registration of a leak against a master recording — coarse offset and
//! time scale, frequency scale, non-linear time warp by dynamic time warping,
//! fine anchors, the channel's response — and the tamper map it implies
//! ([`register()`]); and landmark hashes that find which master a leak comes
//! from among many ([`landmarks`]).
//!
//! Must not touch: files, keys, the watermark or recipients. Inputs are mono
//! `f32` signals at [`RATE`] Hz; callers decode, downmix and resample. The
//! watermark engine reads the mark through the map this crate produces, but
//! neither crate depends on the other.

#![forbid(unsafe_code)]

pub mod landmarks;
pub mod register;
pub mod spectrum;

pub use landmarks::{Landmark, LandmarkQuery, Match};
pub use register::{register, Edit, RegisterError, Registration, Stretch, MIN_LEAK_S};

/// Sample rate of every signal this crate analyses, Hz: the phone band
/// (up to 3.4 kHz) is all a leak is sure to keep.
pub const RATE: u32 = 8_000;

/// The signal registration looks at: the mean of `channels` (planar, `rate`
/// Hz, equal lengths) resampled to [`RATE`].
///
/// Downmixed and resampled a block at a time (the streaming resampler's
/// output equals the one-shot one), so a long recording never needs a
/// whole-length mono copy beside it.
pub fn analysis_signal(channels: &[Vec<f32>], rate: u32) -> Vec<f32> {
    const BLOCK: usize = 1 << 16;
    let frames = channels.first().map_or(0, Vec::len);
    let mut resampler = earmark_dsp::StreamResampler::new(rate, RATE);
    let mut out =
        Vec::with_capacity((frames as u64 * RATE as u64 / rate.max(1) as u64) as usize + 1);
    let mut mono = Vec::with_capacity(BLOCK);
    let mut start = 0;
    while start < frames {
        let end = (start + BLOCK).min(frames);
        let block: Vec<&[f32]> = channels.iter().map(|c| &c[start..end]).collect();
        earmark_dsp::downmix_into(&block, &mut mono);
        out.extend(resampler.push(&mono));
        start = end;
    }
    out.extend(resampler.finish());
    out
}
