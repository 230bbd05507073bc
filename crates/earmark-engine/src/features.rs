//! Band levels of the analysis signal and the cell values read from them.
//!
//! Both the embedder and the detector read cells through [`cell_values`], so
//! the embedder's informed decisions are made on exactly what the detector
//! will later compute.

use earmark_dsp::{hann, Fft};

#[allow(unused_imports)] // named in doc links
use crate::layout::ANALYSIS_RATE;
use crate::layout::{band_edges_hz, TileGrid, BANDS, FRAMES_PER_TILE, TILE_SAMPLES};

/// Cell values are clipped to ±this many dB, so that a speech onset (a jump of
/// 20–40 dB between tiles) cannot outvote many small, reliable cells.
pub const CELL_CLIP_DB: f32 = 3.0;
/// Band levels below this (dB re a full-scale sine's band power) count as silence.
pub const SILENCE_FLOOR_DB: f32 = -100.0;
/// Bands more than this many dB below the loudest band of the same cell column
/// are ignored: their level is dominated by codec noise after any lossy channel.
pub const ACTIVE_RANGE_DB: f32 = 40.0;
/// Level assigned to empty bands, dB.
const ZERO_LEVEL_DB: f32 = -120.0;

/// Band levels in dB for analysis frames taken every `hop` samples, each
/// frame one tile long (at [`ANALYSIS_RATE`], [`TILE_SAMPLES`]).
#[derive(Clone, Debug)]
pub struct BandLevels {
    /// Number of frames.
    pub frames: usize,
    /// Frame hop, samples of the grid analysed (at [`ANALYSIS_RATE`] for the detector).
    pub hop: usize,
    /// `frames × BANDS` levels, dB, row-major by frame.
    pub levels: Vec<f32>,
}

impl BandLevels {
    /// Analyses `signal` (mono, [`ANALYSIS_RATE`]) with band edges scaled by
    /// `freq_scale` (1.0 = as embedded; 1.06 = the leak is pitched up 100 cents).
    pub fn compute(signal: &[f32], hop: usize, freq_scale: f32) -> Self {
        Self::compute_on(signal, &TileGrid::ANALYSIS, hop, freq_scale)
    }

    /// As [`BandLevels::compute`], for `signal` sampled on `grid` (frames one
    /// tile long, `hop` samples of that grid apart). Levels are normalised so
    /// that they do not depend on the rate: a band's level is its power, dB re
    /// a full-scale sine.
    pub fn compute_on(signal: &[f32], grid: &TileGrid, hop: usize, freq_scale: f32) -> Self {
        let tile = grid.tile;
        let frames = if signal.len() >= tile {
            (signal.len() - tile) / hop + 1
        } else {
            0
        };
        let window = hann(tile);
        let mut fft = Fft::new(grid.fft_len);
        let bins = fft.bins();
        let weights = band_bin_weights(bins, grid.bin_hz(), freq_scale);
        let window_power: f32 = window.iter().map(|w| w * w).sum();
        let norm = 2.0 / (grid.fft_len as f32 * window_power);
        let mut spectrum = vec![Default::default(); bins];
        let mut power = vec![0.0f32; bins];
        let mut levels = Vec::with_capacity(frames * BANDS);
        for f in 0..frames {
            let start = f * hop;
            fft.forward(&signal[start..start + tile], &window, &mut spectrum);
            for (p, s) in power.iter_mut().zip(&spectrum) {
                *p = s.norm_sqr() * norm;
            }
            for band in &weights {
                let e: f32 = band.iter().map(|&(k, w)| power[k] * w).sum();
                levels.push(if e > 0.0 {
                    10.0 * e.log10()
                } else {
                    ZERO_LEVEL_DB
                });
            }
        }
        BandLevels {
            frames,
            hop,
            levels,
        }
    }

    /// The levels of frame `frame`.
    pub fn frame(&self, frame: usize) -> &[f32] {
        &self.levels[frame * BANDS..(frame + 1) * BANDS]
    }
}

/// For each band, the FFT bins it covers and the fraction of each bin inside it.
fn band_bin_weights(bins: usize, bin_hz: f32, freq_scale: f32) -> Vec<Vec<(usize, f32)>> {
    let edges = (0..BANDS).map(|band| {
        let (low, high) = band_edges_hz(band);
        (low * freq_scale, high * freq_scale)
    });
    earmark_dsp::band_bin_weights(edges, bins, bin_hz)
}

/// The value (dB difference, clipped) and weight (0 or 1) of each band's cell
/// whose first tile is `first` and second tile is `second` (band levels).
pub fn cell_values(first: &[f32], second: &[f32]) -> [(f32, f32); BANDS] {
    let loudest = first
        .iter()
        .chain(second)
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut out = [(0.0, 0.0); BANDS];
    let mut common = 0.0f32;
    let mut active_bands = 0usize;
    for (b, o) in out.iter_mut().enumerate() {
        let quieter = first[b].min(second[b]);
        let active = quieter >= SILENCE_FLOOR_DB && quieter >= loudest - ACTIVE_RANGE_DB;
        if active {
            let diff = first[b] - second[b];
            common += diff;
            active_bands += 1;
            *o = (diff, 1.0);
        }
    }
    // The envelope moves all bands together (onsets, decays, gain changes);
    // the mark's chips are independent across bands, so removing the mean
    // change over the active bands removes most host motion and little mark.
    if active_bands > 1 {
        let common = common / active_bands as f32;
        for o in out.iter_mut().filter(|o| o.1 > 0.0) {
            o.0 = (o.0 - common).clamp(-CELL_CLIP_DB, CELL_CLIP_DB);
        }
    } else {
        out = [(0.0, 0.0); BANDS];
    }
    out
}

/// Percentile of each band's levels taken as that band's floor (noise or
/// background), over the whole input.
pub const FLOOR_PERCENTILE: f32 = 0.10;
/// The floor is never placed closer than this to the band's loud passages
/// (its upper percentile), dB.
pub const FLOOR_BELOW_LOUD_DB: f32 = 15.0;
/// How far above its floor (dB) a band's background itself typically reads:
/// the floor is a low percentile of the background's levels, and a 20 ms
/// band level of noise scatters by several dB around its mean.
pub const BACKGROUND_ABOVE_FLOOR_DB: f32 = 3.0;

/// Cell values for every analysis frame taken as a cell's first tile:
/// `frames × BANDS` pairs of (value · weight, weight). Frames whose second tile
/// would run past the end are absent.
///
/// Beyond [`cell_values`]' gate, the detector weights each cell by
/// [`background_weight`]: when noise is added, pauses and weak bands become
/// "sound" that carries little or no mark, and unweighted they outvote the
/// cells that carry it. On clean audio the floors sit far below the signal
/// and the weights stay near 1; the detector's statistics are
/// scale-invariant, so only relative weights matter.
pub fn frame_cells(levels: &BandLevels) -> Vec<[(f32, f32); BANDS]> {
    let tile_frames = TILE_SAMPLES / levels.hop;
    debug_assert_eq!(TILE_SAMPLES % levels.hop, 0);
    debug_assert!(levels.hop * FRAMES_PER_TILE == TILE_SAMPLES || tile_frames == 1);
    let floors = band_floors(levels);
    (0..levels.frames.saturating_sub(tile_frames))
        .map(|f| {
            let first = levels.frame(f);
            let second = levels.frame(f + tile_frames);
            let mut cells = cell_values(first, second);
            for (b, c) in cells.iter_mut().enumerate() {
                c.1 *= background_weight(first[b].min(second[b]) - floors[b]);
                c.0 *= c.1;
            }
            cells
        })
        .collect()
}

/// Weight (0–1) of a cell whose quieter tile stands `above_floor_db` dB above
/// its band's floor.
///
/// With background power `N` (taken [`BACKGROUND_ABOVE_FLOOR_DB`] above the
/// floor) and host power `S`, the mark's dB difference reaches the detector
/// scaled by `S / (S + N)`; that ratio is the weight, a matched-filter
/// weight that lets half-drowned cells count for what they carry. It
/// replaced a hard ramp (0 at 4 dB above the floor, 1 at 10 dB) times a
/// column weight from the bands' mean height: that mean zeroed whole speech
/// frames whose low bands were strong but whose upper bands were under
/// white noise. Measured with `earmark bench --excerpts 4` over seeds 1–3
/// (57 excerpts of 10 s): white noise at 20 dB 51 → 55 recovered, pink 54 →
/// 56, MP3 32k 52 → 57, Opus 16k 40 → 49, cut 1 s 26 → 34.
pub fn background_weight(above_floor_db: f32) -> f32 {
    let snr = (10f32.powf((above_floor_db - BACKGROUND_ABOVE_FLOOR_DB) / 10.0) - 1.0).max(0.0);
    snr / (1.0 + snr)
}

/// Each band's floor, dB: the [`FLOOR_PERCENTILE`] of its levels (ignoring
/// digital silence), at most [`FLOOR_BELOW_LOUD_DB`] under its upper percentile.
fn band_floors(levels: &BandLevels) -> [f32; BANDS] {
    let mut floors = [ZERO_LEVEL_DB; BANDS];
    for (band, floor) in floors.iter_mut().enumerate() {
        let mut values: Vec<f32> = (0..levels.frames)
            .map(|f| levels.frame(f)[band])
            .filter(|&l| l > SILENCE_FLOOR_DB)
            .collect();
        if values.is_empty() {
            continue;
        }
        let mut percentile = |q: f32| {
            let rank = ((values.len() - 1) as f32 * q) as usize;
            *values.select_nth_unstable_by(rank, f32::total_cmp).1
        };
        let low = percentile(FLOOR_PERCENTILE);
        let high = percentile(1.0 - FLOOR_PERCENTILE);
        // Dense material (music without pauses) has no background: its low
        // percentile is signal. Only a floor well below the band's loud
        // passages is taken as background.
        *floor = low.min(high - FLOOR_BELOW_LOUD_DB);
    }
    floors
}
