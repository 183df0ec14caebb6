//! watchfloor-rules: the automation rule language. A rule file is TOML: each `[[rules]]` names
//! the events it runs on (`on`), a condition in the query syntax of searches (`when`), and
//! actions from a fixed catalog. [`parse`] reads and checks a whole file, against what the
//! install has ([`Catalog`]: users, channels, commands), before anything is stored; every error
//! names the rule, the line and the key.
//!
//! This crate only reads and checks rules and matches them against incidents; the service
//! layer runs their actions, as a caller of their own.

mod action;
mod matcher;
mod template;

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use action::{ACTIONS, Action, Assign, CATALOG, Pick};
pub use matcher::{matches, meets, meets_with, names_organizations};
pub use template::{Part, Ref, Template};

/// The fields a change has, as `changed = [...]` and `${change.<field>.old}` name them.
pub const CHANGE_FIELDS: [&str; 7] = [
    "status",
    "severity",
    "owner",
    "type",
    "label",
    "closeReason",
    "closeNotes",
];

/// The war-room name of a change field (`closeReason` is "close reason" there).
pub fn entry_field(field: &str) -> &str {
    match field {
        "closeReason" => "close reason",
        "closeNotes" => "close notes",
        other => other,
    }
}

/// Most actions a rule runs an hour, unless `max_per_hour` says.
pub const DEFAULT_MAX_PER_HOUR: u32 = 500;

/// What fires a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trigger {
    /// Fetched, or made by hand.
    Created,
    /// Any field changed (narrowed by the rule's `changed`).
    Changed,
    Closed,
    Reopened,
    /// A note was added.
    Note,
    /// A change came from the provider.
    Remote,
    SlaAtRisk,
    SlaBreached,
    /// Every `every`: the rule runs over the incidents `when` matches.
    Schedule,
}

impl Trigger {
    /// What fires it, for the reference.
    pub fn describe(self) -> &'static str {
        match self {
            Trigger::Created => "an incident was fetched or made by hand",
            Trigger::Changed => {
                "a field changed (status, severity, owner, type, label); `changed = [...]` narrows it to some fields"
            }
            Trigger::Closed => "an incident was closed",
            Trigger::Reopened => "a closed incident was opened again",
            Trigger::Note => "a note was added",
            Trigger::Remote => "a change came from the provider (mirroring)",
            Trigger::SlaAtRisk => "the incident's SLA came at risk",
            Trigger::SlaBreached => "the incident's SLA was breached",
            Trigger::Schedule => "every `every` (e.g. `15m`), over the incidents `when` matches",
        }
    }

    pub const ALL: [Trigger; 9] = [
        Trigger::Created,
        Trigger::Changed,
        Trigger::Closed,
        Trigger::Reopened,
        Trigger::Note,
        Trigger::Remote,
        Trigger::SlaAtRisk,
        Trigger::SlaBreached,
        Trigger::Schedule,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Created => "created",
            Trigger::Changed => "changed",
            Trigger::Closed => "closed",
            Trigger::Reopened => "reopened",
            Trigger::Note => "note",
            Trigger::Remote => "remote",
            Trigger::SlaAtRisk => "sla-at-risk",
            Trigger::SlaBreached => "sla-breached",
            Trigger::Schedule => "schedule",
        }
    }

    pub fn parse(s: &str) -> Result<Trigger, String> {
        Trigger::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown trigger `{s}`: expected one of {}",
                    Trigger::ALL.map(Trigger::as_str).join(", ")
                )
            })
    }
}

/// Whether a rule acts, or only records what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    DryRun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::DryRun => "dry-run",
        }
    }
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub on: Vec<Trigger>,
    /// With `changed` among the triggers: only changes of these fields (none: any).
    pub changed: Vec<String>,
    /// The condition as written (read again at each match, so that relative times such as
    /// `created:<-15m` are relative to then); empty matches every incident.
    pub when: String,
    pub actions: Vec<Action>,
    pub mode: Mode,
    pub enabled: bool,
    pub max_per_hour: u32,
    /// With the `schedule` trigger: how often it runs.
    pub every: Option<Duration>,
}

/// What a rule file is checked against: the install's users (with the organizations each sees;
/// none is all), its notification channels, and whether a command exists.
pub struct Catalog<'a> {
    pub users: &'a [(String, Vec<String>)],
    pub channels: &'a [String],
    pub command_exists: &'a dyn Fn(&str) -> bool,
    /// Skip the checks of users, channels and commands (a stored rule, checked when imported).
    pub lenient: bool,
    /// Triggers this install cannot fire yet: a rule on one is refused, not left to wait.
    pub unavailable: &'a [Trigger],
}

/// A problem with a rule file: where, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}line {line}, `{key}`: {message}", rule.as_ref().map(|r| format!("rule `{r}`, ")).unwrap_or_default())]
pub struct RuleError {
    pub rule: Option<String>,
    pub line: usize,
    pub key: String,
    pub message: String,
}

/// Several problems, each on its own line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct RuleErrors(pub Vec<RuleError>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    rules: Vec<Spanned<RuleDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    name: Spanned<String>,
    on: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    changed: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    when: Option<Spanned<String>>,
    actions: Spanned<Vec<Spanned<toml::Table>>>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    max_per_hour: Option<Spanned<u32>>,
    #[serde(default)]
    every: Option<Spanned<String>>,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Reads a stored rule file, checked when it was imported: its shape only, not whether its
/// users, channels and commands still exist (the rule finds out when it runs).
pub fn parse_stored(text: &str) -> Result<Vec<Rule>, RuleErrors> {
    parse(
        text,
        &Catalog {
            users: &[],
            channels: &[],
            command_exists: &|_| true,
            lenient: true,
            unavailable: &[],
        },
    )
}

/// Reads and checks a whole rule file. Nothing is partly good: any error fails the file, and
/// every error found is listed.
pub fn parse(text: &str, catalog: &Catalog<'_>) -> Result<Vec<Rule>, RuleErrors> {
    let doc: FileDoc = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        let message = e.message().trim().to_string();
        let key = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("unknown field"))
            .unwrap_or("")
            .to_string();
        RuleErrors(vec![RuleError {
            rule: None,
            line,
            key,
            message,
        }])
    })?;
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for spanned in doc.rules {
        let doc = spanned.into_inner();
        let name = doc.name.get_ref().trim().to_string();
        let mut fail = |key: &str, at: usize, message: String| {
            errors.push(RuleError {
                rule: Some(name.clone()).filter(|n| !n.is_empty()),
                line: line_of(text, at),
                key: key.to_string(),
                message,
            })
        };
        if name.is_empty() || name.chars().any(|c| c.is_control()) || name.len() > 100 {
            fail(
                "name",
                doc.name.span().start,
                "a rule needs a name of 1 to 100 characters, without control characters".into(),
            );
        } else if !names.insert(name.clone()) {
            fail(
                "name",
                doc.name.span().start,
                format!("another rule is already named `{name}`; names are unique"),
            );
        }
        let mut on = Vec::new();
        for t in doc.on.get_ref() {
            match Trigger::parse(t.get_ref()) {
                Ok(trigger) if catalog.unavailable.contains(&trigger) => fail(
                    "on",
                    t.span().start,
                    format!(
                        "the `{}` trigger is not available yet; use another trigger, or a rule on `created` and `changed`",
                        trigger.as_str()
                    ),
                ),
                Ok(t) if !on.contains(&t) => on.push(t),
                Ok(_) => {}
                Err(e) => fail("on", t.span().start, e),
            }
        }
        if on.is_empty() && doc.on.get_ref().is_empty() {
            fail(
                "on",
                doc.on.span().start,
                "a rule runs on at least one trigger".into(),
            );
        }
        let mut changed = Vec::new();
        if let Some(list) = &doc.changed {
            if !on.contains(&Trigger::Changed) {
                fail(
                    "changed",
                    list.span().start,
                    "`changed` narrows the `changed` trigger, which `on` does not have".into(),
                );
            }
            for f in list.get_ref() {
                match CHANGE_FIELDS.contains(&f.get_ref().as_str()) {
                    true => changed.push(f.get_ref().clone()),
                    false => fail(
                        "changed",
                        f.span().start,
                        format!(
                            "a change has no field `{}`; it has {}",
                            f.get_ref(),
                            CHANGE_FIELDS.join(", ")
                        ),
                    ),
                }
            }
        }
        let when = doc
            .when
            .as_ref()
            .map(|w| w.get_ref().trim().to_string())
            .unwrap_or_default();
        if let Some(w) = &doc.when
            && !when.is_empty()
            && let Err(e) = watchfloor_core::query::parse(&when)
        {
            fail("when", w.span().start, e.to_string());
        }
        let mode = match doc.mode.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("live") => Mode::Live,
            Some("dry-run") => Mode::DryRun,
            Some(other) => {
                let at = doc.mode.as_ref().map_or(0, |m| m.span().start);
                fail(
                    "mode",
                    at,
                    format!("unknown mode `{other}`: expected live or dry-run"),
                );
                Mode::Live
            }
        };
        let max_per_hour = match &doc.max_per_hour {
            Some(m) if *m.get_ref() == 0 => {
                fail(
                    "max_per_hour",
                    m.span().start,
                    "at least 1; disable the rule to stop it".into(),
                );
                DEFAULT_MAX_PER_HOUR
            }
            Some(m) => *m.get_ref(),
            None => DEFAULT_MAX_PER_HOUR,
        };
        let every = match (&doc.every, on.contains(&Trigger::Schedule)) {
            (Some(e), true) => match humantime::parse_duration(e.get_ref().trim()) {
                Ok(d) if d >= Duration::from_secs(60) => Some(d),
                Ok(_) => {
                    fail("every", e.span().start, "at least 1m".into());
                    None
                }
                Err(err) => {
                    fail(
                        "every",
                        e.span().start,
                        format!(
                            "`{}` is not a duration such as 15m or 1h: {err}",
                            e.get_ref()
                        ),
                    );
                    None
                }
            },
            (None, true) => {
                fail(
                    "every",
                    doc.on.span().start,
                    "a `schedule` rule says how often it runs, e.g. every = \"15m\"".into(),
                );
                None
            }
            (Some(e), false) => {
                fail(
                    "every",
                    e.span().start,
                    "`every` is for the `schedule` trigger, which `on` does not have".into(),
                );
                None
            }
            (None, false) => None,
        };
        let named_orgs = names_organizations(&when);
        let mut actions = Vec::new();
        if doc.actions.get_ref().is_empty() {
            fail(
                "actions",
                doc.actions.span().start,
                "a rule has at least one action".into(),
            );
        }
        for table in doc.actions.get_ref() {
            match Action::parse(table.get_ref(), catalog, &named_orgs) {
                Ok(a) => actions.push(a),
                Err((key, message)) => fail(&key, table.span().start, message),
            }
        }
        rules.push(Rule {
            name,
            on,
            changed,
            when,
            actions,
            mode,
            enabled: doc.enabled.unwrap_or(true),
            max_per_hour,
            every,
        });
    }
    match errors.is_empty() {
        true => Ok(rules),
        false => Err(RuleErrors(errors)),
    }
}

impl Rule {
    /// Whether `trigger`, with these changed fields (war-room names), fires the rule.
    pub fn fires_on(&self, trigger: Trigger, changed: &[String]) -> bool {
        self.on.contains(&trigger)
            && (trigger != Trigger::Changed
                || self.changed.is_empty()
                || self
                    .changed
                    .iter()
                    .any(|f| changed.iter().any(|c| c == entry_field(f))))
    }

    /// The rule as TOML, as `rules export` writes it: it reads back as the same rule.
    pub fn to_toml(&self) -> String {
        let mut t = toml::Table::new();
        t.insert("name".into(), self.name.clone().into());
        t.insert(
            "on".into(),
            toml::Value::Array(self.on.iter().map(|o| o.as_str().into()).collect()),
        );
        if !self.changed.is_empty() {
            t.insert(
                "changed".into(),
                toml::Value::Array(self.changed.iter().map(|c| c.clone().into()).collect()),
            );
        }
        if !self.when.is_empty() {
            t.insert("when".into(), self.when.clone().into());
        }
        if let Some(every) = self.every {
            t.insert(
                "every".into(),
                humantime::format_duration(every).to_string().into(),
            );
        }
        if self.mode != Mode::Live {
            t.insert("mode".into(), self.mode.as_str().into());
        }
        if !self.enabled {
            t.insert("enabled".into(), false.into());
        }
        if self.max_per_hour != DEFAULT_MAX_PER_HOUR {
            t.insert("max_per_hour".into(), i64::from(self.max_per_hour).into());
        }
        t.insert(
            "actions".into(),
            toml::Value::Array(
                self.actions
                    .iter()
                    .map(|a| toml::Value::Table(a.to_table()))
                    .collect(),
            ),
        );
        let mut doc = toml::Table::new();
        doc.insert(
            "rules".into(),
            toml::Value::Array(vec![toml::Value::Table(t)]),
        );
        toml::to_string(&doc).unwrap_or_default()
    }
}

/// The reference tables of `docs/rules.md`, made from the definitions: the triggers (those in
/// `unavailable` marked so) and the actions with their keys.
pub fn reference(unavailable: &[Trigger]) -> String {
    let mut out = String::from("| trigger | fires when |\n|---|---|\n");
    for t in Trigger::ALL {
        let later = if unavailable.contains(&t) {
            " (not available yet: refused at import)"
        } else {
            ""
        };
        out.push_str(&format!("| `{}` | {}{later} |\n", t.as_str(), t.describe()));
    }
    out.push_str("\n| action | keys | what it does |\n|---|---|---|\n");
    for (name, keys, what) in CATALOG {
        let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
        out.push_str(&format!("| `{name}` | {} | {what} |\n", keys.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests;
