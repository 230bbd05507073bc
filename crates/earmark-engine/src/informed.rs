//! Informed reading: the mark read as the difference between a leak and the
//! unmarked master it was registered against.
//!
//! A blind reading of a cell is the host's own energy change between the
//! cell's two tiles plus the mark; the host part is noise, and after a speech
//! codec it swamps the mark. With the master at hand the host part is known:
//! each cell reads as (leak tile difference) − (master tile difference), in
//! dB. What remains is the mark, the channel's distortion of it and the
//! channel's noise. Tile differences within one band are untouched by a
//! static channel response and gain, so nothing needs equalising; a change
//! common to all bands (an envelope mismatch from imperfect alignment) is
//! removed as the blind detector removes it.
//!
//! Where each master tile lies in the leak comes from a registration the
//! caller supplies (`earmark-align` computes one) as a map from master
//! time to leak time, plus the leak's frequency scale. Because the master
//! carries its block grid from its first sample, every cell's role, block
//! and fingerprint position is known without any synchronisation search.

use earmark_keys::SecretKey;

use crate::detect::{join_segments, FingerprintReading, Segment};
use crate::features::{BandLevels, SILENCE_FLOOR_DB};
use crate::host::HostModel;
use crate::layout::{
    Layout, Role, ANALYSIS_RATE, BANDS, BLOCK_COLUMNS, FRAME_HOP, TILE_S, TILE_SAMPLES,
};
use crate::payload;
use crate::room;

/// Residual cell readings are clipped to ±this many dB: a transient the
/// alignment missed must not outvote many small, faithful cells.
pub const RESIDUAL_CLIP_DB: f32 = 4.0;
/// Master bands more than this many dB below the loudest band of the same
/// cell column are skipped: a channel leaves them to its noise.
pub const INFORMED_RANGE_DB: f32 = 30.0;
/// Leak bands less than this many dB above the leak's own floor in that band
/// are skipped. Cells just above it are kept and weighted by what their
/// fidelity class measures (the class includes the leak's clearance above
/// its floor); 6 dB without that class dimension named fewer recipients
/// after Opus 6k (19 → 22 of 30) and scored lower on every channel tried.
pub const ABOVE_FLOOR_DB: f32 = 4.5;
/// Leak bands less than this many dB above their floor are left out of the
/// channel fit: there the background, not the host, sets the level.
pub const HOST_FIT_ABOVE_FLOOR_DB: f32 = 6.0;
/// Length of the windows whose pilot statistic marks a stretch as carrying
/// the mark, seconds, and their hop.
pub const SEGMENT_WINDOW_S: f64 = 4.0;
/// Hop between those windows, seconds.
pub const SEGMENT_HOP_S: f64 = 1.0;
/// Pilot statistic a window needs to count as carrying the mark.
pub const INFORMED_SEGMENT_Z: f32 = 4.0;

/// Largest constant correction searched around the registration's map,
/// seconds: the envelope a registration follows can sit this far from the
/// tile grid the mark lives on (over the air the map sat 4–8 ms late).
pub const SHIFT_SEARCH_S: f64 = 0.016;
/// Step of that search, seconds: a tenth of a tile, where the pilot's
/// response to misplacement is still flat.
pub const SHIFT_STEP_S: f64 = 0.002;
/// Half-width of the window each searched shift's statistic is averaged
/// over, seconds.
pub const SHIFT_SMOOTH_S: f64 = 0.004;
/// Gain in the known cells' smoothed statistic from which the moved map
/// replaces the registration's for the whole reading. Over Opus 6k, where
/// the registration was right, noise alone gained up to 1.63; over the air,
/// gains of 2 and more came with identifier statistics up by 3–5.
pub const SHIFT_TRUST_Z: f64 = 1.75;

/// Host change (dB between a cell's tiles) from which a cell counts as
/// changing fast: a small misalignment then leaves a large residual.
pub const HOST_CHANGE_DB: f32 = 3.0;

/// Shortest part of a leak whose identifier is decoded on its own, seconds
/// (one block).
pub const MIN_PART_S: f64 = 4.0;
/// Pilot statistic above which cells are weighted by their class's measured
/// fidelity (and then only where weights fitted on half the pilot read the
/// other half better than the host-change rule does).
pub const CLASS_WEIGHT_MIN_Z: f32 = 4.0;
/// Band groups of the fidelity classes.
const CLASS_BAND_GROUPS: usize = 6;
/// Fidelity classes: band group × level below the loudest band (3) × host
/// change (2) × the leak's clearance above its floor (3: under 10 dB,
/// 10–18 dB, more).
const CLASSES: usize = CLASS_BAND_GROUPS * 3 * 2 * 3;
/// Known cells' worth of the overall figures each class is shrunk toward.
const CLASS_SHRINK_CELLS: f64 = 30.0;

/// One cell seen in both master and leak.
struct Observed {
    column: u32,
    band: u8,
    /// Leak time of the cell's first tile, seconds.
    leak_s: f32,
    /// Leak level difference between the cell's tiles, dB.
    leak_diff: f32,
    /// Master level difference between the cell's tiles, dB.
    master_diff: f32,
    /// The leak's level difference the host alone explains (channel model), dB.
    predicted_diff: f32,
    /// How far the master's quieter tile sits below the column's loudest band, dB.
    below_loudest_db: f32,
    /// How far the leak's quieter tile stands above the leak's floor in that band, dB.
    above_floor_db: f32,
}

/// One cell as the informed reading saw it.
#[derive(Clone, Copy, Debug)]
pub struct CellReading {
    /// Global cell column of the master (tile index / 2).
    pub column: u32,
    /// Band index.
    pub band: u8,
    /// Residual tile difference, leak minus what the host explains, dB
    /// (common change removed, clipped).
    pub residual_db: f32,
    /// Weight given to the cell.
    pub weight: f32,
}

/// What an informed reading found.
#[derive(Clone, Debug, Default)]
pub struct InformedReading {
    /// The fingerprint positions read, summed over repeats.
    pub fingerprint: FingerprintReading,
    /// Pilot statistic over the whole leak: a standard normal without a mark
    /// when read on the registration's own map. A moved map (`shift_gain_z`
    /// above 0) was chosen among a few dozen for raising it, so there it
    /// runs higher; no accusation rests on it.
    pub pilot_z: f32,
    /// Cells read (active in both master and leak).
    pub cells_read: usize,
    /// Constant correction added to the registration's map before reading,
    /// seconds (leak time).
    pub shift_s: f64,
    /// What that correction gained: the known cells' statistic, averaged
    /// over the smoothing window, at the chosen shift less at none.
    pub shift_gain_z: f64,
    /// The host was modelled as the room the leak was played in, learnt
    /// from the waveforms, which also placed the leak by the master's direct
    /// sound: `shift_s` then corrects that placement, not the registration's.
    pub room: bool,
    /// Every cell read: its residual and weight (for diagnostics: how a
    /// channel treats the mark, cell by cell).
    pub cells: Vec<CellReading>,
    /// Stretches of the leak whose pilot reads clearly, seconds.
    pub segments: Vec<Segment>,
    /// Soft coded bits of the identifier (positive = 1), summed over the
    /// stretch each covers: the whole leak first (its segments being
    /// [`InformedReading::segments`], or the whole leak), then each part
    /// asked for. Scored against known recipients' payloads with
    /// [`KnownPayloads`]. Where the registration's map was also read moved
    /// (see [`SHIFT_TRUST_Z`]), the second reading's entries are included:
    /// its whole leak after the first's, its parts after the first's.
    pub soft_bits: Vec<(Vec<Segment>, Vec<f32>)>,
    /// How many entries at the head of `soft_bits` cover the whole leak
    /// rather than one part of it.
    pub whole_entries: usize,
}

/// A known payload's correlation with soft coded bits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PayloadScore {
    /// The payload.
    pub payload: u64,
    /// `Σ soft · (2·bit − 1)` over its coded bits.
    pub score: f64,
}

/// Known recipients' payloads with their coded bits, computed once and
/// scored against any number of soft-bit vectors.
///
/// This is the informed identifier test: the recipients of a work are known,
/// so instead of decoding the whole payload (which needs every bit) each
/// recipient's own codeword is correlated with the readings; [`payload_tail`]
/// bounds how high an innocent's score can be.
#[derive(Clone, Debug)]
pub struct KnownPayloads {
    payloads: Vec<u64>,
    codewords: Vec<Vec<bool>>,
}

impl KnownPayloads {
    /// The payloads (duplicates dropped) and their codewords under `key`.
    pub fn new(key: &SecretKey, payloads: &[u64]) -> Self {
        let mut payloads = payloads.to_vec();
        payloads.sort_unstable();
        payloads.dedup();
        let codewords = payloads
            .iter()
            .map(|&p| payload::codeword(key, p))
            .collect();
        KnownPayloads {
            payloads,
            codewords,
        }
    }

    /// Number of distinct payloads: the union bound's factor.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// Every payload's score against `soft` (coded bits, positive = 1), best first.
    pub fn scores(&self, soft: &[f32]) -> Vec<PayloadScore> {
        let mut scores: Vec<PayloadScore> = self
            .payloads
            .iter()
            .zip(&self.codewords)
            .map(|(&payload, codeword)| PayloadScore {
                payload,
                score: codeword
                    .iter()
                    .zip(soft)
                    .map(|(&bit, &v)| if bit { v as f64 } else { -(v as f64) })
                    .sum(),
            })
            .collect();
        scores.sort_by(|a, b| b.score.total_cmp(&a.score));
        scores
    }
}

/// Upper bound on the probability that a payload the readings do not depend
/// on scores at least `score` against `soft`. An innocent's payload is sealed
/// by a keyed cipher and tagged by a keyed MAC, so it is a uniformly random
/// word independent of the readings: the bound is Chernoff's with the exact
/// moment-generating function over the code's trellis
/// (`earmark_fec::random_codeword_tail`). Multiply by the number of
/// payloads scored for a union bound.
pub fn payload_tail(soft: &[f32], score: f64) -> f64 {
    earmark_fec::random_codeword_tail(soft, payload::INFO_BITS, score)
}

/// Reads the mark from `leak` given its unmarked `master` (both mono at
/// [`ANALYSIS_RATE`]), `leak_time` mapping master seconds to leak seconds
/// (`None` where the leak does not play the master) and the leak's
/// frequency scale (leak Hz per master Hz).
///
/// `parts` are stretches of the leak (seconds) whose identifier bits are
/// also summed on their own, such as the stretches a registration matched
/// (copies spliced together are then read piece by piece); parts shorter
/// than [`MIN_PART_S`] are skipped. The identifier is not decoded here: the
/// recipients are known wherever a master is, and [`KnownPayloads`] tests
/// each one's codeword against the soft bits, which needs far less signal
/// than getting all 88 bits right.
pub fn read_informed(
    key: &SecretKey,
    master: &[f32],
    leak: &[f32],
    leak_time: impl Fn(f64) -> Option<f64>,
    freq_scale: f32,
    parts: &[Segment],
) -> InformedReading {
    let layout = Layout::new(key, payload::coded_bits());
    let master_levels = BandLevels::compute(master, TILE_SAMPLES, 1.0);
    let leak_levels = BandLevels::compute(leak, FRAME_HOP, freq_scale);
    if leak_levels.frames < 2 {
        return InformedReading::default();
    }
    let floors = band_floors(&leak_levels);
    let leak_at = |seconds: f64, band: usize| level_at(&leak_levels, seconds, band);
    let parts: Vec<Segment> = parts
        .iter()
        .copied()
        .filter(|p| p.end_s - p.start_s >= MIN_PART_S)
        .collect();
    // Per leak-time window: pilot sum and energy, for the segments.
    let window_count =
        (leak.len() as f64 / ANALYSIS_RATE as f64 / SEGMENT_HOP_S).ceil() as usize + 1;
    // The channel's effect on the host, learnt from the recording itself:
    // each band's leak level as a linear function of the master's levels
    // around it (two tiles before to one after, the neighbouring bands), by
    // least squares. A codec that smooths energy changes, a room that
    // smears them into later tiles and a filter that tilts the spectrum are
    // all (to first order) such functions. The mark is independent of the
    // master's levels, so the fit does not learn it. These are the leak's
    // levels at each master tile, the map moved by `shift` seconds.
    let leak_rows = |shift: f64| -> Vec<Option<[f32; BANDS]>> {
        (0..master_levels.frames)
            .map(|t| {
                let p = leak_time(t as f64 * TILE_S)? + shift;
                let mut row = [0.0f32; BANDS];
                for (band, v) in row.iter_mut().enumerate() {
                    *v = leak_at(p, band)?;
                }
                Some(row)
            })
            .collect()
    };
    // Each active cell's tile differences in leak and master, the map moved
    // by `shift` seconds, with what `prediction` says the host alone makes
    // of them.
    let observe = |shift: f64, model: &Model| -> Vec<Observed> {
        let (prediction, map, floors) = (&model.prediction, &model.map, &model.floors);
        let leak_at = |seconds: f64, band: usize| level_at(model.leak, seconds, band);
        let mut observed = Vec::new();
        for column in 0..master_levels.frames / 2 {
            let start = column as f64 * 2.0 * TILE_S;
            let (Some(p1), Some(p2), Some(p3)) =
                (map(start), map(start + TILE_S), map(start + 2.0 * TILE_S))
            else {
                continue;
            };
            if !(p1 < p2 && p2 < p3) {
                continue;
            }
            let (p1, p2) = (p1 + shift, p2 + shift);
            let (m1, m2) = (
                master_levels.frame(2 * column),
                master_levels.frame(2 * column + 1),
            );
            let loudest = m1
                .iter()
                .chain(m2)
                .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            for band in 0..BANDS {
                let quieter = m1[band].min(m2[band]);
                if quieter < SILENCE_FLOOR_DB || quieter < loudest - INFORMED_RANGE_DB {
                    continue;
                }
                let (Some(l1), Some(l2)) = (leak_at(p1, band), leak_at(p2, band)) else {
                    continue;
                };
                let predicted_diff = match prediction {
                    Prediction::Columns(columns) => columns[column][band],
                    Prediction::Leak(levels) => {
                        match (level_at(levels, p1, band), level_at(levels, p2, band)) {
                            (Some(a), Some(b)) => a - b,
                            _ => continue,
                        }
                    }
                };
                if l1.min(l2) < floors[band] + ABOVE_FLOOR_DB {
                    continue;
                }
                observed.push(Observed {
                    column: column as u32,
                    band: band as u8,
                    leak_s: p1 as f32,
                    leak_diff: l1 - l2,
                    master_diff: m1[band] - m2[band],
                    predicted_diff,
                    below_loudest_db: loudest - quieter,
                    above_floor_db: l1.min(l2) - floors[band],
                });
            }
        }
        observed
    };
    let known_sign = |o: &Observed| -> Option<f32> {
        let column = o.column as i64;
        let cell = layout.cell(column, o.band as usize);
        match cell.role {
            Role::Pilot => Some(cell.chip),
            Role::Index(q) => {
                let block = column.div_euclid(BLOCK_COLUMNS as i64);
                let bit = if layout.index_bit(block, q) {
                    1.0
                } else {
                    -1.0
                };
                Some(cell.chip * bit)
            }
            _ => None,
        }
    };
    // The registration places the leak by its envelope, which a room's
    // reverberation drags late by a few milliseconds; the mark sits in tile
    // differences and fades over half a tile of misplacement. So the map is first corrected by the constant shift
    // under which the cells of known symbol (pilot and index) read best.
    // The data and fingerprint cells play no part in the choice, so an
    // innocent's codeword stays independent of what is read from them.
    let in_leak = |column: usize| leak_time(column as f64 * 2.0 * TILE_S).is_some();
    let levels_model = |shift: f64| {
        let host = HostModel::fit(&master_levels, &leak_rows(shift), &floors);
        Model {
            prediction: Prediction::Columns(host.predicted_differences(&master_levels, in_leak)),
            map: Box::new(&leak_time),
            leak: &leak_levels,
            floors,
        }
    };
    // Where the leak plays the master at its own speed, the room it was
    // played in (if any) is learnt from the waveforms (`room`), and the
    // cells are placed by the map the room was fitted under.
    let room_fit = room::fit_room(master, leak, &leak_time, freq_scale).map(|fit| {
        let leak = BandLevels::compute(&fit.leak, FRAME_HOP, freq_scale);
        let predicted = BandLevels::compute(&fit.predicted, FRAME_HOP, freq_scale);
        (fit, leak, predicted)
    });
    let room_model = room_fit.as_ref().map(|(fit, leak, predicted)| Model {
        prediction: Prediction::Leak(predicted),
        map: Box::new(move |t| fit.leak_time(t)),
        leak,
        floors: band_floors(leak),
    });
    let known_z = |shift: f64, model: &Model| -> f64 {
        let observed = observe(shift, model);
        let residuals = column_residuals(&observed);
        let (mut sum, mut energy) = (0.0f64, 0.0f64);
        for (o, &r) in observed.iter().zip(&residuals) {
            if let Some(sign) = known_sign(o) {
                let v = r * fallback_weight(o);
                sum += (sign * v) as f64;
                energy += (v as f64).powi(2);
            }
        }
        correlation_z(sum, energy)
    };
    // The pilot's response to misplacement is a broad peak: each shift is
    // judged by the mean statistic of the shifts within SHIFT_SMOOTH_S of
    // it, so the choice follows the peak rather than the luckiest step (the
    // luckiest step read Opus 6k worse: 23 of 36 named against 25).
    let steps = (SHIFT_SEARCH_S / SHIFT_STEP_S).round() as i32;
    let reach = (SHIFT_SMOOTH_S / SHIFT_STEP_S).round() as i32;
    let search = |model: &Model| -> ShiftSearch {
        let curve: Vec<f64> = (-steps - reach..=steps + reach)
            .map(|k| known_z(k as f64 * SHIFT_STEP_S, model))
            .collect();
        let smoothed = |k: i32| -> f64 {
            let at = (k + steps + reach) as usize;
            curve[at - reach as usize..=at + reach as usize]
                .iter()
                .sum::<f64>()
                / (2 * reach + 1) as f64
        };
        let best = (-steps..=steps)
            .max_by(|&a, &b| {
                smoothed(a)
                    .total_cmp(&smoothed(b))
                    .then(b.abs().cmp(&a.abs()))
            })
            .unwrap_or(0);
        ShiftSearch {
            best_s: best as f64 * SHIFT_STEP_S,
            best_z: smoothed(best),
            unmoved_z: smoothed(0),
        }
    };
    // The model of the host is the one under which the known cells read
    // best: the room's where the leak went through one, the levels' for a
    // codec or a filter. Like the shift, the choice sees no data or
    // fingerprint cell.
    let levels_search = search(&levels_model(0.0));
    let room = room_model
        .map(|model| {
            let found = search(&model);
            (model, found)
        })
        .filter(|(_, found)| found.best_z > levels_search.best_z);
    let found = room.as_ref().map_or(levels_search, |(_, found)| *found);
    let shift_gain_z = found.best_z - found.unmoved_z;
    let best_s = found.best_s;
    // Everything read under the map moved by `shift` seconds.
    let read_at = |shift: f64| -> InformedReading {
        let mut soft = vec![0.0f32; layout.coded_bits()];
        let mut part_soft = vec![vec![0.0f32; layout.coded_bits()]; parts.len()];
        let mut positions = std::collections::BTreeMap::<u32, f32>::new();
        let (mut pilot_sum, mut pilot_energy) = (0.0f64, 0.0f64);
        let mut cells_read = 0usize;
        let mut cell_readings = Vec::new();
        let mut windows = vec![(0.0f64, 0.0f64); window_count];
        let mut blocks = std::collections::BTreeSet::new();
        let observed = match &room {
            Some((model, _)) => observe(shift, model),
            None => observe(shift, &levels_model(shift)),
        };
        let residuals = column_residuals(&observed);
        // How faithfully each kind of cell carries the mark through this
        // channel, measured on the cells whose symbol is known without the
        // payload (pilot and index). Cells are grouped by band group, by how far
        // below the column's loudest band the master sits, and by how fast the
        // host changes; each group's cells are weighted as a matched filter asks
        // (mean reading over residual variance), shrunk toward the overall
        // figures where a group has few known cells.
        let class_of = |o: &Observed| -> usize {
            let group = o.band as usize * CLASS_BAND_GROUPS / BANDS;
            let level = match o.below_loudest_db {
                d if d < 8.0 => 0,
                d if d < 16.0 => 1,
                _ => 2,
            };
            let change = usize::from(o.master_diff.abs() >= HOST_CHANGE_DB);
            let clearance = match o.above_floor_db {
                d if d < 10.0 => 0,
                d if d < 18.0 => 1,
                _ => 2,
            };
            ((group * 3 + level) * 2 + change) * 3 + clearance
        };
        // Pilot cells by class, separately for even and odd columns: each half
        // judges the weights fitted on the other (below).
        let mut halves = [[(0.0f64, 0.0f64, 0usize); CLASSES]; 2];
        for (o, &r) in observed.iter().zip(&residuals) {
            if let Some(sign) = known_sign(o) {
                let c = &mut halves[o.column as usize % 2][class_of(o)];
                c.0 += (sign * r) as f64;
                c.1 += (r as f64).powi(2);
                c.2 += 1;
            }
        }
        let mut classes = halves[0];
        for (c, odd) in classes.iter_mut().zip(&halves[1]) {
            *c = (c.0 + odd.0, c.1 + odd.1, c.2 + odd.2);
        }
        // Each half's pilot read with the weights fitted on the other half,
        // and the whole pilot read with the host-change rule alone: the fitted
        // weights are used only where, held out, they read the pilot better
        // than the rule does (fitted on the cells they weigh they always look
        // better: twice the held-out figure on speech re-recorded over the air).
        let held_out = [
            fitted_class_weights(&halves[1]),
            fitted_class_weights(&halves[0]),
        ];
        let (mut held_out_sum, mut held_out_energy) = (0.0f64, 0.0f64);
        let (mut rule_sum, mut rule_energy) = (0.0f64, 0.0f64);
        for (o, &r) in observed.iter().zip(&residuals) {
            if let Some(sign) = known_sign(o) {
                let weight = held_out[o.column as usize % 2]
                    .as_ref()
                    .map_or_else(|| fallback_weight(o), |w| w[class_of(o)]);
                held_out_sum += (sign * r * weight) as f64;
                held_out_energy += ((r * weight) as f64).powi(2);
                let weight = fallback_weight(o);
                rule_sum += (sign * r * weight) as f64;
                rule_energy += ((r * weight) as f64).powi(2);
            }
        }
        let (held_out_z, rule_z) = (
            correlation_z(held_out_sum, held_out_energy) as f32,
            correlation_z(rule_sum, rule_energy) as f32,
        );
        let weights: Vec<f32> = match fitted_class_weights(&classes) {
            Some(class_weight) if held_out_z > rule_z => {
                observed.iter().map(|o| class_weight[class_of(o)]).collect()
            }
            _ => observed.iter().map(fallback_weight).collect(),
        };
        // Second pass, one cell column at a time: read by role.
        let mut at = 0usize;
        for cells in observed.chunk_by(|a, b| a.column == b.column) {
            let first = at;
            at += cells.len();
            if cells.len() < 2 {
                continue;
            }
            let column = cells[0].column as i64;
            let block = column.div_euclid(BLOCK_COLUMNS as i64);
            let window = ((cells[0].leak_s as f64 / SEGMENT_HOP_S) as usize).min(window_count - 1);
            for ((o, &r), &weight) in cells
                .iter()
                .zip(&residuals[first..at])
                .zip(&weights[first..at])
            {
                let cell = layout.cell(column, o.band as usize);
                let value = cell.chip * r * weight;
                cells_read += 1;
                cell_readings.push(CellReading {
                    column: o.column,
                    band: o.band,
                    residual_db: r,
                    weight,
                });
                // Pilot and index cells carry symbols known without the payload.
                let known = match cell.role {
                    Role::Pilot => Some(1.0),
                    Role::Index(q) => Some(if layout.index_bit(block, q) {
                        1.0
                    } else {
                        -1.0
                    }),
                    Role::Data(j) => {
                        soft[j as usize] += value;
                        let at = o.leak_s as f64;
                        for (p, bits) in parts.iter().zip(part_soft.iter_mut()) {
                            if (p.start_s..p.end_s).contains(&at) {
                                bits[j as usize] += value;
                            }
                        }
                        None
                    }
                    Role::Fingerprint(f) => {
                        let position = Layout::fingerprint_position(block, f) as u32;
                        *positions.entry(position).or_default() += value;
                        blocks.insert(block);
                        None
                    }
                };
                if let Some(sign) = known {
                    let v = (sign * value) as f64;
                    pilot_sum += v;
                    pilot_energy += (r * weight) as f64 * (r * weight) as f64;
                    windows[window].0 += v;
                    windows[window].1 += (r * weight) as f64 * (r * weight) as f64;
                }
            }
        }
        let pilot_z = correlation_z(pilot_sum, pilot_energy) as f32;
        let per_window = (SEGMENT_WINDOW_S / SEGMENT_HOP_S).round() as usize;
        let mut segments: Vec<Segment> = (0..window_count)
            .filter_map(|w| {
                let span = &windows[w..(w + per_window).min(window_count)];
                let (sum, energy) = span
                    .iter()
                    .fold((0.0, 0.0), |acc, x| (acc.0 + x.0, acc.1 + x.1));
                (correlation_z(sum, energy) as f32 >= INFORMED_SEGMENT_Z).then(|| Segment {
                    start_s: w as f64 * SEGMENT_HOP_S,
                    end_s: ((w + per_window) as f64 * SEGMENT_HOP_S)
                        .min(leak.len() as f64 / ANALYSIS_RATE as f64),
                })
            })
            .collect();
        join_segments(&mut segments);
        let whole = Segment {
            start_s: 0.0,
            end_s: leak.len() as f64 / ANALYSIS_RATE as f64,
        };
        let whole_segments = if segments.is_empty() {
            vec![whole]
        } else {
            segments.clone()
        };
        let read_something = |bits: &Vec<f32>| bits.iter().any(|&b| b != 0.0);
        let whole_entries = usize::from(read_something(&soft));
        let soft_bits = std::iter::once((whole_segments, soft))
            .chain(parts.iter().map(|p| vec![*p]).zip(part_soft))
            .filter(|(_, bits)| read_something(bits))
            .collect();
        InformedReading {
            fingerprint: FingerprintReading {
                positions: positions.into_iter().collect(),
                blocks: blocks.len(),
                segments: segments.clone(),
            },
            pilot_z,
            cells_read,
            shift_s: shift,
            shift_gain_z: 0.0,
            room: false,
            whole_entries,
            cells: cell_readings,
            segments,
            soft_bits,
        }
    };
    // The moved map is trusted for the reading as a whole only when the
    // known cells say so clearly; otherwise the registration's own map is.
    // The identifier is read both ways whenever the two differ: each
    // reading's soft bits enter the union bound, which costs a factor of
    // two, while a wrong choice would cost far more.
    let (primary, alternative) = if shift_gain_z >= SHIFT_TRUST_Z {
        (best_s, 0.0)
    } else {
        (0.0, best_s)
    };
    let mut reading = read_at(primary);
    reading.shift_gain_z = if primary == 0.0 { 0.0 } else { shift_gain_z };
    reading.room = room.is_some();
    if alternative != primary {
        let other = read_at(alternative);
        let (whole, parts) = reading.soft_bits.split_at(reading.whole_entries);
        let (other_whole, other_parts) = other.soft_bits.split_at(other.whole_entries);
        reading.soft_bits = [whole, other_whole, parts, other_parts].concat();
        reading.whole_entries += other.whole_entries;
    }
    reading
}

/// Each cell's residual: leak minus predicted tile difference, less the
/// change common to its column (an envelope mismatch from imperfect
/// alignment), clipped to [`RESIDUAL_CLIP_DB`]; 0 for a column with one cell,
/// where nothing common can be told from the mark. `observed` comes in column
/// order.
fn column_residuals(observed: &[Observed]) -> Vec<f32> {
    let mut residuals: Vec<f32> = Vec::with_capacity(observed.len());
    for cells in observed.chunk_by(|a, b| a.column == b.column) {
        let residual = |o: &Observed| o.leak_diff - o.predicted_diff;
        if cells.len() < 2 {
            residuals.push(0.0);
            continue;
        }
        let common = cells.iter().map(residual).sum::<f32>() / cells.len() as f32;
        residuals.extend(
            cells
                .iter()
                .map(|o| (residual(o) - common).clamp(-RESIDUAL_CLIP_DB, RESIDUAL_CLIP_DB)),
        );
    }
    residuals
}

/// The normalised correlation `Σ sign·v / √(Σ v²)` from its two sums: about
/// standard normal where the readings `v` carry no mark, 0 without readings.
fn correlation_z(sum: f64, energy: f64) -> f64 {
    if energy > 0.0 {
        sum / energy.sqrt()
    } else {
        0.0
    }
}

/// Weights per fidelity class from the pilot cells' statistics `(Σ sign ·
/// residual, Σ residual², count)` per class: mean over noise power, each
/// class shrunk towards the overall figures by [`CLASS_SHRINK_CELLS`] cells.
/// `None` when the pilot as a whole is too weak to measure by
/// ([`CLASS_WEIGHT_MIN_Z`]).
fn fitted_class_weights(classes: &[(f64, f64, usize); CLASSES]) -> Option<[f32; CLASSES]> {
    let (all_sum, all_energy, all_count) = classes.iter().fold((0.0, 0.0, 0usize), |acc, c| {
        (acc.0 + c.0, acc.1 + c.1, acc.2 + c.2)
    });
    let overall_z = correlation_z(all_sum, all_energy);
    if overall_z <= CLASS_WEIGHT_MIN_Z as f64 {
        return None;
    }
    let (mean_all, power_all) = (
        all_sum / all_count.max(1) as f64,
        all_energy / all_count.max(1) as f64,
    );
    let k = CLASS_SHRINK_CELLS;
    let mut class_weight = [0.0f32; CLASSES];
    for (wc, c) in class_weight.iter_mut().zip(classes) {
        let n = c.2 as f64;
        let mean = (c.0 + k * mean_all) / (n + k);
        let power = (c.1 + k * power_all) / (n + k);
        let noise = (power - mean * mean).max(0.05 * power);
        *wc = (mean.max(0.0) / noise) as f32;
    }
    Some(class_weight)
}

/// Weight of a cell before the pilot has been measured: half for a cell
/// whose host changes fast between its tiles (the channel's smoothing of
/// that change leaks into the residual), full otherwise.
fn fallback_weight(o: &Observed) -> f32 {
    if o.master_diff.abs() >= HOST_CHANGE_DB {
        0.5
    } else {
        1.0
    }
}

/// What the host alone makes of each cell's tile difference in the leak.
enum Prediction<'a> {
    /// Per cell column and band, dB (the level model, `host`).
    Columns(Vec<[f32; BANDS]>),
    /// The leak's band levels as the room model predicts them, on the
    /// leak's own frames.
    Leak(&'a BandLevels),
}

/// A host model and the map from master time to leak time it reads by.
struct Model<'a> {
    prediction: Prediction<'a>,
    map: Box<dyn Fn(f64) -> Option<f64> + 'a>,
    /// The leak's band levels as this model reads them.
    leak: &'a BandLevels,
    /// Each band's floor in them.
    floors: [f32; BANDS],
}

/// The best constant correction of the registration's map, with the known
/// cells' smoothed statistic there and with no correction.
#[derive(Clone, Copy)]
struct ShiftSearch {
    best_s: f64,
    best_z: f64,
    unmoved_z: f64,
}

/// The band level of `levels` (frames [`FRAME_HOP`] apart) `seconds` in,
/// linearly interpolated between frames; `None` outside them.
fn level_at(levels: &BandLevels, seconds: f64, band: usize) -> Option<f32> {
    let x = seconds * ANALYSIS_RATE as f64 / FRAME_HOP as f64;
    if x < 0.0 {
        return None;
    }
    let k = x.floor() as usize;
    if k + 1 >= levels.frames {
        return None;
    }
    let t = (x - k as f64) as f32;
    let (a, b) = (levels.frame(k)[band], levels.frame(k + 1)[band]);
    Some(a + t * (b - a))
}

/// Each band's floor in the leak: its 10th-percentile level.
fn band_floors(levels: &BandLevels) -> [f32; BANDS] {
    let mut floors = [SILENCE_FLOOR_DB; BANDS];
    for (band, floor) in floors.iter_mut().enumerate() {
        let mut values: Vec<f32> = (0..levels.frames).map(|f| levels.frame(f)[band]).collect();
        if values.is_empty() {
            continue;
        }
        let rank = values.len() / 10;
        *floor = *values.select_nth_unstable_by(rank, f32::total_cmp).1;
    }
    floors
}
