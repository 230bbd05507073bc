//! The fallback decoder: ffmpeg, for the formats symphonia and libopus do
//! not read. Leaks arrive as phone recordings (AMR-NB in `.amr` or `.3gp`),
//! PBX recordings (GSM 06.10 in WAV), Sun `.au` files and old `.wma`.
//!
//! `ffprobe` names the first audio stream's container, codec, rate and
//! channels; `ffmpeg` decodes that stream at its native rate and channels
//! to 32-bit float PCM on a pipe. AMR is the exception: ffmpeg's own AMR
//! decoder fails on the comfort-noise frames phones and sox write ("not yet
//! implemented", "corrupt bitstream"), and the gaps it leaves lost a mark
//! that sox, decoding with the reference codec library, keeps. So AMR goes
//! through sox when sox reads it (ffmpeg only lifting the stream out of a
//! `.3gp` or `.mp4` first), and through ffmpeg otherwise. Nothing is written to disk, and the
//! reader holds one chunk at a time. The fallback is taken only when the
//! file is one symphonia cannot read. A damaged file in a format symphonia
//! reads keeps symphonia's error: ffmpeg would often decode its ruins
//! without a word.

use std::io::Read;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::AudioError;

/// Frames per chunk handed on, as the WAV block reader does.
const CHUNK_FRAMES: usize = 65_536;
/// The Debian package that provides `ffmpeg` and `ffprobe`.
const PACKAGE: &str = "ffmpeg";

/// Containers symphonia reads, as ffprobe names them.
const SYMPHONIA_FORMATS: &[&str] = &[
    "wav",
    "flac",
    "mp3",
    "ogg",
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "aiff",
    "aac",
    "caf",
];

/// What ffprobe says of a file's first audio stream.
#[derive(Clone, Debug)]
pub(crate) struct Probe {
    /// Container, as ffprobe names it (`amr`, `wav`, `asf`, …).
    pub format: String,
    /// Codec (`amr_nb`, `gsm_ms`, `wmav2`, `pcm_mulaw`, …).
    pub codec: String,
    /// Sample rate, Hz.
    pub rate: u32,
    /// Channels.
    pub channels: usize,
}

impl Probe {
    /// Whether symphonia (with libopus) reads this container and codec,
    /// so that its failure on the file means the file is damaged.
    pub fn symphonia_reads(&self) -> bool {
        let codec = self.codec.as_str();
        let codec_read = (codec.starts_with("pcm_")
            && !matches!(codec, "pcm_s8_planar" | "pcm_dvd" | "pcm_bluray"))
            || matches!(
                codec,
                "flac" | "mp3" | "aac" | "vorbis" | "opus" | "alac" | "adpcm_ima_wav" | "adpcm_ms"
            );
        codec_read && SYMPHONIA_FORMATS.contains(&self.format.as_str())
    }
}

fn missing(program: &str, name: &str, why: &AudioError) -> AudioError {
    AudioError::MissingTool {
        path: name.to_string(),
        detail: format!(
            "{}; formats such as AMR, GSM WAV and WMA are read through {program}, which is not installed (Debian package {PACKAGE})",
            detail_of(why)
        ),
    }
}

fn detail_of(error: &AudioError) -> String {
    match error {
        AudioError::Unsupported { detail, .. } | AudioError::Corrupt { detail, .. } => {
            detail.clone()
        }
        other => other.to_string(),
    }
}

/// Probes `path` with ffprobe. `Ok(None)` when it finds no audio stream;
/// an error (built on `why`, symphonia's) when ffprobe is missing.
pub(crate) fn probe(
    path: &Path,
    name: &str,
    why: &AudioError,
) -> Result<Option<Probe>, AudioError> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0"])
        .args([
            "-show_entries",
            "stream=codec_name,sample_rate,channels:format=format_name",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(missing("ffprobe", name, why))
        }
        Err(source) => {
            return Err(AudioError::Open {
                path: name.to_string(),
                source,
            })
        }
    };
    if !output.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "N/A")
    };
    let (Some(codec), Some(rate), Some(channels), Some(format)) = (
        field("codec_name"),
        field("sample_rate").and_then(|r| r.parse().ok()),
        field("channels").and_then(|c| c.parse().ok()),
        field("format_name"),
    ) else {
        return Ok(None);
    };
    Ok(Some(Probe {
        format: format.to_string(),
        codec: codec.to_string(),
        rate,
        channels,
    }))
}

/// Which programs decode a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decoder {
    /// ffmpeg alone.
    Ffmpeg,
    /// sox's AMR reader, fed by ffmpeg when the AMR is in another container.
    SoxAmr,
}

impl Decoder {
    /// The decoders to try for `probe`, best first.
    pub fn for_stream(probe: &Probe) -> &'static [Decoder] {
        if matches!(probe.codec.as_str(), "amr_nb" | "amr_wb") {
            &[Decoder::SoxAmr, Decoder::Ffmpeg]
        } else {
            &[Decoder::Ffmpeg]
        }
    }
}

/// A running decoder (one or two processes) writing one file's first
/// audio stream as `f32` to a pipe.
pub(crate) struct Stream {
    /// The process whose output is read, last; any feeding it, first.
    children: Vec<Child>,
    child: Child,
    stdout: ChildStdout,
    /// What ffmpeg says on its standard error, gathered on a thread so that
    /// it never blocks on a full pipe.
    messages: Option<std::thread::JoinHandle<String>>,
    channels: usize,
    bytes: Vec<u8>,
    finished: bool,
    /// Why decoding stopped early, once it has.
    pub ended_early: Option<String>,
}

impl Stream {
    /// Starts decoding `path` as `probe` describes it, with `decoder`.
    pub fn spawn(
        path: &Path,
        name: &str,
        probe: &Probe,
        decoder: Decoder,
    ) -> Result<Stream, AudioError> {
        let mut children = Vec::new();
        let mut command = match decoder {
            Decoder::Ffmpeg => {
                let mut c = Command::new("ffmpeg");
                c.args(["-v", "error", "-nostdin", "-i"])
                    .arg(path)
                    .args([
                        "-map",
                        "0:a:0",
                        "-vn",
                        "-f",
                        "f32le",
                        "-acodec",
                        "pcm_f32le",
                        "-",
                    ])
                    .stdin(Stdio::null());
                c
            }
            Decoder::SoxAmr => {
                let kind = if probe.codec == "amr_wb" {
                    "amr-wb"
                } else {
                    "amr-nb"
                };
                let mut c = Command::new("sox");
                c.args(["-q", "-t", kind]);
                if probe.format == "amr" {
                    c.arg(path).stdin(Stdio::null());
                } else {
                    // Lifted out of its container as a raw AMR stream.
                    let mut remux = Command::new("ffmpeg")
                        .args(["-v", "error", "-nostdin", "-i"])
                        .arg(path)
                        .args(["-map", "0:a:0", "-vn", "-c:a", "copy", "-f", "amr", "-"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::null())
                        .spawn()
                        .map_err(|e| AudioError::Open {
                            path: name.to_string(),
                            source: e,
                        })?;
                    let feed = remux.stdout.take().expect("stdout is piped");
                    children.push(remux);
                    c.arg("-").stdin(Stdio::from(feed));
                }
                c.args(["-t", "raw", "-e", "floating-point", "-b", "32", "-L", "-"]);
                c
            }
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => AudioError::MissingTool {
                    path: name.to_string(),
                    detail: format!(
                        "{} audio is read through ffmpeg, which is not installed (Debian package {PACKAGE})",
                        probe.codec
                    ),
                },
                _ => AudioError::Open {
                    path: name.to_string(),
                    source: e,
                },
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let messages = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Ok(Stream {
            children,
            child,
            stdout,
            messages: Some(messages),
            channels: probe.channels,
            bytes: Vec::new(),
            finished: false,
            ended_early: None,
        })
    }

    /// The next planar chunk, `None` at the end. `read_any` says whether
    /// earlier chunks held samples (a failure after them is a damaged
    /// tail, noted; before them, an error).
    pub fn next_chunk(
        &mut self,
        name: &str,
        read_any: bool,
    ) -> Result<Option<Vec<Vec<f32>>>, AudioError> {
        if self.finished {
            return Ok(None);
        }
        let frame_bytes = 4 * self.channels;
        self.bytes.resize(CHUNK_FRAMES * frame_bytes, 0);
        let mut filled = 0;
        while filled < self.bytes.len() {
            match self.stdout.read(&mut self.bytes[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(AudioError::Open {
                        path: name.to_string(),
                        source,
                    })
                }
            }
        }
        let frames = filled / frame_bytes;
        if filled < self.bytes.len() {
            self.finish(name, read_any || frames > 0)?;
        }
        if frames == 0 {
            return Ok(None);
        }
        let mut planar = vec![Vec::with_capacity(frames); self.channels];
        for frame in self.bytes[..frames * frame_bytes].chunks_exact(frame_bytes) {
            for (c, sample) in frame.chunks_exact(4).enumerate() {
                planar[c].push(f32::from_le_bytes(sample.try_into().expect("4 bytes")));
            }
        }
        Ok(Some(planar))
    }

    /// At the end of the pipe: ffmpeg's verdict. A failure before any
    /// sample is the file's error; after some, a note.
    fn finish(&mut self, name: &str, read_any: bool) -> Result<(), AudioError> {
        self.finished = true;
        let status = self.child.wait().map_err(|source| AudioError::Open {
            path: name.to_string(),
            source,
        })?;
        for feeder in &mut self.children {
            let _ = feeder.wait();
        }
        let messages = self
            .messages
            .take()
            .and_then(|m| m.join().ok())
            .unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let last = messages
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("ffmpeg failed")
            .trim()
            .to_string();
        if read_any {
            self.ended_early = Some(format!(
                "ffmpeg stopped before the end of the file ({last}); it was read up to there"
            ));
            Ok(())
        } else {
            Err(AudioError::Corrupt {
                path: name.to_string(),
                detail: last,
            })
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if !self.finished {
            for child in self.children.iter_mut().chain([&mut self.child]) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
