//! Indicators in the browser: the list (by type, or one value), one indicator with the
//! caller's incidents that hold it, and the part of an incident's page that lists its
//! indicators and the incidents related to it. Scoped analysts see a count of other
//! organizations, never which.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use watchfloor_service::Caller;
use watchfloor_storage::{IndicatorSummary, RelatedIncident, User};

use super::{Csrf, error_page, layout, severity_chip, status_badge, when};
use crate::state::AppState;

/// `s` as one path segment: everything but unreserved characters percent-encoded.
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where an indicator's page is.
pub(crate) fn href(s: &IndicatorSummary) -> String {
    format!("/indicators/{}/{}", segment(&s.kind), segment(&s.value))
}

/// The queue filtered to the incidents that hold an indicator.
pub(crate) fn queue_href(value: &str) -> String {
    let q = format!("indicator:\"{}\"", value.replace('"', ""));
    let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    format!("/?q={q}")
}

/// "3 other organizations", or nothing.
fn elsewhere(s: &IndicatorSummary) -> String {
    match s.other_organizations {
        Some(0) | None => String::new(),
        Some(1) => "1 other organization".into(),
        Some(n) => format!("{n} other organizations"),
    }
}

/// The incident page's part: its indicators, each with the other incidents that hold it,
/// and the incidents that share indicators with it.
pub(crate) fn of_incident(found: &[IndicatorSummary], related: &[RelatedIncident]) -> Markup {
    html! {
        h2 #indicators { "Indicators" }
        @if found.is_empty() {
            p.hint { "No indicators found in this incident." }
        } @else {
            table.grid.indicators {
                thead { tr { th { "Type" } th { "Value" } th { "Other incidents" } th { "Elsewhere" } } }
                tbody {
                    @for s in found {
                        @let others = s.incidents.saturating_sub(1);
                        tr {
                            td { (s.kind) }
                            td.value { a href=(href(s)) { (s.value) } }
                            td.num {
                                @if others > 0 { a href=(queue_href(&s.value)) { (others) } } @else { "0" }
                            }
                            td.hint { (elsewhere(s)) }
                        }
                    }
                }
            }
        }
        @if !related.is_empty() {
            h2 { "Related incidents" }
            table.grid.related {
                thead { tr { th { "ID" } th { "Severity" } th { "Name" } th { "Status" } th { "Shared" } } }
                tbody {
                    @for r in related {
                        tr {
                            td.num { a href={ "/incidents/" (r.incident.id) } { "#" (r.incident.id) } }
                            td { (severity_chip(r.incident.severity)) }
                            td { a href={ "/incidents/" (r.incident.id) } { (r.incident.name) } }
                            td { (status_badge(r.incident.status)) }
                            td.num { (r.shared) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /indicators?type=&value=`: the indicators of the caller's incidents.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    RawQuery(query): RawQuery,
) -> Response {
    let params: std::collections::HashMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let kind = params.get("type").filter(|k| !k.is_empty());
    let value = params.get("value").filter(|v| !v.trim().is_empty());
    let found = match state
        .service
        .indicators(
            &Caller::of(&user),
            kind.map(String::as_str),
            value.map(String::as_str),
            Some(200),
        )
        .await
    {
        Ok(found) => found,
        Err(e) => return error_page(e.into()),
    };
    let body = html! {
        h1 { "Indicators" }
        form.filters method="get" action="/indicators" {
            select name="type" aria-label="type" {
                option value="" { "any type" }
                @for k in watchfloor_indicators::Kind::ALL {
                    option value=(k.as_str()) selected[kind.is_some_and(|x| x == k.as_str())] { (k.as_str()) }
                }
            }
            input type="search" name="value" value=(value.cloned().unwrap_or_default()) placeholder="value, e.g. 203.0.113.7" aria-label="value";
            button type="submit" { "Find" }
        }
        @if found.is_empty() {
            p.hint { "No indicators in the incidents you can see." }
        } @else {
            table.grid {
                thead { tr { th { "Type" } th { "Value" } th { "Incidents" } th { "First seen" } th { "Last seen" } th { "Elsewhere" } } }
                tbody {
                    @for s in &found {
                        tr {
                            td { (s.kind) }
                            td.value { a href=(href(s)) { (s.value) } }
                            td.num { a href=(queue_href(&s.value)) { (s.incidents) } }
                            td { (when(s.first_seen)) }
                            td { (when(s.last_seen)) }
                            td.hint { (elsewhere(s)) }
                        }
                    }
                }
            }
        }
    };
    layout("Indicators", &user, &csrf, "Indicators", body)
}

/// `GET /indicators/{type}/{value}`: one indicator and the caller's incidents that hold it.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path((kind, value)): Path<(String, String)>,
) -> Response {
    let found = match state
        .service
        .indicator(&Caller::of(&user), Some(&kind), &value)
        .await
    {
        Ok(found) => found,
        Err(e) => return error_page(e.into()),
    };
    let s = &found.summary;
    let body = html! {
        h1 { span.num { (s.kind) } " " (s.value) }
        dl.indicator {
            dt { "Incidents" } dd { (s.incidents) }
            @if s.incidents > 0 {
                dt { "First seen" } dd { (when(s.first_seen)) }
                dt { "Last seen" } dd { (when(s.last_seen)) }
            }
            @if let Some(n) = s.other_organizations.filter(|n| *n > 0) {
                dt { "Elsewhere" } dd { "seen in " (n) @if n == 1 { " other organization" } @else { " other organizations" } }
            }
        }
        @if !found.found_in.is_empty() {
            p { a href=(queue_href(&s.value)) { "Open in the queue" } }
            table.grid {
                thead { tr { th { "ID" } th { "Severity" } th { "Name" } th { "Organization" } th { "Status" } th { "Occurred" } } }
                tbody {
                    @for i in &found.found_in {
                        tr {
                            td.num { a href={ "/incidents/" (i.id) } { "#" (i.id) } }
                            td { (severity_chip(i.severity)) }
                            td { a href={ "/incidents/" (i.id) } { (i.name) } }
                            td { (i.organization.clone().unwrap_or_default()) }
                            td { (status_badge(i.status)) }
                            td { (when(i.occurred)) }
                        }
                    }
                }
            }
        }
    };
    layout(
        &format!("{} {}", s.kind, s.value),
        &user,
        &csrf,
        "Indicators",
        body,
    )
}
