//! The routes: `/healthz`, `/readyz`, and `/api/v1/incidents[/{id}]`, behind API-key
//! authentication (`Authorization: KEY`, as XSOAR's clients send it, or `Bearer KEY`).

use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete as delete_route, get, patch, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use watchfloor_core::{Change, CloseReason, Edit, Incident, Label, Severity, Status};
use watchfloor_storage::{IncidentFilter, Role, User};

use watchfloor_service::{Caller, QueueParams, Selection, ToEach, queue::TOTAL_CAP};

pub(crate) use crate::error::{ApiError, command_failed, internal, run_failed};
pub(crate) use crate::state::AppState;
use watchfloor_service::accounts::LoginRefused;

pub use crate::endpoint::Endpoint;
use crate::endpoint::{ep, public};

/// The native API: each route's description and its handler.
fn native() -> Vec<(Endpoint, MethodRouter<AppState>)> {
    vec![
        (
            public("GET", "/healthz", "", "alive").returns("text"),
            get(|| async { "ok" }),
        ),
        (
            public("GET", "/readyz", "", "the store can write").returns("text"),
            get(ready),
        ),
        (
            public("GET", "/metrics", "", "Prometheus metrics").returns("text"),
            get(metrics),
        ),
        (
            public(
                "GET",
                "/api/v1/openapi.json",
                "",
                "this API as an OpenAPI document",
            ).returns("object"),
            get(openapi),
        ),
        (
            public(
                "POST",
                "/api/v1/login",
                r#"{"name", "password"}"#,
                "a 12-hour session used like a key: `{\"token\", \"expires\"}`",
            ).returns("Session"),
            post(login),
        ),
        (
            ep("POST", "/api/v1/logout", "", "ends the session").returns("204"),
            post(logout),
        ),
        (ep("GET", "/api/v1/me", "", "the caller").returns("User"), get(me)),
        (
            ep(
                "GET",
                "/api/v1/instances",
                "",
                "the configured instances: integration, fetch, mirroring and health",
            ).returns("[Instance]"),
            get(instances),
        ),
        (
            ep(
                "GET",
                "/api/v1/instances/health",
                "",
                "each instance's health",
            ).returns("[Health]"),
            get(health),
        ),
        (
            ep(
                "POST",
                "/api/v1/instances/{name}/test",
                "",
                "run test-module: `{ok, message}`",
            ).returns("TestResult"),
            post(test_instance),
        ),
        (
            ep(
                "POST",
                "/api/v1/instances/{name}/fetch",
                "",
                "fetch now, until caught up: `{new_incidents, steps, held}` (`held`: scopes left to the process that holds them)",
            ).returns("FetchResult"),
            post(fetch_now),
        ),
        (
            ep(
                "GET",
                "/api/v1/incidents",
                "?status=&severity=&organization=&instance=&owner=&sla=&q=&sort=&order=&after=&count=&limit=",
                "the queue, newest first: `{data, next}`, and with `count=true` `total` (up to 10,000) and `total_capped`; `q` is XSOAR's query syntax (`q=owner:\"\"` for the unassigned; an empty `owner=` is no filter), `after` the `next` of the page before",
            ).returns("IncidentPage"),
            get(list),
        ),
        (
            ep(
                "GET",
                "/api/v1/incidents/facets",
                "?status=&severity=&organization=&instance=&owner=&sla=&q=",
                "the filter counts: for status, severity, organization, owner and instance, how many incidents each value has under the other filters (`{facets: {status: [{value, count}], ...}}`); with text, a time or an SLA state in the filter they are counted among at most 10,000 matching incidents per list, and `sampled` says so when a list reached that",
            ).returns("Facets"),
            get(facets),
        ),
        (
            ep(
                "POST",
                "/api/v1/incidents",
                r#"{"name", "severity", "organization", "type", "details", "raw"}"#,
                "make an incident; `raw`, any JSON, is kept as its source record (searched for indicators, shown as a fetched incident's is)",
            ).returns("201 Incident"),
            post(create),
        ),
        (
            ep(
                "POST",
                "/api/v1/incidents/bulk",
                r#"{"ids" or "filter", "action", "owner", "reason", "notes", "status", "severity", "type", "labels", "text", "mirror", "dry_run"}"#,
                "one change to many incidents, by `ids` or by `filter` (the queue's filters, at most 10,000 matches); `action` is `assign`, `close`, `reopen`, `edit` or `note` (the same note on each): `{changed, failed}`; with `dry_run`, `{dry_run, selected}` and nothing changes",
            ).returns("BulkResult"),
            post(bulk),
        ),
        (
            ep("GET", "/api/v1/incidents/{id}", "", "one incident").returns("Incident"),
            get(one),
        ),
        (
            ep(
                "PATCH",
                "/api/v1/incidents/{id}",
                r#"{"status", "severity", "owner", "type", "labels", "version"}"#,
                "change its fields",
            ).returns("Incident"),
            patch(update),
        ),
        (
            ep(
                "DELETE",
                "/api/v1/incidents/{id}",
                "",
                "delete it (its alert is never fetched again)",
            ).returns("204"),
            delete_route(delete),
        ),
        (
            ep("GET", "/api/v1/incidents/{id}/context", "", "its context").returns("object"),
            get(context),
        ),
        (
            ep(
                "POST",
                "/api/v1/incidents/{id}/close",
                r#"{"reason", "notes", "version"}"#,
                "close it",
            ).returns("Incident"),
            post(close),
        ),
        (
            ep(
                "POST",
                "/api/v1/incidents/{id}/reopen",
                r#"{"version"}"#,
                "reopen it",
            ).returns("Incident"),
            post(reopen),
        ),
        (
            ep(
                "POST",
                "/api/v1/incidents/{id}/notes",
                r#"{"text", "mirror"}"#,
                "add a note, sent to the provider with `mirror`",
            ).returns("201 Entry"),
            post(note),
        ),
        (
            ep("GET", "/api/v1/incidents/{id}/entries", "", "the war room").returns("[Entry]"),
            get(entries),
        ),
        (
            ep(
                "POST",
                "/api/v1/incidents/{id}/run",
                r#"{"line", "instance"}"#,
                "a provider command in the incident's context",
            ).returns("CommandEntry"),
            post(run_in_incident),
        ),
        (
            ep(
                "GET",
                "/api/v1/commands",
                "",
                "the integrations' commands, arguments and outputs",
            ).returns("[Integration]"),
            get(commands),
        ),
        (
            ep(
                "POST",
                "/api/v1/commands/run",
                r#"{"line", "instance"}"#,
                "a command on its own (users who see every organization)",
            ).returns("CommandEntry"),
            post(run_command),
        ),
        (
            ep("GET", "/api/v1/users", "", "the users (admins)").returns("[User]"),
            get(users),
        ),
        (
            ep(
                "POST",
                "/api/v1/users",
                r#"{"name", "role", "orgs", "password"}"#,
                "make a user (admins); a made password is in this answer only",
            ).returns("201 NewUser"),
            post(create_user),
        ),
        (
            ep(
                "PATCH",
                "/api/v1/users/{name}",
                r#"{"role", "orgs"}"#,
                "set a user's role and organizations (admins)",
            ).returns("User"),
            patch(set_user_access),
        ),
        (
            ep(
                "POST",
                "/api/v1/users/{name}/disable",
                "",
                "disable a user and revoke its keys (admins)",
            ).returns("204"),
            post(disable_user),
        ),
        (
            ep(
                "POST",
                "/api/v1/users/{name}/enable",
                "",
                "enable a disabled user; its old keys stay revoked (admins)",
            ).returns("204"),
            post(enable_user),
        ),
        (
            ep(
                "POST",
                "/api/v1/users/{name}/api-key",
                r#"{"replace"}"#,
                "a new API key, in this answer only: `{key, id}`; `replace` revokes the user's others (admins)",
            ).returns("201 NewApiKey"),
            post(user_api_key),
        ),
        (
            ep(
                "GET",
                "/api/v1/users/{name}/api-keys",
                "",
                "the user's API keys: id, created, revoked; never the keys (admins)",
            ).returns("ApiKeys"),
            get(user_api_keys),
        ),
        (
            ep(
                "DELETE",
                "/api/v1/users/{name}/api-keys/{id}",
                "",
                "revoke one API key (admins)",
            ).returns("204"),
            delete_route(revoke_api_key),
        ),
        (
            ep(
                "GET",
                "/api/v1/audit",
                "?since=&limit=",
                "the audit log, newest first: logins, sessions, keys and users (admins)",
            ).returns("AuditLog"),
            get(audit),
        ),
    ]
    .into_iter()
    .chain(crate::rules_api::routes())
    .chain(crate::notify_api::routes())
    .chain(crate::indicators_api::routes())
    .chain(crate::reports_api::routes())
    .collect()
}

/// The native API's routes, for docs.
pub fn endpoints() -> Vec<Endpoint> {
    native().into_iter().map(|(e, _)| e).collect()
}

pub fn router(state: AppState) -> Router {
    let mut open = Router::new();
    let mut api = Router::new();
    for (endpoint, handler) in native() {
        if endpoint.authenticated {
            api = api.route(endpoint.path, handler);
        } else {
            open = open.route(endpoint.path, handler);
        }
    }
    let api = api
        .merge(crate::xsoar::routes())
        .nest("/xsoar", crate::xsoar::routes())
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn(json_errors));
    open.route("/health/server", get(|| async { "ok" }))
        .merge(crate::ui::routes(state.clone()))
        .merge(api)
        .fallback(crate::ui::not_found)
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

/// A request the framework refused before a handler ran (a query string or body that does
/// not read as the route's) is answered as every error is, `{error, code}`, with where to look.
/// A body of the wrong shape is a bad request (400, `bad_request`), as the handlers' own checks
/// answer it; the framework says 422, which here means a change the lifecycle refuses.
async fn json_errors(req: Request, next: Next) -> Response {
    let answer = next.run(req).await;
    let plain = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    if !(answer.status().is_client_error() && plain) {
        return answer;
    }
    let status = match answer.status() {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        other => other,
    };
    let body = axum::body::to_bytes(answer.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let said = String::from_utf8_lossy(&body);
    ApiError(
        status,
        format!(
            "{}; GET /api/v1/openapi.json says what each route takes",
            said.trim()
        ),
    )
    .into_response()
}

/// Every request: a request id (the caller's `x-request-id` if it is a short token, else a new
/// one) on the log lines it causes and on its answer, and its count and latency by route.
async fn observe(mut req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_string)
        .unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            let _ = getrandom::fill(&mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    if let Ok(v) = id.parse() {
        req.headers_mut().insert("x-request-id", v);
    }
    let span = tracing::info_span!("request", id = %id, %method, %route);
    let mut answer = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = answer.status();
    span.in_scope(|| tracing::debug!(status = status.as_u16(), "answered"));
    use watchfloor_core::metrics::{HTTP_LATENCY, HTTP_REQUESTS};
    HTTP_REQUESTS.add(
        &[
            ("method", &method),
            ("route", &route),
            ("status", status.as_str()),
        ],
        1,
    );
    HTTP_LATENCY.observe(&[("route", &route)], started.elapsed().as_secs_f64());
    if let Ok(v) = id.parse() {
        answer.headers_mut().insert("x-request-id", v);
    }
    answer
}

/// The native API as an OpenAPI 3.1 document, made from [`native`].
pub fn openapi_document() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    let error = json!({"$ref": "#/components/schemas/Error"});
    let answer = |description: &str, schema: &serde_json::Value| json!({"description": description, "content": {"application/json": {"schema": schema}}});
    let done = |returns: &str| {
        let (status, body) = crate::schemas::answer(returns);
        let answer = match body {
            Some((media, schema)) => {
                json!({"description": "done", "content": {media: {"schema": schema}}})
            }
            None => json!({"description": "done, with no body"}),
        };
        (status, answer)
    };
    for e in endpoints() {
        let (query, body) = takes_of(e.takes);
        let mut parameters: Vec<serde_json::Value> = e
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(query.iter().map(|name| {
            json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}})
        }));
        let mut operation = json!({
            "summary": e.summary,
            "operationId": format!("{} {}", e.method.to_ascii_lowercase(), e.path),
            "parameters": parameters,
            "responses": {
                "400": answer("the request is wrong: `error` says how", &error),
                "409": answer("the record changed since it was read (a stale `version`), or it cannot change so: `error` says why", &error),
                "422": answer("the change is refused (say, a closed incident's fields): `error` says why", &error),
                "502": answer("the provider or the receiver failed: `error` has its own message", &error),
                "503": answer("the store is not available now", &error),
            },
        });
        if e.path == "/api/v1/login" {
            operation["responses"]["401"] = answer("the name or the password is wrong", &error);
            operation["responses"]["429"] = answer(
                "too many failed logins: wait the `Retry-After` seconds",
                &error,
            );
        }
        let (status, ok) = done(e.returns);
        operation["responses"][status] = ok;
        if let Some(fields) = body {
            let properties: serde_json::Map<String, serde_json::Value> =
                fields.into_iter().map(|f| (f, json!({}))).collect();
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"type": "object", "properties": properties}}},
            });
        }
        if !e.takes.is_empty() {
            operation["description"] = json!(format!("Takes {}", e.takes));
        }
        if e.authenticated {
            operation["security"] = json!([{"apiKey": []}]);
            operation["responses"]["401"] = answer("no valid key or session", &error);
            operation["responses"]["403"] = answer("the caller may not do this", &error);
            operation["responses"]["404"] =
                answer("no such record in the caller's organizations", &error);
        }
        let item = paths.entry(e.path).or_insert_with(|| json!({}));
        item[e.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "watchfloor", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "Authorization"}},
            "schemas": crate::schemas::components(),
        },
    })
}

/// What a route's `takes` names: its query parameters (`?a=&b=`), or its JSON body's fields
/// (`{"a", "b"}`).
fn takes_of(takes: &str) -> (Vec<String>, Option<Vec<String>>) {
    let takes = takes.trim();
    if let Some(query) = takes.strip_prefix('?') {
        let names = query
            .split('&')
            .filter_map(|p| p.split('=').next())
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        return (names, None);
    }
    if let Some(fields) = takes.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let names = fields
            .split(',')
            .map(|f| f.trim().trim_matches('"').to_string())
            .filter(|f| !f.is_empty())
            .collect();
        return (Vec::new(), Some(names));
    }
    (Vec::new(), None)
}

async fn openapi() -> Json<serde_json::Value> {
    Json(openapi_document())
}

/// The README's table of routes, made from [`native`].
pub fn markdown_table() -> String {
    let mut out = String::from("| route | takes | what |\n|---|---|---|\n");
    for e in endpoints() {
        let takes = if e.takes.is_empty() {
            String::new()
        } else {
            format!("`{}`", e.takes)
        };
        let key = if e.authenticated { "" } else { " (no key)" };
        out.push_str(&format!(
            "| `{} {}` | {takes} | {}{key} |\n",
            e.method, e.path, e.summary
        ));
    }
    out
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.store.can_write().await {
        Ok(()) => "ready".into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store cannot write: {e}"),
        )
            .into_response(),
    }
}

/// Prometheus text: incidents by status, and each instance's health. Counts only, so no key is
/// needed, as is usual for a scrape endpoint on an internal address.
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut out = String::from(
        "# HELP watchfloor_incidents Incidents by status.\n# TYPE watchfloor_incidents gauge\n",
    );
    for status in [Status::Pending, Status::Active, Status::Closed] {
        let filter = IncidentFilter {
            status: vec![status],
            ..IncidentFilter::default()
        };
        let n = state
            .store
            .count_matching(&filter)
            .await
            .map_err(internal)?;
        out.push_str(&format!(
            "watchfloor_incidents{{status=\"{}\"}} {n}\n",
            status.as_str()
        ));
    }
    let health = state.store.health().await.map_err(internal)?;
    out.push_str("# HELP watchfloor_instance_failures Consecutive failed cycles of an instance.\n# TYPE watchfloor_instance_failures gauge\n");
    for h in &health {
        out.push_str(&format!(
            "watchfloor_instance_failures{{instance=\"{}\"}} {}\n",
            label(&h.instance),
            h.consecutive_failures
        ));
    }
    out.push_str("# HELP watchfloor_instance_last_success_seconds When an instance last succeeded, as a Unix time.\n# TYPE watchfloor_instance_last_success_seconds gauge\n");
    for h in health.iter().filter(|h| h.last_success.is_some()) {
        out.push_str(&format!(
            "watchfloor_instance_last_success_seconds{{instance=\"{}\"}} {}\n",
            label(&h.instance),
            h.last_success.map_or(0, |t| t.timestamp())
        ));
    }
    out.push_str("# HELP watchfloor_outbox_depth Changes waiting to be pushed to the provider, by instance.\n# TYPE watchfloor_outbox_depth gauge\n");
    for (instance, depth) in state.store.outbox_depth().await.map_err(internal)? {
        out.push_str(&format!(
            "watchfloor_outbox_depth{{instance=\"{}\"}} {depth}\n",
            label(&instance)
        ));
    }
    out.push_str(&watchfloor_core::metrics::render());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// A label value as Prometheus escapes it.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Finds the caller by API key; the user goes to the route as an extension.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string());
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "send an API key in the Authorization header (`watchfloor users api-key NAME` makes one)".into(),
        )
        .into_response();
    };
    match state.service.authenticate(&key).await {
        Ok(Some(user)) => {
            req.extensions_mut().insert(Arc::new(user));
            next.run(req).await
        }
        Ok(None) => ApiError(
            StatusCode::UNAUTHORIZED,
            "the API key is not valid, or was revoked".into(),
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A page of the queue, serialized as it is (not through a JSON tree: a page is hot).
#[derive(serde::Serialize)]
struct Page<'a> {
    data: &'a [Incident],
    total: Option<usize>,
    total_capped: Option<bool>,
    next: Option<String>,
}

/// `GET /api/v1/incidents/facets`: the list's filter counts.
async fn facets(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Query(q): Query<QueueParams>,
) -> Result<Response, ApiError> {
    let Some(f) = state.service.queue_facets(&Caller::of(&user), &q).await? else {
        return Ok(Json(json!({
            "facets": null,
            "why": "counts are kept for status, severity, organization, owner and instance; this filter also has text or an SLA state",
        }))
        .into_response());
    };
    let list = |items: Vec<(serde_json::Value, u64)>| -> serde_json::Value {
        items
            .into_iter()
            .map(|(value, count)| json!({"value": value, "count": count}))
            .collect()
    };
    Ok(Json(json!({"sampled": f.sampled, "facets": {
        "status": list(f.status.into_iter().map(|(s, n)| (json!(s.as_str()), n)).collect()),
        "severity": list(f.severity.into_iter().map(|(s, n)| (json!(s.label()), n)).collect()),
        "organization": list(f.organization.into_iter().map(|(o, n)| (json!(o), n)).collect()),
        "owner": list(f.owner.into_iter().map(|(o, n)| (json!(o), n)).collect()),
        "instance": list(f.instance.into_iter().map(|(i, n)| (json!(i), n)).collect()),
    }}))
    .into_response())
}

async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Query(q): Query<QueueParams>,
) -> Result<Response, ApiError> {
    let watchfloor_service::QueuePage {
        incidents,
        total,
        next,
    } = state.service.queue_page(&Caller::of(&user), &q).await?;
    Ok(Json(Page {
        data: &incidents,
        total,
        total_capped: total.map(|t| t >= TOTAL_CAP),
        next,
    })
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    name: String,
    password: String,
}

/// A session for a name and password; the answer never says which of the two was wrong.
async fn login(
    State(state): State<AppState>,
    ConnectInfo(crate::Peer(addr)): ConnectInfo<crate::Peer>,
    Json(body): Json<LoginBody>,
) -> Result<Response, ApiError> {
    match state.service.login(&body.name, &body.password, addr).await {
        Ok((token, expires)) => {
            Ok(Json(json!({"token": token, "expires": expires})).into_response())
        }
        Err(e @ LoginRefused::Wait(secs)) => {
            let mut answer = ApiError(StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response();
            if let Ok(v) = secs.to_string().parse() {
                answer.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(answer)
        }
        Err(e @ LoginRefused::Wrong) => Err(ApiError(StatusCode::UNAUTHORIZED, e.to_string())),
        Err(LoginRefused::Failed(e)) => Err(e.into()),
    }
}

async fn logout(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    ConnectInfo(crate::Peer(addr)): ConnectInfo<crate::Peer>,
    req_headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = req_headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
    {
        state
            .service
            .logout(&Caller::of(&user).at(addr), token)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn me(Extension(user): Extension<Arc<User>>) -> Json<User> {
    Json((*user).clone())
}

async fn health(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.health(&Caller::of(&user)).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    severity: String,
    organization: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    details: String,
    #[serde(default)]
    raw: Option<serde_json::Value>,
}

async fn create(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    let incident = watchfloor_storage::ManualIncident {
        name: body.name,
        severity: Severity::parse(&body.severity)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?,
        organization: body.organization,
        kind: body.kind.unwrap_or_else(|| "Manual".into()),
        details: body.details,
        raw: body.raw,
        ..Default::default()
    };
    let created = state.service.create(&Caller::of(&user), incident).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    state.service.delete(&Caller::of(&user), id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn context(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.context(&Caller::of(&user), id).await?).into_response())
}

async fn one(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.visible(&Caller::of(&user), id).await?).into_response())
}

async fn apply(
    state: &AppState,
    user: &User,
    id: i64,
    version: Option<i64>,
    change: &Change,
) -> Result<Response, ApiError> {
    let changed = state
        .service
        .change(&Caller::of(user), id, version, change)
        .await?;
    Ok(Json(changed).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    version: Option<i64>,
    status: Option<String>,
    severity: Option<String>,
    /// A name, or null to unassign.
    #[serde(default, deserialize_with = "some_or_null")]
    owner: Option<Option<String>>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    labels: Vec<Label>,
}

fn some_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn update(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
    Json(body): Json<UpdateBody>,
) -> Result<Response, ApiError> {
    let bad = |e: String| ApiError(StatusCode::BAD_REQUEST, e);
    let edit = Edit {
        status: body
            .status
            .as_deref()
            .map(Status::parse)
            .transpose()
            .map_err(bad)?,
        severity: body
            .severity
            .as_deref()
            .map(Severity::parse)
            .transpose()
            .map_err(bad)?,
        owner: body.owner,
        kind: body.kind,
        labels: body.labels,
    };
    apply(&state, &user, id, body.version, &Change::Update(edit)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    version: Option<i64>,
    reason: String,
    notes: Option<String>,
}

async fn close(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
    Json(body): Json<CloseBody>,
) -> Result<Response, ApiError> {
    let reason =
        CloseReason::parse(&body.reason).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let change = Change::Close {
        reason,
        notes: body.notes,
    };
    apply(&state, &user, id, body.version, &change).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReopenBody {
    version: Option<i64>,
}

async fn reopen(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
    body: Option<Json<ReopenBody>>,
) -> Result<Response, ApiError> {
    let version = body.and_then(|b| b.0.version);
    apply(&state, &user, id, version, &Change::Reopen).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    text: String,
    #[serde(default)]
    mirror: bool,
}

async fn note(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
    Json(body): Json<NoteBody>,
) -> Result<Response, ApiError> {
    let entry = state
        .service
        .note(&Caller::of(&user), id, &body.text, body.mirror)
        .await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

async fn commands(State(state): State<AppState>) -> Result<Response, ApiError> {
    let defs: Vec<serde_json::Value> = state
        .runner()?
        .definitions()
        .into_iter()
        .map(|d| watchfloor_core::docs::definition_json(d, None))
        .collect();
    Ok(Json(defs).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// The command line, e.g. `!command arg=value`.
    line: String,
    instance: Option<String>,
}

/// A provider command on its own. Provider answers are not tied to an organization, so only
/// users who see every organization (and may change things) run commands this way; others run
/// them in an incident's context.
async fn run_command(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<RunBody>,
) -> Result<Response, ApiError> {
    let entry = state
        .service
        .run_command(&Caller::of(&user), &body.line, body.instance.as_deref())
        .await?
        .map_err(run_failed)?;
    Ok(Json(entry.to_json()).into_response())
}

async fn run_in_incident(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
    Json(body): Json<RunBody>,
) -> Result<Response, ApiError> {
    let entry = state
        .service
        .run_in_incident(&Caller::of(&user), id, &body.line, body.instance.as_deref())
        .await?
        .map_err(command_failed)?;
    Ok(Json(entry.to_json()).into_response())
}

async fn entries(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.entries(&Caller::of(&user), id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    /// The incidents, by id; or else `filter`.
    ids: Option<Vec<i64>>,
    /// Every incident these queue filters match (as `GET /api/v1/incidents` takes them), at
    /// most 10,000.
    filter: Option<QueueParams>,
    /// `assign` (with `owner`, or null to unassign), `close` (with `reason`, `notes`),
    /// `reopen`, `edit` (with any of `status`, `severity`, `owner`, `type`, `labels`), or
    /// `note` (with `text`, and `mirror` to send it to the provider too).
    action: String,
    #[serde(default, deserialize_with = "some_or_null")]
    owner: Option<Option<String>>,
    reason: Option<String>,
    notes: Option<String>,
    status: Option<String>,
    severity: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    labels: Option<Vec<Label>>,
    text: Option<String>,
    mirror: Option<bool>,
    /// Change nothing: answer which incidents the change would be tried on.
    #[serde(default)]
    dry_run: bool,
}

impl BulkBody {
    /// The change `action` asks for, refusing a field that action does not take.
    fn action(self) -> Result<ToEach, String> {
        let given = [
            ("owner", self.owner.is_some()),
            ("reason", self.reason.is_some()),
            ("notes", self.notes.is_some()),
            ("status", self.status.is_some()),
            ("severity", self.severity.is_some()),
            ("type", self.kind.is_some()),
            ("labels", self.labels.is_some()),
            ("text", self.text.is_some()),
            ("mirror", self.mirror.is_some()),
        ];
        let takes: &[&str] = match self.action.as_str() {
            "assign" => &["owner"],
            "close" => &["reason", "notes"],
            "reopen" => &[],
            "edit" => &["owner", "status", "severity", "type", "labels"],
            "note" => &["text", "mirror"],
            other => {
                return Err(format!(
                    "`action` {other:?}: use assign, close, reopen, edit or note"
                ));
            }
        };
        if let Some((field, _)) = given.iter().find(|(f, set)| *set && !takes.contains(f)) {
            return Err(format!(
                "`{field}` is not part of action `{}`: it takes {}",
                self.action,
                match takes {
                    [] => "nothing more".to_string(),
                    fields => fields.join(", "),
                }
            ));
        }
        Ok(ToEach::Change(match self.action.as_str() {
            "note" => {
                return Ok(ToEach::Note {
                    text: self.text.ok_or("a note needs its `text`")?,
                    mirror: self.mirror.unwrap_or(false),
                });
            }
            "assign" => Change::Update(Edit {
                owner: Some(self.owner.flatten()),
                ..Edit::default()
            }),
            "close" => Change::Close {
                reason: CloseReason::parse(self.reason.as_deref().unwrap_or_default())?,
                notes: self.notes,
            },
            "reopen" => Change::Reopen,
            _ => {
                if !given.iter().any(|(_, set)| *set) {
                    return Err(
                        "an edit sets at least one of status, severity, owner, type, labels".into(),
                    );
                }
                Change::Update(Edit {
                    status: self.status.as_deref().map(Status::parse).transpose()?,
                    severity: self.severity.as_deref().map(Severity::parse).transpose()?,
                    owner: self.owner,
                    kind: self.kind,
                    labels: self.labels.unwrap_or_default(),
                })
            }
        }))
    }
}

/// One change to many incidents, named by id or by the queue's filters. Each goes through the
/// same rules as a change to one; the answer lists the changed incidents and, for each of the
/// others, why not. With `dry_run`, nothing changes and the answer lists the incidents the
/// change would be tried on.
async fn bulk(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<BulkBody>,
) -> Result<Response, ApiError> {
    let bad = |e: String| ApiError(StatusCode::BAD_REQUEST, e);
    let selection = match (body.ids.clone(), body.filter.clone()) {
        (Some(ids), None) => Selection::Ids(ids),
        (None, Some(filter)) => Selection::Matching(Box::new(filter)),
        _ => {
            return Err(bad(
                "give the incidents either by `ids` or by `filter`, one of the two".into(),
            ));
        }
    };
    let dry_run = body.dry_run;
    let action = body.action().map_err(bad)?;
    let caller = Caller::of(&user);
    if dry_run {
        let selected = state
            .service
            .preview_each(&caller, &selection, &action)
            .await?;
        return Ok(Json(json!({"dry_run": true, "selected": selected})).into_response());
    }
    let (changed, failed) = state
        .service
        .to_each_selected(&caller, &selection, &action)
        .await?;
    let failed: Vec<serde_json::Value> = failed
        .into_iter()
        .map(|(id, error)| json!({"id": id, "error": error}))
        .collect();
    Ok(Json(json!({"changed": changed, "failed": failed})).into_response())
}

async fn users(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.users(&Caller::of(&user)).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    name: String,
    role: String,
    #[serde(default)]
    orgs: Vec<String>,
    password: Option<String>,
}

/// Makes a user; without a password, one is made and shown in this answer only.
async fn create_user(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    ConnectInfo(crate::Peer(addr)): ConnectInfo<crate::Peer>,
    Json(body): Json<NewUserBody>,
) -> Result<Response, ApiError> {
    let caller = Caller::of(&user).at(addr);
    state.service.admin_only(&caller)?;
    let role = Role::parse(&body.role).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let (created, password) = state
        .service
        .create_user(&caller, &body.name, role, &body.orgs, body.password)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": created, "password": password})),
    )
        .into_response())
}

async fn disable_user(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    ConnectInfo(crate::Peer(addr)): ConnectInfo<crate::Peer>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set_user_enabled(&state, Caller::of(&user).at(addr), &name, false).await
}

async fn enable_user(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    ConnectInfo(crate::Peer(addr)): ConnectInfo<crate::Peer>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set_user_enabled(&state, Caller::of(&user).at(addr), &name, true).await
}

async fn set_user_enabled(
    state: &AppState,
    caller: Caller,
    name: &str,
    enabled: bool,
) -> Result<Response, ApiError> {
    match enabled {
        true => state.service.enable_user(&caller, name).await?,
        false => state.service.disable_user(&caller, name).await?,
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    #[serde(default)]
    replace: bool,
}

/// A new API key for a user, shown in this answer only; with `replace`, its others are
/// revoked.
async fn user_api_key(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    ConnectInfo(crate::Peer(addr)): ConnectInfo<crate::Peer>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: NewKeyBody = match body.iter().all(u8::is_ascii_whitespace) {
        true => NewKeyBody::default(),
        false => serde_json::from_slice(&body)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))?,
    };
    let (key, id) = state
        .service
        .new_api_key(&Caller::of(&user).at(addr), &name, body.replace)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"key": key, "id": id}))).into_response())
}

async fn user_api_keys(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let keys = state.service.api_keys(&Caller::of(&user), &name).await?;
    Ok(Json(json!({"keys": keys})).into_response())
}

async fn revoke_api_key(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    ConnectInfo(crate::Peer(addr)): ConnectInfo<crate::Peer>,
    Path((name, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    state
        .service
        .revoke_api_key(&Caller::of(&user).at(addr), &name, id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    since: Option<String>,
    limit: Option<usize>,
}

/// The audit log, newest first (admins).
async fn audit(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Query(params): Query<AuditParams>,
) -> Result<Response, ApiError> {
    let since = params
        .since
        .as_deref()
        .map(|t| watchfloor_core::time::parse_time(t, chrono::Utc::now()))
        .transpose()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("since: {e}")))?;
    let events = state
        .service
        .audit(&Caller::of(&user), since, params.limit.unwrap_or(1_000))
        .await?;
    Ok(Json(json!({"events": events})).into_response())
}

/// The configured instances with their settings and health; no parameters, so no secrets.
async fn instances(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
) -> Result<Response, ApiError> {
    let runner = state.runner()?;
    let health = state.service.health(&Caller::of(&user)).await?;
    let mut out = Vec::new();
    for name in runner.instance_names() {
        let h = health.iter().find(|h| h.instance == name);
        let entry = match runner.instance(name) {
            Ok(inst) => json!({
                "name": name,
                "integration": inst.integration,
                "fetch": inst.fetch.enabled,
                "fetch_interval_seconds": inst.fetch.interval.as_secs(),
                "mirror": format!("{:?}", inst.mirror).to_ascii_lowercase(),
                "health": h,
            }),
            Err(e) => json!({"name": name, "error": e.to_string(), "health": h}),
        };
        out.push(entry);
    }
    Ok(Json(out).into_response())
}

async fn test_instance(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let answer = match state
        .service
        .test_instance(&Caller::of(&user), &name)
        .await?
    {
        Ok(message) => json!({"ok": true, "message": message}),
        Err(message) => json!({"ok": false, "message": message}),
    };
    Ok(Json(answer).into_response())
}

async fn fetch_now(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let report = state
        .service
        .fetch_instance(&Caller::of(&user), &name)
        .await?
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, e))?;
    Ok(Json(json!({
        "new_incidents": report.new_incidents,
        "steps": report.steps,
        "held": report.held,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessBody {
    role: String,
    #[serde(default)]
    orgs: Vec<String>,
}

/// Sets a user's role and organizations; the change applies to its next request.
async fn set_user_access(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    ConnectInfo(crate::Peer(addr)): ConnectInfo<crate::Peer>,
    Path(name): Path<String>,
    Json(body): Json<AccessBody>,
) -> Result<Response, ApiError> {
    let caller = Caller::of(&user).at(addr);
    state.service.admin_only(&caller)?;
    let role = Role::parse(&body.role).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let changed = state
        .service
        .set_user_access(&caller, &name, role, &body.orgs)
        .await?;
    Ok(Json(changed).into_response())
}
