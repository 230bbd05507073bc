//! Which slots would change what a transcript says: each slot is rendered the
//! other way on its own, everything else as written, and the canonical
//! text compared with the original's. A failing slot is named by its rule,
//! its words in both renderings with a little context, and its place.

use std::ops::Range;

use serde::Serialize;

use crate::slots::{self, canonical, Prepared};
use crate::{Document, RuleSet};

/// Characters of context shown on each side of a failing slot.
const CONTEXT_CHARS: usize = 24;

/// A slot whose other rendering does not mean what the original means.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlotFailure {
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
    let written: Vec<u8> = prepared.slots.iter().map(|s| s.variant).collect();
    (0..prepared.slots.len())
        .into_par_iter()
        .filter_map(|i| {
            let mut variants = written.clone();
            variants[i] ^= 1;
            let text = slots::render(
                rules,
                &prepared.text,
                &prepared.tokens,
                &prepared.slots,
                &variants,
            );
            if canonical(rules, &text) == master {
                return None;
            }
            Some((i, describe(rules, prepared, document, i, &text)))
        })
        .collect()
}

/// Slot `i` as a failure: its words in the original and in `rendered`
/// (the original with slot `i` flipped), and where it is in the file.
fn describe(
    rules: &RuleSet,
    prepared: &Prepared,
    document: &Document,
    i: usize,
    rendered: &str,
) -> SlotFailure {
    let slot = &prepared.slots[i];
    let at = byte_range(prepared, slot);
    let text = &prepared.text;
    // The rendering differs from the original only around the slot: the
    // common prefix and suffix delimit what changed.
    let prefix = common_prefix(text, rendered).min(at.start);
    let suffix = common_suffix(&text[prefix..], &rendered[prefix..]);
    let (line, column) = place(prepared, document, prefix);
    SlotFailure {
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
