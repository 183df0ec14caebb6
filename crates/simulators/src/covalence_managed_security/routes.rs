//! Routes and handlers of the FES Portal and Broker simulator: authentication, control
//! endpoints, portal reads, transitions and comments, and Broker actions.

use super::*;

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

pub(super) fn control_routes(app: AppState) -> Router {
    Router::new()
        .route("/_sim/faults", get(get_faults).post(set_faults))
        .route("/_sim/requests", get(get_requests))
        .route("/_sim/aros", post(add_aro))
        .with_state(app)
}

pub(super) fn portal_routes(app: AppState) -> Router {
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

pub(super) fn broker_routes(app: AppState) -> Router {
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
    /// Fields that replace the generated ones, e.g. a malformed `creation_time` or a huge
    /// `details` (hostile modes).
    #[serde(default)]
    fields: Map<String, Value>,
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
    let aro = s.new_aro(new.org_index, &new.title, now);
    let aro = s.override_aro(&aro, new.fields);
    Ok(Json(aro).into_response())
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
/// With `endless` (a hostile mode), every page says there is another, and pages past the data
/// repeat its first item under a new id.
fn page_envelope<T>(
    items: &[T],
    params: &Map<String, Value>,
    endless: bool,
    shown: impl Fn(&T) -> Value,
) -> Result<Value, ApiError> {
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
    let first = items.first().map(&shown);
    let mut slice: Vec<Value> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(&shown)
        .collect();
    if endless
        && slice.is_empty()
        && let Some(mut item) = first
    {
        item["ID"] = json!(format!("endless-page-{page}"));
        slice.push(item);
    }
    Ok(json!({
        "items": slice, "page": page, "pages": pages, "per_page": per_page, "total": total,
        "has_next": endless || page < pages, "has_prev": page > 1,
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
    // `id=` is looked up, as a portal's index would, rather than scanned for.
    let candidates: Box<dyn Iterator<Item = &Value>> =
        match params.get("id").and_then(Value::as_str) {
            Some(id) => Box::new(s.by_id.get(id).and_then(|&at| s.aros.get(at)).into_iter()),
            None => Box::new(s.aros.iter()),
        };
    let (since_text, until_text) = (
        since.map(|t| t.format(TIME_FORMAT).to_string()),
        until.map(|t| t.format(TIME_FORMAT).to_string()),
    );
    let mut aros: Vec<&Value> = candidates
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
            // The portal's own format compares as text; anything else is parsed. A poisoned
            // record (a time that is not one) matches every window, as a portal that cannot
            // compare it would send it.
            let text = a["creation_time"].as_str().unwrap_or_default();
            if well_formed(text) {
                since_text.as_deref().is_none_or(|s| text >= s)
                    && until_text.as_deref().is_none_or(|u| text <= u)
            } else {
                let created = NaiveDateTime::parse_from_str(text, TIME_FORMAT).ok();
                created.is_none()
                    || (since.is_none_or(|s| created.is_some_and(|c| c >= s))
                        && until.is_none_or(|u| created.is_some_and(|c| c <= u)))
            }
        })
        .collect();
    sort_newest_first(&mut aros);
    let faults = app.faults.get();
    let huge_id = (faults.huge_record_mib > 0)
        .then(|| s.aros.last().map(|a| a["ID"].clone()))
        .flatten();
    let pad = "p".repeat(faults.pad_records_kib as usize * 1024);
    let huge = "h".repeat(faults.huge_record_mib as usize * 1024 * 1024);
    // Only the page asked for is copied and shown: a listing of thousands costs its page.
    let shown = |aro: &&Value| {
        let mut aro = public_aro(aro);
        if faults.nul_in_text
            && let Some(title) = aro["title"].as_str()
        {
            aro["title"] = Value::String(format!("nul\u{0}{title}"));
        }
        if !pad.is_empty() {
            pad_details(&mut aro, &pad);
        }
        if huge_id.as_ref().is_some_and(|id| aro["ID"] == *id) {
            pad_details(&mut aro, &huge);
        }
        aro
    };
    Ok(Json(page_envelope(&aros, &params, faults.endless_pages, shown)?).into_response())
}

/// Whether `text` is a time in the portal's format (`2024-05-02 14:03:11`), which compares as
/// text in time order.
fn well_formed(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(n, c)| match n {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Appends `pad` to an ARO's details.
fn pad_details(aro: &mut Value, pad: &str) {
    let details = aro["details"].as_str().unwrap_or_default();
    aro["details"] = Value::String(format!("{details}{pad}"));
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
    let matching: Vec<&Value> = items
        .iter()
        .filter(|item| wanted.is_none_or(|w| item[field] == w))
        .collect();
    Ok(Json(page_envelope(&matching, params, false, |v| (*v).clone())?).into_response())
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
    aro["resolution_time"] = if closed { json!(time) } else { Value::Null };
    let aro = aro.clone();
    s.transitions.push((id.clone(), resolution.to_string()));
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
        o.insert("data".into(), json!({}));
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
