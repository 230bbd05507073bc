//! Fuzzy alignment of a leaked text to a master transcript: word 3-gram
//! seeds, chained along diagonals, then Smith–Waterman inside each chain's
//! box. Works on canonical words, so that every recipient's rendering, and
//! retyped, re-cased or re-punctuated quotes of it, align alike.

use std::cell::RefCell;
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
/// Cells of a row whose running maximum is taken together (a vector
/// register of i16).
const LANES: usize = 8;
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
///
/// A row is filled in two passes, so that the work per cell vectorises:
/// first `t[j] = max(diagonal + score, up + GAP, 0)`, which needs only the
/// row above; then the gap from the left, `h[j] = max(t[j], h[j-1] + GAP)`,
/// which unrolls to `max over k ≤ j of t[k] + (j - k)·GAP`: a running
/// maximum of `t[k] - k·GAP`, plus `j·GAP`. Integer arithmetic, so the
/// matrix, the best cell (the first in row order to reach the maximum) and
/// the traceback are exactly those of the cell-by-cell recurrence.
///
/// Cells are 16-bit whenever no value can leave that range (every box of
/// up to [`MAX_BOX_WORDS`] leak words), twice the cells per vector
/// instruction and half the memory of 32-bit ones. The matrices are kept
/// per thread and reused: allocating and zeroing megabytes per box was a
/// tenth of the time.
fn local_alignment(a: &[u64], b: &[u64], a0: usize, b0: usize) -> Option<Fragment> {
    thread_local! {
        static NARROW: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
        static WIDE: RefCell<Vec<i32>> = const { RefCell::new(Vec::new()) };
    }
    if fits_i16(a.len(), b.len()) {
        // Words as 16-bit ids for the box (0 for a leak word the master
        // part lacks), so that eight compare in one instruction.
        let (a, b) = dense_ids(a, b);
        NARROW.with(|matrix| local_alignment_in(&mut matrix.borrow_mut(), &a, &b, a0, b0))
    } else {
        WIDE.with(|matrix| local_alignment_in(&mut matrix.borrow_mut(), a, b, a0, b0))
    }
}

/// `a` and `b` with every word replaced by a number from 1 in order of
/// first appearance in `b`, and words absent from `b` by 0: equal exactly
/// where the words are. `b` must be shorter than 2¹⁶ words.
fn dense_ids(a: &[u64], b: &[u64]) -> (Vec<u16>, Vec<u16>) {
    let mut ids: HashMap<u64, u16> = HashMap::with_capacity(b.len());
    let b_ids = b
        .iter()
        .map(|&word| {
            let next = ids.len() as u16 + 1;
            *ids.entry(word).or_insert(next)
        })
        .collect();
    let a_ids = a
        .iter()
        .map(|word| ids.get(word).copied().unwrap_or(0))
        .collect();
    (a_ids, b_ids)
}

/// Whether every value of an `n` × `m` alignment fits an i16: scores reach
/// at most `MATCH·n`, and the running maximum adds up to `m·|GAP|`.
fn fits_i16(n: usize, m: usize) -> bool {
    let most = MATCH as i64 * n as i64 + GAP.unsigned_abs() as i64 * (m as i64 + 1);
    most < i16::MAX as i64 / 2
}

/// An alignment matrix cell: i16 or i32.
trait Cell:
    Copy + Ord + Default + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self> + Into<i32>
{
    /// `value`, which the caller has checked fits.
    fn of(value: i32) -> Self;
}

impl Cell for i16 {
    fn of(value: i32) -> Self {
        value as i16
    }
}

impl Cell for i32 {
    fn of(value: i32) -> Self {
        value
    }
}

fn local_alignment_in<T: Cell, W: Copy + Eq>(
    h: &mut Vec<T>,
    a: &[W],
    b: &[W],
    a0: usize,
    b0: usize,
) -> Option<Fragment> {
    let (n, m) = (a.len(), b.len());
    let width = m + 1;
    let (matched, mismatched, gap, zero) = (T::of(MATCH), T::of(MISMATCH), T::of(GAP), T::of(0));
    // Every cell is written before it is read, except the first row's.
    if h.len() < (n + 1) * width {
        h.resize((n + 1) * width, zero);
    }
    h[..width].fill(zero);
    let mut best = (zero, 0, 0);
    for i in 1..=n {
        let (above, rest) = h.split_at_mut(i * width);
        let prev = &above[(i - 1) * width..];
        let row = &mut rest[..width];
        let word = a[i - 1];
        row[0] = zero;
        // First pass, diagonal and up, storing `t[j] - j·GAP`.
        for (j, (cell, (&diag, (&up, &other)))) in row[1..]
            .iter_mut()
            .zip(prev.iter().zip(prev[1..].iter().zip(b)))
            .enumerate()
        {
            let score = if other == word { matched } else { mismatched };
            *cell = (diag + score).max(up + gap).max(zero) - T::of((j as i32 + 1) * GAP);
        }
        // Second pass: gaps from the left, as a running maximum, taken
        // [`LANES`] cells at a time in doubling steps, so that only one
        // maximum per block waits on the block before. The start is below
        // every `t[k] - k·GAP`, which is at least 0.
        let mut running = T::of(-1);
        let mut blocks = row[1..].chunks_exact_mut(LANES);
        for block in &mut blocks {
            let mut v: [T; LANES] = block.try_into().expect("a block");
            let mut step = 1;
            while step < LANES {
                let before = v;
                for k in step..LANES {
                    v[k] = v[k].max(before[k - step]);
                }
                step *= 2;
            }
            for (cell, value) in block.iter_mut().zip(v) {
                *cell = value.max(running);
            }
            running = running.max(v[LANES - 1]);
        }
        for cell in blocks.into_remainder() {
            running = running.max(*cell);
            *cell = running;
        }
        for (j, cell) in row.iter_mut().enumerate().skip(1) {
            *cell = *cell + T::of(j as i32 * GAP);
        }
        let row_best = row.iter().copied().fold(zero, T::max);
        if row_best > best.0 {
            let j = row
                .iter()
                .position(|&v| v == row_best)
                .expect("the row's maximum");
            best = (row_best, i, j);
        }
    }
    let (score, mut i, mut j) = best;
    if score == zero {
        return None;
    }
    let at = |i: usize, j: usize| h[i * width + j].into();
    let mut pairs = Vec::new();
    while i > 0 && j > 0 && at(i, j) > 0 {
        let v = at(i, j);
        let same = a[i - 1] == b[j - 1];
        if v == at(i - 1, j - 1) + if same { MATCH } else { MISMATCH } {
            if same {
                pairs.push((a0 + i - 1, b0 + j - 1));
            }
            i -= 1;
            j -= 1;
        } else if v == at(i - 1, j) + GAP {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    Fragment::from_pairs(pairs, score.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recurrence cell by cell, as first written: the reference the
    /// two-pass rows are checked against.
    fn cell_by_cell(a: &[u64], b: &[u64], a0: usize, b0: usize) -> Option<Fragment> {
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

    #[test]
    fn two_pass_rows_give_the_cell_by_cell_alignment_exactly() {
        // Small vocabularies make ties everywhere: the best cell and the
        // traceback must still be the reference's, on a reused matrix.
        let mut state = 11u64;
        let mut next = |below: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % below
        };
        let (mut narrow, mut wide) = (Vec::<i16>::new(), Vec::<i32>::new());
        for trial in 0..400 {
            let vocabulary = 2 + next(12);
            let (n, m) = (next(60) as usize, next(60) as usize);
            let a: Vec<u64> = (0..n).map(|_| next(vocabulary)).collect();
            let mut b: Vec<u64> = (0..m).map(|_| next(vocabulary)).collect();
            if trial % 3 == 0 && n > 10 {
                // A quote with edits inside other words.
                b.splice(m / 2..m / 2, a[3..n - 3].iter().copied());
            }
            let expected = cell_by_cell(&a, &b, 5, 9);
            assert!(fits_i16(a.len(), b.len()));
            assert_eq!(
                local_alignment_in(&mut narrow, &a, &b, 5, 9),
                expected,
                "trial {trial}"
            );
            assert_eq!(
                local_alignment_in(&mut wide, &a, &b, 5, 9),
                expected,
                "trial {trial}"
            );
            assert_eq!(local_alignment(&a, &b, 5, 9), expected, "trial {trial}");
        }
    }
}
