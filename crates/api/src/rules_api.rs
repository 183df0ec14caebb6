//! `/api/v1/rules`: automation rules. Admins change them; users who see every organization
//! read, test and back-test them.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use watchfloor_service::Caller;
use watchfloor_storage::User;

use crate::endpoint::{Endpoint, ep};
use crate::error::ApiError;
use crate::state::AppState;

/// The rule routes, as the native API lists them.
pub(crate) fn routes() -> Vec<(Endpoint, MethodRouter<AppState>)> {
    vec![
        (
            ep(
                "GET",
                "/api/v1/rules",
                "",
                "the rules in run order, with what each did in the last day (users who see every organization)",
            ).returns("Rules"),
            get(list),
        ),
        (
            ep(
                "POST",
                "/api/v1/rules/import",
                r#"{"toml", "replace"}"#,
                "check a rule file whole, then store it; `replace` makes it the whole set (admins): `{imported}`, or 400 naming each rule, line and key",
            ).returns("RulesImported"),
            post(import),
        ),
        (
            ep(
                "GET",
                "/api/v1/rules/export",
                "",
                "every rule as one TOML file, as import takes it back",
            ).returns("text"),
            get(export),
        ),
        (
            ep(
                "GET",
                "/api/v1/rules/{name}",
                "",
                "one rule: its TOML, state, and what it did in the last hour and day",
            ).returns("Rule"),
            get(show),
        ),
        (
            ep(
                "POST",
                "/api/v1/rules/{name}/enable",
                "",
                "enable a rule (admins)",
            ).returns("204"),
            post(enable),
        ),
        (
            ep(
                "POST",
                "/api/v1/rules/{name}/disable",
                "",
                "disable a rule (admins)",
            ).returns("204"),
            post(disable),
        ),
        (
            ep(
                "POST",
                "/api/v1/rules/{name}/test",
                r#"{"incident"}"#,
                "what the rule would do to an incident now, doing nothing: `{matched, actions}`",
            ).returns("RuleTest"),
            post(test),
        ),
        (
            ep(
                "GET",
                "/api/v1/rules/{name}/backtest",
                "?since=",
                "how many incidents made since `since` (default 30 days) the rule's condition matches, and the first 20",
            ).returns("Backtest"),
            get(backtest),
        ),
    ]
}

async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
) -> Result<Response, ApiError> {
    let rules = state.service.rules(&Caller::of(&user)).await?;
    Ok(Json(json!({"rules": rules})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    toml: String,
    #[serde(default)]
    replace: bool,
}

async fn import(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    axum::extract::ConnectInfo(crate::Peer(addr)): axum::extract::ConnectInfo<crate::Peer>,
    Json(body): Json<ImportBody>,
) -> Result<Response, ApiError> {
    let names = state
        .service
        .import_rules(&Caller::of(&user).at(addr), &body.toml, body.replace)
        .await?;
    Ok(Json(json!({"imported": names})).into_response())
}

async fn export(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
) -> Result<Response, ApiError> {
    let text = state.service.export_rules(&Caller::of(&user)).await?;
    Ok(([(header::CONTENT_TYPE, "application/toml")], text).into_response())
}

async fn show(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let caller = Caller::of(&user);
    let (stored, _) = state.service.rule(&caller, &name).await?;
    let (hour, day) = state.service.rule_counts(&caller, &name).await?;
    Ok(Json(json!({"rule": stored, "last_hour": hour, "last_day": day})).into_response())
}

async fn set_enabled(
    state: AppState,
    user: &User,
    addr: std::net::SocketAddr,
    name: &str,
    enabled: bool,
) -> Result<Response, ApiError> {
    state
        .service
        .set_rule_enabled(&Caller::of(user).at(addr), name, enabled)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn enable(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    axum::extract::ConnectInfo(crate::Peer(addr)): axum::extract::ConnectInfo<crate::Peer>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set_enabled(state, &user, addr, &name, true).await
}

async fn disable(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    axum::extract::ConnectInfo(crate::Peer(addr)): axum::extract::ConnectInfo<crate::Peer>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set_enabled(state, &user, addr, &name, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    incident: i64,
}

async fn test(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(name): Path<String>,
    Json(body): Json<TestBody>,
) -> Result<Response, ApiError> {
    let plan = state
        .service
        .test_rule(&Caller::of(&user), &name, body.incident)
        .await?;
    Ok(Json(plan).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BacktestParams {
    since: Option<String>,
}

async fn backtest(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(name): Path<String>,
    Query(params): Query<BacktestParams>,
) -> Result<Response, ApiError> {
    let since = watchfloor_core::time::parse_time(
        params.since.as_deref().unwrap_or("30 days"),
        chrono::Utc::now(),
    )
    .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("since: {e}")))?;
    let result = state
        .service
        .backtest_rule(&Caller::of(&user), &name, since)
        .await?;
    Ok(Json(result).into_response())
}
