//! The runner: marks the corpus, attacks every marked file with every chain,
//! extracts from a random excerpt, counts false alarms and measures speed.
//!
//! Every file and every (file, chain) job draws its randomness from a
//! labelled HKDF sub-key of the seed (labels below), so results do not depend
//! on how rayon schedules the jobs. earmark and an external tool get the
//! same excerpts and the same noise: their streams come from the same labels.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use earmark_audio_io::Audio;
use earmark_codes::TardosCode;
use earmark_engine::{embed, embed_fingerprinted, extract, payload, MarkSettings, SearchGrid};
use earmark_keys::{Label, SecretKey};
use indicatif::{ParallelProgressIterator, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use rayon::prelude::*;

use crate::attack::{crop, crop_tracking, excerpt, parse_list, Chain, Context, TrueEdit};
use crate::external::ExternalTool;
use crate::metrics;
use crate::perceptual::{self, Perceptual};
use crate::report::{
    AttackReport, ExternalCell, FalseAlarms, FileReport, Outcome, Quality, Report, Speed,
    Unreadable,
};
use crate::tools::{write_float_wav, Tools};
use crate::BenchError;

/// Label of each file's watermark key (context: the file name).
pub const FILE_KEY_LABEL: Label = Label("earmark/v1/bench/file-key");
/// Label of each file's payload (context: the file name).
pub const PAYLOAD_LABEL: Label = Label("earmark/v1/bench/payload");
/// Label of each job's attack stream (context: file name, NUL, chain).
pub const ATTACK_LABEL: Label = Label("earmark/v1/bench/attack");
/// Label of the false-alarm trials' stream (context: trial number).
pub const FALSE_ALARM_LABEL: Label = Label("earmark/v1/bench/false-alarm");
/// Label of the wrong keys tried on marked audio (context: trial number).
pub const WRONG_KEY_LABEL: Label = Label("earmark/v1/bench/wrong-key");
/// Label that turns a sub-key into a ChaCha20 stream.
const STREAM_LABEL: Label = Label("earmark/v1/bench/stream");

/// Audio file extensions the corpus scan picks up.
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "flac", "mp3", "m4a", "aac", "ogg", "oga", "opus", "webm",
];

/// Named attack suites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// A few attacks, for CI: clean, MP3 128k, the phone band, Opus 16k voice.
    Quick,
    /// Every channel of the attack catalogue, with the realistic chains.
    Full,
    /// The channels informed tracing is held to, on 30 s excerpts;
    /// run with `--informed`.
    Informed,
}

impl Suite {
    /// The suite's chains.
    pub fn chains(self) -> Vec<Chain> {
        let text = match self {
            Suite::Quick => "clean mp3:128k phone opus:16k",
            Suite::Informed => "",
            // AMR-WB runs where an encoder exists (`--attacks amr-wb:23.85k`);
            // Debian's sox and ffmpeg have none, so the suite leaves it out.
            Suite::Full => concat!(
                "clean mp3:32k mp3:64k mp3:128k mp3:320k aac:64k aac:128k ",
                "opus:6k opus:8k opus:12k opus:16k opus:24k opus:64k vorbis:64k ",
                "amr-nb:4.75k amr-nb:12.2k gsm mulaw ",
                "resample:8k resample:16k resample:22.05k resample:48k phone lowpass:3.5k highpass:500 ",
                "noise:30 noise:20 noise:10 pink:30 pink:20 pink:10 gain:+10 gain:-10 ",
                "crop:3s crop:5s crop:10s crop:30s cut:1s ",
                "speed:0.9 speed:0.95 speed:0.98 speed:0.99 speed:1.01 speed:1.02 speed:1.05 speed:1.1 ",
                "tempo:0.95 tempo:0.98 tempo:1.02 tempo:1.05 pitch:-100 pitch:-50 pitch:+50 pitch:+100 ",
                "echo reverb air mix:10 opus:16k,mp3:128k phone,mp3:128k ",
                // The phone and messenger channels at their 30 s excerpt.
                "phone,crop:30s opus:16k,crop:30s opus:12k,crop:30s amr-nb:12.2k,crop:30s gsm,crop:30s ",
                "opus:16k,mp3:128k,crop:30s speed:1.05,crop:30s tempo:1.05,crop:30s pitch:+100,crop:30s"
            ),
        };
        let text = match self {
            Suite::Informed => concat!(
                "clean,crop:30s amr-nb:12.2k,crop:30s amr-nb:4.75k,crop:30s gsm,crop:30s ",
                "opus:6k,crop:30s opus:8k,crop:30s opus:12k,crop:30s ",
                "tempo:0.9,crop:30s tempo:1.1,crop:30s speed:0.9,crop:30s speed:1.1,crop:30s ",
                "pitch:-200,crop:30s pitch:+200,crop:30s air:20,crop:30s ",
                "crop:36s,cut:1s crop:30s,insert:2s"
            ),
            _ => text,
        };
        parse_list(text).expect("suite attack names parse")
    }

    /// Parses `quick` or `full`.
    pub fn from_name(name: &str) -> Option<Suite> {
        match name {
            "quick" => Some(Suite::Quick),
            "full" => Some(Suite::Full),
            "informed" => Some(Suite::Informed),
            _ => None,
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Directory of recordings.
    pub corpus: PathBuf,
    /// Attack chains.
    pub chains: Vec<Chain>,
    /// Excerpt length extracted from, seconds (unless a chain crops).
    pub clip_s: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// The profile and strength every recording is marked with.
    pub settings: MarkSettings,
    /// Unmarked-audio and wrong-key excerpts tried, in total.
    pub false_alarm_trials: usize,
    /// Another tool to run side by side.
    pub external: Option<ExternalTool>,
    /// Python interpreter for perceptual scores; `None` skips them.
    pub perceptual_python: Option<String>,
    /// The `earmark` executable, for the end-to-end speed and peak-memory
    /// measurement; `None` skips it.
    pub earmark_exe: Option<PathBuf>,
    /// Also trace every excerpt informed: registered against the original
    /// and read through it, scored against 1,000 recipients.
    pub informed: bool,
    /// Excerpts per recording and attack, where the recording holds that
    /// many attack windows (1: one excerpt each).
    pub excerpts: usize,
    /// Draw a progress bar (only ever on a terminal).
    pub progress: bool,
    /// The text of the command line, for the report.
    pub command: String,
}

/// A corpus recording that was marked.
struct Marked {
    name: String,
    original: Audio,
    marked: Audio,
    key: SecretKey,
    payload: u64,
    /// The fingerprint code the copy carries, and whose codeword it carries.
    code: TardosCode,
    recipient: u32,
    /// The original's analysis signal, for informed tracing.
    original_8k: Option<Vec<f32>>,
    external: Option<Result<Audio, String>>,
}

fn stream(master: &SecretKey, label: Label, context: &[u8]) -> ChaCha20Rng {
    master.derive_with(label, context).stream(STREAM_LABEL)
}

/// Runs the benchmark.
pub fn run(config: &Config) -> Result<Report, BenchError> {
    let tools = Tools::find()?;
    let master = SecretKey::from_seed(config.seed);
    let scratch = tempfile::tempdir()
        .map_err(|e| BenchError::Output(format!("a temporary directory: {e}")))?;
    let (recordings, unreadable) = scan_corpus(&config.corpus)?;
    let helper = match &config.perceptual_python {
        Some(_) => {
            let path = scratch.path().join("perceptual.py");
            std::fs::write(&path, perceptual::HELPER)
                .map_err(|e| BenchError::Output(format!("{}: {e}", path.display())))?;
            Some(path)
        }
        None => None,
    };

    let bar = progress_bar(config.progress, recordings.len() as u64, "marking");
    let marking: Vec<(FileReport, Option<Marked>)> = recordings
        .into_par_iter()
        .progress_with(bar)
        .map(|(name, original)| {
            mark_one(
                config,
                &master,
                scratch.path(),
                helper.as_deref(),
                name,
                original,
            )
        })
        .collect();
    let mut files = Vec::new();
    let mut marked = Vec::new();
    for (report, m) in marking {
        files.push(report);
        marked.extend(m);
    }
    if marked.is_empty() {
        return Err(BenchError::Corpus(format!(
            "{}: no recording could be marked (need ≥ 8 s with sound)",
            config.corpus.display()
        )));
    }

    // Long recordings give several excerpts per attack (each from its own
    // stream), as many as fit whole attack windows, up to `excerpts`.
    let jobs: Vec<(usize, usize, usize)> = (0..config.chains.len())
        .flat_map(|c| {
            let marked = &marked;
            (0..marked.len()).flat_map(move |f| {
                let window = attack_window_s(&config.chains[c], config.clip_s);
                let fit = (marked[f].original.duration_s() / window).floor() as usize;
                (0..config.excerpts.min(fit).max(1)).map(move |k| (c, f, k))
            })
        })
        .collect();
    let bar = progress_bar(config.progress, jobs.len() as u64, "attacks");
    let outcomes: Vec<(usize, Outcome)> = jobs
        .par_iter()
        .progress_with(bar)
        .map(|&(c, f, k)| {
            (
                c,
                attack_one(config, &master, &tools, &marked, f, k, &config.chains[c]),
            )
        })
        .collect();
    let attacks = config
        .chains
        .iter()
        .enumerate()
        .map(|(c, chain)| {
            let per_file: Vec<Outcome> = outcomes
                .iter()
                .filter(|(i, _)| *i == c)
                .map(|(_, o)| o.clone())
                .collect();
            AttackReport::summarise(
                chain,
                per_file,
                config.external.is_some(),
                config.clip_s as f32,
            )
        })
        .collect();

    let false_alarms = false_alarms(config, &master, &marked);
    let speed = measure_speed(config, &marked, scratch.path());
    Ok(Report {
        command: config.command.clone(),
        seed: config.seed,
        settings: config.settings,
        corpus: config.corpus.display().to_string(),
        clip_s: config.clip_s,
        external: config.external.as_ref().map(|e| e.name.clone()),
        files,
        unreadable,
        attacks,
        false_alarms,
        speed,
    })
}

fn progress_bar(enabled: bool, len: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if enabled && std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:40}] {pos}/{len} {elapsed_precise} (eta {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(what);
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// Readable recordings (name, audio), sorted by name, and the unreadable ones.
type Scanned = (Vec<(String, Audio)>, Vec<Unreadable>);

/// Reads every audio file of the corpus, sorted by name; unreadable ones are
/// listed and skipped.
fn scan_corpus(dir: &Path) -> Result<Scanned, BenchError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BenchError::Corpus(format!("{}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(BenchError::Corpus(format!(
            "{}: no audio files ({})",
            dir.display(),
            AUDIO_EXTENSIONS.join(", ")
        )));
    }
    let read: Vec<(String, Result<Audio, String>)> = paths
        .par_iter()
        .map(|p| {
            let name = p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            (name, earmark_audio_io::read(p).map_err(|e| e.to_string()))
        })
        .collect();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (name, audio) in read {
        match audio {
            Ok(a) => good.push((name, a)),
            Err(error) => bad.push(Unreadable { name, error }),
        }
    }
    Ok((good, bad))
}

fn mark_one(
    config: &Config,
    master: &SecretKey,
    scratch: &Path,
    helper: Option<&Path>,
    name: String,
    original: Audio,
) -> (FileReport, Option<Marked>) {
    let key = master.derive_with(FILE_KEY_LABEL, name.as_bytes());
    let payload = stream(master, PAYLOAD_LABEL, name.as_bytes()).next_u64();
    let mut report = FileReport {
        name: name.clone(),
        duration_s: original.duration_s(),
        rate: original.rate,
        channels: original.channels.len(),
        payload: format!("{payload:016x}"),
        status: "marked".into(),
        mean_depth_db: None,
        quality: None,
        external_quality: None,
    };
    let (code, recipient) = crate::informed::code_for(master, &name, payload);
    let mut channels = original.channels.clone();
    let fingerprint = code.codeword(recipient);
    match embed_fingerprinted(
        &mut channels,
        original.rate,
        &key,
        payload,
        &fingerprint,
        config.settings,
    ) {
        // The blind trials read excerpts of the copy alone: a copy too
        // short or quiet for that is left out, as the tables would only
        // measure its length.
        Ok(embedded) if !embedded.blind_readable => {
            report.status = format!(
                "skipped: too short or quiet to read back blind: {:.1} s with {:.1} s of sound",
                embedded.duration_s, embedded.marked_s
            );
            return (report, None);
        }
        Ok(embedded) => report.mean_depth_db = Some(embedded.mean_depth_db),
        Err(e) => {
            report.status = format!("skipped: {e}");
            return (report, None);
        }
    }
    let marked = Audio {
        channels,
        ..original.clone()
    };
    let dir = match tempfile::tempdir_in(scratch) {
        Ok(d) => d,
        Err(e) => {
            report.status = format!("skipped: temporary directory: {e}");
            return (report, None);
        }
    };
    let speech = perceptual::is_speech(&name);
    let perceptual_of = |degraded: &Audio| -> Option<Perceptual> {
        let (python, helper) = (config.perceptual_python.as_deref()?, helper?);
        let reference = write_float_wav(&original, dir.path(), "reference.wav").ok()?;
        let degraded = write_float_wav(degraded, dir.path(), "degraded.wav").ok()?;
        Some(perceptual::score(
            python, helper, &reference, &degraded, speech,
        ))
    };
    report.quality = Some(Quality::measure(&original, &marked, perceptual_of(&marked)));
    let external = config.external.as_ref().map(|tool| {
        let input =
            write_float_wav(&original, dir.path(), "external-in.wav").map_err(|e| e.to_string())?;
        let output = dir.path().join("external-out.wav");
        tool.embed(&input, &output, payload)
            .map_err(|e| e.to_string())?;
        let audio =
            earmark_audio_io::read(&output).map_err(|e| format!("{} output: {e}", tool.name))?;
        if audio.frames() == 0 {
            return Err(format!("{} wrote an empty file", tool.name));
        }
        Ok(audio)
    });
    if let Some(Ok(ext)) = &external {
        if ext.rate == original.rate && ext.channels.len() == original.channels.len() {
            let quality = Quality::measure(&original, ext, perceptual_of(ext));
            report.external_quality = Some(quality);
        }
    }
    let original_8k = config
        .informed
        .then(|| crate::informed::analysis_signal(&original));
    let marked_file = Marked {
        name,
        original,
        marked,
        key,
        payload,
        code,
        recipient,
        original_8k,
        external,
    };
    (report, Some(marked_file))
}

/// Longest stretch attacked, as a multiple of the excerpt plus slack: codecs
/// and effects then run on a window of the marked copy rather than on a
/// whole, possibly hour-long, recording.
fn attack_window_s(chain: &Chain, clip_s: f64) -> f64 {
    2.0 * chain.crop_s().map_or(clip_s, |c| c as f64).max(clip_s) + 10.0
}

fn attack_one(
    config: &Config,
    master: &SecretKey,
    tools: &Tools,
    marked: &[Marked],
    f: usize,
    excerpt_index: usize,
    chain: &Chain,
) -> Outcome {
    let file = &marked[f];
    let interferer = &marked[(f + 1) % marked.len()].original;
    let mut context = [file.name.as_bytes(), b"\0", chain.to_string().as_bytes()].concat();
    // The first excerpt's stream is the one every earlier report used.
    if excerpt_index > 0 {
        context.extend_from_slice(format!("\0{excerpt_index}").as_bytes());
    }
    let name = match excerpt_index {
        0 => file.name.clone(),
        k => format!("{} #{}", file.name, k + 1),
    };
    let mut outcome = Outcome::new(&name);
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            outcome.error = Some(format!("temporary directory: {e}"));
            return outcome;
        }
    };
    // Both tools see the same window, noise and excerpt: same stream.
    let attacked = |audio: &Audio| -> Result<(Audio, Vec<TrueEdit>), String> {
        let mut rng = stream(master, ATTACK_LABEL, &context);
        let fraction = crate::attack::unit(&mut rng);
        let source = excerpt(audio, attack_window_s(chain, config.clip_s), fraction);
        let mut cx = Context {
            tools,
            scratch: dir.path(),
            interferer,
            rng: &mut rng,
            edits: Vec::new(),
        };
        let damaged = chain.apply(&source, &mut cx).map_err(|e| e.to_string())?;
        let excerpt = match chain.crop_s() {
            Some(_) => damaged,
            None => crop_tracking(&damaged, config.clip_s, &mut cx),
        };
        Ok((excerpt, cx.edits))
    };
    match attacked(&file.marked) {
        Err(e) => outcome.error = Some(e),
        Ok((excerpt, true_edits)) => {
            outcome.excerpt_s = excerpt.duration_s();
            if let Some(original_8k) = &file.original_8k {
                outcome.informed = Some(crate::informed::trial(
                    original_8k,
                    &excerpt,
                    &file.key,
                    file.payload,
                    &file.code,
                    file.recipient,
                    &true_edits,
                ));
            }
            match extract(
                &excerpt.channels,
                excerpt.rate,
                &file.key,
                &SearchGrid::default(),
            ) {
                Err(e) => outcome.error = Some(e.to_string()),
                Ok(detection) => {
                    let best = detection.found.first();
                    outcome.recovered = best.is_some_and(|b| b.payload == file.payload);
                    outcome.wrong = detection.found.iter().any(|b| b.payload != file.payload);
                    outcome.p_value = best.map_or(1.0, |b| b.p_value);
                    outcome.pilot_z = detection.best_pilot_z;
                    let truth = payload::codeword(&file.key, file.payload);
                    outcome.raw_ber = metrics::raw_bit_error_rate(&detection.soft_bits, &truth);
                }
            }
        }
    }
    if let (Some(tool), Some(ext)) = (&config.external, &file.external) {
        outcome.external = Some(match ext {
            Err(e) => ExternalCell::error(e.clone()),
            Ok(ext_marked) => match attacked(ext_marked) {
                Err(e) => ExternalCell::error(e),
                Ok((excerpt, _)) => {
                    match write_float_wav(&excerpt, dir.path(), "external-excerpt.wav")
                        .and_then(|path| tool.extract(&path))
                    {
                        Err(e) => ExternalCell::error(e.to_string()),
                        Ok(reading) => ExternalCell {
                            recovered: reading.matches(file.payload),
                            wrong: matches!(reading, crate::external::Reading::Payload(_))
                                && !reading.matches(file.payload),
                            error: None,
                        },
                    }
                }
            },
        });
    }
    outcome
}

/// Extracts from excerpts that carry no mark for the key tried: unmarked
/// originals under their file's key, and marked copies under wrong keys.
fn false_alarms(config: &Config, master: &SecretKey, marked: &[Marked]) -> FalseAlarms {
    let trials = config.false_alarm_trials;
    let bar = progress_bar(config.progress, trials as u64, "false alarms");
    let results: Vec<(bool, bool, f32)> = (0..trials)
        .into_par_iter()
        .progress_with(bar)
        .map(|t| {
            let file = &marked[t % marked.len()];
            let context = (t as u64).to_le_bytes();
            let mut rng = stream(master, FALSE_ALARM_LABEL, &context);
            let wrong_key = t % 2 == 1;
            let (audio, key) = if wrong_key {
                (&file.marked, master.derive_with(WRONG_KEY_LABEL, &context))
            } else {
                (&file.original, file.key.clone())
            };
            let excerpt = crop(audio, config.clip_s, &mut rng);
            match extract(
                &excerpt.channels,
                excerpt.rate,
                &key,
                &SearchGrid::default(),
            ) {
                Ok(d) => (wrong_key, !d.found.is_empty(), d.best_pilot_z),
                Err(_) => (wrong_key, false, 0.0),
            }
        })
        .collect();
    FalseAlarms {
        unmarked_trials: results.iter().filter(|r| !r.0).count(),
        wrong_key_trials: results.iter().filter(|r| r.0).count(),
        alarms: results.iter().filter(|r| r.1).count(),
        max_pilot_z: results.iter().map(|r| r.2).fold(0.0, f32::max),
    }
}

/// Speed on one core: the engine in-process on the longest recording (best
/// of three), and the `earmark` command end to end with its peak memory.
fn measure_speed(config: &Config, marked: &[Marked], scratch: &Path) -> Speed {
    // The longest recording at 44.1 kHz or more in stereo (the reference
    // format of the speed targets), else the longest of all.
    let hi_fi: Vec<&Marked> = marked
        .iter()
        .filter(|m| m.original.rate >= 44_100 && m.original.channels.len() >= 2)
        .collect();
    let pool: Vec<&Marked> = if hi_fi.is_empty() {
        marked.iter().collect()
    } else {
        hi_fi
    };
    let longest = pool
        .into_iter()
        .max_by(|a, b| a.original.duration_s().total_cmp(&b.original.duration_s()))
        .expect("at least one marked file");
    let duration = longest.original.duration_s();
    let mut embed_s = f64::INFINITY;
    let mut extract_s = f64::INFINITY;
    let clip = excerpt(&longest.marked, config.clip_s, 0.5);
    for _ in 0..3 {
        let mut channels = longest.original.channels.clone();
        let start = Instant::now();
        let _ = embed(
            &mut channels,
            longest.original.rate,
            &longest.key,
            longest.payload,
            config.settings,
        );
        embed_s = embed_s.min(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let _ = extract(
            &clip.channels,
            clip.rate,
            &longest.key,
            &SearchGrid::default(),
        );
        extract_s = extract_s.min(start.elapsed().as_secs_f64());
    }
    let mut speed = Speed {
        file: longest.name.clone(),
        duration_s: duration,
        rate: longest.original.rate,
        channels: longest.original.channels.len(),
        engine_embed_x_realtime: duration / embed_s,
        engine_extract_x_realtime: clip.duration_s() / extract_s,
        cli: None,
    };
    if let Some(exe) = &config.earmark_exe {
        speed.cli = crate::report::CliSpeed::measure(exe, scratch, &longest.original, config).ok();
    }
    speed
}
