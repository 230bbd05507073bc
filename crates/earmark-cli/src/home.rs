//! The commands that use the home: `init`, `recipient`, `mark`, `trace`, `audit`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use earmark_codes::{false_accusation_bound, Identifier, IdentifierCipher, TardosCode};
use earmark_engine::layout::{BLOCK_S, FINGERPRINT_POSITIONS};
use earmark_engine::SearchGrid;
use earmark_keys::{Label, SecretKey};
use earmark_ledger::{Copy, Home, LedgerError, Recipient, Work};
use indicatif::{ParallelProgressIterator, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::exit::{self, Failure};

/// Label of the engine key every copy of a home is marked with: one key, so
/// that `trace` needs one extraction whatever the number of works; the
/// payload (sealed by `earmark-codes`) says which work and recipient.
pub const ENGINE_KEY_LABEL: Label = Label("earmark/v1/home/engine-key");

/// `recipient` subcommands.
#[derive(Subcommand)]
pub enum RecipientAction {
    /// Add one recipient (names are unique).
    Add {
        /// Name.
        name: String,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Organisation.
        #[arg(long)]
        org: Option<String>,
    },
    /// List recipients.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Import recipients from a CSV with a header naming `name` (and
    /// optionally `email`, `org`); all or nothing.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

/// `work` subcommands.
#[derive(Subcommand)]
pub enum WorkAction {
    /// List registered works: duration, rate, recipients, date, master kept.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// One work in detail, with its delivered copies.
    Show {
        /// Work id (as `work list` shows).
        id: i64,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a work's master from the store (its ledger records stay).
    /// Tracing leaks of it then falls back to blind detection.
    Forget {
        /// Work id.
        id: i64,
        /// Do not ask: confirm on the command line.
        #[arg(long)]
        yes: bool,
    },
}

/// `audit` subcommands.
#[derive(Subcommand)]
pub enum AuditAction {
    /// Check the hash chain: any edited or deleted row is reported (exit 11).
    Verify,
    /// Show the audit log.
    Log {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Output formats of `mark`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// WAV, the input's sample format.
    Wav,
    /// FLAC.
    Flac,
    /// MP3 at 192 kbit/s (LAME, through ffmpeg: no maintained Rust MP3 encoder
    /// without linking LAME ourselves).
    Mp3,
    /// Opus at 64 kbit/s in Ogg (through ffmpeg).
    Opus,
}

impl Format {
    /// File extension.
    fn extension(self) -> &'static str {
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

/// Whom a `mark` is for (one of the three).
#[derive(Args)]
#[group(id = "who", required = true, multiple = false)]
pub struct Who {
    /// Recipients by name, comma-separated.
    #[arg(long, value_delimiter = ',')]
    to: Vec<String>,
    /// Every recipient in the ledger.
    #[arg(long)]
    all: bool,
    /// Recipients named in a CSV (its `name` column).
    #[arg(long)]
    recipients: Option<PathBuf>,
}

/// Arguments of `mark`.
#[derive(Args)]
pub struct MarkArgs {
    /// The recording to mark (any readable format).
    work: PathBuf,
    #[command(flatten)]
    who: Who,
    /// Directory for the copies (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Output format (mp3 and opus are encoded by ffmpeg after marking and
    /// checked by extraction from the encoded file).
    #[arg(long, value_enum, default_value = "wav")]
    format: Format,
    /// Title recorded with the work.
    #[arg(long)]
    title: Option<String>,
}

/// Arguments of `trace`.
#[derive(Args)]
pub struct TraceArgs {
    /// The leaked audio.
    leak: PathBuf,
    /// Only consider this work (ledger id).
    #[arg(long)]
    work: Option<i64>,
    /// Largest acceptable probability of accusing anyone innocent.
    #[arg(long, default_value_t = 1e-6)]
    epsilon: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Draw the tamper map (leak timeline against the master) as a PNG.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

impl Failure {
    pub fn ledger(error: LedgerError) -> Self {
        let code = match error {
            LedgerError::NoHomeDirectory
            | LedgerError::NotInitialised(_)
            | LedgerError::AlreadyInitialised(_) => exit::NO_HOME,
            LedgerError::MasterKey { .. } => exit::BAD_KEY,
            LedgerError::DuplicateRecipient(_)
            | LedgerError::UnknownRecipient(_)
            | LedgerError::UnknownWork(_)
            | LedgerError::BadCsv { .. } => exit::BAD_RECIPIENTS,
            LedgerError::Io { .. } | LedgerError::Database(_) => exit::LEDGER,
        };
        Failure {
            code,
            message: error.to_string(),
        }
    }
}

pub(crate) fn open(home: Option<&Path>) -> Result<Home, Failure> {
    let root = earmark_ledger::locate_home(home).map_err(Failure::ledger)?;
    Home::open(&root).map_err(Failure::ledger)
}

/// `earmark init`.
pub fn init(home: Option<&Path>) -> Result<ExitCode, Failure> {
    let root = earmark_ledger::locate_home(home).map_err(Failure::ledger)?;
    earmark_ledger::init(&root).map_err(Failure::ledger)?;
    println!(
        "created an earmark home at {} (master key mode 0600, SQLite ledger)",
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `earmark recipient …`.
pub fn recipient(home: Option<&Path>, action: RecipientAction) -> Result<ExitCode, Failure> {
    let home = open(home)?;
    let ledger = &home.ledger;
    match action {
        RecipientAction::Add { name, email, org } => {
            let r = ledger
                .add_recipient(&name, email.as_deref(), org.as_deref())
                .map_err(Failure::ledger)?;
            ledger
                .audit(
                    "recipient",
                    &serde_json::json!({"added": r.id, "name": r.name}).to_string(),
                )
                .map_err(Failure::ledger)?;
            println!("added recipient {} ({})", r.name, r.id);
        }
        RecipientAction::List { json } => {
            let all = ledger.recipients().map_err(Failure::ledger)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&all).expect("serialises")
                );
            } else {
                for r in all {
                    println!(
                        "{:>6}  {}  {}  {}",
                        r.id,
                        r.name,
                        r.email.as_deref().unwrap_or("-"),
                        r.org.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        RecipientAction::Import { file } => {
            let added = ledger.import_recipients(&file).map_err(Failure::ledger)?;
            ledger
                .audit(
                    "recipient",
                    &serde_json::json!({"imported": added.len(), "from": file.display().to_string()}).to_string(),
                )
                .map_err(Failure::ledger)?;
            println!(
                "imported {} recipients from {}",
                added.len(),
                file.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// SHA-256 of a file, hex, streamed.
pub(crate) fn file_hash(path: &Path) -> Result<String, Failure> {
    let mut file = std::fs::File::open(path).map_err(|e| Failure::audio_path(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| Failure::audio_path(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file-name-safe form of a recipient's name.
pub(crate) fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_string()
}

/// Names in the `name` column of a CSV.
pub(crate) fn names_in_csv(path: &Path) -> Result<Vec<String>, Failure> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Failure::recipients(format!("{}: {e}", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| Failure::recipients(format!("{}: {e}", path.display())))?
        .clone();
    let column = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case("name"))
        .ok_or_else(|| {
            Failure::recipients(format!(
                "{}: the header must name a 'name' column",
                path.display()
            ))
        })?;
    let mut names = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| Failure::recipients(format!("{}: {e}", path.display())))?;
        if let Some(name) = record.get(column).filter(|n| !n.is_empty()) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// One copy written and verified, not yet in place or recorded.
struct Prepared {
    recipient: Recipient,
    payload: u64,
    partial: PathBuf,
    target: PathBuf,
    hash: String,
}

/// The recipients a `mark` names: everyone, those of a CSV, or those
/// listed; at least one.
pub(crate) fn chosen_recipients(
    ledger: &earmark_ledger::Ledger,
    who: &Who,
) -> Result<Vec<Recipient>, Failure> {
    let recipients = if who.all {
        ledger.recipients().map_err(Failure::ledger)?
    } else if let Some(csv) = &who.recipients {
        ledger
            .recipients_named(&names_in_csv(csv)?)
            .map_err(Failure::ledger)?
    } else {
        ledger.recipients_named(&who.to).map_err(Failure::ledger)?
    };
    if recipients.is_empty() {
        return Err(Failure::recipients("no recipients to mark for".into()));
    }
    Ok(recipients)
}

/// `earmark mark`.
pub fn mark(home: Option<&Path>, args: MarkArgs) -> Result<ExitCode, Failure> {
    let home = open(home)?;
    let ledger = &home.ledger;
    let recipients = chosen_recipients(ledger, &args.who)?;
    let content_hash = file_hash(&args.work)?;
    let audio = earmark_audio_io::read(&args.work).map_err(Failure::audio)?;
    let work = ledger
        .register_work(
            &content_hash,
            args.title.as_deref(),
            audio.duration_s(),
            audio.rate,
            audio.channels.len(),
        )
        .map_err(Failure::ledger)?;
    // The master is kept, byte for byte, for informed tracing; a copy that
    // does not hash back to what was registered is not kept.
    let stored = home
        .store_master(&content_hash, &args.work)
        .map_err(Failure::ledger)?;
    if file_hash(&stored)? != content_hash {
        let _ = home.forget_master(&content_hash);
        return Err(Failure::write(format!(
            "{} changed while it was being registered; nothing marked",
            args.work.display()
        )));
    }
    // Its landmarks let `trace` name the work from a leak alone.
    crate::informed::index_master(&home, work.id, &crate::informed::analysis_signal(&audio))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::write(format!("cannot create {}: {e}", args.out.display())))?;
    let engine_key = home.master.derive(ENGINE_KEY_LABEL);
    let cipher = IdentifierCipher::new(&home.master);
    let code = TardosCode::new(&home.master, work.id as u32, FINGERPRINT_POSITIONS);
    let ext = args.format.extension();
    let stem = args
        .work
        .file_stem()
        .map_or_else(|| "work".to_string(), |s| slug(&s.to_string_lossy()));
    let bar = ProgressBar::new(recipients.len() as u64);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_style(
            ProgressStyle::with_template(
                "marking [{bar:40}] {pos}/{len} {elapsed_precise} (eta {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let prepared: Vec<Result<Prepared, Failure>> = recipients
        .par_iter()
        .progress_with(bar)
        .map(|r| {
            let id = Identifier {
                work: work.id as u32,
                recipient: r.id as u32,
            };
            let payload = cipher.seal(id);
            let target = args.out.join(format!("{stem}.{}.{ext}", slug(&r.name)));
            let partial = args
                .out
                .join(format!(".{stem}.{}.partial.{ext}", slug(&r.name)));
            let fingerprint = code.codeword(r.id as u32);
            prepare_copy(
                &audio,
                &engine_key,
                payload,
                &fingerprint,
                args.format,
                &partial,
            )?;
            Ok(Prepared {
                recipient: r.clone(),
                payload,
                hash: file_hash(&partial)?,
                partial,
                target,
            })
        })
        .collect();
    let mut written = 0;
    for p in prepared {
        let p = p?;
        // The copy is complete and verified: put it in place, then record it.
        std::fs::rename(&p.partial, &p.target)
            .map_err(|e| Failure::write(format!("cannot write {}: {e}", p.target.display())))?;
        if let Some(dir) = p.target.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        ledger
            .record_copy(&Copy {
                work_id: work.id,
                recipient_id: p.recipient.id,
                payload: format!("{:016x}", p.payload),
                output_hash: p.hash,
                format: ext.to_string(),
                path: p.target.display().to_string(),
                created_at: String::new(),
            })
            .map_err(Failure::ledger)?;
        written += 1;
    }
    println!(
        "marked work {} ({}) for {written} recipients into {}",
        work.id,
        work.title.as_deref().unwrap_or(&stem),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Embeds `payload` and `fingerprint`, writes the copy to `partial` (fsynced), and checks that
/// it reads back before it may count as delivered. Lossy formats are marked,
/// then encoded, then checked: the check reads the encoded file.
fn prepare_copy(
    audio: &earmark_audio_io::Audio,
    key: &SecretKey,
    payload: u64,
    fingerprint: &[bool],
    format: Format,
    partial: &Path,
) -> Result<(), Failure> {
    let mut channels = audio.channels.clone();
    earmark_engine::embed_fingerprinted(&mut channels, audio.rate, key, payload, fingerprint, 1.0)
        .map_err(Failure::engine)?;
    let copy = earmark_audio_io::Audio {
        channels,
        ..audio.clone()
    };
    match format.encoder() {
        None => earmark_audio_io::write(partial, &copy).map_err(Failure::audio)?,
        Some(options) => encode_lossy(&copy, options, partial)?,
    }
    let back = earmark_audio_io::read(partial).map_err(Failure::audio)?;
    let detection = earmark_engine::extract(&back.channels, back.rate, key, &SearchGrid::exact())
        .map_err(Failure::engine)?;
    if detection.found.first().map(|f| f.payload) != Some(payload) {
        let _ = std::fs::remove_file(partial);
        return Err(Failure::write(format!(
            "the copy at {} did not read back; nothing recorded",
            partial.display()
        )));
    }
    Ok(())
}

/// Encodes `copy` to `output` with ffmpeg's `options`, through a temporary
/// WAV beside it; the output is fsynced.
fn encode_lossy(
    copy: &earmark_audio_io::Audio,
    options: &[&str],
    output: &Path,
) -> Result<(), Failure> {
    let dir = output.parent().unwrap_or(Path::new("."));
    let wav = tempfile::Builder::new()
        .prefix(".earmark-encode-")
        .suffix(".wav")
        .tempfile_in(dir)
        .map_err(|e| Failure::write(format!("{}: {e}", dir.display())))?;
    earmark_audio_io::write(wav.path(), copy).map_err(Failure::audio)?;
    let result = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(wav.path())
        // The channel count fixes the layout, which float WAVs may leave unset.
        .args(["-ac", &copy.channels.len().to_string()])
        .args(options)
        .arg(output)
        .output()
        .map_err(|e| Failure {
            code: exit::MISSING_TOOL,
            message: format!(
                "MP3 and Opus copies need ffmpeg ({e}): install the Debian package `ffmpeg`"
            ),
        })?;
    if !result.status.success() {
        return Err(Failure::write(format!(
            "ffmpeg could not encode {}: {}",
            output.display(),
            String::from_utf8_lossy(&result.stderr).trim()
        )));
    }
    std::fs::File::open(output)
        .and_then(|f| f.sync_all())
        .map_err(|e| Failure::write(format!("{}: {e}", output.display())))
}

/// One accusation: a recipient and the evidence against them.
struct Accusation {
    recipient: Recipient,
    /// How the recipient was named: "identifier", "code" or both.
    evidence: Vec<&'static str>,
    /// Upper bound on the probability that this accusation names an innocent.
    bound: f64,
    /// The identifier's pilot statistic, or the code's normalised score.
    score: f64,
    /// The identifier's p-value under the no-mark hypothesis, if it named them.
    mark_p_value: Option<f64>,
    segments: Vec<earmark_engine::Segment>,
}

impl Accusation {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.recipient.name,
            "recipient_id": self.recipient.id,
            "evidence": self.evidence,
            "score": self.score,
            "false_accusation_bound": self.bound,
            "mark_p_value": self.mark_p_value,
            "segments": self.segments,
        })
    }
}

/// What the collusion-resistant code says about one work.
struct CodeVerdict {
    work: Work,
    positions_read: usize,
    recipients_scored: usize,
    /// The best scores, highest first: (recipient, score, bound).
    ranking: Vec<(Recipient, f64, f64)>,
}

/// How many of a code's best scorers are shown.
const RANKING_SHOWN: usize = 10;

/// `earmark trace`.
///
/// Two kinds of evidence, each with its own share of ε: the sealed
/// identifier (ε/2; it names one recipient from a short clip) and the Tardos
/// code read from the fingerprint positions (ε/2, union bound over every
/// recipient scored; it names colluders whose mix the identifier cannot
/// decode). Either naming suffices; the reported bound is the smaller.
pub fn trace(home: Option<&Path>, args: TraceArgs) -> Result<ExitCode, Failure> {
    let home = open(home)?;
    let ledger = &home.ledger;
    let forced_work = match args.work {
        Some(id) => Some(
            ledger
                .work(id)
                .map_err(Failure::ledger)?
                .ok_or(LedgerError::UnknownWork(id))
                .map_err(Failure::ledger)?,
        ),
        None => None,
    };
    if let Some(w) = forced_work
        .as_ref()
        .filter(|w| w.kind != earmark_ledger::AUDIO)
    {
        return Err(Failure::usage(format!(
            "work {} is a transcript, not a recording: trace text with `earmark text trace`",
            w.id
        )));
    }
    let engine_key = home.master.derive(ENGINE_KEY_LABEL);
    let mut notes = Vec::new();
    let mut detection =
        gather_evidence(&home, &args, forced_work.as_ref(), &engine_key, &mut notes)?;
    let (accused, work_found, verdict) = loop {
        let findings = accuse(
            &home,
            &args,
            forced_work.as_ref(),
            &engine_key,
            &detection,
            &mut notes,
        )?;
        if !findings.0.is_empty() || detection.method != "informed" {
            break findings;
        }
        // The mark may survive a channel better blind than through the
        // registration (a room's reverberation smears the master's tiles).
        notes.push("the informed reading named no one; the leak was also traced blind".into());
        let blind = crate::extract_file(&args.leak, &engine_key)?;
        detection.method = "informed+blind";
        detection.found = blind.found;
        detection.candidates_checked = blind.candidates_checked;
        detection.fingerprint = blind.fingerprint;
    };
    let positions_read = verdict.as_ref().map_or(0, |v| v.positions_read);
    // Blocks whose identifier was read, for the identifier's accusations.
    let identifier_blocks_read: u64 = accused
        .iter()
        .filter(|a| a.evidence.contains(&"identifier"))
        .flat_map(|a| &a.segments)
        .map(|s| ((s.end_s - s.start_s) / BLOCK_S).floor() as u64)
        .sum();
    let mut segments: Vec<earmark_engine::Segment> =
        accused.iter().flat_map(|a| a.segments.clone()).collect();
    earmark_engine::detect::join_segments(&mut segments);
    let leak_hash = file_hash(&args.leak)?;
    ledger
        .audit(
            "trace",
            &serde_json::json!({
                "leak_hash": leak_hash,
                "work": work_found.as_ref().map(|w| w.id),
                "accused": accused.iter().map(|a| a.recipient.id).collect::<Vec<_>>(),
                "positions_read": positions_read,
            })
            .to_string(),
        )
        .map_err(Failure::ledger)?;
    let ranking: Vec<serde_json::Value> = verdict
        .as_ref()
        .map(|v| {
            v.ranking
                .iter()
                .map(|(r, score, bound)| {
                    serde_json::json!({"name": r.name, "recipient_id": r.id, "score": score, "false_accusation_bound": bound})
                })
                .collect()
        })
        .unwrap_or_default();
    if args.json {
        let value = serde_json::json!({
            "found": !accused.is_empty(),
            "method": detection.method,
            "identification": detection.identification,
            "registration": detection.registration.as_ref().map(|r| serde_json::json!({
                "time_scale": r.time_scale,
                "freq_scale": r.freq_scale,
                "pitch_cents": r.pitch_cents(),
                "envelope_correlation": r.correlation,
                "gain_db": r.gain_db,
                "channel_response_db": r.channel_db.iter().map(|(hz, db)| serde_json::json!({"hz": hz, "db": db})).collect::<Vec<_>>(),
                "matched_s": r.matched_s(),
                "pilot_z": detection.informed_pilot_z,
            })),
            "alignment": detection.registration.as_ref().map(|r| r.stretches.clone()).unwrap_or_default(),
            "inserted": detection.registration.as_ref().map(|r| r.inserted.clone()).unwrap_or_default(),
            "removed": detection.registration.as_ref().map(|r| r.removed.clone()).unwrap_or_default(),
            "work": work_found.as_ref().map(|w| serde_json::json!({"id": w.id, "title": w.title, "content_hash": w.content_hash})),
            "accused": accused.iter().map(Accusation::json).collect::<Vec<_>>(),
            "epsilon": args.epsilon,
            "positions_read": positions_read,
            "identifier_blocks_read": identifier_blocks_read,
            "recipients_scored": verdict.as_ref().map_or(0, |v| v.recipients_scored),
            "ranking": ranking,
            "segments": segments,
            "fingerprint_segments": detection.fingerprint.segments,
            "notes": notes,
            "duration_s": detection.duration_s,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("serialises")
        );
    } else if accused.is_empty() {
        println!(
            "nothing found: no copy of a registered work is identified in {} ({:.1} s examined, {positions_read} code positions read)",
            args.leak.display(),
            detection.duration_s
        );
        for n in &notes {
            println!("  note: {n}");
        }
    } else {
        let work = work_found.as_ref().expect("accusations name a work");
        println!(
            "work {} ({}), {} detection, {positions_read} code positions and {identifier_blocks_read} identifier blocks read",
            work.id,
            work.title.as_deref().unwrap_or("untitled"),
            detection.method
        );
        for a in &accused {
            let stretches: Vec<String> = a
                .segments
                .iter()
                .map(|seg| format!("{:.1}–{:.1} s", seg.start_s, seg.end_s))
                .collect();
            println!(
                "ACCUSED {}  false-accusation bound ≤ {:.1e}  by {}  in {}",
                a.recipient.name,
                a.bound,
                a.evidence.join(" and "),
                stretches.join(", ")
            );
        }
        if let Some(v) = &verdict {
            println!("code ranking ({} recipients scored):", v.recipients_scored);
            for (r, score, bound) in &v.ranking {
                println!("  {:<24} score {score:6.2}  bound {bound:.1e}", r.name);
            }
        }
    }
    if !args.json {
        if let Some(r) = &detection.registration {
            print_tamper_map(r);
        }
    }
    if let Some(plot) = &args.plot {
        match &detection.registration {
            Some(r) => crate::plot::tamper_map(plot, r)?,
            None => {
                eprintln!("no plot written: the tamper map needs the master (this trace was blind)")
            }
        }
    }
    Ok(if accused.is_empty() {
        ExitCode::from(exit::NOT_FOUND as u8)
    } else {
        ExitCode::SUCCESS
    })
}

/// The alignment with the master, and what was cut or inserted, as text.
fn print_tamper_map(r: &earmark_align::Registration) {
    println!(
        "registered against the master: time scale {:.3}, pitch {:+.0} cents, {:.1} of {:.1} s matched",
        r.time_scale,
        // Adding zero turns a rounded −0 into 0 for printing.
        r.pitch_cents().round() + 0.0,
        r.matched_s(),
        r.leak_s
    );
    for s in &r.stretches {
        println!(
            "  leak {:7.2}–{:7.2} s  plays master {:7.2}–{:7.2} s",
            s.leak_start_s, s.leak_end_s, s.master_start_s, s.master_end_s
        );
    }
    for e in &r.inserted {
        println!(
            "  INSERTED leak {:7.2}–{:7.2} s (not in the master)",
            e.leak_start_s, e.leak_end_s
        );
    }
    for e in &r.removed {
        println!(
            "  REMOVED  master {:7.2}–{:7.2} s (cut at leak {:.2} s)",
            e.master_start_s, e.master_end_s, e.leak_start_s
        );
    }
}

/// Accusations (by identifier and by code), the work they concern, and the
/// code's verdict.
type Findings = (Vec<Accusation>, Option<Work>, Option<CodeVerdict>);

/// Who the evidence names.
fn accuse(
    home: &Home,
    args: &TraceArgs,
    forced_work: Option<&Work>,
    engine_key: &SecretKey,
    detection: &Evidence,
    notes: &mut Vec<String>,
) -> Result<Findings, Failure> {
    let cipher = IdentifierCipher::new(&home.master);
    let ledger = &home.ledger;
    let half_epsilon = args.epsilon / 2.0;
    let identifier_bound =
        false_accusation_bound(detection.candidates_checked) * detection.bound_factor();
    let mut accused: Vec<Accusation> = Vec::new();
    let mut work_found = forced_work.cloned();
    for found in &detection.found {
        let Some(id) = cipher.open(found.payload) else {
            notes.push(format!(
                "payload {:016x} is not one of this home's identifiers",
                found.payload
            ));
            continue;
        };
        if args.work.is_some_and(|w| w != id.work as i64) {
            notes.push(format!("a copy of work {} is also present", id.work));
            continue;
        }
        let work = ledger.work(id.work as i64).map_err(Failure::ledger)?;
        let recipient = ledger
            .recipient(id.recipient as i64)
            .map_err(Failure::ledger)?;
        let (Some(work), Some(recipient)) = (work, recipient) else {
            notes.push("an identifier names a work or recipient missing from the ledger".into());
            continue;
        };
        if ledger
            .copies_for(work.id, recipient.id)
            .map_err(Failure::ledger)?
            .is_empty()
        {
            notes.push(format!(
                "{} never received a recorded copy of work {}",
                recipient.name, work.id
            ));
            continue;
        }
        if identifier_bound > half_epsilon {
            continue;
        }
        if work_found.as_ref().is_some_and(|w| w.id != work.id) {
            notes.push(format!("a copy of work {} is also present", work.id));
            continue;
        }
        accused.push(Accusation {
            recipient,
            evidence: vec!["identifier"],
            bound: identifier_bound,
            score: found.pilot_z as f64,
            mark_p_value: Some(found.p_value),
            segments: found.segments.clone(),
        });
        work_found.get_or_insert(work);
    }
    // Informed: each recipient's own identifier correlated with the
    // readings of every stretch read, with a union bound over recipients
    // and stretches.
    let informed_work = detection.identified_work.as_ref().or(forced_work);
    if let (false, Some(work)) = (detection.informed_soft.is_empty(), informed_work) {
        let copies = ledger.copies_of(work.id).map_err(Failure::ledger)?;
        let payloads: Vec<u64> = copies
            .iter()
            .filter_map(|c| u64::from_str_radix(&c.payload, 16).ok())
            .collect();
        let payloads = earmark_engine::KnownPayloads::new(engine_key, &payloads);
        let union =
            (payloads.len() * detection.informed_soft.len()) as f64 * detection.bound_factor();
        // Parts before the whole leak: a recipient found in a part is located
        // by it, not by the whole leak's pilot.
        for (k, (segments, soft)) in detection.informed_soft.iter().enumerate().rev() {
            let norm = soft.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            for scored in payloads.scores(soft) {
                let tail = earmark_engine::payload_tail(soft, scored.score);
                let bound = (tail * union).min(1.0);
                if bound > half_epsilon {
                    break;
                }
                let copy = copies
                    .iter()
                    .find(|c| u64::from_str_radix(&c.payload, 16).ok() == Some(scored.payload))
                    .expect("scored payloads come from copies");
                let recipient = ledger
                    .recipient(copy.recipient_id)
                    .map_err(Failure::ledger)?
                    .expect("copies name ledger recipients");
                match accused.iter_mut().find(|a| a.recipient.id == recipient.id) {
                    Some(a) => {
                        a.bound = a.bound.min(bound);
                        a.mark_p_value = Some(a.mark_p_value.unwrap_or(1.0).min(tail));
                        if k >= detection.informed_whole {
                            a.segments.extend(segments.iter().copied());
                            earmark_engine::detect::join_segments(&mut a.segments);
                        }
                    }
                    None => accused.push(Accusation {
                        recipient,
                        evidence: vec!["identifier"],
                        bound,
                        score: scored.score / norm.max(1e-12),
                        mark_p_value: Some(tail),
                        segments: segments.clone(),
                    }),
                }
                work_found.get_or_insert(work.clone());
            }
        }
    }
    // The code: against the work found (or given), else against every work
    // with copies, paying for each in the union bound.
    let code_works: Vec<Work> = match (&work_found, &detection.identified_work) {
        (Some(w), _) | (None, Some(w)) => vec![w.clone()],
        (None, None) if detection.fingerprint.positions.is_empty() => Vec::new(),
        (None, None) => ledger
            .works()
            .map_err(Failure::ledger)?
            .into_iter()
            .filter(|w| w.kind == earmark_ledger::AUDIO)
            .collect(),
    };
    let verdict = code_verdict(
        home,
        &code_works,
        &detection.fingerprint,
        half_epsilon,
        detection.bound_factor(),
    )?;
    if let Some(verdict) = &verdict {
        for (recipient, score, bound) in &verdict.ranking {
            if *bound > half_epsilon {
                break;
            }
            match accused.iter_mut().find(|a| a.recipient.id == recipient.id) {
                Some(a) => {
                    a.evidence.push("code");
                    a.bound = a.bound.min(*bound);
                }
                None => accused.push(Accusation {
                    recipient: recipient.clone(),
                    evidence: vec!["code"],
                    bound: *bound,
                    score: *score,
                    mark_p_value: None,
                    segments: detection.fingerprint.segments.clone(),
                }),
            }
        }
        if accused.iter().any(|a| a.evidence.contains(&"code")) {
            work_found.get_or_insert(verdict.work.clone());
        }
    }
    Ok((accused, work_found, verdict))
}

/// What the leak yields, by either method.
struct Evidence {
    /// "informed" (read against the stored master) or "blind".
    method: &'static str,
    /// Payloads read.
    found: Vec<earmark_engine::Found>,
    /// Payload candidates whose tag was checked.
    candidates_checked: usize,
    /// Fingerprint positions read.
    fingerprint: earmark_engine::FingerprintReading,
    /// Duration of the leak, seconds.
    duration_s: f64,
    /// The work the landmark index named, if any.
    identified_work: Option<Work>,
    /// The landmark match behind it.
    identification: Option<earmark_align::Match>,
    /// The registration against the master (informed only).
    registration: Option<earmark_align::Registration>,
    /// Pilot statistic of the informed reading.
    informed_pilot_z: Option<f32>,
    /// The informed reading's soft identifier bits, per stretch read.
    informed_soft: Vec<(Vec<earmark_engine::Segment>, Vec<f32>)>,
    /// How many of `informed_soft`'s first entries cover the whole leak.
    informed_whole: usize,
}

impl Evidence {
    /// Factor on every bound: with the master at hand both methods may run
    /// (informed, then blind if it names no one), so each accusation's bound
    /// pays for both in the union bound.
    fn bound_factor(&self) -> f64 {
        if self.method == "blind" {
            1.0
        } else {
            2.0
        }
    }
}

/// Identifies the work (given, or by landmarks), reads the leak against its
/// stored master if there is one, and falls back to blind detection
/// otherwise, saying why in `notes`.
fn gather_evidence(
    home: &Home,
    args: &TraceArgs,
    forced_work: Option<&Work>,
    engine_key: &SecretKey,
    notes: &mut Vec<String>,
) -> Result<Evidence, Failure> {
    let leak = crate::informed::leak_signal(&args.leak)?;
    let mut identified_work = None;
    let mut identification = None;
    if let Some(leak) = &leak {
        let work = match forced_work {
            Some(w) => Some(w.clone()),
            None => match crate::informed::identify(home, leak)? {
                Some(found) => {
                    identification = Some(found);
                    let work = home
                        .ledger
                        .work(found.work as i64)
                        .map_err(Failure::ledger)?;
                    if work.is_none() {
                        notes.push(format!(
                            "the landmark index names work {}, which the ledger does not hold",
                            found.work
                        ));
                    }
                    work
                }
                None => {
                    notes.push("no registered work's landmarks match the leak".into());
                    None
                }
            },
        };
        if let Some(work) = work {
            match crate::informed::read(home, &work, leak, engine_key)? {
                Ok(informed) => {
                    return Ok(Evidence {
                        method: "informed",
                        // Each recipient's identifier is correlated with the
                        // readings instead of decoded (see `accuse`).
                        found: Vec::new(),
                        candidates_checked: 0,
                        informed_soft: informed.reading.soft_bits.clone(),
                        informed_whole: informed.reading.whole_entries,
                        fingerprint: informed.reading.fingerprint.clone(),
                        duration_s: informed.registration.leak_s,
                        identified_work: Some(work),
                        identification,
                        informed_pilot_z: Some(informed.reading.pilot_z),
                        registration: Some(informed.registration),
                    });
                }
                Err(reason) => notes.push(format!(
                    "informed tracing not possible ({reason}); traced blind"
                )),
            }
            identified_work = Some(work);
        }
    } else {
        notes.push(format!(
            "the leak is longer than {:.0} s: traced blind",
            crate::informed::MAX_INFORMED_S
        ));
    }
    let detection = crate::extract_file(&args.leak, engine_key)?;
    Ok(Evidence {
        method: "blind",
        found: detection.found,
        candidates_checked: detection.candidates_checked,
        fingerprint: detection.fingerprint,
        duration_s: detection.duration_s,
        identified_work,
        identification,
        registration: None,
        informed_pilot_z: None,
        informed_soft: Vec::new(),
        informed_whole: 0,
    })
}

/// Scores every recipient of `works` against the fingerprint positions the
/// leak carries; the best-scoring work's ranking with union bounds over
/// every recipient scored (of every work tried). `None` if nothing was read.
fn code_verdict(
    home: &Home,
    works: &[Work],
    fingerprint: &earmark_engine::FingerprintReading,
    budget: f64,
    bound_factor: f64,
) -> Result<Option<CodeVerdict>, Failure> {
    if fingerprint.positions.is_empty() || works.is_empty() {
        return Ok(None);
    }
    let mut per_work = Vec::new();
    for work in works {
        let ids = home
            .ledger
            .recipients_of(work.id)
            .map_err(Failure::ledger)?;
        if !ids.is_empty() {
            per_work.push((work, ids));
        }
    }
    let scored: usize = per_work.iter().map(|(_, ids)| ids.len()).sum();
    let mut best: Option<CodeVerdict> = None;
    for (work, ids) in per_work {
        let code = TardosCode::new(&home.master, work.id as u32, FINGERPRINT_POSITIONS);
        let readings = code.readings(&fingerprint.positions);
        if readings.is_empty() {
            continue;
        }
        let indices: Vec<u32> = ids.iter().map(|&id| id as u32).collect();
        let mut ranking = Vec::new();
        for ranked in code.rank(&readings, &indices, scored, RANKING_SHOWN) {
            let recipient = home
                .ledger
                .recipient(ranked.recipient as i64)
                .map_err(Failure::ledger)?
                .expect("copies name ledger recipients");
            ranking.push((
                recipient,
                ranked.score,
                (ranked.bound * bound_factor).min(1.0),
            ));
        }
        let strongest = ranking.first().map_or(1.0, |r| r.2);
        if best
            .as_ref()
            .is_none_or(|b| strongest < b.ranking.first().map_or(1.0, |r| r.2))
        {
            best = Some(CodeVerdict {
                work: work.clone(),
                positions_read: readings.len(),
                recipients_scored: scored,
                ranking,
            });
        }
    }
    // Only a work some accusation could come from is worth showing.
    Ok(best.filter(|b| b.ranking.first().is_some_and(|r| r.2 <= budget) || works.len() == 1))
}

/// `earmark work …`.
pub fn work(home: Option<&Path>, action: WorkAction) -> Result<ExitCode, Failure> {
    let home = open(home)?;
    let ledger = &home.ledger;
    let get = |id: i64| -> Result<Work, Failure> {
        ledger
            .work(id)
            .map_err(Failure::ledger)?
            .ok_or(LedgerError::UnknownWork(id))
            .map_err(Failure::ledger)
    };
    let summary = |w: &Work| -> Result<serde_json::Value, Failure> {
        Ok(serde_json::json!({
            "id": w.id,
            "kind": w.kind,
            "title": w.title,
            "words": w.words,
            "duration_s": w.duration_s,
            "rate": w.rate,
            "channels": w.channels,
            "recipients": ledger.recipients_of(w.id).map_err(Failure::ledger)?.len(),
            "registered": w.created_at,
            "content_hash": w.content_hash,
            "master_kept": home.master_path(&w.content_hash).is_file(),
        }))
    };
    match action {
        WorkAction::List { json } => {
            let works = ledger.works().map_err(Failure::ledger)?;
            let rows = works.iter().map(summary).collect::<Result<Vec<_>, _>>()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("serialises")
                );
            } else if rows.is_empty() {
                println!("no works registered yet (earmark mark registers them)");
            } else {
                println!(
                    "{:>4}  {:<10} {:<28} {:>11} {:>7} {:>3} {:>10}  {:<20} master",
                    "id", "kind", "title", "length", "rate", "ch", "recipients", "registered"
                );
                for r in &rows {
                    let number = |key: &str| r[key].as_i64().unwrap_or(0);
                    let length = match r["words"].as_i64() {
                        Some(words) => format!("{words} words"),
                        None => format!("{:.1} s", r["duration_s"].as_f64().unwrap_or(0.0)),
                    };
                    println!(
                        "{:>4}  {:<10} {:<28} {:>11} {:>7} {:>3} {:>10}  {:<20} {}",
                        number("id"),
                        r["kind"].as_str().unwrap_or(""),
                        r["title"].as_str().unwrap_or("untitled"),
                        length,
                        number("rate"),
                        number("channels"),
                        number("recipients"),
                        r["registered"]
                            .as_str()
                            .unwrap_or("")
                            .get(..19)
                            .unwrap_or(""),
                        if r["master_kept"] == true {
                            "kept"
                        } else {
                            "forgotten"
                        }
                    );
                }
            }
        }
        WorkAction::Show { id, json } => {
            let w = get(id)?;
            let mut value = summary(&w)?;
            let copies = ledger.copies_of(id).map_err(Failure::ledger)?;
            let mut listed = Vec::new();
            for c in &copies {
                let name = ledger
                    .recipient(c.recipient_id)
                    .map_err(Failure::ledger)?
                    .map(|r| r.name);
                listed.push(serde_json::json!({
                    "recipient": name,
                    "recipient_id": c.recipient_id,
                    "format": c.format,
                    "path": c.path,
                    "output_hash": c.output_hash,
                    "delivered": c.created_at,
                }));
            }
            value["copies"] = serde_json::Value::Array(listed);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).expect("serialises")
                );
            } else if let Some(words) = w.words {
                println!(
                    "work {} ({}): transcript, {words} words, registered {}",
                    w.id,
                    w.title.as_deref().unwrap_or("untitled"),
                    w.created_at
                );
            } else {
                println!(
                    "work {} ({}): {:.1} s, {} Hz, {} channel(s), registered {}",
                    w.id,
                    w.title.as_deref().unwrap_or("untitled"),
                    w.duration_s,
                    w.rate,
                    w.channels,
                    w.created_at
                );
            }
            if !json {
                println!("content SHA-256 {}", w.content_hash);
                println!(
                    "master: {}",
                    if value["master_kept"] == true {
                        home.master_path(&w.content_hash).display().to_string()
                    } else {
                        "forgotten (tracing is blind)".to_string()
                    }
                );
                for c in value["copies"].as_array().into_iter().flatten() {
                    println!(
                        "  {:<24} {:<5} {}  {}",
                        c["recipient"].as_str().unwrap_or("?"),
                        c["format"].as_str().unwrap_or(""),
                        c["delivered"].as_str().unwrap_or(""),
                        c["path"].as_str().unwrap_or("")
                    );
                }
            }
        }
        WorkAction::Forget { id, yes } => {
            let w = get(id)?;
            if !yes {
                if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    return Err(Failure::usage(format!(
                        "forgetting the master of work {id} needs confirmation: pass --yes"
                    )));
                }
                eprint!(
                    "remove the master of work {id} ({})? tracing it falls back to blind detection. Type the work id to confirm: ",
                    w.title.as_deref().unwrap_or("untitled")
                );
                let mut answer = String::new();
                std::io::stdin()
                    .read_line(&mut answer)
                    .map_err(|e| Failure::usage(e.to_string()))?;
                if answer.trim() != id.to_string() {
                    return Err(Failure::usage("not confirmed; nothing removed".into()));
                }
            }
            let removed = home
                .forget_master(&w.content_hash)
                .map_err(Failure::ledger)?;
            ledger
                .audit(
                    "forget",
                    &serde_json::json!({"work": id, "content_hash": w.content_hash, "removed": removed})
                        .to_string(),
                )
                .map_err(Failure::ledger)?;
            if removed {
                println!(
                    "removed the master of work {id}; its records stay, and tracing it is now blind (the watermark alone)"
                );
            } else {
                println!("work {id} had no master in the store; tracing it is blind");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `earmark audit …`.
pub fn audit(home: Option<&Path>, action: AuditAction) -> Result<ExitCode, Failure> {
    let home = open(home)?;
    match action {
        AuditAction::Verify => match home.ledger.verify_audit().map_err(Failure::ledger)? {
            Ok(rows) => {
                println!("audit chain intact: {rows} rows");
                Ok(ExitCode::SUCCESS)
            }
            Err(problem) => Err(Failure {
                code: exit::LEDGER,
                message: format!("audit chain broken: {problem}"),
            }),
        },
        AuditAction::Log { json } => {
            let log = home.ledger.audit_log().map_err(Failure::ledger)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&log).expect("serialises")
                );
            } else {
                for e in log {
                    println!("{:>6}  {}  {:<10} {}", e.seq, e.at, e.action, e.detail);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
