//! Integration and command definitions as data, in the manner of XSOAR's integration YAML.
//!
//! Each integration ships an `integration.toml` next to its code. One definition feeds argument
//! validation ([`crate::args`]), `--help` and the generated docs ([`crate::docs`]), and the shape of
//! every result entry ([`CommandDef::entry`]).

use serde::Deserialize;
use serde_json::Value;

use crate::entry::{Entry, Outputs};
use crate::table::{HeaderTransform, TableOptions, table_to_markdown};

/// An integration: its id, its instance parameters and its commands.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationDef {
    /// Stable id used in config files, e.g. `covalence-managed-security`.
    pub id: String,
    /// Name shown to people, e.g. `Covalence Managed Security`.
    pub display: String,
    pub description: String,
    #[serde(default)]
    pub params: Vec<ParamDef>,
    pub commands: Vec<CommandDef>,
    /// Bugs of the reference integration that this one fixes, listed in its docs.
    #[serde(default)]
    pub fixes: Vec<String>,
    /// Fetch defaults; absent when the integration does not fetch incidents.
    pub fetch: Option<FetchDef>,
    /// What mirroring keeps in step with the provider, for the docs.
    pub mirroring: Option<String>,
    /// The XSOAR pack's instance parameters and where each goes here.
    #[serde(default)]
    pub xsoar_params: Vec<XsoarParam>,
    /// Where fetched records name their organization's provider id.
    #[serde(default)]
    pub tenancy: crate::tenancy::IntegrationTenancy,
    /// The provider record's fields that name indicators: a dotted path and the indicator's
    /// type (`ip`, `host`, `user`, ...), read beside text extraction.
    #[serde(default)]
    pub indicators: std::collections::BTreeMap<String, String>,
}

/// One of the XSOAR pack's instance parameters, and what takes its place here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XsoarParam {
    /// The XSOAR name, e.g. `credentials`.
    pub name: String,
    /// What to write instead, e.g. `api_key = "<the credentials' password>"`, or `none`.
    pub here: String,
}

/// An integration's fetch defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchDef {
    /// How far back the first fetch looks, e.g. `1 day`.
    pub first_fetch: crate::time::TimeSpec,
    pub incident_type: String,
    #[serde(default = "default_fetch_limit")]
    pub limit: usize,
    /// The most one fetch may ask for, if the provider caps it.
    pub max_limit: Option<usize>,
    /// What fetching brings in, for the docs.
    pub description: String,
}

fn default_fetch_limit() -> usize {
    200
}

impl IntegrationDef {
    /// Parses a definition from its TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn command(&self, name: &str) -> Option<&CommandDef> {
        self.commands.iter().find(|c| c.name == name)
    }

    pub fn param(&self, name: &str) -> Option<&ParamDef> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// The kind of an instance parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Free text.
    String,
    /// An `http://` or `https://` address.
    Url,
    /// A file path, relative to the config file.
    Path,
    /// A secret: an inline string, `{ env = "VAR" }` or `{ file = "path" }`. Never shown.
    Secret,
    Bool,
    /// A duration such as `30s` or `2m`.
    Duration,
    Integer,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Url => "url",
            ParamType::Path => "path",
            ParamType::Secret => "secret",
            ParamType::Bool => "bool",
            ParamType::Duration => "duration",
            ParamType::Integer => "integer",
        }
    }
}

/// An instance parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default)]
    pub required: bool,
    pub default: Option<toml::Value>,
    pub description: String,
}

/// A command, its arguments and its outputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandDef {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub args: Vec<ArgDef>,
    /// Context prefix of the outputs, e.g. `FESPortal.ARO`.
    pub outputs_prefix: Option<String>,
    /// Field(s) that identify an output object in the context; empty for a plain key.
    #[serde(default, deserialize_with = "one_or_many")]
    pub key_field: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<OutputDef>,
    /// How the readable output renders.
    #[serde(default)]
    pub table: TableDef,
    /// Readable output when there is nothing to show; defaults to the empty table.
    pub empty_message: Option<String>,
    /// An example command line for the docs.
    pub example: Option<String>,
    /// How the command binds to organizations; every command declares it.
    pub tenancy: crate::tenancy::Tenancy,
}

/// How a command's outputs render as a markdown table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDef {
    #[serde(default)]
    pub title: String,
    /// Explicit column order; defaults to the sorted keys of the first row.
    pub headers: Option<Vec<String>>,
    /// `title` applies XSOAR's `string_to_table_header` (`email_aro_details` -> `Email Aro Details`).
    #[serde(default)]
    pub header_transform: HeaderTransform,
    /// Drop columns that are empty in every row.
    #[serde(default)]
    pub remove_null: bool,
}

/// The type of an argument value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgType {
    #[default]
    String,
    Boolean,
    /// A whole number, within `min` and `max` when the definition gives them.
    Number,
    /// A time as [`crate::time::TimeSpec`] reads it: `3 days`, RFC 3339, a date, epoch seconds.
    Time,
}

/// A command argument.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgDef {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub required: bool,
    pub default: Option<String>,
    /// Allowed values (XSOAR's `predefined`); empty means any value.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// A comma-separated list of values.
    #[serde(default)]
    pub array: bool,
    #[serde(default, rename = "type")]
    pub kind: ArgType,
    /// The smallest and largest values a `number` argument accepts.
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// XSOAR's default argument: its value may be given without its name (`!cmd 123`).
    #[serde(default)]
    pub default_arg: bool,
}

/// A context output path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputDef {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
}

impl CommandDef {
    pub fn arg(&self, name: &str) -> Option<&ArgDef> {
        self.args.iter().find(|a| a.name == name)
    }

    /// Table options for this command's readable output.
    pub fn table_options(&self) -> TableOptions<'_> {
        TableOptions {
            headers: self.table.headers.as_deref(),
            header_transform: self.table.header_transform,
            remove_null: self.table.remove_null,
        }
    }

    /// Builds the result entry for `outputs` (the context value) and `raw` (the provider's response),
    /// rendering the readable table from the definition. This is the one path every command takes
    /// from definition to entry.
    pub fn entry(&self, outputs: Value, raw: Value) -> Entry {
        let readable = self.readable(&outputs);
        self.entry_with_readable(readable, outputs, raw)
    }

    /// The readable output for `shown`: the table from the definition, or the empty message.
    pub fn readable(&self, shown: &Value) -> String {
        match (&self.empty_message, is_empty(shown)) {
            (Some(message), true) => message.clone(),
            _ => table_to_markdown(&self.table.title, shown, &self.table_options()),
        }
    }

    /// Like [`CommandDef::entry`], with readable output the command made itself.
    pub fn entry_with_readable(&self, readable: String, outputs: Value, raw: Value) -> Entry {
        let empty = is_empty(&outputs);
        let outputs = match (&self.outputs_prefix, empty) {
            (Some(prefix), false) => Some(Outputs {
                prefix: prefix.clone(),
                key_fields: self.key_field.clone(),
                value: outputs,
            }),
            _ => None,
        };
        Entry {
            readable,
            outputs,
            raw,
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) if s.is_empty() => vec![],
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}
