//! `/api/v1/channels` and `/api/v1/notifications`: the notification channels with their
//! state, a test message (admins), and the notifications of the incidents the caller sees.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use watchfloor_service::Caller;
use watchfloor_storage::{NotificationFilter, User};

use crate::endpoint::{Endpoint, ep};
use crate::error::ApiError;
use crate::state::AppState;

/// The notification routes, as the native API lists them.
pub(crate) fn routes() -> Vec<(Endpoint, MethodRouter<AppState>)> {
    vec![
        (
            ep(
                "GET",
                "/api/v1/channels",
                "",
                "the notification channels: kind, where they deliver (no secrets), hourly limit, waiting, sent in the last hour, failed in the last day, last error (users who see every organization)",
            ).returns("Channels"),
            get(list),
        ),
        (
            ep(
                "POST",
                "/api/v1/channels/{name}/test",
                "",
                "send a test message on a channel now (admins): 204, or 502 with the receiver's error",
            ).returns("204"),
            post(test),
        ),
        (
            ep(
                "GET",
                "/api/v1/notifications",
                "?channel=&status=&incident=&limit=",
                "notifications of the incidents the caller sees, newest first; status is pending, sent or failed",
            ).returns("Notifications"),
            get(notifications),
        ),
    ]
}

async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
) -> Result<Response, ApiError> {
    let channels = state.service.channel_views(&Caller::of(&user)).await?;
    Ok(Json(json!({"channels": channels})).into_response())
}

async fn test(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    axum::extract::ConnectInfo(crate::Peer(addr)): axum::extract::ConnectInfo<crate::Peer>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .service
        .test_channel(&Caller::of(&user).at(addr), &name)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    channel: Option<String>,
    status: Option<String>,
    incident: Option<i64>,
    limit: Option<usize>,
}

async fn notifications(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
    let found = state
        .service
        .notifications(
            &Caller::of(&user),
            NotificationFilter {
                channel: p.channel,
                status: p.status,
                incident: p.incident,
                limit: p.limit,
                ..NotificationFilter::default()
            },
        )
        .await?;
    Ok(Json(json!({"notifications": found})).into_response())
}
