//! `/api/v1/reports`: the provider accountability figures of a period, of one organization or
//! of every organization the caller sees.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use chrono::Utc;
use watchfloor_core::report::{groups_csv, incidents_csv};

use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Extension, Json};
use serde::Deserialize;
use watchfloor_notify::report_page::customer_report_html;
use watchfloor_service::Caller;
use watchfloor_storage::User;

use crate::endpoint::{Endpoint, ep};
use crate::error::ApiError;
use crate::state::AppState;

/// The report routes, as the native API lists them.
pub(crate) fn routes() -> Vec<(Endpoint, MethodRouter<AppState>)> {
    vec![
        (
            ep(
                "GET",
                "/api/v1/reports",
                "?org=&since=&until=&period=&format=",
                "the figures of the incidents first seen in a period (period=2026-11 or a day, or since= and until=, default now): volume by severity, delivery lag, times to assign and close (median, p90, max in seconds), false-positive share, SLA compliance and open breaches; for all, and per instance, organization and type; a user of some organizations may name only its own. format=json (the default), csv (a row per group), html (the customer report: one self-contained page with the critical and high incidents and the top titles and indicators) or incidents-csv (a row per incident)",
            ).returns("Report"),
            get(report),
        ),
        (
            ep(
                "GET",
                "/api/v1/reports/sends",
                "",
                "the scheduled customer reports (`[[reports]]`) queued and sent, newest first: organization, channel, period, status (pending, sent, failed), attempts, the last error; users who see every organization only",
            ).returns("[ReportSend]"),
            get(sends),
        ),
    ]
}

async fn sends(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.report_sends(&Caller::of(&user)).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    org: Option<String>,
    since: Option<String>,
    until: Option<String>,
    period: Option<String>,
    format: Option<String>,
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
    let caller = Caller::of(&user);
    let org = p.org.as_deref();
    let attachment = |kind: &'static str, ext: &str, body: String| {
        let name = format!(
            "report-{}-{}.{ext}",
            org.map(file_safe).unwrap_or_else(|| "all".into()),
            since.format("%Y-%m-%d")
        );
        (
            [
                (header::CONTENT_TYPE, kind.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"{name}\""),
                ),
            ],
            body,
        )
            .into_response()
    };
    Ok(match p.format.as_deref().unwrap_or("json") {
        "json" => Json(state.service.report(&caller, org, since, until).await?).into_response(),
        "csv" => {
            let report = state.service.report(&caller, org, since, until).await?;
            attachment("text/csv; charset=utf-8", "csv", groups_csv(&report))
        }
        "incidents-csv" => {
            let c = state
                .service
                .customer_report(&caller, org, since, until)
                .await?;
            attachment(
                "text/csv; charset=utf-8",
                "csv",
                incidents_csv(&c.rows, c.report.until),
            )
        }
        "html" => {
            let c = state
                .service
                .customer_report(&caller, org, since, until)
                .await?;
            let mut answer = attachment(
                "text/html; charset=utf-8",
                "html",
                customer_report_html(&c, Utc::now()),
            );
            set_report_policy(&mut answer);
            answer
        }
        other => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("format {other:?} is not one of json, csv, html, incidents-csv"),
            ));
        }
    })
}

/// A served customer report's own policy: its inline style and nothing else (the UI's is not
/// set over it). The API's and the UI's report pages both set it here.
pub(crate) fn set_report_policy(answer: &mut Response) {
    if let Ok(value) = HeaderValue::from_str(&watchfloor_notify::report_page::policy()) {
        answer
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// An organization's name as part of a file name: letters, digits, `-` and `_` only.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
