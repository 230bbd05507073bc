//! The `earmark` command.
//!
//! Owns: argument parsing, rendering the library's reports as text or
//! JSON, progress bars, and turning every failure into one clear line and a
//! distinct exit code. Must not decide anything: which work a leak is, whom
//! to accuse, how a copy is delivered and recorded all live in the `earmark`
//! library, which every front end calls.

#![forbid(unsafe_code)]

/// `println!` that survives a closed pipe (see [`write_stdout`]).
macro_rules! outln {
    () => {
        $crate::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))
    };
}

/// One JSON document on standard output, as serde_json writes it (which
/// escapes every control character itself), and a newline.
macro_rules! jsonln {
    ($value:expr) => {
        $crate::write_stdout(format_args!(
            "{}\n",
            serde_json::to_string_pretty($value).expect("reports serialise")
        ))
    };
}

/// `print!` that survives a closed pipe (see [`write_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

mod bench;
mod exit;
mod home;
mod links;
mod manual;
mod marking;
mod plot;
mod progress;
mod service;
mod text;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use earmark::Detection;

use exit::Failure;

/// mimalloc keeps freed blocks for reuse where the system allocator hands
/// the multi-megabyte chunks streamed between decoder, embedder and writer
/// back to the kernel, to be faulted in and zeroed again for the next one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Leak tracing for sensitive audio: keyed, inaudible watermarks that survive
/// the channels leaks go through.
#[derive(Parser)]
#[command(
    name = "earmark",
    version,
    about = "earmark: find who leaked a recording or its transcript. Give each recipient their own \
             inaudibly marked copy (and transcript variant), recorded in a ledger; when a copy or a \
             quote turns up, `earmark trace` names whose it was, with a bound on the chance that \
             the accusation is wrong.",
    after_help = exit::help()
)]
struct Cli {
    /// The earmark home (keystore and ledger); default $EARMARK_HOME,
    /// else the XDG data directory.
    #[arg(long, global = true, help_heading = "Global options")]
    home: Option<PathBuf>,
    /// Nothing on standard error but errors: no progress bars, no log.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Global options"
    )]
    quiet: bool,
    /// Log what is done to standard error (-v steps, -vv details);
    /// RUST_LOG, when set, takes precedence.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Global options")]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// Sends `tracing` events to standard error at the level `-q`/`-v` ask for
/// (errors only, warnings by default, then steps and details), unless
/// `RUST_LOG` says otherwise.
fn start_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("earmark={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    progress::set_quiet(quiet);
}

#[derive(Subcommand)]
enum Command {
    /// Write a new 256-bit secret key to KEYFILE (mode 0600; never overwrites).
    Keygen {
        /// Where to write the key.
        keyfile: PathBuf,
        /// Print where the key went as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Embed a 64-bit payload into a recording.
    Embed {
        /// Input audio (WAV, FLAC, MP3, AAC/M4A, Ogg Vorbis, Opus, video; AMR,
        /// GSM WAV, .au, .wma and the rest through ffmpeg).
        input: PathBuf,
        /// Output file (.wav or .flac), same rate, channels and length as the input.
        output: PathBuf,
        /// Key file made by `earmark keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Payload: 16 hexadecimal digits (64 bits).
        #[arg(long)]
        payload: String,
        #[command(flatten)]
        marking: marking::MarkingArgs,
        /// Print the embedding report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create the home: a master key (0600) and the SQLite ledger.
    Init {
        /// Print where the home is as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage recipients.
    Recipient {
        #[command(subcommand)]
        action: home::RecipientAction,
    },
    /// Manage the people who use the home through the service.
    User {
        #[command(subcommand)]
        action: users::UserAction,
    },
    /// Manage users' API tokens.
    Token {
        #[command(subcommand)]
        action: users::TokenAction,
    },
    /// Make, list and revoke delivery links (copies rendered when fetched).
    Link {
        #[command(subcommand)]
        action: links::LinkAction,
    },
    /// Serve the home's API to a team (users and tokens: `user`, `token`).
    Serve(service::ServeArgs),
    /// Run the service's queued jobs (traces, marks) without serving HTTP.
    Worker(service::WorkerArgs),
    /// Give each recipient their own marked copy of a recording, recorded in the ledger.
    Mark(home::MarkArgs),
    /// Name the recipients a leaked copy came from, each with a false-accusation bound.
    Trace(home::TraceArgs),
    /// List, show or forget registered works and their masters.
    Work {
        #[command(subcommand)]
        action: home::WorkAction,
    },
    /// Transcript canaries: mark per-recipient transcript variants, trace
    /// quoted text back to them, self-check the rules on a transcript.
    Text {
        #[command(subcommand)]
        action: text::TextAction,
    },
    /// Copy the home (ledger, audit head, masters, landmark index and, unless
    /// --without-key, the master key) into a new directory, consistently
    /// while other commands run.
    Backup {
        /// The new backup directory.
        dest: PathBuf,
        /// Leave the master key out; restoring then needs it with --key.
        #[arg(long)]
        without_key: bool,
        /// Print what was backed up as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup as the home: into an empty place, or over a home
    /// of the same identity whose ledger was lost or damaged.
    Restore {
        /// The backup directory made by `earmark backup`.
        backup: PathBuf,
        /// The master key file, when the backup was taken without one.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Restore even when the home had recorded more than the backup
        /// holds (what was recorded since is lost).
        #[arg(long)]
        allow_rollback: bool,
        /// Print what was restored as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check or show the append-only audit log.
    Audit {
        #[command(subcommand)]
        action: home::AuditAction,
    },
    /// Benchmark robustness, false alarms, quality and speed on a corpus,
    /// through real codecs, optionally side by side with another tool.
    Bench(bench::BenchArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `earmark man | man -l -`, or
    /// write one page per command with --dir.
    Man {
        /// Write `earmark.1` and a page for every command here instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Find and read the payload of a (possibly excerpted and damaged) copy.
    Extract {
        /// Audio to examine.
        input: PathBuf,
        /// Key file made by `earmark keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Writes to standard output. When the reader has gone (`earmark trace … |
/// head -1`), the command ends at once with success, as a shell sees a
/// command stopped by SIGPIPE, instead of panicking; any other failure is
/// one line and the write-failure exit code. Everything the command commits
/// is committed before it prints.
/// One line of human-readable output: every control and format character
/// in it escaped ([`earmark::terminal_safe`]), whatever field it came from,
/// so no stored title or name can forge or hide a line; then a newline.
fn write_line(args: std::fmt::Arguments) {
    let line = args.to_string();
    write_stdout(format_args!("{}\n", earmark::terminal_safe(&line)));
}

fn write_stdout(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("earmark: cannot write to standard output: {e}");
        std::process::exit(exit::WRITE_FAILED);
    }
}

fn main() -> ExitCode {
    let cli = match manual::command()
        .try_get_matches()
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    start_logging(cli.quiet, cli.verbose);
    let code = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(async {
            let code = run(cli.command, cli.home.as_deref()).await;
            home::close_opened().await;
            code
        }),
        Err(e) => Err(Failure::from(earmark::Error::Write {
            message: format!("cannot start the async runtime: {e}"),
            source: Some(e),
        })),
    };
    record_peak_memory();
    match code {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("earmark: {}", earmark::terminal_safe(&failure.message));
            ExitCode::from(failure.code as u8)
        }
    }
}

async fn run(command: Command, home: Option<&std::path::Path>) -> Result<ExitCode, Failure> {
    match command {
        Command::Init { json } => home::init(home, json).await,
        Command::Recipient { action } => home::recipient(home, action).await,
        Command::User { action } => users::user(home, action).await,
        Command::Serve(args) => service::serve(home, &args).await,
        Command::Worker(args) => service::worker(home, &args).await,
        Command::Token { action } => users::token(home, action).await,
        Command::Link { action } => links::link(home, action).await,
        Command::Mark(args) => home::mark(home, args).await,
        Command::Trace(args) => home::trace(home, args).await,
        Command::Audit { action } => home::audit(home, action).await,
        Command::Backup {
            dest,
            without_key,
            json,
        } => home::backup(home, &dest, !without_key, json).await,
        Command::Restore {
            backup,
            key,
            allow_rollback,
            json,
        } => home::restore(home, &backup, key.as_deref(), allow_rollback, json).await,
        Command::Work { action } => home::work(home, action).await,
        Command::Text { action } => text::text(home, action).await,
        Command::Keygen { keyfile, json } => {
            earmark::create_key_file(&keyfile)?;
            if json {
                home::print_json(&serde_json::json!({ "key_file": keyfile }));
            } else {
                outln!("wrote a new key to {}", keyfile.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Embed {
            input,
            output,
            key,
            payload,
            marking,
            json,
        } => {
            let payload = earmark::parse_payload(&payload)?;
            let key = earmark::load_key_file(&key)?;
            let report = earmark::embed_file(
                &input,
                &output,
                &key,
                payload,
                marking.settings(),
                &progress::Bar::new(),
            )?;
            if let Some(warning) = report.shortfall() {
                eprintln!("earmark: warning: {warning}");
            }
            if json {
                home::print_json(&report);
            } else {
                outln!(
                    "marked {} → {} ({}): {:.1} s, {:.1} s carrying the mark, SNR {:.1} dB",
                    input.display(),
                    output.display(),
                    report.profile,
                    report.duration_s,
                    report.marked_s,
                    report.snr_db
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => bench::run(args),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "earmark", &mut script);
            out!("{}", String::from_utf8_lossy(&script));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => {
            let written = manual::man(dir.as_deref())?;
            if let Some(dir) = &dir {
                outln!("wrote {} manual pages to {}", written.len(), dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Extract { input, key, json } => {
            let key = earmark::load_key_file(&key)?;
            let detection = earmark::extract_file(&input, &key, &progress::Bar::new())?;
            report_detection(&detection, json);
            Ok(if detection.found.is_empty() {
                ExitCode::from(exit::NOT_FOUND as u8)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// For `earmark bench`'s speed measurement: with the variable named by
/// [`earmark_bench::report::PEAK_FILE_ENV`] set, writes this process's peak
/// resident memory (kB) to that file.
fn record_peak_memory() {
    let Some(path) = std::env::var_os(earmark_bench::report::PEAK_FILE_ENV) else {
        return;
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(kb) = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    {
        let _ = std::fs::write(path, kb.to_string());
    }
}

fn report_detection(detection: &Detection, json: bool) {
    if json {
        let found = detection.found.first();
        let value = serde_json::json!({
            "found": found.is_some(),
            "payload": found.map(|f| format!("{:016x}", f.payload)),
            "p_value": found.map(|f| f.p_value),
            "segments": found.map(|f| f.segments.clone()).unwrap_or_default(),
            "payloads": detection.found.iter().map(|f| serde_json::json!({
                "payload": format!("{:016x}", f.payload),
                "p_value": f.p_value,
                "pilot_z": f.pilot_z,
                "time_scale": f.scale.time_scale,
                "freq_scale": f.scale.freq_scale,
                "segments": f.segments,
            })).collect::<Vec<_>>(),
            "duration_s": detection.duration_s,
            "best_pilot_z": detection.best_pilot_z,
            "notes": detection.notes,
        });
        jsonln!(&value);
        return;
    }
    for note in &detection.notes {
        outln!("note: {note}");
    }
    if detection.found.is_empty() {
        outln!(
            "no watermark found ({:.1} s examined, best pilot z = {:.2})",
            detection.duration_s,
            detection.best_pilot_z
        );
        return;
    }
    for found in &detection.found {
        let segments: Vec<String> = found
            .segments
            .iter()
            .map(|s| format!("{:.2}–{:.2} s", s.start_s, s.end_s))
            .collect();
        outln!(
            "payload {:016x}  p ≤ {:.2e}  pilot z = {:.1}  speed ×{:.3} pitch ×{:.3}  in {}",
            found.payload,
            found.p_value,
            found.pilot_z,
            1.0 / found.scale.time_scale,
            found.scale.freq_scale,
            segments.join(", ")
        );
    }
}
