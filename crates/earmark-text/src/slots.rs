//! Finding the slots of a text, rendering a text with chosen variants, and
//! the canonical word stream that quotes are aligned on.

use std::ops::Range;

use crate::rules::{Kind, Rule, RuleSet, NUMBER_WORDS};
use crate::tokens::{tokenize, Token, TokenKind};

/// One place in a text where a rule applies, and which rendering is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Index of the rule in the [`RuleSet`].
    pub rule: u32,
    /// The rendering present: 0 or 1 (for omissions and commas, 0 is
    /// "present" and 1 "absent").
    pub variant: u8,
    /// Tokens the rendering occupies (empty where it is absent).
    pub tokens: Range<usize>,
    /// The word-like token just after the slot's place: the canonical
    /// position of empty renderings.
    pub anchor: usize,
}

/// What a search for slots is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The original transcript: only slots that can be varied both ways
    /// without touching a line break.
    Master,
    /// A quoted or retyped text: every form any rule can read.
    Leak,
}

fn sentence_end(key: &str) -> bool {
    matches!(key, "." | "!" | "?" | "..." | ":" | ";")
}

struct View<'a> {
    text: &'a str,
    tokens: &'a [Token],
}

impl View<'_> {
    /// Nearest non-tag token before `i`.
    fn prev(&self, i: usize) -> Option<usize> {
        (0..i)
            .rev()
            .find(|&j| self.tokens[j].kind != TokenKind::Tag)
    }

    /// Nearest non-tag token at or after `i`.
    fn next_from(&self, i: usize) -> Option<usize> {
        (i..self.tokens.len()).find(|&j| self.tokens[j].kind != TokenKind::Tag)
    }

    fn key(&self, i: Option<usize>) -> &str {
        i.map_or("", |j| self.tokens[j].key.as_str())
    }

    fn is_word(&self, i: Option<usize>) -> bool {
        i.is_some_and(|j| self.tokens[j].is_wordlike())
    }

    fn is_number(&self, i: Option<usize>) -> bool {
        i.is_some_and(|j| {
            self.tokens[j].kind == TokenKind::Number
                || NUMBER_WORDS.contains(&self.tokens[j].key.as_str())
        })
    }

    /// Whether token `i` opens a sentence (skipping opening quotes and brackets).
    fn sentence_start(&self, i: usize) -> bool {
        let mut j = self.prev(i);
        while let Some(k) = j {
            let key = self.tokens[k].key.as_str();
            if matches!(key, "\"" | "'" | "(" | "[") {
                j = self.prev(k);
            } else {
                break;
            }
        }
        match j {
            None => true,
            Some(k) => sentence_end(&self.tokens[k].key) || self.line_break_between(k, i),
        }
    }

    fn line_break_between(&self, a: usize, b: usize) -> bool {
        self.text[self.tokens[a].end..self.tokens[b].start].contains('\n')
    }

    fn context_ok(&self, rule: &Rule, first: usize, last: usize) -> bool {
        let c = &rule.context;
        let prev = self.prev(first);
        let mut next = self.next_from(last + 1);
        if rule.commas && self.key(next) == "," {
            // A filler's context is the word after its comma.
            next = next.and_then(|n| self.next_from(n + 1));
        }
        let next_key = self.key(next);
        let prev_key = self.key(prev);
        if !c.next_in.is_empty() || !c.next_suffix.is_empty() {
            let listed = c.next_in.contains(next_key);
            let suffixed = self.is_word(next)
                && c.next_suffix
                    .iter()
                    .any(|s| next_key.len() >= s.len() + 2 && next_key.ends_with(s.as_str()));
            if !(listed || suffixed) {
                return false;
            }
        }
        if !c.prev_in.is_empty() && !c.prev_in.contains(prev_key) {
            return false;
        }
        if c.not_next.contains(next_key) || c.not_prev.contains(prev_key) {
            return false;
        }
        if c.next_word && !self.is_word(next) {
            return false;
        }
        if c.prev_number && !prev.is_some_and(|p| self.tokens[p].kind == TokenKind::Number) {
            return false;
        }
        if c.isolated_number && (self.is_number(prev) || self.is_number(next)) {
            return false;
        }
        if (c.not_sentence_start || c.sentence_start)
            && self.sentence_start(first) == c.not_sentence_start
        {
            return false;
        }
        true
    }

    /// Whether `len` tokens from `at` read as the keys `keys`, all word-like.
    fn matches(&self, at: usize, keys: &[String]) -> bool {
        at + keys.len() <= self.tokens.len()
            && keys.iter().enumerate().all(|(k, key)| {
                self.tokens[at + k].is_wordlike() && self.tokens[at + k].key == *key
            })
    }
}

/// The slots of `text` (tokenised as `tokens`) under `rules`, in text order,
/// never overlapping.
pub fn find(rules: &RuleSet, text: &str, tokens: &[Token], mode: Mode) -> Vec<Instance> {
    let view = View { text, tokens };
    let mut used = vec![false; tokens.len()];
    let mut gap_used = vec![false; tokens.len() + 1];
    let mut found: Vec<Instance> = Vec::new();
    let free = |used: &[bool], r: &Range<usize>| r.clone().all(|k| !used[k]);
    for i in 0..tokens.len() {
        // Swaps and omissions: the longest rendering that starts here.
        if !used[i] {
            let mut best: Option<(usize, u8, usize)> = None;
            for &(rule, variant) in view.by_first_candidates(rules, &tokens[i].key) {
                let keys = &rules.rules[rule].keys[variant as usize];
                if view.matches(i, keys)
                    && view.context_ok(&rules.rules[rule], i, i + keys.len() - 1)
                    && best.is_none_or(|(_, _, len)| keys.len() > len)
                {
                    best = Some((rule, variant, keys.len()));
                }
            }
            if let Some((rule, variant, len)) = best {
                let r = &rules.rules[rule];
                let mut range = i..i + len;
                if r.is_filler() {
                    // The commas around a filler go with it.
                    if view.key(Some(range.end).filter(|&e| e < tokens.len())) == "," {
                        range.end += 1;
                        if i > 0 && tokens[i - 1].key == "," {
                            range.start -= 1;
                        }
                    }
                }
                let anchor = view.next_from(range.end).unwrap_or(tokens.len());
                let crosses_line = mode == Mode::Master
                    && text[tokens[range.start].start
                        ..tokens.get(anchor).map_or(text.len(), |t| t.start)]
                        .contains('\n');
                if free(&used, &range)
                    && !crosses_line
                    && (r.kind != Kind::Omit
                        || view.is_word(Some(anchor).filter(|&a| a < tokens.len())))
                {
                    range.clone().for_each(|k| used[k] = true);
                    found.push(Instance {
                        rule: rule as u32,
                        variant,
                        tokens: range,
                        anchor,
                    });
                }
            }
        }
        for &rule in &rules.punctuation {
            if let Some(instance) = punctuation_at(&view, rules, rule, i, mode) {
                let gap = instance.anchor;
                if free(&used, &instance.tokens) && !gap_used[gap] {
                    instance.tokens.clone().for_each(|k| used[k] = true);
                    gap_used[gap] = true;
                    found.push(instance);
                }
            }
        }
    }
    found.sort_by_key(|s| (s.anchor, s.tokens.start));
    found
}

impl View<'_> {
    fn by_first_candidates<'r>(&self, rules: &'r RuleSet, key: &str) -> &'r [(usize, u8)] {
        rules.by_first.get(key).map_or(&[], Vec::as_slice)
    }
}

/// A comma slot: the comma token when present (variant 0), else an empty
/// place just before `anchor`.
fn comma_instance(rule: usize, variant: u8, comma: usize, anchor: usize) -> Instance {
    Instance {
        rule: rule as u32,
        variant,
        tokens: if variant == 0 {
            comma..comma + 1
        } else {
            anchor..anchor
        },
        anchor,
    }
}

/// A punctuation slot whose deciding token is `i`, if any.
fn punctuation_at(
    view: &View,
    rules: &RuleSet,
    rule: usize,
    i: usize,
    mode: Mode,
) -> Option<Instance> {
    let tokens = view.tokens;
    let r = &rules.rules[rule];
    let key = tokens[i].key.as_str();
    match r.kind {
        Kind::IntroComma => {
            // `i` is the opening word.
            if tokens[i].kind != TokenKind::Word
                || !r.context.prev_in.contains(key)
                || !view.sentence_start(i)
            {
                return None;
            }
            let after = view.next_from(i + 1)?;
            let (variant, word) = if tokens[after].key == "," {
                (0, view.next_from(after + 1)?)
            } else {
                (1, after)
            };
            let c = &r.context;
            let word_key = tokens[word].key.as_str();
            if !tokens[word].is_wordlike()
                || c.not_next.contains(word_key)
                || view.line_break_between(i, word)
            {
                return None;
            }
            Some(comma_instance(rule, variant, after, word))
        }
        Kind::SerialComma => {
            // `i` is the conjunction; before it, one to four words of the
            // last-but-one item, preceded by a comma and a word.
            if key != "and" && key != "or" || !view.is_word(view.next_from(i + 1)) {
                return None;
            }
            let before = view.prev(i)?;
            let (variant, mut j) = if tokens[before].key == "," {
                (0u8, before)
            } else {
                (1u8, i)
            };
            if variant == 1 && mode == Mode::Master {
                return None;
            }
            let mut words = 0;
            loop {
                let p = view.prev(j)?;
                if tokens[p].is_wordlike() && words < 4 {
                    words += 1;
                    j = p;
                } else if tokens[p].key == "," && words >= 1 {
                    if !view.is_word(view.prev(p)) {
                        return None;
                    }
                    break;
                } else {
                    return None;
                }
            }
            if mode == Mode::Master && view.line_break_between(before, i) {
                return None;
            }
            Some(comma_instance(rule, variant, before, i))
        }
        Kind::Dash => {
            let variant = match key {
                "\u{2014}" => 0,
                "\u{2013}" => 1,
                _ => return None,
            };
            let (prev, next) = (i.checked_sub(1)?, i + 1);
            if !view.is_word(Some(prev)) || !view.is_word(Some(next).filter(|&n| n < tokens.len()))
            {
                return None;
            }
            if mode == Mode::Master && view.line_break_between(prev, next) {
                return None;
            }
            Some(Instance {
                rule: rule as u32,
                variant,
                tokens: i..i + 1,
                anchor: next,
            })
        }
        Kind::Swap | Kind::Omit => None,
    }
}

/// `form` cased like `original`, whose rule form is `original_form`: forms
/// with capitals of their own ("OK", "I'm") keep them; a word in capitals
/// stays in capitals; an initial capital that the position gave (a
/// sentence's first word) moves to the new form.
fn cased(form: &str, original: &str, original_form: &str, sentence_start: bool) -> String {
    if form.chars().any(char::is_uppercase) {
        return form.to_string();
    }
    let form_has_capitals = original_form.chars().any(char::is_uppercase);
    let letters: Vec<char> = original.chars().filter(|c| c.is_alphabetic()).collect();
    if !form_has_capitals && letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        return form.to_uppercase();
    }
    let initial = original.chars().next().is_some_and(char::is_uppercase);
    if (!form_has_capitals && initial) || (form_has_capitals && sentence_start) {
        let mut chars = form.chars();
        return chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
    }
    form.to_string()
}

/// Sentence-opening words a comma always follows ("Well, we"), so a filler
/// after one takes only its own comma with it.
const DISCOURSE_MARKERS: &[&str] = &[
    "well",
    "so",
    "now",
    "then",
    "yes",
    "yeah",
    "no",
    "okay",
    "ok",
    "right",
    "oh",
    "actually",
    "anyway",
    "first",
    "second",
    "finally",
    "honestly",
    "basically",
];

/// One replacement of a byte range.
struct Edit {
    range: Range<usize>,
    with: String,
    /// Capitalise the first letter that follows (a sentence's opening
    /// filler was removed).
    capitalise_next: bool,
}

/// The edit that turns `instance` into rendering `variant` (none if it is
/// already that rendering).
fn edit(
    rules: &RuleSet,
    text: &str,
    tokens: &[Token],
    instance: &Instance,
    variant: u8,
) -> Option<Edit> {
    if instance.variant == variant {
        return None;
    }
    let rule = &rules.rules[instance.rule as usize];
    let t = &instance.tokens;
    let view = View { text, tokens };
    match rule.kind {
        Kind::Swap => {
            let range = tokens[t.start].start..tokens[t.end - 1].end;
            let original = &text[range.clone()];
            let form = &rule.texts[variant as usize];
            let mut with = cased(
                form,
                original,
                &rule.texts[instance.variant as usize],
                view.sentence_start(t.start),
            );
            let mut range = range;
            let attached = |s: &str| s.starts_with('%');
            if attached(form) && t.start > 0 {
                range.start = tokens[t.start - 1].end;
            } else if attached(original) && t.start > 0 && tokens[t.start - 1].end == range.start {
                with.insert(0, ' ');
            }
            Some(Edit {
                range,
                with,
                capitalise_next: false,
            })
        }
        Kind::Omit => {
            // Present in the original (variant 0): remove it.
            let words_start = if tokens[t.start].key == "," {
                t.start + 1
            } else {
                t.start
            };
            let first = &text[tokens[words_start].start..tokens[words_start].end];
            let next_start = tokens.get(instance.anchor).map_or(text.len(), |a| a.start);
            let opens_sentence = |k: usize| {
                view.prev(k).is_some_and(|w| {
                    view.sentence_start(w) && DISCOURSE_MARKERS.contains(&tokens[w].key.as_str())
                })
            };
            let range = if tokens[t.start].key == "," && opens_sentence(t.start) {
                // After a sentence's opening word one comma stays:
                // "Well, uh, we" → "Well, we".
                tokens[t.start].start..tokens[t.end - 2].end
            } else if tokens[t.start].key == "," {
                // ", uh," → drop both commas: "we, uh, went" → "we went".
                tokens[t.start].start..tokens[t.end - 1].end
            } else {
                tokens[t.start].start..next_start
            };
            let capitalise_next = view.sentence_start(t.start)
                && first.chars().next().is_some_and(char::is_uppercase);
            Some(Edit {
                range,
                with: String::new(),
                capitalise_next,
            })
        }
        Kind::IntroComma | Kind::SerialComma => {
            if instance.variant == 0 {
                Some(Edit {
                    range: tokens[t.start].start..tokens[t.start].end,
                    with: String::new(),
                    capitalise_next: false,
                })
            } else {
                // Insert a comma after the opening word.
                let word = view.prev(t.start)?;
                Some(Edit {
                    range: tokens[word].end..tokens[word].end,
                    with: ",".into(),
                    capitalise_next: false,
                })
            }
        }
        Kind::Dash => {
            let (prev, next) = (t.start - 1, t.start + 1);
            Some(Edit {
                range: tokens[prev].end..tokens[next].start,
                with: if variant == 0 {
                    "\u{2014}".into()
                } else {
                    " \u{2013} ".into()
                },
                capitalise_next: false,
            })
        }
    }
}

/// `text` with each slot `i` rendered as `variants[i]`.
pub fn render(
    rules: &RuleSet,
    text: &str,
    tokens: &[Token],
    slots: &[Instance],
    variants: &[u8],
) -> String {
    let mut edits: Vec<Edit> = slots
        .iter()
        .zip(variants)
        .filter_map(|(s, &v)| edit(rules, text, tokens, s, v))
        .collect();
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    let mut capitalise = false;
    let push = |out: &mut String, piece: &str, capitalise: &mut bool| {
        if *capitalise {
            if let Some((k, c)) = piece.char_indices().find(|(_, c)| !c.is_whitespace()) {
                out.push_str(&piece[..k]);
                out.extend(c.to_uppercase());
                out.push_str(&piece[k + c.len_utf8()..]);
                *capitalise = false;
                return;
            }
        }
        out.push_str(piece);
    };
    for e in edits {
        if e.range.start < at {
            continue; // overlapping edits cannot happen for found slots; be safe.
        }
        push(&mut out, &text[at..e.range.start], &mut capitalise);
        push(&mut out, &e.with, &mut capitalise);
        capitalise |= e.capitalise_next;
        at = e.range.end;
    }
    push(&mut out, &text[at..], &mut capitalise);
    out
}

/// A text prepared for alignment: its tokens, slots, and the canonical
/// word stream (every slot in its canonical rendering, punctuation left out).
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The text.
    pub text: String,
    /// Its tokens.
    pub tokens: Vec<Token>,
    /// Its slots, in text order.
    pub slots: Vec<Instance>,
    /// Canonical words, hashed.
    pub words: Vec<u64>,
    /// For each canonical word, the token it comes from.
    pub word_token: Vec<usize>,
    /// For each canonical word, the slot it belongs to ([`NO_SLOT`] if none).
    pub word_slot: Vec<u32>,
    /// For each slot, its canonical word position: its first word, or for
    /// empty renderings the word after its place.
    pub slot_word: Vec<usize>,
}

/// [`Prepared::word_slot`] of a word outside every slot.
pub const NO_SLOT: u32 = u32::MAX;

/// FNV-1a of a key: canonical words are compared by hash.
pub fn word_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Prepared {
    /// Tokenises `text`, finds its slots and builds the canonical stream.
    pub fn new(rules: &RuleSet, text: String, mode: Mode) -> Prepared {
        let tokens = tokenize(&text);
        let slots = find(rules, &text, &tokens, mode);
        Prepared::from_parts(rules, text, tokens, slots)
    }

    /// The same text with only the slots `prepared.slots` now holds.
    pub fn rebuild(rules: &RuleSet, prepared: Prepared) -> Prepared {
        Prepared::from_parts(rules, prepared.text, prepared.tokens, prepared.slots)
    }

    fn from_parts(
        rules: &RuleSet,
        text: String,
        tokens: Vec<Token>,
        slots: Vec<Instance>,
    ) -> Prepared {
        let mut slot_of_token = vec![NO_SLOT; tokens.len()];
        for (k, s) in slots.iter().enumerate() {
            s.tokens.clone().for_each(|t| slot_of_token[t] = k as u32);
        }
        let mut slot_word = vec![usize::MAX; slots.len()];
        let mut anchors: Vec<(usize, usize)> = slots
            .iter()
            .enumerate()
            .map(|(k, s)| (s.anchor, k))
            .collect();
        anchors.sort();
        let mut next_anchor = 0;
        let (mut words, mut word_token, mut word_slot) = (Vec::new(), Vec::new(), Vec::new());
        let mut i = 0;
        while i <= tokens.len() {
            while next_anchor < anchors.len() && anchors[next_anchor].0 <= i {
                let k = anchors[next_anchor].1;
                if slot_word[k] == usize::MAX {
                    slot_word[k] = words.len();
                }
                next_anchor += 1;
            }
            if i == tokens.len() {
                break;
            }
            let s = slot_of_token[i];
            if s != NO_SLOT && slots[s as usize].tokens.start == i {
                let slot = &slots[s as usize];
                let rule = &rules.rules[slot.rule as usize];
                slot_word[s as usize] = words.len();
                if rule.kind == Kind::Swap {
                    for key in &rule.keys[0] {
                        words.push(word_hash(key));
                        word_token.push(i);
                        word_slot.push(s);
                    }
                }
                i = slot.tokens.end.max(i + 1);
                continue;
            }
            if tokens[i].is_wordlike() && s == NO_SLOT {
                words.push(word_hash(&tokens[i].key));
                word_token.push(i);
                word_slot.push(NO_SLOT);
            }
            i += 1;
        }
        Prepared {
            text,
            tokens,
            slots,
            words,
            word_token,
            word_slot,
            slot_word,
        }
    }
}

/// Rounds of [`canonical`] at most: one rendering can open a slot the
/// text did not have ("So, uh, what's" loses its filler and then has an
/// introductory comma), and each round closes what the last one opened.
const CANONICAL_ROUNDS: usize = 4;

/// The canonical form of a text: every slot in its canonical rendering,
/// as token keys (case and typography folded), rendered again until no
/// slot changes. Two renderings of one transcript have the same canonical
/// form.
pub fn canonical(rules: &RuleSet, text: &str) -> Vec<String> {
    let mut text = text.to_string();
    for _ in 0..CANONICAL_ROUNDS {
        let tokens = tokenize(&text);
        let slots = find(rules, &text, &tokens, Mode::Leak);
        let variants: Vec<u8> = slots
            .iter()
            .map(|s| rules.rules[s.rule as usize].kind.canonical_variant())
            .collect();
        let rendered = render(rules, &text, &tokens, &slots, &variants);
        if rendered == text {
            break;
        }
        text = rendered;
    }
    tokenize(&text).into_iter().map(|t| t.key).collect()
}
