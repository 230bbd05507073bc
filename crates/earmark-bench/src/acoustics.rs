//! Rooms: impulse responses, synthetic or from pyroomacoustics' image-
//! source model, and convolution with them.

use std::path::Path;
use std::process::Command;

use earmark_audio_io::Audio;
use rand_chacha::ChaCha20Rng;

use crate::attack::gaussian;
use crate::BenchError;

/// The helper that computes a shoebox room's impulse response (also in
/// the repository as `scripts/room.py`).
pub const ROOM_HELPER: &str = include_str!("../../../scripts/room.py");

/// The impulse response, at `rate` Hz, from a loudspeaker to a microphone
/// `distance_m` apart in a shoebox room with reverberation time `rt60_s`,
/// by pyroomacoustics' image-source model. The room's size and the
/// speaker's place come from `seed`. Runs the Python of `EARMARK_PYTHON`
/// (`scripts/setup.sh --perceptual` prints it), else `python3`.
pub fn shoebox_response(
    rate: u32,
    rt60_s: f32,
    distance_m: f32,
    seed: u64,
    dir: &Path,
) -> Result<Vec<f32>, BenchError> {
    let python = std::env::var("EARMARK_PYTHON").unwrap_or_else(|_| "python3".into());
    let helper = dir.join("room.py");
    std::fs::write(&helper, ROOM_HELPER)
        .map_err(|e| BenchError::Output(format!("{}: {e}", helper.display())))?;
    let out = dir.join(format!("room-{seed:016x}.wav"));
    let run = Command::new(&python)
        .arg(&helper)
        .args([
            rate.to_string(),
            rt60_s.to_string(),
            distance_m.to_string(),
            (seed % (1 << 31)).to_string(),
        ])
        .arg(&out)
        .output()
        .map_err(|e| BenchError::Attack(format!("room: cannot run {python}: {e}")))?;
    if !run.status.success() {
        let why = String::from_utf8_lossy(&run.stderr);
        let last = why
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        return Err(BenchError::Attack(format!(
            "room: the pyroomacoustics helper failed ({last}); `scripts/setup.sh --perceptual` installs it, and EARMARK_PYTHON names its interpreter"
        )));
    }
    let ir = earmark_audio_io::read(&out).map_err(|e| BenchError::Attack(format!("room: {e}")))?;
    let _ = std::fs::remove_file(&out);
    Ok(ir.channels.into_iter().next().unwrap_or_default())
}

/// A synthetic room impulse response: the direct sound, then exponentially
/// decaying Gaussian noise reaching −60 dB after `rt60_s` (energy ratio of
/// reverberation to direct sound about 1:1), normalised to unit energy.
pub(crate) fn room_response(rate: u32, rt60_s: f64, rng: &mut ChaCha20Rng) -> Vec<f32> {
    let len = (rt60_s * rate as f64) as usize;
    let pre_delay = (0.005 * rate as f64) as usize;
    let decay = (-3.0 * std::f64::consts::LN_10 / (rt60_s * rate as f64)).exp();
    let mut ir = vec![0.0f64; len.max(pre_delay + 2)];
    ir[0] = 1.0;
    let mut envelope = 1.0;
    let mut tail = vec![0.0f64; ir.len()];
    for t in tail.iter_mut().skip(pre_delay) {
        *t = gaussian(rng) * envelope;
        envelope *= decay;
    }
    let tail_energy: f64 = tail.iter().map(|v| v * v).sum::<f64>().max(1e-12);
    for (i, t) in tail.iter().enumerate() {
        ir[i] += t / tail_energy.sqrt();
    }
    let energy: f64 = ir.iter().map(|v| v * v).sum::<f64>().sqrt();
    ir.iter().map(|v| (v / energy) as f32).collect()
}

/// Convolution with `ir` (same length out, the tail dropped), by FFT blocks.
pub(crate) fn convolve(audio: &Audio, ir: &[f32]) -> Audio {
    let block = ir.len().next_power_of_two();
    let size = 2 * block;
    let mut fft = earmark_dsp::Fft::new(size);
    let ones = vec![1.0f32; size];
    let mut ir_spectrum = vec![Default::default(); fft.bins()];
    fft.forward(ir, &ones, &mut ir_spectrum);
    let channels = audio
        .channels
        .iter()
        .map(|c| {
            let mut out = vec![0.0f32; c.len() + size];
            let mut spectrum = vec![Default::default(); fft.bins()];
            for start in (0..c.len()).step_by(block) {
                let end = (start + block).min(c.len());
                fft.forward(&c[start..end], &ones, &mut spectrum);
                for (s, h) in spectrum.iter_mut().zip(&ir_spectrum) {
                    *s *= h;
                }
                fft.inverse_add(&mut spectrum, &ones, &mut out[start..start + size]);
            }
            out.truncate(c.len());
            out
        })
        .collect();
    Audio {
        channels,
        ..audio.clone()
    }
}
