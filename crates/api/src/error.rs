//! `ApiError`, the answer to a request that failed: a status and `{error, code}`; and how the
//! service's errors, and a command's, become one.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use watchfloor_integrations::RunError;
use watchfloor_service::ServiceError;
use watchfloor_service::commands::CommandFailure;

/// An error answer: a status and a message that says what is wrong. The body is
/// `{"error": message, "code": code}`, with a stable `code` per status for scripts.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl ApiError {
    fn code(&self) -> &'static str {
        match self.0 {
            StatusCode::BAD_REQUEST
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::PAYLOAD_TOO_LARGE => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::UNPROCESSABLE_ENTITY => "refused",
            StatusCode::BAD_GATEWAY => "provider_failed",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
            _ => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        (self.0, Json(json!({"error": self.1, "code": code}))).into_response()
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "request failed");
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the request failed; see the server's log".into(),
    )
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        let status = match &e {
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Failed(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Store(e) => return internal(e),
        };
        ApiError(status, e.to_string())
    }
}

/// A command's failure as an answer: the caller's mistake is 400, the provider's 502.
pub(crate) fn run_failed(e: RunError) -> ApiError {
    if e.is_usage() {
        ApiError(StatusCode::BAD_REQUEST, e.to_string())
    } else {
        ApiError(StatusCode::BAD_GATEWAY, e.to_string())
    }
}

/// A command's recorded failure as an answer: refused by the organization rule is 403.
pub(crate) fn command_failed(e: CommandFailure) -> ApiError {
    match e {
        CommandFailure::Run(e) => run_failed(e),
        CommandFailure::Reference(m) => ApiError(StatusCode::BAD_REQUEST, m),
        e @ CommandFailure::Refused(_) => ApiError(StatusCode::FORBIDDEN, e.to_string()),
    }
}
