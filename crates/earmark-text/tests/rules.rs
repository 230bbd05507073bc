//! The shipped rules against their own reviewed examples.

use earmark_text::slots::{find, render, Mode};
use earmark_text::tokens::tokenize;
use earmark_text::{canonical, RuleSet};

#[test]
fn every_example_varies_exactly_as_written_and_canonicalises_alike() {
    let rules = RuleSet::standard();
    assert!(rules.examples.len() >= 20);
    let mut failures = Vec::new();
    for example in &rules.examples {
        let text = &example.written;
        let tokens = tokenize(text);
        let slots = find(&rules, text, &tokens, Mode::Master);
        let family: Vec<bool> = slots
            .iter()
            .map(|s| rules.rules[s.rule as usize].family == example.family)
            .collect();
        if !family.contains(&true) {
            failures.push(format!("{}: no slot found in {text:?}", example.family));
            continue;
        }
        let variants: Vec<u8> = slots
            .iter()
            .zip(&family)
            .map(|(s, &mine)| if mine { 1 - s.variant } else { s.variant })
            .collect();
        let varied = render(&rules, text, &tokens, &slots, &variants);
        if varied != example.varied {
            failures.push(format!(
                "{}: {text:?} varied to {varied:?}, not {:?}",
                example.family, example.varied
            ));
        }
        if canonical(&rules, text) != canonical(&rules, &example.varied) {
            failures.push(format!(
                "{}: {text:?} and {:?} canonicalise differently",
                example.family, example.varied
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rules_refuse_what_they_must() {
    let rules = RuleSet::standard();
    let slots_of = |text: &str| {
        let tokens = tokenize(text);
        find(&rules, text, &tokens, Mode::Master)
            .iter()
            .map(|s| rules.rules[s.rule as usize].id.clone())
            .collect::<Vec<_>>()
    };
    // 'is' before a word that may end the clause, 'has' readings, clause-final pronoun + be.
    assert!(slots_of("I know where it is now.").is_empty());
    assert!(slots_of("Yes, I am.").is_empty());
    assert!(slots_of("He's been there.").is_empty());
    // Numbers next to number words, money, decimals, sentence starts, "one".
    assert!(slots_of("twenty two").is_empty());
    assert!(slots_of("It cost $5 and 3.5 kilos.").is_empty());
    assert!(slots_of("Three people came. No one left.")
        .iter()
        .all(|id| id.starts_with("spelling")));
    // 'not only' keeps its 'not'.
    assert!(slots_of("It does not only rain.").is_empty());
    // A comma is never added to a list.
    assert!(slots_of("When he arrived, John and Mary left.").is_empty());
}

#[test]
fn a_damaged_rules_file_is_refused() {
    assert!(RuleSet::from_toml(
        "[[rule]]\nid = 'x'\nkind = 'swap'\nvariants = ['a', 'a']\nexamples = [['a', 'a']]"
    )
    .is_err());
    assert!(RuleSet::from_toml(
        "[[rule]]\nid = 'x'\nkind = 'swap'\nvariants = ['a', 'b']\nexamples = []"
    )
    .is_err());
    assert!(RuleSet::from_toml("not toml [").is_err());
}

/// A contraction that reads two ways ('s as is or has, 'd as had or would)
/// is never expanded unless the next word decides it: a participle or an
/// adverb that may announce one leaves it as written.
#[test]
fn ambiguous_contractions_are_expanded_only_where_the_next_word_decides() {
    let rules = RuleSet::standard();
    let varied = |text: &str, contraction: &str| {
        let tokens = tokenize(text);
        let at = text
            .find(contraction)
            .expect("the contraction is in the text");
        find(&rules, text, &tokens, Mode::Master).iter().any(|s| {
            !s.tokens.is_empty()
                && tokens[s.tokens.start].start <= at
                && at < tokens[s.tokens.end - 1].end
        })
    };
    for (text, contraction) in [
        ("So he's signed off on the first part.", "he's"),
        ("Well, she's gone home.", "she's"),
        ("And he's been doing it for years.", "he's"),
        ("But he's not been paid.", "he's"),
        ("And he's not signed it.", "he's"),
        ("But it's not been easy.", "it's"),
        ("Well, it's just left the port.", "it's"),
        ("And she's probably gone.", "she's"),
        ("Well, it's got to stop.", "it's"),
        ("And she's had enough.", "she's"),
        ("And she'd promised it by Friday.", "she'd"),
        ("So I'd put it in the safe.", "I'd"),
        ("But he'd read the file.", "he'd"),
        ("And they'd said so.", "they'd"),
        ("Then he'd better go.", "he'd"),
        ("And I'd heard that too.", "I'd"),
    ] {
        assert!(
            !varied(text, contraction),
            "{contraction} expanded in {text:?}"
        );
    }
    for (text, contraction) in [
        ("So I'd like to see it.", "I'd"),
        ("They said they'd be done.", "they'd"),
        ("And he's waiting for the bank.", "he's"),
        ("Well, that's the kind of thing.", "that's"),
    ] {
        assert!(
            varied(text, contraction),
            "{contraction} not varied in {text:?}"
        );
    }
}
