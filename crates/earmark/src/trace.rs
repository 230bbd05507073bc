//! Tracing a leaked recording: which work it is, who its copy was made
//! for, with a false-accusation bound on each name, and what was cut or
//! inserted.

use crate::Wait;
use std::path::PathBuf;

use earmark_align::{Edit, Match, Registration, Stretch};
use earmark_codes::{IdentifierCipher, TardosCode};
use earmark_engine::layout::{BLOCK_S, FINGERPRINT_POSITIONS};
use earmark_engine::{FingerprintReading, Found, Segment};
use earmark_keys::SecretKey;
use earmark_ledger::Work;
use serde::Serialize;

use crate::accuse::{
    self, Case, CodeSuspects, Decoded, Epsilon, Evidence, InformedIdentifier, Method,
};
use crate::home::file_hash;
use crate::mark::{require_regular_file, ENGINE_KEY_LABEL};
use crate::{Error, Home, Progress, Result};

/// What `trace` is asked.
#[derive(Clone, Debug)]
pub struct TraceRequest {
    /// The leaked audio.
    pub leak: PathBuf,
    /// Only consider this work (ledger id).
    pub work: Option<i64>,
    /// The false-accusation budget.
    pub epsilon: Epsilon,
}

/// One accused recipient.
#[derive(Clone, Debug, Serialize)]
pub struct Accusation {
    /// Their name.
    pub name: String,
    /// Their ledger id.
    pub recipient_id: i64,
    /// What named them.
    pub evidence: Vec<Evidence>,
    /// The identifier's pilot statistic or correlation, or the code's score.
    pub score: f64,
    /// Upper bound on the probability that this accusation is wrong.
    pub false_accusation_bound: f64,
    /// The identifier's p-value under the no-mark hypothesis.
    pub mark_p_value: Option<f64>,
    /// Stretches of the leak, seconds, carrying their mark.
    pub segments: Vec<Segment>,
    /// The delivery links through which they fetched the work, with every
    /// download (when, from which address, by what); empty, and left out
    /// of the JSON, when their copy was not delivered by link.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<LinkDelivery>,
}

/// A delivery link of an accused recipient's copy, and its downloads.
#[derive(Clone, Debug, Serialize)]
pub struct LinkDelivery {
    /// The link (its secret is never kept).
    pub link: earmark_ledger::Link,
    /// Every download through it, oldest first.
    pub downloads: Vec<earmark_ledger::Download>,
}

/// A recipient's place in the code's ranking.
#[derive(Clone, Debug, Serialize)]
pub struct RankedRecipient {
    /// Their name.
    pub name: String,
    /// Their ledger id.
    pub recipient_id: i64,
    /// Normalised code score.
    pub score: f64,
    /// Bound on an innocent scoring this high.
    pub false_accusation_bound: f64,
}

/// The work a trace concerns.
#[derive(Clone, Debug, Serialize)]
pub struct WorkRef {
    /// Ledger id.
    pub id: i64,
    /// Title.
    pub title: Option<String>,
    /// SHA-256 of its master, hex.
    pub content_hash: String,
}

/// A point of the channel's response.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ResponsePoint {
    /// Frequency, Hz.
    pub hz: f32,
    /// Gain of the leak against the master there, dB.
    pub db: f32,
}

/// How the leak sits against its master.
#[derive(Clone, Debug, Serialize)]
pub struct RegistrationReport {
    /// Leak seconds per master second.
    pub time_scale: f64,
    /// Leak Hz per master Hz.
    pub freq_scale: f32,
    /// Pitch of the leak against the master, cents.
    pub pitch_cents: f64,
    /// Correlation of the registered envelopes.
    pub envelope_correlation: f32,
    /// Level of the leak against the master, dB.
    pub gain_db: f32,
    /// The channel's response.
    pub channel_response_db: Vec<ResponsePoint>,
    /// Seconds of the leak matched to the master.
    pub matched_s: f64,
    /// Pilot statistic of the informed reading.
    pub pilot_z: Option<f32>,
}

/// The verdict on a leaked recording.
#[derive(Clone, Debug, Serialize)]
pub struct TraceReport {
    /// Whether anyone is accused.
    pub found: bool,
    /// How the leak was read.
    pub method: Method,
    /// The landmark match that named the work.
    pub identification: Option<Match>,
    /// The registration against the master (informed only).
    pub registration: Option<RegistrationReport>,
    /// The tamper map: leak stretches and the master stretches they play.
    pub alignment: Vec<Stretch>,
    /// Leak audio that is not in the master.
    pub inserted: Vec<Edit>,
    /// Master audio missing from the leak.
    pub removed: Vec<Edit>,
    /// The work the accusations concern.
    pub work: Option<WorkRef>,
    /// The accused.
    pub accused: Vec<Accusation>,
    /// Evidence too weak for this trace's ε that would name its recipient
    /// at the default ε (1e-6): each one's bound is the smallest ε that
    /// names them. Nobody here is accused.
    pub withheld: Vec<Accusation>,
    /// The budget the verdict was held to.
    pub epsilon: Epsilon,
    /// Code positions read.
    pub positions_read: usize,
    /// Blocks whose identifier was read, for the identifier's accusations.
    pub identifier_blocks_read: u64,
    /// Recipients scored by the code.
    pub recipients_scored: usize,
    /// The code's best scores.
    pub ranking: Vec<RankedRecipient>,
    /// Stretches of the leak carrying an accused's mark.
    pub segments: Vec<Segment>,
    /// Stretches whose fingerprint blocks were read.
    pub fingerprint_segments: Vec<Segment>,
    /// What was read but set aside, and why.
    pub notes: Vec<String>,
    /// Duration of the leak, seconds.
    pub duration_s: f64,
    /// The full registration, for drawing the tamper map.
    #[serde(skip)]
    pub tamper_map: Option<Registration>,
}

/// What a leak yields, by either method.
struct Readings {
    method: Method,
    found: Vec<Found>,
    candidates_checked: usize,
    fingerprint: FingerprintReading,
    duration_s: f64,
    identified_work: Option<Work>,
    identification: Option<Match>,
    registration: Option<Registration>,
    informed_pilot_z: Option<f32>,
    informed_soft: Vec<(Vec<Segment>, Vec<f32>)>,
    informed_whole: usize,
    /// The leak's analysis signal, when short enough to register.
    leak: Option<Vec<f32>>,
    /// Works the leak was registered against.
    registrations: Vec<Registered>,
}

/// Adds each of `new` to `notes` unless already there (the leak's file is
/// read more than once).
fn note_once(notes: &mut Vec<String>, new: Vec<String>) {
    for note in new {
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
}

/// A work the leak was registered against: `Ok` when it registered, else
/// why not, and whether that says the leak is not the work at all.
type Registered = (i64, std::result::Result<f64, String>, bool);

/// How far the time scale at which an identifier was read may stray from
/// the one its registration against the master found, relative. The blind
/// search steps by 1 % and registration is finer; a leak whose identifier
/// and recording disagree by more is not that work's copy (say, a payload
/// embedded by the key's holder into another recording, which registers
/// loosely at a scale nobody applied).
const SCALE_AGREEMENT: f64 = 0.04;

/// Why an identifier read at time scale `read_at` (leak over original
/// duration) cannot be the copy that registers at `master_per_leak` (master
/// seconds per leak second), if they disagree by more than
/// [`SCALE_AGREEMENT`].
fn scale_disagreement(master_per_leak: f64, read_at: f64) -> Option<String> {
    ((master_per_leak * read_at - 1.0).abs() > SCALE_AGREEMENT).then(|| {
        format!(
            "it registers only at time scale {master_per_leak:.3}, while the identifier was read at {:.3}",
            1.0 / read_at
        )
    })
}

impl Home {
    /// Names the recipients a leaked copy came from.
    ///
    /// The work is the one given, or the one the landmark index names. With
    /// its master in the store the leak is registered against it and read
    /// through it (informed); otherwise, or when informed names no one, it
    /// is read blind. The verdict is [`accuse::accuse`]'s.
    ///
    /// The work runs on a blocking thread of the caller's tokio runtime.
    pub async fn trace(
        &self,
        request: &TraceRequest,
        progress: std::sync::Arc<dyn Progress>,
    ) -> Result<TraceReport> {
        let (home, request) = (self.clone(), request.clone());
        crate::blocking(move || home.trace_blocking(&request, &*progress)).await
    }

    pub(crate) fn trace_blocking(
        &self,
        request: &TraceRequest,
        progress: &dyn Progress,
    ) -> Result<TraceReport> {
        require_regular_file(&request.leak)?;
        // Nobody is accused on records that may have been altered.
        self.ledger().require_current().wait()?;
        let forced_work = match request.work {
            Some(id) => Some(self.checked_work(id).wait()?),
            None => None,
        };
        if let Some(w) = forced_work
            .as_ref()
            .filter(|w| w.kind != earmark_ledger::AUDIO)
        {
            return Err(Error::OtherKindOfWork {
                work: w.id,
                transcript: true,
            });
        }
        let engine_key = self.inner.master.derive(ENGINE_KEY_LABEL);
        let mut notes = Vec::new();
        tracing::info!(leak = %request.leak.display(), epsilon = request.epsilon.get(), "tracing");
        progress.start("tracing", 2);
        let mut readings = self.gather(request, forced_work.as_ref(), &engine_key, &mut notes)?;
        progress.advance(1);
        let verdict = loop {
            let verdict = self.judge(request, forced_work.as_ref(), &engine_key, &readings)?;
            if !verdict.accused.is_empty() || readings.method != Method::Informed {
                break verdict;
            }
            // The mark may survive a channel better blind than through the
            // registration (a room's reverberation smears the master's tiles).
            notes.push("the informed reading named no one; the leak was also traced blind".into());
            let blind = crate::extract_file(&request.leak, &engine_key, &crate::NoProgress)?;
            note_once(&mut notes, blind.notes);
            readings.method = Method::InformedThenBlind;
            readings.found = blind.found;
            readings.candidates_checked = blind.candidates_checked;
            readings.fingerprint = blind.fingerprint;
        };
        progress.finish();
        notes.extend(verdict.notes.iter().cloned());
        let accused = self.named(&verdict.accused, &mut notes)?;
        let withheld = self.named(&verdict.withheld, &mut notes)?;
        let mut ranking = Vec::new();
        for r in verdict.code.iter().flat_map(|c| &c.ranking) {
            if let Some(rec) = self.recipient(r.recipient).wait()? {
                ranking.push(RankedRecipient {
                    name: rec.name,
                    recipient_id: rec.id,
                    score: r.score,
                    false_accusation_bound: r.bound,
                });
            }
        }
        let work_found = match verdict.work {
            Some(id) => self.ledger().checked_work(id).wait()?,
            None => None,
        };
        let mut accused = accused;
        if let Some(work) = &work_found {
            for a in &mut accused {
                a.deliveries = self.deliveries_to(work.id, a.recipient_id).wait()?;
            }
        }
        let positions_read = verdict.code.as_ref().map_or(0, |v| v.positions_read);
        let identifier_blocks_read: u64 = accused
            .iter()
            .filter(|a| a.evidence.contains(&Evidence::Identifier))
            .flat_map(|a| &a.segments)
            .map(|s| ((s.end_s - s.start_s) / BLOCK_S).floor() as u64)
            .sum();
        let mut segments: Vec<Segment> = accused.iter().flat_map(|a| a.segments.clone()).collect();
        earmark_engine::detect::join_segments(&mut segments);
        self.audit(
            "trace",
            serde_json::json!({
                "leak_hash": file_hash(&request.leak)?,
                "work": work_found.as_ref().map(|w| w.id),
                "accused": accused.iter().map(|a| a.recipient_id).collect::<Vec<_>>(),
                "positions_read": positions_read,
            }),
        )
        .wait()?;
        tracing::info!(
            method = ?readings.method,
            work = work_found.as_ref().map(|w| w.id),
            accused = accused.len(),
            positions_read,
            "verdict"
        );
        for note in &notes {
            tracing::debug!(note = %note, "trace note");
        }
        let registration = readings.registration.as_ref().map(|r| RegistrationReport {
            time_scale: r.time_scale,
            freq_scale: r.freq_scale,
            pitch_cents: r.pitch_cents(),
            envelope_correlation: r.correlation,
            gain_db: r.gain_db,
            channel_response_db: r
                .channel_db
                .iter()
                .map(|&(hz, db)| ResponsePoint { hz, db })
                .collect(),
            matched_s: r.matched_s(),
            pilot_z: readings.informed_pilot_z,
        });
        Ok(TraceReport {
            found: !accused.is_empty(),
            withheld,
            method: readings.method,
            identification: readings.identification,
            registration,
            alignment: readings
                .registration
                .as_ref()
                .map(|r| r.stretches.clone())
                .unwrap_or_default(),
            inserted: readings
                .registration
                .as_ref()
                .map(|r| r.inserted.clone())
                .unwrap_or_default(),
            removed: readings
                .registration
                .as_ref()
                .map(|r| r.removed.clone())
                .unwrap_or_default(),
            work: work_found.map(|w| WorkRef {
                id: w.id,
                title: w.title,
                content_hash: w.content_hash,
            }),
            accused,
            epsilon: request.epsilon,
            positions_read,
            identifier_blocks_read,
            recipients_scored: verdict.code.as_ref().map_or(0, |v| v.recipients_scored),
            ranking,
            segments,
            fingerprint_segments: readings.fingerprint.segments.clone(),
            notes,
            duration_s: readings.duration_s,
            tamper_map: readings.registration,
        })
    }

    /// Identifies the work (given, or by landmarks), reads the leak against
    /// its stored master if there is one, and falls back to blind detection
    /// otherwise, saying why in `notes`.
    fn gather(
        &self,
        request: &TraceRequest,
        forced_work: Option<&Work>,
        engine_key: &SecretKey,
        notes: &mut Vec<String>,
    ) -> Result<Readings> {
        let leak = crate::informed::leak_signal(&request.leak, notes)?;
        let mut registrations = Vec::new();
        let mut identified_work = None;
        let mut identification = None;
        if let Some(leak) = &leak {
            let work = match forced_work {
                Some(w) => Some(w.clone()),
                None => match self.identify_noting(leak, notes)? {
                    Some(found) => {
                        identification = Some(found);
                        let work = self.ledger().checked_work(found.work as i64).wait()?;
                        if work.is_none() {
                            notes.push(format!(
                                "the landmark index names work {}, which the ledger does not hold",
                                found.work
                            ));
                        }
                        work
                    }
                    None => {
                        notes.push("no registered work's landmarks match the leak".into());
                        None
                    }
                },
            };
            if let Some(work) = work {
                match crate::informed::read(self, &work, leak, engine_key)? {
                    Ok(informed) => {
                        return Ok(Readings {
                            registrations: vec![match crate::informed::places(
                                &informed.registration,
                            ) {
                                Ok(()) => (work.id, Ok(informed.registration.time_scale), false),
                                Err(e) => (work.id, Err(e.to_string()), e.is_mismatch()),
                            }],
                            leak: Some(leak.clone()),
                            method: Method::Informed,
                            // Each recipient's identifier is correlated with
                            // the readings instead of decoded (see `accuse`).
                            found: Vec::new(),
                            candidates_checked: 0,
                            informed_soft: informed.reading.soft_bits.clone(),
                            informed_whole: informed.reading.whole_entries,
                            fingerprint: informed.reading.fingerprint.clone(),
                            duration_s: informed.registration.leak_s,
                            identified_work: Some(work),
                            identification,
                            informed_pilot_z: Some(informed.reading.pilot_z),
                            registration: Some(informed.registration),
                        });
                    }
                    Err(reason) => {
                        notes.push(format!(
                            "informed tracing not possible ({reason}); traced blind"
                        ));
                        registrations.push((
                            work.id,
                            Err(reason.to_string()),
                            reason.is_mismatch(),
                        ));
                    }
                }
                identified_work = Some(work);
            }
        } else {
            notes.push(format!(
                "the leak is longer than {:.0} s: traced blind",
                crate::informed::MAX_INFORMED_S
            ));
        }
        let detection = crate::extract_file(&request.leak, engine_key, &crate::NoProgress)?;
        note_once(notes, detection.notes);
        Ok(Readings {
            method: Method::Blind,
            found: detection.found,
            candidates_checked: detection.candidates_checked,
            fingerprint: detection.fingerprint,
            duration_s: detection.duration_s,
            identified_work,
            identification,
            registration: None,
            informed_pilot_z: None,
            informed_soft: Vec::new(),
            informed_whole: 0,
            leak,
            registrations,
        })
    }

    /// The work the landmark index names, noting when the index was
    /// damaged and had to be rebuilt from the masters store.
    /// Why the leak is not work `work`, when its master says so (nothing in
    /// it resembles the leak); `None` when the leak registers, or when the
    /// question cannot be asked (no master kept, a leak too short or too
    /// long). Each work is registered once per trace.
    ///
    /// A leak that registers must also agree with the identifier on speed:
    /// the identifier was read at `found`'s time scale (leak over original
    /// duration), the registration found the master's seconds per leak
    /// second, and their product must be 1 within [`SCALE_AGREEMENT`].
    fn mismatch(
        &self,
        work: i64,
        found: &Found,
        readings: &Readings,
        registered: &mut Vec<Registered>,
    ) -> Result<Option<String>> {
        let read_at = f64::from(found.scale.time_scale);
        let decisive = |entry: &Registered| match entry {
            (_, Err(reason), true) => Some(reason.clone()),
            (_, Ok(master_per_leak), _) => scale_disagreement(*master_per_leak, read_at),
            _ => None,
        };
        if let Some(entry) = registered.iter().find(|(w, ..)| *w == work) {
            return Ok(decisive(entry));
        }
        let (Some(leak), Some(w)) = (&readings.leak, self.ledger().checked_work(work).wait()?)
        else {
            return Ok(None);
        };
        let entry = match crate::informed::registers(self, &w, leak)? {
            Ok(time_scale) => (work, Ok(time_scale), false),
            Err(e) => (work, Err(e.to_string()), e.is_mismatch()),
        };
        let answer = decisive(&entry);
        registered.push(entry);
        Ok(answer)
    }

    /// The recipients `charges` name, as reported. A hand-edited or
    /// damaged ledger may name someone it no longer holds: nobody is named
    /// on such a row, and a note says so.
    fn named(
        &self,
        charges: &[accuse::Charge],
        notes: &mut Vec<String>,
    ) -> Result<Vec<Accusation>> {
        let mut named = Vec::new();
        for c in charges {
            let Some(r) = self.recipient(c.recipient).wait()? else {
                let note = format!(
                    "the ledger records a copy for recipient {}, who is not in it; nobody is accused on that record",
                    c.recipient
                );
                if !notes.contains(&note) {
                    notes.push(note);
                }
                continue;
            };
            named.push(Accusation {
                name: r.name,
                recipient_id: r.id,
                evidence: c.evidence.clone(),
                score: c.score,
                false_accusation_bound: c.bound,
                mark_p_value: c.mark_p_value,
                segments: c.segments.clone(),
                deliveries: Vec::new(),
            });
        }
        Ok(named)
    }

    /// The links that delivered `recipient`'s copy of `work`, with their
    /// downloads.
    async fn deliveries_to(&self, work: i64, recipient: i64) -> Result<Vec<LinkDelivery>> {
        let mut deliveries = Vec::new();
        for link in self.ledger().links_of(work, recipient).await? {
            let downloads = self.ledger().downloads(Some(link.id)).await?;
            deliveries.push(LinkDelivery { link, downloads });
        }
        Ok(deliveries)
    }

    fn identify_noting(&self, leak: &[f32], notes: &mut Vec<String>) -> Result<Option<Match>> {
        let (found, rebuilt) = crate::informed::identify(self, leak)?;
        if rebuilt {
            notes.push(
                "the landmark index was damaged; it was rebuilt from the masters store (works whose master was forgotten are traced blind)"
                    .into(),
            );
        }
        Ok(found)
    }

    /// Gathers what the ledger says about the readings (whose identifiers
    /// open, who holds which copy, which codes to score) and asks
    /// [`accuse::accuse`] for the verdict.
    fn judge(
        &self,
        request: &TraceRequest,
        forced_work: Option<&Work>,
        engine_key: &SecretKey,
        readings: &Readings,
    ) -> Result<accuse::Verdict> {
        let ledger = self.ledger();
        let cipher = IdentifierCipher::for_home(&self.inner.master, &self.inner.id);
        // Copies made before identifiers were bound to the home carry
        // unbound ones; such a payload counts only if this ledger recorded
        // exactly it (checked below for every payload).
        let unbound = IdentifierCipher::unbound(&self.inner.master);
        let mut registered = readings.registrations.clone();
        let mut notes = Vec::new();
        let mut decoded = Vec::new();
        for found in &readings.found {
            let Some(id) = cipher
                .open(found.payload)
                .or_else(|| unbound.open(found.payload))
            else {
                notes.push(format!(
                    "payload {:016x} is not one of this home's identifiers",
                    found.payload
                ));
                continue;
            };
            if request.work.is_some_and(|w| w != id.work as i64) {
                notes.push(format!("a copy of work {} is also present", id.work));
                continue;
            }
            // A payload opens only in its own home, but the recording must
            // agree too: the leak has to be that work when its master can say.
            if let Some(reason) = self.mismatch(id.work as i64, found, readings, &mut registered)? {
                notes.push(format!(
                    "an identifier names work {}, but the leak does not match its master ({reason}); nobody is accused on it",
                    id.work
                ));
                continue;
            }
            let work = ledger.checked_work(id.work as i64).wait()?;
            let recipient = ledger.checked_recipient(id.recipient as i64).wait()?;
            let (Some(work), Some(recipient)) = (work, recipient) else {
                notes
                    .push("an identifier names a work or recipient missing from the ledger".into());
                continue;
            };
            let payload = format!("{:016x}", found.payload);
            if !ledger
                .checked_copies(work.id, Some(recipient.id))
                .wait()?
                .iter()
                .any(|c| c.payload == payload)
            {
                notes.push(format!(
                    "{} never received a recorded copy of work {} carrying payload {payload}",
                    earmark_ledger::names::printable(&recipient.name),
                    work.id
                ));
                continue;
            }
            decoded.push(Decoded {
                work: work.id,
                recipient: recipient.id,
                found,
            });
        }
        let informed_work = readings.identified_work.as_ref().or(forced_work);
        let informed_suspects: Vec<(i64, u64)> = match informed_work {
            Some(work) if !readings.informed_soft.is_empty() => ledger
                .checked_copies(work.id, None)
                .wait()?
                .iter()
                .filter_map(|c| {
                    u64::from_str_radix(&c.payload, 16)
                        .ok()
                        .map(|p| (c.recipient_id, p))
                })
                .collect(),
            _ => Vec::new(),
        };
        // The code: against the work decoded, identified or given, else
        // against every work with copies, paying for each in the union bound.
        let first_decoded = decoded.first().map(|d| d.work);
        let code_works: Vec<i64> = match (
            forced_work.map(|w| w.id).or(first_decoded),
            &readings.identified_work,
        ) {
            (Some(w), _) => vec![w],
            (None, Some(w)) => vec![w.id],
            (None, None) if readings.fingerprint.positions.is_empty() => Vec::new(),
            (None, None) => ledger
                .checked_works()
                .wait()?
                .into_iter()
                .filter(|w| w.kind == earmark_ledger::AUDIO)
                .map(|w| w.id)
                .collect(),
        };
        let mut codes = Vec::new();
        for work in code_works {
            let mut recipients: Vec<u32> = ledger
                .checked_copies(work, None)
                .wait()?
                .into_iter()
                .map(|c| c.recipient_id as u32)
                .collect();
            recipients.sort_unstable();
            recipients.dedup();
            codes.push((
                work,
                TardosCode::new(&self.inner.master, work as u32, FINGERPRINT_POSITIONS),
                recipients,
            ));
        }
        let mut verdict = accuse::accuse(&Case {
            epsilon: request.epsilon,
            method: readings.method,
            forced_work: forced_work.map(|w| w.id),
            decoded,
            candidates_checked: readings.candidates_checked,
            informed: informed_work.map(|w| InformedIdentifier {
                work: w.id,
                soft: &readings.informed_soft,
                whole: readings.informed_whole,
                engine_key,
                suspects: &informed_suspects,
            }),
            fingerprint: &readings.fingerprint.positions,
            fingerprint_segments: &readings.fingerprint.segments,
            codes: codes
                .iter()
                .map(|(work, code, recipients)| CodeSuspects {
                    work: *work,
                    code,
                    recipients,
                })
                .collect(),
        });
        notes.append(&mut verdict.notes);
        verdict.notes = notes;
        Ok(verdict)
    }
}
