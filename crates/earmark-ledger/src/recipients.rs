//! Recipients: added, imported, renamed and removed, each with its audit
//! row in the same transaction (the row names them, so that `verify` can
//! hold every current name to the chain's history).

use std::path::Path;

use crate::{
    insert_recipient, io, is_unique_violation, names, now, recipient_from, seal_recipient, Ledger,
    LedgerError, Recipient, Removal,
};

impl Ledger {
    /// Adds a recipient (names are unique), with its audit row in the same
    /// transaction.
    pub async fn add_recipient(
        &self,
        name: &str,
        email: Option<&str>,
        org: Option<&str>,
    ) -> Result<Recipient, LedgerError> {
        let name = names::normalise(name)?;
        let name = name.as_str();
        // Checked inside the write transaction: a concurrent "Bob" and
        // Cyrillic "Вob" cannot both get in.
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let existing = names_in(&mut tx, None).await?;
        new_name_fits(name, existing.iter().map(String::as_str))?;
        let recipient = insert_recipient(&mut tx, &self.row_key, name, email, org)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    LedgerError::DuplicateRecipient(names::printable(name))
                } else {
                    e.into()
                }
            })?;
        let detail = serde_json::json!({"added": recipient.id, "name": recipient.name});
        self.commit_audited(tx, "recipient", &detail.to_string())
            .await?;
        Ok(recipient)
    }

    /// Every recipient, by id.
    pub async fn recipients(&self) -> Result<Vec<Recipient>, LedgerError> {
        let rows = sqlx::query("SELECT * FROM recipients ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(recipient_from).collect())
    }

    /// Renames the recipient `old` to `new`, checked as [`Ledger::add_recipient`]
    /// checks a name (against everyone else), re-sealed and audited in one
    /// transaction. Their id, and so every copy's identifier, is unchanged.
    pub async fn rename_recipient(&self, old: &str, new: &str) -> Result<Recipient, LedgerError> {
        let current = self.recipients_named(&[old.to_string()]).await?.remove(0);
        let new = names::normalise(new)?;
        let renamed = Recipient {
            name: new,
            ..current.clone()
        };
        let detail = serde_json::json!({
            "renamed": current.id,
            "from": current.name,
            "to": renamed.name,
        })
        .to_string();
        async {
            let mut tx = crate::store::begin_write(&self.pool).await?;
            let others = names_in(&mut tx, Some(current.id)).await?;
            new_name_fits(&renamed.name, others.iter().map(String::as_str))?;
            sqlx::query("UPDATE recipients SET name = ? WHERE id = ?")
                .bind(&renamed.name)
                .bind(renamed.id)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        LedgerError::DuplicateRecipient(names::printable(&renamed.name))
                    } else {
                        e.into()
                    }
                })?;
            seal_recipient(&mut tx, &self.row_key, &renamed).await?;
            self.commit_audited(tx, "recipient", &detail).await
        }
        .await?;
        Ok(renamed)
    }

    /// Removes the recipient `name`, audited in the same transaction. One
    /// who holds copies is retired instead: kept, so that their copies
    /// still name them, but never marked for again. One who holds none is
    /// deleted.
    pub async fn remove_recipient(&self, name: &str) -> Result<Removal, LedgerError> {
        let current = self.recipients_named(&[name.to_string()]).await?.remove(0);
        async {
            let mut tx = crate::store::begin_write(&self.pool).await?;
            let copies: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM copies WHERE recipient_id = ?")
                    .bind(current.id)
                    .fetch_one(&mut *tx)
                    .await?;
            let removal = if copies > 0 {
                let retired = Recipient {
                    retired_at: Some(current.retired_at.clone().unwrap_or_else(now)),
                    ..current.clone()
                };
                sqlx::query("UPDATE recipients SET retired_at = ? WHERE id = ?")
                    .bind(&retired.retired_at)
                    .bind(retired.id)
                    .execute(&mut *tx)
                    .await?;
                seal_recipient(&mut tx, &self.row_key, &retired).await?;
                Removal::Retired {
                    recipient: retired,
                    copies: copies as usize,
                }
            } else {
                sqlx::query("DELETE FROM recipients WHERE id = ?")
                    .bind(current.id)
                    .execute(&mut *tx)
                    .await?;
                Removal::Deleted(current.clone())
            };
            let detail = match &removal {
                Removal::Retired { copies, .. } => serde_json::json!({
                    "retired": current.id, "name": current.name, "copies": copies,
                }),
                Removal::Deleted(_) => serde_json::json!({
                    "removed": current.id, "name": current.name,
                }),
            };
            self.commit_audited(tx, "recipient", &detail.to_string())
                .await?;
            Ok(removal)
        }
        .await
    }

    /// The recipients named, in the order given; an unknown name is an error.
    pub async fn recipients_named(&self, names: &[String]) -> Result<Vec<Recipient>, LedgerError> {
        let all = self.recipients().await?;
        names
            .iter()
            .map(|n| {
                // The stored spelling: NFC, trimmed (an NFD "José" is José).
                let wanted = names::normalise(n).unwrap_or_else(|_| n.trim().to_string());
                all.iter()
                    .find(|r| r.name == wanted)
                    .cloned()
                    .ok_or_else(|| LedgerError::UnknownRecipient(names::printable(&wanted)))
            })
            .collect()
    }

    /// The recipient with ledger id `id`.
    pub async fn recipient(&self, id: i64) -> Result<Option<Recipient>, LedgerError> {
        let row = sqlx::query("SELECT * FROM recipients WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(recipient_from))
    }

    /// Imports `name,email,org` rows (header required; email and org may be
    /// empty) read from `source` in one transaction: a bad row is reported
    /// with its line number in `path` (the name messages give the source)
    /// and nothing is imported.
    pub async fn import_recipients(
        &self,
        source: impl std::io::Read,
        path: &Path,
    ) -> Result<Vec<Recipient>, LedgerError> {
        let rows = read_recipient_csv(source, path)?;
        let bad = |line: u64, message: String| LedgerError::BadCsv {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut tx = crate::store::begin_write(&self.pool).await?;
        // Checked inside the write transaction, against the recipients
        // as they are when the rows go in.
        let existing = names_in(&mut tx, None).await?;
        let mut seen = names::Lookalikes::default();
        for name in &existing {
            seen.insert(name);
        }
        for (line, name, _, _) in &rows {
            if existing.iter().any(|e| e == name) {
                return Err(bad(
                    *line,
                    format!(
                        "a recipient named {} already exists",
                        names::printable(name)
                    ),
                ));
            }
            if let Some(other) = seen.insert(name) {
                return Err(bad(
                    *line,
                    format!(
                        "the name {} looks like {}; add something that tells them apart",
                        names::printable(name),
                        names::printable(&other)
                    ),
                ));
            }
        }
        let mut added = Vec::new();
        for (line, name, email, org) in &rows {
            let recipient = insert_recipient(
                &mut tx,
                &self.row_key,
                name,
                email.as_deref(),
                org.as_deref(),
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    LedgerError::BadCsv {
                        path: path.to_path_buf(),
                        line: *line,
                        message: format!("a recipient named '{name}' already exists"),
                    }
                } else {
                    e.into()
                }
            })?;
            added.push(recipient);
        }
        // Each name with its id, so that the chain holds every
        // recipient's name history (checked by `verify`).
        let detail = serde_json::json!({
            "imported": added.len(),
            "from": path.display().to_string(),
            "recipients": added
                .iter()
                .map(|r| serde_json::json!({"id": r.id, "name": r.name}))
                .collect::<Vec<_>>(),
        });
        self.commit_audited(tx, "recipient", &detail.to_string())
            .await?;
        Ok(added)
    }
}

/// A recipients CSV's rows: (line, name, email, org), names normalised.
pub type CsvRows = Vec<(u64, String, Option<String>, Option<String>)>;

/// Parses a recipients CSV (a header naming `name`, optionally `email` and
/// `org`) read from `source`, validating and normalising every name
/// ([`names::normalise`]); `path` names the source in messages. The first
/// bad row is the error, with its line.
pub fn read_recipient_csv(
    mut source: impl std::io::Read,
    path: &Path,
) -> Result<CsvRows, LedgerError> {
    let bad = |line: u64, message: String| LedgerError::BadCsv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut bytes = Vec::new();
    source.read_to_end(&mut bytes).map_err(io(path))?;
    let text = String::from_utf8(bytes).map_err(|_| bad(1, "not UTF-8 text".into()))?;
    // The csv crate reads an unclosed quote to the end of the file, taking
    // every later row into one name: refused, at the quote's line.
    if text.matches('"').count() % 2 == 1 {
        let at = text.rfind('"').unwrap_or(0);
        let line = text[..at].matches('\n').count() as u64 + 1;
        return Err(bad(line, "a quote is opened and never closed".into()));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    for (i, h) in headers.iter().enumerate() {
        if headers
            .iter()
            .skip(i + 1)
            .any(|other| other.eq_ignore_ascii_case(h))
        {
            return Err(bad(1, format!("the header names the column '{h}' twice")));
        }
    }
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let name_col =
        column("name").ok_or_else(|| bad(1, "the header must name a 'name' column".into()))?;
    let (email_col, org_col) = (column("email"), column("org"));
    let mut rows: CsvRows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| bad(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != headers.len() {
            return Err(bad(
                line,
                format!("{} fields, the header has {}", record.len(), headers.len()),
            ));
        }
        let field = |col: Option<usize>| {
            col.and_then(|c| record.get(c))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let raw = field(Some(name_col)).unwrap_or_default();
        let name = names::normalise(&raw).map_err(|e| bad(line, e.to_string()))?;
        if rows.iter().any(|r| r.1 == name) {
            return Err(bad(
                line,
                format!("{} appears twice", names::printable(&name)),
            ));
        }
        rows.push((line, name, field(email_col), field(org_col)));
    }
    if rows.is_empty() {
        return Err(bad(1, "no recipients in the file".into()));
    }
    Ok(rows)
}

/// The names of the recipients, but the one with id `except`, as the
/// transaction `tx` sees them.
async fn names_in(
    tx: &mut crate::store::Connection,
    except: Option<i64>,
) -> Result<Vec<String>, LedgerError> {
    let names: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM recipients")
        .fetch_all(&mut *tx)
        .await?;
    Ok(names
        .into_iter()
        .filter(|(id, _)| Some(*id) != except)
        .map(|(_, name)| name)
        .collect())
}

/// Refuses `name` if one of `existing` is it, or looks like it.
fn new_name_fits<'a>(
    name: &str,
    existing: impl Iterator<Item = &'a str> + Clone,
) -> Result<(), LedgerError> {
    if existing.clone().any(|e| e == name) {
        return Err(LedgerError::DuplicateRecipient(names::printable(name)));
    }
    if let Some(other) = names::confusable_with(name, existing) {
        return Err(LedgerError::ConfusableRecipient {
            name: names::printable(name),
            existing: names::printable(other),
        });
    }
    Ok(())
}
