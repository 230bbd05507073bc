//! Attack names, edit truth and errors.

use super::*;

#[test]
fn names_round_trip() {
    for text in [
        "clean",
        "mp3:128k",
        "aac:64k",
        "opus:12k",
        "vorbis:64k",
        "amr-nb:4.75k",
        "amr-wb:23.85k",
        "insert:2s",
        "gsm",
        "mulaw",
        "resample:22.05k",
        "phone",
        "lowpass:3.5k",
        "highpass:500",
        "noise:20",
        "pink:10",
        "gain:+10",
        "gain:-10",
        "crop:3s",
        "cut:1s",
        "speed:1.05",
        "tempo:0.95",
        "pitch:-50",
        "echo",
        "reverb",
        "air:20",
        "room:0.5s@1.5m",
        "mix:10",
    ] {
        let parsed: Attack = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed.to_string(), text);
    }
    let chain: Chain = "opus:16k,mp3:128k".parse().unwrap();
    assert_eq!(chain.0.len(), 2);
    assert_eq!(chain.to_string(), "opus:16k,mp3:128k");
}

/// The ground truth follows crops, cuts and insertions: on a ramp (each
/// sample its own original index) with a negative interferer, the
/// inserted stretches are exactly the negative samples and the ramp
/// jumps exactly at the removals.
#[test]
fn edit_truth_follows_crops_cuts_and_insertions() {
    let Ok(tools) = Tools::find() else {
        panic!("ffmpeg and sox are needed (scripts/setup.sh installs them)");
    };
    let rate = 8_000u32;
    let ramp = Audio {
        rate,
        channels: vec![(0..60 * rate).map(|i| i as f32 + 1.0).collect()],
        sample_format: earmark_audio_io::SampleFormat::Float32,
    };
    let other = Audio {
        channels: vec![vec![-1.0; 3 * rate as usize]],
        ..ramp.clone()
    };
    let dir = tempfile::tempdir().unwrap();
    for seed in 0..8u64 {
        let mut rng = <ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(seed);
        let mut cx = Context {
            tools: &tools,
            scratch: dir.path(),
            interferer: &other,
            rng: &mut rng,
            edits: Vec::new(),
        };
        let chain: Chain = "crop:36s,cut:1s,insert:2s,crop:25s".parse().unwrap();
        let out = chain.apply(&ramp, &mut cx).unwrap();
        let x = &out.channels[0];
        let at = |t: f64| (t * rate as f64).round() as usize;
        let mut inserted = vec![false; x.len()];
        for e in cx.edits.iter().filter(|e| e.kind == EditKind::Inserted) {
            inserted[at(e.start_s)..at(e.end_s)].fill(true);
        }
        for (i, v) in x.iter().enumerate() {
            assert_eq!(*v < 0.0, inserted[i], "seed {seed}, sample {i}");
        }
        let ramp_jumps: Vec<usize> = (1..x.len())
            .filter(|&i| x[i] > 0.0)
            .filter_map(|i| {
                let prev = (0..i).rev().find(|&k| x[k] > 0.0)?;
                (x[i] - x[prev] > 1.0).then_some(i)
            })
            .collect();
        let marked: Vec<usize> = cx
            .edits
            .iter()
            .filter(|e| e.kind == EditKind::Removed)
            .map(|e| at(e.start_s))
            .collect();
        assert!(!marked.is_empty(), "seed {seed}");
        assert_eq!(
            marked.len(),
            ramp_jumps.len(),
            "seed {seed}: {marked:?} {ramp_jumps:?}"
        );
        for (m, j) in marked.iter().zip(&ramp_jumps) {
            assert!(
                m.abs_diff(*j) <= 1,
                "seed {seed}: {marked:?} {ramp_jumps:?}"
            );
        }
    }
}

#[test]
fn bad_names_list_the_valid_ones() {
    for text in [
        "mp4:128k",
        "mp3",
        "mp3:fast",
        "amr-nb:9k",
        "speed:7",
        "crop:10",
        "clean:1",
        "",
    ] {
        let error = text.parse::<Chain>().unwrap_err().to_string();
        assert!(
            error.contains("valid attacks: clean mp3:<k>"),
            "{text}: {error}"
        );
    }
}
