//! Secret keys and every keyed derivation earmark makes.
//!
//! Owns: the 256-bit [`SecretKey`] (zeroized on drop, never printed), its text
//! encoding, and the domain-separated derivations built on it: HKDF-SHA256
//! sub-keys, ChaCha20 streams for pseudo-random layouts, and HMAC-SHA256 tags.
//! Every derivation takes a [`Label`]; the labels are versioned so that a mark
//! made today can still be read after the derivations evolve.
//!
//! Must not touch: files, the terminal or logging. Reading and writing key
//! files is the caller's job (the CLI), so that this crate can never leak a key
//! to a log line.

#![forbid(unsafe_code)]

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a secret key in bytes (256 bits).
pub const KEY_BYTES: usize = 32;

/// First token of a key file; identifies the format and its version.
pub const KEY_FILE_HEADER: &str = "earmark-key-v1";

/// A domain-separation label for one derivation.
///
/// Each label names exactly one use of the key. Changing a label's text changes
/// every value derived from it, so labels carry a version (`/v1/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(pub &'static str);

/// Errors from parsing a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The text does not start with [`KEY_FILE_HEADER`].
    #[error("not an earmark key file (expected a '{KEY_FILE_HEADER}' header)")]
    BadHeader,
    /// The key body is not 64 hexadecimal digits.
    #[error("key file is damaged: expected {} hexadecimal digits", KEY_BYTES * 2)]
    BadBody,
}

/// A 256-bit secret. Zeroized when dropped; its `Debug` output is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; KEY_BYTES]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_BYTES];
        rand_core::OsRng.fill_bytes(&mut bytes);
        SecretKey(bytes)
    }

    /// A key from raw bytes (used by tests and by derivation of per-work keys).
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        SecretKey(bytes)
    }

    /// A key derived deterministically from a seed, for benchmarks and tests.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut bytes = [0u8; KEY_BYTES];
        rng.fill_bytes(&mut bytes);
        SecretKey(bytes)
    }

    /// The key file text: header, then the key as hex, then a newline.
    ///
    /// The returned string holds the secret; the caller writes it to a 0600
    /// file and drops it.
    pub fn to_file_text(&self) -> zeroize::Zeroizing<String> {
        let mut text = String::with_capacity(KEY_FILE_HEADER.len() + 2 + KEY_BYTES * 2);
        text.push_str(KEY_FILE_HEADER);
        text.push(' ');
        for byte in self.0 {
            text.push_str(&format!("{byte:02x}"));
        }
        text.push('\n');
        zeroize::Zeroizing::new(text)
    }

    /// Parses key file text written by [`SecretKey::to_file_text`].
    pub fn from_file_text(text: &str) -> Result<Self, KeyError> {
        let mut parts = text.split_whitespace();
        if parts.next() != Some(KEY_FILE_HEADER) {
            return Err(KeyError::BadHeader);
        }
        let body = parts.next().ok_or(KeyError::BadBody)?;
        // Byte offsets below are only character offsets for ASCII hex digits.
        if parts.next().is_some()
            || body.len() != KEY_BYTES * 2
            || !body.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(KeyError::BadBody);
        }
        let mut bytes = [0u8; KEY_BYTES];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte =
                u8::from_str_radix(&body[2 * i..2 * i + 2], 16).map_err(|_| KeyError::BadBody)?;
        }
        Ok(SecretKey(bytes))
    }

    /// A 256-bit sub-key for one purpose: HKDF-SHA256 expand with the label as info.
    pub fn derive(&self, label: Label) -> SecretKey {
        self.derive_with(label, &[])
    }

    /// A sub-key for one purpose and one context (e.g. a work or recipient id).
    pub fn derive_with(&self, label: Label, context: &[u8]) -> SecretKey {
        let hk = Hkdf::<Sha256>::new(Some(b"earmark"), &self.0);
        let mut info = Vec::with_capacity(label.0.len() + 1 + context.len());
        info.extend_from_slice(label.0.as_bytes());
        info.push(0);
        info.extend_from_slice(context);
        let mut out = [0u8; KEY_BYTES];
        hk.expand(&info, &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        SecretKey(out)
    }

    /// A deterministic ChaCha20 stream for one purpose.
    ///
    /// Callers map its raw `u32`/`u64` output to values with their own documented
    /// rules, never with `rand`'s distributions, whose algorithms may change.
    pub fn stream(&self, label: Label) -> ChaCha20Rng {
        let sub = self.derive(label);
        ChaCha20Rng::from_seed(sub.0)
    }

    /// HMAC-SHA256 of `message` under the sub-key for `label`.
    pub fn mac(&self, label: Label, message: &[u8]) -> [u8; 32] {
        let sub = self.derive(label);
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&sub.0).expect("HMAC accepts keys of any length");
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

/// Uniform integer in `0..n` from a ChaCha stream, by rejection sampling.
///
/// This is the project's documented mapping from stream words to indices, kept
/// here so that layouts never depend on `rand`'s sampling algorithms.
pub fn uniform_below(rng: &mut ChaCha20Rng, n: u32) -> u32 {
    assert!(n > 0, "uniform_below needs a non-empty range");
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let v = rng.next_u32();
        if v < zone {
            return v % n;
        }
    }
}

/// Fisher–Yates shuffle driven by [`uniform_below`].
pub fn shuffle<T>(rng: &mut ChaCha20Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(rng, (i + 1) as u32) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_text_round_trips_and_debug_is_redacted() {
        let key = SecretKey::from_seed(7);
        let text = key.to_file_text();
        let back = SecretKey::from_file_text(&text).unwrap();
        assert_eq!(back.0, key.0);
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    }

    #[test]
    fn damaged_key_text_is_rejected() {
        assert_eq!(
            SecretKey::from_file_text("hello").unwrap_err(),
            KeyError::BadHeader
        );
        assert_eq!(
            SecretKey::from_file_text("earmark-key-v1 abcd").unwrap_err(),
            KeyError::BadBody
        );
        let multibyte = format!("earmark-key-v1 a\u{e9}{}", "0".repeat(61));
        assert_eq!(multibyte.split(' ').nth(1).unwrap().len(), 64);
        assert_eq!(
            SecretKey::from_file_text(&multibyte).unwrap_err(),
            KeyError::BadBody
        );
        let odd = format!("earmark-key-v1 {}", "0".repeat(63));
        assert_eq!(
            SecretKey::from_file_text(&odd).unwrap_err(),
            KeyError::BadBody
        );
        let bad = format!("earmark-key-v1 {}", "zz".repeat(32));
        assert_eq!(
            SecretKey::from_file_text(&bad).unwrap_err(),
            KeyError::BadBody
        );
    }

    #[test]
    fn labels_separate_domains() {
        let key = SecretKey::from_seed(1);
        let a = key.derive(Label("earmark/v1/a"));
        let b = key.derive(Label("earmark/v1/b"));
        assert_ne!(a.0, b.0);
        assert_eq!(a.0, key.derive(Label("earmark/v1/a")).0);
        assert_ne!(
            key.mac(Label("x"), b"m"),
            SecretKey::from_seed(2).mac(Label("x"), b"m")
        );
    }

    #[test]
    fn uniform_below_stays_in_range() {
        let mut rng = SecretKey::from_seed(3).stream(Label("t"));
        for n in [1u32, 2, 3, 7, 1000] {
            for _ in 0..200 {
                assert!(uniform_below(&mut rng, n) < n);
            }
        }
    }
}
