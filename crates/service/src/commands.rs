//! Provider commands run in an incident's context, the one way every front end does it: the
//! caller's right to the incident checked, `${...}` references resolved, the organization rule
//! applied for a caller who does not see every organization, the command run on the
//! incident's own instance when it has the command, and the result (or the failure) recorded
//! in the war room with the outputs merged into the incident's context, in one transaction.

use serde_json::json;
use watchfloor_core::{CommandLine, Entry};
use watchfloor_integrations::{RunError, Runner};
use watchfloor_storage::{Scope, Store, StoreError, WarRoomEntry};

use crate::tenancy::{self, Refusal};
use crate::{Caller, Service, ServiceError};

/// Why a command that was read did not produce an entry; recorded in the war room.
#[derive(Debug, thiserror::Error)]
pub enum CommandFailure {
    /// The provider or the command failed, or the line names an unknown command or instance.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A `${...}` reference that does not resolve.
    #[error("{0}")]
    Reference(String),
    /// The organization rule refuses it; the provider saw no request.
    #[error("refused: {0}")]
    Refused(String),
}

impl Service {
    /// Runs `line` in incident `id` for `caller`; `instance` asks for another instance than
    /// the incident's own.
    pub async fn run_in_incident(
        &self,
        caller: &Caller,
        id: i64,
        line: &str,
        instance: Option<&str>,
    ) -> Result<Result<Entry, CommandFailure>, ServiceError> {
        let (outcome, _) = self.run_and_record(caller, id, line, instance).await?;
        Ok(outcome)
    }

    /// As [`Service::run_in_incident`], with the war-room entry that records the run, which
    /// holds the result or the failure. An incident the caller cannot see does not exist for
    /// it; a viewer runs nothing; a command line that cannot be read is not run and not
    /// recorded.
    pub async fn run_and_record(
        &self,
        caller: &Caller,
        id: i64,
        line: &str,
        instance: Option<&str>,
    ) -> Result<(Result<Entry, CommandFailure>, WarRoomEntry), ServiceError> {
        let parsed = CommandLine::parse(line).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        self.run_parsed_and_record(caller, id, parsed, line, instance)
            .await
    }

    /// As [`Service::run_and_record`], for a line already read (a rule's, whose references it
    /// filled in value by value); `line` is how the war room shows it.
    pub async fn run_parsed_and_record(
        &self,
        caller: &Caller,
        id: i64,
        parsed: CommandLine,
        line: &str,
        instance: Option<&str>,
    ) -> Result<(Result<Entry, CommandFailure>, WarRoomEntry), ServiceError> {
        let incident = self.changeable(caller, id).await?;
        let runner = self.runner()?;
        let store = &*self.store;
        let outcome = run_parsed(store, runner, caller, &incident, parsed, instance).await;
        let (outcome, body, context) = match outcome {
            Ok(entry) => {
                let body = json!({"command": line, "text": entry.readable, "contents": entry.raw});
                let context = entry.entry_context();
                (Ok(entry), body, context)
            }
            Err(Step::Store(e)) => return Err(e.into()),
            Err(Step::Failed(e)) => {
                let body = json!({"command": line, "text": format!("failed: {e}"), "failed": true});
                (Err(e), body, serde_json::Map::new())
            }
        };
        let recorded = store
            .record_command(id, &caller.name, &body, &context)
            .await?;
        Ok((outcome, recorded))
    }
}

enum Step {
    Store(StoreError),
    Failed(CommandFailure),
}

impl From<CommandFailure> for Step {
    fn from(e: CommandFailure) -> Self {
        Step::Failed(e)
    }
}

async fn run_parsed(
    store: &dyn Store,
    runner: &Runner,
    caller: &Caller,
    incident: &watchfloor_core::Incident,
    mut parsed: CommandLine,
    instance: Option<&str>,
) -> Result<Entry, Step> {
    if parsed.values_mut().any(|v| v.contains("${")) {
        let context = store.context(incident.id).await.map_err(Step::Store)?;
        crate::refs::resolve(&mut parsed, incident, &context).map_err(CommandFailure::Reference)?;
    }
    let own = (!incident.is_manual()
        && runner.instance_has_command(&incident.instance, &parsed.name))
    .then_some(incident.instance.as_str());
    // `instance` or `using=` asks for another instance; else the incident's own.
    let instance = match (instance, &parsed.using) {
        (None, None) => own,
        (given, _) => given,
    };
    let mut prepared = runner
        .prepare(parsed, instance)
        .map_err(CommandFailure::Run)?;
    let narrow = match &caller.scope {
        Scope::All => None,
        Scope::Orgs(orgs) => Some(
            tenancy::check(store, incident, orgs, &mut prepared)
                .await
                .map_err(|e| match e {
                    Refusal::Refused(m) => Step::Failed(CommandFailure::Refused(m)),
                    Refusal::Store(e) => Step::Store(e),
                })?,
        ),
    };
    let entry = runner
        .execute(&prepared)
        .await
        .map_err(CommandFailure::Run)?;
    Ok(match narrow {
        Some(n) => tenancy::narrow(&n, prepared.command, entry),
        None => entry,
    })
}
