//! Error answers of the simulators: a status and a JSON body `{"<field>": message}`, where the
//! field is the one the simulated API uses (`error` for FES, `message` for Covalence).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub field: &'static str,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ self.field: self.message }))).into_response()
    }
}

/// A handler result.
pub type ApiResult = Result<Response, ApiError>;
