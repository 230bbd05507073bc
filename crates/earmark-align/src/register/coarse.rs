//! Stage 1, coarse offset and time scale: envelope cross-correlation over
//! candidate scales, or, for a cut or spliced leak, the landmark votes of
//! each piece.

use super::*;

/// The coarse line: master frame = `offset + scale · leak frame`, and, when
/// the leak was matched window by window (it was cut or spliced), each
/// window's own line.
#[derive(Clone, Debug)]
pub(super) struct CoarseLine {
    pub(super) offset: f64,
    pub(super) scale: f64,
    pub(super) correlation: f32,
    /// `(first leak frame, last leak frame, offset, scale)` of each window
    /// that matched on its own.
    pub(super) pieces: Vec<(usize, usize, f64, f64)>,
}

impl CoarseLine {
    pub(super) fn at(&self, leak_frame: usize) -> f64 {
        self.offset + self.scale * leak_frame as f64
    }

    /// The master frame of `leak_frame` by the window covering it, if one
    /// matched, else by the line.
    pub(super) fn local(&self, leak_frame: usize) -> f64 {
        self.pieces
            .iter()
            .filter(|p| (p.0..=p.1).contains(&leak_frame))
            .map(|p| p.2 + p.3 * leak_frame as f64)
            .next()
            .unwrap_or_else(|| self.at(leak_frame))
    }
}

/// `envelope` clamped to its loud frames' range and with its one-second
/// moving average removed: what is left is syllables and notes.
pub(super) fn detrend(envelope: &[f32]) -> Vec<f32> {
    let mut sorted = envelope.to_vec();
    sorted.sort_by(f32::total_cmp);
    let loud = sorted[((sorted.len() - 1) as f32 * 0.95) as usize];
    let clamped: Vec<f32> = envelope
        .iter()
        .map(|&e| e.max(loud - DYNAMIC_RANGE_DB))
        .collect();
    let half = (0.5 * RATE as f64 / HOP as f64) as usize;
    let mut prefix = vec![0.0f64; clamped.len() + 1];
    for (i, &e) in clamped.iter().enumerate() {
        prefix[i + 1] = prefix[i] + e as f64;
    }
    (0..clamped.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(clamped.len());
            clamped[i] - ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32
        })
        .collect()
}

/// Length of the windows a cut or spliced leak is matched in, frames (8 s).
pub(super) const COARSE_WINDOW: usize = 400;
/// A whole-leak correlation at least this high needs no window matching.
pub(super) const WHOLE_MATCH: f32 = 0.5;
/// Windows correlating at least this much take part in the line fit.
pub(super) const WINDOW_MATCH: f32 = 0.35;

/// Best offset and time scale by normalised cross-correlation of envelopes
/// of the whole leak. If that matches poorly (edits break one line into
/// several), the line `landmark_line` draws through the landmarks the leak
/// shares with the master, or failing that a robust line through the best
/// envelope match of each 8 s window. The correlation reported stays the
/// envelopes' (the median window's, or the whole leak's if higher).
pub(super) fn coarse_line(
    master_env: &[f32],
    leak_env: &[f32],
    landmark_line: impl FnOnce() -> Option<CoarseLine>,
) -> CoarseLine {
    let correlator = Correlator::new(detrend(master_env), leak_env.len());
    let whole = correlator.best(&detrend(leak_env));
    if whole.correlation >= WHOLE_MATCH {
        return whole;
    }
    // A leak shorter than two windows gets no window matching, but still
    // the landmark line.
    let window_starts: Vec<usize> = if leak_env.len() < 2 * COARSE_WINDOW {
        Vec::new()
    } else {
        (0..=leak_env.len() - COARSE_WINDOW)
            .step_by(COARSE_WINDOW / 2)
            .collect()
    };
    let mut pieces = Vec::new();
    let mut points = Vec::new();
    for start in window_starts {
        let window = correlator.best(&detrend(&leak_env[start..start + COARSE_WINDOW]));
        if window.correlation < WINDOW_MATCH {
            continue;
        }
        let offset = window.offset - window.scale * start as f64;
        pieces.push((start, start + COARSE_WINDOW - 1, offset, window.scale));
        let centre = (start + COARSE_WINDOW / 2) as f64;
        points.push((centre, offset + window.scale * centre, window.correlation));
    }
    let mut correlations: Vec<f32> = points.iter().map(|p| p.2).collect();
    correlations.sort_by(f32::total_cmp);
    let correlation = correlations
        .get(correlations.len() / 2)
        .map_or(whole.correlation, |c| c.max(whole.correlation));
    if let Some(line) = landmark_line() {
        return CoarseLine {
            correlation,
            ..line
        };
    }
    if points.len() < 2 {
        return whole;
    }
    let centres: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
    let (offset, scale) = theil_sen(&centres);
    CoarseLine {
        offset,
        scale,
        correlation,
        pieces,
    }
}

/// The Theil–Sen line through `(leak frame, master frame)` points (at least
/// two): the median of pairwise slopes, clamped to the time scales a leak
/// with cuts can show, then the median intercept. Returns `(offset, slope)`.
pub(super) fn theil_sen(points: &[(f64, f64)]) -> (f64, f64) {
    let mut slopes: Vec<f64> = Vec::new();
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            slopes.push((b.1 - a.1) / (b.0 - a.0));
        }
    }
    slopes.sort_by(f64::total_cmp);
    let slope = slopes[slopes.len() / 2].clamp(MIN_SCALE, 1.0 / (1.0 - 0.3));
    let mut intercepts: Vec<f64> = points.iter().map(|p| p.1 - slope * p.0).collect();
    intercepts.sort_by(f64::total_cmp);
    (intercepts[intercepts.len() / 2], slope)
}

/// Length of the leak pieces a landmark line is made of, frames (2 s).
pub(super) const LANDMARK_PIECE: usize = 100;
/// Landmark points either side of a piece's centre that vote on its offset,
/// frames (±2 s).
pub(super) const LANDMARK_REACH: f64 = 100.0;
/// Width of a landmark offset vote, frames (0.24 s).
pub(super) const LANDMARK_BIN: f64 = 12.0;
/// Fewest agreeing landmark points that place a piece.
pub(super) const LANDMARK_PIECE_MIN: usize = 4;
/// Fewest landmark points the best-supported piece must gather for the
/// landmark line to be used at all (as many as [`landmarks::MIN_VOTES`]
/// asks of a whole leak to name its work).
pub(super) const LANDMARK_LINE_MIN: usize = landmarks::MIN_VOTES as usize;

/// The coarse line from the landmarks the leak shares with the master: each
/// 2 s piece of the leak at the offset most landmarks within ±2 s agree on,
/// and a Theil–Sen line through the pieces. `None` if too few agree.
///
/// Envelope windows of 8 s straddle the cuts of a leak cut every few
/// seconds and lock onto wrong offsets; landmark points keep each stretch's
/// offset apart.
pub(super) fn landmark_line(master: &[f32], leak: &[f32]) -> Option<CoarseLine> {
    let (hypothesis, points) = landmarks::matching_points(
        &landmarks::landmarks(master),
        &landmarks::LandmarkQuery::new(leak),
    )?;
    let scale = hypothesis.time_scale as f64;
    let per_s = RATE as f64 / HOP as f64;
    let points: Vec<(f64, f64)> = points
        .iter()
        .map(|&(l, m)| (l * per_s, m * per_s))
        .collect();
    let leak_frames = leak.len() / HOP;
    let mut pieces = Vec::new();
    let mut centres = Vec::new();
    let mut support = 0;
    for start in (0..leak_frames).step_by(LANDMARK_PIECE) {
        let end = (start + LANDMARK_PIECE).min(leak_frames) - 1;
        let centre = 0.5 * (start + end) as f64;
        let mut offsets: Vec<f64> = points
            .iter()
            .filter(|p| (p.0 - centre).abs() <= LANDMARK_REACH)
            .map(|p| p.1 - scale * p.0)
            .collect();
        offsets.sort_by(f64::total_cmp);
        // The densest offset window of one bin's width.
        let (mut best, mut best_at) = (0, 0);
        let mut lo = 0;
        for hi in 0..offsets.len() {
            while offsets[hi] - offsets[lo] > LANDMARK_BIN {
                lo += 1;
            }
            if hi + 1 - lo > best {
                (best, best_at) = (hi + 1 - lo, lo);
            }
        }
        if best < LANDMARK_PIECE_MIN {
            continue;
        }
        support = support.max(best);
        let offset = offsets[best_at + best / 2];
        pieces.push((start, end, offset, scale));
        centres.push((centre, offset + scale * centre));
    }
    if centres.len() < 2 || support < LANDMARK_LINE_MIN {
        return None;
    }
    let (offset, slope) = theil_sen(&centres);
    Some(CoarseLine {
        offset,
        scale: slope,
        correlation: 0.0,
        pieces,
    })
}

/// Normalised cross-correlation of leak envelopes against one master envelope
/// over the time-scale grid, with the master's transform computed once.
pub(super) struct Correlator {
    pub(super) x: Vec<f32>,
    pub(super) x_energy: Vec<f64>,
    pub(super) x_spec: Vec<realfft::num_complex::Complex32>,
    pub(super) n: usize,
    pub(super) forward: std::sync::Arc<dyn realfft::RealToComplex<f32>>,
    pub(super) inverse: std::sync::Arc<dyn realfft::ComplexToReal<f32>>,
}

impl Correlator {
    /// For leak envelopes up to `longest_leak` frames.
    pub(super) fn new(x: Vec<f32>, longest_leak: usize) -> Self {
        let longest = (longest_leak as f64 * MAX_SCALE).ceil() as usize + 2;
        let n = (x.len() + longest).next_power_of_two();
        let mut planner = realfft::RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(n);
        let inverse = planner.plan_fft_inverse(n);
        let mut padded = vec![0.0f32; n];
        padded[..x.len()].copy_from_slice(&x);
        let mut x_spec = forward.make_output_vec();
        forward
            .process(&mut padded, &mut x_spec)
            .expect("planned size");
        let mut x_energy = vec![0.0f64; x.len() + 1];
        for (i, &v) in x.iter().enumerate() {
            x_energy[i + 1] = x_energy[i] + (v as f64).powi(2);
        }
        Correlator {
            x,
            x_energy,
            x_spec,
            n,
            forward,
            inverse,
        }
    }

    /// The best line for leak envelope `y` (detrended).
    pub(super) fn best(&self, y: &[f32]) -> CoarseLine {
        let (x, n) = (&self.x, self.n);
        let mut best = CoarseLine {
            offset: 0.0,
            scale: 1.0,
            correlation: f32::NEG_INFINITY,
            pieces: Vec::new(),
        };
        let steps = ((MAX_SCALE - MIN_SCALE) / SCALE_STEP).round() as usize;
        let mut padded = vec![0.0f32; n];
        let mut y_spec = self.forward.make_output_vec();
        let mut corr = self.inverse.make_output_vec();
        for step in 0..=steps {
            let scale = MIN_SCALE + step as f64 * SCALE_STEP;
            let stretched = stretch(y, scale);
            let m = stretched.len();
            let mut y_energy = vec![0.0f64; m + 1];
            for (i, &v) in stretched.iter().enumerate() {
                y_energy[i + 1] = y_energy[i] + (v as f64).powi(2);
            }
            padded.iter_mut().for_each(|v| *v = 0.0);
            padded[..m].copy_from_slice(&stretched);
            self.forward
                .process(&mut padded, &mut y_spec)
                .expect("planned size");
            for (a, b) in y_spec.iter_mut().zip(&self.x_spec) {
                *a = b * a.conj();
            }
            self.inverse
                .process(&mut y_spec, &mut corr)
                .expect("planned size");
            // Lag k: leak frame i sits on master frame k + i. Half the leak
            // may hang over either end (foreign audio before or after).
            let min_lag = -(m as isize / 2);
            let max_lag = x.len() as isize - m as isize / 2;
            for lag in min_lag..max_lag {
                let raw = corr[lag.rem_euclid(n as isize) as usize] as f64 / n as f64;
                let first = (-lag).max(0) as usize;
                let last = (x.len() as isize - lag).min(m as isize) as usize;
                if last <= first + m / 2 {
                    continue;
                }
                let ex = self.x_energy[(lag + last as isize) as usize]
                    - self.x_energy[(lag + first as isize) as usize];
                let ey = y_energy[last] - y_energy[first];
                let norm = (ex * ey).sqrt();
                if norm <= 0.0 {
                    continue;
                }
                let c = (raw / norm) as f32;
                if c > best.correlation {
                    best.offset = lag as f64;
                    best.scale = scale;
                    best.correlation = c;
                }
            }
        }
        best
    }
}

/// `y` read at `scale` times its rate: output frame `i` is input frame `i / scale`.
pub(super) fn stretch(y: &[f32], scale: f64) -> Vec<f32> {
    let len = ((y.len() - 1) as f64 * scale).floor() as usize + 1;
    (0..len)
        .map(|i| {
            let pos = i as f64 / scale;
            let k = (pos.floor() as usize).min(y.len() - 1);
            let t = (pos - k as f64) as f32;
            let next = y[(k + 1).min(y.len() - 1)];
            y[k] + t * (next - y[k])
        })
        .collect()
}

/// Pearson correlation of two band-level vectors.
pub(super) fn shape_correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len() as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x - ma, y - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa > 0.0 && bb > 0.0 {
        ab / (aa * bb).sqrt()
    } else {
        0.0
    }
}
