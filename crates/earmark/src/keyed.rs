//! The keyed, home-less operations: key files, embedding a payload into a
//! file, and reading it back.

use std::io::Write;
use std::path::Path;

use earmark_engine::{Detection, EmbedReport, MarkSettings, SearchGrid};
use earmark_keys::SecretKey;

use crate::{Error, Result};

/// Creates a new key file, mode 0600; refuses to overwrite an existing one.
pub fn create_key_file(path: &Path) -> Result<()> {
    let key = SecretKey::generate();
    let text = key.to_file_text();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::key(format!(
                "{} already exists; refusing to overwrite a key",
                path.display()
            ))
        } else {
            Error::key_failed(format_args!("cannot create {}", path.display()), e)
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::key_failed(format_args!("cannot write {}", path.display()), e))
}

/// Reads a key file; its text is zeroized once parsed.
pub fn load_key_file(path: &Path) -> Result<SecretKey> {
    let text = std::fs::read(path).map_err(|e| {
        Error::key_failed(format_args!("cannot read key file {}", path.display()), e)
    })?;
    let text = zeroize::Zeroizing::new(text);
    let text = std::str::from_utf8(&text)
        .map_err(|_| Error::key(format!("{} is not an earmark key file", path.display())))?;
    SecretKey::from_file_text(text).map_err(|e| Error::key(format!("{}: {e}", path.display())))
}

/// A payload given as 16 hexadecimal digits (an optional `0x` before them).
pub fn parse_payload(text: &str) -> Result<u64> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.len() != 16 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::Usage(format!(
            "payload must be exactly 16 hexadecimal digits (64 bits), got '{text}'"
        )));
    }
    u64::from_str_radix(digits, 16).map_err(|e| Error::Usage(e.to_string()))
}

/// Decoded chunks in flight between the decoding thread and the embedder.
/// The embedder marks several segments side by side and takes no input
/// meanwhile, so the decoder must be free to run a whole batch ahead (32
/// chunks of 64k frames: 48 s at 44.1 kHz, 16 MB of stereo); with 4 the
/// embedding threads waited on decoding after every batch.
const CHUNKS_IN_FLIGHT: usize = 32;
/// Marked batches in flight to the writer: each is several segments long,
/// so two keep it busy and a lagging disk cannot pile up memory.
const BATCHES_IN_FLIGHT: usize = 2;
/// Frames gathered from decoded packets before they are handed over: a
/// packet (about a thousand frames of WAV) is too little to be worth a
/// thread switch.
const HANDOVER_FRAMES: usize = 1 << 16;

/// Embeds `payload` into `input`, writing `output` (WAV or FLAC, the
/// input's rate, channels and length). Streamed: memory stays bounded by
/// one processing segment and a few decoded chunks (FLAC output is encoded
/// whole at the end). Decoding runs on a thread of its own, beside the
/// embedder and the writer.
pub fn embed_file(
    input: &Path,
    output: &Path,
    key: &SecretKey,
    payload: u64,
    settings: MarkSettings,
    progress: &dyn crate::Progress,
) -> Result<EmbedReport> {
    let reader = earmark_audio_io::AudioReader::open(input)?;
    let mut seconds =
        crate::AudioSeconds::start(progress, "embedding", reader.rate(), reader.frames_hint());
    let mut embedder =
        earmark_engine::Embedder::new(reader.rate(), reader.channels(), key, payload, settings)?;
    let writer = earmark_audio_io::AudioWriter::create(
        output,
        reader.rate(),
        reader.channels(),
        reader.sample_format(),
    )?;
    let (sender, chunks) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    // Buffers go back upstream once used (input chunks to the decoder,
    // marked output to the embedder) so that memory already faulted in is
    // refilled: fresh chunks cost the kernel a zeroed page per 4 kB, which
    // was a sixth of the command's time. Never waited on: a full channel
    // just drops the buffer.
    let (used_sender, used) = std::sync::mpsc::sync_channel::<Vec<Vec<f32>>>(CHUNKS_IN_FLIGHT);
    let (written_sender, written) =
        std::sync::mpsc::sync_channel::<Vec<Vec<f32>>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|scope| -> Result<EmbedReport> {
        let decoding = scope.spawn(move || -> Result<()> {
            let mut reader = reader;
            let mut gathered: Vec<Vec<f32>> = Vec::new();
            loop {
                if let Ok(chunk) = used.try_recv() {
                    reader.recycle(chunk);
                }
                let next = reader.next_chunk()?;
                let done = next.is_none();
                if let Some(chunk) = next {
                    if gathered.is_empty() && chunk[0].len() >= HANDOVER_FRAMES {
                        // Already a whole handover: passed on as it is.
                        if sender.send(chunk).is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                    if gathered.is_empty() {
                        // Room for a whole handover, so that gathering never
                        // reallocates and copies.
                        gathered = chunk
                            .iter()
                            .map(|part| Vec::with_capacity(HANDOVER_FRAMES + part.len()))
                            .collect();
                    }
                    for (all, part) in gathered.iter_mut().zip(chunk) {
                        all.extend_from_slice(&part);
                    }
                }
                let full = gathered.first().is_some_and(|c| c.len() >= HANDOVER_FRAMES);
                if (full || done)
                    && !gathered.is_empty()
                    && sender.send(std::mem::take(&mut gathered)).is_err()
                {
                    return Ok(()); // the embedding side failed and stopped listening
                }
                if done {
                    return Ok(());
                }
            }
        });
        // `None` ends the output; a writer whose channel closes before it
        // is dropped unfinished, which removes its temporary file.
        let (marked_sender, marked) =
            std::sync::mpsc::sync_channel::<Option<Vec<Vec<f32>>>>(BATCHES_IN_FLIGHT);
        let writing = scope.spawn(move || -> Result<bool> {
            let mut writer = writer;
            for message in marked {
                match message {
                    Some(chunk) => {
                        writer.write_chunk(&chunk)?;
                        let _ = written_sender.try_send(chunk);
                    }
                    None => {
                        // Nothing records this file: like other audio tools,
                        // embed does not wait for the disk.
                        writer.finish_unsynced()?;
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        });
        // Each side stops when the other hangs up: a failed writer drops
        // its receiver, and breaking out of this loop drops the decoder's.
        let mut writer_gone = false;
        for chunk in chunks {
            if let Ok(output) = written.try_recv() {
                embedder.recycle(output);
            }
            let marked = embedder.push(&chunk);
            seconds.add(chunk.first().map_or(0, Vec::len));
            let _ = used_sender.try_send(chunk);
            if marked.first().is_none_or(Vec::is_empty) {
                embedder.recycle(marked);
                continue;
            }
            if marked_sender.send(Some(marked)).is_err() {
                writer_gone = true;
                break;
            }
        }
        drop(used_sender);
        let decoded = decoding.join().expect("the decoding thread does not panic");
        let report = if writer_gone {
            None
        } else {
            match decoded.and_then(|()| Ok(embedder.finish()?)) {
                Ok((tail, report)) => {
                    // A failed send means the writer failed: its join says why.
                    let _ = marked_sender.send(Some(tail));
                    let _ = marked_sender.send(None);
                    Some(Ok(report))
                }
                Err(e) => Some(Err(e)),
            }
        };
        drop(marked_sender);
        let written = writing.join().expect("the writing thread does not panic");
        match (report, written) {
            (Some(Err(e)), _) | (_, Err(e)) => Err(e),
            (Some(Ok(report)), Ok(true)) => Ok(report),
            _ => Err(Error::write(format!(
                "{}: the output was not finished; nothing written",
                output.display()
            ))),
        }
    })
}

/// Blind extraction from a file, streamed: memory stays bounded by the
/// detector's window whatever the file's length.
pub fn extract_file(
    input: &Path,
    key: &SecretKey,
    progress: &dyn crate::Progress,
) -> Result<Detection> {
    let mut reader = earmark_audio_io::AudioReader::open(input)?;
    let mut seconds =
        crate::AudioSeconds::start(progress, "extracting", reader.rate(), reader.frames_hint());
    let mut extractor = earmark_engine::Extractor::new(
        reader.rate(),
        reader.channels(),
        key,
        SearchGrid::default(),
    )?;
    while let Some(chunk) = reader.next_chunk()? {
        if progress.cancelled() {
            return Err(crate::Error::Cancelled);
        }
        extractor.push(&chunk);
        seconds.add(chunk.first().map_or(0, Vec::len));
    }
    drop(seconds);
    let mut detection = extractor.finish();
    detection.notes.extend(reader.ended_early());
    Ok(detection)
}
