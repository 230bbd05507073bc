//! Recipient codes: which bits each recipient's copy carries, and how a
//! reading turns into an accusation with a proven false-accusation bound.
//!
//! Owns: the sealed recipient identifier (a 64-bit engine payload that
//! encrypts the work and recipient indices with a keyed check field) and the
//! bound attached to naming a recipient from it. Must not touch: audio,
//! files, the ledger or the watermark's internals; it maps numbers to
//! numbers under keys.
//!
//! Why an encrypted identifier: copies of several recipients mixed together
//! (averaged, spliced) may decode to a bitwise blend of their payloads. With a
//! linear code such a blend can be a third recipient's codeword. Here a value
//! that was never embedded must pass the engine's 24-bit tag *and* decrypt to
//! a plaintext whose 24-bit keyed check field is right: probability 2⁻⁴⁸ per
//! candidate, whatever the mix.
//!
//! The identifier names one recipient from a short clip but says nothing
//! about a mix it cannot decode. For that, [`tardos`] gives every recipient a
//! collusion-resistant codeword for the engine's fingerprint positions, and
//! scores all recipients against whatever positions a leak carries.

#![forbid(unsafe_code)]

pub mod tardos;

pub use tardos::{gaussian_code_length, PartsVerdict, Ranked, Readings, TardosCode};

use earmark_keys::{Label, SecretKey};

/// Label of the identifier cipher's key (derived from the home's master key).
pub const IDENTIFIER_LABEL: Label = Label("earmark/v1/codes/identifier");
/// Label of the Feistel round function.
const ROUND_LABEL: Label = Label("earmark/v1/codes/identifier-round");
/// Label of the check field.
const CHECK_LABEL: Label = Label("earmark/v1/codes/identifier-check");

/// Bits of the work index in an identifier: up to 1,048,575 works.
pub const WORK_BITS: u32 = 20;
/// Bits of the recipient index: up to 1,048,575 recipients.
pub const RECIPIENT_BITS: u32 = 20;
/// Bits of the keyed check field.
pub const CHECK_BITS: u32 = 24;
/// Bits of the engine's payload tag (see `earmark-engine`).
pub const ENGINE_TAG_BITS: u32 = 24;
/// Feistel rounds: Luby–Rackoff needs 4 with a pseudo-random round function;
/// 8 leave a margin.
const ROUNDS: usize = 8;

/// Largest work index.
pub const MAX_WORK: u32 = (1 << WORK_BITS) - 1;
/// Largest recipient index.
pub const MAX_RECIPIENT: u32 = (1 << RECIPIENT_BITS) - 1;

/// A work and a recipient, as the ledger numbers them (both ≥ 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identifier {
    /// Work index, 1..=[`MAX_WORK`].
    pub work: u32,
    /// Recipient index, 1..=[`MAX_RECIPIENT`].
    pub recipient: u32,
}

/// An identifier whose index does not fit the sealed payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutOfRange {
    /// Work indices run 1..=[`MAX_WORK`].
    #[error("work index {0} is outside 1..={MAX_WORK}: this home cannot mark more works")]
    Work(u32),
    /// Recipient indices run 1..=[`MAX_RECIPIENT`].
    #[error("recipient index {0} is outside 1..={MAX_RECIPIENT}: this home cannot mark for more recipients")]
    Recipient(u32),
}

/// Seals and opens identifiers under one key.
pub struct IdentifierCipher {
    key: SecretKey,
}

impl IdentifierCipher {
    /// The cipher of the home whose identity is `home_id`, under its master
    /// key. The id is the key's context: a payload sealed in one home opens
    /// to nothing in another, even under the same master key (a ledger
    /// started afresh, a copied key), where identifiers restarting at 1
    /// would otherwise name whoever holds that number now.
    pub fn for_home(master: &SecretKey, home_id: &str) -> Self {
        IdentifierCipher {
            key: master.derive_with(IDENTIFIER_LABEL, home_id.as_bytes()),
        }
    }

    /// The cipher of homes made before identifiers were bound to the home:
    /// only for opening the payloads their ledgers recorded.
    pub fn unbound(master: &SecretKey) -> Self {
        IdentifierCipher {
            key: master.derive(IDENTIFIER_LABEL),
        }
    }

    fn check(&self, work: u32, recipient: u32) -> u64 {
        let mut message = [0u8; 8];
        message[..4].copy_from_slice(&work.to_be_bytes());
        message[4..].copy_from_slice(&recipient.to_be_bytes());
        let mac = self.key.mac(CHECK_LABEL, &message);
        u64::from_be_bytes(mac[..8].try_into().expect("8 bytes")) >> (64 - CHECK_BITS)
    }

    fn round(&self, round: usize, half: u32) -> u32 {
        let mut message = [0u8; 5];
        message[0] = round as u8;
        message[1..].copy_from_slice(&half.to_be_bytes());
        let mac = self.key.mac(ROUND_LABEL, &message);
        u32::from_be_bytes(mac[..4].try_into().expect("4 bytes"))
    }

    /// The 64-bit payload carrying `id`; an index of 0 or above its
    /// maximum cannot be sealed.
    pub fn seal(&self, id: Identifier) -> Result<u64, OutOfRange> {
        if !(1..=MAX_WORK).contains(&id.work) {
            return Err(OutOfRange::Work(id.work));
        }
        if !(1..=MAX_RECIPIENT).contains(&id.recipient) {
            return Err(OutOfRange::Recipient(id.recipient));
        }
        let plain = ((id.work as u64) << (RECIPIENT_BITS + CHECK_BITS))
            | ((id.recipient as u64) << CHECK_BITS)
            | self.check(id.work, id.recipient);
        let (mut left, mut right) = ((plain >> 32) as u32, plain as u32);
        for r in 0..ROUNDS {
            let next = left ^ self.round(r, right);
            left = right;
            right = next;
        }
        Ok(((left as u64) << 32) | right as u64)
    }

    /// The identifier a payload carries, if its check field is right.
    pub fn open(&self, payload: u64) -> Option<Identifier> {
        let (mut left, mut right) = ((payload >> 32) as u32, payload as u32);
        for r in (0..ROUNDS).rev() {
            let previous = right ^ self.round(r, left);
            right = left;
            left = previous;
        }
        let plain = ((left as u64) << 32) | right as u64;
        let work = (plain >> (RECIPIENT_BITS + CHECK_BITS)) as u32;
        let recipient = ((plain >> CHECK_BITS) & MAX_RECIPIENT as u64) as u32;
        let check = plain & ((1 << CHECK_BITS) - 1);
        (work >= 1 && recipient >= 1 && check == self.check(work, recipient))
            .then_some(Identifier { work, recipient })
    }
}

/// Upper bound on the probability that an identifier read from a leak names
/// someone whose copy is not in it, when the detector checked `candidates`
/// payload candidates in all: each value that was never embedded passes the
/// engine's tag and the check field with probability 2⁻⁴⁸ at most.
pub fn false_accusation_bound(candidates: usize) -> f64 {
    (candidates.max(1) as f64 * 2f64.powi(-((ENGINE_TAG_BITS + CHECK_BITS) as i32))).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cipher(seed: u64) -> IdentifierCipher {
        IdentifierCipher::for_home(&SecretKey::from_seed(seed), "home")
    }

    proptest! {
        #[test]
        fn seal_then_open_is_the_identity(work in 1..=MAX_WORK, recipient in 1..=MAX_RECIPIENT) {
            let c = cipher(7);
            let id = Identifier { work, recipient };
            prop_assert_eq!(c.open(c.seal(id).unwrap()), Some(id));
        }

        #[test]
        fn blends_of_two_payloads_open_to_nothing(a in 1..=1000u32, b in 1..=1000u32, mask: u64) {
            prop_assume!(a != b);
            let c = cipher(8);
            let pa = c.seal(Identifier { work: 1, recipient: a }).unwrap();
            let pb = c.seal(Identifier { work: 1, recipient: b }).unwrap();
            let blend = (pa & mask) | (pb & !mask);
            prop_assume!(blend != pa && blend != pb);
            prop_assert_eq!(c.open(blend), None);
        }
    }

    #[test]
    fn other_keys_and_random_values_open_to_nothing() {
        let (a, b) = (cipher(1), cipher(2));
        let id = Identifier {
            work: 3,
            recipient: 42,
        };
        assert_eq!(b.open(a.seal(id).unwrap()), None);
        // The same key in another home, or unbound.
        let key = SecretKey::from_seed(1);
        let sealed = a.seal(id).unwrap();
        assert_eq!(IdentifierCipher::for_home(&key, "other").open(sealed), None);
        assert_eq!(IdentifierCipher::unbound(&key).open(sealed), None);
        // 2⁻²⁴ per value: none of 100,000 values opens.
        let opened = (0..100_000u64)
            .filter(|v| a.open(v.wrapping_mul(0x9E37_79B9_7F4A_7C15)).is_some())
            .count();
        assert_eq!(opened, 0);
        assert!(false_accusation_bound(8) < 1e-13);
    }

    #[test]
    fn indices_out_of_range_are_errors() {
        let c = cipher(1);
        let seal = |work, recipient| c.seal(Identifier { work, recipient });
        assert_eq!(seal(0, 1), Err(OutOfRange::Work(0)));
        assert_eq!(seal(1, 0), Err(OutOfRange::Recipient(0)));
        assert_eq!(
            seal(1, MAX_RECIPIENT + 1),
            Err(OutOfRange::Recipient(MAX_RECIPIENT + 1))
        );
        assert_eq!(seal(MAX_WORK + 1, 1), Err(OutOfRange::Work(MAX_WORK + 1)));
        assert!(seal(MAX_WORK, MAX_RECIPIENT).is_ok());
    }
}
