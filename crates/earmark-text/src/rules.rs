//! The variation rules, read from a reviewed data file
//! (`rules/slots.toml`, compiled in), and compiled for matching.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::tokens::tokenize;

/// The rules earmark ships with, reviewed, with their examples.
pub const STANDARD_RULES: &str = include_str!("../rules/slots.toml");

/// How a rule varies the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Two renderings of the same words.
    Swap,
    /// Words that may be left out (only where the original has them).
    Omit,
    /// A comma after a sentence-opening word, or none.
    IntroComma,
    /// The comma before the "and"/"or" ending a list (only removed).
    SerialComma,
    /// An unspaced em dash or a spaced en dash.
    Dash,
}

impl Kind {
    /// The rendering every variant is canonicalised to: the first form for
    /// swaps and dashes, the shorter (absent) form for the others.
    pub fn canonical_variant(self) -> u8 {
        match self {
            Kind::Swap | Kind::Dash => 0,
            Kind::Omit | Kind::IntroComma | Kind::SerialComma => 1,
        }
    }

    /// Whether the rule's evidence is punctuation (which retyping may drop).
    pub fn is_punctuation(self) -> bool {
        matches!(self, Kind::IntroComma | Kind::SerialComma | Kind::Dash)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    kind: Kind,
    #[serde(default)]
    variants: Option<[String; 2]>,
    #[serde(default)]
    pairs: Vec<[String; 2]>,
    #[serde(default)]
    next_in: Vec<String>,
    #[serde(default)]
    next_suffix: Vec<String>,
    #[serde(default)]
    prev_in: Vec<String>,
    #[serde(default)]
    not_next: Vec<String>,
    #[serde(default)]
    not_prev: Vec<String>,
    #[serde(default)]
    next_word: bool,
    #[serde(default)]
    prev_number: bool,
    #[serde(default)]
    isolated_number: bool,
    #[serde(default)]
    not_sentence_start: bool,
    #[serde(default)]
    sentence_start: bool,
    #[serde(default)]
    commas: bool,
    examples: Vec<[String; 2]>,
    #[serde(default)]
    #[allow(dead_code)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rule: Vec<RuleSpec>,
}

/// Where a rule may apply, judged on the neighbouring tokens.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The next word must be one of these (or end with a suffix below), if non-empty.
    pub next_in: HashSet<String>,
    /// Suffixes accepted for the next word.
    pub next_suffix: Vec<String>,
    /// The previous word must be one of these, if non-empty.
    pub prev_in: HashSet<String>,
    /// The next token must not be one of these.
    pub not_next: HashSet<String>,
    /// The previous token must not be one of these.
    pub not_prev: HashSet<String>,
    /// A word must follow.
    pub next_word: bool,
    /// A number must come just before.
    pub prev_number: bool,
    /// No number or number word on either side.
    pub isolated_number: bool,
    /// Not the first word of a sentence.
    pub not_sentence_start: bool,
    /// Only the first word of a sentence.
    pub sentence_start: bool,
}

/// One compiled rule: a slot family member with its two renderings.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Identifier, `family` or `family:first-form`.
    pub id: String,
    /// The family (the data file's rule id).
    pub family: String,
    /// How it varies the text.
    pub kind: Kind,
    /// The two renderings as written (swap, omit; empty otherwise).
    pub texts: [String; 2],
    /// Their token keys.
    pub keys: [Vec<String>; 2],
    /// Where it applies.
    pub context: Context,
    /// For omissions: also remove the commas around the words.
    pub commas: bool,
}

impl Rule {
    /// Whether this is a filler ("uh", "um"): an omission that takes its
    /// commas with it. Retyping tends to clean fillers away wholesale, so
    /// readers treat a quote with none left differently from a quote that
    /// kept some.
    pub fn is_filler(&self) -> bool {
        self.kind == Kind::Omit && self.commas
    }
}

/// A family's reviewed examples: `[as written, as varied]`.
#[derive(Clone, Debug)]
pub struct Example {
    /// The family.
    pub family: String,
    /// As written.
    pub written: String,
    /// As varied.
    pub varied: String,
}

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// Not valid TOML or not the expected fields.
    #[error("rules file: {0}")]
    Parse(String),
    /// A rule that cannot work.
    #[error("rule '{id}': {reason}")]
    Invalid {
        /// The rule.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

/// Every rule, indexed for matching.
#[derive(Clone, Debug)]
pub struct RuleSet {
    /// The rules; a slot names its rule by index.
    pub rules: Vec<Rule>,
    /// The reviewed examples.
    pub examples: Vec<Example>,
    /// Swap and omission renderings by their first key: (rule, variant).
    pub(crate) by_first: HashMap<String, Vec<(usize, u8)>>,
    /// The punctuation rules, by kind.
    pub(crate) punctuation: Vec<usize>,
}

/// Number words a numeral must not touch.
pub(crate) const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "million",
    "billion",
    "dozen",
];

fn set(words: &[String]) -> HashSet<String> {
    words.iter().map(|w| w.to_lowercase()).collect()
}

fn keys(text: &str) -> Vec<String> {
    tokenize(text).into_iter().map(|t| t.key).collect()
}

impl RuleSet {
    /// The shipped rules.
    pub fn standard() -> RuleSet {
        RuleSet::from_toml(STANDARD_RULES).expect("the shipped rules are valid (unit-tested)")
    }

    /// Rules from a data file's text.
    pub fn from_toml(text: &str) -> Result<RuleSet, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesError::Parse(e.to_string()))?;
        let mut rules = Vec::new();
        let mut examples = Vec::new();
        let mut families = HashSet::new();
        for spec in file.rule {
            if !families.insert(spec.id.clone()) {
                return Err(RulesError::Invalid {
                    id: spec.id,
                    reason: "the id is used twice".into(),
                });
            }
            if spec.examples.is_empty() {
                return Err(RulesError::Invalid {
                    id: spec.id,
                    reason: "a rule needs at least one example".into(),
                });
            }
            let context = Context {
                next_in: set(&spec.next_in),
                next_suffix: spec.next_suffix.clone(),
                prev_in: set(&spec.prev_in),
                not_next: set(&spec.not_next),
                not_prev: set(&spec.not_prev),
                next_word: spec.next_word,
                prev_number: spec.prev_number,
                isolated_number: spec.isolated_number,
                not_sentence_start: spec.not_sentence_start,
                sentence_start: spec.sentence_start,
            };
            let mut pairs = spec.pairs.clone();
            if let Some(v) = &spec.variants {
                pairs.push(v.clone());
            }
            match spec.kind {
                Kind::Swap | Kind::Omit => {
                    if pairs.is_empty() {
                        return Err(RulesError::Invalid {
                            id: spec.id,
                            reason: "needs `variants` or `pairs`".into(),
                        });
                    }
                    for [a, b] in pairs {
                        let (ka, kb) = (keys(&a), keys(&b));
                        let bad = ka.is_empty()
                            || (spec.kind == Kind::Swap && (kb.is_empty() || ka == kb))
                            || (spec.kind == Kind::Omit && !kb.is_empty());
                        if bad {
                            return Err(RulesError::Invalid {
                                id: spec.id,
                                reason: format!(
                                    "pair [{a:?}, {b:?}]: a swap needs two different forms, an omission a form and \"\""
                                ),
                            });
                        }
                        let id = if spec.pairs.is_empty() {
                            spec.id.clone()
                        } else {
                            format!("{}:{}", spec.id, a.to_lowercase())
                        };
                        rules.push(Rule {
                            id,
                            family: spec.id.clone(),
                            kind: spec.kind,
                            texts: [a, b],
                            keys: [ka, kb],
                            context: context.clone(),
                            commas: spec.commas,
                        });
                    }
                }
                Kind::IntroComma | Kind::SerialComma | Kind::Dash => {
                    if spec.kind == Kind::IntroComma && context.prev_in.is_empty() {
                        return Err(RulesError::Invalid {
                            id: spec.id,
                            reason: "an intro-comma rule lists its opening words in `prev_in`"
                                .into(),
                        });
                    }
                    rules.push(Rule {
                        id: spec.id.clone(),
                        family: spec.id.clone(),
                        kind: spec.kind,
                        texts: [String::new(), String::new()],
                        keys: [Vec::new(), Vec::new()],
                        context,
                        commas: false,
                    });
                }
            }
            for [written, varied] in spec.examples {
                examples.push(Example {
                    family: spec.id.clone(),
                    written,
                    varied,
                });
            }
        }
        let mut by_first: HashMap<String, Vec<(usize, u8)>> = HashMap::new();
        let mut punctuation = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            match rule.kind {
                Kind::Swap => {
                    for v in 0..2u8 {
                        by_first
                            .entry(rule.keys[v as usize][0].clone())
                            .or_default()
                            .push((i, v));
                    }
                }
                Kind::Omit => by_first
                    .entry(rule.keys[0][0].clone())
                    .or_default()
                    .push((i, 0)),
                _ => punctuation.push(i),
            }
        }
        // Two rules may not share a rendering: a reading must name one rule.
        let mut seen: HashMap<&[String], &str> = HashMap::new();
        for rule in &rules {
            for k in &rule.keys {
                if k.is_empty() {
                    continue;
                }
                if let Some(other) = seen.insert(k.as_slice(), &rule.id) {
                    if other != rule.id {
                        return Err(RulesError::Invalid {
                            id: rule.id.clone(),
                            reason: format!(
                                "the form '{}' is also a form of '{other}'",
                                k.join(" ")
                            ),
                        });
                    }
                }
            }
        }
        Ok(RuleSet {
            rules,
            examples,
            by_first,
            punctuation,
        })
    }

    /// Number of rules (slot families expanded into their pairs).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
