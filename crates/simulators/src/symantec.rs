//! Symantec MSS SWS incidents service simulator: SOAP 1.2 at `POST /SWS/incidents.asmx`, over
//! HTTPS that **requires** a client certificate signed by the simulator's CA.
//!
//! Operations: IncidentGetList (StartTimeStampGMT, SourceIP, Severity list, MaxIncidents),
//! IncidentQuery, IncidentWorkflowQuery and UpdateIncidentWorkflow, whose updates change what
//! later queries return. Incidents carry several signatures, comments, attachments and related
//! incidents. Bad input gets a SOAP 1.2 Fault (HTTP 500). With `stray_entities`, some text
//! carries `&nbsp;`-style entities, as the real service has been seen to send.

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
pub struct SymantecOptions {
    pub seed: u64,
    pub incidents: usize,
    /// Put undefined `&nbsp;`-style entities into some text.
    pub stray_entities: bool,
    /// Passphrase of the client `.p12` the simulator issues.
    pub passphrase: String,
    pub faults: FaultSpec,
    /// New incidents become visible this long after their creation time.
    pub late_arrival: std::time::Duration,
    /// Add a new incident this often.
    pub generate_every: Option<std::time::Duration>,
}

impl Default for SymantecOptions {
    fn default() -> Self {
        SymantecOptions {
            seed: 1,
            incidents: 12,
            stray_entities: false,
            passphrase: "sim-p12-passphrase".into(),
            faults: FaultSpec::default(),
            late_arrival: std::time::Duration::ZERO,
            generate_every: None,
        }
    }
}

/// A running SWS simulator.
pub struct SymantecSimulator {
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
    incidents: Vec<Incident>,
    stray_entities: bool,
    late_arrival: TimeDelta,
}

impl SwsState {
    /// Adds an incident created now, visible after the late-arrival delay; returns its number.
    fn add_incident(&mut self, severity: &str, classification: &str) -> u64 {
        let mut inc = match self.incidents.last() {
            Some(last) => last.clone(),
            None => seed(&SymantecOptions {
                incidents: 1,
                ..Default::default()
            })
            .remove(0),
        };
        inc.number += 1;
        inc.created = Utc::now().naive_utc();
        inc.visible_at = inc.created + self.late_arrival;
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

impl SymantecSimulator {
    pub async fn start(opts: SymantecOptions) -> std::io::Result<Self> {
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://{}", tcp.local_addr()?);
        let ca = SimCa::new("Symantec MSS").map_err(std::io::Error::other)?;
        let client = ca
            .client_identity("watchfloor SWS client")
            .map_err(std::io::Error::other)?;
        let client_p12 = client
            .to_pkcs12(ca.ca_der(), &opts.passphrase)
            .map_err(std::io::Error::other)?;
        let faults = Faults::default();
        faults.set(opts.faults.clone());
        let state = Arc::new(Mutex::new(SwsState {
            incidents: seed(&opts),
            stray_entities: opts.stray_entities,
            late_arrival: TimeDelta::from_std(opts.late_arrival).unwrap_or(TimeDelta::zero()),
        }));
        let router = Router::new()
            .route("/SWS/incidents.asmx", post(soap))
            .route("/_sim/faults", get(get_faults).post(set_faults))
            .with_state((state.clone(), faults.clone()))
            .layer(middleware::from_fn_with_state(
                faults.clone(),
                faults::layer,
            ));
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
        Ok(SymantecSimulator {
            url,
            ca_pem: ca.ca_pem.clone(),
            client,
            client_p12,
            passphrase: opts.passphrase,
            faults,
            ca,
            state,
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

    /// Adds a new incident created now; returns its number.
    pub fn add_incident(&self, severity: &str, classification: &str) -> u64 {
        lock(&self.state).add_incident(severity, classification)
    }
}

const CLASSIFICATIONS: [(&str, &str); 5] = [
    ("Web Server Attack", "Malicious Activity"),
    ("Scan for Web Servers", "No Category"),
    ("Brute Force Login", "Malicious Activity"),
    ("Outbound Malware Callback", "Malware"),
    ("Authorized Scanner <internal> & co", "Authorized Activity"),
];

fn seed(opts: &SymantecOptions) -> Vec<Incident> {
    let mut rng = Rng::new(opts.seed ^ 0x5e5_5e5);
    let base = NaiveDateTime::parse_from_str("2024-05-02 08:00:00", "%Y-%m-%d %H:%M:%S")
        .expect("valid base time");
    (0..opts.incidents)
        .map(|n| {
            let created = base
                + TimeDelta::minutes(23 * n as i64)
                + TimeDelta::milliseconds(rng.below(1000) as i64);
            let (classification, category) = CLASSIFICATIONS[n % CLASSIFICATIONS.len()];
            let source_ip = format!("203.0.113.{}", 1 + rng.below(250));
            let signatures = (0..1 + n % 3)
                .map(|k| {
                    [
                        source_ip.clone(),
                        [
                            "SQLi Attempt",
                            "Symantec AV Alert",
                            "HTTP Directory Traversal",
                        ][k]
                            .to_string(),
                        if k == 1 {
                            String::new()
                        } else {
                            format!("SIG-{}", 1000 + rng.below(9000))
                        },
                        rng.below(20).to_string(),
                        rng.below(3).to_string(),
                    ]
                })
                .collect();
            let comments = (0..n % 4)
                .map(|k| {
                    (
                        created + TimeDelta::minutes(5 * (k as i64 + 1)),
                        format!("Note {} on <{classification}> & follow-up", k + 1),
                        format!("analyst{}", k + 1),
                    )
                })
                .collect();
            let attachments = (0..n % 3)
                .map(|k| {
                    (
                        9000 + (n * 10 + k) as u64,
                        format!("evidence-{k}.pcap"),
                        created + TimeDelta::minutes(30),
                        "analyst1".to_string(),
                        "Capture".to_string(),
                    )
                })
                .collect();
            Incident {
                number: 7_781_200 + n as u64,
                created,
                visible_at: created,
                updated: created + TimeDelta::minutes(1),
                severity: SEVERITIES[n % 4].to_string(),
                category: category.to_string(),
                classification: classification.to_string(),
                description: format!("{classification} from {source_ip}"),
                assessment: format!("Blocked at WAF; review host logs for {source_ip}."),
                source_ip,
                country: {
                    let (code, name) = [
                        ("NL", "Netherlands"),
                        ("CA", "Canada"),
                        ("US", "United States"),
                    ][n % 3];
                    (code.to_string(), name.to_string())
                },
                dest_org: "Globex".to_string(),
                signatures,
                related: (0..n % 3).map(|k| 7_781_100 + (n * 7 + k) as u64).collect(),
                status: if n % 5 == 4 { "Closed" } else { "Open" }.to_string(),
                resolution: if n % 5 == 4 { "Resolved" } else { "Unresolved" }.to_string(),
                reference: String::new(),
                assigned_person: if n % 2 == 0 {
                    String::new()
                } else {
                    "John".to_string()
                },
                assigned_org: if n % 2 == 0 {
                    "Globex SOC".to_string()
                } else {
                    String::new()
                },
                comments,
                attachments,
            }
        })
        .collect()
}

const TS_MS: &str = "%Y-%m-%dT%H:%M:%S%.3f";

fn el(name: &str, value: &str) -> String {
    match value {
        "" => format!("<{name} />"),
        v => format!("<{name}>{}</{name}>", escape(v)),
    }
}

fn summary_xml(i: &Incident) -> String {
    let t = i.created.format(TS_MS).to_string();
    [
        "<SecurityIncidentSummary xmlns=\"\">".to_string(),
        el("IncidentNumber", &i.number.to_string()),
        el("TimeCreated", &t),
        el("Severity", &i.severity),
        el("Category", &i.category),
        el("CountryOfOrigin", ""),
        el("DaysSeenGlobally", "0"),
        el("SourceIPString", &i.source_ip),
        el("Correlation", "No"),
        el("HostNameList", ""),
        el("IsInternalExternal", ""),
        el("GlobalLookbackDays", "2"),
        el("LatestKeyEvent", &t),
        el("CustomerSeverity", ""),
        el("CountryCode", &i.country.0),
        el("FirstSeenInLast30Days", &t),
        el("DaysSeenInLast30Days", "1"),
        el("DestOrganizationName", &i.dest_org),
        el("SourceOrganizationName", "Example Hosting"),
        el("FirstSeenGlobally", &t),
        el("CountryName", &i.country.1),
        el("UserList", ""),
        el("Classification", &i.classification),
        el("UpdateTimestampGMT", &i.updated.format(TS_MS).to_string()),
        el("PrevalenceGlobally", "L"),
        "</SecurityIncidentSummary>".to_string(),
    ]
    .concat()
}

fn incident_xml(i: &Incident, stray: bool) -> String {
    let assessment = match stray {
        true => escape(&i.assessment).replacen(' ', "&nbsp;", 1),
        false => escape(&i.assessment),
    };
    let signatures: String = i
        .signatures
        .iter()
        .map(|[ip, name, vendor, blocked, not_blocked]| {
            format!(
                "<Signature>{}{}{}{}{}</Signature>",
                el("SourceIPString", ip),
                el("SignatureName", name),
                el("VendorSignature", vendor),
                el("NumberBlocked", blocked),
                el("NumberNotBlocked", not_blocked)
            )
        })
        .collect();
    let related: String = i
        .related
        .iter()
        .map(|n| el("IncidentNumber", &n.to_string()))
        .collect();
    let comments: String = i
        .comments
        .iter()
        .map(|(t, text, by)| {
            format!(
                "<IncidentComment>{}{}{}</IncidentComment>",
                el("CommentedTimeStampGMT", &t.format(TS_MS).to_string()),
                el("Comment", text),
                el("CommentedBy", by)
            )
        })
        .collect();
    let attachments: String = i
        .attachments
        .iter()
        .map(|(n, name, t, by, comment)| {
            format!(
                "<IncidentAttachmentItem>{}{}{}{}{}</IncidentAttachmentItem>",
                el("AttachmentNumber", &n.to_string()),
                el("AttachmentName", name),
                el("UploadDateGMT", &t.format(TS_MS).to_string()),
                el("UploadBy", by),
                el("Comment", comment)
            )
        })
        .collect();
    let wrap = |name: &str, inner: String| {
        if inner.is_empty() {
            format!("<{name} />")
        } else {
            format!("<{name}>{inner}</{name}>")
        }
    };
    [
        "<SecurityIncident xmlns=\"\">".to_string(),
        el("IncidentNumber", &i.number.to_string()),
        el("TimeCreated", &i.created.format(TS_MS).to_string()),
        el("Severity", &i.severity),
        el("Classification", &i.classification),
        el("Description", &i.description),
        format!("<AnalystAssessment>{assessment}</AnalystAssessment>"),
        el(
            "NumberOfAnalyzedSignatures",
            &i.signatures.len().to_string(),
        ),
        wrap("SignatureList", signatures),
        el("CountryCode", &i.country.0),
        el("CountryName", &i.country.1),
        el("RelatedTickets", &i.reference),
        wrap("RelatedIncidents", related),
        format!(
            "<WorkFlowDetail>{}{}{}{}</WorkFlowDetail>",
            el("Status", &i.status),
            el("Resolution", &i.resolution),
            el("AssignedPerson", &i.assigned_person),
            el("AssignedOrganization", &i.assigned_org)
        ),
        wrap("IncidentComments", comments),
        wrap("IncidentAttachmentItems", attachments),
        "</SecurityIncident>".to_string(),
    ]
    .concat()
}

fn envelope(op: &str, result: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{SOAP_NS}\"><soap:Body>\
         <{op}Response xmlns=\"{NS}\"><{op}Result>{result}</{op}Result></{op}Response></soap:Body></soap:Envelope>"
    );
    (
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A SOAP 1.2 Fault, sent with HTTP 500 as ASMX services do.
struct Fault {
    code: &'static str,
    reason: String,
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{SOAP_NS}\"><soap:Body><soap:Fault>\
             <soap:Code><soap:Value>soap:{}</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang=\"en\">{}</soap:Text></soap:Reason>\
             </soap:Fault></soap:Body></soap:Envelope>",
            self.code,
            escape(&self.reason)
        );
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

fn fault(code: &'static str, reason: &str) -> Response {
    Fault {
        code,
        reason: reason.to_string(),
    }
    .into_response()
}

fn sender_fault(reason: String) -> Fault {
    Fault {
        code: "Sender",
        reason,
    }
}

type AppState = (Shared, Faults);

async fn get_faults(State((_, faults)): State<AppState>) -> axum::Json<FaultSpec> {
    axum::Json(faults.get())
}

async fn set_faults(
    State((_, faults)): State<AppState>,
    axum::Json(spec): axum::Json<FaultSpec>,
) -> axum::Json<FaultSpec> {
    faults.set(spec);
    axum::Json(faults.get())
}

async fn soap(State((state, _)): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/soap+xml") {
        return fault(
            "Sender",
            &format!(
                "Content-Type must be application/soap+xml for SOAP 1.2, not {content_type:?}"
            ),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return fault("Sender", "The request body is not UTF-8");
    };
    let doc = match xml::parse(text) {
        Ok(d) => d,
        Err(e) => return fault("Sender", &format!("Server was unable to read request: {e}")),
    };
    let Some(op) = doc.find("Body").and_then(|b| b.children.first()) else {
        return fault("Sender", "The request has no soap:Body operation");
    };
    let mut s = lock(&state);
    match op.name.as_str() {
        "IncidentGetList" => get_list(&s, op),
        "IncidentQuery" | "IncidentWorkflowQuery" => match find_incident(&s, op) {
            Ok(i) => envelope(&op.name, &incident_xml(i, s.stray_entities)),
            Err(f) => f.into_response(),
        },
        "UpdateIncidentWorkflow" => update(&mut s, op),
        other => fault("Sender", &format!("Unknown operation {other}")),
    }
}

fn number(op: &Element) -> Result<u64, Fault> {
    let raw = op.child_text("IncidentNumber").unwrap_or_default();
    raw.parse()
        .map_err(|_| sender_fault(format!("IncidentNumber must be a number, got {raw:?}")))
}

fn find_incident<'a>(s: &'a SwsState, op: &Element) -> Result<&'a Incident, Fault> {
    let n = number(op)?;
    s.incidents
        .iter()
        .find(|i| i.number == n)
        .ok_or_else(|| sender_fault(format!("Incident {n} was not found")))
}

fn parse_start(raw: &str) -> Option<NaiveDateTime> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.naive_utc())
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(raw.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f").ok()
        })
}

fn get_list(s: &SwsState, op: &Element) -> Response {
    let start = match op.child_text("StartTimeStampGMT") {
        None => None,
        Some(raw) => match parse_start(raw) {
            Some(t) => Some(t),
            None => {
                return fault(
                    "Sender",
                    &format!("StartTimeStampGMT {raw:?} is not a valid dateTime"),
                );
            }
        },
    };
    let severities: Vec<&str> = op
        .child_text("Severity")
        .map(|v| v.split(',').map(str::trim).collect())
        .unwrap_or_default();
    if let Some(bad) = severities.iter().find(|v| !SEVERITIES.contains(v)) {
        return fault(
            "Sender",
            &format!(
                "Invalid severity {bad:?}: expected {}",
                SEVERITIES.join(", ")
            ),
        );
    }
    let max = match op.child_text("MaxIncidents").map(str::parse::<usize>) {
        None => MAX_INCIDENTS,
        Some(Ok(n)) if (1..=MAX_INCIDENTS).contains(&n) => n,
        Some(_) => {
            return fault(
                "Sender",
                &format!("MaxIncidents must be between 1 and {MAX_INCIDENTS}"),
            );
        }
    };
    let source = op.child_text("SourceIP");
    let now = Utc::now().naive_utc();
    let summaries: String = s
        .incidents
        .iter()
        .filter(|i| i.visible_at <= now)
        .filter(|i| start.is_none_or(|t| i.created >= t))
        .filter(|i| severities.is_empty() || severities.contains(&i.severity.as_str()))
        .filter(|i| source.is_none_or(|ip| i.source_ip == ip))
        .take(max)
        .map(summary_xml)
        .collect();
    envelope("IncidentGetList", &summaries)
}

fn update(s: &mut SwsState, op: &Element) -> Response {
    let n = match number(op) {
        Ok(n) => n,
        Err(f) => return f.into_response(),
    };
    let field = |name: &str| op.child_text(name).unwrap_or_default().to_string();
    let (status, resolution, severity) = (field("Status"), field("Resolution"), field("Severity"));
    for (name, value, allowed) in [
        ("Status", &status, &STATUSES[..]),
        ("Resolution", &resolution, &RESOLUTIONS[..]),
        ("Severity", &severity, &SEVERITIES[..]),
    ] {
        if !allowed.contains(&value.as_str()) {
            return fault(
                "Sender",
                &format!("Invalid {name} {value:?}: expected {}", allowed.join(", ")),
            );
        }
    }
    let (org, person) = (field("AssignedToOrganiztion"), field("AssignedToPerson"));
    if !org.is_empty() && !person.is_empty() {
        return fault(
            "Sender",
            "An incident is assigned to an organization or a person, not both",
        );
    }
    let Some(inc) = s.incidents.iter_mut().find(|i| i.number == n) else {
        return fault("Sender", &format!("Incident {n} was not found"));
    };
    let now = Utc::now().naive_utc();
    inc.status = status;
    inc.resolution = resolution;
    inc.severity = severity;
    inc.reference = field("Reference");
    if !org.is_empty() || !person.is_empty() {
        inc.assigned_org = org;
        inc.assigned_person = person;
    }
    let comment = field("Comments");
    if !comment.is_empty() {
        inc.comments.push((now, comment, "SWS API".to_string()));
    }
    inc.updated = now;
    envelope("UpdateIncidentWorkflow", "true")
}

/// Incident fields for fetch tests: number, creation time (RFC 3339, UTC) and severity.
pub fn summary_json(sim: &SymantecSimulator) -> Vec<Value> {
    lock(&sim.state)
        .incidents
        .iter()
        .map(|i| json!({"IncidentNumber": i.number.to_string(), "TimeCreated": i.created.and_utc().to_rfc3339(), "Severity": i.severity}))
        .collect()
}
