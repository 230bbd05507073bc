//! Reading a master's slots from a leak aligned to it.

use std::collections::HashMap;
use std::ops::Range;

use crate::align::Fragment;
use crate::rules::{Kind, RuleSet};
use crate::slots::{Prepared, NO_SLOT};

/// One slot read from a leak: which rendering it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotReading {
    /// The master's slot index.
    pub slot: u32,
    /// The codeword position that slot renders (see [`crate::Transcript::position`]).
    pub position: u32,
    /// The rendering seen (the codeword bit that would produce it).
    pub bit: bool,
}

/// A fragment of a leak, where it sits in both texts, and what it read.
#[derive(Clone, Debug)]
pub struct FragmentReading {
    /// The alignment.
    pub fragment: Fragment,
    /// Bytes of the leak's text it spans.
    pub leak_bytes: Range<usize>,
    /// Bytes of the master's spoken text it spans.
    pub master_bytes: Range<usize>,
    /// Slots of the master inside it.
    pub slots_covered: usize,
    /// Whether the quote kept its punctuation (else comma and dash slots
    /// are not read: a dropped comma is no evidence).
    pub punctuation_kept: bool,
    /// The slots it read.
    pub readings: Vec<SlotReading>,
}

impl FragmentReading {
    /// The readings as the fingerprint code scores them: (codeword position,
    /// +1 for a 1 bit, −1 for a 0 bit).
    pub fn code_readings(&self) -> Vec<(u32, f32)> {
        self.readings
            .iter()
            .map(|r| (r.position, if r.bit { 1.0 } else { -1.0 }))
            .collect()
    }
}

fn is_stop(key: &str) -> bool {
    matches!(key, "," | "." | "?" | "!")
}

fn punctuation_between(p: &Prepared, words: &Range<usize>) -> usize {
    if words.is_empty() {
        return 0;
    }
    let (a, b) = (p.word_token[words.start], p.word_token[words.end - 1]);
    p.tokens[a..=b].iter().filter(|t| is_stop(&t.key)).count()
}

/// Reads `master`'s slots from `leak` through each fragment.
pub fn read(
    rules: &RuleSet,
    master: &Prepared,
    leak: &Prepared,
    fragments: &[Fragment],
) -> Vec<FragmentReading> {
    // Leak slots by canonical word position, for the slots whose rendering
    // may be empty.
    let mut leak_at: HashMap<usize, Vec<usize>> = HashMap::new();
    for (j, s) in leak.slots.iter().enumerate() {
        if rules.rules[s.rule as usize].kind != Kind::Swap {
            leak_at.entry(leak.slot_word[j]).or_default().push(j);
        }
    }
    fragments
        .iter()
        .map(|f| {
            let to_leak: HashMap<usize, usize> = f.pairs.iter().map(|&(l, m)| (m, l)).collect();
            let master_punct = punctuation_between(master, &f.master);
            let leak_punct = punctuation_between(leak, &f.leak);
            let punctuation_kept = leak_punct * 10 >= master_punct * 7;
            let mut readings = Vec::new();
            let mut covered = 0;
            for (s, slot) in master.slots.iter().enumerate() {
                let w = master.slot_word[s];
                let rule = &rules.rules[slot.rule as usize];
                let inside = match rule.kind {
                    Kind::Swap => w >= f.master.start && w + rule.keys[0].len() <= f.master.end,
                    _ => w > f.master.start && w < f.master.end,
                };
                if !inside {
                    continue;
                }
                covered += 1;
                let bit = match rule.kind {
                    Kind::Swap => {
                        let n = rule.keys[0].len();
                        let ls: Option<Vec<usize>> =
                            (w..w + n).map(|m| to_leak.get(&m).copied()).collect();
                        let Some(ls) = ls else { continue };
                        let j = leak.word_slot[ls[0]];
                        let consecutive = ls.windows(2).all(|p| p[1] == p[0] + 1);
                        if j == NO_SLOT
                            || !consecutive
                            || ls.iter().any(|&l| leak.word_slot[l] != j)
                            || leak.slots[j as usize].rule != slot.rule
                        {
                            continue;
                        }
                        leak.slots[j as usize].variant == 1
                    }
                    kind => {
                        let (Some(&x), Some(&y)) = (to_leak.get(&(w - 1)), to_leak.get(&w)) else {
                            continue;
                        };
                        if y != x + 1 {
                            continue;
                        }
                        let here = leak_at.get(&y).into_iter().flatten().find(|&&j| {
                            let other = &rules.rules[leak.slots[j].rule as usize];
                            other.family == rule.family
                        });
                        match (kind, here) {
                            _ if kind.is_punctuation() && !punctuation_kept => continue,
                            (_, Some(&j)) => leak.slots[j].variant == 1,
                            (Kind::Omit, None) => true,
                            _ => continue,
                        }
                    }
                };
                readings.push(SlotReading {
                    slot: s as u32,
                    position: s as u32,
                    bit,
                });
            }
            let leak_bytes = leak.tokens[leak.word_token[f.leak.start]].start
                ..leak.tokens[leak.word_token[f.leak.end - 1]].end;
            let master_bytes = master.tokens[master.word_token[f.master.start]].start
                ..master.tokens[master.word_token[f.master.end - 1]].end;
            FragmentReading {
                fragment: f.clone(),
                leak_bytes,
                master_bytes,
                slots_covered: covered,
                punctuation_kept,
                readings,
            }
        })
        .collect()
}
