//! Empirical false alarms: extracts from many unmarked excerpts of the corpus
//! under several keys and counts how often a payload is reported, beside the
//! distribution of the best pilot statistic (compare with the Hoeffding bound
//! `P(z ≥ t) ≤ exp(−t²/2)` per hypothesis).
//!
//! `cargo run --release --example false_alarms -- CORPUS_DIR [KEYS] [HOP_S] [SEED]`
use std::path::Path;

use earmark_engine::{extract, SearchGrid};
use earmark_keys::SecretKey;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let corpus = Path::new(args.get(1).map_or("../shared/corpus", String::as_str));
    let keys: u64 = args.get(2).map_or(3, |s| s.parse().expect("key count"));
    let hop_s: f64 = args.get(3).map_or(3.0, |s| s.parse().expect("hop seconds"));
    let seed: u64 = args.get(4).map_or(1, |s| s.parse().expect("seed"));
    let mut files: Vec<_> = std::fs::read_dir(corpus)
        .expect("corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav" || x == "flac"))
        .collect();
    files.sort();
    let (mut excerpts, mut alarms) = (0usize, 0usize);
    let mut best = Vec::new();
    for file in &files {
        let audio = match earmark_audio_io::read(file) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("skipping {}: {e}", file.display());
                continue;
            }
        };
        let rate = audio.rate as usize;
        let len = 10 * rate;
        let mut start = 0;
        while start + len <= audio.frames() {
            let clip: Vec<Vec<f32>> = audio
                .channels
                .iter()
                .map(|c| c[start..start + len].to_vec())
                .collect();
            for k in 0..keys {
                let key = SecretKey::from_seed(seed.wrapping_mul(1000).wrapping_add(k));
                let d =
                    extract(&clip, audio.rate, &key, &SearchGrid::default()).expect("valid clip");
                excerpts += 1;
                alarms += usize::from(!d.found.is_empty());
                best.push(d.best_pilot_z);
            }
            start += (hop_s * rate as f64) as usize;
        }
    }
    best.sort_by(f32::total_cmp);
    let q = |p: f64| best[((best.len() - 1) as f64 * p) as usize];
    println!(
        "{excerpts} unmarked 10 s excerpts × key, {alarms} false alarms; best pilot z: median {:.2}, 99% {:.2}, max {:.2}",
        q(0.5),
        q(0.99),
        best.last().copied().unwrap_or(0.0)
    );
}
