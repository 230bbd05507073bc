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
    embed(&mut marked, audio.rate, key, payload, Default::default()).unwrap();
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
    // The room model places the copy by its waveform, and needs no shift.
    if reading.room {
        assert!(
            reading.shift_s.abs() <= 0.002,
            "shift {} s",
            reading.shift_s
        );
    } else {
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
    }
    assert!(reading.pilot_z > 10.0, "pilot z {}", reading.pilot_z);
    let known = KnownPayloads::new(&key, &[payload, 1, 2, 3]);
    let (_, soft) = &reading.soft_bits[0];
    assert_eq!(known.scores(soft)[0].payload, payload);
}

#[test]
fn a_copy_played_across_a_reverberant_room_is_read_through_the_room() {
    let key = SecretKey::from_seed(13);
    let payload = 0x0ff5_e7ed_0000_0007;
    let (master, marked) = master_and_marked_copy(&key, payload);
    // A room's response: the direct sound 4 ms late, then a diffuse tail
    // decaying 60 dB in 0.5 s that holds three times the direct energy
    // (a listener about twice the critical distance away).
    let rate = ANALYSIS_RATE as f64;
    let (delay, len) = ((0.004 * rate) as usize, (0.5 * rate) as usize);
    let decay = (-3.0 * std::f64::consts::LN_10 / (0.5 * rate)).exp();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut tail: Vec<f64> = (0..len)
        .map(|k| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let uniform = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            uniform * decay.powi(k as i32)
        })
        .collect();
    let energy: f64 = tail.iter().map(|v| v * v).sum();
    tail.iter_mut().for_each(|v| *v *= (3.0 / energy).sqrt());
    let mut response = vec![0.0f32; delay + len];
    response[delay] = 1.0;
    for (k, v) in tail.iter().enumerate().skip(8) {
        response[delay + k] += *v as f32;
    }
    let played = earmark_dsp::convolve(&marked, &response);
    // A 10 s excerpt from 8 s in, registered as starting 8 s in.
    let start = 8 * ANALYSIS_RATE as usize;
    let leak = &played[start..start + 10 * ANALYSIS_RATE as usize];
    let reading = read_informed(&key, &master, leak, |t| Some(t - 8.0), 1.0, &[]);
    assert!(reading.room, "the room model was not chosen");
    assert!(reading.pilot_z > 4.0, "pilot z {}", reading.pilot_z);
    let others: Vec<u64> = (1..1000u64)
        .map(|k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let known = KnownPayloads::new(&key, &[&[payload][..], &others].concat());
    let (_, soft) = &reading.soft_bits[0];
    let best = known.scores(soft)[0];
    assert_eq!(best.payload, payload);
    assert!(payload_tail(soft, best.score) * 1000.0 < 1e-6);
}
