//! Covalence appliance REST API simulator (Covalence for Security Providers), over HTTPS.
//!
//! Two servers share the data: a **direct** appliance, and a **broker** whose `/index` page links
//! organizations to appliances (`/index/{cov_id}`; one organization has two). Visiting
//! `/index/{cov_id}` sets a route cookie that sends the session's requests to that appliance.
//! Under `/CovalenceWebUI/services`: a form login that sets a `JSESSIONID` cookie (401 without a
//! valid one; sessions can expire), alerts, sensors, connection summaries, DNS resolutions,
//! internal networks (GET and PUT), endpoint agents, processes, software and health, with
//! `maxCount`/`initialIndex` paging and `advancedFilter` (`field=value`, value optionally quoted).

mod routes;
mod scenario;
mod seed;

use routes::*;
pub(crate) use scenario::launch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDateTime;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::FIELD_EFFECT_SEVERITIES;
use crate::SimOptions;
use watchfloor_core::xml::escape;

use crate::api::ApiError;
use crate::faults::{self, FaultSpec, Faults};
use crate::rng::Rng;
use crate::server::Servers;
use crate::tls::SimCa;

const SERVICES: &str = "/CovalenceWebUI/services";
const SESSION_COOKIE: &str = "JSESSIONID";
const ROUTE_COOKIE: &str = "COVALENCE_ROUTE";
const MAX_PAGE: usize = 500;
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";
/// 2024-05-01T00:00:00Z: seeded alerts are created from here on.
const BASE_EPOCH: i64 = 1_714_521_600;

/// Seed, size and credentials of the Covalence simulator.
#[derive(Debug, Clone)]
pub struct CovalenceSecurityProvidersSetup {
    pub alerts_per_appliance: usize,
    pub username: String,
    pub password: String,
    /// Sessions older than this get 401; `None` keeps them until [`CovalenceSecurityProvidersSimulator::expire_sessions`].
    pub session_ttl: Option<Duration>,
    /// Organizations behind the broker: the first three are Globex, Initech (two appliances)
    /// and Soylent & Sons <Foods>; more are `Org NNN` with one appliance each.
    pub broker_orgs: usize,
}

impl Default for CovalenceSecurityProvidersSetup {
    fn default() -> Self {
        CovalenceSecurityProvidersSetup {
            alerts_per_appliance: 12,
            username: "analyst".into(),
            password: "sim-covalence-password".into(),
            session_ttl: None,
            broker_orgs: 3,
        }
    }
}

/// The organization the direct appliance monitors.
pub(crate) const DIRECT_ORG: &str = APPLIANCES[0].1;

/// Appliances and the organizations they monitor: (cov_id, organization). The first is the
/// direct appliance; the rest sit behind the broker, and Initech has two.
const APPLIANCES: [(&str, &str); 5] = [
    ("2019-004-DA", "Acme"),
    ("2019-004-AA", "Globex"),
    ("2019-004-AB", "Initech"),
    ("2019-004-AC", "Initech"),
    ("2019-004-AD", "Soylent & Sons <Foods>"),
];

/// A running Covalence simulator: a direct appliance and a broker, both HTTPS.
pub struct CovalenceSecurityProvidersSimulator {
    /// `host` of the direct instance, e.g. `https://127.0.0.1:4431`.
    pub direct_url: String,
    /// `host` of the broker instance.
    pub broker_url: String,
    /// PEM of the CA that signed both servers' certificates.
    pub ca_pem: String,
    pub username: String,
    pub password: String,
    pub faults: Faults,
    state: Shared,
    /// Held so the servers stop when the simulator is dropped.
    _servers: Servers,
}

type Shared = Arc<Mutex<CovState>>;

struct Appliance {
    cov_id: String,
    org: String,
    logins: usize,
    collections: HashMap<&'static str, Vec<Value>>,
}

struct CovState {
    username: String,
    password: String,
    session_ttl: Option<Duration>,
    appliances: Vec<Appliance>,
    /// Session token -> (appliance index, created).
    sessions: HashMap<String, (usize, Instant)>,
    rng: Rng,
    /// Alert id -> when it becomes visible (epoch seconds), for alerts added late.
    visible_at: HashMap<String, i64>,
    late_arrival: i64,
}

#[derive(Clone)]
struct App {
    state: Shared,
    /// The appliance this server is, for the direct server; `None` for the broker.
    direct: Option<usize>,
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, CovState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl CovalenceSecurityProvidersSimulator {
    pub async fn start(opts: SimOptions<CovalenceSecurityProvidersSetup>) -> std::io::Result<Self> {
        let direct = TcpListener::bind("127.0.0.1:0").await?;
        let broker = TcpListener::bind("127.0.0.1:0").await?;
        let ca = SimCa::new("Covalence").map_err(std::io::Error::other)?;
        let direct_url = format!("https://{}", direct.local_addr()?);
        let broker_url = format!("https://{}", broker.local_addr()?);
        let faults = Faults::default();
        faults.set(opts.faults.clone());
        let state = Arc::new(Mutex::new(CovState::seeded(&opts)));
        let direct_app = router(
            App {
                state: state.clone(),
                direct: Some(0),
            },
            &faults,
        );
        let broker_app = router(
            App {
                state: state.clone(),
                direct: None,
            },
            &faults,
        );
        let direct_listener = ca.listener(direct).map_err(std::io::Error::other)?;
        let broker_listener = ca.listener(broker).map_err(std::io::Error::other)?;
        let mut servers = Servers::default();
        servers.spawn(direct_listener, direct_app);
        servers.spawn(broker_listener, broker_app);
        if let Some(every) = opts.generate_every {
            let state = state.clone();
            servers.every(every, move |n| {
                lock(&state).add_alert(n, &format!("Generated alert {n}"));
            });
        }
        Ok(CovalenceSecurityProvidersSimulator {
            direct_url,
            broker_url,
            ca_pem: ca.ca_pem,
            username: opts.setup.username,
            password: opts.setup.password,
            faults,
            state,
            _servers: servers,
        })
    }

    /// Logins so far at the appliance `cov_id`.
    pub fn logins(&self, cov_id: &str) -> usize {
        lock(&self.state)
            .appliances
            .iter()
            .filter(|a| a.cov_id == cov_id)
            .map(|a| a.logins)
            .sum()
    }

    /// Ends every session, as an appliance restart would.
    pub fn expire_sessions(&self) {
        lock(&self.state).sessions.clear();
    }

    /// A collection of an appliance (`alerts`, `sensors`, `internal_networks`, …), as stored.
    pub fn collection(&self, cov_id: &str, name: &str) -> Vec<Value> {
        let s = lock(&self.state);
        s.appliances
            .iter()
            .find(|a| a.cov_id == cov_id)
            .and_then(|a| a.collections.get(name).cloned())
            .unwrap_or_default()
    }

    /// Adds an alert created now to the appliance `cov_id`; returns it.
    pub fn add_alert(&self, cov_id: &str, title: &str) -> Value {
        let mut s = lock(&self.state);
        let index = s
            .appliances
            .iter()
            .position(|a| a.cov_id == cov_id)
            .unwrap_or(0);
        s.add_alert(index, title)
    }

    /// Adds an alert made at `created` to the appliance `cov_id`, shown `visible_after` later
    /// (the known times that reports are tested against); returns it.
    pub fn add_alert_timed(
        &self,
        cov_id: &str,
        title: &str,
        created: chrono::DateTime<chrono::Utc>,
        visible_after: std::time::Duration,
    ) -> Value {
        let mut s = lock(&self.state);
        let index = s
            .appliances
            .iter()
            .position(|a| a.cov_id == cov_id)
            .unwrap_or(0);
        s.add_alert_at(
            index,
            title,
            created.timestamp(),
            visible_after.as_secs() as i64,
        )
    }

    /// Appliance ids and organizations: the direct appliance first, then the broker's.
    /// Changes an alert "on the provider side": `fields` replace its own. False if no
    /// appliance has it.
    pub fn update_alert(&self, id: &str, fields: serde_json::Map<String, Value>) -> bool {
        let mut s = lock(&self.state);
        for appliance in &mut s.appliances {
            if let Some(alert) = appliance
                .collections
                .get_mut("alerts")
                .and_then(|list| list.iter_mut().find(|a| a["id"] == id))
            {
                for (k, v) in fields {
                    alert[k] = v;
                }
                return true;
            }
        }
        false
    }

    pub fn appliances(&self) -> Vec<(String, String)> {
        lock(&self.state)
            .appliances
            .iter()
            .map(|a| (a.cov_id.clone(), a.org.clone()))
            .collect()
    }
}
