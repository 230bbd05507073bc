//! Which slots would change what a transcript says: each slot is rendered the
//! other way on its own, everything else as written, and the canonical
//! text compared with the original's. A failing slot is named by its rule,
//! its words in both renderings with a little context, and its place.

use std::ops::Range;

use serde::Serialize;

use crate::slots::{self, canonical, Prepared};
use crate::{Document, RuleSet};

/// Words that negate, besides "not", "cannot" and every "-n't".
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "nobody", "nothing", "none", "nowhere", "neither", "nor", "cannot",
];

/// The value of a numeral or number word ("25", "twenty-five", "3.5").
fn number_value(key: &str) -> Option<String> {
    if key.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return Some(key.to_string());
    }
    // NUMBER_WORDS lists zero to nineteen, then the tens from twenty to
    // ninety; the words after those are not values of their own.
    let word = |w: &str| -> Option<u32> {
        match crate::rules::NUMBER_WORDS.iter().position(|u| *u == w)? {
            v @ 0..20 => Some(v as u32),
            v @ 20..28 => Some(20 + 10 * (v as u32 - 20)),
            _ => None,
        }
    };
    match key.split_once('-') {
        Some((tens, unit)) => {
            let t = word(tens).filter(|v| *v >= 20)?;
            let u = word(unit).filter(|v| (1..10).contains(v))?;
            Some((t + u).to_string())
        }
        None => word(key).map(|v| v.to_string()),
    }
}

/// What no rule may change, whatever the rules say: the negations, the
/// number values and the names (capitalised words inside a sentence) of
/// `text`, as a sorted list. It is computed from the words as written, not
/// through the rules, so a rule that claims "Friday" and "Monday" mean the
/// same, or that drops a "not", is caught although the canonical text
/// (which the rules define) would agree.
pub(crate) fn protected(text: &str) -> Vec<String> {
    let tokens = crate::tokens::tokenize(text);
    let mut out = Vec::new();
    let mut sentence_start = true;
    let mut previous_end = 0;
    for (k, t) in tokens.iter().enumerate() {
        if text[previous_end..t.start].contains('\n') {
            sentence_start = true;
        }
        previous_end = t.end;
        let key = t.key.as_str();
        if !t.is_wordlike() {
            if matches!(key, "." | "!" | "?" | ":" | "..." | "…") {
                sentence_start = true;
            }
            continue;
        }
        if NEGATIONS.contains(&key) || key.ends_with("n't") {
            out.push("not".to_string());
        }
        // "no one" and "one another" are not counts.
        let counted = key != "one"
            || !(k > 0 && tokens[k - 1].key == "no"
                || tokens.get(k + 1).is_some_and(|n| n.key == "another"));
        if let Some(value) = number_value(key).filter(|_| counted) {
            out.push(format!("#{value}"));
        }
        let raw = &text[t.start..t.end];
        let title_case = raw.chars().next().is_some_and(char::is_uppercase)
            && raw.chars().skip(1).any(char::is_lowercase);
        if !sentence_start && title_case && key != "i" && !key.starts_with("i'") {
            out.push(format!("name:{key}"));
        }
        sentence_start = false;
    }
    out.sort();
    out
}

/// Characters of context shown on each side of a failing slot.
const CONTEXT_CHARS: usize = 24;

/// Why a slot was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeftOutBecause {
    /// Its other rendering changes the canonical text: what is said.
    ChangesMeaning,
    /// It is not read back as the bit it carries in some rendering of its
    /// neighbours.
    NotReadBack,
}

/// A slot left out of every variant, and why: a rule at fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlotFailure {
    /// Why it was left out.
    pub reason: LeftOutBecause,
    /// The rule that found it (`family` or `family:first-form`).
    pub rule: String,
    /// The original's words at the slot, with context.
    pub original: String,
    /// The other rendering's words there, with the same context.
    pub variant: String,
    /// Line of the transcript file, from 1.
    pub line: usize,
    /// Character position in that line, from 1.
    pub column: usize,
}

/// Every slot of `prepared` (the spoken text of `document`) whose other
/// rendering, alone, changes the canonical text: such a slot would make
/// every variant that flips it mean something else.
pub(crate) fn failing_slots(
    rules: &RuleSet,
    prepared: &Prepared,
    document: &Document,
) -> Vec<(usize, SlotFailure)> {
    use rayon::prelude::*;
    let master = canonical(rules, &prepared.text);
    let master_protected = protected(&prepared.text);
    (0..prepared.slots.len())
        .into_par_iter()
        .filter_map(|i| {
            let text = render_flipped(rules, prepared, i);
            if canonical(rules, &text) == master && protected(&text) == master_protected {
                return None;
            }
            Some((
                i,
                describe(
                    rules,
                    prepared,
                    document,
                    i,
                    &text,
                    LeftOutBecause::ChangesMeaning,
                ),
            ))
        })
        .collect()
}

/// Slot `i` of `prepared` as a failure: its words as written and
/// rendered the other way, everything else as written.
pub(crate) fn flipped(
    rules: &RuleSet,
    prepared: &Prepared,
    document: &Document,
    i: usize,
    reason: LeftOutBecause,
) -> SlotFailure {
    let text = render_flipped(rules, prepared, i);
    describe(rules, prepared, document, i, &text, reason)
}

/// `prepared`'s text with slot `i` rendered the other way, every other slot
/// as written.
fn render_flipped(rules: &RuleSet, prepared: &Prepared, i: usize) -> String {
    let bits: Vec<bool> = prepared
        .slots
        .iter()
        .enumerate()
        .map(|(k, s)| (s.variant == 1) != (k == i))
        .collect();
    crate::Transcript::render_text(rules, prepared, &bits)
}

/// Slot `i` as a failure: its words in the original and in `rendered`
/// (the original with slot `i` flipped), and where it is in the file.
fn describe(
    rules: &RuleSet,
    prepared: &Prepared,
    document: &Document,
    i: usize,
    rendered: &str,
    reason: LeftOutBecause,
) -> SlotFailure {
    let slot = &prepared.slots[i];
    let at = byte_range(prepared, slot);
    let text = &prepared.text;
    // The rendering differs from the original only around the slot: the
    // common prefix and suffix delimit what changed.
    let mut prefix = common_prefix(text, rendered).min(at.start);
    let mut suffix = common_suffix(&text[prefix..], &rendered[prefix..]);
    // Whole words either way: "[don't ]know" reads as "[don't know]".
    let in_word = |c: char| c.is_alphanumeric() || c == '\'' || c == '’';
    while let Some(c) = text[..prefix].chars().next_back().filter(|&c| in_word(c)) {
        prefix -= c.len_utf8();
    }
    while let Some(c) = text[text.len() - suffix..]
        .chars()
        .next()
        .filter(|&c| in_word(c))
    {
        suffix -= c.len_utf8();
    }
    let (line, column) = place(prepared, document, prefix);
    SlotFailure {
        reason,
        rule: rules.rules[slot.rule as usize].id.clone(),
        original: excerpt(text, prefix, text.len() - suffix),
        variant: excerpt(rendered, prefix, rendered.len() - suffix),
        line,
        column,
    }
}

/// Line and character position in `document`'s file of byte `offset` of
/// its spoken text.
fn place(prepared: &Prepared, document: &Document, offset: usize) -> (usize, usize) {
    let text = &prepared.text;
    let span_index = text[..offset].matches('\n').count();
    let line_start = text[..offset].rfind('\n').map_or(0, |k| k + 1);
    let span = &document.spans[span_index.min(document.spans.len().saturating_sub(1))];
    let source_offset = span.start + (offset - line_start);
    let source = &document.source;
    let before = &source[..floor_char(source, source_offset.min(source.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |k| k + 1)..]
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Bytes of the spoken text slot `slot` occupies (empty where it is absent:
/// the place before its anchor).
fn byte_range(prepared: &Prepared, slot: &slots::Instance) -> Range<usize> {
    let tokens = &prepared.tokens;
    if slot.tokens.is_empty() {
        let at = tokens
            .get(slot.anchor)
            .map_or(prepared.text.len(), |t| t.start);
        at..at
    } else {
        tokens[slot.tokens.start].start..tokens[slot.tokens.end - 1].end
    }
}

fn common_prefix(a: &str, b: &str) -> usize {
    let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    floor_char(a, n)
}

fn common_suffix(a: &str, b: &str) -> usize {
    let n = a
        .bytes()
        .rev()
        .zip(b.bytes().rev())
        .take_while(|(x, y)| x == y)
        .count();
    // Back to a character boundary of both, counted from the end.
    let mut n = n;
    while n > 0 && !(a.is_char_boundary(a.len() - n) && b.is_char_boundary(b.len() - n)) {
        n -= 1;
    }
    n
}

fn floor_char(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `text[start..end]` in brackets, with up to [`CONTEXT_CHARS`] characters
/// either side, on one line.
fn excerpt(text: &str, start: usize, end: usize) -> String {
    let end = end.max(start);
    let before: String = text[..start]
        .chars()
        .rev()
        .take(CONTEXT_CHARS)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let after: String = text[end..].chars().take(CONTEXT_CHARS).collect();
    format!("{before}[{}]{after}", &text[start..end]).replace('\n', " ⏎ ")
}

#[cfg(test)]
mod tests {
    use super::protected;

    /// What the shipped rules vary keeps its negations, values and names;
    /// what a wrong rule would do does not.
    #[test]
    fn protected_words_are_kept_by_the_rules_and_lost_by_wrong_ones() {
        for (a, b) in [
            ("We paid twenty-five on Friday.", "We paid 25 on Friday."),
            ("We do not know.", "We don't know."),
            ("Um, let's ask Pavel.", "Let's ask Pavel."),
            ("It is okay, no one knew.", "It is OK, nobody knew."),
            ("Press one for sales.", "Press 1 for sales."),
        ] {
            assert_eq!(protected(a), protected(b), "{a:?} / {b:?}");
        }
        for (a, b) in [
            ("We paid twenty-five.", "We paid 35."),
            ("I know it.", "I don't know it."),
            ("We go on Friday.", "We go on Monday."),
            ("He never came.", "He came."),
        ] {
            assert_ne!(protected(a), protected(b), "{a:?} / {b:?}");
        }
    }
}
