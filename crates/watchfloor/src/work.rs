//! Working an incident from the CLI: who makes a change, the edits of `incidents update`, the
//! changes themselves (through the store's lifecycle rules), and the war room as a table.

use anyhow::Context;
use serde_json::{Value, json};
use watchfloor_core::table::{TableOptions, table_to_markdown};
use watchfloor_core::{Change, Edit, Label, Severity, SlaPolicy, Status};
use watchfloor_storage::{Store, WarRoomEntry};

/// Who makes a change, and the version it was made against.
#[derive(clap::Args, Debug)]
pub struct ChangeOpts {
    /// The user the change is recorded for (default: the OS user).
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// Refuse the change unless the incident is still at this version.
    #[arg(long, value_name = "VERSION")]
    pub if_version: Option<i64>,
}

impl ChangeOpts {
    pub fn author(&self) -> String {
        self.as_user
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "unknown".into())
    }
}

/// The edit `incidents update` asks for.
pub fn edit(
    status: Option<String>,
    severity: Option<String>,
    owner: Option<String>,
    unassign: bool,
    kind: Option<String>,
    labels: Vec<String>,
) -> Result<Edit, String> {
    let labels = labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok(Label {
                kind: k.trim().to_string(),
                value: v.trim().to_string(),
            }),
            _ => Err(format!("label `{l}` is not TYPE=VALUE")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let owner = match (owner, unassign) {
        (Some(o), _) => Some(Some(o)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    Ok(Edit {
        status: status.as_deref().map(Status::parse).transpose()?,
        severity: severity.as_deref().map(Severity::parse).transpose()?,
        owner,
        kind,
        labels,
    })
}

/// Applies a change and says what it did.
pub async fn change(
    store: &dyn Store,
    id: i64,
    opts: &ChangeOpts,
    change: &Change,
    sla: &SlaPolicy,
) -> anyhow::Result<String> {
    let changed = store
        .change_incident(id, opts.if_version, &opts.author(), change, sla)
        .await?;
    let what = match change {
        Change::Close { .. } => "closed",
        Change::Reopen => "reopened",
        Change::Update(_) => "updated",
    };
    Ok(format!(
        "incident {id} {what} (now version {})",
        changed.version
    ))
}

/// The war room as a table (or JSON), oldest first.
pub async fn entries(store: &dyn Store, id: i64, json_out: bool) -> anyhow::Result<String> {
    let entries = store
        .entries(id)
        .await
        .with_context(|| format!("cannot read the war room of incident {id}"))?;
    if json_out {
        return Ok(serde_json::to_string_pretty(&entries)?);
    }
    Ok(entries_table(
        &format!("War room of incident {id}"),
        &entries,
    ))
}

/// Entries as a markdown table: when, who, what kind, and what.
pub fn entries_table(title: &str, entries: &[WarRoomEntry]) -> String {
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({"Entry": e.id, "When": e.created.format(watchfloor_core::terminal::TIME_FORMAT).to_string(),
                   "Author": e.author, "Kind": e.kind, "What": e.text()})
        })
        .collect();
    let headers: Vec<String> = ["Entry", "When", "Author", "Kind", "What"]
        .map(String::from)
        .to_vec();
    table_to_markdown(
        title,
        &json!(rows),
        &TableOptions {
            headers: Some(&headers),
            ..TableOptions::default()
        },
    )
}

/// Runs a provider command in an incident's context (see
/// [`watchfloor_service::commands::run_in_incident`]). The CLI acts as a local administrator;
/// `--as USER` naming a user of the store applies that user's role and organizations.
pub async fn run_in_incident(
    store: &dyn Store,
    runner: &watchfloor_integrations::Runner,
    id: i64,
    line: &str,
    instance: Option<String>,
    opts: &ChangeOpts,
) -> anyhow::Result<watchfloor_core::Entry> {
    use watchfloor_service::commands::IncidentCommandError as E;
    let caller = match &opts.as_user {
        Some(name) => match store.user(name).await? {
            Some(user) if user.disabled => {
                anyhow::bail!("user `{name}` is disabled; run as another user or without --as")
            }
            Some(user) => watchfloor_service::Caller::of(&user),
            None => watchfloor_service::Caller::local(name),
        },
        None => watchfloor_service::Caller::local(&opts.author()),
    };
    let outcome = watchfloor_service::commands::run_in_incident(
        store,
        runner,
        &caller,
        id,
        line,
        instance.as_deref(),
    )
    .await
    .map_err(|e| match e {
        E::Run(e) => anyhow::Error::from(e),
        E::Store(e) => anyhow::Error::from(e),
        E::Forbidden(m) => anyhow::Error::from(CommandRefused(m)),
    })?;
    outcome.map_err(|e| match e {
        watchfloor_service::commands::CommandFailure::Run(e) => anyhow::Error::from(e),
        other => anyhow::Error::from(CommandRefused(other.to_string())),
    })
}

/// A command the caller may not run as written (refused, or a reference that does not
/// resolve): a usage error.
#[derive(Debug)]
pub struct CommandRefused(pub String);

impl std::fmt::Display for CommandRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandRefused {}
