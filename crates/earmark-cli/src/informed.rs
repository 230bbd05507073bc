//! Informed tracing: which work a leak comes from (landmark index), where
//! it sits in the stored master (registration), and the mark read from what
//! the master does not explain.

use std::path::Path;

use earmark_align::landmarks::{landmarks, LandmarkIndex};
use earmark_align::{register, LandmarkQuery, Match, Registration};
use earmark_audio_io::{Audio, AudioReader};
use earmark_engine::{read_informed, InformedReading};
use earmark_keys::SecretKey;
use earmark_ledger::{Home, Work};

use crate::exit::Failure;

/// Longest leak traced with its master, seconds: registration holds the
/// leak in memory at 8 kHz and warps it frame by frame. Longer leaks are
/// traced blind.
pub const MAX_INFORMED_S: f64 = 1200.0;

/// Mono downmix at the analysis rate (8 kHz): what registration and the
/// informed reading look at.
pub fn analysis_signal(audio: &Audio) -> Vec<f32> {
    earmark_align::analysis_signal(&audio.channels, audio.rate)
}

/// The leak's analysis signal, streamed; `None` if it is longer than
/// [`MAX_INFORMED_S`] (memory stays bounded either way).
pub fn leak_signal(path: &Path) -> Result<Option<Vec<f32>>, Failure> {
    let mut reader = AudioReader::open(path).map_err(Failure::audio)?;
    let rate = reader.rate();
    let mut resampler = earmark_dsp::StreamResampler::new(rate, earmark_align::RATE);
    let limit = (MAX_INFORMED_S * earmark_align::RATE as f64) as usize;
    let mut out = Vec::new();
    while let Some(chunk) = reader.next_chunk().map_err(Failure::audio)? {
        let scale = 1.0 / chunk.len().max(1) as f32;
        let mono: Vec<f32> = (0..chunk.first().map_or(0, Vec::len))
            .map(|i| chunk.iter().map(|c| c[i]).sum::<f32>() * scale)
            .collect();
        out.extend(resampler.push(&mono));
        if out.len() > limit {
            return Ok(None);
        }
    }
    out.extend(resampler.finish());
    Ok(Some(out))
}

/// Adds the landmarks of work `work_id`'s master (its analysis signal) to
/// the home's index.
pub fn index_master(home: &Home, work_id: i64, master: &[f32]) -> Result<(), Failure> {
    let found = landmarks(master);
    home.update_landmarks(|bytes| {
        // An unreadable index is rebuilt from what this run adds; the
        // masters store keeps what is needed to re-index the rest.
        let mut index = LandmarkIndex::from_bytes(&bytes).unwrap_or_default();
        index.insert(work_id as u32, &found);
        index.to_bytes()
    })
    .map_err(Failure::ledger)
}

/// The registered work `leak` (analysis signal) comes from, by landmarks.
pub fn identify(home: &Home, leak: &[f32]) -> Result<Option<Match>, Failure> {
    let bytes = home.read_landmarks().map_err(Failure::ledger)?;
    let Some(index) = LandmarkIndex::from_bytes(&bytes) else {
        return Err(Failure::ledger(earmark_ledger::LedgerError::Io {
            path: home.root.join("landmarks.idx"),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the landmark index is damaged; mark any work again to rebuild it",
            ),
        }));
    };
    if index.is_empty() {
        return Ok(None);
    }
    Ok(index.identify(&LandmarkQuery::new(leak)))
}

/// The parts of the leak decoded on their own (see [`Registration::parts`]).
pub fn parts(registration: &Registration) -> Vec<earmark_engine::Segment> {
    registration
        .parts()
        .into_iter()
        .map(|(start_s, end_s)| earmark_engine::Segment { start_s, end_s })
        .collect()
}

/// A leak registered against its master and read through it.
pub struct Informed {
    /// The mark read from the residual.
    pub reading: InformedReading,
    /// Where the leak sits in the master.
    pub registration: Registration,
}

/// Reads `leak` (analysis signal) against the stored master of `work`.
/// `Ok(Err(reason))` when informed reading is impossible (no master kept, or
/// the leak does not register), so the caller falls back to blind.
pub fn read(
    home: &Home,
    work: &Work,
    leak: &[f32],
    engine_key: &SecretKey,
) -> Result<Result<Informed, String>, Failure> {
    let path = home.master_path(&work.content_hash);
    if !path.is_file() {
        return Ok(Err(format!(
            "the master of work {} is not in the store",
            work.id
        )));
    }
    let audio = earmark_audio_io::read(&path).map_err(Failure::audio)?;
    let master = analysis_signal(&audio);
    let registration = match register(&master, leak) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let reading = read_informed(
        engine_key,
        &master,
        leak,
        |t| registration.leak_time(t),
        registration.freq_scale,
        &parts(&registration),
    );
    Ok(Ok(Informed {
        reading,
        registration,
    }))
}
