//! Automation rules as stored: their TOML in run order, enabled or not, each change audited in
//! its own transaction.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;
use watchfloor_core::query::{Condition, Term};
use watchfloor_core::{Change, Incident, SlaPolicy, SlaState};

use super::{SqlStore, audit, parse_ts};
use crate::base::{Tx, stored_text, ts};
use crate::{
    Actor, BoxFuture, Cause, NewRule, RuleCount, RuleEffect, RuleEvent, RuleStore, RuleWrite,
    StoreError, StoredRule,
};

impl RuleStore for SqlStore {
    fn enabled_rules(&self) -> BoxFuture<'_, Result<Arc<Vec<watchfloor_rules::Rule>>, StoreError>> {
        Box::pin(async move {
            let sources: Vec<String> = sqlx::query_scalar(ENABLED_SOURCES)
                .fetch_all(&self.pool)
                .await?;
            Ok(Gate::of(sources).rules.clone())
        })
    }

    fn rules(&self) -> BoxFuture<'_, Result<Vec<StoredRule>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM rules ORDER BY position")
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(StoredRule {
                        name: r.try_get("name")?,
                        position: r.try_get("position")?,
                        source: r.try_get("source")?,
                        enabled: r.try_get::<i64, _>("enabled")? != 0,
                        disabled_reason: r.try_get("disabled_reason")?,
                        updated_by: r.try_get("updated_by")?,
                        updated: parse_ts(&r.try_get::<String, _>("updated")?)?,
                    })
                })
                .collect()
        })
    }

    fn put_rules<'a>(
        &'a self,
        actor: &'a Actor,
        rules: &'a [NewRule],
        replace: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = ts(Utc::now());
            let mut tx = self.write().await?;
            if replace {
                sqlx::query("DELETE FROM rules").execute(&mut *tx).await?;
            }
            let mut next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM rules")
                .fetch_one(&mut *tx)
                .await?;
            for rule in rules {
                let updated = sqlx::query(
                    "UPDATE rules SET source = $1, enabled = $2, disabled_reason = NULL, updated_by = $3, updated = $4 WHERE name = $5",
                )
                .bind(&rule.source)
                .bind(i64::from(rule.enabled))
                .bind(&actor.name)
                .bind(&now)
                .bind(&rule.name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    next += 1;
                    sqlx::query(
                        "INSERT INTO rules (name, position, source, enabled, updated_by, updated) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&rule.name)
                    .bind(next)
                    .bind(&rule.source)
                    .bind(i64::from(rule.enabled))
                    .bind(&actor.name)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
            let detail = match replace {
                true => format!("the whole set is now: {}", names.join(", ")),
                false => names.join(", "),
            };
            audit::record(&mut tx, actor, "rules_imported", "rules", &detail).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn pending_events(&self, limit: usize) -> BoxFuture<'_, Result<Vec<RuleEvent>, StoreError>> {
        Box::pin(self.pending_rule_events(limit))
    }

    fn finish_events<'a>(&'a self, ids: &'a [i64]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.finish_rule_events(ids))
    }

    fn record_rule_outcome<'a>(
        &'a self,
        cause: &'a Cause<'a>,
        outcome: &'a str,
        detail: &'a str,
        entry: Option<(&'a str, &'a Value)>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.rule_outcome_in(cause, outcome, detail, entry))
    }

    fn rule_outcome<'a>(
        &'a self,
        cause: &'a Cause<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(self.read_rule_outcome(cause))
    }

    fn apply_rule_effect<'a>(
        &'a self,
        cause: &'a Cause<'a>,
        effect: &'a RuleEffect<'a>,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.apply_rule_effect_in(cause, effect, sla))
    }

    fn apply_rule_writes<'a>(
        &'a self,
        writes: &'a [RuleWrite<'a>],
        finished: &'a [i64],
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = Utc::now();
            let mut tx = self.write().await?;
            let gate = gate(&mut tx).await?;
            // The batch's ledger rows go first, in a few statements; then what each new one
            // stands for (a row the ledger had already was done before).
            let rows: Vec<(&Cause<'_>, &str, &str)> = writes
                .iter()
                .map(|write| match write {
                    RuleWrite::Effect { cause, effect } => (cause, "acted", effect_detail(effect)),
                    RuleWrite::Notify { cause, .. } => (cause, "acted", "notify"),
                    RuleWrite::Outcome {
                        cause,
                        outcome,
                        detail,
                        ..
                    } => (cause, *outcome, *detail),
                })
                .collect();
            let new = ledger_all(&mut tx, self.backend, &rows).await?;
            // The incidents the batch's effects change are read together, once, under the
            // write lock; each change is then made to the incident as the last one left it.
            let touched: Vec<i64> = writes
                .iter()
                .zip(&new)
                .filter(|(_, new)| **new)
                .filter_map(|(write, _)| match write {
                    RuleWrite::Effect {
                        cause,
                        effect: RuleEffect::Change(_) | RuleEffect::Note { mirror: true, .. },
                    } => Some(cause.event.incident_id),
                    _ => None,
                })
                .collect();
            let mut known = read_incidents(&mut tx, self.backend, &touched).await?;
            for (write, _) in writes.iter().zip(new).filter(|(_, new)| *new) {
                match write {
                    RuleWrite::Effect { cause, effect } => {
                        let gate = gate.as_deref();
                        effect_of(
                            &mut tx,
                            self.backend,
                            gate,
                            &mut known,
                            cause,
                            effect,
                            sla,
                            now,
                        )
                        .await?;
                    }
                    RuleWrite::Notify { cause, channel } => {
                        notify_of(&mut tx, cause, channel, now).await?;
                    }
                    RuleWrite::Outcome { cause, entry, .. } => {
                        entry_of(&mut tx, cause, *entry, now).await?;
                    }
                }
            }
            delete_events(&mut tx, finished).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn incidents_by_id<'a>(
        &'a self,
        ids: &'a [i64],
    ) -> BoxFuture<'a, Result<Vec<Incident>, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(500) {
                let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM incidents WHERE id IN ({})",
                    super::INCIDENT_COLUMNS,
                    list.join(", ")
                )))
                .fetch_all(&self.pool)
                .await?;
                for row in &rows {
                    out.push(super::incident_from_row(row)?);
                }
            }
            Ok(out)
        })
    }

    fn may_meet<'a>(
        &'a self,
        ids: &'a [i64],
        any: &'a [Vec<Condition>],
    ) -> BoxFuture<'a, Result<Vec<i64>, StoreError>> {
        Box::pin(async move {
            let sets: Vec<Vec<Condition>> = any
                .iter()
                .map(|set| {
                    set.iter()
                        .filter(|c| judged_alike(&c.term))
                        .cloned()
                        .collect()
                })
                .collect();
            if sets.is_empty() {
                return Ok(Vec::new());
            }
            if sets.iter().any(Vec::is_empty) {
                return Ok(ids.to_vec());
            }
            let mut out = Vec::new();
            for chunk in ids.chunks(500) {
                let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                let mut q = crate::dialect::Sql::new(
                    self.backend,
                    format!(
                        "SELECT id{}",
                        by_id(
                            self.backend,
                            &format!(
                                "SELECT id AS picked_id FROM incidents WHERE id IN ({})",
                                list.join(", ")
                            )
                        )
                    ),
                );
                let sets: Vec<&[Condition]> = sets.iter().map(Vec::as_slice).collect();
                push_any_of(&mut q, &sets);
                let found: Vec<i64> = q.build_query_scalar().fetch_all(&self.pool).await?;
                out.extend(found);
            }
            Ok(out)
        })
    }

    fn ledger_of<'a>(
        &'a self,
        events: &'a [i64],
    ) -> BoxFuture<'a, Result<Vec<crate::LedgerRow>, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for chunk in events.chunks(500) {
                let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                let rows: Vec<crate::LedgerRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT event_id, rule, action, outcome FROM rule_ledger WHERE event_id IN ({})",
                        list.join(", ")
                    )))
                    .fetch_all(&self.pool)
                    .await?;
                out.extend(rows);
            }
            Ok(out)
        })
    }

    fn schedule_tick<'a>(
        &'a self,
        rule: &'a str,
        every: std::time::Duration,
        filter: &'a crate::IncidentFilter,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<usize>, StoreError>> {
        Box::pin(self.tick(rule, every, filter, now))
    }

    fn queue_sla_events(
        &self,
        state: SlaState,
        now: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(self.queue_sla(state, now, limit))
    }

    fn rule_counts(
        &self,
        since: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<RuleCount>, StoreError>> {
        Box::pin(self.rule_counts_since(since))
    }

    fn recent_outcomes<'a>(
        &'a self,
        rule: &'a str,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            Ok(sqlx::query_scalar(
                "SELECT outcome FROM rule_ledger WHERE rule = $1 AND action >= 0 \
                 ORDER BY at DESC, event_id DESC, action DESC LIMIT $2",
            )
            .bind(rule)
            .bind(n as i64)
            .fetch_all(&self.pool)
            .await?)
        })
    }

    fn rules_of_incident(
        &self,
        incident: i64,
    ) -> BoxFuture<'_, Result<Vec<(String, i64)>, StoreError>> {
        Box::pin(self.rules_of(incident))
    }

    fn set_rule_enabled<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        enabled: bool,
        reason: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let changed = sqlx::query(
                "UPDATE rules SET enabled = $1, disabled_reason = $2, updated_by = $3, updated = $4 WHERE name = $5",
            )
            .bind(i64::from(enabled))
            .bind(reason)
            .bind(&actor.name)
            .bind(ts(Utc::now()))
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if changed {
                let action = match enabled {
                    true => "rule_enabled",
                    false => "rule_disabled",
                };
                audit::record(&mut tx, actor, action, name, reason.unwrap_or_default()).await?;
            }
            tx.commit().await?;
            Ok(changed)
        })
    }
}

/// The enabled rules as the queue sees them: an event is queued only when a rule listens to
/// its trigger (and to the fields it changed) and the incident, as the event's transaction
/// leaves it, may meet that rule's condition. Only the terms the database judges exactly as
/// the rules' matcher does are kept (see [`judged_alike`]), so the queue holds every event a
/// rule can act on; the worker judges the whole condition again when it acts.
pub(super) struct Gate {
    /// The enabled rules that read, in run order.
    rules: Arc<Vec<watchfloor_rules::Rule>>,
    /// Each rule's terms the database judges; none for a rule whose condition does not
    /// parse (it never runs).
    kept: Vec<Option<Vec<Condition>>>,
}

impl Gate {
    /// The condition sets of the rules `trigger` fires (changing `changed`): an incident must
    /// meet one of them; none when no rule listens.
    fn sets(&self, trigger: &str, changed: &Value) -> Vec<&[Condition]> {
        let Ok(trigger) = watchfloor_rules::Trigger::parse(trigger) else {
            return Vec::new();
        };
        let changed: Vec<String> = changed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["field"].as_str().map(str::to_string))
            .collect();
        self.rules
            .iter()
            .zip(&self.kept)
            .filter(|(rule, _)| rule.fires_on(trigger, &changed))
            .filter_map(|(_, kept)| kept.as_deref())
            .collect()
    }

    /// The gate of the enabled rules' stored `sources` (in run order), parsed again only when
    /// they changed.
    fn of(sources: Vec<String>) -> Arc<Gate> {
        static CACHED: Mutex<Option<(Vec<String>, Arc<Gate>)>> = Mutex::new(None);
        let mut cached = CACHED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((key, gate)) = cached.as_ref()
            && *key == sources
        {
            return gate.clone();
        }
        let rules: Vec<watchfloor_rules::Rule> = sources
            .iter()
            .filter_map(|source| watchfloor_rules::parse_stored(source).ok())
            .flatten()
            .collect();
        // Times are left out of the kept terms, so the moment they are parsed at does not
        // matter.
        let now = Utc::now();
        let kept = rules
            .iter()
            .map(|rule| {
                let conditions = match rule.when.trim() {
                    "" => Vec::new(),
                    text => watchfloor_core::query::parse_at(text, now).ok()?,
                };
                Some(
                    conditions
                        .into_iter()
                        .filter(|c| judged_alike(&c.term))
                        .collect(),
                )
            })
            .collect();
        let gate = Arc::new(Gate {
            rules: Arc::new(rules),
            kept,
        });
        *cached = Some((sources, gate.clone()));
        gate
    }
}

/// The enabled rules' stored texts, in run order.
const ENABLED_SOURCES: &str = "SELECT source FROM rules WHERE enabled = 1 ORDER BY position";

/// The gate of the rules enabled now, read in `tx`; none when no rule is enabled, so that an
/// install without rules pays one short read per commit.
pub(super) async fn gate(tx: &mut Tx) -> Result<Option<Arc<Gate>>, StoreError> {
    let sources: Vec<String> = sqlx::query_scalar(ENABLED_SOURCES)
        .fetch_all(&mut **tx)
        .await?;
    Ok((!sources.is_empty()).then(|| Gate::of(sources)))
}

/// ` FROM` the incidents whose ids `ids` selects (as `picked_id`) ` WHERE 1 = 1`, read by id: SQLite is kept
/// from reading a condition's index instead (which grows with the table) by joining in this
/// order.
fn by_id(backend: crate::Backend, ids: &str) -> String {
    let join = match backend {
        crate::Backend::Sqlite => "CROSS JOIN",
        crate::Backend::Postgres => "JOIN",
    };
    format!(
        " FROM ({ids}) AS picked {join} incidents ON incidents.id = picked.picked_id WHERE 1 = 1"
    )
}

/// ` AND (` one of `sets` `)`, for a query over `incidents`.
fn push_any_of(q: &mut crate::dialect::Sql, sets: &[&[Condition]]) {
    q.push(" AND (");
    for (n, set) in sets.iter().enumerate() {
        q.push(if n == 0 { "(1 = 1" } else { " OR (1 = 1" });
        let filter = crate::IncidentFilter {
            conditions: set.to_vec(),
            ..crate::IncidentFilter::default()
        };
        super::filter::push_filter(q, &filter, &super::filter::Hints::default());
        q.push(")");
    }
    q.push(")");
}

/// Queues an event for the rules in `tx`, if a rule may act on it (see [`Gate`]).
pub(super) async fn queue_event(
    tx: &mut Tx,
    backend: crate::Backend,
    incident_id: i64,
    trigger: &str,
    changed: &Value,
    depth: i64,
) -> Result<(), StoreError> {
    let gate = gate(tx).await?;
    queue_event_in(
        tx,
        backend,
        gate.as_deref(),
        incident_id,
        trigger,
        changed,
        depth,
    )
    .await
}

/// [`queue_event`] with the gate read already.
pub(super) async fn queue_event_in(
    tx: &mut Tx,
    backend: crate::Backend,
    gate: Option<&Gate>,
    incident_id: i64,
    trigger: &str,
    changed: &Value,
    depth: i64,
) -> Result<(), StoreError> {
    let Some(gate) = gate else {
        return Ok(());
    };
    let sets = gate.sets(trigger, changed);
    if sets.is_empty() {
        return Ok(());
    }
    let mut q = crate::dialect::Sql::new(
        backend,
        "INSERT INTO rule_events (incident_id, trigger, changed, depth, created) SELECT id, ",
    );
    q.push_bind(trigger.to_string())
        .push(", ")
        .push_bind(changed.to_string())
        .push(", ")
        .push_bind(depth)
        .push(", ")
        .push_bind(ts(Utc::now()))
        .push(" FROM incidents WHERE id = ")
        .push_bind(incident_id);
    if !sets.iter().any(|set| set.is_empty()) {
        push_any_of(&mut q, &sets);
    }
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Queues `created` events for incidents a fetch stored that a rule may act on: by id on
/// PostgreSQL, or the `newest` rows the transaction inserted on SQLite.
pub(super) async fn queue_created(
    tx: &mut Tx,
    backend: crate::Backend,
    ids: &[i64],
    newest: usize,
) -> Result<(), StoreError> {
    if ids.is_empty() && newest == 0 {
        return Ok(());
    }
    let Some(gate) = gate(tx).await? else {
        return Ok(());
    };
    let sets = gate.sets("created", &Value::Array(Vec::new()));
    if sets.is_empty() {
        return Ok(());
    }
    let all = sets.iter().any(|set| set.is_empty());
    let now = ts(Utc::now());
    let insert = |from: String| {
        let mut q = crate::dialect::Sql::new(
            backend,
            "INSERT INTO rule_events (incident_id, trigger, changed, depth, created) SELECT id, 'created', '[]', 0, ",
        );
        q.push_bind(now.clone()).push(from);
        if !all {
            push_any_of(&mut q, &sets);
        }
        q.push(" ORDER BY id");
        q
    };
    if !ids.is_empty() {
        for chunk in ids.chunks(1000) {
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            let q = insert(by_id(
                backend,
                &format!(
                    "SELECT id AS picked_id FROM incidents WHERE id IN ({})",
                    list.join(", ")
                ),
            ));
            q.build().execute(&mut **tx).await?;
        }
        return Ok(());
    }
    let q = insert(by_id(
        backend,
        &format!("SELECT id AS picked_id FROM incidents ORDER BY id DESC LIMIT {newest}"),
    ));
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// The event a change fires.
pub(super) fn trigger_of(change: &Change) -> &'static str {
    match change {
        Change::Update(_) => "changed",
        Change::Close { .. } => "closed",
        Change::Reopen => "reopened",
    }
}

/// Writes a ledger row in `tx`; false when the cause has one already. An action's row also
/// records, once, that its rule matched the event, in the same transaction.
async fn ledger(
    tx: &mut Tx,
    backend: crate::Backend,
    cause: &Cause<'_>,
    outcome: &str,
    detail: &str,
) -> Result<bool, StoreError> {
    Ok(ledger_all(tx, backend, &[(cause, outcome, detail)]).await? == [true])
}

/// [`ledger`] for many rows, a few statements in all; whether each was new, in order.
async fn ledger_all(
    tx: &mut Tx,
    backend: crate::Backend,
    rows: &[(&Cause<'_>, &str, &str)],
) -> Result<Vec<bool>, StoreError> {
    type Key = (i64, String, i64, String);
    let at = ts(Utc::now());
    let mut new = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(200) {
        let mut q = crate::dialect::Sql::new(
            backend,
            "INSERT INTO rule_ledger (event_id, rule, action, incident_id, outcome, detail, at) VALUES ",
        );
        // Each action's match marker comes before its row.
        let values = chunk.iter().flat_map(|(cause, outcome, detail)| {
            let marker = (cause.action >= 0).then_some((*cause, -1, "matched", ""));
            marker
                .into_iter()
                .chain([(*cause, cause.action, *outcome, *detail)])
        });
        for (n, (cause, action, outcome, detail)) in values.enumerate() {
            q.push(if n == 0 { "(" } else { ", (" });
            q.push_bind(cause.event.id).push(", ");
            q.push_bind(cause.rule.to_string()).push(", ");
            q.push_bind(action).push(", ");
            q.push_bind(cause.event.incident_id).push(", ");
            q.push_bind(outcome.to_string()).push(", ");
            q.push_bind(stored_text(detail)).push(", ");
            q.push_bind(at.clone()).push(")");
        }
        q.push(
            " ON CONFLICT (event_id, rule, action) DO NOTHING RETURNING event_id, rule, action, outcome",
        );
        let mut written: Vec<Key> = q.build_query_as().fetch_all(&mut **tx).await?;
        for (cause, outcome, _) in chunk {
            let key = (
                cause.event.id,
                cause.rule.to_string(),
                cause.action,
                outcome.to_string(),
            );
            // Taken, so that a cause twice in the rows is new only once.
            match written.iter().position(|k| *k == key) {
                Some(at) => {
                    written.swap_remove(at);
                    new.push(true);
                }
                None => new.push(false),
            }
        }
    }
    Ok(new)
}

/// Whether the database judges `term` exactly as the rules' matcher does: not for text and
/// names (the database folds only ASCII case, and searches words), organizations and types
/// that are not ASCII, nor times (stored to the microsecond, compared to the nanosecond).
fn judged_alike(term: &Term) -> bool {
    match term {
        Term::Status(_)
        | Term::Severity(_)
        | Term::Id(_)
        | Term::Owner(_)
        | Term::Instance(_)
        | Term::Nothing => true,
        Term::Organization(s) | Term::Kind(s) => s.is_ascii(),
        Term::Name(_)
        | Term::Text(_)
        | Term::Indicator(_)
        | Term::IndicatorVerdict(_)
        | Term::Created(..)
        | Term::Occurred(..)
        | Term::Closed(..) => false,
        Term::Any(terms) => terms.iter().all(judged_alike),
        Term::All(conditions) => conditions.iter().all(|c| judged_alike(&c.term)),
    }
}

/// Takes handled events off the queue in `tx`.
async fn delete_events(tx: &mut Tx, ids: &[i64]) -> Result<(), StoreError> {
    for chunk in ids.chunks(500) {
        let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM rule_events WHERE id IN ({})",
            list.join(", ")
        )))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// What a notify action does, its ledger row written.
async fn notify_of(
    tx: &mut Tx,
    cause: &Cause<'_>,
    channel: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    super::notify::queue(
        tx,
        channel,
        cause.event.incident_id,
        cause.rule,
        &cause.event.trigger,
        now,
    )
    .await
}

/// Records an outcome in `tx`; false when its cause has one already.
async fn outcome_in(
    tx: &mut Tx,
    backend: crate::Backend,
    cause: &Cause<'_>,
    outcome: &str,
    detail: &str,
    entry: Option<(&str, &Value)>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !ledger(tx, backend, cause, outcome, detail).await? {
        return Ok(false);
    }
    entry_of(tx, cause, entry, now).await?;
    Ok(true)
}

/// An outcome's war-room entry, if it has one.
async fn entry_of(
    tx: &mut Tx,
    cause: &Cause<'_>,
    entry: Option<(&str, &Value)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some((kind, body)) = entry {
        super::insert_entry(
            tx,
            cause.event.incident_id,
            now,
            &format!("rule:{}", cause.rule),
            kind,
            body,
        )
        .await?;
    }
    Ok(())
}

/// Does an action's effect in `tx`, with its ledger row and the events it fires; false when
/// its cause has a ledger row already.
async fn effect_in(
    tx: &mut Tx,
    backend: crate::Backend,
    cause: &Cause<'_>,
    effect: &RuleEffect<'_>,
    sla: &SlaPolicy,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !ledger(tx, backend, cause, "acted", effect_detail(effect)).await? {
        return Ok(false);
    }
    let gate = gate(tx).await?;
    let mut known = std::collections::HashMap::new();
    effect_of(
        tx,
        backend,
        gate.as_deref(),
        &mut known,
        cause,
        effect,
        sla,
        now,
    )
    .await?;
    Ok(true)
}

/// Incidents by id, read in one statement within `tx` (locked for it on PostgreSQL); those
/// gone are left out.
async fn read_incidents(
    tx: &mut Tx,
    backend: crate::Backend,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Incident>, StoreError> {
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(500) {
        let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM incidents WHERE id IN ({}) ORDER BY id{}",
            super::INCIDENT_COLUMNS,
            list.join(", "),
            backend.for_update()
        )))
        .fetch_all(&mut **tx)
        .await?;
        for row in &rows {
            let incident = super::incident_from_row(row)?;
            out.insert(incident.id, incident);
        }
    }
    Ok(out)
}

/// What an effect's ledger row says.
fn effect_detail<'a>(effect: &RuleEffect<'a>) -> &'a str {
    match effect {
        RuleEffect::Change(_) => "change",
        RuleEffect::Note { .. } => "note",
        RuleEffect::Entry { kind, .. } => kind,
    }
}

/// What an action's effect does, its ledger row written: the change or entry, and the events
/// it fires (through `gate`).
#[allow(clippy::too_many_arguments)]
async fn effect_of(
    tx: &mut Tx,
    backend: crate::Backend,
    gate: Option<&Gate>,
    known: &mut std::collections::HashMap<i64, Incident>,
    cause: &Cause<'_>,
    effect: &RuleEffect<'_>,
    sla: &SlaPolicy,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let author = format!("rule:{}", cause.rule);
    let id = cause.event.incident_id;
    let depth = cause.event.depth + 1;
    match effect {
        RuleEffect::Change(changes) => {
            let mut incident = match known.remove(&id) {
                Some(incident) => incident,
                None => super::read_incident(tx, backend, id).await?,
            };
            for change in changes.iter() {
                let (moved, after) = super::apply_change(
                    tx, backend, &incident, &author, change, sla, "change", now,
                )
                .await?;
                if let Some(mirrored) = super::ToProvider::of_change(change)
                    && !incident.is_manual()
                {
                    super::queue_push(tx, &incident, &mirrored, now).await?;
                }
                queue_event_in(tx, backend, gate, id, trigger_of(change), &moved, depth).await?;
                // The incident as the change left it, for the next change.
                incident.set_lifecycle(after, sla, now);
            }
            known.insert(id, incident);
        }
        RuleEffect::Note { text, mirror } => {
            let body = serde_json::json!({"text": text, "mirror": mirror});
            super::insert_entry(tx, id, now, &author, "note", &body).await?;
            if *mirror {
                let incident = match known.get(&id) {
                    Some(incident) => incident.clone(),
                    None => super::read_incident(tx, backend, id).await?,
                };
                if !incident.is_manual() {
                    let note = super::ToProvider::Note {
                        text: text.to_string(),
                    };
                    super::queue_push(tx, &incident, &note, now).await?;
                }
            }
            let none = Value::Array(Vec::new());
            queue_event_in(tx, backend, gate, id, "note", &none, depth).await?;
        }
        RuleEffect::Entry { kind, body } => {
            super::insert_entry(tx, id, now, &author, kind, body).await?;
        }
    }
    Ok(())
}

fn event_from_row(r: &AnyRow) -> Result<RuleEvent, StoreError> {
    Ok(RuleEvent {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        trigger: r.try_get("trigger")?,
        changed: serde_json::from_str(&r.try_get::<String, _>("changed")?)
            .map_err(|e| StoreError::Corrupt(format!("rule event: {e}")))?,
        depth: r.try_get("depth")?,
        created: parse_ts(&r.try_get::<String, _>("created")?)?,
    })
}

impl SqlStore {
    async fn tick(
        &self,
        rule: &str,
        every: std::time::Duration,
        filter: &crate::IncidentFilter,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let mut tx = self.write().await?;
        let last: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT last_tick FROM rule_ticks WHERE rule = $1{}",
            self.backend.for_update()
        )))
        .bind(rule)
        .fetch_optional(&mut *tx)
        .await?;
        let every = chrono::TimeDelta::from_std(every).unwrap_or(chrono::TimeDelta::MAX);
        if let Some(last) = last
            && parse_ts(&last)?
                .checked_add_signed(every)
                .is_none_or(|due| due > now)
        {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO rule_ticks (rule, last_tick) VALUES ($1, $2) \
             ON CONFLICT (rule) DO UPDATE SET last_tick = excluded.last_tick",
        )
        .bind(rule)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let mut q = crate::dialect::Sql::new(self.backend, "SELECT id FROM incidents WHERE 1 = 1");
        super::filter::push_filter(&mut q, filter, &super::filter::Hints::default());
        q.push(" ORDER BY id LIMIT ")
            .push_bind(filter.limit.unwrap_or(1_000) as i64);
        let ids: Vec<i64> = q.build_query_scalar().fetch_all(&mut *tx).await?;
        let gate = gate(&mut tx).await?;
        let none = Value::Array(Vec::new());
        for id in &ids {
            queue_event_in(
                &mut tx,
                self.backend,
                gate.as_deref(),
                *id,
                "schedule",
                &none,
                0,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some(ids.len()))
    }

    /// Marks open incidents that came into `state` and queues their events, in one transaction.
    async fn queue_sla(
        &self,
        state: SlaState,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let trigger = match state {
            SlaState::AtRisk => "sla-at-risk",
            SlaState::Breached => "sla-breached",
            SlaState::Ok => return Ok(0),
        };
        let mut tx = self.write().await?;
        let Some(gate) = gate(&mut tx).await? else {
            return Ok(0);
        };
        let filter = crate::IncidentFilter {
            sla: Some((state, now)),
            ..crate::IncidentFilter::default()
        };
        let mut q = crate::dialect::Sql::new(
            self.backend,
            "INSERT INTO sla_marks (incident_id, state, at) SELECT id, ",
        );
        q.push_bind(trigger).push(", ").push_bind(ts(now));
        q.push(" FROM incidents WHERE closed IS NULL");
        super::filter::push_filter(&mut q, &filter, &super::filter::Hints::default());
        q.push(" AND NOT EXISTS (SELECT 1 FROM sla_marks m WHERE m.incident_id = incidents.id AND m.state = ")
            .push_bind(trigger)
            .push(") ORDER BY sla_due LIMIT ")
            .push_bind(limit as i64)
            .push(" RETURNING incident_id");
        let marked: Vec<i64> = q.build_query_scalar().fetch_all(&mut *tx).await?;
        let none = Value::Array(Vec::new());
        for id in &marked {
            queue_event_in(&mut tx, self.backend, Some(&gate), *id, trigger, &none, 0).await?;
        }
        tx.commit().await?;
        Ok(marked.len())
    }

    pub(super) async fn pending_rule_events(
        &self,
        limit: usize,
    ) -> Result<Vec<RuleEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM rule_events ORDER BY id LIMIT $1")
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    pub(super) async fn finish_rule_events(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        delete_events(&mut tx, ids).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn rule_outcome_in(
        &self,
        cause: &Cause<'_>,
        outcome: &str,
        detail: &str,
        entry: Option<(&str, &Value)>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        if !outcome_in(
            &mut tx,
            self.backend,
            cause,
            outcome,
            detail,
            entry,
            Utc::now(),
        )
        .await?
        {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn read_rule_outcome(
        &self,
        cause: &Cause<'_>,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT outcome FROM rule_ledger WHERE event_id = $1 AND rule = $2 AND action = $3",
        )
        .bind(cause.event.id)
        .bind(cause.rule)
        .bind(cause.action)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub(super) async fn apply_rule_effect_in(
        &self,
        cause: &Cause<'_>,
        effect: &RuleEffect<'_>,
        sla: &SlaPolicy,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        if !effect_in(&mut tx, self.backend, cause, effect, sla, Utc::now()).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn rule_counts_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<RuleCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT rule, outcome, COUNT(*) AS n FROM rule_ledger WHERE at >= $1 GROUP BY rule, outcome",
        )
        .bind(ts(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RuleCount {
                    rule: r.try_get("rule")?,
                    outcome: r.try_get("outcome")?,
                    n: r.try_get("n")?,
                })
            })
            .collect()
    }

    pub(super) async fn rules_of(&self, incident: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT rule, COUNT(*) AS n FROM rule_ledger WHERE incident_id = $1 AND outcome = 'acted' \
             GROUP BY rule ORDER BY rule",
        )
        .bind(incident)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("rule")?, r.try_get("n")?)))
            .collect()
    }
}
