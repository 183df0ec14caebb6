//! Running rules: each queued event through the enabled rules in order, each action through
//! the service as the rule's own caller (`rule:NAME`), at most once per (event, rule, action):
//! the store's ledger row commits with the action's effect. A process killed at any point
//! therefore neither loses an event (it stays queued until every rule has had it) nor repeats
//! an action. Chains stop at depth [`MAX_DEPTH`]; a rule past its hourly limit is skipped; a
//! rule whose last [`BREAKER`] actions failed is disabled.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};
use watchfloor_core::{Change, CommandLine, Edit, Incident, Label, SlaState, Status};
use watchfloor_rules::{Action, Mode, Pick, Rule, Template, Trigger};
use watchfloor_storage::{Actor, Cause, IncidentFilter, Role, RuleEffect, RuleEvent, Scope};

use crate::rules::resolve;
use crate::{Caller, Service, ServiceError};

/// Rules triggered by rules triggered by rules...: past this depth nothing more runs.
pub const MAX_DEPTH: i64 = 3;
/// Incidents a `schedule` rule acts on at most per tick.
pub const SCHEDULE_LIMIT: usize = 1_000;
/// A rule whose last this many actions failed is disabled.
pub const BREAKER: usize = 10;

/// What one action came to.
enum Done {
    Acted,
    Stop,
}

impl Service {
    /// Queues `sla-at-risk` and `sla-breached` events for open incidents found in those
    /// states now that have not fired them yet (each incident fires each once); how many.
    pub async fn fire_sla_triggers(&self) -> Result<usize, ServiceError> {
        let now = Utc::now();
        let mut fired = 0;
        for state in [SlaState::AtRisk, SlaState::Breached] {
            loop {
                let n = self.store.queue_sla_events(state, now, 1_000).await?;
                fired += n;
                if n < 1_000 {
                    break;
                }
            }
        }
        Ok(fired)
    }

    /// The enabled rules, in run order (a stored rule that no longer reads is skipped).
    async fn enabled_rules(&self) -> Result<Vec<Rule>, ServiceError> {
        Ok(self
            .store
            .rules()
            .await?
            .into_iter()
            .filter(|r| r.enabled)
            .filter_map(|r| {
                watchfloor_rules::parse_stored(&r.source)
                    .ok()
                    .and_then(|mut r| r.pop())
            })
            .collect())
    }

    /// Runs the `schedule` rules that are due: each queues an event for every incident its
    /// condition matches (at most [`SCHEDULE_LIMIT`] a tick); how many.
    pub async fn fire_schedules(&self) -> Result<usize, ServiceError> {
        let now = Utc::now();
        let mut fired = 0;
        for rule in self.enabled_rules().await? {
            let (true, Some(every)) = (rule.on.contains(&Trigger::Schedule), rule.every) else {
                continue;
            };
            let Ok(conditions) = watchfloor_core::query::parse(&rule.when) else {
                continue;
            };
            let filter = IncidentFilter {
                conditions,
                limit: Some(SCHEDULE_LIMIT),
                ..IncidentFilter::default()
            };
            if let Some(n) = self
                .store
                .schedule_tick(&rule.name, every, &filter, now)
                .await?
            {
                fired += n;
            }
        }
        Ok(fired)
    }

    /// Handles up to `limit` queued events, oldest first; how many it handled.
    pub async fn run_rules(&self, limit: usize) -> Result<usize, ServiceError> {
        let events = self.store.pending_events(limit).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let rules = self.enabled_rules().await?;
        let hour_ago = Utc::now() - chrono::TimeDelta::hours(1);
        let mut this_hour: BTreeMap<String, i64> = BTreeMap::new();
        for c in self.store.rule_counts(hour_ago).await? {
            if c.outcome == "matched" {
                this_hour.insert(c.rule, c.n);
            }
        }
        // Events handled leave the queue together; one handled again after a crash repeats
        // nothing, as the ledger knows what it did.
        let mut handled = Vec::with_capacity(events.len());
        for event in &events {
            if let Err(e) = self.handle_event(event, &rules, &mut this_hour).await {
                self.store.finish_events(&handled).await?;
                return Err(e);
            }
            handled.push(event.id);
        }
        self.store.finish_events(&handled).await?;
        Ok(events.len())
    }

    async fn handle_event(
        &self,
        event: &RuleEvent,
        rules: &[Rule],
        this_hour: &mut BTreeMap<String, i64>,
    ) -> Result<(), ServiceError> {
        let Ok(trigger) = Trigger::parse(&event.trigger) else {
            return Ok(());
        };
        let changed: Vec<String> = event
            .changed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["field"].as_str().map(str::to_string))
            .collect();
        // The incident as the next rule sees it: read once, and again after a rule acted.
        let mut current: Option<Incident> = None;
        for rule in rules.iter().filter(|r| r.fires_on(trigger, &changed)) {
            let incident = match current.take() {
                Some(i) => i,
                None => match self.store.incident(event.incident_id).await? {
                    Some(i) => i,
                    None => return Ok(()),
                },
            };
            let whole = Cause {
                event,
                rule: &rule.name,
                action: -1,
            };
            match self.store.rule_outcome(&whole).await?.as_deref() {
                // Handled before a restart: go on with the actions not done yet.
                Some("matched") => {}
                Some(_) => {
                    current = Some(incident);
                    continue;
                }
                None => {
                    if !watchfloor_rules::matches(&rule.when, &incident) {
                        current = Some(incident);
                        continue;
                    }
                    if event.depth >= MAX_DEPTH {
                        let text = format!(
                            "rule {} did not run: this change comes at the end of a chain of {MAX_DEPTH} rules, and chains stop there",
                            rule.name
                        );
                        self.store
                            .record_rule_outcome(
                                &whole,
                                "too-deep",
                                &text,
                                Some(("rule", &json!({"text": text}))),
                            )
                            .await?;
                        current = Some(incident);
                        continue;
                    }
                    let used = this_hour.entry(rule.name.clone()).or_default();
                    if *used >= i64::from(rule.max_per_hour) {
                        let text = format!(
                            "rule {} did not run: it ran {} times in the last hour, its limit (max_per_hour)",
                            rule.name, rule.max_per_hour
                        );
                        self.store
                            .record_rule_outcome(
                                &whole,
                                "skipped",
                                &text,
                                Some(("rule", &json!({"text": text}))),
                            )
                            .await?;
                        current = Some(incident);
                        continue;
                    }
                    *used += 1;
                    // A live rule's match is recorded with its first action, in that action's
                    // transaction; another process that matched the event a moment before
                    // goes on too, and the ledger lets each action happen once.
                    if rule.mode == Mode::DryRun {
                        self.store
                            .record_rule_outcome(&whole, "dry-run", &rule.when, None)
                            .await?;
                        self.dry_run(event, rule, &incident).await?;
                        current = Some(incident);
                        continue;
                    }
                }
            }
            if self.act(event, rule).await? {
                break;
            }
        }
        Ok(())
    }

    /// Records what a dry-run rule would do, doing nothing.
    async fn dry_run(
        &self,
        event: &RuleEvent,
        rule: &Rule,
        incident: &Incident,
    ) -> Result<(), ServiceError> {
        let context = self.store.context(incident.id).await?;
        let would: Vec<String> = rule
            .actions
            .iter()
            .map(|a| crate::rules::describe(a, rule, &event.trigger, incident, &context))
            .collect();
        let text = format!("rule {} (dry run) would: {}", rule.name, would.join("; "));
        let cause = Cause {
            event,
            rule: &rule.name,
            action: 0,
        };
        self.store
            .record_rule_outcome(
                &cause,
                "dry-run",
                &text,
                Some(("rule", &json!({"text": text}))),
            )
            .await?;
        Ok(())
    }

    /// Runs the actions of a matched rule not done yet; true when one said stop.
    async fn act(&self, event: &RuleEvent, rule: &Rule) -> Result<bool, ServiceError> {
        for (n, action) in rule.actions.iter().enumerate() {
            let cause = Cause {
                event,
                rule: &rule.name,
                action: n as i64,
            };
            if let Some(done) = self.store.rule_outcome(&cause).await? {
                if done == "stop" {
                    return Ok(true);
                }
                continue;
            }
            let Some(incident) = self.store.incident(event.incident_id).await? else {
                return Ok(false);
            };
            match self.act_once(&cause, rule, action, &incident).await {
                Ok(Done::Acted) => {}
                Ok(Done::Stop) => {
                    self.store
                        .record_rule_outcome(&cause, "stop", "", None)
                        .await?;
                    return Ok(true);
                }
                Err(ActionFailed::Service(e)) if !e.is_callers() => return Err(e),
                Err(failure) => {
                    let message = failure.to_string();
                    let text = format!("rule {}: {} failed: {message}", rule.name, action.name());
                    self.store
                        .record_rule_outcome(
                            &cause,
                            "failed",
                            &message,
                            Some(("rule", &json!({"text": text}))),
                        )
                        .await?;
                    self.check_breaker(rule).await?;
                }
            }
        }
        Ok(false)
    }

    /// Disables a rule whose last [`BREAKER`] actions all failed.
    async fn check_breaker(&self, rule: &Rule) -> Result<(), ServiceError> {
        let recent = self.store.recent_outcomes(&rule.name, BREAKER).await?;
        if recent.len() == BREAKER && recent.iter().all(|o| o == "failed") {
            let reason = format!("its last {BREAKER} actions failed");
            self.store
                .set_rule_enabled(
                    &Actor::new(&format!("rule:{}", rule.name), None),
                    &rule.name,
                    false,
                    Some(&reason),
                )
                .await?;
            tracing::warn!(rule = %rule.name, "rule disabled: {reason}");
        }
        Ok(())
    }

    async fn act_once(
        &self,
        cause: &Cause<'_>,
        rule: &Rule,
        action: &Action,
        incident: &Incident,
    ) -> Result<Done, ActionFailed> {
        // The context is read only for an action whose templates refer to it.
        let context = match action.templates().iter().any(|t| t.needs_context()) {
            true => self
                .store
                .context(incident.id)
                .await
                .map_err(ServiceError::from)?,
            false => Value::Null,
        };
        let changes: &[Value] = cause.event.changed.as_array().map_or(&[], Vec::as_slice);
        let render = |t: &Template| {
            t.render(&|r| resolve(r, rule, &cause.event.trigger, incident, &context, changes))
                .map_err(ActionFailed::Reference)
        };
        let update = |edit: Edit| Change::Update(edit);
        let effect_change = match action {
            Action::Stop => return Ok(Done::Stop),
            Action::Assign(a) => {
                let user = self.pick_assignee(cause, &a.to, a.pick, incident).await?;
                update(Edit {
                    owner: Some(Some(user)),
                    ..Edit::default()
                })
            }
            Action::Severity(s) => update(Edit {
                severity: Some(*s),
                ..Edit::default()
            }),
            Action::Status(s) => update(Edit {
                status: Some(*s),
                ..Edit::default()
            }),
            Action::Type(k) => update(Edit {
                kind: Some(k.clone()),
                ..Edit::default()
            }),
            Action::Label { name, value } => update(Edit {
                labels: vec![Label {
                    kind: name.clone(),
                    value: render(value)?,
                }],
                ..Edit::default()
            }),
            Action::Close { reason, notes } => Change::Close {
                reason: *reason,
                notes: notes.as_ref().map(render).transpose()?,
            },
            Action::Note { text, mirror } => {
                let text = render(text)?;
                crate::error::no_nul("the note", &text)?;
                self.store
                    .apply_rule_effect(
                        cause,
                        &RuleEffect::Note {
                            text: &text,
                            mirror: *mirror,
                        },
                        &self.sla,
                    )
                    .await
                    .map_err(ServiceError::from)?;
                return Ok(Done::Acted);
            }
            Action::Run { line, instance } => {
                return self
                    .run_for_rule(cause, rule, line, instance.as_deref(), &render)
                    .await;
            }
            Action::LinkDuplicates { key, within } => {
                return self.link_duplicates(cause, incident, key, *within).await;
            }
            Action::Notify { channel } => {
                return Err(ActionFailed::Unavailable(format!(
                    "channel `{channel}`: notifications are not available yet"
                )));
            }
        };
        crate::incidents::check_change(&effect_change)?;
        self.store
            .apply_rule_effect(cause, &RuleEffect::Change(&[effect_change]), &self.sla)
            .await
            .map_err(ServiceError::from)?;
        Ok(Done::Acted)
    }

    /// Whom `assign` gives the incident to: a user who may see its organization.
    async fn pick_assignee(
        &self,
        cause: &Cause<'_>,
        to: &[String],
        pick: Pick,
        incident: &Incident,
    ) -> Result<String, ActionFailed> {
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for name in to {
            match self.store.user(name).await.map_err(ServiceError::from)? {
                Some(u)
                    if !u.disabled
                        && u.role != Role::Viewer
                        && Scope::of(&u).allows(incident.organization.as_deref()) =>
                {
                    allowed.push(name.clone())
                }
                Some(u) if u.disabled => refused.push(format!("user `{name}` is disabled")),
                Some(_) => refused.push(format!(
                    "user `{name}` cannot see organization `{}`",
                    incident.organization.as_deref().unwrap_or("(none)")
                )),
                None => refused.push(format!("there is no user `{name}`")),
            }
        }
        if allowed.is_empty() {
            return Err(ActionFailed::Refused(refused.join("; ")));
        }
        Ok(match pick {
            Pick::One => allowed.swap_remove(0),
            Pick::RoundRobin => {
                let n = allowed.len();
                allowed.swap_remove(cause.event.id.unsigned_abs() as usize % n)
            }
            Pick::LeastLoaded => {
                let mut best: Option<(usize, String)> = None;
                for name in allowed {
                    let open = self
                        .store
                        .count_matching_up_to(
                            &IncidentFilter {
                                owner: Some(name.clone()),
                                status: vec![Status::Pending, Status::Active],
                                ..IncidentFilter::default()
                            },
                            10_000,
                        )
                        .await
                        .map_err(ServiceError::from)?;
                    if best.as_ref().is_none_or(|(n, _)| open < *n) {
                        best = Some((open, name));
                    }
                }
                best.map(|(_, n)| n).unwrap_or_default()
            }
        })
    }

    /// A provider command in the incident, as the rule: recorded as started before it runs,
    /// so that a process killed while it runs never runs it again (at most once).
    async fn run_for_rule(
        &self,
        cause: &Cause<'_>,
        rule: &Rule,
        line: &Template,
        instance: Option<&str>,
        render: &(dyn Fn(&Template) -> Result<String, ActionFailed> + Sync),
    ) -> Result<Done, ActionFailed> {
        let mut parsed =
            CommandLine::parse(&line.source).map_err(|e| ActionFailed::Refused(e.to_string()))?;
        // Each value is filled in on its own: a value cannot add arguments.
        for value in parsed.values_mut() {
            if value.contains("${") {
                let template = Template::parse(value).map_err(ActionFailed::Reference)?;
                *value = render(&template)?;
            }
        }
        if !self
            .store
            .record_rule_outcome(cause, "run", &line.source, None)
            .await
            .map_err(ServiceError::from)?
        {
            return Ok(Done::Acted);
        }
        let caller = rule_caller(&rule.name);
        let shown = render(line).unwrap_or_else(|_| line.source.clone());
        let (outcome, _) = self
            .run_parsed_and_record(&caller, cause.event.incident_id, parsed, &shown, instance)
            .await?;
        // The war room holds the result either way; a failure also counts for the breaker.
        if let Err(e) = outcome {
            tracing::warn!(rule = %rule.name, error = %e, "a rule's command failed");
        }
        Ok(Done::Acted)
    }

    /// Closes `incident` as a duplicate of the first open incident of its organization with the
    /// same `key` fields made within `within` before it, and notes the link on both.
    async fn link_duplicates(
        &self,
        cause: &Cause<'_>,
        incident: &Incident,
        key: &[String],
        within: std::time::Duration,
    ) -> Result<Done, ActionFailed> {
        let since = incident.created
            - chrono::TimeDelta::from_std(within).unwrap_or(chrono::TimeDelta::MAX);
        let candidates = self
            .store
            .incidents(&IncidentFilter {
                organization: incident.organization.clone(),
                status: vec![Status::Pending, Status::Active],
                fetched_since: Some(since),
                limit: Some(1_000),
                ..IncidentFilter::default()
            })
            .await
            .map_err(ServiceError::from)?;
        let same = |other: &Incident| {
            key.iter().all(|k| match k.as_str() {
                "name" => other.name == incident.name,
                "organization" => other.organization == incident.organization,
                "type" => other.kind == incident.kind,
                "instance" => other.instance == incident.instance,
                "severity" => other.severity == incident.severity,
                _ => false,
            })
        };
        let Some(first) = candidates
            .iter()
            .filter(|c| c.id < incident.id && same(c))
            .min_by_key(|c| c.id)
        else {
            return Ok(Done::Acted);
        };
        let notes = format!("duplicate of incident {}", first.id);
        let close = Change::Close {
            reason: watchfloor_core::CloseReason::Duplicate,
            notes: Some(notes),
        };
        self.store
            .apply_rule_effect(cause, &RuleEffect::Change(&[close]), &self.sla)
            .await
            .map_err(ServiceError::from)?;
        let body = json!({"text": format!("incident {} was closed as a duplicate of this one", incident.id)});
        self.store
            .add_entry(first.id, &format!("rule:{}", cause.rule), "rule", &body)
            .await
            .map_err(ServiceError::from)?;
        Ok(Done::Acted)
    }
}

/// The caller a rule acts as: every organization, an analyst's rights, named `rule:NAME`.
pub fn rule_caller(name: &str) -> Caller {
    Caller {
        name: format!("rule:{name}"),
        role: Role::Analyst,
        scope: Scope::All,
        address: None,
    }
}

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
enum ActionFailed {
    #[error("{0}")]
    Service(#[from] ServiceError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Reference(String),
    #[error("{0}")]
    Unavailable(String),
}
