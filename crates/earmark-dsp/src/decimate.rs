//! Integer-factor rate change for signals whose content of interest lies in
//! a low band.
//!
//! A general resampler (rubato, [`crate::resample`]) keeps everything up to
//! the new Nyquist frequency, which needs long filters. When only the band
//! below `pass_hz` matters, aliases may land anywhere above it: the filter's
//! transition band can then run from `pass_hz` up to `low_rate − pass_hz`,
//! and a filter of a few dozen taps does the job. At 44.1 kHz with factor 3
//! and a 3.35 kHz band this is about ten times faster than the general
//! resampler, which is what lets the embedder run at well over 1000× real time.

/// Stop-band attenuation of the filter, dB.
pub const STOPBAND_DB: f64 = 60.0;

/// A linear-phase low-pass FIR used both to decimate by `factor` and to
/// interpolate back up by the same factor.
#[derive(Clone, Debug)]
pub struct BandDecimator {
    factor: usize,
    /// Symmetric taps, odd count; the centre tap is at `taps.len() / 2`.
    taps: Vec<f32>,
    /// Reused working buffer (input phases or padded input).
    scratch: Vec<f32>,
}

impl BandDecimator {
    /// A decimator from `rate` Hz by `factor` that keeps `0..pass_hz` intact.
    ///
    /// Panics unless `factor ≥ 1` and `pass_hz` is below half the low rate
    /// (there would be no room for a transition band).
    pub fn new(rate: u32, factor: usize, pass_hz: f32) -> Self {
        assert!(factor >= 1, "decimation factor must be at least 1");
        let low_rate = rate as f64 / factor as f64;
        let pass = pass_hz as f64;
        assert!(
            pass < low_rate / 2.0,
            "pass band must end below the low rate's Nyquist frequency"
        );
        if factor == 1 {
            return BandDecimator {
                factor,
                taps: vec![1.0],
                scratch: Vec::new(),
            };
        }
        // Aliases of anything above `low_rate − pass` fold to above `pass`.
        let stop = low_rate - pass;
        let cutoff = (pass + stop) / 2.0 / rate as f64;
        let transition = (stop - pass) / rate as f64 * std::f64::consts::TAU;
        // Kaiser's design formulas for length and shape.
        let order = ((STOPBAND_DB - 8.0) / (2.285 * transition)).ceil() as usize;
        let half = order.div_ceil(2);
        let beta = 0.1102 * (STOPBAND_DB - 8.7);
        let norm = bessel_i0(beta);
        let taps: Vec<f64> = (0..=2 * half)
            .map(|i| {
                let n = i as f64 - half as f64;
                let sinc = if n == 0.0 {
                    2.0 * cutoff
                } else {
                    (std::f64::consts::TAU * cutoff * n).sin() / (std::f64::consts::PI * n)
                };
                let r = n / half as f64;
                sinc * bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / norm
            })
            .collect();
        let dc: f64 = taps.iter().sum();
        BandDecimator {
            factor,
            taps: taps.iter().map(|t| (t / dc) as f32).collect(),
            scratch: Vec::new(),
        }
    }

    /// The decimation factor.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Number of filter taps (at the high rate).
    pub fn taps(&self) -> usize {
        self.taps.len()
    }

    /// Low-pass filters `x` and keeps every `factor`-th sample, starting with
    /// the first: output sample `m` is aligned with input sample `m · factor`.
    /// The input is taken as zero outside its ends. The result replaces the
    /// contents of `y`.
    pub fn decimate(&mut self, x: &[f32], y: &mut Vec<f32>) {
        let d = self.factor;
        y.clear();
        if d == 1 {
            y.extend_from_slice(x);
            return;
        }
        // Polyphase form: the input's `d` phases (zero-padded), then each
        // tap adds a shifted phase into the output. The multiply-adds run
        // along the output, so they vectorise, and in blocks that stay in
        // cache.
        let half = self.taps.len() / 2;
        let out_len = x.len().div_ceil(d);
        let pad = half / d + 1;
        let width = out_len + 2 * pad;
        let phases = &mut self.scratch;
        phases.clear();
        phases.resize(d * width, 0.0);
        deinterleave(x, d, width, pad, phases);
        let plan: Vec<(usize, f32)> = self
            .taps
            .iter()
            .enumerate()
            .map(|(k, &tap)| {
                let offset = k as isize - half as isize;
                let r = offset.rem_euclid(d as isize) as usize;
                let shift = pad as isize + offset.div_euclid(d as isize);
                (r * width + shift as usize, tap)
            })
            .collect();
        y.resize(out_len, 0.0);
        for block in (0..out_len).step_by(BLOCK) {
            let target = &mut y[block..(block + BLOCK).min(out_len)];
            for &(start, tap) in &plan {
                let source = &phases[start + block..start + block + target.len()];
                multiply_add(tap, source, target);
            }
        }
    }

    /// The inverse of [`BandDecimator::decimate`] for band-limited content:
    /// inserts `factor − 1` zeros after each sample of `y`, low-pass filters
    /// (with gain `factor`) and writes the first `len` samples into `out`
    /// (cleared first).
    pub fn interpolate(&mut self, y: &[f32], len: usize, out: &mut Vec<f32>) {
        let d = self.factor;
        out.clear();
        if d == 1 {
            out.extend_from_slice(&y[..len.min(y.len())]);
            out.resize(len, 0.0);
            return;
        }
        // Output phase `r` (samples q·d + r) is `y` filtered by every d-th
        // tap: out[q·d + r] = d · Σ_t h[t·d + r + half] · y[q − t]. Each tap
        // is one multiply-add along `q`, in cache-sized blocks; the phases
        // are then interleaved.
        let half = self.taps.len() / 2;
        let phase_len = len.div_ceil(d);
        let pad = half / d + 1;
        let padded = &mut self.scratch;
        padded.clear();
        padded.resize(phase_len.max(y.len()) + 2 * pad, 0.0);
        padded[pad..pad + y.len()].copy_from_slice(y);
        let plans: Vec<Vec<(usize, f32)>> = (0..d)
            .map(|r| {
                self.taps
                    .iter()
                    .enumerate()
                    .filter_map(|(k, &tap)| {
                        let offset = k as isize - (r + half) as isize;
                        (offset.rem_euclid(d as isize) == 0).then(|| {
                            let t = offset / d as isize;
                            ((pad as isize - t) as usize, tap * d as f32)
                        })
                    })
                    .collect()
            })
            .collect();
        out.resize(phase_len * d, 0.0);
        // One block of every phase, then interleaved into `out`.
        let mut phase_blocks = vec![0.0f32; d * BLOCK];
        for block in (0..phase_len).step_by(BLOCK) {
            let block_len = BLOCK.min(phase_len - block);
            for (plan, target) in plans.iter().zip(phase_blocks.chunks_exact_mut(BLOCK)) {
                let target = &mut target[..block_len];
                target.iter_mut().for_each(|v| *v = 0.0);
                for &(start, tap) in plan {
                    multiply_add(
                        tap,
                        &padded[start + block..start + block + block_len],
                        target,
                    );
                }
            }
            interleave(
                &phase_blocks,
                block_len,
                &mut out[block * d..(block + block_len) * d],
            );
        }
        out.truncate(len);
    }
}

/// Splits `x` into its `d` phases: phase `r` (samples `i·d + r`) goes to
/// `phases[r·width + pad + i]`. The factors of the common rates (2 for 24 and
/// 32 kHz, 3 for 44.1, 4 for 48, 7 for 88.2, 8 for 96) get a loop of their
/// own, where the frame length is a constant: the general loop's index
/// arithmetic and bounds checks cost more than the decimator's filtering.
fn deinterleave(x: &[f32], d: usize, width: usize, pad: usize, phases: &mut [f32]) {
    fn fixed<const D: usize>(x: &[f32], width: usize, pad: usize, phases: &mut [f32]) {
        let whole = x.len() / D;
        let rows: [&mut [f32]; D] = split_rows(phases, width, pad, x.len().div_ceil(D));
        let frames = x.chunks_exact(D);
        let tail = frames.remainder();
        for (i, frame) in frames.enumerate() {
            for r in 0..D {
                rows[r][i] = frame[r];
            }
        }
        for (r, &v) in tail.iter().enumerate() {
            rows[r][whole] = v;
        }
    }
    match d {
        2 => fixed::<2>(x, width, pad, phases),
        3 => fixed::<3>(x, width, pad, phases),
        4 => fixed::<4>(x, width, pad, phases),
        7 => fixed::<7>(x, width, pad, phases),
        8 => fixed::<8>(x, width, pad, phases),
        _ => {
            for (r, phase) in phases.chunks_exact_mut(width).enumerate() {
                for (slot, &v) in phase[pad..].iter_mut().zip(x.iter().skip(r).step_by(d)) {
                    *slot = v;
                }
            }
        }
    }
}

/// The `D` rows of `phases` (each `width` long), from `pad` on, `len` long.
fn split_rows<const D: usize>(
    phases: &mut [f32],
    width: usize,
    pad: usize,
    len: usize,
) -> [&mut [f32]; D] {
    let mut rows = phases.chunks_exact_mut(width);
    std::array::from_fn(|_| {
        let row = rows.next().expect("one row per phase");
        &mut row[pad..pad + len]
    })
}

/// Interleaves the first `len` samples of each `BLOCK`-long phase in
/// `phase_blocks` into `out` (`len · d` samples, `d` = number of phases);
/// the inverse of [`deinterleave`], with the same fixed-factor loops.
fn interleave(phase_blocks: &[f32], len: usize, out: &mut [f32]) {
    fn fixed<const D: usize>(phase_blocks: &[f32], len: usize, out: &mut [f32]) {
        let rows: [&[f32]; D] = std::array::from_fn(|r| &phase_blocks[r * BLOCK..r * BLOCK + len]);
        for (i, frame) in out.chunks_exact_mut(D).take(len).enumerate() {
            for r in 0..D {
                frame[r] = rows[r][i];
            }
        }
    }
    if len == 0 {
        return;
    }
    let d = out.len() / len;
    match d {
        2 => fixed::<2>(phase_blocks, len, out),
        3 => fixed::<3>(phase_blocks, len, out),
        4 => fixed::<4>(phase_blocks, len, out),
        7 => fixed::<7>(phase_blocks, len, out),
        8 => fixed::<8>(phase_blocks, len, out),
        _ => {
            for (r, phase) in phase_blocks.chunks_exact(BLOCK).enumerate() {
                for (o, &v) in out.iter_mut().skip(r).step_by(d).zip(&phase[..len]) {
                    *o = v;
                }
            }
        }
    }
}

/// Samples per block of the polyphase loops: small enough to stay in L1.
const BLOCK: usize = 512;

/// `acc += a · x`, element by element; with 8-wide AVX where the CPU has it
/// (the baseline x86-64 build only vectorises 4 wide).
#[allow(unsafe_code)]
fn multiply_add(a: f32, x: &[f32], acc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX, checked just above.
        unsafe { multiply_add_avx(a, x, acc) };
        return;
    }
    multiply_add_portable(a, x, acc);
}

#[inline(always)]
fn multiply_add_portable(a: f32, x: &[f32], acc: &mut [f32]) {
    for (o, &v) in acc.iter_mut().zip(x) {
        *o += a * v;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[allow(unsafe_code)]
unsafe fn multiply_add_avx(a: f32, x: &[f32], acc: &mut [f32]) {
    multiply_add_portable(a, x, acc);
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let quarter_x2 = x * x / 4.0;
    for k in 1..64 {
        term *= quarter_x2 / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f64, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (std::f64::consts::TAU * hz * i as f64 / rate as f64).sin() as f32)
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn phase_split_and_interleave_are_exact_for_every_factor() {
        for d in 1usize..=9 {
            for len in [0, 1, d, 5 * d + 2, 40 * d - 1] {
                let x: Vec<f32> = (0..len).map(|i| i as f32 + 0.5).collect();
                let (pad, width) = (3, len.div_ceil(d) + 6);
                let mut phases = vec![0.0; d * width];
                deinterleave(&x, d, width, pad, &mut phases);
                for (i, &v) in x.iter().enumerate() {
                    assert_eq!(phases[(i % d) * width + pad + i / d], v, "d {d}, len {len}");
                }
                let frames = len / d;
                let mut blocks = vec![0.0; d * BLOCK];
                for r in 0..d {
                    for i in 0..frames {
                        blocks[r * BLOCK + i] = (i * d + r) as f32;
                    }
                }
                let mut out = vec![-1.0; frames * d];
                interleave(&blocks, frames, &mut out);
                let expected: Vec<f32> = (0..frames * d).map(|i| i as f32).collect();
                assert_eq!(out, expected, "d {d}, len {len}");
            }
        }
    }

    #[test]
    fn pass_band_survives_the_round_trip() {
        let mut decimator = BandDecimator::new(44_100, 3, 3_350.0);
        for hz in [400.0, 1_500.0, 3_300.0] {
            let x = sine(44_100, hz, 44_100);
            let mut low = Vec::new();
            decimator.decimate(&x, &mut low);
            assert_eq!(low.len(), 14_700);
            // Same sine at the low rate, sample for sample (away from the ends).
            let expected = sine(14_700, hz, low.len());
            let error: Vec<f32> = low[200..14_500]
                .iter()
                .zip(&expected[200..14_500])
                .map(|(a, b)| a - b)
                .collect();
            assert!(
                rms(&error) < 1e-3,
                "{hz} Hz decimated: error {}",
                rms(&error)
            );
            let mut back = Vec::new();
            decimator.interpolate(&low, x.len(), &mut back);
            let error: Vec<f32> = back[600..43_500]
                .iter()
                .zip(&x[600..43_500])
                .map(|(a, b)| a - b)
                .collect();
            // Two passes of the filter's pass-band ripple (< −50 dB each).
            assert!(
                rms(&error) < 3e-3,
                "{hz} Hz round trip: error {}",
                rms(&error)
            );
        }
    }

    #[test]
    fn what_would_alias_into_the_band_is_removed() {
        let mut decimator = BandDecimator::new(44_100, 3, 3_350.0);
        // 12 kHz would fold to 2.7 kHz at 14.7 kHz.
        let mut low = Vec::new();
        decimator.decimate(&sine(44_100, 12_000.0, 44_100), &mut low);
        assert!(rms(&low[200..14_500]) < 10f64.powf(-(STOPBAND_DB - 6.0) / 20.0));
    }
}
