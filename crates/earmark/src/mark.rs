//! Marking: one copy per recipient, each carrying its sealed identifier and
//! codeword, delivered and recorded all or nothing.

use crate::Wait;
use std::path::{Path, PathBuf};

use earmark_audio_io::Audio;
use earmark_codes::{Identifier, IdentifierCipher, TardosCode};
use earmark_engine::layout::FINGERPRINT_POSITIONS;
use earmark_engine::{payload_tail, EmbedReport, KnownPayloads, MarkSettings, SearchGrid};
use earmark_keys::{Label, SecretKey};
use earmark_ledger::{CopyRecord, LedgerError, Recipient, WorkSpec};
use rayon::prelude::*;
use serde::Serialize;

use crate::home::{copy_file_name, file_hash, partial_file_name, slug};
use crate::sink::{CopySink, Destination};
use crate::{Error, Home, Progress, Result, Selection};

/// Label of the engine key every copy of a home is marked with: one key, so
/// that `trace` needs one extraction whatever the number of works; the
/// payload (sealed by `earmark-codes`) says which work and recipient.
pub const ENGINE_KEY_LABEL: Label = Label("earmark/v1/home/engine-key");

/// Frames handed to the embedder at a time while a copy streams out of the
/// shared master: small next to any master, large enough to amortise calls.
const CHUNK_FRAMES: usize = 1 << 16;

/// Output formats of `mark`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// WAV, the input's sample format.
    Wav,
    /// FLAC.
    Flac,
    /// MP3 at 192 kbit/s (LAME, through ffmpeg).
    Mp3,
    /// Opus at 64 kbit/s in Ogg (through ffmpeg).
    Opus,
}

impl Format {
    /// The format whose file extension is `extension`.
    pub fn from_extension(extension: &str) -> Option<Format> {
        [Format::Wav, Format::Flac, Format::Mp3, Format::Opus]
            .into_iter()
            .find(|f| f.extension() == extension)
    }

    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Wav => "wav",
            Format::Flac => "flac",
            Format::Mp3 => "mp3",
            Format::Opus => "opus",
        }
    }

    /// ffmpeg's encoder options for the lossy formats.
    fn encoder(self) -> Option<&'static [&'static str]> {
        match self {
            Format::Mp3 => Some(&["-c:a", "libmp3lame", "-b:a", "192k"]),
            // libopus takes 8–48 kHz but not 22.05 or 44.1: encode at its native 48 kHz.
            Format::Opus => Some(&["-ar", "48000", "-c:a", "libopus", "-b:a", "64k"]),
            Format::Wav | Format::Flac => None,
        }
    }
}

/// What `mark` is asked to do.
#[derive(Clone, Debug)]
pub struct MarkRequest {
    /// The recording to mark.
    pub work: PathBuf,
    /// Whom it is for.
    pub recipients: Selection,
    /// Where the copies go: a directory (created if missing) or a sink.
    pub out: Destination,
    /// Output format.
    pub format: Format,
    /// Title recorded with the work.
    pub title: Option<String>,
    /// Profile and strength of every copy's mark.
    pub settings: MarkSettings,
}

/// One delivered copy.
#[derive(Clone, Debug, Serialize)]
pub struct CopyReport {
    /// The recipient's name.
    pub recipient: String,
    /// Recipient id.
    pub recipient_id: i64,
    /// Where the copy is.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// SHA-256 of the file, hex.
    pub output_hash: String,
    /// The sealed identifier it carries (hex).
    pub payload: String,
    /// Seconds of it whose sound carries the mark.
    pub marked_s: f64,
}

/// What `mark` delivered.
#[derive(Clone, Debug, Serialize)]
pub struct MarkReport {
    /// The work's ledger id.
    pub work: i64,
    /// Its title, else the file's stem.
    pub title: String,
    /// Where the copies are.
    pub out: PathBuf,
    /// One per recipient.
    pub copies: Vec<CopyReport>,
    /// Set when the recording is too short or quiet for its mark to be
    /// read back from a copy alone: its copies are traced against the
    /// master.
    pub warning: Option<String>,
}

/// Where a set of copies goes and how its files are named.
#[derive(Clone, Copy)]
struct CopyNames<'a> {
    sink: &'a dyn CopySink,
    /// The work's file stem, slugged.
    stem: &'a str,
    format: Format,
    settings: MarkSettings,
}

/// What one copy's mark carries, and how it is made.
struct Mark<'a> {
    key: &'a SecretKey,
    payload: u64,
    fingerprint: &'a [bool],
    settings: MarkSettings,
}

/// One copy written and verified, not yet in place or recorded.
struct Prepared {
    recipient: Recipient,
    payload: u64,
    embedded: EmbedReport,
    partial: PathBuf,
    target: PathBuf,
    hash: String,
}

/// How many times `mark` makes its copies again when another command
/// registered a work under the id it had reserved for a new one.
const ATTEMPTS: usize = 3;

impl Home {
    /// Gives each selected recipient their own marked copy of a recording.
    ///
    /// All or nothing: every copy is rendered, written beside its target
    /// and read back before any is put in place, and all are put in place
    /// and recorded in one ledger transaction, which also registers the
    /// work if it is new. On any failure no work is registered, no copy is
    /// recorded and no partial file remains; a rerun completes the set.
    /// The recording is read once, into the home's master store, and
    /// decoded from there, so what is marked is exactly what was hashed.
    /// The decoded master is shared read-only; each copy streams out of it,
    /// so memory stays near one decoded master however many recipients and
    /// threads there are.
    ///
    /// The work runs on a blocking thread of the caller's tokio runtime;
    /// [`Progress::cancelled`] stops it.
    pub async fn mark(
        &self,
        request: &MarkRequest,
        progress: std::sync::Arc<dyn Progress>,
    ) -> Result<MarkReport> {
        let (home, request) = (self.clone(), request.clone());
        let stem = request
            .work
            .file_stem()
            .map_or_else(|| "work".to_string(), |s| slug(&s.to_string_lossy()));
        crate::blocking(move || home.mark_blocking(&request, &stem, &*progress)).await
    }

    /// Marks `request`, naming the copies after `stem` (a slug).
    pub(crate) fn mark_blocking(
        &self,
        request: &MarkRequest,
        stem: &str,
        progress: &dyn Progress,
    ) -> Result<MarkReport> {
        let recipients = self.select(&request.recipients).wait()?;
        request.out.sink().check(self.root())?;
        require_regular_file(&request.work)?;
        let master = self
            .inner
            .ingest_master(&request.work)
            .map_err(|e| match e {
                LedgerError::SourceChanged(path) => {
                    Error::Audio(earmark_audio_io::AudioError::Corrupt {
                        path: path.display().to_string(),
                        detail: "it changed while it was being read; nothing was marked".into(),
                    })
                }
                other => other.into(),
            })?;
        let marked = self.mark_master(request, stem, &recipients, &master, progress);
        if marked.is_err() && master.fresh {
            self.forget_unregistered_master(&master.content_hash);
        }
        marked
    }

    /// Removes a master this run stored, unless a work now holds it (a
    /// concurrent `mark` of the same recording may have registered it).
    pub(crate) fn forget_unregistered_master(&self, content_hash: &str) {
        if let Ok(None) = self.ledger().work_by_content(content_hash).wait() {
            let _ = self.inner.forget_master(content_hash);
        }
    }

    fn mark_master(
        &self,
        request: &MarkRequest,
        stem: &str,
        recipients: &[Recipient],
        master: &earmark_ledger::Ingested,
        progress: &dyn Progress,
    ) -> Result<MarkReport> {
        let ledger = self.ledger();
        let audio = earmark_audio_io::read(&master.path).map_err(|e| e.said_of(&request.work))?;
        tracing::info!(
            work = %request.work.display(),
            seconds = audio.duration_s(),
            rate_hz = audio.rate,
            channels = audio.channels.len(),
            recipients = recipients.len(),
            "read the master"
        );
        let spec = WorkSpec {
            content_hash: master.content_hash.clone(),
            title: request.title.clone(),
            kind: earmark_ledger::AUDIO,
            duration_s: audio.duration_s(),
            rate: audio.rate,
            channels: audio.channels.len(),
            words: None,
        };
        let sink = request.out.sink();
        sink.prepare()?;
        let analysis = crate::informed::analysis_signal(&audio);
        for attempt in 1..=ATTEMPTS {
            let reservation = ledger.reserve_work(&spec).wait()?;
            let work = &reservation.work;
            if work.kind != earmark_ledger::AUDIO {
                return Err(Error::Usage(format!(
                    "{} is already registered as a transcript (work {})",
                    request.work.display(),
                    work.id
                )));
            }
            tracing::info!(work = work.id, "marking each recipient's copy");
            let prepared = self.prepare_copies(
                work.id,
                &audio,
                recipients,
                &CopyNames {
                    sink: &*sink,
                    stem,
                    format: request.format,
                    settings: request.settings,
                },
                progress,
            )?;
            if progress.cancelled() {
                for p in &prepared {
                    let _ = std::fs::remove_file(&p.partial);
                }
                return Err(Error::Cancelled);
            }
            // Its landmarks let `trace` name the work from a leak alone.
            crate::informed::index_master(self, work.id, &analysis)?;
            let ext = request.format.extension();
            let copies: Vec<CopyRecord> = prepared
                .iter()
                .map(|p| CopyRecord {
                    work_id: work.id,
                    recipient_id: p.recipient.id,
                    payload: format!("{:016x}", p.payload),
                    output_hash: p.hash.clone(),
                    format: ext.to_string(),
                    path: p.target.display().to_string(),
                    created_at: String::new(),
                })
                .collect();
            let recorded = ledger
                .record_delivery(&reservation, &copies, || deliver(&prepared, &*sink))
                .wait();
            let work = match recorded {
                Ok(work) => work,
                Err(e) => {
                    for p in &prepared {
                        let _ = std::fs::remove_file(&p.partial);
                    }
                    if reservation.new {
                        let _ = crate::informed::unindex_master(self, work.id);
                    }
                    if matches!(e, LedgerError::Conflict(_)) && attempt < ATTEMPTS {
                        tracing::info!(
                            work = work.id,
                            "the work id was taken meanwhile; marking again"
                        );
                        continue;
                    }
                    return Err(e.into());
                }
            };
            let warning = prepared.first().and_then(|p| p.embedded.shortfall());
            return Ok(MarkReport {
                warning,
                work: work.id,
                title: work.title.clone().unwrap_or_else(|| stem.to_string()),
                out: sink.location(),
                copies: prepared
                    .into_iter()
                    .map(|p| CopyReport {
                        recipient: p.recipient.name,
                        recipient_id: p.recipient.id,
                        path: p.target,
                        format: request.format,
                        output_hash: p.hash,
                        payload: format!("{:016x}", p.payload),
                        marked_s: p.embedded.marked_s,
                    })
                    .collect(),
            });
        }
        unreachable!("the last attempt returns")
    }

    /// Renders, writes and reads back every recipient's copy of work
    /// `work_id` under its partial name; all of them, or none (the partial
    /// files of a failed set are removed).
    fn prepare_copies(
        &self,
        work_id: i64,
        audio: &Audio,
        recipients: &[Recipient],
        out: &CopyNames,
        progress: &dyn Progress,
    ) -> Result<Vec<Prepared>> {
        let CopyNames {
            sink,
            stem,
            format,
            settings,
        } = *out;
        let engine_key = self.inner.master.derive(ENGINE_KEY_LABEL);
        let cipher = IdentifierCipher::for_home(&self.inner.master, &self.inner.id);
        let code = TardosCode::new(&self.inner.master, work_id as u32, FINGERPRINT_POSITIONS);
        let ext = format.extension();
        progress.start("marking", recipients.len() as u64);
        let prepared: Vec<Result<Prepared>> = recipients
            .par_iter()
            .map(|r| {
                let id = Identifier {
                    work: work_id as u32,
                    recipient: r.id as u32,
                };
                let payload = cipher
                    .seal(id)
                    .map_err(|e| Error::Recipients(e.to_string()))?;
                let target = sink.target(&copy_file_name(stem, r, ext));
                let partial = sink.staging_path(&partial_file_name(stem, r, ext));
                let fingerprint = code.codeword(r.id as u32);
                let mark = Mark {
                    key: &engine_key,
                    payload,
                    fingerprint: &fingerprint,
                    settings,
                };
                let result = prepare_copy(audio, &mark, format, &partial, progress)
                    .and_then(|embedded| Ok((embedded, file_hash(&partial)?)));
                progress.advance(1);
                match result {
                    Ok((embedded, hash)) => Ok(Prepared {
                        recipient: r.clone(),
                        payload,
                        embedded,
                        partial,
                        target,
                        hash,
                    }),
                    Err(e) => {
                        let _ = std::fs::remove_file(&partial);
                        Err(e)
                    }
                }
            })
            .collect();
        progress.finish();
        if let Some(position) = prepared.iter().position(Result::is_err) {
            for p in prepared.iter().flatten() {
                let _ = std::fs::remove_file(&p.partial);
            }
            let mut prepared = prepared;
            return Err(prepared.swap_remove(position).err().expect("an error"));
        }
        Ok(prepared.into_iter().map(|p| p.expect("checked")).collect())
    }
}

/// Publishes every prepared copy through `sink`. If one cannot be, those
/// already published are taken back to their staging paths, so the
/// caller's rollback leaves nothing delivered.
fn deliver(prepared: &[Prepared], sink: &dyn CopySink) -> Result<(), LedgerError> {
    for (k, p) in prepared.iter().enumerate() {
        if let Err(source) = sink.publish(&p.partial, &p.target) {
            for q in &prepared[..k] {
                sink.withdraw(&q.target, &q.partial);
            }
            return Err(LedgerError::Io {
                path: p.target.clone(),
                source,
            });
        }
    }
    sink.sync();
    Ok(())
}

/// Refuses anything but a regular file before it is read: a device or a
/// FIFO would be hashed forever.
pub(crate) fn require_regular_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|source| {
        Error::Audio(earmark_audio_io::AudioError::Open {
            path: path.display().to_string(),
            source,
        })
    })?;
    if !meta.is_file() {
        return Err(Error::Audio(earmark_audio_io::AudioError::Unsupported {
            path: path.display().to_string(),
            detail: "not a regular file".into(),
        }));
    }
    Ok(())
}

/// Streams a copy of `audio` carrying `mark` into
/// `partial` (fsynced) and checks that it reads back before it may count as
/// delivered. Lossy formats are marked, then encoded, then checked: the
/// check reads the encoded file, from the copy alone where the recording
/// is long and loud enough for that, else through the master.
fn prepare_copy(
    audio: &Audio,
    mark: &Mark,
    format: Format,
    partial: &Path,
    progress: &dyn Progress,
) -> Result<EmbedReport> {
    let embedded = match format.encoder() {
        None => stream_marked(audio, mark, partial, progress)?,
        Some(options) => {
            let dir = partial.parent().unwrap_or(Path::new("."));
            let wav = tempfile::Builder::new()
                .prefix(".earmark-encode-")
                .suffix(".wav")
                .tempfile_in(dir)
                .map_err(|e| Error::write_failed(dir.display(), e))?;
            let embedded = stream_marked(audio, mark, wav.path(), progress)?;
            encode_lossy(wav.path(), audio.channels.len(), options, partial)?;
            embedded
        }
    };
    let read_back = if embedded.blind_readable {
        reads_back_blind(mark, partial)?
    } else {
        reads_back_through_master(audio, mark, partial)?
    };
    if !read_back {
        return Err(Error::write(format!(
            "the copy at {} did not read back; nothing recorded",
            partial.display()
        )));
    }
    Ok(embedded)
}

/// Whether the mark in `copy` decodes to `mark`'s payload from the copy
/// alone.
fn reads_back_blind(mark: &Mark, copy: &Path) -> Result<bool> {
    let detection = {
        let mut reader = earmark_audio_io::AudioReader::open(copy)?;
        let mut extractor = earmark_engine::Extractor::new(
            reader.rate(),
            reader.channels(),
            mark.key,
            SearchGrid::exact(),
        )?;
        while let Some(chunk) = reader.next_chunk()? {
            extractor.push(&chunk);
        }
        extractor.finish()
    };
    Ok(detection.found.first().map(|f| f.payload) == Some(mark.payload))
}

/// How improbable a random payload's score must be for a copy read
/// through its master to count as reading back (the same test `trace`'s
/// informed identifier makes, held to far more than any accusation).
const READ_BACK_TAIL: f64 = 1e-9;

/// Whether `copy`, registered against `audio` and read through it, carries
/// `mark`'s payload: the whole copy's soft bits score it beyond what a
/// random payload reaches with probability [`READ_BACK_TAIL`].
fn reads_back_through_master(audio: &Audio, mark: &Mark, copy: &Path) -> Result<bool> {
    let master = crate::informed::analysis_signal(audio);
    let copy = crate::informed::analysis_signal(&earmark_audio_io::read(copy)?);
    let Ok(informed) = crate::informed::read_through_master(&master, &copy, mark.key) else {
        return Ok(false);
    };
    let own = KnownPayloads::new(mark.key, &[mark.payload]);
    let reading = &informed.reading;
    Ok(reading
        .soft_bits
        .iter()
        .take(reading.whole_entries.max(1))
        .any(|(_, soft)| payload_tail(soft, own.scores(soft)[0].score) < READ_BACK_TAIL))
}

/// Embeds chunk by chunk from the shared master into `output` (WAV or FLAC
/// by its extension, the master's sample format), fsynced.
fn stream_marked(
    audio: &Audio,
    mark: &Mark,
    output: &Path,
    progress: &dyn Progress,
) -> Result<EmbedReport> {
    let mut embedder = earmark_engine::Embedder::new(
        audio.rate,
        audio.channels.len(),
        mark.key,
        mark.payload,
        mark.settings,
    )?
    .with_fingerprint(mark.fingerprint)?;
    let mut writer = earmark_audio_io::AudioWriter::create(
        output,
        audio.rate,
        audio.channels.len(),
        audio.sample_format,
    )?;
    let frames = audio.frames();
    let mut start = 0;
    while start < frames {
        if progress.cancelled() {
            return Err(Error::Cancelled);
        }
        let end = (start + CHUNK_FRAMES).min(frames);
        let chunk: Vec<Vec<f32>> = audio
            .channels
            .iter()
            .map(|c| c[start..end].to_vec())
            .collect();
        writer.write_chunk(&embedder.push(&chunk))?;
        start = end;
    }
    let (tail, embedded) = embedder.finish()?;
    writer.write_chunk(&tail)?;
    writer.finish()?;
    std::fs::File::open(output)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::write_failed(output.display(), e))?;
    Ok(embedded)
}

/// Encodes the WAV at `input` to `output` with ffmpeg's `options`; the
/// output is fsynced.
fn encode_lossy(input: &Path, channels: usize, options: &[&str], output: &Path) -> Result<()> {
    let result = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(input)
        // The channel count fixes the layout, which float WAVs may leave unset.
        .args(["-ac", &channels.to_string()])
        .args(options)
        .arg(output)
        .output()
        .map_err(|e| {
            Error::MissingTool(format!(
                "MP3 and Opus copies need ffmpeg ({e}): install the Debian package `ffmpeg`"
            ))
        })?;
    if !result.status.success() {
        return Err(Error::write(format!(
            "ffmpeg could not encode {}: {}",
            output.display(),
            String::from_utf8_lossy(&result.stderr).trim()
        )));
    }
    std::fs::File::open(output)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::write_failed(output.display(), e))
}
