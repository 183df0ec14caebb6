//! `watchfloor users`: the API's users, their roles and organizations, and their API keys.

use std::io::Read;

use serde_json::{Value, json};
use watchfloor_core::table::{TableOptions, table_to_markdown};
use watchfloor_service::Service;
use watchfloor_storage::Role;

use crate::Failure;
use crate::work::{failed, local};

#[derive(clap::Subcommand)]
pub enum UsersAction {
    /// Add a user. The password comes from standard input with --password-stdin; otherwise one
    /// is made and printed once.
    Create {
        name: String,
        /// admin, analyst or viewer.
        #[arg(long)]
        role: String,
        /// An organization the user sees (may be repeated); none: all.
        #[arg(long = "org")]
        orgs: Vec<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// The users, their roles and organizations.
    List,
    /// Disable a user and revoke its API keys.
    Disable { name: String },
    /// Make an API key for a user and print it, alone, once.
    ApiKey { name: String },
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
            let headers: Vec<String> = ["Name", "Role", "Organizations", "Disabled"]
                .map(String::from)
                .to_vec();
            Ok(table_to_markdown(
                "Users",
                &json!(rows),
                &TableOptions {
                    headers: Some(&headers),
                    ..TableOptions::default()
                },
            ))
        }
        UsersAction::Disable { name } => {
            service.disable_user(&admin, &name).await.map_err(failed)?;
            Ok(format!("disabled {name}; its API keys are revoked"))
        }
        UsersAction::ApiKey { name } => service.new_api_key(&admin, &name).await.map_err(failed),
    }
}
