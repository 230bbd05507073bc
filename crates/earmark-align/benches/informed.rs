//! Speed of informed tracing (the target: under 2 s on one core): a
//! 30 s excerpt of a marked 5-minute master is identified among 1,000
//! registered works, registered against the master, read through it, and
//! scored against 1,000 recipients with the bounds of the best ten.
//!
//! The master is the first 5 minutes of the bundled recorded call, marked for
//! recipient 7. The 999 other works are the master's landmarks under a keyed
//! relabelling of their hashes each: the index then has the size and bucket
//! statistics of 1,000 five-minute works without 83 hours of audio to
//! analyse at set-up.
//!
//! `RAYON_NUM_THREADS=1 cargo bench -p earmark-align` (seeded key:
//! `EARMARK_BENCH_SEED`, default 1).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use earmark_align::landmarks::{landmarks, Landmark, LandmarkIndex, HASH_BITS};
use earmark_align::{analysis_signal, register, LandmarkQuery, RATE};
use earmark_codes::TardosCode;
use earmark_engine::layout::FINGERPRINT_POSITIONS;
use earmark_engine::{embed_fingerprinted, payload_tail, read_informed, KnownPayloads, Segment};
use earmark_keys::{Label, SecretKey};

const WORKS: u32 = 1_000;
const RECIPIENTS: u32 = 1_000;
const MASTER_S: usize = 300;
const EXCERPT: (usize, usize) = (120, 30);

fn benches(c: &mut Criterion) {
    let seed = std::env::var("EARMARK_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let master_key = SecretKey::from_seed(seed);
    let engine_key = master_key.derive(Label("earmark/bench/informed-engine"));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/long/long_call_en-f_it-m_8k.flac");
    let audio = earmark_audio_io::read(&fixture).expect("the bundled call");
    let mut channels: Vec<Vec<f32>> = audio
        .channels
        .iter()
        .map(|c| c[..MASTER_S * audio.rate as usize].to_vec())
        .collect();
    let master_8k = analysis_signal(&channels, audio.rate);
    let code = TardosCode::new(&master_key, 1, FINGERPRINT_POSITIONS);
    embed_fingerprinted(
        &mut channels,
        audio.rate,
        &engine_key,
        0x0123_4567_89ab_cdef,
        &code.codeword(7),
        Default::default(),
    )
    .expect("marks");
    let marked_8k = analysis_signal(&channels, audio.rate);
    let rate = RATE as usize;
    let leak = marked_8k[EXCERPT.0 * rate..(EXCERPT.0 + EXCERPT.1) * rate].to_vec();

    let own = landmarks(&master_8k);
    let mut relabel = master_key.stream(Label("earmark/bench/informed-relabel"));
    let works: Vec<(u32, Vec<Landmark>)> = (1..=WORKS)
        .map(|w| {
            let offset = rand_core::RngCore::next_u32(&mut relabel);
            let lms = if w == 1 {
                own.clone()
            } else {
                own.iter()
                    .map(|l| Landmark {
                        hash: (l.hash ^ offset) & ((1 << HASH_BITS) - 1),
                        frame: l.frame,
                    })
                    .collect()
            };
            (w, lms)
        })
        .collect();
    let mut index = LandmarkIndex::default();
    index.insert_many(&works);
    let recipients: Vec<u32> = (1..=RECIPIENTS).collect();
    // Every recipient's payload (the marked one first), as `trace` scores them.
    let payloads: Vec<u64> = std::iter::once(0x0123_4567_89ab_cdef)
        .chain((2..=RECIPIENTS as u64).map(|r| r.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    let payloads = KnownPayloads::new(&engine_key, &payloads);

    let mut group = c.benchmark_group("informed");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.bench_function("identify_30s_among_1000_works", |b| {
        b.iter(|| {
            let found = index
                .identify(&LandmarkQuery::new(&leak))
                .expect("identified");
            assert_eq!(found.work, 1);
            found
        })
    });
    group.bench_function("trace_30s_of_5min_master_1000_recipients", |b| {
        b.iter(|| {
            let found = index
                .identify(&LandmarkQuery::new(&leak))
                .expect("identified");
            assert_eq!(found.work, 1);
            let registration = register(&master_8k, &leak).expect("registers");
            let parts: Vec<Segment> = registration
                .parts()
                .into_iter()
                .map(|(start_s, end_s)| Segment { start_s, end_s })
                .collect();
            let reading = read_informed(
                &engine_key,
                &master_8k,
                &leak,
                |t| registration.leak_time(t),
                registration.freq_scale,
                &parts,
            );
            let readings = code.readings(&reading.fingerprint.positions);
            let ranking = code.rank(&readings, &recipients, recipients.len(), 10);
            assert_eq!(ranking[0].recipient, 7);
            let (_, soft) = &reading.soft_bits[0];
            let best = payloads.scores(soft)[0];
            assert_eq!(best.payload, 0x0123_4567_89ab_cdef);
            assert!(payload_tail(soft, best.score) * (payloads.len() as f64) < 1e-9);
            ranking
        })
    });
    group.finish();
}

criterion_group!(informed, benches);
criterion_main!(informed);
