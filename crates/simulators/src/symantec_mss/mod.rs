//! Symantec MSS SWS incidents service simulator: SOAP 1.2 at `POST /SWS/incidents.asmx`, over
//! HTTPS that **requires** a client certificate signed by the simulator's CA.
//!
//! Operations: IncidentGetList (StartTimeStampGMT, SourceIP, Severity list, MaxIncidents),
//! IncidentQuery, IncidentWorkflowQuery and UpdateIncidentWorkflow, whose updates change what
//! later queries return. Incidents carry several signatures, comments, attachments and related
//! incidents. Bad input gets a SOAP 1.2 Fault (HTTP 500). With `stray_entities`, some text
//! carries `&nbsp;`-style entities, as the real service has been seen to send.

mod routes;
mod scenario;
mod seed;

use routes::*;
pub(crate) use scenario::launch;
use seed::*;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveDateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use watchfloor_core::xml::{self, Element, escape};

use crate::SimOptions;
use crate::faults::{self, FaultSpec, Faults};
use crate::rng::Rng;
use crate::server::Servers;
use crate::tls::{ClientIdentity, SimCa};

const NS: &str = "https://www.monitoredsecurity.com/";
const SOAP_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// Severities, most severe first.
pub const SEVERITIES: [&str; 4] = ["Emergency", "Critical", "Warning", "Informational"];
pub const STATUSES: [&str; 4] = ["New", "Open", "In Progress", "Closed"];
pub const RESOLUTIONS: [&str; 4] = ["Unresolved", "Resolved", "False Positive", "Duplicate"];
const MAX_INCIDENTS: usize = 500;

/// Seed, size and switches of the SWS simulator.
#[derive(Debug, Clone)]
pub struct SymantecMssSetup {
    pub incidents: usize,
    /// Put undefined `&nbsp;`-style entities into some text.
    pub stray_entities: bool,
    /// Passphrase of the client `.p12` the simulator issues.
    pub passphrase: String,
}

impl Default for SymantecMssSetup {
    fn default() -> Self {
        SymantecMssSetup {
            incidents: 12,
            stray_entities: false,
            passphrase: "sim-p12-passphrase".into(),
        }
    }
}

/// A running SWS simulator.
pub struct SymantecMssSimulator {
    /// The `server` parameter, e.g. `https://127.0.0.1:4433`.
    pub url: String,
    /// PEM of the CA that signed the server and client certificates.
    pub ca_pem: String,
    /// A client identity the server accepts.
    pub client: ClientIdentity,
    /// That identity with the CA as a PKCS#12 file, protected by `passphrase`.
    pub client_p12: Vec<u8>,
    pub passphrase: String,
    pub faults: Faults,
    ca: SimCa,
    state: Shared,
    /// When the first seeded incident was created.
    seeded_from: NaiveDateTime,
    /// Held so the server stops when the simulator is dropped.
    _servers: Servers,
}

type Shared = Arc<Mutex<SwsState>>;

#[derive(Debug, Clone)]
struct Incident {
    number: u64,
    created: NaiveDateTime,
    visible_at: NaiveDateTime,
    updated: NaiveDateTime,
    severity: String,
    category: String,
    classification: String,
    description: String,
    assessment: String,
    source_ip: String,
    country: (String, String),
    dest_org: String,
    signatures: Vec<[String; 5]>,
    related: Vec<u64>,
    status: String,
    resolution: String,
    reference: String,
    assigned_person: String,
    assigned_org: String,
    comments: Vec<(NaiveDateTime, String, String)>,
    attachments: Vec<(u64, String, NaiveDateTime, String, String)>,
}

struct SwsState {
    /// Workflow updates applied.
    updates: usize,
    /// Updates SWS declines: it answers `false` and changes nothing.
    declined_updates: std::collections::HashSet<u64>,
    incidents: Vec<Incident>,
    stray_entities: bool,
    late_arrival: TimeDelta,
}

impl SwsState {
    /// Adds an incident created now, visible after the late-arrival delay; returns its number.
    fn add_incident(&mut self, severity: &str, classification: &str) -> u64 {
        let late = self.late_arrival;
        self.add_incident_at(severity, classification, Utc::now().naive_utc(), late)
    }

    /// Adds an incident created at `created`, visible `late` after; returns its number.
    fn add_incident_at(
        &mut self,
        severity: &str,
        classification: &str,
        created: NaiveDateTime,
        late: TimeDelta,
    ) -> u64 {
        let mut inc = match self.incidents.last() {
            Some(last) => last.clone(),
            None => seeded_incidents(&SimOptions {
                setup: SymantecMssSetup {
                    incidents: 1,
                    ..Default::default()
                },
                ..Default::default()
            })
            .remove(0),
        };
        inc.number += 1;
        inc.created = created;
        inc.visible_at = inc.created + late;
        inc.updated = inc.created;
        inc.severity = severity.to_string();
        inc.classification = classification.to_string();
        inc.comments.clear();
        let number = inc.number;
        self.incidents.push(inc);
        number
    }
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, SwsState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl SymantecMssSimulator {
    pub async fn start(opts: SimOptions<SymantecMssSetup>) -> std::io::Result<Self> {
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://{}", tcp.local_addr()?);
        let ca = SimCa::new("Symantec MSS").map_err(std::io::Error::other)?;
        let client = ca
            .client_identity("watchfloor SWS client")
            .map_err(std::io::Error::other)?;
        let client_p12 = client
            .to_pkcs12(ca.ca_der(), &opts.setup.passphrase)
            .map_err(std::io::Error::other)?;
        let faults = Faults::default();
        faults.set(opts.faults.clone());
        let seeded_from = seed::seeded_from(&opts);
        let state = Arc::new(Mutex::new(SwsState {
            updates: 0,
            declined_updates: Default::default(),
            incidents: seeded_incidents(&opts),
            stray_entities: opts.setup.stray_entities,
            late_arrival: TimeDelta::from_std(opts.late_arrival).unwrap_or(TimeDelta::zero()),
        }));
        let router = router(state.clone(), faults.clone());
        let mut servers = Servers::default();
        servers.spawn(
            ca.mutual_listener(tcp).map_err(std::io::Error::other)?,
            router,
        );
        if let Some(every) = opts.generate_every {
            let state = state.clone();
            servers.every(every, move |n| {
                lock(&state).add_incident(SEVERITIES[n % 3], "Generated incident");
            });
        }
        Ok(SymantecMssSimulator {
            url,
            ca_pem: ca.ca_pem.clone(),
            client,
            client_p12,
            passphrase: opts.setup.passphrase,
            faults,
            ca,
            state,
            seeded_from,
            _servers: servers,
        })
    }

    /// The CA, to issue more client certificates in tests.
    pub fn ca(&self) -> &SimCa {
        &self.ca
    }

    /// Incident numbers, oldest first.
    pub fn incident_numbers(&self) -> Vec<u64> {
        lock(&self.state)
            .incidents
            .iter()
            .map(|i| i.number)
            .collect()
    }

    /// One incident as the workflow query shows it, in `xml2json` shape.
    pub fn incident(&self, number: u64) -> Option<Value> {
        let s = lock(&self.state);
        let inc = s.incidents.iter().find(|i| i.number == number)?;
        xml::parse(&incident_xml(inc, false))
            .ok()
            .map(|e| e.to_json())
    }

    /// Every incident's number, creation time (RFC 3339, UTC) and severity: the ground truth
    /// of fetch tests.
    pub fn summaries(&self) -> Vec<Value> {
        lock(&self.state)
            .incidents
            .iter()
            .map(|i| json!({"IncidentNumber": i.number.to_string(), "TimeCreated": i.created.and_utc().to_rfc3339(), "Severity": i.severity}))
            .collect()
    }

    /// Changes an incident's workflow "on the provider side", as an SOC analyst at Symantec
    /// would: a new status and resolution, and a comment if given. False if there is no such
    /// incident.
    pub fn set_workflow(
        &self,
        number: u64,
        status: &str,
        resolution: &str,
        comment: Option<&str>,
    ) -> bool {
        let mut s = lock(&self.state);
        let Some(inc) = s.incidents.iter_mut().find(|i| i.number == number) else {
            return false;
        };
        let now = Utc::now().naive_utc();
        inc.status = status.to_string();
        inc.resolution = resolution.to_string();
        inc.updated = now;
        if let Some(c) = comment {
            inc.comments
                .push((now, c.to_string(), "SOC analyst".to_string()));
        }
        true
    }

    /// When an incident was last updated, as its `UpdateTimestampGMT` says (to the
    /// millisecond).
    pub fn updated(&self, number: u64) -> Option<chrono::DateTime<Utc>> {
        lock(&self.state)
            .incidents
            .iter()
            .find(|i| i.number == number)
            .map(|i| {
                let ms = i.updated.and_utc().timestamp_millis();
                chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
            })
    }

    /// The comments of an incident, oldest first.
    pub fn comments(&self, number: u64) -> Vec<String> {
        lock(&self.state)
            .incidents
            .iter()
            .find(|i| i.number == number)
            .map(|i| i.comments.iter().map(|c| c.1.clone()).collect())
            .unwrap_or_default()
    }

    /// From now on SWS answers `false` to workflow updates of `number` (or again `true`, with
    /// `decline = false`) and leaves the incident as it is: the answer the reference turned into
    /// an "Update failed" entry.
    pub fn decline_updates(&self, number: u64, decline: bool) {
        let mut s = lock(&self.state);
        if decline {
            s.declined_updates.insert(number);
        } else {
            s.declined_updates.remove(&number);
        }
    }

    /// How many workflow updates were applied (requests cut off before the service acted are
    /// not counted).
    pub fn workflow_updates(&self) -> usize {
        lock(&self.state).updates
    }

    /// Adds a new incident created now; returns its number.
    pub fn add_incident(&self, severity: &str, classification: &str) -> u64 {
        lock(&self.state).add_incident(severity, classification)
    }

    /// Adds an incident created at `created` and shown `visible_after` later (the known times
    /// that reports are tested against); returns its number.
    pub fn add_incident_timed(
        &self,
        severity: &str,
        classification: &str,
        created: chrono::DateTime<Utc>,
        visible_after: std::time::Duration,
    ) -> u64 {
        lock(&self.state).add_incident_at(
            severity,
            classification,
            created.naive_utc(),
            TimeDelta::from_std(visible_after).unwrap_or(TimeDelta::zero()),
        )
    }
}
