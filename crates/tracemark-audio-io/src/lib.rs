//! Audio files in and out.
//!
//! Owns: decoding WAV (16/24/32-bit integer and float), FLAC, MP3, AAC/M4A,
//! Ogg Vorbis and Opus (Ogg and WebM/Matroska) through symphonia, with Opus
//! packets decoded by libopus (symphonia 0.5 demuxes Opus but has no Opus
//! decoder); writing WAV (hound) and FLAC (flacenc) at the input's rate,
//! channel count, length and, where the format allows, sample format.
//! Outputs are written to a temporary file in the target directory, synced and
//! renamed, so a crash never leaves a half-written file under the final name.
//!
//! Must not touch: watermarking, keys, the terminal. Samples leave this crate
//! as planar `f32` in [-1, 1].

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Longest input accepted, in samples summed over channels (about 4 hours of
/// 48 kHz stereo, 5.5 GB as `f32`): longer files are refused up front rather
/// than exhausting memory.
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
    /// The format or codec is not one tracemark reads.
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

/// Reads and decodes an audio file.
pub fn read(path: &Path) -> Result<Audio, AudioError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| AudioError::Open {
        path: name.clone(),
        source,
    })?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size == 0 {
        return Err(AudioError::Empty(name));
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
    decode_all(&name, probed.format)
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
    Opus {
        decoder: opus::Decoder,
        channels: usize,
        pre_skip: usize,
    },
}

fn decode_all(name: &str, mut format: Box<dyn FormatReader>) -> Result<Audio, AudioError> {
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Unsupported {
            path: name.to_string(),
            detail: "no audio track".into(),
        })?
        .clone();
    let params = &track.codec_params;
    let limits = |detail: String| AudioError::Limits {
        path: name.to_string(),
        detail,
    };
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
    let mut decoder = if params.codec == CODEC_TYPE_OPUS {
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
                    path: name.to_string(),
                    detail: format!("Opus with {n} channels (multistream) is not supported"),
                })
            }
        };
        let pre_skip = opus_head.map_or(DEFAULT_OPUS_PRE_SKIP, |head| {
            u16::from_le_bytes([head[10], head[11]]) as usize
        });
        sample_format = SampleFormat::Int(16);
        PacketDecoder::Opus {
            decoder: opus::Decoder::new(OPUS_RATE, channel_mode).map_err(|e| {
                AudioError::Corrupt {
                    path: name.to_string(),
                    detail: e.to_string(),
                }
            })?,
            channels,
            pre_skip,
        }
    } else {
        PacketDecoder::Symphonia(
            symphonia::default::get_codecs()
                .make(params, &DecoderOptions::default())
                .map_err(|e| classify(name, e))?,
        )
    };
    let mut rate = if matches!(decoder, PacketDecoder::Opus { .. }) {
        OPUS_RATE
    } else {
        params.sample_rate.unwrap_or(0)
    };
    let mut planar: Vec<Vec<f32>> = Vec::new();
    let mut total: u64 = 0;
    let mut decode_errors = 0usize;
    let mut opus_buffer = vec![0.0f32; 5760 * 2];
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => {
                if total > 0 {
                    // A damaged tail after good audio: keep what decoded.
                    break;
                }
                return Err(classify(name, e));
            }
        };
        if packet.track_id() != track.id {
            continue;
        }
        match &mut decoder {
            PacketDecoder::Symphonia(dec) => match dec.decode(&packet) {
                Ok(buffer) => {
                    let spec = *buffer.spec();
                    let channels = spec.channels.count();
                    if channels == 0 || channels > MAX_CHANNELS {
                        return Err(limits(format!("{channels} channels are not supported")));
                    }
                    rate = spec.rate;
                    if planar.is_empty() {
                        planar = vec![Vec::new(); channels];
                    } else if planar.len() != channels {
                        return Err(AudioError::Corrupt {
                            path: name.to_string(),
                            detail: "channel count changes mid-stream".into(),
                        });
                    }
                    let frames = buffer.frames();
                    let mut samples = SampleBuffer::<f32>::new(buffer.capacity() as u64, spec);
                    samples.copy_interleaved_ref(buffer);
                    push_interleaved(&mut planar, &samples.samples()[..frames * channels]);
                    total += (frames * channels) as u64;
                }
                Err(SymphoniaError::DecodeError(_)) => decode_errors += 1,
                Err(SymphoniaError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(classify(name, e)),
            },
            PacketDecoder::Opus {
                decoder, channels, ..
            } => match decoder.decode_float(&packet.data, &mut opus_buffer, false) {
                Ok(frames) => {
                    if planar.is_empty() {
                        planar = vec![Vec::new(); *channels];
                    }
                    push_interleaved(&mut planar, &opus_buffer[..frames * *channels]);
                    total += (frames * *channels) as u64;
                }
                Err(_) => decode_errors += 1,
            },
        }
        if total > MAX_TOTAL_SAMPLES {
            return Err(limits(format!(
                "longer than the supported maximum of {MAX_TOTAL_SAMPLES} samples"
            )));
        }
        if decode_errors > 100 && total == 0 {
            return Err(AudioError::Corrupt {
                path: name.to_string(),
                detail: "no packet could be decoded".into(),
            });
        }
    }
    if let PacketDecoder::Opus { pre_skip, .. } = decoder {
        for channel in planar.iter_mut() {
            channel.drain(..pre_skip.min(channel.len()));
        }
    }
    if planar.is_empty() || planar[0].is_empty() {
        return Err(if decode_errors > 0 {
            AudioError::Corrupt {
                path: name.to_string(),
                detail: format!("{decode_errors} packets failed to decode and none succeeded"),
            }
        } else {
            AudioError::Empty(name.to_string())
        });
    }
    if !RATE_RANGE.contains(&rate) {
        return Err(limits(format!(
            "sample rate {rate} Hz is outside the supported 8000–192000 Hz"
        )));
    }
    Ok(Audio {
        rate,
        channels: planar,
        sample_format,
    })
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
    let container = Container::from_path(path)?;
    let name = path.display().to_string();
    let write_error = |detail: String| AudioError::Write {
        path: name.clone(),
        detail,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".tracemark-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| write_error(e.to_string()))?;
    let bytes = match container {
        Container::Wav => wav_bytes(audio).map_err(|e| write_error(e.to_string()))?,
        Container::Flac => flac_bytes(audio).map_err(write_error)?,
    };
    temp.write_all(&bytes)
        .and_then(|_| temp.as_file().sync_all())
        .map_err(|e| write_error(e.to_string()))?;
    temp.persist(path)
        .map_err(|e| write_error(e.error.to_string()))?;
    Ok(())
}

fn quantise(sample: f32, bits: u16) -> i32 {
    let full = (1i64 << (bits - 1)) as f32;
    (sample * full).round().clamp(-full, full - 1.0) as i32
}

fn wav_bytes(audio: &Audio) -> Result<Vec<u8>, hound::Error> {
    let (bits, float) = match audio.sample_format {
        SampleFormat::Float32 => (32, true),
        SampleFormat::Int(b) => (b, false),
    };
    let spec = hound::WavSpec {
        channels: audio.channels.len() as u16,
        sample_rate: audio.rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut writer = hound::WavWriter::new(&mut cursor, spec)?;
        for i in 0..audio.frames() {
            for channel in &audio.channels {
                let s = channel[i];
                if float {
                    writer.write_sample(s)?;
                } else if bits == 16 {
                    writer.write_sample(quantise(s, 16) as i16)?;
                } else {
                    writer.write_sample(quantise(s, bits))?;
                }
            }
        }
        writer.finalize()?;
    }
    Ok(cursor.into_inner())
}

fn flac_bytes(audio: &Audio) -> Result<Vec<u8>, String> {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let bits: u16 = match audio.sample_format {
        SampleFormat::Int(16) => 16,
        _ => 24,
    };
    let channels = audio.channels.len();
    let mut interleaved = Vec::with_capacity(audio.frames() * channels);
    for i in 0..audio.frames() {
        for channel in &audio.channels {
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
        audio.rate as usize,
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
