//! Running rules: each queued event through the enabled rules in order, each action through
//! the service as the rule's own caller (`rule:NAME`), at most once per (event, rule, action):
//! the store's ledger row commits with the action's effect. A process killed at any point
//! therefore neither loses an event (it stays queued until every rule has had it) nor repeats
//! an action. Chains stop at depth [`MAX_DEPTH`]; a rule past its hourly limit is skipped; a
//! rule whose last [`BREAKER`] actions failed is disabled.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use watchfloor_core::query::Condition;
use watchfloor_core::{Change, CommandLine, Edit, Incident, Label, SlaState, Status};
use watchfloor_rules::{Action, Mode, Pick, Ref, Rule, Template, Trigger};
use watchfloor_storage::{
    Actor, Cause, IncidentFilter, Role, RuleEffect, RuleEvent, RuleWrite, Scope, StoreError, User,
};

use crate::rules::resolve;
use crate::{Caller, Service, ServiceError};

/// Rules triggered by rules triggered by rules...: past this depth nothing more runs.
pub const MAX_DEPTH: i64 = 3;
/// Incidents a `schedule` rule acts on at most per tick.
pub const SCHEDULE_LIMIT: usize = 1_000;
/// Events the rules worker takes at a time (see [`Service::run_rules`]).
pub const BATCH: usize = 500;
/// How long the rules worker waits after a batch of `handled` events: a moment when the
/// queue was empty; a shorter one after a short batch, so that the next gathers more (each
/// batch reads the rules, the ledger and the incidents once, and writes in one transaction:
/// during a burst of fetches, fewer batches leave the database's one writer to the ingest);
/// not at all after a long one (more may be waiting). See bench/RESULTS.md, "Automation rules".
pub fn pause_after(handled: usize) -> std::time::Duration {
    match handled {
        0 => std::time::Duration::from_millis(50),
        n if n < SHORT_BATCH => std::time::Duration::from_millis(20),
        _ => std::time::Duration::ZERO,
    }
}

/// Below this many events, a batch is short (see [`pause_after`]).
const SHORT_BATCH: usize = 100;

/// A rule whose last this many actions failed is disabled.
pub const BREAKER: usize = 10;

/// What an action comes to.
enum Decision {
    /// A write of the batch.
    Write(What),
    Stop,
    /// It goes on its own (see [`Service::run_rules`]).
    Alone,
}

/// A write the batch has decided on.
enum What {
    Change(Change),
    Notify(String),
    Note {
        text: String,
        mirror: bool,
    },
    Outcome {
        outcome: &'static str,
        detail: String,
        /// The text of a war-room entry, if any.
        entry: Option<Value>,
    },
}

impl What {
    fn name(&self) -> &'static str {
        match self {
            What::Change(Change::Close { .. }) => "close",
            What::Change(_) => "change",
            What::Note { .. } => "note",
            What::Notify(_) => "notify",
            What::Outcome { .. } => "outcome",
        }
    }
}

struct Pending<'a> {
    cause: Cause<'a>,
    what: What,
}

impl Pending<'_> {
    fn write(&self) -> RuleWrite<'_> {
        let cause = self.cause;
        match &self.what {
            What::Change(change) => RuleWrite::Effect {
                cause,
                effect: RuleEffect::Change(std::slice::from_ref(change)),
            },
            What::Notify(channel) => RuleWrite::Notify { cause, channel },
            What::Note { text, mirror } => RuleWrite::Effect {
                cause,
                effect: RuleEffect::Note {
                    text,
                    mirror: *mirror,
                },
            },
            What::Outcome {
                outcome,
                detail,
                entry,
            } => RuleWrite::Outcome {
                cause,
                outcome,
                detail,
                entry: entry.as_ref().map(|body| ("rule", body)),
            },
        }
    }
}

/// The rules worker's state over one batch of events.
#[derive(Default)]
struct Batch<'a> {
    /// The incidents of the batch's events, as the next rule sees them.
    incidents: HashMap<i64, Incident>,
    /// The ledger of the batch's events as it was read: (event, rule, action) to outcome.
    ledger: HashMap<(i64, String, i64), String>,
    /// How often each rule ran in the last hour.
    this_hour: BTreeMap<String, i64>,
    users: HashMap<String, Option<User>>,
    /// The rules' conditions in run order, parsed once a batch (so that relative times are
    /// relative to the batch); `None` for one that does not parse (it did when stored).
    when: Vec<Option<Vec<Condition>>>,
    pending: Vec<Pending<'a>>,
    /// Rules that failed in the batch: their breakers are looked at once it is written.
    failed: BTreeSet<String>,
}

impl<'a> Batch<'a> {
    async fn read(
        service: &Service,
        events: &[RuleEvent],
        rules: &[Rule],
    ) -> Result<Batch<'a>, ServiceError> {
        let now = service.now();
        let when: Vec<Option<Vec<Condition>>> = rules
            .iter()
            .map(|rule| match rule.when.trim() {
                "" => Some(Vec::new()),
                text => watchfloor_core::query::parse_at(text, now).ok(),
            })
            .collect();
        let event_ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        let ledger: HashMap<(i64, String, i64), String> = service
            .store
            .ledger_of(&event_ids)
            .await?
            .into_iter()
            .map(|(event, rule, action, outcome)| ((event, rule, action), outcome))
            .collect();
        // Only incidents a rule may match are read in full (most are not, and reading is most
        // of the worker's time), and those of events a rule was handling before a restart.
        let mut ids: Vec<i64> = events.iter().map(|e| e.incident_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let any: Vec<Vec<Condition>> = when.iter().flatten().cloned().collect();
        let mut read = service.store.may_meet(&ids, &any).await?;
        let resumed: BTreeSet<i64> = ledger.keys().map(|(event, ..)| *event).collect();
        read.extend(
            events
                .iter()
                .filter(|e| resumed.contains(&e.id))
                .map(|e| e.incident_id),
        );
        read.sort_unstable();
        read.dedup();
        let incidents = service
            .store
            .incidents_by_id(&read)
            .await?
            .into_iter()
            .map(|i| (i.id, i))
            .collect();
        let hour_ago = now - chrono::TimeDelta::hours(1);
        let mut this_hour = BTreeMap::new();
        for c in service.store.rule_counts(hour_ago).await? {
            if c.outcome == "matched" {
                this_hour.insert(c.rule, c.n);
            }
        }
        Ok(Batch {
            incidents,
            ledger,
            this_hour,
            when,
            ..Batch::default()
        })
    }

    /// What the ledger held for `cause` when the batch was read.
    fn done(&self, cause: &Cause<'_>) -> Option<&str> {
        self.ledger
            .get(&(cause.event.id, cause.rule.to_string(), cause.action))
            .map(String::as_str)
    }

    fn outcome(
        &mut self,
        cause: Cause<'a>,
        outcome: &'static str,
        detail: String,
        entry: Option<String>,
    ) {
        self.pending.push(Pending {
            cause,
            what: What::Outcome {
                outcome,
                detail,
                entry: entry.map(|text| json!({ "text": text })),
            },
        });
    }

    /// Records that an action failed, with an entry; its rule's breaker is looked at after.
    fn fail(&mut self, cause: Cause<'a>, rule: &Rule, action: &Action, message: &str) {
        let text = format!("rule {}: {} failed: {message}", rule.name, action.name());
        self.outcome(cause, "failed", message.to_string(), Some(text));
        self.failed.insert(rule.name.clone());
    }
}

impl Service {
    /// Queues `sla-at-risk` and `sla-breached` events for open incidents found in those
    /// states now that have not fired them yet (each incident fires each once); how many.
    pub async fn fire_sla_triggers(&self) -> Result<usize, ServiceError> {
        let now = self.now();
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
    async fn enabled_rules(&self) -> Result<Arc<Vec<Rule>>, ServiceError> {
        Ok(self.store.enabled_rules().await?)
    }

    /// Runs the `schedule` rules that are due: each queues an event for every incident its
    /// condition matches (at most [`SCHEDULE_LIMIT`] a tick); how many.
    pub async fn fire_schedules(&self) -> Result<usize, ServiceError> {
        let now = self.now();
        let mut fired = 0;
        for rule in self.enabled_rules().await?.iter() {
            let (true, Some(every)) = (rule.on.contains(&Trigger::Schedule), rule.every) else {
                continue;
            };
            let Ok(conditions) = watchfloor_core::query::parse_at(&rule.when, now) else {
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
    ///
    /// The actions that change only the store (fields, labels, notes, closes, assigning to a
    /// named user) and the outcomes of a batch are written together in one transaction; the
    /// next rule sees the incident as they leave it. An action that reaches further (a
    /// provider command, linking duplicates, a notification, the least-loaded user) first has
    /// what came before it written, then goes alone.
    pub async fn run_rules(&self, limit: usize) -> Result<usize, ServiceError> {
        let events = self.store.pending_events(limit).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let rules = self.enabled_rules().await?;
        let mut batch = Batch::read(self, &events, &rules).await?;
        // Events handled leave the queue together, with the batch's last writes; one handled
        // again after a crash repeats nothing, as the ledger knows what it did.
        let mut handled = Vec::with_capacity(events.len());
        for event in &events {
            if let Err(e) = self.handle_event(event, &rules, &mut batch).await {
                self.flush(&mut batch, &handled).await?;
                return Err(e);
            }
            handled.push(event.id);
        }
        self.flush(&mut batch, &handled).await?;
        Ok(events.len())
    }

    async fn handle_event<'a>(
        &self,
        event: &'a RuleEvent,
        rules: &'a [Rule],
        batch: &mut Batch<'a>,
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
        for (n, rule) in rules.iter().enumerate() {
            if !rule.fires_on(trigger, &changed) {
                continue;
            }
            let Some(incident) = batch.incidents.get(&event.incident_id) else {
                return Ok(());
            };
            let whole = Cause {
                event,
                rule: &rule.name,
                action: -1,
            };
            match batch.done(&whole) {
                // Handled before a restart: go on with the actions not done yet.
                Some("matched") => {}
                Some(_) => continue,
                None => {
                    let when = batch.when[n].as_deref();
                    // Verdicts are the store's: read for a condition that asks one.
                    let verdicts = match when {
                        Some(c) if watchfloor_core::query::asks_verdict(c) => {
                            self.store.incident_verdicts(incident.id).await?
                        }
                        _ => Vec::new(),
                    };
                    let judged = |v: &str| verdicts.iter().any(|x| x == v);
                    if !when.is_some_and(|c| watchfloor_rules::meets_with(c, incident, &judged)) {
                        continue;
                    }
                    if event.depth >= MAX_DEPTH {
                        let text = format!(
                            "rule {} did not run: this change comes at the end of a chain of {MAX_DEPTH} rules, and chains stop there",
                            rule.name
                        );
                        batch.outcome(whole, "too-deep", text.clone(), Some(text));
                        continue;
                    }
                    let used = batch.this_hour.entry(rule.name.clone()).or_default();
                    if *used >= i64::from(rule.max_per_hour) {
                        let text = format!(
                            "rule {} did not run: it ran {} times in the last hour, its limit (max_per_hour)",
                            rule.name, rule.max_per_hour
                        );
                        batch.outcome(whole, "skipped", text.clone(), Some(text));
                        continue;
                    }
                    *used += 1;
                    // A live rule's match is recorded with its first action, in that action's
                    // transaction; another process that matched the event a moment before
                    // goes on too, and the ledger lets each action happen once.
                    if rule.mode == Mode::DryRun {
                        let text = self.dry_run(event, rule, incident).await?;
                        batch.outcome(whole, "dry-run", rule.when.clone(), None);
                        let first = Cause { action: 0, ..whole };
                        batch.outcome(first, "dry-run", text.clone(), Some(text));
                        continue;
                    }
                }
            }
            if self.act(event, rule, batch).await? {
                break;
            }
        }
        Ok(())
    }

    /// What a dry-run rule would do, doing nothing.
    async fn dry_run(
        &self,
        event: &RuleEvent,
        rule: &Rule,
        incident: &Incident,
    ) -> Result<String, ServiceError> {
        let context = self.store.context(incident.id).await?;
        let would: Vec<String> = rule
            .actions
            .iter()
            .map(|a| crate::rules::describe(a, rule, &event.trigger, incident, &context))
            .collect();
        Ok(format!(
            "rule {} (dry run) would: {}",
            rule.name,
            would.join("; ")
        ))
    }

    /// Runs the actions of a matched rule not done yet; true when one said stop.
    async fn act<'a>(
        &self,
        event: &'a RuleEvent,
        rule: &'a Rule,
        batch: &mut Batch<'a>,
    ) -> Result<bool, ServiceError> {
        let id = event.incident_id;
        for (n, action) in rule.actions.iter().enumerate() {
            let cause = Cause {
                event,
                rule: &rule.name,
                action: n as i64,
            };
            if let Some(done) = batch.done(&cause) {
                if done == "stop" {
                    return Ok(true);
                }
                continue;
            }
            let Some(incident) = batch.incidents.get(&id).cloned() else {
                return Ok(false);
            };
            let failure = match self.decide(&cause, rule, action, &incident, batch).await {
                Ok(Decision::Stop) => {
                    batch.outcome(cause, "stop", String::new(), None);
                    return Ok(true);
                }
                // The next rule sees the incident as this change leaves it.
                Ok(Decision::Write(What::Change(change))) => {
                    let mut after = incident.lifecycle();
                    let now = self.now();
                    match after.apply(&change, now) {
                        Ok(_) => {
                            if let Some(i) = batch.incidents.get_mut(&id) {
                                i.set_lifecycle(after, &self.sla, now);
                            }
                            batch.pending.push(Pending {
                                cause,
                                what: What::Change(change),
                            });
                            continue;
                        }
                        Err(error) => ActionFailed::from(ServiceError::from(StoreError::Refused {
                            id,
                            error,
                        })),
                    }
                }
                Ok(Decision::Write(what)) => {
                    batch.pending.push(Pending { cause, what });
                    continue;
                }
                Ok(Decision::Alone) => {
                    // What came before is written first; this action then goes on its own,
                    // and the incident is read again as it leaves it.
                    self.flush(batch, &[]).await?;
                    let outcome = match self.store.incident(id).await? {
                        Some(incident) => self.act_alone(&cause, rule, action, &incident).await,
                        None => return Ok(false),
                    };
                    match self.store.incident(id).await? {
                        Some(i) => batch.incidents.insert(id, i),
                        None => batch.incidents.remove(&id),
                    };
                    match outcome {
                        Ok(()) => continue,
                        Err(failure) => failure,
                    }
                }
                Err(failure) => failure,
            };
            match failure {
                ActionFailed::Service(e) if !e.is_callers() => return Err(e),
                failure => batch.fail(cause, rule, action, &failure.to_string()),
            }
        }
        Ok(false)
    }

    /// Writes what the batch has decided and takes the `finished` events off the queue, in
    /// one transaction. Should one write be refused (an incident changed meanwhile by someone
    /// else), each is written on its own instead, the refused ones recorded as failed, and the
    /// incidents read again.
    async fn flush(&self, batch: &mut Batch<'_>, finished: &[i64]) -> Result<(), ServiceError> {
        let pending = std::mem::take(&mut batch.pending);
        if !pending.is_empty() || !finished.is_empty() {
            let writes: Vec<RuleWrite<'_>> = pending.iter().map(Pending::write).collect();
            if let Err(e) = self
                .store
                .apply_rule_writes(&writes, finished, &self.sla)
                .await
            {
                drop(writes);
                let e = ServiceError::from(e);
                if !e.is_callers() {
                    // Nothing was written: the events stay queued and are handled again.
                    return Err(e);
                }
                self.write_one_by_one(&pending, batch).await?;
                self.store.finish_events(finished).await?;
            }
        }
        for name in std::mem::take(&mut batch.failed) {
            self.check_breaker(&name).await?;
        }
        Ok(())
    }

    /// The slow path of [`Self::flush`].
    async fn write_one_by_one(
        &self,
        pending: &[Pending<'_>],
        batch: &mut Batch<'_>,
    ) -> Result<(), ServiceError> {
        for p in pending {
            let written = self
                .store
                .apply_rule_writes(&[p.write()], &[], &self.sla)
                .await;
            match written.map_err(ServiceError::from) {
                Ok(_) => {}
                Err(e) if !e.is_callers() => return Err(e),
                Err(e) => {
                    let message = e.to_string();
                    let text =
                        format!("rule {}: {} failed: {message}", p.cause.rule, p.what.name());
                    self.store
                        .record_rule_outcome(
                            &p.cause,
                            "failed",
                            &message,
                            Some(("rule", &json!({"text": text}))),
                        )
                        .await?;
                    batch.failed.insert(p.cause.rule.to_string());
                }
            }
        }
        let ids: Vec<i64> = batch.incidents.keys().copied().collect();
        batch.incidents = self
            .store
            .incidents_by_id(&ids)
            .await?
            .into_iter()
            .map(|i| (i.id, i))
            .collect();
        Ok(())
    }

    /// Disables a rule whose last [`BREAKER`] actions all failed.
    async fn check_breaker(&self, rule: &str) -> Result<(), ServiceError> {
        let recent = self.store.recent_outcomes(rule, BREAKER).await?;
        if recent.len() == BREAKER && recent.iter().all(|o| o == "failed") {
            let reason = format!("its last {BREAKER} actions failed");
            self.store
                .set_rule_enabled(
                    &Actor::new(&format!("rule:{rule}"), None),
                    rule,
                    false,
                    Some(&reason),
                )
                .await?;
            tracing::warn!(rule = %rule, "rule disabled: {reason}");
        }
        Ok(())
    }

    /// What an action comes to, as a write of the batch where it can be one.
    async fn decide(
        &self,
        cause: &Cause<'_>,
        rule: &Rule,
        action: &Action,
        incident: &Incident,
        batch: &mut Batch<'_>,
    ) -> Result<Decision, ActionFailed> {
        let context = self.context_for(action, incident).await?;
        let changes: &[Value] = cause.event.changed.as_array().map_or(&[], Vec::as_slice);
        let render = |t: &Template| {
            t.render(&|r| resolve(r, rule, &cause.event.trigger, incident, &context, changes))
                .map_err(ActionFailed::Reference)
        };
        let update = |edit: Edit| Change::Update(edit);
        let change = match action {
            Action::Stop => return Ok(Decision::Stop),
            Action::Run { .. } | Action::LinkDuplicates { .. } => return Ok(Decision::Alone),
            Action::Notify { channel } => {
                if !self.channels.iter().any(|c| &c.name == channel) {
                    return Err(ActionFailed::Unavailable(format!(
                        "there is no channel `{channel}` in the config; `watchfloor channels list` shows them"
                    )));
                }
                return Ok(Decision::Write(What::Notify(channel.clone())));
            }
            Action::Assign(a) if a.pick == Pick::LeastLoaded => return Ok(Decision::Alone),
            Action::Assign(a) => {
                let allowed = self.allowed_assignees(&a.to, incident, batch).await?;
                let user = match a.pick {
                    Pick::RoundRobin => {
                        let n = allowed.len();
                        allowed[cause.event.id.unsigned_abs() as usize % n].clone()
                    }
                    _ => allowed[0].clone(),
                };
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
                return Ok(Decision::Write(What::Note {
                    text,
                    mirror: *mirror,
                }));
            }
        };
        crate::incidents::check_change(&change)?;
        Ok(Decision::Write(What::Change(change)))
    }

    /// The incident's context, read only for an action whose templates refer to it.
    async fn context_for(
        &self,
        action: &Action,
        incident: &Incident,
    ) -> Result<Value, ActionFailed> {
        Ok(match action.templates().iter().any(|t| t.needs_context()) {
            true => self
                .store
                .context(incident.id)
                .await
                .map_err(ServiceError::from)?,
            false => Value::Null,
        })
    }

    /// An action that goes on its own, not in a batch.
    async fn act_alone(
        &self,
        cause: &Cause<'_>,
        rule: &Rule,
        action: &Action,
        incident: &Incident,
    ) -> Result<(), ActionFailed> {
        let context = self.context_for(action, incident).await?;
        let changes: &[Value] = cause.event.changed.as_array().map_or(&[], Vec::as_slice);
        let render = |t: &Template| {
            t.render(&|r| resolve(r, rule, &cause.event.trigger, incident, &context, changes))
                .map_err(ActionFailed::Reference)
        };
        match action {
            Action::Run {
                line,
                instance,
                cache,
            } => {
                let run = Run {
                    rule,
                    line,
                    instance: instance.as_deref(),
                    cache: *cache,
                    incident,
                };
                let Some(kind) = line.indicator_kind() else {
                    return self.run_for_rule(cause, &run, &render).await;
                };
                // Once per indicator of that type, each with a ledger row of its own.
                let values: Vec<String> = self
                    .store
                    .incident_indicators(&Scope::All, incident.id)
                    .await
                    .map_err(ServiceError::from)?
                    .into_iter()
                    .filter(|s| s.kind == kind)
                    .map(|s| s.value)
                    .take(RUNS_PER_ACTION)
                    .collect();
                for (n, value) in values.iter().enumerate() {
                    let one = Cause {
                        event: cause.event,
                        rule: cause.rule,
                        action: PER_INDICATOR + cause.action * RUNS_PER_ACTION as i64 + n as i64,
                    };
                    let render_one = |t: &Template| {
                        t.render(&|r| match r {
                            Ref::Indicator(_) => Ok(value.clone()),
                            r => {
                                resolve(r, rule, &cause.event.trigger, incident, &context, changes)
                            }
                        })
                        .map_err(ActionFailed::Reference)
                    };
                    self.run_for_rule(&one, &run, &render_one).await?;
                }
                Ok(())
            }
            Action::LinkDuplicates { key, within } => {
                self.link_duplicates(cause, incident, key, *within).await
            }
            Action::Assign(a) => {
                let user = self.least_loaded(&a.to, incident).await?;
                let change = Change::Update(Edit {
                    owner: Some(Some(user)),
                    ..Edit::default()
                });
                self.store
                    .apply_rule_effect(cause, &RuleEffect::Change(&[change]), &self.sla)
                    .await
                    .map_err(ServiceError::from)?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The users of `to` who may be given `incident`: enabled, not viewers, and allowed to see
    /// its organization. Refused, naming why, when there is none. Users are read once a batch.
    async fn allowed_assignees(
        &self,
        to: &[String],
        incident: &Incident,
        batch: &mut Batch<'_>,
    ) -> Result<Vec<String>, ActionFailed> {
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for name in to {
            if !batch.users.contains_key(name) {
                let user = self.store.user(name).await.map_err(ServiceError::from)?;
                batch.users.insert(name.clone(), user);
            }
            match &batch.users[name] {
                Some(u)
                    if !u.disabled
                        && u.role != Role::Viewer
                        && Scope::of(u).allows(incident.organization.as_deref()) =>
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
        Ok(allowed)
    }

    /// Of the users of `to` who may be given `incident`, the one with the fewest open
    /// incidents.
    async fn least_loaded(
        &self,
        to: &[String],
        incident: &Incident,
    ) -> Result<String, ActionFailed> {
        let allowed = self
            .allowed_assignees(to, incident, &mut Batch::default())
            .await?;
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
        Ok(best.map(|(_, n)| n).unwrap_or_default())
    }

    /// A provider command in the incident, as the rule: recorded as started before it runs,
    /// so that a process killed while it runs never runs it again (at most once).
    async fn run_for_rule(
        &self,
        cause: &Cause<'_>,
        run: &Run<'_>,
        render: &(dyn Fn(&Template) -> Result<String, ActionFailed> + Sync),
    ) -> Result<(), ActionFailed> {
        let line = run.line;
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
            return Ok(());
        }
        let caller = rule_caller(&run.rule.name);
        let shown = render(line).unwrap_or_else(|_| line.source.clone());
        // A result kept for the incident's organization answers the same line again.
        let org = run
            .incident
            .organization
            .as_deref()
            .unwrap_or_default()
            .to_lowercase();
        let instance = run.instance.unwrap_or_default();
        if let Some(keep) = run.cache {
            let since =
                self.now() - chrono::TimeDelta::from_std(keep).unwrap_or(chrono::TimeDelta::MAX);
            let kept = self
                .store
                .cached_run(&org, instance, &shown, since)
                .await
                .map_err(ServiceError::from)?;
            if let Some(kept) = kept {
                let mut body = kept.body;
                body["cached"] = json!(kept.at);
                let context = kept.context.as_object().cloned().unwrap_or_default();
                self.store
                    .record_command(cause.event.incident_id, &caller.name, &body, &context)
                    .await
                    .map_err(ServiceError::from)?;
                return Ok(());
            }
        }
        let (outcome, recorded) = self
            .run_parsed_and_record(
                &caller,
                cause.event.incident_id,
                parsed,
                &shown,
                run.instance,
            )
            .await?;
        match outcome {
            Ok(entry) => {
                if run.cache.is_some() {
                    let context = Value::Object(entry.entry_context());
                    self.store
                        .cache_run(&org, instance, &shown, &recorded.body, &context, self.now())
                        .await
                        .map_err(ServiceError::from)?;
                }
            }
            // The war room holds the result either way; a failure also counts for the
            // breaker, and is not kept.
            Err(e) => tracing::warn!(rule = %run.rule.name, error = %e, "a rule's command failed"),
        }
        Ok(())
    }

    /// Closes `incident` as a duplicate of the first open incident of its organization with the
    /// same `key` fields made within `within` before it, and notes the link on both.
    async fn link_duplicates(
        &self,
        cause: &Cause<'_>,
        incident: &Incident,
        key: &[String],
        within: std::time::Duration,
    ) -> Result<(), ActionFailed> {
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
        // Incidents of its organization that share an indicator with it (none judged benign).
        let sharing: std::collections::HashSet<i64> = if key.iter().any(|k| k == "indicator") {
            self.store
                .related_incidents(&Scope::All, incident.id, 1_000)
                .await
                .map_err(ServiceError::from)?
                .into_iter()
                .map(|r| r.incident.id)
                .collect()
        } else {
            Default::default()
        };
        let same = |other: &Incident| {
            key.iter().all(|k| match k.as_str() {
                "indicator" => sharing.contains(&other.id),
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
            return Ok(());
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
        Ok(())
    }
}

/// Runs of one `run` action at most, one per indicator of the type its line names.
const RUNS_PER_ACTION: usize = 20;
/// Where the ledger's action numbers of those runs start (an action's own are its index).
const PER_INDICATOR: i64 = 1_000_000;

/// One `run` action of a rule, for one incident.
struct Run<'a> {
    rule: &'a Rule,
    line: &'a Template,
    instance: Option<&'a str>,
    cache: Option<std::time::Duration>,
    incident: &'a Incident,
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
