//! The routes: `/healthz`, `/readyz`, and `/api/v1/incidents[/{id}]`, behind API-key
//! authentication (`Authorization: KEY`, as XSOAR's clients send it, or `Bearer KEY`).

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use watchfloor_core::{Severity, Status};
use watchfloor_storage::{IncidentFilter, Scope, Store, User};

use crate::auth::key_hash;

/// What every route shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
}

/// An error answer: a status and a message that says what is wrong.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "request failed");
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the request failed; see the server's log".into(),
    )
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/incidents", get(list))
        .route("/api/v1/incidents/{id}", get(one))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .merge(api)
        .with_state(state)
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.store.count("").await {
        Ok(_) => "ready".into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store is not reachable: {e}"),
        )
            .into_response(),
    }
}

/// Finds the caller by API key; the user goes to the route as an extension.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
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
    match state.store.user_by_key(&key_hash(&key)).await {
        Ok(Some(user)) => {
            req.extensions_mut().insert(Arc::new(user));
            next.run(req).await
        }
        Ok(None) => ApiError(
            StatusCode::UNAUTHORIZED,
            "the API key is not valid, or was revoked".into(),
        )
        .into_response(),
        Err(e) => internal(e).into_response(),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    severity: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let bad = |e: String| ApiError(StatusCode::BAD_REQUEST, e);
    let filter = IncidentFilter {
        scope: Scope::of(&user),
        status: q
            .status
            .as_deref()
            .map(Status::parse)
            .transpose()
            .map_err(bad)?
            .into_iter()
            .collect(),
        severity: q
            .severity
            .as_deref()
            .map(Severity::parse)
            .transpose()
            .map_err(bad)?
            .into_iter()
            .collect(),
        limit: Some(q.limit.unwrap_or(50).min(1000)),
        ..IncidentFilter::default()
    };
    let incidents = state.store.incidents(&filter).await.map_err(internal)?;
    Ok(Json(json!({"total": incidents.len(), "data": incidents})).into_response())
}

async fn one(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let found = state.store.incident(id).await.map_err(internal)?;
    match found {
        Some(incident) if Scope::of(&user).allows(incident.organization.as_deref()) => {
            Ok(Json(incident).into_response())
        }
        // Another organization's incident does not exist, as far as this caller can tell.
        _ => Err(ApiError(StatusCode::NOT_FOUND, format!("no incident {id}"))),
    }
}
