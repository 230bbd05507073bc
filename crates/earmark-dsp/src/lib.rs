//! Pure signal-processing building blocks for earmark.
//!
//! Owns: analysis windows, short-time Fourier frames on `realfft`, sample-rate
//! conversion on `rubato`, a short integer-factor decimator for signals whose
//! content of interest lies in a low band, per-band energies of power
//! spectra, and linear systems (convolution, least-squares responses). Everything works on `f32` slices in memory.
//!
//! Must not touch: files, keys, the watermark's layout or any policy. This
//! crate knows nothing about watermarks; `earmark-engine` builds on it.
//!
//! Unsafe code is denied except in one place: the decimator calls its
//! inner product compiled for AVX, which is sound only once the CPU is
//! known to have AVX; `decimate::multiply_add` checks that at run time.

#![deny(unsafe_code)]

mod decimate;
mod linear;

pub use decimate::BandDecimator;
pub use linear::{
    convolve, equaliser, fit_response, phase_correlation, phase_delay, solve_symmetric_toeplitz,
    PhasePeak, PEAK_HALF_WIDTH,
};

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rubato::{FftFixedIn, Resampler};

/// Mean of equal-length channels: the one mono downmix every analysis uses.
pub fn downmix(channels: &[Vec<f32>]) -> Vec<f32> {
    let slices: Vec<&[f32]> = channels.iter().map(Vec::as_slice).collect();
    let mut mono = Vec::new();
    downmix_into(&slices, &mut mono);
    mono
}

/// Writes the mean of equal-length channels into `mono` (reusing its
/// allocation; empty if there are no channels).
pub fn downmix_into(channels: &[&[f32]], mono: &mut Vec<f32>) {
    mono.clear();
    let Some((first, rest)) = channels.split_first() else {
        return;
    };
    mono.extend_from_slice(first);
    if rest.is_empty() {
        return;
    }
    for channel in rest {
        for (m, &x) in mono.iter_mut().zip(channel.iter()) {
            *m += x;
        }
    }
    let scale = 1.0 / channels.len() as f32;
    mono.iter_mut().for_each(|m| *m *= scale);
}

/// Periodic Hann window of `len` samples (sums to a constant at 50 % overlap).
pub fn hann(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let phase = std::f32::consts::TAU * i as f32 / len as f32;
            0.5 - 0.5 * phase.cos()
        })
        .collect()
}

/// Square root of the periodic Hann window: used for analysis *and* synthesis,
/// so that analysis·synthesis is a Hann window and overlap-add at 50 % overlap
/// reconstructs the input exactly when nothing is changed.
pub fn sqrt_hann(len: usize) -> Vec<f32> {
    hann(len).into_iter().map(f32::sqrt).collect()
}

/// A forward/inverse real FFT pair of one size, with scratch space.
pub struct Fft {
    len: usize,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    time: Vec<f32>,
    scratch: Vec<Complex32>,
}

impl Fft {
    /// Plans transforms of `len` samples (`len / 2 + 1` bins).
    pub fn new(len: usize) -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(len);
        let inverse = planner.plan_fft_inverse(len);
        let scratch_len = forward.get_scratch_len().max(inverse.get_scratch_len());
        Fft {
            len,
            forward,
            inverse,
            time: vec![0.0; len],
            scratch: vec![Complex32::default(); scratch_len],
        }
    }

    /// Transform length in samples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a planned transform has at least one sample.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of frequency bins (`len / 2 + 1`).
    pub fn bins(&self) -> usize {
        self.len / 2 + 1
    }

    /// Spectrum of `frame · window`. `frame` may be shorter than the window
    /// (it is zero-padded); `spectrum` must hold [`Fft::bins`] values.
    pub fn forward(&mut self, frame: &[f32], window: &[f32], spectrum: &mut [Complex32]) {
        let n = frame.len().min(self.len);
        for ((t, &x), &w) in self.time.iter_mut().zip(&frame[..n]).zip(window) {
            *t = x * w;
        }
        self.time[n..].iter_mut().for_each(|t| *t = 0.0);
        self.forward
            .process_with_scratch(&mut self.time, spectrum, &mut self.scratch)
            .expect("buffer sizes match the plan");
    }

    /// Inverse transform of `spectrum` (consumed as scratch), scaled by `1/len`,
    /// multiplied by `window` and added into `out`.
    pub fn inverse_add(&mut self, spectrum: &mut [Complex32], window: &[f32], out: &mut [f32]) {
        // A real signal's DC and Nyquist bins are real; rounding may leave dust.
        spectrum[0].im = 0.0;
        if let Some(last) = spectrum.last_mut() {
            last.im = 0.0;
        }
        self.inverse
            .process_with_scratch(spectrum, &mut self.time, &mut self.scratch)
            .expect("buffer sizes match the plan");
        let scale = 1.0 / self.len as f32;
        for ((o, &t), &w) in out.iter_mut().zip(&self.time).zip(window) {
            *o += t * w * scale;
        }
    }
}

/// Converts `input` sampled at `from` Hz to `to` Hz.
///
/// The output has `round(len · to / from)` samples and is aligned with the
/// input (the resampler's delay is removed). Same as [`StreamResampler`] fed
/// everything at once.
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to {
        return input.to_vec();
    }
    let mut resampler = StreamResampler::new(from, to);
    let mut out = resampler.push(input);
    out.extend(resampler.finish());
    out
}

/// Input chunk of the streaming resampler, samples. Measured on 60 s at
/// 44.1 kHz: 1024 with one sub-chunk was the fastest of the sizes tried.
const RESAMPLE_CHUNK: usize = 1024;

/// A streaming sample-rate converter (rubato's FFT resampler): push any
/// amount of input, get the output that is ready, then [`StreamResampler::finish`].
/// The concatenated output is aligned with the input (delay removed) and has
/// `round(total_len · to / from)` samples.
pub struct StreamResampler {
    resampler: Option<FftFixedIn<f32>>,
    from: u32,
    to: u32,
    pending: Vec<f32>,
    produced: Vec<Vec<f32>>,
    delay_left: usize,
    total_in: u64,
    total_out: u64,
}

impl StreamResampler {
    /// A converter from `from` Hz to `to` Hz (mono).
    pub fn new(from: u32, to: u32) -> Self {
        let resampler = (from != to).then(|| {
            FftFixedIn::<f32>::new(from as usize, to as usize, RESAMPLE_CHUNK, 1, 1)
                .expect("positive rates and chunk size are accepted")
        });
        let delay_left = resampler.as_ref().map_or(0, |r| r.output_delay());
        let produced = vec![vec![
            0.0f32;
            resampler.as_ref().map_or(0, |r| r.output_frames_max())
        ]];
        StreamResampler {
            resampler,
            from,
            to,
            pending: Vec::new(),
            produced,
            delay_left,
            total_in: 0,
            total_out: 0,
        }
    }

    /// Adds input; returns the output now available.
    pub fn push(&mut self, input: &[f32]) -> Vec<f32> {
        self.total_in += input.len() as u64;
        if self.resampler.is_none() {
            self.total_out += input.len() as u64;
            return input.to_vec();
        }
        self.pending.extend_from_slice(input);
        let mut out = Vec::with_capacity(input.len() * self.to as usize / self.from as usize + 16);
        let mut used = 0;
        while self.pending.len() - used >= RESAMPLE_CHUNK {
            let chunk = self.pending[used..used + RESAMPLE_CHUNK].to_vec();
            self.process(&chunk, &mut out);
            used += RESAMPLE_CHUNK;
        }
        self.pending.drain(..used);
        out
    }

    /// Flushes the remaining input; returns the rest of the output.
    pub fn finish(mut self) -> Vec<f32> {
        let target = (self.total_in * self.to as u64 + self.from as u64 / 2) / self.from as u64;
        let mut out = Vec::new();
        if self.resampler.is_none() {
            return out;
        }
        while self.total_out < target {
            let mut chunk = std::mem::take(&mut self.pending);
            chunk.resize(RESAMPLE_CHUNK, 0.0);
            self.process(&chunk, &mut out);
        }
        let excess = (self.total_out - target) as usize;
        out.truncate(out.len().saturating_sub(excess));
        out
    }

    fn process(&mut self, chunk: &[f32], out: &mut Vec<f32>) {
        let resampler = self
            .resampler
            .as_mut()
            .expect("only called when resampling");
        let (_, written) = resampler
            .process_into_buffer(&[chunk], &mut self.produced, None)
            .expect("chunk has the planned size");
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        out.extend_from_slice(&self.produced[0][skip..written]);
        self.total_out += (written - skip) as u64;
    }
}

/// For each band `(low Hz, high Hz)`, the FFT bins it covers and the
/// fraction of each bin (width `bin_hz`, centred on `k · bin_hz`) inside it:
/// band powers are then weighted sums of bin powers, continuous in the edges.
pub fn band_bin_weights(
    edges_hz: impl Iterator<Item = (f32, f32)>,
    bins: usize,
    bin_hz: f32,
) -> Vec<Vec<(usize, f32)>> {
    edges_hz
        .map(|(low, high)| {
            (0..bins)
                .filter_map(|k| {
                    let bin_low = (k as f32 - 0.5) * bin_hz;
                    let bin_high = (k as f32 + 0.5) * bin_hz;
                    let overlap = (high.min(bin_high) - low.max(bin_low)).max(0.0) / bin_hz;
                    (overlap > 0.0).then_some((k, overlap))
                })
                .collect()
        })
        .collect()
}

/// Energy in dB of a sum of squared magnitudes, floored so silence stays finite.
///
/// `floor` is the smallest energy considered (same units as `energy`).
pub fn energy_db(energy: f32, floor: f32) -> f32 {
    10.0 * energy.max(floor).log10()
}

/// Root-mean-square level of `x` in dB relative to full scale (1.0); −inf-safe.
pub fn rms_db(x: &[f32]) -> f32 {
    if x.is_empty() {
        return -200.0;
    }
    let mean_sq = x.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() / x.len() as f64;
    (10.0 * mean_sq.max(1e-20).log10()) as f32
}

/// Signal-to-noise ratio in dB of `marked` relative to `original` (same length).
pub fn snr_db(original: &[f32], marked: &[f32]) -> f32 {
    let mut signal = 0.0f64;
    let mut noise = 0.0f64;
    for (&o, &m) in original.iter().zip(marked) {
        signal += (o as f64).powi(2);
        noise += ((m - o) as f64).powi(2);
    }
    (10.0 * (signal.max(1e-20) / noise.max(1e-20)).log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stft_with_sqrt_hann_reconstructs() {
        let len = 64;
        let hop = len / 2;
        let window = sqrt_hann(len);
        let mut fft = Fft::new(len);
        let signal: Vec<f32> = (0..1024)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let mut out = vec![0.0f32; signal.len()];
        let mut spec = vec![Complex32::default(); fft.bins()];
        let mut start = 0;
        while start + len <= signal.len() {
            fft.forward(&signal[start..start + len], &window, &mut spec);
            fft.inverse_add(&mut spec, &window, &mut out[start..start + len]);
            start += hop;
        }
        for i in len..signal.len() - len {
            assert!((out[i] - signal[i]).abs() < 1e-4, "sample {i}");
        }
    }

    #[test]
    fn resample_keeps_length_and_tone() {
        let from = 44_100;
        let to = 8_000;
        let tone: Vec<f32> = (0..from)
            .map(|i| (std::f32::consts::TAU * 440.0 * i as f32 / from as f32).sin())
            .collect();
        let out = resample(&tone, from, to);
        assert_eq!(out.len(), 8_000);
        // Same phase after delay compensation: compare against the ideal tone.
        let err: f32 = (1000..7000)
            .map(|i| {
                let ideal = (std::f32::consts::TAU * 440.0 * i as f32 / to as f32).sin();
                (out[i] - ideal).powi(2)
            })
            .sum::<f32>()
            / 6000.0;
        assert!(err < 1e-3, "mean squared error {err}");
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn streaming_matches_one_shot_for_any_chunking() {
        let input: Vec<f32> = (0..50_000)
            .map(|i| ((i * 13 % 97) as f32 / 48.0) - 1.0)
            .collect();
        let whole = resample(&input, 44_100, 8_000);
        for step in [1usize, 700, 1024, 5000] {
            let mut r = StreamResampler::new(44_100, 8_000);
            let mut out = Vec::new();
            for part in input.chunks(step) {
                out.extend(r.push(part));
            }
            out.extend(r.finish());
            assert_eq!(out.len(), whole.len(), "step {step}");
            assert_eq!(out, whole, "step {step}");
        }
    }
}
