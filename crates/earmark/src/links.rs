//! Delivery links: a recipient fetches their own copy of a work through a
//! link, and the copy is rendered the first time it is fetched, not when
//! the link is made. Making thousands of links does no signal processing.
//! A rendered copy is recorded like any other, in the transaction that
//! puts its file in place, and kept for later downloads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use earmark_ledger::{Download, Link, NewLink};
use zeroize::Zeroizing;

use crate::users::{expiry, is_past, random_hex, token_hash};
use crate::{
    Destination, Error, Format, Home, MarkReport, MarkSettings, Progress, Result, Selection,
};

/// How every link secret starts.
pub const LINK_PREFIX: &str = "eml_";
/// Random bytes in a link secret (256 bits).
const LINK_BYTES: usize = 32;
/// Where, in the home, rendered copies are kept for their links.
pub const DELIVERIES_DIR: &str = "deliveries";

/// A link just made, with its secret (shown once: only its SHA-256 is kept).
#[derive(Debug)]
pub struct NewLinkReport {
    /// The link.
    pub link: Link,
    /// The recipient's name.
    pub recipient: String,
    /// The secret, to go into the URL `/d/<secret>`.
    pub secret: Zeroizing<String>,
}

/// How long after a counted download a used-up link still serves the
/// rest of it (a `Range` past the first byte, uncounted), seconds.
pub const RESUME_WINDOW_S: i64 = 3600;

/// Whether a link may be used now: for a new download when `counted`, or
/// to resume one counted at `last_counted` (RFC 3339) at most
/// [`RESUME_WINDOW_S`] ago, so that a used-up link cannot be drained by
/// ranges for ever.
fn usable(
    link: &Link,
    counted: bool,
    last_counted: Option<&str>,
) -> std::result::Result<(), &'static str> {
    if link.revoked_at.is_some() {
        return Err("it was revoked");
    }
    if link.expires_at.as_deref().is_some_and(is_past) {
        return Err("it has expired");
    }
    let exhausted = link.max_downloads.is_some_and(|m| link.downloads >= m);
    if !exhausted {
        return Ok(());
    }
    let resumable = !counted && last_counted.is_some_and(|at| !is_older_than(at, RESUME_WINDOW_S));
    if resumable {
        Ok(())
    } else {
        Err("its downloads are used up")
    }
}

/// Whether an RFC 3339 time is more than `seconds` ago (or unreadable).
fn is_older_than(at: &str, seconds: i64) -> bool {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map_or(true, |t| {
            t + time::Duration::seconds(seconds) <= time::OffsetDateTime::now_utc()
        })
}

impl Home {
    /// Makes one link per selected recipient to their copy of work `work`
    /// in `format`, valid for `lifetime` (for ever when `None`) and for at
    /// most `max_downloads` downloads (unlimited when `None`); all or
    /// none, audited in one row. The work must be audio with its master
    /// kept, since copies are rendered from it when fetched.
    pub async fn create_links(
        &self,
        work: i64,
        recipients: &Selection,
        format: Format,
        lifetime: Option<Duration>,
        max_downloads: Option<u32>,
    ) -> Result<Vec<NewLinkReport>> {
        let found = self.checked_work(work).await?;
        if found.kind != earmark_ledger::AUDIO {
            return Err(Error::Usage(format!(
                "work {work} is a transcript; links deliver recordings"
            )));
        }
        if !self.inner.master_path(&found.content_hash).is_file() {
            return Err(Error::Usage(format!(
                "work {work}'s master was forgotten; no copy of it can be rendered"
            )));
        }
        if max_downloads == Some(0) {
            return Err(Error::Usage(
                "a link must allow at least one download".into(),
            ));
        }
        let chosen = self.select(recipients).await?;
        let expires_at = lifetime.map(expiry).transpose()?;
        let mut secrets = Vec::with_capacity(chosen.len());
        let mut new = Vec::with_capacity(chosen.len());
        for r in &chosen {
            let secret = Zeroizing::new(format!("{LINK_PREFIX}{}", *random_hex(LINK_BYTES)?));
            new.push(NewLink {
                token_hash: token_hash(&secret),
                work_id: work,
                recipient_id: r.id,
                format: format.extension().to_string(),
                expires_at: expires_at.clone(),
                max_downloads: max_downloads.map(i64::from),
            });
            secrets.push(secret);
        }
        let links = self.ledger().add_links(&new).await?;
        Ok(links
            .into_iter()
            .zip(chosen)
            .zip(secrets)
            .map(|((link, r), secret)| NewLinkReport {
                link,
                recipient: r.name,
                secret,
            })
            .collect())
    }

    /// Every link (of work `work` only, when given), without secrets.
    pub async fn links(&self, work: Option<i64>) -> Result<Vec<Link>> {
        Ok(self.ledger().links(work).await?)
    }

    /// Revokes link `id`, audited: it answers "gone" from then on.
    pub async fn revoke_link(&self, id: i64) -> Result<Link> {
        Ok(self.ledger().revoke_link(id).await?)
    }

    /// Every download (through link `link` only, when given), oldest first.
    pub async fn downloads(&self, link: Option<i64>) -> Result<Vec<Download>> {
        Ok(self.ledger().downloads(link).await?)
    }

    /// The link whose secret is `secret`, if it may be used for a new
    /// download (`counted`) or to resume one. [`Error::UnknownLink`] if no
    /// link has that secret, [`Error::LinkGone`] if it is revoked, expired
    /// or used up; neither says anything of other links.
    pub async fn open_link(&self, secret: &str, counted: bool) -> Result<Link> {
        let link = self
            .ledger()
            .link_by_hash(&token_hash(secret))
            .await?
            .ok_or(Error::UnknownLink)?;
        let last = self.last_counted(&link, counted).await?;
        usable(&link, counted, last.as_deref()).map_err(|why| Error::LinkGone(why.into()))?;
        Ok(link)
    }

    /// Records a download through `link` from `ip` by `user_agent`,
    /// audited; a `counted` one uses up one of its downloads. Checked again
    /// inside the recording transaction, so that concurrent downloads
    /// cannot pass its limit together ([`Error::LinkGone`]).
    pub async fn record_download(
        &self,
        link: &Link,
        ip: &str,
        user_agent: &str,
        counted: bool,
    ) -> Result<(Link, Download)> {
        let last = self.last_counted(link, counted).await?;
        let mut refusal = None;
        let recorded = self
            .ledger()
            .record_download(link.id, ip, user_agent, counted, |now| {
                match usable(now, counted, last.as_deref()) {
                    Ok(()) => true,
                    Err(why) => {
                        refusal = Some(why);
                        false
                    }
                }
            })
            .await?;
        recorded.ok_or_else(|| Error::LinkGone(refusal.unwrap_or("it cannot be used").into()))
    }

    /// When `link` was last downloaded in full (a counted download), if
    /// it matters: only a resumed download (`counted` false) asks.
    async fn last_counted(&self, link: &Link, counted: bool) -> Result<Option<String>> {
        if counted {
            return Ok(None);
        }
        Ok(self
            .ledger()
            .downloads(Some(link.id))
            .await?
            .into_iter()
            .rev()
            .find(|d| d.counted)
            .map(|d| d.at))
    }

    /// Where `link`'s rendered copy is kept.
    pub fn link_copies_dir(&self, link: &Link) -> PathBuf {
        self.root().join(DELIVERIES_DIR).join("links").join(format!(
            "w{}-r{}-{}",
            link.work_id, link.recipient_id, link.format
        ))
    }

    /// `link`'s copy, if it was rendered for the link, recorded in the
    /// ledger and is still in place.
    pub async fn link_copy(&self, link: &Link) -> Result<Option<PathBuf>> {
        let dir = self.link_copies_dir(link);
        let copies = self
            .ledger()
            .checked_copies(link.work_id, Some(link.recipient_id))
            .await?;
        Ok(copies
            .into_iter()
            .filter(|c| c.format == link.format)
            .map(|c| PathBuf::from(c.path))
            .find(|p| p.parent() == Some(dir.as_path()) && p.is_file()))
    }

    /// Renders `link`'s copy into `out` (a sink of the caller's, over
    /// [`Home::link_copies_dir`]): [`Home::mark_work`] for its one
    /// recipient, recorded in the transaction that puts the file in place.
    pub async fn render_link(
        &self,
        link: &Link,
        out: Destination,
        progress: Arc<dyn Progress>,
    ) -> Result<MarkReport> {
        let format = Format::from_extension(&link.format)
            .ok_or_else(|| Error::Integrity(format!("link {} names no known format", link.id)))?;
        self.mark_work(
            link.work_id,
            Selection::Ids(vec![link.recipient_id]),
            out,
            format,
            MarkSettings::default(),
            progress,
        )
        .await
    }
}

/// The file name a downloaded copy is offered under: its own.
pub fn offered_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "copy".into())
}
