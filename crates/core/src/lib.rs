//! watchfloor-core: the product's model, with no HTTP and no SQL.
//!
//! - [`definition`]: integrations, parameters, commands, arguments and outputs, declared as data.
//! - [`cmdline`]: the XSOAR command line (`!name a=b c="x y" using=inst`).
//! - [`args`]: binding a parsed command line to a command definition, with XSOAR's argument rules.
//! - [`table`]: XSOAR's `tableToMarkdown`.
//! - [`entry`]: result entries (readable markdown, context outputs, raw response).
//! - [`context`]: a context store that merges entries the way XSOAR does.
//! - [`secret`] and [`config`]: instance configuration with redacted secrets.
//! - [`docs`]: command help and integration docs generated from the definitions.
//! - [`query`]: incident searches in XSOAR's query syntax.
//! - [`tenancy`]: how each command binds to organizations, as data.

pub mod args;
pub mod channel;
pub mod cmdline;
pub mod config;
pub mod context;
pub mod definition;
pub mod docs;
pub mod entry;
pub mod fetch;
pub mod incident;
pub mod lifecycle;
pub mod metrics;
pub mod query;
pub mod report;
pub mod secret;
pub mod suggest;
pub mod table;
pub mod tenancy;
pub mod terminal;
pub mod time;
pub mod usage;
pub mod xml;

pub use args::Args;
pub use cmdline::CommandLine;
pub use config::{
    Config, ConfigError, FromParam, InstanceConfig, Mirror, MissingParam, ParamValue, Shared,
};
pub use context::ContextStore;
pub use definition::{ArgDef, ArgType, CommandDef, IntegrationDef, OutputDef, ParamDef, ParamType};
pub use entry::{Entry, Outputs};
pub use fetch::{FetchSettings, SetAside, WindowCursor};
pub use incident::{Incident, Label, NewIncident, ProviderTimes, Severity, Status};
pub use lifecycle::{
    Change, CloseReason, Edit, FieldChange, Lifecycle, LifecycleError, Mirrored, SlaFrom,
    SlaPolicy, SlaState,
};
pub use secret::Secret;
pub use tenancy::{InstanceWide, OrgBy, Tenancy};
pub use usage::UsageError;
