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
use watchfloor_storage::{IndicatorSummary, RelatedIncident, Role, User};

use super::{
    Csrf, FormData, csrf_field, error_page, flash, layout, message_of, redirect_with,
    severity_chip, status_badge, when,
};
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
                thead { tr { th { "Type" } th { "Value" } th.num { "Other incidents" } th { "Elsewhere" } } }
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
                thead { tr { th.num { "ID" } th { "Severity" } th { "Name" } th { "Status" } th.num { "Shared" } } }
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
    let query_text = query.clone();
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
    // The allow list is the admins' to keep.
    let allowlist = if user.role == Role::Admin {
        match state.service.allowlist(&Caller::of(&user)).await {
            Ok(entries) => Some(entries),
            Err(e) => return error_page(e.into()),
        }
    } else {
        None
    };
    let body = html! {
        (flash(message_of(query_text.as_deref()).as_deref()))
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
                thead { tr { th { "Type" } th { "Value" } th.num { "Incidents" } th { "First seen" } th { "Last seen" } th { "Elsewhere" } } }
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
        @if let Some(entries) = &allowlist {
            h2 { "Allow list" }
            p.hint { "Values, networks and *.domains that are no indicators in incidents stored from now on; reindex to apply to all." }
            table.grid.allowlist {
                thead { tr { th { "Entry" } th { "By" } th { "At" } th {} } }
                tbody {
                    @for e in entries {
                        tr {
                            td { (e.entry) } td { (e.by) } td { (when(e.at)) }
                            td.actions {
                                form method="post" action="/indicators/allow" {
                                    (csrf_field(&csrf))
                                    input type="hidden" name="remove" value=(e.entry);
                                    button type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            form.allow method="post" action="/indicators/allow" {
                (csrf_field(&csrf))
                input type="text" name="entry" placeholder="10.0.0.0/8, *.corp.example or a value" aria-label="allow-list entry" required;
                button type="submit" { "Add" }
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
    RawQuery(query): RawQuery,
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
        (flash(message_of(query.as_deref()).as_deref()))
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
            dt { "Verdict" }
            dd {
                @if let Some(v) = &s.verdict {
                    span class={ "verdict " (v.verdict) } { (v.verdict) } " · " (v.by) " · " (when(v.at))
                } @else { "unknown" }
            }
        }
        @if user.role != Role::Viewer && s.incidents > 0 {
            form.verdict method="post" action={ (href(s)) "/verdict" } {
                (csrf_field(&csrf))
                select name="verdict" aria-label="verdict" {
                    @for v in ["malicious", "suspicious", "benign", "unknown"] {
                        option value=(v) selected[s.verdict.as_ref().map_or(v == "unknown", |x| x.verdict == v)] { (v) }
                    }
                }
                button type="submit" { "Set verdict" }
            }
        }
        @if !found.found_in.is_empty() {
            p { a href=(queue_href(&s.value)) { "Open in the queue" } }
            table.grid {
                thead { tr { th.num { "ID" } th { "Severity" } th { "Name" } th { "Organization" } th { "Status" } th { "Occurred" } } }
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

/// `POST /indicators/{type}/{value}/verdict`: the form on an indicator's page.
pub(crate) async fn set_verdict(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path((kind, value)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = match FormData::checked(&body, &csrf) {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let back = format!("/indicators/{}/{}", segment(&kind), segment(&value));
    let verdict = form.get("verdict").unwrap_or_default();
    match state
        .service
        .set_verdict(&Caller::of(&user), Some(&kind), &value, verdict)
        .await
    {
        Ok(_) => redirect_with(&back, "Verdict saved."),
        Err(watchfloor_service::ServiceError::Invalid(why)) => {
            redirect_with(&back, &format!("Not saved: {why}."))
        }
        Err(e) => error_page(e.into()),
    }
}

/// `POST /indicators/allow`: adds (`entry`) or removes (`remove`) an allow-list entry.
pub(crate) async fn change_allowlist(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    body: axum::body::Bytes,
) -> Response {
    let form = match FormData::checked(&body, &csrf) {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let (entry, add) = match (form.get("entry"), form.get("remove")) {
        (Some(e), _) => (e.to_string(), true),
        (None, Some(e)) => (e.to_string(), false),
        (None, None) => return redirect_with("/indicators", "Not saved: name an entry."),
    };
    match state
        .service
        .change_allowlist(&Caller::of(&user), &entry, add)
        .await
    {
        Ok(true) if add => redirect_with("/indicators", &format!("{entry} is on the allow list.")),
        Ok(true) => redirect_with("/indicators", &format!("{entry} is off the allow list.")),
        Ok(false) => redirect_with("/indicators", "Nothing changed."),
        Err(watchfloor_service::ServiceError::Invalid(why)) => {
            redirect_with("/indicators", &format!("Not saved: {why}."))
        }
        Err(e) => error_page(e.into()),
    }
}
