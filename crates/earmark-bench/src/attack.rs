//! Named, parameterised attacks and chains of them.
//!
//! An attack is written `name` or `name:parameter` (`mp3:128k`, `speed:1.05`,
//! `crop:10s`); a chain joins attacks with commas (`opus:16k,mp3:128k`) and
//! applies them left to right. Codecs run through Debian's ffmpeg or sox, never
//! through imitations. Effects whose randomness matters (noise, crops, chunk
//! removal, rooms) are computed here from a seeded ChaCha stream, so a chain
//! gives the same output for the same seed.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use earmark_audio_io::Audio;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use crate::acoustics::{convolve, room_response};
use crate::tools::Tools;
use crate::BenchError;

/// One step of an attack chain.
#[derive(Clone, Debug, PartialEq)]
pub enum Attack {
    /// Nothing: the marked file as it is.
    Clean,
    /// MP3 (LAME) at this many kbit/s.
    Mp3 { kbps: f32 },
    /// AAC-LC (ffmpeg's encoder) at this many kbit/s.
    Aac { kbps: f32 },
    /// Opus at this many kbit/s; voice mode (`-application voip`, as
    /// WhatsApp uses) at 16 kbit/s and below, mono like a voice message.
    Opus { kbps: f32 },
    /// Ogg Vorbis at this many kbit/s (nominal).
    Vorbis { kbps: f32 },
    /// AMR-NB at 8 kHz through sox, at one of its eight modes (kbit/s).
    AmrNb { kbps: f32 },
    /// AMR-WB at 16 kHz through sox, at one of its nine modes (kbit/s).
    AmrWb { kbps: f32 },
    /// GSM 06.10 full rate at 8 kHz through sox.
    Gsm,
    /// G.711 µ-law at 8 kHz.
    Mulaw,
    /// Resample to this rate (Hz) and back (sox, high quality).
    Resample { hz: u32 },
    /// The phone line: 8 kHz, 300–3400 Hz band-pass, mono.
    Phone,
    /// Low-pass at this frequency (Hz).
    Lowpass { hz: f32 },
    /// High-pass at this frequency (Hz).
    Highpass { hz: f32 },
    /// Added white noise at this SNR (dB, against the signal's RMS).
    WhiteNoise { snr_db: f32 },
    /// Added pink noise at this SNR (dB).
    PinkNoise { snr_db: f32 },
    /// Gain in dB; what exceeds full scale is clipped.
    Gain { db: f32 },
    /// An excerpt of this many seconds at a random offset.
    Crop { seconds: f32 },
    /// Chunks of this many seconds removed, one in every 5 s, at random places.
    RemoveChunks { seconds: f32 },
    /// This many seconds of other audio inserted at a random point in the
    /// middle half (a splice from elsewhere).
    Insert { seconds: f32 },
    /// Playback speed factor (tempo and pitch together, as by resampling).
    Speed { factor: f32 },
    /// Tempo factor with pitch kept (sox `tempo`).
    Tempo { factor: f32 },
    /// Pitch shift in cents with tempo kept (sox `pitch`).
    Pitch { cents: f32 },
    /// One echo: 150 ms delay, 8 dB down.
    Echo,
    /// A room: convolution with a synthetic impulse response (RT60 0.5 s).
    Reverb,
    /// Over the air: loudspeaker band (150–7000 Hz), mild saturation, a room
    /// (RT60 0.3 s), microphone band (100–8000 Hz) and noise at this SNR (dB).
    OverTheAir { snr_db: f32 },
    /// Re-recorded in a room: loudspeaker band (150–7000 Hz), a shoebox
    /// room's impulse response (image-source model, pyroomacoustics) with
    /// this RT60 (s) and source–microphone distance (m), a phone
    /// microphone's band (100–7000 Hz) and room noise 20 dB down. Chain a
    /// phone recorder's codec after it (`,aac:64k`).
    Room { rt60_s: f32, distance_m: f32 },
    /// Mixed with other audio this many dB below the signal.
    Mix { db_below: f32 },
}

/// Every attack name with its parameter syntax and an example, for help
/// texts and for the error listing valid names.
pub const CATALOGUE: &[(&str, &str)] = &[
    ("clean", "no change"),
    ("mp3:<k>", "MP3 (LAME), e.g. mp3:32k, mp3:128k"),
    ("aac:<k>", "AAC-LC, e.g. aac:64k"),
    (
        "opus:<k>",
        "Opus, voice mode at ≤16k, e.g. opus:12k, opus:64k",
    ),
    ("vorbis:<k>", "Ogg Vorbis, e.g. vorbis:64k"),
    (
        "amr-nb:<k>",
        "AMR-NB via sox: 4.75k 5.15k 5.9k 6.7k 7.4k 7.95k 10.2k 12.2k",
    ),
    (
        "amr-wb:<k>",
        "AMR-WB via sox: 6.6k 8.85k 12.65k 14.25k 15.85k 18.25k 19.85k 23.05k 23.85k",
    ),
    ("gsm", "GSM 06.10 full rate"),
    ("mulaw", "G.711 µ-law at 8 kHz"),
    (
        "resample:<k>",
        "to a rate and back, e.g. resample:8k, resample:22.05k",
    ),
    ("phone", "8 kHz, 300–3400 Hz band-pass, mono"),
    ("lowpass:<k>", "low-pass, e.g. lowpass:3.5k"),
    ("highpass:<hz>", "high-pass, e.g. highpass:500"),
    ("noise:<dB>", "white noise at an SNR, e.g. noise:20"),
    ("pink:<dB>", "pink noise at an SNR, e.g. pink:20"),
    ("gain:<dB>", "gain with clipping, e.g. gain:+10, gain:-10"),
    ("crop:<s>s", "random excerpt, e.g. crop:10s"),
    ("cut:<s>s", "remove a chunk every 5 s, e.g. cut:1s"),
    (
        "insert:<s>s",
        "insert other audio in the middle half, e.g. insert:2s",
    ),
    ("speed:<x>", "playback speed, e.g. speed:1.05"),
    ("tempo:<x>", "tempo with pitch kept, e.g. tempo:0.95"),
    ("pitch:<cents>", "pitch with tempo kept, e.g. pitch:+100"),
    ("echo", "150 ms echo, 8 dB down"),
    (
        "reverb",
        "room reverb (synthetic impulse response, RT60 0.5 s)",
    ),
    (
        "room:<rt60>s@<d>m",
        "re-recorded in a simulated room (pyroomacoustics), e.g. room:0.5s@1.5m",
    ),
    (
        "air[:<dB>]",
        "over-the-air re-recording, noise SNR default 30, e.g. air:20",
    ),
    (
        "mix:<dB>",
        "mixed with other audio that many dB below, e.g. mix:10",
    ),
];

const AMR_NB_MODES: [f32; 8] = [4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2];
const AMR_WB_MODES: [f32; 9] = [6.6, 8.85, 12.65, 14.25, 15.85, 18.25, 19.85, 23.05, 23.85];

/// A chain of attacks applied left to right.
#[derive(Clone, Debug, PartialEq)]
pub struct Chain(pub Vec<Attack>);

impl Chain {
    /// The excerpt length this chain asks for, if it crops (the last crop wins).
    pub fn crop_s(&self) -> Option<f32> {
        self.0.iter().rev().find_map(|a| match a {
            Attack::Crop { seconds } => Some(*seconds),
            _ => None,
        })
    }

    /// The attack family and strength, for plots: `("mp3", 128.0)`. `None` for
    /// chains of several attacks and for attacks without a parameter.
    pub fn family(&self) -> Option<(&'static str, f64)> {
        let [only] = self.0.as_slice() else {
            return None;
        };
        Some(match *only {
            Attack::Mp3 { kbps } => ("mp3 (kbit/s)", kbps as f64),
            Attack::Aac { kbps } => ("aac (kbit/s)", kbps as f64),
            Attack::Opus { kbps } => ("opus (kbit/s)", kbps as f64),
            Attack::AmrNb { kbps } => ("amr-nb (kbit/s)", kbps as f64),
            Attack::AmrWb { kbps } => ("amr-wb (kbit/s)", kbps as f64),
            Attack::Resample { hz } => ("resample (kHz)", hz as f64 / 1000.0),
            Attack::WhiteNoise { snr_db } => ("white noise (SNR dB)", snr_db as f64),
            Attack::PinkNoise { snr_db } => ("pink noise (SNR dB)", snr_db as f64),
            Attack::Crop { seconds } => ("crop (s)", seconds as f64),
            Attack::Speed { factor } => ("speed (factor)", factor as f64),
            Attack::Tempo { factor } => ("tempo (factor)", factor as f64),
            Attack::Pitch { cents } => ("pitch (cents)", cents as f64),
            Attack::Gain { db } => ("gain (dB)", db as f64),
            _ => return None,
        })
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attack::Clean => write!(f, "clean"),
            Attack::Mp3 { kbps } => write!(f, "mp3:{kbps}k"),
            Attack::Aac { kbps } => write!(f, "aac:{kbps}k"),
            Attack::Opus { kbps } => write!(f, "opus:{kbps}k"),
            Attack::Vorbis { kbps } => write!(f, "vorbis:{kbps}k"),
            Attack::AmrNb { kbps } => write!(f, "amr-nb:{kbps}k"),
            Attack::AmrWb { kbps } => write!(f, "amr-wb:{kbps}k"),
            Attack::Gsm => write!(f, "gsm"),
            Attack::Mulaw => write!(f, "mulaw"),
            Attack::Resample { hz } => write!(f, "resample:{}k", *hz as f32 / 1000.0),
            Attack::Phone => write!(f, "phone"),
            Attack::Lowpass { hz } => write!(f, "lowpass:{}k", hz / 1000.0),
            Attack::Highpass { hz } => write!(f, "highpass:{hz}"),
            Attack::WhiteNoise { snr_db } => write!(f, "noise:{snr_db}"),
            Attack::PinkNoise { snr_db } => write!(f, "pink:{snr_db}"),
            Attack::Gain { db } => write!(f, "gain:{db:+}"),
            Attack::Crop { seconds } => write!(f, "crop:{seconds}s"),
            Attack::RemoveChunks { seconds } => write!(f, "cut:{seconds}s"),
            Attack::Insert { seconds } => write!(f, "insert:{seconds}s"),
            Attack::Speed { factor } => write!(f, "speed:{factor}"),
            Attack::Tempo { factor } => write!(f, "tempo:{factor}"),
            Attack::Pitch { cents } => write!(f, "pitch:{cents:+}"),
            Attack::Echo => write!(f, "echo"),
            Attack::Reverb => write!(f, "reverb"),
            Attack::OverTheAir { snr_db } => write!(f, "air:{snr_db}"),
            Attack::Room { rt60_s, distance_m } => write!(f, "room:{rt60_s}s@{distance_m}m"),
            Attack::Mix { db_below } => write!(f, "mix:{db_below}"),
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// Why an attack name did not parse; the message lists the valid names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAttack(pub String);

impl fmt::Display for BadAttack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = CATALOGUE.iter().map(|(n, _)| *n).collect();
        write!(f, "{}; valid attacks: {}", self.0, names.join(" "))
    }
}

impl std::error::Error for BadAttack {}

/// `128k` → 128.0; `22.05k` → 22.05 (kilo units, the `k` required).
fn kilo(text: &str) -> Option<f32> {
    text.strip_suffix('k')?
        .parse()
        .ok()
        .filter(|v: &f32| *v > 0.0)
}

fn number(text: &str) -> Option<f32> {
    text.strip_prefix('+')
        .unwrap_or(text)
        .parse()
        .ok()
        .filter(|v: &f32| v.is_finite())
}

impl FromStr for Attack {
    type Err = BadAttack;

    fn from_str(text: &str) -> Result<Self, BadAttack> {
        let text = text.trim();
        let (name, param) = match text.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (text, None),
        };
        let bad = |why: &str| BadAttack(format!("attack `{text}`: {why}"));
        let need = |p: Option<&'_ str>| -> Result<String, BadAttack> {
            p.map(str::to_string)
                .ok_or_else(|| bad("needs a parameter"))
        };
        let rate_k = |p: Option<&str>| -> Result<f32, BadAttack> {
            kilo(&need(p)?).ok_or_else(|| bad("expected a rate like 64k"))
        };
        let plain = |p: Option<&str>| -> Result<f32, BadAttack> {
            number(&need(p)?).ok_or_else(|| bad("expected a number"))
        };
        let seconds = |p: Option<&str>| -> Result<f32, BadAttack> {
            need(p)?
                .strip_suffix('s')
                .and_then(number)
                .filter(|s| *s > 0.0)
                .ok_or_else(|| bad("expected seconds like 10s"))
        };
        let no_param = |a: Attack| match param {
            None => Ok(a),
            Some(_) => Err(bad("takes no parameter")),
        };
        let mode = |kbps: f32, modes: &[f32]| {
            modes
                .iter()
                .find(|m| (**m - kbps).abs() < 1e-3)
                .copied()
                .ok_or_else(|| bad("not one of the codec's modes"))
        };
        Ok(match name {
            "clean" => no_param(Attack::Clean)?,
            "mp3" => Attack::Mp3 {
                kbps: rate_k(param)?,
            },
            "aac" => Attack::Aac {
                kbps: rate_k(param)?,
            },
            "opus" => Attack::Opus {
                kbps: rate_k(param)?,
            },
            "vorbis" => Attack::Vorbis {
                kbps: rate_k(param)?,
            },
            "amr-nb" => Attack::AmrNb {
                kbps: mode(rate_k(param)?, &AMR_NB_MODES)?,
            },
            "amr-wb" => Attack::AmrWb {
                kbps: mode(rate_k(param)?, &AMR_WB_MODES)?,
            },
            "gsm" => no_param(Attack::Gsm)?,
            "mulaw" => no_param(Attack::Mulaw)?,
            "resample" => {
                let khz = rate_k(param)?;
                if !(4.0..=192.0).contains(&khz) {
                    return Err(bad("rate must lie between 4k and 192k"));
                }
                Attack::Resample {
                    hz: (khz * 1000.0).round() as u32,
                }
            }
            "phone" => no_param(Attack::Phone)?,
            "lowpass" => Attack::Lowpass {
                hz: rate_k(param)? * 1000.0,
            },
            "highpass" => Attack::Highpass {
                hz: plain(param)?.max(1.0),
            },
            "noise" => Attack::WhiteNoise {
                snr_db: plain(param)?,
            },
            "pink" => Attack::PinkNoise {
                snr_db: plain(param)?,
            },
            "gain" => Attack::Gain { db: plain(param)? },
            "crop" => Attack::Crop {
                seconds: seconds(param)?,
            },
            "cut" => {
                let s = seconds(param)?;
                if s >= 5.0 {
                    return Err(bad("chunks must be shorter than 5 s"));
                }
                Attack::RemoveChunks { seconds: s }
            }
            "insert" => Attack::Insert {
                seconds: seconds(param)?,
            },
            "speed" | "tempo" => {
                let factor = plain(param)?;
                if !(0.5..=2.0).contains(&factor) {
                    return Err(bad("factor must lie between 0.5 and 2"));
                }
                if name == "speed" {
                    Attack::Speed { factor }
                } else {
                    Attack::Tempo { factor }
                }
            }
            "pitch" => {
                let cents = plain(param)?;
                if cents.abs() > 1200.0 {
                    return Err(bad("at most ±1200 cents"));
                }
                Attack::Pitch { cents }
            }
            "echo" => no_param(Attack::Echo)?,
            "reverb" => no_param(Attack::Reverb)?,
            "room" => {
                let p = need(param)?;
                let (rt60, distance) = p
                    .split_once('@')
                    .ok_or_else(|| bad("write room:<RT60>s@<distance>m, e.g. room:0.5s@1.5m"))?;
                let rt60_s = number(rt60.trim_end_matches('s'))
                    .filter(|v| (0.1..=2.0).contains(v))
                    .ok_or_else(|| bad("RT60 must be 0.1 to 2 s"))?;
                let distance_m = number(distance.trim_end_matches('m'))
                    .filter(|v| (0.3..=10.0).contains(v))
                    .ok_or_else(|| bad("the distance must be 0.3 to 10 m"))?;
                Attack::Room { rt60_s, distance_m }
            }
            "air" => Attack::OverTheAir {
                snr_db: match param {
                    Some(_) => plain(param)?,
                    None => 30.0,
                },
            },
            "mix" => Attack::Mix {
                db_below: plain(param)?,
            },
            _ => return Err(bad("unknown name")),
        })
    }
}

impl FromStr for Chain {
    type Err = BadAttack;

    fn from_str(text: &str) -> Result<Self, BadAttack> {
        let steps: Vec<Attack> = text
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        if steps.is_empty() {
            return Err(BadAttack("empty attack chain".into()));
        }
        Ok(Chain(steps))
    }
}

/// Parses a list of chains separated by spaces or semicolons
/// (`"clean mp3:128k opus:16k,mp3:128k"`).
pub fn parse_list(text: &str) -> Result<Vec<Chain>, BadAttack> {
    text.split(|c: char| c.is_whitespace() || c == ';')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

/// What an attack needs besides the audio.
pub struct Context<'a> {
    /// The external programs.
    pub tools: &'a Tools,
    /// A scratch directory for codec files.
    pub scratch: &'a Path,
    /// Other audio, for `mix`.
    pub interferer: &'a Audio,
    /// The seeded stream for this chain on this file.
    pub rng: &'a mut ChaCha20Rng,
    /// The cuts and insertions made so far, in the current audio's seconds:
    /// the truth a tamper map is scored against. Start it empty.
    pub edits: Vec<TrueEdit>,
}

/// Which way an attack edited the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum EditKind {
    /// Original audio taken out: a point in the attacked audio.
    Removed,
    /// Other audio put in: a stretch of the attacked audio.
    Inserted,
}

/// One edit an attack made, in the attacked audio's timeline.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct TrueEdit {
    /// Removal or insertion.
    pub kind: EditKind,
    /// Start, seconds (where the cut falls, for a removal).
    pub start_s: f64,
    /// End, seconds (equal to the start for a removal).
    pub end_s: f64,
}

/// Carries earlier edits through an attack that maps time `t` (seconds) of
/// its input to `map(t)` in its output, `output_s` long; edits that end up
/// outside the output are dropped, stretches partly outside are clipped.
fn carry_edits(edits: &mut Vec<TrueEdit>, output_s: f64, map: impl Fn(f64) -> f64) {
    for e in edits.iter_mut() {
        e.start_s = map(e.start_s).clamp(0.0, output_s);
        e.end_s = map(e.end_s).clamp(0.0, output_s);
    }
    edits.retain(|e| match e.kind {
        EditKind::Removed => e.start_s > 0.0 && e.start_s < output_s,
        EditKind::Inserted => e.end_s > e.start_s,
    });
}

impl Chain {
    /// Applies the chain to `audio`.
    pub fn apply(&self, audio: &Audio, cx: &mut Context<'_>) -> Result<Audio, BenchError> {
        let mut current = audio.clone();
        for attack in &self.0 {
            let before_s = current.duration_s();
            current = attack.apply(&current, cx)?;
            if !matches!(
                attack,
                Attack::Crop { .. } | Attack::RemoveChunks { .. } | Attack::Insert { .. }
            ) {
                // Speed and tempo scale time; codecs and effects keep it
                // (up to a few milliseconds of codec delay).
                let scale = current.duration_s() / before_s.max(1e-9);
                carry_edits(&mut cx.edits, current.duration_s(), |t| t * scale);
            }
            if current.frames() == 0 {
                return Err(BenchError::Attack(format!("{attack} left no audio")));
            }
        }
        Ok(current)
    }
}

impl Attack {
    /// Applies this one attack to `audio`.
    pub fn apply(&self, audio: &Audio, cx: &mut Context<'_>) -> Result<Audio, BenchError> {
        let rate = audio.rate;
        let tools = cx.tools;
        let dir = cx.scratch;
        // Codecs: encode from a float WAV, decode back to the input's rate.
        let ff_codec = |ext: &str, args: &[&str], mono: bool| -> Result<Audio, BenchError> {
            let mut encode: Vec<String> = Vec::new();
            if mono {
                encode.extend(["-ac".into(), "1".into()]);
            }
            encode.extend(args.iter().map(|s| s.to_string()));
            tools.ffmpeg_round_trip(audio, dir, ext, &encode, rate)
        };
        Ok(match *self {
            Attack::Clean => audio.clone(),
            Attack::Mp3 { kbps } => {
                // LAME refuses high bit rates at low sample rates: encode those at 44.1 kHz.
                let mut args = vec![
                    "-c:a".to_string(),
                    "libmp3lame".into(),
                    "-b:a".into(),
                    format!("{kbps}k"),
                ];
                if rate < 32_000 && kbps > 64.0 {
                    args.extend(["-ar".into(), "44100".into()]);
                }
                tools.ffmpeg_round_trip(audio, dir, "mp3", &args, rate)?
            }
            Attack::Aac { kbps } => {
                // AAC caps the bit rate per channel by the sample rate (48 kbit/s
                // at 8 kHz): low-rate recordings are encoded at 44.1 kHz.
                let bitrate = format!("{kbps}k");
                let mut args = vec!["-c:a", "aac", "-b:a", &bitrate];
                if rate < 32_000 {
                    args.extend(["-ar", "44100"]);
                }
                ff_codec("m4a", &args, false)?
            }
            Attack::Opus { kbps } => {
                let voice = kbps <= 16.0;
                let bitrate = format!("{kbps}k");
                // libopus runs at 48 kHz (it takes 8–48 kHz, not 22.05 or 44.1).
                let mut args = vec!["-ar", "48000", "-c:a", "libopus", "-b:a", &bitrate];
                if voice {
                    args.extend(["-application", "voip"]);
                }
                ff_codec("opus", &args, voice)?
            }
            Attack::Vorbis { kbps } => {
                // libvorbis has no low-rate modes at 8–16 kHz: encode at 44.1 kHz there.
                let bitrate = format!("{kbps}k");
                let mut args = vec!["-c:a", "libvorbis", "-b:a", &bitrate];
                if rate < 22_050 {
                    args.extend(["-ar", "44100"]);
                }
                ff_codec("ogg", &args, false)?
            }
            Attack::AmrNb { kbps } => {
                let mode = AMR_NB_MODES.iter().position(|m| *m == kbps).unwrap_or(7);
                tools.sox_codec(audio, dir, "amr-nb", 8_000, &["-C", &mode.to_string()])?
            }
            Attack::AmrWb { kbps } => {
                if !tools.has_amr_wb_encoder() {
                    return Err(BenchError::Attack(
                        "no AMR-WB encoder on this machine (Debian's sox and ffmpeg are built without one)".into(),
                    ));
                }
                let mode = AMR_WB_MODES.iter().position(|m| *m == kbps).unwrap_or(8);
                tools.sox_codec(audio, dir, "amr-wb", 16_000, &["-C", &mode.to_string()])?
            }
            Attack::Gsm => tools.sox_codec(audio, dir, "gsm", 8_000, &[])?,
            Attack::Mulaw => ff_codec("wav", &["-ar", "8000", "-c:a", "pcm_mulaw"], true)?,
            Attack::Resample { hz } => {
                let there = tools.sox_effect(audio, dir, &["rate", "-v", &hz.to_string()], None)?;
                tools.sox_effect(&there, dir, &["rate", "-v", &rate.to_string()], None)?
            }
            Attack::Phone => {
                let narrow = tools.sox_effect(
                    audio,
                    dir,
                    &["rate", "-v", "8000", "sinc", "300-3400"],
                    Some(1),
                )?;
                tools.sox_effect(&narrow, dir, &["rate", "-v", &rate.to_string()], None)?
            }
            Attack::Lowpass { hz } => {
                tools.sox_effect(audio, dir, &["sinc", &format!("-{hz}")], None)?
            }
            Attack::Highpass { hz } => {
                tools.sox_effect(audio, dir, &["sinc", &format!("{hz}")], None)?
            }
            Attack::WhiteNoise { snr_db } => add_noise(audio, snr_db, false, cx.rng),
            Attack::PinkNoise { snr_db } => add_noise(audio, snr_db, true, cx.rng),
            Attack::Gain { db } => {
                map_samples(audio, |x| (x * 10f32.powf(db / 20.0)).clamp(-1.0, 1.0))
            }
            Attack::Crop { seconds } => crop_tracking(audio, seconds as f64, cx),
            Attack::RemoveChunks { seconds } => {
                let (out, chunks) = remove_chunks(audio, seconds as f64, cx.rng);
                let rate = rate as f64;
                let chunks: Vec<(f64, f64)> = chunks
                    .iter()
                    .map(|&(at, len)| (at as f64 / rate, len as f64 / rate))
                    .collect();
                // A time inside a chunk lands where the chunk was.
                let map = |t: f64| {
                    t - chunks
                        .iter()
                        .map(|&(at, len)| (t - at).clamp(0.0, len))
                        .sum::<f64>()
                };
                carry_edits(&mut cx.edits, out.duration_s(), map);
                for &(at, _) in &chunks {
                    let point = map(at);
                    // Adjacent chunks are one cut.
                    if !cx
                        .edits
                        .iter()
                        .any(|e| e.kind == EditKind::Removed && (e.start_s - point).abs() < 1e-6)
                    {
                        cx.edits.push(TrueEdit {
                            kind: EditKind::Removed,
                            start_s: point,
                            end_s: point,
                        });
                    }
                }
                // Cuts at the very start or end leave nothing to see.
                carry_edits(&mut cx.edits, out.duration_s(), |t| t);
                cx.edits.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
                out
            }
            Attack::Insert { seconds } => {
                let (out, at) = insert(audio, cx.interferer, seconds as f64, cx.rng, tools, dir)?;
                let at_s = at as f64 / rate as f64;
                let len_s = out.duration_s() - audio.duration_s();
                carry_edits(&mut cx.edits, out.duration_s(), |t| {
                    if t < at_s {
                        t
                    } else {
                        t + len_s
                    }
                });
                cx.edits.push(TrueEdit {
                    kind: EditKind::Inserted,
                    start_s: at_s,
                    end_s: at_s + len_s,
                });
                cx.edits.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
                out
            }
            Attack::Speed { factor } => {
                // sox `speed` resamples (tempo and pitch together); `rate` brings
                // the result back to the input's rate.
                tools.sox_effect(
                    audio,
                    dir,
                    &[
                        "speed",
                        &factor.to_string(),
                        "rate",
                        "-v",
                        &rate.to_string(),
                    ],
                    None,
                )?
            }
            Attack::Tempo { factor } => {
                tools.sox_effect(audio, dir, &["tempo", &factor.to_string()], None)?
            }
            Attack::Pitch { cents } => tools.sox_effect(
                audio,
                dir,
                &["pitch", &cents.to_string(), "rate", "-v", &rate.to_string()],
                None,
            )?,
            Attack::Echo => echo(audio, 0.150, -8.0),
            Attack::Reverb => {
                let ir = room_response(rate, 0.5, cx.rng);
                convolve(audio, &ir)
            }
            Attack::OverTheAir { snr_db } => {
                // Band edges stay below Nyquist for low-rate recordings.
                let top = |hz: f32| (hz.min(0.45 * rate as f32)).round();
                let speaker_band = format!("150-{}", top(7000.0));
                let mic_band = format!("100-{}", top(8000.0));
                let speaker = tools.sox_effect(audio, dir, &["sinc", &speaker_band], Some(1))?;
                let saturated = map_samples(&speaker, |x| (1.5 * x).tanh() / 1.5);
                let ir = room_response(rate, 0.3, cx.rng);
                let room = convolve(&saturated, &ir);
                let mic = tools.sox_effect(&room, dir, &["sinc", &mic_band], None)?;
                add_noise(&mic, snr_db, true, cx.rng)
            }
            Attack::Room { rt60_s, distance_m } => {
                let top = |hz: f32| (hz.min(0.45 * rate as f32)).round();
                let speaker_band = format!("150-{}", top(7000.0));
                let mic_band = format!("100-{}", top(7000.0));
                let speaker = tools.sox_effect(audio, dir, &["sinc", &speaker_band], Some(1))?;
                let ir = crate::acoustics::shoebox_response(
                    rate,
                    rt60_s,
                    distance_m,
                    cx.rng.next_u64(),
                    dir,
                )?;
                let room = convolve(&speaker, &ir);
                let mic = tools.sox_effect(&room, dir, &["sinc", &mic_band], None)?;
                add_noise(&mic, 20.0, true, cx.rng)
            }
            Attack::Mix { db_below } => mix(audio, cx.interferer, db_below, tools, dir)?,
        })
    }
}

/// A uniform draw in [0, 1) from the top 53 bits of the stream.
pub fn unit(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal draw (Box–Muller on two uniform draws).
pub(crate) fn gaussian(rng: &mut ChaCha20Rng) -> f64 {
    let u1 = unit(rng).max(1e-300);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn map_samples(audio: &Audio, f: impl Fn(f32) -> f32) -> Audio {
    Audio {
        channels: audio
            .channels
            .iter()
            .map(|c| c.iter().map(|&x| f(x)).collect())
            .collect(),
        ..audio.clone()
    }
}

fn rms(audio: &Audio) -> f64 {
    let n = audio.channels.iter().map(Vec::len).sum::<usize>().max(1);
    let e: f64 = audio
        .channels
        .iter()
        .flatten()
        .map(|&x| (x as f64) * (x as f64))
        .sum();
    (e / n as f64).sqrt()
}

/// Adds white or pink Gaussian noise at `snr_db` below the signal's RMS.
fn add_noise(audio: &Audio, snr_db: f32, pink: bool, rng: &mut ChaCha20Rng) -> Audio {
    let level = rms(audio) * 10f64.powf(-snr_db as f64 / 20.0);
    let channels = audio
        .channels
        .iter()
        .map(|c| {
            let mut noise: Vec<f64> = (0..c.len()).map(|_| gaussian(rng)).collect();
            if pink {
                pinken(&mut noise);
            }
            let noise_rms = (noise.iter().map(|v| v * v).sum::<f64>() / noise.len().max(1) as f64)
                .sqrt()
                .max(1e-12);
            c.iter()
                .zip(&noise)
                .map(|(&x, &n)| (x as f64 + n * level / noise_rms) as f32)
                .collect()
        })
        .collect();
    Audio {
        channels,
        ..audio.clone()
    }
}

/// Turns white noise pink (−3 dB per octave) with Paul Kellet's economy
/// filter, accurate to ±0.5 dB above ~10 Hz at the usual rates.
fn pinken(noise: &mut [f64]) {
    let (mut b0, mut b1, mut b2) = (0.0, 0.0, 0.0);
    for v in noise.iter_mut() {
        let white = *v;
        b0 = 0.99765 * b0 + white * 0.0990460;
        b1 = 0.96300 * b1 + white * 0.2965164;
        b2 = 0.57000 * b2 + white * 1.0526913;
        *v = b0 + b1 + b2 + white * 0.1848;
    }
}

/// An excerpt of `seconds` at a random offset (the whole input if shorter).
pub fn crop(audio: &Audio, seconds: f64, rng: &mut ChaCha20Rng) -> Audio {
    excerpt(audio, seconds, unit(rng))
}

/// [`crop`], carrying the context's edits onto the excerpt's timeline.
pub fn crop_tracking(audio: &Audio, seconds: f64, cx: &mut Context<'_>) -> Audio {
    let fraction = unit(cx.rng);
    let (start, len) = excerpt_range(audio, seconds, fraction);
    let start_s = start as f64 / audio.rate as f64;
    carry_edits(&mut cx.edits, len as f64 / audio.rate as f64, |t| {
        t - start_s
    });
    excerpt(audio, seconds, fraction)
}

/// First sample and length of [`excerpt`]'s window.
fn excerpt_range(audio: &Audio, seconds: f64, fraction: f64) -> (usize, usize) {
    let len = ((seconds * audio.rate as f64).round() as usize).min(audio.frames());
    let start = ((audio.frames() - len) as f64 * fraction) as usize;
    (start, len)
}

/// An excerpt of `seconds` starting `fraction` (0–1) of the way into the
/// room the input leaves (the whole input if shorter).
pub fn excerpt(audio: &Audio, seconds: f64, fraction: f64) -> Audio {
    let (start, len) = excerpt_range(audio, seconds, fraction);
    Audio {
        channels: audio
            .channels
            .iter()
            .map(|c| c[start..start + len].to_vec())
            .collect(),
        ..audio.clone()
    }
}

/// Removes one chunk of `seconds` from every 5 s stretch, at a random place
/// in it; also returns each chunk's first sample and length (in the input).
fn remove_chunks(
    audio: &Audio,
    seconds: f64,
    rng: &mut ChaCha20Rng,
) -> (Audio, Vec<(usize, usize)>) {
    let period = 5 * audio.rate as usize;
    let chunk = (seconds * audio.rate as f64).round() as usize;
    let mut keep = vec![true; audio.frames()];
    let mut chunks = Vec::new();
    for start in (0..audio.frames()).step_by(period) {
        let room = period.saturating_sub(chunk);
        let at = start + (room as f64 * unit(rng)) as usize;
        for k in keep.iter_mut().skip(at).take(chunk) {
            *k = false;
        }
        chunks.push((at, chunk.min(audio.frames().saturating_sub(at))));
    }
    let out = Audio {
        channels: audio
            .channels
            .iter()
            .map(|c| {
                c.iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(x, _)| *x)
                    .collect()
            })
            .collect(),
        ..audio.clone()
    };
    (out, chunks)
}

fn echo(audio: &Audio, delay_s: f64, level_db: f32) -> Audio {
    let delay = (delay_s * audio.rate as f64).round() as usize;
    let gain = 10f32.powf(level_db / 20.0);
    Audio {
        channels: audio
            .channels
            .iter()
            .map(|c| {
                (0..c.len())
                    .map(|i| c[i] + if i >= delay { gain * c[i - delay] } else { 0.0 })
                    .collect()
            })
            .collect(),
        ..audio.clone()
    }
}

/// `other` brought to `audio`'s rate and folded to mono, with its RMS level;
/// an error naming `attack` if it is empty.
fn other_source(
    audio: &Audio,
    other: &Audio,
    attack: &str,
    tools: &Tools,
    dir: &Path,
) -> Result<(Vec<f32>, f64), BenchError> {
    let other = if other.rate == audio.rate {
        other.clone()
    } else {
        tools.sox_effect(other, dir, &["rate", "-v", &audio.rate.to_string()], None)?
    };
    let source: Vec<f32> = downmix(&other);
    if source.is_empty() {
        return Err(BenchError::Attack(format!(
            "{attack}: the other audio is empty"
        )));
    }
    Ok((source, rms(&other)))
}

/// Inserts `seconds` of `other` (brought to the same rate and level, looped,
/// channels folded to match) at a random point in the middle half of `audio`;
/// also returns that point (a sample index).
fn insert(
    audio: &Audio,
    other: &Audio,
    seconds: f64,
    rng: &mut ChaCha20Rng,
    tools: &Tools,
    dir: &Path,
) -> Result<(Audio, usize), BenchError> {
    let (source, other_rms) = other_source(audio, other, "insert", tools, dir)?;
    let gain = (rms(audio) / other_rms.max(1e-12)) as f32;
    let len = (seconds * audio.rate as f64).round() as usize;
    let at = ((0.25 + 0.5 * unit(rng)) * audio.frames() as f64) as usize;
    let out = Audio {
        channels: audio
            .channels
            .iter()
            .map(|c| {
                let mut out = Vec::with_capacity(c.len() + len);
                out.extend_from_slice(&c[..at]);
                out.extend(source.iter().cycle().take(len).map(|&o| o * gain));
                out.extend_from_slice(&c[at..]);
                out
            })
            .collect(),
        ..audio.clone()
    };
    Ok((out, at))
}

/// Mixes `other` (brought to the same rate, looped, channels folded to match)
/// into `audio`, `db_below` dB below it in RMS.
fn mix(
    audio: &Audio,
    other: &Audio,
    db_below: f32,
    tools: &Tools,
    dir: &Path,
) -> Result<Audio, BenchError> {
    let (source, other_rms) = other_source(audio, other, "mix", tools, dir)?;
    let gain = rms(audio) * 10f64.powf(-db_below as f64 / 20.0) / other_rms.max(1e-12);
    Ok(Audio {
        channels: audio
            .channels
            .iter()
            .map(|c| {
                c.iter()
                    .zip(source.iter().cycle())
                    .map(|(&x, &o)| x + (o as f64 * gain) as f32)
                    .collect()
            })
            .collect(),
        ..audio.clone()
    })
}

/// Mean of the channels.
fn downmix(audio: &Audio) -> Vec<f32> {
    let n = audio.channels.len().max(1) as f32;
    (0..audio.frames())
        .map(|i| audio.channels.iter().map(|c| c[i]).sum::<f32>() / n)
        .collect()
}

#[cfg(test)]
#[path = "attack_tests.rs"]
mod tests;
