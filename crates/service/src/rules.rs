//! Automation rules: admins import, export, enable and disable them; everyone who reads
//! incidents may list them, test one against an incident, and back-test one over past
//! incidents. Rules are checked against the install (its users, channels and commands) before
//! any is stored.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use watchfloor_core::Incident;
use watchfloor_core::query::{Cmp, Condition, Term};
use watchfloor_rules::{Action, Catalog, Ref, Rule, Template, Trigger};
use watchfloor_storage::{IncidentFilter, NewRule, Role, Scope, StoredRule};

use crate::{Caller, Service, ServiceError};

/// A stored rule as read: what the store keeps, and the rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    #[serde(flatten)]
    pub stored: StoredRule,
    pub on: Vec<&'static str>,
    pub mode: &'static str,
    pub when: String,
    pub actions: Vec<&'static str>,
    /// What it did in the last day.
    pub last_day: Counts,
}

/// What a rule did: events it matched, actions done, actions failed, events skipped (over its
/// hourly limit, or at the end of a chain), and dry runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub matched: i64,
    pub acted: i64,
    pub failed: i64,
    pub skipped: i64,
    pub dry_run: i64,
}

fn counts_of(all: &[watchfloor_storage::RuleCount], rule: &str) -> Counts {
    let mut c = Counts::default();
    for row in all.iter().filter(|r| r.rule == rule) {
        match row.outcome.as_str() {
            "matched" => c.matched += row.n,
            "acted" | "run" => c.acted += row.n,
            "failed" => c.failed += row.n,
            "skipped" | "too-deep" => c.skipped += row.n,
            "dry-run" => c.dry_run += row.n,
            _ => {}
        }
    }
    c
}

/// What a rule would do to one incident now.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub rule: String,
    pub incident: i64,
    pub matched: bool,
    /// Each action as it would run, its templates filled in.
    pub actions: Vec<String>,
}

/// How a rule's condition fares over past incidents.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    pub rule: String,
    pub since: DateTime<Utc>,
    /// Incidents created since then that the condition matches (up to 10,000).
    pub matched: usize,
    pub capped: bool,
    /// The first 20: id and name.
    pub first: Vec<(i64, String)>,
}

/// Triggers not fired yet: rules on them are refused at import.
pub const UNAVAILABLE: [Trigger; 0] = [];

/// Most matches a back-test counts.
const BACKTEST_CAP: usize = 10_000;

impl Service {
    /// Rules cover every organization, so only those who see all of them read rules.
    pub fn may_read_rules(&self, caller: &Caller) -> Result<(), ServiceError> {
        match caller.scope {
            Scope::All => Ok(()),
            Scope::Orgs(_) => Err(ServiceError::Forbidden(
                "rules cover every organization: only users who see all of them read rules".into(),
            )),
        }
    }

    /// The rules that acted on an incident the caller sees, with how many actions each.
    pub async fn rules_of_incident(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<Vec<(String, i64)>, ServiceError> {
        self.visible(caller, id).await?;
        Ok(self.store.rules_of_incident(id).await?)
    }

    fn may_change_rules(&self, caller: &Caller) -> Result<(), ServiceError> {
        match caller.role {
            Role::Admin => Ok(()),
            _ => Err(ServiceError::Forbidden("only admins change rules".into())),
        }
    }

    /// Checks a rule file against this install, without storing it.
    pub async fn check_rules(&self, text: &str) -> Result<Vec<Rule>, ServiceError> {
        let users: Vec<(String, Vec<String>)> = self
            .store
            .users()
            .await?
            .into_iter()
            .filter(|u| !u.disabled && u.role != Role::Viewer)
            .map(|u| match u.role {
                Role::Admin => (u.name, Vec::new()),
                _ => (u.name, u.orgs),
            })
            .collect();
        let definitions = watchfloor_integrations::definitions();
        let command_exists = |name: &str| definitions.iter().any(|d| d.command(name).is_some());
        let channels: Vec<String> = self.channels.iter().map(|c| c.name.clone()).collect();
        watchfloor_rules::parse(
            text,
            &Catalog {
                users: &users,
                channels: &channels,
                command_exists: &command_exists,
                lenient: false,
                unavailable: &UNAVAILABLE,
            },
        )
        .map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// Checks and stores a rule file: with `replace`, it becomes the whole set. Returns the
    /// names stored, in order.
    pub async fn import_rules(
        &self,
        caller: &Caller,
        text: &str,
        replace: bool,
    ) -> Result<Vec<String>, ServiceError> {
        self.may_change_rules(caller)?;
        let rules = self.check_rules(text).await?;
        if rules.is_empty() && !replace {
            return Err(ServiceError::Invalid(
                "the file has no [[rules]]; to remove every rule, import it with --replace".into(),
            ));
        }
        let stored: Vec<NewRule> = rules
            .iter()
            .map(|r| NewRule {
                name: r.name.clone(),
                source: r.to_toml(),
                enabled: r.enabled,
            })
            .collect();
        self.store
            .put_rules(&caller.actor(), &stored, replace)
            .await?;
        tracing::info!(by = %caller.name, rules = stored.len(), replace, "rules imported");
        Ok(rules.into_iter().map(|r| r.name).collect())
    }

    /// The stored rules, each read, with what each did in the last day.
    pub async fn rules(&self, caller: &Caller) -> Result<Vec<RuleView>, ServiceError> {
        self.may_read_rules(caller)?;
        let stored = self.store.rules().await?;
        let day = self
            .store
            .rule_counts(Utc::now() - chrono::TimeDelta::days(1))
            .await?;
        stored
            .into_iter()
            .map(|s| {
                let rule = read_stored(&s)?;
                Ok(RuleView {
                    on: rule.on.iter().map(|t| t.as_str()).collect(),
                    mode: rule.mode.as_str(),
                    when: rule.when.clone(),
                    actions: rule.actions.iter().map(Action::name).collect(),
                    last_day: counts_of(&day, &s.name),
                    stored: s,
                })
            })
            .collect()
    }

    /// What a rule did in the last hour and the last day.
    pub async fn rule_counts(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<(Counts, Counts), ServiceError> {
        self.may_read_rules(caller)?;
        let now = Utc::now();
        let hour = self
            .store
            .rule_counts(now - chrono::TimeDelta::hours(1))
            .await?;
        let day = self
            .store
            .rule_counts(now - chrono::TimeDelta::days(1))
            .await?;
        Ok((counts_of(&hour, name), counts_of(&day, name)))
    }

    /// One stored rule, read, with whether it is enabled as stored.
    pub async fn rule(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<(StoredRule, Rule), ServiceError> {
        self.may_read_rules(caller)?;
        let stored = self
            .store
            .rules()
            .await?
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("no rule named `{name}`")))?;
        let mut rule = read_stored(&stored)?;
        rule.enabled = stored.enabled;
        Ok((stored, rule))
    }

    /// Every rule as one file, as `import` takes it back.
    pub async fn export_rules(&self, caller: &Caller) -> Result<String, ServiceError> {
        let mut out = String::new();
        for view in self.rules(caller).await? {
            let mut rule = read_stored(&view.stored)?;
            rule.enabled = view.stored.enabled;
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&rule.to_toml());
        }
        Ok(out)
    }

    /// Enables or disables a rule.
    pub async fn set_rule_enabled(
        &self,
        caller: &Caller,
        name: &str,
        enabled: bool,
    ) -> Result<(), ServiceError> {
        self.may_change_rules(caller)?;
        match self
            .store
            .set_rule_enabled(&caller.actor(), name, enabled, None)
            .await?
        {
            true => Ok(()),
            false => Err(ServiceError::NotFound(format!("no rule named `{name}`"))),
        }
    }

    /// What a rule would do to an incident now, doing nothing.
    pub async fn test_rule(
        &self,
        caller: &Caller,
        name: &str,
        incident: i64,
    ) -> Result<Plan, ServiceError> {
        let (_, rule) = self.rule(caller, name).await?;
        let incident = self.visible(caller, incident).await?;
        let context = self.store.context(incident.id).await?;
        // A stored rule's condition was read when it was imported; one that no longer reads
        // matches nothing.
        let matched = match watchfloor_core::query::parse(&rule.when) {
            Ok(conditions) => {
                let verdicts = match watchfloor_core::query::asks_verdict(&conditions) {
                    true => self.store.incident_verdicts(incident.id).await?,
                    false => Vec::new(),
                };
                watchfloor_rules::meets_with(&conditions, &incident, &|v: &str| {
                    verdicts.iter().any(|x| x == v)
                })
            }
            Err(_) => false,
        };
        let actions = rule
            .actions
            .iter()
            .map(|a| describe(a, &rule, "test", &incident, &context))
            .collect();
        Ok(Plan {
            rule: rule.name,
            incident: incident.id,
            matched,
            actions,
        })
    }

    /// How many of the incidents created since `since` (that the caller sees) the rule's
    /// condition matches, and the first 20.
    pub async fn backtest_rule(
        &self,
        caller: &Caller,
        name: &str,
        since: DateTime<Utc>,
    ) -> Result<Backtest, ServiceError> {
        let (_, rule) = self.rule(caller, name).await?;
        let mut conditions = watchfloor_core::query::parse(&rule.when)
            .map_err(|e| ServiceError::Invalid(format!("rule `{name}`: {e}")))?;
        conditions.push(Condition {
            term: Term::Created(Cmp::AtOrAfter, since),
            negated: false,
        });
        let filter = IncidentFilter {
            scope: caller.scope.clone(),
            conditions,
            ..IncidentFilter::default()
        };
        let matched = self
            .store
            .count_matching_up_to(&filter, BACKTEST_CAP)
            .await?;
        let first = self
            .store
            .incidents(&IncidentFilter {
                limit: Some(20),
                ..filter
            })
            .await?
            .into_iter()
            .map(|i| (i.id, i.name))
            .collect();
        Ok(Backtest {
            rule: rule.name,
            since,
            matched,
            capped: matched >= BACKTEST_CAP,
            first,
        })
    }
}

/// A stored rule read back; one that no longer reads is a store problem, said plainly.
fn read_stored(stored: &StoredRule) -> Result<Rule, ServiceError> {
    // Users, channels and commands were checked at import; the stored text is read for its
    // shape alone.
    let mut rules = watchfloor_rules::parse_stored(&stored.source).map_err(|e| {
        ServiceError::Unavailable(format!(
            "stored rule `{}` cannot be read ({e}); import it again",
            stored.name
        ))
    })?;
    rules.pop().ok_or_else(|| {
        ServiceError::Unavailable(format!(
            "stored rule `{}` is empty; import it again",
            stored.name
        ))
    })
}

/// A reference of a rule's template, for an incident and a trigger.
pub(crate) fn resolve(
    r: &Ref,
    rule: &Rule,
    trigger: &str,
    incident: &Incident,
    context: &Value,
    change: &[Value],
) -> Result<String, String> {
    match r {
        Ref::Incident(field) => crate::refs::incident_field(field, incident),
        Ref::RuleName => Ok(rule.name.clone()),
        Ref::Trigger => Ok(trigger.to_string()),
        Ref::Change { field, new } => {
            let entry = watchfloor_rules::entry_field(field);
            let side = if *new { "new" } else { "old" };
            Ok(change
                .iter()
                .find(|c| c["field"] == entry)
                .and_then(|c| c[side].as_str())
                .unwrap_or_default()
                .to_string())
        }
        Ref::Indicator(kind) => Err(format!(
            "`${{indicator.{kind}}}` is filled in by a run action, once per indicator"
        )),
        Ref::Context(path) => {
            let values = crate::refs::context_values(context, path);
            match values.is_empty() {
                true => Err(format!(
                    "`${{{path}}}` is not in incident {}'s context",
                    incident.id
                )),
                false => Ok(values.join(",")),
            }
        }
    }
}

fn render(
    t: &Template,
    rule: &Rule,
    trigger: &str,
    incident: &Incident,
    context: &Value,
) -> String {
    t.render(&|r| resolve(r, rule, trigger, incident, context, &[]))
        .unwrap_or_else(|e| format!("(cannot fill in: {e})"))
}

/// One action as it would run on `incident`.
pub(crate) fn describe(
    a: &Action,
    rule: &Rule,
    trigger: &str,
    incident: &Incident,
    context: &Value,
) -> String {
    let r = |t: &Template| render(t, rule, trigger, incident, context);
    match a {
        Action::Assign(a) => match a.to.as_slice() {
            [one] => format!("assign to {one}"),
            many => format!("assign to one of {} ({:?})", many.join(", "), a.pick),
        },
        Action::Severity(s) => format!("set severity to {}", s.label()),
        Action::Status(s) => format!("set status to {}", s.as_str()),
        Action::Type(k) => format!("set type to {k}"),
        Action::Label { name, value } => format!("add label {name}: {}", r(value)),
        Action::Note { text, mirror } => format!(
            "add a note{}: {}",
            if *mirror { " sent to the provider" } else { "" },
            r(text)
        ),
        Action::Run {
            line,
            instance,
            cache,
        } => format!(
            "run {}{}{}",
            match line.indicator_kind() {
                // Each indicator's line is shown when it runs.
                Some(_) => line.source.clone(),
                None => r(line),
            },
            instance
                .as_ref()
                .map(|i| format!(" on {i}"))
                .unwrap_or_default(),
            cache
                .map(|c| format!(" (results kept {})", humantime::format_duration(c)))
                .unwrap_or_default()
        ),
        Action::Close { reason, notes } => format!(
            "close as {reason}{}",
            notes
                .as_ref()
                .map(|n| format!(": {}", r(n)))
                .unwrap_or_default()
        ),
        Action::LinkDuplicates { key, within } => format!(
            "link duplicates with the same {} within {}",
            key.join(", "),
            humantime::format_duration(*within)
        ),
        Action::Notify { channel } => format!("notify {channel}"),
        Action::Stop => "stop: no later rule runs for this event".into(),
    }
}
