//! Stage 2, frequency scale: the band-edge factor whose spectral shapes
//! best match the master along the coarse line.

use super::*;

/// Frames whose envelope is within 20 dB of the signal's loud frames.
pub(super) fn loud_frames(levels: &Levels) -> Vec<bool> {
    let env = levels.envelope();
    let mut sorted = env.clone();
    sorted.sort_by(f32::total_cmp);
    let loud = sorted[((sorted.len() - 1) as f32 * 0.95) as usize];
    env.iter().map(|&e| e > loud - 20.0).collect()
}

/// The frequency scale whose spectral shapes best match along the coarse line.
pub(super) fn frequency_scale(master: &Levels, leak: &Spectrogram, line: &CoarseLine) -> f32 {
    let master_loud = loud_frames(master);
    let score = |freq_scale: f32| -> f32 {
        let levels = leak.levels(freq_scale);
        let leak_loud = loud_frames(&levels);
        let (mut sum, mut count) = (0.0f32, 0usize);
        for l in (0..levels.frames).filter(|&l| leak_loud[l]) {
            let j = line.local(l).round();
            if j < 0.0 || j as usize >= master.frames || !master_loud[j as usize] {
                continue;
            }
            sum += shape_correlation(levels.frame(l), master.frame(j as usize));
            count += 1;
        }
        if count == 0 {
            f32::NEG_INFINITY
        } else {
            sum / count as f32
        }
    };
    let lowest = MIN_SCALE as f32;
    let steps = ((MAX_SCALE as f32 - lowest) / FREQ_STEP).round() as usize;
    let scores: Vec<f32> = (0..=steps)
        .map(|k| score(lowest + k as f32 * FREQ_STEP))
        .collect();
    let best = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(k, _)| k);
    let mut scale = lowest + best as f32 * FREQ_STEP;
    if best > 0 && best < steps {
        let (a, b, c) = (scores[best - 1], scores[best], scores[best + 1]);
        let curvature = a - 2.0 * b + c;
        if curvature < 0.0 {
            scale += FREQ_STEP * 0.5 * (a - c) / curvature;
        }
    }
    scale
}
