//! The fixed catalog of actions, read from a rule's `actions` tables. Each maps to one
//! operation of the service layer.

use std::time::Duration;

use watchfloor_core::{CloseReason, Severity, Status};

use crate::{Catalog, Template};

/// Fields `link-duplicates` may compare (`indicator`: the incidents share an indicator that
/// is not judged benign).
pub const DUPLICATE_KEYS: [&str; 6] = [
    "name",
    "organization",
    "type",
    "instance",
    "severity",
    "indicator",
];

/// One action of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Assign(Assign),
    Severity(Severity),
    /// `pending` or `active`; a close is its own action.
    Status(Status),
    Type(String),
    Label {
        name: String,
        value: Template,
    },
    Note {
        text: Template,
        /// Also send it to the provider.
        mirror: bool,
    },
    /// A provider command in the incident's context; with `${indicator.<type>}` in the line,
    /// once per such indicator of the incident.
    Run {
        line: Template,
        instance: Option<String>,
        /// How long a result is kept for the incident's organization, so that the same line
        /// is not sent again meanwhile.
        cache: Option<Duration>,
    },
    Close {
        reason: CloseReason,
        notes: Option<Template>,
    },
    /// Incidents of the same organization with the same `key` fields within `within`: the later
    /// ones are linked to the first and closed as duplicates.
    LinkDuplicates {
        key: Vec<String>,
        within: Duration,
    },
    Notify {
        channel: String,
    },
    /// No later rule runs for this event.
    Stop,
}

/// Whom `assign` gives the incident to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assign {
    pub to: Vec<String>,
    pub pick: Pick,
}

/// How `assign` picks among several users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The one user named.
    One,
    /// Each in turn.
    RoundRobin,
    /// The one with the fewest open incidents.
    LeastLoaded,
}

impl Pick {
    fn as_str(self) -> &'static str {
        match self {
            Pick::One => "one",
            Pick::RoundRobin => "round-robin",
            Pick::LeastLoaded => "least-loaded",
        }
    }
}

/// The catalog: each action, the keys it takes, and what it does. Parsing and the reference
/// in `docs/rules.md` both read it.
pub const CATALOG: [(&str, &[&str], &str); 11] = [
    (
        "assign",
        &["to", "pick"],
        "give the incident to `to`, a user or a list of users; with a list, `pick` is `round-robin` or `least-loaded` (fewest open incidents). Only users who see the incident's organization are picked",
    ),
    (
        "severity",
        &["to"],
        "set the severity: `unknown`, `informational`, `low`, `medium`, `high` or `critical`",
    ),
    (
        "status",
        &["to"],
        "set the status: `pending` or `active` (a rule closes with `close`)",
    ),
    ("type", &["to"], "set the incident type"),
    (
        "label",
        &["name", "value"],
        "add a label; `value` is templated",
    ),
    (
        "note",
        &["text", "mirror"],
        "add a note to the war room; `text` is templated; `mirror = true` also sends it to the provider",
    ),
    (
        "run",
        &["line", "instance", "cache"],
        "run a provider command in the incident, on its own instance unless `instance` says; values of `line` are templated one by one; outputs merge into the incident's context. `${indicator.<type>}` in `line` runs it once per such indicator of the incident (at most 20); `cache = \"24h\"` keeps each result that long for the incident's organization, so the same line is answered from it instead of the provider",
    ),
    (
        "close",
        &["reason", "notes"],
        "close it: `reason` is `Resolved`, `False Positive`, `Duplicate` or `Other`; `notes` is templated",
    ),
    (
        "link-duplicates",
        &["key", "within"],
        "if an open incident of the same organization with the same `key` fields (`name`, `organization`, `type`, `instance`, `severity`; `indicator`: they share an indicator not judged benign) was made within `within` (default 1h) before this one, close this one as `Duplicate` and note the link on the first",
    ),
    (
        "notify",
        &["channel"],
        "queue a message to a channel of the config (`[[channels]]`; see docs/notifications.md)",
    ),
    ("stop", &[], "no later rule runs for this event"),
];

/// The actions there are, for messages.
pub const ACTIONS: [&str; 11] = {
    let mut names = [""; 11];
    let mut i = 0;
    while i < CATALOG.len() {
        names[i] = CATALOG[i].0;
        i += 1;
    }
    names
};

type Fail = (String, String);

fn fail(key: &str, message: impl Into<String>) -> Fail {
    (key.to_string(), message.into())
}

fn text<'t>(table: &'t toml::Table, key: &str, action: &str) -> Result<&'t str, Fail> {
    match table.get(key) {
        Some(toml::Value::String(s)) => Ok(s),
        Some(other) => Err(fail(
            key,
            format!("`{key}` of `{action}` is text, not {}", other.type_str()),
        )),
        None => Err(fail(key, format!("`{action}` needs `{key}`"))),
    }
}

fn template(table: &toml::Table, key: &str, action: &str) -> Result<Template, Fail> {
    let t = Template::parse(text(table, key, action)?).map_err(|e| fail(key, e))?;
    if t.indicator_kind().is_some() && action != "run" {
        return Err(fail(
            key,
            "`${indicator.<type>}` is for a `run` line, which runs once per indicator",
        ));
    }
    Ok(t)
}

impl Action {
    /// Reads one action table. `named_orgs` are the organizations the rule's condition names
    /// (see [`crate::names_organizations`]): an assignee must see them.
    pub fn parse(
        table: &toml::Table,
        catalog: &Catalog<'_>,
        named_orgs: &[String],
    ) -> Result<Action, Fail> {
        let name = match table.get("action") {
            Some(toml::Value::String(s)) => s.as_str(),
            Some(_) => return Err(fail("action", "`action` is text, e.g. \"assign\"")),
            None => {
                return Err(fail(
                    "action",
                    format!(
                        "each action names itself: action = one of {}",
                        ACTIONS.join(", ")
                    ),
                ));
            }
        };
        let Some((_, allowed, _)) = CATALOG.iter().find(|(n, _, _)| *n == name) else {
            return Err(fail(
                "action",
                format!(
                    "unknown action `{name}`: expected one of {}",
                    ACTIONS.join(", ")
                ),
            ));
        };
        if let Some(extra) = table
            .keys()
            .find(|k| *k != "action" && !allowed.contains(&k.as_str()))
        {
            return Err(fail(
                extra,
                format!(
                    "`{name}` has no `{extra}`; it takes {}",
                    match allowed.is_empty() {
                        true => "nothing more".to_string(),
                        false => allowed.join(", "),
                    }
                ),
            ));
        }
        Ok(match name {
            "assign" => Action::Assign(assign(table, catalog, named_orgs)?),
            "severity" => Action::Severity(
                Severity::parse(text(table, "to", name)?).map_err(|e| fail("to", e))?,
            ),
            "status" => match Status::parse(text(table, "to", name)?).map_err(|e| fail("to", e))? {
                Status::Closed => {
                    return Err(fail(
                        "to",
                        "a rule closes with { action = \"close\", reason = \"...\" }",
                    ));
                }
                s => Action::Status(s),
            },
            "type" => Action::Type(text(table, "to", name)?.trim().to_string()),
            "label" => Action::Label {
                name: text(table, "name", name)?.trim().to_string(),
                value: template(table, "value", name)?,
            },
            "note" => {
                let text = template(table, "text", name)?;
                if text.source.trim().is_empty() {
                    return Err(fail("text", "a note needs text"));
                }
                Action::Note {
                    text,
                    mirror: flag(table, "mirror")?,
                }
            }
            "run" => {
                let line = template(table, "line", name)?;
                let parsed = watchfloor_core::CommandLine::parse(&line.source)
                    .map_err(|e| fail("line", e.to_string()))?;
                if !catalog.lenient && !(catalog.command_exists)(&parsed.name) {
                    return Err(fail(
                        "line",
                        format!(
                            "no integration has a command `{}`; `watchfloor commands` lists them",
                            parsed.name
                        ),
                    ));
                }
                let instance = match table.get("instance") {
                    None => None,
                    Some(_) => Some(text(table, "instance", name)?.to_string()),
                };
                let kinds: std::collections::BTreeSet<&str> = line
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        crate::Part::Ref(crate::Ref::Indicator(k)) => Some(k.as_str()),
                        _ => None,
                    })
                    .collect();
                if kinds.len() > 1 {
                    return Err(fail(
                        "line",
                        "a line names one indicator type (it runs once per indicator of it)",
                    ));
                }
                let cache = match table.get("cache") {
                    None => None,
                    Some(_) => {
                        let c = text(table, "cache", name)?;
                        Some(humantime::parse_duration(c.trim()).map_err(|e| {
                            fail("cache", format!("`{c}` is not a duration such as 24h: {e}"))
                        })?)
                    }
                };
                Action::Run {
                    line,
                    instance,
                    cache,
                }
            }
            "close" => Action::Close {
                reason: CloseReason::parse(text(table, "reason", name)?)
                    .map_err(|e| fail("reason", e))?,
                notes: match table.get("notes") {
                    None => None,
                    Some(_) => Some(template(table, "notes", name)?),
                },
            },
            "link-duplicates" => {
                let key: Vec<String> = match table.get("key") {
                    Some(toml::Value::Array(items)) => items
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<_>>()
                        .ok_or_else(|| fail("key", "`key` is a list of field names"))?,
                    Some(toml::Value::String(s)) => vec![s.clone()],
                    _ => {
                        return Err(fail(
                            "key",
                            format!(
                                "`link-duplicates` needs `key`, fields among {}",
                                DUPLICATE_KEYS.join(", ")
                            ),
                        ));
                    }
                };
                if let Some(bad) = key.iter().find(|k| !DUPLICATE_KEYS.contains(&k.as_str())) {
                    return Err(fail(
                        "key",
                        format!(
                            "cannot compare `{bad}`; compare {}",
                            DUPLICATE_KEYS.join(", ")
                        ),
                    ));
                }
                if key.is_empty() {
                    return Err(fail("key", "name at least one field to compare"));
                }
                let within = match table.get("within") {
                    None => Duration::from_secs(3600),
                    Some(_) => {
                        let w = text(table, "within", name)?;
                        humantime::parse_duration(w.trim()).map_err(|e| {
                            fail("within", format!("`{w}` is not a duration such as 1h: {e}"))
                        })?
                    }
                };
                Action::LinkDuplicates { key, within }
            }
            "notify" => {
                let channel = text(table, "channel", name)?;
                if !catalog.lenient && !catalog.channels.iter().any(|c| c == channel) {
                    return Err(fail(
                        "channel",
                        match catalog.channels.is_empty() {
                            true => format!("no channel named `{channel}`: none is configured"),
                            false => format!(
                                "no channel named `{channel}`; there are {}",
                                catalog.channels.join(", ")
                            ),
                        },
                    ));
                }
                Action::Notify {
                    channel: channel.to_string(),
                }
            }
            _ => Action::Stop,
        })
    }

    /// The templates the action fills in.
    pub fn templates(&self) -> Vec<&Template> {
        match self {
            Action::Label { value, .. } => vec![value],
            Action::Note { text, .. } => vec![text],
            Action::Run { line, .. } => vec![line],
            Action::Close { notes: Some(n), .. } => vec![n],
            _ => Vec::new(),
        }
    }

    /// The action's name, as a rule file writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Assign(_) => "assign",
            Action::Severity(_) => "severity",
            Action::Status(_) => "status",
            Action::Type(_) => "type",
            Action::Label { .. } => "label",
            Action::Note { .. } => "note",
            Action::Run { .. } => "run",
            Action::Close { .. } => "close",
            Action::LinkDuplicates { .. } => "link-duplicates",
            Action::Notify { .. } => "notify",
            Action::Stop => "stop",
        }
    }

    /// The action as a rule file writes it.
    pub fn to_table(&self) -> toml::Table {
        let mut t = toml::Table::new();
        t.insert("action".into(), self.name().into());
        let mut put = |k: &str, v: toml::Value| {
            t.insert(k.into(), v);
        };
        match self {
            Action::Assign(a) => {
                match a.to.as_slice() {
                    [one] if a.pick == Pick::One => put("to", one.clone().into()),
                    many => put(
                        "to",
                        toml::Value::Array(many.iter().map(|u| u.clone().into()).collect()),
                    ),
                }
                if a.pick != Pick::One {
                    put("pick", a.pick.as_str().into());
                }
            }
            Action::Severity(s) => put("to", s.label().to_lowercase().into()),
            Action::Status(s) => put("to", s.as_str().into()),
            Action::Type(k) => put("to", k.clone().into()),
            Action::Label { name, value } => {
                put("name", name.clone().into());
                put("value", value.source.clone().into());
            }
            Action::Note { text, mirror } => {
                put("text", text.source.clone().into());
                if *mirror {
                    put("mirror", true.into());
                }
            }
            Action::Run {
                line,
                instance,
                cache,
            } => {
                put("line", line.source.clone().into());
                if let Some(i) = instance {
                    put("instance", i.clone().into());
                }
                if let Some(c) = cache {
                    put("cache", humantime::format_duration(*c).to_string().into());
                }
            }
            Action::Close { reason, notes } => {
                put("reason", reason.to_string().into());
                if let Some(n) = notes {
                    put("notes", n.source.clone().into());
                }
            }
            Action::LinkDuplicates { key, within } => {
                put(
                    "key",
                    toml::Value::Array(key.iter().map(|k| k.clone().into()).collect()),
                );
                put(
                    "within",
                    humantime::format_duration(*within).to_string().into(),
                );
            }
            Action::Notify { channel } => put("channel", channel.clone().into()),
            Action::Stop => {}
        }
        t
    }
}

fn flag(table: &toml::Table, key: &str) -> Result<bool, Fail> {
    match table.get(key) {
        None => Ok(false),
        Some(toml::Value::Boolean(b)) => Ok(*b),
        Some(_) => Err(fail(key, format!("`{key}` is true or false"))),
    }
}

fn assign(
    table: &toml::Table,
    catalog: &Catalog<'_>,
    named_orgs: &[String],
) -> Result<Assign, Fail> {
    let to: Vec<String> = match table.get("to") {
        Some(toml::Value::String(s)) => vec![s.clone()],
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| fail("to", "`to` is a user, or a list of users"))?,
        _ => {
            return Err(fail(
                "to",
                "`assign` needs `to`: a user, or a list of users",
            ));
        }
    };
    if to.is_empty() {
        return Err(fail("to", "`assign` needs at least one user"));
    }
    let pick = match table.get("pick").map(|v| v.as_str()) {
        None => match to.len() {
            1 => Pick::One,
            _ => {
                return Err(fail(
                    "pick",
                    "with several users, say how to pick: pick = \"round-robin\" or \"least-loaded\"",
                ));
            }
        },
        Some(Some("round-robin")) => Pick::RoundRobin,
        Some(Some("least-loaded")) => Pick::LeastLoaded,
        Some(other) => {
            return Err(fail(
                "pick",
                format!(
                    "unknown pick {}: expected round-robin or least-loaded",
                    other
                        .map(|o| format!("`{o}`"))
                        .unwrap_or_else(|| "value".into())
                ),
            ));
        }
    };
    for user in to.iter().filter(|_| !catalog.lenient) {
        let Some((_, orgs)) = catalog.users.iter().find(|(n, _)| n == user) else {
            return Err(fail("to", format!("no user named `{user}`")));
        };
        if let Some(org) = named_orgs
            .iter()
            .find(|o| !orgs.is_empty() && !orgs.iter().any(|u| u.eq_ignore_ascii_case(o)))
        {
            return Err(fail(
                "to",
                format!(
                    "user `{user}` cannot see organization `{org}`, which the rule's `when` names: assign it to a user of {org}"
                ),
            ));
        }
    }
    Ok(Assign { to, pick })
}
