//! Work sharing between `serve` processes on one database. Each fetch scope (an instance, or
//! one broker organization) and each instance's mirroring is a lease that one process holds at
//! a time. A process takes no more than its fair share (the work divided by the live
//! processes), gives back what it holds beyond it, and renews what it keeps every third of the
//! lease period. A process that dies stops renewing, so its leases expire and the others take
//! them over; one that was paused past its lease finds, when it wakes, that its commits are
//! refused (the lease's fencing token has grown).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use watchfloor_storage::{Lease, ProcessInfo, Store, StoreError};

/// The lease period when the config does not say.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The two kinds of shared work; each is divided on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Fetch,
    Sync,
}

impl Work {
    fn prefix(self) -> &'static str {
        match self {
            Work::Fetch => "fetch:",
            Work::Sync => "sync:",
        }
    }
}

/// The lease key of a fetch scope.
pub fn fetch_key(instance: &str, scope: &str) -> String {
    if scope.is_empty() {
        format!("fetch:{instance}")
    } else {
        format!("fetch:{instance}/{scope}")
    }
}

/// The leases held now, by key: each holder, and how long its lease has left. A process that
/// does not share the work (`watchfloor fetch`, `watchfloor sync`) leaves these alone.
pub(crate) async fn held_now(
    store: &dyn Store,
) -> Result<HashMap<String, (String, Duration)>, StoreError> {
    let cluster = store.cluster().await?;
    Ok(cluster
        .leases
        .into_iter()
        .filter(|l| l.expires_ms > cluster.now_ms)
        .map(|l| {
            let left = Duration::from_millis((l.expires_ms - cluster.now_ms) as u64);
            (l.scope, (l.holder, left))
        })
        .collect())
}

/// The lease key of an instance's mirroring.
pub fn sync_key(instance: &str) -> String {
    format!("sync:{instance}")
}

#[derive(Default)]
struct State {
    held: HashMap<String, Lease>,
    /// Leases whose work is under way: never given back in the middle.
    busy: HashSet<String>,
    /// Live processes, this one included, at the last heartbeat.
    live: usize,
    /// This process's place among them (by start), which decides who takes the remainder
    /// when the work does not divide evenly.
    rank: usize,
    /// How many fetch scopes each instance has, as its last cycle found.
    fetch_scopes: HashMap<String, usize>,
    /// Instances that mirror.
    sync_targets: HashSet<String>,
    /// Leases being asked for, by kind: counted against the share while the database answers,
    /// so that many claims at once cannot take more than it.
    asking: HashMap<&'static str, usize>,
}

/// This process's part in the sharing.
pub struct Sharing {
    store: Arc<dyn Store>,
    me: ProcessInfo,
    period: Duration,
    state: Mutex<State>,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl Sharing {
    pub fn new(store: Arc<dyn Store>, period: Duration) -> Self {
        let host = host();
        let pid = std::process::id();
        let salt = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Sharing {
            store,
            me: ProcessInfo {
                id: format!("{host}-{pid}-{:04x}", salt & 0xffff),
                host,
                pid: pid.into(),
                started_ms: 0,
                seen_ms: 0,
            },
            period,
            state: Mutex::new(State {
                live: 1,
                ..State::default()
            }),
        }
    }

    /// This process's id, as `cluster status` shows it.
    pub fn id(&self) -> &str {
        &self.me.id
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes how many fetch scopes an instance has (its share is counted from them).
    pub fn set_fetch_scopes(&self, instance: &str, n: usize) {
        self.state().fetch_scopes.insert(instance.to_string(), n);
    }

    /// Notes that an instance mirrors.
    pub fn add_sync_target(&self, instance: &str) {
        self.state().sync_targets.insert(instance.to_string());
    }

    /// The most leases of `kind` this process should hold: the work divided by the live
    /// processes, one more for the first of them while a remainder is left, so that the shares
    /// add up to the work.
    fn share(state: &State, kind: Work) -> usize {
        let total: usize = match kind {
            Work::Fetch => state.fetch_scopes.values().sum(),
            Work::Sync => state.sync_targets.len(),
        };
        let live = state.live.max(1);
        total / live + usize::from(state.rank < total % live)
    }

    fn held(state: &State, kind: Work) -> usize {
        state
            .held
            .keys()
            .filter(|k| k.starts_with(kind.prefix()))
            .count()
    }

    /// Leases of `kind` held or being asked for.
    fn taken(state: &State, kind: Work) -> usize {
        Self::held(state, kind) + state.asking.get(kind.prefix()).copied().unwrap_or(0)
    }

    /// The lease on `key` if this process should do that work now: one it holds, or a free or
    /// expired one while it holds less than its share. The work is then busy until
    /// [`Sharing::done`].
    pub async fn claim(&self, kind: Work, key: &str) -> Option<Lease> {
        {
            let mut state = self.state();
            if let Some(lease) = state.held.get(key).cloned() {
                state.busy.insert(key.to_string());
                return Some(lease);
            }
            if Self::taken(&state, kind) >= Self::share(&state, kind) {
                return None;
            }
            *state.asking.entry(kind.prefix()).or_default() += 1;
        }
        let asked = self
            .store
            .acquire_lease(key, &self.me.id, self.period)
            .await;
        if let Some(n) = self.state().asking.get_mut(kind.prefix()) {
            *n = n.saturating_sub(1);
        }
        match asked {
            Ok(Some(lease)) => {
                let mut state = self.state();
                state.held.insert(key.to_string(), lease.clone());
                state.busy.insert(key.to_string());
                tracing::debug!(process = %self.me.id, key, token = lease.token, "lease taken");
                Some(lease)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(key, %error, "cannot take a lease");
                None
            }
        }
    }

    /// Claims, one after another, the work under each of `keys` (see [`Sharing::claim`]):
    /// the leases, in the order of `keys`, of what this process should do now. Asking one at a
    /// time, from a place in the list that differs between processes, lets processes that
    /// start together divide the list rather than race for its head.
    pub async fn claim_each(&self, kind: Work, keys: &[String]) -> Vec<Option<Lease>> {
        let mut leases = vec![None; keys.len()];
        let start = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            h.write(self.me.id.as_bytes());
            (h.finish() as usize) % keys.len().max(1)
        };
        for n in 0..keys.len() {
            let i = (start + n) % keys.len();
            leases[i] = self.claim(kind, &keys[i]).await;
        }
        leases
    }

    /// The last moment at which work under `key` may send a change to a provider: a quarter
    /// of the lease period before the lease, as last renewed, runs out (the request's time on
    /// the way), or now if this process no longer holds it. After it, another process may
    /// hold the lease and send the same change: the database fences commits, but a provider
    /// cannot fence requests, so a change is not sent late.
    pub fn send_by(&self, key: &str) -> std::time::Instant {
        let now = std::time::Instant::now();
        match self.state().held.get(key) {
            Some(lease) => lease
                .valid_until
                .checked_sub(self.period / 4)
                .unwrap_or(now),
            None => now,
        }
    }

    /// The work under `key` is over for now.
    pub fn done(&self, key: &str) {
        self.state().busy.remove(key);
    }

    /// The lease on `key` passed to another process.
    pub fn lost(&self, key: &str) {
        let mut state = self.state();
        state.busy.remove(key);
        if state.held.remove(key).is_some() {
            tracing::info!(process = %self.me.id, key, "lease lost to another process");
        }
    }

    /// Says this process is alive, learns how many are, renews the leases it keeps and gives
    /// back those beyond its share.
    pub async fn tick(&self) -> Result<(), StoreError> {
        let live = self.store.heartbeat(&self.me, self.period).await?;
        let mine: Vec<Lease> = {
            let mut state = self.state();
            state.live = live.len().max(1);
            state.rank = live
                .iter()
                .position(|p| p.id == self.me.id)
                .unwrap_or(live.len());
            state.held.values().cloned().collect()
        };
        for lease in mine {
            match self
                .store
                .acquire_lease(&lease.scope, &self.me.id, self.period)
                .await?
            {
                Some(renewed) if renewed.token == lease.token => {
                    // The same lease, for longer.
                    let mut state = self.state();
                    if let Some(held) = state.held.get_mut(&lease.scope) {
                        held.valid_until = renewed.valid_until;
                    }
                }
                Some(renewed) => {
                    // Another process held it meanwhile: what was under way is fenced off.
                    let mut state = self.state();
                    state.held.insert(lease.scope.clone(), renewed);
                    state.busy.remove(&lease.scope);
                }
                None => self.lost(&lease.scope),
            }
        }
        for kind in [Work::Fetch, Work::Sync] {
            let excess: Vec<Lease> = {
                let state = self.state();
                let extra = Self::held(&state, kind).saturating_sub(Self::share(&state, kind));
                state
                    .held
                    .iter()
                    .filter(|(k, _)| k.starts_with(kind.prefix()) && !state.busy.contains(*k))
                    .map(|(_, l)| l.clone())
                    .take(extra)
                    .collect()
            };
            for lease in excess {
                self.state().held.remove(&lease.scope);
                self.store.release_lease(&lease).await?;
                tracing::debug!(process = %self.me.id, key = %lease.scope, "lease given back");
            }
        }
        Ok(())
    }

    /// Ticks every third of the lease period until `stop`.
    pub async fn keep(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "cannot renew leases");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.period / 3) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Gives every lease back at once, for the other processes, on the way out.
    pub async fn leave(&self) {
        self.state().held.clear();
        if let Err(error) = self.store.leave(&self.me.id).await {
            tracing::warn!(%error, "cannot give back leases on the way out");
        }
    }
}
