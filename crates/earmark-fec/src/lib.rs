//! Forward error correction for the watermark channel.
//!
//! Owns: a rate-1/4, constraint-length-9 convolutional code (generator
//! polynomials 463, 535, 733, 745 octal, free distance 24, the best known for
//! its rate and memory), zero-tail terminated, and its soft-decision Viterbi
//! and list Viterbi decoders.
//!
//! Why this code: the watermark has far more cells than coded bits (1840 data
//! cells per 4 s block), so each coded bit is read from many cells and the
//! code works at a combined raw error rate of 0.2–0.25. There, under
//! list-of-8 decoding of 88 information bits with the cells per coded bit
//! held fixed, a throwaway simulation with Gaussian soft values (not in the
//! repository; 400 frames per point) gave this code a frame error rate of
//! 0.13 where the earlier rate-1/3 K=7 code (LTE's 133, 171, 165) had 0.30,
//! and 0.01 against 0.055 one decibel higher: about half a decibel, for four
//! times the trellis states. `earmark bench` measures what it gives on real
//! channels (see `docs/engine-figures.md`).
//!
//! Must not touch: keys, audio or any I/O. Bits go in as `bool`s, soft values
//! come in as `f32`s, and nothing here knows where they came from.
//!
//! Soft-value convention: a positive soft value is evidence for a `1` bit, a
//! negative one for a `0`, zero is an erasure. The magnitude is the
//! confidence; the decoder maximises the correlation `Σ soft·(2·bit − 1)`, so
//! a common scale factor on all soft values does not change its decision.

#![forbid(unsafe_code)]

/// Constraint length of the code (memory + 1).
pub const CONSTRAINT_LENGTH: usize = 9;
/// Number of zero tail bits appended to terminate the trellis.
pub const TAIL_BITS: usize = CONSTRAINT_LENGTH - 1;
/// Coded bits per input bit.
pub const RATE_INVERSE: usize = 4;
/// Generator polynomials (octal 463, 535, 733, 745), MSB = current input bit.
const GENERATORS: [u32; RATE_INVERSE] = [0o463, 0o535, 0o733, 0o745];
const STATES: usize = 1 << (CONSTRAINT_LENGTH - 1);

/// Number of coded bits for `info_bits` information bits, tail included.
pub fn coded_len(info_bits: usize) -> usize {
    (info_bits + TAIL_BITS) * RATE_INVERSE
}

fn outputs(register: u32) -> [bool; RATE_INVERSE] {
    let mut out = [false; RATE_INVERSE];
    for (o, g) in out.iter_mut().zip(GENERATORS) {
        *o = (register & g).count_ones() % 2 == 1;
    }
    out
}

/// Encodes `bits`, appending [`TAIL_BITS`] zeros so the trellis ends in state 0.
pub fn encode(bits: &[bool]) -> Vec<bool> {
    let mut state: u32 = 0;
    let mut coded = Vec::with_capacity(coded_len(bits.len()));
    for &bit in bits.iter().chain(std::iter::repeat_n(&false, TAIL_BITS)) {
        let register = (u32::from(bit) << (CONSTRAINT_LENGTH - 1)) | state;
        coded.extend_from_slice(&outputs(register));
        state = register >> 1;
    }
    coded
}

/// Soft-decision Viterbi decoding of a zero-tail terminated codeword.
///
/// `soft` must hold [`coded_len`]`(info_bits)` values. Returns the most likely
/// information bits (tail removed).
pub fn decode(soft: &[f32], info_bits: usize) -> Vec<bool> {
    assert_eq!(
        soft.len(),
        coded_len(info_bits),
        "soft input length must match the code"
    );
    let steps = info_bits + TAIL_BITS;
    let branch_outputs: Vec<[f32; RATE_INVERSE]> = (0..(2 * STATES) as u32)
        .map(|register| outputs(register).map(|b| if b { 1.0 } else { -1.0 }))
        .collect();
    let mut metric = vec![f32::NEG_INFINITY; STATES];
    metric[0] = 0.0;
    let mut next = vec![f32::NEG_INFINITY; STATES];
    // survivor[t][state] = input bit that led into `state` at step t, plus predecessor.
    let mut survivors: Vec<[u8; STATES]> = Vec::with_capacity(steps);
    for t in 0..steps {
        let y = &soft[t * RATE_INVERSE..(t + 1) * RATE_INVERSE];
        next.iter_mut().for_each(|m| *m = f32::NEG_INFINITY);
        let mut choice = [0u8; STATES];
        let tail = t >= info_bits;
        for (state, &m) in metric.iter().enumerate() {
            if m == f32::NEG_INFINITY {
                continue;
            }
            for bit in 0..=u32::from(!tail) {
                let register = (bit << (CONSTRAINT_LENGTH - 1)) | state as u32;
                let out = &branch_outputs[register as usize];
                let gain: f32 = out.iter().zip(y).map(|(o, s)| o * s).sum();
                let to = (register >> 1) as usize;
                let candidate = m + gain;
                if candidate > next[to] {
                    next[to] = candidate;
                    // The predecessor's lowest bit is what falls out of the register.
                    choice[to] = (state & 1) as u8;
                }
            }
        }
        survivors.push(choice);
        std::mem::swap(&mut metric, &mut next);
    }
    // Trace back from state 0 (the tail forces it).
    let mut state = 0usize;
    let mut bits = vec![false; steps];
    for t in (0..steps).rev() {
        // The newest input bit sits in the state's top bit.
        bits[t] = (state >> (CONSTRAINT_LENGTH - 2)) & 1 == 1;
        let dropped = survivors[t][state] as usize;
        state = ((state << 1) & (STATES - 1)) | dropped;
    }
    bits.truncate(info_bits);
    bits
}

/// List Viterbi decoding (parallel list algorithm): the `list` most likely
/// information sequences, best first, each distinct.
///
/// With an outer check (the payload's MAC tag) the decoder can take the best
/// candidate that verifies, which gains about a decibel over plain Viterbi on
/// short blocks; each extra candidate costs one more verification attempt in
/// the false-positive bound.
pub fn decode_list(soft: &[f32], info_bits: usize, list: usize) -> Vec<Vec<bool>> {
    assert_eq!(
        soft.len(),
        coded_len(info_bits),
        "soft input length must match the code"
    );
    assert!(
        (1..=256).contains(&list),
        "a list holds 1 to 256 candidates"
    );
    let steps = info_bits + TAIL_BITS;
    let branch_outputs: Vec<[f32; RATE_INVERSE]> = (0..(2 * STATES) as u32)
        .map(|register| outputs(register).map(|b| if b { 1.0 } else { -1.0 }))
        .collect();
    // Per state, its `list` best path metrics, best first (flat: state·list + rank).
    let mut metric = vec![f32::NEG_INFINITY; STATES * list];
    metric[0] = 0.0;
    let mut next = vec![f32::NEG_INFINITY; STATES * list];
    // Per step, state and rank: where the path came from (predecessor state,
    // predecessor rank).
    let mut history: Vec<(u16, u8)> = vec![(0, 0); steps * STATES * list];
    for t in 0..steps {
        let y = &soft[t * RATE_INVERSE..(t + 1) * RATE_INVERSE];
        let tail = t >= info_bits;
        let trace = &mut history[t * STATES * list..(t + 1) * STATES * list];
        for to in 0..STATES {
            let out = &mut next[to * list..(to + 1) * list];
            let bit = to >> (CONSTRAINT_LENGTH - 2);
            if tail && bit == 1 {
                out.fill(f32::NEG_INFINITY);
                continue;
            }
            // The two predecessors differ in the bit that falls out of the
            // register; each one's list is sorted, and one branch adds the same
            // gain to all of it, so merging the two gives the best `list`.
            let from = [(to << 1) & (STATES - 1), ((to << 1) & (STATES - 1)) | 1];
            let gains = from.map(|state| {
                let register = (bit << (CONSTRAINT_LENGTH - 1)) | state;
                branch_outputs[register]
                    .iter()
                    .zip(y)
                    .map(|(o, s)| o * s)
                    .sum::<f32>()
            });
            let (mut a, mut b) = (0usize, 0usize);
            for (rank, slot) in out.iter_mut().enumerate() {
                let from_a = metric[from[0] * list + a] + gains[0];
                let from_b = metric[from[1] * list + b] + gains[1];
                let (value, state, r) = if from_a >= from_b {
                    a += 1;
                    (from_a, from[0], a - 1)
                } else {
                    b += 1;
                    (from_b, from[1], b - 1)
                };
                *slot = value;
                trace[to * list + rank] = (state as u16, r as u8);
                if a == list || b == list {
                    // One list is used up; the rest come from the other.
                    let (rest_state, mut rest_rank, gain) = if a == list {
                        (from[1], b, gains[1])
                    } else {
                        (from[0], a, gains[0])
                    };
                    for later in rank + 1..list {
                        out[later] = metric[rest_state * list + rest_rank] + gain;
                        trace[to * list + later] = (rest_state as u16, rest_rank as u8);
                        rest_rank += 1;
                    }
                    break;
                }
            }
        }
        std::mem::swap(&mut metric, &mut next);
    }
    let mut out = Vec::new();
    // State 0's entries (the tail forces state 0) are the finished paths.
    let finished = metric[..list]
        .iter()
        .take_while(|&&m| m > f32::NEG_INFINITY)
        .count();
    for rank in 0..finished {
        let (mut state, mut r) = (0usize, rank);
        let mut bits = vec![false; steps];
        for t in (0..steps).rev() {
            bits[t] = (state >> (CONSTRAINT_LENGTH - 2)) & 1 == 1;
            let (prev_state, prev_rank) = history[(t * STATES + state) * list + r];
            state = prev_state as usize;
            r = prev_rank as usize;
        }
        bits.truncate(info_bits);
        out.push(bits);
    }
    out
}

/// `ln E[exp(λ · Σ soft·(2·bit − 1))]` over the codewords of uniformly
/// random `info_bits`-bit words: the log moment-generating function of the
/// correlation between `soft` and a random codeword, computed exactly by a
/// forward pass over the code's trellis (each information bit 0 or 1 with
/// probability ½, tail bits 0).
pub fn log_mgf(soft: &[f32], info_bits: usize, lambda: f64) -> f64 {
    assert_eq!(soft.len(), coded_len(info_bits));
    let steps = info_bits + TAIL_BITS;
    // Linear-domain forward pass, renormalised every step (the scale is
    // kept as a logarithm): eight exponentials per step, one per output
    // pattern, instead of one per transition.
    let mut alpha = vec![0.0f64; STATES];
    alpha[0] = 1.0;
    let mut next = vec![0.0f64; STATES];
    let mut log_scale = 0.0f64;
    for t in 0..steps {
        let v = &soft[t * RATE_INVERSE..(t + 1) * RATE_INVERSE];
        let mut weight = [0.0f64; 1 << RATE_INVERSE];
        for (pattern, w) in weight.iter_mut().enumerate() {
            let metric: f64 = (0..RATE_INVERSE)
                .map(|i| {
                    let one = (pattern >> i) & 1 == 1;
                    if one {
                        v[i] as f64
                    } else {
                        -(v[i] as f64)
                    }
                })
                .sum();
            *w = (lambda * metric).exp();
        }
        next.iter_mut().for_each(|a| *a = 0.0);
        let (inputs, prior): (&[u32], f64) = if t < info_bits {
            (&[0, 1], 0.5)
        } else {
            (&[0], 1.0)
        };
        for (state, &a) in alpha.iter().enumerate() {
            if a == 0.0 {
                continue;
            }
            for &bit in inputs {
                let register = (bit << (CONSTRAINT_LENGTH - 1)) | state as u32;
                let out = outputs(register);
                let pattern = out
                    .iter()
                    .enumerate()
                    .fold(0usize, |p, (i, &o)| p | (usize::from(o) << i));
                next[(register >> 1) as usize] += a * prior * weight[pattern];
            }
        }
        let peak = next.iter().fold(0.0f64, |m, &x| m.max(x));
        if peak <= 0.0 || !peak.is_finite() {
            return if peak.is_finite() {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
        }
        next.iter_mut().for_each(|x| *x /= peak);
        log_scale += peak.ln();
        std::mem::swap(&mut alpha, &mut next);
    }
    log_scale + alpha[0].ln()
}

/// Upper bound on the probability that a uniformly random codeword (of a
/// random `info_bits`-bit word) correlates with `soft` at least `score`
/// (`Σ soft·(2·bit − 1)`): Chernoff's bound `min over λ ≥ 0 of
/// exp(ln E[exp(λ·S)] − λ·score)` with the exact moment-generating function
/// of [`log_mgf`]. This is the chance that an innocent's codeword, which the
/// readings do not depend on, scores as high as `score`.
pub fn random_codeword_tail(soft: &[f32], info_bits: usize, score: f64) -> f64 {
    if score <= 0.0 {
        return 1.0;
    }
    let energy: f64 = soft.iter().map(|&v| (v as f64).powi(2)).sum();
    if energy <= 0.0 {
        return 1.0;
    }
    let exponent = |lambda: f64| log_mgf(soft, info_bits, lambda) - lambda * score;
    // The exponent is convex in λ; a Gaussian's optimum is score / energy.
    let (mut lo, mut hi) = (0.0f64, 8.0 * score / energy);
    let ratio = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..40 {
        let a = hi - ratio * (hi - lo);
        let b = lo + ratio * (hi - lo);
        if exponent(a) < exponent(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    exponent(0.5 * (lo + hi)).min(0.0).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn to_soft(coded: &[bool]) -> Vec<f32> {
        coded.iter().map(|&b| if b { 1.0 } else { -1.0 }).collect()
    }

    #[test]
    fn clean_codeword_decodes() {
        let bits: Vec<bool> = (0..88).map(|i| (i * 7 + 3) % 5 < 2).collect();
        let coded = encode(&bits);
        assert_eq!(coded.len(), coded_len(88));
        assert_eq!(decode(&to_soft(&coded), 88), bits);
    }

    #[test]
    fn list_decoding_starts_with_the_viterbi_answer_and_finds_the_runner_up() {
        let bits: Vec<bool> = (0..60).map(|i| (i * 5 + 1) % 7 < 3).collect();
        let coded = encode(&bits);
        let mut soft: Vec<f32> = to_soft(&coded).iter().map(|s| s * 0.4).collect();
        // Noise that a deterministic pattern makes reproducible.
        for (i, s) in soft.iter_mut().enumerate() {
            *s += (((i * 7919) % 101) as f32 / 101.0 - 0.5) * 0.9;
        }
        let list = decode_list(&soft, 60, 8);
        assert_eq!(list.len(), 8);
        assert_eq!(list[0], decode(&soft, 60));
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                assert_ne!(a, b, "list entries are distinct");
            }
        }
        // Clean input: the true message comes first.
        assert_eq!(decode_list(&to_soft(&coded), 60, 4)[0], bits);
    }

    #[test]
    fn list_decoding_matches_exhaustive_search() {
        // Few enough information bits to score every message: the list must
        // be the best messages by correlation, in order.
        let info = 7;
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20 {
            let soft: Vec<f32> = (0..coded_len(info))
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % 2001) as f32 / 1000.0 - 1.0
                })
                .collect();
            let mut all: Vec<(f32, Vec<bool>)> = (0..1u32 << info)
                .map(|m| {
                    let bits: Vec<bool> = (0..info).map(|i| (m >> i) & 1 == 1).collect();
                    let score = encode(&bits)
                        .iter()
                        .zip(&soft)
                        .map(|(&b, &v)| if b { v } else { -v })
                        .sum();
                    (score, bits)
                })
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            let list = decode_list(&soft, info, 8);
            assert_eq!(list.len(), 8);
            for (rank, bits) in list.iter().enumerate() {
                let score: f32 = encode(bits)
                    .iter()
                    .zip(&soft)
                    .map(|(&b, &v)| if b { v } else { -v })
                    .sum();
                assert!(
                    (score - all[rank].0).abs() < 1e-4,
                    "rank {rank}: {score} against {}",
                    all[rank].0
                );
            }
        }
    }

    proptest! {
        /// Any message survives a handful of flipped coded bits and erasures.
        #[test]
        fn corrects_sparse_errors(
            bits in proptest::collection::vec(any::<bool>(), 8..120),
            flips in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
            erasures in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let coded = encode(&bits);
            let mut soft = to_soft(&coded);
            // Keep flipped bits far apart: the free distance of this code is 24.
            let mut used: Vec<usize> = Vec::new();
            for f in &flips {
                let i = f.index(soft.len());
                if used.iter().all(|&u| u.abs_diff(i) > 60) {
                    soft[i] = -soft[i];
                    used.push(i);
                }
            }
            for e in &erasures {
                let i = e.index(soft.len());
                if used.iter().all(|&u| u.abs_diff(i) > 60) {
                    soft[i] = 0.0;
                }
            }
            prop_assert_eq!(decode(&soft, bits.len()), bits);
        }

        /// Scaling all soft values by a positive factor never changes the decision.
        #[test]
        fn decision_is_scale_invariant(
            soft in proptest::collection::vec(-3.0f32..3.0, coded_len(40)),
            scale_exp in -6i32..6,
        ) {
            // Powers of two scale exactly, so ties cannot break differently.
            let scale = 2f32.powi(scale_exp);
            let scaled: Vec<f32> = soft.iter().map(|s| s * scale).collect();
            prop_assert_eq!(decode(&soft, 40), decode(&scaled, 40));
        }
    }

    #[test]
    fn random_codeword_tail_bounds_the_empirical_tail() {
        // Soft values leaning towards one codeword, as a reading of a copy
        // would; random words' correlations must stay under the bound.
        let info = 20;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let word: Vec<bool> = (0..info).map(|_| next() & 1 == 1).collect();
        let soft: Vec<f32> = encode(&word)
            .iter()
            .map(|&b| {
                let noise = (next() % 2001) as f32 / 1000.0 - 1.0;
                if b {
                    0.4 + noise
                } else {
                    -0.4 + noise
                }
            })
            .collect();
        assert!((log_mgf(&soft, info, 0.0)).abs() < 1e-9, "E[1] = 1");
        let trials = 20_000;
        let scores: Vec<f64> = (0..trials)
            .map(|_| {
                let other: Vec<bool> = (0..info).map(|_| next() & 1 == 1).collect();
                encode(&other)
                    .iter()
                    .zip(&soft)
                    .map(|(&b, &v)| if b { v as f64 } else { -(v as f64) })
                    .sum()
            })
            .collect();
        for threshold in [2.0, 4.0, 6.0, 8.0] {
            let empirical =
                scores.iter().filter(|&&s| s >= threshold).count() as f64 / trials as f64;
            let bound = random_codeword_tail(&soft, info, threshold);
            assert!(
                empirical <= bound + 3.0 / (trials as f64).sqrt(),
                "{threshold}: {empirical} > {bound}"
            );
        }
        let own: f64 = encode(&word)
            .iter()
            .zip(&soft)
            .map(|(&b, &v)| if b { v as f64 } else { -(v as f64) })
            .sum();
        assert!(random_codeword_tail(&soft, info, own) < 1e-3);
    }
}
