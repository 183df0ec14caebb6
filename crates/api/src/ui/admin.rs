//! Instances (health, test, fetch now, mirroring), users (admins: create, disable, enable, API
//! keys) and the audit log.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use watchfloor_storage::{Role, User};

use super::{
    Csrf, FormData, csrf_field, error_page, flash, layout, message_of, redirect_with, when,
};
use crate::Peer;
use crate::error::ApiError;
use crate::state::AppState;
use watchfloor_service::Caller;

/// Whether the user may act on instances (the service's rule).
fn acts_on_instances(state: &AppState, user: &User) -> bool {
    state.service.may_run_instances(&Caller::of(user)).is_ok()
}

pub(crate) async fn instances(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    RawQuery(query): RawQuery,
) -> Response {
    let health = match state.service.health(&Caller::of(&user)).await {
        Ok(h) => h,
        Err(e) => return error_page(e.into()),
    };
    let names: Vec<String> = state
        .runner
        .as_ref()
        .map(|r| r.instance_names().into_iter().map(str::to_string).collect())
        .unwrap_or_default();
    let acts = acts_on_instances(&state, &user);
    // Channels carry every organization's incidents: shown to those who see them all.
    let channels = state
        .service
        .channel_views(&Caller::of(&user))
        .await
        .unwrap_or_default();
    let body = html! {
        (flash(message_of(query.as_deref()).as_deref()))
        h1 { "Instances" }
        @if names.is_empty() { p.hint { "No instances are configured: start serve with a config file." } }
        table.grid {
            thead { tr {
                th { "Instance" } th { "Integration" } th { "Fetch" } th { "Mirroring" }
                th { "Last success" } th { "Last error" } th.num { "Failures in a row" } th { "Last cycle" }
                @if acts { th {} }
            } }
            tbody {
                @for name in &names {
                    @let inst = state.runner.as_ref().and_then(|r| r.instance(name).ok());
                    @let h = health.iter().find(|h| &h.instance == name);
                    tr {
                        td { (name) }
                        td { (inst.as_ref().map(|i| i.integration).unwrap_or("not set up")) }
                        td { @if let Some(i) = &inst { @if i.fetch.enabled { "every " (humantime_secs(i.fetch.interval.as_secs())) } @else { "off" } } }
                        td { @if let Some(i) = &inst { (format!("{:?}", i.mirror).to_ascii_lowercase()) } }
                        td { (h.and_then(|h| h.last_success).map(when).unwrap_or_else(|| "never".into())) }
                        td.error {
                            (long_text(&h.and_then(|h| h.last_error.clone()).unwrap_or_default()))
                            @if let Some(h) = h.filter(|h| h.scopes.len() > 1) {
                                @let failing = h.scopes.iter().filter(|s| s.consecutive_failures > 0).count();
                                @if failing > 0 { br; span.hint { (failing) " of " (h.scopes.len()) " scopes failing" } }
                            }
                        }
                        td.num class=[h.filter(|h| h.consecutive_failures > 0).map(|_| "bad")] { (h.map_or(0, |h| h.consecutive_failures)) }
                        td { @if let Some(h) = h { (h.incidents_last_cycle) " new" @if let Some(t) = h.last_cycle_at { " · " (when(t)) } } }
                        @if acts {
                            td.actions {
                                form method="post" action={ "/instances/" (name) "/test" } {
                                    (csrf_field(&csrf)) button type="submit" { "Test" }
                                }
                                @if inst.as_ref().is_some_and(|i| i.fetch.enabled) {
                                    form method="post" action={ "/instances/" (name) "/fetch" } {
                                        (csrf_field(&csrf)) button type="submit" { "Fetch now" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !channels.is_empty() {
            h2 { "Notification channels" }
            p { a href="/notifications" { "What was sent, and what failed" } }
            table.grid {
                thead { tr {
                    th { "Channel" } th { "Kind" } th { "Delivers to" } th.num { "Per hour at most" }
                    th.num { "Waiting" } th.num { "Sent in the last hour" } th.num { "Failed in the last day" } th { "Last error" }
                    @if user.role == Role::Admin { th {} }
                } }
                tbody {
                    @for c in &channels {
                        tr {
                            td { (c.name) } td { (c.kind) } td { (c.target) } td.num { (c.max_per_hour) }
                            td.num { (c.stats.waiting) } td.num { (c.stats.sent_last_hour) }
                            td.num class=[(c.stats.failed_last_day > 0).then_some("bad")] { (c.stats.failed_last_day) }
                            td.error { (long_text(&c.stats.last_error.clone().unwrap_or_default())) @if let Some(t) = c.stats.last_error_at { " · " (when(t)) } }
                            @if user.role == Role::Admin {
                                td.actions {
                                    form method="post" action={ "/channels/" (c.name) "/test" } {
                                        (csrf_field(&csrf)) button type="submit" { "Send a test" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Instances", &user, &csrf, "Instances", body)
}

fn humantime_secs(secs: u64) -> String {
    super::span_text(secs as i64)
}

/// A provider's error as a cell shows it: up to 160 characters, the whole text a click away,
/// so that a long one keeps the row's buttons on screen.
fn long_text(text: &str) -> Markup {
    const SHOWN: usize = 160;
    match text.char_indices().nth(SHOWN) {
        None => html! { (text) },
        Some((cut, _)) => html! {
            details.long {
                summary { (&text[..cut]) "…" }
                (text)
            }
        },
    }
}

/// An instance action's answer: the outcome on the instances page, or an error page when the
/// user may not act or there is no such instance.
fn after_instance_action(name: &str, outcome: Result<String, ApiError>) -> Response {
    match outcome {
        Ok(message) => redirect_with("/instances", &format!("{name}: {message}")),
        Err(e) if e.0 == StatusCode::FORBIDDEN || e.0 == StatusCode::NOT_FOUND => error_page(e),
        Err(e) => redirect_with("/instances", &format!("{name}: {}", e.1)),
    }
}

pub(crate) async fn test_instance(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = FormData::checked(&body, &csrf) {
        return r;
    }
    let outcome = state
        .service
        .test_instance(&Caller::of(&user), &name)
        .await
        .map_err(ApiError::from)
        .map(|answer| answer.map(|_| "ok.".to_string()).unwrap_or_else(|e| e));
    after_instance_action(&name, outcome)
}

/// "Send a test" on a channel (admins): the outcome is said on the Instances page.
pub(crate) async fn test_channel(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = FormData::checked(&body, &csrf) {
        return r;
    }
    // The service's error names the channel already.
    match state.service.test_channel(&Caller::of(&user), &name).await {
        Ok(()) => redirect_with(
            "/instances",
            &format!("channel {name}: a test message was sent."),
        ),
        Err(e) => match ApiError::from(e) {
            e if e.0 == StatusCode::FORBIDDEN || e.0 == StatusCode::NOT_FOUND => error_page(e),
            e => redirect_with("/instances", &e.1),
        },
    }
}

pub(crate) async fn fetch_instance(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = FormData::checked(&body, &csrf) {
        return r;
    }
    let outcome = state
        .service
        .fetch_instance(&Caller::of(&user), &name)
        .await
        .map_err(ApiError::from)
        .map(|r| match r {
            Ok(r) if r.held == 0 => format!("{} new incidents.", r.new_incidents),
            Ok(r) => format!(
                "{} new incidents; {} of its scopes are fetched by another watchfloor process.",
                r.new_incidents, r.held
            ),
            Err(e) => e,
        });
    after_instance_action(&name, outcome)
}

fn admin_only(state: &AppState, user: &User) -> Result<(), Response> {
    state
        .service
        .admin_only(&Caller::of(user))
        .map_err(|e| error_page(e.into()))
}

pub(crate) async fn users(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    RawQuery(query): RawQuery,
) -> Response {
    let all = match state.service.users(&Caller::of(&user)).await {
        Ok(u) => u,
        Err(e) => return error_page(e.into()),
    };
    users_page(
        &user,
        &csrf,
        &all,
        message_of(query.as_deref()).as_deref(),
        None,
    )
}

/// The users page; `secret` is a made password or key, shown this once.
fn users_page(
    user: &User,
    csrf: &Csrf,
    all: &[User],
    msg: Option<&str>,
    secret: Option<(&str, &str)>,
) -> Response {
    let body = html! {
        (flash(msg))
        @if let Some((what, value)) = secret {
            div.secret {
                p { (what) " — shown this once; copy it now:" }
                code #secret { (value) }
            }
        }
        h1 { "Users" }
        table.grid {
            thead { tr { th { "Name" } th { "Role" } th { "Organizations" } th { "State" } th {} } }
            tbody {
                @for u in all {
                    tr {
                        td { (u.name) }
                        td {
                            form.access #{ "access-" (u.name) } method="post" action={ "/users/" (u.name) "/access" } {
                                (csrf_field(csrf))
                                select name="role" aria-label="role" {
                                    @for r in [Role::Analyst, Role::Viewer, Role::Admin] {
                                        option value=(r.as_str()) selected[r == u.role] { (r.as_str()) }
                                    }
                                }
                            }
                        }
                        td {
                            input name="orgs" form={ "access-" (u.name) } value=(u.orgs.join(", ")) placeholder="all" aria-label="organizations";
                            " "
                            button type="submit" form={ "access-" (u.name) } { "Save" }
                        }
                        td { @if u.disabled { "disabled" } @else { "active" } }
                        td.actions {
                            @if !u.disabled {
                                form method="post" action={ "/users/" (u.name) "/api-key" } {
                                    (csrf_field(csrf)) button type="submit" { "New API key" }
                                }
                                a href={ "/users/" (u.name) "/keys" } { "Keys" }
                                @if u.name != user.name {
                                    form method="post" action={ "/users/" (u.name) "/disable" } {
                                        (csrf_field(csrf)) button type="submit" { "Disable" }
                                    }
                                }
                            } @else {
                                form method="post" action={ "/users/" (u.name) "/enable" } {
                                    (csrf_field(csrf)) button type="submit" { "Enable" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "New user" }
        form.fields.inline method="post" action="/users" {
            (csrf_field(csrf))
            label { "Name" input name="name" required; }
            label { "Role" select name="role" {
                @for r in ["analyst", "viewer", "admin"] { option value=(r) { (r) } }
            } }
            label { "Organizations" input name="orgs" placeholder="all, or Acme, Globex"; }
            button type="submit" { "Create" }
        }
    };
    layout("Users", user, csrf, "Users", body)
}

pub(crate) async fn create_user(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    ConnectInfo(Peer(addr)): ConnectInfo<Peer>,
    body: axum::body::Bytes,
) -> Response {
    let form = match FormData::checked(&body, &csrf) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = admin_only(&state, &user) {
        return r;
    }
    let role = match Role::parse(form.get("role").unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => return redirect_with("/users", &e),
    };
    let orgs = orgs_of(form.get("orgs").unwrap_or_default());
    let name = form.get("name").unwrap_or_default().trim();
    match state
        .service
        .create_user(&Caller::of(&user).at(addr), name, role, &orgs, None)
        .await
    {
        Ok((created, password)) => {
            let all = state
                .service
                .users(&Caller::of(&user))
                .await
                .unwrap_or_default();
            let label = format!("Password of {}", created.name);
            users_page(
                &user,
                &csrf,
                &all,
                Some(&format!("Created {}.", created.name)),
                password.as_deref().map(|p| (label.as_str(), p)),
            )
        }
        Err(e) => redirect_with("/users", &e.to_string()),
    }
}

/// Organizations as an admin types them: a comma-separated list; empty is all.
fn orgs_of(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) async fn set_access(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    ConnectInfo(Peer(addr)): ConnectInfo<Peer>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form =
        match FormData::checked(&body, &csrf).and_then(|f| admin_only(&state, &user).map(|_| f)) {
            Ok(f) => f,
            Err(r) => return r,
        };
    let role = match Role::parse(form.get("role").unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => return redirect_with("/users", &e),
    };
    let orgs = orgs_of(form.get("orgs").unwrap_or_default());
    match state
        .service
        .set_user_access(&Caller::of(&user).at(addr), &name, role, &orgs)
        .await
    {
        Ok(u) => {
            let scope = if u.orgs.is_empty() {
                "all organizations".to_string()
            } else {
                u.orgs.join(", ")
            };
            redirect_with(
                "/users",
                &format!("{name} is now {} of {scope}.", u.role.as_str()),
            )
        }
        Err(e) => redirect_with("/users", &e.to_string()),
    }
}

/// Disables (`/users/{name}/disable`) or enables (`/users/{name}/enable`) a user.
pub(crate) async fn set_user_enabled(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    ConnectInfo(Peer(addr)): ConnectInfo<Peer>,
    Path((name, to)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = FormData::checked(&body, &csrf).and(admin_only(&state, &user)) {
        return r;
    }
    let caller = Caller::of(&user).at(addr);
    let done = match to.as_str() {
        "disable" => state
            .service
            .disable_user(&caller, &name)
            .await
            .map(|()| format!("Disabled {name}; its keys are revoked.")),
        "enable" => state
            .service
            .enable_user(&caller, &name)
            .await
            .map(|()| format!("Enabled {name}; its old keys stay revoked: make it a new one.")),
        _ => return error_page(ApiError(StatusCode::NOT_FOUND, "no such page".into())),
    };
    match done {
        Ok(message) => redirect_with("/users", &message),
        Err(e) => redirect_with("/users", &e.to_string()),
    }
}

/// A new API key; `replace=1` in the form revokes the user's others.
pub(crate) async fn api_key(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    ConnectInfo(Peer(addr)): ConnectInfo<Peer>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form =
        match FormData::checked(&body, &csrf).and_then(|f| admin_only(&state, &user).map(|_| f)) {
            Ok(f) => f,
            Err(r) => return r,
        };
    let replace = form.get("replace") == Some("1");
    match state
        .service
        .new_api_key(&Caller::of(&user).at(addr), &name, replace)
        .await
    {
        Ok((key, id)) => {
            let all = state
                .service
                .users(&Caller::of(&user))
                .await
                .unwrap_or_default();
            let label = match replace {
                true => format!("API key {id} of {name} (its other keys are revoked)"),
                false => format!("API key {id} of {name}"),
            };
            users_page(&user, &csrf, &all, None, Some((&label, &key)))
        }
        Err(e) => redirect_with("/users", &e.to_string()),
    }
}

/// A user's API keys, with a button to revoke each one still valid.
pub(crate) async fn keys(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let keys = match state.service.api_keys(&Caller::of(&user), &name).await {
        Ok(k) => k,
        Err(e) => return error_page(e.into()),
    };
    let body = html! {
        (flash(message_of(query.as_deref()).as_deref()))
        h1 { "API keys of " (name) }
        p.hint { "Keys are shown once, when made; here only their ids and dates." }
        table.grid {
            thead { tr { th.num { "Key" } th { "Made" } th { "Revoked" } th {} } }
            tbody {
                @for k in &keys {
                    tr {
                        td.num { (k.id) }
                        td { (when(k.created)) }
                        td { (k.revoked.map(when).unwrap_or_default()) }
                        td.actions {
                            @if k.revoked.is_none() {
                                form method="post" action={ "/users/" (name) "/keys/" (k.id) "/revoke" } {
                                    (csrf_field(&csrf)) button type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if keys.is_empty() { p.hint { "No keys." } }
        form method="post" action={ "/users/" (name) "/api-key" } {
            (csrf_field(&csrf))
            input type="hidden" name="replace" value="1";
            button type="submit" { "New key, revoking the others" }
        }
    };
    layout("API keys", &user, &csrf, "Users", body)
}

pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    ConnectInfo(Peer(addr)): ConnectInfo<Peer>,
    Path((name, id)): Path<(String, i64)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = FormData::checked(&body, &csrf).and(admin_only(&state, &user)) {
        return r;
    }
    let back = format!("/users/{name}/keys");
    match state
        .service
        .revoke_api_key(&Caller::of(&user).at(addr), &name, id)
        .await
    {
        Ok(()) => redirect_with(&back, &format!("Revoked key {id} of {name}.")),
        Err(e) => redirect_with(&back, &e.to_string()),
    }
}

/// The notifications of the incidents the user sees, newest first: `?channel=`, `?status=`
/// (pending, sent or failed) and `?incident=` narrow them, as `notifications list` does.
pub(crate) async fn notifications(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    RawQuery(query): RawQuery,
) -> Response {
    let given =
        |key: &str| super::query_value(query.as_deref(), key).filter(|v| !v.trim().is_empty());
    let (channel, status) = (given("channel"), given("status"));
    let incident = match given("incident")
        .map(|v| v.trim().parse::<i64>())
        .transpose()
    {
        Ok(id) => id,
        Err(_) => {
            return error_page(ApiError(
                StatusCode::BAD_REQUEST,
                "incident: give an incident's number".into(),
            ));
        }
    };
    let caller = Caller::of(&user);
    let filter = watchfloor_storage::NotificationFilter {
        channel: channel.clone(),
        status: status.clone(),
        incident,
        limit: Some(500),
        ..Default::default()
    };
    let found = match state.service.notifications(&caller, filter).await {
        Ok(found) => found,
        Err(e) => return error_page(e.into()),
    };
    // The channels to choose from: the configured ones for those who read channels, else
    // those of the notifications found.
    let mut channels: Vec<String> = match state.service.channel_views(&caller).await {
        Ok(views) => views.into_iter().map(|c| c.name).collect(),
        Err(_) => found.iter().map(|n| n.channel.clone()).collect(),
    };
    channels.sort();
    channels.dedup();
    let body = html! {
        h1 { "Notifications" }
        form.fields.inline method="get" action="/notifications" {
            label { "Channel"
                select name="channel" {
                    option value="" { "any" }
                    @for c in &channels { option value=(c) selected[channel.as_deref() == Some(c.as_str())] { (c) } }
                }
            }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in ["pending", "sent", "failed"] { option value=(s) selected[status.as_deref() == Some(s)] { (s) } }
                }
            }
            label { "Incident" input name="incident" size="8" value=[incident] placeholder="number"; }
            button type="submit" { "Show" }
        }
        p.hint { "What rules sent, or are to send, about the incidents you see, newest first; at most 500. Channels and their last errors are on the Instances page." }
        table.grid.notifications {
            thead { tr { th { "Queued" } th { "Incident" } th { "Organization" } th { "Channel" } th { "Rule" } th { "On" } th { "Status" } } }
            tbody {
                @for n in &found {
                    tr class=[(n.status == "failed").then_some("bad")] {
                        td { (when(n.created)) }
                        td { a href={ "/incidents/" (n.incident_id) } { "#" (n.incident_id) " " (n.incident_name) } }
                        td { (n.organization.as_deref().unwrap_or("")) }
                        td { (n.channel) }
                        td { (n.rule) }
                        td { (n.trigger) }
                        td { (n.status) }
                    }
                }
            }
        }
        @if found.is_empty() { p.hint { "No notifications." } }
    };
    layout("Notifications", &user, &csrf, "Instances", body)
}

/// The audit log (admins): `?since=` a time, as the CLI takes it.
pub(crate) async fn audit(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    RawQuery(query): RawQuery,
) -> Response {
    let since_text = super::query_value(query.as_deref(), "since").filter(|v| !v.trim().is_empty());
    let since = match since_text
        .as_deref()
        .map(|t| watchfloor_core::time::parse_time(t, chrono::Utc::now()))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return error_page(ApiError(StatusCode::BAD_REQUEST, format!("since: {e}"))),
    };
    let events = match state.service.audit(&Caller::of(&user), since, 1_000).await {
        Ok(e) => e,
        Err(e) => return error_page(e.into()),
    };
    let body = html! {
        h1 { "Audit log" }
        form.fields.inline method="get" action="/audit" {
            label { "Since" input name="since" value=[since_text.as_deref()] placeholder="1 day, or a date"; }
            button type="submit" { "Show" }
        }
        p.hint { "Logins, sessions, API keys and users, newest first; at most 1,000 events." }
        table.grid {
            thead { tr { th { "When" } th { "Who" } th { "From" } th { "What" } th { "To" } th { "Detail" } } }
            tbody {
                @for e in &events {
                    tr class=[(e.action == "login_failed").then_some("bad")] {
                        td { (when(e.at)) }
                        td { (e.actor) }
                        td { (e.address.as_deref().unwrap_or("this machine")) }
                        td { (e.action.replace('_', " ")) }
                        td { (e.target) }
                        td { (e.detail) }
                    }
                }
            }
        }
        @if events.is_empty() { p.hint { "No events." } }
    };
    layout("Audit log", &user, &csrf, "Audit", body)
}

#[cfg(test)]
mod tests {
    /// Regression (first hour): a long error pushed the Test and Fetch-now buttons off
    /// screen; it now shows its start, the whole text a click away, escaped either way.
    #[test]
    fn a_long_error_shows_its_start_and_keeps_the_whole() {
        assert_eq!(
            super::long_text("refused <b>").into_string(),
            "refused &lt;b&gt;"
        );
        let long = format!("{}<tail>", "x".repeat(400));
        let cell = super::long_text(&long).into_string();
        assert!(
            cell.starts_with("<details class=\"long\"><summary>"),
            "{cell}"
        );
        assert!(
            cell.contains(&format!("{}…</summary>", "x".repeat(160))),
            "{cell}"
        );
        assert!(cell.ends_with("&lt;tail&gt;</details>"), "{cell}");
    }
}
