//! What makes a verdict's records trustworthy: a MAC on every row a verdict
//! reads (recipients, works, copies), a MAC on the audit chain's head, and
//! the check that the copies table says what the audit chain recorded.
//!
//! The MACs are under keys derived from the home's master key, so whoever
//! can write the database but does not hold the key (a database
//! administrator of a shared ledger, a script gone wrong, a restored old
//! file) cannot rename a recipient, move a copy to someone else, delete
//! one, or roll the chain back without the next check naming the row.
//! Each MAC covers the row's id, so rows cannot be swapped either.

use std::collections::BTreeMap;

use earmark_keys::{Label, SecretKey};

use crate::{AuditEntry, CopyRecord, Recipient, Work, AUDIT_GENESIS};

/// Label of the key that MACs recipient, work and copy rows.
pub const ROW_LABEL: Label = Label("earmark/v1/ledger/row");
/// Label of the key that MACs the audit chain's head (`audit.head`).
pub const HEAD_LABEL: Label = Label("earmark/v1/ledger/audit-head");

/// A delivered copy's row as stored, with its ledger id and MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CopyRow {
    pub id: i64,
    pub copy: CopyRecord,
    pub mac: Option<String>,
}

/// Length-prefixed fields, so that no two different rows share a message.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn text(mut self, field: &str) -> Self {
        self.0
            .extend_from_slice(&(field.len() as u64).to_be_bytes());
        self.0.extend_from_slice(field.as_bytes());
        self
    }

    fn optional(mut self, field: Option<&str>) -> Self {
        match field {
            None => {
                self.0.push(0);
                self
            }
            Some(f) => {
                self.0.push(1);
                self.text(f)
            }
        }
    }

    fn int(mut self, field: i64) -> Self {
        self.0.extend_from_slice(&field.to_be_bytes());
        self
    }
}

/// The MAC of a recipient row.
pub(crate) fn recipient_mac(key: &SecretKey, r: &Recipient) -> String {
    let message = Message::default()
        .text("recipient")
        .int(r.id)
        .text(&r.name)
        .optional(r.email.as_deref())
        .optional(r.org.as_deref())
        .text(&r.created_at)
        .optional(r.retired_at.as_deref());
    hex::encode(key.mac(ROW_LABEL, &message.0))
}

/// The MAC of a work row.
pub(crate) fn work_mac(key: &SecretKey, w: &Work) -> String {
    let message = Message::default()
        .text("work")
        .int(w.id)
        .text(&w.content_hash)
        .optional(w.title.as_deref())
        .int(w.duration_s.to_bits() as i64)
        .int(w.rate)
        .int(w.channels)
        .text(&w.created_at)
        .text(&w.kind)
        .optional(w.words.map(|n| n.to_string()).as_deref());
    hex::encode(key.mac(ROW_LABEL, &message.0))
}

/// The MAC of a copy row.
pub(crate) fn copy_mac(key: &SecretKey, row: &CopyRow) -> String {
    let c = &row.copy;
    let message = Message::default()
        .text("copy")
        .int(row.id)
        .int(c.work_id)
        .int(c.recipient_id)
        .text(&c.payload)
        .text(&c.output_hash)
        .text(&c.format)
        .text(&c.path)
        .text(&c.created_at);
    hex::encode(key.mac(ROW_LABEL, &message.0))
}

/// The highest recipient and work ids a ledger had issued when its head
/// was written: the home's high-water mark of identifiers, which a restore
/// must not go below (identifiers seal a work and a recipient id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Issued {
    /// Highest recipient id issued.
    pub recipients: i64,
    /// Highest work id issued.
    pub works: i64,
}

impl Issued {
    /// Whether `self` has issued an id that `other` has not.
    pub fn ahead_of(&self, other: &Issued) -> bool {
        self.recipients > other.recipients || self.works > other.works
    }

    fn token(&self) -> String {
        format!("issued={}/{}", self.recipients, self.works)
    }

    fn parse(token: &str) -> Option<Issued> {
        let (recipients, works) = token.strip_prefix("issued=")?.split_once('/')?;
        Some(Issued {
            recipients: recipients.parse().ok()?,
            works: works.parse().ok()?,
        })
    }
}

/// The MAC of the audit head `seq hash`, with the ids issued. A head
/// written while an older ledger's rows are being sealed says so under its
/// MAC (`sealing`): only the key's holder can start sealing, so a database
/// writer who asks for the step again is refused ([`crate::Ledger`]'s
/// upgrade step).
pub(crate) fn head_mac(
    key: &SecretKey,
    seq: i64,
    hash: &str,
    issued: Option<Issued>,
    sealing: bool,
) -> String {
    let kind = if sealing { "head-sealing" } else { "head" };
    let mut message = Message::default().text(kind).int(seq).text(hash);
    if let Some(issued) = issued {
        message = message
            .text("issued")
            .int(issued.recipients)
            .int(issued.works);
    }
    hex::encode(key.mac(HEAD_LABEL, &message.0))
}

/// The word that marks a head written while sealing.
pub(crate) const SEALING: &str = "sealing";

/// The audit head as read from `audit.head`:
/// `seq hash [mac [issued=R/W] [sealing]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub seq: i64,
    pub hash: String,
    /// Absent in homes written before heads were authenticated.
    pub mac: Option<String>,
    /// The ids issued; absent in heads written before it was recorded.
    pub issued: Option<Issued>,
    /// Written between the start and the end of sealing an older ledger.
    pub sealing: bool,
}

impl Head {
    pub fn parse(text: &str) -> Option<Head> {
        let mut parts = text.split_whitespace();
        let seq = parts.next()?.parse().ok()?;
        let hash = parts.next()?.to_string();
        let mac = parts.next().map(str::to_string);
        let (mut issued, mut sealing) = (None, false);
        for part in parts {
            if part == SEALING && !sealing {
                sealing = true;
            } else if issued.is_none() && !sealing {
                issued = Some(Issued::parse(part)?);
            } else {
                return None;
            }
        }
        Some(Head {
            seq,
            hash,
            mac,
            issued,
            sealing,
        })
    }

    /// The head's line, MAC'd under `key`.
    pub fn line(key: &SecretKey, seq: i64, hash: &str, issued: Issued, sealing: bool) -> String {
        let mac = head_mac(key, seq, hash, Some(issued), sealing);
        let mark = if sealing { " sealing" } else { "" };
        format!("{seq} {hash} {mac} {}{mark}", issued.token())
    }

    /// Whether the head carries a valid MAC under `key`.
    pub fn authentic(&self, key: &SecretKey) -> bool {
        self.mac.as_ref().is_some_and(|mac| {
            *mac == head_mac(key, self.seq, &self.hash, self.issued, self.sealing)
        })
    }
}

/// The ids a snapshot's rows have issued.
pub(crate) fn issued_in(snapshot: &Snapshot) -> Issued {
    Issued {
        recipients: snapshot
            .recipients
            .iter()
            .map(|(r, _)| r.id)
            .max()
            .unwrap_or(0),
        works: snapshot.works.iter().map(|(w, _)| w.id).max().unwrap_or(0),
    }
}

/// Everything a check reads, taken from one snapshot of the database.
pub(crate) struct Snapshot {
    pub head: Option<Head>,
    pub audit: Vec<AuditEntry>,
    pub recipients: Vec<(Recipient, Option<String>)>,
    pub works: Vec<(Work, Option<String>)>,
    pub copies: Vec<CopyRow>,
}

/// What an intact ledger holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Audit rows.
    pub audit_rows: usize,
    /// Recipient rows.
    pub recipients: usize,
    /// Work rows.
    pub works: usize,
    /// Copy rows.
    pub copies: usize,
}

/// Whether the keys are this ledger's at all: the first audit row (written
/// by `init`) or the authenticated head verifies under them. When neither
/// does, the key was swapped (another home's, an old one), which is said
/// as such rather than as tampering with every row.
pub(crate) fn key_fits(audit_key: &SecretKey, head_key: &SecretKey, snapshot: &Snapshot) -> bool {
    let Some(first) = snapshot.audit.first() else {
        return true;
    };
    let first_verifies = crate::chain_hash(
        audit_key,
        &first.prev_hash,
        first.seq,
        &first.at,
        &first.action,
        &first.detail,
    ) == first.hash;
    let head_verifies = snapshot
        .head
        .as_ref()
        .is_some_and(|h| h.mac.is_none() || h.authentic(head_key));
    first_verifies || head_verifies
}

/// The audit chain's own check: hashes, links, numbering and the head
/// (whose MAC is required when `head_key` is given). Returns the number
/// of rows or the first break.
pub(crate) fn check_chain(
    audit_key: &SecretKey,
    head_key: Option<&SecretKey>,
    log: &[AuditEntry],
    head: Option<&Head>,
) -> Result<usize, String> {
    check_chain_span(audit_key, head_key, log, head, None)
}

/// [`check_chain`] of the consecutive rows `log`, which may start after row
/// 1: each row's hash, the links between them, their numbering and the
/// head. A span that starts at row 1 must start from the genesis hash;
/// one that starts later is vouched for by `anchor`, a row seq and hash
/// verified earlier, which the span must hold unchanged.
pub(crate) fn check_chain_span(
    audit_key: &SecretKey,
    head_key: Option<&SecretKey>,
    log: &[AuditEntry],
    head: Option<&Head>,
    anchor: Option<(i64, &str)>,
) -> Result<usize, String> {
    // Without an anchor the chain is checked from its first row.
    let first_seq = match (anchor, log.first()) {
        (Some(_), Some(first)) => first.seq,
        _ => 1,
    };
    let mut prev = match log.first() {
        Some(first) if first_seq > 1 => first.prev_hash.clone(),
        _ => AUDIT_GENESIS.to_string(),
    };
    for (i, entry) in log.iter().enumerate() {
        let expected_seq = first_seq + i as i64;
        if entry.seq != expected_seq {
            return Err(format!(
                "audit row {expected_seq} is missing (next row is {})",
                entry.seq
            ));
        }
        if entry.prev_hash != prev {
            return Err(format!(
                "audit row {} does not follow row {}",
                entry.seq,
                entry.seq - 1
            ));
        }
        let hash = crate::chain_hash(
            audit_key,
            &entry.prev_hash,
            entry.seq,
            &entry.at,
            &entry.action,
            &entry.detail,
        );
        if hash != entry.hash {
            return Err(format!("audit row {} was altered", entry.seq));
        }
        prev = entry.hash.clone();
    }
    let last = log.last().map_or(first_seq - 1, |e| e.seq);
    if let Some((seq, hash)) = anchor.filter(|&(seq, _)| seq > 0) {
        if seq > last {
            return Err(format!("audit rows {}–{seq} were deleted", last + 1));
        }
        match log.iter().find(|e| e.seq == seq) {
            Some(e) if e.hash == hash => {}
            Some(_) => return Err(format!("audit row {seq} was altered after it was verified")),
            None => return Err(format!("audit row {seq} is missing")),
        }
    }
    let Some(head) = head else {
        return if last == 0 {
            Ok(0)
        } else {
            Err("the recorded head of the audit chain (audit.head) is missing".into())
        };
    };
    if let Some(key) = head_key {
        if head.mac.is_none() {
            return Err("the recorded head of the audit chain is not authenticated".into());
        }
        if !head.authentic(key) {
            return Err("the recorded head of the audit chain (audit.head) was altered".into());
        }
    }
    if head.seq > last {
        Err(format!("audit rows {}–{} were deleted", last + 1, head.seq))
    } else if log
        .iter()
        .find(|e| e.seq == head.seq)
        .is_none_or(|e| e.hash != head.hash)
    {
        Err(format!(
            "audit row {} does not match the recorded head",
            head.seq
        ))
    } else {
        Ok(log.len())
    }
}

/// The latest delivery the chain recorded for each (work, recipient,
/// format): the audit row's seq and the copy's SHA-256.
pub(crate) type Deliveries = BTreeMap<(i64, i64, String), (i64, String)>;
/// The name the chain last gave each recipient, with the row that gave it.
pub(crate) type Names = BTreeMap<i64, (String, i64)>;

/// What a full check derived from the chain, kept so that later checks
/// read only the rows appended since: the last row verified, and the
/// deliveries and names the chain had recorded up to it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Verified {
    /// The last audit row verified (0: none).
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// Deliveries recorded up to it.
    pub deliveries: Deliveries,
    /// Names given up to it.
    pub names: Names,
}

impl Verified {
    /// Takes in the rows after [`Verified::seq`] (rows up to it are
    /// skipped), already checked as a chain.
    pub fn advance(&mut self, log: &[AuditEntry]) {
        let new: Vec<&AuditEntry> = log.iter().filter(|e| e.seq > self.seq).collect();
        fold_deliveries(&mut self.deliveries, new.iter().copied());
        fold_names(&mut self.names, new.iter().copied());
        if let Some(last) = new.last() {
            self.seq = last.seq;
            self.hash = last.hash.clone();
        }
    }

    /// The deliveries of `work`, for `recipient` only when given, as
    /// (recipient, format) → (audit seq, SHA-256).
    pub fn deliveries_of(&self, work: i64, recipient: Option<i64>) -> Deliveries {
        let (low, high) = match recipient {
            Some(r) => ((work, r, String::new()), (work, r + 1, String::new())),
            None => (
                (work, i64::MIN, String::new()),
                (work + 1, i64::MIN, String::new()),
            ),
        };
        self.deliveries
            .range(low..high)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Records every `mark` row's delivery in `deliveries`, later ones
/// replacing earlier ones of the same work, recipient and format.
fn fold_deliveries<'a>(deliveries: &mut Deliveries, log: impl Iterator<Item = &'a AuditEntry>) {
    for entry in log.filter(|e| e.action == "mark") {
        let Ok(detail) = serde_json::from_str::<serde_json::Value>(&entry.detail) else {
            continue;
        };
        let field = |name: &str| detail.get(name);
        let (Some(work), Some(recipient), Some(format), Some(hash)) = (
            field("work").and_then(|v| v.as_i64()),
            field("recipient").and_then(|v| v.as_i64()),
            field("format").and_then(|v| v.as_str()),
            field("output_hash").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        deliveries.insert(
            (work, recipient, format.to_string()),
            (entry.seq, hash.to_string()),
        );
    }
}

/// Records the names `recipient` rows give: added or imported under one,
/// renamed, removed.
fn fold_names<'a>(named: &mut Names, log: impl Iterator<Item = &'a AuditEntry>) {
    for entry in log.filter(|e| e.action == "recipient") {
        let Ok(detail) = serde_json::from_str::<serde_json::Value>(&entry.detail) else {
            continue;
        };
        let id = |key: &str| detail.get(key).and_then(|v| v.as_i64());
        let text = |key: &str| detail.get(key).and_then(|v| v.as_str()).map(str::to_string);
        if let (Some(id), Some(name)) = (id("added"), text("name")) {
            named.insert(id, (name, entry.seq));
        } else if let (Some(id), Some(to)) = (id("renamed"), text("to")) {
            named.insert(id, (to, entry.seq));
        } else if let Some(id) = id("removed") {
            named.remove(&id);
        } else if let Some(list) = detail.get("recipients").and_then(|v| v.as_array()) {
            for r in list {
                if let (Some(id), Some(name)) = (
                    r.get("id").and_then(|v| v.as_i64()),
                    r.get("name").and_then(|v| v.as_str()),
                ) {
                    named.insert(id, (name.to_string(), entry.seq));
                }
            }
        }
    }
}

/// Why `copies` (the rows of one work, or of one recipient's copies of
/// it) are not the deliveries the chain recorded for them, if they are not.
pub(crate) fn copies_match(copies: &[CopyRow], recorded: &Deliveries) -> Result<(), String> {
    let mut recorded = recorded.clone();
    for c in copies {
        match recorded.remove(&(c.copy.work_id, c.copy.recipient_id, c.copy.format.clone())) {
            None => {
                return Err(format!(
                    "copy row {} (work {}, recipient {}) has no delivery in the audit chain",
                    c.id, c.copy.work_id, c.copy.recipient_id
                ))
            }
            Some((seq, hash)) if hash != c.copy.output_hash => {
                return Err(format!(
                    "copy row {} differs from the delivery in audit row {seq}",
                    c.id
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(((work, recipient, format), (seq, _))) = recorded.into_iter().next() {
        return Err(format!(
            "the {format} copy of work {work} for recipient {recipient} (audit row {seq}) is missing from the copies table"
        ));
    }
    Ok(())
}

/// Why recipient row `r` does not carry the name the chain last gave it,
/// if it does not.
pub(crate) fn name_matches(r: &Recipient, names: &Names) -> Result<(), String> {
    match names.get(&r.id) {
        Some((name, seq)) if *name != r.name => Err(format!(
            "recipient row {} is named {}, but the audit chain (row {seq}) last named them {}",
            r.id,
            crate::names::printable(&r.name),
            crate::names::printable(name)
        )),
        _ => Ok(()),
    }
}

/// Why a row's stored MAC is not `expected`, naming the row as `what`.
pub(crate) fn mac_matches(
    what: &str,
    mac: &Option<String>,
    expected: String,
) -> Result<(), String> {
    match mac {
        None => Err(format!(
            "{what} carries no MAC: it was not written by earmark"
        )),
        Some(mac) if *mac != expected => Err(format!("{what} was altered")),
        Some(_) => Ok(()),
    }
}

/// The full check: the chain, every row's MAC, every copy's work and
/// recipient, and the copies table against the deliveries the chain
/// recorded (so a deleted or added copy row is found). The first problem
/// found is returned, naming the row; on success, what was checked and
/// what the chain says, for later checks to start from.
pub(crate) fn check(
    audit_key: &SecretKey,
    row_key: &SecretKey,
    head_key: &SecretKey,
    snapshot: &Snapshot,
) -> Result<(Counts, Verified), String> {
    let audit_rows = check_chain(
        audit_key,
        Some(head_key),
        &snapshot.audit,
        snapshot.head.as_ref(),
    )?;
    for (r, mac) in &snapshot.recipients {
        mac_matches(
            &format!("recipient row {}", r.id),
            mac,
            recipient_mac(row_key, r),
        )?;
    }
    for (w, mac) in &snapshot.works {
        mac_matches(&format!("work row {}", w.id), mac, work_mac(row_key, w))?;
    }
    for c in &snapshot.copies {
        mac_matches(&format!("copy row {}", c.id), &c.mac, copy_mac(row_key, c))?;
        if !snapshot.works.iter().any(|(w, _)| w.id == c.copy.work_id) {
            return Err(format!(
                "copy row {} names work {}, which is not in the ledger",
                c.id, c.copy.work_id
            ));
        }
        if !snapshot
            .recipients
            .iter()
            .any(|(r, _)| r.id == c.copy.recipient_id)
        {
            return Err(format!(
                "copy row {} names recipient {}, who is not in the ledger",
                c.id, c.copy.recipient_id
            ));
        }
    }
    let mut verified = Verified::default();
    verified.advance(&snapshot.audit);
    copies_match(&snapshot.copies, &verified.deliveries)?;
    names_follow_history(snapshot)?;
    Ok((
        Counts {
            audit_rows,
            recipients: snapshot.recipients.len(),
            works: snapshot.works.len(),
            copies: snapshot.copies.len(),
        },
        verified,
    ))
}

/// Every recipient's name is the one the audit chain last gave them: added
/// or imported under it, then renamed. The rows' MACs already say a row
/// was written under the key; this says it was written through a command
/// the chain recorded, so that even rows sealed again with the key cannot
/// swap two people's names unseen. Ids the chain never named (imports
/// recorded before imports listed their names) are not checked.
fn names_follow_history(snapshot: &Snapshot) -> Result<(), String> {
    let mut named = Names::new();
    fold_names(&mut named, snapshot.audit.iter());
    for (r, _) in &snapshot.recipients {
        name_matches(r, &named)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{names_follow_history, Snapshot};
    use crate::{AuditEntry, Recipient};

    fn entry(seq: i64, detail: serde_json::Value) -> AuditEntry {
        AuditEntry {
            seq,
            at: String::new(),
            action: "recipient".into(),
            detail: detail.to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn recipient(id: i64, name: &str) -> (Recipient, Option<String>) {
        let r = Recipient {
            id,
            name: name.into(),
            email: None,
            org: None,
            created_at: String::new(),
            retired_at: None,
        };
        (r, None)
    }

    /// Names that follow their additions, imports and renames pass; two
    /// names swapped behind the chain's back are refused, naming the row.
    #[test]
    fn names_must_be_the_ones_the_chain_last_gave() {
        let audit = vec![
            entry(2, serde_json::json!({"added": 1, "name": "Ana"})),
            entry(
                3,
                serde_json::json!({"imported": 2, "from": "p.csv",
                    "recipients": [{"id": 2, "name": "Bo"}, {"id": 3, "name": "Cy"}]}),
            ),
            entry(
                4,
                serde_json::json!({"renamed": 3, "from": "Cy", "to": "Cyd"}),
            ),
            // An import recorded before imports listed their names.
            entry(5, serde_json::json!({"imported": 1, "from": "old.csv"})),
        ];
        let snapshot = |names: &[(i64, &str)]| Snapshot {
            head: None,
            audit: audit.clone(),
            recipients: names.iter().map(|&(id, n)| recipient(id, n)).collect(),
            works: Vec::new(),
            copies: Vec::new(),
        };
        assert_eq!(
            names_follow_history(&snapshot(&[(1, "Ana"), (2, "Bo"), (3, "Cyd"), (4, "Dee")])),
            Ok(())
        );
        let swapped = names_follow_history(&snapshot(&[(1, "Bo"), (2, "Ana"), (3, "Cyd")]));
        assert!(
            swapped
                .as_ref()
                .is_err_and(|e| e.contains("recipient row 1 is named 'Bo'")),
            "{swapped:?}"
        );
        assert!(names_follow_history(&snapshot(&[(3, "Cy")])).is_err());
    }
}
