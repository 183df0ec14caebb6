//! From a command line to an entry: parse, find the command, pick the instance, bind the
//! arguments, execute. The CLI, and later the HTTP API, share this one path.

use std::collections::BTreeMap;
use std::time::Duration;

use watchfloor_core::{Args, CommandDef, CommandLine, Config, Entry, IntegrationDef, UsageError};

use crate::{CommandError, Instance, Integration};

/// Why a command line did not produce an entry.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error("{0}")]
    Instance(String),
    #[error("instance `{instance}`: {error}")]
    Command {
        instance: String,
        error: Box<CommandError>,
    },
}

impl RunError {
    /// Usage and configuration mistakes (including argument values the command rules out), as
    /// opposed to provider or command failures.
    pub fn is_usage(&self) -> bool {
        match self {
            RunError::Command { error, .. } => {
                matches!(
                    **error,
                    CommandError::Invalid(_) | CommandError::NotConfigured(_)
                )
            }
            _ => true,
        }
    }
}

/// How long one command may run in all, every page and retry included, unless
/// [`Runner::with_deadline`] says otherwise.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(300);

/// Configured instances of the built-in integrations, ready to run commands.
pub struct Runner {
    integrations: &'static [&'static Integration],
    instances: BTreeMap<String, Connected>,
    deadline: Duration,
}

/// A connected instance and the index of its integration. An instance that could not be set
/// up keeps its error, reported when it is used, so it does not stop the others.
struct Connected {
    integration: usize,
    instance: Result<Box<dyn Instance>, String>,
    fetch: watchfloor_core::FetchSettings,
    mirror: watchfloor_core::Mirror,
    organization: Option<String>,
}

/// A command line with its command found and its instance picked, not yet run
/// ([`Runner::prepare`]).
pub struct Prepared<'a> {
    /// The line as it will run; a caller may rewrite its arguments before [`Runner::execute`].
    pub line: CommandLine,
    pub instance: &'a str,
    pub integration: &'a IntegrationDef,
    pub command: &'a CommandDef,
    /// The one organization the instance serves, if the config binds it to one.
    pub organization: Option<&'a str>,
    connected: &'a Connected,
}

/// A configured instance, for the fetch engine.
pub struct InstanceRef<'a> {
    pub name: &'a str,
    pub integration: &'a str,
    pub instance: &'a dyn Instance,
    pub fetch: &'a watchfloor_core::FetchSettings,
    pub mirror: watchfloor_core::Mirror,
    /// The one organization the instance serves, if the config binds it to one.
    pub organization: Option<&'a str>,
}

impl Runner {
    /// Connects every instance of `config`. Connecting makes no network call; an instance that
    /// cannot be set up reports why when a command runs on it.
    pub fn new(
        integrations: &'static [&'static Integration],
        config: &Config,
    ) -> Result<Self, RunError> {
        let mut instances = BTreeMap::new();
        for inst in &config.instances {
            let Some(index) = integrations
                .iter()
                .position(|i| i.definition().id == inst.integration)
            else {
                return Err(RunError::Instance(format!(
                    "instance `{}` uses unknown integration `{}`",
                    inst.name, inst.integration
                )));
            };
            let connected = integrations[index].connect(inst).map_err(|e| e.to_string());
            if let Err(error) = &connected {
                tracing::warn!(instance = %inst.name, %error, "instance cannot be set up");
            }
            instances.insert(
                inst.name.clone(),
                Connected {
                    integration: index,
                    instance: connected,
                    fetch: inst.fetch.clone(),
                    mirror: inst.mirror,
                    organization: inst.organization.clone(),
                },
            );
        }
        Ok(Runner {
            integrations,
            instances,
            deadline: COMMAND_DEADLINE,
        })
    }

    /// How long one command may run in all before it fails.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn definitions(&self) -> Vec<&IntegrationDef> {
        self.integrations.iter().map(|i| i.definition()).collect()
    }

    /// A configured instance by name, or why it cannot be used.
    pub fn instance(&self, name: &str) -> Result<InstanceRef<'_>, RunError> {
        let Some((key, connected)) = self.instances.get_key_value(name) else {
            return Err(self.unknown_instance(name));
        };
        let instance = connected
            .instance
            .as_deref()
            .map_err(|e| RunError::Command {
                instance: name.to_string(),
                error: Box::new(CommandError::NotConfigured(e.clone())),
            })?;
        Ok(InstanceRef {
            name: key,
            integration: &self.integrations[connected.integration].definition().id,
            instance,
            fetch: &connected.fetch,
            mirror: connected.mirror,
            organization: connected.organization.as_deref(),
        })
    }

    fn unknown_instance(&self, name: &str) -> RunError {
        RunError::Instance(format!(
            "no instance named `{name}`; configured instances: {}",
            list_or_none(&self.instance_names())
        ))
    }

    /// Which way instance `name` mirrors, if it is configured.
    pub fn mirror_of(&self, name: &str) -> Option<watchfloor_core::Mirror> {
        self.instances.get(name).map(|c| c.mirror)
    }

    /// Whether instance `name` can run `command`.
    pub fn instance_has_command(&self, name: &str, command: &str) -> bool {
        self.instances.get(name).is_some_and(|c| {
            self.integrations[c.integration]
                .definition()
                .command(command)
                .is_some()
        })
    }

    /// Names of instances with `fetch = true`, sorted.
    pub fn fetching_instances(&self) -> Vec<&str> {
        self.instances
            .iter()
            .filter(|(_, c)| c.fetch.enabled)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Names of configured instances, sorted.
    pub fn instance_names(&self) -> Vec<&str> {
        self.instances.keys().map(String::as_str).collect()
    }

    /// Finds a command by name in any integration, or suggests the closest names.
    pub fn find_command(&self, name: &str) -> Result<Vec<(usize, &CommandDef)>, UsageError> {
        let found: Vec<(usize, &CommandDef)> = self
            .integrations
            .iter()
            .enumerate()
            .filter_map(|(i, integ)| integ.definition().command(name).map(|c| (i, c)))
            .collect();
        if found.is_empty() {
            let all = self
                .integrations
                .iter()
                .flat_map(|i| i.definition().commands.iter().map(|c| c.name.as_str()));
            return Err(UsageError::unknown_command(name, all));
        }
        Ok(found)
    }

    /// Runs `line` (`!command args…`) on `instance`, or on the `using=` instance, or on the one
    /// configured instance that has the command.
    pub async fn run(&self, line: &str, instance: Option<&str>) -> Result<Entry, RunError> {
        let prepared = self.prepare(CommandLine::parse(line)?, instance)?;
        self.execute(&prepared).await
    }

    /// Finds a parsed line's command and picks its instance (`instance`, else `using=`, else
    /// the one configured instance that has the command), without running it, so that the
    /// caller can check or rewrite it first.
    pub fn prepare(
        &self,
        line: CommandLine,
        instance: Option<&str>,
    ) -> Result<Prepared<'_>, RunError> {
        let found = self.find_command(&line.name)?;
        let chosen = match (instance, line.using.as_deref()) {
            (Some(a), Some(b)) if a != b => {
                return Err(RunError::Instance(format!(
                    "--instance `{a}` and using=`{b}` disagree; give one"
                )));
            }
            (Some(name), _) | (None, Some(name)) => Some(name),
            (None, None) => None,
        };
        let (name, connected) = self.pick_instance(&line.name, &found, chosen)?;
        let command = found
            .iter()
            .find(|(i, _)| *i == connected.integration)
            .map(|(_, c)| *c)
            .expect("picked among found");
        Ok(Prepared {
            line,
            instance: name,
            integration: self.integrations[connected.integration].definition(),
            command,
            organization: connected.organization.as_deref(),
            connected,
        })
    }

    /// Binds a prepared line's arguments and runs it.
    pub async fn execute(&self, prepared: &Prepared<'_>) -> Result<Entry, RunError> {
        let (def, name, connected) = (prepared.command, prepared.instance, prepared.connected);
        let args = Args::bind(def, &prepared.line)?;
        let span = tracing::info_span!("command", command = %def.name, instance = %name);
        let _guard = span.enter();
        let instance = connected.instance.as_ref().map_err(|e| RunError::Command {
            instance: name.to_string(),
            error: Box::new(CommandError::NotConfigured(e.clone())),
        })?;
        let work = async {
            match def.name == crate::TEST_MODULE {
                true => instance
                    .test()
                    .await
                    .map(|()| Entry::text("ok", serde_json::json!("ok"))),
                false => instance.execute(def, &args).await,
            }
        };
        let result = tokio::time::timeout(self.deadline, work)
            .await
            .unwrap_or_else(|_| Err(CommandError::Deadline(self.deadline)));
        result.map_err(|error| RunError::Command {
            instance: name.to_string(),
            error: Box::new(error),
        })
    }

    fn pick_instance<'a>(
        &'a self,
        command: &str,
        found: &[(usize, &CommandDef)],
        chosen: Option<&str>,
    ) -> Result<(&'a str, &'a Connected), RunError> {
        let has_command = |index: &usize| found.iter().any(|(i, _)| i == index);
        if let Some(name) = chosen {
            let Some((key, entry)) = self.instances.get_key_value(name) else {
                return Err(self.unknown_instance(name));
            };
            if !has_command(&entry.integration) {
                let integration = &self.integrations[entry.integration].definition().id;
                return Err(RunError::Instance(format!(
                    "instance `{name}` ({integration}) has no command `{command}`"
                )));
            }
            return Ok((key, entry));
        }
        let candidates: Vec<(&String, &Connected)> = self
            .instances
            .iter()
            .filter(|(_, c)| has_command(&c.integration))
            .collect();
        match candidates.as_slice() {
            [(name, entry)] => Ok((name.as_str(), entry)),
            [] => {
                let ids: Vec<&str> = found
                    .iter()
                    .map(|(i, _)| self.integrations[*i].definition().id.as_str())
                    .collect();
                Err(RunError::Instance(format!(
                    "no instance is configured for `{command}`; add an instance of {} to the config file",
                    ids.join(" or ")
                )))
            }
            many => {
                let names: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
                Err(RunError::Instance(format!(
                    "several instances can run `{command}` ({}); pick one with --instance NAME or using=NAME",
                    names.join(", ")
                )))
            }
        }
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}
