//! Informed embedding: the embedder reads each cell as the detector will, and
//! spends only the modulation that cell still needs.
//!
//! For a cell with keyed sign `s` (chip × coded bit) and host reading `h`
//! (the unmarked energy difference between its two tiles, dB), the detector's
//! evidence is `s · h` plus what we add. The embedder sets the modulation
//! depth `δ` (dB, applied +δ to one tile and −δ to the other) so that the
//! evidence reaches a margin, within `[δ_min, δ_max]`. Host interference, the
//! main noise of any blind mark, is thus cancelled where it is small and never
//! made worse (improved spread spectrum, Malvar & Florêncio 2003, applied to
//! log band energies).
//!
//! The modulation is a gain per tile and band, so the mark scales with the
//! signal: silent passages get nothing, quiet ones get proportionally little.

use earmark_dsp::{downmix_into, resample, sqrt_hann, BandDecimator, Fft};
use earmark_keys::SecretKey;

use crate::features::{cell_values, BandLevels};
use crate::layout::{
    band_edges_hz, Layout, Role, TileGrid, ANALYSIS_RATE, BANDS, BANDS_TOP_HZ, BLOCK_COLUMNS,
    BLOCK_S, FINGERPRINT_POSITIONS, TILES_PER_CELL, TILE_S,
};
use crate::perceptual::allowed_depths_db;
use crate::{payload, EngineError, MarkSettings};

/// Evidence each cell should reach, dB of tile-to-tile difference, at strength 1.
/// (3.5 until the fingerprint cells took 160 of the payload's 2000 cells;
/// 3.8 with a 0.7 dB minimum depth won back pitch −100 and MP3 32k at 10 s
/// for 0.1–0.3 dB of SNR, see docs/collusion.md.)
pub const MARGIN_DB: f32 = 3.8;
/// Smallest modulation depth of an active cell, dB, at strength 1: keeps a
/// reserve against channel noise even where the host already agrees.
pub const MIN_DEPTH_DB: f32 = 0.7;
/// Largest modulation depth, dB, at strength 1: the audibility cap.
///
/// It was 2.5 before the study below. Cells that must fight the host (a band moving
/// against its chip, as speech formants and harmonics crossing band edges
/// do) hit the cap, and under white noise at 20 dB those cells decided
/// whether a 10 s excerpt of 8 kHz speech decoded: 156 of 176 did (`earmark
/// bench --attacks noise:20 --excerpts 8`, seeds 1–16, the four 8 kHz speech
/// recordings). At 3.0: 173 of 176, mean raw error rate 0.242 → 0.209, for
/// 1.3 dB of SNR (17.9 → 16.5 dB on the call) and PESQ-NB 4.39 → 4.36. Per
/// decibel of SNR spent, raising the cap bought about twice the error rate
/// that a larger margin or minimum depth did, and a cap growing with the
/// host's own change (tried and not kept) bought the same as a flat one; the
/// table of variants is in docs/engine-figures.md, "The depth cap".
pub const MAX_DEPTH_DB: f32 = 3.0;
/// Estimated mark SNR (dB) above which a segment's mark is deepened.
pub const BOOST_ABOVE_SNR_DB: f64 = 21.0;
/// Largest deepening factor (applied to margin and depths).
pub const MAX_BOOST: f32 = 2.0;
/// Fraction of a tile's nominal gain that the detector's tile energy sees,
/// after the synthesis windows crossfade neighbouring tiles.
pub const REALISED_FRACTION: f32 = 0.6;

/// What embedding did, for reporting.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EmbedReport {
    /// The profile the mark was made with.
    pub profile: crate::Profile,
    /// Duration of the input, seconds.
    pub duration_s: f64,
    /// Seconds of audio whose cells carry the mark (active cells / bands × cell duration).
    pub marked_s: f64,
    /// Signal-to-watermark ratio over the whole file, dB (all channels).
    pub snr_db: f32,
    /// Mean modulation depth of the marked cells, dB.
    pub mean_depth_db: f32,
    /// Long enough, with enough sound, for the mark to be read back from
    /// the copy alone ([`BLIND_READ_S`], [`BLIND_READ_SOUND_S`]). A copy
    /// short of that carries its mark all the same, for tracing against
    /// the master.
    pub blind_readable: bool,
}

/// Audio a copy needs for its mark to be read back from it alone, seconds:
/// every coded bit several times over, in two blocks.
pub const BLIND_READ_S: f64 = 2.0 * BLOCK_S;
/// Sound within that, seconds: one block's worth of marked cells.
pub const BLIND_READ_SOUND_S: f64 = BLOCK_S;

impl EmbedReport {
    /// A warning when the copy is too short or too quiet for its mark to be
    /// read back without the master.
    pub fn shortfall(&self) -> Option<String> {
        (!self.blind_readable).then(|| {
            format!(
                "only {:.1} s of this {:.1} s recording has sound to carry the mark; it can be \
                 traced against its master, but reading it from the copy alone needs {:.0} s \
                 with {:.0} s of sound",
                self.marked_s, self.duration_s, BLIND_READ_S, BLIND_READ_SOUND_S
            )
        })
    }
}

/// Seconds of output per processing segment of the streaming embedder: a
/// whole number of cells, so the keyed layout continues across segments.
/// Short enough that a segment's working buffers stay in cache through every
/// stage (30 s segments made embedding 20–30 % slower), long enough that the
/// context is a small overhead.
pub const SEGMENT_S: f64 = 6.0;
/// Context on each side of a segment, seconds (5 cells): covers the
/// resamplers' and the synthesis windows' reach (tens of milliseconds), so
/// segment joins are seamless.
pub const CONTEXT_S: f64 = 0.2;

/// Embeds `payload` into `channels` (planar, equal lengths, `rate` Hz) in place.
///
/// `settings` choose the profile and the strength. This is [`Embedder`] fed
/// the whole buffer at once.
/// The fingerprint cells carry all zeros; [`embed_fingerprinted`] gives them
/// a recipient's codeword.
pub fn embed(
    channels: &mut [Vec<f32>],
    rate: u32,
    key: &SecretKey,
    payload: u64,
    settings: MarkSettings,
) -> Result<EmbedReport, EngineError> {
    crate::check_input(channels, rate)?;
    let embedder = Embedder::new(rate, channels.len(), key, payload, settings)?;
    embed_with(embedder, channels)
}

/// [`embed`], with `fingerprint` ([`FINGERPRINT_POSITIONS`] bits, one per
/// code position) in the fingerprint cells.
pub fn embed_fingerprinted(
    channels: &mut [Vec<f32>],
    rate: u32,
    key: &SecretKey,
    payload: u64,
    fingerprint: &[bool],
    settings: MarkSettings,
) -> Result<EmbedReport, EngineError> {
    crate::check_input(channels, rate)?;
    let embedder = Embedder::new(rate, channels.len(), key, payload, settings)?
        .with_fingerprint(fingerprint)?;
    embed_with(embedder, channels)
}

fn embed_with(
    mut embedder: Embedder,
    channels: &mut [Vec<f32>],
) -> Result<EmbedReport, EngineError> {
    // The same segments as streaming (see `Embedder::push`), marked in place.
    // Each window is copied into a reused buffer first, with the unmarked
    // left context saved before the previous segment overwrote it.
    let frames = channels[0].len();
    embedder.stats.frames = frames;
    let mut windows: Vec<Vec<f32>> = vec![Vec::new(); channels.len()];
    let mut left_context: Vec<Vec<f32>> = vec![Vec::new(); channels.len()];
    let mut start = 0;
    while start < frames {
        let end = if start + embedder.segment + embedder.context <= frames {
            start + embedder.segment
        } else {
            frames
        };
        let from = start.saturating_sub(embedder.context);
        let to = (end + embedder.context).min(frames);
        for ((window, saved), channel) in windows.iter_mut().zip(&mut left_context).zip(&*channels)
        {
            window.clear();
            window.extend_from_slice(saved);
            window.extend_from_slice(&channel[start..to]);
            saved.clear();
            saved.extend_from_slice(&channel[end.saturating_sub(embedder.context)..end]);
        }
        let views: Vec<&[f32]> = windows.iter().map(Vec::as_slice).collect();
        let mut outputs: Vec<&mut [f32]> =
            channels.iter_mut().map(|c| &mut c[start..end]).collect();
        let first_tile = embedder.tile_at(from);
        let mut workspace = embedder.workspaces.swap_remove(0);
        let stats = embedder.mark_window(
            &mut workspace,
            &views,
            first_tile,
            start - from,
            end - from,
            &mut outputs,
        );
        embedder.workspaces.push(workspace);
        embedder.stats.add(&stats);
        start = end;
    }
    embedder.report()
}

/// A streaming embedder: push planar chunks of any size, get marked samples
/// back in order (delayed by up to a segment plus context), then
/// [`Embedder::finish`]. Memory is bounded by a batch of segments (two per
/// rayon thread, at most [`PARALLEL_BUDGET_SAMPLES`] samples), whatever the
/// length; the segments of a batch are marked in parallel.
///
/// Each segment of [`SEGMENT_S`] seconds is processed with [`CONTEXT_S`]
/// seconds of the neighbouring audio on either side; segment starts fall on
/// cell boundaries, so cells are numbered exactly as in one pass.
pub struct Embedder {
    rate: u32,
    codeword: Vec<bool>,
    /// Bit per fingerprint position.
    fingerprint: Vec<bool>,
    layout: Layout,
    margin_db: f32,
    min_depth_db: f32,
    max_depth_db: f32,
    /// The masking model's allowance over the threshold, dB; `None`: unused.
    masking_allowance_db: Option<f32>,
    profile: crate::Profile,
    segment: usize,
    context: usize,
    /// Buffered input, from absolute sample `buffer_start`.
    buffer: Vec<Vec<f32>>,
    buffer_start: usize,
    /// Absolute index of the next sample to output.
    next_out: usize,
    stats: Stats,
    /// Working rate's tile grid.
    grid: TileGrid,
    /// One set of working buffers per segment marked at once.
    workspaces: Vec<Workspace>,
    /// Output buffers handed back by the caller, refilled next; at most
    /// [`SPARE_OUTPUTS`] of them.
    spare_outputs: Vec<Vec<Vec<f32>>>,
}

/// What marking one segment needs besides the embedder's settings: the way
/// to the working rate and back, and buffers reused from segment to segment.
#[derive(Clone)]
struct Workspace {
    bridge: RateBridge,
    /// The channels at the working rate.
    lows: Vec<Vec<f32>>,
    /// One channel's mark at the working rate.
    low_scratch: Vec<f32>,
    /// One channel's mark at the file's rate (the downmix, before that).
    mark_scratch: Vec<f32>,
}

/// Output buffers kept for reuse: a streaming caller has a few batches in
/// flight (queued for the writer, being written, being filled), and every
/// one dropped is a batch of fresh memory, zeroed page by page by the
/// kernel, on the next.
const SPARE_OUTPUTS: usize = 4;

/// Frames a streaming caller typically pushes at once (decoders hand over
/// blocks of 64k frames); only sizes the input buffer.
const TYPICAL_CHUNK_FRAMES: usize = 1 << 16;

/// Samples (all channels) the embedder may hold to mark segments side by
/// side: 64 MB of `f32`, which caps the parallelism for many channels at high
/// rates and never binds for stereo at 48 kHz.
pub const PARALLEL_BUDGET_SAMPLES: usize = 16 << 20;

#[derive(Default)]
struct Stats {
    frames: usize,
    active_cells: usize,
    depth_sum: f64,
    signal_energy: f64,
    mark_energy: f64,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.frames += other.frames;
        self.active_cells += other.active_cells;
        self.depth_sum += other.depth_sum;
        self.signal_energy += other.signal_energy;
        self.mark_energy += other.mark_energy;
    }
}

impl Embedder {
    /// An embedder for audio at `rate` Hz with `channels` channels.
    pub fn new(
        rate: u32,
        channels: usize,
        key: &SecretKey,
        payload: u64,
        settings: MarkSettings,
    ) -> Result<Self, EngineError> {
        crate::check_format(rate, channels)?;
        settings.check()?;
        let (margin_db, min_depth_db, max_depth_db) = settings.depth_limits_db();
        let codeword = payload::codeword(key, payload);
        let layout = Layout::new(key, codeword.len());
        let (grid, bridge) = RateBridge::for_rate(rate);
        let segment = (SEGMENT_S * rate as f64).round() as usize;
        let context = (CONTEXT_S * rate as f64).round() as usize;
        // Segments are independent given their context, so several are
        // marked at once, as memory allows; the output does not depend on
        // how many. Two per thread, because segments differ in cost (silence
        // is skipped) and a batch waits for its slowest.
        let side_by_side = (2 * rayon::current_num_threads())
            .min(PARALLEL_BUDGET_SAMPLES / ((segment + 2 * context) * channels).max(1))
            .max(1);
        let workspace = Workspace {
            bridge,
            lows: Vec::new(),
            low_scratch: Vec::new(),
            mark_scratch: Vec::new(),
        };
        Ok(Embedder {
            rate,
            codeword,
            fingerprint: vec![false; FINGERPRINT_POSITIONS],
            layout,
            margin_db,
            min_depth_db,
            max_depth_db,
            masking_allowance_db: settings.masking_allowance_db(),
            profile: settings.profile,
            segment,
            context,
            // Room for a batch with its context and one more pushed chunk
            // of typical size: grown by doubling instead, the buffer was
            // copied to fresh memory several times over.
            buffer: vec![
                Vec::with_capacity(
                    side_by_side * segment + 2 * context + TYPICAL_CHUNK_FRAMES
                );
                channels
            ],
            buffer_start: 0,
            next_out: 0,
            stats: Stats::default(),
            grid,
            workspaces: vec![workspace; side_by_side],
            spare_outputs: Vec::new(),
        })
    }

    /// Puts `fingerprint` ([`FINGERPRINT_POSITIONS`] bits, one per code
    /// position) in the fingerprint cells instead of zeros.
    pub fn with_fingerprint(mut self, fingerprint: &[bool]) -> Result<Self, EngineError> {
        if fingerprint.len() != FINGERPRINT_POSITIONS {
            return Err(EngineError::BadFingerprint(fingerprint.len()));
        }
        self.fingerprint = fingerprint.to_vec();
        Ok(self)
    }

    fn buffer_end(&self) -> usize {
        self.buffer_start + self.buffer[0].len()
    }

    /// Adds input; returns the marked samples that are ready.
    pub fn push(&mut self, chunk: &[Vec<f32>]) -> Vec<Vec<f32>> {
        for (b, c) in self.buffer.iter_mut().zip(chunk) {
            b.extend_from_slice(c);
        }
        self.stats.frames += chunk.first().map_or(0, Vec::len);
        let mut out = self.output_buffers();
        // Waits until every workspace has a segment, then marks them together.
        let batch = self.workspaces.len();
        while self.ready_segments() >= batch {
            self.emit(batch, &mut out);
        }
        out
    }

    /// Hands back what [`Embedder::push`] returned, once written: the next
    /// output is put there instead of in fresh memory.
    pub fn recycle(&mut self, output: Vec<Vec<f32>>) {
        let capacity = |o: &Vec<Vec<f32>>| o.first().map_or(0, Vec::capacity);
        if capacity(&output) == 0 {
            return;
        }
        self.spare_outputs.push(output);
        // The largest last, to be refilled first; the smallest let go.
        self.spare_outputs.sort_by_key(capacity);
        if self.spare_outputs.len() > SPARE_OUTPUTS {
            self.spare_outputs.remove(0);
        }
    }

    fn output_buffers(&mut self) -> Vec<Vec<f32>> {
        let channels = self.buffer.len();
        match self.spare_outputs.pop() {
            Some(mut spare) if spare.len() == channels => {
                spare.iter_mut().for_each(Vec::clear);
                spare
            }
            _ => vec![Vec::new(); channels],
        }
    }

    /// Marks what is left and returns it with the report; refuses input
    /// with no sound at all (the report warns of too little, see
    /// [`EmbedReport::shortfall`]).
    pub fn finish(mut self) -> Result<(Vec<Vec<f32>>, EmbedReport), EngineError> {
        let mut out = vec![Vec::new(); self.buffer.len()];
        let ready = self.ready_segments();
        if ready > 0 {
            self.emit(ready, &mut out);
        }
        // The tail, shorter than a segment and its context, in one piece.
        let end = self.buffer_end();
        if end > self.next_out {
            self.emit_one(end, &mut out);
        }
        Ok((out, self.report()?))
    }

    /// Whole segments that have their right-hand context buffered.
    fn ready_segments(&self) -> usize {
        let available = self
            .buffer_end()
            .saturating_sub(self.next_out + self.context);
        available / self.segment
    }

    /// The report over everything marked so far; an error if none of it
    /// had sound to carry the mark.
    fn report(&self) -> Result<EmbedReport, EngineError> {
        let stats = &self.stats;
        let duration_s = stats.frames as f64 / self.rate as f64;
        let marked_s = stats.active_cells as f64 / BANDS as f64 * TILES_PER_CELL as f64 * TILE_S;
        if stats.active_cells == 0 {
            return Err(EngineError::NoSound { duration_s });
        }
        Ok(EmbedReport {
            blind_readable: duration_s >= BLIND_READ_S && marked_s >= BLIND_READ_SOUND_S,
            profile: self.profile,
            duration_s,
            marked_s,
            snr_db: (10.0 * (stats.signal_energy.max(1e-20) / stats.mark_energy.max(1e-20)).log10())
                as f32,
            mean_depth_db: (stats.depth_sum / stats.active_cells.max(1) as f64) as f32,
        })
    }

    /// Global index of the tile starting at sample `sample`, which must fall
    /// on a cell boundary (segment and context are whole numbers of cells).
    fn tile_at(&self, sample: usize) -> i64 {
        (sample as f64 / self.rate as f64 / TILE_S).round() as i64
    }

    /// Marks the next `count` whole segments, side by side.
    fn emit(&mut self, count: usize, out: &mut [Vec<f32>]) {
        let ends: Vec<usize> = (1..=count)
            .map(|k| self.next_out + k * self.segment)
            .collect();
        self.emit_pieces(&ends, out);
    }

    /// Marks `[next_out, end)` as one piece.
    fn emit_one(&mut self, end: usize, out: &mut [Vec<f32>]) {
        self.emit_pieces(&[end], out);
    }

    /// Marks the pieces `[next_out, ends[0])`, `[ends[0], ends[1])`, … each
    /// with context around it and on a workspace of its own, appends them to
    /// `out` in order and drops input no longer needed.
    fn emit_pieces(&mut self, ends: &[usize], out: &mut [Vec<f32>]) {
        use rayon::prelude::*;
        let start = self.next_out;
        let end = *ends.last().expect("at least one piece");
        let buffer_end = self.buffer_end();
        let pieces: Vec<(usize, usize)> = std::iter::once(start)
            .chain(ends.iter().copied())
            .zip(ends.iter().copied())
            .collect();
        // Each channel's new output, cut into one slice per piece.
        let mut outputs: Vec<Vec<&mut [f32]>> = pieces.iter().map(|_| Vec::new()).collect();
        for o in out.iter_mut() {
            let at = o.len();
            o.resize(at + end - start, 0.0);
            let mut rest = &mut o[at..];
            for (piece, &(from, to)) in outputs.iter_mut().zip(&pieces) {
                let (this, after) = rest.split_at_mut(to - from);
                piece.push(this);
                rest = after;
            }
        }
        let mut workspaces = std::mem::take(&mut self.workspaces);
        let this = &*self;
        let stats: Vec<Stats> = pieces
            .par_iter()
            .zip(workspaces.par_iter_mut())
            .zip(outputs.par_iter_mut())
            .map(|((&(piece_start, piece_end), workspace), outputs)| {
                let from = piece_start.saturating_sub(this.context);
                let to = (piece_end + this.context).min(buffer_end);
                let window: Vec<&[f32]> = this
                    .buffer
                    .iter()
                    .map(|b| &b[from - this.buffer_start..to - this.buffer_start])
                    .collect();
                this.mark_window(
                    workspace,
                    &window,
                    this.tile_at(from),
                    piece_start - from,
                    piece_end - from,
                    outputs,
                )
            })
            .collect();
        drop(outputs);
        self.workspaces = workspaces;
        for piece in stats {
            self.stats.add(&piece);
        }
        self.next_out = end;
        let keep_from = end.saturating_sub(self.context).max(self.buffer_start);
        let drop = keep_from - self.buffer_start;
        for b in self.buffer.iter_mut() {
            b.drain(..drop);
        }
        self.buffer_start = keep_from;
    }

    /// Per-tile, per-band gains (dB) for the tiles of `levels`, whose first
    /// tile is global tile `first_tile`; `boost` scales margin and depths.
    /// `allowed` (per tile and band, dB) caps each cell's depth at the
    /// lesser of its two tiles'.
    fn plan_gains(
        &self,
        levels: &BandLevels,
        first_tile: i64,
        boost: f32,
        allowed: Option<&[f32]>,
    ) -> Vec<f32> {
        let columns = levels.frames / TILES_PER_CELL;
        let mut gains_db = vec![0.0f32; levels.frames * BANDS];
        let (margin, min_depth, max_depth) = (
            self.margin_db * boost,
            self.min_depth_db * boost,
            self.max_depth_db * boost,
        );
        for column in 0..columns {
            let first = 2 * column;
            let global_column = (first_tile + first as i64) / 2;
            let block = global_column.div_euclid(BLOCK_COLUMNS as i64);
            let cells = cell_values(levels.frame(first), levels.frame(first + 1));
            for (band, &(host, weight)) in cells.iter().enumerate() {
                if weight == 0.0 {
                    continue;
                }
                let cell = self.layout.cell(global_column, band);
                let bit = match cell.role {
                    Role::Pilot => true,
                    Role::Data(j) => self.codeword[j as usize],
                    Role::Index(q) => self.layout.index_bit(block, q),
                    Role::Fingerprint(f) => {
                        self.fingerprint[Layout::fingerprint_position(block, f)]
                    }
                };
                let bit_sign = if bit { 1.0 } else { -1.0 };
                let sign = cell.chip * bit_sign;
                let needed = (margin - sign * host) / (2.0 * REALISED_FRACTION);
                let mut depth = needed.clamp(min_depth, max_depth);
                if let Some(allowed) = allowed {
                    let inaudible =
                        allowed[first * BANDS + band].min(allowed[(first + 1) * BANDS + band]);
                    depth = depth.min(inaudible);
                }
                gains_db[first * BANDS + band] = sign * depth;
                gains_db[(first + 1) * BANDS + band] = -sign * depth;
            }
        }
        gains_db
    }

    /// Marks `window` (planar, starting at global tile `first_tile`) and
    /// writes its samples `[keep_from, keep_to)` to `out` (one slice of that
    /// length per channel); returns the statistics of those.
    fn mark_window(
        &self,
        workspace: &mut Workspace,
        window: &[&[f32]],
        first_tile: i64,
        keep_from: usize,
        keep_to: usize,
        out: &mut [&mut [f32]],
    ) -> Stats {
        let mut stats = Stats::default();
        let rate = self.rate;
        let grid = self.grid;
        let Workspace {
            bridge,
            lows: low_buffers,
            low_scratch,
            mark_scratch,
        } = workspace;
        low_buffers.resize_with(window.len(), Vec::new);
        let lows: Vec<&[f32]> = match bridge {
            // At the file's own rate the window itself is the working signal.
            RateBridge::Decimate(d) if d.factor() == 1 => window.to_vec(),
            _ => {
                for (low, channel) in low_buffers.iter_mut().zip(window) {
                    bridge.down(channel, rate, low);
                }
                low_buffers.iter().map(Vec::as_slice).collect()
            }
        };
        // Resampling is linear, so the mean of the brought-down channels is
        // the brought-down downmix: the analysis signal.
        let levels = if lows.len() == 1 {
            BandLevels::compute_on(lows[0], &grid, grid.tile, 1.0)
        } else {
            // The mark scratch is free until rendering: it holds the downmix.
            downmix_into(&lows, mark_scratch);
            BandLevels::compute_on(mark_scratch, &grid, grid.tile, 1.0)
        };
        let columns = levels.frames / TILES_PER_CELL;
        let tile_samples = rate as f64 * TILE_S;
        let kept_tiles = (keep_from as f64 / tile_samples).round() as usize
            ..(keep_to as f64 / tile_samples).round() as usize;
        // Where the recording's energy lies mostly outside the marked bands
        // (percussion, bass-heavy music), a mark of default depth is far
        // quieter than the signal around it; it may then be deepened until
        // its estimated SNR reaches that of the default mark on speech.
        let allowed = self
            .masking_allowance_db
            .map(|allowance| allowed_depths_db(&levels, allowance));
        let allowed = allowed.as_deref();
        let mut boost = 1.0;
        let mut gains_db = self.plan_gains(&levels, first_tile, boost, allowed);
        let signal = window.iter().map(|c| sum_squares(c)).sum::<f64>()
            / (window.len() * window[0].len()).max(1) as f64;
        let snr = 10.0 * (signal / mark_power(&levels, &gains_db).max(1e-20)).log10();
        if snr > BOOST_ABOVE_SNR_DB {
            boost = 10f64
                .powf((snr - BOOST_ABOVE_SNR_DB) / 20.0)
                .min(MAX_BOOST as f64) as f32;
            gains_db = self.plan_gains(&levels, first_tile, boost, allowed);
        }
        for column in 0..columns {
            let first = 2 * column;
            if !kept_tiles.contains(&first) {
                continue;
            }
            for band in 0..BANDS {
                let depth = gains_db[first * BANDS + band].abs();
                if depth > 0.0 {
                    stats.active_cells += 1;
                    stats.depth_sum += depth as f64;
                }
            }
        }
        for (c, channel) in window.iter().enumerate() {
            // The mark lives below 3.35 kHz: it is rendered at the working
            // rate and brought up to the file's rate, the same result as
            // rendering at full rate for a fraction of the work.
            render_mark(lows[c], &gains_db, &grid, low_scratch);
            let mark = match &mut *bridge {
                RateBridge::Decimate(d) if d.factor() == 1 => &*low_scratch,
                RateBridge::Decimate(d) => {
                    d.interpolate(low_scratch, channel.len(), mark_scratch);
                    &*mark_scratch
                }
                RateBridge::Resample => {
                    *mark_scratch = resample(low_scratch, grid.rate, rate);
                    mark_scratch.resize(channel.len(), 0.0);
                    &*mark_scratch
                }
            };
            let (signal, mark) = add_mark(
                &channel[keep_from..keep_to],
                &mark[keep_from..keep_to],
                out[c],
            );
            stats.signal_energy += signal;
            stats.mark_energy += mark;
        }
        stats
    }
}

/// How the embedder gets from the file's rate to the rate it works at, and back.
#[derive(Clone)]
enum RateBridge {
    /// An integer decimation factor (1: work at the file's rate). Only the
    /// marked bands must survive, so a short filter does.
    Decimate(BandDecimator),
    /// The file's rate has no whole-sample tile grid at any integer fraction
    /// (11.025, 22.05 kHz): the general resampler to [`ANALYSIS_RATE`].
    Resample,
}

impl RateBridge {
    /// Working-rate grid and bridge for a file at `rate` Hz.
    fn for_rate(rate: u32) -> (TileGrid, RateBridge) {
        match TileGrid::for_embedding(rate) {
            Some((factor, grid)) => (
                grid,
                RateBridge::Decimate(BandDecimator::new(rate, factor, BANDS_TOP_HZ)),
            ),
            None => (TileGrid::ANALYSIS, RateBridge::Resample),
        }
    }

    /// Writes `x` (at `rate` Hz) at the working rate into `low`.
    fn down(&mut self, x: &[f32], rate: u32, low: &mut Vec<f32>) {
        match self {
            RateBridge::Decimate(d) => d.decimate(x, low),
            RateBridge::Resample => *low = resample(x, rate, ANALYSIS_RATE),
        }
    }
}

/// Lanes of the partial sums below: wide enough for the compiler to vectorise.
const LANES: usize = 8;

/// Σ x², summed in f32 lanes over short runs and in f64 across them.
fn sum_squares(x: &[f32]) -> f64 {
    x.chunks(1024)
        .map(|run| {
            let mut lanes = [0.0f32; LANES];
            let mut chunks = run.chunks_exact(LANES);
            for chunk in &mut chunks {
                for (l, &v) in lanes.iter_mut().zip(chunk) {
                    *l += v * v;
                }
            }
            let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
            (lanes.iter().sum::<f32>() + tail) as f64
        })
        .sum()
}

/// Writes `host + mark`, clipped to full scale, to `out`; returns the
/// energies of the host and of what was actually added.
///
/// Three simple loops per cache-sized run (sum, energy of the host, energy of
/// the change) rather than one loop doing all three: each of these
/// vectorises, the fused loop did not.
fn add_mark(host: &[f32], mark: &[f32], out: &mut [f32]) -> (f64, f64) {
    let (mut signal, mut added) = (0.0f64, 0.0f64);
    for ((host, mark), out) in host
        .chunks(1024)
        .zip(mark.chunks(1024))
        .zip(out.chunks_mut(1024))
    {
        for ((y, &h), &m) in out.iter_mut().zip(host).zip(mark) {
            *y = clip_to_full_scale(h + m);
        }
        signal += sum_squares(host);
        added += sum_squared_differences(out, host);
    }
    (signal, added)
}

/// Σ (a − b)², in the same lanes as [`sum_squares`] (one run: f32 is enough).
fn sum_squared_differences(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0.0f32; LANES];
    let mut a_chunks = a.chunks_exact(LANES);
    let mut b_chunks = b.chunks_exact(LANES);
    for (a, b) in (&mut a_chunks).zip(&mut b_chunks) {
        for ((l, &x), &y) in lanes.iter_mut().zip(a).zip(b) {
            *l += (x - y) * (x - y);
        }
    }
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(&x, &y)| (x - y) * (x - y))
        .sum();
    (lanes.iter().sum::<f32>() + tail) as f64
}

/// `y` limited to ±1 (full scale). Written as two selects rather than
/// `f32::clamp`, which kept the loop in `add_mark` scalar; a NaN passes
/// through either way.
#[inline(always)]
fn clip_to_full_scale(y: f32) -> f32 {
    let y = if y > 1.0 { 1.0 } else { y };
    if y < -1.0 {
        -1.0
    } else {
        y
    }
}

/// Estimated mean-square power of the mark: each tile and band's power
/// times the square of its gain change.
fn mark_power(levels: &BandLevels, gains_db: &[f32]) -> f64 {
    let total: f64 = levels
        .levels
        .iter()
        .zip(gains_db)
        .map(|(&level, &gain)| {
            // 10^(g/20) − 1 and 10^(L/10), through exp (several times faster than powf).
            let change = (gain as f64 * std::f64::consts::LN_10 / 20.0).exp_m1();
            (level as f64 * std::f64::consts::LN_10 / 10.0).exp() * change * change
        })
        .sum();
    total / levels.frames.max(1) as f64
}

/// Writes into `mark` the additive mark for one channel sampled on `grid`:
/// `Σ_frames w · IFFT((g − 1) · FFT(w · x))` over sqrt-Hann frames one tile
/// long, hop half a tile (FFTs zero-padded to `grid.fft_len`). Even frames sit
/// on tiles and take that tile's gains; odd frames straddle tile boundaries and
/// take the mean (in dB) of the two tiles' gains.
fn render_mark(x: &[f32], gains_db: &[f32], grid: &TileGrid, mark: &mut Vec<f32>) {
    let tiles = gains_db.len() / BANDS;
    let hop = grid.tile / 2;
    let size = 2 * hop;
    let window = sqrt_hann(size);
    let mut fft = Fft::new(grid.fft_len);
    let bins = fft.bins();
    let bin_hz = grid.bin_hz();
    // Each band's bins, a contiguous run: the gain is applied run by run (a
    // per-bin band lookup cost more than the inverse FFT). Bins outside
    // every band carry no mark and are zeroed.
    let band_bins: Vec<std::ops::Range<usize>> = (0..BANDS)
        .map(|b| {
            let (low, high) = band_edges_hz(b);
            let first = (0..bins)
                .find(|&k| k as f32 * bin_hz >= low)
                .unwrap_or(bins);
            let end = (first..bins)
                .find(|&k| k as f32 * bin_hz >= high)
                .unwrap_or(bins);
            first..end
        })
        .collect();
    // Amplitude factors per tile and band, computed once: each tile feeds
    // three frames.
    let amplitudes: Vec<f32> = gains_db.iter().map(|&db| 10f32.powf(db / 20.0)).collect();
    let amplitude_of = |tile: i64, band: usize| -> f32 {
        if tile < 0 || tile as usize >= tiles {
            1.0
        } else {
            amplitudes[tile as usize * BANDS + band]
        }
    };
    mark.clear();
    mark.resize(x.len(), 0.0);
    let mut frame = vec![0.0f32; size];
    let mut spectrum = vec![Default::default(); bins];
    let mut band_factor = [0.0f32; BANDS];
    let mut index: i64 = -1;
    loop {
        let start = index * hop as i64;
        if start >= x.len() as i64 {
            break;
        }
        let tile = index.div_euclid(2);
        let mut any = false;
        for (band, factor) in band_factor.iter_mut().enumerate() {
            // Odd frames take the mean gain in dB: the geometric mean of amplitudes.
            let amplitude = if index % 2 == 0 {
                amplitude_of(tile, band)
            } else {
                (amplitude_of(tile, band) * amplitude_of(tile + 1, band)).sqrt()
            };
            *factor = amplitude - 1.0;
            any |= amplitude != 1.0;
        }
        if any {
            let inside = start >= 0 && start as usize + size <= x.len();
            if inside {
                let at = start as usize;
                fft.forward(&x[at..at + size], &window, &mut spectrum);
            } else {
                for (i, f) in frame.iter_mut().enumerate() {
                    let at = start + i as i64;
                    *f = if at >= 0 && (at as usize) < x.len() {
                        x[at as usize]
                    } else {
                        0.0
                    };
                }
                fft.forward(&frame, &window, &mut spectrum);
            }
            let mut next = 0;
            for (run, &factor) in band_bins.iter().zip(&band_factor) {
                spectrum[next..run.start].fill(Default::default());
                spectrum[run.clone()].iter_mut().for_each(|s| *s *= factor);
                next = run.end;
            }
            spectrum[next..].fill(Default::default());
            if inside {
                let at = start as usize;
                fft.inverse_add(&mut spectrum, &window, &mut mark[at..at + size]);
            } else {
                // First and last frames hang over the ends of the signal.
                frame.iter_mut().for_each(|f| *f = 0.0);
                fft.inverse_add(&mut spectrum, &window, &mut frame);
                for (i, o) in frame.iter().enumerate() {
                    let at = start + i as i64;
                    if at >= 0 && (at as usize) < mark.len() {
                        mark[at as usize] += o;
                    }
                }
            }
        }
        index += 1;
    }
}
