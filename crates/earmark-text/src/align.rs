//! Fuzzy alignment of a leaked text to a master transcript: word 3-gram
//! seeds, chained along diagonals, then Smith–Waterman inside each chain's
//! box. Works on canonical words, so that every recipient's rendering, and
//! retyped, re-cased or re-punctuated quotes of it, align alike.

use std::collections::HashMap;
use std::ops::Range;

/// Words per seed.
const GRAM: usize = 3;
/// Seeds occurring more often than this in the master are too common to
/// place a quote (boilerplate phrases) and are skipped.
const MAX_GRAM_REPEATS: usize = 24;
/// Seeds further apart than this (in leak words) start a new chain.
const MAX_CHAIN_GAP: usize = 30;
/// Largest drift of the diagonal between chained seeds (words inserted or
/// elided inside a quote, as an ellipsis does).
const MAX_DRIFT: i64 = 40;
/// Seeds this far apart (leak words) still chain when on one diagonal.
const MAX_SAME_DIAGONAL_GAP: usize = 600;
/// Margin around a chain's box, in words.
const MARGIN: usize = 8;
/// Fewest matched words for a fragment.
pub const MIN_MATCHED_WORDS: usize = 8;

const MATCH: i32 = 3;
const MISMATCH: i32 = -2;
const GAP: i32 = -2;

/// A master's word 3-gram index.
#[derive(Clone, Debug, Default)]
pub struct GramIndex {
    positions: HashMap<u64, Vec<u32>>,
}

fn gram(words: &[u64]) -> u64 {
    words.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, &w| {
        (h.rotate_left(21) ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd)
    })
}

impl GramIndex {
    /// Indexes the canonical words of a master.
    pub fn new(words: &[u64]) -> GramIndex {
        let mut positions: HashMap<u64, Vec<u32>> = HashMap::new();
        for (m, w) in words.windows(GRAM).enumerate() {
            positions.entry(gram(w)).or_default().push(m as u32);
        }
        GramIndex { positions }
    }
}

/// A stretch of the leak aligned to a stretch of the master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Canonical words of the leak it spans.
    pub leak: Range<usize>,
    /// Canonical words of the master it spans.
    pub master: Range<usize>,
    /// Matched word pairs (leak, master), increasing in both.
    pub pairs: Vec<(usize, usize)>,
    /// Alignment score (3 a match, −2 a mismatch or gap).
    pub score: i32,
}

impl Fragment {
    /// The fragment spanned by `pairs` (increasing), if any.
    fn from_pairs(pairs: Vec<(usize, usize)>, score: i32) -> Option<Fragment> {
        let (first, last) = (*pairs.first()?, *pairs.last()?);
        Some(Fragment {
            leak: first.0..last.0 + 1,
            master: first.1..last.1 + 1,
            pairs,
            score,
        })
    }
}

struct Chain {
    leak: Range<usize>,
    master: Range<usize>,
    diagonal: i64,
}

/// The fragments of `leak` that align to `master`, in leak order, not
/// overlapping in the leak.
pub fn fragments(master: &[u64], index: &GramIndex, leak: &[u64]) -> Vec<Fragment> {
    if leak.len() < GRAM || master.len() < GRAM {
        return Vec::new();
    }
    // Seeds, by diagonal then leak position.
    let mut hits: Vec<(i64, usize, usize)> = Vec::new();
    for (l, w) in leak.windows(GRAM).enumerate() {
        if let Some(ms) = index.positions.get(&gram(w)) {
            if ms.len() <= MAX_GRAM_REPEATS {
                hits.extend(ms.iter().map(|&m| (m as i64 - l as i64, l, m as usize)));
            }
        }
    }
    hits.sort_unstable();
    // Runs along one diagonal.
    let mut runs: Vec<Chain> = Vec::new();
    for &(d, l, m) in &hits {
        match runs.last_mut() {
            // Runs are capped at half a box so that a chain can be aligned
            // piece by piece.
            Some(run)
                if run.diagonal == d
                    && l <= run.leak.end + 4
                    && l + GRAM - run.leak.start <= MAX_BOX_WORDS / 2 =>
            {
                run.leak.end = l + GRAM;
                run.master.end = m + GRAM;
            }
            _ => runs.push(Chain {
                leak: l..l + GRAM,
                master: m..m + GRAM,
                diagonal: d,
            }),
        }
    }
    // Chains of runs moving forward in both texts with a small drift, by
    // dynamic programming over the runs in leak order (score = words seeded
    // minus drift and gaps); a run's predecessors are looked up by
    // diagonal, the nearest few on each diagonal within the drift.
    runs.sort_by_key(|r| (r.leak.start, r.master.start));
    let mut by_diagonal: HashMap<i64, Vec<usize>> = HashMap::new();
    let mut best: Vec<(i64, usize)> = Vec::with_capacity(runs.len());
    for (i, run) in runs.iter().enumerate() {
        let own = (run.leak.end - run.leak.start) as i64;
        let mut score = (own, usize::MAX);
        for d in run.diagonal - MAX_DRIFT..=run.diagonal + MAX_DRIFT {
            let Some(list) = by_diagonal.get(&d) else {
                continue;
            };
            for &j in list.iter().rev().take(4) {
                let prior = &runs[j];
                let drift = (run.diagonal - prior.diagonal).abs();
                // On the same diagonal a long stretch without seeds is text
                // whose 3-grams are all common (lists of letters, digits):
                // bridged, since the words in between line up.
                let reach = if drift <= 1 {
                    MAX_SAME_DIAGONAL_GAP
                } else {
                    MAX_CHAIN_GAP
                };
                if run.leak.start > prior.leak.end + reach
                    || prior.leak.start >= run.leak.start
                    || run.master.start + GRAM < prior.master.end
                    || run.master.start <= prior.master.start
                {
                    continue;
                }
                let gap = if drift <= 1 {
                    drift
                } else {
                    run.leak.start.saturating_sub(prior.leak.end) as i64 / 4 + drift
                };
                let overlap = prior.leak.end.saturating_sub(run.leak.start) as i64;
                let candidate = best[j].0 + own - overlap - gap;
                if candidate > score.0 {
                    score = (candidate, j);
                }
            }
        }
        best.push(score);
        by_diagonal.entry(run.diagonal).or_default().push(i);
    }
    // The best chains, best first; each takes its runs back to the first
    // one another chain already took.
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(best[i].0));
    let mut taken = vec![false; runs.len()];
    let mut chains: Vec<Vec<&Chain>> = Vec::new();
    for end in order {
        if taken[end] || best[end].0 < MIN_MATCHED_WORDS as i64 {
            continue;
        }
        let mut members = Vec::new();
        let mut at = end;
        loop {
            taken[at] = true;
            members.push(at);
            match best[at].1 {
                j if j != usize::MAX && !taken[j] => at = j,
                _ => break,
            }
        }
        members.reverse();
        let seeded: usize = members
            .iter()
            .map(|&r| runs[r].leak.end - runs[r].leak.start)
            .sum();
        if seeded >= MIN_MATCHED_WORDS {
            chains.push(members.iter().map(|&r| &runs[r]).collect());
        }
    }
    select(leak, master, &chains)
}

/// The fragments the chains align to that no better one overlaps in the
/// leak: best score first, ties to the earlier chain, each kept unless it
/// overlaps one already kept.
///
/// In repetitive text many chains compete for the same leak words, and
/// aligning each costs Smith–Waterman boxes. So chains are taken lazily,
/// by an upper bound on their score (a match for every leak word of their
/// boxes) until aligned, and a chain whose every possible word lies inside
/// the fragments already kept is never aligned: whatever it found would
/// overlap one of them and be dropped. The result is the one aligning
/// every chain and then choosing would give, in time close to that of the
/// fragments kept.
fn select(leak: &[u64], master: &[u64], chains: &[Vec<&Chain>]) -> Vec<Fragment> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let reach = |chain: &[&Chain]| {
        let start = chain[0].leak.start.saturating_sub(MARGIN);
        let end = chain
            .iter()
            .map(|r| r.leak.end + MARGIN)
            .max()
            .unwrap_or(start)
            .min(leak.len());
        start..end
    };
    let mut aligned: Vec<Option<Fragment>> = (0..chains.len()).map(|_| None).collect();
    let mut queue: BinaryHeap<(i64, Reverse<usize>)> = chains
        .iter()
        .enumerate()
        .map(|(i, chain)| {
            let words: usize = boxes(leak, master, chain)
                .iter()
                .map(|(l, _)| l.end - l.start)
                .sum();
            (words as i64 * MATCH as i64, Reverse(i))
        })
        .collect();
    let mut kept: Vec<Fragment> = Vec::new();
    // The kept fragments' leak words, by start (they never overlap).
    let mut covered: Vec<Range<usize>> = Vec::new();
    let inside = |covered: &[Range<usize>], words: &Range<usize>| {
        let mut at = words.start;
        let first = covered.partition_point(|c| c.end <= at);
        for c in &covered[first..] {
            if c.start > at {
                return false;
            }
            at = at.max(c.end);
            if at >= words.end {
                return true;
            }
        }
        at >= words.end
    };
    while let Some((_, Reverse(i))) = queue.pop() {
        match aligned[i].take() {
            // Its true score is at least every other entry's key.
            Some(f) => {
                let overlap = kept
                    .iter()
                    .any(|k| f.leak.start < k.leak.end && k.leak.start < f.leak.end);
                if !overlap {
                    let at = covered.partition_point(|c| c.start < f.leak.start);
                    covered.insert(at, f.leak.clone());
                    kept.push(f);
                }
            }
            None => {
                if inside(&covered, &reach(&chains[i])) {
                    continue;
                }
                if let Some(f) = align_chain(leak, master, &chains[i]) {
                    if f.pairs.len() >= MIN_MATCHED_WORDS {
                        queue.push((f.score as i64, Reverse(i)));
                        aligned[i] = Some(f);
                    }
                }
            }
        }
    }
    kept.sort_by_key(|f| f.leak.start);
    kept
}

/// Leak words aligned in one Smith–Waterman box at most: a long chain is
/// aligned piece by piece along its runs, so memory and time stay linear in
/// its length (a whole transcript read against itself is one chain).
const MAX_BOX_WORDS: usize = 1500;

/// The Smith–Waterman boxes of a chain of runs (in leak order): groups of
/// consecutive runs spanning at most [`MAX_BOX_WORDS`] leak words, each box
/// (leak words, master words) widened by [`MARGIN`].
fn boxes(leak: &[u64], master: &[u64], runs: &[&Chain]) -> Vec<(Range<usize>, Range<usize>)> {
    let mut found = Vec::new();
    let mut group_start = 0;
    while group_start < runs.len() {
        let mut group_end = group_start + 1;
        while group_end < runs.len()
            && runs[group_end].leak.end - runs[group_start].leak.start <= MAX_BOX_WORDS
        {
            group_end += 1;
        }
        let (first, last) = (runs[group_start], runs[group_end - 1]);
        let master_end = runs[group_start..group_end]
            .iter()
            .map(|r| r.master.end)
            .max()
            .unwrap_or(last.master.end);
        let l = first.leak.start.saturating_sub(MARGIN)..(last.leak.end + MARGIN).min(leak.len());
        let m = first.master.start.saturating_sub(MARGIN)..(master_end + MARGIN).min(master.len());
        found.push((l, m));
        group_start = group_end;
    }
    found
}

/// Word pairs of a chain of runs (in leak order): Smith–Waterman in its
/// [`boxes`].
fn align_chain(leak: &[u64], master: &[u64], runs: &[&Chain]) -> Option<Fragment> {
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut score = 0;
    for (l, m) in boxes(leak, master, runs) {
        if let Some(f) = local_alignment(&leak[l.clone()], &master[m.clone()], l.start, m.start) {
            // Boxes overlap by their margins: keep pairs that move forward.
            for p in f.pairs {
                if pairs.last().is_none_or(|&(a, b)| p.0 > a && p.1 > b) {
                    pairs.push(p);
                }
            }
            score += f.score;
        }
    }
    Fragment::from_pairs(pairs, score)
}

/// Smith–Waterman of `a` (leak words from `a0`) against `b` (master words
/// from `b0`), with its traceback.
fn local_alignment(a: &[u64], b: &[u64], a0: usize, b0: usize) -> Option<Fragment> {
    let (n, m) = (a.len(), b.len());
    let width = m + 1;
    let mut h = vec![0i32; (n + 1) * width];
    let mut best = (0, 0, 0);
    for i in 1..=n {
        for j in 1..=m {
            let diag = h[(i - 1) * width + j - 1]
                + if a[i - 1] == b[j - 1] {
                    MATCH
                } else {
                    MISMATCH
                };
            let v = diag
                .max(h[(i - 1) * width + j] + GAP)
                .max(h[i * width + j - 1] + GAP)
                .max(0);
            h[i * width + j] = v;
            if v > best.0 {
                best = (v, i, j);
            }
        }
    }
    let (score, mut i, mut j) = best;
    if score == 0 {
        return None;
    }
    let mut pairs = Vec::new();
    while i > 0 && j > 0 && h[i * width + j] > 0 {
        let v = h[i * width + j];
        let same = a[i - 1] == b[j - 1];
        if v == h[(i - 1) * width + j - 1] + if same { MATCH } else { MISMATCH } {
            if same {
                pairs.push((a0 + i - 1, b0 + j - 1));
            }
            i -= 1;
            j -= 1;
        } else if v == h[(i - 1) * width + j] + GAP {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    Fragment::from_pairs(pairs, score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::word_hash;

    fn words(text: &str) -> Vec<u64> {
        text.split_whitespace().map(word_hash).collect()
    }

    #[test]
    fn finds_a_quote_with_edits_inside_other_text() {
        let master = words(
            "the board met on monday and agreed that the merger would go ahead \
            despite the objections of the two largest shareholders who had asked for a delay \
            until the audit of the accounts was complete and the regulator had ruled",
        );
        let leak = words(
            "sources told us that the board agreed that the merger would go ahead \
            despite the objections of the largest shareholders who asked for a delay until the \
            audit was complete according to a person familiar",
        );
        let index = GramIndex::new(&master);
        let found = fragments(&master, &index, &leak);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert!(f.pairs.len() >= 20, "{}", f.pairs.len());
        assert!(f.pairs.iter().all(|&(l, m)| leak[l] == master[m]));
        assert!(fragments(
            &master,
            &index,
            &words("nothing in this sentence is from the transcript at all really")
        )
        .is_empty());
    }

    #[test]
    fn a_long_text_aligns_to_itself_in_one_fragment_piece_by_piece() {
        // 30,000 words from a 60-word vocabulary: one chain, aligned in
        // boxes of at most 1,500 words (a single box would need 3.6 GB).
        let mut state = 7u64;
        let text: Vec<u64> = (0..30_000)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                word_hash(&format!("w{}", (state >> 33) % 60))
            })
            .collect();
        let index = GramIndex::new(&text);
        let found = fragments(&text, &index, &text);
        assert_eq!(found.len(), 1);
        assert!(found[0].pairs.len() >= 29_900, "{}", found[0].pairs.len());
        assert!(found[0].pairs.iter().all(|&(l, m)| l == m));
    }
}
