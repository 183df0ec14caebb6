//! XSOAR's own REST API, as demisto-py and scripts written for XSOAR call it, served at `/` and
//! under `/xsoar/`. It speaks XSOAR's field names and codes and goes through the same store
//! rules, scoping and roles as `/api/v1`; only the shapes differ.
//!
//! demisto-py sends every attribute of its models, unset ones as `null`, so `null` always means
//! "not given". A success answer never has a top-level `error` key (demisto-py would then hand
//! back a dict instead of its model).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use watchfloor_core::query::{self, Condition, Term};
use watchfloor_core::{Change, CloseReason, Edit, Incident, Label, Mirror, Severity, Status};
use watchfloor_storage::{IncidentFilter, ManualIncident, Sort, SortField, User, WarRoomEntry};

use watchfloor_service::Caller;

use crate::error::ApiError;
use crate::state::AppState;

/// The routes, to be mounted at `/` and at `/xsoar`, behind API-key authentication.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents/search", post(search))
        .route("/indicators/search", post(search_indicators))
        .route("/incident", post(create_or_update))
        .route("/incident/close", post(close_one))
        .route("/incident/investigate", post(investigate))
        .route("/incident/batch", post(batch_update))
        .route("/incident/batchClose", post(batch_close))
        .route("/incident/batchDelete", post(batch_delete))
        .route("/incident/load/{id}", get(load))
        .route("/entry", post(chat))
        .route("/entry/note", post(note))
        .route("/entry/formatted", post(formatted))
        .route("/entry/execute/sync", post(execute))
        .route("/investigation/{id}", post(investigation))
        .route("/investigation/{id}/context", post(investigation_context))
        .route("/user", get(current_user))
        .route("/about", get(about))
}

/// The version of XSOAR's API this face follows, as `GET /about` reports it.
const DEMISTO_VERSION: &str = "6.12.0";

/// XSOAR's unset time.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn status_code(s: Status) -> u8 {
    match s {
        Status::Pending => 0,
        Status::Active => 1,
        Status::Closed => 2,
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// An incident in XSOAR's shape.
fn incident_json(state: &AppState, i: &Incident) -> Value {
    let manual = i.is_manual();
    let direction = if manual {
        ""
    } else {
        match state.runner.as_ref().and_then(|r| r.mirror_of(&i.instance)) {
            Some(Mirror::Both) => "Both",
            Some(Mirror::In) => "In",
            Some(Mirror::Out) => "Out",
            Some(Mirror::None) | None => "",
        }
    };
    let mut custom = serde_json::Map::new();
    if let Some(org) = &i.organization {
        custom.insert("organization".into(), json!(org));
    }
    json!({
        "id": i.id.to_string(),
        "investigationId": i.id.to_string(),
        "version": i.version,
        "name": i.name,
        "rawName": i.name,
        "type": i.kind,
        "rawType": i.kind,
        "status": status_code(i.status),
        "severity": i.severity,
        "owner": i.owner.clone().unwrap_or_default(),
        "occurred": time(i.occurred),
        "created": time(i.created),
        "modified": time(i.modified),
        "closed": i.closed.map_or_else(|| ZERO_TIME.to_string(), time),
        "closeReason": i.close_reason.map(|r| r.as_str()).unwrap_or_default(),
        "rawCloseReason": i.close_reason.map(|r| r.as_str()).unwrap_or_default(),
        "closeNotes": i.close_notes.clone().unwrap_or_default(),
        "dueDate": time(i.sla_due),
        "details": i.details,
        "labels": i.labels,
        // A manual incident's record is empty unless its creator gave one.
        "rawJSON": if manual && i.raw.as_object().is_some_and(|o| o.is_empty()) {
            String::new()
        } else {
            i.raw.to_string()
        },
        "CustomFields": custom,
        "sourceBrand": if manual { "Manual" } else { i.integration.as_str() },
        "sourceInstance": i.instance,
        "dbotMirrorId": if manual { "" } else { i.external_id.as_str() },
        "dbotMirrorInstance": if manual { "" } else { i.instance.as_str() },
        "dbotMirrorDirection": direction,
        "category": "",
        "phase": "",
        "playbookId": "",
        "isPlayground": false,
    })
}

/// A war-room entry in XSOAR's shape: type 1 (4 for a failed command), with its category.
fn entry_json(e: &WarRoomEntry) -> Value {
    let failed = e.body["failed"] == true;
    let category = entry_category(e);
    let format = match (e.kind.as_str(), e.body["format"].as_str()) {
        (_, Some(f)) => f.to_string(),
        ("command" | "note" | "chat", _) => "markdown".into(),
        _ => "text".into(),
    };
    json!({
        "id": format!("{}@{}", e.id, e.incident_id),
        "investigationId": e.incident_id.to_string(),
        "type": if failed { 4 } else { 1 },
        "category": category,
        "contents": e.text(),
        "format": format,
        "created": time(e.created),
        "modified": time(e.created),
        "user": e.author,
        "note": e.kind == "note",
        "pinned": false,
        "deleted": false,
        "tags": [],
        "version": 1,
        "parentContent": e.body["command"].as_str().unwrap_or_default(),
    })
}

/// An entry's category, as XSOAR names it.
fn entry_category(e: &WarRoomEntry) -> &'static str {
    match e.kind.as_str() {
        "note" | "chat" => "chat",
        "command" => "commandAndResults",
        _ => "incidentInfo",
    }
}

/// A field of a request body, with `null` taken as not given.
fn given<'a>(body: &'a Value, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

fn given_str<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    given(body, key)
        .map(|v| {
            v.as_str()
                .ok_or_else(|| bad(format!("`{key}` must be a string")))
        })
        .transpose()
}

/// An incident id, as XSOAR sends it: a string, or a number.
fn incident_id(v: &Value, key: &str) -> Result<i64, ApiError> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| bad(format!("`{key}` must be an incident id, such as \"12\"")))
}

fn severity(v: &Value) -> Result<Severity, ApiError> {
    match v {
        Value::Number(n) => n.as_f64().and_then(Severity::from_value).ok_or_else(|| {
            bad(format!(
                "`severity` {n} is not on XSOAR's scale: use 0, 0.5, 1, 2, 3 or 4"
            ))
        }),
        Value::String(s) => Severity::parse(s).map_err(bad),
        _ => Err(bad("`severity` must be a number from 0 to 4")),
    }
}

fn status(v: &Value) -> Result<Status, ApiError> {
    match v.as_f64() {
        Some(0.0) => Ok(Status::Pending),
        Some(1.0) => Ok(Status::Active),
        Some(2.0) => Ok(Status::Closed),
        _ => Err(bad(format!(
            "`status` {v} is not one watchfloor has: use 0 (pending), 1 (active) or 2 (closed)"
        ))),
    }
}

fn labels(body: &Value) -> Result<Vec<Label>, ApiError> {
    given(body, "labels")
        .map(|v| {
            serde_json::from_value::<Vec<Label>>(v.clone())
                .map_err(|e| bad(format!("`labels` must be a list of {{type, value}}: {e}")))
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The source record a create gives as `rawJSON`: a string of JSON, as XSOAR takes it (an
/// empty one is none).
fn raw_json(body: &Value) -> Result<Option<Value>, ApiError> {
    match given_str(body, "rawJSON")? {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| bad(format!("`rawJSON` must be a string of JSON: {e}"))),
    }
}

fn close_reason(body: &Value) -> Result<CloseReason, ApiError> {
    Ok(match given_str(body, "closeReason")? {
        None | Some("") => CloseReason::Other,
        Some(r) => CloseReason::parse(r).map_err(bad)?,
    })
}

fn organization(body: &Value) -> Result<Option<String>, ApiError> {
    match given(body, "CustomFields").and_then(|c| given(c, "organization")) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::String(_)) => Ok(None),
        Some(_) => Err(bad("`CustomFields.organization` must be a string")),
    }
}

fn occurred(body: &Value) -> Result<Option<DateTime<Utc>>, ApiError> {
    given_str(body, "occurred")?
        .filter(|t| !t.starts_with("0001-01-01"))
        .map(|t| {
            watchfloor_core::time::moment(t)
                .ok_or_else(|| bad(format!("`occurred` {t:?} is not an RFC 3339 time")))
        })
        .transpose()
}

/// `POST /incidents/search`: `{filter: {query, page, size, sort, id, name, status, ...}}`.
async fn search(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let f = given(&body, "filter").cloned().unwrap_or(json!({}));
    let caller = Caller::of(&user);
    let filter = filter_of(&f)?;
    let total = state
        .service
        .count_matching(&caller, filter.clone())
        .await?;
    let size = given(&f, "size").and_then(Value::as_u64).unwrap_or(0);
    let total_only = given(&f, "totalOnly") == Some(&Value::Bool(true));
    // As XSOAR: no size, no rows (only the total).
    let data = if size == 0 || total_only {
        Vec::new()
    } else {
        let size = size.min(1000) as usize;
        let page = given(&f, "page").and_then(Value::as_u64).unwrap_or(0);
        let offset = usize::try_from(page)
            .ok()
            .and_then(|p| p.checked_mul(size))
            .ok_or_else(|| {
                bad(format!(
                    "`filter.page` {page} is past any page there can be"
                ))
            })?;
        let rows = state
            .service
            .matching(
                &caller,
                IncidentFilter {
                    offset: Some(offset),
                    limit: Some(size),
                    ..filter
                },
            )
            .await?;
        rows.iter().map(|i| incident_json(&state, i)).collect()
    };
    Ok(Json(json!({"data": data, "total": total})).into_response())
}

/// An indicator type as XSOAR names it.
fn xsoar_indicator_type(kind: &str, value: &str) -> &'static str {
    match kind {
        "ip" if value.contains(':') => "IPv6",
        "ip" => "IP",
        "cidr" if value.contains(':') => "IPv6CIDR",
        "cidr" => "CIDR",
        "domain" => "Domain",
        "url" => "URL",
        "email" => "Email",
        "md5" | "sha1" | "sha256" => "File",
        "host" => "Host",
        "user" => "Account",
        _ => "Unknown",
    }
}

/// Our types an XSOAR type name stands for (ours are taken as they are).
fn indicator_kinds(name: &str) -> Result<Vec<&'static str>, ApiError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "ip" | "ipv6" => vec!["ip"],
        "cidr" | "ipv6cidr" => vec!["cidr"],
        "file" | "file md5" | "file sha-1" | "file sha-256" => vec!["md5", "sha1", "sha256"],
        "account" => vec!["user"],
        other => vec![
            watchfloor_indicators::Kind::parse(other)
                .map_err(|e| bad(format!("`type:{name}` in the indicator query: {e}")))?
                .as_str(),
        ],
    })
}

/// `POST /indicators/search`, as demisto-py's `search_indicators` sends it: a query of
/// `value:`, `type:` and `investigationIDs:` terms (a bare word is a value), `size` and `page`.
/// Each indicator lists the caller's incidents that hold it, and no other.
async fn search_indicators(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let caller = Caller::of(&user);
    let query = given(&body, "query").and_then(Value::as_str).unwrap_or("");
    let (mut value, mut kinds, mut incident) = (None::<String>, None::<Vec<&str>>, None::<i64>);
    let words = query::words(query).map_err(|e| bad(format!("the indicator query: {e}")))?;
    for word in &words {
        let term = query::unquoted(word);
        let term = term.as_str();
        match word.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("value") => value = Some(query::unquoted(v)),
            Some((k, v))
                if k.eq_ignore_ascii_case("type") || k.eq_ignore_ascii_case("indicator_type") =>
            {
                kinds = Some(indicator_kinds(&query::unquoted(v))?)
            }
            Some((k, v)) if k.eq_ignore_ascii_case("investigationIDs") => {
                incident =
                    Some(v.parse().map_err(|_| {
                        bad(format!("`{term}`: investigationIDs takes an incident id"))
                    })?)
            }
            // An address or URL has colons of its own.
            Some((k, _))
                if k.chars().all(|c| c.is_ascii_alphabetic())
                    && !k.eq_ignore_ascii_case("http")
                    && !k.eq_ignore_ascii_case("https") =>
            {
                return Err(bad(format!(
                    "`{term}`: indicator queries take value:, type: and investigationIDs:"
                )));
            }
            _ => value = Some(term.to_string()),
        }
    }
    let size = given(&body, "size")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 1000) as usize;
    let page = given(&body, "page").and_then(Value::as_u64).unwrap_or(0) as usize;
    let mut found = match incident {
        Some(id) => match state.service.incident_indicators(&caller, id).await {
            Ok(found) => found,
            Err(watchfloor_service::ServiceError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        },
        None => {
            let limit = size
                .saturating_mul(page + 1)
                .min(watchfloor_service::indicators::MAX_LIST);
            state
                .service
                .indicators(&caller, None, value.as_deref(), Some(limit))
                .await?
        }
    };
    if let Some(kinds) = &kinds {
        found.retain(|s| kinds.contains(&s.kind.as_str()));
    }
    if let (Some(v), Some(_)) = (&value, incident) {
        let forms = watchfloor_indicators::lookups(v);
        found.retain(|s| forms.contains(&s.value));
    }
    found.retain(|s| s.incidents > 0);
    let total = found.len();
    let mut objects = Vec::new();
    for s in found.into_iter().skip(page.saturating_mul(size)).take(size) {
        let ids: Vec<String> = state
            .service
            .indicator_incident_ids(&caller, &s.kind, &s.value)
            .await?
            .iter()
            .map(i64::to_string)
            .collect();
        objects.push(json!({
            "id": format!("{}:{}", s.kind, s.value),
            "value": s.value,
            "indicator_type": xsoar_indicator_type(&s.kind, &s.value),
            "firstSeen": time(s.first_seen),
            "lastSeen": time(s.last_seen),
            "timestamp": time(s.first_seen),
            "modified": time(s.last_seen),
            "investigationIDs": ids,
            // XSOAR's DBot score: 0 unknown, 1 good, 2 suspicious, 3 bad.
            "score": match s.verdict.as_ref().map(|v| v.verdict.as_str()) {
                Some("malicious") => 3,
                Some("suspicious") => 2,
                Some("benign") => 1,
                _ => 0,
            },
            "source": "watchfloor",
            "version": 1,
            "CustomFields": {"watchfloorincidents": s.incidents},
        }));
    }
    Ok(Json(json!({"iocObjects": objects, "total": total})).into_response())
}

/// A list field of a filter, each item read by `read`.
fn each<T>(
    f: &Value,
    key: &str,
    read: impl Fn(&Value) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    match given(f, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(read).collect(),
        Some(_) => Err(bad(format!("`filter.{key}` must be a list"))),
    }
}

/// The most values one of a filter's lists takes (the databases refuse expressions much
/// deeper).
const MAX_LIST: usize = 500;

/// Any of these terms, when there are some.
fn any_of(
    conditions: &mut Vec<Condition>,
    terms: Vec<Term>,
    negated: bool,
) -> Result<(), ApiError> {
    if terms.len() > MAX_LIST {
        return Err(bad(format!(
            "a filter list has {} values; give at most {MAX_LIST}",
            terms.len()
        )));
    }
    if !terms.is_empty() {
        conditions.push(Condition {
            term: Term::Any(terms),
            negated,
        });
    }
    Ok(())
}

/// XSOAR's `filter.period` (`{"by": "day", "fromValue": 7}`: the last seven days) as
/// conditions on its `field` (`created` unless named; `occurred` and `closed` too): from
/// `fromValue` units before `now` (`byFrom` names the unit, else `by`), to `toValue` units
/// before it (`byTo`, else `by`) if given.
fn period(f: &Value, now: DateTime<Utc>) -> Result<Vec<Condition>, ApiError> {
    let Some(p) = given(f, "period") else {
        return Ok(Vec::new());
    };
    if !p.is_object() {
        return Err(bad(
            "`filter.period` must be an object, e.g. {\"by\": \"day\", \"fromValue\": 7}",
        ));
    }
    let field = given_str(p, "field")?
        .filter(|f| !f.is_empty())
        .unwrap_or("created");
    let term = query::time_term(field).ok_or_else(|| {
        bad(format!(
            "`filter.period.field` {field:?} is not a time to filter on: use created, occurred or closed"
        ))
    })?;
    let mut out = Vec::new();
    for (value_key, unit_key, cmp) in [
        ("fromValue", "byFrom", query::Cmp::AtOrAfter),
        ("toValue", "byTo", query::Cmp::AtOrBefore),
    ] {
        let Some(value) = given(p, value_key) else {
            continue;
        };
        let n = value.as_u64().ok_or_else(|| {
            bad(format!(
                "`filter.period.{value_key}` must be a whole number of units, 0 or more"
            ))
        })?;
        let unit = match given_str(p, unit_key)?.filter(|u| !u.is_empty()) {
            Some(unit) => unit,
            None => given_str(p, "by")?.unwrap_or_default(),
        };
        let back = |seconds: u64| {
            n.checked_mul(seconds)
                .and_then(|s| i64::try_from(s).ok())
                .and_then(chrono::TimeDelta::try_seconds)
                .and_then(|d| now.checked_sub_signed(d))
        };
        let months = |m: u64| {
            n.checked_mul(m)
                .and_then(|m| u32::try_from(m).ok())
                .and_then(|m| now.checked_sub_months(chrono::Months::new(m)))
        };
        let at = match unit.trim_end_matches('s') {
            "minute" => back(60),
            "hour" => back(3600),
            "day" => back(86_400),
            "week" => back(7 * 86_400),
            "month" => months(1),
            "year" => months(12),
            "" => {
                return Err(bad(format!(
                    "`filter.period` has `{value_key}` but no unit: add `by` (minute, hour, day, week, month or year)"
                )));
            }
            other => {
                return Err(bad(format!(
                    "`filter.period` unit {other:?} is not one: use minute, hour, day, week, month or year"
                )));
            }
        }
        .ok_or_else(|| bad(format!("`filter.period.{value_key}` reaches too far back")))?;
        out.push(Condition {
            term: term(cmp, at),
            negated: false,
        });
    }
    Ok(out)
}

/// XSOAR's filter read into a store filter, before it is scoped to the caller.
fn filter_of(f: &Value) -> Result<IncidentFilter, ApiError> {
    let mut conditions =
        query::parse(given_str(f, "query")?.unwrap_or_default()).map_err(|e| bad(e.to_string()))?;
    let text = |key: &'static str| {
        move |v: &Value| match v.as_str() {
            Some(s) if s.contains('\0') => Err(bad(format!(
                "`filter.{key}` has a NUL character, which no incident holds: remove it"
            ))),
            Some(s) => Ok(s.to_string()),
            None => Err(bad(format!("`filter.{key}` must hold strings"))),
        }
    };
    let ids = each(f, "id", |v| incident_id(v, "filter.id"))?;
    any_of(
        &mut conditions,
        ids.into_iter().map(Term::Id).collect(),
        false,
    )?;
    let names = each(f, "name", text("name"))?;
    any_of(
        &mut conditions,
        names.into_iter().map(Term::Name).collect(),
        false,
    )?;
    let kinds = each(f, "type", text("type"))?;
    any_of(
        &mut conditions,
        kinds.into_iter().map(Term::Kind).collect(),
        false,
    )?;
    let status_term = |v: &Value| -> Result<Term, ApiError> {
        Ok(if v.as_f64() == Some(3.0) {
            Term::Nothing
        } else {
            Term::Status(status(v)?)
        })
    };
    any_of(&mut conditions, each(f, "status", status_term)?, false)?;
    any_of(&mut conditions, each(f, "notStatus", status_term)?, true)?;
    let levels = each(f, "level", severity)?;
    any_of(
        &mut conditions,
        levels.into_iter().map(Term::Severity).collect(),
        false,
    )?;
    let bounds: [(&str, query::Cmp, query::TimeTerm); 4] = [
        ("fromDate", query::Cmp::AtOrAfter, Term::Created),
        ("toDate", query::Cmp::AtOrBefore, Term::Created),
        ("fromClosedDate", query::Cmp::AtOrAfter, Term::Closed),
        ("toClosedDate", query::Cmp::AtOrBefore, Term::Closed),
    ];
    for (key, cmp, term) in bounds {
        if let Some(t) = given_str(f, key)?.filter(|t| !t.starts_with("0001-01-01")) {
            let at = watchfloor_core::time::moment(t)
                .ok_or_else(|| bad(format!("`filter.{key}` {t:?} is not a time")))?;
            conditions.push(Condition {
                term: term(cmp, at),
                negated: false,
            });
        }
    }
    conditions.extend(period(f, Utc::now())?);
    // Refused, not ignored: ignored, they would answer another question than the one asked.
    if given(f, "andOp") == Some(&Value::Bool(false)) {
        return Err(bad(
            "`filter.andOp` false (any of the filter's fields) is not supported: send one search per field, or join terms with OR in `filter.query`",
        ));
    }
    for key in ["searchAfter", "searchBefore"] {
        if given(f, key).is_some_and(|v| v.as_array().is_none_or(|a| !a.is_empty())) {
            return Err(bad(format!(
                "`filter.{key}` is not supported: page with `filter.page` and `filter.size`"
            )));
        }
    }
    let sort = match given(f, "sort")
        .and_then(|s| s.as_array())
        .and_then(|s| s.first())
    {
        None => Sort::default(),
        Some(order) => Sort {
            field: SortField::parse(given_str(order, "field")?.unwrap_or("occurred"))
                .map_err(bad)?,
            ascending: given(order, "asc") == Some(&Value::Bool(true)),
        },
    };
    Ok(IncidentFilter {
        conditions,
        sort,
        ..IncidentFilter::default()
    })
}

/// `POST /incident`: creates an incident, or updates one when `id` is given (with `version`;
/// `-1` overwrites whatever version is stored).
async fn create_or_update(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let incident = match given(&body, "id") {
        Some(id) if id.as_str() != Some("") => {
            update(&state, &user, incident_id(id, "id")?, &body).await?
        }
        _ => create(&state, &user, &body).await?,
    };
    Ok(Json(incident_json(&state, &incident)).into_response())
}

async fn create(state: &AppState, user: &User, body: &Value) -> Result<Incident, ApiError> {
    let incident = ManualIncident {
        name: given_str(body, "name")?.unwrap_or_default().to_string(),
        severity: given(body, "severity")
            .map(severity)
            .transpose()?
            .unwrap_or_default(),
        organization: organization(body)?,
        kind: given_str(body, "type")?
            .filter(|t| !t.is_empty())
            .unwrap_or("Unclassified")
            .to_string(),
        details: given_str(body, "details")?.unwrap_or_default().to_string(),
        occurred: occurred(body)?,
        owner: given_str(body, "owner")?
            .filter(|o| !o.is_empty())
            .map(str::to_string),
        labels: labels(body)?,
        raw: raw_json(body)?,
    };
    Ok(state.service.create(&Caller::of(user), incident).await?)
}

/// The changes an update asks for, in order: a reopen, the field edit, a close.
async fn update(
    state: &AppState,
    user: &User,
    id: i64,
    body: &Value,
) -> Result<Incident, ApiError> {
    let caller = Caller::of(user);
    let current = state.service.changeable(&caller, id).await?;
    let version = match given(body, "version").and_then(Value::as_i64) {
        Some(-1) => None,
        Some(v) => Some(v),
        None => {
            return Err(bad(
                "an update needs the incident's `version` (or -1 to overwrite)",
            ));
        }
    };
    if let Some(v) = version.filter(|v| *v != current.version) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "DB version conflict: incident {id} was changed since version {v} (now {}); load it again and retry",
                current.version
            ),
        ));
    }
    // Fields watchfloor keeps as the provider or the creator gave them.
    for (key, now) in [("name", &current.name), ("details", &current.details)] {
        if let Some(asked) = given_str(body, key)?
            && asked != now
        {
            return Err(bad(format!(
                "`{key}` cannot be changed once an incident exists"
            )));
        }
    }
    // The source record too: sent back as loaded (or re-serialized), it is the same JSON.
    if raw_json(body)?.is_some_and(|raw| raw != current.raw) {
        return Err(bad("`rawJSON` cannot be changed once an incident exists"));
    }
    if organization(body)?.is_some_and(|o| Some(o.as_str()) != current.organization.as_deref()) {
        return Err(bad(
            "`CustomFields.organization` cannot be changed once an incident exists",
        ));
    }
    let wanted = given(body, "status").map(status).transpose()?;
    let mut changes = Vec::new();
    let mut status_now = current.status;
    if current.status == Status::Closed && matches!(wanted, Some(Status::Pending | Status::Active))
    {
        changes.push(Change::Reopen);
        status_now = Status::Active;
    }
    let edit = Edit {
        status: wanted.filter(|s| *s != Status::Closed && *s != status_now),
        severity: given(body, "severity")
            .map(severity)
            .transpose()?
            .filter(|s| *s != current.severity),
        owner: given_str(body, "owner")?
            .map(|o| Some(o.to_string()).filter(|o| !o.is_empty()))
            .filter(|o| *o != current.owner),
        kind: given_str(body, "type")?
            .filter(|t| !t.is_empty() && *t != current.kind)
            .map(str::to_string),
        labels: labels(body)?
            .into_iter()
            .filter(|l| !current.labels.contains(l))
            .collect(),
    };
    if edit != Edit::default() {
        changes.push(Change::Update(edit));
    }
    if wanted == Some(Status::Closed) && current.status != Status::Closed {
        changes.push(Change::Close {
            reason: close_reason(body)?,
            notes: given_str(body, "closeNotes")?.map(str::to_string),
        });
    }
    if changes.is_empty() {
        return Ok(current);
    }
    // All or nothing: a close refused after a reopen leaves the incident as it was.
    Ok(state
        .service
        .change_all(&caller, id, version, &changes)
        .await?)
}

/// The close a request asks for: `closeReason` and `closeNotes`.
fn close_change(body: &Value) -> Result<Change, ApiError> {
    Ok(Change::Close {
        reason: close_reason(body)?,
        notes: given_str(body, "closeNotes")?.map(str::to_string),
    })
}

/// `POST /incident/close`: `{id, version, closeReason, closeNotes}`.
async fn close_one(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let id = incident_id(given(&body, "id").unwrap_or(&Value::Null), "id")?;
    let version = given(&body, "version")
        .and_then(Value::as_i64)
        .filter(|v| *v != -1);
    let closed = state
        .service
        .change(&Caller::of(&user), id, version, &close_change(&body)?)
        .await?;
    Ok(Json(incident_json(&state, &closed)).into_response())
}

/// `POST /incident/investigate`: `{id}`. Starts working an incident, as XSOAR's does: a
/// pending incident becomes active (recorded for the caller); an active one stays as it is;
/// a closed one is refused by the lifecycle, as any edit of it is. Answers the incident.
async fn investigate(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let id = incident_id(given(&body, "id").unwrap_or(&Value::Null), "id")?;
    let caller = Caller::of(&user);
    let current = state.service.changeable(&caller, id).await?;
    let incident = if current.status == Status::Active {
        current
    } else {
        let start = Change::Update(Edit {
            status: Some(Status::Active),
            ..Edit::default()
        });
        state.service.change(&caller, id, None, &start).await?
    };
    Ok(Json(incident_json(&state, &incident)).into_response())
}

/// The incidents a batch names: its `ids`, or with `all`, what its `filter` matches.
async fn batch_ids(state: &AppState, user: &User, body: &Value) -> Result<Vec<i64>, ApiError> {
    if given(body, "all") == Some(&Value::Bool(true)) {
        const MAX: usize = watchfloor_service::incidents::MAX_BATCH;
        let f = given(body, "filter").cloned().unwrap_or(json!({}));
        // Changing the first 10,000 and answering as if that were all would leave the rest
        // unchanged with nothing to say so.
        let found = state
            .service
            .matching_at_most(&Caller::of(user), filter_of(&f)?, MAX)
            .await?
            .ok_or_else(|| bad(format!(
                "more than {MAX} incidents match `filter`: narrow it (an organization, a severity or a time) and send the batch in parts"
            )))?;
        return Ok(found.iter().map(|i| i.id).collect());
    }
    each(body, "ids", |v| incident_id(v, "ids"))
}

/// `POST /incident/batchClose`: closes each incident named; those that cannot be closed
/// (already closed, not found, or not the caller's) are counted in `notUpdated`.
async fn batch_close(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let change = close_change(&body)?;
    batch_change(&state, &user, &body, &change).await
}

/// `POST /incident/batch` (demisto-py's `create_incidents_batch`, which XSOAR's bulk edit
/// sends): sets the fields of `data` on each incident named (`ids`, or with `all`, what
/// `filter` matches); those that cannot be changed (closed, not found, or not the caller's)
/// are counted in `notUpdated`.
async fn batch_update(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let change = batch_edit(&body)?;
    batch_change(&state, &user, &body, &change).await
}

/// One change to each incident a batch names, answered as XSOAR's batch calls answer: the
/// changed incidents, and how many were not.
async fn batch_change(
    state: &AppState,
    user: &User,
    body: &Value,
    change: &Change,
) -> Result<Response, ApiError> {
    let ids = batch_ids(state, user, body).await?;
    let (changed, refused) = state
        .service
        .change_many(&Caller::of(user), &ids, change)
        .await?;
    let data: Vec<Value> = changed.iter().map(|i| incident_json(state, i)).collect();
    Ok(
        Json(json!({"data": data, "total": data.len(), "notUpdated": refused.len()}))
            .into_response(),
    )
}

/// The fields a batch edit may set, in its `data`.
const BATCH_FIELDS: &str = "severity, owner, type, status or labels";

/// The change `POST /incident/batch` asks for: its `data` (`severity`, `owner`, an empty one
/// unassigns, `type`, `status` 0 or 1, `labels` to add), or a close (`status` 2 alone, with
/// `closeReason` and `closeNotes` in `data` or beside it). Fields fixed once an incident
/// exists, and fields watchfloor does not keep, are refused by name rather than dropped.
fn batch_edit(body: &Value) -> Result<Change, ApiError> {
    let data = match given(body, "data") {
        None => &Value::Null,
        Some(d @ Value::Object(_)) => d,
        Some(_) => return Err(bad("`data` must be an object of the fields to set")),
    };
    let keys: Vec<&str> = data
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for key in &keys {
        match *key {
            "severity" | "owner" | "type" | "status" | "labels" | "closeReason" | "closeNotes" => {}
            "name" | "details" | "rawJSON" | "occurred" | "organization" => {
                return Err(bad(format!(
                    "`data.{key}` cannot be changed once an incident exists"
                )));
            }
            other => {
                return Err(bad(format!(
                    "`data.{other}` is not a field a batch edit sets: give {BATCH_FIELDS}"
                )));
            }
        }
    }
    if given(body, "CustomFields")
        .and_then(Value::as_object)
        .is_some_and(|c| !c.is_empty())
    {
        return Err(bad(
            "`CustomFields` cannot be set in a batch: watchfloor keeps only `organization`, which does not change once an incident exists",
        ));
    }
    let wanted = given(data, "status").map(status).transpose()?;
    if wanted == Some(Status::Closed) {
        if let Some(other) = keys
            .iter()
            .find(|k| !matches!(**k, "status" | "closeReason" | "closeNotes"))
        {
            return Err(bad(format!(
                "a batch that closes (`status` 2) sets nothing else: send `data.{other}` in a batch of its own first"
            )));
        }
        let from = |key: &str| given(data, key).map_or(body, |_| data);
        return Ok(Change::Close {
            reason: close_reason(from("closeReason"))?,
            notes: given_str(from("closeNotes"), "closeNotes")?.map(str::to_string),
        });
    }
    let edit = Edit {
        status: wanted,
        severity: given(data, "severity").map(severity).transpose()?,
        owner: given_str(data, "owner")?.map(|o| Some(o.to_string()).filter(|o| !o.is_empty())),
        kind: given_str(data, "type")?
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        labels: labels(data)?,
    };
    if edit == Edit::default() {
        return Err(bad(format!(
            "the batch sets nothing: give `data` with {BATCH_FIELDS}"
        )));
    }
    Ok(Change::Update(edit))
}

/// `POST /incident/batchDelete`.
async fn batch_delete(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let ids = batch_ids(&state, &user, &body).await?;
    let (deleted, not_updated) = state.service.delete_many(&Caller::of(&user), &ids).await?;
    let data: Vec<Value> = deleted.iter().map(|i| incident_json(&state, i)).collect();
    Ok(Json(json!({"data": data, "total": data.len(), "notUpdated": not_updated})).into_response())
}

/// `GET /incident/load/{id}`.
async fn load(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = incident_id(&Value::String(id), "id")?;
    let incident = state.service.visible(&Caller::of(&user), id).await?;
    Ok(Json(incident_json(&state, &incident)).into_response())
}

/// The incident an entry request is for (`investigationId`).
fn entry_target(body: &Value) -> Result<i64, ApiError> {
    incident_id(
        given(body, "investigationId").unwrap_or(&Value::Null),
        "investigationId",
    )
}

fn text_of<'a>(body: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    match given_str(body, key)? {
        Some(t) if !t.trim().is_empty() => Ok(t),
        _ => Err(bad(format!("the entry is empty: give `{key}`"))),
    }
}

/// `POST /entry`: a chat entry in the war room.
async fn chat(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let id = entry_target(&body)?;
    let text = text_of(&body, "data")?;
    let entry = state
        .service
        .add_entry(&Caller::of(&user), id, "chat", &json!({"text": text}))
        .await?;
    Ok(Json(entry_json(&entry)).into_response())
}

/// `POST /entry/note`: a note in the war room. Notes made here stay local; a note for the
/// provider is added with `POST /api/v1/incidents/{id}/notes` and `"mirror": true`.
async fn note(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    if given(&body, "id").is_some() {
        return Err(bad(
            "marking an existing entry as a note is not supported: add the note's text as `data` without an `id`",
        ));
    }
    let id = entry_target(&body)?;
    let text = text_of(&body, "data")?;
    let entry = state
        .service
        .note(&Caller::of(&user), id, text, false)
        .await?;
    Ok(Json(entry_json(&entry)).into_response())
}

/// `POST /entry/formatted`: `{investigationId, format, contents}`.
async fn formatted(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let id = entry_target(&body)?;
    let text = text_of(&body, "contents")?;
    let format = given_str(&body, "format")?.unwrap_or("text");
    if !["table", "json", "text", "markdown", "html"].contains(&format) {
        return Err(bad(format!(
            "`format` {format:?} is not one of table, json, text, markdown, html"
        )));
    }
    let entry = state
        .service
        .add_entry(
            &Caller::of(&user),
            id,
            "chat",
            &json!({"text": text, "format": format}),
        )
        .await?;
    Ok(Json(entry_json(&entry)).into_response())
}

/// `POST /entry/execute/sync`: `!command args` runs a provider command in the incident and
/// answers with its entries; a command that fails is an entry of type 4, as in XSOAR. Other
/// text is a chat entry.
async fn execute(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let id = entry_target(&body)?;
    let line = text_of(&body, "data")?;
    if !line.trim_start().starts_with('!') {
        let entry = state
            .service
            .add_entry(&Caller::of(&user), id, "chat", &json!({"text": line}))
            .await?;
        return Ok(Json(json!([entry_json(&entry)])).into_response());
    }
    let (_, recorded) = state
        .service
        .run_and_record(&Caller::of(&user), id, line, None)
        .await?;
    Ok(Json(json!([entry_json(&recorded)])).into_response())
}

/// `POST /investigation/{id}`: the war room, oldest first; `pageSize` keeps the latest.
async fn investigation(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Result<Response, ApiError> {
    let id = incident_id(&Value::String(id), "id")?;
    let caller = Caller::of(&user);
    let incident = state.service.visible(&caller, id).await?;
    let all = state.service.entries(&caller, id).await?;
    let wanted = match &body {
        Some(Json(filter)) => EntryFilter::read(filter)?,
        None => EntryFilter::default(),
    };
    wanted.check(id)?;
    let entries: Vec<&WarRoomEntry> = all
        .iter()
        .filter(|e| wanted.keeps(e) && wanted.in_range(e))
        .collect();
    let total = entries.len();
    let keep = wanted.page_size.unwrap_or(total);
    // The latest so many; after `firstID`, the earliest so many (the page that follows it).
    let shown = match wanted.after {
        Some(_) => &entries[..keep.min(total)],
        None => &entries[total.saturating_sub(keep)..],
    };
    let shown: Vec<Value> = shown.iter().map(|e| entry_json(e)).collect();
    let users: std::collections::BTreeSet<&str> = all.iter().map(|e| e.author.as_str()).collect();
    Ok(Json(json!({
        "id": id.to_string(),
        "name": incident.name,
        "status": u8::from(incident.status == Status::Closed),
        "type": 0,
        "users": users,
        "entries": shown,
        "total": total,
    }))
    .into_response())
}

/// The entry filter of `POST /investigation/{id}`: `pageSize` (the latest so many), which
/// entries: `categories` (of XSOAR's: `chats`, `notes`, `commandAndResults`, `incidentInfo`;
/// the others name kinds of entry watchfloor has none of), `users` (their authors), `tags`
/// (entries have none) and `fromTime` (made at or after); and paging by entry id: `lastId`
/// (the page before that entry, older) and `firstID` (the page after it, newer).
#[derive(Default)]
struct EntryFilter {
    page_size: Option<usize>,
    categories: Option<Vec<String>>,
    users: Option<Vec<String>>,
    tagged: bool,
    from: Option<DateTime<Utc>>,
    /// `lastId`: entries before this one.
    before: Option<(i64, i64)>,
    /// `firstID`: entries after this one.
    after: Option<(i64, i64)>,
}

/// An entry id as XSOAR gives it, `N@INVESTIGATION` (or `N` alone): its number and, if
/// given, its investigation. Empty is none.
fn entry_ref(body: &Value, key: &str) -> Result<Option<(i64, i64)>, ApiError> {
    let wrong = || bad(format!("`{key}` must be an entry id such as \"3@42\""));
    let text = match given(body, key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(t)) if t.trim().is_empty() => return Ok(None),
        Some(Value::String(t)) => t.trim().to_string(),
        Some(_) => return Err(wrong()),
    };
    let (number, investigation) = match text.split_once('@') {
        Some((n, i)) => (n, Some(i)),
        None => (text.as_str(), None),
    };
    let number = number.parse::<i64>().map_err(|_| wrong())?;
    let investigation = investigation
        .map(|i| i.parse::<i64>().map_err(|_| wrong()))
        .transpose()?;
    Ok(Some((number, investigation.unwrap_or(-1))))
}

impl EntryFilter {
    fn read(body: &Value) -> Result<EntryFilter, ApiError> {
        let list = |key: &str| -> Result<Option<Vec<String>>, ApiError> {
            match given(body, key) {
                None => Ok(None),
                Some(Value::Array(items)) if items.is_empty() => Ok(None),
                Some(v) => serde_json::from_value(v.clone())
                    .map(Some)
                    .map_err(|_| bad(format!("`{key}` must be a list of strings"))),
            }
        };
        let page_size = match given(body, "pageSize") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| bad("`pageSize` must be a whole number"))?
                    as usize,
            ),
        };
        let from = given_str(body, "fromTime")?
            .filter(|t| !t.is_empty() && !t.starts_with("0001-01-01"))
            .map(|t| {
                watchfloor_core::time::moment(t)
                    .ok_or_else(|| bad(format!("`fromTime` {t:?} is not a time")))
            })
            .transpose()?;
        Ok(EntryFilter {
            page_size,
            categories: list("categories")?,
            users: list("users")?,
            tagged: list("tags")?.is_some(),
            from,
            before: entry_ref(body, "lastId")?,
            after: entry_ref(body, "firstID")?,
        })
    }

    /// Refuses an entry id of another investigation than `id`'s as `lastId` or `firstID`.
    fn check(&self, id: i64) -> Result<(), ApiError> {
        for (key, given) in [("lastId", self.before), ("firstID", self.after)] {
            if let Some((n, investigation)) = given
                && investigation != -1
                && investigation != id
            {
                return Err(bad(format!(
                    "`{key}` {n}@{investigation} is an entry of investigation {investigation}, not {id}"
                )));
            }
        }
        Ok(())
    }

    /// Whether an entry is within `lastId` and `firstID`.
    fn in_range(&self, e: &WarRoomEntry) -> bool {
        self.before.is_none_or(|(n, _)| e.id < n) && self.after.is_none_or(|(n, _)| e.id > n)
    }

    fn keeps(&self, e: &WarRoomEntry) -> bool {
        let category = |c: &String| match c.as_str() {
            "notes" => e.kind == "note",
            "chats" => entry_category(e) == "chat",
            other => entry_category(e) == other,
        };
        !self.tagged
            && self
                .categories
                .as_ref()
                .is_none_or(|c| c.iter().any(category))
            && self.users.as_ref().is_none_or(|u| u.contains(&e.author))
            && self.from.is_none_or(|from| e.created >= from)
    }
}

/// `POST /investigation/{id}/context`: the incident's context.
async fn investigation_context(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = incident_id(&Value::String(id), "id")?;
    Ok(Json(state.service.context(&Caller::of(&user), id).await?).into_response())
}

/// `GET /user`: the caller.
async fn current_user(Extension(user): Extension<Arc<User>>) -> Json<Value> {
    Json(json!({
        "id": user.name,
        "username": user.name,
        "name": user.name,
        "email": "",
        "roles": {"demisto": [user.role.as_str()]},
        "organizations": user.orgs,
    }))
}

/// `GET /about`: the API level served, and the product behind it.
async fn about() -> Json<Value> {
    Json(json!({
        "demistoVersion": DEMISTO_VERSION,
        "buildNum": env!("CARGO_PKG_VERSION"),
        "productMode": "xsoar",
        "deploymentMode": "opp",
        "product": "watchfloor",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
