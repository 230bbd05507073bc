//! Linear systems: convolution, and the finite impulse response that best
//! maps one signal to another.
//!
//! The response is the least-squares (Wiener) solution: its normal equations
//! have the input's autocorrelation as a symmetric Toeplitz matrix, solved
//! by Levinson's recursion in O(taps²) rather than a dense solve's O(taps³)
//! (a 2,400-tap response: a few milliseconds instead of seconds).
//! Correlations and convolutions go through one real FFT each way, in `f64`
//! so that a response's quiet tail is not lost to rounding.

use realfft::num_complex::Complex64;
use realfft::RealFftPlanner;

/// `signal` convolved with `response`: `signal.len() + response.len() − 1`
/// samples (empty if either is).
pub fn convolve(signal: &[f32], response: &[f32]) -> Vec<f32> {
    if signal.is_empty() || response.is_empty() {
        return Vec::new();
    }
    let out_len = signal.len() + response.len() - 1;
    let n = out_len.next_power_of_two();
    let a = spectrum(signal, n);
    let b = spectrum(response, n);
    let product: Vec<Complex64> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
    let time = inverse(product, n);
    time[..out_len].iter().map(|&v| v as f32).collect()
}

/// The response `h` of `taps` samples minimising
/// `Σₙ (output[n] − Σₖ h[k]·input[n + history − k])²` over the output's
/// samples: `input` starts `history` samples before `output` (so that sound
/// from before the output's start may still ring into it) and is taken as
/// silent outside itself. The normal matrix is the input's autocorrelation
/// over all of it (the autocorrelation method: Toeplitz, and close to the
/// exact one when the input is much longer than the response), with
/// `loading` times the input's power added to its diagonal (white-noise
/// loading, which keeps the solve stable where the input has no energy at
/// some frequencies). `None` when `input` is silent or `taps` is 0.
pub fn fit_response(
    input: &[f32],
    output: &[f32],
    history: usize,
    taps: usize,
    loading: f64,
) -> Option<Vec<f32>> {
    if taps == 0 || output.is_empty() || input.len() <= history {
        return None;
    }
    let n = (input.len() + output.len() + taps).next_power_of_two();
    let x = spectrum(input, n);
    let y = spectrum(output, n);
    // c[m] = Σ y[i]·x[i+m], lag m taken modulo n.
    let cross: Vec<Complex64> = x.iter().zip(&y).map(|(a, b)| b.conj() * a).collect();
    let c = inverse(cross, n);
    let r = loaded_autocorrelation(&x, n, taps, loading)?;
    let p: Vec<f64> = (0..taps)
        .map(|k| c[(history as i64 - k as i64).rem_euclid(n as i64) as usize])
        .collect();
    let h = solve_symmetric_toeplitz(&r, &p)?;
    Some(h.into_iter().map(|v| v as f32).collect())
}

/// The equaliser of `response`: the filter `g` of `taps` samples whose
/// convolution with it is closest, by least squares, to a unit impulse
/// `delay` samples late, with `loading` times the response's energy added to
/// the normal matrix's diagonal (which trades exactness where the response
/// has deep notches for less gain on the noise there). A delay of about
/// half the filter lets it undo the part of a room's response that arrives
/// after the direct sound, which no causal filter can. `None` when the
/// response is silent.
pub fn equaliser(response: &[f32], taps: usize, delay: usize, loading: f64) -> Option<Vec<f32>> {
    if taps == 0 || response.is_empty() {
        return None;
    }
    let n = (response.len() + taps).next_power_of_two();
    let r = loaded_autocorrelation(&spectrum(response, 2 * n), 2 * n, taps, loading)?;
    // p[k] = Σₙ δ[n − delay]·h[n − k] = h[delay − k].
    let p: Vec<f64> = (0..taps)
        .map(|k| {
            delay
                .checked_sub(k)
                .and_then(|i| response.get(i))
                .map_or(0.0, |&v| v as f64)
        })
        .collect();
    let g = solve_symmetric_toeplitz(&r, &p)?;
    Some(g.into_iter().map(|v| v as f32).collect())
}

/// The delay of `signal` against `reference`, samples, within ±`max_lag`:
/// the lag `L` at which the phase-transform-weighted cross-correlation
/// (GCC-PHAT, Knapp & Carter 1976) `Σₙ signal[n]·reference[n − L]` peaks.
/// Whitening the cross-spectrum makes the peak that of the earliest, direct
/// arrival rather than of the envelope a room smears. `None` when either
/// signal is silent.
pub fn phase_delay(reference: &[f32], signal: &[f32], max_lag: usize) -> Option<i64> {
    phase_correlation(reference, signal, max_lag).map(|peak| peak.lag)
}

/// The peak [`phase_delay`] finds, with how it stands out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhasePeak {
    /// The lag, samples.
    pub lag: i64,
    /// The whitened correlation there (1 for a pure delay).
    pub height: f64,
    /// The highest correlation more than `PEAK_HALF_WIDTH` samples away
    /// from it: reflections of one arrival cluster within that.
    pub runner_up: f64,
}

/// Half-width of the lags a peak's reflections may take, samples (50 ms at
/// 8 kHz).
pub const PEAK_HALF_WIDTH: i64 = 400;

/// [`phase_delay`]'s peak with its height and runner-up.
pub fn phase_correlation(reference: &[f32], signal: &[f32], max_lag: usize) -> Option<PhasePeak> {
    if reference.is_empty() || signal.is_empty() {
        return None;
    }
    let n = (reference.len().max(signal.len()) + max_lag + 1).next_power_of_two();
    let x = spectrum(reference, n);
    let y = spectrum(signal, n);
    let floor = 1e-12
        * x.iter()
            .zip(&y)
            .map(|(a, b)| (a.conj() * b).norm())
            .sum::<f64>()
        / n as f64;
    let whitened: Vec<Complex64> = x
        .iter()
        .zip(&y)
        .map(|(a, b)| {
            let c = a.conj() * b;
            c / (c.norm() + floor).max(1e-300)
        })
        .collect();
    let c = inverse(whitened, n);
    let at = |lag: i64| c[lag.rem_euclid(n as i64) as usize];
    let max_lag = max_lag as i64;
    let lag = (-max_lag..=max_lag).max_by(|&a, &b| at(a).total_cmp(&at(b)))?;
    let height = at(lag);
    if height <= 0.0 {
        return None;
    }
    let runner_up = (-max_lag..=max_lag)
        .filter(|l| (l - lag).abs() > PEAK_HALF_WIDTH)
        .map(at)
        .fold(0.0f64, f64::max);
    Some(PhasePeak {
        lag,
        height,
        runner_up,
    })
}

/// Solves `T·x = b` where `T` is the symmetric Toeplitz matrix whose first
/// row is `r`, by Levinson's recursion; `None` if a leading minor is
/// singular (or numerically so).
pub fn solve_symmetric_toeplitz(r: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = r.len();
    if n == 0 || b.len() != n || r[0] == 0.0 {
        return None;
    }
    // forward[i]: the solution of T_k·f = e₁ for the leading k×k block; the
    // backward one (T_k·g = e_k) is its reverse, T being symmetric.
    let mut forward = vec![1.0 / r[0]];
    let mut x = vec![b[0] / r[0]];
    for k in 1..n {
        let error: f64 = (0..k).map(|i| r[k - i] * forward[i]).sum();
        let denominator = 1.0 - error * error;
        if denominator.abs() < 1e-12 || !denominator.is_finite() {
            return None;
        }
        let mut next = vec![0.0f64; k + 1];
        for (i, v) in next.iter_mut().enumerate() {
            let extended = if i < k { forward[i] } else { 0.0 };
            let backward = if i > 0 { forward[k - i] } else { 0.0 };
            *v = (extended - error * backward) / denominator;
        }
        forward = next;
        let x_error: f64 = (0..k).map(|i| r[k - i] * x[i]).sum();
        let step = b[k] - x_error;
        x.push(0.0);
        for (i, v) in x.iter_mut().enumerate() {
            *v += step * forward[k - i];
        }
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The first `taps` lags of the autocorrelation `r[k] = Σ x[j]·x[j+k]` of
/// the signal whose `n`-point spectrum is `x` (zero-padded enough that no
/// lag wraps), with `loading` times `r[0]` added to `r[0]`; `None` for a
/// silent signal.
fn loaded_autocorrelation(
    x: &[Complex64],
    n: usize,
    taps: usize,
    loading: f64,
) -> Option<Vec<f64>> {
    let power: Vec<Complex64> = x.iter().map(|v| v.conj() * v).collect();
    let mut r = inverse(power, n);
    r.truncate(taps);
    if r[0] <= 0.0 || !r[0].is_finite() {
        return None;
    }
    r[0] *= 1.0 + loading;
    Some(r)
}

/// The real FFT of `signal` zero-padded to `n` samples.
fn spectrum(signal: &[f32], n: usize) -> Vec<Complex64> {
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
    let mut time = vec![0.0f64; n];
    for (t, &s) in time.iter_mut().zip(signal) {
        *t = s as f64;
    }
    let mut out = fft.make_output_vec();
    // Lengths are the plan's own, so the transform cannot fail.
    let _ = fft.process(&mut time, &mut out);
    out
}

/// The inverse of [`spectrum`], scaled so that the round trip is exact.
fn inverse(mut spectrum: Vec<Complex64>, n: usize) -> Vec<f64> {
    let fft = RealFftPlanner::<f64>::new().plan_fft_inverse(n);
    // A real signal's spectrum has real end bins; rounding may leave a trace.
    spectrum[0].im = 0.0;
    if let Some(last) = spectrum.last_mut() {
        last.im = 0.0;
    }
    let mut time = fft.make_output_vec();
    let _ = fft.process(&mut spectrum, &mut time);
    let scale = 1.0 / n as f64;
    time.iter_mut().for_each(|v| *v *= scale);
    time
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, seed: u64) -> Vec<f32> {
        // A small linear congruential generator: deterministic and enough
        // for a test signal.
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn convolution_matches_the_direct_sum() {
        let a = noise(300, 1);
        let b = noise(37, 2);
        let fast = convolve(&a, &b);
        assert_eq!(fast.len(), 336);
        for (n, &v) in fast.iter().enumerate() {
            let direct: f32 = (0..b.len())
                .filter(|&k| n >= k && n - k < a.len())
                .map(|k| a[n - k] * b[k])
                .sum();
            assert!(
                (v - direct).abs() < 1e-4,
                "sample {n}: {v} against {direct}"
            );
        }
    }

    #[test]
    fn a_delay_is_found_through_a_decaying_response() {
        let reference = noise(8_000, 4);
        let mut response = vec![0.0f32; 900];
        response[37] = 1.0;
        for (k, v) in response.iter_mut().enumerate().skip(60) {
            *v += 0.8 * (-(k as f32) / 300.0).exp() * noise(1, k as u64)[0];
        }
        let signal = convolve(&reference, &response);
        assert_eq!(phase_delay(&reference, &signal, 200), Some(37));
        assert_eq!(phase_delay(&signal, &reference, 200), Some(-37));
    }

    #[test]
    fn an_equalised_response_is_close_to_a_delayed_impulse() {
        let mut response = vec![0.0f32; 400];
        response[3] = 1.0;
        for (k, v) in response.iter_mut().enumerate().skip(10) {
            *v += 0.7 * (-(k as f32) / 80.0).exp() * noise(1, k as u64)[0];
        }
        let g = equaliser(&response, 800, 400, 1e-4).expect("equaliser");
        let overall = convolve(&response, &g);
        let peak = overall[400];
        let rest: f32 = overall
            .iter()
            .enumerate()
            .filter(|&(n, _)| n != 400)
            .map(|(_, v)| v * v)
            .sum();
        assert!(peak > 0.95, "peak {peak}");
        assert!(rest < 0.01, "energy off the peak {rest}");
    }

    #[test]
    fn toeplitz_solution_satisfies_the_system() {
        let r = [4.0, 1.5, -0.5, 0.25, 0.1];
        let b = [1.0, -2.0, 0.5, 3.0, -1.0];
        let x = solve_symmetric_toeplitz(&r, &b).expect("positive definite");
        for i in 0..5usize {
            let row: f64 = (0..5usize).map(|j| r[i.abs_diff(j)] * x[j]).sum();
            assert!((row - b[i]).abs() < 1e-9, "row {i}: {row} against {}", b[i]);
        }
    }

    #[test]
    fn a_known_response_is_recovered_from_noise_through_it() {
        let input = noise(20_000, 3);
        let response: Vec<f32> = (0..64)
            .map(|k| {
                if k == 5 {
                    1.0
                } else {
                    0.6 * (-(k as f32) / 12.0).exp() * ((k % 3) as f32 - 1.0)
                }
            })
            .collect();
        let output = convolve(&input, &response);
        let fitted = fit_response(&input, &output[..input.len()], 0, 80, 1e-9).expect("fitted");
        for (k, &h) in fitted.iter().enumerate() {
            let truth = response.get(k).copied().unwrap_or(0.0);
            assert!((h - truth).abs() < 1e-3, "tap {k}: {h} against {truth}");
        }
        // The same from an output that starts 100 samples into the input
        // (the autocorrelation method's approximation costs a little).
        let fitted =
            fit_response(&input, &output[100..input.len()], 100, 80, 1e-9).expect("fitted");
        for (k, &h) in fitted.iter().enumerate() {
            let truth = response.get(k).copied().unwrap_or(0.0);
            assert!((h - truth).abs() < 1e-2, "tap {k}: {h} against {truth}");
        }
    }
}
