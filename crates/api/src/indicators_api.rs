//! `/api/v1/indicators` and `/api/v1/incidents/{id}/indicators`: the indicators found in the
//! incidents the caller sees, one with its incidents, an incident's with those related to it,
//! and a reindex (admins).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
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

/// Incidents related to one, as its indicators route lists them.
const RELATED: usize = 20;

/// The indicator routes, as the native API lists them.
pub(crate) fn routes() -> Vec<(Endpoint, MethodRouter<AppState>)> {
    vec![
        (
            ep(
                "GET",
                "/api/v1/indicators",
                "?type=&value=&limit=",
                "indicators in the caller's incidents, those of the latest stored incidents first: type, value, incidents, first and last seen (and other_organizations, a count, for a user of some organizations)",
            ).returns("Indicators"),
            get(list),
        ),
        (
            ep(
                "GET",
                "/api/v1/indicators/{type}/{value}",
                "",
                "one indicator and the caller's incidents that hold it (found_in); 404 if none of them does and no other organization saw it",
            ).returns("Indicator"),
            get(show),
        ),
        (
            ep(
                "POST",
                "/api/v1/indicators/{type}/{value}/verdict",
                "{verdict}",
                "give an indicator a verdict in the caller's organizations that hold it: malicious, suspicious, benign (it then relates no incidents) or unknown (taken back); not viewers",
            ).returns("Indicator"),
            post(verdict),
        ),
        (
            ep(
                "GET",
                "/api/v1/indicators/allowlist",
                "",
                "the allow list: values, networks and *.domains that are no indicators (admins)",
            ).returns("Allowlist"),
            get(allowlist),
        ),
        (
            ep(
                "POST",
                "/api/v1/indicators/allowlist",
                "{entry}",
                "add an allow-list entry, applied to incidents stored from then on (admins)",
            ).returns("201 AllowlistAdded"),
            post(allow),
        ),
        (
            ep(
                "DELETE",
                "/api/v1/indicators/allowlist/{entry}",
                "",
                "remove an allow-list entry (admins): 204, or 404 if it was not there",
            ).returns("204"),
            axum::routing::delete(disallow),
        ),
        (
            ep(
                "POST",
                "/api/v1/indicators/reindex",
                "",
                "find every incident's indicators again with the exclusions as configured now (admins)",
            ).returns("204"),
            post(reindex),
        ),
        (
            ep(
                "GET",
                "/api/v1/incidents/{id}/indicators",
                "",
                "an incident's indicators, each with the caller's incidents that hold it, and the incidents that share indicators with it (related)",
            ).returns("IncidentIndicators"),
            get(of_incident),
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
    let found = state
        .service
        .indicators(
            &Caller::of(&user),
            p.kind.as_deref(),
            p.value.as_deref(),
            p.limit,
        )
        .await?;
    Ok(Json(json!({"indicators": found})).into_response())
}

async fn show(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path((kind, value)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = state
        .service
        .indicator(&Caller::of(&user), Some(&kind), &value)
        .await?;
    Ok(Json(found).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictBody {
    verdict: String,
}

async fn verdict(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path((kind, value)): Path<(String, String)>,
    Json(body): Json<VerdictBody>,
) -> Result<Response, ApiError> {
    let found = state
        .service
        .set_verdict(&Caller::of(&user), Some(&kind), &value, &body.verdict)
        .await?;
    Ok(Json(found).into_response())
}

async fn allowlist(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
) -> Result<Response, ApiError> {
    let entries = state.service.allowlist(&Caller::of(&user)).await?;
    Ok(Json(json!({"allowlist": entries})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowBody {
    entry: String,
}

async fn allow(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Json(body): Json<AllowBody>,
) -> Result<Response, ApiError> {
    let added = state
        .service
        .change_allowlist(&Caller::of(&user), &body.entry, true)
        .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"entry": body.entry.trim().to_ascii_lowercase(), "added": added})),
    )
        .into_response())
}

async fn disallow(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(entry): Path<String>,
) -> Result<Response, ApiError> {
    let removed = state
        .service
        .change_allowlist(&Caller::of(&user), &entry, false)
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "`{entry}` is not on the allow list; GET /api/v1/indicators/allowlist lists what is"
            ),
        ))
    }
}

async fn reindex(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
) -> Result<Response, ApiError> {
    state.service.reindex_indicators(&Caller::of(&user)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn of_incident(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let caller = Caller::of(&user);
    let indicators = state.service.incident_indicators(&caller, id).await?;
    let related = state
        .service
        .related_incidents(&caller, id, RELATED)
        .await?;
    Ok(Json(json!({"indicators": indicators, "related": related})).into_response())
}
