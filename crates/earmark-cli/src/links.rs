//! `earmark link`: delivery links, made, listed and revoked from the
//! command line as through the service. A link's secret is printed once.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use crate::exit::Failure;
use crate::home::{open, print_json, FormatArg, Who};
use crate::users::lifetime;

/// What `earmark link` does.
#[derive(Subcommand)]
pub enum LinkAction {
    /// Make one delivery link per recipient to their copy of a work; the
    /// copy is rendered when the link is first used. Prints each link once.
    Create {
        /// The work's id (from `work list`).
        #[arg(long)]
        work: i64,
        #[command(flatten)]
        who: Who,
        /// The copies' format.
        #[arg(long, value_enum, default_value = "wav")]
        format: FormatArg,
        /// How long the links work, e.g. 30d, 12h (for ever if not given).
        #[arg(long)]
        expires: Option<String>,
        /// How many downloads each link allows (unlimited if not given).
        #[arg(long)]
        max_downloads: Option<u32>,
        /// The service's address, to print whole URLs.
        #[arg(long, default_value = "http://127.0.0.1:8750")]
        base_url: String,
        /// Print the links as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List links (never their secrets) with their downloads.
    List {
        /// Only this work's.
        #[arg(long)]
        work: Option<i64>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a link by id: it answers "gone" from then on.
    Revoke {
        /// The link's id (from `link list`).
        id: i64,
        /// Print the link as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `earmark link …`.
pub async fn link(home: Option<&Path>, action: LinkAction) -> Result<ExitCode, Failure> {
    let home = open(home).await?;
    match action {
        LinkAction::Create {
            work,
            who,
            format,
            expires,
            max_downloads,
            base_url,
            json,
        } => {
            let lifetime = lifetime(expires.as_deref())?;
            let made = home
                .create_links(
                    work,
                    &who.selection(),
                    format.into(),
                    lifetime,
                    max_downloads,
                )
                .await?;
            let base = base_url.trim_end_matches('/');
            if json {
                let all: Vec<serde_json::Value> = made
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "recipient": m.recipient,
                            "link": m.link,
                            "url": format!("{base}/d/{}", m.secret.as_str()),
                        })
                    })
                    .collect();
                print_json(&all);
            } else {
                for m in &made {
                    outln!(
                        "{}  {base}/d/{}",
                        earmark::terminal_safe(&m.recipient),
                        m.secret.as_str()
                    );
                }
            }
        }
        LinkAction::List { work, json } => {
            let links = home.links(work).await?;
            if json {
                print_json(&links);
            } else {
                for l in &links {
                    let state = if l.revoked_at.is_some() {
                        "revoked".to_string()
                    } else {
                        l.expires_at
                            .as_deref()
                            .map_or("no expiry".into(), |e| format!("expires {e}"))
                    };
                    let limit = l
                        .max_downloads
                        .map_or(String::new(), |m| format!(" of {m}"));
                    outln!(
                        "{}  work {}  recipient {}  {}  {} downloads{limit}  {state}",
                        l.id,
                        l.work_id,
                        l.recipient_id,
                        l.format,
                        l.downloads
                    );
                }
            }
        }
        LinkAction::Revoke { id, json } => {
            let link = home.revoke_link(id).await?;
            if json {
                print_json(&link);
            } else {
                outln!("revoked link {}", link.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
