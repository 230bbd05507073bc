//! Stage 3, time warp: dynamic time warping of band-level frames around the
//! coarse line, and the leak spans it matches.

use super::*;

/// Band levels clamped to the signal's dynamic range and with each band's
/// mean removed: a static channel response and gain drop out.
pub(super) fn normalised(levels: &Levels, frames: std::ops::Range<usize>) -> Vec<[f32; BANDS]> {
    let env = levels.envelope();
    let mut loud: Vec<f32> = env[frames.clone()].to_vec();
    loud.sort_by(f32::total_cmp);
    let top = loud
        .get(((loud.len().max(1) - 1) as f32 * 0.95) as usize)
        .copied()
        .unwrap_or(0.0);
    let floor = top - DYNAMIC_RANGE_DB - 10.0 * (BANDS as f32).log10();
    let mut out: Vec<[f32; BANDS]> = frames
        .clone()
        .map(|f| {
            let mut row = [0.0f32; BANDS];
            for (r, &l) in row.iter_mut().zip(levels.frame(f)) {
                *r = l.max(floor);
            }
            row
        })
        .collect();
    for b in 0..BANDS {
        let mean = out.iter().map(|r| r[b]).sum::<f32>() / out.len().max(1) as f32;
        out.iter_mut().for_each(|r| r[b] -= mean);
    }
    out
}

/// Normalised band levels of both signals at [`HOP`].
pub(super) struct Features {
    pub(super) leak: Vec<[f32; BANDS]>,
    pub(super) master: Vec<[f32; BANDS]>,
}

impl Features {
    /// Match cost of leak frame `l` against master frame `j` (`None` outside).
    pub(super) fn cost(&self, l: usize, j: isize) -> Option<f32> {
        let m = self.master.get(usize::try_from(j).ok()?)?;
        Some(frame_cost(self.leak.get(l)?, m))
    }
}

/// The warping path: for each leak frame, the master frames it is matched to
/// (first, last) and the local match cost, dB per band.
pub(super) struct Path {
    /// Per leak frame: first and last master frame on the path.
    pub(super) master: Vec<(usize, usize)>,
    /// Per leak frame: the match cost at its first master frame.
    pub(super) cost: Vec<f32>,
    /// Master frame count.
    pub(super) master_frames: usize,
    /// Cost above which a frame is taken not to match.
    pub(super) threshold: f32,
    /// Mean cost of the leak's frames against master frames far off the
    /// path: what unrelated audio costs.
    pub(super) unrelated_cost: f32,
}

pub(super) fn frame_cost(a: &[f32; BANDS], b: &[f32; BANDS]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / BANDS as f32
}

/// Dynamic time warping of leak frames against master frames within
/// ±[`MAX_DRIFT_S`] of the coarse line; start and end are free.
pub(super) fn warp(features: &Features, line: &CoarseLine) -> Path {
    let drift = (MAX_DRIFT_S * RATE as f64 / HOP as f64) as isize;
    let rows = features.leak.len();
    let lo_of = |l: usize| line.at(l).round() as isize - drift;
    let width = (2 * drift + 1) as usize;
    let a = &features.leak;
    let m_at =
        |j: isize| -> Option<&[f32; BANDS]> { features.master.get(usize::try_from(j).ok()?) };
    const FROM_DIAGONAL: u8 = 0;
    const FROM_LEAK_STEP: u8 = 1; // leak advanced, master held
    const FROM_MASTER_STEP: u8 = 2; // master advanced, leak held
    let mut total = vec![f32::INFINITY; rows * width];
    let mut from = vec![FROM_DIAGONAL; rows * width];
    for l in 0..rows {
        let lo = lo_of(l);
        let prev_lo = if l > 0 { lo_of(l - 1) } else { lo };
        for k in 0..width {
            let j = lo + k as isize;
            let Some(mf) = m_at(j) else { continue };
            let cost = frame_cost(&a[l], mf);
            let prev = |jj: isize| -> f32 {
                let kk = jj - prev_lo;
                if l == 0 || kk < 0 || kk >= width as isize {
                    f32::INFINITY
                } else {
                    total[(l - 1) * width + kk as usize]
                }
            };
            let mut best = if l == 0 { 0.0 } else { prev(j - 1) };
            let mut step = FROM_DIAGONAL;
            let held = prev(j) + STEP_PENALTY;
            if held < best {
                best = held;
                step = FROM_LEAK_STEP;
            }
            if k > 0 {
                let along = total[l * width + k - 1] + STEP_PENALTY;
                if along < best {
                    best = along;
                    step = FROM_MASTER_STEP;
                }
            }
            total[l * width + k] = cost + best;
            from[l * width + k] = step;
        }
    }
    // Backtrack from the cheapest end.
    let last = rows - 1;
    let mut k = (0..width)
        .min_by(|&x, &y| total[last * width + x].total_cmp(&total[last * width + y]))
        .unwrap_or(0);
    let mut l = last;
    let mut master_of = vec![(usize::MAX, 0usize); rows];
    loop {
        let j = (lo_of(l) + k as isize).max(0) as usize;
        let entry = &mut master_of[l];
        entry.0 = entry.0.min(j);
        entry.1 = entry.1.max(j);
        match from[l * width + k] {
            FROM_MASTER_STEP if k > 0 => k -= 1,
            _ if l == 0 => break,
            step => {
                let j_prev = if step == FROM_DIAGONAL {
                    j as isize - 1
                } else {
                    j as isize
                };
                l -= 1;
                let kk = j_prev - lo_of(l);
                if kk < 0 || kk >= width as isize {
                    break;
                }
                k = kk as usize;
            }
        }
    }
    // Frames the backtrack did not reach (it stopped at the band's edge)
    // take their neighbour's position.
    for l in 1..rows {
        if master_of[l].0 == usize::MAX {
            master_of[l] = (master_of[l - 1].1, master_of[l - 1].1);
        }
    }
    for l in (0..rows.saturating_sub(1)).rev() {
        if master_of[l].0 == usize::MAX {
            master_of[l] = (master_of[l + 1].0, master_of[l + 1].0);
        }
    }
    let cost: Vec<f32> = (0..rows)
        .map(|l| m_at(master_of[l].0 as isize).map_or(f32::INFINITY, |mf| frame_cost(&a[l], mf)))
        .collect();
    // Unrelated pairs: the same leak frames against master frames far off
    // the path.
    let shift = drift;
    let unrelated: Vec<f32> = (0..rows)
        .filter_map(|l| {
            let j = master_of[l].0 as isize;
            m_at(j + shift)
                .or_else(|| m_at(j - shift))
                .map(|mf| frame_cost(&a[l], mf))
        })
        .collect();
    let unrelated_cost = unrelated.iter().sum::<f32>() / unrelated.len().max(1) as f32;
    // The midpoint between a typical match and unrelated audio.
    let mut sorted: Vec<f32> = cost.iter().copied().filter(|c| c.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let matched_cost = sorted.get(sorted.len() / 4).copied().unwrap_or(0.0);
    Path {
        master: master_of,
        cost,
        master_frames: features.master.len(),
        threshold: 0.5 * (matched_cost + unrelated_cost),
        unrelated_cost,
    }
}

/// Leak frames in matched spans: `(first, last_exclusive)` runs of leak frames
/// that follow the master, split where the master jumps (a cut).
pub(super) fn matched_spans(path: &Path, frames: usize) -> Vec<(usize, usize)> {
    let per_s = RATE as f64 / HOP as f64;
    let edit_frames = (EDIT_MIN_S * per_s) as usize;
    let half = (0.25 * per_s) as usize;
    let smoothed: Vec<f32> = (0..frames)
        .map(|l| {
            let lo = l.saturating_sub(half);
            let hi = (l + half + 1).min(frames);
            let window = &path.cost[lo..hi];
            window
                .iter()
                .map(|c| c.min(2.0 * path.threshold))
                .sum::<f32>()
                / window.len() as f32
        })
        .collect();
    // Midway between a typical match and unrelated audio, the typical match
    // taken from the smoothed costs themselves. The path's threshold takes
    // it from single frames, whose costs scatter more: after a heavy codec
    // (Opus 6k on dense music) the smoothed costs of a fully matched leak
    // sat around that threshold, and half the leak was called inserted.
    let threshold = {
        let mut sorted: Vec<f32> = smoothed.iter().copied().filter(|c| c.is_finite()).collect();
        sorted.sort_by(f32::total_cmp);
        match sorted.get(sorted.len() / 4) {
            Some(&typical) => path.threshold.max(0.5 * (typical + path.unrelated_cost)),
            None => path.threshold,
        }
    };
    let mut matched: Vec<bool> = smoothed.iter().map(|&c| c <= threshold).collect();
    // The master held still for a long run of leak frames: inserted.
    let mut l = 0;
    while l < frames {
        let mut end = l + 1;
        while end < frames && path.master[end].0 == path.master[l].1 {
            end += 1;
        }
        if end - l >= edit_frames {
            matched[l..end].iter_mut().for_each(|m| *m = false);
        }
        l = end;
    }
    // Frames mapped outside the master do not match it.
    for (l, m) in matched.iter_mut().enumerate() {
        if path.master[l].1 >= path.master_frames {
            *m = false;
        }
    }
    let mut spans = Vec::new();
    let mut start = None;
    for l in 0..=frames {
        let cut = l < frames && path.master[l].1 - path.master[l].0 >= edit_frames;
        let here = matched.get(l).copied().unwrap_or(false);
        match (start, here) {
            (None, true) => start = Some(l),
            (Some(s), false) => {
                spans.push((s, l));
                start = None;
            }
            (Some(s), true) if cut => {
                spans.push((s, l + 1));
                start = Some(l);
            }
            _ => {}
        }
    }
    spans.retain(|&(s, e)| e - s >= edit_frames);
    spans
}
