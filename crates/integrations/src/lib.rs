//! watchfloor-integrations: one folder per provider (definition, config, client, commands,
//! tests), the shared [`http`] client, and the [`Runner`] that takes a command line to an entry.
//!
//! Integrations never touch storage: they turn arguments into provider requests and provider
//! responses into [`Entry`]s.

pub mod bulk;
pub mod covalence_managed_security;
pub mod covalence_security_providers;
pub mod fetch;
pub mod http;
pub mod listing;
pub mod runner;
pub mod symantec_mss;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use watchfloor_core::{Args, CommandDef, Entry, InstanceConfig, IntegrationDef};

pub use runner::{InstanceRef, Prepared, RunError, Runner};

/// A boxed future, so instances can sit behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a command failed at the provider or in the integration.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Http(#[from] http::HttpError),
    /// An argument the provider data rules out, e.g. an unknown organization name.
    #[error("{0}")]
    Invalid(String),
    /// The provider answered, but not with what the API promises.
    #[error("{0}")]
    Provider(String),
    /// The instance lacks a setting this command needs.
    #[error("{0}")]
    NotConfigured(String),
    /// The provider sent more than one read may hold (pages or bytes): a narrower query may
    /// succeed, so a fetch narrows its window and reads again.
    #[error("{0}")]
    TooMuch(String),
    /// The command ran past its overall deadline.
    #[error(
        "the command did not finish within {}; the provider is slow or keeps paging: narrow the query, or try again later",
        humantime::format_duration(*.0)
    )]
    Deadline(std::time::Duration),
    /// A failure at one place of several, e.g. one appliance of an organization.
    #[error("{place}: {source}")]
    At {
        place: String,
        source: Box<CommandError>,
    },
}

impl From<watchfloor_core::MissingParam> for CommandError {
    fn from(e: watchfloor_core::MissingParam) -> Self {
        CommandError::NotConfigured(e.to_string())
    }
}

impl CommandError {
    /// Whether a narrower query may succeed where this one failed: too many pages, or too many
    /// bytes in one answer or in all of them.
    pub fn is_too_much(&self) -> bool {
        match self {
            CommandError::TooMuch(_) | CommandError::Http(http::HttpError::TooLarge { .. }) => true,
            CommandError::At { source, .. } => source.is_too_much(),
            _ => false,
        }
    }

    /// A command the definition lists but the integration does not handle: a bug, said plainly.
    pub fn not_implemented(command: &str) -> Self {
        CommandError::Invalid(format!(
            "command `{command}` is not implemented by this integration"
        ))
    }
}

/// A required argument. Binding already checked it, so absence is reported, not assumed away.
pub(crate) fn required<'a>(args: &'a Args, name: &str) -> Result<&'a str, CommandError> {
    args.str(name)
        .ok_or_else(|| CommandError::Invalid(format!("missing argument `{name}`")))
}

/// How an instance of an integration is made from its checked config.
pub type Connect = fn(&InstanceConfig) -> Result<Box<dyn Instance>, CommandError>;

/// An integration: its definition (parsed from its `integration.toml` on first use) and how to
/// connect an instance. Each provider folder declares one as `INTEGRATION`.
pub struct Integration {
    definition: LazyLock<IntegrationDef>,
    connect: Connect,
}

impl Integration {
    pub const fn new(definition: fn() -> IntegrationDef, connect: Connect) -> Self {
        Integration {
            definition: LazyLock::new(definition),
            connect,
        }
    }

    /// Parses a built-in definition. Each integration's unit tests parse theirs, so an invalid
    /// one fails CI, never a user.
    pub fn parse(toml: &str) -> IntegrationDef {
        IntegrationDef::from_toml(toml)
            .unwrap_or_else(|e| panic!("a built-in integration definition is invalid: {e}"))
    }

    pub fn definition(&self) -> &IntegrationDef {
        &self.definition
    }

    pub fn connect(&self, config: &InstanceConfig) -> Result<Box<dyn Instance>, CommandError> {
        (self.connect)(config)
    }
}

/// A configured, connected instance. It owns its HTTP connection pools.
pub trait Instance: Send + Sync {
    /// Runs a command whose arguments were already bound to `command`.
    fn execute<'a>(
        &'a self,
        command: &'a CommandDef,
        args: &'a Args,
    ) -> BoxFuture<'a, Result<Entry, CommandError>>;

    /// test-module: checks that the instance can reach and use its provider.
    fn test(&self) -> BoxFuture<'_, Result<(), CommandError>>;

    /// Which directions of mirroring this instance's integration supports.
    fn mirroring(&self) -> Mirroring {
        Mirroring::default()
    }

    /// Pushes a local change to the provider's alert `external_id`. Pushing what the provider
    /// already has must be harmless: a push can be repeated after a crash. Nothing is written
    /// to the provider after `send_by` (see [`fenced`]).
    fn push<'a>(
        &'a self,
        _external_id: &'a str,
        _change: &'a Outgoing,
        _send_by: Option<std::time::Instant>,
    ) -> BoxFuture<'a, Result<Pushed, CommandError>> {
        Box::pin(async {
            Err(CommandError::NotConfigured(
                "this integration does not mirror changes out".into(),
            ))
        })
    }

    /// Reads the provider's alert `external_id` and says what changed since `seen`, if anything.
    fn pull<'a>(
        &'a self,
        _external_id: &'a str,
        _seen: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Option<RemoteChange>, CommandError>> {
        Box::pin(async { Ok(None) })
    }

    /// Reads the provider's state of many open incidents and says, for each in order, what
    /// changed since its `seen`. Integrations whose list API can show many alerts at once read
    /// them in pages (one request for hundreds of incidents) and fall back to [`Instance::pull`]
    /// only for alerts the list cannot show; this default reads each alone.
    fn pull_many<'a>(
        &'a self,
        open: &'a [OpenAlert],
    ) -> BoxFuture<'a, Result<Vec<Option<RemoteChange>>, CommandError>> {
        Box::pin(pull_each(self, open))
    }

    /// What [`Instance::pull_many`] compares of an open incident's stored state (the state
    /// last seen, or before its first sync the fetched record): mirroring holds thousands of
    /// them at once, and a whole record is several kilobytes in memory. It must be idempotent,
    /// and `pull_many` must find the same changes from it as from the whole; this default
    /// keeps everything.
    fn mirror_state(&self, seen: serde_json::Value) -> serde_json::Value {
        seen
    }

    /// The cursor scopes of a fetch: one per organization in broker mode, else just "".
    fn fetch_scopes(&self) -> BoxFuture<'_, Result<Vec<String>, CommandError>> {
        Box::pin(async { Ok(vec![String::new()]) })
    }

    /// One pure fetch step for a scope: from the stored cursor to incidents and the next cursor.
    /// The engine stores both in one transaction.
    fn fetch<'a>(
        &'a self,
        _scope: &'a str,
        _cursor: Option<&'a serde_json::Value>,
        _settings: &'a watchfloor_core::FetchSettings,
    ) -> BoxFuture<'a, Result<fetch::FetchBatch, CommandError>> {
        Box::pin(async {
            Err(CommandError::NotConfigured(
                "this integration does not fetch incidents".into(),
            ))
        })
    }
}

/// Which directions of mirroring an integration supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mirroring {
    pub incoming: bool,
    pub outgoing: bool,
    /// Whether a repeated note push can tell that the provider already has it. Without that, a
    /// note whose send was cut short is not sent again (never twice) and is flagged instead.
    pub notes_checkable: bool,
}

/// A change a push sends to the provider (the outbox's kinds, decided in core).
pub use watchfloor_core::Mirrored as Outgoing;

/// What a push did: a sentence for the war room, and the provider state it left, so that the
/// next incoming sync does not take our own change for the provider's.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub text: String,
    pub seen: Option<serde_json::Value>,
}

/// Runs `write`, the request(s) by which a push changes the provider's alert, with `send_by`
/// as a fence: every attempt, retries included, is refused once it has passed
/// ([`HttpError::NotSentInTime`](crate::http::HttpError::NotSentInTime)). A process that
/// shares the work may then have lost its hold on the instance's mirroring (it was paused,
/// say, between reading the alert and writing it, or waited out a rate limit), and the process
/// that holds it now sends the change itself; two writers would send it twice.
pub(crate) async fn fenced<F: std::future::Future>(
    send_by: Option<std::time::Instant>,
    write: F,
) -> F::Output {
    SEND_BY.scope(send_by, write).await
}

/// The fence of the write being sent, if any (see [`fenced`]).
pub(crate) fn send_by() -> Option<std::time::Instant> {
    SEND_BY.try_with(|by| *by).ok().flatten()
}

/// A provider value as a war-room entry shows it: text as it is, nothing as `-`.
pub(crate) fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

tokio::task_local! {
    static PROVIDER_REQUESTS: std::cell::Cell<u64>;
    static SEND_BY: Option<std::time::Instant>;
}

/// Runs `work`, counting the requests it sends to providers (each attempt, retries included).
pub async fn count_requests<F: std::future::Future>(work: F) -> (F::Output, u64) {
    PROVIDER_REQUESTS
        .scope(std::cell::Cell::new(0), async move {
            let out = work.await;
            (out, PROVIDER_REQUESTS.with(std::cell::Cell::get))
        })
        .await
}

/// Counts one request to a provider, if [`count_requests`] is counting.
pub(crate) fn counted_request() {
    let _ = PROVIDER_REQUESTS.try_with(|n| n.set(n.get() + 1));
}

/// An open incident as mirroring reads it: its alert, when that occurred (the provider's
/// creation time, which list filters take), and the provider state last seen.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAlert {
    pub external_id: String,
    pub occurred: chrono::DateTime<chrono::Utc>,
    pub seen: serde_json::Value,
}

/// [`Instance::pull`] for each of `open`, in order: the per-incident pattern.
pub async fn pull_each<I: Instance + ?Sized>(
    instance: &I,
    open: &[OpenAlert],
) -> Result<Vec<Option<RemoteChange>>, CommandError> {
    let mut out = Vec::with_capacity(open.len());
    for alert in open {
        let pulled = instance.pull(&alert.external_id, &alert.seen).await;
        out.push(pulled.map_err(|e| {
            CommandError::Provider(format!("reading alert {}: {e}", alert.external_id))
        })?);
    }
    Ok(out)
}

/// What changed at the provider since the state last seen.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteChange {
    /// The provider state now, to compare with next time.
    pub seen: serde_json::Value,
    /// What to tell the war room, one entry each.
    pub notes: Vec<String>,
    /// The provider closed it.
    pub close: Option<(watchfloor_core::CloseReason, Option<String>)>,
    /// The provider's own times as it gives them now, where its API has them.
    pub provider: Option<watchfloor_core::ProviderTimes>,
    /// Only the state to compare with next time, nothing changed at the provider: the first
    /// read of a record, or what a list told of one unchanged. Recorded, not counted as a
    /// change.
    pub baseline: bool,
}

/// The name of the command every integration has, which runs [`Instance::test`].
pub const TEST_MODULE: &str = "test-module";

/// The registry: every built-in integration, one line each.
static BUILTIN: [&Integration; 3] = [
    &covalence_managed_security::INTEGRATION,
    &covalence_security_providers::INTEGRATION,
    &symantec_mss::INTEGRATION,
];

/// All built-in integrations.
pub fn builtin() -> &'static [&'static Integration] {
    &BUILTIN
}

/// Definitions of all built-in integrations.
pub fn definitions() -> Vec<&'static IntegrationDef> {
    BUILTIN.iter().map(|i| i.definition()).collect()
}

/// Each built-in integration's indicator fields, by integration id (see `[indicators]` in its
/// definition).
pub fn indicator_maps() -> HashMap<String, watchfloor_indicators::FieldMap> {
    BUILTIN
        .iter()
        .map(|i| {
            let def = i.definition();
            // A unit test parses every map: one that does not parse is a build's bug.
            let map = watchfloor_indicators::FieldMap::parse(&def.indicators).unwrap_or_default();
            (def.id.clone(), map)
        })
        .collect()
}

#[cfg(test)]
#[test]
fn indicator_maps_parse() {
    for def in definitions() {
        let map = watchfloor_indicators::FieldMap::parse(&def.indicators)
            .unwrap_or_else(|e| panic!("{}: {e}", def.id));
        assert!(map.fields().count() > 0, "{} maps no field", def.id);
    }
}

/// Helpers the integrations' tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use proptest::prelude::*;
    use serde_json::Value;

    /// Field names the providers send, so random JSON reaches the code that reads them.
    const FIELDS: &[&str] = &[
        "ID",
        "id",
        "creation_time",
        "createdTime",
        "TimeCreated",
        "IncidentNumber",
        "organization",
        "name",
        "title",
        "type",
        "steps",
        "label",
        "severity",
        "details",
        "analystTitle",
        "analystDescription",
        "Severity",
        "Classification",
        "items",
        "has_next",
        "total",
        "resolution",
        "status",
        "comments",
        "Comment",
    ];

    /// Any JSON, three levels deep at most, with provider field names among the keys: what a
    /// hostile or broken provider could send.
    pub fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            Just(Value::from("2024-05-02 14:03:11")),
            Just(Value::from("2024-05-02T13:55:12.120")),
        ];
        leaf.prop_recursive(3, 48, 8, |inner| {
            let key = prop_oneof![
                3 => prop::sample::select(FIELDS).prop_map(str::to_string),
                1 => any::<String>(),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key, inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Bounded case counts for CI.
    pub fn cases() -> ProptestConfig {
        ProptestConfig {
            cases: 300,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Every path in `value` (an object or a list of them), as `a`, `a.b`, `a.b.c`: keys of
    /// nested objects and of objects in lists, as XSOAR's context paths name them.
    pub fn paths(value: &Value) -> std::collections::BTreeSet<String> {
        fn walk(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
            match v {
                Value::Object(o) => {
                    for (k, v) in o {
                        let path = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        out.insert(path.clone());
                        walk(v, &path, out);
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, prefix, out)),
                _ => {}
            }
        }
        let mut out = std::collections::BTreeSet::new();
        walk(value, "", &mut out);
        out
    }

    /// Checks a command's declared outputs against the context of whole records: every path
    /// the context has is declared (or is the parent of declared paths), and every declared
    /// path is in the context. The error names what is missing on either side.
    pub fn outputs_declared(
        command: &watchfloor_core::CommandDef,
        contexts: &[Value],
    ) -> Result<(), String> {
        let prefix = format!("{}.", command.outputs_prefix.as_deref().unwrap_or_default());
        let declared: std::collections::BTreeSet<String> = command
            .outputs
            .iter()
            .map(|o| o.path.strip_prefix(&prefix).unwrap_or(&o.path).to_string())
            .collect();
        let seen: std::collections::BTreeSet<String> = contexts.iter().flat_map(paths).collect();
        let is_parent = |p: &String| declared.iter().any(|d| d.starts_with(&format!("{p}.")));
        let undeclared: Vec<&String> = seen
            .iter()
            .filter(|p| !declared.contains(*p) && !is_parent(p))
            .collect();
        let unseen: Vec<&String> = declared.iter().filter(|d| !seen.contains(*d)).collect();
        if undeclared.is_empty() && unseen.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}: undeclared outputs {undeclared:?}; declared but never in the context {unseen:?}",
                command.name
            ))
        }
    }

    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "{prefix}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("temp dir can be made");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// docs/integrations/*.md are generated from the definitions; this fails when they drift.
    #[test]
    fn integration_docs_are_generated_from_the_definitions() {
        for def in super::definitions() {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../docs/integrations")
                .join(format!("{}.md", def.id));
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == watchfloor_core::docs::integration_markdown(def),
                "{} is out of date: run `cargo run -p watchfloor -- docs` and commit it",
                path.display()
            );
        }
    }

    /// Every command of every integration declares how it binds to organizations, naming
    /// arguments it has.
    #[test]
    fn every_command_declares_its_organization_binding() {
        for def in super::definitions() {
            for cmd in &def.commands {
                if let Err(e) = cmd.tenancy.validate(cmd) {
                    panic!("{}: {e}", def.id);
                }
            }
        }
    }

    /// Every integration's command names are unique across integrations, except test-module.
    #[test]
    fn command_names_do_not_collide() {
        let mut seen = std::collections::BTreeSet::new();
        for def in super::definitions() {
            for cmd in def.commands.iter().filter(|c| c.name != "test-module") {
                assert!(
                    seen.insert(cmd.name.clone()),
                    "{} is defined twice",
                    cmd.name
                );
            }
        }
    }
}
