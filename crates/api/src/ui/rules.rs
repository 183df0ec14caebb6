//! The Rules page: the rules in run order with what each did in the last day, enable and
//! disable, the editor for the whole set (checked before anything is stored, errors shown by
//! line), and test against an incident and back-test.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use watchfloor_service::Caller;
use watchfloor_service::rules::{Backtest, Plan, RuleView};
use watchfloor_storage::{Role, User};

use super::{
    Csrf, FormData, csrf_field, error_page, flash, layout, message_of, query_value, redirect_with,
};
use crate::error::ApiError;
use crate::state::AppState;

/// What the page shows beside the list: a failed import, a test or a back-test.
#[derive(Default)]
struct Extra {
    /// The text that failed its check, and why.
    rejected: Option<(String, String)>,
    plan: Option<Plan>,
    backtest: Option<Backtest>,
}

async fn page(
    state: &AppState,
    user: &User,
    csrf: &Csrf,
    msg: Option<&str>,
    extra: Extra,
) -> Response {
    let caller = Caller::of(user);
    let rules = match state.service.rules(&caller).await {
        Ok(r) => r,
        Err(e) => return error_page(e.into()),
    };
    let admin = user.role == Role::Admin;
    let text = match &extra.rejected {
        Some((text, _)) => text.clone(),
        None => state
            .service
            .export_rules(&caller)
            .await
            .unwrap_or_default(),
    };
    let body = html! {
        (flash(msg))
        h1 { "Rules" }
        p.hint { "Rules act on incidents as they are made and changed, in this order, each action once. Their conditions use the queue's search syntax." }
        (list(&rules, csrf, admin))
        @if let Some(plan) = &extra.plan { (plan_section(plan)) }
        @if let Some(b) = &extra.backtest { (backtest_section(b)) }
        @if admin {
            h2 #editor { "Edit the rules" }
            @if let Some((_, errors)) = &extra.rejected {
                div.error-list role="alert" {
                    p { "Nothing was saved:" }
                    ul { @for line in errors.lines() { li { (line) } } }
                }
            }
            form.editor method="post" action="/rules" {
                (csrf_field(csrf))
                textarea name="toml" rows="18" spellcheck="false" aria-label="rules as TOML" { (text) }
                p { button type="submit" { "Check and save" } " " span.hint { "The whole file is checked first; it replaces every rule." } }
            }
        }
    };
    layout("Rules", user, csrf, "Rules", body)
}

fn list(rules: &[RuleView], csrf: &Csrf, admin: bool) -> Markup {
    html! {
        @if rules.is_empty() { p.hint { "No rules yet." } }
        @else {
            table.grid.rules {
                thead { tr {
                    th { "Rule" } th { "On" } th { "When" } th { "Actions" } th { "Mode" } th { "State" }
                    th.num { "Matched" } th.num { "Acted" } th.num { "Failed" } th { "Try it" }
                    @if admin { th {} }
                } }
                tbody {
                    @for r in rules {
                        tr {
                            td { (r.stored.name) }
                            td { (r.on.join(", ")) }
                            td { code { (r.when) } }
                            td { (r.actions.join(", ")) }
                            td { (r.mode) }
                            td class=[(!r.stored.enabled).then_some("bad")] {
                                @if r.stored.enabled { "enabled" } @else { "disabled" @if let Some(why) = &r.stored.disabled_reason { ": " (why) } }
                            }
                            td.num { (r.last_day.matched) }
                            td.num { (r.last_day.acted) }
                            td.num class=[(r.last_day.failed > 0).then_some("bad")] { (r.last_day.failed) }
                            td.actions {
                                form method="post" action={ "/rules/" (r.stored.name) "/test" } {
                                    (csrf_field(csrf))
                                    input name="incident" type="number" min="1" required placeholder="incident" aria-label="incident to test on";
                                    button type="submit" { "Test" }
                                }
                                a href={ "/rules/" (r.stored.name) "/backtest?since=30%20days" } { "Back-test 30 days" }
                            }
                            @if admin {
                                td.actions {
                                    @let (to, label) = if r.stored.enabled { ("disable", "Disable") } else { ("enable", "Enable") };
                                    form method="post" action={ "/rules/" (r.stored.name) "/" (to) } {
                                        (csrf_field(csrf)) button type="submit" { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.hint { "Counts are for the last 24 hours." }
        }
    }
}

fn plan_section(plan: &Plan) -> Markup {
    html! {
        section.result {
            h2 { "Test: rule " (plan.rule) " on incident " a href={ "/incidents/" (plan.incident) } { "#" (plan.incident) } }
            p { @if plan.matched { "It matches; it would:" } @else { "It does not match; if it did, it would:" } }
            ul { @for a in &plan.actions { li { (a) } } }
        }
    }
}

fn backtest_section(b: &Backtest) -> Markup {
    html! {
        section.result {
            h2 { "Back-test: rule " (b.rule) }
            p {
                "Since " (super::when(b.since)) ": "
                @if b.capped { "more than " } (b.matched) " matching incidents."
            }
            @if !b.first.is_empty() {
                ul { @for (id, name) in &b.first { li { a href={ "/incidents/" (id) } { "#" (id) } " " (name) } } }
            }
        }
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    RawQuery(query): RawQuery,
) -> Response {
    page(
        &state,
        &user,
        &csrf,
        message_of(query.as_deref()).as_deref(),
        Extra::default(),
    )
    .await
}

pub(crate) async fn save(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    axum::extract::ConnectInfo(crate::Peer(addr)): axum::extract::ConnectInfo<crate::Peer>,
    body: axum::body::Bytes,
) -> Response {
    let form = match FormData::checked(&body, &csrf) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let text = form.get("toml").unwrap_or_default().replace("\r\n", "\n");
    match state
        .service
        .import_rules(&Caller::of(&user).at(addr), &text, true)
        .await
    {
        Ok(names) => redirect_with(
            "/rules",
            &match names.len() {
                1 => "Saved 1 rule.".to_string(),
                n => format!("Saved {n} rules."),
            },
        ),
        Err(watchfloor_service::ServiceError::Invalid(errors)) => {
            let extra = Extra {
                rejected: Some((text, errors)),
                ..Extra::default()
            };
            page(&state, &user, &csrf, None, extra).await
        }
        Err(e) => error_page(e.into()),
    }
}

pub(crate) async fn set_enabled(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    axum::extract::ConnectInfo(crate::Peer(addr)): axum::extract::ConnectInfo<crate::Peer>,
    Path((name, to)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = FormData::checked(&body, &csrf) {
        return r;
    }
    let enabled = match to.as_str() {
        "enable" => true,
        "disable" => false,
        _ => {
            return error_page(ApiError(
                axum::http::StatusCode::NOT_FOUND,
                "no such page".into(),
            ));
        }
    };
    match state
        .service
        .set_rule_enabled(&Caller::of(&user).at(addr), &name, enabled)
        .await
    {
        Ok(()) => redirect_with("/rules", &format!("{name} is {to}d.")),
        Err(e) => error_page(e.into()),
    }
}

pub(crate) async fn test(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form = match FormData::checked(&body, &csrf) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(incident) = form
        .get("incident")
        .and_then(|v| v.trim().parse::<i64>().ok())
    else {
        return redirect_with("/rules", "Give the number of an incident to test on.");
    };
    match state
        .service
        .test_rule(&Caller::of(&user), &name, incident)
        .await
    {
        Ok(plan) => {
            let extra = Extra {
                plan: Some(plan),
                ..Extra::default()
            };
            page(&state, &user, &csrf, None, extra).await
        }
        Err(e) => redirect_with("/rules", &e.to_string()),
    }
}

pub(crate) async fn backtest(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let since_text = query_value(query.as_deref(), "since").unwrap_or_else(|| "30 days".into());
    let since = match watchfloor_core::time::parse_time(&since_text, chrono::Utc::now()) {
        Ok(t) => t,
        Err(e) => return redirect_with("/rules", &format!("since: {e}")),
    };
    match state
        .service
        .backtest_rule(&Caller::of(&user), &name, since)
        .await
    {
        Ok(b) => {
            let extra = Extra {
                backtest: Some(b),
                ..Extra::default()
            };
            page(&state, &user, &csrf, None, extra).await
        }
        Err(e) => redirect_with("/rules", &e.to_string()),
    }
}
