//! Stage 4, fine anchors: lags of best correlation every anchor interval,
//! cleaned of jumps and outliers, and the channel's response.

use super::*;

/// Per-band level difference leak − master over matched, loud frames.
pub(super) fn channel_response(
    master: &Levels,
    leak: &Levels,
    path: &Path,
    spans: &[(usize, usize)],
) -> (Vec<(f32, f32)>, f32) {
    let (master_loud, leak_loud) = (loud_frames(master), loud_frames(leak));
    let mut per_band: Vec<Vec<f32>> = vec![Vec::new(); BANDS];
    for &(s, e) in spans {
        for (l, &loud) in leak_loud.iter().enumerate().take(e).skip(s) {
            let j = path.master[l].0;
            if j >= master.frames || !master_loud[j] || !loud {
                continue;
            }
            for (b, values) in per_band.iter_mut().enumerate() {
                values.push(leak.frame(l)[b] - master.frame(j)[b]);
            }
        }
    }
    let medians: Vec<f32> = per_band
        .iter_mut()
        .map(|v| {
            if v.is_empty() {
                return 0.0;
            }
            let mid = v.len() / 2;
            *v.select_nth_unstable_by(mid, f32::total_cmp).1
        })
        .collect();
    let mut sorted = medians.clone();
    sorted.sort_by(f32::total_cmp);
    let gain = sorted[BANDS / 2];
    let response = medians
        .iter()
        .enumerate()
        .map(|(b, &m)| {
            let (lo, hi) = band_edges_hz(b);
            ((lo * hi).sqrt(), m - gain)
        })
        .collect();
    (response, gain)
}

/// Fine anchors along each matched span, and the stretches they define.
pub(super) fn fine_stretches(
    master: &[f32],
    leak: &[f32],
    freq_scale: f32,
    path: &Path,
    spans: &[(usize, usize)],
    features: &Features,
) -> Vec<Stretch> {
    if spans.is_empty() {
        return Vec::new();
    }
    let ratio = (HOP / FINE_HOP) as isize;
    let fine_s = FINE_HOP as f64 / RATE as f64;
    let coarse_s = HOP as f64 / RATE as f64;
    let leak_fine = Levels::compute(leak, FINE_HOP, freq_scale);
    // Only the master's matched region is analysed finely.
    let margin = (RATE as usize / FINE_HOP) as isize;
    let first_j = spans
        .iter()
        .map(|&(s, _)| path.master[s].0)
        .min()
        .unwrap_or(0) as isize;
    let last_j = spans
        .iter()
        .map(|&(_, e)| path.master[e - 1].1)
        .max()
        .unwrap_or(0) as isize;
    let fine_lo = (first_j * ratio - margin).max(0) as usize;
    let fine_hi_sample =
        (((last_j + 1) * ratio + margin) as usize * FINE_HOP + spectrum::WINDOW).min(master.len());
    let master_fine = Levels::compute(&master[fine_lo * FINE_HOP..fine_hi_sample], FINE_HOP, 1.0);
    let step = (ANCHOR_S / coarse_s).round() as usize;
    let mut stretches: Vec<Stretch> = Vec::new();
    let mut previous_end = 0usize;
    for &(s, e) in spans {
        let slope_at = |l: usize| -> f64 {
            let (a, b) = (l.saturating_sub(25).max(s), (l + 25).min(e - 1));
            if b > a {
                ((path.master[b].0 as f64 - path.master[a].0 as f64) / (b - a) as f64)
                    .clamp(MIN_SCALE, MAX_SCALE)
            } else {
                1.0
            }
        };
        let mut anchors = Vec::new();
        let mut l = s + step / 2;
        while l < e {
            let slope = slope_at(l);
            let leak_frame = l as isize * ratio;
            let master_frame = path.master[l].0 as isize * ratio - fine_lo as isize;
            if let Some(lag) = best_lag(&leak_fine, &master_fine, leak_frame, master_frame, slope) {
                anchors.push((
                    leak_frame as f64 * fine_s,
                    (master_frame as f64 + lag + fine_lo as f64) * fine_s,
                ));
            }
            l += step;
        }
        let fallback = || -> Vec<(f64, f64)> {
            // Too few fine anchors: the warping path itself, at 20 ms.
            (s..e)
                .step_by(step.max(1))
                .map(|l| (l as f64 * coarse_s, path.master[l].0 as f64 * coarse_s))
                .collect()
        };
        let mut groups: Vec<Vec<(f64, f64)>> = split_at_jumps(anchors)
            .into_iter()
            .map(drop_outliers)
            .filter(|g| g.len() >= 3)
            .collect();
        if groups.is_empty() {
            // The path's own anchors can sit mid-jump where a cut falls near
            // the span's end; those go as fine ones do.
            let path_anchors = fallback();
            let kept = drop_outliers(path_anchors.clone());
            groups.push(if kept.len() >= 2 { kept } else { path_anchors });
        }
        // Each group's initial bounds: the span's ends, or midway between
        // neighbouring groups' anchors.
        let frame_of = |t: f64| (t / coarse_s).round() as usize;
        let bounds: Vec<(usize, usize)> = (0..groups.len())
            .map(|g| {
                let lo = if g == 0 {
                    s
                } else {
                    frame_of(0.5 * (groups[g - 1].last().expect("non-empty").0 + groups[g][0].0))
                };
                let hi = if g + 1 == groups.len() {
                    e
                } else {
                    frame_of(0.5 * (groups[g].last().expect("non-empty").0 + groups[g + 1][0].0))
                };
                (lo, hi.max(lo + 1))
            })
            .collect();
        for (anchors, (s, e)) in groups.into_iter().zip(bounds) {
            let master_at = |x: f64| interpolate(&anchors, x, |a| a.0, |a| a.1);
            let (s, e) = refine_bounds(s, e, |l| {
                let j = (master_at(l as f64 * coarse_s) / coarse_s).round() as isize;
                features.cost(l, j).map(|c| path.threshold - c)
            });
            let mut s = s.max(previous_end);
            // A stretch that would replay a little of the master its
            // predecessor already played has grown into foreign audio (whose
            // pauses match the master's): it starts where the master moves on.
            if let Some(previous) = stretches.last() {
                let replayed = previous.master_end_s - master_at(s as f64 * coarse_s);
                if replayed > 0.0 && replayed < OVERLAP_TRIM_S {
                    while s < e && master_at(s as f64 * coarse_s) < previous.master_end_s {
                        s += 1;
                    }
                }
            }
            if e <= s {
                continue;
            }
            previous_end = e;
            let leak_start_s = s as f64 * coarse_s;
            let leak_end_s =
                ((e - 1) as f64 * coarse_s + coarse_s).min(leak.len() as f64 / RATE as f64);
            let master_start_s = master_at(leak_start_s).max(0.0);
            let master_end_s = master_at(leak_end_s).min(master.len() as f64 / RATE as f64);
            // A stretch must be long enough to be an edit's evidence and play
            // the master at a plausible rate.
            let rate = (master_end_s - master_start_s) / (leak_end_s - leak_start_s).max(1e-9);
            if leak_end_s - leak_start_s >= EDIT_MIN_S && (0.75..=1.45).contains(&rate) {
                stretches.push(Stretch {
                    leak_start_s,
                    leak_end_s,
                    master_start_s,
                    master_end_s,
                    anchors,
                });
            }
        }
    }
    stretches
}

/// The lag (fine frames, fractional) at which the master best matches the
/// leak around `leak_frame`, searched ±[`FINE_MAX_LAG`] around `master_frame`,
/// the master read at `slope` master frames per leak frame.
pub(super) fn best_lag(
    leak: &Levels,
    master: &Levels,
    leak_frame: isize,
    master_frame: isize,
    slope: f64,
) -> Option<f64> {
    let span = -FINE_HALF_WINDOW..=FINE_HALF_WINDOW;
    let leak_rows: Vec<&[f32]> = span
        .clone()
        .filter_map(|i| {
            let f = leak_frame + i;
            (f >= 0 && (f as usize) < leak.frames).then(|| leak.frame(f as usize))
        })
        .collect();
    if leak_rows.len() < FINE_HALF_WINDOW as usize {
        return None;
    }
    let a = centred(&leak_rows);
    let mut scores = Vec::with_capacity((2 * FINE_MAX_LAG + 1) as usize);
    for lag in -FINE_MAX_LAG..=FINE_MAX_LAG {
        let rows: Option<Vec<&[f32]>> = span
            .clone()
            .filter(|i| {
                let f = leak_frame + i;
                f >= 0 && (f as usize) < leak.frames
            })
            .map(|i| {
                let f = master_frame + lag + (i as f64 * slope).round() as isize;
                (f >= 0 && (f as usize) < master.frames).then(|| master.frame(f as usize))
            })
            .collect();
        let Some(rows) = rows else {
            scores.push(f32::NEG_INFINITY);
            continue;
        };
        let b = centred(&rows);
        let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
        for (x, y) in a.iter().zip(&b) {
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        scores.push(if aa > 0.0 && bb > 0.0 {
            ab / (aa * bb).sqrt()
        } else {
            0.0
        });
    }
    let (best, &peak) = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    if peak < FINE_MIN_CORRELATION || best == 0 || best == scores.len() - 1 {
        return None;
    }
    let (x, y, z) = (scores[best - 1], peak, scores[best + 1]);
    let curvature = x - 2.0 * y + z;
    let offset = if curvature < 0.0 {
        0.5 * (x - z) / curvature
    } else {
        0.0
    };
    Some((best as isize - FINE_MAX_LAG) as f64 + offset as f64)
}

/// Rows of band levels clamped to their range and with per-band means
/// removed, flattened.
pub(super) fn centred(rows: &[&[f32]]) -> Vec<f32> {
    let top = rows
        .iter()
        .flat_map(|r| r.iter())
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let floor = top - DYNAMIC_RANGE_DB;
    let mut means = [0.0f32; BANDS];
    for r in rows {
        for (m, &v) in means.iter_mut().zip(r.iter()) {
            *m += v.max(floor);
        }
    }
    means.iter_mut().for_each(|m| *m /= rows.len() as f32);
    rows.iter()
        .flat_map(|r| r.iter().zip(&means).map(move |(&v, m)| v.max(floor) - m))
        .collect()
}

/// Largest change of offset (master − leak time) between consecutive anchors
/// of one stretch, seconds; a larger one is a cut or an insertion.
pub(super) const JUMP_S: f64 = 0.25;

/// Splits anchors where the offset jumps by more than [`JUMP_S`] and the
/// next anchor confirms the new offset (a lone outlier is no jump).
pub(super) fn split_at_jumps(anchors: Vec<(f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    let offset = |a: &(f64, f64)| a.1 - a.0;
    let mut groups: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for k in 0..anchors.len() {
        let group = groups.last_mut().expect("one group");
        // The group's offset: the median of its last three anchors, so that
        // a lone outlier is not taken for the group.
        let mut recent: Vec<f64> = group.iter().rev().take(3).map(offset).collect();
        recent.sort_by(f64::total_cmp);
        let jumps = recent.get(recent.len() / 2).is_some_and(|&reference| {
            let step = offset(&anchors[k]) - reference;
            step.abs() > JUMP_S
                && anchors
                    .get(k + 1)
                    .is_some_and(|next| (offset(next) - offset(&anchors[k])).abs() < JUMP_S)
        });
        if jumps {
            groups.push(vec![anchors[k]]);
        } else {
            group.push(anchors[k]);
        }
    }
    groups
}

/// Drops anchors far from the line through their neighbours, and any that
/// would make the map run backwards.
pub(super) fn drop_outliers(anchors: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let n = anchors.len();
    // The stretch's slope: the median of consecutive anchors' slopes.
    let mut slopes: Vec<f64> = anchors
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| (w[1].1 - w[0].1) / (w[1].0 - w[0].0))
        .collect();
    slopes.sort_by(f64::total_cmp);
    let slope = slopes.get(slopes.len() / 2).copied().unwrap_or(1.0);
    let kept: Vec<(f64, f64)> = (0..n)
        .filter(|&k| {
            let mut predictions: Vec<f64> = (k.saturating_sub(3)..(k + 4).min(n))
                .filter(|&i| i != k)
                .map(|i| anchors[i].1 + slope * (anchors[k].0 - anchors[i].0))
                .collect();
            if predictions.len() < 2 {
                return true;
            }
            predictions.sort_by(f64::total_cmp);
            let median = predictions[predictions.len() / 2];
            // Local tempo may wander a few per cent from the stretch's slope.
            let reach = 0.03 * 3.0 * ANCHOR_S;
            (anchors[k].1 - median).abs() <= FINE_OUTLIER_S + reach
        })
        .map(|k| anchors[k])
        .collect();
    let mut monotone: Vec<(f64, f64)> = Vec::with_capacity(kept.len());
    for a in kept {
        if monotone
            .last()
            .is_none_or(|last| a.1 > last.1 && a.0 > last.0)
        {
            monotone.push(a);
        }
    }
    monotone
}
