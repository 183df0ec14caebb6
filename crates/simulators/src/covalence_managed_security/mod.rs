//! FES Portal and Broker simulator (Covalence Managed Security).
//!
//! Portal: bearer auth, `/my_providers`, organizations and their details (active response
//! profile, key contacts, language), paged escalation contact lists, AROs with the filters
//! resolution, status, type, id, organization_id, since and until (newest first, paged), ARO
//! transitions and comments. Broker: `/ping`, organizations, and host, ARO and cloud actions.
//! Data is seeded and deterministic; `/_sim/faults` switches faults, `/_sim/aros` adds an ARO.

mod routes;
mod scenario;
mod seed;

/// The seeded organizations, in order.
pub use seed::ORG_NAMES;

use routes::*;
pub(crate) use scenario::launch;
use seed::*;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{NaiveDateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::FIELD_EFFECT_SEVERITIES;
use crate::SimOptions;
use crate::api::{ApiError, ApiResult};
use crate::faults::{self, FaultSpec, Faults};
use crate::rng::Rng;
use crate::server::Servers;

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
const RESOLUTIONS: [&str; 4] = ["Unresolved", "Help Requested", "Resolved", "Dismissed"];
const STATUSES: [&str; 3] = ["In Triage", "Open", "Closed"];
const ENDPOINT_ACTIONS: [&str; 7] = [
    "isolate",
    "unisolate",
    "shutdown",
    "restart",
    "defender_quick_scan",
    "defender_full_scan",
    "defender_signature_update",
];
const CLOUD_ACTIONS: [&str; 3] = ["disable_user", "enable_user", "revoke_sessions"];

/// Seed and size of the simulated data.
#[derive(Debug, Clone)]
pub struct CovalenceManagedSecuritySetup {
    pub orgs: usize,
    pub aros_per_org: usize,
    /// Minutes between one seeded ARO's creation and the next's, from 2024-05-01 08:00 UTC
    /// (a few more at random): 37 by default. Many AROs need fewer, or the newest are created
    /// in the future, which no fetch reads yet.
    pub minutes_apart: i64,
    /// The API key the simulator accepts.
    pub api_key: String,
}

impl Default for CovalenceManagedSecuritySetup {
    fn default() -> Self {
        CovalenceManagedSecuritySetup {
            orgs: 3,
            aros_per_org: 4,
            minutes_apart: 37,
            api_key: "sim-fes-api-key".to_string(),
        }
    }
}

/// A running FES Portal and Broker. Dropping it stops both servers.
pub struct CovalenceManagedSecuritySimulator {
    pub portal_url: String,
    pub broker_url: String,
    pub api_key: String,
    pub faults: Faults,
    state: Shared,
    /// Held so the servers stop when the simulator is dropped.
    _servers: Servers,
}

type Shared = Arc<Mutex<FesState>>;

struct FesState {
    api_key: String,
    provider: Value,
    orgs: Vec<Value>,
    aros: Vec<Value>,
    /// Where each ARO is in `aros`, by its ID: a portal answers `id=` without a scan.
    by_id: std::collections::HashMap<String, usize>,
    comments: Vec<Value>,
    escalation_lists: Vec<Value>,
    rng: Rng,
    next_serial: u64,
    next_task: u64,
    late_arrival: TimeDelta,
    /// Every transition applied: the ARO and the resolution it got.
    transitions: Vec<(String, String)>,
}

#[derive(Clone)]
struct AppState {
    state: Shared,
    faults: Faults,
}

impl CovalenceManagedSecuritySimulator {
    /// Starts portal and broker on loopback, each on a free port.
    pub async fn start(opts: SimOptions<CovalenceManagedSecuritySetup>) -> std::io::Result<Self> {
        let portal = TcpListener::bind("127.0.0.1:0").await?;
        let broker = TcpListener::bind("127.0.0.1:0").await?;
        Ok(Self::serve(opts, portal, broker))
    }

    /// Serves on listeners the caller bound.
    pub fn serve(
        opts: SimOptions<CovalenceManagedSecuritySetup>,
        portal: TcpListener,
        broker: TcpListener,
    ) -> Self {
        let portal_url = format!("http://{}/v1", portal.local_addr().expect("bound listener"));
        let broker_url = format!("http://{}", broker.local_addr().expect("bound listener"));
        let faults = Faults::default();
        faults.set(opts.faults.clone());
        let state = Arc::new(Mutex::new(FesState::seeded(&opts)));
        let app = AppState {
            state: state.clone(),
            faults: faults.clone(),
        };
        let faults_layer = middleware::from_fn_with_state(faults.clone(), faults::layer);
        let portal_router = control_routes(app.clone())
            .nest("/v1", portal_routes(app.clone()))
            .layer(faults_layer.clone());
        let broker_router = control_routes(app.clone())
            .merge(broker_routes(app))
            .layer(faults_layer);
        let mut servers = Servers::default();
        servers.spawn(portal, portal_router);
        servers.spawn(broker, broker_router);
        if let Some(every) = opts.generate_every {
            let state = state.clone();
            servers.every(every, move |n| {
                let mut s = lock(&state);
                let orgs = s.orgs.len().max(1);
                s.new_aro(
                    n % orgs,
                    &format!("Generated alert {n}"),
                    Utc::now().naive_utc(),
                );
            });
        }
        CovalenceManagedSecuritySimulator {
            portal_url,
            broker_url,
            api_key: opts.setup.api_key,
            faults,
            state,
            _servers: servers,
        }
    }

    /// Every ARO ever created, visible yet or not, newest first: the ground truth.
    pub fn aros(&self) -> Vec<Value> {
        let mut aros = lock(&self.state).aros.clone();
        sort_newest_first(&mut aros);
        aros
    }

    /// All organizations (detail objects).
    pub fn orgs(&self) -> Vec<Value> {
        lock(&self.state).orgs.clone()
    }

    /// Comments stored for an ARO.
    pub fn comments(&self, aro_id: &str) -> Vec<Value> {
        lock(&self.state)
            .comments
            .iter()
            .filter(|c| c["aro_id"] == aro_id)
            .cloned()
            .collect()
    }

    /// Adds a new unresolved ARO to an organization, created now; returns it.
    pub fn add_aro(&self, org_index: usize, title: &str) -> Value {
        self.add_aro_with(org_index, title, Map::new())
    }

    /// The resolutions transitions applied to an ARO, in order (requests cut off before the
    /// portal acted are not among them).
    pub fn transitions(&self, aro_id: &str) -> Vec<String> {
        lock(&self.state)
            .transitions
            .iter()
            .filter(|(id, _)| id == aro_id)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Changes an ARO "on the provider side", as an analyst in the portal would: `fields`
    /// replace its own, and its `last_updated_time` moves to now. Returns it, if it exists.
    pub fn update_aro(&self, id: &str, fields: Map<String, Value>) -> Option<Value> {
        let mut s = lock(&self.state);
        let aro = s.aro_mut(id)?;
        for (k, v) in fields {
            aro[k] = v;
        }
        aro["last_updated_time"] = json!(ts(Utc::now().naive_utc()));
        Some(aro.clone())
    }

    /// Adds an ARO made at `created` that the portal shows `visible_after` later and, with
    /// `resolved`, that was resolved there at a set time (`Resolved` or `Dismissed`): the
    /// known times of a report's figures. Returns it as stored.
    pub fn add_aro_timed(
        &self,
        org_index: usize,
        title: &str,
        created: chrono::DateTime<Utc>,
        visible_after: std::time::Duration,
        resolved: Option<(chrono::DateTime<Utc>, &str)>,
    ) -> Value {
        let mut s = lock(&self.state);
        let aro = s.new_aro(org_index, title, created.naive_utc());
        let mut fields = Map::new();
        let mut data = aro["data"].clone();
        data["visible_at"] =
            json!(ts(created.naive_utc()
                + TimeDelta::from_std(visible_after)
                    .unwrap_or(TimeDelta::zero())));
        fields.insert("data".into(), data);
        if let Some((at, resolution)) = resolved {
            fields.insert("resolution".into(), json!(resolution));
            fields.insert("status".into(), json!("Closed"));
            fields.insert("last_updated_time".into(), json!(ts(at.naive_utc())));
            fields.insert("resolution_time".into(), json!(ts(at.naive_utc())));
        }
        s.override_aro(&aro, fields)
    }

    /// Resolves an ARO "on the provider side" at a set time (`Resolved` or `Dismissed`), as
    /// the portal's analysts would; returns it, if it exists.
    pub fn resolve_aro_at(
        &self,
        id: &str,
        at: chrono::DateTime<Utc>,
        resolution: &str,
    ) -> Option<Value> {
        let mut s = lock(&self.state);
        let aro = s.aro_mut(id)?;
        aro["resolution"] = json!(resolution);
        aro["status"] = json!("Closed");
        aro["last_updated_time"] = json!(ts(at.naive_utc()));
        aro["resolution_time"] = json!(ts(at.naive_utc()));
        Some(aro.clone())
    }

    /// Adds a new ARO whose `fields` replace the generated ones (a malformed time, a huge
    /// field, control characters: the hostile modes); returns it as stored.
    pub fn add_aro_with(&self, org_index: usize, title: &str, fields: Map<String, Value>) -> Value {
        let mut s = lock(&self.state);
        let now = Utc::now().naive_utc();
        let aro = s.new_aro(org_index, title, now);
        s.override_aro(&aro, fields)
    }
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, FesState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn ts(t: NaiveDateTime) -> String {
    t.format(TIME_FORMAT).to_string()
}

fn sort_newest_first<T: std::borrow::Borrow<Value>>(aros: &mut [T]) {
    aros.sort_by_cached_key(|v| {
        let v = v.borrow();
        std::cmp::Reverse((
            v["creation_time"].as_str().unwrap_or_default().to_string(),
            v["serial_id"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0),
        ))
    });
}
