//! The collusion-resistant layer: a Tardos code with the symmetric Škorić
//! score, soft readings, and a false-accusation bound computed exactly for
//! the positions a leak actually carries.
//!
//! # The code
//! Position `i` has a bias `p_i` drawn once per work from the arcsine density
//! `1 / (π √(p(1−p)))` on `[t, 1−t]`, with cutoff `t = 1/(300·c₀)` for the
//! design coalition size `c₀ =` [`DESIGN_COLLUDERS`]. Recipient `j`'s bit at
//! `i` is 1 with probability `p_i`, independently. Both come from keyed
//! ChaCha20 streams (labels [`WORK_LABEL`], [`BIAS_LABEL`],
//! [`CODEWORD_LABEL`]), so a codeword is a function of the home's master key,
//! the work index and the recipient index: nothing secret is stored.
//!
//! # The score
//! With `a_i = √((1−p_i)/p_i)` and `b_i = √(p_i/(1−p_i))`, a bit contributes
//! `h = a_i` if it is 1 and `h = −b_i` if it is 0: mean 0 and variance 1 for
//! anyone whose bit was drawn independently of the leak. A reading `r_i`
//! (positive for 1, its size the evidence) weighs it: `S_j = Σ r_i h_ij`,
//! reported normalised by `√Σ r_i²`. This is Škorić's symmetric score, with
//! the hard ±1 reading replaced by a soft one; unread positions count zero.
//!
//! # The bound
//! An innocent recipient's bits are independent of everything in the leak
//! (the colluders never saw them), so for the readings at hand `S` is a sum
//! of independent two-valued terms with known distributions. Chernoff's bound
//! `P(S ≥ s) ≤ min_λ≥0 exp(Λ(λ) − λs)`, with `Λ` the exact log-moment
//! generating function of that sum, holds whatever the colluders did and
//! however noisy the readings are; [`Readings::innocent_tail`] computes it.
//! A union bound over the `n` recipients scored gives the accusation's
//! false-accusation probability.

use earmark_keys::{Label, SecretKey};
use rand_core::RngCore;
use rayon::prelude::*;

/// Label of a work's code key (derived from the master key with the work index).
pub const WORK_LABEL: Label = Label("earmark/v1/codes/tardos-work");
/// Label of the stream the biases are drawn from.
pub const BIAS_LABEL: Label = Label("earmark/v1/codes/tardos-bias");
/// Label of a recipient's codeword stream (derived with the recipient index).
pub const CODEWORD_LABEL: Label = Label("earmark/v1/codes/tardos-codeword");

/// Label of a work's uniform code key (transcripts; derived with the work index).
pub const UNIFORM_WORK_LABEL: Label = Label("earmark/v1/codes/uniform-work");

/// Coalition size the bias cutoff is designed for.
pub const DESIGN_COLLUDERS: usize = 4;
/// Resolution of biases: a bit is 1 when a 16-bit stream value is below
/// `p · 2¹⁶`, so biases are multiples of 2⁻¹⁶ and the score uses them exactly.
const BIAS_STEPS: f64 = 65_536.0;
/// Largest reading kept, in units of the readings' root mean square: a few
/// very loud cells must not dominate the score.
pub const READING_CLIP: f32 = 3.0;

/// Positions needed against `colluders` for a false-accusation probability
/// `epsilon`, in the Gaussian regime of the symmetric score:
/// `½ π² c² ln(1/ε)` (Škorić et al.).
pub fn gaussian_code_length(colluders: usize, epsilon: f64) -> f64 {
    0.5 * std::f64::consts::PI.powi(2) * (colluders * colluders) as f64 * (1.0 / epsilon).ln()
}

/// One work's Tardos code.
pub struct TardosCode {
    key: SecretKey,
    /// Per position, the 16-bit threshold: a bit is 1 below it.
    thresholds: Vec<u16>,
}

impl TardosCode {
    /// The code of work `work` with `positions` positions, under a home's master key.
    pub fn new(master: &SecretKey, work: u32, positions: usize) -> Self {
        let key = master.derive_with(WORK_LABEL, &work.to_be_bytes());
        let cutoff = 1.0 / (300.0 * DESIGN_COLLUDERS as f64);
        let low = cutoff.sqrt().asin();
        let high = std::f64::consts::FRAC_PI_2 - low;
        let mut stream = key.stream(BIAS_LABEL);
        let thresholds = (0..positions)
            .map(|_| {
                // Uniform angle in [low, high]; p = sin² of it has the arcsine density.
                let u = (stream.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let p = (low + u * (high - low)).sin().powi(2);
                (p * BIAS_STEPS).round().clamp(1.0, BIAS_STEPS - 1.0) as u16
            })
            .collect();
        TardosCode { key, thresholds }
    }

    /// The code of work `work` with every bias ½: each recipient's bit is a
    /// fair coin. Where positions are scarce (a transcript's slots, a
    /// quote's few dozen) this is the strongest code against one leaker: a
    /// matched bit halves an innocent's chance, where the arcsine biases give
    /// on average `E[H(p)]` ≈ 0.58 bits (cutoff 1/1200). Against a mix of copies, innocents
    /// keep the same bound; a coalition is named less surely than with the
    /// Tardos biases. The score and bound are the same functions.
    pub fn uniform(master: &SecretKey, work: u32, positions: usize) -> Self {
        let key = master.derive_with(UNIFORM_WORK_LABEL, &work.to_be_bytes());
        TardosCode {
            key,
            thresholds: vec![(BIAS_STEPS / 2.0) as u16; positions],
        }
    }

    /// Number of positions.
    pub fn len(&self) -> usize {
        self.thresholds.len()
    }

    /// Whether the code has no positions.
    pub fn is_empty(&self) -> bool {
        self.thresholds.is_empty()
    }

    /// Bias of position `i`: the probability that a recipient's bit there is 1.
    pub fn bias(&self, i: usize) -> f64 {
        self.thresholds[i] as f64 / BIAS_STEPS
    }

    /// `recipient`'s stream of 16-bit draws: position `i` is decided by
    /// bytes `2i` and `2i + 1` (little-endian), i.e. half of stream word `i / 2`.
    fn stream(&self, recipient: u32) -> rand_chacha::ChaCha20Rng {
        self.key
            .derive_with(CODEWORD_LABEL, &recipient.to_be_bytes())
            .stream(CODEWORD_LABEL)
    }

    /// Recipient `recipient`'s codeword, one bit per position.
    pub fn codeword(&self, recipient: u32) -> Vec<bool> {
        let mut bytes = vec![0u8; 2 * self.len()];
        self.stream(recipient).fill_bytes(&mut bytes);
        bytes
            .chunks_exact(2)
            .zip(&self.thresholds)
            .map(|(d, &t)| u16::from_le_bytes([d[0], d[1]]) < t)
            .collect()
    }

    /// Prepares readings `(position, value)` (positive = 1) for scoring.
    /// Positions beyond the code are ignored; values are scaled to unit root
    /// mean square and clipped at ±[`READING_CLIP`].
    pub fn readings(&self, raw: &[(u32, f32)]) -> Readings {
        let kept: Vec<(u32, f32)> = raw
            .iter()
            .copied()
            .filter(|&(i, v)| (i as usize) < self.len() && v != 0.0 && v.is_finite())
            .collect();
        let rms = (kept.iter().map(|&(_, v)| (v as f64).powi(2)).sum::<f64>()
            / kept.len().max(1) as f64)
            .sqrt();
        let mut terms: Vec<Term> = kept
            .iter()
            .filter(|_| rms > 0.0)
            .map(|&(i, v)| {
                let r = (v as f64 / rms).clamp(-READING_CLIP as f64, READING_CLIP as f64);
                let p = self.bias(i as usize);
                Term {
                    position: i,
                    threshold: self.thresholds[i as usize],
                    p,
                    reading: r,
                    one: r * ((1.0 - p) / p).sqrt(),
                    zero: -r * (p / (1.0 - p)).sqrt(),
                }
            })
            .collect();
        terms.sort_by_key(|t| t.position);
        terms.dedup_by_key(|t| t.position);
        let norm = terms
            .iter()
            .map(|t| t.reading * t.reading)
            .sum::<f64>()
            .sqrt();
        Readings { terms, norm }
    }

    /// Normalised scores of `recipients` (same order), in parallel.
    pub fn scores(&self, readings: &Readings, recipients: &[u32]) -> Vec<f64> {
        recipients
            .par_iter()
            .map_init(
                || [0u8; 2 * CHUNK],
                |bytes, &j| self.score(readings, j, bytes),
            )
            .collect()
    }

    /// The `shown` best of `recipients`, highest score first, each with its
    /// false-accusation bound: `union` (the number of recipients scored in
    /// all, over every code tried) times [`Readings::innocent_tail`] of its
    /// score. Accuse those whose bound is within budget.
    pub fn rank(
        &self,
        readings: &Readings,
        recipients: &[u32],
        union: usize,
        shown: usize,
    ) -> Vec<Ranked> {
        let scores = self.scores(readings, recipients);
        let mut order: Vec<usize> = (0..recipients.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        order
            .into_iter()
            .take(shown)
            .map(|i| Ranked {
                recipient: recipients[i],
                score: scores[i],
                bound: (union.max(1) as f64 * readings.innocent_tail(scores[i])).min(1.0),
            })
            .collect()
    }

    /// Only the chunks of the stream that hold read positions are
    /// generated (the stream seeks), so the cost follows the leak's length,
    /// not the code's.
    fn score(&self, readings: &Readings, recipient: u32, bytes: &mut [u8; 2 * CHUNK]) -> f64 {
        let mut stream = self.stream(recipient);
        let mut chunk = usize::MAX;
        let mut sum = 0.0;
        for t in &readings.terms {
            let position = t.position as usize;
            if position / CHUNK != chunk {
                chunk = position / CHUNK;
                stream.set_word_pos((chunk * CHUNK / 2) as u128);
                stream.fill_bytes(bytes);
            }
            let at = 2 * (position % CHUNK);
            sum += if u16::from_le_bytes([bytes[at], bytes[at + 1]]) < t.threshold {
                t.one
            } else {
                t.zero
            };
        }
        if readings.norm > 0.0 {
            sum / readings.norm
        } else {
            0.0
        }
    }
}

/// The verdict on a leak read in parts (a transcript's quoted fragments):
/// see [`TardosCode::accuse_parts`].
#[derive(Clone, Debug, PartialEq)]
pub struct PartsVerdict {
    /// The best recipient over all parts' readings together.
    pub whole: Option<Ranked>,
    /// The best recipient of each part alone (only when there are several).
    pub parts: Vec<Option<Ranked>>,
    /// Everyone whose bound is within the budget, on the whole or on a
    /// part, each with their smallest bound; best first.
    pub accused: Vec<Ranked>,
    /// The union bound's factor: recipients × scorings tried × `extra`.
    pub union: usize,
}

impl TardosCode {
    /// Scores `recipients` on the readings of all `parts` together and, when
    /// there are several, on each part alone (a mix of copies may name one
    /// recipient per part only). Every scoring is paid for in the union
    /// bound, with a further factor `extra` (other codes tried); those whose
    /// bound is at most `epsilon` are accused.
    pub fn accuse_parts(
        &self,
        parts: &[Vec<(u32, f32)>],
        recipients: &[u32],
        extra: usize,
        epsilon: f64,
    ) -> PartsVerdict {
        let tries = if parts.len() > 1 { parts.len() + 1 } else { 1 };
        let union = recipients.len().max(1) * tries * extra.max(1);
        let all: Vec<(u32, f32)> = parts.iter().flatten().copied().collect();
        let mut accused: Vec<Ranked> = Vec::new();
        let mut judge = |raw: &[(u32, f32)]| -> Option<Ranked> {
            let readings = self.readings(raw);
            if readings.is_empty() {
                return None;
            }
            let ranked = self.rank(&readings, recipients, union, 8);
            for r in ranked.iter().filter(|r| r.bound <= epsilon) {
                match accused.iter_mut().find(|a| a.recipient == r.recipient) {
                    Some(a) if a.bound > r.bound => *a = *r,
                    Some(_) => {}
                    None => accused.push(*r),
                }
            }
            ranked.first().copied()
        };
        let whole = judge(&all);
        let parts = if parts.len() > 1 {
            parts.iter().map(|p| judge(p)).collect()
        } else {
            Vec::new()
        };
        accused.sort_by(|a, b| a.bound.total_cmp(&b.bound));
        PartsVerdict {
            whole,
            parts,
            accused,
            union,
        }
    }
}

/// Positions generated at a time when scoring (a whole number of stream words).
const CHUNK: usize = 64;

/// A recipient's place in a ranking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    /// Recipient index.
    pub recipient: u32,
    /// Normalised score (an innocent's has mean 0 and variance 1).
    pub score: f64,
    /// Upper bound on the probability that an innocent scores this high,
    /// over every recipient scored.
    pub bound: f64,
}

/// One read position's contribution, precomputed.
#[derive(Clone, Copy, Debug)]
struct Term {
    position: u32,
    threshold: u16,
    p: f64,
    /// The scaled, clipped reading.
    reading: f64,
    /// Contribution of a 1 bit (reading × a).
    one: f64,
    /// Contribution of a 0 bit (−reading × b).
    zero: f64,
}

/// Readings prepared for one code.
#[derive(Clone, Debug)]
pub struct Readings {
    terms: Vec<Term>,
    norm: f64,
}

impl Readings {
    /// Positions read.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() || self.norm == 0.0
    }

    /// Chernoff's bound on the probability that one innocent recipient (bits
    /// drawn independently of these readings) scores at least `score`
    /// (normalised, as [`TardosCode::scores`] reports).
    pub fn innocent_tail(&self, score: f64) -> f64 {
        if self.is_empty() || score <= 0.0 {
            return 1.0;
        }
        let s = score * self.norm;
        // Λ(λ) and Λ'(λ) of the sum of the terms.
        let log_mgf = |lambda: f64| -> (f64, f64) {
            let (mut value, mut slope) = (0.0, 0.0);
            for t in &self.terms {
                let (x1, x0) = (lambda * t.one, lambda * t.zero);
                let top = x1.max(x0);
                let (w1, w0) = (t.p * (x1 - top).exp(), (1.0 - t.p) * (x0 - top).exp());
                value += top + (w1 + w0).ln();
                slope += (w1 * t.one + w0 * t.zero) / (w1 + w0);
            }
            (value, slope)
        };
        // Λ' grows from E[S] = 0; the optimum λ solves Λ'(λ) = s.
        let mut high = 1.0 / self.norm.max(1e-12);
        while log_mgf(high).1 < s && high < 1e6 {
            high *= 2.0;
        }
        let mut low = 0.0;
        for _ in 0..60 {
            let mid = 0.5 * (low + high);
            if log_mgf(mid).1 < s {
                low = mid;
            } else {
                high = mid;
            }
        }
        let lambda = 0.5 * (low + high);
        (log_mgf(lambda).0 - lambda * s).exp().min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_code_names_a_quoted_recipient_and_bounds_innocents_exactly() {
        let code = TardosCode::uniform(&SecretKey::from_seed(5), 9, 64);
        assert!((0..64).all(|i| code.bias(i) == 0.5));
        let recipients: Vec<u32> = (1..=100).collect();
        let guilty = code.codeword(17);
        // 40 positions read without error, in two parts.
        let read: Vec<(u32, f32)> = (0..40u32)
            .map(|i| (i, if guilty[i as usize] { 1.0 } else { -1.0 }))
            .collect();
        let parts = vec![read[..20].to_vec(), read[20..].to_vec()];
        let verdict = code.accuse_parts(&parts, &recipients, 1, 1e-6);
        assert_eq!(verdict.union, 300);
        assert_eq!(verdict.accused.len(), 1);
        assert_eq!(verdict.accused[0].recipient, 17);
        // All 40 match: the Chernoff bound tends to 2^-40 per recipient.
        assert!(
            verdict.accused[0].bound <= 300.0 * 2f64.powi(-40) * 1.5,
            "{}",
            verdict.accused[0].bound
        );
        assert!(verdict.accused[0].bound >= 300.0 * 2f64.powi(-40) * 0.99);
        // 20 positions alone cannot name anyone among 100 at 1e-6.
        assert_eq!(verdict.parts.len(), 2);
        assert!(verdict.parts.iter().all(|p| p.unwrap().bound > 1e-6));
        // Repeated positions count once.
        let doubled: Vec<(u32, f32)> = read.iter().chain(&read).copied().collect();
        assert_eq!(code.readings(&doubled).len(), 40);
    }

    fn code() -> TardosCode {
        TardosCode::new(&SecretKey::from_seed(11), 3, 4000)
    }

    #[test]
    fn codewords_are_keyed_deterministic_and_follow_the_biases() {
        let c = code();
        assert_eq!(c.codeword(5), c.codeword(5));
        assert_ne!(c.codeword(5), c.codeword(6));
        assert_ne!(
            c.codeword(5),
            TardosCode::new(&SecretKey::from_seed(11), 4, 4000).codeword(5)
        );
        // Mean of bits ≈ mean bias (½ for the symmetric arcsine density).
        let ones: usize = (1..=50)
            .map(|j| c.codeword(j).iter().filter(|&&b| b).count())
            .sum();
        let mean = ones as f64 / (50.0 * 4000.0);
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        let cutoff = 1.0 / (300.0 * DESIGN_COLLUDERS as f64);
        assert!(
            (0..c.len()).all(|i| c.bias(i) >= cutoff * 0.99 && c.bias(i) <= 1.0 - cutoff * 0.99)
        );
    }

    #[test]
    fn a_recipients_own_codeword_scores_high_and_the_bound_is_tiny() {
        let c = code();
        let word = c.codeword(7);
        let raw: Vec<(u32, f32)> = word
            .iter()
            .enumerate()
            .map(|(i, &b)| (i as u32, if b { 1.0 } else { -1.0 }))
            .collect();
        let readings = c.readings(&raw);
        let scores = c.scores(&readings, &[7, 8, 9]);
        assert!(scores[0] > 30.0, "{scores:?}");
        assert!(scores[1].abs() < 6.0 && scores[2].abs() < 6.0, "{scores:?}");
        assert!(readings.innocent_tail(scores[0]) < 1e-30);
        assert!(readings.innocent_tail(0.0) == 1.0);
    }

    #[test]
    fn sparse_scores_equal_the_score_of_the_whole_codeword() {
        let c = code();
        let raw: Vec<(u32, f32)> = [
            (3u32, 0.5f32),
            (63, -1.0),
            (64, 2.0),
            (700, 1.5),
            (3999, -0.3),
        ]
        .into_iter()
        .collect();
        let readings = c.readings(&raw);
        for j in [1u32, 2, 99] {
            let word = c.codeword(j);
            let direct: f64 = readings
                .terms
                .iter()
                .map(|t| {
                    if word[t.position as usize] {
                        t.one
                    } else {
                        t.zero
                    }
                })
                .sum::<f64>()
                / readings.norm;
            let scored = c.scores(&readings, &[j])[0];
            assert!((direct - scored).abs() < 1e-12, "{direct} {scored}");
        }
    }

    #[test]
    fn the_bound_holds_for_simulated_innocents() {
        // Readings of a mix of three codewords with noise; 20,000 innocents
        // (recipients 100..) scored. The share above the score whose bound
        // is 1 % must not exceed 1 %.
        let c = TardosCode::new(&SecretKey::from_seed(12), 1, 1500);
        let words: Vec<Vec<bool>> = (1..=3).map(|j| c.codeword(j)).collect();
        let raw: Vec<(u32, f32)> = (0..c.len())
            .map(|i| {
                let sum: f32 = words.iter().map(|w| if w[i] { 1.0 } else { -1.0 }).sum();
                let noise = ((i * 7919 % 101) as f32 - 50.0) / 50.0;
                (i as u32, sum / 3.0 + 0.8 * noise)
            })
            .collect();
        let readings = c.readings(&raw);
        let (mut low, mut high) = (0.0, 20.0);
        for _ in 0..50 {
            let mid = 0.5 * (low + high);
            if readings.innocent_tail(mid) > 0.01 {
                low = mid;
            } else {
                high = mid;
            }
        }
        let innocents: Vec<u32> = (100..20_100).collect();
        let scores = c.scores(&readings, &innocents);
        let above = scores.iter().filter(|&&s| s >= high).count();
        assert!(
            above <= 200,
            "{above} of 20000 innocents above the 1 % bound"
        );
        // The bound is not vacuous either: a Gaussian would put 1 % above 2.33.
        assert!(high < 3.5, "threshold {high}");
        let colluders = c.scores(&readings, &[1, 2, 3]);
        assert!(colluders.iter().all(|&s| s > high), "{colluders:?}");
    }

    #[test]
    fn gaussian_length_matches_the_literature() {
        // ANCHORS: c = 3, n = 100, ε = 10⁻³ → about 510 positions (ε₁ = ε/n).
        let m = gaussian_code_length(3, 1e-3 / 100.0);
        assert!((m - 511.0).abs() < 5.0, "{m}");
    }
}
