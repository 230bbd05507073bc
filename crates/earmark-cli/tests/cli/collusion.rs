//! Collusion end to end: a 6-minute recorded call marked for 12 recipients;
//! coalitions of 2 and 3 combine their copies by averaging, by splicing
//! every 3 s and by a random choice per 20 ms frame, then pass the result
//! through MP3 at 128 kbit/s (one strategy per coalition size, each size
//! another, unless `EARMARK_TEST_FULL=1` asks for all nine). Coalitions of 4 do the same to a 12-minute
//! recording (the call played twice): four colluders need more audio. `trace`
//! must accuse at least one colluder and never anyone else. The code-level trials (thousands of coalitions and
//! innocents) are in `earmark-codes/tests/collusion.rs`.

use crate::common;

use std::path::Path;

use common::home::{accused, TestHome};
use common::{ffmpeg, fixture};
use earmark_keys::{uniform_below, Label, SecretKey};

/// In a folder of its own, so the bench smoke test (which takes the
/// fixtures folder as its corpus) stays quick.
const CALL: &str = "long/long_call_en-f_it-m_8k.flac";
const RECIPIENTS: usize = 12;

#[derive(Clone, Copy, Debug)]
enum Strategy {
    Average,
    SpliceEvery3s,
    RandomPerFrame,
}

/// Combines the copies' (mono) samples as `strategy` says.
fn combine(copies: &[Vec<f32>], rate: u32, strategy: Strategy, seed: u64) -> Vec<f32> {
    let len = copies.iter().map(Vec::len).min().unwrap();
    let mut rng = SecretKey::from_seed(seed).stream(Label("earmark/test/collusion-frames"));
    let frame = (rate / 50) as usize;
    let mut owner = 0;
    (0..len)
        .map(|i| match strategy {
            Strategy::Average => copies.iter().map(|c| c[i]).sum::<f32>() / copies.len() as f32,
            Strategy::SpliceEvery3s => copies[(i / (3 * rate as usize)) % copies.len()][i],
            Strategy::RandomPerFrame => {
                if i % frame == 0 {
                    owner = uniform_below(&mut rng, copies.len() as u32) as usize;
                }
                copies[owner][i]
            }
        })
        .collect()
}

fn write_mono(path: &Path, samples: Vec<f32>, rate: u32) {
    assert_eq!(rate, 8000);
    let audio = earmark_audio_io::Audio {
        channels: vec![samples],
        rate,
        sample_format: earmark_audio_io::SampleFormat::Float32,
    };
    earmark_audio_io::write(path, &audio).unwrap();
}

#[test]
fn coalitions_of_two_to_four_are_caught_and_nobody_else_is_named() {
    let home = TestHome::new();
    let out = home.mark_for(&fixture(CALL), RECIPIENTS);
    let call = earmark_audio_io::read(&fixture(CALL))
        .unwrap()
        .channels
        .remove(0);
    let twice = home.path("call_twice.wav");
    write_mono(&twice, [call.clone(), call].concat(), 8000);
    let out_twice = home.path("copies_twice");
    home.ok(&[
        "mark",
        twice.to_str().unwrap(),
        "--all",
        "--out",
        out_twice.to_str().unwrap(),
    ]);
    let names: Vec<String> = (1..=RECIPIENTS).map(|i| format!("r{i:02}")).collect();
    let copies_of = |dir: &Path, stem: &str| -> Vec<Vec<f32>> {
        names
            .iter()
            .map(|n| {
                let path = common::copy_named(dir, stem, n, "wav");
                earmark_audio_io::read(&path).unwrap().channels.remove(0)
            })
            .collect()
    };
    let call_copies = copies_of(&out, "long_call_en-f_it-m_8k");
    let twice_copies = copies_of(&out_twice, "call_twice");
    let rate = 8000;
    let mut rng = SecretKey::from_seed(4).stream(Label("earmark/test/coalitions"));
    let mut report = Vec::new();
    let mut caught = 0;
    let mut trials = 0u64;
    const STRATEGIES: [Strategy; 3] = [
        Strategy::Average,
        Strategy::SpliceEvery3s,
        Strategy::RandomPerFrame,
    ];
    for (size_index, colluders) in [2usize, 3, 4].into_iter().enumerate() {
        // One coalition per size, each with another strategy, unless the
        // full matrix runs every strategy at every size.
        let strategies = if common::full_matrices() {
            &STRATEGIES[..]
        } else {
            &STRATEGIES[size_index..=size_index]
        };
        for &strategy in strategies {
            let mut coalition: Vec<usize> = Vec::new();
            while coalition.len() < colluders {
                let j = uniform_below(&mut rng, RECIPIENTS as u32) as usize;
                if !coalition.contains(&j) {
                    coalition.push(j);
                }
            }
            let copies = if colluders < 4 {
                &call_copies
            } else {
                &twice_copies
            };
            let members: Vec<Vec<f32>> = coalition.iter().map(|&j| copies[j].clone()).collect();
            let mix = home.path("mix.wav");
            write_mono(&mix, combine(&members, rate, strategy, trials), rate);
            let leak = home.path("leak.mp3");
            ffmpeg(&[
                "-i",
                mix.to_str().unwrap(),
                "-ar",
                "44100",
                "-c:a",
                "libmp3lame",
                "-b:a",
                "128k",
                leak.to_str().unwrap(),
            ]);
            let (_, value) = home.trace(&leak);
            let named = accused(&value);
            let members: Vec<&str> = coalition.iter().map(|&j| names[j].as_str()).collect();
            report.push(format!(
                "c={colluders} {strategy:?} {members:?}: accused {named:?} ({} positions)",
                value["positions_read"]
            ));
            for name in &named {
                assert!(
                    members.contains(&name.as_str()),
                    "innocent {name} accused: {}",
                    report.join("\n")
                );
            }
            trials += 1;
            caught += usize::from(!named.is_empty());
        }
    }
    eprintln!("{}", report.join("\n"));
    assert_eq!(caught as u64, trials, "{}", report.join("\n"));
}

#[test]
fn a_copy_of_another_work_accuses_nobody_under_this_works_code() {
    let home = TestHome::new();
    home.mark_for(&fixture(CALL), 4);
    // Work 2: a different recording, marked for the same recipients.
    let second = home.path("second");
    home.ok(&[
        "mark",
        fixture("speech_en_f_8k_allison_demo-congrats.wav")
            .to_str()
            .unwrap(),
        "--all",
        "--out",
        second.to_str().unwrap(),
    ]);
    let copy = common::copy_named(
        &second,
        "speech_en_f_8k_allison_demo-congrats",
        "r02",
        "wav",
    );
    let out = home.run(&["trace", copy.to_str().unwrap(), "--work", "1", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(3), "{value}");
    assert!(accused(&value).is_empty(), "{value}");
    // Its own work names its recipient.
    let (code, value) = home.trace(&copy);
    assert_eq!(code, 0);
    assert_eq!(accused(&value), ["r02"]);
    assert_eq!(value["work"]["id"], 2);
}
