//! Profiles: how the mark trades audibility for robustness, and the
//! settings of one embedding (a profile and a fine strength factor).

use std::fmt;
use std::str::FromStr;

use crate::embed::{MARGIN_DB, MAX_DEPTH_DB, MIN_DEPTH_DB};
use crate::EngineError;

/// How the mark trades audibility for robustness.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Every cell kept well under its masked threshold
    /// ([`crate::perceptual`]), even where the reader then has less to go
    /// on: blind reading through low-rate codecs suffers.
    Transparent,
    /// The default: every cell as deep as the detector's margin asks, from
    /// [`MIN_DEPTH_DB`] to [`MAX_DEPTH_DB`]. Holding it to the masked
    /// threshold cost one or two of 13 leaks on ten rows of the robustness
    /// table for 0.01–0.02 of ViSQOL (docs/perceptual.md), so the default
    /// does not.
    #[default]
    Balanced,
    /// `balanced` deepened by [`ROBUST_DEPTH_FACTOR`] (margin and both depth
    /// limits): more robust, and more audible.
    Robust,
}

impl Profile {
    /// Every profile, from the quietest to the most robust.
    pub const ALL: [Profile; 3] = [Profile::Transparent, Profile::Balanced, Profile::Robust];

    /// The profile's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Transparent => "transparent",
            Profile::Balanced => "balanced",
            Profile::Robust => "robust",
        }
    }

    /// How far (dB) the mark's added energy may stand above the masked
    /// threshold; `None`: not limited by the masking model.
    pub fn masking_allowance_db(self) -> Option<f32> {
        match self {
            Profile::Transparent => Some(TRANSPARENT_ALLOWANCE_DB),
            Profile::Balanced | Profile::Robust => None,
        }
    }

    /// Factor on the detector's margin and depth limits.
    pub fn depth_factor(self) -> f32 {
        match self {
            Profile::Transparent | Profile::Balanced => 1.0,
            Profile::Robust => ROBUST_DEPTH_FACTOR,
        }
    }
}

/// `transparent`'s allowance over the masked threshold, dB: 10 dB under
/// it. ViSQOL sees level changes the model calls masked; 10 dB under the
/// threshold brought the 8 kHz calls' ViSQOL within 0.06 of audiowmark's
/// (docs/perceptual.md).
pub const TRANSPARENT_ALLOWANCE_DB: f32 = -10.0;
/// `robust`'s factor on the margin and depth limits: 3.9 dB at most
/// instead of 3, about 2 dB less SNR.
pub const ROBUST_DEPTH_FACTOR: f32 = 1.3;

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| EngineError::BadProfile(s.chars().take(40).collect()))
    }
}

/// What one embedding is asked for: a profile, and a strength factor that
/// scales its margin and depth limits (1 = the profile as it is).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MarkSettings {
    /// The audibility–robustness trade-off.
    pub profile: Profile,
    /// Fine adjustment, 0.05–8: scales the detector's margin and both depth
    /// limits, and the masking model's allowance by the same factor in
    /// amplitude.
    pub strength: f32,
}

impl Default for MarkSettings {
    fn default() -> Self {
        MarkSettings {
            profile: Profile::Balanced,
            strength: 1.0,
        }
    }
}

impl MarkSettings {
    /// `profile` at strength 1.
    pub fn profile(profile: Profile) -> Self {
        MarkSettings {
            profile,
            strength: 1.0,
        }
    }

    /// Checks the strength's range.
    pub fn check(&self) -> Result<(), EngineError> {
        if !(0.05..=8.0).contains(&self.strength) {
            return Err(EngineError::BadStrength(self.strength));
        }
        Ok(())
    }

    /// Margin, least and largest depth (dB) of the detector-driven rule.
    pub(crate) fn depth_limits_db(&self) -> (f32, f32, f32) {
        let s = self.strength * self.profile.depth_factor();
        (MARGIN_DB * s, MIN_DEPTH_DB * s, MAX_DEPTH_DB * s)
    }

    /// The masking model's allowance (dB over the threshold), with the
    /// strength folded in as an amplitude factor.
    pub(crate) fn masking_allowance_db(&self) -> Option<f32> {
        self.profile
            .masking_allowance_db()
            .map(|a| a + 20.0 * self.strength.log10())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_strangers_are_refused() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
        }
        assert!("loud".parse::<Profile>().is_err());
        assert_eq!(MarkSettings::default().profile, Profile::Balanced);
    }
}
