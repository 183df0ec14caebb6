//! FES Portal and Broker simulator (Covalence Managed Security).
//!
//! Portal: bearer auth, `/my_providers`, organizations and their details (active response
//! profile, key contacts, language), paged escalation contact lists, AROs with the filters
//! resolution, status, type, id, organization_id, since and until (newest first, paged), ARO
//! transitions and comments. Broker: `/ping`, organizations, and host, ARO and cloud actions.
//! Data is seeded and deterministic; `/_sim/faults` switches faults, `/_sim/aros` adds an ARO.

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
pub struct FesOptions {
    pub seed: u64,
    pub orgs: usize,
    pub aros_per_org: usize,
    /// The API key the simulator accepts.
    pub api_key: String,
    pub faults: FaultSpec,
    /// New AROs become visible this long after their creation time, as when the portal
    /// indexes them late.
    pub late_arrival: std::time::Duration,
    /// Add a new unresolved ARO this often.
    pub generate_every: Option<std::time::Duration>,
}

impl Default for FesOptions {
    fn default() -> Self {
        FesOptions {
            seed: 1,
            orgs: 3,
            aros_per_org: 4,
            api_key: "sim-fes-api-key".to_string(),
            faults: FaultSpec::default(),
            late_arrival: std::time::Duration::ZERO,
            generate_every: None,
        }
    }
}

/// A running FES Portal and Broker. Dropping it stops both servers.
pub struct FesSimulator {
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
    comments: Vec<Value>,
    escalation_lists: Vec<Value>,
    rng: Rng,
    next_serial: u64,
    next_task: u64,
    late_arrival: TimeDelta,
}

#[derive(Clone)]
struct AppState {
    state: Shared,
    faults: Faults,
}

impl FesSimulator {
    /// Starts portal and broker on loopback, each on a free port.
    pub async fn start(opts: FesOptions) -> std::io::Result<Self> {
        let portal = TcpListener::bind("127.0.0.1:0").await?;
        let broker = TcpListener::bind("127.0.0.1:0").await?;
        Ok(Self::serve(opts, portal, broker))
    }

    /// Serves on listeners the caller bound.
    pub fn serve(opts: FesOptions, portal: TcpListener, broker: TcpListener) -> Self {
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
        FesSimulator {
            portal_url,
            broker_url,
            api_key: opts.api_key,
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
        let mut s = lock(&self.state);
        let now = Utc::now().naive_utc();
        s.new_aro(org_index, title, now)
    }
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, FesState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn ts(t: NaiveDateTime) -> String {
    t.format(TIME_FORMAT).to_string()
}

fn sort_newest_first(aros: &mut [Value]) {
    aros.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                v["creation_time"].as_str().unwrap_or_default().to_string(),
                v["serial_id"]
                    .as_str()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0),
            )
        };
        key(b).cmp(&key(a))
    });
}

const ORG_NAMES: [&str; 10] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Capsule Corp",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Cyberdyne",
    "Tyrell",
];
const TITLES: [&str; 8] = [
    "Malware detected",
    "Vulnerable Software Detected",
    "Suspicious PowerShell execution",
    "Brute force login attempts",
    "Impossible travel sign-in",
    "Outdated TLS configuration",
    "New administrator account created",
    "Suspicious login | <img src=x onerror=alert(1)> `whoami`",
];
const TYPES: [&str; 3] = ["Action", "Recommendation", "Observation"];
const FIRST_NAMES: [&str; 6] = ["Dana", "Sam", "Alex", "Jordan", "Riley", "Morgan"];
const LAST_NAMES: [&str; 6] = ["Scully", "Tremblay", "Nguyen", "Okafor", "Schmidt", "Ito"];
const LOCALES: [&str; 3] = ["en-CA", "fr-CA", "en-US"];
const JOB_TITLES: [&str; 3] = ["SOC Lead", "IT Manager", "CISO"];
const POLICIES: [&str; 3] = ["Off", "Notify", "Isolate"];

impl FesState {
    fn seeded(opts: &FesOptions) -> Self {
        let mut rng = Rng::new(opts.seed);
        let provider = json!({"ID": rng.uuid(), "name": "Simulated MSSP"});
        let provider_id = provider["ID"].as_str().unwrap_or_default().to_string();
        let mut orgs = Vec::new();
        let mut escalation_lists = Vec::new();
        let created = "2023-01-15 09:00:00";
        for i in 0..opts.orgs {
            let name = match i / ORG_NAMES.len() {
                0 => ORG_NAMES[i].to_string(),
                n => format!("{} {}", ORG_NAMES[i % ORG_NAMES.len()], n + 1),
            };
            let slug: String = name
                .to_lowercase()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            let id = rng.uuid();
            let email = format!("soc@{slug}.example");
            let person = |rng: &mut Rng, n: usize| {
                let first = FIRST_NAMES[(i + n) % FIRST_NAMES.len()];
                let last = LAST_NAMES[(i * 2 + n) % LAST_NAMES.len()];
                let phone = format!("+1-555-{:04}", rng.below(10_000));
                (
                    first,
                    last,
                    format!(
                        "{}.{}@{slug}.example",
                        first.to_lowercase(),
                        last.to_lowercase()
                    ),
                    phone,
                )
            };
            // Every third organization has only a billing contact: no key contacts to list.
            let contact_types: &[&str] = if i % 3 == 2 {
                &["Billing"]
            } else {
                &[
                    "Administrative",
                    "Billing",
                    "Technical - Primary",
                    "Technical - Secondary",
                ]
            };
            let mut contacts = Vec::new();
            for (n, kind) in contact_types.iter().enumerate() {
                let (first, last, mail, phone) = person(&mut rng, n);
                let as_user = *kind == "Technical - Primary";
                contacts.push(json!({
                    "id": rng.uuid(),
                    "type": kind,
                    "contact_info": if as_user { Value::Null } else {
                        json!({"email": mail, "first_name": first, "last_name": last, "phone_number": phone})
                    },
                    "user": if as_user {
                        json!({"ID": rng.uuid(), "avatar_file_url": null, "email": mail, "first_name": first,
                               "last_name": last, "phone_number": phone})
                    } else { Value::Null },
                    "organization_id": id,
                    "provider_id": provider_id,
                    "created_time": created,
                    "last_updated_time": created,
                }));
            }
            let mut escalation = Vec::new();
            for n in 0..(2 + i % 2) {
                let (first, last, mail, phone) = person(&mut rng, n + 4);
                escalation.push(json!({
                    "id": rng.uuid(), "priority": n + 1, "first_name": first, "last_name": last,
                    "job_title": JOB_TITLES[n % 3], "phone_number": phone,
                    "secondary_phone": null, "email": mail, "notes": if n == 0 { "Call first, any hour" } else { "" },
                    "user_id": null, "avatar_file_url": null,
                }));
            }
            escalation_lists.push(json!({
                "id": rng.uuid(), "organization_id": id, "created_time": created,
                "last_updated_time": created, "escalation_contacts": escalation,
            }));
            orgs.push(json!({
                "ID": id,
                "id": id,
                "name": name,
                "client_id": format!("2022-{:04}-{}", 1000 + i, &slug[..slug.len().min(3)].to_uppercase()),
                "email": email,
                "email_aro_details": i % 2 == 1,
                "active_response_profile": {
                    "response_policy": POLICIES[i % 3],
                    "options": if i % 3 == 2 { json!({"exclusions": ["SRV-DC01"]}) } else { Value::Null },
                },
                "contacts": contacts,
                "profile": {"default_locale": LOCALES[i % LOCALES.len()], "industry": "Manufacturing"},
                "status": "active",
                "service_tier": "Complete",
            }));
        }
        let mut state = FesState {
            api_key: opts.api_key.clone(),
            provider,
            orgs,
            aros: Vec::new(),
            comments: Vec::new(),
            escalation_lists,
            rng,
            next_serial: 1,
            next_task: 3800,
            late_arrival: TimeDelta::from_std(opts.late_arrival).unwrap_or(TimeDelta::zero()),
        };
        let base = NaiveDateTime::parse_from_str("2024-05-01 08:00:00", TIME_FORMAT)
            .expect("valid base time");
        let total = opts.orgs * opts.aros_per_org;
        for n in 0..total {
            let org = n % opts.orgs.max(1);
            let minutes = 37 * n as i64 + state.rng.below(20) as i64;
            let title = TITLES[(n * 5 + org) % TITLES.len()];
            let created = base + TimeDelta::minutes(minutes);
            state.new_aro(org, title, created);
            // About a third of the seeded AROs are already handled.
            if n % 3 == 2 {
                let last = state.aros.len() - 1;
                let resolution = if n % 2 == 0 { "Resolved" } else { "Dismissed" };
                state.aros[last]["resolution"] = json!(resolution);
                state.aros[last]["status"] = json!("Closed");
            }
        }
        state
    }

    fn new_aro(&mut self, org_index: usize, title: &str, created: NaiveDateTime) -> Value {
        let org = &self.orgs[org_index.min(self.orgs.len().saturating_sub(1))];
        let organization = json!({"ID": org["ID"], "email": org["email"], "name": org["name"]});
        let serial = self.next_serial;
        self.next_serial += 1;
        let host = format!("WS-{:04}", self.rng.below(10_000));
        let user = *self.rng.pick(&["jdoe", "asmith", "bwayne", "lskywalker"]);
        let severity = *self.rng.pick(&FIELD_EFFECT_SEVERITIES);
        let kind = *self.rng.pick(&TYPES);
        let id = self.rng.uuid();
        let details = format!("{title} on {host} (user: {user}).");
        let time = ts(created);
        let aro = json!({
            "ID": id,
            "alert_key": null,
            "analyst_notes": null,
            "count": 1 + self.rng.below(5),
            "creation_time": time,
            "details": details,
            "details_markdown": details,
            "display_url": format!("https://portal.example/aro/{serial}"),
            "external_bug_id": null,
            "last_updated_time": time,
            "notes": null,
            "organization": organization,
            "references": [],
            "resolution": "Unresolved",
            "serial_id": serial.to_string(),
            "severity": severity,
            "status": "Open",
            "steps": [
                {"ID": self.rng.uuid(), "completed": false, "label": format!("Investigate activity on {host}."), "last_updated_time": time},
                {"ID": self.rng.uuid(), "completed": false, "label": format!("Reset the password of {user}."), "last_updated_time": time},
            ],
            "template_id": null,
            "title": title,
            "triage_id": null,
            "type": kind,
            // Not part of the portal's ARO: where broker actions find the host and user, and
            // when the portal starts showing the ARO.
            "data": {"host": host, "user": format!("{user}@{}", org["email"].as_str().unwrap_or("").trim_start_matches("soc@")),
                     "visible_at": ts(created + self.late_arrival)},
        });
        self.aros.push(aro.clone());
        aro
    }

    fn aro_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.aros.iter_mut().find(|a| a["ID"] == id)
    }

    fn org(&self, id: &str) -> Option<&Value> {
        self.orgs.iter().find(|o| o["ID"] == id)
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        field: "error",
        message: message.into(),
    }
}

async fn require_key(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let expected = format!("Bearer {}", lock(&app.state).api_key);
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Invalid or missing API key").into_response();
    }
    next.run(req).await
}

fn control_routes(app: AppState) -> Router {
    Router::new()
        .route("/_sim/faults", get(get_faults).post(set_faults))
        .route("/_sim/requests", get(get_requests))
        .route("/_sim/aros", post(add_aro))
        .with_state(app)
}

fn portal_routes(app: AppState) -> Router {
    Router::new()
        .route("/my_providers", get(my_providers))
        .route("/providers", get(my_providers))
        .route("/my_providers/{pid}/organizations", get(provider_orgs))
        .route("/providers/{pid}/aros", get(list_aros))
        .route("/my_organizations/{id}", get(org_detail))
        .route("/organizations/{id}", get(org_detail))
        .route("/escalation_contact_lists", get(escalation_lists))
        .route("/aros/{id}/transition", post(transition))
        .route("/aro_comments", post(add_comment).get(list_comments))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_key))
        .with_state(app)
}

fn broker_routes(app: AppState) -> Router {
    let authed = Router::new()
        .route("/organizations", get(broker_orgs))
        .route("/endpoint/host/{action}", post(endpoint_by_host))
        .route("/endpoint/aro/{action}", post(endpoint_by_aro))
        .route("/cloud/aro/{action}", post(cloud_by_aro))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_key));
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .merge(authed)
        .with_state(app)
}

async fn get_faults(State(app): State<AppState>) -> Json<FaultSpec> {
    Json(app.faults.get())
}

async fn set_faults(State(app): State<AppState>, Json(spec): Json<FaultSpec>) -> Json<FaultSpec> {
    app.faults.set(spec);
    Json(app.faults.get())
}

async fn get_requests(State(app): State<AppState>) -> Json<Value> {
    Json(json!(app.faults.request_counts()))
}

#[derive(Deserialize)]
struct NewAro {
    #[serde(default)]
    org_index: usize,
    title: String,
}

async fn add_aro(State(app): State<AppState>, Json(new): Json<NewAro>) -> ApiResult {
    let mut s = lock(&app.state);
    if new.org_index >= s.orgs.len() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("org_index {} out of range", new.org_index),
        ));
    }
    let now = Utc::now().naive_utc();
    Ok(Json(s.new_aro(new.org_index, &new.title, now)).into_response())
}

async fn my_providers(State(app): State<AppState>) -> Json<Value> {
    Json(json!([lock(&app.state).provider]))
}

fn check_provider(s: &FesState, pid: &str) -> Result<(), ApiError> {
    if s.provider["ID"] == pid {
        Ok(())
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            format!("Provider {pid} not found"),
        ))
    }
}

async fn provider_orgs(State(app): State<AppState>, Path(pid): Path<String>) -> ApiResult {
    let s = lock(&app.state);
    check_provider(&s, &pid)?;
    let orgs: Vec<Value> = s
        .orgs
        .iter()
        .map(|o| json!({"ID": o["ID"], "email": o["email"], "email_aro_details": o["email_aro_details"], "name": o["name"]}))
        .collect();
    Ok(Json(json!(orgs)).into_response())
}

/// Pages `items` with `limit` (default 25, at most 500) and `page` (from 1).
fn page_envelope(items: Vec<Value>, params: &Map<String, Value>) -> Result<Value, ApiError> {
    let number = |key: &str, default: usize| -> Result<usize, ApiError> {
        match params.get(key).and_then(Value::as_str) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("{key} must be a positive integer, got {v:?}"),
                )
            }),
        }
    };
    let per_page = number("limit", 25)?.min(500);
    let page = number("page", 1)?;
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Ok(json!({
        "items": slice, "page": page, "pages": pages, "per_page": per_page, "total": total,
        "has_next": page < pages, "has_prev": page > 1,
    }))
}

fn parse_time(params: &Map<String, Value>, key: &str) -> Result<Option<NaiveDateTime>, ApiError> {
    match params.get(key).and_then(Value::as_str) {
        None => Ok(None),
        Some(v) => NaiveDateTime::parse_from_str(v, TIME_FORMAT)
            .map(Some)
            .map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid {key} {v:?}: expected YYYY-MM-DD HH:MM:SS (UTC)"),
                )
            }),
    }
}

async fn list_aros(
    State(app): State<AppState>,
    Path(pid): Path<String>,
    Query(params): Query<Map<String, Value>>,
) -> ApiResult {
    let s = lock(&app.state);
    check_provider(&s, &pid)?;
    let (since, until) = (parse_time(&params, "since")?, parse_time(&params, "until")?);
    let now_text = &now();
    for (key, allowed) in [
        ("resolution", &RESOLUTIONS[..]),
        ("status", &STATUSES[..]),
        ("type", &TYPES[..]),
    ] {
        if let Some(v) = params.get(key).and_then(Value::as_str)
            && !allowed.contains(&v)
        {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!(
                    "Invalid {key} {v:?}: expected one of {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    let field_matches =
        |aro: &Value, key: &str, field: &Value| match params.get(key).and_then(Value::as_str) {
            None => true,
            Some(want) => {
                field.as_str() == Some(want)
                    || (key == "organization_id" && aro["organization"]["ID"] == want)
            }
        };
    let mut aros: Vec<Value> = s
        .aros
        .iter()
        .filter(|a| {
            field_matches(a, "resolution", &a["resolution"])
                && field_matches(a, "status", &a["status"])
                && field_matches(a, "type", &a["type"])
                && field_matches(a, "id", &a["ID"])
                && field_matches(a, "organization_id", &a["organization"]["ID"])
        })
        .filter(|a| {
            a["data"]["visible_at"]
                .as_str()
                .is_none_or(|v| v <= now_text.as_str())
        })
        .filter(|a| {
            let created = a["creation_time"]
                .as_str()
                .and_then(|t| NaiveDateTime::parse_from_str(t, TIME_FORMAT).ok());
            since.is_none_or(|s| created.is_some_and(|c| c >= s))
                && until.is_none_or(|u| created.is_some_and(|c| c <= u))
        })
        .map(public_aro)
        .collect();
    sort_newest_first(&mut aros);
    Ok(Json(page_envelope(aros, &params)?).into_response())
}

/// An ARO as the portal shows it (without the simulator's own `data`).
fn public_aro(aro: &Value) -> Value {
    let mut aro = aro.clone();
    if let Some(o) = aro.as_object_mut() {
        o.shift_remove("data");
    }
    aro
}

async fn org_detail(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let s = lock(&app.state);
    match s.org(&id) {
        Some(org) => Ok(Json(org.clone()).into_response()),
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("Organization {id} not found"),
        )),
    }
}

async fn escalation_lists(
    State(app): State<AppState>,
    Query(params): Query<Map<String, Value>>,
) -> ApiResult {
    let s = lock(&app.state);
    filtered_page(&s.escalation_lists, &params, "organization_id")
}

/// The items whose `field` equals the query parameter of the same name (all if absent), paged.
fn filtered_page(items: &[Value], params: &Map<String, Value>, field: &str) -> ApiResult {
    let wanted = params.get(field).and_then(Value::as_str);
    let matching: Vec<Value> = items
        .iter()
        .filter(|item| wanted.is_none_or(|w| item[field] == w))
        .cloned()
        .collect();
    Ok(Json(page_envelope(matching, params)?).into_response())
}

fn now() -> String {
    ts(Utc::now().naive_utc())
}

fn author(s: &FesState) -> Value {
    json!({"ID": s.provider["ID"], "avatar_file_url": null, "email": "analyst@mssp.example",
           "first_name": "Sim", "last_name": "Analyst"})
}

fn make_comment(s: &mut FesState, aro: &Value, text: &str, sensitive: bool) -> Value {
    let time = now();
    let author = author(s);
    let comment = json!({
        "id": s.rng.uuid(), "aro_id": aro["ID"], "text": text, "sensitive": sensitive, "type": "Comment",
        "source": "Portal", "created_time": time, "last_updated_time": time, "acknowledged": true,
        "acknowledged_time": time, "acknowledged_by": author, "author": author,
        "author_organization": {"ID": s.provider["ID"], "email": "soc@mssp.example", "name": s.provider["name"]},
        "author_organization_type": "Provider", "available_only_to_organization_id": null,
        "available_only_to_provider_id": if sensitive { s.provider["ID"].clone() } else { Value::Null },
        "visible_to": [aro["organization"]],
    });
    s.comments.push(comment.clone());
    comment
}

async fn transition(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> ApiResult {
    let Some(Json(body)) = body else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Request body must be a JSON object",
        ));
    };
    let resolution = body["resolution"].as_str().unwrap_or_default();
    if !RESOLUTIONS.contains(&resolution) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid resolution {:?}: expected one of {}",
                body["resolution"],
                RESOLUTIONS.join(", ")
            ),
        ));
    }
    let status = body["status"].as_str().unwrap_or("Open");
    if !STATUSES.contains(&status) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("Invalid status {status:?}"),
        ));
    }
    let comment = &body["comment"];
    if !comment.is_null() && (!comment["text"].is_string() || !comment["sensitive"].is_boolean()) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "comment must be {\"text\": string, \"sensitive\": boolean}",
        ));
    }
    let mut s = lock(&app.state);
    let time = now();
    let Some(aro) = s.aro_mut(&id) else {
        return Err(error(StatusCode::NOT_FOUND, format!("ARO {id} not found")));
    };
    aro["resolution"] = json!(resolution);
    aro["status"] = json!(status);
    aro["last_updated_time"] = json!(time);
    let closed = matches!(resolution, "Resolved" | "Dismissed");
    let aro = aro.clone();
    if !comment.is_null() {
        make_comment(
            &mut s,
            &aro,
            comment["text"].as_str().unwrap_or_default(),
            comment["sensitive"] == true,
        );
    }
    let mut out = public_aro(&aro);
    if let Some(o) = out.as_object_mut() {
        o.insert("attachments".into(), json!([]));
        o.insert("external_ticket".into(), Value::Null);
        o.insert("frameworks".into(), json!([]));
        o.insert("insights".into(), json!([]));
        o.insert(
            "resolution_duration_seconds".into(),
            if closed { json!(3600) } else { Value::Null },
        );
        o.insert(
            "resolution_time".into(),
            if closed { json!(time) } else { Value::Null },
        );
    }
    Ok(Json(out).into_response())
}

async fn add_comment(State(app): State<AppState>, body: Option<Json<Value>>) -> ApiResult {
    let Some(Json(body)) = body else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Request body must be a JSON object",
        ));
    };
    let (Some(aro_id), Some(text), Some(sensitive)) = (
        body["aro_id"].as_str(),
        body["text"].as_str(),
        body["sensitive"].as_bool(),
    ) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "expected {\"aro_id\": string, \"text\": string, \"sensitive\": boolean}",
        ));
    };
    if text.trim().is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Comment text must not be empty",
        ));
    }
    let mut s = lock(&app.state);
    let Some(aro) = s.aros.iter().find(|a| a["ID"] == aro_id).cloned() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("ARO {aro_id} not found"),
        ));
    };
    Ok(Json(make_comment(&mut s, &aro, text, sensitive)).into_response())
}

async fn list_comments(
    State(app): State<AppState>,
    Query(params): Query<Map<String, Value>>,
) -> ApiResult {
    let s = lock(&app.state);
    filtered_page(&s.comments, &params, "aro_id")
}

async fn broker_orgs(State(app): State<AppState>) -> Json<Value> {
    let s = lock(&app.state);
    Json(json!(
        s.orgs
            .iter()
            .map(|o| json!({"ID": o["ID"], "name": o["name"], "client_id": o["client_id"]}))
            .collect::<Vec<_>>()
    ))
}

fn check_action(action: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&action) {
        Ok(())
    } else {
        Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "Unknown action {action:?}: expected one of {}",
                allowed.join(", ")
            ),
        ))
    }
}

fn host_task(s: &mut FesState, org: &Value, host: &str) -> Value {
    s.next_task += 1;
    let agent = Rng::new(
        host.bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)),
    )
    .uuid();
    json!({"host_identifier": host, "agent_uuid": agent,
           "covalence_appliance": format!("{}-0", org["client_id"].as_str().unwrap_or_default()), "task_id": s.next_task})
}

async fn endpoint_by_host(
    State(app): State<AppState>,
    Path(action): Path<String>,
    body: Option<Json<Value>>,
) -> ApiResult {
    check_action(&action, &ENDPOINT_ACTIONS)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let (Some(org_id), Some(host)) = (body["org_id"].as_str(), body["host_identifier"].as_str())
    else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "expected {\"org_id\": string, \"host_identifier\": string}",
        ));
    };
    let mut s = lock(&app.state);
    let Some(org) = s.org(org_id).cloned() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("Organization {org_id} not found"),
        ));
    };
    Ok(Json(host_task(&mut s, &org, host)).into_response())
}

/// The ARO a Broker action names in its body `{"aro_id": ...}`.
fn aro_for_action(s: &FesState, body: Option<Json<Value>>) -> Result<Value, ApiError> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let Some(aro_id) = body["aro_id"].as_str() else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "expected {\"aro_id\": string}",
        ));
    };
    s.aros
        .iter()
        .find(|a| a["ID"] == aro_id)
        .cloned()
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("ARO {aro_id} not found")))
}

async fn endpoint_by_aro(
    State(app): State<AppState>,
    Path(action): Path<String>,
    body: Option<Json<Value>>,
) -> ApiResult {
    check_action(&action, &ENDPOINT_ACTIONS)?;
    let mut s = lock(&app.state);
    let aro = aro_for_action(&s, body)?;
    let org = s
        .org(aro["organization"]["ID"].as_str().unwrap_or_default())
        .cloned()
        .unwrap_or_default();
    let host = aro["data"]["host"].as_str().unwrap_or_default().to_string();
    Ok(Json(host_task(&mut s, &org, &host)).into_response())
}

async fn cloud_by_aro(
    State(app): State<AppState>,
    Path(action): Path<String>,
    body: Option<Json<Value>>,
) -> ApiResult {
    check_action(&action, &CLOUD_ACTIONS)?;
    let mut s = lock(&app.state);
    let aro = aro_for_action(&s, body)?;
    let created = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    Ok(Json(json!({
        "action_id": s.rng.uuid(), "action_type": action, "action_params": {"user": aro["data"]["user"]},
        "created_time": created, "status": "QUEUED", "result": "PENDING",
    }))
    .into_response())
}
