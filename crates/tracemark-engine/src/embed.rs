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

/// Embeds `payload` into `channels` (planar, equal lengths, `rate` Hz) in place.
///
/// `strength` scales the margin and both depth limits (1.0 = default).
pub fn embed(
    channels: &mut [Vec<f32>],
    rate: u32,
    key: &SecretKey,
    payload: u64,
    strength: f32,
) -> Result<EmbedReport, EngineError> {
    crate::check_input(channels, rate)?;
    if !(0.05..=8.0).contains(&strength) {
        return Err(EngineError::BadStrength(strength));
    }
    let len = channels[0].len();
    let duration_s = len as f64 / rate as f64;
    // Each channel at the analysis rate: the mark is rendered there, and their
    // mean is the analysis signal (resampling is linear, so this equals
    // resampling the downmix, at one resampling per channel instead of two).
    let lows: Vec<Vec<f32>> = channels
        .iter()
        .map(|c| resample(c, rate, ANALYSIS_RATE))
        .collect();
    let analysis = downmix(&lows);
    let levels = BandLevels::compute(&analysis, TILE_SAMPLES, 1.0);
    let columns = levels.frames / TILES_PER_CELL;

    let codeword = payload::codeword(key, payload);
    let layout = Layout::new(key, codeword.len());
    let mut gains_db = vec![0.0f32; levels.frames * BANDS];
    let (margin, min_depth, max_depth) = (
        MARGIN_DB * strength,
        MIN_DEPTH_DB * strength,
        MAX_DEPTH_DB * strength,
    );
    let mut active_cells = 0usize;
    let mut depth_sum = 0.0f32;
    for column in 0..columns {
        let first = 2 * column;
        let cells = cell_values(levels.frame(first), levels.frame(first + 1));
        for (band, &(host, weight)) in cells.iter().enumerate() {
            if weight == 0.0 {
                continue;
            }
            let cell = layout.cell(column as i64, band);
            let bit_sign = match cell.role {
                Role::Pilot => 1.0,
                Role::Data(j) => {
                    if codeword[j as usize] {
                        1.0
                    } else {
                        -1.0
                    }
                }
            };
            let sign = cell.chip * bit_sign;
            let needed = (margin - sign * host) / (2.0 * REALISED_FRACTION);
            let depth = needed.clamp(min_depth, max_depth);
            gains_db[first * BANDS + band] = sign * depth;
            gains_db[(first + 1) * BANDS + band] = -sign * depth;
            active_cells += 1;
            depth_sum += depth;
        }
    }
    let marked_s = active_cells as f64 / BANDS as f64 * TILES_PER_CELL as f64 * TILE_S;
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

    let mut signal_energy = 0.0f64;
    let mut mark_energy = 0.0f64;
    for (channel, low) in channels.iter_mut().zip(&lows) {
        // The mark lives below 3.35 kHz, so it is rendered at the analysis
        // rate and brought up to the file's rate: the same result as
        // rendering at full rate, for a fraction of the FFT work.
        let mut mark = resample(
            &render_mark(low, ANALYSIS_RATE, &gains_db),
            ANALYSIS_RATE,
            rate,
        );
        mark.resize(channel.len(), 0.0);
        for (x, m) in channel.iter_mut().zip(&mark) {
            let marked = (*x + m).clamp(-1.0, 1.0);
            signal_energy += (*x as f64) * (*x as f64);
            mark_energy += ((marked - *x) as f64).powi(2);
            *x = marked;
        }
    }
    Ok(EmbedReport {
        duration_s,
        marked_s,
        snr_db: (10.0 * (signal_energy.max(1e-20) / mark_energy.max(1e-20)).log10()) as f32,
        mean_depth_db: depth_sum / active_cells.max(1) as f32,
    })
}

/// The additive mark for one channel: `Σ_frames w · IFFT((g − 1) · FFT(w · x))`
/// over sqrt-Hann frames two tiles-halves long, hop half a tile. Even frames sit
/// on tile centres and take that tile's gains; odd frames sit on tile
/// boundaries and take the mean (in dB) of the two tiles' gains.
fn render_mark(x: &[f32], rate: u32, gains_db: &[f32]) -> Vec<f32> {
    let tiles = gains_db.len() / BANDS;
    // Half a tile in samples; fractional at rates such as 22.05 kHz, where a
    // rounded hop would drift off the tile grid by a tile within seconds. Frame
    // starts are therefore rounded from the exact position each time.
    let exact_hop = rate as f64 * TILE_S / 2.0;
    let hop = (exact_hop.round() as usize).max(1);
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
        let start = (index as f64 * exact_hop).round() as i64;
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
