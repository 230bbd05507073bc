//! The options every marking command shares: the profile and the strength.

use clap::{Args, ValueEnum};

/// How audible and how robust the mark is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// Held under the masking model's threshold everywhere; the least
    /// robust through low-rate codecs.
    Transparent,
    /// The default: as deep as the detector asks.
    Balanced,
    /// 1.3 times deeper than balanced: more robust, more easily heard.
    Robust,
}

impl From<ProfileArg> for earmark::Profile {
    fn from(p: ProfileArg) -> Self {
        match p {
            ProfileArg::Transparent => earmark::Profile::Transparent,
            ProfileArg::Balanced => earmark::Profile::Balanced,
            ProfileArg::Robust => earmark::Profile::Robust,
        }
    }
}

/// `--profile` and `--strength`.
#[derive(Args, Clone, Copy, Debug)]
pub struct MarkingArgs {
    /// Audibility against robustness (docs/perceptual.md).
    #[arg(long, value_enum, default_value = "balanced")]
    pub profile: ProfileArg,
    /// Fine adjustment of the profile, 0.05–8 (1 = the profile as it is;
    /// higher is more robust and more audible).
    #[arg(long, default_value_t = 1.0)]
    pub strength: f32,
}

impl MarkingArgs {
    /// The library's settings.
    pub fn settings(self) -> earmark::MarkSettings {
        earmark::MarkSettings {
            profile: self.profile.into(),
            strength: self.strength,
        }
    }
}
