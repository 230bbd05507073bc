//! Objective quality measures of a marked copy against its original, and the
//! small statistics the report needs. Pure functions on samples.

use earmark_dsp::{hann, Fft};

/// Signal-to-noise ratio of `marked` against `original` (all channels), dB.
pub fn snr_db(original: &[Vec<f32>], marked: &[Vec<f32>]) -> f64 {
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (o, m) in original.iter().zip(marked) {
        for (&x, &y) in o.iter().zip(m) {
            signal += (x as f64).powi(2);
            noise += ((y - x) as f64).powi(2);
        }
    }
    10.0 * (signal.max(1e-20) / noise.max(1e-20)).log10()
}

/// Frame length of the segmental measures, seconds.
pub const FRAME_S: f64 = 0.020;
/// Frames quieter than this (dBFS RMS) are left out of segmental SNR: SNR of
/// silence says nothing about audibility.
pub const SILENT_FRAME_DBFS: f64 = -60.0;

/// Segmental SNR: the mean over 20 ms frames with sound of each frame's SNR,
/// clamped to [−10, 35] dB as is customary (Hansen & Pellom 1998), dB.
pub fn segmental_snr_db(original: &[Vec<f32>], marked: &[Vec<f32>], rate: u32) -> f64 {
    let frame = ((FRAME_S * rate as f64) as usize).max(1);
    let mut values = Vec::new();
    for (o, m) in original.iter().zip(marked) {
        for (fo, fm) in o.chunks_exact(frame).zip(m.chunks_exact(frame)) {
            let signal: f64 = fo.iter().map(|&x| (x as f64).powi(2)).sum();
            if 10.0 * (signal / frame as f64).max(1e-20).log10() < SILENT_FRAME_DBFS {
                continue;
            }
            let noise: f64 = fo
                .iter()
                .zip(fm)
                .map(|(&x, &y)| ((y - x) as f64).powi(2))
                .sum();
            values.push((10.0 * (signal / noise.max(1e-20)).log10()).clamp(-10.0, 35.0));
        }
    }
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Log-spectral distance: for each 32 ms Hann frame with sound, the RMS over
/// frequency of the difference of the two power spectra in dB; averaged over
/// frames and channels, dB.
pub fn log_spectral_distance_db(original: &[Vec<f32>], marked: &[Vec<f32>], rate: u32) -> f64 {
    let size = ((0.032 * rate as f64) as usize).next_power_of_two().max(64);
    let window = hann(size);
    let mut fft = Fft::new(size);
    let mut a = vec![Default::default(); fft.bins()];
    let mut b = vec![Default::default(); fft.bins()];
    let mut values = Vec::new();
    for (o, m) in original.iter().zip(marked) {
        for start in (0..o.len().saturating_sub(size)).step_by(size / 2) {
            let fo = &o[start..start + size];
            let energy: f64 = fo.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / size as f64;
            if 10.0 * energy.max(1e-20).log10() < SILENT_FRAME_DBFS {
                continue;
            }
            fft.forward(fo, &window, &mut a);
            fft.forward(&m[start..start + size], &window, &mut b);
            // A floor 100 dB under the frame's peak keeps empty bins from dominating.
            let peak = a
                .iter()
                .map(|c| c.norm_sqr())
                .fold(0.0f32, f32::max)
                .max(1e-30) as f64;
            let floor = peak * 1e-10;
            let sum: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| {
                    let px = (x.norm_sqr() as f64).max(floor);
                    let py = (y.norm_sqr() as f64).max(floor);
                    (10.0 * (px / py).log10()).powi(2)
                })
                .sum();
            values.push((sum / a.len() as f64).sqrt());
        }
    }
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Fraction of coded bits whose soft value has the wrong sign (a zero counts
/// half); 0.5 when there are no soft bits at all.
pub fn raw_bit_error_rate(soft: &[f32], truth: &[bool]) -> f64 {
    if soft.is_empty() || soft.len() != truth.len() {
        return 0.5;
    }
    let errors: f64 = soft
        .iter()
        .zip(truth)
        .map(|(&s, &t)| {
            if s == 0.0 {
                0.5
            } else if (s > 0.0) == t {
                0.0
            } else {
                1.0
            }
        })
        .sum();
    errors / soft.len() as f64
}

/// The median of `values` (NaN for none).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_of_a_known_error() {
        // Broadband (every bin well above the floor): an LCG's noise.
        let mut state = 12_345u32;
        let original: Vec<Vec<f32>> = vec![(0..16_000)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()];
        // 1 % amplitude error: −40 dB.
        let marked: Vec<Vec<f32>> = vec![original[0].iter().map(|x| x * 1.01).collect()];
        assert!((snr_db(&original, &marked) - 40.0).abs() < 0.01);
        assert!(
            (segmental_snr_db(&original, &marked, 16_000) - 35.0).abs() < 1e-9,
            "clamped at 35"
        );
        let lsd = log_spectral_distance_db(&original, &marked, 16_000);
        assert!((lsd - 20.0 * 1.01f64.log10()).abs() < 0.01, "{lsd}");
        assert_eq!(log_spectral_distance_db(&original, &original, 16_000), 0.0);
    }

    #[test]
    fn bit_errors_and_medians() {
        assert_eq!(
            raw_bit_error_rate(&[1.0, -1.0, 0.0, 2.0], &[true, true, true, true]),
            0.375
        );
        assert_eq!(raw_bit_error_rate(&[], &[true]), 0.5);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
