//! Users, passwords and API tokens of the team service, kept in the home's
//! ledger: a one-time password for each new user (stored as an argon2 hash),
//! and bearer tokens of 256 random bits, shown once and stored only as
//! their SHA-256. Which role may do what is [`permitted`]'s.

use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use earmark_ledger::LedgerError;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use earmark_ledger::{Role, Token, User};

use crate::home::hex;
use crate::{Error, Home, Result};

/// What every token's secret starts with, so that one pasted in the wrong
/// place is recognisable (and findable by secret scanners).
pub const TOKEN_PREFIX: &str = "emk_";
/// Random bytes in a token's secret.
const TOKEN_BYTES: usize = 32;
/// Random bytes in a one-time password.
const PASSWORD_BYTES: usize = 16;

/// A user just added, with the one-time password they sign in with first.
#[derive(Debug)]
pub struct NewUser {
    /// The user.
    pub user: User,
    /// Shown once; only its argon2 hash is kept.
    pub one_time_password: Zeroizing<String>,
}

/// A token just created, with its secret.
#[derive(Debug)]
pub struct NewToken {
    /// The token.
    pub token: Token,
    /// Shown once; only its SHA-256 is kept.
    pub secret: Zeroizing<String>,
}

/// `bytes` random bytes from the operating system, hex.
pub(crate) fn random_hex(bytes: usize) -> Result<Zeroizing<String>> {
    let mut buffer = Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(&mut buffer)
        .map_err(|e| Error::key(format!("the system's random source failed: {e}")))?;
    Ok(Zeroizing::new(hex(&buffer)))
}

/// The SHA-256 of a token's secret, hex: what the ledger keeps.
pub(crate) fn token_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Now plus `lifetime`, UTC, RFC 3339.
pub(crate) fn expiry(lifetime: Duration) -> Result<String> {
    let at = time::OffsetDateTime::now_utc()
        .checked_add(time::Duration::try_from(lifetime).map_err(|e| Error::Usage(e.to_string()))?)
        .ok_or_else(|| Error::Usage("that expiry is too far away".into()))?;
    Ok(at
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formats any date"))
}

/// Whether an RFC 3339 time is past.
pub(crate) fn is_past(at: &str) -> bool {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map_or(true, |t| t <= time::OffsetDateTime::now_utc())
}

impl Home {
    /// Adds a user with `role` and a new one-time password, audited.
    pub async fn add_user(&self, name: &str, role: Role) -> Result<NewUser> {
        let password = random_hex(PASSWORD_BYTES)?;
        let hash = {
            let password = password.clone();
            // Hashing takes tens of milliseconds of one core, by design.
            crate::blocking(move || {
                let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
                Argon2::default()
                    .hash_password(password.as_bytes(), &salt)
                    .map(|h| h.to_string())
                    .map_err(|e| Error::key(format!("cannot hash the password: {e}")))
            })
            .await?
        };
        let user = self.ledger().add_user(name, role, &hash).await?;
        Ok(NewUser {
            user,
            one_time_password: password,
        })
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<User>> {
        Ok(self.ledger().users().await?)
    }

    /// The user `name` if `password` is theirs; [`Error::Unauthorized`]
    /// otherwise, the same whether the name or the password is wrong.
    pub async fn check_password(&self, name: &str, password: &str) -> Result<User> {
        let refused = || Error::Unauthorized("wrong name or password".into());
        let Some((user, hash)) = self.ledger().user_with_password(name).await? else {
            return Err(refused());
        };
        let password = Zeroizing::new(password.to_string());
        let matches = crate::blocking(move || {
            Ok(PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            }))
        })
        .await?;
        if matches {
            Ok(user)
        } else {
            Err(refused())
        }
    }

    /// Creates a token for the user `user`, valid for `lifetime` (for ever
    /// when `None`), audited. The secret is in the result and nowhere else.
    pub async fn create_token(
        &self,
        user: &str,
        label: Option<&str>,
        lifetime: Option<Duration>,
    ) -> Result<NewToken> {
        let label = label
            .map(earmark_ledger::names::normalise)
            .transpose()
            .map_err(LedgerError::from)?;
        let Some((owner, _)) = self.ledger().user_with_password(user).await? else {
            return Err(LedgerError::UnknownUser(earmark_ledger::names::printable(user)).into());
        };
        let expires_at = lifetime.map(expiry).transpose()?;
        let secret = Zeroizing::new(format!("{TOKEN_PREFIX}{}", *random_hex(TOKEN_BYTES)?));
        let token = self
            .ledger()
            .add_token(
                &owner,
                &token_hash(&secret),
                label.as_deref(),
                expires_at.as_deref(),
            )
            .await?;
        Ok(NewToken { token, secret })
    }

    /// Every token (of the user `user` only, when given), without secrets.
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<Token>> {
        let owner = match user {
            None => None,
            Some(name) => match self.ledger().user_with_password(name).await? {
                Some((u, _)) => Some(u.id),
                None => {
                    return Err(
                        LedgerError::UnknownUser(earmark_ledger::names::printable(name)).into(),
                    )
                }
            },
        };
        Ok(self.ledger().tokens(owner).await?)
    }

    /// Revokes token `id`, audited.
    pub async fn revoke_token(&self, id: i64) -> Result<Token> {
        Ok(self.ledger().revoke_token(id).await?)
    }

    /// The user whose token `secret` is, if it is known, not expired and
    /// not revoked; [`Error::Unauthorized`] saying which otherwise.
    pub async fn authenticate_token(&self, secret: &str) -> Result<User> {
        let Some((token, user)) = self.ledger().token_by_hash(&token_hash(secret)).await? else {
            return Err(Error::Unauthorized("unknown token".into()));
        };
        if token.revoked_at.is_some() {
            return Err(Error::Unauthorized(format!(
                "token {} was revoked",
                token.id
            )));
        }
        if token.expires_at.as_deref().is_some_and(is_past) {
            return Err(Error::Unauthorized(format!(
                "token {} has expired",
                token.id
            )));
        }
        Ok(user)
    }
}

/// What a request asks to do, for [`permitted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Add users, create or revoke anyone's tokens.
    ManageUsers,
    /// Add, import, rename or remove recipients.
    ManageRecipients,
    /// List recipients.
    ReadRecipients,
    /// Register a work (upload a master).
    AddWorks,
    /// List works and their copies.
    ReadWorks,
    /// Mark a work for recipients.
    Mark,
    /// Trace a leak.
    Trace,
    /// Read and verify the audit log.
    ReadAudit,
}

/// Whether `role` may do `action`: an admin anything; a sender registers
/// and marks works; an analyst traces; an auditor reads the records.
pub fn permitted(role: Role, action: Action) -> bool {
    use Action as A;
    match role {
        Role::Admin => true,
        Role::Sender => matches!(
            action,
            A::AddWorks | A::ReadWorks | A::Mark | A::ReadRecipients
        ),
        Role::Analyst => matches!(action, A::Trace | A::ReadWorks),
        Role::Auditor => matches!(action, A::ReadAudit | A::ReadWorks | A::ReadRecipients),
    }
}
