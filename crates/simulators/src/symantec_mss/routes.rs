//! The SWS simulator's SOAP 1.2 endpoint: envelopes, faults, and the four incident
//! operations.

use super::*;

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

pub(super) fn incident_xml(i: &Incident, stray: bool) -> String {
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

/// The SOAP endpoint and the control endpoints, behind the fault layer.
pub(super) fn router(state: Shared, faults: Faults) -> Router {
    Router::new()
        .route("/SWS/incidents.asmx", post(soap))
        .route("/_sim/faults", get(get_faults).post(set_faults))
        .with_state((state, faults.clone()))
        .layer(middleware::from_fn_with_state(faults, faults::layer))
}

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
    if s.declined_updates.contains(&n) {
        return envelope("UpdateIncidentWorkflow", "false");
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
    s.updates += 1;
    envelope("UpdateIncidentWorkflow", "true")
}
