//! Works registered before they are marked (a master uploaded to a
//! service), and marking a registered work from its stored master.

use std::path::Path;
use std::sync::Arc;

use earmark_ledger::{LedgerError, WorkSpec};
use serde::Serialize;

use crate::home::slug;
use crate::mark::require_regular_file;
use crate::{Destination, Error, Format, Home, MarkReport, MarkRequest, Progress, Result, Wait};
use crate::{MarkSettings, Selection, Work};

/// How many times registering a new work is tried when another process
/// takes its id meanwhile.
const ATTEMPTS: usize = 3;

/// A work [`Home::add_work`] registered, or found registered already.
#[derive(Clone, Debug, Serialize)]
pub struct AddedWork {
    /// The work as the ledger holds it.
    pub work: Work,
    /// Whether this call registered it (`false`: the same recording was
    /// registered before, and that work is returned).
    pub new: bool,
}

impl Home {
    /// Registers the recording at `source` as a work with no copies yet:
    /// its master goes into the store, its landmarks into the index (so a
    /// leak alone names it), and one audited row into the ledger. The
    /// same recording registered before gives that work back (with the
    /// title updated if one is given). On failure nothing is registered
    /// and no master is left behind.
    pub async fn add_work(&self, source: &Path, title: Option<&str>) -> Result<AddedWork> {
        let (home, source, title) = (
            self.clone(),
            source.to_path_buf(),
            title.map(str::to_string),
        );
        crate::blocking(move || home.add_work_blocking(&source, title)).await
    }

    fn add_work_blocking(&self, source: &Path, title: Option<String>) -> Result<AddedWork> {
        require_regular_file(source)?;
        let master = self.inner.ingest_master(source)?;
        let added = self.register_master(source, title, &master);
        if added.is_err() && master.fresh {
            self.forget_unregistered_master(&master.content_hash);
        }
        added
    }

    fn register_master(
        &self,
        source: &Path,
        title: Option<String>,
        master: &earmark_ledger::Ingested,
    ) -> Result<AddedWork> {
        let audio = earmark_audio_io::read(&master.path).map_err(|e| e.said_of(source))?;
        let spec = WorkSpec {
            content_hash: master.content_hash.clone(),
            title,
            kind: earmark_ledger::AUDIO,
            duration_s: audio.duration_s(),
            rate: audio.rate,
            channels: audio.channels.len(),
            words: None,
        };
        let analysis = crate::informed::analysis_signal(&audio);
        for attempt in 1..=ATTEMPTS {
            let reservation = self.ledger().reserve_work(&spec).wait()?;
            if reservation.work.kind != earmark_ledger::AUDIO {
                return Err(Error::Usage(format!(
                    "{} is already registered as a transcript (work {})",
                    source.display(),
                    reservation.work.id
                )));
            }
            if reservation.new {
                crate::informed::index_master(self, reservation.work.id, &analysis)?;
            }
            match self
                .ledger()
                .record_delivery(&reservation, &[], || Ok(()))
                .wait()
            {
                Ok(work) => {
                    return Ok(AddedWork {
                        work,
                        new: reservation.new,
                    })
                }
                Err(e) => {
                    if reservation.new {
                        let _ = crate::informed::unindex_master(self, reservation.work.id);
                    }
                    if matches!(e, LedgerError::Conflict(_)) && attempt < ATTEMPTS {
                        continue;
                    }
                    return Err(e.into());
                }
            }
        }
        Err(Error::Usage(
            "other processes kept registering works; nothing was registered".into(),
        ))
    }

    /// Marks registered work `work` from its stored master for
    /// `recipients`, into `out`: [`Home::mark`] with the copies named after
    /// the work's title. A work whose master was forgotten cannot be
    /// marked again, and says so.
    pub async fn mark_work(
        &self,
        work: i64,
        recipients: Selection,
        out: Destination,
        format: Format,
        settings: MarkSettings,
        progress: Arc<dyn Progress>,
    ) -> Result<MarkReport> {
        let found = self.checked_work(work).await?;
        if found.kind != earmark_ledger::AUDIO {
            return Err(Error::Usage(format!(
                "work {work} is a transcript; mark it with its text"
            )));
        }
        let master = self.inner.master_path(&found.content_hash);
        if !master.is_file() {
            return Err(Error::Usage(format!(
                "work {work}'s master was forgotten; mark it from the recording"
            )));
        }
        let stem = found
            .title
            .as_deref()
            .map(slug)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("work-{work}"));
        let request = MarkRequest {
            work: master,
            recipients,
            out,
            format,
            title: None,
            settings,
        };
        let home = self.clone();
        crate::blocking(move || home.mark_blocking(&request, &stem, &*progress)).await
    }
}
