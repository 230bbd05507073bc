//! The watermark's geometry in time and frequency, and its keyed layout.
//!
//! The mark lives in *cells*. A cell is one frequency band over two
//! consecutive tiles of [`TILE_S`] seconds; the embedder raises the band's
//! energy in one tile and lowers it in the other, so the cell reads as the
//! energy difference between its two tiles, in dB. Differences between
//! neighbouring 20 ms tiles are what speech codecs (AMR, GSM, Opus SILK) and
//! perceptual codecs keep: they rebuild band energies and envelopes, not fine
//! spectral detail.
//!
//! Cells form a periodic block of [`BLOCK_COLUMNS`] cell columns by [`BANDS`]
//! bands ([`BLOCK_S`] seconds). Every block carries the whole codeword, so any
//! excerpt at least one block long holds every coded bit.

use earmark_keys::{shuffle, Label, SecretKey};

/// Rate at which the detector (and the embedder's analysis) looks at audio, Hz.
pub const ANALYSIS_RATE: u32 = 8_000;
/// Duration of one tile, seconds.
pub const TILE_S: f64 = 0.020;
/// Samples per tile at [`ANALYSIS_RATE`].
pub const TILE_SAMPLES: usize = 160;
/// Analysis hop at [`ANALYSIS_RATE`], samples (2.5 ms): the resolution of the sync search.
pub const FRAME_HOP: usize = 20;
/// Analysis frames per tile.
pub const FRAMES_PER_TILE: usize = TILE_SAMPLES / FRAME_HOP;
/// Tiles per cell.
pub const TILES_PER_CELL: usize = 2;
/// Analysis frames per cell.
pub const FRAMES_PER_CELL: usize = FRAMES_PER_TILE * TILES_PER_CELL;
/// Number of frequency bands.
pub const BANDS: usize = 24;
/// Lower edge of the lowest band, Hz. Above the 300 Hz phone high-pass.
pub const BAND_LOW_HZ: f32 = 350.0;
/// Width of each band, Hz. The top band ends at 3350 Hz, inside the phone band.
pub const BAND_WIDTH_HZ: f32 = 125.0;
/// Upper edge of the top band, Hz: nothing of the mark lies above.
pub const BANDS_TOP_HZ: f32 = BAND_LOW_HZ + BANDS as f32 * BAND_WIDTH_HZ;
/// Cell columns per block.
pub const BLOCK_COLUMNS: usize = 100;
/// Cells per block.
pub const BLOCK_CELLS: usize = BLOCK_COLUMNS * BANDS;
/// Block duration, seconds.
pub const BLOCK_S: f64 = BLOCK_COLUMNS as f64 * TILES_PER_CELL as f64 * TILE_S;
/// Analysis frames per block.
pub const BLOCK_FRAMES: usize = BLOCK_COLUMNS * FRAMES_PER_CELL;
/// Cells per block reserved for the synchronisation pilot.
pub const PILOT_CELLS: usize = BLOCK_CELLS / 6;
/// Cells per block carrying the block's index (modulo [`INDEX_PERIOD_BLOCKS`]):
/// the same in every copy, so fingerprint positions locate themselves even
/// in a mix of copies.
pub const INDEX_CELLS: usize = 40;
/// Cells per block carrying fingerprint positions, one position each.
pub const FINGERPRINT_CELLS: usize = 120;
/// Blocks after which the fingerprint positions repeat (256 blocks = 1024 s):
/// recordings up to 17 min carry every position once, so a longer leak
/// brings new positions rather than repeats.
pub const INDEX_PERIOD_BLOCKS: usize = 256;
/// Distinct fingerprint positions a recording carries: the code length.
/// One block carries [`FINGERPRINT_CELLS`] of them (30 per second).
pub const FINGERPRINT_POSITIONS: usize = FINGERPRINT_CELLS * INDEX_PERIOD_BLOCKS;
/// Cells per block left for the payload's coded bits.
pub const DATA_CELLS: usize = BLOCK_CELLS - PILOT_CELLS - INDEX_CELLS - FINGERPRINT_CELLS;

/// A tile grid at one sample rate: how many samples a tile spans and the
/// FFT size used to look at one tile (zero-padded to a fast size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileGrid {
    /// Sample rate, Hz.
    pub rate: u32,
    /// Samples per tile ([`TILE_S`] seconds).
    pub tile: usize,
    /// FFT length for one tile, samples (≥ `tile`).
    pub fft_len: usize,
}

/// Lowest working rate the embedder decimates to, Hz: leaves a transition
/// band from the top of the marked bands to where aliases would reach them.
pub const MIN_WORKING_RATE: u32 = 12_000;

impl TileGrid {
    /// The detector's grid: [`ANALYSIS_RATE`], [`TILE_SAMPLES`] per tile, no padding.
    pub const ANALYSIS: TileGrid = TileGrid {
        rate: ANALYSIS_RATE,
        tile: TILE_SAMPLES,
        fft_len: TILE_SAMPLES,
    };

    /// The grid at `rate` Hz, if half a tile is a whole number of samples there.
    pub fn at(rate: u32) -> Option<TileGrid> {
        if rate == ANALYSIS_RATE {
            return Some(Self::ANALYSIS);
        }
        let half_tiles_per_s = (2.0 / TILE_S).round() as u32;
        rate.is_multiple_of(half_tiles_per_s).then(|| {
            let tile = (rate as f64 * TILE_S).round() as usize;
            // Smallest 2^a or 3·2^a at least a tile long: the fast sizes.
            let power = tile.next_power_of_two();
            let fft_len = if power / 4 * 3 >= tile {
                power / 4 * 3
            } else {
                power
            };
            TileGrid {
                rate,
                tile,
                fft_len,
            }
        })
    }

    /// Where the embedder works for a file at `rate` Hz: the integer
    /// decimation factor and the grid at `rate / factor`. The lowest such rate
    /// of at least [`MIN_WORKING_RATE`] wins (the file's own rate if it is
    /// lower); `None` for rates with no whole-sample grid (11.025 and
    /// 22.05 kHz), which go through [`ANALYSIS_RATE`] instead.
    pub fn for_embedding(rate: u32) -> Option<(usize, TileGrid)> {
        let lowest_factor = (rate / MIN_WORKING_RATE).max(1);
        (1..=lowest_factor)
            .rev()
            .filter(|&factor| rate.is_multiple_of(factor))
            .find_map(|factor| Self::at(rate / factor).map(|grid| (factor as usize, grid)))
    }

    /// Width of one FFT bin, Hz.
    pub fn bin_hz(&self) -> f32 {
        self.rate as f32 / self.fft_len as f32
    }
}

/// Label for the cell layout stream (roles and chips).
pub const LAYOUT_LABEL: Label = Label("earmark/v1/engine/layout");
/// Label for the block-index symbols (one row of [`INDEX_CELLS`] bits per
/// block index modulo [`INDEX_PERIOD_BLOCKS`]).
pub const INDEX_LABEL: Label = Label("earmark/v1/engine/block-index");

/// Lower and upper edge of band `band` in Hz, before any frequency scaling.
pub fn band_edges_hz(band: usize) -> (f32, f32) {
    let low = BAND_LOW_HZ + band as f32 * BAND_WIDTH_HZ;
    (low, low + BAND_WIDTH_HZ)
}

/// What one cell of the block carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Part of the synchronisation pilot: always embedded with sign +1.
    Pilot,
    /// Carries coded bit `index` of the codeword.
    Data(u16),
    /// Carries symbol `index` of the block-index row.
    Index(u16),
    /// Carries fingerprint position `block index · FINGERPRINT_CELLS + index`.
    Fingerprint(u16),
}

/// One cell's role and its keyed chip sign (±1).
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    /// Pilot or data.
    pub role: Role,
    /// The keyed sign the cell's modulation is multiplied by.
    pub chip: f32,
}

/// The keyed assignment of roles and chips to the cells of one block.
///
/// Cell `(column, band)` is at index `column * BANDS + band`.
#[derive(Clone, Debug)]
pub struct Layout {
    cells: Vec<Cell>,
    coded_bits: usize,
    /// Per block index (modulo [`INDEX_PERIOD_BLOCKS`]), its row of index symbols.
    index_rows: Vec<[bool; INDEX_CELLS]>,
}

impl Layout {
    /// Derives the layout for `coded_bits` coded bits from the key.
    ///
    /// Mapping (versioned by [`LAYOUT_LABEL`]): the block's cell indices are
    /// shuffled; the first [`PILOT_CELLS`] become pilot, the next
    /// [`INDEX_CELLS`] index symbols, the next [`FINGERPRINT_CELLS`]
    /// fingerprint positions, and the k-th remaining one carries coded bit
    /// `k mod coded_bits`. Chips are the low bits of the following stream
    /// words. The index rows come from a stream of their own ([`INDEX_LABEL`]).
    pub fn new(key: &SecretKey, coded_bits: usize) -> Self {
        assert!(coded_bits > 0 && coded_bits <= DATA_CELLS);
        let mut rng = key.stream(LAYOUT_LABEL);
        let mut order: Vec<usize> = (0..BLOCK_CELLS).collect();
        shuffle(&mut rng, &mut order);
        let mut cells = vec![
            Cell {
                role: Role::Pilot,
                chip: 1.0
            };
            BLOCK_CELLS
        ];
        for (rank, &index) in order.iter().enumerate() {
            const FINGERPRINT_FROM: usize = PILOT_CELLS + INDEX_CELLS;
            const DATA_FROM: usize = FINGERPRINT_FROM + FINGERPRINT_CELLS;
            cells[index].role = match rank {
                r if r < PILOT_CELLS => Role::Pilot,
                r if r < FINGERPRINT_FROM => Role::Index((r - PILOT_CELLS) as u16),
                r if r < DATA_FROM => Role::Fingerprint((r - FINGERPRINT_FROM) as u16),
                r => Role::Data(((r - DATA_FROM) % coded_bits) as u16),
            };
        }
        for cell in cells.iter_mut() {
            use earmark_keys::uniform_below;
            cell.chip = if uniform_below(&mut rng, 2) == 1 {
                1.0
            } else {
                -1.0
            };
        }
        let mut index_stream = key.stream(INDEX_LABEL);
        let index_rows = (0..INDEX_PERIOD_BLOCKS)
            .map(|_| {
                let mut row = [false; INDEX_CELLS];
                for bit in row.iter_mut() {
                    *bit = earmark_keys::uniform_below(&mut index_stream, 2) == 1;
                }
                row
            })
            .collect();
        Layout {
            cells,
            coded_bits,
            index_rows,
        }
    }

    /// Index symbol `symbol` of block `block` (any integer; taken modulo
    /// [`INDEX_PERIOD_BLOCKS`]).
    pub fn index_bit(&self, block: i64, symbol: u16) -> bool {
        self.index_rows[block.rem_euclid(INDEX_PERIOD_BLOCKS as i64) as usize][symbol as usize]
    }

    /// The fingerprint position carried by cell `cell` (a
    /// [`Role::Fingerprint`] index) of block `block`.
    pub fn fingerprint_position(block: i64, cell: u16) -> usize {
        block.rem_euclid(INDEX_PERIOD_BLOCKS as i64) as usize * FINGERPRINT_CELLS + cell as usize
    }

    /// The cell at block column `column` (taken modulo [`BLOCK_COLUMNS`]) and `band`.
    pub fn cell(&self, column: i64, band: usize) -> Cell {
        let col = column.rem_euclid(BLOCK_COLUMNS as i64) as usize;
        self.cells[col * BANDS + band]
    }

    /// Number of coded bits the layout carries.
    pub fn coded_bits(&self) -> usize {
        self.coded_bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_coded_bit_gets_cells_and_pilot_has_its_share() {
        let layout = Layout::new(&SecretKey::from_seed(5), 384);
        let mut per_bit = vec![0usize; 384];
        let (mut pilots, mut index, mut fingerprint) =
            (0, vec![0; INDEX_CELLS], vec![0; FINGERPRINT_CELLS]);
        for col in 0..BLOCK_COLUMNS as i64 {
            for band in 0..BANDS {
                match layout.cell(col, band).role {
                    Role::Pilot => pilots += 1,
                    Role::Data(j) => per_bit[j as usize] += 1,
                    Role::Index(q) => index[q as usize] += 1,
                    Role::Fingerprint(f) => fingerprint[f as usize] += 1,
                }
            }
        }
        assert_eq!(pilots, PILOT_CELLS);
        assert!(index.iter().chain(&fingerprint).all(|&n| n == 1));
        assert!(per_bit.iter().all(|&n| n >= 3));
        assert_eq!(
            layout.cell(-1, 0).chip,
            layout.cell(BLOCK_COLUMNS as i64 - 1, 0).chip
        );
    }

    #[test]
    fn layout_is_keyed_and_deterministic() {
        let a = Layout::new(&SecretKey::from_seed(1), 384);
        let b = Layout::new(&SecretKey::from_seed(1), 384);
        let c = Layout::new(&SecretKey::from_seed(2), 384);
        let chips = |l: &Layout| (0..BANDS).map(|b| l.cell(0, b).chip).collect::<Vec<_>>();
        assert_eq!(chips(&a), chips(&b));
        assert_ne!(chips(&a), chips(&c));
    }
}
