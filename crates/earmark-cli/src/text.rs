//! `earmark text`: transcript canaries. `mark` gives each recipient a
//! transcript whose meaning-preserving details follow their codeword;
//! `trace` finds the quoted fragments of a leaked text, reads the details
//! they carry and names the recipients with a false-accusation bound;
//! `check` runs the rules' self-check on a transcript.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use earmark_codes::TardosCode;
use earmark_keys::{Label, SecretKey};
use earmark_ledger::{Copy, Home, LedgerError, Work, TRANSCRIPT};
use earmark_text::{Document, Format, Mode, Prepared, RuleSet, Transcript};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::exit::{self, Failure};
use crate::home::{file_hash, hex, open, slug};

/// Largest transcript or leaked text read, bytes.
pub const MAX_TEXT_BYTES: u64 = 32 << 20;
/// Fewest slots a transcript must have to be marked: fewer could not name
/// anyone from any quote.
pub const MIN_SLOTS: usize = 8;
/// Prefix of a transcript copy's format in the ledger (`transcript-srt`):
/// the rest is the extension, which says how the master was parsed.
const COPY_FORMAT_PREFIX: &str = "transcript-";
/// Label of the codewords `text check` renders (no home is needed).
const CHECK_LABEL: Label = Label("earmark/v1/text/self-check");

/// `text` subcommands.
#[derive(Subcommand)]
pub enum TextAction {
    /// Give each recipient their own variant of a transcript (plain text,
    /// Markdown, SRT or WebVTT), recorded in the ledger.
    Mark(MarkArgs),
    /// Name the recipients whose transcript a leaked text quotes.
    Trace(TraceArgs),
    /// Self-check: render variants of a transcript and check that each means
    /// the same (same canonical text, same structure) and reads back.
    Check {
        /// The transcript.
        transcript: PathBuf,
        /// Variants to render and read back.
        #[arg(long, default_value_t = 64)]
        variants: usize,
        /// Read the transcript as this format (default: from its extension,
        /// else from its content).
        #[arg(long, value_enum)]
        format: Option<TextFormat>,
    },
}

/// Transcript formats on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TextFormat {
    /// Plain text.
    Plain,
    /// Markdown.
    Markdown,
    /// SubRip.
    Srt,
    /// WebVTT.
    Vtt,
}

impl From<TextFormat> for Format {
    fn from(f: TextFormat) -> Format {
        match f {
            TextFormat::Plain => Format::Plain,
            TextFormat::Markdown => Format::Markdown,
            TextFormat::Srt => Format::Srt,
            TextFormat::Vtt => Format::WebVtt,
        }
    }
}

/// Arguments of `text mark`.
#[derive(Args)]
pub struct MarkArgs {
    /// The transcript.
    transcript: PathBuf,
    #[command(flatten)]
    who: crate::home::Who,
    /// Directory for the variants (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Title recorded with the work.
    #[arg(long)]
    title: Option<String>,
    /// Read the transcript as this format (default: from its extension,
    /// else from its content).
    #[arg(long, value_enum)]
    format: Option<TextFormat>,
}

/// Arguments of `text trace`.
#[derive(Args)]
pub struct TraceArgs {
    /// The leaked text: an article, a post, a retyped quote.
    leaked: PathBuf,
    /// Only consider this transcript (work id).
    #[arg(long)]
    work: Option<i64>,
    /// Largest acceptable probability of accusing anyone innocent.
    #[arg(long, default_value_t = 1e-6)]
    epsilon: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Reads a text file: bounded size, UTF-8 (a byte-order mark is dropped).
pub fn read_text(path: &Path) -> Result<String, Failure> {
    let meta =
        std::fs::metadata(path).map_err(|e| Failure::text(format!("{}: {e}", path.display())))?;
    if meta.len() > MAX_TEXT_BYTES {
        return Err(Failure::text(format!(
            "{}: {} bytes is too large for a text (at most {MAX_TEXT_BYTES})",
            path.display(),
            meta.len()
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|e| Failure::text(format!("{}: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Failure::text(format!(
            "{}: not UTF-8 text (invalid byte at {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

fn parse(path: &Path, text: String, format: Option<Format>) -> Result<Document, Failure> {
    let format = format.or_else(|| {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Format::from_extension)
    });
    Document::parse(text, format).map_err(|e| Failure::text(format!("{}: {e}", path.display())))
}

/// Recipient `id`'s codeword bits for `work`.
fn code(home_key: &SecretKey, work: i64, slots: usize) -> TardosCode {
    TardosCode::uniform(home_key, work as u32, slots)
}

/// `earmark text …`.
pub fn text(home: Option<&Path>, action: TextAction) -> Result<ExitCode, Failure> {
    match action {
        TextAction::Mark(args) => mark(home, args),
        TextAction::Trace(args) => trace(home, args),
        TextAction::Check {
            transcript,
            variants,
            format,
        } => check(&transcript, variants, format.map(Format::from)),
    }
}

fn mark(home: Option<&Path>, args: MarkArgs) -> Result<ExitCode, Failure> {
    let home = open(home)?;
    let ledger = &home.ledger;
    let recipients = crate::home::chosen_recipients(ledger, &args.who)?;
    let raw = read_text(&args.transcript)?;
    let document = parse(&args.transcript, raw, args.format.map(Format::from))?;
    let format = document.format;
    let rules = RuleSet::standard();
    let transcript = Transcript::new(&rules, document);
    if transcript.codeword_len < MIN_SLOTS {
        return Err(Failure {
            code: exit::TOO_LITTLE_SIGNAL,
            message: format!(
                "{}: only {} independent variation slots in {} words; at least {MIN_SLOTS} are needed (longer transcripts carry more)",
                args.transcript.display(),
                transcript.codeword_len,
                transcript.words()
            ),
        });
    }
    let content_hash = file_hash(&args.transcript)?;
    let work = ledger
        .register_transcript(&content_hash, args.title.as_deref(), transcript.words())
        .map_err(Failure::ledger)?;
    if work.kind != TRANSCRIPT {
        return Err(Failure::usage(format!(
            "{} is already registered as a recording (work {})",
            args.transcript.display(),
            work.id
        )));
    }
    let stored = home
        .store_master(&content_hash, &args.transcript)
        .map_err(Failure::ledger)?;
    if file_hash(&stored)? != content_hash {
        let _ = home.forget_master(&content_hash);
        return Err(Failure::write(format!(
            "{} changed while it was being registered; nothing marked",
            args.transcript.display()
        )));
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::write(format!("cannot create {}: {e}", args.out.display())))?;
    let code = code(&home.master, work.id, transcript.codeword_len);
    let ext = args
        .transcript
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| Format::from_extension(e) == Some(format))
        .unwrap_or(format.extension())
        .to_string();
    let stem = args
        .transcript
        .file_stem()
        .map_or_else(|| "transcript".to_string(), |s| slug(&s.to_string_lossy()));
    // Every variant is rendered and checked before any is delivered, as
    // audio copies are: same canonical text, same structure, and every slot
    // reads back as this recipient's bit.
    recipients.par_iter().try_for_each(|r| {
        let check = transcript.self_check(&rules, &[code.codeword(r.id as u32)]);
        if check.passed() {
            Ok(())
        } else {
            Err(Failure::write(format!(
                "the variant for {} failed its self-check ({check:?}); nothing written",
                r.name
            )))
        }
    })?;
    for r in &recipients {
        let rendered = transcript.render(&rules, &code.codeword(r.id as u32));
        let target = args.out.join(format!("{stem}.{}.{ext}", slug(&r.name)));
        let partial = args
            .out
            .join(format!(".{stem}.{}.partial.{ext}", slug(&r.name)));
        std::fs::write(&partial, rendered.as_bytes())
            .and_then(|_| std::fs::File::open(&partial).and_then(|f| f.sync_all()))
            .and_then(|_| std::fs::rename(&partial, &target))
            .map_err(|e| Failure::write(format!("cannot write {}: {e}", target.display())))?;
        ledger
            .record_copy(&Copy {
                work_id: work.id,
                recipient_id: r.id,
                payload: format!("slots:{}", transcript.codeword_len),
                output_hash: hex(&Sha256::digest(rendered.as_bytes())),
                format: format!("{COPY_FORMAT_PREFIX}{ext}"),
                path: target.display().to_string(),
                created_at: String::new(),
            })
            .map_err(Failure::ledger)?;
    }
    println!(
        "marked transcript {} ({}) for {} recipients into {}: {} words, {} slots in {} codeword positions ({:.1} per 100 words)",
        work.id,
        work.title.as_deref().unwrap_or(&stem),
        recipients.len(),
        args.out.display(),
        transcript.words(),
        transcript.slots(),
        transcript.codeword_len,
        100.0 * transcript.codeword_len as f64 / transcript.words().max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}

/// A registered transcript, ready to trace against.
struct Registered {
    work: Work,
    transcript: Transcript,
    recipients: Vec<u32>,
}

/// The transcripts a leak may quote: `only`, or every transcript whose
/// master is kept and that was delivered to someone.
fn registered(home: &Home, rules: &RuleSet, only: Option<i64>) -> Result<Vec<Registered>, Failure> {
    let ledger = &home.ledger;
    let works = match only {
        Some(id) => {
            let w = ledger
                .work(id)
                .map_err(Failure::ledger)?
                .ok_or(LedgerError::UnknownWork(id))
                .map_err(Failure::ledger)?;
            if w.kind != TRANSCRIPT {
                return Err(Failure::usage(format!(
                    "work {id} is a recording, not a transcript: trace it with `earmark trace`"
                )));
            }
            vec![w]
        }
        None => ledger
            .works()
            .map_err(Failure::ledger)?
            .into_iter()
            .filter(|w| w.kind == TRANSCRIPT)
            .collect(),
    };
    let mut out = Vec::new();
    for work in works {
        let copies = ledger.copies_of(work.id).map_err(Failure::ledger)?;
        let Some(first) = copies.first() else {
            continue;
        };
        let path = home.master_path(&work.content_hash);
        if !path.is_file() {
            if only.is_some() {
                return Err(Failure::text(format!(
                    "the master of transcript {} was forgotten; it cannot be traced",
                    work.id
                )));
            }
            continue;
        }
        let format = first
            .format
            .strip_prefix(COPY_FORMAT_PREFIX)
            .and_then(Format::from_extension);
        let document = parse(&path, read_text(&path)?, format)?;
        let transcript = Transcript::new(rules, document);
        let recipients = ledger
            .recipients_of(work.id)
            .map_err(Failure::ledger)?
            .into_iter()
            .map(|r| r as u32)
            .collect();
        out.push(Registered {
            work,
            transcript,
            recipients,
        });
    }
    Ok(out)
}

/// Up to `max` characters of `text`, on one line.
fn excerpt(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn trace(home: Option<&Path>, args: TraceArgs) -> Result<ExitCode, Failure> {
    if !(args.epsilon > 0.0 && args.epsilon < 1.0) {
        return Err(Failure::usage(format!(
            "--epsilon {} is not a probability in (0, 1)",
            args.epsilon
        )));
    }
    let home = open(home)?;
    let leaked = read_text(&args.leaked)?;
    // The leak is any text: checked for binary content and emptiness only.
    Document::parse(leaked.clone(), Some(Format::Plain))
        .map_err(|e| Failure::text(format!("{}: {e}", args.leaked.display())))?;
    let rules = RuleSet::standard();
    let leak = Prepared::new(&rules, leaked, Mode::Leak);
    let candidates = registered(&home, &rules, args.work)?;
    let matched: Vec<(Registered, Vec<earmark_text::FragmentReading>)> = candidates
        .into_iter()
        .map(|r| {
            let fragments = r.transcript.read(&rules, &leak);
            (r, fragments)
        })
        .filter(|(_, f)| !f.is_empty())
        .collect();
    if matched.is_empty() {
        if args.json {
            println!(
                "{}",
                serde_json::json!({"found": false, "reason": "no registered transcript"})
            );
        } else {
            println!("the text matches no registered transcript");
        }
        return Ok(ExitCode::from(exit::NOT_FOUND as u8));
    }
    let works_tried = matched.len();
    let mut reports = Vec::new();
    let mut anyone = false;
    for (reg, fragments) in &matched {
        let code = code(&home.master, reg.work.id, reg.transcript.codeword_len);
        let parts: Vec<Vec<(u32, f32)>> = fragments
            .iter()
            .map(earmark_text::FragmentReading::code_readings)
            .collect();
        let verdict = code.accuse_parts(&parts, &reg.recipients, works_tried, args.epsilon);
        anyone |= !verdict.accused.is_empty();
        let name = |id: u32| -> Result<String, Failure> {
            Ok(home
                .ledger
                .recipient(id as i64)
                .map_err(Failure::ledger)?
                .map_or_else(|| format!("#{id}"), |r| r.name))
        };
        let mut accused = Vec::new();
        for a in &verdict.accused {
            accused.push(serde_json::json!({
                "recipient_id": a.recipient,
                "name": name(a.recipient)?,
                "score": a.score,
                "p_false": a.bound,
            }));
        }
        let mut frags = Vec::new();
        for (k, f) in fragments.iter().enumerate() {
            let best = verdict
                .parts
                .get(k)
                .copied()
                .flatten()
                .or(if fragments.len() == 1 {
                    verdict.whole
                } else {
                    None
                });
            frags.push(serde_json::json!({
                "leak_start": leak.text[..f.leak_bytes.start].chars().count(),
                "leak_end": leak.text[..f.leak_bytes.end].chars().count(),
                "excerpt": excerpt(&leak.text[f.leak_bytes.clone()], 90),
                "master_excerpt": excerpt(&reg.transcript.prepared.text[f.master_bytes.clone()], 90),
                "master_words": [f.fragment.master.start, f.fragment.master.end],
                "matched_words": f.fragment.pairs.len(),
                "slots_covered": f.slots_covered,
                "slots_read": f.readings.len(),
                "punctuation_kept": f.punctuation_kept,
                "best": best.map(|b| serde_json::json!({"recipient_id": b.recipient, "name": name(b.recipient).unwrap_or_default(), "p_false": b.bound})),
            }));
        }
        reports.push(serde_json::json!({
            "work": reg.work.id,
            "title": reg.work.title,
            "slots": reg.transcript.slots(),
            "codeword_positions": reg.transcript.codeword_len,
            "slots_read": parts.iter().map(Vec::len).sum::<usize>(),
            "positions_read": parts
                .iter()
                .flatten()
                .map(|&(p, _)| p)
                .collect::<std::collections::BTreeSet<u32>>()
                .len(),
            "recipients_scored": reg.recipients.len(),
            "union_factor": verdict.union,
            "fragments": frags,
            "accused": accused,
        }));
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "found": true,
                "method": "transcript",
                "epsilon": args.epsilon,
                "transcripts": reports,
            }))
            .expect("serialises")
        );
    } else {
        for r in &reports {
            println!(
                "transcript {} ({}): {} fragment(s) quoted, {} slots read of {} ({} of {} codeword positions)",
                r["work"],
                r["title"].as_str().unwrap_or("untitled"),
                r["fragments"].as_array().map_or(0, Vec::len),
                r["slots_read"],
                r["slots"],
                r["positions_read"],
                r["codeword_positions"]
            );
            for f in r["fragments"].as_array().into_iter().flatten() {
                println!(
                    "  leak chars {}–{}: {} words matched, {} slots read  \"{}\"",
                    f["leak_start"],
                    f["leak_end"],
                    f["matched_words"],
                    f["slots_read"],
                    f["excerpt"].as_str().unwrap_or("")
                );
            }
            let accused = r["accused"].as_array().cloned().unwrap_or_default();
            if accused.is_empty() {
                println!(
                    "  nobody can be named within ε = {:.0e}: the quotes carry too few slots",
                    args.epsilon
                );
            }
            for a in accused {
                println!(
                    "  ACCUSED {:<24} p_false ≤ {:.1e}",
                    a["name"].as_str().unwrap_or("?"),
                    a["p_false"].as_f64().unwrap_or(1.0)
                );
            }
        }
    }
    Ok(if anyone {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::NOT_FOUND as u8)
    })
}

fn check(path: &Path, variants: usize, format: Option<Format>) -> Result<ExitCode, Failure> {
    let document = parse(path, read_text(path)?, format)?;
    let rules = RuleSet::standard();
    let found = Prepared::new(&rules, document.text(), Mode::Master)
        .slots
        .len();
    let transcript = Transcript::new(&rules, document);
    let code = TardosCode::uniform(
        &SecretKey::from_bytes([0; 32]).derive(CHECK_LABEL),
        0,
        transcript.codeword_len,
    );
    let mut codewords: Vec<Vec<bool>> = vec![
        vec![false; transcript.codeword_len],
        vec![true; transcript.codeword_len],
    ];
    codewords.extend((1..=variants.saturating_sub(2) as u32).map(|j| code.codeword(j)));
    let report = transcript.self_check(&rules, &codewords);
    println!(
        "{}: {} words, {} slots in {} codeword positions ({:.1} per 100 words; {} found, {} left out because their reading depends on a neighbour)",
        path.display(),
        transcript.words(),
        transcript.slots(),
        transcript.codeword_len,
        100.0 * transcript.codeword_len as f64 / transcript.words().max(1) as f64,
        found,
        found - transcript.slots()
    );
    println!(
        "{} variants: {} canonical mismatches, {} structure changes, {} slots read back right, {} wrong, {} unread ({} fillers not read where a variant drops them all, as a cleaned-up quote reads)",
        report.variants,
        report.canonical_mismatches,
        report.structure_changed,
        report.slots_read,
        report.wrong_bits,
        report.unread,
        report.fillers_excused
    );
    if report.passed() {
        println!("self-check passed");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure {
            code: exit::TOO_LITTLE_SIGNAL,
            message:
                "self-check failed: some variant does not mean exactly what the original means"
                    .into(),
        })
    }
}
