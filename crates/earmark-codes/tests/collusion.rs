//! Collusion trials at the code level: thousands of coalitions of 2, 3 and 4
//! recipients combining their codewords by averaging, by splicing runs of
//! positions, and by per-position random choice, read through noise. At
//! least one colluder must be accused in nearly every trial, and no innocent
//! in any. Readings model the audio channel: each position's reading is the
//! coalition's combined ±1 symbol plus Gaussian noise of standard deviation
//! [`NOISE`] (a single clean symbol then reads wrong 16 % of the time, about
//! the raw error rate measured on marked audio after MP3).
//!
//! Every random choice comes from ChaCha streams of a fixed test key.

use earmark_codes::TardosCode;
use earmark_keys::{uniform_below, Label, SecretKey};
use rand_core::RngCore;

/// Noise standard deviation, in units of a clean symbol.
const NOISE: f64 = 1.0;
/// Positions a trial reads (100 s of audio at 30 positions per second).
const POSITIONS: usize = 3000;
/// Recipients per trial.
const RECIPIENTS: u32 = 200;
/// Accusation budget for the code (ε/2 of the CLI's default 10⁻⁶).
const BUDGET: f64 = 0.5e-6;
/// Positions per spliced run: one 4 s block of the engine.
const SPLICE_RUN: usize = 120;

#[derive(Clone, Copy, Debug)]
enum Strategy {
    Average,
    Splice,
    PerPosition,
}

fn gaussian(rng: &mut impl RngCore) -> f64 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Readings of a coalition's combined copy.
fn readings(
    words: &[Vec<bool>],
    strategy: Strategy,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Vec<(u32, f32)> {
    let symbol = |w: &Vec<bool>, i: usize| if w[i] { 1.0 } else { -1.0 };
    let mut run_owner = 0;
    (0..POSITIONS)
        .map(|i| {
            let clean = match strategy {
                Strategy::Average => {
                    words.iter().map(|w| symbol(w, i)).sum::<f64>() / words.len() as f64
                }
                Strategy::Splice => {
                    if i % SPLICE_RUN == 0 {
                        run_owner = uniform_below(rng, words.len() as u32) as usize;
                    }
                    symbol(&words[run_owner], i)
                }
                Strategy::PerPosition => {
                    symbol(&words[uniform_below(rng, words.len() as u32) as usize], i)
                }
            };
            (i as u32, (clean + NOISE * gaussian(rng)) as f32)
        })
        .collect()
}

#[test]
fn coalitions_are_caught_and_innocents_never_accused() {
    let master = SecretKey::from_seed(2024);
    let mut rng = master.stream(Label("earmark/test/collusion"));
    let recipients: Vec<u32> = (1..=RECIPIENTS).collect();
    let mut work = 0;
    let mut report = Vec::new();
    let mut innocents_accused = 0;
    for colluders in [2usize, 3, 4] {
        for strategy in [Strategy::Average, Strategy::Splice, Strategy::PerPosition] {
            let trials = 40;
            let mut caught = 0;
            for _ in 0..trials {
                work += 1;
                let code = TardosCode::new(&master, work, POSITIONS);
                let mut coalition: Vec<u32> = Vec::new();
                while coalition.len() < colluders {
                    let j = 1 + uniform_below(&mut rng, RECIPIENTS);
                    if !coalition.contains(&j) {
                        coalition.push(j);
                    }
                }
                let words: Vec<Vec<bool>> = coalition.iter().map(|&j| code.codeword(j)).collect();
                let read = code.readings(&readings(&words, strategy, &mut rng));
                let accused: Vec<u32> = code
                    .rank(&read, &recipients, recipients.len(), 8)
                    .into_iter()
                    .filter(|r| r.bound <= BUDGET)
                    .map(|r| r.recipient)
                    .collect();
                innocents_accused += accused.iter().filter(|j| !coalition.contains(j)).count();
                caught += usize::from(accused.iter().any(|j| coalition.contains(j)));
            }
            report.push(format!("c={colluders} {strategy:?}: {caught}/{trials}"));
            // The coalition is caught in most trials; c = 4 is the design
            // size and the hardest.
            let floor = match colluders {
                2 => trials,
                3 => trials * 9 / 10,
                _ => trials * 6 / 10,
            };
            assert!(caught >= floor, "{}", report.join("; "));
        }
    }
    eprintln!("{}", report.join("; "));
    assert_eq!(innocents_accused, 0);
}

#[test]
fn unmarked_audio_and_other_works_accuse_nobody() {
    // 3,000 trials: readings of pure noise, and readings of a copy of another
    // work (its codewords under a different work key), against 200 recipients.
    let master = SecretKey::from_seed(77);
    let mut rng = master.stream(Label("earmark/test/innocents"));
    let recipients: Vec<u32> = (1..=RECIPIENTS).collect();
    let mut accused = 0;
    let mut best_bound: f64 = 1.0;
    for trial in 0..3000u32 {
        let code = TardosCode::new(&master, trial + 1, 600);
        let raw: Vec<(u32, f32)> = if trial % 2 == 0 {
            (0..600).map(|i| (i, gaussian(&mut rng) as f32)).collect()
        } else {
            let other = TardosCode::new(&master, 100_000 + trial, 600).codeword(1 + trial % 50);
            (0..600)
                .map(|i| (i, if other[i as usize] { 1.0 } else { -1.0 }))
                .collect()
        };
        let read = code.readings(&raw);
        let top = code.rank(&read, &recipients, recipients.len(), 1)[0];
        best_bound = best_bound.min(top.bound);
        accused += usize::from(top.bound <= BUDGET);
    }
    assert_eq!(accused, 0, "smallest bound {best_bound:e}");
}
