//! The `earmark` command.
//!
//! Owns: argument parsing, key files (created 0600, never printed), turning
//! every failure into one clear line and a distinct exit code, and the human
//! and JSON reports, and the orchestration of `mark` and `trace` (engine,
//! codes and ledger together). Must not hold signal-processing, file-format,
//! coding or database logic: that lives in `earmark-engine`,
//! `earmark-audio-io`, `earmark-codes` and `earmark-ledger`.

mod bench;
mod exit;
mod home;
mod informed;
mod keyfile;
mod plot;
mod text;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use earmark_engine::{Detection, SearchGrid};

use exit::Failure;

/// Leak tracing for sensitive audio: keyed, inaudible watermarks that survive
/// the channels leaks go through.
#[derive(Parser)]
#[command(name = "earmark", version, about)]
struct Cli {
    /// The earmark home (keystore and ledger); default $EARMARK_HOME,
    /// else the XDG data directory.
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new 256-bit secret key to KEYFILE (mode 0600; never overwrites).
    Keygen {
        /// Where to write the key.
        keyfile: PathBuf,
    },
    /// Embed a 64-bit payload into a recording.
    Embed {
        /// Input audio (WAV, FLAC, MP3, AAC/M4A, Ogg Vorbis, Opus).
        input: PathBuf,
        /// Output file (.wav or .flac), same rate, channels and length as the input.
        output: PathBuf,
        /// Key file made by `earmark keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Payload: 16 hexadecimal digits (64 bits).
        #[arg(long)]
        payload: String,
        /// Strength factor (1 = default; higher is more robust and less transparent).
        #[arg(long, default_value_t = 1.0)]
        strength: f32,
        /// Print the embedding report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create the home: a master key (0600) and the SQLite ledger.
    Init,
    /// Manage recipients.
    Recipient {
        #[command(subcommand)]
        action: home::RecipientAction,
    },
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
    /// Check or show the append-only audit log.
    Audit {
        #[command(subcommand)]
        action: home::AuditAction,
    },
    /// Benchmark robustness, false alarms, quality and speed on a corpus,
    /// through real codecs, optionally side by side with another tool.
    Bench(bench::BenchArgs),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = run(cli.command, cli.home.as_deref());
    record_peak_memory();
    match code {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("earmark: {}", failure.message);
            ExitCode::from(failure.code as u8)
        }
    }
}

fn run(command: Command, home: Option<&std::path::Path>) -> Result<ExitCode, Failure> {
    match command {
        Command::Init => home::init(home),
        Command::Recipient { action } => home::recipient(home, action),
        Command::Mark(args) => home::mark(home, args),
        Command::Trace(args) => home::trace(home, args),
        Command::Audit { action } => home::audit(home, action),
        Command::Work { action } => home::work(home, action),
        Command::Text { action } => text::text(home, action),
        Command::Keygen { keyfile } => {
            keyfile::create(&keyfile)?;
            println!("wrote a new key to {}", keyfile.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Embed {
            input,
            output,
            key,
            payload,
            strength,
            json,
        } => {
            let payload = parse_payload(&payload)?;
            let key = keyfile::load(&key)?;
            // Streamed: memory stays bounded by one processing segment
            // (WAV output; FLAC output is encoded whole at the end).
            let mut reader = earmark_audio_io::AudioReader::open(&input).map_err(Failure::audio)?;
            let mut embedder = earmark_engine::Embedder::new(
                reader.rate(),
                reader.channels(),
                &key,
                payload,
                strength,
            )
            .map_err(Failure::engine)?;
            let mut writer = earmark_audio_io::AudioWriter::create(
                &output,
                reader.rate(),
                reader.channels(),
                reader.sample_format(),
            )
            .map_err(Failure::audio)?;
            while let Some(chunk) = reader.next_chunk().map_err(Failure::audio)? {
                let marked = embedder.push(&chunk);
                writer.write_chunk(&marked).map_err(Failure::audio)?;
            }
            let (tail, report) = embedder.finish().map_err(Failure::engine)?;
            writer.write_chunk(&tail).map_err(Failure::audio)?;
            writer.finish().map_err(Failure::audio)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serialises")
                );
            } else {
                println!(
                    "marked {} → {}: {:.1} s, {:.1} s carrying the mark, SNR {:.1} dB",
                    input.display(),
                    output.display(),
                    report.duration_s,
                    report.marked_s,
                    report.snr_db
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => bench::run(args),
        Command::Extract { input, key, json } => {
            let key = keyfile::load(&key)?;
            let detection = extract_file(&input, &key)?;
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

/// Blind extraction from a file, streamed: memory stays bounded by the
/// detector's window whatever the file's length.
pub(crate) fn extract_file(
    input: &std::path::Path,
    key: &earmark_keys::SecretKey,
) -> Result<Detection, Failure> {
    let mut reader = earmark_audio_io::AudioReader::open(input).map_err(Failure::audio)?;
    let mut extractor = earmark_engine::Extractor::new(
        reader.rate(),
        reader.channels(),
        key,
        SearchGrid::default(),
    )
    .map_err(Failure::engine)?;
    while let Some(chunk) = reader.next_chunk().map_err(Failure::audio)? {
        extractor.push(&chunk);
    }
    Ok(extractor.finish())
}

fn parse_payload(text: &str) -> Result<u64, Failure> {
    let digits = text.trim_start_matches("0x");
    if digits.len() != 16 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Failure::usage(format!(
            "payload must be exactly 16 hexadecimal digits (64 bits), got '{text}'"
        )));
    }
    u64::from_str_radix(digits, 16).map_err(|e| Failure::usage(e.to_string()))
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
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("report serialises")
        );
        return;
    }
    if detection.found.is_empty() {
        println!(
            "no watermark found ({:.1} s examined, best pilot z = {:.2})",
            detection.duration_s, detection.best_pilot_z
        );
        return;
    }
    for found in &detection.found {
        let segments: Vec<String> = found
            .segments
            .iter()
            .map(|s| format!("{:.2}–{:.2} s", s.start_s, s.end_s))
            .collect();
        println!(
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
