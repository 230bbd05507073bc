//! Log band levels on a short-time Fourier grid, the features every matching
//! step compares.

use earmark_dsp::{hann, Fft};
use realfft::num_complex::Complex32;

use crate::RATE;

/// Analysis window, samples at [`RATE`] (32 ms).
pub const WINDOW: usize = 256;
/// Number of matching bands.
pub const BANDS: usize = 20;
/// Lower edge of the lowest band, Hz, as heard in the master. With a
/// frequency scale down to 0.87 (−240 cents) it stays above a 300 Hz high-pass.
pub const LOW_HZ: f32 = 400.0;
/// Upper edge of the top band, Hz, as heard in the master. Scaled by up to
/// 1.13 (+210 cents) it stays below a 3.4 kHz low-pass.
pub const HIGH_HZ: f32 = 3_000.0;
/// Level given to empty bands, dB.
pub const FLOOR_DB: f32 = -100.0;

/// Lower and upper edge of matching band `band`, Hz (log-spaced).
pub fn band_edges_hz(band: usize) -> (f32, f32) {
    let ratio = HIGH_HZ / LOW_HZ;
    let edge = |k: usize| LOW_HZ * ratio.powf(k as f32 / BANDS as f32);
    (edge(band), edge(band + 1))
}

/// Power spectra of `WINDOW`-sample frames every `hop` samples.
pub struct Spectrogram {
    /// Number of frames.
    pub frames: usize,
    /// Frame hop, samples at [`RATE`].
    pub hop: usize,
    power: Vec<f32>,
}

/// Number of FFT bins of one frame.
pub const BINS: usize = WINDOW / 2 + 1;

impl Spectrogram {
    /// Analyses `signal` (mono, [`RATE`]) every `hop` samples. Frame `f`
    /// covers samples `[f·hop, f·hop + WINDOW)`.
    pub fn compute(signal: &[f32], hop: usize) -> Self {
        let frames = frame_count(signal.len(), hop);
        let mut power = Vec::with_capacity(frames * BINS);
        let mut fft = Fft::new(WINDOW);
        let window = hann(WINDOW);
        let mut spectrum = vec![Complex32::default(); BINS];
        for f in 0..frames {
            fft.forward(&signal[f * hop..f * hop + WINDOW], &window, &mut spectrum);
            power.extend(spectrum.iter().map(|s| s.norm_sqr()));
        }
        Spectrogram { frames, hop, power }
    }

    /// The power spectrum of frame `frame`.
    pub fn frame(&self, frame: usize) -> &[f32] {
        &self.power[frame * BINS..(frame + 1) * BINS]
    }

    /// Band levels with every band edge multiplied by `freq_scale` (1.1 reads
    /// a leak pitched up by 10 % as the master would read unchanged).
    pub fn levels(&self, freq_scale: f32) -> Levels {
        let weights = band_weights(freq_scale);
        let mut values = Vec::with_capacity(self.frames * BANDS);
        for f in 0..self.frames {
            let power = self.frame(f);
            values.extend(weights.iter().map(|w| level_db(w, power)));
        }
        Levels {
            frames: self.frames,
            hop: self.hop,
            values,
        }
    }
}

/// Frames of `WINDOW` samples every `hop` samples that fit in `len` samples.
pub fn frame_count(len: usize, hop: usize) -> usize {
    if len >= WINDOW {
        (len - WINDOW) / hop + 1
    } else {
        0
    }
}

/// Band levels (dB) per frame, row-major: `frames × BANDS`.
#[derive(Clone, Debug)]
pub struct Levels {
    /// Number of frames.
    pub frames: usize,
    /// Frame hop, samples at [`RATE`].
    pub hop: usize,
    /// `frames × BANDS` levels, dB.
    pub values: Vec<f32>,
}

impl Levels {
    /// Band levels of `signal` every `hop` samples with band edges scaled by
    /// `freq_scale`, without keeping the spectra (for long inputs).
    pub fn compute(signal: &[f32], hop: usize, freq_scale: f32) -> Self {
        let frames = frame_count(signal.len(), hop);
        let weights = band_weights(freq_scale);
        let mut fft = Fft::new(WINDOW);
        let window = hann(WINDOW);
        let mut spectrum = vec![Complex32::default(); BINS];
        let mut power = vec![0.0f32; BINS];
        let mut values = Vec::with_capacity(frames * BANDS);
        for f in 0..frames {
            fft.forward(&signal[f * hop..f * hop + WINDOW], &window, &mut spectrum);
            for (p, s) in power.iter_mut().zip(&spectrum) {
                *p = s.norm_sqr();
            }
            values.extend(weights.iter().map(|w| level_db(w, &power)));
        }
        Levels {
            frames,
            hop,
            values,
        }
    }

    /// The levels of frame `frame`.
    pub fn frame(&self, frame: usize) -> &[f32] {
        &self.values[frame * BANDS..(frame + 1) * BANDS]
    }

    /// Per frame, the level of all bands together, dB.
    pub fn envelope(&self) -> Vec<f32> {
        (0..self.frames)
            .map(|f| {
                let total: f32 = self.frame(f).iter().map(|&l| 10f32.powf(l / 10.0)).sum();
                db(total)
            })
            .collect()
    }
}

/// Seconds per frame hop.
pub fn hop_s(hop: usize) -> f64 {
    hop as f64 / RATE as f64
}

fn db(power: f32) -> f32 {
    if power > 0.0 {
        (10.0 * power.log10()).max(FLOOR_DB)
    } else {
        FLOOR_DB
    }
}

fn level_db(weights: &[(usize, f32)], power: &[f32]) -> f32 {
    db(weights.iter().map(|&(k, w)| power[k] * w).sum())
}

/// For each band, the bins it covers and the fraction of each inside it.
fn band_weights(freq_scale: f32) -> Vec<Vec<(usize, f32)>> {
    let edges = (0..BANDS).map(|band| {
        let (low, high) = band_edges_hz(band);
        (low * freq_scale, high * freq_scale)
    });
    earmark_dsp::band_bin_weights(edges, BINS, RATE as f32 / WINDOW as f32)
}
