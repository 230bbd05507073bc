//! The accusation policy: who the readings of a leak name, and the bound on
//! each naming being wrong. `trace`, `text trace` and the benchmark's
//! informed and transcript trials all decide through this module, so that a
//! verdict and its measured rate are the same rule.
//!
//! Two kinds of evidence share the false-accusation budget ε equally:
//! - the sealed identifier (ε/2): a payload decoded blind, or each suspect's
//!   own payload correlated with the soft bits read through the master;
//! - the collusion-resistant code (ε/2): every suspect's Tardos score on the
//!   fingerprint positions read, with a union bound over everyone scored.
//!
//! With the master at hand, `trace` may try both methods (informed, then
//! blind when informed names no one), so every bound of an informed trace
//! pays twice ([`Method::bound_factor`]).
//!
//! Every bound reported is the one compared with ε: each kind's bound is
//! multiplied by the number of kinds ([`EVIDENCE_KINDS`]), so that a charge
//! with bound b is made exactly when b ≤ ε, and b is the smallest ε at which
//! it would be made.

use earmark_codes::{false_accusation_bound, TardosCode};
use earmark_engine::{payload_tail, Found, KnownPayloads, Segment};
use earmark_keys::SecretKey;
use serde::Serialize;

/// The largest accepted probability of accusing anyone innocent: a finite
/// number strictly between 0 and 1. Every accusation path takes one, so a
/// NaN, 0, 1 or out-of-range value cannot reach a verdict.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Epsilon(f64);

/// Why a value is not an [`Epsilon`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("epsilon must be a probability strictly between 0 and 1, got {0}")]
pub struct BadEpsilon(pub String);

impl Epsilon {
    /// The default budget: one wrong accusation in a million traces.
    pub const DEFAULT: Epsilon = Epsilon(1e-6);

    /// `value` if it is finite and in (0, 1).
    pub fn new(value: f64) -> Result<Epsilon, BadEpsilon> {
        if value.is_finite() && value > 0.0 && value < 1.0 {
            Ok(Epsilon(value))
        } else {
            Err(BadEpsilon(value.to_string()))
        }
    }

    /// The probability.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for Epsilon {
    fn default() -> Self {
        Epsilon::DEFAULT
    }
}

impl std::str::FromStr for Epsilon {
    type Err = BadEpsilon;

    fn from_str(text: &str) -> Result<Epsilon, BadEpsilon> {
        let value: f64 = text
            .trim()
            .parse()
            .map_err(|_| BadEpsilon(format!("'{text}'")))?;
        Epsilon::new(value).map_err(|_| BadEpsilon(format!("'{text}'")))
    }
}

impl std::fmt::Display for Epsilon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a leak was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Method {
    /// The watermark alone, without the master.
    #[serde(rename = "blind")]
    Blind,
    /// Registered against the stored master and read through it.
    #[serde(rename = "informed")]
    Informed,
    /// Informed named no one, so the leak was also read blind.
    #[serde(rename = "informed+blind")]
    InformedThenBlind,
}

impl Method {
    /// Factor on every bound: with the master at hand both methods may run,
    /// so each accusation pays for both in the union bound.
    pub fn bound_factor(self) -> f64 {
        match self {
            Method::Blind => 1.0,
            Method::Informed | Method::InformedThenBlind => 2.0,
        }
    }

    /// As the reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Blind => "blind",
            Method::Informed => "informed",
            Method::InformedThenBlind => "informed+blind",
        }
    }
}

/// What named a recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// The sealed identifier.
    Identifier,
    /// The collusion-resistant code.
    Code,
}

impl Evidence {
    /// As the reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Identifier => "identifier",
            Evidence::Code => "code",
        }
    }
}

/// A payload decoded blind and resolved by the caller to a work and a
/// recipient that holds a recorded copy of it.
#[derive(Clone, Debug)]
pub struct Decoded<'a> {
    /// Work id.
    pub work: i64,
    /// Recipient id.
    pub recipient: i64,
    /// What the detector found.
    pub found: &'a Found,
}

/// The identifier read through the master: soft bits per stretch, and the
/// suspects' own payloads to correlate them with.
pub struct InformedIdentifier<'a> {
    /// The work read against.
    pub work: i64,
    /// Soft identifier bits, per stretch read (the whole leak first, then
    /// its parts).
    pub soft: &'a [(Vec<Segment>, Vec<f32>)],
    /// How many of `soft`'s first entries cover the whole leak.
    pub whole: usize,
    /// The engine key the payloads were embedded under.
    pub engine_key: &'a SecretKey,
    /// `(recipient, payload)` of every recorded copy of the work.
    pub suspects: &'a [(i64, u64)],
}

/// One work's code and the recipients scored under it.
pub struct CodeSuspects<'a> {
    /// Work id.
    pub work: i64,
    /// The work's code.
    pub code: &'a TardosCode,
    /// Recipients holding a copy of the work.
    pub recipients: &'a [u32],
}

/// Everything one leak's readings offer for an accusation.
pub struct Case<'a> {
    /// The budget.
    pub epsilon: Epsilon,
    /// How the leak was read.
    pub method: Method,
    /// The work asked about, if the user named one.
    pub forced_work: Option<i64>,
    /// Payloads decoded blind, resolved to work and recipient.
    pub decoded: Vec<Decoded<'a>>,
    /// Payload candidates the blind detector checked in all.
    pub candidates_checked: usize,
    /// The identifier read through the master, if it was.
    pub informed: Option<InformedIdentifier<'a>>,
    /// The fingerprint positions read: `(position, reading)`.
    pub fingerprint: &'a [(u32, f32)],
    /// Stretches of the leak whose fingerprint blocks were read.
    pub fingerprint_segments: &'a [Segment],
    /// The codes to score: the work found (or given), else every work with
    /// copies, each paid for in the union bound.
    pub codes: Vec<CodeSuspects<'a>>,
}

/// One accusation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Charge {
    /// Recipient id.
    pub recipient: i64,
    /// What named them.
    pub evidence: Vec<Evidence>,
    /// Upper bound on the probability that this names an innocent.
    pub bound: f64,
    /// The identifier's pilot statistic or normalised correlation, or the
    /// code's normalised score.
    pub score: f64,
    /// The identifier's p-value under the no-mark hypothesis, if it named them.
    pub mark_p_value: Option<f64>,
    /// Stretches of the leak, seconds, that carry their mark.
    pub segments: Vec<Segment>,
}

/// A recipient's place in the code's ranking.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Ranked {
    /// Recipient id.
    pub recipient: i64,
    /// Normalised score (an innocent's has mean 0 and variance 1).
    pub score: f64,
    /// Bound on an innocent scoring this high, with every factor applied.
    pub bound: f64,
}

/// What the code says about one work.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeVerdict {
    /// Work id.
    pub work: i64,
    /// Code positions read.
    pub positions_read: usize,
    /// Recipients scored, over every work tried.
    pub recipients_scored: usize,
    /// The best scores, highest first.
    pub ranking: Vec<Ranked>,
}

/// Who a leak's readings name.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The accused, in the order they were named.
    pub accused: Vec<Charge>,
    /// Evidence the budget set aside that the default ε would not: each
    /// recipient's strongest, by bound (the smallest ε that names them).
    pub withheld: Vec<Charge>,
    /// The work they hold copies of.
    pub work: Option<i64>,
    /// The code's verdict, if any position was read.
    pub code: Option<CodeVerdict>,
    /// What was read but set aside, and why.
    pub notes: Vec<String>,
}

/// How many of a code's best scorers are ranked.
pub const RANKING_SHOWN: usize = 10;

/// Kinds of evidence sharing the budget ε (the identifier and the code):
/// each kind's bound is multiplied by it, so each kind spends at most
/// ε / `EVIDENCE_KINDS`.
pub const EVIDENCE_KINDS: f64 = 2.0;

/// The verdict on one leak: see the module documentation.
pub fn accuse(case: &Case) -> Verdict {
    let limit = case.epsilon.get();
    let factor = case.method.bound_factor() * EVIDENCE_KINDS;
    let mut notes = Vec::new();
    let mut accused: Vec<Charge> = Vec::new();
    let mut withheld: Vec<Charge> = Vec::new();
    let mut work_found = case.forced_work;

    let identifier_bound = (false_accusation_bound(case.candidates_checked) * factor).min(1.0);
    for d in &case.decoded {
        let charge = Charge {
            recipient: d.recipient,
            evidence: vec![Evidence::Identifier],
            bound: identifier_bound,
            score: d.found.pilot_z as f64,
            mark_p_value: Some(d.found.p_value),
            segments: d.found.segments.clone(),
        };
        if identifier_bound > limit {
            withhold(&mut withheld, charge);
            continue;
        }
        if work_found.is_some_and(|w| w != d.work) {
            notes.push(format!("a copy of work {} is also present", d.work));
            continue;
        }
        accused.push(charge);
        work_found.get_or_insert(d.work);
    }

    if let Some(informed) = case.informed.as_ref().filter(|i| !i.soft.is_empty()) {
        let payloads: Vec<u64> = informed.suspects.iter().map(|&(_, p)| p).collect();
        let known = KnownPayloads::new(informed.engine_key, &payloads);
        let union = (known.len() * informed.soft.len()) as f64 * factor;
        // Parts before the whole leak: a recipient found in a part is
        // located by it, not by the whole leak's pilot.
        for (k, (segments, soft)) in informed.soft.iter().enumerate().rev() {
            let norm = soft.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            for scored in known.scores(soft) {
                let tail = payload_tail(soft, scored.score);
                let bound = (tail * union).min(1.0);
                let Some(&(recipient, _)) = informed
                    .suspects
                    .iter()
                    .find(|&&(_, p)| p == scored.payload)
                else {
                    continue;
                };
                let charge = Charge {
                    recipient,
                    evidence: vec![Evidence::Identifier],
                    bound,
                    score: scored.score / norm.max(1e-12),
                    mark_p_value: Some(tail),
                    segments: segments.clone(),
                };
                if bound > limit {
                    withhold(&mut withheld, charge);
                    break;
                }
                match accused.iter_mut().find(|a| a.recipient == recipient) {
                    Some(a) => {
                        a.bound = a.bound.min(bound);
                        a.mark_p_value = Some(a.mark_p_value.unwrap_or(1.0).min(tail));
                        if k >= informed.whole {
                            a.segments.extend(segments.iter().copied());
                            earmark_engine::detect::join_segments(&mut a.segments);
                        }
                    }
                    None => accused.push(charge),
                }
                work_found.get_or_insert(informed.work);
            }
        }
    }

    let code = code_verdict(&case.codes, case.fingerprint, limit, factor);
    if let Some(verdict) = &code {
        for ranked in &verdict.ranking {
            let charge = Charge {
                recipient: ranked.recipient,
                evidence: vec![Evidence::Code],
                bound: ranked.bound,
                score: ranked.score,
                mark_p_value: None,
                segments: case.fingerprint_segments.to_vec(),
            };
            if ranked.bound > limit {
                withhold(&mut withheld, charge);
                break;
            }
            match accused.iter_mut().find(|a| a.recipient == ranked.recipient) {
                Some(a) => {
                    a.evidence.push(Evidence::Code);
                    a.bound = a.bound.min(ranked.bound);
                }
                None => accused.push(charge),
            }
        }
        if accused.iter().any(|a| a.evidence.contains(&Evidence::Code)) {
            work_found.get_or_insert(verdict.work);
        }
    }
    withheld.retain(|w| !accused.iter().any(|a| a.recipient == w.recipient));
    withheld.sort_by(|a, b| a.bound.total_cmp(&b.bound));
    Verdict {
        accused,
        withheld,
        work: work_found,
        code,
        notes,
    }
}

/// Keeps evidence that falls short of the caller's ε but would name its
/// recipient at the default ε: a stricter ε than the default must say what
/// it set aside. Weaker evidence is not kept, so nobody is named on it.
fn withhold(withheld: &mut Vec<Charge>, charge: Charge) {
    if charge.bound > Epsilon::DEFAULT.get() {
        return;
    }
    match withheld
        .iter_mut()
        .find(|w| w.recipient == charge.recipient)
    {
        Some(w) if w.bound <= charge.bound => {}
        Some(w) => *w = charge,
        None => withheld.push(charge),
    }
}

/// Scores every work's recipients on the fingerprint positions read; the
/// best-scoring work's ranking, with union bounds over every recipient
/// scored (of every work tried). `None` if nothing was read, or if no
/// accusation could come from any of several works.
fn code_verdict(
    codes: &[CodeSuspects],
    fingerprint: &[(u32, f32)],
    limit: f64,
    factor: f64,
) -> Option<CodeVerdict> {
    let codes: Vec<&CodeSuspects> = codes.iter().filter(|c| !c.recipients.is_empty()).collect();
    if fingerprint.is_empty() || codes.is_empty() {
        return None;
    }
    let scored: usize = codes.iter().map(|c| c.recipients.len()).sum();
    let mut best: Option<CodeVerdict> = None;
    for c in &codes {
        let readings = c.code.readings(fingerprint);
        if readings.is_empty() {
            continue;
        }
        let ranking: Vec<Ranked> = c
            .code
            .rank(&readings, c.recipients, scored, RANKING_SHOWN)
            .into_iter()
            .map(|r| Ranked {
                recipient: r.recipient as i64,
                score: r.score,
                bound: (r.bound * factor).min(1.0),
            })
            .collect();
        let strongest = ranking.first().map_or(1.0, |r| r.bound);
        if best
            .as_ref()
            .is_none_or(|b| strongest < b.ranking.first().map_or(1.0, |r| r.bound))
        {
            best = Some(CodeVerdict {
                work: c.work,
                positions_read: readings.len(),
                recipients_scored: scored,
                ranking,
            });
        }
    }
    // Only a work some accusation could come from is worth showing.
    let single = codes.len() == 1;
    best.filter(|b| single || b.ranking.first().is_some_and(|r| r.bound <= limit))
}

/// The verdict on a leaked text's quoted fragments, read under one
/// transcript's code: everyone whose bound is within ε, over the whole and
/// over each fragment alone, with `transcripts_tried` transcripts paid for
/// in the union bound.
pub fn accuse_text(
    code: &TardosCode,
    fragments: &[Vec<(u32, f32)>],
    recipients: &[u32],
    transcripts_tried: usize,
    epsilon: Epsilon,
) -> earmark_codes::PartsVerdict {
    code.accuse_parts(fragments, recipients, transcripts_tried, epsilon.get())
}

/// The recipients a quote too short to accuse is consistent with: a lead
/// for an investigator, never an accusation. An innocent agrees with `k`
/// positions read by chance with probability 2⁻ᵏ (the transcript code is
/// uniform), so with many recipients and few positions the list holds
/// innocents; [`Shortlist::expected_innocents`] says how many.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shortlist {
    /// Codeword positions read whose readings all agree.
    pub clean_positions: usize,
    /// Positions whose readings disagree among themselves (two copies mixed,
    /// or a misreading): left out, since no single copy explains them.
    pub conflicting_positions: usize,
    /// Disagreements with the clean positions a recipient may have and
    /// still be listed.
    pub mismatches_allowed: usize,
    /// Recipients whose codeword agrees with the clean positions (up to
    /// the allowed disagreements), fewest disagreements first, then by id.
    pub consistent_with: Vec<Consistent>,
    /// Recipients compared.
    pub recipients_compared: usize,
    /// Innocents expected in the list by chance alone: each recipient
    /// compared times the probability that a codeword drawn independently
    /// of the quote would be listed (N·2⁻ᵏ with no disagreement allowed).
    pub expected_innocents: f64,
}

/// One recipient on a [`Shortlist`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Consistent {
    /// Their id.
    pub recipient: u32,
    /// Clean positions where their codeword differs from the quote.
    pub mismatches: usize,
}

/// The [`Shortlist`] of `recipients` for the readings of a quote's
/// `fragments` ((position, +1 for a 1 bit, −1 for a 0 bit), as
/// [`accuse_text`] takes them).
pub fn shortlist(
    code: &TardosCode,
    fragments: &[Vec<(u32, f32)>],
    recipients: &[u32],
    mismatches_allowed: usize,
) -> Shortlist {
    let mut seen: std::collections::BTreeMap<u32, (bool, bool)> = Default::default();
    for &(position, reading) in fragments.iter().flatten() {
        let entry = seen.entry(position).or_default();
        if reading > 0.0 {
            entry.1 = true;
        } else {
            entry.0 = true;
        }
    }
    let clean: Vec<(usize, bool)> = seen
        .iter()
        .filter(|(_, &(zero, one))| zero != one)
        .map(|(&p, &(_, one))| (p as usize, one))
        .filter(|&(p, _)| p < code.len())
        .collect();
    let conflicting = seen.values().filter(|&&(zero, one)| zero && one).count();
    let mut consistent_with: Vec<Consistent> = recipients
        .iter()
        .filter_map(|&recipient| {
            let codeword = code.codeword(recipient);
            let mismatches = clean.iter().filter(|&&(p, bit)| codeword[p] != bit).count();
            (mismatches <= mismatches_allowed).then_some(Consistent {
                recipient,
                mismatches,
            })
        })
        .collect();
    consistent_with.sort_by_key(|c| (c.mismatches, c.recipient));
    // The chance that an independent codeword has at most the allowed
    // disagreements: the mismatch count's distribution, position by
    // position (a Poisson binomial; binomial(k, ½) for the uniform code).
    let mut at_most = vec![0.0f64; mismatches_allowed + 1];
    at_most[0] = 1.0;
    for &(p, bit) in &clean {
        let differs = if bit {
            1.0 - code.bias(p)
        } else {
            code.bias(p)
        };
        for m in (0..=mismatches_allowed).rev() {
            let from_below = if m > 0 { at_most[m - 1] * differs } else { 0.0 };
            at_most[m] = at_most[m] * (1.0 - differs) + from_below;
        }
    }
    let listed = at_most.iter().sum::<f64>().min(1.0);
    Shortlist {
        clean_positions: clean.len(),
        conflicting_positions: conflicting,
        mismatches_allowed,
        consistent_with,
        recipients_compared: recipients.len(),
        expected_innocents: recipients.len() as f64 * listed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_takes_only_open_unit_interval_values() {
        for bad in [f64::NAN, 0.0, 1.0, 2.0, -1.0, f64::INFINITY] {
            assert!(Epsilon::new(bad).is_err(), "{bad}");
        }
        for bad in ["NaN", "0", "1", "2", "-1", "abc", ""] {
            assert!(bad.parse::<Epsilon>().is_err(), "{bad}");
        }
        assert_eq!("1e-6".parse::<Epsilon>().unwrap().get(), 1e-6);
    }

    #[test]
    fn nothing_read_accuses_nobody() {
        let verdict = accuse(&Case {
            epsilon: Epsilon::DEFAULT,
            method: Method::Blind,
            forced_work: None,
            decoded: Vec::new(),
            candidates_checked: 0,
            informed: None,
            fingerprint: &[],
            fingerprint_segments: &[],
            codes: Vec::new(),
        });
        assert!(verdict.accused.is_empty());
        assert_eq!(verdict.work, None);
    }

    #[test]
    fn a_shortlist_holds_whoever_agrees_and_says_how_many_would_by_chance() {
        let key = SecretKey::from_bytes([7; 32]);
        let code = TardosCode::uniform(&key, 3, 200);
        let recipients: Vec<u32> = (1..=64).collect();
        let leaker = code.codeword(17);
        // Eight positions read from the leaker's copy, one of them twice.
        let read = |positions: &[usize]| -> Vec<(u32, f32)> {
            positions
                .iter()
                .map(|&p| (p as u32, if leaker[p] { 1.0 } else { -1.0 }))
                .collect()
        };
        let quote = vec![read(&[3, 10, 11, 40, 41, 90, 150]), read(&[90, 199])];
        let list = shortlist(&code, &quote, &recipients, 0);
        assert_eq!(list.clean_positions, 8);
        assert_eq!(list.conflicting_positions, 0);
        assert!(list.consistent_with.contains(&Consistent {
            recipient: 17,
            mismatches: 0
        }));
        assert!(list
            .consistent_with
            .iter()
            .all(|c| recipients.contains(&c.recipient) && c.mismatches == 0));
        assert!((list.expected_innocents - 64.0 / 256.0).abs() < 1e-12);
        // Every listed codeword really agrees; every other one does not.
        for &r in &recipients {
            let agrees = [3, 10, 11, 40, 41, 90, 150, 199]
                .iter()
                .all(|&p| code.codeword(r)[p] == leaker[p]);
            assert_eq!(
                agrees,
                list.consistent_with.iter().any(|c| c.recipient == r),
                "{r}"
            );
        }
        // One disagreement allowed: N·(1 + k)/2ᵏ expected by chance.
        let loose = shortlist(&code, &quote, &recipients, 1);
        assert!((loose.expected_innocents - 64.0 * 9.0 / 256.0).abs() < 1e-12);
        assert!(loose.consistent_with.len() >= list.consistent_with.len());
        // A position read both ways is set aside.
        let mixed = vec![
            read(&[3, 10]),
            vec![(3, if leaker[3] { -1.0 } else { 1.0 })],
        ];
        let list = shortlist(&code, &mixed, &recipients, 0);
        assert_eq!((list.clean_positions, list.conflicting_positions), (1, 1));
    }
}
