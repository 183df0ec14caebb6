//! Routes and handlers of the Covalence simulator: the broker index, form login and sessions,
//! table-driven list endpoints with paging and `advancedFilter`, and internal networks.

use super::*;

pub(super) fn router(app: App, faults: &Faults) -> Router {
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
    State((app, faults)): State<AppState>,
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
        // Hostile mode: every page is full, with new ids past the data.
        Ok(mut items) if faults.get().endless_pages => {
            let want = params
                .get("maxCount")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(100)
                .min(MAX_PAGE);
            let start = params.get("initialIndex").cloned().unwrap_or_default();
            if let Some(first) = s.appliances[index]
                .collections
                .get("alerts")
                .and_then(|a| a.first())
            {
                for n in items.len()..want {
                    let mut extra = first.clone();
                    extra["id"] = json!(format!("endless-{start}-{n}"));
                    items.push(extra);
                }
            }
            Json(items).into_response()
        }
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
