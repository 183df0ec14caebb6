//! Provider commands run in an incident's context, the one way the CLI and the API do it: on
//! the incident's own instance when it has the command, with the result (or the failure) in the
//! war room and the outputs merged into the incident's context, in one transaction.

use serde_json::json;
use watchfloor_core::{CommandLine, Entry};
use watchfloor_integrations::{RunError, Runner};
use watchfloor_storage::{Store, StoreError};

/// Why a command in an incident did not produce an entry.
#[derive(Debug, thiserror::Error)]
pub enum IncidentCommandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Runs `line` in incident `id` for `author`; `instance` overrides the incident's own.
pub async fn run_in_incident(
    store: &dyn Store,
    runner: &Runner,
    id: i64,
    line: &str,
    instance: Option<&str>,
    author: &str,
) -> Result<Entry, IncidentCommandError> {
    let incident = store
        .incident(id)
        .await?
        .ok_or(StoreError::NoIncident(id))?;
    let name = CommandLine::parse(line).map_err(RunError::from)?.name;
    let own = (!incident.is_manual() && runner.instance_has_command(&incident.instance, &name))
        .then_some(incident.instance.as_str());
    match runner.run(line, instance.or(own)).await {
        Ok(entry) => {
            let body = json!({"command": line, "text": entry.readable, "contents": entry.raw});
            store
                .record_command(id, author, &body, &entry.entry_context())
                .await?;
            Ok(entry)
        }
        Err(e) => {
            let body = json!({"command": line, "text": format!("failed: {e}")});
            store
                .record_command(id, author, &body, &serde_json::Map::new())
                .await?;
            Err(e.into())
        }
    }
}
