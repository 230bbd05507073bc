//! `earmark user` and `earmark token`: the service's
//! people who use the home through it, and their API tokens. Secrets (a one-time password, a
//! token) are printed once and never again.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use earmark::{Role, TOKEN_PREFIX};

use crate::exit::Failure;
use crate::home::{open, print_json};

/// `earmark user …`.
#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Add a user with a role; prints their one-time password, once.
    Add {
        /// Name.
        name: String,
        /// What they may do: admin, sender, analyst or auditor.
        #[arg(long)]
        role: String,
        /// Print the user and the password as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `earmark token …`.
#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Create an API token for a user; prints it, once.
    Create {
        /// Whose token it is.
        #[arg(long)]
        user: String,
        /// How long it works, e.g. 30d, 12h (for ever if not given).
        #[arg(long)]
        expires: Option<String>,
        /// What it is for.
        #[arg(long)]
        label: Option<String>,
        /// Print the token and its secret as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token's id (from `token list`).
        id: i64,
        /// Print the token as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The `--role` given, checked: one line when it is not a role.
fn role(text: &str) -> Result<Role, Failure> {
    text.parse()
        .map_err(|e: String| Failure::usage(format!("--role: {e}")))
}

/// The `--expires` given ("30d", "12h"), checked.
pub(crate) fn lifetime(text: Option<&str>) -> Result<Option<std::time::Duration>, Failure> {
    text.map(|t| {
        humantime::parse_duration(t)
            .map_err(|e| Failure::usage(format!("--expires {t:?}: {e}; for example 30d or 12h")))
    })
    .transpose()
}

/// `earmark user …`.
pub async fn user(home: Option<&Path>, action: UserAction) -> Result<ExitCode, Failure> {
    let home = open(home).await?;
    match action {
        UserAction::Add {
            name,
            role: text,
            json,
        } => {
            let added = home.add_user(&name, role(&text)?).await?;
            if json {
                print_json(&serde_json::json!({
                    "user": added.user,
                    "one_time_password": added.one_time_password.as_str(),
                }));
            } else {
                outln!(
                    "added {} {} ({}); one-time password, shown once: {}",
                    added.user.role.as_str(),
                    earmark::terminal_safe(&added.user.name),
                    added.user.id,
                    added.one_time_password.as_str()
                );
            }
        }
        UserAction::List { json } => {
            let users = home.users().await?;
            if json {
                print_json(&users);
            } else {
                for u in &users {
                    outln!(
                        "{:>4}  {:<8}  {}",
                        u.id,
                        u.role.as_str(),
                        earmark::terminal_safe(&u.name)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `earmark token …`.
pub async fn token(home: Option<&Path>, action: TokenAction) -> Result<ExitCode, Failure> {
    let home = open(home).await?;
    match action {
        TokenAction::Create {
            user,
            expires,
            label,
            json,
        } => {
            let lifetime = lifetime(expires.as_deref())?;
            let created = home.create_token(&user, label.as_deref(), lifetime).await?;
            if json {
                print_json(&serde_json::json!({
                    "token": created.token,
                    "secret": created.secret.as_str(),
                }));
            } else {
                outln!(
                    "token {} for {}{}; shown once:",
                    created.token.id,
                    earmark::terminal_safe(&user),
                    created
                        .token
                        .expires_at
                        .as_deref()
                        .map(|at| format!(", expires {at}"))
                        .unwrap_or_default()
                );
                outln!("{}", created.secret.as_str());
            }
        }
        TokenAction::List { user, json } => {
            let tokens = home.tokens(user.as_deref()).await?;
            if json {
                print_json(&tokens);
            } else {
                for t in &tokens {
                    let state = match (&t.revoked_at, &t.expires_at) {
                        (Some(at), _) => format!("revoked {at}"),
                        (None, Some(at)) => format!("expires {at}"),
                        (None, None) => "does not expire".into(),
                    };
                    outln!(
                        "{:>4}  user {:<4}  {TOKEN_PREFIX}…  {state}{}",
                        t.id,
                        t.user_id,
                        t.label
                            .as_deref()
                            .map(|l| format!("  {}", earmark::terminal_safe(l)))
                            .unwrap_or_default()
                    );
                }
            }
        }
        TokenAction::Revoke { id, json } => {
            let revoked = home.revoke_token(id).await?;
            if json {
                print_json(&revoked);
            } else {
                outln!("revoked token {}", revoked.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
