//! Covalence appliance REST API simulator (Covalence for Security Providers), over HTTPS.
//!
//! Two servers share the data: a **direct** appliance, and a **broker** whose `/index` page links
//! organizations to appliances (`/index/{cov_id}`; one organization has two). Visiting
//! `/index/{cov_id}` sets a route cookie that sends the session's requests to that appliance.
//! Under `/CovalenceWebUI/services`: a form login that sets a `JSESSIONID` cookie (401 without a
//! valid one; sessions can expire), alerts, sensors, connection summaries, DNS resolutions,
//! internal networks (GET and PUT), endpoint agents, processes, software and health, with
//! `maxCount`/`initialIndex` paging and `advancedFilter` (`field=value`, value optionally quoted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::FIELD_EFFECT_SEVERITIES;
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
pub struct CovalenceOptions {
    pub seed: u64,
    pub alerts_per_appliance: usize,
    pub username: String,
    pub password: String,
    /// Sessions older than this get 401; `None` keeps them until [`CovalenceSimulator::expire_sessions`].
    pub session_ttl: Option<Duration>,
    pub faults: FaultSpec,
    /// Organizations behind the broker: the first three are Globex, Initech (two appliances)
    /// and Soylent & Sons <Foods>; more are `Org NNN` with one appliance each.
    pub broker_orgs: usize,
    /// New alerts become visible this long after their creation time.
    pub late_arrival: Duration,
    /// Add a new alert, to each appliance in turn, this often.
    pub generate_every: Option<Duration>,
}

impl Default for CovalenceOptions {
    fn default() -> Self {
        CovalenceOptions {
            seed: 1,
            alerts_per_appliance: 12,
            username: "analyst".into(),
            password: "sim-covalence-password".into(),
            session_ttl: None,
            faults: FaultSpec::default(),
            broker_orgs: 3,
            late_arrival: Duration::ZERO,
            generate_every: None,
        }
    }
}

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
pub struct CovalenceSimulator {
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

impl CovalenceSimulator {
    pub async fn start(opts: CovalenceOptions) -> std::io::Result<Self> {
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
        Ok(CovalenceSimulator {
            direct_url,
            broker_url,
            ca_pem: ca.ca_pem,
            username: opts.username,
            password: opts.password,
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

    /// Appliance ids and organizations: the direct appliance first, then the broker's.
    pub fn appliances(&self) -> Vec<(String, String)> {
        lock(&self.state)
            .appliances
            .iter()
            .map(|a| (a.cov_id.clone(), a.org.clone()))
            .collect()
    }
}

impl CovState {
    fn seeded(opts: &CovalenceOptions) -> Self {
        let mut rng = Rng::new(opts.seed ^ 0xc0fa_1e4c_e000);
        let extra =
            (4..=opts.broker_orgs).map(|n| (format!("2019-005-{n:03}"), format!("Org {n:03}")));
        let appliances = APPLIANCES
            .iter()
            .map(|(id, org)| (id.to_string(), org.to_string()))
            .chain(extra)
            .enumerate()
            .map(|(i, (cov_id, org))| Appliance {
                cov_id,
                org,
                logins: 0,
                collections: seed_appliance(&mut rng, i, opts.alerts_per_appliance),
            })
            .collect();
        CovState {
            username: opts.username.clone(),
            password: opts.password.clone(),
            session_ttl: opts.session_ttl,
            appliances,
            sessions: HashMap::new(),
            rng,
            visible_at: HashMap::new(),
            late_arrival: opts.late_arrival.as_secs() as i64,
        }
    }

    /// Adds an alert created now to appliance `index`; it shows after the late-arrival delay.
    fn add_alert(&mut self, index: usize, title: &str) -> Value {
        let index = index % self.appliances.len().max(1);
        let now = chrono::Utc::now().timestamp();
        let mut alert = seed_appliance(&mut self.rng, index, 1)
            .remove("alerts")
            .and_then(|mut a| a.pop())
            .unwrap_or_default();
        alert["createdTime"] = json!(now);
        alert["lastAlertedTime"] = json!(now);
        alert["analystTitle"] = json!(title);
        let id = alert["id"].as_str().unwrap_or_default().to_string();
        self.visible_at.insert(id, now + self.late_arrival);
        if let Some(list) = self.appliances[index].collections.get_mut("alerts") {
            list.push(alert.clone());
        }
        alert
    }
}

const ALERT_TITLES: [&str; 6] = [
    "Suspicious scheduled task",
    "Outbound connection to known C2",
    "Port scan from internal host",
    "Brute force against SSH",
    "Unusual DNS volume",
    "Script injection <script>alert(1)</script> | in title",
];
const ALERT_TYPES: [&str; 3] = ["ANALYST GENERIC", "NETWORK", "ENDPOINT"];
const SUB_TYPES: [&str; 3] = ["Analytic", "Signature", "Blacklist"];
const DOMAINS: [&str; 5] = [
    "example.com",
    "login.example.org",
    "evil.example",
    "updates.vendor.example",
    "cdn.example.net",
];
const VENDORS: [&str; 3] = ["Dell Inc.", "LENOVO", "HP"];

fn seed_appliance(rng: &mut Rng, index: usize, alerts: usize) -> HashMap<&'static str, Vec<Value>> {
    let net = 10 + index;
    let ip = |rng: &mut Rng| format!("10.{net}.{}.{}", rng.below(4), 2 + rng.below(250));
    let mut c: HashMap<&'static str, Vec<Value>> = HashMap::new();
    let alert_list = (0..alerts)
        .map(|n| {
            let created = BASE_EPOCH + (index as i64) * 97 + (n as i64) * 600 + rng.below(300) as i64;
            let (src, dst) = (ip(rng), ip(rng));
            let title = ALERT_TITLES[(n + index) % ALERT_TITLES.len()];
            let host = format!("HOST-{}", rng.below(90) + 10);
            json!({
                "id": rng.uuid(), "sensorId": null, "type": ALERT_TYPES[n % 3], "organizationId": null,
                "subType": SUB_TYPES[n % 3], "severity": *rng.pick(&FIELD_EFFECT_SEVERITIES),
                "facility": null, "priority": null, "createdTime": created, "lastAlertedTime": created,
                "title": format!("{} alert", ALERT_TYPES[n % 3]), "notes": null,
                "alertHash": format!("{:016x}", rng.next_u64()), "assignee": null,
                "analystTitle": title, "analystDescription": format!("{title} observed on {host} ({src} -> {dst})."),
                "endpointAgentUuid": null, "pcapResourceUuid": null, "sourceCityName": null, "sourceCountryName": null,
                "destCityName": null, "destCountryName": null, "destIp": dst, "destPort": "443", "protocol": "6",
                "destDomainName": dst, "destCiscoUmbrellaRanking": null, "destMajesticMillionRanking": null,
                "destCiscoUmbrellaTopLevelDomainRanking": null, "destMajesticMillionTopLevelDomainRanking": null,
                "sourceIp": src, "sourcePort": format!("{}", 49152 + rng.below(16000)), "sourceDomainName": src,
                "sourceCiscoUmbrellaRanking": null, "sourceMajesticMillionRanking": null,
                "sourceCiscoUmbrellaTopLevelDomainRanking": null, "sourceMajesticMillionTopLevelDomainRanking": null,
                "sourceGeoX": null, "sourceGeoY": null, "destGeoX": null, "destGeoY": null, "isFavorite": false,
                "alertCount": 1 + rng.below(3), "acknowledgedStatus": if n % 4 == 0 { "Acknowledged" } else { "None" },
                "blacklistDetails": null, "sigEvalDetails": null, "sourceIpAttributes": [], "destIpAttributes": [],
            })
        })
        .collect();
    c.insert("alerts", alert_list);
    let sensors = vec![
        json!({"id": rng.uuid(), "name": "External Sources", "isAuthorized": false, "listeningInterfaces": [],
               "isNetflowGenerator": true, "bytesIn": null, "bytesOut": null, "lastActive": null}),
        json!({"id": rng.uuid(), "name": format!("10.{net}.0.4"), "isAuthorized": true, "listeningInterfaces": ["eth0", "eth1"],
               "isNetflowGenerator": false, "bytesIn": 18_442_001, "bytesOut": 2_100_340, "lastActive": "2024-05-02T10:00:00Z"}),
    ];
    c.insert("sensors", sensors);
    let mut ip_summaries = Vec::new();
    let mut port_summaries = Vec::new();
    for n in 0..6 {
        let (src, dst) = (
            ip(rng),
            if n % 3 == 2 {
                format!("203.0.113.{}", 10 + n)
            } else {
                ip(rng)
            },
        );
        let common = json!({
            "id": rng.uuid(), "sourceId": n, "sourceIpAddress": src, "sourceMacAddress": "00:16:3e:00:00:01",
            "destinationId": n + 100, "destinationIpAddress": dst, "destinationMacAddress": "00:16:3e:00:00:02",
            "bytesIn": 1000 * (n + 1), "bytesOut": 300 * (n + 1), "packetsIn": 10 + n, "packetsOut": 5 + n,
            "continuingConnectionCount": n % 2, "terminatedConnectionCount": 3 + n, "totalDuration": 60 * (n + 1),
            "averageDuration": 20, "sourceCity": null, "sourceCountry": null, "destinationCity": null,
            "destinationCountry": if n % 3 == 2 { json!("Canada") } else { Value::Null },
            "sourceDomainName": src, "dstDomainName": if n % 3 == 2 { json!("cdn.example.net") } else { json!(dst) },
        });
        let mut ip_row = common.clone();
        ip_row["serverPortCount"] = json!(2);
        ip_row["serverPorts"] = json!("53,443");
        ip_row["clientServerRelationship"] = json!(if n % 2 == 0 { "CLIENT" } else { "SERVER" });
        ip_summaries.push(ip_row);
        let mut port_row = common;
        port_row["id"] = json!(rng.uuid());
        port_row["serverPort"] = json!([443, 53, 22][n % 3]);
        port_row["protocol"] = json!("6");
        port_row["startTime"] = json!(format!("2024-05-01T{:02}:00:00.000Z", 8 + n));
        port_row["endTime"] = json!(format!("2024-05-01T{:02}:30:00.000Z", 8 + n));
        port_summaries.push(port_row);
    }
    c.insert("ipsummary", ip_summaries);
    c.insert("portsummary", port_summaries);
    let dns = (0..5)
        .map(|n| {
            json!({"id": rng.uuid(), "domainName": DOMAINS[n],
                   "resolvedIp": format!("203.0.113.{}", 20 + n), "requestOriginIp": ip(rng), "nameserverIp": format!("10.{net}.0.53"),
                   "nodeLabel": "sensor-1", "requestTime": BASE_EPOCH + 3600 * n as i64, "byteCount": 120 + n, "pktCount": 2})
        })
        .collect();
    c.insert("dns", dns);
    c.insert(
        "internal_networks",
        vec![
            json!({"cidr": format!("10.{net}.0.0/24"), "notes": "Office LAN"}),
            json!({"cidr": format!("10.{net}.1.0/24"), "notes": "Servers"}),
        ],
    );
    let users = ["jdoe", "asmith", "bwayne"];
    let agents: Vec<Value> = (0..3)
        .map(|n| {
            json!({"agentUuid": rng.uuid(), "agentVersion": "3.4.1", "firstSeenTime": "2024-03-08 13:57:39",
                   "lastSeenTime": "2024-05-02 09:12:00", "lastSessionUser": users[n], "isMobile": false,
                   "isConnected": n != 2, "coreVersion": "3.4", "coreArchitecture": "x86_64", "coreOs": "windows",
                   "operatingSystem": "Windows 11 Pro", "hostName": format!("WS-{:04}", 100 * (index + 1) + n),
                   "hardwareVendor": VENDORS[n], "hardwareModel": "Latitude 7440", "arch": "x64",
                   "osDistro": null, "osVersion": "10.0.22631", "kernelVersion": null, "operatingSystemReleaseId": "23H2",
                   "ipAddress": ip(rng), "secondaryIpAddress": null, "ipAddresses": [], "serialNumber": format!("SN{:06}", rng.below(1_000_000)),
                   "deviceIdentifier": null, "cpuArchitectureEnum": 1})
        })
        .collect();
    let processes = agents
        .iter()
        .enumerate()
        .flat_map(|(n, a)| {
            ["powershell.exe", "chrome.exe"].iter().enumerate().map(move |(k, name)| {
                json!({"id": (n * 2 + k + 1) as u64, "agentUuid": a["agentUuid"], "processName": name,
                       "processPath": format!("C:\\Windows\\System32\\{name}"), "parentProcessName": "explorer.exe",
                       "parentProcessPath": "C:\\Windows\\explorer.exe", "commandLine": format!("{name} -NoProfile"),
                       "username": a["lastSessionUser"], "firstSeenTime": "2024-05-01T08:00:00.000Z",
                       "lastSeenTime": "2024-05-02T08:00:00.000Z", "lastEndTime": "2024-05-02T08:05:00.000Z",
                       "seenCount": 4, "activeCount": 1})
            })
        })
        .collect();
    let software = agents
        .iter()
        .enumerate()
        .flat_map(|(n, a)| {
            [("7-Zip", "23.01"), ("Google Chrome", "124.0.6367.91")].iter().enumerate().map(move |(k, (name, version))| {
                json!({"arch": 1, "type": 0, "packageManager": 0, "installTimestamp": "2024-01-10T10:00:00.000Z",
                       "uninstallTimestamp": null, "name": name, "version": version, "vendor": "Vendor",
                       "installPath": format!("C:\\Program Files\\{name}"), "appDataPath": null, "sharedDataPath": null,
                       "installedForUser": null, "installSource": null, "id": (n * 2 + k + 1) as u64,
                       "agentUuid": a["agentUuid"], "softwareNotifyAction": null})
            })
        })
        .collect();
    c.insert("agents", agents);
    c.insert("processes", processes);
    c.insert("software", software);
    c
}

fn router(app: App, faults: &Faults) -> Router {
    let services = Router::new()
        .route(
            "/rest/v1/health",
            get(|| async { Json(json!({"status": "OK", "healthy": true, "version": "5.3.1"})) }),
        )
        .route("/rest/v1/alerts", get(alerts))
        .route(
            "/rest/v1/sensors",
            get(|s, h, q| list(s, h, q, "sensors", &[])),
        )
        .route("/rest/v1/sensors/{id}", get(sensor))
        .route(
            "/rest/v1/connections/ipsummary",
            get(|s, h, q| connections(s, h, q, "ipsummary")),
        )
        .route(
            "/rest/v1/connections/portsummary",
            get(|s, h, q| connections(s, h, q, "portsummary")),
        )
        .route(
            "/rest/v1/dns/resolutions",
            get(|s, h, q| {
                list(
                    s,
                    h,
                    q,
                    "dns",
                    &[
                        ("domainName", "domainName"),
                        ("resolvedIp", "resolvedIp"),
                        ("requestOriginIp", "requestOriginIp"),
                        ("nameserverIp", "nameserverIp"),
                    ],
                )
            }),
        )
        .route(
            "/rest/v1/internal_networks",
            get(|s, h, q| list(s, h, q, "internal_networks", &[])).put(put_networks),
        )
        .route(
            "/rest/v2/endpoint/agent/agents",
            get(|s, h, q| list(s, h, q, "agents", &[])),
        )
        .route(
            "/rest/v2/endpoint/process/search",
            get(|s, h, q| list(s, h, q, "processes", &[("name", "processName")])),
        )
        .route(
            "/rest/v2/endpoint/software/search",
            get(|s, h, q| {
                list(
                    s,
                    h,
                    q,
                    "software",
                    &[("name", "name"), ("version", "version")],
                )
            }),
        )
        .route_layer(middleware::from_fn_with_state(
            (app.clone(), faults.clone()),
            require_session,
        ))
        .route("/rest/login", post(login));
    let mut router = Router::new().nest(SERVICES, services);
    if app.direct.is_none() {
        router = router
            .route("/index", get(index))
            .route("/index/{cov_id}", get(select_appliance));
    }
    router
        .route("/_sim/faults", get(get_faults).post(set_faults))
        .route("/_sim/expire_sessions", post(expire))
        .layer(middleware::from_fn_with_state(
            faults.clone(),
            faults::layer,
        ))
        .with_state((app, faults.clone()))
}

type AppState = (App, Faults);

async fn get_faults(State((_, faults)): State<AppState>) -> Json<FaultSpec> {
    Json(faults.get())
}

async fn set_faults(
    State((_, faults)): State<AppState>,
    Json(spec): Json<FaultSpec>,
) -> Json<FaultSpec> {
    faults.set(spec);
    Json(faults.get())
}

async fn expire(State((app, _)): State<AppState>) -> StatusCode {
    lock(&app.state).sessions.clear();
    StatusCode::NO_CONTENT
}

fn text_error(status: StatusCode, message: &str) -> ApiError {
    ApiError {
        status,
        field: "message",
        message: message.to_string(),
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The appliance a request is for: the direct one, or the broker route cookie's.
fn appliance_for(app: &App, s: &CovState, headers: &HeaderMap) -> Result<usize, ApiError> {
    if let Some(i) = app.direct {
        return Ok(i);
    }
    let route = cookie(headers, ROUTE_COOKIE).ok_or_else(|| {
        text_error(
            StatusCode::BAD_REQUEST,
            "No appliance selected: visit /index/{cov_id} first",
        )
    })?;
    s.appliances
        .iter()
        .position(|a| a.cov_id == route)
        .ok_or_else(|| text_error(StatusCode::NOT_FOUND, &format!("Unknown appliance {route}")))
}

async fn index(State((app, _)): State<AppState>) -> Html<String> {
    let s = lock(&app.state);
    let links: String = s
        .appliances
        .iter()
        .skip(1)
        .map(|a| {
            format!(
                "<p><a href=\"/index/{}\">{}</a>\n",
                a.cov_id,
                escape(&a.org)
            )
        })
        .collect();
    Html(format!(
        "<html><head><title>Select Covalence</title></head><body><h1>Select Covalence</h1>\n{links}</body></html>"
    ))
}

async fn select_appliance(
    State((app, _)): State<AppState>,
    Path(cov_id): Path<String>,
) -> Response {
    let s = lock(&app.state);
    if !s.appliances.iter().skip(1).any(|a| a.cov_id == cov_id) {
        return (
            StatusCode::NOT_FOUND,
            Html(format!("<p>Unknown Covalence {}</p>", escape(&cov_id))),
        )
            .into_response();
    }
    let mut resp = Html(format!("<p>Routing to {cov_id}</p>")).into_response();
    if let Ok(v) = format!("{ROUTE_COOKIE}={cov_id}; Path=/").parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn login(State((app, _)): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let mut s = lock(&app.state);
    let index = match appliance_for(&app, &s, &headers) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    if form.get("username") != Some(&s.username) || form.get("password") != Some(&s.password) {
        return (StatusCode::UNAUTHORIZED, "Invalid username or password").into_response();
    }
    s.appliances[index].logins += 1;
    let token = format!("{:016x}{:016x}", s.rng.next_u64(), s.rng.next_u64());
    s.sessions.insert(token.clone(), (index, Instant::now()));
    let mut resp = StatusCode::OK.into_response();
    if let Ok(v) = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure").parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Lets a request through only with a live session for the appliance it is routed to.
async fn require_session(State((app, _)): State<AppState>, req: Request, next: Next) -> Response {
    {
        let s = lock(&app.state);
        let index = match appliance_for(&app, &s, req.headers()) {
            Ok(i) => i,
            Err(e) => return e.into_response(),
        };
        let live = cookie(req.headers(), SESSION_COOKIE)
            .and_then(|token| s.sessions.get(token))
            .is_some_and(|(i, created)| {
                *i == index && s.session_ttl.is_none_or(|ttl| created.elapsed() < ttl)
            });
        if !live {
            return text_error(
                StatusCode::UNAUTHORIZED,
                "Session expired or invalid; log in again",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Parses `field=value` (value optionally in double quotes, `\"` and `\\` escaped).
fn parse_filter(filter: &str) -> Result<(String, String), String> {
    let (field, value) = filter
        .split_once('=')
        .ok_or_else(|| format!("Invalid advancedFilter {filter:?}: expected field=value"))?;
    let field = field.trim();
    if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("Invalid advancedFilter field {field:?}"));
    }
    let value = value.trim();
    let value = match value.strip_prefix('"') {
        None => value.to_string(),
        Some(rest) => {
            let mut out = String::new();
            let mut chars = rest.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.push(
                        chars
                            .next()
                            .ok_or("Invalid advancedFilter: dangling backslash")?,
                    ),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => out.push(c),
                }
            }
            if !closed || !chars.as_str().trim().is_empty() {
                return Err(format!(
                    "Invalid advancedFilter {filter:?}: unterminated or trailing quote"
                ));
            }
            out
        }
    };
    Ok((field.to_string(), value))
}

fn field_eq(item: &Value, field: &str, want: &str) -> bool {
    match &item[field] {
        Value::String(s) => s == want,
        Value::Null => false,
        other => *other == *want,
    }
}

/// Filters a collection by exact query parameters and `advancedFilter`, then pages it.
fn select(
    items: &[Value],
    params: &HashMap<String, String>,
    exact: &[(&str, &str)],
    extra: impl Fn(&Value) -> bool,
) -> Result<Vec<Value>, ApiError> {
    let filter = match params.get("advancedFilter").filter(|f| !f.is_empty()) {
        Some(f) => Some(parse_filter(f).map_err(|e| text_error(StatusCode::BAD_REQUEST, &e))?),
        None => None,
    };
    let number = |key: &str, default: usize| -> Result<usize, ApiError> {
        match params.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                text_error(
                    StatusCode::BAD_REQUEST,
                    &format!("{key} must be a number, got {v:?}"),
                )
            }),
        }
    };
    let max = number("maxCount", 100)?.min(MAX_PAGE);
    let start = number("initialIndex", 0)?;
    Ok(items
        .iter()
        .filter(|item| {
            exact.iter().all(|(param, field)| {
                params
                    .get(*param)
                    .is_none_or(|want| field_eq(item, field, want))
            })
        })
        .filter(|item| filter.as_ref().is_none_or(|(f, v)| field_eq(item, f, v)))
        .filter(|item| extra(item))
        .skip(start)
        .take(max)
        .cloned()
        .collect())
}

fn with_collection<T>(
    app: &App,
    headers: &HeaderMap,
    name: &str,
    f: impl FnOnce(&[Value]) -> T,
) -> Result<T, ApiError> {
    let s = lock(&app.state);
    let index = appliance_for(app, &s, headers)?;
    Ok(f(s.appliances[index]
        .collections
        .get(name)
        .map(Vec::as_slice)
        .unwrap_or_default()))
}

async fn list(
    State((app, _)): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    name: &'static str,
    exact: &'static [(&'static str, &'static str)],
) -> Response {
    match with_collection(&app, &headers, name, |items| {
        select(items, &params, exact, |_| true)
    }) {
        Ok(Ok(items)) => Json(items).into_response(),
        Ok(Err(e)) | Err(e) => e.into_response(),
    }
}

fn epoch_param(params: &HashMap<String, String>, key: &str) -> Result<Option<i64>, ApiError> {
    match params.get(key) {
        None => Ok(None),
        Some(v) => NaiveDateTime::parse_from_str(v, TIME_FORMAT)
            .map(|t| Some(t.and_utc().timestamp()))
            .map_err(|_| {
                text_error(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid {key} {v:?}: expected YYYY-MM-DDTHH:MM:SS (UTC)"),
                )
            }),
    }
}

async fn alerts(
    State((app, _)): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (min, max) = match (
        epoch_param(&params, "alertTimeMin"),
        epoch_param(&params, "alertTimeMax"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let s = lock(&app.state);
    let index = match appliance_for(&app, &s, &headers) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let now = chrono::Utc::now().timestamp();
    let items = s.appliances[index]
        .collections
        .get("alerts")
        .map(Vec::as_slice)
        .unwrap_or_default();
    let selected = select(items, &params, &[("alertType", "type")], |a| {
        let t = a["createdTime"].as_i64().unwrap_or(0);
        let visible = a["id"]
            .as_str()
            .and_then(|id| s.visible_at.get(id))
            .is_none_or(|v| *v <= now);
        visible && min.is_none_or(|m| t >= m) && max.is_none_or(|m| t <= m)
    });
    match selected {
        Ok(items) => Json(items).into_response(),
        Err(e) => e.into_response(),
    }
}

fn truthy_param(params: &HashMap<String, String>, key: &str) -> bool {
    params
        .get(key)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn is_internal(ip: &str) -> bool {
    ip.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_private() || ip.is_loopback())
}

async fn connections(
    State((app, _)): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    name: &'static str,
) -> Response {
    let clients_only = truthy_param(&params, "clientsOnly");
    let internal_only = truthy_param(&params, "internalOnly");
    let (start, end) = (
        params.get("startTime").cloned(),
        params.get("endTime").cloned(),
    );
    let result = with_collection(&app, &headers, name, |items| {
        select(items, &params, &[("sourceIp", "sourceIpAddress")], |c| {
            let in_time = |key: &str, bound: &Option<String>, after: bool| {
                let (Some(bound), Some(t)) = (bound, c[key].as_str()) else {
                    return true;
                };
                let bound = bound.trim_end_matches('Z');
                if after { t >= bound } else { t <= bound }
            };
            (!clients_only || c["clientServerRelationship"] == "CLIENT")
                && (!internal_only || c["destinationIpAddress"].as_str().is_some_and(is_internal))
                && in_time("startTime", &start, true)
                && in_time("endTime", &end, false)
        })
    });
    match result {
        Ok(Ok(items)) => Json(items).into_response(),
        Ok(Err(e)) | Err(e) => e.into_response(),
    }
}

async fn sensor(
    State((app, _)): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match with_collection(&app, &headers, "sensors", |items| {
        items.iter().find(|s| s["id"] == id.as_str()).cloned()
    }) {
        Ok(Some(sensor)) => Json(sensor).into_response(),
        Ok(None) => {
            text_error(StatusCode::NOT_FOUND, &format!("Sensor {id} not found")).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn put_networks(
    State((app, _)): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Ok(Value::Array(list)) = serde_json::from_str::<Value>(&body) else {
        return text_error(
            StatusCode::BAD_REQUEST,
            "Body must be a JSON list of {\"cidr\", \"notes\"}",
        )
        .into_response();
    };
    for n in &list {
        let ok = n["cidr"].as_str().is_some_and(|c| c.contains('/'))
            && (n["notes"].is_string() || n["notes"].is_null());
        if !ok || n.as_object().is_some_and(|o| o.len() > 2) {
            return text_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid internal network {n}"),
            )
            .into_response();
        }
    }
    let mut s = lock(&app.state);
    let index = match appliance_for(&app, &s, &headers) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    s.appliances[index]
        .collections
        .insert("internal_networks", list.clone());
    Json(list).into_response()
}

/// Alert creation time as RFC 3339, for readers of the simulator's data.
pub fn alert_time(alert: &Value) -> Option<String> {
    DateTime::from_timestamp(alert["createdTime"].as_i64()?, 0).map(|t| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advanced_filters_parse_quoted_values() {
        assert_eq!(
            parse_filter("lastSessionUser=jdoe"),
            Ok(("lastSessionUser".into(), "jdoe".into()))
        );
        assert_eq!(
            parse_filter(r#"lastSessionUser="a \"b\" \\ c""#),
            Ok(("lastSessionUser".into(), r#"a "b" \ c"#.into()))
        );
        assert!(parse_filter("noequals").is_err());
        assert!(parse_filter(r#"x="open"#).is_err());
        assert!(parse_filter(r#"x="a" OR y=b"#).is_err());
    }
}
