//! `text mark`: each recipient's variant of a transcript, rendered and
//! self-checked before any is written, and recorded, with the work if it
//! is new, all or nothing.

use crate::Wait;
use std::path::PathBuf;

use earmark_ledger::{CopyRecord, LedgerError, Recipient, WorkSpec, TRANSCRIPT};
use earmark_text::{RuleSet, Transcript};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    code, parse, read_text, read_text_as, TextFormat, COPY_FORMAT_PREFIX, LONG_TEXT_MARK_WORDS,
    MIN_SLOTS,
};
use crate::home::{copy_file_name, hex, partial_file_name, slug};
use crate::{Error, Home, Result, Selection};

/// How many times `text mark` renders again when another command
/// registered a work under the id it had reserved for a new one.
const ATTEMPTS: usize = 3;

/// What `text mark` is asked to do.
#[derive(Clone, Debug)]
pub struct TextMarkRequest {
    /// The transcript.
    pub transcript: PathBuf,
    /// Whom it is for.
    pub recipients: Selection,
    /// Directory for the variants (created if missing).
    pub out: PathBuf,
    /// Title recorded with the work.
    pub title: Option<String>,
    /// Read the transcript as this format (default: from its extension,
    /// else from its content).
    pub format: Option<TextFormat>,
}

/// One delivered transcript variant.
#[derive(Clone, Debug, Serialize)]
pub struct TextCopyReport {
    /// The recipient's name.
    pub recipient: String,
    /// Recipient id.
    pub recipient_id: i64,
    /// Where the variant is.
    pub path: PathBuf,
    /// SHA-256 of the file, hex.
    pub output_hash: String,
}

/// What `text mark` delivered.
#[derive(Clone, Debug, Serialize)]
pub struct TextMarkReport {
    /// The work's ledger id.
    pub work: i64,
    /// Its title, else the file's stem.
    pub title: String,
    /// Where the variants are.
    pub out: PathBuf,
    /// Spoken words.
    pub words: usize,
    /// Variation slots found.
    pub slots: usize,
    /// Independent codeword positions they carry.
    pub codeword_positions: usize,
    /// Slots left out because their other rendering would change what the
    /// transcript says or is not read back (`text check` names them).
    pub slots_left_out: usize,
    /// One per recipient.
    pub copies: Vec<TextCopyReport>,
}

/// One variant written under its partial name, not yet in place.
struct Written {
    partial: PathBuf,
    target: PathBuf,
}

impl Home {
    /// Gives each selected recipient their own variant of a transcript.
    /// Every variant is rendered and self-checked before any is written;
    /// all are put in place and recorded in one ledger transaction, which
    /// also registers the transcript if it is new. On any failure nothing
    /// is registered or recorded and no partial file remains.
    pub async fn text_mark(
        &self,
        request: &TextMarkRequest,
        progress: std::sync::Arc<dyn crate::Progress>,
    ) -> Result<TextMarkReport> {
        let (home, request) = (self.clone(), request.clone());
        crate::blocking(move || home.text_mark_blocking(&request, &*progress)).await
    }

    fn text_mark_blocking(
        &self,
        request: &TextMarkRequest,
        progress: &dyn crate::Progress,
    ) -> Result<TextMarkReport> {
        let recipients = self.select(&request.recipients).wait()?;
        crate::output::check_output_dir(&request.out, self.root())?;
        // Refuses what is not a text before anything is copied into the home.
        read_text(&request.transcript)?;
        let master = self
            .inner
            .ingest_master(&request.transcript)
            .map_err(|e| match e {
                LedgerError::SourceChanged(path) => Error::Text(format!(
                    "{}: it changed while it was being read; nothing was marked",
                    path.display()
                )),
                other => other.into(),
            })?;
        let marked = self.text_mark_master(request, &recipients, &master, progress);
        if marked.is_err() && master.fresh {
            self.forget_unregistered_master(&master.content_hash);
        }
        marked
    }

    fn text_mark_master(
        &self,
        request: &TextMarkRequest,
        recipients: &[Recipient],
        master: &earmark_ledger::Ingested,
        progress: &dyn crate::Progress,
    ) -> Result<TextMarkReport> {
        let raw = read_text_as(&master.path, &request.transcript)?;
        let document = parse(&request.transcript, raw, request.format)?;
        let format = document.format;
        let rules = RuleSet::standard();
        let transcript = Transcript::new(&rules, document);
        if transcript.codeword_len < MIN_SLOTS {
            return Err(Error::TooLittleSignal(format!(
                "{}: only {} independent variation slots in {} words; at least {MIN_SLOTS} are needed (longer transcripts carry more)",
                request.transcript.display(),
                transcript.codeword_len,
                transcript.words()
            )));
        }
        let spec = WorkSpec {
            content_hash: master.content_hash.clone(),
            title: request.title.clone(),
            kind: TRANSCRIPT,
            duration_s: 0.0,
            rate: 0,
            channels: 0,
            words: Some(transcript.words() as i64),
        };
        crate::output::create_output_dir(&request.out)?;
        // Copies a killed run left half-written.
        earmark_ledger::remove_stale_partials(&request.out);
        let ext = request
            .transcript
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| TextFormat::from_extension(e) == Some(format))
            .unwrap_or(format.extension())
            .to_string();
        let stem = request
            .transcript
            .file_stem()
            .map_or_else(|| "transcript".to_string(), |s| slug(&s.to_string_lossy()));
        for attempt in 1..=ATTEMPTS {
            let reservation = self.ledger().reserve_work(&spec).wait()?;
            let work = &reservation.work;
            if work.kind != TRANSCRIPT {
                return Err(Error::Usage(format!(
                    "{} is already registered as a recording (work {})",
                    request.transcript.display(),
                    work.id
                )));
            }
            let rendered =
                self.render_variants(work.id, &rules, &transcript, recipients, progress)?;
            let mut written = Vec::new();
            let mut copies = Vec::new();
            let mut reports = Vec::new();
            for (r, text) in recipients.iter().zip(&rendered) {
                let target = request.out.join(copy_file_name(&stem, r, &ext));
                let partial = request.out.join(partial_file_name(&stem, r, &ext));
                let done = std::fs::write(&partial, text.as_bytes())
                    .and_then(|_| std::fs::File::open(&partial).and_then(|f| f.sync_all()));
                written.push(Written {
                    partial,
                    target: target.clone(),
                });
                if let Err(e) = done {
                    discard(&written);
                    return Err(Error::write_failed(
                        format_args!("cannot write {}", target.display()),
                        e,
                    ));
                }
                let output_hash = hex(&Sha256::digest(text.as_bytes()));
                copies.push(CopyRecord {
                    work_id: work.id,
                    recipient_id: r.id,
                    payload: format!("slots:{}", transcript.codeword_len),
                    output_hash: output_hash.clone(),
                    format: format!("{COPY_FORMAT_PREFIX}{ext}"),
                    path: target.display().to_string(),
                    created_at: String::new(),
                });
                reports.push(TextCopyReport {
                    recipient: r.name.clone(),
                    recipient_id: r.id,
                    path: target,
                    output_hash,
                });
            }
            let recorded = self
                .ledger()
                .record_delivery(&reservation, &copies, || deliver(&written))
                .wait();
            let work = match recorded {
                Ok(work) => work,
                Err(e) => {
                    discard(&written);
                    if matches!(e, LedgerError::Conflict(_)) && attempt < ATTEMPTS {
                        continue;
                    }
                    return Err(e.into());
                }
            };
            return Ok(TextMarkReport {
                work: work.id,
                title: work.title.clone().unwrap_or(stem),
                out: request.out.clone(),
                words: transcript.words(),
                slots: transcript.slots(),
                codeword_positions: transcript.codeword_len,
                slots_left_out: transcript.left_out.len(),
                copies: reports,
            });
        }
        unreachable!("the last attempt returns")
    }

    /// Every recipient's variant of work `work_id`, each self-checked: same
    /// canonical text, same structure, and every slot reads back as this
    /// recipient's bit.
    fn render_variants(
        &self,
        work_id: i64,
        rules: &RuleSet,
        transcript: &Transcript,
        recipients: &[Recipient],
        progress: &dyn crate::Progress,
    ) -> Result<Vec<String>> {
        let code = code(&self.inner.master, work_id, transcript.codeword_len);
        // A bar only for work that takes a while: rendering and checking a
        // variant costs about its words.
        let long = transcript.words() * recipients.len() > LONG_TEXT_MARK_WORDS;
        if long {
            progress.start("rendering", recipients.len() as u64);
        }
        let rendered: Result<Vec<String>> = recipients
            .par_iter()
            .map(|r| {
                if long {
                    progress.advance(1);
                }
                let codeword = code.codeword(r.id as u32);
                let check = transcript.self_check(rules, std::slice::from_ref(&codeword));
                if check.passed() {
                    Ok(transcript.render(rules, &codeword))
                } else {
                    Err(Error::write(format!(
                        "the variant for {} failed its self-check ({check:?}); nothing written",
                        r.name
                    )))
                }
            })
            .collect::<Result<_>>();
        if long {
            progress.finish();
        }
        rendered
    }
}

/// Puts every written variant in place; if one cannot be, those already
/// moved go back to their partial names.
fn deliver(written: &[Written]) -> Result<(), LedgerError> {
    for (k, w) in written.iter().enumerate() {
        if let Err(source) = std::fs::rename(&w.partial, &w.target) {
            for v in &written[..k] {
                let _ = std::fs::rename(&v.target, &v.partial);
            }
            return Err(LedgerError::Io {
                path: w.target.clone(),
                source,
            });
        }
    }
    Ok(())
}

/// Removes every partial file written.
fn discard(written: &[Written]) {
    for w in written {
        let _ = std::fs::remove_file(&w.partial);
    }
}
