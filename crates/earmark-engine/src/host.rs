//! What the channel makes of the unmarked host, learnt from the leak and
//! its master: the informed reader subtracts it to leave the mark.
//!
//! [`HostModel`], fitted per band on the recording itself, maps master
//! levels (dB) around a tile to the leak's level by least squares: right for
//! codecs and filters, which smooth and tilt levels. A room is the other
//! model (`room`): there a tile's level is a sum of powers, loud direct
//! sound or the tail of what came before, which no linear map of levels in
//! dB follows.

use nalgebra::{DMatrix, DVector};

use crate::features::{BandLevels, SILENCE_FLOOR_DB};
use crate::informed::{HOST_FIT_ABOVE_FLOOR_DB, INFORMED_RANGE_DB};
use crate::layout::BANDS;

/// Regressors of the host model: master levels of the same band two tiles
/// before to one after, of the bands either side, two reverberation tails
/// and a constant.
const HOST_REGRESSORS: usize = 9;
/// Tiles of the reverberation tails among the regressors (300 ms).
const REVERB_TILES: usize = 15;
/// Master levels more than this far below their tile's loudest band are
/// raised to it before entering the host model, dB.
const HOST_FLOOR_DB: f32 = 40.0;
/// Ridge of the host model's fit, relative to the normal matrix's mean diagonal.
const HOST_RIDGE: f64 = 1e-6;

/// Per band, the least-squares map from master levels to leak level.
pub(crate) struct HostModel {
    coefficients: [[f64; HOST_REGRESSORS]; BANDS],
}

impl HostModel {
    /// The model's regressors for tile `tile` (clamped to the recording) and `band`.
    fn regressors(master: &BandLevels, tile: usize, band: usize) -> [f64; HOST_REGRESSORS] {
        let last = master.frames - 1;
        let level = |t: isize, b: usize| -> f64 {
            let t = t.clamp(0, last as isize) as usize;
            let frame = master.frame(t);
            let loudest = frame.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
            frame[b].max(loudest - HOST_FLOOR_DB) as f64
        };
        let t = tile as isize;
        // A room adds to each tile the decaying energy of those before it:
        // the level of that tail, for a short and a longer decay.
        let tail = |decay: f64| -> f64 {
            let mut energy = 0.0f64;
            let mut gain = 1.0f64;
            for k in 1..=REVERB_TILES as isize {
                gain *= decay;
                energy += gain * 10f64.powf(level(t - k, band) / 10.0);
            }
            10.0 * energy.max(1e-30).log10()
        };
        [
            level(t - 2, band),
            level(t - 1, band),
            level(t, band),
            level(t + 1, band),
            level(t, band.saturating_sub(1)),
            level(t, (band + 1).min(BANDS - 1)),
            tail(0.4),
            tail(0.7),
            1.0,
        ]
    }

    /// Fits the model on tiles where master and leak are both active; bands
    /// with too few such tiles keep the identity (leak = master).
    pub(crate) fn fit(
        master: &BandLevels,
        leak: &[Option<[f32; BANDS]>],
        floors: &[f32; BANDS],
    ) -> Self {
        let mut identity = [0.0f64; HOST_REGRESSORS];
        identity[2] = 1.0;
        let mut coefficients = [identity; BANDS];
        for (band, c) in coefficients.iter_mut().enumerate() {
            let mut normal = [[0.0f64; HOST_REGRESSORS]; HOST_REGRESSORS];
            let mut rhs = [0.0f64; HOST_REGRESSORS];
            let mut rows = 0usize;
            for (t, row) in leak.iter().enumerate() {
                let Some(row) = row else { continue };
                let frame = master.frame(t);
                let loudest = frame.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
                if frame[band] < loudest - INFORMED_RANGE_DB
                    || frame[band] < SILENCE_FLOOR_DB
                    || row[band] < floors[band] + HOST_FIT_ABOVE_FLOOR_DB
                {
                    continue;
                }
                let x = Self::regressors(master, t, band);
                for i in 0..HOST_REGRESSORS {
                    for j in 0..HOST_REGRESSORS {
                        normal[i][j] += x[i] * x[j];
                    }
                    rhs[i] += x[i] * row[band] as f64;
                }
                rows += 1;
            }
            if rows < 20 * HOST_REGRESSORS {
                continue;
            }
            let flat: Vec<f64> = normal.iter().flatten().copied().collect();
            if let Some(solution) = solve(&flat, &rhs, HOST_RIDGE) {
                c.copy_from_slice(&solution);
            }
        }
        HostModel { coefficients }
    }

    /// The host's predicted level difference between each cell's two tiles,
    /// dB, per cell column (master tile pair) and band; zero in the columns
    /// `wanted` turns down.
    pub(crate) fn predicted_differences(
        &self,
        master: &BandLevels,
        wanted: impl Fn(usize) -> bool,
    ) -> Vec<[f32; BANDS]> {
        (0..master.frames / 2)
            .map(|column| {
                let mut row = [0.0f32; BANDS];
                if !wanted(column) {
                    return row;
                }
                for (band, v) in row.iter_mut().enumerate() {
                    *v = self.predict(master, 2 * column, band)
                        - self.predict(master, 2 * column + 1, band);
                }
                row
            })
            .collect()
    }

    /// The leak level the host alone predicts at `tile` in `band`, dB.
    fn predict(&self, master: &BandLevels, tile: usize, band: usize) -> f32 {
        let x = Self::regressors(master, tile, band);
        x.iter()
            .zip(&self.coefficients[band])
            .map(|(a, b)| a * b)
            .sum::<f64>() as f32
    }
}

/// Solves the `n`×`n` system `normal · x = rhs` (`normal` row-major) with
/// `ridge` times the mean diagonal added to the diagonal; `None` if singular.
fn solve(normal: &[f64], rhs: &[f64], ridge: f64) -> Option<Vec<f64>> {
    let n = rhs.len();
    let mut a = DMatrix::from_row_slice(n, n, normal);
    let ridge = ridge * a.diagonal().mean();
    for i in 0..n {
        a[(i, i)] += ridge;
    }
    let x = a.lu().solve(&DVector::from_column_slice(rhs))?;
    x.iter()
        .all(|v| v.is_finite())
        .then(|| x.iter().copied().collect())
}
