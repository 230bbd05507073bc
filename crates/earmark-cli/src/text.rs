//! `earmark text`: transcript canaries. `mark` gives each recipient a
//! transcript whose meaning-preserving details follow their codeword;
//! `trace` finds the quoted fragments of a leaked text and names the
//! recipients with a false-accusation bound; `check` runs the rules'
//! self-check on a transcript.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use earmark::{TextFormat, TextMarkRequest};

use crate::exit::{self, Failure};
use crate::home::{epsilon, open, print_json};

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
        format: Option<TextFormatArg>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Transcript formats on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TextFormatArg {
    /// Plain text.
    Plain,
    /// Markdown.
    Markdown,
    /// SubRip.
    Srt,
    /// WebVTT.
    Vtt,
}

impl From<TextFormatArg> for TextFormat {
    fn from(f: TextFormatArg) -> TextFormat {
        match f {
            TextFormatArg::Plain => TextFormat::Plain,
            TextFormatArg::Markdown => TextFormat::Markdown,
            TextFormatArg::Srt => TextFormat::Srt,
            TextFormatArg::Vtt => TextFormat::WebVtt,
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
    format: Option<TextFormatArg>,
    /// Print the variants delivered as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `text trace`.
#[derive(Args)]
pub struct TraceArgs {
    /// The leaked text: an article, a post, a retyped quote. Several leaks
    /// are taken to come from one source and are scored together.
    #[arg(required = true, num_args = 1..)]
    leaked: Vec<PathBuf>,
    /// Only consider this transcript (work id).
    #[arg(long)]
    work: Option<i64>,
    /// Largest acceptable probability of accusing anyone innocent, in (0, 1).
    #[arg(long, default_value = "1e-6", allow_hyphen_values = true)]
    epsilon: String,
    /// When nobody can be named, list the recipients whose variant agrees
    /// with every position read but at most this many (a lead, not an
    /// accusation)
    #[arg(long, default_value_t = 0, value_name = "N")]
    shortlist_mismatches: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `earmark text …`.
pub async fn text(home: Option<&Path>, action: TextAction) -> Result<ExitCode, Failure> {
    match action {
        TextAction::Mark(args) => mark(home, args).await,
        TextAction::Trace(args) => trace(home, args).await,
        TextAction::Check {
            transcript,
            variants,
            format,
            json,
        } => check(&transcript, variants, format.map(TextFormat::from), json),
    }
}

async fn mark(home: Option<&Path>, args: MarkArgs) -> Result<ExitCode, Failure> {
    let home = open(home).await?;
    let report = home
        .text_mark(
            &TextMarkRequest {
                transcript: args.transcript,
                recipients: args.who.selection(),
                out: args.out,
                title: args.title,
                format: args.format.map(TextFormat::from),
            },
            std::sync::Arc::new(crate::progress::Bar::new()),
        )
        .await?;
    if args.json {
        print_json(&report);
    } else {
        outln!(
            "marked transcript {} ({}) for {} recipients into {}: {} words, {} slots in {} codeword positions ({:.1} per 100 words)",
            report.work,
            report.title,
            report.copies.len(),
            report.out.display(),
            report.words,
            report.slots,
            report.codeword_positions,
            100.0 * report.codeword_positions as f64 / report.words.max(1) as f64
        );
        if report.slots_left_out > 0 {
            outln!(
                "{} slots left out because their other rendering would change what is said or is not read back (`earmark text check` names them)",
                report.slots_left_out
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn trace(home: Option<&Path>, args: TraceArgs) -> Result<ExitCode, Failure> {
    let epsilon = epsilon(&args.epsilon)?;
    let home = open(home).await?;
    let report = home
        .text_trace(&args.leaked, args.work, epsilon, args.shortlist_mismatches)
        .await?;
    if !report.found {
        if args.json {
            jsonln!(&serde_json::json!({"found": false, "reason": "no registered transcript"}));
        } else {
            outln!("the text matches no registered transcript");
        }
        return Ok(ExitCode::from(exit::NOT_FOUND as u8));
    }
    if args.json {
        print_json(&report);
    } else {
        if let Some(assumption) = &report.assumption {
            outln!("{assumption}");
        }
        for t in &report.transcripts {
            outln!(
                "transcript {} ({}): {} fragment(s) quoted, {} slots read of {} ({} of {} codeword positions)",
                t.work,
                t.title.as_deref().unwrap_or("untitled"),
                t.fragments.len(),
                t.slots_read,
                t.slots,
                t.positions_read,
                t.codeword_positions
            );
            for f in &t.fragments {
                let which = if report.leaks.len() > 1 {
                    format!("{} ", report.leaks[f.leak].display())
                } else {
                    String::new()
                };
                outln!(
                    "  {which}leak chars {}–{}: {} words matched, {} slots read  \"{}\"",
                    f.leak_start,
                    f.leak_end,
                    f.matched_words,
                    f.slots_read,
                    f.excerpt
                );
            }
            if t.accused.is_empty() {
                outln!(
                    "  nobody can be named within ε = {:.0e}: the quotes carry too few slots",
                    epsilon.get()
                );
            }
            if let Some(list) = &t.shortlist {
                print_shortlist(list);
            }
            for a in &t.accused {
                outln!(
                    "  ACCUSED {:<24} false-accusation bound ≤ {:.1e}",
                    a.name,
                    a.false_accusation_bound
                );
            }
        }
    }
    Ok(if report.anyone_accused() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::NOT_FOUND as u8)
    })
}

/// Names shown of a shortlist before the count of the rest.
const SHORTLIST_NAMES_SHOWN: usize = 20;

fn print_shortlist(list: &earmark::TextShortlist) {
    outln!("  {}", list.statement);
    for entry in list.consistent_with.iter().take(SHORTLIST_NAMES_SHOWN) {
        if entry.mismatches == 0 {
            outln!("    consistent with {}", entry.name);
        } else {
            outln!(
                "    consistent with {} ({} disagreeing)",
                entry.name,
                entry.mismatches
            );
        }
    }
    if list.consistent_with.len() > SHORTLIST_NAMES_SHOWN {
        outln!(
            "    … and {} more (--json lists them all)",
            list.consistent_with.len() - SHORTLIST_NAMES_SHOWN
        );
    }
}

/// The slots left out, grouped by why and by rule, each with its words
/// and place.
fn print_left_out(left_out: &[earmark::SlotFailure]) {
    use earmark::LeftOutBecause;
    for (reason, said) in [
        (
            LeftOutBecause::ChangesMeaning,
            "their other rendering would change what is said",
        ),
        (
            LeftOutBecause::NotReadBack,
            "they are not read back whatever their neighbours' renderings",
        ),
    ] {
        let mut by_rule: std::collections::BTreeMap<&str, Vec<&earmark::SlotFailure>> =
            std::collections::BTreeMap::new();
        for f in left_out.iter().filter(|f| f.reason == reason) {
            by_rule.entry(f.rule.as_str()).or_default().push(f);
        }
        if by_rule.is_empty() {
            continue;
        }
        let count: usize = by_rule.values().map(Vec::len).sum();
        outln!(
            "{count} slots left out because {said}, by {} rules:",
            by_rule.len()
        );
        for (rule, list) in by_rule {
            outln!("  rule {rule}: {} slots", list.len());
            for f in list {
                outln!(
                    "    line {}, character {}: \"{}\" would become \"{}\"",
                    f.line,
                    f.column,
                    f.original,
                    f.variant
                );
            }
        }
    }
}

fn check(
    path: &Path,
    variants: usize,
    format: Option<TextFormat>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let report = earmark::text_check(path, variants, format)?;
    if json {
        print_json(&report);
    } else {
        outln!(
            "{}: {} words, {} slots in {} codeword positions ({:.1} per 100 words; {} found, {} left out)",
            path.display(),
            report.words,
            report.slots,
            report.codeword_positions,
            100.0 * report.codeword_positions as f64 / report.words.max(1) as f64,
            report.slots_found,
            report.slots_found - report.slots
        );
        outln!(
            "{} variants: {} canonical mismatches, {} structure changes, {} slots read back right, {} wrong, {} unread ({} fillers not read where a variant drops them all, as a cleaned-up quote reads)",
            report.variants,
            report.canonical_mismatches,
            report.structure_changed,
            report.slots_read,
            report.wrong_bits,
            report.unread,
            report.fillers_excused
        );
        print_left_out(&report.left_out);
        for m in &report.misread {
            let variants: Vec<String> = m.variants.iter().map(|v| v.to_string()).collect();
            outln!(
                "not read back by variants {}: rule {}, line {}, character {}: \"{}\" rendered as \"{}\"",
                variants.join(", "),
                m.slot.rule,
                m.slot.line,
                m.slot.column,
                m.slot.original,
                m.slot.variant
            );
        }
    }
    if report.passed {
        if !json {
            outln!("self-check passed");
        }
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
