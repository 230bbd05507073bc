//! Perceptual scores from established implementations: ViSQOL v3 and
//! ITU-T P.862 PESQ, through their PyPI packages (`visqol-python`, `pesq`),
//! called from a small Python helper bundled into the binary. Setup:
//! `scripts/setup.sh --perceptual`.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The helper script (also in the repository as `scripts/perceptual.py`).
pub const HELPER: &str = include_str!("../../../scripts/perceptual.py");

/// Scores of a marked copy against its original.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Perceptual {
    /// ViSQOL v3 MOS-LQO (speech mode at 16 kHz or audio mode at 48 kHz).
    pub visqol: Option<f64>,
    /// `"speech"` or `"audio"`.
    pub visqol_mode: Option<String>,
    /// PESQ narrow-band MOS-LQO at 8 kHz (speech only).
    pub pesq_nb: Option<f64>,
    /// PESQ wide-band MOS-LQO at 16 kHz (speech only).
    pub pesq_wb: Option<f64>,
    /// Why a score is missing, or how it was made differently (a fallback
    /// ViSQOL mapper), if either.
    pub note: Option<String>,
}

/// Whether a recording is speech, by its corpus name (`speech_…`, `…call…`):
/// PESQ and ViSQOL's speech mode apply to speech only.
pub fn is_speech(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("speech") || name.contains("call")
}

/// Scores `degraded` against `reference` (both WAV) with `python`.
pub fn score(
    python: &str,
    helper: &Path,
    reference: &Path,
    degraded: &Path,
    speech: bool,
) -> Perceptual {
    let output = Command::new(python)
        .arg(helper)
        .arg(reference)
        .arg(degraded)
        .arg(if speech { "speech" } else { "audio" })
        .output();
    match output {
        Ok(out) if out.status.success() => {
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| Perceptual {
                note: Some(format!("helper output unreadable: {e}")),
                ..Perceptual::default()
            })
        }
        Ok(out) => Perceptual {
            note: Some(format!(
                "helper failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
            )),
            ..Perceptual::default()
        },
        Err(e) => Perceptual {
            note: Some(format!("cannot run {python}: {e}")),
            ..Perceptual::default()
        },
    }
}
