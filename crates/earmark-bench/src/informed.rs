//! Informed tracing in the benchmark: each attacked excerpt is registered
//! against the unmarked original and read through it, as `earmark trace`
//! does with a stored master, and judged by `earmark trace`'s own rule
//! ([`judge`]). A trial names the recipient when their identifier
//! (correlated against all [`RECIPIENTS`] recipients' payloads) or the
//! fingerprint code accuses them; it accuses wrongly if either names anyone
//! else.

use earmark::accuse::{
    accuse, Case, CodeSuspects, Epsilon, Evidence, InformedIdentifier, Method, Verdict,
};
use earmark::{read_through_master, Informed};
use earmark_align::register::EDIT_MIN_S;
use earmark_audio_io::Audio;
use earmark_codes::TardosCode;
use earmark_engine::layout::FINGERPRINT_POSITIONS;
use earmark_engine::{InformedReading, KnownPayloads};
use earmark_keys::{Label, SecretKey};
use serde::Serialize;

use crate::attack::{EditKind, TrueEdit};

/// Recipients each benchmark work is scored against.
pub const RECIPIENTS: u32 = 1_000;
/// Largest accepted probability of accusing an innocent, as `earmark
/// trace` takes it by default: half to the identifier, half to the code.
pub const EPSILON: f64 = 1e-6;
/// The ledger id a benchmark file's work is given in the verdict.
const BENCH_WORK: i64 = 1;

fn epsilon() -> Epsilon {
    Epsilon::new(EPSILON).expect("EPSILON is a probability")
}
/// How close a reported edit must fall to the true one (each end, seconds):
/// edits of 1 s or more are to be located within ±0.25 s.
pub const EDIT_TOLERANCE_S: f64 = 0.25;
/// Label of each file's fingerprint-code key (context: the file name).
pub const CODE_LABEL: Label = Label("earmark/v1/bench/code");

/// Mono downmix at the analysis rate (8 kHz).
pub fn analysis_signal(audio: &Audio) -> Vec<f32> {
    earmark::analysis_signal(audio)
}

/// One informed trial.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InformedCell {
    /// The excerpt registered against the original.
    pub registered: bool,
    /// Seconds of the excerpt matched to the original.
    pub matched_s: f64,
    /// The recipient was named (by either kind of evidence).
    pub named: bool,
    /// Named by the identifier.
    pub by_identifier: bool,
    /// Named by the code.
    pub by_code: bool,
    /// Someone else was named.
    pub wrong: bool,
    /// The recipient's code score (an innocent's: mean 0, variance 1).
    pub code_score: f64,
    /// Pilot statistic of the informed reading.
    pub pilot_z: f32,
    /// The recipient's identifier statistic: their coded payload correlated
    /// with the soft bits, over the soft bits' norm (an innocent's: about
    /// standard normal), the best over the stretches read. The margin the
    /// identifier test has, where `named` only says whether it sufficed.
    pub identifier_z: f64,
    /// The informed reading's correction of the registration, seconds, and
    /// the known cells' gain in statistic from it.
    pub shift: (f64, f64),
    /// Code positions read.
    pub positions: usize,
    /// Edits the attack made that a tamper map can be held to (at least
    /// [`EDIT_MIN_S`] from either end of the excerpt).
    pub edits: usize,
    /// Of those, edits the tamper map reported within [`EDIT_TOLERANCE_S`].
    pub edits_located: usize,
    /// Edits the tamper map reported that match no edit the attack made.
    pub spurious_edits: usize,
    /// The edits the attack made, leak seconds.
    pub true_edits: Vec<TrueEdit>,
    /// The edits the tamper map reported, leak seconds.
    pub reported_edits: Vec<TrueEdit>,
    /// The matched stretches: `[leak start, leak end, master start, master
    /// end]`, seconds.
    pub stretches: Vec<[f64; 4]>,
}

/// Reads `excerpt` against `original_8k` (the original's analysis signal)
/// under `key`; `payload` and `recipient` (of `code`) are the truth.
pub fn trial(
    original_8k: &[f32],
    excerpt: &Audio,
    key: &SecretKey,
    payload: u64,
    code: &TardosCode,
    recipient: u32,
    true_edits: &[TrueEdit],
) -> InformedCell {
    let leak = analysis_signal(excerpt);
    let gradable =
        |e: &&TrueEdit| e.start_s >= EDIT_MIN_S && e.end_s <= excerpt.duration_s() - EDIT_MIN_S;
    let Ok(Informed {
        reading,
        registration,
    }) = read_through_master(original_8k, &leak, key)
    else {
        return InformedCell {
            edits: true_edits.iter().filter(gradable).count(),
            true_edits: true_edits.to_vec(),
            ..InformedCell::default()
        };
    };
    let reported_edits: Vec<TrueEdit> = registration
        .inserted
        .iter()
        .map(|e| (e, EditKind::Inserted))
        .chain(registration.removed.iter().map(|e| (e, EditKind::Removed)))
        .map(|(e, kind)| TrueEdit {
            kind,
            start_s: e.leak_start_s,
            end_s: e.leak_end_s,
        })
        .collect();
    let (edits, edits_located, spurious_edits) = score_edits(&reported_edits, true_edits, gradable);
    // The identifier's suspects are the recipients' payloads (the one
    // embedded belongs to `recipient`); the code's are all recipients.
    let payloads = recipient_payloads(key, payload);
    let suspects: Vec<(i64, u64)> = payloads
        .iter()
        .enumerate()
        .map(|(i, &p)| (((recipient as usize + i) % RECIPIENTS as usize) as i64, p))
        .collect();
    let everyone: Vec<u32> = (0..RECIPIENTS).collect();
    let verdict = judge(&reading, key, &suspects, code, &everyone);
    let named_by = |evidence: Evidence| {
        verdict
            .accused
            .iter()
            .any(|a| a.recipient == recipient as i64 && a.evidence.contains(&evidence))
    };
    let by_identifier = named_by(Evidence::Identifier);
    let by_code = named_by(Evidence::Code);
    let wrong = verdict
        .accused
        .iter()
        .any(|a| a.recipient != recipient as i64);
    // The margin the identifier test had: the recipient's own correlation
    // over the soft bits' norm, the best over the stretches read.
    let own = KnownPayloads::new(key, &[payload]);
    let identifier_z = reading
        .soft_bits
        .iter()
        .filter_map(|(_, soft)| {
            let norm = soft.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            (norm > 0.0).then(|| own.scores(soft)[0].score / norm)
        })
        .fold(f64::NEG_INFINITY, f64::max);
    let readings = code.readings(&reading.fingerprint.positions);
    let code_score = if readings.is_empty() {
        0.0
    } else {
        code.scores(&readings, &[recipient])[0]
    };
    InformedCell {
        registered: true,
        matched_s: registration.matched_s(),
        named: by_identifier || by_code,
        by_identifier,
        by_code,
        wrong,
        code_score,
        shift: (reading.shift_s, reading.shift_gain_z),
        identifier_z: if identifier_z.is_finite() {
            identifier_z
        } else {
            0.0
        },
        pilot_z: reading.pilot_z,
        positions: reading.fingerprint.positions.len(),
        edits,
        edits_located,
        spurious_edits,
        true_edits: true_edits.to_vec(),
        reported_edits,
        stretches: registration
            .stretches
            .iter()
            .map(|s| {
                [
                    s.leak_start_s,
                    s.leak_end_s,
                    s.master_start_s,
                    s.master_end_s,
                ]
            })
            .collect(),
    }
}

/// The verdict on an informed reading: `earmark trace`'s own rule
/// ([`earmark::accuse::accuse`]) with the budget `earmark trace` takes by
/// default, `suspects` as `(recipient, payload)` and the code's
/// `recipients`.
pub fn judge(
    reading: &InformedReading,
    key: &SecretKey,
    suspects: &[(i64, u64)],
    code: &TardosCode,
    recipients: &[u32],
) -> Verdict {
    accuse(&Case {
        epsilon: epsilon(),
        method: Method::Informed,
        forced_work: Some(BENCH_WORK),
        decoded: Vec::new(),
        candidates_checked: 0,
        informed: Some(InformedIdentifier {
            work: BENCH_WORK,
            soft: &reading.soft_bits,
            whole: reading.whole_entries,
            engine_key: key,
            suspects,
        }),
        fingerprint: &reading.fingerprint.positions,
        fingerprint_segments: &reading.fingerprint.segments,
        codes: vec![CodeSuspects {
            work: BENCH_WORK,
            code,
            recipients,
        }],
    })
}

/// The tamper map against the truth: (true edits graded, of those located
/// within [`EDIT_TOLERANCE_S`] at each end, reported edits matching no true
/// edit).
fn score_edits(
    reported: &[TrueEdit],
    truth: &[TrueEdit],
    gradable: impl Fn(&&TrueEdit) -> bool,
) -> (usize, usize, usize) {
    let matches = |r: &TrueEdit, t: &TrueEdit| {
        t.kind == r.kind
            && (r.start_s - t.start_s).abs() <= EDIT_TOLERANCE_S
            && (r.end_s - t.end_s).abs() <= EDIT_TOLERANCE_S
    };
    let graded: Vec<&TrueEdit> = truth.iter().filter(gradable).collect();
    let located = graded
        .iter()
        .filter(|t| reported.iter().any(|r| matches(r, t)))
        .count();
    let spurious = reported
        .iter()
        .filter(|r| !truth.iter().any(|t| matches(r, t)))
        .count();
    (graded.len(), located, spurious)
}
/// Label of the other recipients' payloads (a stream under the file's key).
pub const OTHER_PAYLOADS_LABEL: Label = Label("earmark/v1/bench/other-payloads");

/// The payloads of a benchmark work's [`RECIPIENTS`] recipients: the one
/// embedded first, the others drawn from the file key's stream.
pub fn recipient_payloads(key: &SecretKey, payload: u64) -> Vec<u64> {
    let mut stream = key.stream(OTHER_PAYLOADS_LABEL);
    std::iter::once(payload)
        .chain((1..RECIPIENTS).map(|_| rand_core::RngCore::next_u64(&mut stream)))
        .collect()
}

/// The code and recipient a benchmark file is marked for: one of
/// [`RECIPIENTS`], chosen by the file's payload.
pub fn code_for(master: &SecretKey, name: &str, payload: u64) -> (TardosCode, u32) {
    let key = master.derive_with(CODE_LABEL, name.as_bytes());
    (
        TardosCode::new(&key, 0, FINGERPRINT_POSITIONS),
        (payload % RECIPIENTS as u64) as u32,
    )
}
