//! Provider commands run in an incident's context, the one way the CLI and the API do it: on
//! the incident's own instance when it has the command, with the result (or the failure) in the
//! war room and the outputs merged into the incident's context, in one transaction.

use serde_json::json;
use watchfloor_core::{CommandLine, Entry};
use watchfloor_integrations::{RunError, Runner};
use watchfloor_storage::{Store, StoreError, WarRoomEntry};

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
    let (outcome, _) = run_and_record(store, runner, id, line, instance, author).await?;
    Ok(outcome?)
}

/// As [`run_in_incident`], with the war-room entry that records the run, which holds the
/// result or the failure. A command line that cannot be read is not run and not recorded.
pub async fn run_and_record(
    store: &dyn Store,
    runner: &Runner,
    id: i64,
    line: &str,
    instance: Option<&str>,
    author: &str,
) -> Result<(Result<Entry, RunError>, WarRoomEntry), IncidentCommandError> {
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
            let recorded = store
                .record_command(id, author, &body, &entry.entry_context())
                .await?;
            Ok((Ok(entry), recorded))
        }
        Err(e) => {
            let body = json!({"command": line, "text": format!("failed: {e}"), "failed": true});
            let recorded = store
                .record_command(id, author, &body, &serde_json::Map::new())
                .await?;
            Ok((Err(e), recorded))
        }
    }
}
