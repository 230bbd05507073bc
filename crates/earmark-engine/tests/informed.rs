//! The informed reading on a real recording: a marked copy read against its
//! unmarked master names its own payload far above every other, within the
//! exact bound, and the master read against itself carries nothing.

use std::path::Path;

use earmark_engine::layout::ANALYSIS_RATE;
use earmark_engine::{embed, payload_tail, read_informed, KnownPayloads};
use earmark_keys::SecretKey;

fn mono_8k(channels: &[Vec<f32>], rate: u32) -> Vec<f32> {
    earmark_dsp::resample(&earmark_dsp::downmix(channels), rate, ANALYSIS_RATE)
}

/// The bundled 8 kHz speech and a copy marked with `payload` under `key`,
/// both mono at the analysis rate: (master, copy).
fn master_and_marked_copy(key: &SecretKey, payload: u64) -> (Vec<f32>, Vec<f32>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/speech_en_f_8k_allison_demo-congrats.wav");
    let audio = earmark_audio_io::read(&path).unwrap();
    let mut marked = audio.channels.clone();
    embed(&mut marked, audio.rate, key, payload, 1.0).unwrap();
    (
        mono_8k(&audio.channels, audio.rate),
        mono_8k(&marked, audio.rate),
    )
}

#[test]
fn a_marked_copy_reads_its_payload_and_the_master_reads_nothing() {
    let key = SecretKey::from_seed(11);
    let payload = 0x5eed_0000_1234_abcd;
    let (master, copy) = master_and_marked_copy(&key, payload);
    let others: Vec<u64> = (1..200u64)
        .map(|k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let candidates: Vec<u64> = std::iter::once(payload).chain(others).collect();

    let reading = read_informed(&key, &master, &copy, Some, 1.0, &[]);
    assert!(reading.pilot_z > 10.0, "pilot z {}", reading.pilot_z);
    let (_, soft) = &reading.soft_bits[0];
    let known = KnownPayloads::new(&key, &candidates);
    let scores = known.scores(soft);
    assert_eq!(scores[0].payload, payload);
    assert!(payload_tail(soft, scores[0].score) * (candidates.len() as f64) < 1e-9);
    assert!(payload_tail(soft, scores[1].score) * (candidates.len() as f64) > 1e-3);

    // The master against itself: no residual, no mark, no payload.
    let nothing = read_informed(&key, &master, &master, Some, 1.0, &[]);
    assert!(nothing.pilot_z.abs() < 4.0, "pilot z {}", nothing.pilot_z);
    for (_, soft) in &nothing.soft_bits {
        let best = known.scores(soft)[0];
        assert!(payload_tail(soft, best.score) * (candidates.len() as f64) > 1e-3);
    }
}

#[test]
fn a_registration_a_few_milliseconds_off_is_corrected() {
    let key = SecretKey::from_seed(12);
    let payload = 0x0ff5_e7ed_0000_0006;
    let (master, marked) = master_and_marked_copy(&key, payload);
    // The copy starts 6 ms late, and the map given says it does not: the
    // error a room's reverberation puts into an envelope registration.
    let delay = (0.006 * ANALYSIS_RATE as f64) as usize;
    let copy: Vec<f32> = std::iter::repeat_n(0.0, delay).chain(marked).collect();

    let reading = read_informed(&key, &master, &copy, Some, 1.0, &[]);
    assert!(
        (reading.shift_s - 0.006).abs() <= 0.002,
        "shift {} s",
        reading.shift_s
    );
    assert!(
        reading.shift_gain_z >= 1.75,
        "gain {}",
        reading.shift_gain_z
    );
    assert!(reading.pilot_z > 10.0, "pilot z {}", reading.pilot_z);
    let known = KnownPayloads::new(&key, &[payload, 1, 2, 3]);
    let (_, soft) = &reading.soft_bits[0];
    assert_eq!(known.scores(soft)[0].payload, payload);
}
