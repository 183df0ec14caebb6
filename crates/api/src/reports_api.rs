//! `/api/v1/reports`: the provider accountability figures of a period, of one organization or
//! of every organization the caller sees.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Extension, Json};
use serde::Deserialize;
use watchfloor_service::Caller;
use watchfloor_storage::User;

use crate::endpoint::{Endpoint, ep};
use crate::error::ApiError;
use crate::state::AppState;

/// The report routes, as the native API lists them.
pub(crate) fn routes() -> Vec<(Endpoint, MethodRouter<AppState>)> {
    vec![(
        ep(
            "GET",
            "/api/v1/reports",
            "?org=&since=&until=&period=",
            "the figures of the incidents first seen in a period (period=2026-11 or a day, or since= and until=, default now): volume by severity, delivery lag, times to assign and close (median, p90, max in seconds), false-positive share, SLA compliance and open breaches; for all, and per instance, organization and type; a user of some organizations may name only its own",
        ),
        get(report),
    )]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    org: Option<String>,
    since: Option<String>,
    until: Option<String>,
    period: Option<String>,
}

async fn report(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Query(p): Query<ReportParams>,
) -> Result<Response, ApiError> {
    let (since, until) = watchfloor_core::report::asked(
        p.period.as_deref(),
        p.since.as_deref(),
        p.until.as_deref(),
        chrono::Utc::now(),
    )
    .map_err(|m| ApiError(StatusCode::BAD_REQUEST, m))?;
    let report = state
        .service
        .report(&Caller::of(&user), p.org.as_deref(), since, until)
        .await?;
    Ok(Json(report).into_response())
}
