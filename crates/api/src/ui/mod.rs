//! The analysts' web UI: server-rendered pages on the same listener, users and rules as the API.
//!
//! Pages are HTML made with `maud`, which escapes every value it is given; provider markdown
//! goes through [`markdown::to_html`], command results through [`markdown::command_html`],
//! which shows a provider's links as text. Forms post and redirect, so every action works without
//! script; `assets/app.js` adds keyboard moves, live queue updates and command completion. A
//! strict Content-Security-Policy allows only the binary's own script and style. A login gives
//! an HttpOnly, SameSite=Strict session cookie (Secure under TLS), and every form carries a
//! CSRF token derived from the session.

// A refused form is the answer itself, so checks return the response as their error.
#![allow(clippy::result_large_err)]

mod admin;
mod dashboard;
mod incident;
mod indicators;
pub mod markdown;
mod queue;
mod reports;
mod rules;

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};
use watchfloor_core::{Severity, SlaState, Status};
use watchfloor_storage::{Role, Scope, User};

use crate::error::ApiError;
use crate::state::AppState;
use watchfloor_service::accounts::LoginRefused;

const COOKIE: &str = "wf_session";
const CSS: &str = include_str!("../../assets/app.css");
const JS: &str = include_str!("../../assets/app.js");
const ICON: &str = include_str!("../../assets/icon.svg");

/// An address no page or route answers: a page with the navigation (a signed-in user's, if
/// the browser has a session) for a browser, JSON for everyone else (scripts, demisto-py).
pub(crate) async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let browser = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser {
        let message = format!("there is no page at {path}");
        let user = match cookie_value(req.headers(), COOKIE) {
            Some(token) => state
                .service
                .session_user(token)
                .await
                .ok()
                .flatten()
                .map(|user| (user, Csrf(csrf_of(token)))),
            None => None,
        };
        let mut page = match user {
            Some((user, csrf)) => user_error_page(&user, &csrf, StatusCode::NOT_FOUND, &message),
            None => error_page(ApiError(StatusCode::NOT_FOUND, message)),
        };
        add_security_headers(&mut page);
        return page;
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "error": format!("there is no route {path}: see /api/v1/openapi.json"),
            "code": "not_found",
        })),
    )
        .into_response()
}

/// The CSRF token of a session: derived from its secret token, so nothing more is stored, and
/// unknown to any page that cannot read the HttpOnly cookie.
#[derive(Clone)]
pub(crate) struct Csrf(pub String);

fn csrf_of(token: &str) -> String {
    Sha256::digest(format!("csrf:{token}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The pages; everything but the login page and the assets needs a session.
pub fn routes(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(queue::page))
        .route("/queue/fresh", get(queue::fresh))
        .route("/queue/bulk", post(queue::bulk))
        .route("/incidents/{id}", get(incident::page))
        .route("/incidents/{id}/edit", post(incident::edit))
        .route("/incidents/{id}/close", post(incident::close))
        .route("/incidents/{id}/reopen", post(incident::reopen))
        .route("/incidents/{id}/note", post(incident::note))
        .route("/incidents/{id}/run", post(incident::run))
        .route("/dashboard", get(dashboard::page))
        .route("/reports", get(reports::page))
        .route("/reports/customer", get(reports::customer_page))
        .route("/reports/customer.csv", get(reports::customer_csv))
        .route("/indicators", get(indicators::list))
        .route("/indicators/allow", post(indicators::change_allowlist))
        .route("/indicators/{type}/{value}", get(indicators::page))
        .route(
            "/indicators/{type}/{value}/verdict",
            post(indicators::set_verdict),
        )
        .route("/instances", get(admin::instances))
        .route("/instances/{name}/test", post(admin::test_instance))
        .route("/instances/{name}/fetch", post(admin::fetch_instance))
        .route("/channels/{name}/test", post(admin::test_channel))
        .route("/notifications", get(admin::notifications))
        .route("/users", get(admin::users).post(admin::create_user))
        .route("/users/{name}/access", post(admin::set_access))
        .route("/users/{name}/api-key", post(admin::api_key))
        .route("/users/{name}/{to}", post(admin::set_user_enabled))
        .route("/users/{name}/keys", get(admin::keys))
        .route("/users/{name}/keys/{id}/revoke", post(admin::revoke_key))
        .route("/audit", get(admin::audit))
        .route("/rules", get(rules::show).post(rules::save))
        .route("/rules/{name}/test", post(rules::test))
        .route("/rules/{name}/backtest", get(rules::backtest))
        .route("/rules/{name}/{to}", post(rules::set_enabled))
        .route("/logout", post(logout))
        .layer(middleware::from_fn_with_state(state, session));
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/assets/app.css", get(|| asset(CSS, "text/css")))
        .route("/assets/app.js", get(|| asset(JS, "text/javascript")))
        .route("/favicon.ico", get(|| asset(ICON, "image/svg+xml")))
        .merge(pages)
        .layer(middleware::from_fn(security_headers))
}

async fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// No script but the binary's own, no inline script or style, no framing, no referrer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut answer = next.run(req).await;
    add_security_headers(&mut answer);
    answer
}

fn add_security_headers(answer: &mut Response) {
    let headers = answer.headers_mut();
    // A page with its own policy (the customer report) keeps it.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

fn cookie_value<'a>(req: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    req.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Finds the session's user; with no session, the login page, and with an ended one, the
/// login page that says so.
async fn session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(token) = cookie_value(req.headers(), COOKIE).map(str::to_string) else {
        return Redirect::to("/login").into_response();
    };
    match state.service.session_user(&token).await {
        Ok(Some(user)) => {
            let user = Arc::new(user);
            let csrf = Csrf(csrf_of(&token));
            req.extensions_mut().insert(user.clone());
            req.extensions_mut().insert(csrf.clone());
            let answer = next.run(req).await;
            // An error page, drawn where no user was at hand, keeps the signed-in user's
            // navigation.
            match answer.extensions().get::<ErrorShown>() {
                Some(ErrorShown(status, message)) => {
                    user_error_page(&user, &csrf, *status, message)
                }
                None => answer,
            }
        }
        Ok(None) => {
            let mut answer = Redirect::to("/login?expired=1").into_response();
            answer
                .headers_mut()
                .insert(header::SET_COOKIE, clear_cookie(&state));
            answer
        }
        Err(e) => error_page(e.into()),
    }
}

fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie(state: &AppState) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The fields of a posted form.
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    fn parse(body: &[u8]) -> FormData {
        FormData(form_urlencoded::parse(body).into_owned().collect())
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The form, if it carries the session's CSRF token.
    pub(crate) fn checked(body: &[u8], csrf: &Csrf) -> Result<FormData, Response> {
        let form = FormData::parse(body);
        if form.get("csrf") != Some(csrf.0.as_str()) {
            return Err(error_page(ApiError(
                StatusCode::FORBIDDEN,
                "this form is stale or did not come from watchfloor: reload the page and try again"
                    .into(),
            )));
        }
        Ok(form)
    }
}

/// The pages every user has, as the navigation lists them.
const NAV: [(&str, &str); 5] = [
    ("/", "Queue"),
    ("/dashboard", "Dashboard"),
    ("/reports", "Providers"),
    ("/indicators", "Indicators"),
    ("/instances", "Instances"),
];

/// A page with the header and navigation.
pub(crate) fn layout(
    title: &str,
    user: &User,
    csrf: &Csrf,
    active: &str,
    body: Markup,
) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · watchfloor" }
                link rel="icon" href="/favicon.ico" type="image/svg+xml";
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body data-csrf=(csrf.0) {
                header.top {
                    a.brand href="/" { "watchfloor" }
                    nav {
                        @for (href, name) in NAV {
                            a href=(href) class=[(active == name).then_some("active")] { (name) }
                        }
                        @if Scope::of(user) == Scope::All {
                            a href="/rules" class=[(active == "Rules").then_some("active")] { "Rules" }
                        }
                        @if user.role == Role::Admin {
                            a href="/users" class=[(active == "Users").then_some("active")] { "Users" }
                            a href="/audit" class=[(active == "Audit").then_some("active")] { "Audit" }
                        }
                    }
                    div.who {
                        span { (user.name) " · " (user.role.as_str()) }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf.0);
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    html_response(StatusCode::OK, page)
}

fn html_response(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page.into_string(),
    )
        .into_response()
}

/// What an error page said, on its answer, so that a signed-in user's page can be drawn again
/// with their navigation.
#[derive(Clone)]
struct ErrorShown(StatusCode, String);

/// The body of an error page: the status, what failed, and the way back.
fn error_body(status: StatusCode, message: &str) -> Markup {
    html! {
        h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
        p.error { (message) }
        p { a href="/" { "Back to the queue" } }
    }
}

/// An error page for a signed-in user, with their navigation.
fn user_error_page(user: &User, csrf: &Csrf, status: StatusCode, message: &str) -> Response {
    let mut page = layout("Error", user, csrf, "", error_body(status, message));
    *page.status_mut() = status;
    page
}

/// An error as a page that says what to do; the status stays the API's.
pub(crate) fn error_page(e: ApiError) -> Response {
    let ApiError(status, message) = e;
    let shown = ErrorShown(status, message.clone());
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Error · watchfloor" }
                link rel="icon" href="/favicon.ico" type="image/svg+xml";
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header.top {
                    a.brand href="/" { "watchfloor" }
                    nav { @for (href, name) in NAV { a href=(href) { (name) } } }
                }
                main.narrow { (error_body(status, &message)) }
            }
        }
    };
    let mut answer = html_response(status, page);
    answer.extensions_mut().insert(shown);
    answer
}

/// A hidden CSRF field for a form.
pub(crate) fn csrf_field(csrf: &Csrf) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf.0); }
}

/// A severity as a coloured chip.
pub(crate) fn severity_chip(s: Severity) -> Markup {
    let class = format!("chip sev-{}", s.label().to_ascii_lowercase());
    html! { span class=(class) { (s.label()) } }
}

pub(crate) fn status_badge(s: Status) -> Markup {
    let class = format!("badge st-{}", s.as_str());
    html! { span class=(class) { (s.as_str()) } }
}

pub(crate) use watchfloor_core::time::span_text;

/// The SLA of an incident as a coloured cell: time left, or how long since it ran out.
pub(crate) fn sla_cell(i: &watchfloor_core::Incident, now: DateTime<Utc>) -> Markup {
    let state = i.sla_state(now);
    let at = i.closed.unwrap_or(now);
    let left = (i.sla_due - at).num_seconds();
    let (class, text) = match state {
        SlaState::Breached => ("sla breached", format!("breached {}", span_text(left))),
        SlaState::AtRisk => ("sla at-risk", format!("{} left", span_text(left))),
        SlaState::Ok if i.closed.is_some() => ("sla ok", "met".to_string()),
        SlaState::Ok => ("sla ok", format!("{} left", span_text(left))),
    };
    let title = format!(
        "due {} · stored {} · occurred {} (the SLA counts from one of them, as [sla] from says)",
        when(i.sla_due),
        when(i.created),
        when(i.occurred)
    );
    html! { span class=(class) title=(title) { (text) } }
}

pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format(watchfloor_core::terminal::TIME_FORMAT).to_string()
}

#[derive(serde::Deserialize, Default)]
struct LoginQuery {
    expired: Option<String>,
    failed: Option<String>,
}

async fn login_page(axum::extract::Query(q): axum::extract::Query<LoginQuery>) -> Response {
    login_form(q.expired.is_some(), q.failed.as_deref())
}

fn login_form(expired: bool, failed: Option<&str>) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · watchfloor" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                main.narrow.login {
                    h1 { "watchfloor" }
                    @if expired { p.notice { "Your session has ended. Log in again." } }
                    @if let Some(why) = failed { p.error { (why) } }
                    form method="post" action="/login" {
                        label { "Name" input name="name" autocomplete="username" autofocus required; }
                        label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, page)
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(crate::Peer(addr)): ConnectInfo<crate::Peer>,
    body: axum::body::Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let (name, password) = (
        form.get("name").unwrap_or_default(),
        form.get("password").unwrap_or_default(),
    );
    let failed = |why: String| {
        let mut answer = login_form(false, Some(&why));
        *answer.status_mut() = StatusCode::UNAUTHORIZED;
        answer
    };
    match state.service.login(name, password, addr).await {
        Ok((token, _)) => {
            let mut answer = Redirect::to("/").into_response();
            answer
                .headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&state, &token));
            answer
        }
        Err(LoginRefused::Wait(secs)) => failed(format!(
            "Too many failed logins. Try again in {secs} seconds."
        )),
        Err(LoginRefused::Wrong) => failed("The name or the password is wrong.".into()),
        Err(LoginRefused::Failed(e)) => error_page(e.into()),
    }
}

async fn logout(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    ConnectInfo(crate::Peer(addr)): ConnectInfo<crate::Peer>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = FormData::checked(&body, &csrf) {
        return refused;
    }
    if let Some(token) = cookie_value(&headers, COOKIE)
        && let Err(e) = state
            .service
            .logout(&watchfloor_service::Caller::of(&user).at(addr), token)
            .await
    {
        return error_page(e.into());
    }
    let mut answer = Redirect::to("/login").into_response();
    answer
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(&state));
    answer
}

/// `/path?query#anchor` back to a page, only ever on this site.
pub(crate) fn back_to(form: &FormData, default: &str) -> String {
    match form.get("back") {
        Some(b) if same_origin_path(b) => b.to_string(),
        _ => default.to_string(),
    }
}

/// A path on this server: it starts with one `/`, not `//` or `/\` (which browsers read as
/// another host), and has no control characters (a header cannot carry them).
fn same_origin_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(char::is_control)
}

pub(crate) fn redirect_with(path: &str, message: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (path, anchor) = path.split_once('#').unwrap_or((path, ""));
    let anchor = if anchor.is_empty() {
        String::new()
    } else {
        format!("#{anchor}")
    };
    let msg: String = form_urlencoded::byte_serialize(message.as_bytes()).collect();
    Redirect::to(&format!("{path}{sep}msg={msg}{anchor}")).into_response()
}

/// The message a redirect carried (`msg` in the query string).
pub(crate) fn message_of(raw: Option<&str>) -> Option<String> {
    query_value(raw, "msg")
}

/// The value of `key` in a raw query string, if given.
pub(crate) fn query_value(raw: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A message a redirect carried, shown once at the top of the page.
pub(crate) fn flash(msg: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = msg.filter(|m| !m.is_empty()) {
            p.flash { (m) }
        }
    }
}

pub(crate) fn raw(html: String) -> PreEscaped<String> {
    PreEscaped(html)
}
