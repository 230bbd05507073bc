//! The external programs attacks run through: Debian's ffmpeg and sox.

use std::path::{Path, PathBuf};
use std::process::Command;

use earmark_audio_io::{Audio, SampleFormat};

use crate::BenchError;

/// Paths of ffmpeg and sox, found on `PATH`.
#[derive(Clone, Debug)]
pub struct Tools {
    ffmpeg: PathBuf,
    sox: PathBuf,
}

/// `program` on `PATH`, if there.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

impl Tools {
    /// Finds ffmpeg and sox; the error names the Debian package to install.
    pub fn find() -> Result<Tools, BenchError> {
        let ffmpeg = which("ffmpeg").ok_or(BenchError::MissingTool {
            tool: "ffmpeg",
            package: "ffmpeg",
        })?;
        let sox = which("sox").ok_or(BenchError::MissingTool {
            tool: "sox",
            package: "sox libsox-fmt-all",
        })?;
        Ok(Tools { ffmpeg, sox })
    }

    /// Whether sox can write AMR-WB (Debian's is built without the encoder).
    pub fn has_amr_wb_encoder(&self) -> bool {
        Command::new(&self.sox)
            .args([
                "-n",
                "-r",
                "16000",
                "-c",
                "1",
                "-t",
                "amr-wb",
                "/dev/null",
                "trim",
                "0",
                "0.02",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn run(&self, program: &Path, args: &[String]) -> Result<(), BenchError> {
        let mut command = Command::new(program);
        // sox dithers when it reduces the bit depth, from a clock-seeded
        // generator unless told to repeat itself: without -R two runs of the
        // same seed would code different noise.
        if program == self.sox {
            command.arg("-R");
        }
        let output = command
            .args(args)
            .output()
            .map_err(|e| BenchError::Attack(format!("cannot run {}: {e}", program.display())))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        // sox without libsox-fmt-all cannot write AMR or GSM.
        if last.contains("no handler for file extension")
            || last.contains("no handler for given file type")
        {
            return Err(BenchError::MissingTool {
                tool: "sox format handler",
                package: "libsox-fmt-all",
            });
        }
        Err(BenchError::Attack(format!(
            "{} failed: {}",
            program
                .file_name()
                .map_or("tool".into(), |n| n.to_string_lossy()),
            last.trim()
        )))
    }

    /// Encodes `audio` with ffmpeg (`encode` are the output options, `ext`
    /// the container) and decodes the result back to a WAV at `out_rate` Hz.
    pub fn ffmpeg_round_trip(
        &self,
        audio: &Audio,
        dir: &Path,
        ext: &str,
        encode: &[String],
        out_rate: u32,
    ) -> Result<Audio, BenchError> {
        let input = write_float_wav(audio, dir, "in.wav")?;
        let encoded = dir.join(format!("enc.{ext}"));
        let output = dir.join("out.wav");
        let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"]
            .map(String::from)
            .to_vec();
        args.push(path_arg(&input));
        // The float WAVs written here carry no channel mask; some encoders
        // (AAC, Opus) refuse an unknown layout, and `-ac` sets the default one.
        if !encode.iter().any(|a| a == "-ac") {
            args.extend(["-ac".into(), audio.channels.len().to_string()]);
        }
        args.extend(encode.iter().cloned());
        args.push(path_arg(&encoded));
        self.run(&self.ffmpeg, &args)?;
        let args: Vec<String> = vec![
            "-hide_banner".into(),
            "-loglevel".into(),
            "error".into(),
            "-nostdin".into(),
            "-y".into(),
            "-i".into(),
            path_arg(&encoded),
            "-ar".into(),
            out_rate.to_string(),
            "-c:a".into(),
            "pcm_f32le".into(),
            path_arg(&output),
        ];
        self.run(&self.ffmpeg, &args)?;
        read_back(&output)
    }

    /// Encodes `audio` with sox as `file_type` (mono at `codec_rate` Hz, with
    /// `options` such as `-C 7`) and decodes it back to the input's rate.
    pub fn sox_codec(
        &self,
        audio: &Audio,
        dir: &Path,
        file_type: &str,
        codec_rate: u32,
        options: &[&str],
    ) -> Result<Audio, BenchError> {
        let input = write_float_wav(audio, dir, "in.wav")?;
        let encoded = dir.join(format!("enc.{file_type}"));
        let output = dir.join("out.wav");
        let mut args: Vec<String> = vec![
            "-V1".into(),
            path_arg(&input),
            "-r".into(),
            codec_rate.to_string(),
        ];
        args.extend(["-c", "1", "-b", "16", "-e", "signed-integer"].map(String::from));
        args.extend(options.iter().map(|s| s.to_string()));
        args.extend(["-t".into(), file_type.to_string(), path_arg(&encoded)]);
        self.run(&self.sox, &args)?;
        let mut args: Vec<String> = vec!["-V1".into(), "-t".into(), file_type.to_string()];
        if file_type == "gsm" {
            // Raw GSM carries no header: its rate and channels are given.
            args.extend(["-r", "8000", "-c", "1"].map(String::from));
        }
        args.push(path_arg(&encoded));
        args.extend(["-e", "floating-point", "-b", "32"].map(String::from));
        args.push(path_arg(&output));
        args.extend(["rate".into(), "-v".into(), audio.rate.to_string()]);
        self.run(&self.sox, &args)?;
        read_back(&output)
    }

    /// Runs sox `effects` on `audio` (optionally folding to `channels`), as
    /// 32-bit float throughout.
    pub fn sox_effect(
        &self,
        audio: &Audio,
        dir: &Path,
        effects: &[&str],
        channels: Option<u32>,
    ) -> Result<Audio, BenchError> {
        let input = write_float_wav(audio, dir, "fx-in.wav")?;
        let output = dir.join("fx-out.wav");
        let mut args: Vec<String> = vec![
            "-V1".into(),
            path_arg(&input),
            "-e".into(),
            "floating-point".into(),
            "-b".into(),
            "32".into(),
        ];
        if let Some(c) = channels {
            args.extend(["-c".into(), c.to_string()]);
        }
        args.push(path_arg(&output));
        args.extend(effects.iter().map(|s| s.to_string()));
        self.run(&self.sox, &args)?;
        read_back(&output)
    }
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Writes `audio` as a 32-bit float WAV named `name` in `dir`.
pub fn write_float_wav(audio: &Audio, dir: &Path, name: &str) -> Result<PathBuf, BenchError> {
    let path = dir.join(name);
    let float = Audio {
        sample_format: SampleFormat::Float32,
        ..audio.clone()
    };
    earmark_audio_io::write(&path, &float)
        .map_err(|e| BenchError::Attack(format!("writing {name}: {e}")))?;
    Ok(path)
}

fn read_back(path: &Path) -> Result<Audio, BenchError> {
    earmark_audio_io::read(path)
        .map_err(|e| BenchError::Attack(format!("reading the attacked audio: {e}")))
}
