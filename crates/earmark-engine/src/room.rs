//! The room a leak was played in, learnt from the leak and its master.
//!
//! Played through a loudspeaker and recorded across a room, the leak is, to
//! first order, the marked copy convolved with the room's impulse response
//! (and the loudspeaker's and microphone's), plus noise. The mark changes
//! the master by about −16 dB and at random, so the response that best maps
//! the unmarked master onto the leak, by least squares on the waveforms
//! (Wolff et al., EUSIPCO 2010, estimate the acoustic channel so), is the
//! room's. The master sent through it predicts the leak's unmarked part
//! sample by sample: what is left of the leak's tile levels after that
//! prediction is the mark, the noise and the mark's own reverberation,
//! whereas a model of levels alone leaves much of reverberation's swings
//! of the host between tiles, many dB, which bury the thinned mark.
//!
//! This needs the leak to play the master at its own speed (a registration
//! whose map has slope 1 and no frequency scale); elsewhere the level model
//! of `host` serves alone.

use earmark_dsp::{convolve, equaliser, fit_response, phase_delay};

use crate::layout::{ANALYSIS_RATE, TILE_S, TILE_SAMPLES};

/// Length of the response fitted after the direct sound, seconds. Longer
/// (0.6 s) read no better in a 0.7 s room: the tail beyond 0.3 s is quiet
/// and its taps add estimation noise.
pub const ROOM_RESPONSE_S: f64 = 0.3;
/// Part of the response before the registration's place for the direct
/// sound, seconds: the registration follows the envelope, which a room
/// drags late.
pub const ROOM_LEAD_S: f64 = 0.032;
/// White-noise loading of the fit: the share of the master's power added
/// to the normal equations' diagonal.
const ROOM_LOADING: f64 = 1e-3;
/// Largest drift of the registration's map from slope 1 that is taken for
/// the registration's error rather than a speed change (2 %): over a room,
/// registrations drifted by up to 1.6 %, 160 ms in 10 s, where the mark
/// fades over half a tile (10 ms). A true speed change that small is read
/// worse under this model than under the level model, which then serves.
const MAX_DRIFT: f64 = 0.02;
/// Largest frequency scale's departure from 1 taken for a registration's
/// error rather than a pitch change.
const MAX_FREQ_SCALE_ERROR: f32 = 0.02;
/// Largest step between neighbouring tiles' offsets within one stretch,
/// seconds; a larger one is a cut or a splice.
const MAX_OFFSET_STEP_S: f64 = 0.050;
/// Shortest stretch placed, seconds.
const MIN_STRETCH_S: f64 = 1.0;
/// Search either side of the offset the registration's drift allows, on
/// top of it, seconds.
const OFFSET_SEARCH_S: f64 = 0.050;
/// Length of the equaliser that undoes the fitted response, seconds, and
/// the delay it restores the direct sound at (half of it: the part of the
/// room that follows the direct sound is undone only with that much
/// anticipation).
pub const EQUALISER_S: f64 = 0.3;
/// The equaliser's delay, seconds.
const EQUALISER_DELAY_S: f64 = 0.15;
/// The equaliser's loading, as a share of the response's energy: how much
/// exactness it trades where the room has notches for less noise there.
const EQUALISER_LOADING: f64 = 1e-2;
/// Least master audio placed in the leak for a fit, seconds.
const MIN_PLACED_S: f64 = 4.0;

/// The room learnt from a leak: the leak with the room undone, its unmarked
/// part as the master predicts it (equalised alike), and the map it was
/// placed by.
pub(crate) struct RoomFit {
    /// The leak through the room's equaliser, the direct sound back in
    /// place: samples at [`ANALYSIS_RATE`], as many as the leak's.
    pub leak: Vec<f32>,
    /// The master through the fitted room and the same equaliser.
    pub predicted: Vec<f32>,
    /// Per master tile, leak time less master time, seconds (`None` where
    /// the tile is not placed).
    offsets: Vec<Option<f64>>,
}

impl RoomFit {
    /// Where master time `master_s` lies in the leak, seconds: the
    /// registration's map with each stretch played at the master's speed
    /// held at one offset (the median of the registration's over it).
    pub(crate) fn leak_time(&self, master_s: f64) -> Option<f64> {
        let tile = (master_s / TILE_S + 1e-9).floor();
        if tile < 0.0 {
            return None;
        }
        let offset = (*self.offsets.get(tile as usize)?)?;
        Some(master_s + offset)
    }
}

/// The room a leak was played in, fitted on the master placed in the leak
/// by `leak_time` (master seconds to leak seconds) where it plays at the
/// master's speed; `None` where it nowhere does or too little is placed.
pub(crate) fn fit_room(
    master: &[f32],
    leak: &[f32],
    leak_time: &impl Fn(f64) -> Option<f64>,
    freq_scale: f32,
) -> Option<RoomFit> {
    if (freq_scale - 1.0).abs() > MAX_FREQ_SCALE_ERROR {
        return None;
    }
    let offsets = stretch_offsets(master, leak, leak_time);
    let rate = ANALYSIS_RATE as f64;
    let lead = (ROOM_LEAD_S * rate).round() as i64;
    let taps = ((ROOM_RESPONSE_S + ROOM_LEAD_S) * rate).round() as usize;
    // The master tile by tile at its place in the leak, moved `lead`
    // samples early so that the fitted response is causal, with `taps`
    // samples of what played before the leak starts (it still rings in).
    let history = taps;
    let mut placed = vec![0.0f32; history + leak.len()];
    let mut placed_samples = 0usize;
    for (tile, offset) in offsets.iter().enumerate() {
        let Some(offset) = offset else { continue };
        let from = tile as f64 * TILE_S + offset;
        let at = (from * rate).round() as i64 - lead + history as i64;
        for (i, &sample) in master[tile * TILE_SAMPLES..(tile + 1) * TILE_SAMPLES]
            .iter()
            .enumerate()
        {
            let n = at + i as i64;
            if n >= 0 && (n as usize) < placed.len() {
                placed[n as usize] = sample;
                placed_samples += 1;
            }
        }
    }
    if (placed_samples as f64) < MIN_PLACED_S * rate {
        return None;
    }
    let response = fit_response(&placed, leak, history, taps, ROOM_LOADING)?;
    // Reverberation smears each tile's mark into the tiles after it, where
    // it reads as noise; undone, the mark's tile differences keep more of
    // their depth (the room chains: 19 → 23 of 36 leaks of 10 s named).
    let delay = (EQUALISER_DELAY_S * rate).round() as usize;
    let inverse = equaliser(
        &response,
        (EQUALISER_S * rate).round() as usize,
        delay,
        EQUALISER_LOADING,
    )?;
    // The equalised signals, `delay` late against the placed master, which
    // is itself `lead` early: taken from `delay − lead` on, in leak time.
    let align = delay.saturating_sub(lead as usize);
    let window = |signal: &[f32], from: usize| -> Vec<f32> {
        (0..leak.len())
            .map(|n| signal.get(from + n).copied().unwrap_or(0.0))
            .collect()
    };
    let predicted = convolve(&convolve(&placed, &response), &inverse);
    Some(RoomFit {
        leak: window(&convolve(leak, &inverse), align),
        predicted: window(&predicted, history + align),
        offsets,
    })
}

/// Per master tile, its leak time less its master time, held constant over
/// each stretch the registration plays at about the master's speed (within
/// [`MAX_DRIFT`]) for at least [`MIN_STRETCH_S`]: the offset at which the
/// master's waveform best matches the leak's by [`phase_delay`], searched
/// around the registration's; `None` elsewhere.
fn stretch_offsets(
    master: &[f32],
    leak: &[f32],
    leak_time: &impl Fn(f64) -> Option<f64>,
) -> Vec<Option<f64>> {
    let tiles = master.len() / TILE_SAMPLES;
    let rate = ANALYSIS_RATE as f64;
    let raw: Vec<Option<f64>> = (0..tiles)
        .map(|tile| {
            let start_s = tile as f64 * TILE_S;
            Some(leak_time(start_s)? - start_s)
        })
        .collect();
    let mut offsets = vec![None; tiles];
    let min_tiles = (MIN_STRETCH_S / TILE_S).round() as usize;
    let mut tile = 0;
    while tile < tiles {
        let Some(first) = raw[tile] else {
            tile += 1;
            continue;
        };
        let mut end = tile + 1;
        let mut last = first;
        while let Some(Some(next)) = raw.get(end) {
            if (next - last).abs() > MAX_OFFSET_STEP_S {
                break;
            }
            last = *next;
            end += 1;
        }
        let duration_s = (end - tile) as f64 * TILE_S;
        let drift_s = (last - first).abs();
        if end - tile >= min_tiles && drift_s <= MAX_DRIFT * duration_s {
            let mut stretch: Vec<f64> = raw[tile..end].iter().flatten().copied().collect();
            let middle = stretch.len() / 2;
            let median = *stretch.select_nth_unstable_by(middle, f64::total_cmp).1;
            // The leak from `margin` before where the registration puts the
            // stretch to `margin` after its end.
            let margin_s = drift_s + OFFSET_SEARCH_S;
            let leak_from = ((tile as f64 * TILE_S + median - margin_s) * rate).round() as i64;
            let leak_to = ((end as f64 * TILE_S + median + margin_s) * rate).round() as i64;
            // Silence where that runs past the leak's ends.
            let signal: Vec<f32> = (leak_from..leak_to)
                .map(|n| {
                    usize::try_from(n)
                        .ok()
                        .and_then(|n| leak.get(n))
                        .copied()
                        .unwrap_or(0.0)
                })
                .collect();
            let reference = &master[tile * TILE_SAMPLES..end * TILE_SAMPLES];
            let max_lag = (2.0 * margin_s * rate).ceil() as usize + 1;
            if let Some(lag) = phase_delay(reference, &signal, max_lag) {
                let offset = (leak_from as f64 + lag as f64) / rate - tile as f64 * TILE_S;
                if (offset - median).abs() <= margin_s + 1.0 / rate {
                    offsets[tile..end].fill(Some(offset));
                }
            }
        }
        tile = end;
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reverberant_leak_is_predicted_from_its_master() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/speech_en_f_8k_allison_demo-congrats.wav");
        let audio = earmark_audio_io::read(&path).expect("fixture");
        let master = earmark_dsp::downmix(&audio.channels);
        assert_eq!(audio.rate, ANALYSIS_RATE);
        let rate = ANALYSIS_RATE as usize;
        // The direct sound 3 ms late, then a decaying tail of a fixed
        // pseudo-random sign pattern; the leak is 8 s from 2 s in.
        let response: Vec<f32> = (0..1600usize)
            .map(|k| match k {
                24 => 1.0,
                k if k > 24 => {
                    let sign = if (k * 7919) % 13 < 6 { -1.0 } else { 1.0 };
                    0.3 * sign * (-(k as f32) / 400.0).exp()
                }
                _ => 0.0,
            })
            .collect();
        let through = convolve(&master, &response);
        let leak: Vec<f32> = through[2 * rate..10 * rate].to_vec();
        // A registration 0.1 % fast is taken for one at the master's speed.
        let fit = fit_room(&master, &leak, &|t| Some(1.001 * (t - 2.0)), 1.0).expect("placed");
        // Placed by the direct sound, 3 ms late.
        assert!((fit.leak_time(6.0).expect("placed") - 4.003).abs() < 0.0002);
        // The leak and the prediction, both equalised, agree away from the
        // leak's ends (where the equaliser lacks the leak's past or future).
        let inside = rate / 2..leak.len() - rate / 2;
        let error: f32 = fit.leak[inside.clone()]
            .iter()
            .zip(&fit.predicted[inside.clone()])
            .map(|(a, b)| (a - b).powi(2))
            .sum();
        let power: f32 = fit.leak[inside].iter().map(|a| a * a).sum();
        // Within −20 dB (the equaliser lifts the fit's error where the
        // response has notches): the mark, at about −16 dB, stands above it.
        assert!(error < 1e-2 * power, "relative error {}", error / power);
        // A speed change beyond a registration's error is not placed.
        assert!(fit_room(&master, &leak, &|t| Some(1.03 * t - 2.0), 1.0).is_none());
    }
}
