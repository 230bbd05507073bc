//! The commands that use the home: `init`, `recipient`, `mark`, `trace`,
//! `work`, `audit`. Each parses its arguments, calls the library, and
//! renders the report as text or JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use earmark::{Epsilon, Home, MarkRequest, Selection, TraceReport, TraceRequest};

use crate::exit::{self, Failure};
use crate::progress::Bar;

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
        /// Print the recipient added as JSON.
        #[arg(long)]
        json: bool,
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
        /// Print the recipients added as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rename a recipient; their copies keep naming them.
    Rename {
        /// Current name.
        name: String,
        /// New name.
        new_name: String,
        /// Print the recipient as renamed, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a recipient. One who holds copies is retired instead: kept so
    /// that their copies still name them, but never marked for again.
    Remove {
        /// Name.
        name: String,
        /// Print what was done as JSON (`outcome`: deleted or retired).
        #[arg(long)]
        json: bool,
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
        /// Print what was removed as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `audit` subcommands.
#[derive(Subcommand)]
pub enum AuditAction {
    /// Check the hash chain and every recipient, work and copy record: any
    /// edited or deleted one is reported (exit 11).
    Verify {
        /// Print the check as JSON (also when it fails).
        #[arg(long)]
        json: bool,
    },
    /// Show the audit log.
    Log {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Output formats of `mark`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// WAV, the input's sample format.
    Wav,
    /// FLAC.
    Flac,
    /// MP3 at 192 kbit/s (LAME, through ffmpeg).
    Mp3,
    /// Opus at 64 kbit/s in Ogg (through ffmpeg).
    Opus,
}

impl From<FormatArg> for earmark::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Wav => earmark::Format::Wav,
            FormatArg::Flac => earmark::Format::Flac,
            FormatArg::Mp3 => earmark::Format::Mp3,
            FormatArg::Opus => earmark::Format::Opus,
        }
    }
}

/// Whom a `mark` is for (one of the three).
#[derive(Args)]
#[group(id = "who", required = true, multiple = false)]
pub struct Who {
    /// A recipient by exact name; repeat for more (`--to Ana --to "Smith,
    /// John"`). A comma is part of a name, never a separator.
    #[arg(long, value_name = "NAME")]
    to: Vec<String>,
    /// Every recipient in the ledger.
    #[arg(long)]
    all: bool,
    /// Recipients named in a CSV (its `name` column).
    #[arg(long)]
    recipients: Option<PathBuf>,
}

impl Who {
    pub fn selection(&self) -> Selection {
        if self.all {
            Selection::All
        } else if let Some(csv) = &self.recipients {
            Selection::Csv(csv.clone())
        } else {
            Selection::Named(self.to.clone())
        }
    }
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
    format: FormatArg,
    /// Title recorded with the work.
    #[arg(long)]
    title: Option<String>,
    #[command(flatten)]
    marking: crate::marking::MarkingArgs,
    /// Print the copies delivered as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `trace`.
#[derive(Args)]
pub struct TraceArgs {
    /// The leaked audio.
    leak: PathBuf,
    /// Only consider this work (ledger id).
    #[arg(long)]
    work: Option<i64>,
    /// Largest acceptable probability of accusing anyone innocent, in (0, 1).
    #[arg(long, default_value = "1e-6", allow_hyphen_values = true)]
    epsilon: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Draw the tamper map (leak timeline against the master) as a PNG.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

/// The `--epsilon` a command was given, checked.
pub fn epsilon(text: &str) -> Result<Epsilon, Failure> {
    text.parse::<Epsilon>()
        .map_err(|e| Failure::usage(format!("--epsilon: {e}")))
}

/// Homes this run opened, closed by [`close_opened`] when it ends.
static OPENED: std::sync::Mutex<Vec<Home>> = std::sync::Mutex::new(Vec::new());

pub(crate) async fn open(home: Option<&Path>) -> Result<Home, Failure> {
    let home = Home::open(&Home::locate(home)?).await?;
    OPENED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(home.clone());
    Ok(home)
}

/// Closes every home this run opened, so that each ledger file alone holds
/// everything recorded (see [`Home::close`]).
pub(crate) async fn close_opened() {
    let homes = std::mem::take(&mut *OPENED.lock().unwrap_or_else(|e| e.into_inner()));
    for home in homes {
        home.close().await;
    }
}

/// Prints `value` as pretty JSON.
pub(crate) fn print_json(value: &impl serde::Serialize) {
    jsonln!(value);
}

/// `earmark init`.
pub async fn init(home: Option<&Path>, json: bool) -> Result<ExitCode, Failure> {
    let root = Home::locate(home)?;
    Home::init(&root).await?;
    if json {
        print_json(&serde_json::json!({ "home": root }));
    } else {
        outln!(
            "created an earmark home at {} (master key mode 0600, SQLite ledger)",
            root.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `earmark backup`.
pub async fn backup(
    home: Option<&Path>,
    dest: &Path,
    with_key: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let report = open(home).await?.backup(dest, with_key).await?;
    if json {
        print_json(&report);
    } else {
        let m = &report.manifest;
        outln!(
            "backed up {}, {}, {}, {} and {} to {}{}",
            count(m.audit_rows, "audit row", "audit rows"),
            count(m.recipients, "recipient", "recipients"),
            count(m.works, "work", "works"),
            count(m.copies, "copy", "copies"),
            count(m.masters.len(), "master", "masters"),
            report.path.display(),
            if m.key_included {
                " (with the master key: keep it as safe as the home)"
            } else {
                " (without the master key: restoring needs it with --key)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `earmark restore`.
pub async fn restore(
    home: Option<&Path>,
    backup: &Path,
    key: Option<&Path>,
    allow_rollback: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let root = Home::locate(home)?;
    let report = Home::restore(backup, &root, key, allow_rollback).await?;
    if json {
        print_json(&report);
    } else {
        let r = &report.records;
        outln!(
            "restored the home at {} from the backup of {}: {}; {}, {} and {} authenticated",
            report.home.display(),
            report.manifest.created_at,
            count(r.audit_rows, "audit row", "audit rows"),
            count(r.recipients, "recipient", "recipients"),
            count(r.works, "work", "works"),
            count(r.copies, "copy", "copies")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `earmark recipient …`.
pub async fn recipient(home: Option<&Path>, action: RecipientAction) -> Result<ExitCode, Failure> {
    let home = open(home).await?;
    match action {
        RecipientAction::Add {
            name,
            email,
            org,
            json,
        } => {
            let r = home.add_recipient(&name, email.as_deref(), org.as_deref()).await?;
            if json {
                print_json(&r);
            } else {
                outln!("added recipient {} ({})", r.name, r.id);
            }
        }
        RecipientAction::List { json } => {
            let all = home.recipients().await?;
            if json {
                print_json(&all);
            } else {
                for r in all {
                    outln!(
                        "{:>6}  {}  {}  {}{}",
                        r.id,
                        r.name,
                        r.email.as_deref().unwrap_or("-"),
                        r.org.as_deref().unwrap_or("-"),
                        if r.retired_at.is_some() {
                            "  (removed; holds copies)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        RecipientAction::Import { file, json } => {
            let source = std::fs::File::open(&file).map_err(|e| {
                Failure::from(earmark::Error::Ledger(earmark::LedgerError::Io {
                    path: file.clone(),
                    source: e,
                }))
            })?;
            let added = home.import_recipients(std::io::BufReader::new(source), &file).await?;
            if json {
                print_json(&added);
            } else {
                outln!(
                    "imported {} recipients from {}",
                    added.len(),
                    file.display()
                );
            }
        }
        RecipientAction::Rename {
            name,
            new_name,
            json,
        } => {
            let r = home.rename_recipient(&name, &new_name).await?;
            if json {
                print_json(&r);
            } else {
                outln!("renamed recipient {} to {}", r.id, r.name);
            }
        }
        RecipientAction::Remove { name, json } => match home.remove_recipient(&name).await? {
            removal if json => print_json(&removal),
            earmark::Removal::Deleted(r) => outln!("removed recipient {} ({})", r.name, r.id),
            earmark::Removal::Retired { recipient, copies } => outln!(
                "retired recipient {} ({}): they hold {copies} copies, which still name them; they will not be marked for again",
                recipient.name,
                recipient.id
            ),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// `earmark mark`.
pub async fn mark(home: Option<&Path>, args: MarkArgs) -> Result<ExitCode, Failure> {
    let home = open(home).await?;
    let request = MarkRequest {
        work: args.work,
        recipients: args.who.selection(),
        out: args.out.into(),
        format: args.format.into(),
        title: args.title,
        settings: args.marking.settings(),
    };
    let report = home.mark(&request, std::sync::Arc::new(Bar::new())).await?;
    if let Some(warning) = &report.warning {
        eprintln!("earmark: warning: {}", earmark::terminal_safe(warning));
    }
    if args.json {
        print_json(&report);
    } else {
        outln!(
            "marked work {} ({}) for {} recipients into {}",
            report.work,
            report.title,
            report.copies.len(),
            report.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `earmark trace`.
pub async fn trace(home: Option<&Path>, args: TraceArgs) -> Result<ExitCode, Failure> {
    let epsilon = epsilon(&args.epsilon)?;
    let home = open(home).await?;
    let request = TraceRequest {
        leak: args.leak.clone(),
        work: args.work,
        epsilon,
    };
    // The plot's file is created before the trace runs, so that a path that
    // cannot be used is refused before any work, and nothing is overwritten.
    let plot = match &args.plot {
        Some(path) => Some((home.create_output(path)?, path)),
        None => None,
    };
    let report = home
        .trace(&request, std::sync::Arc::new(Bar::new()))
        .await
        .inspect_err(|_| {
            if let Some((_, path)) = &plot {
                let _ = std::fs::remove_file(path);
            }
        })?;
    if args.json {
        print_json(&report);
    } else {
        print_trace(&report, &args.leak);
    }
    if let Some((file, path)) = plot {
        match &report.tamper_map {
            Some(r) => crate::plot::tamper_map(file, path, r)?,
            None => {
                drop(file);
                let _ = std::fs::remove_file(path);
                eprintln!("no plot written: the tamper map needs the master (this trace was blind)")
            }
        }
    }
    Ok(if report.found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::NOT_FOUND as u8)
    })
}

/// `n` with its noun, singular or plural: "1 work", "2 works".
fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// An RFC 3339 time to the second, so that columns line up whatever the
/// fraction the ledger recorded.
fn to_the_second(at: &str) -> String {
    match at.get(..19) {
        Some(seconds) if at.len() > 19 => format!("{seconds}Z"),
        _ => at.to_string(),
    }
}

fn print_trace(report: &TraceReport, leak: &Path) {
    if report.accused.is_empty() {
        print_nobody_accused(report, leak);
    } else {
        let work = report.work.as_ref().expect("accusations name a work");
        outln!(
            "work {} ({}), {} detection, {} code positions and {} identifier blocks read",
            work.id,
            work.title.as_deref().unwrap_or("untitled"),
            report.method.as_str(),
            report.positions_read,
            report.identifier_blocks_read
        );
        for a in &report.accused {
            let stretches: Vec<String> = a
                .segments
                .iter()
                .map(|seg| format!("{:.1}–{:.1} s", seg.start_s, seg.end_s))
                .collect();
            let evidence: Vec<&str> = a.evidence.iter().map(|e| e.as_str()).collect();
            outln!(
                "ACCUSED {}  false-accusation bound ≤ {:.1e}  by {}  in {}",
                a.name,
                a.false_accusation_bound,
                evidence.join(" and "),
                stretches.join(", ")
            );
        }
        if !report.ranking.is_empty() {
            outln!(
                "code ranking ({} recipients scored):",
                report.recipients_scored
            );
            for r in &report.ranking {
                outln!(
                    "  {:<24} score {:6.2}  bound {:.1e}",
                    r.name,
                    r.score,
                    r.false_accusation_bound
                );
            }
        }
    }
    if let Some(r) = &report.tamper_map {
        print_tamper_map(r);
    }
    // Every note, accused or not, as the JSON has them.
    for n in &report.notes {
        outln!("note: {n}");
    }
}

/// Why nobody is accused: the evidence ε set aside, else the work the leak
/// plays if one was recognised, else that nothing was found.
fn print_nobody_accused(report: &TraceReport, leak: &Path) {
    if !report.withheld.is_empty() {
        outln!(
            "nobody accused at ε = {:.1e}: the evidence below is too weak for it, though the default ε (1e-6) would accept it",
            report.epsilon.get()
        );
        for w in &report.withheld {
            let evidence: Vec<&str> = w.evidence.iter().map(|e| e.as_str()).collect();
            outln!(
                "  withheld {}  false-accusation bound ≤ {:.1e}  by {} (named at any ε of at least that)",
                w.name,
                w.false_accusation_bound,
                evidence.join(" and ")
            );
        }
    } else if let Some(r) = &report.registration {
        outln!(
            "nobody accused: {} plays a registered work ({:.1} s matched), but no mark in it names anyone at ε = {:.1e} ({} code positions read)",
            leak.display(),
            r.matched_s,
            report.epsilon.get(),
            report.positions_read
        );
    } else {
        outln!(
            "nothing found: no copy of a registered work is identified in {} ({:.1} s examined, {} code positions read)",
            leak.display(),
            report.duration_s,
            report.positions_read
        );
    }
}

/// The alignment with the master, and what was cut or inserted, as text.
fn print_tamper_map(r: &earmark::Registration) {
    outln!(
        "registered against the master: time scale {:.3}, pitch {:+.0} cents, {:.1} of {:.1} s matched",
        r.time_scale,
        // Adding zero turns a rounded −0 into 0 for printing.
        r.pitch_cents().round() + 0.0,
        r.matched_s(),
        r.leak_s
    );
    for s in &r.stretches {
        outln!(
            "  leak {:7.2}–{:7.2} s  plays master {:7.2}–{:7.2} s",
            s.leak_start_s,
            s.leak_end_s,
            s.master_start_s,
            s.master_end_s
        );
    }
    for e in &r.inserted {
        outln!(
            "  INSERTED leak {:7.2}–{:7.2} s (not in the master)",
            e.leak_start_s,
            e.leak_end_s
        );
    }
    for e in &r.removed {
        outln!(
            "  REMOVED  master {:7.2}–{:7.2} s (cut at leak {:.2} s)",
            e.master_start_s,
            e.master_end_s,
            e.leak_start_s
        );
    }
}

/// `earmark work …`.
pub async fn work(home: Option<&Path>, action: WorkAction) -> Result<ExitCode, Failure> {
    let home = open(home).await?;
    match action {
        WorkAction::List { json } => {
            let works = home.works().await?;
            if json {
                print_json(&works);
            } else if works.is_empty() {
                outln!("no works registered yet (earmark mark registers them)");
            } else {
                outln!(
                    "{:>4}  {:<10} {:<28} {:>11} {:>7} {:>3} {:>10}  {:<20} master",
                    "id",
                    "kind",
                    "title",
                    "length",
                    "rate",
                    "ch",
                    "recipients",
                    "registered"
                );
                for w in &works {
                    let length = match w.words {
                        Some(words) => format!("{words} words"),
                        None => format!("{:.1} s", w.duration_s),
                    };
                    outln!(
                        "{:>4}  {:<10} {:<28} {:>11} {:>7} {:>3} {:>10}  {:<20} {}",
                        w.id,
                        w.kind,
                        w.title.as_deref().unwrap_or("untitled"),
                        length,
                        w.rate,
                        w.channels,
                        w.recipients,
                        w.registered.get(..19).unwrap_or(""),
                        if w.master_kept { "kept" } else { "forgotten" }
                    );
                }
            }
        }
        WorkAction::Show { id, json } => {
            let detail = home.work_detail(id).await?;
            let w = &detail.summary;
            if json {
                print_json(&detail);
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(words) = w.words {
                outln!(
                    "work {} ({}): transcript, {words} words, registered {}",
                    w.id,
                    w.title.as_deref().unwrap_or("untitled"),
                    w.registered
                );
            } else {
                outln!(
                    "work {} ({}): {:.1} s, {} Hz, {} channel(s), registered {}",
                    w.id,
                    w.title.as_deref().unwrap_or("untitled"),
                    w.duration_s,
                    w.rate,
                    w.channels,
                    w.registered
                );
            }
            outln!("content SHA-256 {}", w.content_hash);
            outln!(
                "master: {}",
                match &detail.master_path {
                    Some(path) => path.display().to_string(),
                    None => "forgotten (tracing is blind)".to_string(),
                }
            );
            for c in &detail.copies {
                outln!(
                    "  {:<24} {:<5} {}  {}",
                    c.recipient.as_deref().unwrap_or("?"),
                    c.format,
                    c.delivered,
                    c.path
                );
            }
        }
        WorkAction::Forget { id, yes, json } => {
            let w = home.work(id).await?;
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
            let report = home.forget_work(id).await?;
            if json {
                print_json(&report);
            } else if report.removed {
                outln!(
                    "removed the master of work {id}; its records stay, and tracing it is now blind (the watermark alone)"
                );
            } else {
                outln!("work {id} had no master in the store; tracing it is blind");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `earmark audit …`.
pub async fn audit(home: Option<&Path>, action: AuditAction) -> Result<ExitCode, Failure> {
    let home = open(home).await?;
    match action {
        AuditAction::Verify { json } => {
            let report = home.audit_verify().await?;
            if json {
                print_json(&report);
            }
            match report.problem {
                None if json => Ok(ExitCode::SUCCESS),
                None => {
                    let r = &report.records;
                    outln!(
                        "audit chain intact: {}; {}, {} and {} authenticated",
                        count(report.rows, "row", "rows"),
                        count(r.recipients, "recipient", "recipients"),
                        count(r.works, "work", "works"),
                        count(r.copies, "copy", "copies")
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(problem) => Err(Failure {
                    code: exit::LEDGER,
                    message: format!("ledger damaged: {problem}"),
                }),
            }
        }
        AuditAction::Log { json } => {
            let log = home.audit_log().await?;
            if json {
                print_json(&log);
            } else {
                for e in log {
                    outln!(
                        "{:>6}  {}  {:<10} {}",
                        e.seq,
                        to_the_second(&e.at),
                        e.action,
                        e.detail
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
