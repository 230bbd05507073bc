//! Registers a leak against a master and prints what was found:
//! `cargo run --release -p earmark-align --example register MASTER LEAK`.

use std::path::Path;
use std::time::Instant;

use earmark_align::{landmarks, register, LandmarkQuery};

fn mono_8k(path: &str) -> Vec<f32> {
    let audio = earmark_audio_io::read(Path::new(path)).expect("readable audio");
    earmark_align::analysis_signal(&audio.channels, audio.rate)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let master = mono_8k(&args[1]);
    let leak = mono_8k(&args[2]);
    let t = Instant::now();
    let mut index = landmarks::LandmarkIndex::default();
    index.insert(7, &landmarks::landmarks(&master));
    let indexed = t.elapsed();
    let t = Instant::now();
    let found = index.identify(&LandmarkQuery::new(&leak));
    println!(
        "index {} landmarks in {indexed:?}; identify {:?}: {found:?}",
        index.len(),
        t.elapsed()
    );
    let t = Instant::now();
    match register(&master, &leak) {
        Ok(r) => {
            println!(
                "registered in {:?}: time scale {:.3}, freq scale {:.4}, corr {:.2}, gain {:.1} dB, matched {:.1}/{:.1} s",
                t.elapsed(),
                r.time_scale,
                r.freq_scale,
                r.correlation,
                r.gain_db,
                r.matched_s(),
                r.leak_s
            );
            for s in &r.stretches {
                println!(
                    "  leak {:7.3}–{:7.3} ↔ master {:7.3}–{:7.3} ({} anchors)",
                    s.leak_start_s,
                    s.leak_end_s,
                    s.master_start_s,
                    s.master_end_s,
                    s.anchors.len()
                );
            }
            println!("  inserted {:?}", r.inserted);
            println!("  removed {:?}", r.removed);
            if std::env::var("ANCHORS").is_ok() {
                for s in &r.stretches {
                    for a in &s.anchors {
                        println!("    {:.4} {:.4} {:.4}", a.0, a.1, a.1 - a.0);
                    }
                }
            }
        }
        Err(e) => println!("not registered ({:?}): {e}", t.elapsed()),
    }
}
