//! Speed of reading quotes back from a long article: the bundled prompt
//! transcript (3,344 spoken words) rendered for one recipient and quoted
//! whole, again and again, into an article of `EARMARK_BENCH_WORDS` words
//! (default 100,000): the worst case, where every word of the article
//! aligns to the transcript, and its repetitive prompts give many competing
//! alignments. Reading is what `earmark text trace` does after parsing.
//!
//! `cargo bench -p earmark-text` (seeded codeword: `EARMARK_BENCH_SEED`,
//! default 1).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use earmark_text::{Document, Mode, Prepared, RuleSet, Transcript};

fn benches(c: &mut Criterion) {
    let seed: u64 = std::env::var("EARMARK_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let words: usize = std::env::var("EARMARK_BENCH_WORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/transcripts/asterisk-core-sounds-en.txt"
    ))
    .expect("the bundled transcript");
    let rules = RuleSet::standard();
    let transcript = Transcript::new(&rules, Document::parse(source, None).expect("parses"));
    // A codeword from a seeded splitmix64 stream.
    let mut state = seed;
    let bits: Vec<bool> = (0..transcript.codeword_len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let z = (state ^ (state >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (z >> 63) == 1
        })
        .collect();
    let copy = transcript.render(&rules, &bits);
    let per_copy = copy.split_whitespace().count().max(1);
    let article = vec![copy.as_str(); words.div_ceil(per_copy)].join("\n\n");
    let leak = Prepared::new(&rules, article, Mode::Leak);
    let mut group = c.benchmark_group("text");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.bench_function(format!("read_quotes_from_{words}_word_article"), |b| {
        b.iter(|| {
            let fragments = transcript.read(&rules, &leak);
            assert!(!fragments.is_empty());
            fragments
        })
    });
    group.finish();
}

criterion_group!(article, benches);
criterion_main!(article);
