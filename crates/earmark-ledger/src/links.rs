//! Delivery links and their downloads. A link lets one recipient fetch
//! their copy of one work in one format, within its expiry and download
//! limit; its secret is never stored, only its SHA-256. Rows are MAC'd and
//! checked on every read, and every change (links made, revoked, each
//! counted download) is audited in the transaction that makes it.

use sqlx::Row;

use crate::integrity::mac_matches;
use crate::store::DbRow;
use crate::users::mac_of;
use crate::{now, Ledger, LedgerError};

/// A link, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// Ledger id.
    pub id: i64,
    /// The work it delivers.
    pub work_id: i64,
    /// Whose copy.
    pub recipient_id: i64,
    /// The copy's format (`wav`, `flac`, `mp3`, `opus`).
    pub format: String,
    /// When made (UTC, RFC 3339).
    pub created_at: String,
    /// When it stops working (UTC, RFC 3339), if ever.
    pub expires_at: Option<String>,
    /// How many downloads it allows, if limited.
    pub max_downloads: Option<i64>,
    /// Downloads so far (a resumed download counts once).
    pub downloads: i64,
    /// When revoked (UTC, RFC 3339), if it was.
    pub revoked_at: Option<String>,
}

/// A link to make: the secret's hash and what it delivers.
#[derive(Clone, Debug)]
pub struct NewLink {
    /// SHA-256 of the secret, hex.
    pub token_hash: String,
    /// The work.
    pub work_id: i64,
    /// The recipient.
    pub recipient_id: i64,
    /// The format.
    pub format: String,
    /// When it stops working (UTC, RFC 3339), if ever.
    pub expires_at: Option<String>,
    /// How many downloads it allows, if limited.
    pub max_downloads: Option<i64>,
}

/// One download through a link.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Download {
    /// Ledger id.
    pub id: i64,
    /// The link.
    pub link_id: i64,
    /// When it began (UTC, RFC 3339).
    pub at: String,
    /// The address it came from.
    pub ip: String,
    /// The client's `User-Agent`, as sent (at most 512 characters).
    pub user_agent: String,
    /// Whether it used up one of the link's downloads (`false`: it resumed
    /// an earlier one).
    pub counted: bool,
}

struct LinkRow {
    link: Link,
    token_hash: String,
    mac: Option<String>,
}

fn link_row(row: &DbRow) -> LinkRow {
    LinkRow {
        link: Link {
            id: row.get("id"),
            work_id: row.get("work_id"),
            recipient_id: row.get("recipient_id"),
            format: row.get("format"),
            created_at: row.get("created_at"),
            expires_at: row.get("expires_at"),
            max_downloads: row.get("max_downloads"),
            downloads: row.get("downloads"),
            revoked_at: row.get("revoked_at"),
        },
        token_hash: row.get("token_hash"),
        mac: row.get("mac"),
    }
}

const NONE: &str = "\u{0}none";

impl LinkRow {
    fn expected_mac(&self, ledger: &Ledger) -> String {
        let l = &self.link;
        mac_of(
            ledger,
            &[
                "link",
                &l.id.to_string(),
                &self.token_hash,
                &l.work_id.to_string(),
                &l.recipient_id.to_string(),
                &l.format,
                &l.created_at,
                l.expires_at.as_deref().unwrap_or(NONE),
                &l.max_downloads.map_or(NONE.to_string(), |m| m.to_string()),
                &l.downloads.to_string(),
                l.revoked_at.as_deref().unwrap_or(NONE),
            ],
        )
    }

    fn checked(self, ledger: &Ledger) -> Result<LinkRow, LedgerError> {
        mac_matches(
            &format!("link row {}", self.link.id),
            &self.mac,
            self.expected_mac(ledger),
        )
        .map_err(LedgerError::Tampered)?;
        Ok(self)
    }
}

fn download_from(row: &DbRow) -> (Download, Option<String>) {
    (
        Download {
            id: row.get("id"),
            link_id: row.get("link_id"),
            at: row.get("at"),
            ip: row.get("ip"),
            user_agent: row.get("user_agent"),
            counted: row.get::<i64, _>("counted") != 0,
        },
        row.get("mac"),
    )
}

fn download_mac(ledger: &Ledger, d: &Download) -> String {
    mac_of(
        ledger,
        &[
            "download",
            &d.id.to_string(),
            &d.link_id.to_string(),
            &d.at,
            &d.ip,
            &d.user_agent,
            if d.counted { "1" } else { "0" },
        ],
    )
}

impl Ledger {
    /// Records `links`, all or none, with one audit row naming them.
    pub async fn add_links(&self, links: &[NewLink]) -> Result<Vec<Link>, LedgerError> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let created_at = now();
        let mut made = Vec::with_capacity(links.len());
        for new in links {
            let row = sqlx::query(
                "INSERT INTO links (token_hash, work_id, recipient_id, format, created_at, \
                 expires_at, max_downloads) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
            )
            .bind(&new.token_hash)
            .bind(new.work_id)
            .bind(new.recipient_id)
            .bind(&new.format)
            .bind(&created_at)
            .bind(&new.expires_at)
            .bind(new.max_downloads)
            .fetch_one(&mut *tx)
            .await?;
            let stored = link_row(&row);
            sqlx::query("UPDATE links SET mac = ? WHERE id = ?")
                .bind(stored.expected_mac(self))
                .bind(stored.link.id)
                .execute(&mut *tx)
                .await?;
            made.push(stored.link);
        }
        let detail = serde_json::json!({
            "created": made.iter().map(|l| serde_json::json!({
                "link": l.id, "work": l.work_id, "recipient": l.recipient_id,
            })).collect::<Vec<_>>(),
            "format": links.first().map(|l| l.format.as_str()),
            "expires_at": links.first().and_then(|l| l.expires_at.as_deref()),
            "max_downloads": links.first().and_then(|l| l.max_downloads),
        });
        self.commit_audited(tx, "link", &detail.to_string()).await?;
        Ok(made)
    }

    /// Every link (of work `work` only, when given), by id, each checked.
    pub async fn links(&self, work: Option<i64>) -> Result<Vec<Link>, LedgerError> {
        let rows = match work {
            Some(w) => {
                sqlx::query("SELECT * FROM links WHERE work_id = ? ORDER BY id")
                    .bind(w)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM links ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| Ok(link_row(r).checked(self)?.link))
            .collect()
    }

    /// The link whose secret hashes to `token_hash`, checked; `None` if no
    /// link has it. Whether it still works is the caller's to judge.
    pub async fn link_by_hash(&self, token_hash: &str) -> Result<Option<Link>, LedgerError> {
        let row = sqlx::query("SELECT * FROM links WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(link_row(&r).checked(self)?.link))
            .transpose()
    }

    /// Revokes link `id` (revoking a revoked link changes nothing), audited.
    pub async fn revoke_link(&self, id: i64) -> Result<Link, LedgerError> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let mut stored = self.link_in(&mut tx, id).await?;
        if stored.link.revoked_at.is_some() {
            return Ok(stored.link);
        }
        stored.link.revoked_at = Some(now());
        sqlx::query("UPDATE links SET revoked_at = ?, mac = ? WHERE id = ?")
            .bind(&stored.link.revoked_at)
            .bind(stored.expected_mac(self))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({"revoked": id});
        self.commit_audited(tx, "link", &detail.to_string()).await?;
        Ok(stored.link)
    }

    async fn link_in(
        &self,
        tx: &mut crate::store::Transaction,
        id: i64,
    ) -> Result<LinkRow, LedgerError> {
        let row = sqlx::query("SELECT * FROM links WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(LedgerError::UnknownLink(id))?;
        link_row(&row).checked(self)
    }

    /// Records a download through link `id` from `ip` by `user_agent`,
    /// audited; when `counted`, the link's count goes up by one, unless
    /// `allowed` (given the link as it is now, inside the transaction)
    /// says no, when nothing is recorded and `None` is returned. Checking
    /// and counting in one transaction means concurrent downloads cannot
    /// pass a limit together.
    pub async fn record_download(
        &self,
        id: i64,
        ip: &str,
        user_agent: &str,
        counted: bool,
        allowed: impl FnOnce(&Link) -> bool + Send,
    ) -> Result<Option<(Link, Download)>, LedgerError> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let mut stored = self.link_in(&mut tx, id).await?;
        if !allowed(&stored.link) {
            return Ok(None);
        }
        if counted {
            stored.link.downloads += 1;
            sqlx::query("UPDATE links SET downloads = ?, mac = ? WHERE id = ?")
                .bind(stored.link.downloads)
                .bind(stored.expected_mac(self))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let user_agent: String = user_agent.chars().take(512).collect();
        let row = sqlx::query(
            "INSERT INTO downloads (link_id, at, ip, user_agent, counted) VALUES (?, ?, ?, ?, ?) \
             RETURNING *",
        )
        .bind(id)
        .bind(now())
        .bind(ip)
        .bind(&user_agent)
        .bind(i64::from(counted))
        .fetch_one(&mut *tx)
        .await?;
        let (download, _) = download_from(&row);
        sqlx::query("UPDATE downloads SET mac = ? WHERE id = ?")
            .bind(download_mac(self, &download))
            .bind(download.id)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({
            "link": id,
            "work": stored.link.work_id,
            "recipient": stored.link.recipient_id,
            "ip": ip,
            "user_agent": user_agent,
            "counted": counted,
        });
        self.commit_audited(tx, "download", &detail.to_string())
            .await?;
        Ok(Some((stored.link, download)))
    }

    /// The downloads through link `id` (or through every link, when
    /// `None`), oldest first, each row checked.
    pub async fn downloads(&self, link: Option<i64>) -> Result<Vec<Download>, LedgerError> {
        let rows = match link {
            Some(id) => {
                sqlx::query("SELECT * FROM downloads WHERE link_id = ? ORDER BY id")
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM downloads ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                let (download, mac) = download_from(r);
                mac_matches(
                    &format!("download row {}", download.id),
                    &mac,
                    download_mac(self, &download),
                )
                .map_err(LedgerError::Tampered)?;
                Ok(download)
            })
            .collect()
    }

    /// The links that deliver `recipient`'s copies of `work`, each checked.
    pub async fn links_of(&self, work: i64, recipient: i64) -> Result<Vec<Link>, LedgerError> {
        let rows =
            sqlx::query("SELECT * FROM links WHERE work_id = ? AND recipient_id = ? ORDER BY id")
                .bind(work)
                .bind(recipient)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok(link_row(r).checked(self)?.link))
            .collect()
    }
}
