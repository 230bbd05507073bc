//! Blind detection: find the block's position (and the leak's time and
//! frequency scale) from the keyed pilot, read the data cells, decode, verify.
//!
//! # The false-positive probability
//! For one synchronisation hypothesis, the pilot statistic is
//! `z = Σ c_i V_i / sqrt(Σ V_i²)`, where `V_i` sums the readings of block cell
//! `i` over the excerpt and `c_i` are its keyed ±1 chips. Without a mark under
//! this key the chips are independent of the audio, so by Hoeffding's
//! inequality `P(z ≥ t) ≤ exp(−t²/2)`, whatever the audio. A union bound over
//! the `H` hypotheses searched gives `H · exp(−z²/2)`. A payload is reported
//! only if its 24-bit tag also verifies, an independent event of probability
//! `2^-24` per decoding attempt. The reported p-value is the product of the
//! two bounds (each capped at 1).

use tracemark_dsp::resample;
use tracemark_keys::SecretKey;

use crate::features::{frame_cells, BandLevels};
use crate::layout::{
    Layout, Role, ANALYSIS_RATE, BANDS, BLOCK_CELLS, BLOCK_COLUMNS, BLOCK_FRAMES, BLOCK_S,
    FRAMES_PER_CELL, FRAME_HOP,
};
use crate::payload::{self, TAG_BITS};
use crate::{downmix, EngineError};

/// Pilot statistic a hypothesis needs before its data are decoded.
pub const MIN_PILOT_Z: f32 = 3.0;
/// Decoding attempts per searched stretch (best pilot peaks first).
pub const DECODE_ATTEMPTS: usize = 4;
/// Per-window statistic (all cells, known codeword) for a window to count as marked.
pub const SEGMENT_Z: f32 = 3.0;
/// Cell columns per segment window (2 s).
pub const SEGMENT_COLUMNS: usize = 50;
/// Shortest unexplained stretch searched again for a further payload, seconds.
pub const RESEARCH_S: f64 = 2.0 * BLOCK_S;

/// A time and frequency scale to try: a leak played `r` times faster has
/// `time_scale = 1/r` and `freq_scale = r`; a tempo change keeps `freq_scale = 1`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Scale {
    /// Leak duration / original duration.
    pub time_scale: f32,
    /// Leak frequency / original frequency.
    pub freq_scale: f32,
}

/// Which scales the detector searches.
#[derive(Clone, Debug)]
pub struct SearchGrid {
    /// Hypotheses, each searched over every block offset.
    pub scales: Vec<Scale>,
}

impl SearchGrid {
    /// Only the original scale: for copies whose speed was not changed.
    pub fn exact() -> Self {
        SearchGrid {
            scales: vec![Scale {
                time_scale: 1.0,
                freq_scale: 1.0,
            }],
        }
    }
}

impl Default for SearchGrid {
    fn default() -> Self {
        Self::exact()
    }
}

/// A time range of the input, seconds.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Segment {
    /// Start, seconds from the beginning of the input.
    pub start_s: f64,
    /// End, seconds from the beginning of the input.
    pub end_s: f64,
}

/// One payload found in the input.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Found {
    /// The verified 64-bit payload.
    pub payload: u64,
    /// Upper bound on the probability of a detection this strong without this
    /// mark (see the module documentation).
    pub p_value: f64,
    /// Pilot statistic of the winning hypothesis.
    pub pilot_z: f32,
    /// Scale of the winning hypothesis.
    pub scale: Scale,
    /// Stretches of the input that carry this payload.
    pub segments: Vec<Segment>,
}

/// Everything the detector found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Detection {
    /// Payloads found, strongest first.
    pub found: Vec<Found>,
    /// Duration of the input, seconds.
    pub duration_s: f64,
    /// Best pilot statistic seen (also reported when nothing verified).
    pub best_pilot_z: f32,
}

/// The cell readings of one frequency-scale hypothesis.
struct Readings {
    freq_scale: f32,
    /// Per analysis frame (a cell's first tile), per band: (value·weight, weight).
    cells: Vec<[(f32, f32); BANDS]>,
}

/// A synchronisation hypothesis: frame of a block start, and scale.
#[derive(Clone, Copy, Debug)]
struct Hypothesis {
    offset: usize,
    scale: Scale,
    readings: usize,
    z: f32,
}

/// Detects payloads in `channels` (planar, `rate` Hz) under `key`.
pub fn extract(
    channels: &[Vec<f32>],
    rate: u32,
    key: &SecretKey,
    grid: &SearchGrid,
) -> Result<Detection, EngineError> {
    crate::check_input(channels, rate)?;
    let duration_s = channels[0].len() as f64 / rate as f64;
    let analysis = resample(&downmix(channels), rate, ANALYSIS_RATE);
    let mut freq_scales: Vec<f32> = grid.scales.iter().map(|s| s.freq_scale).collect();
    freq_scales.sort_by(f32::total_cmp);
    freq_scales.dedup();
    let readings: Vec<Readings> = freq_scales
        .iter()
        .map(|&freq_scale| Readings {
            freq_scale,
            cells: frame_cells(&BandLevels::compute(&analysis, FRAME_HOP, freq_scale)),
        })
        .collect();
    let layout = Layout::new(key, payload::coded_bits());
    let frames = readings.first().map_or(0, |r| r.cells.len());
    let mut detector = Detector {
        key,
        layout: &layout,
        readings: &readings,
        grid,
        best_pilot_z: f32::NEG_INFINITY,
    };
    let mut found = Vec::new();
    detector.search(0, frames, 0, &mut found);
    found.sort_by(|a, b| a.p_value.total_cmp(&b.p_value));
    Ok(Detection {
        found,
        duration_s,
        best_pilot_z: if detector.best_pilot_z.is_finite() {
            detector.best_pilot_z
        } else {
            0.0
        },
    })
}

struct Detector<'a> {
    key: &'a SecretKey,
    layout: &'a Layout,
    readings: &'a [Readings],
    grid: &'a SearchGrid,
    best_pilot_z: f32,
}

/// Seconds at the start of analysis frame `frame`.
fn frame_s(frame: f64) -> f64 {
    frame * FRAME_HOP as f64 / ANALYSIS_RATE as f64
}

impl Detector<'_> {
    /// Frames of the cell columns of a hypothesis inside `[lo, hi)`, with their
    /// (euclidean) block column numbers.
    fn columns(
        offset: usize,
        time_scale: f32,
        lo: usize,
        hi: usize,
    ) -> impl Iterator<Item = (i64, usize)> {
        let step = FRAMES_PER_CELL as f64 * time_scale as f64;
        let first = ((lo as f64 - offset as f64) / step).ceil() as i64;
        (first..).map_while(move |m| {
            let frame = (offset as f64 + m as f64 * step).round();
            (frame < hi as f64).then_some((m, frame.max(lo as f64) as usize))
        })
    }

    /// Searches frames `[lo, hi)` for a payload; on success, searches again the
    /// long stretches its segments leave unexplained.
    fn search(&mut self, lo: usize, hi: usize, depth: usize, found: &mut Vec<Found>) {
        let min_frames = (BLOCK_S * ANALYSIS_RATE as f64 / FRAME_HOP as f64) as usize / 2;
        if hi <= lo || hi - lo < min_frames || depth > 3 {
            return;
        }
        let mut peaks: Vec<Hypothesis> = Vec::new();
        let mut hypotheses = 0usize;
        for (r, readings) in self.readings.iter().enumerate() {
            for scale in self
                .grid
                .scales
                .iter()
                .filter(|s| s.freq_scale == readings.freq_scale)
            {
                let span = (BLOCK_FRAMES as f64 * scale.time_scale as f64).ceil() as usize;
                hypotheses += span;
                let mut best: Vec<Hypothesis> = Vec::new();
                for offset in 0..span {
                    let z = self.pilot_z(&readings.cells, offset, scale.time_scale, lo, hi);
                    best.push(Hypothesis {
                        offset,
                        scale: *scale,
                        readings: r,
                        z,
                    });
                }
                // Keep local maxima only, so near-identical offsets do not crowd the list.
                best.sort_by(|a, b| b.z.total_cmp(&a.z));
                let mut kept: Vec<Hypothesis> = Vec::new();
                for h in best {
                    if kept.len() >= DECODE_ATTEMPTS {
                        break;
                    }
                    if kept
                        .iter()
                        .all(|k| k.offset.abs_diff(h.offset) > FRAMES_PER_CELL / 2)
                    {
                        kept.push(h);
                    }
                }
                peaks.extend(kept);
            }
        }
        peaks.sort_by(|a, b| b.z.total_cmp(&a.z));
        if let Some(top) = peaks.first() {
            self.best_pilot_z = self.best_pilot_z.max(top.z);
        }
        for (attempt, h) in peaks.iter().take(DECODE_ATTEMPTS).enumerate() {
            if h.z < MIN_PILOT_Z {
                break;
            }
            let cells = &self.readings[h.readings].cells;
            let soft = self.soft_bits(cells, h, lo, hi);
            let Some(payload) = payload::decode(self.key, &soft) else {
                continue;
            };
            let sync_bound = (hypotheses as f64 * (-(h.z as f64).powi(2) / 2.0).exp()).min(1.0);
            let tag_bound = ((attempt + 1) as f64 * 2f64.powi(-(TAG_BITS as i32))).min(1.0);
            let segments = self.segments(cells, h, payload, lo, hi);
            let covered = segments.clone();
            found.push(Found {
                payload,
                p_value: sync_bound * tag_bound,
                pilot_z: h.z,
                scale: h.scale,
                segments,
            });
            // Look for further payloads where this one is absent.
            let to_frame = |s: f64| (s * ANALYSIS_RATE as f64 / FRAME_HOP as f64).round() as usize;
            let mut cursor = lo;
            for seg in covered
                .iter()
                .map(|s| (to_frame(s.start_s), to_frame(s.end_s)))
            {
                if seg.0 > cursor && frame_s((seg.0 - cursor) as f64) >= RESEARCH_S {
                    self.search(cursor, seg.0.min(hi), depth + 1, found);
                }
                cursor = cursor.max(seg.1);
            }
            if hi > cursor && frame_s((hi - cursor) as f64) >= RESEARCH_S {
                self.search(cursor, hi, depth + 1, found);
            }
            return;
        }
    }

    /// Pilot statistic of one hypothesis over frames `[lo, hi)`.
    fn pilot_z(
        &self,
        cells: &[[(f32, f32); BANDS]],
        offset: usize,
        time_scale: f32,
        lo: usize,
        hi: usize,
    ) -> f32 {
        let mut sums = [0.0f32; BLOCK_CELLS];
        for (m, frame) in Self::columns(offset, time_scale, lo, hi) {
            let col = m.rem_euclid(BLOCK_COLUMNS as i64) as usize;
            let row = &cells[frame];
            for band in 0..BANDS {
                sums[col * BANDS + band] += row[band].0;
            }
        }
        let mut num = 0.0f32;
        let mut den = 0.0f32;
        for col in 0..BLOCK_COLUMNS {
            for band in 0..BANDS {
                let cell = self.layout.cell(col as i64, band);
                if cell.role == Role::Pilot {
                    let v = sums[col * BANDS + band];
                    num += cell.chip * v;
                    den += v * v;
                }
            }
        }
        if den > 0.0 {
            num / den.sqrt()
        } else {
            0.0
        }
    }

    /// Soft coded bits (positive = 1) under hypothesis `h`.
    fn soft_bits(
        &self,
        cells: &[[(f32, f32); BANDS]],
        h: &Hypothesis,
        lo: usize,
        hi: usize,
    ) -> Vec<f32> {
        let mut soft = vec![0.0f32; self.layout.coded_bits()];
        for (m, frame) in Self::columns(h.offset, h.scale.time_scale, lo, hi) {
            for (band, &(value, _)) in cells[frame].iter().enumerate() {
                let cell = self.layout.cell(m, band);
                if let Role::Data(j) = cell.role {
                    soft[j as usize] += cell.chip * value;
                }
            }
        }
        soft
    }

    /// Windows of [`SEGMENT_COLUMNS`] columns whose cells agree with `payload`'s
    /// codeword, merged into segments.
    fn segments(
        &self,
        cells: &[[(f32, f32); BANDS]],
        h: &Hypothesis,
        payload: u64,
        lo: usize,
        hi: usize,
    ) -> Vec<Segment> {
        let codeword = payload::codeword(self.key, payload);
        let columns: Vec<(i64, usize)> =
            Self::columns(h.offset, h.scale.time_scale, lo, hi).collect();
        let cell_frames = FRAMES_PER_CELL as f64 * h.scale.time_scale as f64;
        let mut segments: Vec<Segment> = Vec::new();
        for window in columns.chunks(SEGMENT_COLUMNS) {
            let mut num = 0.0f32;
            let mut den = 0.0f32;
            for &(m, frame) in window {
                for (band, &(value, _)) in cells[frame].iter().enumerate() {
                    let cell = self.layout.cell(m, band);
                    let sign = match cell.role {
                        Role::Pilot => 1.0,
                        Role::Data(j) => {
                            if codeword[j as usize] {
                                1.0
                            } else {
                                -1.0
                            }
                        }
                    };
                    num += cell.chip * sign * value;
                    den += value * value;
                }
            }
            let z = if den > 0.0 { num / den.sqrt() } else { 0.0 };
            if z < SEGMENT_Z {
                continue;
            }
            let start_s = frame_s(window[0].1 as f64);
            let end_s = frame_s(window[window.len() - 1].1 as f64 + cell_frames);
            match segments.last_mut() {
                Some(last) if start_s - last.end_s < 0.05 => last.end_s = end_s,
                _ => segments.push(Segment { start_s, end_s }),
            }
        }
        segments
    }
}
