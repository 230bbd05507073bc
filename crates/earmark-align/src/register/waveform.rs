//! Registration by waveform, where the envelopes fail: across a room.
//!
//! Reverberation fills a recording's pauses and smears its band levels over
//! hundreds of milliseconds, so the envelope correlation and the warping
//! path of the other steps can match a re-recorded leak poorly or not at all
//! (measured: of 12 leaks of 10 s re-recorded in a 0.5 s room, 4 registered
//! over less than half their length). The waveforms still agree at the
//! direct sound: the phase-transform cross-correlation (GCC-PHAT) of the
//! whole leak against the whole master peaks where the leak starts in it.
//! Such a registration is one stretch at the master's own speed; it is
//! offered only when the envelope's matched less than half of the leak, and
//! taken when it matches more.

use earmark_dsp::phase_correlation;

use super::{edits, Registration, Stretch, MIN_LEAK_S};
use crate::RATE;

/// The peak must stand this many times above the highest correlation
/// elsewhere (beyond its reflections, [`earmark_dsp::PEAK_HALF_WIDTH`] samples).
pub const WAVEFORM_PEAK_RATIO: f64 = 2.0;
/// Longest master searched by waveform, seconds (its FFT grows with it).
pub const WAVEFORM_MAX_MASTER_S: f64 = 1200.0;

/// The leak placed in the master by the waveforms' phase correlation, as
/// one stretch at the master's speed; `None` without a clear peak.
pub(super) fn waveform_registration(master: &[f32], leak: &[f32]) -> Option<Registration> {
    let rate = RATE as f64;
    let (master_s, leak_s) = (master.len() as f64 / rate, leak.len() as f64 / rate);
    if master_s > WAVEFORM_MAX_MASTER_S || leak_s < MIN_LEAK_S {
        return None;
    }
    let peak = phase_correlation(master, leak, master.len() + leak.len())?;
    if peak.height < WAVEFORM_PEAK_RATIO * peak.runner_up {
        return None;
    }
    // leak[n] ≈ master[n − lag]: leak time t plays master time t + start.
    let start = -(peak.lag as f64) / rate;
    let leak_start_s = (-start).max(0.0);
    let leak_end_s = leak_s.min(master_s - start);
    if leak_end_s - leak_start_s < MIN_LEAK_S {
        return None;
    }
    let stretches = vec![Stretch {
        leak_start_s,
        leak_end_s,
        master_start_s: leak_start_s + start,
        master_end_s: leak_end_s + start,
        anchors: vec![
            (leak_start_s, leak_start_s + start),
            (leak_end_s, leak_end_s + start),
        ],
    }];
    let (inserted, removed) = edits(&stretches, leak_s);
    Some(Registration {
        time_scale: 1.0,
        freq_scale: 1.0,
        correlation: peak.height as f32,
        stretches,
        inserted,
        removed,
        channel_db: Vec::new(),
        gain_db: 0.0,
        leak_s,
    })
}
