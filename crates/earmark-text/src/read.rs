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
    /// Whether the quote lost every filler of the master's stretch (then
    /// missing fillers are not read: the quoter cleaned them up).
    pub fillers_cleaned: bool,
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

/// Fillers a fragment of the master must hold before a quote of it with
/// none is taken as cleaned up: with three, one recipient in eight has
/// all of them dropped and loses those readings; with fewer, too many would.
const MIN_FILLERS_FOR_CLEANING: usize = 3;

fn is_stop(key: &str) -> bool {
    matches!(key, "," | "." | "?" | "!")
}

/// Commas and stops between the first and last of `words`, leaving out
/// those that are slots themselves (a filler's commas, a serial comma):
/// the punctuation a quote keeps or drops whatever the copy.
fn punctuation_between(p: &Prepared, words: &Range<usize>) -> usize {
    if words.is_empty() {
        return 0;
    }
    let (a, b) = (p.word_token[words.start], p.word_token[words.end - 1]);
    let mut in_slot = vec![false; b + 1 - a];
    for s in &p.slots {
        for t in s.tokens.clone().filter(|t| (a..=b).contains(t)) {
            in_slot[t - a] = true;
        }
    }
    p.tokens[a..=b]
        .iter()
        .zip(in_slot)
        .filter(|(t, slot)| !slot && is_stop(&t.key))
        .count()
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
            // A quote without a single filler where the master has several
            // was cleaned up by whoever quoted it (as newspapers do): its
            // missing fillers say nothing about the copy.
            let fillers = |p: &Prepared, words: &Range<usize>| {
                p.slots
                    .iter()
                    .zip(&p.slot_word)
                    .filter(|(s, &w)| {
                        let r = &rules.rules[s.rule as usize];
                        r.is_filler() && s.variant == 0 && w > words.start && w < words.end
                    })
                    .count()
            };
            let fillers_cleaned = fillers(master, &f.master) >= MIN_FILLERS_FOR_CLEANING
                && fillers(leak, &f.leak) == 0;
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
                            (Kind::Omit, None) if rule.is_filler() && fillers_cleaned => continue,
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
                fillers_cleaned,
                readings,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::{Document, Format, Mode, Prepared, RuleSet, Transcript};

    const CALL: &str = "Well, uh, we sent the money on Monday and, um, they said that it arrived. \
        Then, uh, the bank called us again because, um, the second transfer was late. \
        I think that we should, uh, wait for the auditor before we do not pay them anything more. \
        So we left it there and, er, nobody called back until Friday when the lawyers wrote.";

    fn transcript(rules: &RuleSet) -> Transcript {
        Transcript::new(
            rules,
            Document::parse(CALL.to_string(), Some(Format::Plain)).unwrap(),
        )
    }

    #[test]
    fn a_quote_cleaned_of_every_filler_reads_no_filler_slots() {
        let rules = RuleSet::standard();
        let t = transcript(&rules);
        let filler_slots: Vec<usize> = (0..t.slots())
            .filter(|&s| rules.rules[t.prepared.slots[s].rule as usize].is_filler())
            .collect();
        assert!(filler_slots.len() >= 5);
        // Every filler kept (bit 0) except the first: a quote as written
        // reads them all, the dropped one included.
        let mut bits = vec![false; t.codeword_len];
        bits[t.position(filler_slots[0])] = true;
        let copy = t.render_spoken(&rules, &bits);
        let read = |text: &str| {
            let leak = Prepared::new(&rules, text.to_string(), Mode::Leak);
            let f = t.read(&rules, &leak);
            assert_eq!(f.len(), 1);
            f[0].clone()
        };
        let as_written = read(&copy);
        assert!(!as_written.fillers_cleaned);
        let filler_readings = |f: &crate::FragmentReading| {
            f.readings
                .iter()
                .filter(|r| filler_slots.contains(&(r.slot as usize)))
                .count()
        };
        assert_eq!(filler_readings(&as_written), filler_slots.len());
        // The same quote with every filler removed, as a newspaper prints it.
        let cleaned: String = copy
            .replace(", uh,", "")
            .replace(", um,", "")
            .replace(" uh,", "")
            .replace(", er,", "")
            .replace(" uh ", " ")
            .replace(" um ", " ");
        assert!(
            !cleaned.contains(" uh") && !cleaned.contains(" um"),
            "{cleaned}"
        );
        let quoted = read(&cleaned);
        assert!(quoted.fillers_cleaned);
        assert_eq!(filler_readings(&quoted), 0);
        // Other slots are still read.
        assert!(!quoted.readings.is_empty());
    }
}
