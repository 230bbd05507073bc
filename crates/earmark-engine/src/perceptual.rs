//! How deep the mark may go in each tile and band before the ear notices:
//! a masking model over the host's band levels, after the psychoacoustic
//! model of Johnston (1988) and ISO/IEC 11172-3 model 1, with forward
//! masking after Jesteadt et al. (1982). docs/perceptual.md tells the model
//! and its sources.
//!
//! The mark changes a band's gain by ±δ dB from tile to tile, so what it adds
//! to a band of energy `E` is about `E · (10^(δ/20) − 1)²`. That addition is
//! taken to go unnoticed while it stays under the band's masked threshold:
//! - **simultaneous masking**: the energy of the band and of its neighbours,
//!   spread across the Bark scale (Schroeder, Atal and Hall 1979), lowered by
//!   an offset that is small for a noise-like masker (5.5 dB) and large for a
//!   tonal one (14.5 + z dB at z Bark);
//! - **tonality** is read from the band's own level over the tiles around:
//!   a held note or a vowel's harmonic keeps a steady level, band noise
//!   scatters by a few dB from tile to tile. A steady band hears a gain
//!   change most, and gets the tonal offset;
//! - **forward masking**: a loud tile keeps masking its band for up to
//!   [`FORWARD_TILES`] tiles after it, [`FORWARD_DECAY_DB`] lower per tile;
//!   one tile before it is masked too (backward masking, weaker).
//!
//! Only relative levels are used: the playback level, and so the absolute
//! threshold of hearing, is unknown.

use crate::features::BandLevels;
use crate::layout::{band_edges_hz, BANDS};

/// Masked threshold below a noise-like masker, dB (Johnston's 5.5 dB).
pub const NOISE_MASKER_OFFSET_DB: f32 = 5.5;
/// Masked threshold below a tonal masker is this plus the masker's Bark
/// position, dB (Johnston's 14.5 + z).
pub const TONAL_MASKER_OFFSET_DB: f32 = 14.5;
/// Mean absolute change (dB) of a 125 Hz band's level from one 20 ms tile to
/// the next when the band holds Gaussian noise: the level scatter of a
/// noise band, measured on white noise by this module's tests. A band that
/// changes this much or more is taken as noise-like; a band that does not
/// change at all, as tonal.
pub const NOISE_LEVEL_CHANGE_DB: f32 = 3.8;
/// Tiles on each side over which a band's level changes are averaged for its
/// tonality (2: 100 ms in all, about a syllable's steady part).
pub const TONALITY_REACH_TILES: usize = 2;
/// Tiles after a masker over which it still masks (8 tiles: 160 ms; forward
/// masking is gone by about 200 ms).
pub const FORWARD_TILES: usize = 8;
/// How much a masker's threshold falls per tile after it, dB: about 40 dB
/// over 160 ms, the fall of forward masking from a 20 ms gap to its end.
pub const FORWARD_DECAY_DB: f32 = 5.0;
/// How far below the simultaneous threshold a masker reaches one tile
/// earlier, dB (backward masking lasts a few milliseconds to 20 ms and is
/// weaker than forward masking).
pub const BACKWARD_DROP_DB: f32 = 15.0;

/// Largest depth the model ever grants, dB: a cap on the formula, which
/// grows without bound when a band is masked far above its own level.
pub const MODEL_CEILING_DB: f32 = 12.0;

/// Per tile and band (`tiles × BANDS`, tile-major like [`BandLevels`]): the
/// largest mark depth δ (dB, the ±gain of one tile) whose added energy stays
/// `allowance_db` above the masked threshold (0: at the threshold; more is
/// louder). Bands at [`crate::features::SILENCE_FLOOR_DB`] or below get 0.
pub fn allowed_depths_db(levels: &BandLevels, allowance_db: f32) -> Vec<f32> {
    let tiles = levels.frames;
    let barks: Vec<f32> = (0..BANDS)
        .map(|b| {
            let (low, high) = band_edges_hz(b);
            bark(0.5 * (low + high))
        })
        .collect();
    let spreading = spreading_matrix(&barks);
    let power: Vec<f32> = levels.levels.iter().map(|&l| power_of(l)).collect();
    let tonality = tonality(levels);
    // Simultaneous threshold, as power, of every tile and band.
    let mut simultaneous = vec![0.0f32; tiles * BANDS];
    for t in 0..tiles {
        let row = &power[t * BANDS..(t + 1) * BANDS];
        for (b, threshold) in simultaneous[t * BANDS..(t + 1) * BANDS]
            .iter_mut()
            .enumerate()
        {
            // Each masker contributes with its own offset, by its tonality.
            *threshold = (0..BANDS)
                .map(|m| {
                    let alpha = tonality[t * BANDS + m];
                    let offset = alpha * (TONAL_MASKER_OFFSET_DB + barks[m])
                        + (1.0 - alpha) * NOISE_MASKER_OFFSET_DB;
                    row[m] * spreading[m * BANDS + b] * power_of(-offset)
                })
                .sum();
        }
    }
    let forward_step = power_of(-FORWARD_DECAY_DB);
    let backward = power_of(-BACKWARD_DROP_DB);
    let allowance = power_of(allowance_db);
    let mut depths = vec![0.0f32; tiles * BANDS];
    for t in 0..tiles {
        for b in 0..BANDS {
            let own = power[t * BANDS + b];
            if levels.levels[t * BANDS + b] <= crate::features::SILENCE_FLOOR_DB {
                continue;
            }
            let mut threshold = simultaneous[t * BANDS + b];
            let mut decay = 1.0;
            for k in 1..=FORWARD_TILES.min(t) {
                decay *= forward_step;
                threshold = threshold.max(simultaneous[(t - k) * BANDS + b] * decay);
            }
            if t + 1 < tiles {
                threshold = threshold.max(simultaneous[(t + 1) * BANDS + b] * backward);
            }
            let ratio = (threshold * allowance / own).sqrt();
            depths[t * BANDS + b] = (20.0 * (1.0 + ratio).log10()).min(MODEL_CEILING_DB);
        }
    }
    depths
}

/// Tonality (0 noise-like … 1 tonal) of every tile and band, from how little
/// the band's level changes over the tiles around it.
fn tonality(levels: &BandLevels) -> Vec<f32> {
    let tiles = levels.frames;
    let mut out = vec![0.0f32; tiles * BANDS];
    if tiles < 2 {
        return out;
    }
    for t in 0..tiles {
        // Changes between consecutive tiles within reach of t.
        let first = t.saturating_sub(TONALITY_REACH_TILES);
        let last = (t + TONALITY_REACH_TILES).min(tiles - 1);
        let steps = (last - first).max(1) as f32;
        for b in 0..BANDS {
            let change: f32 = (first..last)
                .map(|u| (levels.levels[(u + 1) * BANDS + b] - levels.levels[u * BANDS + b]).abs())
                .sum::<f32>()
                / steps;
            out[t * BANDS + b] = (1.0 - change / NOISE_LEVEL_CHANGE_DB).clamp(0.0, 1.0);
        }
    }
    out
}

/// Critical-band rate (Bark) of `hz` (Zwicker and Terhardt 1980).
fn bark(hz: f32) -> f32 {
    13.0 * (0.00076 * hz).atan() + 3.5 * (hz / 7500.0).powi(2).atan()
}

/// Power fraction that a masker in band `m` spreads into band `b`, at
/// `[m * BANDS + b]`: the spreading function of Schroeder, Atal and Hall
/// (1979), in dB over the Bark distance, normalised to 0 dB at no distance.
fn spreading_matrix(barks: &[f32]) -> Vec<f32> {
    let at = |dz: f32| 15.81 + 7.5 * (dz + 0.474) - 17.5 * (1.0 + (dz + 0.474).powi(2)).sqrt();
    let peak = at(0.0);
    let mut out = vec![0.0f32; BANDS * BANDS];
    for m in 0..BANDS {
        for b in 0..BANDS {
            out[m * BANDS + b] = power_of(at(barks[b] - barks[m]) - peak);
        }
    }
    out
}

fn power_of(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{TileGrid, ANALYSIS_RATE};
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    fn levels_of(signal: &[f32]) -> BandLevels {
        let grid = TileGrid::ANALYSIS;
        BandLevels::compute_on(signal, &grid, grid.tile, 1.0)
    }

    fn noise(seconds: f32, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..(seconds * ANALYSIS_RATE as f32) as usize)
            .map(|_| {
                // Sum of uniforms: near Gaussian, deterministic.
                (0..4)
                    .map(|_| rng.next_u32() as f32 / u32::MAX as f32 - 0.5)
                    .sum::<f32>()
                    * 0.1
            })
            .collect()
    }

    fn tone(seconds: f32, hz: f32, amplitude: f32) -> Vec<f32> {
        (0..(seconds * ANALYSIS_RATE as f32) as usize)
            .map(|i| {
                amplitude * (std::f32::consts::TAU * hz * i as f32 / ANALYSIS_RATE as f32).sin()
            })
            .collect()
    }

    fn band_of(hz: f32) -> usize {
        (0..BANDS)
            .find(|&b| {
                let (low, high) = band_edges_hz(b);
                (low..high).contains(&hz)
            })
            .expect("inside the marked bands")
    }

    fn mean(values: impl Iterator<Item = f32>) -> f32 {
        let v: Vec<f32> = values.collect();
        v.iter().sum::<f32>() / v.len() as f32
    }

    #[test]
    fn noise_scatters_by_the_documented_level_change() {
        let levels = levels_of(&noise(20.0, 1));
        let change = mean((1..levels.frames).flat_map(|t| {
            let levels = &levels;
            (0..BANDS).map(move |b| {
                (levels.levels[t * BANDS + b] - levels.levels[(t - 1) * BANDS + b]).abs()
            })
        }));
        assert!(
            (change - NOISE_LEVEL_CHANGE_DB).abs() < 0.3,
            "white noise changes by {change:.2} dB per tile"
        );
    }

    #[test]
    fn a_steady_tone_gets_less_depth_than_noise_of_the_same_level() {
        let hz = 1_515.0;
        let band = band_of(hz);
        let noise = noise(4.0, 2);
        let noise_levels = levels_of(&noise);
        // The tone carries the noise band's mean power.
        let band_power =
            mean((0..noise_levels.frames).map(|t| power_of(noise_levels.levels[t * BANDS + band])));
        let tone_levels = levels_of(&tone(4.0, hz, 1.0));
        let tone_power =
            mean((0..tone_levels.frames).map(|t| power_of(tone_levels.levels[t * BANDS + band])));
        let scale = (band_power / tone_power).sqrt();
        let tone_levels = levels_of(&tone(4.0, hz, scale));
        let middle = |levels: &BandLevels| {
            let depths = allowed_depths_db(levels, 0.0);
            mean((10..levels.frames - 10).map(|t| depths[t * BANDS + band]))
        };
        let (tonal, noisy) = (middle(&tone_levels), middle(&noise_levels));
        assert!(
            tonal < 0.5 * noisy,
            "a steady tone allows {tonal:.2} dB, noise {noisy:.2} dB"
        );
        assert!(
            tonal > 0.0 && tonal < 1.0,
            "a steady tone allows {tonal:.2} dB"
        );
    }

    #[test]
    fn a_loud_onset_masks_the_tiles_after_it() {
        // A quiet noise, then a burst 30 dB louder for 100 ms, then the
        // quiet noise again: the tiles just after the burst may carry more.
        let quiet = noise(3.0, 3);
        let loud = noise(0.1, 4);
        let burst_at = 1.0 * ANALYSIS_RATE as f32;
        let burst = burst_at as usize..burst_at as usize + loud.len();
        let mut signal = quiet.clone();
        for (s, l) in signal[burst.clone()].iter_mut().zip(&loud) {
            *s += 31.6 * l;
        }
        let plain = allowed_depths_db(&levels_of(&quiet), 0.0);
        let masked = allowed_depths_db(&levels_of(&signal), 0.0);
        let tile = |seconds: f32| (seconds / 0.020).round() as usize;
        let after = tile(1.1) + 1..tile(1.1) + 4;
        let mean_over = |depths: &[f32], tiles: std::ops::Range<usize>| {
            mean(tiles.flat_map(|t| (0..BANDS).map(move |b| depths[t * BANDS + b])))
        };
        let (with, without) = (mean_over(&masked, after.clone()), mean_over(&plain, after));
        assert!(
            with > without + 3.0,
            "after the burst {with:.2} dB, without it {without:.2} dB"
        );
        // Long after, the burst is forgotten.
        let later = tile(1.6)..tile(1.8);
        let (with, without) = (mean_over(&masked, later.clone()), mean_over(&plain, later));
        assert!(
            (with - without).abs() < 0.2,
            "{with:.2} against {without:.2} dB"
        );
    }

    #[test]
    fn a_larger_allowance_grants_more_depth() {
        let levels = levels_of(&noise(2.0, 5));
        let low = allowed_depths_db(&levels, -6.0);
        let high = allowed_depths_db(&levels, 6.0);
        assert!(low.iter().zip(&high).all(|(l, h)| l <= h));
        assert!(mean(high.iter().copied()) > mean(low.iter().copied()) + 1.0);
    }
}
