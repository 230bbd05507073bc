//! Informed tracing: which work a leak comes from (landmark index), where
//! it sits in the stored master (registration), and the mark read from what
//! the master does not explain.

use crate::Wait;
use std::path::Path;

use earmark_align::landmarks::{landmarks, LandmarkIndex};
use earmark_align::{register, LandmarkQuery, Match, Registration};
use earmark_audio_io::{Audio, AudioReader};
use earmark_engine::{read_informed, InformedReading};
use earmark_keys::SecretKey;
use earmark_ledger::Work;

use crate::{Home, Result};

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
/// [`MAX_INFORMED_S`] (memory stays bounded either way). A note says when
/// the file ended before the end it announces.
pub(crate) fn leak_signal(path: &Path, notes: &mut Vec<String>) -> Result<Option<Vec<f32>>> {
    let mut reader = AudioReader::open(path)?;
    let rate = reader.rate();
    let mut resampler = earmark_dsp::StreamResampler::new(rate, earmark_align::RATE);
    let limit = (MAX_INFORMED_S * earmark_align::RATE as f64) as usize;
    let mut out = Vec::new();
    while let Some(chunk) = reader.next_chunk()? {
        out.extend(resampler.push(&earmark_dsp::downmix(&chunk)));
        if out.len() > limit {
            return Ok(None);
        }
    }
    out.extend(resampler.finish());
    notes.extend(reader.ended_early());
    Ok(Some(out))
}

/// The landmark index as stored, or, if the file is damaged, rebuilt from
/// the masters store: every audio work whose master is kept is indexed
/// again. A work whose master was forgotten cannot be re-indexed; it is
/// then traced blind, as it would be anyway without its master.
/// The flag says whether it was rebuilt.
fn current_index(home: &Home) -> Result<(LandmarkIndex, bool)> {
    let bytes = home.inner.read_landmarks()?;
    if let Some(index) = LandmarkIndex::from_bytes(&bytes) {
        return Ok((index, false));
    }
    let mut index = LandmarkIndex::default();
    for work in home.ledger().works().wait()? {
        if work.kind != earmark_ledger::AUDIO {
            continue;
        }
        let Some(path) = home.verified_master(&work)? else {
            continue;
        };
        let master = analysis_signal(&earmark_audio_io::read(&path)?);
        index.insert(work.id as u32, &landmarks(&master));
    }
    Ok((index, true))
}

/// Adds the landmarks of work `work_id`'s master (its analysis signal) to
/// the home's index, rebuilding the index first if it is damaged.
pub(crate) fn index_master(home: &Home, work_id: i64, master: &[f32]) -> Result<()> {
    let found = landmarks(master);
    // Rebuilt outside the lock (it decodes masters); a concurrent writer's
    // intact index wins over the rebuild.
    let rebuilt = match LandmarkIndex::from_bytes(&home.inner.read_landmarks()?) {
        Some(_) => None,
        None => Some(current_index(home)?.0),
    };
    home.inner.update_landmarks(|bytes| {
        let mut index = LandmarkIndex::from_bytes(&bytes)
            .or(rebuilt)
            .unwrap_or_default();
        index.insert(work_id as u32, &found);
        index.to_bytes()
    })?;
    Ok(())
}

/// Takes work `work_id`'s landmarks out of the home's index: a `mark` that
/// indexed a new work and then failed to register it.
pub(crate) fn unindex_master(home: &Home, work_id: i64) -> Result<()> {
    home.inner
        .update_landmarks(|bytes| match LandmarkIndex::from_bytes(&bytes) {
            Some(mut index) => {
                index.remove(work_id as u32);
                index.to_bytes()
            }
            None => bytes,
        })?;
    Ok(())
}

/// The registered work `leak` (analysis signal) comes from, by landmarks,
/// and whether the index had to be rebuilt from the masters to say so.
pub(crate) fn identify(home: &Home, leak: &[f32]) -> Result<(Option<Match>, bool)> {
    let (index, rebuilt) = current_index(home)?;
    if index.is_empty() {
        return Ok((None, rebuilt));
    }
    Ok((index.identify(&LandmarkQuery::new(leak)), rebuilt))
}

/// The parts of the leak decoded on their own (see [`Registration::parts`]).
pub(crate) fn parts(registration: &Registration) -> Vec<earmark_engine::Segment> {
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

/// Why a leak was not read through a master.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotRead {
    /// The master was forgotten (or never kept).
    #[error("the master of work {0} is not in the store")]
    NoMaster(i64),
    /// The leak does not register against it.
    #[error(transparent)]
    Register(#[from] earmark_align::RegisterError),
    /// It registers loosely (the correlation threshold is low, to let
    /// heavily degraded leaks through), but no stretch of it plays the
    /// master.
    #[error("no stretch of the leak plays the master ({0:.1} s matched, at least {min} s needed)", min = earmark_align::MIN_LEAK_S)]
    Unmatched(f64),
}

impl NotRead {
    /// Whether this says the leak is not that work at all (rather than
    /// that the question could not be asked).
    pub(crate) fn is_mismatch(&self) -> bool {
        matches!(
            self,
            NotRead::Register(earmark_align::RegisterError::NoMatch(_)) | NotRead::Unmatched(_)
        )
    }
}

/// The analysis signal of `work`'s stored master.
fn master_signal(home: &Home, work: &Work) -> Result<std::result::Result<Vec<f32>, NotRead>> {
    let Some(path) = home.verified_master(work)? else {
        return Ok(Err(NotRead::NoMaster(work.id)));
    };
    Ok(Ok(analysis_signal(&earmark_audio_io::read(&path)?)))
}

/// Reads `leak` (analysis signal) against the stored master of `work`.
/// `Ok(Err(reason))` when informed reading is impossible (no master kept, or
/// the leak does not register), so the caller falls back to blind.
pub(crate) fn read(
    home: &Home,
    work: &Work,
    leak: &[f32],
    engine_key: &SecretKey,
) -> Result<std::result::Result<Informed, NotRead>> {
    Ok(match master_signal(home, work)? {
        Ok(master) => read_through_master(&master, leak, engine_key).map_err(NotRead::from),
        Err(e) => Err(e),
    })
}

/// Whether `registration` places the leak in its master: some stretch of
/// at least [`earmark_align::MIN_LEAK_S`] plays it.
pub(crate) fn places(registration: &Registration) -> std::result::Result<(), NotRead> {
    let matched = registration.matched_s();
    if matched < earmark_align::MIN_LEAK_S {
        return Err(NotRead::Unmatched(matched));
    }
    Ok(())
}

/// Whether `leak` registers against `work`'s stored master and is placed
/// in it ([`places`]): the registration's time scale (master seconds per
/// leak second), or why not.
pub(crate) fn registers(
    home: &Home,
    work: &Work,
    leak: &[f32],
) -> Result<std::result::Result<f64, NotRead>> {
    Ok(match master_signal(home, work)? {
        Ok(master) => register(&master, leak)
            .map_err(NotRead::from)
            .and_then(|r| places(&r).map(|()| r.time_scale)),
        Err(e) => Err(e),
    })
}

/// Registers `leak` against `master` (both analysis signals, mono at 8 kHz)
/// and reads the mark under `engine_key` from what the master does not
/// explain: the whole leak, and each part the registration matched on its
/// own. What `trace` reads with a stored master, and what the benchmark's
/// informed trial reads.
pub fn read_through_master(
    master: &[f32],
    leak: &[f32],
    engine_key: &SecretKey,
) -> std::result::Result<Informed, earmark_align::RegisterError> {
    let registration = register(master, leak)?;
    let reading = read_informed(
        engine_key,
        master,
        leak,
        |t| registration.leak_time(t),
        registration.freq_scale,
        &parts(&registration),
    );
    Ok(Informed {
        reading,
        registration,
    })
}
