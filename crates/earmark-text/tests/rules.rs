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
