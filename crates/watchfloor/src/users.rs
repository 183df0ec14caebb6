//! `watchfloor users`: the API's users, their roles and organizations, and their API keys.

use std::io::Read;

use serde_json::{Value, json};
use watchfloor_service::Service;
use watchfloor_storage::Role;

use crate::Failure;
use crate::output::headed_table;
use crate::work::{failed, local};

#[derive(clap::Subcommand)]
pub enum UsersAction {
    /// Add a user. The password comes from standard input with --password-stdin; otherwise one
    /// is made and printed once.
    Create {
        /// The user's name: letters, digits, `.`, `-`, `_` and `@`.
        name: String,
        /// admin, analyst or viewer.
        #[arg(long, value_name = "admin|analyst|viewer")]
        role: String,
        /// An organization the user sees (may be repeated); none: all.
        #[arg(long = "org", value_name = "ORG")]
        orgs: Vec<String>,
        /// Read the password from standard input (one line) instead of making one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// The users, their roles and organizations.
    List,
    /// Disable a user, revoke its API keys and end its sessions.
    Disable {
        /// The user.
        name: String,
    },
    /// Enable a disabled user again; its old keys stay revoked.
    Enable {
        /// The user.
        name: String,
    },
    /// Make an API key for a user and print it, alone, once. Its other keys keep working
    /// unless --replace.
    ApiKey {
        /// The user the key acts as.
        name: String,
        /// Revoke the user's other keys.
        #[arg(long)]
        replace: bool,
    },
    /// A user's API keys: id, when made, when revoked (never the keys themselves).
    Keys {
        /// The user.
        name: String,
    },
    /// Revoke one API key of a user, by the id `users keys` shows.
    RevokeKey {
        /// The user.
        name: String,
        /// The key's id, as `users keys` shows it.
        id: i64,
    },
}

fn usage(message: String) -> Failure {
    Failure::Usage(anyhow::anyhow!(message))
}

/// Runs a `users` command as a local administrator.
pub async fn run(service: &Service, action: UsersAction) -> Result<String, Failure> {
    let admin = local(None);
    match action {
        UsersAction::Create {
            name,
            role,
            orgs,
            password_stdin,
        } => {
            let role = Role::parse(&role).map_err(usage)?;
            let given = if password_stdin {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).map_err(|e| {
                    usage(format!("cannot read the password from standard input: {e}"))
                })?;
                let text = text.trim_end_matches(['\r', '\n']).to_string();
                if text.is_empty() {
                    return Err(usage("the password on standard input is empty".into()));
                }
                Some(text)
            } else {
                None
            };
            let (user, made) = service
                .create_user(&admin, &name, role, &orgs, given)
                .await
                .map_err(failed)?;
            Ok(match made {
                Some(password) => format!(
                    "created {} ({}); its password, shown this once: {password}",
                    user.name,
                    user.role.as_str()
                ),
                None => format!("created {} ({})", user.name, user.role.as_str()),
            })
        }
        UsersAction::List => {
            let users = service.users(&admin).await.map_err(failed)?;
            let rows: Vec<Value> = users
                .iter()
                .map(|u| {
                    json!({"Name": u.name, "Role": u.role.as_str(),
                           "Organizations": if u.orgs.is_empty() { "all".to_string() } else { u.orgs.join(", ") },
                           "Disabled": u.disabled})
                })
                .collect();
            Ok(headed_table(
                "Users",
                rows,
                &["Name", "Role", "Organizations", "Disabled"],
            ))
        }
        UsersAction::Disable { name } => {
            service.disable_user(&admin, &name).await.map_err(failed)?;
            Ok(format!("disabled {name}; its API keys are revoked"))
        }
        UsersAction::Enable { name } => {
            service.enable_user(&admin, &name).await.map_err(failed)?;
            Ok(format!(
                "enabled {name}; its old keys stay revoked: make it a new one with `users api-key {name}`"
            ))
        }
        UsersAction::ApiKey { name, replace } => service
            .new_api_key(&admin, &name, replace)
            .await
            .map(|(key, _)| key)
            .map_err(failed),
        UsersAction::Keys { name } => {
            let keys = service.api_keys(&admin, &name).await.map_err(failed)?;
            let rows: Vec<Value> = keys
                .iter()
                .map(|k| {
                    json!({"Key": k.id, "Made": k.created.to_rfc3339(),
                           "Revoked": k.revoked.map(|t| t.to_rfc3339()).unwrap_or_default()})
                })
                .collect();
            Ok(headed_table(
                &format!("API keys of {name}"),
                rows,
                &["Key", "Made", "Revoked"],
            ))
        }
        UsersAction::RevokeKey { name, id } => {
            service
                .revoke_api_key(&admin, &name, id)
                .await
                .map_err(failed)?;
            Ok(format!("revoked API key {id} of {name}"))
        }
    }
}

/// `watchfloor audit`: the audit log, newest first, as markdown or (with `json`) JSON.
pub async fn audit(
    service: &Service,
    since: Option<&str>,
    limit: usize,
    json: bool,
) -> Result<String, Failure> {
    let since = since
        .map(|t| watchfloor_core::time::parse_time(t, chrono::Utc::now()))
        .transpose()
        .map_err(|e| usage(format!("--since: {e}")))?;
    let events = service
        .audit(&local(None), since, limit)
        .await
        .map_err(failed)?;
    if json {
        return serde_json::to_string_pretty(&events)
            .map_err(|e| Failure::Command(anyhow::anyhow!("cannot write the audit log: {e}")));
    }
    let rows: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({"When": e.at.to_rfc3339(), "Who": e.actor,
                   "From": e.address.as_deref().unwrap_or("this machine"),
                   "What": e.action, "To": e.target, "Detail": e.detail})
        })
        .collect();
    Ok(headed_table(
        "Audit log",
        rows,
        &["When", "Who", "From", "What", "To", "Detail"],
    ))
}
