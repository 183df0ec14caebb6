//! watchfloor-engine: fetching incidents exactly once.
//!
//! A **cycle** fetches every cursor scope of an instance (every organization in broker mode,
//! a few at a time). Each **step** asks the integration for one batch
//! ([`Instance::fetch`](watchfloor_integrations::Instance::fetch)) and stores the batch and its
//! new cursor in one transaction ([`Store::commit_fetch`]); a cycle repeats steps while the
//! fetch limit leaves more. A failed step leaves its cursor as it was and is recorded in the
//! instance's health; the next cycle retries it. The **scheduler** ([`Engine::serve`]) runs each
//! instance on its own interval, backs off after failures, and on shutdown finishes the step
//! in flight before it stops.

pub mod sharing;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};

use futures_util::future::join_all;
use tokio::sync::{Semaphore, watch};
use watchfloor_core::SlaPolicy;
use watchfloor_integrations::{CommandError, InstanceRef, RunError, Runner};
use watchfloor_storage::{FetchTarget, Store, StoreError};

pub use sync::SyncReport;

/// Cursor scopes of one instance fetched at the same time, by default (`fetch_concurrency`).
pub const SCOPE_CONCURRENCY: usize = watchfloor_core::fetch::DEFAULT_CONCURRENCY;
/// Steps one cycle takes at most before it yields to the next cycle.
const MAX_STEPS_PER_CYCLE: usize = 10_000;
/// The longest wait after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// How long work in flight may take to end after a stop before it is cut short.
pub const STOP_GRACE: Duration = Duration::from_millis(1000);

/// Why a cycle failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("instance `{instance}`: storing incidents failed: {error}")]
    Store { instance: String, error: StoreError },
    #[error("instance `{instance}`: {message}")]
    Sync { instance: String, message: String },
    #[error("instance `{instance}`{}: fetch failed: {error}", scope_label(scope))]
    Fetch {
        instance: String,
        scope: String,
        error: CommandError,
    },
}

fn scope_label(scope: &str) -> String {
    if scope.is_empty() {
        String::new()
    } else {
        format!(", organization `{scope}`")
    }
}

/// How far one cycle goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// One step per scope.
    One,
    /// Steps until the fetch limit no longer cuts a window short.
    UntilCaughtUp,
}

/// What a cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub new_incidents: usize,
    pub steps: usize,
    /// Scopes left to other processes: a process that shares the work fetches only the scopes
    /// it holds a lease on, and one that does not (`watchfloor fetch`) leaves those a `serve`
    /// holds. A cycle that left every scope records no health: that is the holders' to record.
    pub held: usize,
}

/// How far a cycle has come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub new_incidents: usize,
    /// The share, 0 to 1, of the time from `first_fetch` to now that the cursors cover,
    /// averaged over the scopes; `None` when the cursors do not say.
    pub covered: Option<f64>,
}

/// What the scopes of one cycle share.
struct CycleState<'a> {
    steps: Steps,
    total: AtomicUsize,
    /// Per scope: the share of the window its cursor covers.
    covered: Mutex<Vec<f64>>,
    first_start: Option<DateTime<Utc>>,
    bound: Semaphore,
    progress: &'a (dyn Fn(&Progress) + Sync),
    stop: &'a watch::Receiver<bool>,
}

impl CycleState<'_> {
    /// Records a committed step of scope `index` and says how far the cycle has come. A scope
    /// that has caught up covers its whole window, however the clock moved since it read.
    fn step_done(
        &self,
        index: usize,
        added: usize,
        covered_until: Option<DateTime<Utc>>,
        caught_up: bool,
    ) -> Progress {
        let new_incidents = self.total.fetch_add(added, Ordering::Relaxed) + added;
        let covered = match (self.first_start, covered_until) {
            (Some(start), Some(high)) => {
                let span = (Utc::now() - start).num_seconds().max(1) as f64;
                let share = match caught_up {
                    true => 1.0,
                    false => ((high - start).num_seconds() as f64 / span).clamp(0.0, 1.0),
                };
                let mut all = self.covered.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(slot) = all.get_mut(index) {
                    *slot = share;
                }
                Some(all.iter().sum::<f64>() / all.len().max(1) as f64)
            }
            _ => None,
        };
        Progress {
            new_incidents,
            covered,
        }
    }
}

/// The fetch engine over configured instances and a store.
pub struct Engine {
    runner: Arc<Runner>,
    store: Arc<dyn Store>,
    /// Overrides each instance's `fetch_concurrency` when set (benchmarks compare settings).
    scope_concurrency: Option<usize>,
    /// The SLA new incidents are held to.
    sla: SlaPolicy,
    /// Leases shared with other processes on the same database, when serving with them.
    sharing: Option<Arc<sharing::Sharing>>,
}

impl Engine {
    pub fn new(runner: Arc<Runner>, store: Arc<dyn Store>) -> Self {
        Engine {
            runner,
            store,
            scope_concurrency: None,
            sla: SlaPolicy::default(),
            sharing: None,
        }
    }

    /// Shares fetching and mirroring with other processes on the same database: each scope
    /// is fetched, and each instance mirrored, only under a lease.
    pub fn with_sharing(mut self, sharing: Arc<sharing::Sharing>) -> Self {
        self.sharing = Some(sharing);
        self
    }

    /// The SLA new incidents are held to (the config's `[sla]`).
    pub fn with_sla(mut self, sla: SlaPolicy) -> Self {
        self.sla = sla;
        self
    }

    /// How many scopes (broker organizations) of one instance are fetched at the same time,
    /// whatever the instances' `fetch_concurrency` says.
    pub fn with_scope_concurrency(mut self, n: usize) -> Self {
        self.scope_concurrency = Some(n.max(1));
        self
    }

    /// Runs one cycle of `instance` and records its outcome in the instance's health.
    /// `progress` hears after each step how far the cycle has come; `stop` ends the cycle after
    /// the step in flight.
    pub async fn cycle(
        &self,
        instance: &str,
        steps: Steps,
        progress: &(dyn Fn(&Progress) + Sync),
        stop: &watch::Receiver<bool>,
    ) -> Result<CycleReport, EngineError> {
        let started = std::time::Instant::now();
        let result = self.cycle_inner(instance, steps, progress, stop).await;
        {
            use watchfloor_core::metrics::{FETCH_CYCLES, FETCH_LATENCY, INCIDENTS_FETCHED};
            let outcome = if result.is_ok() { "ok" } else { "failed" };
            FETCH_CYCLES.add(&[("instance", instance), ("outcome", outcome)], 1);
            FETCH_LATENCY.observe(&[("instance", instance)], started.elapsed().as_secs_f64());
            if let Ok(report) = &result {
                INCIDENTS_FETCHED.add(&[("instance", instance)], report.new_incidents as u64);
            }
        }
        let recorded = match &result {
            // Every scope was another process's: its health is that process's to record (a
            // success here would hide the holder's failure).
            Ok(report) if report.steps == 0 && report.held > 0 => Ok(()),
            Ok(report) => {
                self.store
                    .record_success(instance, report.new_incidents)
                    .await
            }
            Err(e) => self.store.record_failure(instance, &e.to_string()).await,
        };
        if let Err(error) = recorded {
            tracing::error!(instance, %error, "cannot record instance health");
        }
        result
    }

    async fn cycle_inner(
        &self,
        name: &str,
        steps: Steps,
        progress: &(dyn Fn(&Progress) + Sync),
        stop: &watch::Receiver<bool>,
    ) -> Result<CycleReport, EngineError> {
        let inst = self.runner.instance(name)?;
        let scopes = inst
            .instance
            .fetch_scopes()
            .await
            .map_err(|error| EngineError::Fetch {
                instance: name.to_string(),
                scope: String::new(),
                error,
            })?;
        if let Err(error) = self.store.keep_scopes(name, &scopes).await {
            tracing::error!(instance = name, %error, "cannot forget the health of scopes gone");
        }
        // Shared with other processes: only the scopes this one holds a lease on.
        let leases = match &self.sharing {
            Some(sharing) => {
                sharing.set_fetch_scopes(name, scopes.len());
                let keys: Vec<String> =
                    scopes.iter().map(|s| sharing::fetch_key(name, s)).collect();
                sharing.claim_each(sharing::Work::Fetch, &keys).await
            }
            None => vec![None; scopes.len()],
        };
        // The scopes this cycle fetches: sharing the work, those it holds a lease on; not
        // sharing it (`watchfloor fetch`), those no sharing process holds. The rest are left to
        // their holders.
        let mine: Vec<bool> = match &self.sharing {
            Some(_) => leases.iter().map(Option::is_some).collect(),
            None => {
                let held = sharing::held_now(self.store.as_ref())
                    .await
                    .map_err(|error| EngineError::Store {
                        instance: name.to_string(),
                        error,
                    })?;
                scopes
                    .iter()
                    .map(|s| !held.contains_key(&sharing::fetch_key(name, s)))
                    .collect()
            }
        };
        let now = Utc::now();
        let cycle = CycleState {
            steps,
            total: AtomicUsize::new(0),
            covered: Mutex::new(vec![0.0; scopes.len()]),
            first_start: Some(inst.fetch.first_fetch.at(now)).filter(|t| *t < now),
            bound: Semaphore::new(
                self.scope_concurrency
                    .unwrap_or(inst.fetch.concurrency)
                    .max(1),
            ),
            progress,
            stop,
        };
        let scope_runs = scopes
            .iter()
            .zip(leases)
            .enumerate()
            .filter(|(i, _)| mine[*i])
            .map(|(i, (scope, lease))| self.fetch_scope(&inst, i, scope, lease, &cycle));
        let mut report = CycleReport {
            new_incidents: 0,
            steps: 0,
            held: mine.iter().filter(|m| !**m).count(),
        };
        for r in join_all(scope_runs).await {
            report.steps += r?;
        }
        report.new_incidents = cycle.total.into_inner();
        Ok(report)
    }

    /// Steps through one scope (the `index`th of the cycle), under `lease` when processes
    /// share the work; returns the number of steps.
    async fn fetch_scope(
        &self,
        inst: &InstanceRef<'_>,
        index: usize,
        scope: &str,
        lease: Option<watchfloor_storage::Lease>,
        cycle: &CycleState<'_>,
    ) -> Result<usize, EngineError> {
        let lease = match (&self.sharing, lease) {
            (Some(sharing), Some(lease)) => {
                Some((sharing, sharing::fetch_key(inst.name, scope), lease))
            }
            _ => None,
        };
        let _permit = cycle.bound.acquire().await;
        let result = self
            .fetch_steps(inst, index, scope, cycle, lease.as_ref().map(|(_, _, l)| l))
            .await;
        let fenced = matches!(
            &result,
            Err(EngineError::Store {
                error: StoreError::Fenced(_),
                ..
            })
        );
        if let Some((sharing, key, _)) = &lease {
            if fenced {
                sharing.lost(key);
                return Ok(0);
            }
            sharing.done(key);
        }
        if !fenced {
            // The scope's own health: another process's success cannot clear it.
            let error = result.as_ref().err().map(ToString::to_string);
            if let Err(e) = self
                .store
                .record_scope(inst.name, scope, error.as_deref())
                .await
            {
                tracing::error!(instance = inst.name, scope, error = %e, "cannot record scope health");
            }
        }
        result
    }

    /// The steps of one scope, under `lease` when processes share the work.
    async fn fetch_steps(
        &self,
        inst: &InstanceRef<'_>,
        index: usize,
        scope: &str,
        cycle: &CycleState<'_>,
        lease: Option<&watchfloor_storage::Lease>,
    ) -> Result<usize, EngineError> {
        let store_err = |error| EngineError::Store {
            instance: inst.name.to_string(),
            error,
        };
        let mut taken = 0;
        loop {
            let cursor = self
                .store
                .cursor(inst.name, scope)
                .await
                .map_err(store_err)?;
            let mut batch = inst
                .instance
                .fetch(scope, cursor.as_ref(), inst.fetch)
                .await
                .map_err(|error| EngineError::Fetch {
                    instance: inst.name.to_string(),
                    scope: scope.to_string(),
                    error,
                })?;
            // An instance that serves one organization: its incidents are that organization's.
            if let Some(org) = inst.organization {
                for incident in &mut batch.incidents {
                    incident.organization = Some(org.to_string());
                }
            }
            let target = FetchTarget {
                instance: inst.name,
                integration: inst.integration,
                incident_type: &inst.fetch.incident_type,
                scope,
                sla: &self.sla,
                lease,
            };
            let added = self
                .store
                .commit_fetch(target, &batch.incidents, &batch.cursor)
                .await
                .map_err(store_err)?;
            if !batch.set_aside.is_empty() {
                for bad in &batch.set_aside {
                    tracing::warn!(instance = inst.name, scope, id = %bad.id, reason = %bad.reason, "record set aside");
                }
                self.store
                    .record_set_aside(inst.name, &batch.set_aside)
                    .await
                    .map_err(store_err)?;
            }
            taken += 1;
            (cycle.progress)(&cycle.step_done(index, added, batch.covered_until, !batch.more));
            tracing::debug!(
                instance = inst.name,
                scope,
                fetched = batch.incidents.len(),
                added,
                more = batch.more,
                "fetch step committed"
            );
            // A step that moved nothing cannot make progress by repeating now.
            let stalled = batch.incidents.is_empty() && cursor.as_ref() == Some(&batch.cursor);
            if !batch.more
                || stalled
                || cycle.steps == Steps::One
                || *cycle.stop.borrow()
                || taken >= MAX_STEPS_PER_CYCLE
            {
                return Ok(taken);
            }
        }
    }

    /// Runs every instance with `fetch = true` on its interval until `stop` turns true, at most
    /// `concurrency` cycles at a time. After a failure the wait doubles, up to 15 minutes.
    pub async fn serve(self: Arc<Self>, concurrency: usize, stop: watch::Receiver<bool>) {
        // Shared work: say this process is here, and how many are, before taking any.
        let keeper = match &self.sharing {
            Some(sharing) => {
                if let Err(error) = sharing.tick().await {
                    tracing::warn!(%error, "cannot join the other processes; retrying");
                }
                Some(tokio::spawn(sharing.clone().keep(stop.clone())))
            }
            None => None,
        };
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let names: Vec<String> = self
            .runner
            .fetching_instances()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let fetching = names.len();
        let tasks: Vec<_> = names
            .into_iter()
            .map(|name| {
                let (engine, permits, mut stop) = (self.clone(), permits.clone(), stop.clone());
                tokio::spawn(async move {
                    let interval = engine.runner.instance(&name).map(|i| i.fetch.interval).unwrap_or(watchfloor_core::config::DEFAULT_FETCH_INTERVAL);
                    let mut failures: u32 = 0;
                    while !*stop.borrow() {
                        let outcome = {
                            let _permit = permits.acquire().await;
                            let fetched = engine.cycle(&name, Steps::UntilCaughtUp, &|_| {}, &stop).await;
                            match engine.sync(&name).await {
                                Ok(s) if s != SyncReport::default() => tracing::info!(instance = %name, pushed = s.pushed, pulled = s.pulled, pending = s.pending, unreadable = s.unreadable, "mirroring cycle done"),
                                Ok(_) => {}
                                Err(error) => tracing::warn!(instance = %name, %error, "mirroring cycle failed"),
                            }
                            fetched
                        };
                        let wait = match outcome {
                            Ok(report) => {
                                failures = 0;
                                tracing::info!(instance = %name, new = report.new_incidents, steps = report.steps, "fetch cycle done");
                                interval
                            }
                            Err(error) => {
                                failures += 1;
                                tracing::warn!(instance = %name, %error, failures, "fetch cycle failed");
                                interval.saturating_mul(1 << (failures - 1).min(10)).min(MAX_BACKOFF.max(interval))
                            }
                        };
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = stop.changed() => {}
                        }
                    }
                })
            })
            .collect();
        // Instances that do not fetch still mirror the incidents they have: a change made here
        // goes out, and the provider's come in, on the instance's interval.
        let sync_only: Vec<String> = self
            .runner
            .instance_names()
            .into_iter()
            .filter(|n| !self.runner.fetching_instances().contains(n))
            .filter(|n| {
                self.runner
                    .mirror_of(n)
                    .is_some_and(|m| m.incoming() || m.outgoing())
            })
            .map(str::to_string)
            .collect();
        if fetching == 0 && sync_only.is_empty() {
            tracing::warn!("no instance has fetch = true or mirrors; nothing to schedule");
        }
        let sync_tasks: Vec<_> = sync_only
            .into_iter()
            .map(|name| {
                let (engine, permits, mut stop) = (self.clone(), permits.clone(), stop.clone());
                tokio::spawn(async move {
                    let interval = engine
                        .runner
                        .instance(&name)
                        .map(|i| i.fetch.interval)
                        .unwrap_or(watchfloor_core::config::DEFAULT_FETCH_INTERVAL);
                    while !*stop.borrow() {
                        {
                            let _permit = permits.acquire().await;
                            match engine.sync(&name).await {
                                Ok(s) if s != SyncReport::default() => tracing::info!(instance = %name, pushed = s.pushed, pulled = s.pulled, pending = s.pending, unreadable = s.unreadable, "mirroring cycle done"),
                                Ok(_) => {}
                                Err(error) => tracing::warn!(instance = %name, %error, "mirroring cycle failed"),
                            }
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(interval) => {}
                            _ = stop.changed() => {}
                        }
                    }
                })
            })
            .collect();
        // On a stop, work in flight has STOP_GRACE to end; then it is cut short (requests and
        // retry waits dropped, an open transaction rolled back), so nothing half done is
        // stored, and the leases are given back at once for another process to carry on.
        let mut handles: Vec<_> = tasks.into_iter().chain(sync_tasks).collect();
        let mut stopping = stop.clone();
        let grace = async move {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(STOP_GRACE).await;
        };
        let ended = tokio::select! {
            _ = futures_util::future::join_all(handles.iter_mut()) => true,
            _ = grace => false,
        };
        if !ended {
            tracing::info!(grace = ?STOP_GRACE, "stopping: work still in flight is cut short; nothing half done is stored");
            // A task already joined above is not polled again.
            let running: Vec<_> = handles.into_iter().filter(|h| !h.is_finished()).collect();
            for h in &running {
                h.abort();
            }
            for h in running {
                let _ = h.await;
            }
        }
        if let (Some(keeper), Some(sharing)) = (keeper, &self.sharing) {
            keeper.abort();
            let _ = keeper.await;
            sharing.leave().await;
        }
    }
}
