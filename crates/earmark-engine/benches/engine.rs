//! Speed of embedding and blind extraction on real 44.1 kHz stereo music,
//! one thread. Figures are per call; divide the audio duration by the time
//! for × real time (the README lists them).
//!
//! `cargo bench -p earmark-engine` (seeded key: `EARMARK_BENCH_SEED`, default 1).

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use earmark_engine::{embed, extract, SearchGrid};
use earmark_keys::SecretKey;

/// The payload every benchmark embeds.
const PAYLOAD: u64 = 0x0123_4567_89ab_cdef;

/// The bundled 15 s stereo music fixture, repeated to `seconds`.
fn music(seconds: usize) -> (Vec<Vec<f32>>, u32) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/music_metal_44k_muldjord_chaos_god.wav");
    let audio = earmark_audio_io::read(&path).expect("fixture decodes");
    let frames = seconds * audio.rate as usize;
    let channels = audio
        .channels
        .iter()
        .map(|c| c.iter().cycle().take(frames).copied().collect())
        .collect();
    (channels, audio.rate)
}

fn seed() -> u64 {
    std::env::var("EARMARK_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn benches(c: &mut Criterion) {
    let key = SecretKey::from_seed(seed());
    let (host, rate) = music(60);
    let mark = |channels: &mut Vec<Vec<f32>>| {
        embed(channels, rate, &key, PAYLOAD, Default::default()).expect("embeds")
    };
    let mut group = c.benchmark_group("engine_44k1_stereo");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.bench_function("embed_60s", |b| {
        // The copy of the input is set-up, not embedding: it is left out.
        b.iter_batched_ref(
            || host.clone(),
            |channels| mark(channels),
            BatchSize::LargeInput,
        )
    });
    // The same music as one channel: what a channel costs on its own.
    let mono = vec![host[0].clone()];
    group.bench_function("embed_60s_mono", |b| {
        b.iter_batched_ref(
            || mono.clone(),
            |channels| mark(channels),
            BatchSize::LargeInput,
        )
    });
    let mut marked = host.clone();
    mark(&mut marked);
    let clip: Vec<Vec<f32>> = marked
        .iter()
        .map(|c| c[(7.3 * rate as f64) as usize..(17.3 * rate as f64) as usize].to_vec())
        .collect();
    group.bench_function("extract_10s_unknown_offset", |b| {
        b.iter(|| {
            let found = extract(&clip, rate, &key, &SearchGrid::default()).expect("extracts");
            assert_eq!(found.found.len(), 1);
        })
    });
    group.bench_function("extract_60s", |b| {
        b.iter(|| extract(&marked, rate, &key, &SearchGrid::default()).expect("extracts"))
    });
    group.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
