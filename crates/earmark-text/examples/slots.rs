//! Slot density of a transcript, by family: `cargo run --release -p
//! earmark-text --example slots -- TRANSCRIPT`.

use std::collections::BTreeMap;

use earmark_text::{Document, RuleSet, Transcript};

fn main() {
    let path = std::env::args().nth(1).expect("usage: slots TRANSCRIPT");
    let text = std::fs::read_to_string(&path).expect("readable UTF-8");
    let rules = RuleSet::standard();
    let document = Document::parse(text, None).expect("a transcript");
    let found = earmark_text::Prepared::new(&rules, document.text(), earmark_text::Mode::Master)
        .slots
        .len();
    let transcript = Transcript::new(&rules, document);
    let mut families: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &transcript.prepared.slots {
        *families
            .entry(&rules.rules[s.rule as usize].family)
            .or_default() += 1;
    }
    let words = transcript.words();
    println!(
        "{path}: {words} words, {} slots ({found} found, {} dropped as unstable), {:.1} per 100 words",
        transcript.slots(),
        found - transcript.slots(),
        100.0 * transcript.slots() as f64 / words as f64
    );
    for (family, n) in families {
        println!(
            "  {family:<22} {n:>5}  {:.2} per 100 words",
            100.0 * n as f64 / words as f64
        );
    }
}
