//! The masters store held to the ledger. A kept master is exactly the file
//! whose SHA-256 its work recorded, and a master leaves the store only by
//! `work forget`, which the audit chain records. A master is checked
//! before every read, so a replaced one (say, the original plus the
//! difference to an innocent's copy) can never steer a verdict, and
//! `audit verify` reports a replaced or vanished one.

use crate::Wait;
use std::collections::HashSet;
use std::path::PathBuf;

use earmark_ledger::Work;

use crate::home::file_hash;
use crate::{Error, Home, Result};

impl Home {
    /// The path of `work`'s master once its content is checked: `None`
    /// when the store holds none. A master whose content no longer has the
    /// recorded SHA-256 is an [`Error::Integrity`].
    pub(crate) fn verified_master(&self, work: &Work) -> Result<Option<PathBuf>> {
        let path = self.inner.master_path(&work.content_hash);
        if !path.is_file() {
            return Ok(None);
        }
        if file_hash(&path)? != work.content_hash {
            return Err(Error::Integrity(replaced(work)));
        }
        Ok(Some(path))
    }

    /// The first problem of the masters store: a master replaced, or the
    /// master of a work with recorded copies gone without `work forget`.
    /// (A work whose marking failed before any copy was recorded may have
    /// no master; no verdict reads it.)
    pub(crate) fn masters_problem(&self) -> Result<Option<String>> {
        let forgotten = self.forgotten_masters()?;
        for work in self.ledger().works().wait()? {
            match self.verified_master(&work) {
                Err(Error::Integrity(problem)) => return Ok(Some(problem)),
                Err(e) => return Err(e),
                Ok(Some(_)) => {}
                Ok(None) if forgotten.contains(&work.content_hash) => {}
                Ok(None) if self.ledger().copies_of(work.id).wait()?.is_empty() => {}
                Ok(None) => return Ok(Some(vanished(&work))),
            }
        }
        Ok(None)
    }

    /// The content hashes whose masters `work forget` removed, from the
    /// audit chain (which `audit verify` checks first).
    fn forgotten_masters(&self) -> Result<HashSet<String>> {
        let mut hashes = HashSet::new();
        for entry in self.ledger().audit_log().wait()? {
            if entry.action != "forget" {
                continue;
            }
            let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap_or_default();
            if let Some(hash) = detail["content_hash"].as_str() {
                hashes.insert(hash.to_string());
            }
        }
        Ok(hashes)
    }
}

fn replaced(work: &Work) -> String {
    format!(
        "the stored master of work {} was replaced or damaged: its content no longer has the SHA-256 recorded for it ({}); restore it from a backup, or forget it",
        work.id, work.content_hash
    )
}

fn vanished(work: &Work) -> String {
    format!(
        "the stored master of work {} is missing, and no `work forget` removed it",
        work.id
    )
}
