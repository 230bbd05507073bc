//! Landmark hashes: which registered master a leak comes from, without
//! trying every master.
//!
//! A landmark pairs two spectral peaks: the first peak's pitch (semitones
//! above [`PITCH_BASE_HZ`]), the interval to the second (semitones) and the
//! time between them (frames of [`HOP`] samples). Intervals do not change
//! under a pitch shift and times scale by a known factor, so a leak pitched,
//! sped up or slowed down is looked up under a small set of hypotheses
//! ([`HYPOTHESES`]), each undoing one change before hashing.
//!
//! The index is a sorted array of packed entries `(hash, work, frame)`;
//! matching entries vote for `(work, hypothesis, offset)`, and the work with
//! the most votes in one offset bin wins if it clearly beats every other.

use earmark_dsp::{hann, Fft};
use realfft::num_complex::Complex32;

use crate::RATE;

/// Frame hop of the peak analysis, samples at [`RATE`] (32 ms).
pub const HOP: usize = 256;
/// Analysis window, samples (64 ms).
pub const WINDOW: usize = 512;
/// Pitches are counted in semitones above this frequency, Hz.
pub const PITCH_BASE_HZ: f32 = 300.0;
/// Highest peak frequency used, Hz (inside the phone band).
pub const TOP_HZ: f32 = 3_300.0;
/// Peaks kept per second of audio: the strongest.
pub const PEAKS_PER_S: usize = 10;
/// Peaks paired with each anchor peak.
pub const FANOUT: usize = 3;
/// Shortest and longest time between paired peaks, frames.
pub const PAIR_FRAMES: (u32, u32) = (2, 40);
/// Largest interval between paired peaks, semitones.
pub const PAIR_SEMITONES: f32 = 12.0;
/// Time-offset bin of the vote, frames (≈ 0.26 s).
pub const OFFSET_BIN: i64 = 8;
/// A work is named only with at least this many votes in one bin…
pub const MIN_VOTES: u32 = 12;
/// …and this many times the votes of the best other work.
pub const MIN_MARGIN: f32 = 3.0;

/// Bits of a landmark hash.
pub const HASH_BITS: u32 = 18;
const WORK_BITS: u32 = 22;
const FRAME_BITS: u32 = 24;

/// A peak pair of one recording: its hash and where its first peak sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Landmark {
    /// The pair's hash ([`HASH_BITS`] bits).
    pub hash: u32,
    /// Frame of the first peak.
    pub frame: u32,
}

/// A spectral peak: frame and pitch in semitones above [`PITCH_BASE_HZ`].
#[derive(Clone, Copy, Debug)]
struct Peak {
    frame: u32,
    pitch: f32,
    level: f32,
}

/// One way the leak may differ from its master: a pitch shift (semitones)
/// and a time scale (master frames per leak frame).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hypothesis {
    /// Pitch of the leak above the master, semitones.
    pub semitones: f32,
    /// Master seconds per leak second.
    pub time_scale: f32,
}

/// The hypotheses tried: pitch alone (±200 cents in 50-cent steps), tempo
/// alone (±10 % in 3.3 % steps) and playback speed (both together).
pub fn hypotheses() -> Vec<Hypothesis> {
    let mut out = Vec::new();
    for k in -4..=4 {
        out.push(Hypothesis {
            semitones: k as f32 * 0.5,
            time_scale: 1.0,
        });
    }
    for k in [-3, -2, -1, 1, 2, 3] {
        let scale = 1.0 + k as f32 * 0.033;
        out.push(Hypothesis {
            semitones: 0.0,
            time_scale: scale,
        });
        out.push(Hypothesis {
            semitones: 12.0 * scale.log2(),
            time_scale: scale,
        });
    }
    out
}

/// Number of hypotheses [`hypotheses`] returns.
pub const HYPOTHESES: usize = 21;

/// The strongest spectral peaks of `signal` (mono, [`RATE`]).
fn peaks(signal: &[f32]) -> Vec<Peak> {
    let frames = if signal.len() >= WINDOW {
        (signal.len() - WINDOW) / HOP + 1
    } else {
        0
    };
    let bin_hz = RATE as f32 / WINDOW as f32;
    let low_bin = (PITCH_BASE_HZ / bin_hz).ceil() as usize;
    let high_bin = (TOP_HZ / bin_hz).floor() as usize;
    let bins = high_bin - low_bin + 1;
    let mut fft = Fft::new(WINDOW);
    let window = hann(WINDOW);
    let mut spectrum = vec![Complex32::default(); WINDOW / 2 + 1];
    let mut log = vec![0.0f32; frames * bins];
    for f in 0..frames {
        fft.forward(&signal[f * HOP..f * HOP + WINDOW], &window, &mut spectrum);
        for (k, v) in log[f * bins..(f + 1) * bins].iter_mut().enumerate() {
            *v = (spectrum[low_bin + k].norm_sqr() + 1e-12).ln();
        }
    }
    const TIME_RADIUS: usize = 3;
    const BIN_RADIUS: usize = 4;
    let at = |f: usize, k: usize| log[f * bins + k];
    let mut candidates = Vec::new();
    for f in 0..frames {
        for k in 1..bins - 1 {
            let v = at(f, k);
            let is_max =
                (f.saturating_sub(TIME_RADIUS)..(f + TIME_RADIUS + 1).min(frames)).all(|g| {
                    (k.saturating_sub(BIN_RADIUS)..(k + BIN_RADIUS + 1).min(bins))
                        .all(|j| (g, j) == (f, k) || at(g, j) < v)
                });
            if !is_max {
                continue;
            }
            let (a, c) = (at(f, k - 1), at(f, k + 1));
            let curvature = a - 2.0 * v + c;
            let shift = if curvature < 0.0 {
                0.5 * (a - c) / curvature
            } else {
                0.0
            };
            let hz = (low_bin as f32 + k as f32 + shift) * bin_hz;
            candidates.push(Peak {
                frame: f as u32,
                pitch: 12.0 * (hz / PITCH_BASE_HZ).log2(),
                level: v,
            });
        }
    }
    // The strongest few per second, so that loud passages do not take all.
    let per_chunk = (RATE as usize / HOP).max(1);
    let mut kept = Vec::new();
    for chunk in
        candidates.chunk_by_mut(|a, b| a.frame as usize / per_chunk == b.frame as usize / per_chunk)
    {
        chunk.sort_by(|a, b| b.level.total_cmp(&a.level));
        kept.extend(chunk.iter().take(PEAKS_PER_S).copied());
    }
    kept.sort_by_key(|p| p.frame);
    kept
}

/// The hash of a pair, or `None` if it falls outside the hashed ranges.
fn hash(first_pitch: f32, interval: f32, frames: f32) -> Option<u32> {
    let p = first_pitch.floor();
    let i = (interval + PAIR_SEMITONES).round();
    let t = frames.round();
    if !(0.0..64.0).contains(&p)
        || !(0.0..=2.0 * PAIR_SEMITONES).contains(&i)
        || !(PAIR_FRAMES.0 as f32..=PAIR_FRAMES.1 as f32 + 6.0).contains(&t)
    {
        return None;
    }
    Some(((p as u32) << 12) | ((i as u32) << 6) | t as u32)
}

/// Pairs of peaks: (first, second) with the second within the target zone.
fn pairs(peaks: &[Peak]) -> impl Iterator<Item = (&Peak, &Peak)> {
    peaks.iter().enumerate().flat_map(move |(i, a)| {
        peaks[i + 1..]
            .iter()
            .filter(move |b| {
                let dt = b.frame - a.frame;
                dt >= PAIR_FRAMES.0 && (b.pitch - a.pitch).abs() <= PAIR_SEMITONES
            })
            .take_while(move |b| b.frame - a.frame <= PAIR_FRAMES.1)
            .take(FANOUT)
            .map(move |b| (a, b))
    })
}

/// The landmarks of a master recording (mono, [`RATE`]), for the index.
pub fn landmarks(signal: &[f32]) -> Vec<Landmark> {
    pairs(&peaks(signal))
        .filter_map(|(a, b)| {
            hash(a.pitch, b.pitch - a.pitch, (b.frame - a.frame) as f32).map(|hash| Landmark {
                hash,
                frame: a.frame,
            })
        })
        .collect()
}

/// A leak's landmarks under every hypothesis.
#[derive(Clone, Debug, Default)]
pub struct LandmarkQuery {
    /// `(hash, leak frame, hypothesis index)`.
    pub hashes: Vec<(u32, u32, u8)>,
}

impl LandmarkQuery {
    /// Hashes `signal` (mono, [`RATE`]) under each of [`hypotheses`].
    pub fn new(signal: &[f32]) -> Self {
        let peaks = peaks(signal);
        let mut hashes = Vec::new();
        for (h, hyp) in hypotheses().iter().enumerate() {
            for (a, b) in pairs(&peaks) {
                let frames = (b.frame - a.frame) as f32 * hyp.time_scale;
                if let Some(hash) = hash(a.pitch - hyp.semitones, b.pitch - a.pitch, frames) {
                    hashes.push((hash, a.frame, h as u8));
                }
            }
        }
        LandmarkQuery { hashes }
    }
}

/// Landmarks a leak shares with one master, as `(leak seconds, master
/// seconds)` points, under the hypothesis whose points agree best on one
/// offset (the most in one [`OFFSET_BIN`], a neighbouring bin added).
/// `None` if no hash matches.
///
/// A leak cut or spliced from the master plays each stretch at its own
/// offset; the points keep them apart where one offset per leak cannot.
pub fn matching_points(
    master: &[Landmark],
    query: &LandmarkQuery,
) -> Option<(Hypothesis, Vec<(f64, f64)>)> {
    let mut by_hash: Vec<(u32, u32)> = master.iter().map(|l| (l.hash, l.frame)).collect();
    by_hash.sort_unstable();
    let hyps = hypotheses();
    let mut points: Vec<Vec<(u32, u32)>> = vec![Vec::new(); hyps.len()];
    for &(hash, leak_frame, h) in &query.hashes {
        let start = by_hash.partition_point(|e| e.0 < hash);
        for &(_, frame) in by_hash[start..].iter().take_while(|e| e.0 == hash) {
            points[h as usize].push((leak_frame, frame));
        }
    }
    let agreement = |h: usize| -> usize {
        let scale = hyps[h].time_scale as f64;
        let mut bins: Vec<i64> = points[h]
            .iter()
            .map(|&(l, m)| ((m as f64 - scale * l as f64) / OFFSET_BIN as f64).round() as i64)
            .collect();
        bins.sort_unstable();
        let runs: Vec<(i64, usize)> = bins
            .chunk_by(|a, b| a == b)
            .map(|run| (run[0], run.len()))
            .collect();
        (0..runs.len())
            .map(|i| {
                let neighbour = |j: usize| {
                    runs.get(j)
                        .filter(|r| (r.0 - runs[i].0).abs() == 1)
                        .map_or(0, |r| r.1)
                };
                runs[i].1 + neighbour(i + 1).max(i.checked_sub(1).map_or(0, neighbour))
            })
            .max()
            .unwrap_or(0)
    };
    let best = (0..hyps.len())
        .filter(|&h| !points[h].is_empty())
        .max_by_key(|&h| (agreement(h), std::cmp::Reverse(h)))?;
    let frame_s = HOP as f64 / RATE as f64;
    let mut out: Vec<(f64, f64)> = points[best]
        .iter()
        .map(|&(l, m)| (l as f64 * frame_s, m as f64 * frame_s))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    Some((hyps[best], out))
}

/// The work a leak was identified as.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Match {
    /// The work's id in the index.
    pub work: u32,
    /// Votes in the winning bin.
    pub votes: u32,
    /// Best votes of any other work.
    pub runner_up: u32,
    /// Where the leak starts in the master, seconds (rough).
    pub offset_s: f64,
    /// Master seconds per leak second of the winning hypothesis.
    pub time_scale: f32,
    /// Pitch of the leak above the master of the winning hypothesis, cents.
    pub pitch_cents: f32,
}

/// An in-memory landmark index: packed entries sorted by hash.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LandmarkIndex {
    entries: Vec<u64>,
}

fn pack(hash: u32, work: u32, frame: u32) -> u64 {
    ((hash as u64) << (WORK_BITS + FRAME_BITS))
        | (((work as u64) & ((1 << WORK_BITS) - 1)) << FRAME_BITS)
        | (frame as u64 & ((1 << FRAME_BITS) - 1))
}

fn unpack(entry: u64) -> (u32, u32) {
    (
        ((entry >> FRAME_BITS) & ((1 << WORK_BITS) - 1)) as u32,
        (entry & ((1 << FRAME_BITS) - 1)) as u32,
    )
}

/// Highest work id the index can hold.
pub const MAX_WORK: u32 = (1 << WORK_BITS) - 1;

impl LandmarkIndex {
    /// An index over packed entries as [`LandmarkIndex::to_bytes`] wrote
    /// them; `None` if the bytes are not a whole number of sorted entries.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        let entries: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        entries.is_sorted().then_some(LandmarkIndex { entries })
    }

    /// The entries as little-endian bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.entries.iter().flat_map(|e| e.to_le_bytes()).collect()
    }

    /// Number of landmarks held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds (or replaces) the landmarks of work `work` (at most [`MAX_WORK`]).
    pub fn insert(&mut self, work: u32, landmarks: &[Landmark]) {
        assert!(work <= MAX_WORK);
        self.remove(work);
        self.entries
            .extend(landmarks.iter().map(|l| pack(l.hash, work, l.frame)));
        self.entries.sort_unstable();
    }

    /// Adds the landmarks of many works at once (one sort), replacing any
    /// the index held for them.
    pub fn insert_many(&mut self, works: &[(u32, Vec<Landmark>)]) {
        let ids: std::collections::BTreeSet<u32> = works.iter().map(|w| w.0).collect();
        self.entries.retain(|&e| !ids.contains(&unpack(e).0));
        for (work, landmarks) in works {
            assert!(*work <= MAX_WORK);
            self.entries
                .extend(landmarks.iter().map(|l| pack(l.hash, *work, l.frame)));
        }
        self.entries.sort_unstable();
    }

    /// Removes every landmark of work `work`.
    pub fn remove(&mut self, work: u32) {
        self.entries.retain(|&e| unpack(e).0 != work);
    }

    /// The works whose landmarks the index holds.
    pub fn works(&self) -> std::collections::BTreeSet<u32> {
        self.entries.iter().map(|&e| unpack(e).0).collect()
    }

    fn lookup(&self, hash: u32) -> &[u64] {
        let lo = pack(hash, 0, 0);
        let start = self.entries.partition_point(|&e| e < lo);
        let end = start
            + self.entries[start..]
                .partition_point(|&e| e >> (WORK_BITS + FRAME_BITS) == hash as u64);
        &self.entries[start..end]
    }

    /// The work `query` most likely comes from, if one clearly wins.
    pub fn identify(&self, query: &LandmarkQuery) -> Option<Match> {
        let hyps = hypotheses();
        // Votes as packed keys (work, hypothesis, offset bin), counted by
        // sorting: far faster than a hash map for the million votes a
        // thousand-work index casts.
        const BIN_BITS: u32 = 36;
        const BIN_BIAS: i64 = 1 << 30;
        let key = |work: u32, h: u8, bin: i64| -> u64 {
            ((work as u64) << (BIN_BITS + 5)) | ((h as u64) << BIN_BITS) | (bin + BIN_BIAS) as u64
        };
        let mut votes: Vec<u64> = Vec::new();
        for &(hash, leak_frame, h) in &query.hashes {
            let scale = hyps[h as usize].time_scale as f64;
            for &entry in self.lookup(hash) {
                let (work, frame) = unpack(entry);
                let offset = frame as f64 - scale * leak_frame as f64;
                let bin = (offset / OFFSET_BIN as f64).round() as i64;
                votes.push(key(work, h, bin));
            }
        }
        votes.sort_unstable();
        let runs: Vec<(u64, u32)> = votes
            .chunk_by(|a, b| a == b)
            .map(|run| (run[0], run.len() as u32))
            .collect();
        // A bin's neighbour may hold the same match split by rounding.
        let merged = |i: usize| -> u32 {
            let (k, n) = runs[i];
            let before = (i > 0 && runs[i - 1].0 + 1 == k).then(|| runs[i - 1].1);
            let after = runs.get(i + 1).filter(|r| r.0 == k + 1).map(|r| r.1);
            n + before.unwrap_or(0).max(after.unwrap_or(0))
        };
        let (best_index, best) = (0..runs.len())
            .map(|i| (i, merged(i)))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?;
        let best_key = runs[best_index].0;
        let work_of = |k: u64| (k >> (BIN_BITS + 5)) as u32;
        let runner_up = runs
            .iter()
            .filter(|r| work_of(r.0) != work_of(best_key))
            .map(|r| r.1)
            .max()
            .unwrap_or(0);
        let best_key = (
            work_of(best_key),
            ((best_key >> BIN_BITS) & 31) as u8,
            (best_key & ((1 << BIN_BITS) - 1)) as i64 - BIN_BIAS,
        );
        if best < MIN_VOTES || (best as f32) < MIN_MARGIN * runner_up.max(1) as f32 {
            return None;
        }
        let hyp = hyps[best_key.1 as usize];
        let frame_s = HOP as f64 / RATE as f64;
        Some(Match {
            work: best_key.0,
            votes: best,
            runner_up,
            offset_s: (best_key.2 * OFFSET_BIN) as f64 * frame_s,
            time_scale: hyp.time_scale,
            pitch_cents: hyp.semitones * 100.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chirps(seed: u32, seconds: f32) -> Vec<f32> {
        // A synthetic "recording": tones whose pitches hop pseudo-randomly.
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let n = (seconds * RATE as f32) as usize;
        let mut out = vec![0.0f32; n];
        let note = RATE as usize / 8;
        for start in (0..n).step_by(note) {
            let f1 = 350.0 + (next() % 2500) as f32;
            let f2 = 350.0 + (next() % 2500) as f32;
            for (i, o) in out[start..(start + note).min(n)].iter_mut().enumerate() {
                let t = i as f32 / RATE as f32;
                *o = 0.3 * (std::f32::consts::TAU * f1 * t).sin()
                    + 0.2 * (std::f32::consts::TAU * f2 * t).sin();
            }
        }
        out
    }

    #[test]
    fn identifies_an_excerpt_among_works_and_rejects_a_stranger() {
        let mut index = LandmarkIndex::default();
        let works: Vec<Vec<f32>> = (0..5).map(|w| chirps(w + 1, 40.0)).collect();
        for (w, signal) in works.iter().enumerate() {
            index.insert(w as u32 + 10, &landmarks(signal));
        }
        let excerpt = &works[3][RATE as usize * 12..RATE as usize * 27];
        let found = index
            .identify(&LandmarkQuery::new(excerpt))
            .expect("identified");
        assert_eq!(found.work, 13);
        assert!((found.offset_s - 12.0).abs() < 0.5, "{found:?}");
        let stranger = chirps(99, 15.0);
        assert_eq!(index.identify(&LandmarkQuery::new(&stranger)), None);
        let bytes = index.to_bytes();
        assert_eq!(LandmarkIndex::from_bytes(&bytes), Some(index.clone()));
        index.remove(13);
        assert!(!index.works().contains(&13));
    }

    #[test]
    fn matching_points_keep_the_offsets_of_a_cut_leak_apart() {
        let work = chirps(7, 30.0);
        let rate = RATE as usize;
        // 0–8 s, then 12–20 s: the second half sits 4 s later in the work.
        let mut leak = work[..8 * rate].to_vec();
        leak.extend_from_slice(&work[12 * rate..20 * rate]);
        let (hypothesis, points) =
            matching_points(&landmarks(&work), &LandmarkQuery::new(&leak)).expect("points");
        assert_eq!(hypothesis.time_scale, 1.0);
        assert_eq!(hypothesis.semitones, 0.0);
        let near = |t: f64, offset: f64| {
            points
                .iter()
                .filter(|p| (p.0 - t).abs() < 3.0 && (p.1 - p.0 - offset).abs() < 0.1)
                .count()
        };
        assert!(near(4.0, 0.0) >= 12, "{points:?}");
        assert!(near(12.0, 4.0) >= 12, "{points:?}");
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(
            matching_points(&landmarks(&work), &LandmarkQuery::default()),
            None
        );
    }
}
