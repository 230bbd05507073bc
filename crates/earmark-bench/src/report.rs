//! What a benchmark run found, and its Markdown, JSON and PNG forms.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use earmark_audio_io::Audio;
use serde::Serialize;

use crate::attack::Chain;
use crate::metrics;
use crate::perceptual::Perceptual;
use crate::tools::write_float_wav;
use crate::BenchError;

/// Who read a leak, in the room table.
enum Reader {
    /// earmark, from the leak alone.
    Blind,
    /// The external tool, from the leak alone.
    External,
    /// earmark, registered against the original.
    Informed,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The command line that produced it.
    pub command: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// The profile and strength every recording was marked with.
    pub settings: earmark_engine::MarkSettings,
    /// Corpus directory.
    pub corpus: String,
    /// Excerpt length, seconds.
    pub clip_s: f64,
    /// Name of the tool run side by side, if any.
    pub external: Option<String>,
    /// Every readable recording.
    pub files: Vec<FileReport>,
    /// Files that could not be read.
    pub unreadable: Vec<Unreadable>,
    /// One row per attack chain.
    pub attacks: Vec<AttackReport>,
    /// Detections on audio that carries no mark for the key used.
    pub false_alarms: FalseAlarms,
    /// Speed and memory.
    pub speed: Speed,
}

/// A corpus file that could not be read.
#[derive(Clone, Debug, Serialize)]
pub struct Unreadable {
    /// File name.
    pub name: String,
    /// Why.
    pub error: String,
}

/// One recording.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    /// File name.
    pub name: String,
    /// Duration, seconds.
    pub duration_s: f64,
    /// Sample rate, Hz.
    pub rate: u32,
    /// Channel count.
    pub channels: usize,
    /// Payload embedded (hex).
    pub payload: String,
    /// `marked`, or why not.
    pub status: String,
    /// Mean modulation depth of earmark's marked cells, dB.
    pub mean_depth_db: Option<f32>,
    /// Quality of earmark's marked copy.
    pub quality: Option<Quality>,
    /// Quality of the external tool's marked copy.
    pub external_quality: Option<Quality>,
}

/// Quality of a marked copy against its original.
#[derive(Clone, Debug, Serialize)]
pub struct Quality {
    /// SNR, dB.
    pub snr_db: f64,
    /// Segmental SNR over 20 ms frames with sound, dB.
    pub segmental_snr_db: f64,
    /// Log-spectral distance, dB.
    pub lsd_db: f64,
    /// ViSQOL and PESQ, when asked for.
    pub perceptual: Option<Perceptual>,
}

impl Quality {
    /// Measures `marked` against `original` (same rate and length).
    pub fn measure(original: &Audio, marked: &Audio, perceptual: Option<Perceptual>) -> Self {
        let n = original.frames().min(marked.frames());
        let o: Vec<Vec<f32>> = original.channels.iter().map(|c| c[..n].to_vec()).collect();
        let m: Vec<Vec<f32>> = marked.channels.iter().map(|c| c[..n].to_vec()).collect();
        Quality {
            snr_db: metrics::snr_db(&o, &m),
            segmental_snr_db: metrics::segmental_snr_db(&o, &m, original.rate),
            lsd_db: metrics::log_spectral_distance_db(&o, &m, original.rate),
            perceptual,
        }
    }
}

/// One (file, chain) trial.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// File name.
    pub file: String,
    /// Excerpt length extracted from, seconds.
    pub excerpt_s: f64,
    /// The embedded payload came out on top.
    pub recovered: bool,
    /// Some other payload was reported (a false accusation).
    pub wrong: bool,
    /// p-value of the best detection (1 when none).
    pub p_value: f64,
    /// Raw coded-bit error rate under the strongest hypothesis.
    pub raw_ber: f64,
    /// Best pilot statistic.
    pub pilot_z: f32,
    /// Why the trial did not run (the codec refused the file, …).
    pub error: Option<String>,
    /// The external tool on the same excerpt.
    pub external: Option<ExternalCell>,
    /// Informed tracing of the same excerpt, when asked for.
    pub informed: Option<crate::informed::InformedCell>,
}

impl Outcome {
    /// A trial not yet run.
    pub fn new(file: &str) -> Self {
        Outcome {
            file: file.to_string(),
            excerpt_s: 0.0,
            recovered: false,
            wrong: false,
            p_value: 1.0,
            raw_ber: 0.5,
            pilot_z: 0.0,
            error: None,
            external: None,
            informed: None,
        }
    }
}

/// The external tool's result on one excerpt.
#[derive(Clone, Debug, Serialize)]
pub struct ExternalCell {
    /// It read the right payload.
    pub recovered: bool,
    /// It read a different one.
    pub wrong: bool,
    /// Why it did not run.
    pub error: Option<String>,
}

impl ExternalCell {
    /// A trial that could not run.
    pub fn error(message: String) -> Self {
        ExternalCell {
            recovered: false,
            wrong: false,
            error: Some(message),
        }
    }
}

/// One attack chain over the corpus.
#[derive(Clone, Debug, Serialize)]
pub struct AttackReport {
    /// The chain, as written.
    pub attack: String,
    /// Plot family and strength, for single parameterised attacks.
    pub family: Option<(String, f64)>,
    /// For a chain re-recorded through a room: the room's RT60 and the
    /// excerpt's length, seconds.
    pub room: Option<RoomCase>,
    /// Trials that ran.
    pub trials: usize,
    /// Trials where the payload came out.
    pub recovered: usize,
    /// Trials where another payload came out.
    pub wrong: usize,
    /// `recovered / trials`.
    pub recovery_rate: f64,
    /// Mean raw coded-bit error rate.
    pub raw_ber: f64,
    /// Median p-value (1 for trials with no detection).
    pub median_p_value: f64,
    /// External tool: trials, recovered, wrong, rate.
    pub external: Option<ExternalSummary>,
    /// Informed tracing's totals, when it ran.
    pub informed: Option<InformedSummary>,
    /// Every trial.
    pub per_file: Vec<Outcome>,
}

/// Where a re-recording chain falls in the room table.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RoomCase {
    /// The room's reverberation time, seconds.
    pub rt60_s: f32,
    /// The excerpt's length, seconds (the chain's crop, else the bench's clip).
    pub excerpt_s: f32,
}

/// Informed tracing's totals for one attack.
#[derive(Clone, Debug, Serialize)]
pub struct InformedSummary {
    /// Trials that ran.
    pub trials: usize,
    /// Trials that registered against the original.
    pub registered: usize,
    /// Trials naming the recipient.
    pub named: usize,
    /// …by the identifier.
    pub by_identifier: usize,
    /// …by the code.
    pub by_code: usize,
    /// Trials naming anyone else.
    pub wrong: usize,
    /// `named / trials`.
    pub rate: f64,
    /// Median code score of the recipient.
    pub median_code_score: f64,
    /// Edits the attacks made that the tamper map is held to.
    pub edits: usize,
    /// Of those, located within the tolerance.
    pub edits_located: usize,
    /// Reported edits matching nothing the attacks did.
    pub spurious_edits: usize,
    /// Trials with at least one spurious edit.
    pub trials_with_spurious_edits: usize,
}

/// The external tool's totals for one attack.
#[derive(Clone, Debug, Serialize)]
pub struct ExternalSummary {
    /// Trials that ran.
    pub trials: usize,
    /// Right payload read.
    pub recovered: usize,
    /// Another payload read.
    pub wrong: usize,
    /// `recovered / trials`.
    pub recovery_rate: f64,
}

impl AttackReport {
    /// Totals over the trials of `chain`.
    /// `clip_s` is the bench's excerpt length where the chain does not crop.
    pub fn summarise(chain: &Chain, per_file: Vec<Outcome>, external: bool, clip_s: f32) -> Self {
        let ran: Vec<&Outcome> = per_file.iter().filter(|o| o.error.is_none()).collect();
        let trials = ran.len();
        let recovered = ran.iter().filter(|o| o.recovered).count();
        let ber: Vec<f64> = ran.iter().map(|o| o.raw_ber).collect();
        let p: Vec<f64> = ran.iter().map(|o| o.p_value).collect();
        let external = external.then(|| {
            let cells: Vec<&ExternalCell> = per_file
                .iter()
                .filter_map(|o| o.external.as_ref())
                .filter(|c| c.error.is_none())
                .collect();
            let recovered = cells.iter().filter(|c| c.recovered).count();
            ExternalSummary {
                trials: cells.len(),
                recovered,
                wrong: cells.iter().filter(|c| c.wrong).count(),
                recovery_rate: rate(recovered, cells.len()),
            }
        });
        let informed_cells: Vec<&crate::informed::InformedCell> =
            ran.iter().filter_map(|o| o.informed.as_ref()).collect();
        let informed = (!informed_cells.is_empty()).then(|| {
            let named = informed_cells.iter().filter(|c| c.named).count();
            let scores: Vec<f64> = informed_cells.iter().map(|c| c.code_score).collect();
            InformedSummary {
                trials: informed_cells.len(),
                registered: informed_cells.iter().filter(|c| c.registered).count(),
                named,
                by_identifier: informed_cells.iter().filter(|c| c.by_identifier).count(),
                by_code: informed_cells.iter().filter(|c| c.by_code).count(),
                wrong: informed_cells.iter().filter(|c| c.wrong).count(),
                rate: rate(named, informed_cells.len()),
                median_code_score: metrics::median(&scores),
                edits: informed_cells.iter().map(|c| c.edits).sum(),
                edits_located: informed_cells.iter().map(|c| c.edits_located).sum(),
                spurious_edits: informed_cells.iter().map(|c| c.spurious_edits).sum(),
                trials_with_spurious_edits: informed_cells
                    .iter()
                    .filter(|c| c.spurious_edits > 0)
                    .count(),
            }
        });
        let room = chain.0.iter().find_map(|a| match a {
            crate::attack::Attack::Room { rt60_s, .. } => Some(RoomCase {
                rt60_s: *rt60_s,
                excerpt_s: chain.crop_s().unwrap_or(clip_s),
            }),
            _ => None,
        });
        AttackReport {
            informed,
            room,
            attack: chain.to_string(),
            family: chain.family().map(|(f, s)| (f.to_string(), s)),
            trials,
            recovered,
            wrong: ran.iter().filter(|o| o.wrong).count(),
            recovery_rate: rate(recovered, trials),
            raw_ber: if ber.is_empty() {
                f64::NAN
            } else {
                ber.iter().sum::<f64>() / ber.len() as f64
            },
            median_p_value: metrics::median(&p),
            external,
            per_file,
        }
    }
}

fn rate(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        f64::NAN
    } else {
        part as f64 / whole as f64
    }
}

/// Detections where there was nothing to detect.
#[derive(Clone, Debug, Serialize)]
pub struct FalseAlarms {
    /// Unmarked excerpts tried under their file's key.
    pub unmarked_trials: usize,
    /// Marked excerpts tried under a wrong key.
    pub wrong_key_trials: usize,
    /// Excerpts where anything was reported.
    pub alarms: usize,
    /// Largest pilot statistic seen.
    pub max_pilot_z: f32,
}

/// Speed and memory on one core.
#[derive(Clone, Debug, Serialize)]
pub struct Speed {
    /// Recording measured (the corpus's longest).
    pub file: String,
    /// Its duration, seconds.
    pub duration_s: f64,
    /// Its rate, Hz.
    pub rate: u32,
    /// Its channel count.
    pub channels: usize,
    /// Engine embedding in memory, × real time (best of 3).
    pub engine_embed_x_realtime: f64,
    /// Engine extraction from an excerpt at an unknown offset, × real time (best of 3).
    pub engine_extract_x_realtime: f64,
    /// The `earmark` command end to end.
    pub cli: Option<CliSpeed>,
}

/// The `earmark` command, file to file, with its peak resident memory.
#[derive(Clone, Debug, Serialize)]
pub struct CliSpeed {
    /// `earmark embed`, × real time.
    pub embed_x_realtime: f64,
    /// Its peak resident memory, MB.
    pub embed_peak_mb: f64,
    /// `earmark extract` on the excerpt, × real time.
    pub extract_x_realtime: f64,
    /// Its peak resident memory, MB.
    pub extract_peak_mb: f64,
}

/// Environment variable asking `earmark` to write its peak resident memory
/// (kB, from /proc/self/status VmHWM) to a file when it exits. The kernel's
/// rusage cannot serve: a child's maxrss starts from its parent's, which for
/// the benchmark is the whole loaded corpus.
pub const PEAK_FILE_ENV: &str = "EARMARK_PEAK_FILE";

/// Runs `exe args` and returns (wall seconds, peak RSS MB).
fn timed_child(exe: &Path, args: &[&std::ffi::OsStr]) -> Result<(f64, f64), BenchError> {
    let peak_file =
        tempfile::NamedTempFile::new().map_err(|e| BenchError::Output(e.to_string()))?;
    let start = Instant::now();
    let status = Command::new(exe)
        .args(args)
        .env(PEAK_FILE_ENV, peak_file.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| BenchError::Output(format!("cannot run {}: {e}", exe.display())))?;
    let seconds = start.elapsed().as_secs_f64();
    // Extraction exits 3 when it finds nothing; anything else is a failure.
    if !matches!(status.code(), Some(0 | 3)) {
        return Err(BenchError::Output(format!(
            "{} {:?} failed",
            exe.display(),
            args.first()
        )));
    }
    let kb: f64 = std::fs::read_to_string(peak_file.path())
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(f64::NAN);
    Ok((seconds, kb / 1024.0))
}

impl CliSpeed {
    /// Measures `exe embed` on `original` with the run's profile and
    /// strength, then `exe extract` on an excerpt of the run's clip length
    /// from the middle of its output.
    pub fn measure(
        exe: &Path,
        scratch: &Path,
        original: &Audio,
        config: &crate::Config,
    ) -> Result<Self, BenchError> {
        let clip_s = config.clip_s;
        let strength = config.settings.strength.to_string();
        let dir = tempfile::tempdir_in(scratch).map_err(|e| BenchError::Output(e.to_string()))?;
        let input = write_float_wav(original, dir.path(), "speed-in.wav")?;
        let key = dir.path().join("speed.key");
        let marked = dir.path().join("speed-marked.wav");
        timed_child(exe, &["keygen".as_ref(), key.as_os_str()])?;
        let (embed_s, embed_mb) = timed_child(
            exe,
            &[
                "embed".as_ref(),
                input.as_os_str(),
                marked.as_os_str(),
                "--key".as_ref(),
                key.as_os_str(),
                "--payload".as_ref(),
                "0123456789abcdef".as_ref(),
                "--profile".as_ref(),
                config.settings.profile.name().as_ref(),
                "--strength".as_ref(),
                strength.as_ref(),
            ],
        )?;
        let marked_audio = earmark_audio_io::read(&marked)
            .map_err(|e| BenchError::Output(format!("{}: {e}", marked.display())))?;
        let clip = crate::attack::excerpt(&marked_audio, clip_s, 0.5);
        let excerpt = write_float_wav(&clip, dir.path(), "speed-clip.wav")?;
        let (extract_s, extract_mb) = timed_child(
            exe,
            &[
                "extract".as_ref(),
                excerpt.as_os_str(),
                "--key".as_ref(),
                key.as_os_str(),
            ],
        )?;
        Ok(CliSpeed {
            embed_x_realtime: original.duration_s() / embed_s,
            embed_peak_mb: embed_mb,
            extract_x_realtime: clip.duration_s() / extract_s,
            extract_peak_mb: extract_mb,
        })
    }
}

fn percent(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{:.0} %", 100.0 * x)
    }
}

fn number(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".into()
    }
}

impl Report {
    /// Attacks that must recover every trial per `gate`, attacks whose
    /// every trial informed tracing must name per `gate_informed`, and any
    /// false alarm or false accusation, blind or informed: one line per
    /// failure.
    pub fn gate_failures(&self, gate: &[Chain], gate_informed: &[Chain]) -> Vec<String> {
        let mut failures = Vec::new();
        let find = |chain: &Chain| self.attacks.iter().find(|a| a.attack == chain.to_string());
        for chain in gate {
            match find(chain) {
                None => failures.push(format!("{chain}: not in this run")),
                Some(a) if a.trials == 0 => failures.push(format!("{chain}: no trial ran")),
                Some(a) if a.recovered < a.trials => {
                    failures.push(format!("{chain}: recovered {}/{}", a.recovered, a.trials))
                }
                Some(_) => {}
            }
        }
        for chain in gate_informed {
            match find(chain).map(|a| a.informed.as_ref()) {
                None => failures.push(format!("{chain}: not in this run")),
                Some(None) => failures.push(format!("{chain}: not traced informed")),
                Some(Some(i)) if i.trials == 0 => {
                    failures.push(format!("{chain}: no informed trial ran"))
                }
                Some(Some(i)) if i.named < i.trials => {
                    failures.push(format!("{chain}: named {}/{} informed", i.named, i.trials))
                }
                Some(Some(_)) => {}
            }
        }
        if self.false_alarms.alarms > 0 {
            failures.push(format!("{} false alarm(s)", self.false_alarms.alarms));
        }
        for a in self.attacks.iter().filter(|a| a.wrong > 0) {
            failures.push(format!("{}: {} wrong payload(s)", a.attack, a.wrong));
        }
        for a in &self.attacks {
            if let Some(i) = a.informed.as_ref().filter(|i| i.wrong > 0) {
                failures.push(format!("{}: {} named wrongly informed", a.attack, i.wrong));
            }
        }
        failures
    }

    /// The re-recording chains summed per RT60 and excerpt length: leaks
    /// named blind and informed (each trial of every distance and codec of
    /// that room), with anyone wrongly named.
    fn room_table(&self, md: &mut String) {
        let cases: Vec<(RoomCase, &AttackReport)> = self
            .attacks
            .iter()
            .filter_map(|a| a.room.map(|r| (r, a)))
            .collect();
        if cases.is_empty() {
            return;
        }
        let mut rooms: Vec<f32> = cases.iter().map(|(r, _)| r.rt60_s).collect();
        rooms.sort_by(f32::total_cmp);
        rooms.dedup();
        let mut lengths: Vec<f32> = cases.iter().map(|(r, _)| r.excerpt_s).collect();
        lengths.sort_by(|a, b| b.total_cmp(a));
        lengths.dedup();
        let _ = writeln!(md, "\n### Re-recorded through a room\n");
        let _ = writeln!(
            md,
            "Leaks named per room, over every distance and codec chained after it; wrongly named in brackets where any.\n"
        );
        // earmark blind, the external tool blind (when one ran), earmark informed.
        let mut readers = vec![("blind".to_string(), Reader::Blind)];
        if let Some(name) = &self.external {
            readers.push((format!("{name} blind"), Reader::External));
        }
        readers.push(("informed".to_string(), Reader::Informed));
        let mut header = String::from("| RT60 |");
        let mut rule = String::from("|---|");
        for (label, _) in &readers {
            for l in &lengths {
                header.push_str(&format!(" {label} {l} s |"));
                rule.push_str("---|");
            }
        }
        let _ = writeln!(md, "{header}\n{rule}");
        for rt60 in rooms {
            let mut row = format!("| {rt60} s |");
            for (_, reader) in &readers {
                for &length in &lengths {
                    let (mut named, mut trials, mut wrong) = (0, 0, 0);
                    for (case, attack) in &cases {
                        if case.rt60_s != rt60 || case.excerpt_s != length {
                            continue;
                        }
                        let counts = match reader {
                            Reader::Blind => Some((attack.recovered, attack.trials, attack.wrong)),
                            Reader::External => attack
                                .external
                                .as_ref()
                                .map(|e| (e.recovered, e.trials, e.wrong)),
                            Reader::Informed => attack
                                .informed
                                .as_ref()
                                .map(|i| (i.named, i.trials, i.wrong)),
                        };
                        if let Some((n, t, w)) = counts {
                            named += n;
                            trials += t;
                            wrong += w;
                        }
                    }
                    let cell = if trials == 0 {
                        "–".to_string()
                    } else if wrong > 0 {
                        format!("{named}/{trials} ({wrong} wrong)")
                    } else {
                        format!("{named}/{trials}")
                    };
                    row.push_str(&format!(" {cell} |"));
                }
            }
            let _ = writeln!(md, "{row}");
        }
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let marked = self.files.iter().filter(|f| f.status == "marked").count();
        let _ = writeln!(md, "Produced by `{}`", self.command);
        let _ = writeln!(
            md,
            "(seed {}, profile `{}` at strength {}, corpus `{}`, {} recordings marked, excerpts of {} s unless the attack crops).\n",
            self.seed, self.settings.profile, self.settings.strength, self.corpus, marked, self.clip_s
        );
        let _ = writeln!(md, "### Robustness\n");
        match &self.external {
            Some(name) => {
                let _ = writeln!(
                    md,
                    "| attack | earmark recovered | {name} recovered | ratio | raw BER | median p | wrong |"
                );
                let _ = writeln!(md, "|---|---|---|---|---|---|---|");
            }
            None => {
                let _ = writeln!(md, "| attack | recovered | raw BER | median p | wrong |");
                let _ = writeln!(md, "|---|---|---|---|---|");
            }
        }
        for a in &self.attacks {
            let ours = format!(
                "{}/{} ({})",
                a.recovered,
                a.trials,
                percent(a.recovery_rate)
            );
            let tail = format!(
                "{} | {} | {} |",
                number(a.raw_ber, 3),
                if a.median_p_value.is_finite() {
                    format!("{:.1e}", a.median_p_value)
                } else {
                    "–".into()
                },
                a.wrong
            );
            match &a.external {
                Some(e) => {
                    let ratio = if e.recovery_rate > 0.0 {
                        format!("{:.2}×", a.recovery_rate / e.recovery_rate)
                    } else if a.recovery_rate > 0.0 {
                        "∞".into()
                    } else {
                        "–".into()
                    };
                    let _ = writeln!(
                        md,
                        "| {} | {ours} | {}/{} ({}) | {ratio} | {tail}",
                        a.attack,
                        e.recovered,
                        e.trials,
                        percent(e.recovery_rate)
                    );
                }
                None => {
                    let _ = writeln!(md, "| {} | {ours} | {tail}", a.attack);
                }
            }
        }
        if self.attacks.iter().any(|a| a.informed.is_some()) {
            let _ = writeln!(
                md,
                "\n### Informed tracing (registered against the original)\n"
            );
            let _ = writeln!(
                md,
                "Each excerpt is registered against the unmarked original and read through it; \
                 a trial names the recipient when the identifier decodes or the fingerprint code \
                 accuses them among {} recipients with a bound within ε = {:.0e} (the identifier \
                 and the code each held to half of it). The tamper map is held \
                 to the cuts and insertions the attack made: an edit is located when the \
                 reported one lies within ±{} s at each end; a spurious edit matches none.\n",
                crate::informed::RECIPIENTS,
                crate::informed::EPSILON,
                crate::informed::EDIT_TOLERANCE_S
            );
            let _ = writeln!(
                md,
                "| attack | named | by identifier | by code | registered | median code score | wrong | edits located | spurious edits (trials) |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
            for a in &self.attacks {
                if let Some(i) = &a.informed {
                    let _ = writeln!(
                        md,
                        "| {} | {}/{} ({}) | {} | {} | {} | {} | {} | {} | {} ({}) |",
                        a.attack,
                        i.named,
                        i.trials,
                        percent(i.rate),
                        i.by_identifier,
                        i.by_code,
                        i.registered,
                        number(i.median_code_score, 1),
                        i.wrong,
                        if i.edits > 0 {
                            format!("{}/{}", i.edits_located, i.edits)
                        } else {
                            "–".to_string()
                        },
                        i.spurious_edits,
                        i.trials_with_spurious_edits
                    );
                }
            }
        }
        let skipped: Vec<String> = self
            .attacks
            .iter()
            .flat_map(|a| {
                a.per_file.iter().filter_map(move |o| {
                    o.error
                        .as_ref()
                        .map(|e| format!("{} on {}: {e}", a.attack, o.file))
                })
            })
            .collect();
        if !skipped.is_empty() {
            let _ = writeln!(md, "\nTrials that could not run (not counted):\n");
            for s in skipped {
                let _ = writeln!(md, "- {s}");
            }
        }
        self.room_table(&mut md);
        let fa = &self.false_alarms;
        let _ = writeln!(md, "\n### False alarms\n");
        let _ = writeln!(
            md,
            "{} alarms in {} excerpts of {} s ({} unmarked under their file's key, {} marked under a wrong key); largest pilot z {:.2}.",
            fa.alarms,
            fa.unmarked_trials + fa.wrong_key_trials,
            self.clip_s,
            fa.unmarked_trials,
            fa.wrong_key_trials,
            fa.max_pilot_z
        );
        let _ = writeln!(md, "\n### Quality of the marked copies\n");
        let _ = writeln!(
            md,
            "| file | rate | SNR dB | segSNR dB | LSD dB | ViSQOL | PESQ NB | PESQ WB |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for f in &self.files {
            let row = |label: &str, q: &Quality| {
                let p = q.perceptual.clone().unwrap_or_default();
                let opt = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.2}"));
                let visqol = match (&p.visqol, &p.visqol_mode) {
                    (Some(v), Some(m)) => format!("{v:.2} ({m})"),
                    _ => "–".into(),
                };
                format!(
                    "| {label} | {} Hz | {} | {} | {} | {visqol} | {} | {} |",
                    f.rate,
                    number(q.snr_db, 1),
                    number(q.segmental_snr_db, 1),
                    number(q.lsd_db, 2),
                    opt(p.pesq_nb),
                    opt(p.pesq_wb)
                )
            };
            match &f.quality {
                Some(q) => {
                    let _ = writeln!(md, "{}", row(&f.name, q));
                }
                None => {
                    let _ = writeln!(
                        md,
                        "| {} | {} Hz | {} | | | | | |",
                        f.name, f.rate, f.status
                    );
                }
            }
            if let (Some(q), Some(name)) = (&f.external_quality, &self.external) {
                let _ = writeln!(md, "{}", row(&format!("{} ({name})", f.name), q));
            }
        }
        // The scorers' own remarks (a missing score, a fallback mapper)
        // change what the figures mean, so they go under the table.
        let notes: Vec<(&str, &str)> = self
            .files
            .iter()
            .filter_map(|f| {
                let note = f.quality.as_ref()?.perceptual.as_ref()?.note.as_deref()?;
                Some((f.name.as_str(), note))
            })
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(md, "\nScorer notes:\n");
            for (name, note) in notes {
                let _ = writeln!(md, "- {name}: {note}");
            }
        }
        if !self.unreadable.is_empty() {
            let _ = writeln!(md, "\nUnreadable files (skipped):\n");
            for u in &self.unreadable {
                let _ = writeln!(md, "- {}: {}", u.name, u.error);
            }
        }
        let s = &self.speed;
        let _ = writeln!(md, "\n### Speed (one core)\n");
        let _ = writeln!(
            md,
            "On `{}` ({:.1} s, {} Hz, {} channel(s)): engine in memory, embed {:.0}× real time, extract from a {} s excerpt {:.0}× real time.",
            s.file, s.duration_s, s.rate, s.channels, s.engine_embed_x_realtime, self.clip_s, s.engine_extract_x_realtime
        );
        if let Some(c) = &s.cli {
            let _ = writeln!(
                md,
                "The `earmark` command, file to file: embed {:.0}× real time, peak {:.0} MB; extract {:.0}× real time, peak {:.0} MB.",
                c.embed_x_realtime, c.embed_peak_mb, c.extract_x_realtime, c.extract_peak_mb
            );
        }
        md
    }

    /// Writes `report.json`, `report.md` and `plots/*.png` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>, BenchError> {
        let fail = |what: &Path, e: &dyn std::fmt::Display| {
            BenchError::Output(format!("{}: {e}", what.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, &e))?;
        let json = dir.join("report.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| fail(&json, &e))?;
        std::fs::write(&json, text).map_err(|e| fail(&json, &e))?;
        let md = dir.join("report.md");
        std::fs::write(&md, self.to_markdown()).map_err(|e| fail(&md, &e))?;
        let mut written = vec![json, md];
        written.extend(crate::report::plots::draw(self, &dir.join("plots"))?);
        Ok(written)
    }
}

pub mod plots {
    //! Recovery rate against attack strength, one PNG per attack family.

    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use plotters::prelude::*;
    use plotters::style::{register_font, FontStyle};

    use super::Report;
    use crate::BenchError;

    /// The bundled font (DejaVu Sans; licence in `assets/`), so plots need no system fonts.
    const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

    fn slug(family: &str) -> String {
        let s: String = family
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        s.split('-')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Draws one plot per family with at least two strengths; returns the files.
    pub fn draw(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
        let mut families: BTreeMap<String, Vec<(f64, f64, Option<f64>)>> = BTreeMap::new();
        for a in &report.attacks {
            if let (Some((family, strength)), true) = (&a.family, a.trials > 0) {
                families.entry(family.clone()).or_default().push((
                    *strength,
                    a.recovery_rate,
                    a.external
                        .as_ref()
                        .map(|e| e.recovery_rate)
                        .filter(|r| r.is_finite()),
                ));
            }
        }
        families.retain(|_, points| points.len() >= 2);
        if families.is_empty() {
            return Ok(Vec::new());
        }
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
        std::fs::create_dir_all(dir)
            .map_err(|e| BenchError::Output(format!("{}: {e}", dir.display())))?;
        let mut written = Vec::new();
        for (family, mut points) in families {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let path = dir.join(format!("{}.png", slug(&family)));
            draw_one(&path, &family, &points, report.external.as_deref())
                .map_err(|e| BenchError::Output(format!("{}: {e}", path.display())))?;
            written.push(path);
        }
        Ok(written)
    }

    fn draw_one(
        path: &Path,
        family: &str,
        points: &[(f64, f64, Option<f64>)],
        external: Option<&str>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(path, (640, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let (lo, hi) = (points[0].0, points[points.len() - 1].0);
        let pad = ((hi - lo) * 0.05).max(1e-3);
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Recovery against {family}"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..105.0)?;
        chart
            .configure_mesh()
            .x_desc(family)
            .y_desc("recovered (%)")
            .label_style(("sans-serif", 14))
            .draw()?;
        let ours: Vec<(f64, f64)> = points.iter().map(|p| (p.0, 100.0 * p.1)).collect();
        chart
            .draw_series(LineSeries::new(ours.clone(), BLUE.stroke_width(2)))?
            .label("earmark")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart.draw_series(ours.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
        if let Some(name) = external {
            let theirs: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|p| p.2.map(|r| (p.0, 100.0 * r)))
                .collect();
            if !theirs.is_empty() {
                chart
                    .draw_series(LineSeries::new(theirs.clone(), RED.stroke_width(2)))?
                    .label(name.to_string())
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2))
                    });
                chart.draw_series(
                    theirs
                        .iter()
                        .map(|&p| TriangleMarker::new(p, 5, RED.filled())),
                )?;
            }
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerLeft)
            .draw()?;
        root.present()?;
        Ok(())
    }
}
