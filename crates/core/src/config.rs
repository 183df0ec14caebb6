//! The `watchfloor.toml` config file: instances of integrations and their parameters.
//!
//! ```toml
//! [[instances]]
//! name = "fes"
//! integration = "covalence-managed-security"
//! [instances.params]
//! api_key = { env = "FES_API_KEY" }   # or an inline string, or { file = "key.txt" }
//! ```
//!
//! Parameters are checked against the integration's [`ParamDef`]s: unknown names, missing required
//! ones and wrong types are errors that name the file, the line and the key. Secrets are resolved
//! here and held as [`Secret`]s, so they never reach Debug output.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::channel::ChannelConfig;
use crate::definition::{IntegrationDef, ParamDef, ParamType};
use crate::fetch::FetchSettings;
use crate::lifecycle::SlaPolicy;
use crate::report::{Every, ReportSchedule};
use crate::secret::Secret;

/// A config file that could not be used. The message names the file, the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {}, line {line}{}: {message}", path.display(), key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: usize,
        key: Option<String>,
        message: String,
    },
}

/// A loaded config file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub instances: Vec<InstanceConfig>,
    /// `[storage] url`, the database, if the file sets one.
    pub storage_url: Option<String>,
    /// `[sla]`: how long incidents of each severity may stay open.
    pub sla: SlaPolicy,
    /// `[server] listen`: where `serve` answers the HTTP API, if the file says.
    pub listen: Option<SocketAddr>,
    /// `[server] tls_cert` and `tls_key`: serve HTTPS with these PEM files.
    pub tls: Option<TlsFiles>,
    /// `[retention] closed_after`: purge incidents closed longer ago than this (off if unset).
    pub retention: Option<Duration>,
    /// `[cluster] lease`: how long a `serve` process holds a share of the work without
    /// renewing it (the default if unset).
    pub lease: Option<Duration>,
    /// `[[channels]]`: where notifications go.
    pub channels: Vec<ChannelConfig>,
    /// `[[reports]]`: customer reports sent on their own.
    pub reports: Vec<ReportSchedule>,
    /// `[server] public_url`: where users reach the UI, for links in notifications.
    pub public_url: Option<String>,
    /// `[indicators]`.
    pub indicators: IndicatorConfig,
}

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What commands that need no instance read from a config file: the database and the SLA.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shared {
    pub storage_url: Option<String>,
    pub sla: SlaPolicy,
    /// `[server] listen`.
    pub listen: Option<SocketAddr>,
    /// `[server] tls_cert` and `tls_key`.
    pub tls: Option<TlsFiles>,
    /// `[retention] closed_after`.
    pub retention: Option<Duration>,
    /// `[cluster] lease`.
    pub lease: Option<Duration>,
    /// `[[channels]]`.
    pub channels: Vec<ChannelConfig>,
    /// `[[reports]]`.
    pub reports: Vec<ReportSchedule>,
    /// `[server] public_url`.
    pub public_url: Option<String>,
    /// `[indicators]`.
    pub indicators: IndicatorConfig,
    /// The configured instances' names, and how often those that fetch do (not checked
    /// further).
    pub instances: Vec<(String, Option<Duration>)>,
}

impl Shared {
    pub fn instance_names(&self) -> Vec<&str> {
        self.instances.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// One configured instance of an integration.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub name: String,
    pub integration: String,
    params: BTreeMap<String, ParamValue>,
    /// How it fetches incidents; `enabled` is false unless `fetch = true`.
    pub fetch: FetchSettings,
    /// Which way its incidents are kept in step with the provider.
    pub mirror: Mirror,
    /// The one organization this instance serves (`organization = "Acme"`), if it serves one:
    /// its fetched incidents carry it, and everything its commands reach is that organization's.
    pub organization: Option<String>,
}

/// Which way an instance's incidents are kept in step with the provider: `mirror` in the
/// config, `both` by default (each direction only where the integration supports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mirror {
    #[default]
    Both,
    In,
    Out,
    None,
}

impl Mirror {
    pub fn parse(s: &str) -> Result<Mirror, String> {
        match s {
            "both" => Ok(Mirror::Both),
            "in" => Ok(Mirror::In),
            "out" => Ok(Mirror::Out),
            "none" => Ok(Mirror::None),
            other => Err(format!(
                "`{other}` is not a mirror direction: use both, in, out or none"
            )),
        }
    }

    pub fn incoming(self) -> bool {
        matches!(self, Mirror::Both | Mirror::In)
    }

    pub fn outgoing(self) -> bool {
        matches!(self, Mirror::Both | Mirror::Out)
    }
}

/// A resolved parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Text(String),
    Secret(Secret),
    Bool(bool),
    Duration(Duration),
    Integer(i64),
}

/// A parameter the code asked for that the instance does not have. Config loading applies
/// the definition's defaults and refuses missing required parameters, so this names a mismatch
/// between an integration's code and its definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{0}` is not set, or not of the type the definition gives it")]
pub struct MissingParam(pub String);

/// A Rust type a [`ParamValue`] can be read as.
pub trait FromParam<'a>: Sized {
    fn from_param(value: &'a ParamValue) -> Option<Self>;
}

impl<'a> FromParam<'a> for &'a str {
    fn from_param(value: &'a ParamValue) -> Option<Self> {
        match value {
            ParamValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl<'a> FromParam<'a> for &'a Secret {
    fn from_param(value: &'a ParamValue) -> Option<Self> {
        match value {
            ParamValue::Secret(s) => Some(s),
            _ => None,
        }
    }
}

impl FromParam<'_> for bool {
    fn from_param(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl FromParam<'_> for Duration {
    fn from_param(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::Duration(d) => Some(*d),
            _ => None,
        }
    }
}

impl FromParam<'_> for i64 {
    fn from_param(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::Integer(i) => Some(*i),
            _ => None,
        }
    }
}

impl InstanceConfig {
    /// A parameter that is required or has a default in the definition, so config loading
    /// guarantees it.
    pub fn get<'a, T: FromParam<'a>>(&'a self, name: &str) -> Result<T, MissingParam> {
        self.optional(name)
            .ok_or_else(|| MissingParam(name.to_string()))
    }

    /// An optional parameter without a default.
    pub fn optional<'a, T: FromParam<'a>>(&'a self, name: &str) -> Option<T> {
        self.params.get(name).and_then(T::from_param)
    }

    /// Whether the instance sets (or defaults) a parameter.
    pub fn has(&self, name: &str) -> bool {
        self.params.contains_key(name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    instances: Vec<Spanned<RawInstance>>,
    storage: Option<RawStorage>,
    sla: Option<RawSla>,
    server: Option<RawServer>,
    retention: Option<RawRetention>,
    cluster: Option<RawCluster>,
    #[serde(default)]
    channels: Vec<Spanned<crate::channel::RawChannel>>,
    #[serde(default)]
    reports: Vec<Spanned<RawReport>>,
    indicators: Option<RawIndicators>,
}

/// `[[reports]]`: one organization's customer report, sent on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    org: Spanned<String>,
    every: Option<Spanned<String>>,
    channel: Spanned<String>,
}

/// The `[[reports]]` entries, each naming a configured channel; or what is wrong.
fn read_reports(
    raw: &[Spanned<RawReport>],
    channels: &[ChannelConfig],
) -> Result<Vec<ReportSchedule>, (std::ops::Range<usize>, String, String)> {
    let mut out: Vec<ReportSchedule> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let r = r.get_ref();
        let key = |k: &str| format!("reports[{i}].{k}");
        let org = r.org.get_ref().trim().to_string();
        if org.is_empty() {
            return Err((
                r.org.span(),
                key("org"),
                "a report names the organization it is about, e.g. \"Acme Corp\"".into(),
            ));
        }
        let every = match r.every.as_ref().map(|e| e.get_ref().as_str()) {
            None | Some("month") => Every::Month,
            Some("day") => Every::Day,
            Some(other) => {
                return Err((
                    r.every.as_ref().map(|e| e.span()).unwrap_or_default(),
                    key("every"),
                    format!("`{other}` is not how often a report goes: \"month\" or \"day\""),
                ));
            }
        };
        let channel = r.channel.get_ref().trim().to_string();
        if !channels.iter().any(|c| c.name == channel) {
            let known: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
            return Err((
                r.channel.span(),
                key("channel"),
                match known.is_empty() {
                    true => format!("there is no channel `{channel}`: add it under [[channels]]"),
                    false => format!(
                        "there is no channel `{channel}`; the channels are: {}",
                        known.join(", ")
                    ),
                },
            ));
        }
        let schedule = ReportSchedule {
            org,
            every,
            channel,
        };
        if out.contains(&schedule) {
            return Err((
                r.org.span(),
                key("org"),
                "this report is listed twice; it would be sent twice".into(),
            ));
        }
        out.push(schedule);
    }
    Ok(out)
}

/// `[indicators]`: what is not an indicator, and what an analyst learns of other
/// organizations.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicators {
    exclude: Option<Spanned<Vec<String>>>,
    exclude_reserved: Option<bool>,
    cross_org_counts: Option<bool>,
}

/// `[indicators]`, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndicatorConfig {
    /// Networks, `*.domains` and values that are not indicators (`exclude`).
    pub exclude: Vec<String>,
    /// Private and reserved address ranges are not indicators either (`exclude_reserved`,
    /// on by default).
    pub exclude_reserved: bool,
    /// An analyst scoped to some organizations sees how many others saw an indicator
    /// (`cross_org_counts`, on by default); never which.
    pub cross_org_counts: bool,
}

impl Default for IndicatorConfig {
    fn default() -> IndicatorConfig {
        IndicatorConfig {
            exclude: Vec::new(),
            exclude_reserved: true,
            cross_org_counts: true,
        }
    }
}

impl IndicatorConfig {
    /// The exclusions, as extraction applies them.
    pub fn exclusions(&self) -> watchfloor_indicators::Exclusions {
        // Checked when the config was read.
        watchfloor_indicators::Exclusions::parse(&self.exclude, self.exclude_reserved)
            .unwrap_or_else(|_| watchfloor_indicators::Exclusions::default_reserved())
    }
}

impl RawIndicators {
    fn read(&self) -> Result<IndicatorConfig, (std::ops::Range<usize>, String, String)> {
        let exclude = self
            .exclude
            .as_ref()
            .map(|e| e.get_ref().clone())
            .unwrap_or_default();
        let reserved = self.exclude_reserved.unwrap_or(true);
        watchfloor_indicators::Exclusions::parse(&exclude, reserved).map_err(|e| {
            let span = self.exclude.as_ref().map(|e| e.span()).unwrap_or(0..0);
            (span, "indicators.exclude".into(), e)
        })?;
        Ok(IndicatorConfig {
            exclude,
            exclude_reserved: reserved,
            cross_org_counts: self.cross_org_counts.unwrap_or(true),
        })
    }
}

/// `[cluster]`: how `serve` processes on one database share the work.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    lease: Option<Spanned<String>>,
}

impl RawCluster {
    fn lease(&self) -> Result<Option<Duration>, (std::ops::Range<usize>, String, String)> {
        let Some(value) = &self.lease else {
            return Ok(None);
        };
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if (Duration::from_secs(1)..=Duration::from_secs(600)).contains(&d) => {
                Ok(Some(d))
            }
            Ok(_) => Err((
                value.span(),
                "cluster.lease".into(),
                "a lease lasts from 1s to 10min, e.g. \"30s\"".into(),
            )),
            Err(_) => Err((
                value.span(),
                "cluster.lease".into(),
                format!(
                    "`{}` is not a duration: write e.g. \"30s\"",
                    value.get_ref()
                ),
            )),
        }
    }
}

/// `[retention]`: how long closed incidents are kept.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    closed_after: Option<Spanned<String>>,
}

impl RawRetention {
    fn closed_after(&self) -> Result<Option<Duration>, (std::ops::Range<usize>, String, String)> {
        let Some(value) = &self.closed_after else {
            return Ok(None);
        };
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if d >= Duration::from_secs(3600) => Ok(Some(d)),
            Ok(_) => Err((
                value.span(),
                "retention.closed_after".into(),
                "keep closed incidents an hour at least, e.g. \"90days\"".into(),
            )),
            Err(_) => Err((
                value.span(),
                "retention.closed_after".into(),
                format!(
                    "`{}` is not a duration: write e.g. \"90days\" or \"12weeks\"",
                    value.get_ref()
                ),
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    url: String,
}

/// `[server]`: where `serve` answers the HTTP API.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
}

impl RawServer {
    /// The TLS files, both or neither, relative to the config's folder.
    fn tls(
        &self,
        base_dir: &Path,
    ) -> Result<Option<TlsFiles>, (std::ops::Range<usize>, String, String)> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: base_dir.join(cert.get_ref()),
                key: base_dir.join(key.get_ref()),
            })),
            (Some(cert), None) => Err((
                cert.span(),
                "server.tls_key".into(),
                "a certificate needs its key: set tls_key too (a PEM file)".into(),
            )),
            (None, Some(key)) => Err((
                key.span(),
                "server.tls_cert".into(),
                "a key needs its certificate: set tls_cert too (a PEM file)".into(),
            )),
        }
    }

    /// Where users reach the UI, for links in notifications; an error names the key.
    fn public_url(&self) -> Result<Option<String>, (std::ops::Range<usize>, String, String)> {
        let Some(url) = &self.public_url else {
            return Ok(None);
        };
        let u = url.get_ref().trim().trim_end_matches('/');
        match u.starts_with("https://") || u.starts_with("http://") {
            true => Ok(Some(u.to_string())),
            false => Err((
                url.span(),
                "server.public_url".into(),
                format!(
                    "`{}` is not an http:// or https:// address, e.g. \"https://soc.example\"",
                    url.get_ref()
                ),
            )),
        }
    }

    /// The address to listen on; an error names the key.
    fn listen(&self) -> Result<Option<SocketAddr>, (std::ops::Range<usize>, String, String)> {
        let Some(listen) = &self.listen else {
            return Ok(None);
        };
        listen.get_ref().trim().parse().map(Some).map_err(|_| {
            (
                listen.span(),
                "server.listen".to_string(),
                format!(
                    "`{}` is not an address to listen on; write an IP and a port, e.g. \"127.0.0.1:8080\"",
                    listen.get_ref()
                ),
            )
        })
    }
}

/// `[sla]`: a duration per severity, e.g. `critical = "1h"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    from: Option<Spanned<String>>,
    critical: Option<Spanned<String>>,
    high: Option<Spanned<String>>,
    medium: Option<Spanned<String>>,
    low: Option<Spanned<String>>,
    informational: Option<Spanned<String>>,
}

impl RawSla {
    /// The policy, each duration over the default; an error names the key.
    fn policy(&self) -> Result<SlaPolicy, (std::ops::Range<usize>, String, String)> {
        let mut policy = SlaPolicy::default();
        if let Some(from) = &self.from {
            policy.from = match from.get_ref().as_str() {
                "stored" => crate::lifecycle::SlaFrom::Stored,
                "occurred" => crate::lifecycle::SlaFrom::Occurred,
                other => {
                    return Err((
                        from.span(),
                        "sla.from".into(),
                        format!(
                            "`{other}` is not when an SLA starts: \"stored\" (when watchfloor stored the incident) or \"occurred\" (when the provider made it)"
                        ),
                    ));
                }
            };
        }
        for (key, value, slot) in [
            ("critical", &self.critical, &mut policy.critical),
            ("high", &self.high, &mut policy.high),
            ("medium", &self.medium, &mut policy.medium),
            ("low", &self.low, &mut policy.low),
            (
                "informational",
                &self.informational,
                &mut policy.informational,
            ),
        ] {
            if let Some(v) = value {
                let d = humantime::parse_duration(v.get_ref())
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        (
                            v.span(),
                            format!("sla.{key}"),
                            format!("`{}` is not a duration such as \"4h\"", v.get_ref()),
                        )
                    })?;
                *slot = d;
            }
        }
        Ok(policy)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    name: Spanned<String>,
    integration: Spanned<String>,
    #[serde(default)]
    params: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    fetch: Option<Spanned<bool>>,
    fetch_interval: Option<Spanned<String>>,
    first_fetch: Option<Spanned<String>>,
    fetch_limit: Option<Spanned<i64>>,
    look_back: Option<Spanned<String>>,
    incident_type: Option<Spanned<String>>,
    fetch_concurrency: Option<Spanned<i64>>,
    mirror: Option<Spanned<String>>,
    organization: Option<Spanned<String>>,
}

impl Config {
    /// Reads and checks a config file. `{ env = ".." }` secrets come from the process environment.
    pub fn load(path: &Path, integrations: &[&IntegrationDef]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(path, &text, integrations, &|var| std::env::var(var).ok())
    }

    /// Checks config text; `env` looks up environment variables.
    pub fn parse(
        path: &Path,
        text: &str,
        integrations: &[&IntegrationDef],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let err = |span: std::ops::Range<usize>, key: Option<String>, message: String| {
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_of(text, span.start),
                key,
                message,
            }
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let key = key_at(text, span.start);
            let message = e.message().trim_end().to_string();
            // An XSOAR parameter written above `[instances.params]` gets the same hint as one
            // written under it.
            let hint = key
                .as_deref()
                .filter(|k| k.starts_with("instances"))
                .and_then(|_| xsoar_hint(&message, integrations));
            err(span, key, hint.unwrap_or(message))
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let mut instances: Vec<InstanceConfig> = Vec::new();
        for (i, inst) in raw.instances.iter().enumerate() {
            let inst = inst.get_ref();
            let name = inst.name.get_ref();
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            if name.is_empty() || !name.chars().all(allowed) || name.starts_with('.') {
                return Err(err(
                    inst.name.span(),
                    Some(format!("instances[{i}].name")),
                    format!(
                        "instance name `{}` must be letters, digits, `-`, `_` and `.` (not first), e.g. `fes-east`",
                        name.escape_debug()
                    ),
                ));
            }
            if instances.iter().any(|existing| existing.name == *name) {
                return Err(err(
                    inst.name.span(),
                    Some(format!("instances[{i}].name")),
                    format!("instance name `{name}` is used twice; names must be unique"),
                ));
            }
            let integration = inst.integration.get_ref();
            let Some(def) = integrations.iter().find(|d| d.id == *integration) else {
                let known: Vec<&str> = integrations.iter().map(|d| d.id.as_str()).collect();
                return Err(err(
                    inst.integration.span(),
                    Some(format!("instances[{i}].integration")),
                    format!(
                        "unknown integration `{integration}`; known integrations: {}",
                        known.join(", ")
                    ),
                ));
            };
            let mut params = BTreeMap::new();
            for (key, value) in &inst.params {
                let key_path = format!("instances[{i}].params.{}", key.get_ref());
                let Some(pdef) = def.param(key.get_ref()) else {
                    if let Some(hint) = xsoar_param_hint(def, key.get_ref()) {
                        return Err(err(key.span(), Some(key_path), hint));
                    }
                    if INSTANCE_SETTINGS.contains(&key.get_ref().as_str()) {
                        return Err(err(
                            key.span(),
                            Some(key_path),
                            format!(
                                "`{}` is a setting of the instance, not a parameter: move it above [instances.params], next to `name` and `integration`",
                                key.get_ref()
                            ),
                        ));
                    }
                    let names = def.params.iter().map(|p| p.name.as_str());
                    let hint = match crate::suggest::closest(key.get_ref(), names).first() {
                        Some(s) => format!("; did you mean `{s}`?"),
                        None => String::new(),
                    };
                    let valid: Vec<&str> = def.params.iter().map(|p| p.name.as_str()).collect();
                    return Err(err(
                        key.span(),
                        Some(key_path),
                        format!(
                            "unknown parameter for {}{hint} (valid parameters: {})",
                            def.id,
                            valid.join(", ")
                        ),
                    ));
                };
                let resolved = resolve(pdef, value.get_ref(), base_dir, env)
                    .map_err(|message| err(value.span(), Some(key_path), message))?;
                params.insert(pdef.name.clone(), resolved);
            }
            for pdef in &def.params {
                if params.contains_key(&pdef.name) {
                    continue;
                }
                match &pdef.default {
                    Some(default) => {
                        let value = resolve(pdef, default, base_dir, env).map_err(|message| {
                            err(
                                inst.name.span(),
                                Some(format!("instances[{i}].params.{}", pdef.name)),
                                message,
                            )
                        })?;
                        params.insert(pdef.name.clone(), value);
                    }
                    None if pdef.required => {
                        return Err(err(
                            inst.name.span(),
                            Some(format!("instances[{i}].params.{}", pdef.name)),
                            format!(
                                "instance `{name}` is missing required parameter `{}` ({})",
                                pdef.name, pdef.description
                            ),
                        ));
                    }
                    None => {}
                }
            }
            let fetch = fetch_settings(inst, def, i)
                .map_err(|(span, key, message)| err(span, Some(key), message))?;
            let mirror = match &inst.mirror {
                Some(m) => Mirror::parse(m.get_ref()).map_err(|message| {
                    err(m.span(), Some(format!("instances[{i}].mirror")), message)
                })?,
                None => Mirror::default(),
            };
            let organization = match &inst.organization {
                Some(o) if o.get_ref().trim().is_empty() || o.get_ref().contains('\0') => {
                    return Err(err(
                        o.span(),
                        Some(format!("instances[{i}].organization")),
                        "organization must name the one organization this instance serves, e.g. \"Acme\"".into(),
                    ));
                }
                Some(o) => Some(o.get_ref().trim().to_string()),
                None => None,
            };
            instances.push(InstanceConfig {
                name: name.clone(),
                integration: integration.clone(),
                params,
                fetch,
                mirror,
                organization,
            });
        }
        let shared = SharedSections {
            storage: raw.storage.as_ref(),
            sla: raw.sla.as_ref(),
            server: raw.server.as_ref(),
            retention: raw.retention.as_ref(),
            cluster: raw.cluster.as_ref(),
            channels: &raw.channels,
            reports: &raw.reports,
            indicators: raw.indicators.as_ref(),
        }
        .read(base_dir)
        .map_err(|(span, key, message)| err(span, Some(key), message))?;
        Ok(Config {
            path: path.to_path_buf(),
            channels: shared.channels,
            reports: shared.reports,
            public_url: shared.public_url,
            indicators: shared.indicators,
            listen: shared.listen,
            tls: shared.tls,
            retention: shared.retention,
            lease: shared.lease,
            instances,
            storage_url: shared.storage_url,
            sla: shared.sla,
        })
    }

    /// Only `[storage]` and `[sla]` of a config file, for commands that need the database but
    /// no instance: instances are not checked and no secret is read.
    pub fn load_shared(path: &Path) -> Result<Shared, ConfigError> {
        #[derive(Deserialize)]
        struct SharedOnly {
            storage: Option<RawStorage>,
            sla: Option<RawSla>,
            server: Option<RawServer>,
            retention: Option<RawRetention>,
            cluster: Option<RawCluster>,
            #[serde(default)]
            instances: Vec<NameOnly>,
            #[serde(default)]
            channels: Vec<Spanned<crate::channel::RawChannel>>,
            #[serde(default)]
            reports: Vec<Spanned<RawReport>>,
            indicators: Option<RawIndicators>,
        }
        #[derive(Deserialize)]
        struct NameOnly {
            name: Option<String>,
            fetch: Option<bool>,
            fetch_interval: Option<String>,
        }
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let invalid = |start: usize, key: Option<String>, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: line_of(&text, start),
            key,
            message,
        };
        let raw: SharedOnly = toml::from_str(&text).map_err(|e| {
            let start = e.span().map(|s| s.start).unwrap_or(0);
            invalid(
                start,
                key_at(&text, start),
                e.message().trim_end().to_string(),
            )
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let shared = SharedSections {
            storage: raw.storage.as_ref(),
            sla: raw.sla.as_ref(),
            server: raw.server.as_ref(),
            retention: raw.retention.as_ref(),
            cluster: raw.cluster.as_ref(),
            channels: &raw.channels,
            reports: &raw.reports,
            indicators: raw.indicators.as_ref(),
        }
        .read(base_dir)
        .map_err(|(span, key, message)| invalid(span.start, Some(key), message))?;
        Ok(Shared {
            instances: raw
                .instances
                .into_iter()
                .filter_map(|i| {
                    let interval = match (i.fetch, &i.fetch_interval) {
                        (Some(true), Some(t)) => humantime::parse_duration(t).ok(),
                        (Some(true), None) => Some(DEFAULT_FETCH_INTERVAL),
                        _ => None,
                    };
                    Some((i.name?, interval))
                })
                .collect(),
            ..shared
        })
    }

    /// What every command shares of this config: the database, the SLA, the server, and each
    /// instance's name and fetch interval.
    pub fn shared(&self) -> Shared {
        Shared {
            storage_url: self.storage_url.clone(),
            sla: self.sla.clone(),
            listen: self.listen,
            tls: self.tls.clone(),
            retention: self.retention,
            lease: self.lease,
            channels: self.channels.clone(),
            reports: self.reports.clone(),
            public_url: self.public_url.clone(),
            indicators: self.indicators.clone(),
            instances: self
                .instances
                .iter()
                .map(|i| (i.name.clone(), i.fetch.enabled.then_some(i.fetch.interval)))
                .collect(),
        }
    }

    pub fn instance(&self, name: &str) -> Option<&InstanceConfig> {
        self.instances.iter().find(|i| i.name == name)
    }
}

/// How often an instance fetches unless it says otherwise (`fetch_interval`).
pub const DEFAULT_FETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The sections every command reads (`[storage]`, `[sla]`, `[server]`, `[retention]`,
/// `[cluster]`), read by one function for the whole config and for commands that need only
/// these.
struct SharedSections<'a> {
    storage: Option<&'a RawStorage>,
    sla: Option<&'a RawSla>,
    server: Option<&'a RawServer>,
    retention: Option<&'a RawRetention>,
    cluster: Option<&'a RawCluster>,
    channels: &'a [Spanned<crate::channel::RawChannel>],
    reports: &'a [Spanned<RawReport>],
    indicators: Option<&'a RawIndicators>,
}

impl SharedSections<'_> {
    /// The sections' settings (no instances), or the span, key and message of what is wrong.
    fn read(self, base_dir: &Path) -> Result<Shared, (std::ops::Range<usize>, String, String)> {
        let channels = crate::channel::read_channels(self.channels, base_dir)?;
        Ok(Shared {
            reports: read_reports(self.reports, &channels)?,
            storage_url: Some(storage_url(
                self.storage.map_or(DEFAULT_STORAGE, |s| s.url.as_str()),
                base_dir,
            )),
            sla: self
                .sla
                .map(RawSla::policy)
                .transpose()?
                .unwrap_or_default(),
            listen: self.server.map(RawServer::listen).transpose()?.flatten(),
            tls: self.server.map(|s| s.tls(base_dir)).transpose()?.flatten(),
            retention: self
                .retention
                .map(RawRetention::closed_after)
                .transpose()?
                .flatten(),
            lease: self.cluster.map(RawCluster::lease).transpose()?.flatten(),
            channels,
            public_url: self
                .server
                .map(RawServer::public_url)
                .transpose()?
                .flatten(),
            indicators: self
                .indicators
                .map(RawIndicators::read)
                .transpose()?
                .unwrap_or_default(),
            instances: Vec::new(),
        })
    }
}

fn default_fetch(def: Option<&crate::definition::FetchDef>) -> FetchSettings {
    FetchSettings {
        enabled: false,
        interval: DEFAULT_FETCH_INTERVAL,
        first_fetch: def
            .map(|d| d.first_fetch)
            .unwrap_or(crate::time::TimeSpec::Ago(chrono::TimeDelta::days(1))),
        limit: def.map(|d| d.limit).unwrap_or(200),
        look_back: Duration::from_secs(600),
        incident_type: def.map(|d| d.incident_type.clone()).unwrap_or_default(),
        concurrency: crate::fetch::DEFAULT_CONCURRENCY,
    }
}

type FetchError = (std::ops::Range<usize>, String, String);

/// The instance's fetch settings: its own keys over the integration's defaults.
fn fetch_settings(
    inst: &RawInstance,
    def: &IntegrationDef,
    i: usize,
) -> Result<FetchSettings, FetchError> {
    let mut settings = default_fetch(def.fetch.as_ref());
    let key = |k: &str| format!("instances[{i}].{k}");
    let duration = |v: &Spanned<String>, k: &str| -> Result<Duration, FetchError> {
        humantime::parse_duration(v.get_ref()).map_err(|e| {
            (
                v.span(),
                key(k),
                format!("`{}` is not a duration such as \"1m\": {e}", v.get_ref()),
            )
        })
    };
    if let Some(f) = &inst.fetch {
        if *f.get_ref() && def.fetch.is_none() {
            return Err((
                f.span(),
                key("fetch"),
                format!("integration {} does not fetch incidents", def.id),
            ));
        }
        settings.enabled = *f.get_ref();
    }
    if let Some(v) = &inst.fetch_interval {
        settings.interval = duration(v, "fetch_interval")?;
        if settings.interval < Duration::from_secs(1) {
            return Err((
                v.span(),
                key("fetch_interval"),
                "fetch_interval must be at least 1s".into(),
            ));
        }
    }
    if let Some(v) = &inst.look_back {
        settings.look_back = duration(v, "look_back")?;
    }
    if let Some(v) = &inst.first_fetch {
        settings.first_fetch = crate::time::TimeSpec::parse(v.get_ref())
            .map_err(|e| (v.span(), key("first_fetch"), e))?;
    }
    if let Some(v) = &inst.fetch_limit {
        let max = def
            .fetch
            .as_ref()
            .and_then(|f| f.max_limit)
            .unwrap_or(10_000);
        if *v.get_ref() < 1 || *v.get_ref() as usize > max {
            return Err((
                v.span(),
                key("fetch_limit"),
                format!("fetch_limit must be from 1 to {max}"),
            ));
        }
        settings.limit = *v.get_ref() as usize;
    }
    if let Some(v) = &inst.fetch_concurrency {
        if !(1..=64).contains(v.get_ref()) {
            return Err((
                v.span(),
                key("fetch_concurrency"),
                "fetch_concurrency must be from 1 to 64".into(),
            ));
        }
        settings.concurrency = *v.get_ref() as usize;
    }
    if let Some(v) = &inst.incident_type {
        settings.incident_type = v.get_ref().clone();
    }
    Ok(settings)
}

/// Settings of an instance itself (not of its integration), which go above `[instances.params]`.
const INSTANCE_SETTINGS: [&str; 9] = [
    "fetch",
    "fetch_interval",
    "first_fetch",
    "fetch_limit",
    "look_back",
    "incident_type",
    "fetch_concurrency",
    "mirror",
    "organization",
];

/// The database of a config file without `[storage]`: beside the file.
const DEFAULT_STORAGE: &str = "sqlite://watchfloor-data/watchfloor.db";

/// A `sqlite:` URL with a relative path is taken relative to the config file's directory, so
/// the same config works from any working directory.
fn storage_url(url: &str, base_dir: &Path) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    let (path, query) = rest
        .split_once('?')
        .map_or((rest, None), |(p, q)| (p, Some(q)));
    if path.is_empty() || path.starts_with(':') || Path::new(path).is_absolute() {
        return url.to_string();
    }
    let full = base_dir.join(path.strip_prefix("./").unwrap_or(path));
    match query {
        Some(q) => format!("sqlite://{}?{q}", full.display()),
        None => format!("sqlite://{}", full.display()),
    }
}

/// The key a parse error points at, as `table.key`, read from the text: the key on the error's
/// line, under the last table header before it.
/// If `name` is one of the XSOAR pack's parameters: what to write here instead, as the pack's
/// docs say.
fn xsoar_param_hint(def: &IntegrationDef, name: &str) -> Option<String> {
    def.xsoar_params.iter().find(|x| x.name == name).map(|x| {
        format!(
            "`{}` is the XSOAR pack's name; here write {} (docs/integrations/{}.md, \"Moving from XSOAR\")",
            x.name, x.here, def.id
        )
    })
}

/// For serde's "unknown field `X`" of an instance, where X is an XSOAR pack's parameter: the
/// same hint as under `[instances.params]`.
fn xsoar_hint(message: &str, integrations: &[&IntegrationDef]) -> Option<String> {
    let field = message.strip_prefix("unknown field `")?.split('`').next()?;
    integrations
        .iter()
        .find_map(|def| xsoar_param_hint(def, field))
}

fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    let key = line.split_once('=')?.0.trim();
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(['[', ']']).trim().to_string());
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// The most a secret file may hold; a key or passphrase is far smaller.
const MAX_SECRET_FILE: u64 = 1024 * 1024;

/// Reads a `{ file }` secret: a regular file (a FIFO or a device would block or never end),
/// without its trailing line break.
pub(crate) fn read_secret_file(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "secret file {} is not a regular file; point `file` at a file that holds the secret",
            path.display()
        ));
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(format!(
            "secret file {} is larger than 1 MiB; is it the right file?",
            path.display()
        ));
    }
    Ok(std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?
        .trim_end_matches(['\r', '\n'])
        .to_string())
}

fn resolve(
    pdef: &ParamDef,
    value: &toml::Value,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ParamValue, String> {
    use toml::Value as V;
    let expected = |what: &str| format!("expected {what}, found {}", value.type_str());
    Ok(match (pdef.kind, value) {
        (ParamType::Secret, value) => ParamValue::Secret(
            crate::secret::SecretSource::from_toml(value, base_dir)?.read_with(env)?,
        ),
        (ParamType::String, V::String(s)) => ParamValue::Text(s.clone()),
        (ParamType::Url, V::String(s)) => {
            let host = s
                .strip_prefix("http://")
                .or_else(|| s.strip_prefix("https://"))
                .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
            match host {
                None => {
                    return Err(format!(
                        "`{}` is not an http:// or https:// URL",
                        crate::secret::redact_url(s)
                    ));
                }
                Some(h)
                    if h.is_empty() || h.starts_with(':') || h.contains(char::is_whitespace) =>
                {
                    return Err(format!(
                        "`{}` names no host; write e.g. https://host.example/v1",
                        crate::secret::redact_url(s)
                    ));
                }
                Some(_) => ParamValue::Text(s.trim_end_matches('/').to_string()),
            }
        }
        (ParamType::Path, V::String(s)) => {
            ParamValue::Text(base_dir.join(s).to_string_lossy().into_owned())
        }
        (ParamType::Bool, V::Boolean(b)) => ParamValue::Bool(*b),
        (ParamType::Duration, V::String(s)) => {
            let d = humantime::parse_duration(s)
                .map_err(|e| format!("`{s}` is not a duration such as \"30s\": {e}"))?;
            if d.is_zero() {
                return Err(format!(
                    "`{s}` is no time at all; give a duration such as \"30s\""
                ));
            }
            ParamValue::Duration(d)
        }
        (ParamType::Duration, V::Integer(n)) if *n > 0 => {
            ParamValue::Duration(Duration::from_secs(*n as u64))
        }
        (ParamType::Integer, V::Integer(n)) => ParamValue::Integer(*n),
        (ParamType::String | ParamType::Url | ParamType::Path, _) => {
            return Err(expected("a string"));
        }
        (ParamType::Bool, _) => return Err(expected("true or false")),
        (ParamType::Duration, _) => return Err(expected("a duration such as \"30s\"")),
        (ParamType::Integer, _) => return Err(expected("an integer")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEF: &str = r#"
id = "demo-int"
display = "Demo"
description = "d"
commands = []
[[params]]
name = "portal_url"
type = "url"
default = "https://portal.example/v1"
description = "Portal URL"
[[params]]
name = "api_key"
type = "secret"
required = true
description = "API key"
[[params]]
name = "timeout"
type = "duration"
default = "30s"
description = "Timeout"
[[params]]
name = "insecure"
type = "bool"
default = false
description = "Skip TLS checks"
"#;

    fn parse(text: &str) -> Result<Config, String> {
        let def = IntegrationDef::from_toml(DEF).unwrap();
        let env = |var: &str| (var == "FES_KEY").then(|| "canary-from-env".to_string());
        Config::parse(Path::new("/etc/wf/watchfloor.toml"), text, &[&def], &env)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn loads_instances_with_defaults_and_secrets() {
        let config = parse(
            "[[instances]]\nname = \"fes\"\nintegration = \"demo-int\"\n[instances.params]\napi_key = { env = \"FES_KEY\" }\ntimeout = \"5s\"\n",
        )
        .unwrap();
        let fes = config.instance("fes").unwrap();
        assert_eq!(fes.get("portal_url"), Ok("https://portal.example/v1"));
        assert_eq!(
            fes.get::<&Secret>("api_key").unwrap().expose(),
            "canary-from-env"
        );
        assert_eq!(fes.get("timeout"), Ok(Duration::from_secs(5)));
        assert_eq!(fes.get("insecure"), Ok(false));
        assert_eq!(
            fes.get::<&str>("nonexistent").unwrap_err().to_string(),
            "parameter `nonexistent` is not set, or not of the type the definition gives it"
        );
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("canary"),
            "secret leaked into Debug: {debug}"
        );
    }

    #[test]
    fn relative_storage_paths_follow_the_config_file() {
        let base = Path::new("/etc/wf");
        for (url, expected) in [
            ("sqlite://./data/wf.db", "sqlite:///etc/wf/data/wf.db"),
            ("sqlite://wf.db?mode=rwc", "sqlite:///etc/wf/wf.db?mode=rwc"),
            ("sqlite:///var/lib/wf.db", "sqlite:///var/lib/wf.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("postgres://db/wf", "postgres://db/wf"),
        ] {
            assert_eq!(storage_url(url, base), expected, "{url}");
        }
        let config = parse("[storage]\nurl = \"sqlite://wf.db\"\n").unwrap();
        assert_eq!(
            config.storage_url.as_deref(),
            Some("sqlite:///etc/wf/wf.db")
        );
        // Without [storage], the database sits beside the config file, whatever the working
        // directory (regression, first hour: `--config X incidents list` from elsewhere showed 0).
        assert_eq!(
            parse("").unwrap().storage_url.as_deref(),
            Some("sqlite:///etc/wf/watchfloor-data/watchfloor.db")
        );
    }

    #[test]
    fn fetch_settings_and_their_errors() {
        let head = "[[instances]]\nname = \"fes\"\nintegration = \"demo-int\"\n";
        let tail = "[instances.params]\napi_key = \"k\"\n";
        let ok = parse(&format!("{head}fetch = false\nfetch_interval = \"30s\"\nfetch_limit = 50\nlook_back = \"5m\"\nfirst_fetch = \"3 days\"\n{tail}")).unwrap();
        let f = &ok.instances[0].fetch;
        assert_eq!(
            (
                f.enabled,
                f.interval,
                f.limit,
                f.look_back,
                f.first_fetch.to_string().as_str()
            ),
            (
                false,
                Duration::from_secs(30),
                50,
                Duration::from_secs(300),
                "3 days"
            )
        );
        let check = |extra: &str, expected: &str| {
            assert_eq!(
                parse(&format!("{head}{extra}{tail}")).unwrap_err(),
                expected,
                "{extra}"
            )
        };
        check(
            "fetch = true\n",
            "config file /etc/wf/watchfloor.toml, line 4, key `instances[0].fetch`: integration demo-int does not fetch incidents",
        );
        check(
            "first_fetch = \"soonish\"\n",
            "config file /etc/wf/watchfloor.toml, line 4, key `instances[0].first_fetch`: `soonish` is not a time: use e.g. \"3 days\", \"12 hours ago\" or 2024-05-01T00:00:00Z",
        );
        check(
            "fetch_limit = 0\n",
            "config file /etc/wf/watchfloor.toml, line 4, key `instances[0].fetch_limit`: fetch_limit must be from 1 to 10000",
        );
        check(
            "fetch_interval = \"0s\"\n",
            "config file /etc/wf/watchfloor.toml, line 4, key `instances[0].fetch_interval`: fetch_interval must be at least 1s",
        );
    }

    /// The shared sections are read once: what commands that need no instance read is what
    /// the whole config holds, and a mistake in them is the same error either way.
    #[test]
    fn the_shared_sections_read_the_same_either_way() {
        let dir = std::env::temp_dir().join(format!("wf-shared-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("watchfloor.toml");
        let text = "[storage]\nurl = \"sqlite://data/wf.db\"\n[sla]\nhigh = \"2h\"\n[server]\nlisten = \"127.0.0.1:9090\"\n\
                    [retention]\nclosed_after = \"30days\"\n[cluster]\nlease = \"45s\"\n\
                    [[instances]]\nname = \"fes\"\nintegration = \"demo-int\"\nfetch = false\n[instances.params]\napi_key = \"k\"\n";
        std::fs::write(&path, text).unwrap();
        let def = IntegrationDef::from_toml(DEF).unwrap();
        let whole = Config::parse(&path, text, &[&def], &|_| None).unwrap();
        let shared = Config::load_shared(&path).unwrap();
        assert_eq!(whole.shared(), shared);
        assert_eq!(shared.sla.high, Duration::from_secs(2 * 3600));
        assert_eq!(shared.lease, Some(Duration::from_secs(45)));
        let bad = "[cluster]\nlease = \"soon\"\n";
        std::fs::write(&path, bad).unwrap();
        let whole = Config::parse(&path, bad, &[&def], &|_| None)
            .unwrap_err()
            .to_string();
        let shared = Config::load_shared(&path).unwrap_err().to_string();
        assert_eq!(whole, shared);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Regression (an instance named `../fes` was accepted and broke its UI forms): names are
    /// letters, digits, `-`, `_` and `.`.
    #[test]
    fn instance_names_are_plain() {
        for bad in ["../fes", "fe s", "", "a/b", ".hidden", "fes\u{202e}"] {
            let text = format!(
                "[[instances]]\nname = {}\nintegration = \"demo-int\"\n[instances.params]\napi_key = \"k\"\n",
                toml::Value::String(bad.to_string())
            );
            let e = parse(&text).unwrap_err();
            assert!(e.contains("must be letters, digits"), "{bad:?}: {e}");
        }
        for good in ["fes", "fes-east_2", "sym.prod"] {
            let text = format!(
                "[[instances]]\nname = \"{good}\"\nintegration = \"demo-int\"\n[instances.params]\napi_key = \"k\"\n"
            );
            assert!(parse(&text).is_ok(), "{good}");
        }
    }

    /// `[indicators]`: defaults, the exclusion list checked at load, mistakes named by key.
    #[test]
    fn indicators_are_read_and_their_errors_named() {
        assert_eq!(parse("").unwrap().indicators, IndicatorConfig::default());
        let ok = parse(
            "[indicators]\nexclude = [\"10.0.0.0/8\", \"*.corp.example\", \"8.8.8.8\"]\ncross_org_counts = false\n",
        )
        .unwrap()
        .indicators;
        assert!(!ok.cross_org_counts && ok.exclude_reserved);
        assert_eq!(ok.exclude.len(), 3);
        for (text, says) in [
            (
                "[indicators]\nexclude = [\"10.0.0.0/33\"]\n",
                "prefix length",
            ),
            ("[indicators]\nexclude = [\"*.com\"]\n", "excludes too much"),
            ("[indicators]\nexclude = [\"\"]\n", "empty entry"),
            ("[indicators]\nexclude_everything = true\n", "unknown field"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says) && e.contains("indicators"), "{text}: {e}");
        }
    }

    /// `[[channels]]`: read with their defaults, secrets left to be read when used; every
    /// mistake named by its line and key.
    /// `[sla] from`: the time starts when watchfloor stores an incident (the default) or when
    /// it occurred; anything else is named by its line and key.
    #[test]
    fn the_sla_starts_when_stored_or_when_it_occurred() {
        use crate::lifecycle::SlaFrom;
        assert_eq!(parse("").unwrap().sla.from, SlaFrom::Stored);
        let occurred = parse("[sla]\nfrom = \"occurred\"\nhigh = \"2h\"\n").unwrap();
        assert_eq!(occurred.sla.from, SlaFrom::Occurred);
        assert_eq!(occurred.sla.high, Duration::from_secs(7200));
        assert_eq!(
            parse("[sla]\nfrom = \"later\"\n").unwrap_err(),
            "config file /etc/wf/watchfloor.toml, line 2, key `sla.from`: `later` is not when an SLA starts: \"stored\" (when watchfloor stored the incident) or \"occurred\" (when the provider made it)"
        );
    }

    /// `[[reports]]`: each names an organization and a configured channel; how often is a
    /// month unless it says a day; every mistake is named by its line and key.
    #[test]
    fn scheduled_reports_are_read_and_their_errors_named() {
        let hook = "[[channels]]\nname = \"acme-mail\"\nkind = \"webhook\"\nurl = \"https://hooks.example/x\"\n";
        let ok = parse(&format!(
            "{hook}[[reports]]\norg = \"Acme\"\nchannel = \"acme-mail\"\n\
             [[reports]]\norg = \"Globex\"\nevery = \"day\"\nchannel = \"acme-mail\"\n"
        ))
        .unwrap();
        assert_eq!(
            ok.reports,
            [
                ReportSchedule {
                    org: "Acme".into(),
                    every: Every::Month,
                    channel: "acme-mail".into()
                },
                ReportSchedule {
                    org: "Globex".into(),
                    every: Every::Day,
                    channel: "acme-mail".into()
                }
            ]
        );
        let at = "config file /etc/wf/watchfloor.toml";
        for (text, expected) in [
            (
                format!("{hook}[[reports]]\norg = \"Acme\"\nchannel = \"pager\"\n"),
                "line 7, key `reports[0].channel`: there is no channel `pager`; the channels are: acme-mail",
            ),
            (
                "[[reports]]\norg = \"Acme\"\nchannel = \"pager\"\n".to_string(),
                "line 3, key `reports[0].channel`: there is no channel `pager`: add it under [[channels]]",
            ),
            (
                format!(
                    "{hook}[[reports]]\norg = \"Acme\"\nevery = \"week\"\nchannel = \"acme-mail\"\n"
                ),
                "line 7, key `reports[0].every`: `week` is not how often a report goes: \"month\" or \"day\"",
            ),
            (
                format!("{hook}[[reports]]\norg = \" \"\nchannel = \"acme-mail\"\n"),
                "line 6, key `reports[0].org`: a report names the organization it is about, e.g. \"Acme Corp\"",
            ),
            (
                format!(
                    "{hook}[[reports]]\norg = \"Acme\"\nchannel = \"acme-mail\"\n[[reports]]\norg = \"Acme\"\nchannel = \"acme-mail\"\n"
                ),
                "line 9, key `reports[1].org`: this report is listed twice; it would be sent twice",
            ),
        ] {
            assert_eq!(
                parse(&text).unwrap_err(),
                format!("{at}, {expected}"),
                "{text}"
            );
        }
        let unknown = parse(&format!(
            "{hook}[[reports]]\norg = \"Acme\"\nchannel = \"acme-mail\"\ncolour = \"red\"\n"
        ))
        .unwrap_err();
        assert!(unknown.contains("colour"), "{unknown}");
    }

    #[test]
    fn channels_are_read_and_their_errors_named() {
        let ok = parse(
            "[server]\npublic_url = \"https://soc.example/\"\n\
             [[channels]]\nname = \"oncall\"\nkind = \"email\"\nsmtp = \"smtp://127.0.0.1:2525\"\n\
             password = { env = \"SMTP_PASSWORD_UNSET\" }\nusername = \"wf\"\nfrom = \"wf@soc.example\"\nto = [\"oncall@soc.example\"]\n\
             [[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"https://hooks.example/x?token=abc\"\nsecret = \"s3cret\"\nmax_per_hour = 5\ngive_up_after = \"2h\"\n",
        )
        .unwrap();
        assert_eq!(ok.public_url.as_deref(), Some("https://soc.example"));
        assert_eq!(ok.channels.len(), 2);
        assert_eq!(
            ok.channels[0].max_per_hour,
            crate::channel::DEFAULT_MAX_PER_HOUR
        );
        assert_eq!(ok.channels[1].max_per_hour, 5);
        assert_eq!(ok.channels[1].give_up_after, Duration::from_secs(7200));
        assert_eq!(ok.channels[1].target(), "https://hooks.example/…");
        let debug = format!("{:?}", ok.channels);
        assert!(
            !debug.contains("s3cret") && !debug.contains("token=abc"),
            "{debug}"
        );
        assert!(
            ok.channels[0]
                .check_secrets()
                .unwrap_err()
                .contains("SMTP_PASSWORD_UNSET")
        );
        let check = |text: &str, expected: &str| {
            assert_eq!(parse(text).unwrap_err(), expected, "config: {text}")
        };
        let at = "config file /etc/wf/watchfloor.toml";
        check(
            "[[channels]]\nname = \"x\"\nkind = \"pager\"\n",
            &format!(
                "{at}, line 3, key `channels[0].kind`: `pager` is not a kind of channel; one of: email, webhook, slack, teams"
            ),
        );
        check(
            "[[channels]]\nname = \"x\"\nkind = \"email\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
            &format!(
                "{at}, line 1, key `channels[0].smtp`: an email channel needs `smtp`: the server, e.g. \"smtp://mail.example:587\""
            ),
        );
        check(
            "[[channels]]\nname = \"x\"\nkind = \"email\"\nsmtp = \"mail:25\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
            &format!(
                "{at}, line 4, key `channels[0].smtp`: `mail:25` is not an smtp:// or smtps:// address with a host"
            ),
        );
        check(
            "[[channels]]\nname = \"x\"\nkind = \"email\"\nsmtp = \"smtp://mail:smtp\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
            &format!(
                "{at}, line 4, key `channels[0].smtp`: `smtp` in `smtp` is not a port (1 to 65535)"
            ),
        );
        check(
            "[[channels]]\nname = \"x\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/a\"\nsecret = \"s\"\n",
            &format!("{at}, line 1, key `channels[0].secret`: a slack channel has no `secret`"),
        );
        check(
            "[[channels]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"https://h/a\"\n[[channels]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"https://h/b\"\n",
            &format!(
                "{at}, line 6, key `channels[1].name`: there are two channels named `x`; give each its own name"
            ),
        );
        check(
            "[[channels]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"https://h/a\"\nmax_per_hour = 0\n",
            &format!(
                "{at}, line 5, key `channels[0].max_per_hour`: max_per_hour is from 1 to 10000"
            ),
        );
        check(
            "[server]\npublic_url = \"soc.example\"\n",
            &format!(
                "{at}, line 2, key `server.public_url`: `soc.example` is not an http:// or https:// address, e.g. \"https://soc.example\""
            ),
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let check = |text: &str, expected: &str| {
            assert_eq!(parse(text).unwrap_err(), expected, "config: {text}")
        };
        let head =
            "[[instances]]\nname = \"fes\"\nintegration = \"demo-int\"\n[instances.params]\n";
        check(
            &format!("{head}api_key = \"k\"\napi_kye = \"x\"\n"),
            "config file /etc/wf/watchfloor.toml, line 6, key `instances[0].params.api_kye`: unknown parameter for demo-int; did you mean `api_key`? (valid parameters: portal_url, api_key, timeout, insecure)",
        );
        check(
            &format!("{head}api_key = {{ env = \"NOPE\" }}\n"),
            "config file /etc/wf/watchfloor.toml, line 5, key `instances[0].params.api_key`: environment variable `NOPE` is not set",
        );
        check(
            &format!("{head}api_key = \"k\"\ntimeout = \"soon\"\n"),
            "config file /etc/wf/watchfloor.toml, line 6, key `instances[0].params.timeout`: `soon` is not a duration such as \"30s\": expected number at 0",
        );
        check(
            &format!("{head}api_key = \"k\"\nportal_url = \"ftp://x\"\n"),
            "config file /etc/wf/watchfloor.toml, line 6, key `instances[0].params.portal_url`: `ftp://x` is not an http:// or https:// URL",
        );
        check(
            &format!("{head}api_key = \"k\"\ninsecure = \"yes\"\n"),
            "config file /etc/wf/watchfloor.toml, line 6, key `instances[0].params.insecure`: expected true or false, found string",
        );
        check(
            head,
            "config file /etc/wf/watchfloor.toml, line 2, key `instances[0].params.api_key`: instance `fes` is missing required parameter `api_key` (API key)",
        );
        check(
            "[[instances]]\nname = \"fes\"\nintegration = \"nope\"\n",
            "config file /etc/wf/watchfloor.toml, line 3, key `instances[0].integration`: unknown integration `nope`; known integrations: demo-int",
        );
        check(
            "[[instances]]\nname = \"fes\"\n\nintegration = \"demo-int\"\nport = 1\n",
            "config file /etc/wf/watchfloor.toml, line 5, key `instances.port`: unknown field `port`, expected one of `name`, `integration`, `params`, `fetch`, `fetch_interval`, `first_fetch`, `fetch_limit`, `look_back`, `incident_type`, `fetch_concurrency`, `mirror`, `organization`",
        );
        check(
            "[[instances]\n",
            "config file /etc/wf/watchfloor.toml, line 1: unclosed array table, expected `]`",
        );
        check(
            &format!(
                "{head}api_key = \"k\"\n[[instances]]\nname = \"fes\"\nintegration = \"demo-int\"\n"
            ),
            "config file /etc/wf/watchfloor.toml, line 7, key `instances[1].name`: instance name `fes` is used twice; names must be unique",
        );
        // Regression (hardening 11): type and duplicate errors named the line but not the
        // key; a zero timeout, a URL without a host and a FIFO secret were accepted.
        check(
            "[[instances]]\nname = 5\nintegration = \"demo-int\"\n",
            "config file /etc/wf/watchfloor.toml, line 2, key `instances.name`: invalid type: integer `5`, expected a string",
        );
        check(
            "[[instances]]\nname = \"a\"\nname = \"b\"\n",
            "config file /etc/wf/watchfloor.toml, line 3, key `instances.name`: duplicate key",
        );
        // Regression (first hour): fetch settings pasted after the example landed among the
        // parameters, and the error did not say to move them.
        check(
            &format!("{head}api_key = \"k\"\nfetch = true\n"),
            "config file /etc/wf/watchfloor.toml, line 6, key `instances[0].params.fetch`: `fetch` is a setting of the instance, not a parameter: move it above [instances.params], next to `name` and `integration`",
        );
        check(
            &format!("{head}api_key = \"k\"\ntimeout = \"0s\"\n"),
            "config file /etc/wf/watchfloor.toml, line 6, key `instances[0].params.timeout`: `0s` is no time at all; give a duration such as \"30s\"",
        );
        check(
            &format!("{head}api_key = \"k\"\nportal_url = \"http://\"\n"),
            "config file /etc/wf/watchfloor.toml, line 6, key `instances[0].params.portal_url`: `http://` names no host; write e.g. https://host.example/v1",
        );
    }

    #[test]
    fn sla_durations_come_from_the_config_over_the_defaults() {
        let config = parse("[sla]\ncritical = \"30m\"\nlow = \"2d\"\n").unwrap();
        assert_eq!(config.sla.critical, Duration::from_secs(1800));
        assert_eq!(config.sla.low, Duration::from_secs(2 * 86_400));
        assert_eq!(config.sla.high, SlaPolicy::default().high);
        assert_eq!(
            parse("[sla]\nhigh = \"soon\"\n").unwrap_err(),
            "config file /etc/wf/watchfloor.toml, line 2, key `sla.high`: `soon` is not a duration such as \"4h\""
        );
    }

    #[test]
    fn retention_is_a_duration_of_an_hour_or_more() {
        assert_eq!(parse("").unwrap().retention, None);
        assert_eq!(
            parse("[retention]\nclosed_after = \"90days\"\n")
                .unwrap()
                .retention,
            Some(Duration::from_secs(90 * 86400))
        );
        assert_eq!(
            parse("[retention]\nclosed_after = \"soon\"\n").unwrap_err(),
            "config file /etc/wf/watchfloor.toml, line 2, key `retention.closed_after`: `soon` is not a duration: write e.g. \"90days\" or \"12weeks\""
        );
        assert!(
            parse("[retention]\nclosed_after = \"5m\"\n")
                .unwrap_err()
                .contains("an hour at least")
        );
    }

    #[test]
    fn the_cluster_lease_is_a_duration_from_a_second_to_ten_minutes() {
        assert_eq!(parse("").unwrap().lease, None);
        assert_eq!(
            parse("[cluster]\nlease = \"45s\"\n").unwrap().lease,
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            parse("[cluster]\nlease = \"1h\"\n").unwrap_err(),
            "config file /etc/wf/watchfloor.toml, line 2, key `cluster.lease`: a lease lasts from 1s to 10min, e.g. \"30s\""
        );
        assert!(
            parse("[cluster]\nlease = \"later\"\n")
                .unwrap_err()
                .contains("`later` is not a duration")
        );
        assert!(parse("[cluster]\nleases = \"30s\"\n").is_err());
    }

    #[test]
    fn the_api_address_comes_from_server_listen() {
        assert_eq!(parse("").unwrap().listen, None);
        assert_eq!(
            parse("[server]\nlisten = \"127.0.0.1:8080\"\n")
                .unwrap()
                .listen,
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse("[server]\nlisten = \"localhost\"\n").unwrap_err(),
            "config file /etc/wf/watchfloor.toml, line 2, key `server.listen`: `localhost` is not an address to listen on; write an IP and a port, e.g. \"127.0.0.1:8080\""
        );
    }

    #[test]
    fn a_secret_file_must_be_a_regular_file() {
        let dir = std::env::temp_dir().join(format!("wf-secret-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a-directory")).unwrap();
        let config = dir.join("watchfloor.toml");
        let text = "[[instances]]\nname = \"fes\"\nintegration = \"demo-int\"\n[instances.params]\napi_key = { file = \"a-directory\" }\n";
        let def = IntegrationDef::from_toml(DEF).unwrap();
        let err = Config::parse(&config, text, &[&def], &|_| None)
            .unwrap_err()
            .to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            err.ends_with("is not a regular file; point `file` at a file that holds the secret"),
            "{err}"
        );
    }
}
