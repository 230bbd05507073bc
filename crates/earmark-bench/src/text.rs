//! The transcript-canary benchmark: generated quote sets against one
//! transcript and many recipients, with the retyping an article does.
//!
//! Each trial picks a recipient, renders their variant, takes a quote of a
//! set number of words from a random place, retypes it (quote styles, case,
//! whitespace, dropped commas, an ellipsis, a bracketed insertion), sets it
//! in unrelated prose and traces it against every recipient. Mix trials
//! quote two recipients' variants in one article; pair trials quote one
//! recipient's variant twice, in two articles traced together. Every random
//! choice comes from the seed (label [`TEXT_LABEL`], the trial number as
//! context).

use earmark_codes::TardosCode;
use earmark_keys::{uniform_below, Label, SecretKey};
use earmark_text::{Document, Mode, Prepared, RuleSet, Transcript};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use rayon::prelude::*;
use serde::Serialize;

/// Label of the trials' random streams.
pub const TEXT_LABEL: Label = Label("earmark/v1/bench/text");

/// Unrelated prose the quotes are set in (this project's own sentences).
const PROSE: &[&str] = &[
    "The documents were shared with this newspaper by a person who asked not to be named.",
    "Officials did not respond to repeated requests for comment on Tuesday.",
    "The company has said in the past that it takes the privacy of its customers seriously.",
    "Several people familiar with the matter confirmed the account.",
    "A spokesperson for the regulator said the investigation was continuing.",
    "It is not clear who else had access to the material before it was published.",
    "Shares in the group fell sharply in early trading after the report.",
    "The recording, which runs for several minutes, was made last spring.",
    "Lawyers for the firm wrote to the editor before publication.",
    "In a brief statement, the board said it would review its procedures.",
    "Critics have long argued that the system was confusing for callers.",
    "The full exchange, as it appears in the transcript, reads as follows.",
];

/// What to run.
#[derive(Clone, Debug)]
pub struct TextConfig {
    /// Recipients of the transcript (ids 1..=recipients).
    pub recipients: u32,
    /// Single-recipient trials per quote length.
    pub trials: usize,
    /// Quote lengths, words.
    pub words: Vec<usize>,
    /// Two-recipient mix trials per quote length (two quotes of that
    /// length), and as many pair trials (two quotes of one copy in two
    /// articles).
    pub mix_trials: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// False-accusation budget of each trace.
    pub epsilon: earmark::Epsilon,
}

/// Results at one quote length.
#[derive(Clone, Debug, Serialize)]
pub struct LengthRow {
    /// Quote length, words (before the ellipsis).
    pub words: usize,
    /// Trials.
    pub trials: usize,
    /// The quoted recipient named, nobody else.
    pub identified: usize,
    /// Nobody named.
    pub nobody: usize,
    /// Trials naming anyone who was not quoted.
    pub wrong: usize,
    /// Mean codeword positions read per quote (slots sharing a position count once).
    pub mean_slots_read: f64,
    /// Mean slots the quote covered.
    pub mean_slots_covered: f64,
    /// Two-recipient mixes tried.
    pub mix_trials: usize,
    /// Mixes naming one or both of the two quoted.
    pub mix_named_quoted: usize,
    /// Mixes naming anyone else.
    pub mix_third: usize,
    /// Trials of two quotes of one recipient's copy in two articles,
    /// traced together.
    pub pair_trials: usize,
    /// Of those, the quoted recipient named, nobody else.
    pub pair_identified: usize,
    /// Of those, naming anyone who was not quoted.
    pub pair_wrong: usize,
    /// Single trials naming nobody, which get a shortlist instead (no
    /// disagreement allowed).
    pub shortlisted: usize,
    /// Of those, shortlists holding the quoted recipient.
    pub shortlist_holds_source: usize,
    /// Mean shortlist length.
    pub mean_shortlist: f64,
    /// Mean innocents the shortlists should hold by chance (N·2⁻ᵏ); the
    /// mean length should be about this plus one, the source.
    pub mean_expected_innocents: f64,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct TextReport {
    /// Spoken words of the transcript.
    pub transcript_words: usize,
    /// Its slots.
    pub slots: usize,
    /// Independent codeword positions (numerals of one sentence share one).
    pub positions: usize,
    /// Slots per 100 words.
    pub slots_per_100_words: f64,
    /// Positions per 100 words: the density that decides recall.
    pub positions_per_100_words: f64,
    /// Recipients scored in each trace.
    pub recipients: u32,
    /// Budget per trace.
    pub epsilon: f64,
    /// Seed.
    pub seed: u64,
    /// Bits a single quote must carry to name someone: log2(recipients / ε).
    pub bits_needed: f64,
    /// Per quote length.
    pub rows: Vec<LengthRow>,
    /// Traces in all (single and mix).
    pub traces: usize,
    /// Innocents accused in all traces.
    pub innocents_accused: usize,
}

struct Trial {
    identified: bool,
    /// Someone named, and everyone named was quoted.
    named_quoted: bool,
    wrong: bool,
    slots_read: usize,
    slots_covered: usize,
    /// When nobody is named: whether the shortlist holds the first quoted
    /// recipient, its length, and the innocents expected on it.
    shortlist: Option<(bool, usize, f64)>,
}

/// Appends a paragraph, then a Markdown table of `header` and `rows`.
fn push_table(
    out: &mut String,
    intro: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    out.push_str(&format!("\n{intro}\n\n"));
    out.push_str(&line(
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    ));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for row in rows {
        out.push_str(&line(&row));
    }
}

/// `count` of `of`, as "count (percent %)".
fn share(count: usize, of: usize) -> String {
    format!("{count} ({:.1} %)", 100.0 * count as f64 / of.max(1) as f64)
}

fn chance(rng: &mut ChaCha20Rng, p: f64) -> bool {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
}

/// A quote of `words` canonical words from a random place of `variant`.
fn quote(variant: &Prepared, words: usize, rng: &mut ChaCha20Rng) -> String {
    let total = variant.words.len();
    let words = words.min(total);
    let start = uniform_below(rng, (total - words + 1) as u32) as usize;
    let first = variant.tokens[variant.word_token[start]].start;
    let last = variant.tokens[variant.word_token[start + words - 1]].end;
    variant.text[first..last].to_string()
}

/// Retypes a quote as an article might.
fn retype(quote: &str, rng: &mut ChaCha20Rng) -> String {
    let mut words: Vec<String> = quote.split_whitespace().map(str::to_string).collect();
    if words.len() > 30 && chance(rng, 0.3) {
        // An ellipsis for a few words left out in the middle.
        let cut = 4 + uniform_below(rng, 9) as usize;
        let at = words.len() / 3 + uniform_below(rng, (words.len() / 3) as u32) as usize;
        let end = (at + cut).min(words.len() - 1);
        words.splice(at..end, ["…".to_string()]);
    }
    if words.len() > 10 && chance(rng, 0.3) {
        let at = 1 + uniform_below(rng, (words.len() - 2) as u32) as usize;
        words.insert(at, "[sic]".to_string());
    }
    let mut text = words.join(" ");
    if chance(rng, 0.2) {
        text = text.replace(',', "");
    } else {
        text = text
            .split(',')
            .enumerate()
            .map(|(i, piece)| {
                if i > 0 && !chance(rng, 0.05) {
                    format!(",{piece}")
                } else {
                    piece.to_string()
                }
            })
            .collect();
    }
    if chance(rng, 0.5) {
        text = text.replace('\'', "\u{2019}").replace('"', "\u{201d}");
    }
    if chance(rng, 0.25) {
        text = text.to_lowercase();
    } else if chance(rng, 0.1) {
        text = text.to_uppercase();
    }
    text
}

fn prose(rng: &mut ChaCha20Rng, sentences: usize) -> String {
    (0..sentences)
        .map(|_| PROSE[uniform_below(rng, PROSE.len() as u32) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the benchmark on `document`.
pub fn run_text(document: Document, config: &TextConfig) -> TextReport {
    let rules = RuleSet::standard();
    let transcript = Transcript::new(&rules, document);
    let master = SecretKey::from_seed(config.seed);
    let code = TardosCode::uniform(&master, 1, transcript.codeword_len);
    let recipients: Vec<u32> = (1..=config.recipients).collect();
    let trial_key = master.derive(TEXT_LABEL);
    let variant = |r: u32| -> Prepared {
        let spoken = transcript.render_spoken(&rules, &code.codeword(r));
        Prepared::new(&rules, spoken, Mode::Leak)
    };
    // Several articles are traced together as `text trace A B` does: every
    // fragment of every article, scored together and each alone.
    let trace_all = |articles: &[&str], quoted: &[u32]| -> Trial {
        let fragments: Vec<earmark_text::FragmentReading> = articles
            .iter()
            .flat_map(|article| {
                let leak = Prepared::new(&rules, article.to_string(), Mode::Leak);
                transcript.read(&rules, &leak)
            })
            .collect();
        let parts: Vec<Vec<(u32, f32)>> = fragments
            .iter()
            .map(earmark_text::FragmentReading::code_readings)
            .collect();
        let verdict = earmark::accuse::accuse_text(&code, &parts, &recipients, 1, config.epsilon);
        let named: Vec<u32> = verdict.accused.iter().map(|a| a.recipient).collect();
        let shortlist = named.is_empty().then(|| {
            let list = earmark::accuse::shortlist(&code, &parts, &recipients, 0);
            (
                list.consistent_with
                    .iter()
                    .any(|c| c.recipient == quoted[0]),
                list.consistent_with.len(),
                list.expected_innocents,
            )
        });
        Trial {
            shortlist,
            identified: named.len() == 1 && named[0] == quoted[0],
            named_quoted: !named.is_empty() && named.iter().all(|n| quoted.contains(n)),
            wrong: named.iter().any(|n| !quoted.contains(n)),
            slots_read: parts
                .iter()
                .flatten()
                .map(|&(p, _)| p)
                .collect::<std::collections::HashSet<u32>>()
                .len(),
            slots_covered: fragments.iter().map(|f| f.slots_covered).sum(),
        }
    };
    let trace = |article: &str, quoted: &[u32]| trace_all(&[article], quoted);
    // Each trial's own stream: the kind of trial and quote length (a
    // number), and the trial's index.
    let trial_rng = |stream: u64, t: usize| {
        trial_key
            .derive_with(
                TEXT_LABEL,
                &[stream.to_be_bytes(), (t as u64).to_be_bytes()].concat(),
            )
            .stream(TEXT_LABEL)
    };
    let mut rows = Vec::new();
    let mut traces = 0;
    let mut innocents = 0;
    for (length_index, &words) in config.words.iter().enumerate() {
        let singles: Vec<Trial> = (0..config.trials)
            .into_par_iter()
            .map(|t| {
                let mut rng = trial_rng(length_index as u64, t);
                let r = 1 + uniform_below(&mut rng, config.recipients);
                let q = retype(&quote(&variant(r), words, &mut rng), &mut rng);
                let article = format!("{} “{q}” {}", prose(&mut rng, 2), prose(&mut rng, 2));
                trace(&article, &[r])
            })
            .collect();
        let mixes: Vec<Trial> = (0..config.mix_trials)
            .into_par_iter()
            .map(|t| {
                let mut rng = trial_rng(length_index as u64 + 1000, t);
                let a = 1 + uniform_below(&mut rng, config.recipients);
                let b =
                    1 + (a + uniform_below(&mut rng, config.recipients - 1)) % config.recipients;
                let qa = retype(&quote(&variant(a), words, &mut rng), &mut rng);
                let qb = retype(&quote(&variant(b), words, &mut rng), &mut rng);
                let article = format!(
                    "{} “{qa}” {} “{qb}” {}",
                    prose(&mut rng, 1),
                    prose(&mut rng, 2),
                    prose(&mut rng, 1)
                );
                trace(&article, &[a, b])
            })
            .collect();
        let pairs: Vec<Trial> = (0..config.mix_trials)
            .into_par_iter()
            .map(|t| {
                let mut rng = trial_rng(length_index as u64 + 2000, t);
                let r = 1 + uniform_below(&mut rng, config.recipients);
                let copy = variant(r);
                let first = retype(&quote(&copy, words, &mut rng), &mut rng);
                let second = retype(&quote(&copy, words, &mut rng), &mut rng);
                let one = format!("{} “{first}” {}", prose(&mut rng, 2), prose(&mut rng, 1));
                let other = format!("{} “{second}” {}", prose(&mut rng, 1), prose(&mut rng, 2));
                trace_all(&[&one, &other], &[r])
            })
            .collect();
        let n = singles.len().max(1) as f64;
        let lists: Vec<(bool, usize, f64)> = singles.iter().filter_map(|t| t.shortlist).collect();
        let listed = lists.len().max(1) as f64;
        traces += singles.len() + mixes.len() + pairs.len();
        innocents += singles
            .iter()
            .chain(&mixes)
            .chain(&pairs)
            .filter(|t| t.wrong)
            .count();
        rows.push(LengthRow {
            words,
            trials: singles.len(),
            identified: singles.iter().filter(|t| t.identified).count(),
            nobody: singles.iter().filter(|t| !t.identified && !t.wrong).count(),
            wrong: singles.iter().filter(|t| t.wrong).count(),
            mean_slots_read: singles.iter().map(|t| t.slots_read).sum::<usize>() as f64 / n,
            mean_slots_covered: singles.iter().map(|t| t.slots_covered).sum::<usize>() as f64 / n,
            mix_trials: mixes.len(),
            mix_named_quoted: mixes.iter().filter(|t| t.named_quoted).count(),
            mix_third: mixes.iter().filter(|t| t.wrong).count(),
            pair_trials: pairs.len(),
            pair_identified: pairs.iter().filter(|t| t.identified).count(),
            pair_wrong: pairs.iter().filter(|t| t.wrong).count(),
            shortlisted: lists.len(),
            shortlist_holds_source: lists.iter().filter(|l| l.0).count(),
            mean_shortlist: lists.iter().map(|l| l.1).sum::<usize>() as f64 / listed,
            // Folded from +0.0: an empty float sum is -0.0, printed "-0.0".
            mean_expected_innocents: lists.iter().fold(0.0, |sum, l| sum + l.2) / listed,
        });
    }
    TextReport {
        transcript_words: transcript.words(),
        slots: transcript.slots(),
        positions: transcript.codeword_len,
        slots_per_100_words: 100.0 * transcript.slots() as f64 / transcript.words().max(1) as f64,
        positions_per_100_words: 100.0 * transcript.codeword_len as f64
            / transcript.words().max(1) as f64,
        recipients: config.recipients,
        epsilon: config.epsilon.get(),
        seed: config.seed,
        bits_needed: (config.recipients as f64 / config.epsilon.get()).log2(),
        rows,
        traces,
        innocents_accused: innocents,
    }
}

impl TextReport {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## Transcript canaries\n\n{} spoken words, {} slots in {} independent positions ({:.1} per 100 words); {} recipients; ε = {:.0e} per trace \
             (a quote must carry about {:.0} matching slots to name anyone); seed {}.\n\n\
             | quote words | trials | named alone | nobody | wrong | slots covered | positions read | 2-recipient mixes | named one of the two | named a third |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
            self.transcript_words,
            self.slots,
            self.positions,
            self.positions_per_100_words,
            self.recipients,
            self.epsilon,
            self.bits_needed,
            self.seed
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {} | {} |\n",
                r.words,
                r.trials,
                share(r.identified, r.trials),
                r.nobody,
                r.wrong,
                r.mean_slots_covered,
                r.mean_slots_read,
                r.mix_trials,
                r.mix_named_quoted,
                r.mix_third
            ));
        }
        out.push_str(&format!(
            "\nInnocents accused: {} in {} traces.\n",
            self.innocents_accused, self.traces
        ));
        push_table(
            &mut out,
            "Two quotes of one copy in two articles, traced together (`text trace A B`: one source assumed, one ε):",
            &["quote words, each", "pairs", "one quote alone named", "both together named", "wrong"],
            self.rows.iter().map(|r| {
                vec![
                    r.words.to_string(),
                    r.pair_trials.to_string(),
                    format!("{:.1} %", 100.0 * r.identified as f64 / r.trials.max(1) as f64),
                    share(r.pair_identified, r.pair_trials),
                    r.pair_wrong.to_string(),
                ]
            }),
        );
        push_table(
            &mut out,
            "When a single quote names nobody, `text trace` lists the recipients whose variant agrees with every position it read \
             (a shortlist, not an accusation). Its length should be about the innocents expected by chance (N·2⁻ᵏ for k positions read) plus the source.",
            &["quote words", "shortlists", "holding the source", "mean length", "innocents expected by chance"],
            self.rows.iter().map(|r| {
                vec![
                    r.words.to_string(),
                    r.shortlisted.to_string(),
                    share(r.shortlist_holds_source, r.shortlisted),
                    format!("{:.1}", r.mean_shortlist),
                    format!("{:.1}", r.mean_expected_innocents),
                ]
            }),
        );
        out
    }
}
