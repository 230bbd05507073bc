//! The people who use a home through the service: users with one role
//! each, their passwords (argon2 hashes, made by the caller) and their API
//! tokens (the SHA-256 of each secret, never the secret). Rows are MAC'd
//! like every record a decision relies on, and checked whenever they are
//! read, so that whoever can write the database but does not hold the key
//! cannot raise a role, revive a revoked token or plant a new one. Every
//! change is audited in the transaction that makes it.

use sqlx::Row;

use crate::integrity::mac_matches;
use crate::store::DbRow;
use crate::{is_unique_violation, now, Ledger, LedgerError, ROW_LABEL};

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Keeps the keys, the users and the recipient list.
    Admin,
    /// Adds works and marks them.
    Sender,
    /// Traces leaks.
    Analyst,
    /// Reads the audit log.
    Auditor,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Sender, Role::Analyst, Role::Auditor];

    /// The role's name, as stored and as typed.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Sender => "sender",
            Role::Analyst => "analyst",
            Role::Auditor => "auditor",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| format!("no role named {text:?}: admin, sender, analyst or auditor"))
    }
}

/// A user of the service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// Ledger id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Whether their password is the one-time password they were given.
    pub must_change_password: bool,
    /// When added (UTC, RFC 3339).
    pub created_at: String,
}

/// An API token, without its secret (which is never stored).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Token {
    /// Ledger id.
    pub id: i64,
    /// Whose it is.
    pub user_id: i64,
    /// What it is for, if given.
    pub label: Option<String>,
    /// When created (UTC, RFC 3339).
    pub created_at: String,
    /// When it stops working (UTC, RFC 3339), if ever.
    pub expires_at: Option<String>,
    /// When it was revoked (UTC, RFC 3339), if it was.
    pub revoked_at: Option<String>,
}

/// A user row as stored: the user, the password hash and the MAC.
struct UserRow {
    user: User,
    password_hash: String,
    mac: Option<String>,
}

/// A token row as stored: the token, the secret's hash and the MAC.
struct TokenRow {
    token: Token,
    token_hash: String,
    mac: Option<String>,
}

fn user_row(row: &DbRow) -> Result<UserRow, LedgerError> {
    let role: String = row.get("role");
    let id: i64 = row.get("id");
    Ok(UserRow {
        user: User {
            id,
            name: row.get("name"),
            role: role
                .parse()
                .map_err(|_| LedgerError::Tampered(format!("user row {id} has no known role")))?,
            must_change_password: row.get::<i64, _>("must_change_password") != 0,
            created_at: row.get("created_at"),
        },
        password_hash: row.get("password_hash"),
        mac: row.get("mac"),
    })
}

fn token_row(row: &DbRow) -> TokenRow {
    TokenRow {
        token: Token {
            id: row.get("id"),
            user_id: row.get("user_id"),
            label: row.get("label"),
            created_at: row.get("created_at"),
            expires_at: row.get("expires_at"),
            revoked_at: row.get("revoked_at"),
        },
        token_hash: row.get("token_hash"),
        mac: row.get("mac"),
    }
}

/// Length-prefixed fields under the row key, as for every MAC'd row.
pub(crate) fn mac_of(ledger: &Ledger, fields: &[&str]) -> String {
    let mut message = Vec::new();
    for field in fields {
        message.extend_from_slice(&(field.len() as u64).to_be_bytes());
        message.extend_from_slice(field.as_bytes());
    }
    hex::encode(ledger.row_key.mac(ROW_LABEL, &message))
}

impl UserRow {
    fn expected_mac(&self, ledger: &Ledger) -> String {
        let u = &self.user;
        mac_of(
            ledger,
            &[
                "user",
                &u.id.to_string(),
                &u.name,
                u.role.as_str(),
                &self.password_hash,
                if u.must_change_password { "1" } else { "0" },
                &u.created_at,
            ],
        )
    }

    fn checked(self, ledger: &Ledger) -> Result<UserRow, LedgerError> {
        mac_matches(
            &format!("user row {}", self.user.id),
            &self.mac,
            self.expected_mac(ledger),
        )
        .map_err(LedgerError::Tampered)?;
        Ok(self)
    }
}

impl TokenRow {
    fn expected_mac(&self, ledger: &Ledger) -> String {
        let t = &self.token;
        mac_of(
            ledger,
            &[
                "token",
                &t.id.to_string(),
                &t.user_id.to_string(),
                &self.token_hash,
                t.label.as_deref().unwrap_or("\u{0}none"),
                &t.created_at,
                t.expires_at.as_deref().unwrap_or("\u{0}none"),
                t.revoked_at.as_deref().unwrap_or("\u{0}none"),
            ],
        )
    }

    fn checked(self, ledger: &Ledger) -> Result<TokenRow, LedgerError> {
        mac_matches(
            &format!("token row {}", self.token.id),
            &self.mac,
            self.expected_mac(ledger),
        )
        .map_err(LedgerError::Tampered)?;
        Ok(self)
    }
}

impl Ledger {
    /// Adds a user whose password hash is `password_hash` (which they must
    /// change at first sign-in), audited.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<User, LedgerError> {
        let name = crate::names::normalise(name)?;
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let row = sqlx::query(
            "INSERT INTO users (name, role, password_hash, must_change_password, created_at) \
             VALUES (?, ?, ?, 1, ?) RETURNING *",
        )
        .bind(&name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                LedgerError::DuplicateUser(crate::names::printable(&name))
            } else {
                e.into()
            }
        })?;
        let stored = user_row(&row)?;
        sqlx::query("UPDATE users SET mac = ? WHERE id = ?")
            .bind(stored.expected_mac(self))
            .bind(stored.user.id)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({
            "added": stored.user.id, "name": stored.user.name, "role": role.as_str(),
        });
        self.commit_audited(tx, "user", &detail.to_string()).await?;
        Ok(stored.user)
    }

    /// Every user, by id, each row checked.
    pub async fn users(&self) -> Result<Vec<User>, LedgerError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(user_row(r)?.checked(self)?.user))
            .collect()
    }

    /// The user named `name` with their password hash, their row checked.
    pub async fn user_with_password(
        &self,
        name: &str,
    ) -> Result<Option<(User, String)>, LedgerError> {
        let name = crate::names::normalise(name)?;
        let row = sqlx::query("SELECT * FROM users WHERE name = ?")
            .bind(&name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let stored = user_row(&row)?.checked(self)?;
                Ok(Some((stored.user, stored.password_hash)))
            }
        }
    }

    /// Records a token for `user` whose secret hashes to `token_hash`,
    /// audited (the hash is not in the audit row).
    pub async fn add_token(
        &self,
        user: &User,
        token_hash: &str,
        label: Option<&str>,
        expires_at: Option<&str>,
    ) -> Result<Token, LedgerError> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let row = sqlx::query(
            "INSERT INTO tokens (user_id, token_hash, label, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(user.id)
        .bind(token_hash)
        .bind(label)
        .bind(now())
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await?;
        let stored = token_row(&row);
        sqlx::query("UPDATE tokens SET mac = ? WHERE id = ?")
            .bind(stored.expected_mac(self))
            .bind(stored.token.id)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({
            "created": stored.token.id, "user": user.id, "expires_at": expires_at,
        });
        self.commit_audited(tx, "token", &detail.to_string())
            .await?;
        Ok(stored.token)
    }

    /// Every token (of `user` only, when given), by id, each row checked.
    pub async fn tokens(&self, user: Option<i64>) -> Result<Vec<Token>, LedgerError> {
        let rows = match user {
            Some(id) => {
                sqlx::query("SELECT * FROM tokens WHERE user_id = ? ORDER BY id")
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM tokens ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| Ok(token_row(r).checked(self)?.token))
            .collect()
    }

    /// Revokes token `id` (revoking a revoked token changes nothing),
    /// audited.
    pub async fn revoke_token(&self, id: i64) -> Result<Token, LedgerError> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let row = sqlx::query("SELECT * FROM tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(LedgerError::UnknownToken(id))?;
        let mut stored = token_row(&row).checked(self)?;
        if stored.token.revoked_at.is_some() {
            return Ok(stored.token);
        }
        stored.token.revoked_at = Some(now());
        sqlx::query("UPDATE tokens SET revoked_at = ?, mac = ? WHERE id = ?")
            .bind(&stored.token.revoked_at)
            .bind(stored.expected_mac(self))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({"revoked": id, "user": stored.token.user_id});
        self.commit_audited(tx, "token", &detail.to_string())
            .await?;
        Ok(stored.token)
    }

    /// The token whose secret hashes to `token_hash`, with its user, both
    /// rows checked; `None` if no token has that hash. Whether it is
    /// expired or revoked is the caller's to judge.
    pub async fn token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<(Token, User)>, LedgerError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let token = token_row(&row).checked(self)?.token;
        let user = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(token.user_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                LedgerError::Tampered(format!("token row {} names no user", token.id))
            })?;
        Ok(Some((token, user_row(&user)?.checked(self)?.user)))
    }
}
