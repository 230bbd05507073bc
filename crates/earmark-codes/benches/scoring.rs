//! Speed of scoring a leak against every recipient of a work: 10,000
//! recipients and the fingerprint positions of a 5-minute leak (300 s at 30
//! positions per second: 9,000 of the 30,720), ranked
//! with the bounds of the best ten. The target is under a second beyond
//! extraction. Uses both cores (rayon) unless `RAYON_NUM_THREADS=1`.
//!
//! `cargo bench -p earmark-codes` (seeded key: `EARMARK_BENCH_SEED`, default 1).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use earmark_codes::TardosCode;
use earmark_keys::{Label, SecretKey};

/// Distinct fingerprint positions of the engine (`FINGERPRINT_POSITIONS`).
const POSITIONS: usize = 30_720;
const RECIPIENTS: u32 = 10_000;

fn benches(c: &mut Criterion) {
    let seed = std::env::var("EARMARK_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let master = SecretKey::from_seed(seed);
    let code = TardosCode::new(&master, 1, POSITIONS);
    // Readings of recipient 17's copy with noise from a keyed stream.
    let word = code.codeword(17);
    let mut noise = master.stream(Label("earmark/bench/scoring-noise"));
    // A 5-minute leak from the middle of a long recording: 75 blocks.
    let raw: Vec<(u32, f32)> = word
        .iter()
        .enumerate()
        .skip(6_000)
        .take(9_000)
        .map(|(i, &bit)| {
            let n = (rand_core::RngCore::next_u32(&mut noise) as f32 / u32::MAX as f32 - 0.5) * 4.0;
            (i as u32, if bit { 1.0 } else { -1.0 } + n)
        })
        .collect();
    let recipients: Vec<u32> = (1..=RECIPIENTS).collect();
    let mut group = c.benchmark_group("tardos");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.bench_function("rank_10000_recipients_5min_leak", |b| {
        b.iter(|| {
            let readings = code.readings(&raw);
            let ranking = code.rank(&readings, &recipients, recipients.len(), 10);
            assert_eq!(ranking[0].recipient, 17);
            ranking
        })
    });
    group.finish();
}

criterion_group!(scoring, benches);
criterion_main!(scoring);
