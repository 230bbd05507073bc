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
//! `2^-24` per candidate checked (the list decoder offers
//! [`payload::LIST_SIZE`] per decoding attempt, and
//! [`payload::DEEP_LIST_SIZE`] in the one deeper attempt a clear pilot gets).
//! The reported p-value is the product of the two bounds (each capped at 1),
//! the second counting every candidate checked in the stretch.

use earmark_keys::SecretKey;

use crate::features::{frame_cells, BandLevels};
use crate::layout::{
    Layout, Role, ANALYSIS_RATE, BANDS, BLOCK_CELLS, BLOCK_COLUMNS, BLOCK_FRAMES, BLOCK_S,
    FINGERPRINT_CELLS, FRAMES_PER_CELL, FRAMES_PER_TILE, FRAME_HOP, INDEX_CELLS,
    INDEX_PERIOD_BLOCKS,
};
use crate::payload::{self, TAG_BITS};
use crate::{downmix, EngineError};

/// Pilot statistic a hypothesis needs before its data are decoded.
pub const MIN_PILOT_Z: f32 = 3.0;
/// Decoding attempts per searched stretch (best pilot peaks first).
pub const DECODE_ATTEMPTS: usize = 4;
/// Pilot statistic of the best hypothesis for a second, deeper decoding
/// attempt ([`payload::DEEP_LIST_SIZE`] candidates) when the first ones all
/// fail: the mark is then surely there, and its data are merely weak.
/// Unmarked audio reached at most 6.09 in the 2000 excerpts of
/// BENCHMARKS.md's false-alarm run, so the deeper attempt is rare there.
pub const DEEP_LIST_MIN_Z: f32 = 5.0;
/// Per-window statistic (data cells against the decoded codeword) for a
/// window to count as carrying that payload.
pub const SEGMENT_Z: f32 = 4.0;
/// Cell columns per segment window (2 s).
pub const SEGMENT_COLUMNS: usize = 50;
/// Anchor step of the fast scan, analysis frames (an eighth of a tile
/// misalignment at most; the exact statistic then refines).
pub const SCAN_ANCHOR_STEP: usize = 2;
/// Shortest unexplained stretch searched again for a further payload, seconds.
pub const RESEARCH_S: f64 = 2.0 * BLOCK_S;
/// Shortest half a stretch is split into when its clear pilot decodes to
/// nothing (several payloads spliced together), seconds.
pub const SPLIT_MIN_S: f64 = 1.5 * BLOCK_S;

/// Pilot statistic of a single block for its fingerprint cells to be read.
pub const BLOCK_READ_Z: f32 = 2.0;
/// Index statistic (the index cells of a stretch's blocks against the best of
/// the [`INDEX_PERIOD_BLOCKS`] numberings) for the stretch's fingerprint
/// positions to be trusted. A wrong numbering would only make the readings
/// useless, never unsafe: an innocent's codeword is independent of them.
pub const INDEX_Z: f32 = 5.0;
/// Columns of a block that must lie inside a stretch for it to be read.
pub const BLOCK_READ_MIN_COLUMNS: usize = BLOCK_COLUMNS / 4;

/// A time and frequency scale to try: a leak played `r` times faster has
/// `time_scale = 1/r` and `freq_scale = r`; a tempo change keeps `freq_scale = 1`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Scale {
    /// Leak duration / original duration.
    pub time_scale: f32,
    /// Leak frequency / original frequency.
    pub freq_scale: f32,
}

impl Scale {
    /// The original scale.
    pub const UNIT: Scale = Scale {
        time_scale: 1.0,
        freq_scale: 1.0,
    };
}

/// Which scales the detector tries when the original scale yields nothing.
///
/// The original scale is always searched first, over every block offset. Only
/// if no payload verifies there are the grid's scales searched, on a central
/// window of at most [`SCALE_WINDOW_S`] seconds, and the best few refined over
/// the whole stretch; every hypothesis tried enters the p-value's union bound.
#[derive(Clone, Debug)]
pub struct SearchGrid {
    /// Further hypotheses, tried in this order of preference.
    pub scales: Vec<Scale>,
}

/// Largest stretch the scale grid is scanned over, seconds (the best
/// hypotheses are then refined over the whole stretch).
pub const SCALE_WINDOW_S: f64 = 12.0;
/// Step of the frequency-scale grid, cents: a quarter band or less at the
/// top band's edge.
pub const PITCH_STEP_CENTS: f32 = 20.0;
/// Step of the time-scale grid (relative): drift of at most a quarter tile
/// across a [`SCALE_WINDOW_S`] window.
pub const TIME_STEP: f32 = 0.001;

impl SearchGrid {
    /// Only the original scale: for copies whose speed was not changed.
    pub fn exact() -> Self {
        SearchGrid { scales: Vec::new() }
    }

    /// Playback speed and tempo within `1 ± max_change`, pitch within
    /// `± max_cents`.
    pub fn speed_tempo_pitch(max_change: f32, max_cents: f32) -> Self {
        let quantise_pitch = |ratio: f32| {
            let cents = 1200.0 * ratio.log2();
            let step = (cents / PITCH_STEP_CENTS).round() * PITCH_STEP_CENTS;
            2f32.powf(step / 1200.0)
        };
        let mut scales = Vec::new();
        let steps = (max_change / TIME_STEP).round() as i32;
        for k in -steps..=steps {
            if k == 0 {
                continue;
            }
            let rate = 1.0 + k as f32 * TIME_STEP;
            // Tempo: duration changes, pitch kept.
            scales.push(Scale {
                time_scale: 1.0 / rate,
                freq_scale: 1.0,
            });
            // Playback speed: both change.
            scales.push(Scale {
                time_scale: 1.0 / rate,
                freq_scale: quantise_pitch(rate),
            });
        }
        let pitch_steps = (max_cents / PITCH_STEP_CENTS).round() as i32;
        for k in -pitch_steps..=pitch_steps {
            if k != 0 {
                scales.push(Scale {
                    time_scale: 1.0,
                    freq_scale: 2f32.powf(k as f32 * PITCH_STEP_CENTS / 1200.0),
                });
            }
        }
        scales.dedup();
        SearchGrid { scales }
    }
}

impl Default for SearchGrid {
    /// Speed and tempo ±5 %, pitch ±120 cents.
    fn default() -> Self {
        Self::speed_tempo_pitch(0.05, 120.0)
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

/// Largest gap between two time ranges that are still joined into one, seconds.
pub const SEGMENT_JOIN_S: f64 = 0.05;

/// Sorts `segments` and joins those that overlap or nearly touch
/// (gaps up to [`SEGMENT_JOIN_S`]).
pub fn join_segments(segments: &mut Vec<Segment>) {
    segments.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    segments.dedup_by(|next, kept| {
        let joins = next.start_s <= kept.end_s + SEGMENT_JOIN_S;
        if joins {
            kept.end_s = kept.end_s.max(next.end_s);
        }
        joins
    });
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

/// The fingerprint cells of one block of the input.
#[derive(Clone, Debug)]
pub struct BlockRead {
    /// Where the block starts in the input, seconds.
    pub start_s: f64,
    /// Where it ends, seconds.
    pub end_s: f64,
    /// The block's index modulo [`INDEX_PERIOD_BLOCKS`], as its index cells read.
    pub index: usize,
    /// Pilot statistic of this block alone.
    pub pilot_z: f32,
    /// Each fingerprint cell's reading with its chip removed (positive = bit
    /// 1; 0 where the cell lies outside the input).
    pub values: Vec<f32>,
}

/// The fingerprint positions an input carries, summed over its blocks.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FingerprintReading {
    /// `(position, reading)` in position order; a reading is positive for
    /// bit 1, and its size is the evidence in the detector's units.
    #[serde(skip)]
    pub positions: Vec<(u32, f32)>,
    /// Blocks read.
    pub blocks: usize,
    /// Stretches of the input whose blocks were read.
    pub segments: Vec<Segment>,
}

impl FingerprintReading {
    fn from_blocks(blocks: &[BlockRead]) -> Self {
        let mut sums = std::collections::BTreeMap::<u32, f32>::new();
        for block in blocks {
            for (cell, &value) in block.values.iter().enumerate() {
                if value != 0.0 {
                    let position = Layout::fingerprint_position(block.index as i64, cell as u16);
                    *sums.entry(position as u32).or_default() += value;
                }
            }
        }
        let mut segments: Vec<Segment> = blocks
            .iter()
            .map(|b| Segment {
                start_s: b.start_s,
                end_s: b.end_s,
            })
            .collect();
        join_segments(&mut segments);
        FingerprintReading {
            positions: sums.into_iter().collect(),
            blocks: blocks.len(),
            segments,
        }
    }
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
    /// Soft coded bits (positive = 1) read under the strongest
    /// synchronisation hypothesis, whether or not it decoded: for
    /// diagnostics such as the raw bit error rate. Empty if none was tried.
    #[serde(skip)]
    pub soft_bits: Vec<f32>,
    /// Payload candidates whose tag was checked, over the whole input: each
    /// one not embedded passes the 24-bit tag with probability 2⁻²⁴, so this
    /// times 2⁻²⁴ bounds the chance that anything reported was never embedded.
    pub candidates_checked: usize,
    /// The fingerprint positions read, wherever the pilot was clear (whether
    /// or not a payload decoded there: a mix of copies still carries them).
    pub fingerprint: FingerprintReading,
    /// What the reader of the input noted (a file cut short); the engine
    /// itself leaves it empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The cell readings of one frequency-scale hypothesis.
struct Readings {
    freq_scale: f32,
    /// Per analysis frame (a cell's first tile), per band: (value·weight, weight).
    cells: Vec<[(f32, f32); BANDS]>,
}

/// A synchronisation hypothesis: the frame where a block starts, and scale.
#[derive(Clone, Copy, Debug)]
struct Hypothesis {
    anchor: usize,
    scale: Scale,
    /// Index into the detector's readings (one per frequency scale).
    readings: usize,
    z: f32,
}

/// Longest stretch searched at once, seconds. Longer inputs are searched in
/// windows of this length overlapping by half, so memory stays bounded and
/// every stretch of up to half a window lies whole in some window.
pub const WINDOW_S: f64 = 60.0;

/// Detects payloads in `channels` (planar, `rate` Hz) under `key`: an
/// [`Extractor`] fed the whole buffer at once.
pub fn extract(
    channels: &[Vec<f32>],
    rate: u32,
    key: &SecretKey,
    grid: &SearchGrid,
) -> Result<Detection, EngineError> {
    crate::check_input(channels, rate)?;
    let mut extractor = Extractor::new(rate, channels.len(), key, grid.clone())?;
    extractor.push(channels);
    Ok(extractor.finish())
}

/// A streaming detector: push planar chunks, then [`Extractor::finish`].
///
/// It keeps only the mono analysis signal of the current window and a half
/// (at 8 kHz: 2.9 MB for 60 s windows), so memory is bounded whatever the
/// input's length. Windows of [`WINDOW_S`] seconds overlap by half; a
/// stretch found in several windows is reported once.
pub struct Extractor<'k> {
    key: &'k SecretKey,
    grid: SearchGrid,
    layout: Layout,
    pilots: Vec<Vec<(usize, f32)>>,
    rate: u32,
    resampler: earmark_dsp::StreamResampler,
    /// Analysis samples from absolute index `analysis_start`.
    analysis: Vec<f32>,
    analysis_start: usize,
    /// Start of the next window to search, analysis samples.
    next_window: usize,
    /// End of the last window searched.
    searched_to: usize,
    windows: usize,
    input_frames: usize,
    found: Vec<Found>,
    best_pilot_z: f32,
    /// Pilot statistic and soft bits of the strongest hypothesis tried.
    best_soft: Option<(f32, Vec<f32>)>,
    candidates_checked: usize,
    searches: usize,
    /// Fingerprint blocks read so far (one per stretch of the input).
    block_reads: Vec<BlockRead>,
}

impl<'k> Extractor<'k> {
    /// A detector for audio at `rate` Hz with `channels` channels.
    pub fn new(
        rate: u32,
        channels: usize,
        key: &'k SecretKey,
        grid: SearchGrid,
    ) -> Result<Self, EngineError> {
        crate::check_format(rate, channels)?;
        let layout = Layout::new(key, payload::coded_bits());
        let pilots = (0..BLOCK_COLUMNS)
            .map(|col| {
                (0..BANDS)
                    .filter_map(|band| {
                        let cell = layout.cell(col as i64, band);
                        (cell.role == Role::Pilot).then_some((band, cell.chip))
                    })
                    .collect()
            })
            .collect();
        Ok(Extractor {
            key,
            grid,
            layout,
            pilots,
            rate,
            resampler: earmark_dsp::StreamResampler::new(rate, ANALYSIS_RATE),
            analysis: Vec::new(),
            analysis_start: 0,
            next_window: 0,
            searched_to: 0,
            windows: 0,
            input_frames: 0,
            found: Vec::new(),
            best_pilot_z: f32::NEG_INFINITY,
            best_soft: None,
            candidates_checked: 0,
            searches: 0,
            block_reads: Vec::new(),
        })
    }

    fn window_len() -> usize {
        (WINDOW_S * ANALYSIS_RATE as f64) as usize
    }

    fn analysis_end(&self) -> usize {
        self.analysis_start + self.analysis.len()
    }

    /// Adds input (planar, equal lengths).
    pub fn push(&mut self, chunk: &[Vec<f32>]) {
        self.input_frames += chunk.first().map_or(0, Vec::len);
        let low = self.resampler.push(&downmix(chunk));
        self.analysis.extend(low);
        let window = Self::window_len();
        while self.analysis_end() >= self.next_window + window {
            let start = self.next_window;
            self.search_window(start, start + window);
            self.next_window += window / 2;
            // Keep from the last window's start: the final window may reach back there.
            let keep = start.max(self.analysis_start);
            self.analysis.drain(..keep - self.analysis_start);
            self.analysis_start = keep;
        }
    }

    /// Searches what is left and returns everything found.
    pub fn finish(mut self) -> Detection {
        let tail = std::mem::replace(
            &mut self.resampler,
            earmark_dsp::StreamResampler::new(ANALYSIS_RATE, ANALYSIS_RATE),
        )
        .finish();
        self.analysis.extend(tail);
        let end = self.analysis_end();
        if self.windows == 0 || end > self.searched_to {
            let start = end
                .saturating_sub(Self::window_len())
                .max(self.analysis_start);
            self.search_window(start, end);
        }
        // A union bound over every stretch searched (windows, and the
        // stretches searched again inside them).
        let windows = self.windows.max(self.searches).max(1) as f64;
        let mut found = std::mem::take(&mut self.found);
        for f in found.iter_mut() {
            // A union bound over the windows searched.
            f.p_value = (f.p_value * windows).min(1.0);
        }
        found.sort_by(|a, b| a.p_value.total_cmp(&b.p_value));
        Detection {
            found,
            duration_s: self.input_frames as f64 / self.rate as f64,
            best_pilot_z: if self.best_pilot_z.is_finite() {
                self.best_pilot_z
            } else {
                0.0
            },
            soft_bits: self.best_soft.map(|(_, soft)| soft).unwrap_or_default(),
            candidates_checked: self.candidates_checked,
            fingerprint: FingerprintReading::from_blocks(&self.block_reads),
            notes: Vec::new(),
        }
    }

    /// Searches analysis samples `[start, end)` (absolute indices).
    fn search_window(&mut self, start: usize, end: usize) {
        let slice = &self.analysis[start - self.analysis_start..end - self.analysis_start];
        let mut detector = Detector {
            key: self.key,
            layout: &self.layout,
            analysis: slice,
            readings: Vec::new(),
            grid: &self.grid,
            best_pilot_z: f32::NEG_INFINITY,
            best_soft: None,
            candidates_checked: 0,
            searches: 0,
            pilots: &self.pilots,
            clear_pilots: Vec::new(),
        };
        let unit = detector.readings_for(1.0);
        let frames = detector.readings[unit].cells.len();
        let mut local = Vec::new();
        detector.search(0, frames, 0, true, &mut local);
        self.best_pilot_z = self.best_pilot_z.max(detector.best_pilot_z);
        self.candidates_checked += detector.candidates_checked;
        self.searches += detector.searches;
        if let Some((z, soft)) = detector.best_soft.take() {
            if self.best_soft.as_ref().is_none_or(|(best, _)| z > *best) {
                self.best_soft = Some((z, soft));
            }
        }
        let shift_s = start as f64 / ANALYSIS_RATE as f64;
        for mut read in detector.block_reads() {
            read.start_s += shift_s;
            read.end_s += shift_s;
            merge_block_read(&mut self.block_reads, read);
        }
        self.windows += 1;
        self.searched_to = end;
        for mut f in local {
            for seg in f.segments.iter_mut() {
                seg.start_s += shift_s;
                seg.end_s += shift_s;
            }
            merge_found(&mut self.found, f);
        }
    }
}

/// Adds `new` to `found`, joining it with an entry of the same payload (its
/// segments united, the strongest evidence kept).
fn merge_found(found: &mut Vec<Found>, new: Found) {
    let Some(same) = found.iter_mut().find(|f| f.payload == new.payload) else {
        found.push(new);
        return;
    };
    if new.p_value < same.p_value {
        same.p_value = new.p_value;
        same.pilot_z = new.pilot_z;
        same.scale = new.scale;
    }
    same.segments.extend(new.segments);
    join_segments(&mut same.segments);
}

/// Adds `new` to `reads`, unless a read of the same block (overlapping it by
/// more than half) with a clearer pilot is there; replaces a weaker one.
fn merge_block_read(reads: &mut Vec<BlockRead>, new: BlockRead) {
    let half = (new.end_s - new.start_s) / 2.0;
    match reads
        .iter_mut()
        .find(|r| (r.start_s - new.start_s).abs() < half)
    {
        Some(same) if same.pilot_z >= new.pilot_z => {}
        Some(same) => *same = new,
        None => reads.push(new),
    }
}

struct Detector<'a> {
    key: &'a SecretKey,
    layout: &'a Layout,
    analysis: &'a [f32],
    /// Readings computed so far, one per frequency scale.
    readings: Vec<Readings>,
    grid: &'a SearchGrid,
    best_pilot_z: f32,
    /// Pilot statistic and soft bits of the strongest hypothesis tried.
    best_soft: Option<(f32, Vec<f32>)>,
    /// Payload candidates whose tag was checked.
    candidates_checked: usize,
    /// Stretches searched (each a family of hypotheses in the union bound).
    searches: usize,
    /// Per block column, the pilot cells' bands and chips.
    pilots: &'a [Vec<(usize, f32)>],
    /// The best hypothesis of each stretch searched whose pilot was clear,
    /// with the stretch: where fingerprint cells are read.
    clear_pilots: Vec<(Hypothesis, usize, usize)>,
}

/// Seconds at the start of analysis frame `frame`.
fn frame_s(frame: f64) -> f64 {
    frame * FRAME_HOP as f64 / ANALYSIS_RATE as f64
}

/// Analysis frames in `seconds`.
fn frames_in(seconds: f64) -> usize {
    (seconds * ANALYSIS_RATE as f64 / FRAME_HOP as f64).round() as usize
}

impl Detector<'_> {
    /// Index of the readings for `freq_scale`, computing them on first use.
    fn readings_for(&mut self, freq_scale: f32) -> usize {
        if let Some(i) = self
            .readings
            .iter()
            .position(|r| r.freq_scale == freq_scale)
        {
            return i;
        }
        // The frame count depends only on the signal's length, so frame
        // ranges carry over between frequency scales.
        let cells = frame_cells(&BandLevels::compute(self.analysis, FRAME_HOP, freq_scale));
        self.readings.push(Readings { freq_scale, cells });
        self.readings.len() - 1
    }

    /// Frames of the cell columns of a hypothesis inside `[lo, hi)`, with their
    /// (euclidean) block column numbers.
    fn columns(
        anchor: usize,
        time_scale: f32,
        lo: usize,
        hi: usize,
    ) -> impl Iterator<Item = (i64, usize)> {
        let step = FRAMES_PER_CELL as f64 * time_scale as f64;
        let first = ((lo as f64 - anchor as f64) / step).ceil() as i64;
        (first..).map_while(move |m| {
            let frame = (anchor as f64 + m as f64 * step).round();
            (frame < hi as f64).then_some((m, frame.max(lo as f64) as usize))
        })
    }

    /// Fast scan of every block anchor in `[lo, lo + block)` for each time
    /// scale, on one set of readings, over frames `[lo, hi)`. Returns the best
    /// few anchors per time scale, ranked by an approximate pilot statistic
    /// (squares summed per reading rather than per block cell).
    fn scan(&self, readings: usize, time_scales: &[f32], lo: usize, hi: usize) -> Vec<Hypothesis> {
        let cells = &self.readings[readings].cells;
        let freq_scale = self.readings[readings].freq_scale;
        // Per frame and block column: the pilot projection and its energy.
        let width = hi - lo;
        let mut projection = vec![0.0f32; width * BLOCK_COLUMNS];
        let mut energy = vec![0.0f32; width * BLOCK_COLUMNS];
        for (i, row) in cells[lo..hi].iter().enumerate() {
            let base = i * BLOCK_COLUMNS;
            for (col, pilots) in self.pilots.iter().enumerate() {
                let (mut p, mut e) = (0.0f32, 0.0f32);
                for &(band, chip) in pilots {
                    let v = row[band].0;
                    p += chip * v;
                    e += v * v;
                }
                projection[base + col] = p;
                energy[base + col] = e;
            }
        }
        let mut out = Vec::new();
        let step_frames = FRAMES_PER_CELL as f64;
        for &time_scale in time_scales {
            let step = step_frames * time_scale as f64;
            let span = (BLOCK_FRAMES as f64 * time_scale as f64).ceil() as usize;
            // Column m of an anchor sits at anchor + round(m · step); with the
            // anchor integral, those offsets are the same for every anchor.
            let before = (span as f64 / step).ceil() as i64 + 1;
            let after = (width as f64 / step).ceil() as i64 + 1;
            let offsets: Vec<(i64, usize)> = (-before..=after)
                .map(|m| {
                    (
                        (m as f64 * step).round() as i64,
                        m.rem_euclid(BLOCK_COLUMNS as i64) as usize,
                    )
                })
                .collect();
            let mut scored: Vec<Hypothesis> = (lo..lo + span)
                .step_by(SCAN_ANCHOR_STEP)
                .map(|anchor| {
                    let (mut num, mut den) = (0.0f32, 0.0f32);
                    let base = anchor as i64 - lo as i64;
                    for &(offset, col) in &offsets {
                        let frame = base + offset;
                        if frame < 0 {
                            continue;
                        }
                        if frame >= width as i64 {
                            break;
                        }
                        let at = frame as usize * BLOCK_COLUMNS + col;
                        num += projection[at];
                        den += energy[at];
                    }
                    Hypothesis {
                        anchor,
                        scale: Scale {
                            time_scale,
                            freq_scale,
                        },
                        readings,
                        z: if den > 0.0 { num / den.sqrt() } else { 0.0 },
                    }
                })
                .collect();
            scored.sort_by(|a, b| b.z.total_cmp(&a.z));
            let mut kept: Vec<Hypothesis> = Vec::new();
            for h in scored {
                if kept.len() >= DECODE_ATTEMPTS {
                    break;
                }
                // Keep local maxima only, so near-identical anchors do not crowd the list.
                if kept
                    .iter()
                    .all(|k| k.anchor.abs_diff(h.anchor) > FRAMES_PER_CELL / 2)
                {
                    kept.push(h);
                }
            }
            out.extend(kept);
        }
        out
    }

    /// Tries to decode the best of `candidates` (exact statistic over `[lo, hi)`).
    /// `hypotheses` is the number of hypotheses searched, for the union bound;
    /// `prior_candidates` the tag checks already spent on this stretch.
    fn decode_best(
        &mut self,
        mut candidates: Vec<Hypothesis>,
        hypotheses: usize,
        prior_candidates: usize,
        lo: usize,
        hi: usize,
    ) -> Option<Found> {
        for h in candidates.iter_mut() {
            h.z = self.pilot_z(h, lo, hi);
        }
        candidates.sort_by(|a, b| b.z.total_cmp(&a.z));
        if let Some(top) = candidates.first() {
            if top.z >= MIN_PILOT_Z {
                self.clear_pilots.push((*top, lo, hi));
            }
            self.best_pilot_z = self.best_pilot_z.max(top.z);
            if self
                .best_soft
                .as_ref()
                .is_none_or(|(best, _)| top.z > *best)
            {
                self.best_soft = Some((top.z, self.soft_bits(top, lo, hi)));
            }
        }
        let mut checked = prior_candidates;
        let deep = candidates
            .first()
            .filter(|h| h.z >= DEEP_LIST_MIN_Z)
            .map(|h| (*h, payload::DEEP_LIST_SIZE));
        let attempts = candidates
            .iter()
            .take(DECODE_ATTEMPTS)
            .take_while(|h| h.z >= MIN_PILOT_Z)
            .map(|h| (*h, payload::LIST_SIZE))
            .collect::<Vec<_>>();
        for (h, list) in attempts.into_iter().chain(deep) {
            let soft = self.soft_bits(&h, lo, hi);
            self.candidates_checked += list;
            checked += list;
            let Some(payload) = payload::decode_with_list(self.key, &soft, list) else {
                continue;
            };
            let sync_bound = (hypotheses as f64 * (-(h.z as f64).powi(2) / 2.0).exp()).min(1.0);
            let tag_bound = (checked as f64 * 2f64.powi(-(TAG_BITS as i32))).min(1.0);
            return Some(Found {
                payload,
                p_value: sync_bound * tag_bound,
                pilot_z: h.z,
                scale: h.scale,
                segments: self.segments(&h, payload, lo, hi),
            });
        }
        None
    }

    /// Searches frames `[lo, hi)` for a payload; on success, searches again the
    /// long stretches its segments leave unexplained.
    /// `scale_search`: whether to try the speed/tempo/pitch grid when the
    /// original scale decodes nothing (not for halves of a stretch whose
    /// pilot was already clear at the original scale).
    fn search(
        &mut self,
        lo: usize,
        hi: usize,
        depth: usize,
        scale_search: bool,
        found: &mut Vec<Found>,
    ) {
        let min_frames = BLOCK_FRAMES / 2;
        if hi <= lo || hi - lo < min_frames || depth > 3 {
            return;
        }
        // The original scale, over every anchor of one block.
        let unit = self.readings_for(1.0);
        let span = BLOCK_FRAMES;
        let mut hypotheses = span;
        self.searches += 1;
        let candidates = self.scan(unit, &[1.0], lo, hi);
        let unit_z = candidates
            .iter()
            .map(|h| h.z)
            .fold(f32::NEG_INFINITY, f32::max);
        let mut result = self.decode_best(candidates, hypotheses, 0, lo, hi);
        if result.is_none() && scale_search && !self.grid.scales.is_empty() {
            // The scale grid, on a central window, then refined over [lo, hi).
            let window = frames_in(SCALE_WINDOW_S).min(hi - lo);
            let w_lo = lo + (hi - lo - window) / 2;
            let w_hi = w_lo + window;
            let mut freq_scales: Vec<f32> = self.grid.scales.iter().map(|s| s.freq_scale).collect();
            freq_scales.sort_by(f32::total_cmp);
            freq_scales.dedup();
            let mut candidates = Vec::new();
            for freq_scale in freq_scales {
                let readings = self.readings_for(freq_scale);
                let time_scales: Vec<f32> = self
                    .grid
                    .scales
                    .iter()
                    .filter(|s| s.freq_scale == freq_scale)
                    .map(|s| s.time_scale)
                    .collect();
                hypotheses += time_scales
                    .iter()
                    .map(|t| (BLOCK_FRAMES as f64 * *t as f64).ceil() as usize)
                    .sum::<usize>();
                candidates.extend(self.scan(readings, &time_scales, w_lo, w_hi));
            }
            candidates.sort_by(|a, b| b.z.total_cmp(&a.z));
            candidates.truncate(DECODE_ATTEMPTS);
            let refined: Vec<Hypothesis> = candidates
                .iter()
                .flat_map(|h| self.refine(h, lo, hi, &mut hypotheses))
                .collect();
            // The first call's tag checks, counted at their most.
            let first_call = DECODE_ATTEMPTS * payload::LIST_SIZE + payload::DEEP_LIST_SIZE;
            result = self.decode_best(refined, hypotheses, first_call, lo, hi);
        }
        let Some(result) = result else {
            // A clear pilot that decodes to nothing: several payloads share
            // the stretch (copies spliced together). Halves are searched
            // separately, down to a few seconds.
            if unit_z >= MIN_PILOT_Z && frame_s((hi - lo) as f64) >= 2.0 * SPLIT_MIN_S {
                let mid = lo + (hi - lo) / 2;
                self.search(lo, mid, depth + 1, false, found);
                self.search(mid, hi, depth + 1, false, found);
            }
            return;
        };
        let covered = result.segments.clone();
        found.push(result);
        // Look for further payloads where this one is absent.
        let mut cursor = lo;
        for seg in covered
            .iter()
            .map(|s| (frames_in(s.start_s), frames_in(s.end_s)))
        {
            if seg.0 > cursor && frame_s((seg.0 - cursor) as f64) >= RESEARCH_S {
                self.search(cursor, seg.0.min(hi), depth + 1, true, found);
            }
            cursor = cursor.max(seg.1);
        }
        if hi > cursor && frame_s((hi - cursor) as f64) >= RESEARCH_S {
            self.search(cursor, hi, depth + 1, true, found);
        }
    }

    /// The best hypothesis near `h` over the whole `[lo, hi)`: a finer time
    /// scale step and the anchors around `h`'s, by the exact statistic.
    fn refine(
        &self,
        h: &Hypothesis,
        lo: usize,
        hi: usize,
        hypotheses: &mut usize,
    ) -> Option<Hypothesis> {
        const STEPS: i32 = 5;
        let mut best: Option<Hypothesis> = None;
        for k in -STEPS..=STEPS {
            let time_scale = h.scale.time_scale * (1.0 + k as f32 * TIME_STEP / STEPS as f32);
            for anchor in h.anchor.saturating_sub(FRAMES_PER_TILE)..=h.anchor + FRAMES_PER_TILE {
                let mut candidate = Hypothesis {
                    anchor,
                    scale: Scale {
                        time_scale,
                        freq_scale: h.scale.freq_scale,
                    },
                    ..*h
                };
                candidate.z = self.pilot_z(&candidate, lo, hi);
                *hypotheses += 1;
                if best.is_none_or(|b| candidate.z > b.z) {
                    best = Some(candidate);
                }
            }
        }
        best
    }

    /// Exact pilot statistic of one hypothesis over frames `[lo, hi)`: the
    /// readings are summed per block cell before squaring, which is what
    /// Hoeffding's bound needs (each chip multiplies one sum).
    fn pilot_z(&self, h: &Hypothesis, lo: usize, hi: usize) -> f32 {
        let cells = &self.readings[h.readings].cells;
        let mut sums = [0.0f32; BLOCK_CELLS];
        for (m, frame) in Self::columns(h.anchor, h.scale.time_scale, lo, hi) {
            let col = m.rem_euclid(BLOCK_COLUMNS as i64) as usize;
            let row = &cells[frame];
            for (band, &(value, _)) in row.iter().enumerate() {
                sums[col * BANDS + band] += value;
            }
        }
        let mut num = 0.0f32;
        let mut den = 0.0f32;
        for (col, pilots) in self.pilots.iter().enumerate() {
            for &(band, chip) in pilots {
                let v = sums[col * BANDS + band];
                num += chip * v;
                den += v * v;
            }
        }
        if den > 0.0 {
            num / den.sqrt()
        } else {
            0.0
        }
    }

    /// The fingerprint cells of every clear stretch, block by block, numbered
    /// by their index cells; where stretches overlap, each block is read
    /// under the hypothesis whose pilot is clearer there. Times are seconds
    /// from the start of this detector's slice.
    fn block_reads(&self) -> Vec<BlockRead> {
        let mut reads = Vec::new();
        for &(h, lo, hi) in &self.clear_pilots {
            for read in self.stretch_block_reads(&h, lo, hi) {
                merge_block_read(&mut reads, read);
            }
        }
        reads
    }

    /// The blocks of one stretch under hypothesis `h`, if its index cells
    /// agree on a numbering.
    fn stretch_block_reads(&self, h: &Hypothesis, lo: usize, hi: usize) -> Vec<BlockRead> {
        struct Partial {
            block: i64,
            first_frame: usize,
            last_frame: usize,
            columns: usize,
            pilot: (f32, f32),
            index: [f32; INDEX_CELLS],
            values: Vec<f32>,
        }
        let cells = &self.readings[h.readings].cells;
        let mut blocks: Vec<Partial> = Vec::new();
        for (m, frame) in Self::columns(h.anchor, h.scale.time_scale, lo, hi) {
            let block = m.div_euclid(BLOCK_COLUMNS as i64);
            if blocks.last().is_none_or(|b| b.block != block) {
                blocks.push(Partial {
                    block,
                    first_frame: frame,
                    last_frame: frame,
                    columns: 0,
                    pilot: (0.0, 0.0),
                    index: [0.0; INDEX_CELLS],
                    values: vec![0.0; FINGERPRINT_CELLS],
                });
            }
            let partial = blocks.last_mut().expect("just pushed");
            partial.last_frame = frame;
            partial.columns += 1;
            for (band, &(value, _)) in cells[frame].iter().enumerate() {
                let cell = self.layout.cell(m, band);
                match cell.role {
                    Role::Pilot => {
                        partial.pilot.0 += cell.chip * value;
                        partial.pilot.1 += value * value;
                    }
                    Role::Index(q) => partial.index[q as usize] = cell.chip * value,
                    Role::Fingerprint(f) => partial.values[f as usize] = cell.chip * value,
                    Role::Data(_) => {}
                }
            }
        }
        let z = |(num, den): (f32, f32)| if den > 0.0 { num / den.sqrt() } else { 0.0 };
        blocks.retain(|b| b.columns >= BLOCK_READ_MIN_COLUMNS && z(b.pilot) >= BLOCK_READ_Z);
        // The numbering: the block index (modulo the period) of relative
        // block 0 whose index rows best match the index cells read.
        let energy: f32 = blocks
            .iter()
            .flat_map(|b| b.index.iter())
            .map(|v| v * v)
            .sum();
        let Some((offset, index_z)) = (0..INDEX_PERIOD_BLOCKS as i64)
            .map(|offset| {
                let agreement: f32 = blocks
                    .iter()
                    .flat_map(|b| {
                        b.index.iter().enumerate().map(move |(q, v)| {
                            if self.layout.index_bit(offset + b.block, q as u16) {
                                *v
                            } else {
                                -v
                            }
                        })
                    })
                    .sum();
                (offset, z((agreement, energy)))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            return Vec::new();
        };
        if index_z < INDEX_Z {
            return Vec::new();
        }
        let cell_frames = FRAMES_PER_CELL as f64 * h.scale.time_scale as f64;
        blocks
            .into_iter()
            .map(|b| BlockRead {
                start_s: frame_s(b.first_frame as f64),
                end_s: frame_s(b.last_frame as f64 + cell_frames),
                index: (offset + b.block).rem_euclid(INDEX_PERIOD_BLOCKS as i64) as usize,
                pilot_z: z(b.pilot),
                values: b.values,
            })
            .collect()
    }

    /// Soft coded bits (positive = 1) under hypothesis `h`.
    fn soft_bits(&self, h: &Hypothesis, lo: usize, hi: usize) -> Vec<f32> {
        let cells = &self.readings[h.readings].cells;
        let mut soft = vec![0.0f32; self.layout.coded_bits()];
        for (m, frame) in Self::columns(h.anchor, h.scale.time_scale, lo, hi) {
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
    fn segments(&self, h: &Hypothesis, payload: u64, lo: usize, hi: usize) -> Vec<Segment> {
        let cells = &self.readings[h.readings].cells;
        let codeword = payload::codeword(self.key, payload);
        let columns: Vec<(i64, usize)> =
            Self::columns(h.anchor, h.scale.time_scale, lo, hi).collect();
        let cell_frames = FRAMES_PER_CELL as f64 * h.scale.time_scale as f64;
        let mut segments: Vec<Segment> = Vec::new();
        for window in columns.chunks(SEGMENT_COLUMNS) {
            let mut num = 0.0f32;
            let mut den = 0.0f32;
            for &(m, frame) in window {
                for (band, &(value, _)) in cells[frame].iter().enumerate() {
                    let cell = self.layout.cell(m, band);
                    // Data cells only: the pilot is the same in every copy
                    // made with this key, so it shows that a mark is there,
                    // not whose.
                    let Role::Data(j) = cell.role else {
                        continue;
                    };
                    let sign = if codeword[j as usize] { 1.0 } else { -1.0 };
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
