//! The commands that use the home: `init`, `recipient`, `mark`, `trace`, `audit`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ParallelProgressIterator, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tracemark_codes::{false_accusation_bound, Identifier, IdentifierCipher};
use tracemark_engine::layout::BLOCK_S;
use tracemark_engine::SearchGrid;
use tracemark_keys::{Label, SecretKey};
use tracemark_ledger::{Copy, Home, LedgerError, Recipient};

use crate::exit::{self, Failure};

/// Label of the engine key every copy of a home is marked with: one key, so
/// that `trace` needs one extraction whatever the number of works; the
/// payload (sealed by `tracemark-codes`) says which work and recipient.
pub const ENGINE_KEY_LABEL: Label = Label("tracemark/v1/home/engine-key");

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

/// Arguments of `mark`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["to", "all", "recipients"])))]
pub struct MarkArgs {
    /// The recording to mark (any readable format).
    work: PathBuf,
    /// Recipients by name, comma-separated.
    #[arg(long, value_delimiter = ',')]
    to: Vec<String>,
    /// Every recipient in the ledger.
    #[arg(long)]
    all: bool,
    /// Recipients named in a CSV (its `name` column).
    #[arg(long)]
    recipients: Option<PathBuf>,
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

fn open(home: Option<&Path>) -> Result<Home, Failure> {
    let root = tracemark_ledger::locate_home(home).map_err(Failure::ledger)?;
    Home::open(&root).map_err(Failure::ledger)
}

/// `tracemark init`.
pub fn init(home: Option<&Path>) -> Result<ExitCode, Failure> {
    let root = tracemark_ledger::locate_home(home).map_err(Failure::ledger)?;
    tracemark_ledger::init(&root).map_err(Failure::ledger)?;
    println!(
        "created a tracemark home at {} (master key mode 0600, SQLite ledger)",
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `tracemark recipient …`.
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
fn file_hash(path: &Path) -> Result<String, Failure> {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file-name-safe form of a recipient's name.
fn slug(name: &str) -> String {
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
fn names_in_csv(path: &Path) -> Result<Vec<String>, Failure> {
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

/// `tracemark mark`.
pub fn mark(home: Option<&Path>, args: MarkArgs) -> Result<ExitCode, Failure> {
    let home = open(home)?;
    let ledger = &home.ledger;
    let recipients = if args.all {
        ledger.recipients().map_err(Failure::ledger)?
    } else if let Some(csv) = &args.recipients {
        ledger
            .recipients_named(&names_in_csv(csv)?)
            .map_err(Failure::ledger)?
    } else {
        ledger.recipients_named(&args.to).map_err(Failure::ledger)?
    };
    if recipients.is_empty() {
        return Err(Failure::recipients("no recipients to mark for".into()));
    }
    let content_hash = file_hash(&args.work)?;
    let audio = tracemark_audio_io::read(&args.work).map_err(Failure::audio)?;
    let work = ledger
        .register_work(
            &content_hash,
            args.title.as_deref(),
            audio.duration_s(),
            audio.rate,
            audio.channels.len(),
        )
        .map_err(Failure::ledger)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::write(format!("cannot create {}: {e}", args.out.display())))?;
    let engine_key = home.master.derive(ENGINE_KEY_LABEL);
    let cipher = IdentifierCipher::new(&home.master);
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
            prepare_copy(&audio, &engine_key, payload, args.format, &partial)?;
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

/// Embeds `payload`, writes the copy to `partial` (fsynced), and checks that
/// it reads back before it may count as delivered. Lossy formats are marked,
/// then encoded, then checked: the check reads the encoded file.
fn prepare_copy(
    audio: &tracemark_audio_io::Audio,
    key: &SecretKey,
    payload: u64,
    format: Format,
    partial: &Path,
) -> Result<(), Failure> {
    let mut channels = audio.channels.clone();
    tracemark_engine::embed(&mut channels, audio.rate, key, payload, 1.0)
        .map_err(Failure::engine)?;
    let copy = tracemark_audio_io::Audio {
        channels,
        ..audio.clone()
    };
    match format.encoder() {
        None => tracemark_audio_io::write(partial, &copy).map_err(Failure::audio)?,
        Some(options) => encode_lossy(&copy, options, partial)?,
    }
    let back = tracemark_audio_io::read(partial).map_err(Failure::audio)?;
    let detection = tracemark_engine::extract(&back.channels, back.rate, key, &SearchGrid::exact())
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
    copy: &tracemark_audio_io::Audio,
    options: &[&str],
    output: &Path,
) -> Result<(), Failure> {
    let dir = output.parent().unwrap_or(Path::new("."));
    let wav = tempfile::Builder::new()
        .prefix(".tracemark-encode-")
        .suffix(".wav")
        .tempfile_in(dir)
        .map_err(|e| Failure::write(format!("{}: {e}", dir.display())))?;
    tracemark_audio_io::write(wav.path(), copy).map_err(Failure::audio)?;
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

/// `tracemark trace`.
pub fn trace(home: Option<&Path>, args: TraceArgs) -> Result<ExitCode, Failure> {
    let home = open(home)?;
    let ledger = &home.ledger;
    if let Some(id) = args.work {
        ledger
            .work(id)
            .map_err(Failure::ledger)?
            .ok_or(LedgerError::UnknownWork(id))
            .map_err(Failure::ledger)?;
    }
    let engine_key = home.master.derive(ENGINE_KEY_LABEL);
    let cipher = IdentifierCipher::new(&home.master);
    let detection = crate::extract_file(&args.leak, &engine_key)?;
    let bound = false_accusation_bound(detection.candidates_checked);
    let mut accused = Vec::new();
    let mut notes = Vec::new();
    let mut work_found = None;
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
        let seconds: f64 = found.segments.iter().map(|s| s.end_s - s.start_s).sum();
        accused.push(serde_json::json!({
            "name": recipient.name,
            "recipient_id": recipient.id,
            "score": found.pilot_z,
            "false_accusation_bound": bound,
            "mark_p_value": found.p_value,
            "positions_read": (seconds / BLOCK_S).floor() as u64,
            "segments": found.segments,
        }));
        work_found.get_or_insert(work);
    }
    let accepted: Vec<_> = accused
        .iter()
        .filter(|a| a["false_accusation_bound"].as_f64().unwrap_or(1.0) <= args.epsilon)
        .cloned()
        .collect();
    let positions_read: u64 = accepted
        .iter()
        .map(|a| a["positions_read"].as_u64().unwrap_or(0))
        .sum();
    let segments: Vec<serde_json::Value> = accepted
        .iter()
        .flat_map(|a| a["segments"].as_array().cloned().unwrap_or_default())
        .collect();
    let leak_hash = file_hash(&args.leak)?;
    ledger
        .audit(
            "trace",
            &serde_json::json!({
                "leak_hash": leak_hash,
                "work": work_found.as_ref().map(|w| w.id),
                "accused": accepted.iter().map(|a| a["recipient_id"].clone()).collect::<Vec<_>>(),
            })
            .to_string(),
        )
        .map_err(Failure::ledger)?;
    if args.json {
        let value = serde_json::json!({
            "found": !accepted.is_empty(),
            "method": "blind",
            "work": work_found.as_ref().map(|w| serde_json::json!({"id": w.id, "title": w.title, "content_hash": w.content_hash})),
            "accused": accepted,
            "epsilon": args.epsilon,
            "positions_read": positions_read,
            "segments": segments,
            "notes": notes,
            "duration_s": detection.duration_s,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("serialises")
        );
    } else if accepted.is_empty() {
        println!(
            "nothing found: no copy of a registered work is identified in {} ({:.1} s examined)",
            args.leak.display(),
            detection.duration_s
        );
        for n in &notes {
            println!("  note: {n}");
        }
    } else {
        let work = work_found.as_ref().expect("accusations name a work");
        println!(
            "work {} ({}), blind detection, {positions_read} identifier blocks read",
            work.id,
            work.title.as_deref().unwrap_or("untitled")
        );
        for a in &accepted {
            let segments: Vec<String> = a["segments"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .map(|seg| {
                            format!(
                                "{:.1}–{:.1} s",
                                seg["start_s"].as_f64().unwrap_or(0.0),
                                seg["end_s"].as_f64().unwrap_or(0.0)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "ACCUSED {}  false-accusation bound ≤ {:.1e}  pilot z {:.1}  in {}",
                a["name"].as_str().unwrap_or("?"),
                a["false_accusation_bound"].as_f64().unwrap_or(1.0),
                a["score"].as_f64().unwrap_or(0.0),
                segments.join(", ")
            );
        }
    }
    Ok(if accepted.is_empty() {
        ExitCode::from(exit::NOT_FOUND as u8)
    } else {
        ExitCode::SUCCESS
    })
}

/// `tracemark audit …`.
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
