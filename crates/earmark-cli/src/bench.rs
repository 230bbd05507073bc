//! `earmark bench`: arguments to a [`earmark_bench::Config`], the run, and
//! the reports written where asked.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use earmark_bench::{parse_list, Chain, Config, ExternalTool, Suite};

use crate::exit::{self, Failure};

/// Arguments of `earmark bench`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BenchArgs {
    /// Another benchmark than the audio one.
    #[command(subcommand)]
    mode: Option<BenchMode>,
    /// Directory of recordings to mark and attack (unreadable files are listed and skipped).
    #[arg(long, required_unless_present = "list_attacks")]
    corpus: Option<PathBuf>,
    /// Print the attack names and their parameters, then exit.
    #[arg(long)]
    list_attacks: bool,
    /// Attack chains, separated by spaces: e.g. "clean mp3:128k opus:16k,mp3:128k".
    /// Overrides --suite.
    #[arg(long)]
    attacks: Option<String>,
    /// Named attack suite: quick, full, or informed (the informed-tracing channels on
    /// 30 s excerpts; implies --informed).
    #[arg(long, default_value = "quick")]
    suite: String,
    /// Also trace every excerpt informed: registered against its original
    /// and read through it, scored against 1,000 recipients.
    #[arg(long)]
    informed: bool,
    /// Excerpts per recording and attack, taken where a recording is long
    /// enough to hold that many attack windows (default 1).
    #[arg(long, default_value_t = 1)]
    excerpts: usize,
    /// Excerpt length extracted from, seconds (attacks with crop:Ns use N).
    #[arg(long, default_value_t = 10.0)]
    clip_s: f64,
    /// Seed of every random choice (keys, payloads, noise, excerpts).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    marking: crate::marking::MarkingArgs,
    /// Directory for report.json, report.md and plots/.
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// Print the JSON report on standard output instead of the Markdown one.
    #[arg(long)]
    json: bool,
    /// Unmarked and wrong-key excerpts tried for false alarms (default: 40 quick, 2000 full).
    #[arg(long)]
    false_alarms: Option<usize>,
    /// Also score ViSQOL and PESQ (needs `scripts/setup.sh --perceptual`;
    /// the Python interpreter is $EARMARK_PYTHON, else python3).
    #[arg(long)]
    perceptual: bool,
    /// Attacks that must recover on every file; with any false alarm or
    /// wrong payload the command exits 9. E.g. "clean mp3:128k phone".
    #[arg(long)]
    gate: Option<String>,
    /// Attacks whose every leak informed tracing must name (with
    /// --informed); anyone wrongly named fails the gate too. E.g.
    /// "room:0.5s@1.5m,aac:64k,crop:10s".
    #[arg(long, requires = "informed")]
    gate_informed: Option<String>,
    /// Also write the Markdown report to this file (e.g. BENCHMARKS.md).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Name of another watermarking tool to run side by side.
    #[arg(long, requires_all = ["embed", "extract", "parse"])]
    external: Option<String>,
    /// Its embedding command: {in}, {out}, {payload} (16 hex digits) are substituted.
    #[arg(long, requires = "external")]
    embed: Option<String>,
    /// Its extraction command: {in} is substituted.
    #[arg(long, requires = "external")]
    extract: Option<String>,
    /// Regular expression finding the payload in its output (first group or whole match).
    #[arg(long, requires = "external")]
    parse: Option<String>,
}

/// Benchmarks other than the audio one.
#[derive(Subcommand)]
pub enum BenchMode {
    /// Transcript canaries: generated, retyped quotes of one transcript
    /// traced against many recipients.
    Text(Box<TextBenchArgs>),
}

/// Arguments of `earmark bench text`.
#[derive(Args)]
pub struct TextBenchArgs {
    /// The transcript (plain text, Markdown, SRT or WebVTT).
    #[arg(long)]
    transcript: PathBuf,
    /// Recipients of the transcript.
    #[arg(long, default_value_t = 1000)]
    recipients: u32,
    /// Single-recipient quotes per length.
    #[arg(long, default_value_t = 2000)]
    trials: usize,
    /// Quote lengths, words, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "50,150,300,600")]
    words: Vec<usize>,
    /// Two-recipient mixes per length, and as many pairs of one copy's quotes
    /// in two articles traced together.
    #[arg(long, default_value_t = 500)]
    mix_trials: usize,
    /// False-accusation budget of each trace.
    #[arg(long, default_value = "1e-6", allow_hyphen_values = true)]
    epsilon: String,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for text.json and text.md.
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// Print the JSON report instead of the Markdown one.
    #[arg(long)]
    json: bool,
}

fn run_text(args: TextBenchArgs) -> Result<ExitCode, Failure> {
    if args.recipients < 2 || args.words.is_empty() || args.words.contains(&0) {
        return Err(usage(
            "--recipients must be at least 2 and --words positive",
        ));
    }
    let epsilon = crate::home::epsilon(&args.epsilon)?;
    let document = earmark::load_transcript(&args.transcript, None)?;
    let config = earmark_bench::text::TextConfig {
        recipients: args.recipients,
        trials: args.trials,
        words: args.words.clone(),
        mix_trials: args.mix_trials,
        seed: args.seed,
        epsilon,
    };
    let report = earmark_bench::text::run_text(document, &config);
    let markdown = report.markdown();
    let json = serde_json::to_string_pretty(&report).expect("report serialises");
    std::fs::create_dir_all(&args.out)
        .and_then(|_| std::fs::write(args.out.join("text.json"), &json))
        .and_then(|_| std::fs::write(args.out.join("text.md"), &markdown))
        .map_err(|e| Failure::write(format!("cannot write to {}: {e}", args.out.display())))?;
    if args.json {
        out!("{json}\n");
    } else {
        out!("{markdown}");
    }
    Ok(ExitCode::SUCCESS)
}

fn usage(error: impl std::fmt::Display) -> Failure {
    Failure::usage(error.to_string())
}

/// Runs the benchmark and writes its reports.
pub fn run(args: BenchArgs) -> Result<ExitCode, Failure> {
    if let Some(BenchMode::Text(text)) = args.mode {
        return run_text(*text);
    }
    if args.list_attacks {
        for (name, what) in earmark_bench::attack::CATALOGUE {
            outln!("{name:<16} {what}");
        }
        outln!();
        outln!("Chains join attacks with commas (opus:16k,mp3:128k); lists separate chains with spaces.");
        return Ok(ExitCode::SUCCESS);
    }
    let corpus = args.corpus.clone().expect("clap requires --corpus");
    let suite = Suite::from_name(&args.suite).ok_or_else(|| {
        usage(format!(
            "unknown suite '{}': quick, full or informed",
            args.suite
        ))
    })?;
    let chains = match &args.attacks {
        Some(list) => parse_list(list).map_err(usage)?,
        // Informed tracing on the full suite also runs the channels only it
        // is held to.
        None if args.informed && suite == Suite::Full => {
            let mut chains = suite.chains();
            for chain in Suite::Informed.chains() {
                if !chains.contains(&chain) {
                    chains.push(chain);
                }
            }
            chains
        }
        None => suite.chains(),
    };
    if chains.is_empty() {
        return Err(usage("no attacks given"));
    }
    let gate: Vec<Chain> = match &args.gate {
        Some(list) => parse_list(list).map_err(usage)?,
        None => Vec::new(),
    };
    let gate_informed: Vec<Chain> = match &args.gate_informed {
        Some(list) => parse_list(list).map_err(usage)?,
        None => Vec::new(),
    };
    if !(args.clip_s.is_finite() && args.clip_s >= 1.0) {
        return Err(usage("--clip-s must be at least 1 second"));
    }
    let external = match (&args.external, &args.embed, &args.extract, &args.parse) {
        (Some(name), Some(embed), Some(extract), Some(parse)) => {
            Some(ExternalTool::new(name, embed, extract, parse).map_err(usage)?)
        }
        _ => None,
    };
    let false_alarm_trials = args.false_alarms.unwrap_or(match suite {
        Suite::Quick | Suite::Informed => 40,
        Suite::Full => 2000,
    });
    let config = Config {
        corpus,
        chains,
        clip_s: args.clip_s,
        seed: args.seed,
        settings: args.marking.settings(),
        false_alarm_trials,
        external,
        perceptual_python: args
            .perceptual
            .then(|| std::env::var("EARMARK_PYTHON").unwrap_or_else(|_| "python3".into())),
        earmark_exe: std::env::current_exe().ok(),
        informed: args.informed || suite == Suite::Informed,
        excerpts: args.excerpts.max(1),
        progress: true,
        command: std::iter::once("earmark".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let report = earmark_bench::run(&config).map_err(Failure::bench)?;
    report.write(&args.out).map_err(Failure::bench)?;
    if let Some(path) = &args.markdown {
        let text = format!(
            "# earmark benchmarks\n\nRegenerate with `scripts/benchmarks.sh` (see README). Every figure below comes from that one command.\n\n{}",
            report.to_markdown()
        );
        std::fs::write(path, text)
            .map_err(|e| Failure::write(format!("cannot write {}: {e}", path.display())))?;
    }
    if args.json {
        jsonln!(&report);
    } else {
        out!("{}", report.to_markdown());
        outln!();
        outln!("reports in {}", args.out.display());
    }
    let failures = report.gate_failures(&gate, &gate_informed);
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    Err(Failure {
        code: exit::GATE_FAILED,
        message: format!("benchmark gate failed: {}", failures.join("; ")),
    })
}
