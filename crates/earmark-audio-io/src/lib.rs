//! Audio files in and out.
//!
//! Owns: decoding WAV (16/24/32-bit integer and float), FLAC, MP3, AAC/M4A,
//! Ogg Vorbis and Opus (Ogg and WebM/Matroska) through symphonia, with Opus
//! packets decoded by libopus (symphonia 0.5 demuxes Opus but has no Opus
//! decoder); the formats they do not read (AMR-NB in `.amr` or `.3gp`, GSM
//! in WAV, `.au`, `.wma`) through an `ffmpeg` process (and for AMR `sox`)
//! streaming PCM on a pipe (see `ffmpeg.rs`: the only run-time programs
//! reading needs, and only for those); writing WAV (hound) and FLAC
//! (flacenc) at the input's rate,
//! channel count, length and, where the format allows, sample format.
//! Outputs are written to a temporary file in the target directory, synced and
//! renamed, so a crash never leaves a half-written file under the final name.
//!
//! Must not touch: watermarking, keys, the terminal. Samples leave this crate
//! as planar `f32` in [-1, 1].

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::Path;

mod ffmpeg;
mod mp4;

use symphonia::core::audio::{AudioBuffer, Signal};
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Longest input [`read`] takes into memory, in samples summed over channels
/// (about 4 hours of 48 kHz stereo, 5.5 GB as `f32`); [`AudioReader`] streams
/// and has no limit.
pub const MAX_TOTAL_SAMPLES: u64 = 1_400_000_000;
/// Most channels accepted.
pub const MAX_CHANNELS: usize = 32;
/// Sample rates accepted, Hz.
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 8_000..=192_000;
/// Opus always decodes at this rate, Hz.
const OPUS_RATE: u32 = 48_000;
/// Pre-skip assumed when an Opus stream's header cannot be read (libopus default), samples.
const DEFAULT_OPUS_PRE_SKIP: usize = 312;

/// Decoded audio: planar samples in [-1, 1].
#[derive(Clone, Debug)]
pub struct Audio {
    /// Sample rate, Hz.
    pub rate: u32,
    /// One vector per channel, all of equal length.
    pub channels: Vec<Vec<f32>>,
    /// How the samples were stored, so an output can keep the same format.
    pub sample_format: SampleFormat,
}

impl Audio {
    /// Length in samples per channel.
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Duration, seconds.
    pub fn duration_s(&self) -> f64 {
        self.frames() as f64 / self.rate as f64
    }
}

/// Sample storage of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleFormat {
    /// Signed integers of this many bits.
    Int(u16),
    /// 32-bit IEEE float.
    Float32,
}

/// Output container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// RIFF WAVE.
    Wav,
    /// Free Lossless Audio Codec.
    Flac,
}

impl Container {
    /// The container named by a path's extension (`.wav`, `.flac`).
    pub fn from_path(path: &Path) -> Result<Self, AudioError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("wav") => Ok(Container::Wav),
            Some("flac") => Ok(Container::Flac),
            other => Err(AudioError::UnsupportedOutput(
                other.unwrap_or("(none)").to_string(),
            )),
        }
    }
}

/// Why audio could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Open {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is empty or holds no samples.
    #[error("{0}: the file holds no audio samples")]
    Empty(String),
    /// The format or codec is not one earmark reads.
    #[error("{path}: unsupported or unrecognised audio format ({detail})")]
    Unsupported {
        /// The path.
        path: String,
        /// What was found.
        detail: String,
    },
    /// The data is damaged.
    #[error("{path}: corrupt or truncated audio ({detail})")]
    Corrupt {
        /// The path.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// Too long, too many channels, or an unsupported rate.
    #[error("{path}: {detail}")]
    Limits {
        /// The path.
        path: String,
        /// Which limit.
        detail: String,
    },
    /// Reading it needs a program that is not installed.
    #[error("{path}: {detail}")]
    MissingTool {
        /// The path.
        path: String,
        /// What is needed, and why.
        detail: String,
    },
    /// The path names a directory, device or pipe.
    #[error("{0}: not a regular file (a directory, device or pipe); give an audio file")]
    NotARegularFile(String),
    /// The output extension is not `.wav` or `.flac`.
    #[error("cannot write '.{0}' files: use .wav or .flac")]
    UnsupportedOutput(String),
    /// Writing failed.
    #[error("cannot write {path}: {detail}")]
    Write {
        /// The path.
        path: String,
        /// What went wrong.
        detail: String,
    },
}

impl AudioError {
    /// The same error, said of `path`: for a file read from a copy (the
    /// home's stored master) while the user gave another name.
    pub fn said_of(self, path: &Path) -> Self {
        let name = path.display().to_string();
        match self {
            AudioError::Open { source, .. } => AudioError::Open { path: name, source },
            AudioError::Empty(_) => AudioError::Empty(name),
            AudioError::Unsupported { detail, .. } => {
                AudioError::Unsupported { path: name, detail }
            }
            AudioError::Corrupt { detail, .. } => AudioError::Corrupt { path: name, detail },
            AudioError::Limits { detail, .. } => AudioError::Limits { path: name, detail },
            AudioError::MissingTool { detail, .. } => {
                AudioError::MissingTool { path: name, detail }
            }
            AudioError::NotARegularFile(_) => AudioError::NotARegularFile(name),
            other @ (AudioError::UnsupportedOutput(_) | AudioError::Write { .. }) => other,
        }
    }
}

/// Refuses anything but a regular file (following symlinks) before it is
/// opened: opening a FIFO blocks until someone writes to it, and a device
/// such as `/dev/zero` never ends.
pub fn check_regular_file(path: &Path) -> Result<(), AudioError> {
    let metadata = std::fs::metadata(path).map_err(|source| AudioError::Open {
        path: path.display().to_string(),
        source,
    })?;
    if metadata.is_file() {
        Ok(())
    } else {
        Err(AudioError::NotARegularFile(path.display().to_string()))
    }
}

/// Reads and decodes a whole audio file into memory.
pub fn read(path: &Path) -> Result<Audio, AudioError> {
    let mut reader = AudioReader::open(path)?;
    // Reserved up front when the container says how long it is, so that a
    // long recording is not copied as its buffers double (which held up to
    // twice its size at once). The hint is capped by what the file's bytes
    // could plausibly decode to, so a hostile header reserves little.
    let file_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    let channel_count = reader.channels().max(1) as u64;
    let reserve = reader
        .frames_hint
        .unwrap_or(0)
        .min(MAX_TOTAL_SAMPLES / channel_count)
        .min(file_bytes.saturating_mul(64) / channel_count) as usize;
    let mut channels = vec![Vec::with_capacity(reserve); reader.channels()];
    let mut total = 0u64;
    while let Some(chunk) = reader.next_chunk()? {
        total += (chunk[0].len() * chunk.len()) as u64;
        if total > MAX_TOTAL_SAMPLES {
            return Err(AudioError::Limits {
                path: path.display().to_string(),
                detail: format!(
                    "longer than the {MAX_TOTAL_SAMPLES} samples read into memory at most; \
                     embedding streams and has no such limit"
                ),
            });
        }
        for (all, part) in channels.iter_mut().zip(chunk) {
            all.extend_from_slice(&part);
        }
    }
    Ok(Audio {
        rate: reader.rate(),
        channels,
        sample_format: reader.sample_format(),
    })
}

fn classify(name: &str, error: SymphoniaError) -> AudioError {
    match error {
        SymphoniaError::Unsupported(what) => AudioError::Unsupported {
            path: name.to_string(),
            detail: what.to_string(),
        },
        SymphoniaError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => AudioError::Corrupt {
            path: name.to_string(),
            detail: "unexpected end of file".into(),
        },
        SymphoniaError::IoError(e) => AudioError::Corrupt {
            path: name.to_string(),
            detail: e.to_string(),
        },
        other => AudioError::Corrupt {
            path: name.to_string(),
            detail: other.to_string(),
        },
    }
}

/// Packet decoder: symphonia's own, or libopus for Opus.
enum PacketDecoder {
    Symphonia(Box<dyn symphonia::core::codecs::Decoder>),
    /// The samples come from a [`Wav16`] source, not from packets.
    Direct,
    Opus {
        decoder: opus::Decoder,
        channels: usize,
    },
}

/// A streaming decoder: yields planar chunks (one packet's worth) in order.
///
/// Opening decodes up to the first audio packet, so the rate and channel
/// count are known (and a file with no decodable audio is refused) before any
/// sample is consumed.
pub struct AudioReader {
    name: String,
    /// The container's packets; `None` when `wav16` reads the samples.
    format: Option<Box<dyn FormatReader>>,
    wav16: Option<Wav16>,
    track_id: u32,
    decoder: PacketDecoder,
    rate: u32,
    channels: usize,
    sample_format: SampleFormat,
    pending: Option<Vec<Vec<f32>>>,
    /// Opus pre-skip still to drop, samples per channel.
    skip: usize,
    total: u64,
    decode_errors: usize,
    finished: bool,
    opus_buffer: Vec<f32>,
    /// Where decoded packets are converted to `f32`, reused across packets.
    convert_buffer: Option<AudioBuffer<f32>>,
    /// Frames per channel the container announces, if it does.
    frames_hint: Option<u64>,
    /// Why the stream stopped before its end, once it has.
    ended_early: Option<String>,
    /// ffmpeg decoding a format symphonia does not read.
    ffmpeg: Option<ffmpeg::Stream>,
}

/// Where a [`AudioReader::ready_made`] reader's samples come from.
enum Source {
    Wav16(Wav16),
    Ffmpeg(ffmpeg::Stream),
}

thread_local! {
    /// Set while this thread runs a third-party decoder under [`guarded`].
    static INSIDE_DECODER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside a decoder call whose panic [`AudioReader`]
/// turns into an error: a front end's panic hook stays quiet then, so the
/// user sees one line, not a backtrace of someone else's code.
pub fn inside_decoder() -> bool {
    INSIDE_DECODER.with(|inside| inside.get())
}

/// Installs, once per process, a panic hook that says nothing of a panic
/// inside a guarded decoder call (it becomes an error, see [`guarded`]) and
/// hands every other panic to the hook that was there before: no front end
/// needs a hook of its own for the one-line error a user should see.
fn quiet_decoder_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !inside_decoder() {
                previous(info);
            }
        }));
    });
}

/// Whether the file at `path` is a regular file that begins with the AMR
/// storage format's magic number (`#!AMR` for narrowband, `#!AMR-WB` for
/// wideband; RFC 4867 §5). Anything else (a pipe, whose opening would wait
/// for a writer) is left to the readers' own checks.
fn starts_with_amr_magic(path: &Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 5];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"#!AMR")
}

/// Runs `decode` (which calls into symphonia or libopus) so that a panic
/// in it (fuzzing found symphonia's Matroska reader overflowing on a
/// malformed header) becomes a corrupt-file error for `name`.
fn guarded<T>(name: &str, decode: impl FnOnce() -> Result<T, AudioError>) -> Result<T, AudioError> {
    quiet_decoder_panics();
    let was = INSIDE_DECODER.with(|inside| inside.replace(true));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    INSIDE_DECODER.with(|inside| inside.set(was));
    outcome.unwrap_or_else(|_| {
        Err(AudioError::Corrupt {
            path: name.to_string(),
            detail: "the decoder failed on malformed data".into(),
        })
    })
}

impl AudioReader {
    /// Opens and probes `path`, decoding its first audio packet:
    /// symphonia (and libopus) first; ffmpeg for a file they cannot read
    /// when it is in a format they do not know (see the `ffmpeg` module). A file
    /// whose bytes make symphonia's probe fail, panic included (an AMR-NB
    /// file can look like the start of another format), still goes to
    /// ffmpeg.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let name = path.display().to_string();
        // An AMR file's frames can pass symphonia's scan for another
        // format's sync word (an ADTS header, once in a few marked calls),
        // which then decodes a tenth of a second and stops: AMR, which
        // symphonia does not read, goes to ffmpeg by its magic number.
        if starts_with_amr_magic(path) {
            let why = AudioError::Unsupported {
                path: name.clone(),
                detail: "AMR".into(),
            };
            return Self::open_ffmpeg(path, name, why);
        }
        match guarded(&name, || Self::open_symphonia(path, name.clone())) {
            Err(why @ (AudioError::Unsupported { .. } | AudioError::Corrupt { .. })) => {
                Self::open_ffmpeg(path, name, why)
            }
            other => other,
        }
    }

    /// A reader over ffmpeg's decoding of `path`, if ffprobe finds an audio
    /// stream symphonia does not read; otherwise `why`, symphonia's error.
    fn open_ffmpeg(path: &Path, name: String, why: AudioError) -> Result<Self, AudioError> {
        let Some(probe) = ffmpeg::probe(path, &name, &why)? else {
            return Err(why);
        };
        if probe.symphonia_reads() {
            return Err(why);
        }
        if !(1..=MAX_CHANNELS).contains(&probe.channels) {
            return Err(AudioError::Limits {
                path: name,
                detail: format!("{} channels (at most {MAX_CHANNELS})", probe.channels),
            });
        }
        // The best decoder first; the next if it cannot start or reads
        // nothing (sox without its AMR library, say).
        let mut tried = None;
        let mut opened = None;
        for &decoder in ffmpeg::Decoder::for_stream(&probe) {
            let attempt = ffmpeg::Stream::spawn(path, &name, &probe, decoder).and_then(|mut s| {
                let first = s.next_chunk(&name, false)?;
                Ok((s, first))
            });
            match attempt {
                Ok((stream, Some(first))) => {
                    opened = Some((stream, first));
                    break;
                }
                Ok((_, None)) => tried = Some(AudioError::Empty(name.clone())),
                Err(e) => tried = Some(e),
            }
        }
        let Some((stream, first)) = opened else {
            return Err(tried.unwrap_or(why));
        };
        AudioReader::ready_made(
            name,
            probe.rate,
            probe.channels,
            first,
            None,
            Source::Ffmpeg(stream),
        )
    }

    fn open_symphonia(path: &Path, name: String) -> Result<Self, AudioError> {
        check_regular_file(path)?;
        let mut file = File::open(path).map_err(|source| AudioError::Open {
            path: name.clone(),
            source,
        })?;
        if let Some(problem) = mp4::oversized_table(&mut file) {
            return Err(AudioError::Corrupt {
                path: name,
                detail: problem,
            });
        }
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size == 0 {
            return Err(AudioError::Empty(name));
        }
        if let Some(wav16) = Wav16::open(&file, &name)? {
            return AudioReader::from_wav16(name, wav16);
        }
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format_options = FormatOptions {
            enable_gapless: true,
            ..Default::default()
        };
        let probed = symphonia::default::get_probe()
            .format(&hint, stream, &format_options, &MetadataOptions::default())
            .map_err(|e| classify(&name, e))?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| AudioError::Unsupported {
                path: name.clone(),
                detail: "no audio track".into(),
            })?
            .clone();
        let params = &track.codec_params;
        let frames_hint = params.n_frames;
        use symphonia::core::codecs::{
            CODEC_TYPE_PCM_F32BE, CODEC_TYPE_PCM_F32LE, CODEC_TYPE_PCM_F64BE, CODEC_TYPE_PCM_F64LE,
        };
        let float_codecs = [
            CODEC_TYPE_PCM_F32LE,
            CODEC_TYPE_PCM_F32BE,
            CODEC_TYPE_PCM_F64LE,
            CODEC_TYPE_PCM_F64BE,
        ];
        let mut sample_format = match (params.sample_format, params.bits_per_sample) {
            _ if float_codecs.contains(&params.codec) => SampleFormat::Float32,
            (Some(symphonia::core::sample::SampleFormat::F32), _)
            | (Some(symphonia::core::sample::SampleFormat::F64), _) => SampleFormat::Float32,
            (_, Some(bits)) if bits > 16 => SampleFormat::Int(if bits > 24 { 32 } else { 24 }),
            _ => SampleFormat::Int(16),
        };
        let mut skip = 0;
        let decoder = if params.codec == CODEC_TYPE_OPUS {
            let opus_head = params
                .extra_data
                .as_deref()
                .filter(|head| head.len() >= 12 && head.starts_with(b"OpusHead"));
            // Matroska demuxing may leave the channel count to the OpusHead (byte 9).
            let channels = params
                .channels
                .map(|c| c.count())
                .or_else(|| opus_head.map(|head| head[9] as usize))
                .unwrap_or(0);
            let channel_mode = match channels {
                1 => opus::Channels::Mono,
                2 => opus::Channels::Stereo,
                n => {
                    return Err(AudioError::Unsupported {
                        path: name,
                        detail: format!("Opus with {n} channels (multistream) is not supported"),
                    })
                }
            };
            skip = opus_head.map_or(DEFAULT_OPUS_PRE_SKIP, |head| {
                u16::from_le_bytes([head[10], head[11]]) as usize
            });
            sample_format = SampleFormat::Int(16);
            PacketDecoder::Opus {
                decoder: opus::Decoder::new(OPUS_RATE, channel_mode).map_err(|e| {
                    AudioError::Corrupt {
                        path: name.clone(),
                        detail: e.to_string(),
                    }
                })?,
                channels,
            }
        } else {
            PacketDecoder::Symphonia(
                symphonia::default::get_codecs()
                    .make(params, &DecoderOptions::default())
                    .map_err(|e| classify(&name, e))?,
            )
        };
        let rate = if matches!(decoder, PacketDecoder::Opus { .. }) {
            OPUS_RATE
        } else {
            params.sample_rate.unwrap_or(0)
        };
        let mut reader = AudioReader {
            name,
            format: Some(format),
            wav16: None,
            track_id: track.id,
            decoder,
            rate,
            channels: 0,
            sample_format,
            pending: None,
            skip,
            total: 0,
            ended_early: None,
            decode_errors: 0,
            finished: false,
            opus_buffer: vec![0.0f32; 5760 * 2],
            frames_hint,
            convert_buffer: None,
            ffmpeg: None,
        };
        // Decode until the first non-empty chunk: it fixes rate and channels.
        loop {
            match reader.decode_packet()? {
                Some(chunk) if chunk.first().is_some_and(|c| !c.is_empty()) => {
                    reader.pending = Some(chunk);
                    break;
                }
                Some(_) => continue,
                None => {
                    return Err(if reader.decode_errors > 0 {
                        AudioError::Corrupt {
                            path: reader.name.clone(),
                            detail: format!(
                                "{} packets failed to decode and none succeeded",
                                reader.decode_errors
                            ),
                        }
                    } else {
                        AudioError::Empty(reader.name.clone())
                    })
                }
            }
        }
        reader.check_rate()
    }

    /// A reader over a [`Wav16`] source, its first chunk read.
    fn from_wav16(name: String, mut wav16: Wav16) -> Result<Self, AudioError> {
        let first = wav16.next_chunk(&name)?;
        let Some(first) = first else {
            return Err(AudioError::Empty(name));
        };
        let frames_hint = wav16.frames_left + first[0].len() as u64;
        let (rate, channels) = (wav16.rate, wav16.channels);
        AudioReader::ready_made(
            name,
            rate,
            channels,
            first,
            Some(frames_hint),
            Source::Wav16(wav16),
        )
    }

    /// A reader whose samples come ready-made from `source`, with no
    /// container or packet decoder of symphonia's; `first` is its first
    /// chunk, already read. Phone and legacy codecs (all ffmpeg decodes
    /// here) carry at most 16 bits, as [`Wav16`] does.
    fn ready_made(
        name: String,
        rate: u32,
        channels: usize,
        first: Vec<Vec<f32>>,
        frames_hint: Option<u64>,
        source: Source,
    ) -> Result<Self, AudioError> {
        let total = (first[0].len() * first.len()) as u64;
        let (wav16, ffmpeg) = match source {
            Source::Wav16(w) => (Some(w), None),
            Source::Ffmpeg(f) => (None, Some(f)),
        };
        AudioReader {
            name,
            format: None,
            wav16,
            track_id: 0,
            decoder: PacketDecoder::Direct,
            rate,
            channels,
            sample_format: SampleFormat::Int(16),
            pending: Some(first),
            skip: 0,
            total,
            decode_errors: 0,
            finished: false,
            opus_buffer: Vec::new(),
            frames_hint,
            ended_early: None,
            convert_buffer: None,
            ffmpeg,
        }
        .check_rate()
    }

    fn check_rate(self) -> Result<Self, AudioError> {
        let reader = self;
        if !RATE_RANGE.contains(&reader.rate) {
            return Err(AudioError::Limits {
                path: reader.name.clone(),
                detail: format!(
                    "sample rate {} Hz is outside the supported 8000–192000 Hz",
                    reader.rate
                ),
            });
        }
        Ok(reader)
    }

    /// Hands back a chunk this reader returned, once used: a reader that
    /// reads in large blocks refills it rather than allocating anew.
    pub fn recycle(&mut self, chunk: Vec<Vec<f32>>) {
        if let Some(wav16) = self.wav16.as_mut() {
            wav16.spare = Some(chunk);
        }
    }

    /// Sample rate, Hz.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// How the samples are stored in the file.
    pub fn sample_format(&self) -> SampleFormat {
        self.sample_format
    }

    /// Frames per channel the container announces, if it does.
    pub fn frames_hint(&self) -> Option<u64> {
        self.frames_hint
    }

    /// Why the stream ended before the end its file announces, once it
    /// has: the file was cut short or its tail is damaged, and what could
    /// be read was. `None` for a stream read to its end.
    pub fn ended_early(&self) -> Option<String> {
        if let Some(wav16) = self.wav16.as_ref().filter(|w| w.truncated) {
            return Some(format!(
                "the file ends early: its header announces {:.1} s, {:.1} s could be read",
                wav16.announced as f64 / wav16.rate as f64,
                (wav16.announced - wav16.frames_left) as f64 / wav16.rate as f64
            ));
        }
        self.ended_early
            .clone()
            .or_else(|| self.ffmpeg.as_ref().and_then(|s| s.ended_early.clone()))
    }

    fn seconds_read(&self) -> f64 {
        self.total as f64 / self.channels.max(1) as f64 / self.rate.max(1) as f64
    }

    /// At an unexpected end of the file: notes it when fewer frames came
    /// than the container announced. Compressed formats' counts allow for
    /// encoder delay and padding, so a shortfall below half a second or 1 %
    /// is not taken for a cut.
    fn note_short_stream(&mut self) {
        let Some(announced) = self.frames_hint else {
            return;
        };
        let read = self.total / self.channels.max(1) as u64;
        let slack = (self.rate as u64 / 2).max(announced / 100);
        if read + slack < announced {
            self.ended_early = Some(format!(
                "the file ends early: its header announces {:.1} s, {:.1} s could be read",
                announced as f64 / self.rate as f64,
                self.seconds_read()
            ));
        }
    }

    /// The next planar chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<Vec<f32>>>, AudioError> {
        let name = self.name.clone();
        let chunk = guarded(&name, || self.next_chunk_unguarded());
        if chunk.is_err() {
            // After a decoder's panic its state is unknown: read no further.
            self.finished = true;
            self.format = None;
            self.wav16 = None;
            self.ffmpeg = None;
        }
        chunk
    }

    fn next_chunk_unguarded(&mut self) -> Result<Option<Vec<Vec<f32>>>, AudioError> {
        if let Some(chunk) = self.pending.take() {
            return Ok(Some(chunk));
        }
        if let Some(wav16) = self.wav16.as_mut() {
            return wav16.next_chunk(&self.name);
        }
        if let Some(stream) = self.ffmpeg.as_mut() {
            let chunk = stream.next_chunk(&self.name, self.total > 0)?;
            if let Some(c) = &chunk {
                self.total += (c[0].len() * c.len()) as u64;
            }
            return Ok(chunk);
        }
        loop {
            match self.decode_packet()? {
                Some(chunk) if chunk.first().is_some_and(|c| !c.is_empty()) => {
                    return Ok(Some(chunk))
                }
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// Decodes one packet of our track (possibly empty after pre-skip), or
    /// `None` at the end.
    fn decode_packet(&mut self) -> Result<Option<Vec<Vec<f32>>>, AudioError> {
        if self.finished {
            return Ok(None);
        }
        let name = self.name.clone();
        let limits = |detail: String| AudioError::Limits {
            path: name.clone(),
            detail,
        };
        loop {
            let Some(format) = self.format.as_mut() else {
                return Ok(None);
            };
            let packet = match format.next_packet() {
                Ok(p) => p,
                Err(SymphoniaError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                    self.finished = true;
                    self.note_short_stream();
                    return Ok(None);
                }
                Err(SymphoniaError::ResetRequired) => {
                    self.finished = true;
                    return Ok(None);
                }
                Err(e) => {
                    if self.total > 0 {
                        // A damaged tail after good audio: keep what decoded.
                        self.finished = true;
                        self.ended_early = Some(format!(
                            "the file is damaged after {:.1} s ({e}); it was read up to there",
                            self.seconds_read()
                        ));
                        return Ok(None);
                    }
                    return Err(classify(&self.name, e));
                }
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let mut planar: Vec<Vec<f32>>;
            match &mut self.decoder {
                PacketDecoder::Symphonia(dec) => match dec.decode(&packet) {
                    Ok(buffer) => {
                        let spec = *buffer.spec();
                        let channels = spec.channels.count();
                        if channels == 0 || channels > MAX_CHANNELS {
                            return Err(limits(format!("{channels} channels are not supported")));
                        }
                        if self.channels == 0 {
                            self.channels = channels;
                            self.rate = spec.rate;
                        } else if self.channels != channels || self.rate != spec.rate {
                            return Err(AudioError::Corrupt {
                                path: self.name.clone(),
                                detail: "channel count or rate changes mid-stream".into(),
                            });
                        }
                        // Converted plane by plane into a buffer kept across
                        // packets: no interleaving only to undo it.
                        let capacity = buffer.capacity();
                        let reuse = self
                            .convert_buffer
                            .as_ref()
                            .is_some_and(|b| b.capacity() >= capacity && *b.spec() == spec);
                        if !reuse {
                            self.convert_buffer = Some(AudioBuffer::new(capacity as u64, spec));
                        }
                        let converted = self.convert_buffer.as_mut().expect("just set");
                        buffer.convert(converted);
                        planar = (0..channels).map(|c| converted.chan(c).to_vec()).collect();
                    }
                    Err(SymphoniaError::DecodeError(_)) => {
                        self.count_decode_error()?;
                        continue;
                    }
                    Err(SymphoniaError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                        self.finished = true;
                        self.note_short_stream();
                        return Ok(None);
                    }
                    Err(e) => return Err(classify(&self.name, e)),
                },
                // A `Direct` reader has no packets: `next_chunk` reads it.
                PacketDecoder::Direct => return Ok(None),
                PacketDecoder::Opus { decoder, channels } => {
                    match decoder.decode_float(&packet.data, &mut self.opus_buffer, false) {
                        Ok(frames) => {
                            self.channels = *channels;
                            planar = vec![Vec::with_capacity(frames); *channels];
                            push_interleaved(&mut planar, &self.opus_buffer[..frames * *channels]);
                        }
                        Err(_) => {
                            self.count_decode_error()?;
                            continue;
                        }
                    }
                }
            }
            // Only float formats can hold them; marked, a NaN spreads over a
            // whole tile and the report's SNR turns to nonsense.
            if self.sample_format == SampleFormat::Float32
                && planar.iter().flatten().any(|x| !x.is_finite())
            {
                return Err(AudioError::Corrupt {
                    path: self.name.clone(),
                    detail: "the file holds NaN or infinite samples".into(),
                });
            }
            if self.skip > 0 {
                let drop = self.skip.min(planar[0].len());
                for channel in planar.iter_mut() {
                    channel.drain(..drop);
                }
                self.skip -= drop;
            }
            self.total += (planar[0].len() * planar.len()) as u64;
            return Ok(Some(planar));
        }
    }

    fn count_decode_error(&mut self) -> Result<(), AudioError> {
        self.decode_errors += 1;
        if self.decode_errors > 100 && self.total == 0 {
            return Err(AudioError::Corrupt {
                path: self.name.clone(),
                detail: "no packet could be decoded".into(),
            });
        }
        Ok(())
    }
}

/// Frames a [`Wav16`] source reads at a time: large enough that the
/// embedder's pipeline takes them without gathering.
const WAV16_CHUNK_FRAMES: usize = 1 << 16;
/// Frames quantised and interleaved at a time when writing 16-bit WAV.
const WRITE_SLICE_FRAMES: usize = 1 << 14;

/// 16-bit integer PCM WAV, the commonest file handed to `embed` and `mark`:
/// hound parses the header, and the samples are then read in large blocks
/// and converted straight from their bytes. Through symphonia they came in
/// packets of 1152 frames, each copied and converted a sample at a time,
/// which cost the streaming embedder about a third of its decoding
/// thread. Anything else (other widths, float, compressed WAV) goes through
/// symphonia as before. The samples are the same, `i16 / 32768`.
struct Wav16 {
    data: std::io::BufReader<File>,
    channels: usize,
    rate: u32,
    /// Frames the header announces and not yet read.
    frames_left: u64,
    /// Frames the header announces.
    announced: u64,
    bytes: Vec<u8>,
    /// Whole frames were read before the data ran out early.
    truncated: bool,
    /// A block has been read.
    started: bool,
    /// A chunk handed back by the consumer, refilled next instead of
    /// allocating (and having the kernel zero) fresh memory for each.
    spare: Option<Vec<Vec<f32>>>,
}

impl Wav16 {
    /// A reader for `file` if it is a 16-bit integer PCM WAV; `None` for
    /// anything else, which symphonia then probes from the start.
    fn open(file: &File, name: &str) -> Result<Option<Wav16>, AudioError> {
        use std::io::{Read, Seek, SeekFrom};
        let failed = |source: std::io::Error| AudioError::Open {
            path: name.to_string(),
            source,
        };
        // A clone shares the file's offset: every refusal rewinds it for
        // symphonia's probe.
        let rewind = || {
            (&*file)
                .seek(SeekFrom::Start(0))
                .map(|_| None)
                .map_err(failed)
        };
        let mut handle = file.try_clone().map_err(failed)?;
        let mut magic = [0u8; 12];
        let is_wave = handle.read_exact(&mut magic).is_ok()
            && &magic[..4] == b"RIFF"
            && &magic[8..] == b"WAVE";
        if !is_wave {
            return rewind();
        }
        refuse_absurd_wav_format(&mut handle, name)?;
        handle.seek(SeekFrom::Start(0)).map_err(failed)?;
        // Whatever hound cannot parse, symphonia may: it decides.
        let Ok(parsed) = hound::WavReader::new(std::io::BufReader::with_capacity(1 << 18, handle))
        else {
            return rewind();
        };
        let spec = parsed.spec();
        let channels = spec.channels as usize;
        if spec.sample_format != hound::SampleFormat::Int
            || spec.bits_per_sample != 16
            || channels == 0
            || channels > MAX_CHANNELS
        {
            return rewind();
        }
        Ok(Some(Wav16 {
            rate: spec.sample_rate,
            channels,
            frames_left: parsed.duration() as u64,
            announced: parsed.duration() as u64,
            data: parsed.into_inner(),
            bytes: Vec::new(),
            truncated: false,
            started: false,
            spare: None,
        }))
    }

    fn next_chunk(&mut self, name: &str) -> Result<Option<Vec<Vec<f32>>>, AudioError> {
        use std::io::Read;
        if self.frames_left == 0 || self.truncated {
            return Ok(None);
        }
        let frames = (WAV16_CHUNK_FRAMES as u64).min(self.frames_left) as usize;
        let frame_bytes = 2 * self.channels;
        self.bytes.resize(frames * frame_bytes, 0);
        let mut filled = 0;
        while filled < self.bytes.len() {
            match self.data.read(&mut self.bytes[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(AudioError::Open {
                        path: name.to_string(),
                        source,
                    })
                }
            }
        }
        let whole = filled / frame_bytes;
        if whole < frames {
            if !self.started {
                // Not one whole block where the header promised more: a
                // damaged file, as symphonia judges one whose first packet
                // is cut short.
                return Err(AudioError::Corrupt {
                    path: name.to_string(),
                    detail: format!(
                        "the header announces {} frames, the file holds {whole}",
                        self.frames_left
                    ),
                });
            }
            // Truncated later: keep the whole frames that are there, as the
            // packet reader keeps a damaged tail's good audio.
            self.truncated = true;
        }
        self.started = true;
        self.frames_left -= whole as u64;
        if whole == 0 {
            return Ok(None);
        }
        let data = &self.bytes[..whole * frame_bytes];
        let mut planar = self
            .spare
            .take()
            .filter(|p| p.len() == self.channels)
            .unwrap_or_else(|| vec![Vec::new(); self.channels]);
        for plane in planar.iter_mut() {
            plane.clear();
            plane.resize(whole, 0.0);
        }
        match self.channels {
            1 => deinterleave16::<1>(data, &mut planar),
            2 => deinterleave16::<2>(data, &mut planar),
            _ => {
                for (c, plane) in planar.iter_mut().enumerate() {
                    let at = 2 * c;
                    for (sample, frame) in plane.iter_mut().zip(data.chunks_exact(frame_bytes)) {
                        *sample = pcm16([frame[at], frame[at + 1]]);
                    }
                }
            }
        }
        Ok(Some(planar))
    }
}

/// Refuses a WAV whose format chunk gives 0 channels or 0 Hz, read from
/// just after the RIFF header: symphonia panics on a zero rate, and hound
/// sends such files on to it. Reads at most the first 64 chunk headers.
fn refuse_absurd_wav_format(file: &mut File, name: &str) -> Result<(), AudioError> {
    use std::io::{Read, Seek, SeekFrom};
    for _ in 0..64 {
        let mut header = [0u8; 8];
        if file.read_exact(&mut header).is_err() {
            return Ok(()); // no format chunk: the parsers say what is wrong
        }
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if &header[..4] == b"fmt " {
            let mut fields = [0u8; 8];
            if file.read_exact(&mut fields).is_err() {
                return Ok(());
            }
            let channels = u16::from_le_bytes([fields[2], fields[3]]);
            let rate = u32::from_le_bytes([fields[4], fields[5], fields[6], fields[7]]);
            if channels == 0 || rate == 0 {
                return Err(AudioError::Corrupt {
                    path: name.to_string(),
                    detail: format!("the header gives {channels} channels at {rate} Hz"),
                });
            }
            return Ok(());
        }
        // Chunks are padded to an even length.
        let skip = i64::from(size) + i64::from(size % 2);
        if file.seek(SeekFrom::Current(skip)).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// One little-endian 16-bit sample as `f32`, as symphonia converts it.
#[inline(always)]
fn pcm16(bytes: [u8; 2]) -> f32 {
    i16::from_le_bytes(bytes) as f32 / 32_768.0
}

/// Interleaved 16-bit frames of `C` channels into `planar` (each plane
/// already as long as the frames): with the frame size known at compile time
/// the loops vectorise.
fn deinterleave16<const C: usize>(data: &[u8], planar: &mut [Vec<f32>]) {
    for (c, plane) in planar.iter_mut().enumerate().take(C) {
        for (sample, frame) in plane
            .iter_mut()
            .zip(data.as_chunks::<2>().0.chunks_exact(C))
        {
            *sample = pcm16(frame[c]);
        }
    }
}

fn push_interleaved(planar: &mut [Vec<f32>], interleaved: &[f32]) {
    let channels = planar.len();
    for frame in interleaved.chunks_exact(channels) {
        for (c, &s) in planar.iter_mut().zip(frame) {
            c.push(s);
        }
    }
}

/// Writes `audio` to `path` as WAV or FLAC (chosen by the extension), keeping
/// its rate, channel count, length and, where possible, sample format.
pub fn write(path: &Path, audio: &Audio) -> Result<(), AudioError> {
    let mut writer =
        AudioWriter::create(path, audio.rate, audio.channels.len(), audio.sample_format)?;
    writer.write_chunk(&audio.channels)?;
    writer.finish()
}

/// A streaming writer. Samples go to a temporary file beside the target,
/// which [`AudioWriter::finish`] syncs and renames into place; dropping the
/// writer unfinished removes the temporary file, so no half-written output
/// ever appears under the target's name. WAV is streamed to disk; FLAC is
/// collected and encoded at the end (flacenc encodes whole streams).
pub struct AudioWriter {
    path: std::path::PathBuf,
    temp: tempfile::NamedTempFile,
    sink: Sink,
    bits: u16,
    float: bool,
    channels: usize,
    rate: u32,
    /// One channel quantised to 16 bits, reused across chunks.
    plane16: Vec<Vec<i16>>,
}

enum Sink {
    Wav(hound::WavWriter<std::io::BufWriter<File>>),
    Flac(Vec<Vec<f32>>),
}

impl AudioWriter {
    /// Starts writing `path` (WAV or FLAC by extension).
    pub fn create(
        path: &Path,
        rate: u32,
        channels: usize,
        sample_format: SampleFormat,
    ) -> Result<Self, AudioError> {
        let container = Container::from_path(path)?;
        let write_error = |detail: String| AudioError::Write {
            path: path.display().to_string(),
            detail,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".earmark-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| write_error(e.to_string()))?;
        let (bits, float) = match (container, sample_format) {
            (Container::Wav, SampleFormat::Float32) => (32, true),
            (Container::Wav, SampleFormat::Int(b)) => (b, false),
            (Container::Flac, SampleFormat::Int(16)) => (16, false),
            (Container::Flac, _) => (24, false),
        };
        let sink = match container {
            Container::Wav => {
                let spec = hound::WavSpec {
                    channels: channels as u16,
                    sample_rate: rate,
                    bits_per_sample: bits,
                    sample_format: if float {
                        hound::SampleFormat::Float
                    } else {
                        hound::SampleFormat::Int
                    },
                };
                let file = temp
                    .as_file()
                    .try_clone()
                    .map_err(|e| write_error(e.to_string()))?;
                Sink::Wav(
                    hound::WavWriter::new(std::io::BufWriter::new(file), spec)
                        .map_err(|e| write_error(e.to_string()))?,
                )
            }
            Container::Flac => Sink::Flac(vec![Vec::new(); channels]),
        };
        Ok(AudioWriter {
            plane16: Vec::new(),
            path: path.to_path_buf(),
            temp,
            sink,
            bits,
            float,
            channels,
            rate,
        })
    }

    fn error(&self, detail: String) -> AudioError {
        AudioError::Write {
            path: self.path.display().to_string(),
            detail,
        }
    }

    /// Appends planar samples (one slice per channel, equal lengths).
    pub fn write_chunk(&mut self, chunk: &[Vec<f32>]) -> Result<(), AudioError> {
        let frames = chunk.first().map_or(0, Vec::len);
        let (bits, float) = (self.bits, self.float);
        let plane16 = &mut self.plane16;
        let result = match &mut self.sink {
            Sink::Wav(writer) => (|| {
                if bits == 16 && !float {
                    // Quantised a plane at a time (a loop that vectorises),
                    // then interleaved into hound's buffered 16-bit writer:
                    // several times faster than one call per sample. A
                    // slice at a time, so that the buffers stay a few
                    // hundred kB however long the chunk: memory touched
                    // for the first time costs the kernel a zeroed page.
                    for start in (0..frames).step_by(WRITE_SLICE_FRAMES) {
                        let end = (start + WRITE_SLICE_FRAMES).min(frames);
                        plane16.resize_with(chunk.len(), Vec::new);
                        for (plane, channel) in plane16.iter_mut().zip(chunk) {
                            plane.clear();
                            plane.extend(channel[start..end].iter().map(|&s| quantise16(s)));
                        }
                        let mut fast = writer.get_i16_writer(((end - start) * chunk.len()) as u32);
                        if let [left, right] = &plane16[..] {
                            for (&l, &r) in left.iter().zip(right) {
                                fast.write_sample(l);
                                fast.write_sample(r);
                            }
                        } else {
                            for i in 0..end - start {
                                for plane in plane16.iter() {
                                    fast.write_sample(plane[i]);
                                }
                            }
                        }
                        fast.flush()?;
                    }
                    return Ok(());
                }
                for i in 0..frames {
                    for channel in chunk {
                        let s = channel[i];
                        if float {
                            writer.write_sample(s)?;
                        } else if bits == 16 {
                            writer.write_sample(quantise16(s))?;
                        } else {
                            writer.write_sample(quantise(s, bits))?;
                        }
                    }
                }
                Ok::<(), hound::Error>(())
            })()
            .map_err(|e| e.to_string()),
            Sink::Flac(all) => {
                for (all, part) in all.iter_mut().zip(chunk) {
                    all.extend_from_slice(part);
                }
                Ok(())
            }
        };
        result.map_err(|e| self.error(e))
    }

    /// Completes the file, syncs it to disk and renames it into place: for
    /// files a record will vouch for, which must survive a power cut.
    pub fn finish(self) -> Result<(), AudioError> {
        self.complete(true)
    }

    /// Completes the file and renames it into place without waiting for the
    /// disk, as audio tools usually do. The rename still means no reader and
    /// no crashed run ever sees a partial file under the final name; only a
    /// power cut soon after may lose it. Waiting for the disk cost `embed`
    /// about a tenth of its time on a 10-minute file (docs/library.md).
    pub fn finish_unsynced(self) -> Result<(), AudioError> {
        self.complete(false)
    }

    fn complete(self, sync: bool) -> Result<(), AudioError> {
        let AudioWriter {
            path,
            temp,
            sink,
            bits,
            channels,
            rate,
            ..
        } = self;
        let write_error = |detail: String| AudioError::Write {
            path: path.display().to_string(),
            detail,
        };
        match sink {
            Sink::Wav(writer) => {
                writer.finalize().map_err(|e| write_error(e.to_string()))?;
            }
            Sink::Flac(samples) => {
                let bytes = flac_bytes(&samples, channels, bits, rate).map_err(write_error)?;
                temp.as_file()
                    .write_all(&bytes)
                    .map_err(|e| write_error(e.to_string()))?;
            }
        }
        if sync {
            temp.as_file()
                .sync_all()
                .map_err(|e| write_error(e.to_string()))?;
        }
        temp.persist(&path)
            .map_err(|e| write_error(e.error.to_string()))?;
        Ok(())
    }
}

/// `sample` scaled to `bits`-bit integers, rounded half away from zero and
/// clamped. Rounds in `f64`, where adding ±0.5 to a scaled `f32` is exact, so
/// that truncation gives `f32::round`'s result without its libm call.
#[inline]
fn quantise(sample: f32, bits: u16) -> i32 {
    let full = (1i64 << (bits - 1)) as f64;
    let scaled = sample as f64 * full;
    (scaled + 0.5f64.copysign(scaled)).clamp(-full, full - 1.0) as i32
}

/// `quantise(sample, 16)` in operations that all vectorise: no `f64`, no
/// rounding call and no float-to-integer cast (whose saturation the
/// compiler does lane by lane). Adding 1.5 · 2²³ rounds a value below 2²²
/// to the nearest integer, ties to even, and leaves that integer in the low
/// bits; the tie cases that went towards zero are then moved away from it.
/// NaN goes to 0, as there.
#[inline]
fn quantise16(sample: f32) -> i16 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2²³
    let scaled = sample * 32_768.0;
    let scaled = if scaled.is_nan() {
        0.0
    } else {
        scaled.clamp(-65_536.0, 65_536.0)
    };
    let nearest = scaled + MAGIC - MAGIC;
    let whole = (scaled + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32;
    let below = scaled - nearest;
    let away = (below == 0.5 && scaled > 0.0) as i32 - (below == -0.5 && scaled < 0.0) as i32;
    (whole + away).clamp(-32_768, 32_767) as i16
}

fn flac_bytes(
    samples: &[Vec<f32>],
    channels: usize,
    bits: u16,
    rate: u32,
) -> Result<Vec<u8>, String> {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let frames = samples.first().map_or(0, Vec::len);
    let mut interleaved = Vec::with_capacity(frames * channels);
    for i in 0..frames {
        for channel in samples {
            interleaved.push(quantise(channel[i], bits));
        }
    }
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .map_err(|(_, e)| format!("FLAC encoder configuration: {e:?}"))?;
    let block_size = config.block_size;
    let source = flacenc::source::MemSource::from_samples(
        &interleaved,
        channels,
        bits as usize,
        rate as usize,
    );
    let stream = flacenc::encode_with_fixed_block_size(&config, source, block_size)
        .map_err(|e| format!("FLAC encoding failed: {e:?}"))?;
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream
        .write(&mut sink)
        .map_err(|e| format!("FLAC serialisation failed: {e:?}"))?;
    let mut bytes = sink.as_slice().to_vec();
    // flacenc writes the short last block's size as STREAMINFO's minimum block
    // size, which symphonia then rejects; a fixed-block stream may state the
    // maximum for both (bytes 8..10 = min, 10..12 = max, after "fLaC" and the
    // metadata block header).
    if bytes.len() >= 12 && &bytes[..4] == b"fLaC" {
        let (min, max) = (8, 10);
        let max_block = [bytes[max], bytes[max + 1]];
        bytes[min..min + 2].copy_from_slice(&max_block);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::{quantise, quantise16, AudioReader};

    /// A 16-bit WAV of `channels` channels and `frames` frames whose samples
    /// run through the whole `i16` range; returns its samples too.
    fn wav16(
        dir: &std::path::Path,
        channels: u16,
        frames: usize,
    ) -> (std::path::PathBuf, Vec<i16>) {
        let path = dir.join(format!("{channels}ch.wav"));
        let spec = hound::WavSpec {
            channels,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).unwrap();
        let samples: Vec<i16> = (0..frames * channels as usize)
            .map(|i| (i as i64 * 7_919 % 65_536 - 32_768) as i16)
            .collect();
        for &sample in &samples {
            writer.write_sample(sample).unwrap();
        }
        writer.finalize().unwrap();
        (path, samples)
    }

    fn read_all(path: &std::path::Path) -> Vec<Vec<f32>> {
        let mut reader = AudioReader::open(path).unwrap();
        let mut all = vec![Vec::new(); reader.channels()];
        while let Some(chunk) = reader.next_chunk().unwrap() {
            for (all, part) in all.iter_mut().zip(&chunk) {
                all.extend_from_slice(part);
            }
            reader.recycle(chunk);
        }
        all
    }

    /// The block reader gives every sample as `i16 / 32768`, planar, for
    /// one, two and more channels, across block boundaries and with a
    /// recycled buffer refilled.
    #[test]
    fn sixteen_bit_wav_is_read_exactly_in_blocks() {
        let dir = tempfile::tempdir().unwrap();
        for channels in [1u16, 2, 3] {
            let frames = super::WAV16_CHUNK_FRAMES * 2 + 123;
            let (path, samples) = wav16(dir.path(), channels, frames);
            let planar = read_all(&path);
            assert_eq!(planar.len(), channels as usize);
            for (c, plane) in planar.iter().enumerate() {
                assert_eq!(plane.len(), frames);
                for (i, &x) in plane.iter().enumerate() {
                    let expected = samples[i * channels as usize + c] as f32 / 32_768.0;
                    assert_eq!(x, expected, "channel {c}, frame {i}");
                }
            }
        }
    }

    /// A file cut off after its first block keeps its whole frames and ends
    /// cleanly (one cut inside it is refused as damaged); a
    /// chunk after the data (a LIST tag) is not read as samples.
    #[test]
    fn truncated_and_tagged_wav_read_only_their_samples() {
        let dir = tempfile::tempdir().unwrap();
        let frames = super::WAV16_CHUNK_FRAMES + 10_000;
        let (path, _) = wav16(dir.path(), 2, frames);
        let mut bytes = std::fs::read(&path).unwrap();
        let truncated = dir.path().join("truncated.wav");
        std::fs::write(&truncated, &bytes[..bytes.len() - 4 * 1_000 - 3]).unwrap();
        assert_eq!(read_all(&truncated)[0].len(), frames - 1_000 - 1);
        // Cut inside the first block: refused as damaged.
        std::fs::write(&truncated, &bytes[..44 + 4 * 1_000]).unwrap();
        assert!(matches!(
            AudioReader::open(&truncated),
            Err(super::AudioError::Corrupt { .. })
        ));
        bytes.extend_from_slice(b"LIST\x0c\x00\x00\x00INFOISFT\x00\x00\x00\x00");
        let riff_size = (bytes.len() - 8) as u32;
        bytes[4..8].copy_from_slice(&riff_size.to_le_bytes());
        let tagged = dir.path().join("tagged.wav");
        std::fs::write(&tagged, &bytes).unwrap();
        assert_eq!(read_all(&tagged)[1].len(), frames);
    }

    /// The fast 16-bit path must round exactly as the general one, around
    /// every half step (where rounding decides) and across the whole range
    /// of `f32`, including infinities and NaN.
    #[test]
    fn sixteen_bit_quantising_matches_the_general_rounding() {
        let same = |x: f32| {
            assert_eq!(
                quantise16(x),
                quantise(x, 16) as i16,
                "{x:e} ({:#x})",
                x.to_bits()
            );
        };
        for step in -65_600i32..=65_600 {
            let half = step as f32 / 65_536.0;
            let mut x = half;
            for _ in 0..4 {
                x = x.next_down();
            }
            for _ in 0..9 {
                same(x);
                x = x.next_up();
            }
        }
        for bits in (0..=u32::MAX).step_by(4_099) {
            same(f32::from_bits(bits));
        }
        for x in [
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.0,
            -0.0,
            1.0,
            -1.0,
        ] {
            same(x);
        }
    }
}
