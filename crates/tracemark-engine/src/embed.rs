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

use tracemark_dsp::{resample, sqrt_hann, Fft};
use tracemark_keys::SecretKey;

use crate::features::{cell_values, BandLevels};
use crate::layout::{
    band_edges_hz, Layout, Role, ANALYSIS_RATE, BANDS, BLOCK_S, TILES_PER_CELL, TILE_S,
    TILE_SAMPLES,
};
use crate::{downmix, payload, EngineError};

/// Evidence each cell should reach, dB of tile-to-tile difference, at strength 1.
pub const MARGIN_DB: f32 = 3.5;
/// Smallest modulation depth of an active cell, dB, at strength 1: keeps a
/// reserve against channel noise even where the host already agrees.
pub const MIN_DEPTH_DB: f32 = 0.6;
/// Largest modulation depth, dB, at strength 1: the audibility cap.
pub const MAX_DEPTH_DB: f32 = 2.5;
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
    /// Duration of the input, seconds.
    pub duration_s: f64,
    /// Seconds of audio whose cells carry the mark (active cells / bands × cell duration).
    pub marked_s: f64,
    /// Signal-to-watermark ratio over the whole file, dB (all channels).
    pub snr_db: f32,
    /// Mean modulation depth of the marked cells, dB.
    pub mean_depth_db: f32,
}

/// Seconds of output per processing segment of the streaming embedder: a
/// whole number of cells, so the keyed layout continues across segments.
pub const SEGMENT_S: u32 = 30;
/// Context on each side of a segment, seconds: covers the resamplers' and the
/// synthesis windows' reach, so segment joins are seamless.
pub const CONTEXT_S: u32 = 1;

/// Embeds `payload` into `channels` (planar, equal lengths, `rate` Hz) in place.
///
/// `strength` scales the margin and both depth limits (1.0 = default). This
/// is [`Embedder`] fed the whole buffer at once.
pub fn embed(
    channels: &mut [Vec<f32>],
    rate: u32,
    key: &SecretKey,
    payload: u64,
    strength: f32,
) -> Result<EmbedReport, EngineError> {
    crate::check_input(channels, rate)?;
    let mut embedder = Embedder::new(rate, channels.len(), key, payload, strength)?;
    let mut out = embedder.push(channels);
    let (tail, report) = embedder.finish()?;
    for (o, t) in out.iter_mut().zip(tail) {
        o.extend(t);
    }
    for (c, o) in channels.iter_mut().zip(out) {
        *c = o;
    }
    Ok(report)
}

/// A streaming embedder: push planar chunks of any size, get marked samples
/// back in order (delayed by up to a segment plus context), then
/// [`Embedder::finish`]. Memory is bounded by a segment, whatever the length.
///
/// Each segment of [`SEGMENT_S`] seconds is processed with [`CONTEXT_S`]
/// seconds of the neighbouring audio on either side; segment starts fall on
/// cell boundaries, so cells are numbered exactly as in one pass.
pub struct Embedder {
    rate: u32,
    codeword: Vec<bool>,
    layout: Layout,
    margin_db: f32,
    min_depth_db: f32,
    max_depth_db: f32,
    segment: usize,
    context: usize,
    /// Buffered input, from absolute sample `buffer_start`.
    buffer: Vec<Vec<f32>>,
    buffer_start: usize,
    /// Absolute index of the next sample to output.
    next_out: usize,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    frames: usize,
    active_cells: usize,
    depth_sum: f64,
    signal_energy: f64,
    mark_energy: f64,
}

impl Embedder {
    /// An embedder for audio at `rate` Hz with `channels` channels.
    pub fn new(
        rate: u32,
        channels: usize,
        key: &SecretKey,
        payload: u64,
        strength: f32,
    ) -> Result<Self, EngineError> {
        crate::check_format(rate, channels)?;
        if !(0.05..=8.0).contains(&strength) {
            return Err(EngineError::BadStrength(strength));
        }
        let codeword = payload::codeword(key, payload);
        let layout = Layout::new(key, codeword.len());
        Ok(Embedder {
            rate,
            codeword,
            layout,
            margin_db: MARGIN_DB * strength,
            min_depth_db: MIN_DEPTH_DB * strength,
            max_depth_db: MAX_DEPTH_DB * strength,
            segment: (SEGMENT_S * rate) as usize,
            context: (CONTEXT_S * rate) as usize,
            buffer: vec![Vec::new(); channels],
            buffer_start: 0,
            next_out: 0,
            stats: Stats::default(),
        })
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
        let mut out = vec![Vec::new(); self.buffer.len()];
        while self.buffer_end() >= self.next_out + self.segment + self.context {
            let end = self.next_out + self.segment;
            self.emit(end, &mut out);
        }
        out
    }

    /// Marks what is left and returns it with the report; refuses input too
    /// short or too silent to carry the mark.
    pub fn finish(mut self) -> Result<(Vec<Vec<f32>>, EmbedReport), EngineError> {
        let mut out = vec![Vec::new(); self.buffer.len()];
        let end = self.buffer_end();
        if end > self.next_out {
            self.emit(end, &mut out);
        }
        let stats = &self.stats;
        let duration_s = stats.frames as f64 / self.rate as f64;
        let marked_s = stats.active_cells as f64 / BANDS as f64 * TILES_PER_CELL as f64 * TILE_S;
        // Reading back needs every coded bit several times over: two blocks of
        // audio, at least one block's worth of it with sound.
        let needed_s = 2.0 * BLOCK_S;
        if duration_s < needed_s || marked_s < BLOCK_S {
            return Err(EngineError::TooLittleSignal {
                duration_s,
                marked_s,
                needed_s,
                needed_sound_s: BLOCK_S,
            });
        }
        let report = EmbedReport {
            duration_s,
            marked_s,
            snr_db: (10.0 * (stats.signal_energy.max(1e-20) / stats.mark_energy.max(1e-20)).log10())
                as f32,
            mean_depth_db: (stats.depth_sum / stats.active_cells.max(1) as f64) as f32,
        };
        Ok((out, report))
    }

    /// Marks `[next_out, end)` with context around it, appends it to `out`
    /// and drops input no longer needed.
    fn emit(&mut self, end: usize, out: &mut [Vec<f32>]) {
        let start = self.next_out;
        let from = start.saturating_sub(self.context);
        let to = (end + self.context).min(self.buffer_end());
        let buffer = std::mem::take(&mut self.buffer);
        let window: Vec<&[f32]> = buffer
            .iter()
            .map(|b| &b[from - self.buffer_start..to - self.buffer_start])
            .collect();
        // `from` is a whole number of seconds, hence of tiles.
        let first_tile = (from as f64 / self.rate as f64 / TILE_S).round() as i64;
        let marked = self.mark_window(&window, first_tile, start - from, end - from);
        drop(window);
        self.buffer = buffer;
        for (o, m) in out.iter_mut().zip(marked) {
            o.extend(m);
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
    fn plan_gains(&self, levels: &BandLevels, first_tile: i64, boost: f32) -> Vec<f32> {
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
            let cells = cell_values(levels.frame(first), levels.frame(first + 1));
            for (band, &(host, weight)) in cells.iter().enumerate() {
                if weight == 0.0 {
                    continue;
                }
                let cell = self.layout.cell(global_column, band);
                let bit_sign = match cell.role {
                    Role::Pilot => 1.0,
                    Role::Data(j) if self.codeword[j as usize] => 1.0,
                    Role::Data(_) => -1.0,
                };
                let sign = cell.chip * bit_sign;
                let needed = (margin - sign * host) / (2.0 * REALISED_FRACTION);
                let depth = needed.clamp(min_depth, max_depth);
                gains_db[first * BANDS + band] = sign * depth;
                gains_db[(first + 1) * BANDS + band] = -sign * depth;
            }
        }
        gains_db
    }

    /// Marks `window` (planar, starting at global tile `first_tile`) and
    /// returns its samples `[keep_from, keep_to)`; counts statistics for those.
    fn mark_window(
        &mut self,
        window: &[&[f32]],
        first_tile: i64,
        keep_from: usize,
        keep_to: usize,
    ) -> Vec<Vec<f32>> {
        let rate = self.rate;
        // Each channel at the analysis rate: the mark is rendered there, and
        // their mean is the analysis signal (resampling is linear, so this
        // equals resampling the downmix, at one resampling per channel).
        let lows: Vec<Vec<f32>> = window
            .iter()
            .map(|c| resample(c, rate, ANALYSIS_RATE))
            .collect();
        let analysis = downmix(&lows);
        let levels = BandLevels::compute(&analysis, TILE_SAMPLES, 1.0);
        let columns = levels.frames / TILES_PER_CELL;
        let tile_samples = rate as f64 * TILE_S;
        let kept_tiles = (keep_from as f64 / tile_samples).round() as usize
            ..(keep_to as f64 / tile_samples).round() as usize;
        // Where the recording's energy lies mostly outside the marked bands
        // (percussion, bass-heavy music), a mark of default depth is far
        // quieter than the signal around it; it may then be deepened until
        // its estimated SNR reaches that of the default mark on speech.
        let mut boost = 1.0;
        let mut gains_db = self.plan_gains(&levels, first_tile, boost);
        let signal = window
            .iter()
            .map(|c| {
                c.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / c.len().max(1) as f64
            })
            .sum::<f64>()
            / window.len() as f64;
        let snr = 10.0 * (signal / mark_power(&levels, &gains_db).max(1e-20)).log10();
        if snr > BOOST_ABOVE_SNR_DB {
            boost = 10f64
                .powf((snr - BOOST_ABOVE_SNR_DB) / 20.0)
                .min(MAX_BOOST as f64) as f32;
            gains_db = self.plan_gains(&levels, first_tile, boost);
        }
        for column in 0..columns {
            let first = 2 * column;
            if !kept_tiles.contains(&first) {
                continue;
            }
            for band in 0..BANDS {
                let depth = gains_db[first * BANDS + band].abs();
                if depth > 0.0 {
                    self.stats.active_cells += 1;
                    self.stats.depth_sum += depth as f64;
                }
            }
        }
        window
            .iter()
            .zip(&lows)
            .map(|(channel, low)| {
                // The mark lives below 3.35 kHz, so it is rendered at the
                // analysis rate and brought up to the file's rate: the same
                // result as rendering at full rate, for a fraction of the work.
                let mut mark = resample(&render_mark(low, &gains_db), ANALYSIS_RATE, rate);
                mark.resize(channel.len(), 0.0);
                channel[keep_from..keep_to]
                    .iter()
                    .zip(&mark[keep_from..keep_to])
                    .map(|(&x, &m)| {
                        let marked = (x + m).clamp(-1.0, 1.0);
                        self.stats.signal_energy += (x as f64) * (x as f64);
                        self.stats.mark_energy += ((marked - x) as f64).powi(2);
                        marked
                    })
                    .collect()
            })
            .collect()
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
            let change = 10f64.powf(gain as f64 / 20.0) - 1.0;
            10f64.powf(level as f64 / 10.0) * change * change
        })
        .sum();
    total / levels.frames.max(1) as f64
}

/// The additive mark for one channel: `Σ_frames w · IFFT((g − 1) · FFT(w · x))`
/// over sqrt-Hann frames two tiles-halves long, hop half a tile. Even frames sit
/// on tile centres and take that tile's gains; odd frames sit on tile
/// boundaries and take the mean (in dB) of the two tiles' gains.
fn render_mark(x: &[f32], gains_db: &[f32]) -> Vec<f32> {
    let tiles = gains_db.len() / BANDS;
    // At the analysis rate a tile is a whole number of samples, so frames sit
    // exactly on tile centres and boundaries.
    let rate = ANALYSIS_RATE;
    let hop = TILE_SAMPLES / 2;
    let size = 2 * hop;
    let window = sqrt_hann(size);
    let mut fft = Fft::new(size);
    let bins = fft.bins();
    let bin_band: Vec<Option<usize>> = (0..bins)
        .map(|k| {
            let hz = k as f32 * rate as f32 / size as f32;
            (0..BANDS).find(|&b| {
                let (low, high) = band_edges_hz(b);
                hz >= low && hz < high
            })
        })
        .collect();
    let gain_of = |tile: i64, band: usize| -> f32 {
        if tile < 0 || tile as usize >= tiles {
            0.0
        } else {
            gains_db[tile as usize * BANDS + band]
        }
    };
    let mut mark = vec![0.0f32; x.len()];
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
            let db = if index % 2 == 0 {
                gain_of(tile, band)
            } else {
                0.5 * (gain_of(tile, band) + gain_of(tile + 1, band))
            };
            *factor = 10f32.powf(db / 20.0) - 1.0;
            any |= db != 0.0;
        }
        if any {
            for (i, f) in frame.iter_mut().enumerate() {
                let at = start + i as i64;
                *f = if at >= 0 && (at as usize) < x.len() {
                    x[at as usize]
                } else {
                    0.0
                };
            }
            fft.forward(&frame, &window, &mut spectrum);
            for (s, band) in spectrum.iter_mut().zip(&bin_band) {
                *s *= band.map_or(0.0, |b| band_factor[b]);
            }
            if start >= 0 && start as usize + size <= mark.len() {
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
    mark
}
