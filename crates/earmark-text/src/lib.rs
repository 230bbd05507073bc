//! Transcript canaries: every recipient's transcript differs from the
//! original only in meaning-preserving details chosen by their codeword,
//! and a quoted passage shows which details it carries.
//!
//! Owns: reading transcript formats into spoken text and protected
//! structure ([`document`]), the reviewed variation rules ([`rules`], data in
//! `rules/slots.toml`), finding slots and rendering a recipient's variant
//! ([`slots`]), aligning a leaked text to a master ([`align`]) and reading
//! the slots a quote covers ([`read`]). Must not touch: files, the ledger,
//! keys or how codeword bits are chosen and scored (`earmark-codes`): it
//! turns text and bits into text, and text into slot readings.

#![forbid(unsafe_code)]

pub mod align;
mod check;
pub mod document;
pub mod read;
pub mod rules;
pub mod slots;
pub mod tokens;

pub use align::{Fragment, GramIndex, MIN_MATCHED_WORDS};
pub use check::{LeftOutBecause, SlotFailure};
pub use document::{Document, DocumentError, Format};
pub use read::{FragmentReading, SlotReading};
pub use rules::{Kind, RuleSet, RulesError};
pub use slots::{canonical, Mode, Prepared};

/// A registered transcript, prepared for rendering variants and tracing quotes.
#[derive(Clone, Debug)]
pub struct Transcript {
    /// The document as given.
    pub document: Document,
    /// Its spoken text, prepared (slots found in master mode).
    pub prepared: Prepared,
    /// The codeword position each slot renders: its own, except that the
    /// numerals of one sentence share one, so that a sentence never mixes
    /// "press one" with "press 2".
    pub positions: Vec<u32>,
    /// Number of codeword positions.
    pub codeword_len: usize,
    /// Slots found but left out, because their other rendering would change
    /// what the transcript says or is not read back: a rule at fault, named
    /// with its words.
    pub left_out: Vec<SlotFailure>,
    index: GramIndex,
}

/// Renderings tried when a transcript is prepared, to find the slots whose
/// reading depends on a neighbour's rendering: the other way round from
/// the original, the two alternations, and the rest drawn by a fixed linear
/// congruence seeded with the pattern's number (the same for every
/// transcript and home, so that marking and tracing keep the same slots).
const NEIGHBOUR_PATTERNS: u64 = 11;

/// What a self-read made of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Bit(bool),
    /// A filler not read because its fragment reads as cleaned up.
    Excused,
    Unread,
}

/// Each slot of `master` as `fragments` read it.
fn readings_by_slot(
    rules: &RuleSet,
    master: &Prepared,
    fragments: &[FragmentReading],
) -> Vec<Seen> {
    let mut seen = vec![Seen::Unread; master.slots.len()];
    for f in fragments {
        for r in &f.readings {
            seen[r.slot as usize] = Seen::Bit(r.bit);
        }
    }
    let cleaned = fragments.iter().any(|f| f.fillers_cleaned);
    for (s, slot) in master.slots.iter().enumerate() {
        let rule = &rules.rules[slot.rule as usize];
        if cleaned && seen[s] == Seen::Unread && rule.is_filler() {
            seen[s] = Seen::Excused;
        }
    }
    seen
}

/// Slot families whose slots in one sentence render alike.
const SENTENCE_CONSISTENT: &[&str] = &["numeral", "keypad-digit"];

/// Codeword positions of `prepared`'s slots (see [`Transcript::positions`]).
fn positions(rules: &RuleSet, prepared: &Prepared) -> (Vec<u32>, usize) {
    // Sentence of each token: a new one after . ! ? or a line break.
    let mut sentence = Vec::with_capacity(prepared.tokens.len());
    let mut current = 0usize;
    for (i, t) in prepared.tokens.iter().enumerate() {
        if i > 0 && prepared.text[prepared.tokens[i - 1].end..t.start].contains('\n') {
            current += 1;
        }
        sentence.push(current);
        if matches!(t.key.as_str(), "." | "!" | "?") {
            current += 1;
        }
    }
    let mut shared: std::collections::HashMap<usize, u32> = std::collections::HashMap::new();
    let mut next = 0u32;
    let positions = prepared
        .slots
        .iter()
        .map(|s| {
            let family = rules.rules[s.rule as usize].family.as_str();
            let at = s
                .tokens
                .start
                .min(s.anchor)
                .min(prepared.tokens.len().saturating_sub(1));
            if SENTENCE_CONSISTENT.contains(&family) {
                *shared.entry(sentence[at]).or_insert_with(|| {
                    next += 1;
                    next - 1
                })
            } else {
                next += 1;
                next - 1
            }
        })
        .collect();
    (positions, next as usize)
}

/// What [`Transcript::self_check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Variants rendered.
    pub variants: usize,
    /// Variants whose canonical text differs from the master's, or whose
    /// negations, number values or names do.
    pub canonical_mismatches: usize,
    /// Slots read back, over all variants.
    pub slots_read: usize,
    /// Slots read back as a bit the variant did not carry.
    pub wrong_bits: usize,
    /// Slots not read back at all.
    pub unread: usize,
    /// Filler slots not read because the variant has no filler left in a
    /// stretch where the master has several: a quote like that reads as
    /// cleaned up, by design (see [`FragmentReading::fillers_cleaned`]).
    pub fillers_excused: usize,
    /// Structure (timings, labels) changed by rendering.
    pub structure_changed: usize,
    /// Slots read back wrong or not at all, each with the variants (by
    /// their index among the codewords checked) that misread it.
    pub misread: std::collections::BTreeMap<usize, Vec<usize>>,
}

impl CheckReport {
    /// The counts of `self` and `other` together.
    fn merged(self, other: CheckReport) -> CheckReport {
        CheckReport {
            variants: self.variants + other.variants,
            canonical_mismatches: self.canonical_mismatches + other.canonical_mismatches,
            slots_read: self.slots_read + other.slots_read,
            wrong_bits: self.wrong_bits + other.wrong_bits,
            unread: self.unread + other.unread,
            fillers_excused: self.fillers_excused + other.fillers_excused,
            structure_changed: self.structure_changed + other.structure_changed,
            misread: {
                let mut misread = self.misread;
                for (slot, variants) in other.misread {
                    let entry = misread.entry(slot).or_default();
                    entry.extend(variants);
                    entry.sort_unstable();
                }
                misread
            },
        }
    }

    /// Whether every variant canonicalised to the master and read back exactly.
    pub fn passed(&self) -> bool {
        self.canonical_mismatches == 0
            && self.wrong_bits == 0
            && self.unread == 0
            && self.structure_changed == 0
    }
}

impl Transcript {
    /// Prepares `document`: finds its slots, and drops the few whose
    /// reading would depend on a neighbouring slot's rendering (checked by
    /// rendering the two extreme variants and reading them back), so that
    /// every slot kept reads back whatever the codeword.
    pub fn new(rules: &RuleSet, document: Document) -> Transcript {
        let mut prepared = Prepared::new(rules, document.text(), Mode::Master);
        let mut left_out = Vec::new();
        for _ in 0..3 {
            let mut bad = vec![false; prepared.slots.len()];
            let index = GramIndex::new(&prepared.words);
            for pattern in 0..NEIGHBOUR_PATTERNS {
                let mut state = pattern;
                let bits: Vec<bool> = prepared
                    .slots
                    .iter()
                    .enumerate()
                    .map(|(i, s)| match pattern {
                        0 => s.variant == 0,
                        1 => i % 2 == 0,
                        2 => i % 2 == 1,
                        _ => {
                            state = state
                                .wrapping_mul(6_364_136_223_846_793_005)
                                .wrapping_add(1_442_695_040_888_963_407);
                            state >> 63 == 1
                        }
                    })
                    .collect();
                let text = Self::render_text(rules, &prepared, &bits);
                let leak = Prepared::new(rules, text, Mode::Leak);
                let fragments = read::read(
                    rules,
                    &prepared,
                    &leak,
                    &align::fragments(&prepared.words, &index, &leak.words),
                );
                let seen = readings_by_slot(rules, &prepared, &fragments);
                for (i, s) in seen.iter().enumerate() {
                    if !matches!(s, Seen::Bit(b) if *b == bits[i]) && *s != Seen::Excused {
                        bad[i] = true;
                    }
                }
            }
            if !bad.contains(&true) {
                break;
            }
            left_out.extend(bad.iter().enumerate().filter(|(_, &b)| b).map(|(i, _)| {
                check::flipped(rules, &prepared, &document, i, LeftOutBecause::NotReadBack)
            }));
            let mut k = 0;
            prepared.slots.retain(|_| {
                k += 1;
                !bad[k - 1]
            });
            prepared = Prepared::rebuild(rules, prepared);
        }
        // A slot whose other rendering changes what is said is never
        // varied: no variant may mean anything but what the original means.
        for _ in 0..3 {
            let failing = check::failing_slots(rules, &prepared, &document);
            if failing.is_empty() {
                break;
            }
            let mut k = 0;
            prepared.slots.retain(|_| {
                k += 1;
                !failing.iter().any(|(i, _)| *i == k - 1)
            });
            left_out.extend(failing.into_iter().map(|(_, f)| f));
            prepared = Prepared::rebuild(rules, prepared);
        }
        let index = GramIndex::new(&prepared.words);
        let (positions, codeword_len) = positions(rules, &prepared);
        Transcript {
            document,
            prepared,
            positions,
            codeword_len,
            left_out,
            index,
        }
    }

    /// Slot `slot` as a failure for `reason`: its rule, its words as
    /// written and rendered the other way, and its place in the file.
    pub fn describe_slot(
        &self,
        rules: &RuleSet,
        slot: usize,
        reason: LeftOutBecause,
    ) -> SlotFailure {
        check::flipped(rules, &self.prepared, &self.document, slot, reason)
    }

    /// The codeword position slot `slot` renders.
    pub fn position(&self, slot: usize) -> usize {
        self.positions[slot] as usize
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.prepared.slots.len()
    }

    /// Number of spoken words (canonical).
    pub fn words(&self) -> usize {
        self.prepared.words.len()
    }

    fn render_text(rules: &RuleSet, prepared: &Prepared, bits: &[bool]) -> String {
        let variants: Vec<u8> = bits.iter().map(|&b| b as u8).collect();
        slots::render(
            rules,
            &prepared.text,
            &prepared.tokens,
            &prepared.slots,
            &variants,
        )
    }

    /// The spoken text rendered with codeword `bits` (one per position,
    /// [`Transcript::codeword_len`] of them).
    pub fn render_spoken(&self, rules: &RuleSet, bits: &[bool]) -> String {
        let per_slot: Vec<bool> = self.positions.iter().map(|&p| bits[p as usize]).collect();
        Self::render_text(rules, &self.prepared, &per_slot)
    }

    /// The whole document, structure intact, rendered with codeword `bits`.
    pub fn render(&self, rules: &RuleSet, bits: &[bool]) -> String {
        self.document.with_text(&self.render_spoken(rules, bits))
    }

    /// The fragments of `leak` (prepared in [`Mode::Leak`]) that quote this
    /// transcript, with the slots each reads.
    pub fn read(&self, rules: &RuleSet, leak: &Prepared) -> Vec<FragmentReading> {
        let found = align::fragments(&self.prepared.words, &self.index, &leak.words);
        let mut read = read::read(rules, &self.prepared, leak, &found);
        for f in &mut read {
            for r in &mut f.readings {
                r.position = self.positions[r.slot as usize];
            }
        }
        read
    }

    /// Renders one variant per codeword, and checks that each canonicalises
    /// to the master's canonical text, keeps every byte of structure, and
    /// reads back exactly its codeword.
    pub fn self_check(&self, rules: &RuleSet, codewords: &[Vec<bool>]) -> CheckReport {
        use rayon::prelude::*;
        let master_canonical = canonical(rules, &self.prepared.text);
        let master_protected = check::protected(&self.prepared.text);
        // Variants are independent; checked side by side, their counts
        // summed (the sum does not depend on the order).
        codewords
            .par_iter()
            .enumerate()
            .map(|(k, bits)| {
                self.check_variant(rules, (k, bits), &master_canonical, &master_protected)
            })
            .reduce(CheckReport::default, CheckReport::merged)
    }

    /// [`Transcript::self_check`] of one variant.
    fn check_variant(
        &self,
        rules: &RuleSet,
        (variant, bits): (usize, &[bool]),
        master_canonical: &[String],
        master_protected: &[String],
    ) -> CheckReport {
        let mut report = CheckReport {
            variants: 1,
            ..CheckReport::default()
        };
        let spoken = self.render_spoken(rules, bits);
        if canonical(rules, &spoken) != master_canonical
            || check::protected(&spoken) != master_protected
        {
            report.canonical_mismatches += 1;
        }
        let whole = self.document.with_text(&spoken);
        match Document::parse(whole, Some(self.document.format)) {
            Ok(again) if again.spans.len() == self.document.spans.len() => {
                let structure = |d: &Document| {
                    let mut out = Vec::new();
                    let mut at = 0;
                    for s in &d.spans {
                        out.push(d.source[at..s.start].to_string());
                        at = s.end;
                    }
                    out.push(d.source[at..].to_string());
                    out
                };
                if structure(&again) != structure(&self.document) {
                    report.structure_changed += 1;
                }
            }
            _ => report.structure_changed += 1,
        }
        let leak = Prepared::new(rules, spoken, Mode::Leak);
        let seen = readings_by_slot(rules, &self.prepared, &self.read(rules, &leak));
        for (i, s) in seen.iter().enumerate() {
            match s {
                Seen::Bit(b) if *b == bits[self.position(i)] => report.slots_read += 1,
                Seen::Bit(_) => {
                    report.wrong_bits += 1;
                    report.misread.insert(i, vec![variant]);
                }
                Seen::Excused => report.fillers_excused += 1,
                Seen::Unread => {
                    report.unread += 1;
                    report.misread.insert(i, vec![variant]);
                }
            }
        }
        report
    }
}
