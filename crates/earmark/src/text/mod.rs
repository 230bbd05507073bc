//! Transcript canaries: each recipient's transcript differs in
//! meaning-preserving details that follow their codeword; a quoted passage
//! names whose transcript it came from.

mod mark;
pub use mark::{TextCopyReport, TextMarkReport, TextMarkRequest};

use crate::Wait;
use std::path::{Path, PathBuf};

use earmark_codes::TardosCode;
use earmark_keys::{Label, SecretKey};
use earmark_ledger::{Work, TRANSCRIPT};
use earmark_text::{Document, Format, Mode, Prepared, RuleSet, Transcript};
use serde::Serialize;

use crate::accuse::{accuse_text, Epsilon};
use crate::{Error, Home, Result};

/// Words rendered and checked (transcript words times recipients) beyond
/// which `text mark` shows progress: about a second of work.
const LONG_TEXT_MARK_WORDS: usize = 2_000_000;

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

/// Transcript formats.
pub type TextFormat = Format;

/// A fragment's best-scoring recipient.
#[derive(Clone, Debug, Serialize)]
pub struct FragmentBest {
    /// Recipient id.
    pub recipient_id: u32,
    /// Their name.
    pub name: String,
    /// Bound on an innocent scoring this high.
    pub false_accusation_bound: f64,
}

/// One quoted fragment of a transcript.
#[derive(Clone, Debug, Serialize)]
pub struct FragmentReport {
    /// Which leak it is in: an index into [`TextTraceReport::leaks`].
    pub leak: usize,
    /// Where it starts in the leaked text, characters.
    pub leak_start: usize,
    /// Where it ends in the leaked text, characters.
    pub leak_end: usize,
    /// The leaked fragment, shortened.
    pub excerpt: String,
    /// The transcript's words it quotes, shortened.
    pub master_excerpt: String,
    /// The transcript's word range, `[start, end)`.
    pub master_words: [usize; 2],
    /// Words matched.
    pub matched_words: usize,
    /// Slots the fragment covers.
    pub slots_covered: usize,
    /// Slots read.
    pub slots_read: usize,
    /// Whether the quote kept the transcript's punctuation.
    pub punctuation_kept: bool,
    /// The fragment's best recipient alone.
    pub best: Option<FragmentBest>,
}

/// A recipient accused by a leaked text.
#[derive(Clone, Debug, Serialize)]
pub struct TextAccusation {
    /// Recipient id.
    pub recipient_id: u32,
    /// Their name.
    pub name: String,
    /// Normalised code score.
    pub score: f64,
    /// Upper bound on the probability that this accusation is wrong.
    pub false_accusation_bound: f64,
}

/// What one transcript says about a leaked text.
#[derive(Clone, Debug, Serialize)]
pub struct TranscriptVerdict {
    /// The transcript's work id.
    pub work: i64,
    /// Its title.
    pub title: Option<String>,
    /// Variation slots.
    pub slots: usize,
    /// Codeword positions.
    pub codeword_positions: usize,
    /// Slots read, over every fragment.
    pub slots_read: usize,
    /// Distinct codeword positions read.
    pub positions_read: usize,
    /// Recipients scored.
    pub recipients_scored: usize,
    /// The union bound's factor.
    pub union_factor: usize,
    /// The fragments quoted.
    pub fragments: Vec<FragmentReport>,
    /// The accused.
    pub accused: Vec<TextAccusation>,
    /// When nobody can be accused: the recipients whose variants agree with
    /// what was read, a lead and not an accusation.
    pub shortlist: Option<TextShortlist>,
}

/// A [`crate::accuse::Shortlist`] with names, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct TextShortlist {
    /// Codeword positions read whose readings all agree.
    pub clean_positions: usize,
    /// Positions read both ways, left out.
    pub conflicting_positions: usize,
    /// Disagreements a listed recipient may have.
    pub mismatches_allowed: usize,
    /// Recipients compared.
    pub recipients_compared: usize,
    /// The recipients consistent with the readings, fewest disagreements
    /// first.
    pub consistent_with: Vec<ShortlistEntry>,
    /// Innocents expected in the list by chance alone.
    pub expected_innocents: f64,
    /// What the list means, in words.
    pub statement: String,
}

/// One recipient on a [`TextShortlist`].
#[derive(Clone, Debug, Serialize)]
pub struct ShortlistEntry {
    /// Their id.
    pub recipient_id: u32,
    /// Their name.
    pub name: String,
    /// Clean positions where their variant differs from the quote.
    pub mismatches: usize,
}

/// The verdict on a leaked text.
#[derive(Clone, Debug, Serialize)]
pub struct TextTraceReport {
    /// Whether the text quotes any registered transcript.
    pub found: bool,
    /// Always `transcript`.
    pub method: &'static str,
    /// The budget the verdict was held to.
    pub epsilon: Epsilon,
    /// The leaked texts, in the order given.
    pub leaks: Vec<PathBuf>,
    /// With several leaks, what scoring them together assumes.
    pub assumption: Option<String>,
    /// One per transcript quoted.
    pub transcripts: Vec<TranscriptVerdict>,
}

/// What tracing several leaks together assumes, as the report states it.
pub const ONE_SOURCE_ASSUMED: &str = "the leaks are assumed to come from one source: \
their quotes are scored together as one accusation, within one ε, and each quote alone";

impl TextTraceReport {
    /// Whether anyone is accused.
    pub fn anyone_accused(&self) -> bool {
        self.transcripts.iter().any(|t| !t.accused.is_empty())
    }
}

/// What the rules' self-check found on a transcript.
#[derive(Clone, Debug, Serialize)]
pub struct TextCheckReport {
    /// The transcript.
    pub path: PathBuf,
    /// Spoken words.
    pub words: usize,
    /// Slots kept.
    pub slots: usize,
    /// Codeword positions they carry.
    pub codeword_positions: usize,
    /// Slots found, before any was left out (see `left_out`).
    pub slots_found: usize,
    /// Variants rendered.
    pub variants: usize,
    /// Variants whose canonical text differs from the original's.
    pub canonical_mismatches: usize,
    /// Variants whose structure (timings, labels) changed.
    pub structure_changed: usize,
    /// Slots read back right.
    pub slots_read: usize,
    /// Slots read back wrong.
    pub wrong_bits: usize,
    /// Slots not read.
    pub unread: usize,
    /// Filler slots not read where a variant drops them all.
    pub fillers_excused: usize,
    /// Whether every variant means exactly what the original means.
    pub passed: bool,
    /// Slots found but left out, because their other rendering would change
    /// what the transcript says or is not read back: each names why, its
    /// rule, its words either way and its place. Variants never render them.
    pub left_out: Vec<earmark_text::SlotFailure>,
    /// How many slots each rule had left out.
    pub left_out_by_rule: std::collections::BTreeMap<String, usize>,
    /// Slots kept that some variant of this check did not read back as
    /// its bit (none when the check passes), named as `left_out` is.
    pub misread: Vec<Misread>,
}

/// A slot some variant of `text check` did not read back as its bit.
#[derive(Clone, Debug, Serialize)]
pub struct Misread {
    /// The rule, the words either way and the place.
    #[serde(flatten)]
    pub slot: earmark_text::SlotFailure,
    /// The variants (numbered from 0 among those checked) that misread it.
    pub variants: Vec<usize>,
}

/// Reads a text file: bounded size, UTF-8 (a byte-order mark is dropped).
pub fn read_text(path: &Path) -> Result<String> {
    read_text_as(path, path)
}

/// [`read_text`] of `path`, saying `name` in its errors: for a transcript
/// read from its copy in the home's master store.
fn read_text_as(path: &Path, name: &Path) -> Result<String> {
    let bad = |e: &dyn std::fmt::Display| Error::Text(format!("{}: {e}", name.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(&e))?;
    if !meta.is_file() {
        return Err(bad(&"not a regular file"));
    }
    if meta.len() > MAX_TEXT_BYTES {
        return Err(bad(&format_args!(
            "{} bytes is too large for a text (at most {MAX_TEXT_BYTES})",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(&e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        bad(&format_args!(
            "not UTF-8 text (invalid byte at {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

/// Reads and parses a transcript: `format`, else from its extension, else
/// from its content.
pub fn load_transcript(path: &Path, format: Option<TextFormat>) -> Result<Document> {
    parse(path, read_text(path)?, format)
}

fn parse(path: &Path, text: String, format: Option<Format>) -> Result<Document> {
    let format = format.or_else(|| {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Format::from_extension)
    });
    Document::parse(text, format).map_err(|e| Error::Text(format!("{}: {e}", path.display())))
}

/// The code of transcript `work`.
fn code(home_key: &SecretKey, work: i64, slots: usize) -> TardosCode {
    TardosCode::uniform(home_key, work as u32, slots)
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

/// A registered transcript, ready to trace against.
struct Registered {
    work: Work,
    transcript: Transcript,
    recipients: Vec<u32>,
}

impl Home {
    /// The transcripts a leak may quote: `only`, or every transcript whose
    /// master is kept and that was delivered to someone.
    fn registered(&self, rules: &RuleSet, only: Option<i64>) -> Result<Vec<Registered>> {
        let ledger = self.ledger();
        let works = match only {
            Some(id) => {
                let w = self.checked_work(id).wait()?;
                if w.kind != TRANSCRIPT {
                    return Err(Error::OtherKindOfWork {
                        work: id,
                        transcript: false,
                    });
                }
                vec![w]
            }
            None => ledger
                .works()
                .wait()?
                .into_iter()
                .filter(|w| w.kind == TRANSCRIPT)
                .collect(),
        };
        let mut out = Vec::new();
        for work in works {
            let copies = ledger.checked_copies(work.id, None).wait()?;
            let Some(first) = copies.first() else {
                continue;
            };
            let Some(path) = self.verified_master(&work)? else {
                if only.is_some() {
                    return Err(Error::Text(format!(
                        "the master of transcript {} was forgotten; it cannot be traced",
                        work.id
                    )));
                }
                continue;
            };
            let format = first
                .format
                .strip_prefix(COPY_FORMAT_PREFIX)
                .and_then(Format::from_extension);
            let document = parse(&path, read_text(&path)?, format)?;
            let transcript = Transcript::new(rules, document);
            let recipients = ledger
                .recipients_of(work.id)
                .wait()?
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

    /// Names the recipients whose transcript the leaked texts quote. Several
    /// leaks are taken to come from one source (several articles by one
    /// outlet): their fragments are scored together, as one accusation
    /// within one ε, and each fragment alone. When nobody can be named, the
    /// recipients consistent with the quotes are listed, each with at most
    /// `mismatches_allowed` disagreements.
    pub async fn text_trace(
        &self,
        leaked: &[PathBuf],
        work: Option<i64>,
        epsilon: Epsilon,
        mismatches_allowed: usize,
    ) -> Result<TextTraceReport> {
        let (home, leaked) = (self.clone(), leaked.to_vec());
        crate::blocking(move || {
            home.text_trace_blocking(&leaked, work, epsilon, mismatches_allowed)
        })
        .await
    }

    fn text_trace_blocking(
        &self,
        leaked: &[PathBuf],
        work: Option<i64>,
        epsilon: Epsilon,
        mismatches_allowed: usize,
    ) -> Result<TextTraceReport> {
        if leaked.is_empty() {
            return Err(Error::Usage("no leaked text given".into()));
        }
        let mut texts = Vec::new();
        for path in leaked {
            let text = read_text(path)?;
            // A leak is any text: checked for binary content and emptiness only.
            Document::parse(text.clone(), Some(Format::Plain))
                .map_err(|e| Error::Text(format!("{}: {e}", path.display())))?;
            texts.push(text);
        }
        // Nobody is accused on records that may have been altered.
        self.ledger().require_current().wait()?;
        let rules = RuleSet::standard();
        let leaks: Vec<Prepared> = texts
            .into_iter()
            .map(|text| Prepared::new(&rules, text, Mode::Leak))
            .collect();
        // Each transcript's fragments in every leak, in leak order, each with
        // the index of its leak.
        let matched: Vec<(Registered, Vec<(usize, earmark_text::FragmentReading)>)> = self
            .registered(&rules, work)?
            .into_iter()
            .map(|r| {
                let fragments = leaks
                    .iter()
                    .enumerate()
                    .flat_map(|(l, leak)| {
                        r.transcript
                            .read(&rules, leak)
                            .into_iter()
                            .map(move |f| (l, f))
                    })
                    .collect();
                (r, fragments)
            })
            .filter(|(_, f): &(_, Vec<_>)| !f.is_empty())
            .collect();
        let works_tried = matched.len();
        let name = |id: u32| -> Result<String> {
            Ok(self
                .recipient(id as i64)
                .wait()?
                .map_or_else(|| format!("#{id}"), |r| r.name))
        };
        let mut transcripts = Vec::new();
        for (reg, fragments) in &matched {
            let code = code(&self.inner.master, reg.work.id, reg.transcript.codeword_len);
            let parts: Vec<Vec<(u32, f32)>> =
                fragments.iter().map(|(_, f)| f.code_readings()).collect();
            let verdict = accuse_text(&code, &parts, &reg.recipients, works_tried, epsilon);
            let mut accused = Vec::new();
            for a in &verdict.accused {
                accused.push(TextAccusation {
                    recipient_id: a.recipient,
                    name: name(a.recipient)?,
                    score: a.score,
                    false_accusation_bound: a.bound,
                });
            }
            let mut reports = Vec::new();
            let mut chars = vec![0; 2 * fragments.len()];
            for (l, leak) in leaks.iter().enumerate() {
                let of_leak: Vec<usize> = (0..fragments.len())
                    .filter(|&k| fragments[k].0 == l)
                    .collect();
                let bytes: Vec<usize> = of_leak
                    .iter()
                    .flat_map(|&k| {
                        [
                            fragments[k].1.leak_bytes.start,
                            fragments[k].1.leak_bytes.end,
                        ]
                    })
                    .collect();
                for (i, offset) in char_offsets(&leak.text, &bytes).into_iter().enumerate() {
                    chars[2 * of_leak[i / 2] + i % 2] = offset;
                }
            }
            for (k, (l, f)) in fragments.iter().enumerate() {
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
                let best = match best {
                    Some(b) => Some(FragmentBest {
                        recipient_id: b.recipient,
                        name: name(b.recipient)?,
                        false_accusation_bound: b.bound,
                    }),
                    None => None,
                };
                reports.push(FragmentReport {
                    leak: *l,
                    leak_start: chars[2 * k],
                    leak_end: chars[2 * k + 1],
                    excerpt: excerpt(&leaks[*l].text[f.leak_bytes.clone()], 90),
                    master_excerpt: excerpt(
                        &reg.transcript.prepared.text[f.master_bytes.clone()],
                        90,
                    ),
                    master_words: [f.fragment.master.start, f.fragment.master.end],
                    matched_words: f.fragment.pairs.len(),
                    slots_covered: f.slots_covered,
                    slots_read: f.readings.len(),
                    punctuation_kept: f.punctuation_kept,
                    best,
                });
            }
            let shortlist = if accused.is_empty() {
                let list =
                    crate::accuse::shortlist(&code, &parts, &reg.recipients, mismatches_allowed);
                let consistent_with = list
                    .consistent_with
                    .iter()
                    .map(|c| {
                        Ok(ShortlistEntry {
                            recipient_id: c.recipient,
                            name: name(c.recipient)?,
                            mismatches: c.mismatches,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(TextShortlist {
                    statement: shortlist_statement(&list),
                    clean_positions: list.clean_positions,
                    conflicting_positions: list.conflicting_positions,
                    mismatches_allowed: list.mismatches_allowed,
                    recipients_compared: list.recipients_compared,
                    consistent_with,
                    expected_innocents: list.expected_innocents,
                })
            } else {
                None
            };
            transcripts.push(TranscriptVerdict {
                work: reg.work.id,
                title: reg.work.title.clone(),
                slots: reg.transcript.slots(),
                codeword_positions: reg.transcript.codeword_len,
                slots_read: parts.iter().map(Vec::len).sum(),
                positions_read: parts
                    .iter()
                    .flatten()
                    .map(|&(p, _)| p)
                    .collect::<std::collections::BTreeSet<u32>>()
                    .len(),
                recipients_scored: reg.recipients.len(),
                union_factor: verdict.union,
                fragments: reports,
                accused,
                shortlist,
            });
        }
        Ok(TextTraceReport {
            found: !transcripts.is_empty(),
            method: "transcript",
            epsilon,
            assumption: (leaked.len() > 1).then(|| ONE_SOURCE_ASSUMED.to_string()),
            leaks: leaked.to_vec(),
            transcripts,
        })
    }
}

/// Self-check: renders `variants` variants of a transcript and checks that
/// each means the same (same canonical text, same structure) and reads back.
/// No home is needed.
pub fn text_check(
    path: &Path,
    variants: usize,
    format: Option<TextFormat>,
) -> Result<TextCheckReport> {
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
    Ok(TextCheckReport {
        left_out: transcript.left_out.clone(),
        left_out_by_rule: transcript.left_out.iter().fold(
            std::collections::BTreeMap::new(),
            |mut counts, f| {
                *counts.entry(f.rule.clone()).or_insert(0) += 1;
                counts
            },
        ),
        misread: report
            .misread
            .iter()
            .map(|(&slot, variants)| Misread {
                slot: transcript.describe_slot(
                    &rules,
                    slot,
                    earmark_text::LeftOutBecause::NotReadBack,
                ),
                variants: variants.clone(),
            })
            .collect(),
        path: path.to_path_buf(),
        words: transcript.words(),
        slots: transcript.slots(),
        codeword_positions: transcript.codeword_len,
        slots_found: found,
        variants: report.variants,
        canonical_mismatches: report.canonical_mismatches,
        structure_changed: report.structure_changed,
        slots_read: report.slots_read,
        wrong_bits: report.wrong_bits,
        unread: report.unread,
        fillers_excused: report.fillers_excused,
        passed: report.passed(),
    })
}

/// What a shortlist means, in words: who agrees, how many innocents would
/// by chance, and that it accuses no one.
fn shortlist_statement(list: &crate::accuse::Shortlist) -> String {
    let listed = list.consistent_with.len();
    let allowed = match list.mismatches_allowed {
        0 => String::new(),
        1 => " but one".to_string(),
        m => format!(" but {m}"),
    };
    let expected = match list.expected_innocents {
        x if x == 0.0 || x >= 0.01 => format!("{x:.2}"),
        x => format!("{x:.1e}"),
    };
    format!(
        "not an accusation: {listed} of {} recipients agree with all{allowed} of the {} positions read, \
         and about {expected} innocents would agree by chance alone",
        list.recipients_compared, list.clean_positions
    )
}

/// Character offsets of the byte offsets `bytes` (each on a character
/// boundary, in any order) of `text`, in one pass over it: counting from
/// the start for each of thousands of quotes made reports quadratic in the
/// article.
fn char_offsets(text: &str, bytes: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..bytes.len()).collect();
    order.sort_by_key(|&k| bytes[k]);
    let mut found = vec![0; bytes.len()];
    let (mut at_byte, mut at_char) = (0, 0);
    for k in order {
        at_char += text[at_byte..bytes[k]].chars().count();
        at_byte = bytes[k];
        found[k] = at_char;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::char_offsets;

    #[test]
    fn char_offsets_are_those_counted_from_the_start() {
        let text = "Zoë said „ja“ 😀 twice, then née.";
        let bytes: Vec<usize> = text.char_indices().map(|(b, _)| b).rev().collect();
        let expected: Vec<usize> = bytes.iter().map(|&b| text[..b].chars().count()).collect();
        assert_eq!(char_offsets(text, &bytes), expected);
        let repeated = [bytes[3], bytes[0], bytes[3], text.len()];
        let expected: Vec<usize> = repeated
            .iter()
            .map(|&b| text[..b].chars().count())
            .collect();
        assert_eq!(char_offsets(text, &repeated), expected);
    }
}
