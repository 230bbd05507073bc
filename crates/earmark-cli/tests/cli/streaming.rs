//! The streaming embedder and detector give the same results as one pass,
//! whatever the chunking, and handle inputs longer than one window.

use crate::common;

use common::*;
use earmark_engine::{Embedder, Extractor, SearchGrid};
use earmark_keys::SecretKey;

#[test]
fn chunked_embedding_is_bit_identical_to_one_pass() {
    let audio = earmark_audio_io::read(&fixture("music_metal_44k_muldjord_chaos_god.wav")).unwrap();
    // 75 s: several 30 s segments.
    let long: Vec<Vec<f32>> = audio
        .channels
        .iter()
        .map(|c| {
            c.iter()
                .cycle()
                .take(75 * audio.rate as usize)
                .copied()
                .collect()
        })
        .collect();
    let key = SecretKey::from_seed(11);
    let mut whole = long.clone();
    earmark_engine::embed(&mut whole, audio.rate, &key, 42, Default::default()).unwrap();
    for step in [4410usize, 100_003] {
        let mut embedder = Embedder::new(audio.rate, 2, &key, 42, Default::default()).unwrap();
        let mut out = vec![Vec::new(); 2];
        let mut pos = 0;
        while pos < long[0].len() {
            let end = (pos + step).min(long[0].len());
            let chunk: Vec<Vec<f32>> = long.iter().map(|c| c[pos..end].to_vec()).collect();
            for (o, m) in out.iter_mut().zip(embedder.push(&chunk)) {
                o.extend(m);
            }
            pos = end;
        }
        let (tail, _) = embedder.finish().unwrap();
        for (o, t) in out.iter_mut().zip(tail) {
            o.extend(t);
        }
        assert_eq!(out, whole, "chunks of {step}");
    }
}

#[test]
fn long_input_is_found_across_windows_with_bounded_state() {
    let s = Scratch::seeded(100);
    let speech =
        earmark_audio_io::read(&fixture("speech_en_f_8k_allison_demo-congrats.wav")).unwrap();
    // 150 s of call audio: five detector windows.
    let long = earmark_audio_io::Audio {
        channels: vec![speech.channels[0]
            .iter()
            .cycle()
            .take(150 * 8000)
            .copied()
            .collect()],
        ..speech.clone()
    };
    let input = s.path("long.wav");
    earmark_audio_io::write(&input, &long).unwrap();
    let marked = s.path("long_marked.wav");
    s.embed(&input, &marked, "1234567890abcdef");
    let (code, json) = s.extract(&marked);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["payload"], "1234567890abcdef");
    let covered: f64 = json["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["end_s"].as_f64().unwrap() - s["start_s"].as_f64().unwrap())
        .sum();
    assert!(
        covered > 100.0,
        "only {covered} s of 150 s attributed: {json}"
    );

    // The same through the streaming detector in small chunks.
    let key = SecretKey::from_file_text(&std::fs::read_to_string(&s.key).unwrap()).unwrap();
    let audio = earmark_audio_io::read(&marked).unwrap();
    let mut extractor = Extractor::new(8000, 1, &key, SearchGrid::default()).unwrap();
    for part in audio.channels[0].chunks(3001) {
        extractor.push(&[part.to_vec()]);
    }
    let detection = extractor.finish();
    assert_eq!(detection.found.len(), 1);
    assert_eq!(detection.found[0].payload, 0x1234_5678_90ab_cdef);
}
