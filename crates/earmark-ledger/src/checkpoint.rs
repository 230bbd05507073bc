//! The checked state kept on disk, so that a new process (each
//! command-line run) starts from the last full check instead of repeating
//! it: `audit.verified` beside the head, a MAC under the home's key over
//! the home id and what the check derived from the chain (the last
//! verified row's seq and hash, the deliveries, the names).
//!
//! Whoever can write the home's files but does not hold the key can delete
//! the file, or put back an older one of this home's; neither changes a
//! verdict, since the rows since the checkpoint are checked either way.
//! Anything that does not verify (a forged or damaged file, a checkpoint
//! ahead of a restored ledger) is ignored and the full check runs.

use std::io::Write;
use std::path::PathBuf;

use earmark_keys::Label;

use crate::integrity::Verified;
use crate::{io, Ledger, LedgerError};

/// The file beside the head.
pub(crate) const CHECKPOINT_FILE: &str = "audit.verified";
/// Label of the checkpoint's MAC (under the head key).
const CHECKPOINT_LABEL: Label = Label("earmark/v1/ledger/verified-state");
/// Audit rows checked since the stored checkpoint after which a check
/// stores a new one: rewriting it costs about as much as checking a few
/// hundred rows.
pub(crate) const CHECKPOINT_EVERY_ROWS: i64 = 1_000;

/// The stored form: what [`Verified`] holds, flattened, with the home id.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    home: String,
    seq: i64,
    hash: String,
    /// (work, recipient, format, audit seq, SHA-256).
    deliveries: Vec<(i64, i64, String, i64, String)>,
    /// (recipient, name, audit seq).
    names: Vec<(i64, String, i64)>,
}

impl Ledger {
    fn checkpoint_path(&self) -> PathBuf {
        self.head_path.with_file_name(CHECKPOINT_FILE)
    }

    /// The stored checkpoint, if there is one that verifies under this
    /// home's key and names this home.
    pub(crate) fn load_checkpoint(&self, home_id: &str) -> Option<Verified> {
        let text = std::fs::read(self.checkpoint_path()).ok()?;
        let newline = text.iter().position(|&b| b == b'\n')?;
        let (mac, body) = (&text[..newline], &text[newline + 1..]);
        if hex::decode(mac).ok()? != self.head_key.mac(CHECKPOINT_LABEL, body) {
            tracing::debug!("the stored checkpoint does not verify; checking the whole ledger");
            return None;
        }
        let stored: Stored = serde_json::from_slice(body).ok()?;
        if stored.home != home_id {
            return None;
        }
        Some(Verified {
            seq: stored.seq,
            hash: stored.hash,
            deliveries: stored
                .deliveries
                .into_iter()
                .map(|(w, r, f, seq, hash)| ((w, r, f), (seq, hash)))
                .collect(),
            names: stored
                .names
                .into_iter()
                .map(|(id, name, seq)| (id, (name, seq)))
                .collect(),
        })
    }

    /// Stores `state` as the checkpoint (a private temporary file, synced,
    /// then renamed over the old one).
    pub(crate) fn store_checkpoint(
        &self,
        home_id: &str,
        state: &Verified,
    ) -> Result<(), LedgerError> {
        let stored = Stored {
            home: home_id.to_string(),
            seq: state.seq,
            hash: state.hash.clone(),
            deliveries: state
                .deliveries
                .iter()
                .map(|((w, r, f), (seq, hash))| (*w, *r, f.clone(), *seq, hash.clone()))
                .collect(),
            names: state
                .names
                .iter()
                .map(|(id, (name, seq))| (*id, name.clone(), *seq))
                .collect(),
        };
        let body = serde_json::to_vec(&stored).expect("a checkpoint serialises");
        let mac = hex::encode(self.head_key.mac(CHECKPOINT_LABEL, &body));
        let path = self.checkpoint_path();
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        // tempfile creates it 0600.
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
        temp.write_all(mac.as_bytes())
            .and_then(|()| temp.write_all(b"\n"))
            .and_then(|()| temp.write_all(&body))
            .and_then(|()| temp.as_file().sync_all())
            .map_err(io(&path))?;
        temp.persist(&path).map_err(|e| io(&path)(e.error))?;
        Ok(())
    }
}
