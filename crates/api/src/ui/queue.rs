//! The queue, the home page: the incidents the user may see, filtered, sorted and paged as the
//! URL says, with bulk changes (to the selected incidents or to every match), live updates and
//! keyboard moves.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use maud::{Markup, html};
use serde_json::json;
use watchfloor_core::{Change, CloseReason, Edit, Incident, Severity, Status};
use watchfloor_storage::{Facets, Role, User};

use super::{
    Csrf, FormData, csrf_field, error_page, flash, layout, redirect_with, severity_chip, sla_cell,
    span_text, status_badge,
};
use watchfloor_service::{Caller, QueueParams as ListQuery, Selection, ToEach};

use crate::error::ApiError;
use crate::state::AppState;

/// The queue's URL: the API's list query, and besides it `msg` (a redirect's message) and
/// `since` (for live updates).
pub(crate) struct QueueQuery {
    list: ListQuery,
    msg: Option<String>,
    since: Option<String>,
}

impl QueueQuery {
    fn parse(raw: Option<&str>) -> Result<QueueQuery, ApiError> {
        let (mut msg, mut since) = (None, None);
        let mut rest = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match k.as_ref() {
                "msg" => msg = Some(v.into_owned()),
                "since" => since = Some(v.into_owned()),
                _ => {
                    rest.append_pair(&k, &v);
                }
            }
        }
        let list = serde_urlencoded::from_str(&rest.finish()).map_err(|e| {
            ApiError(
                axum::http::StatusCode::BAD_REQUEST,
                format!("the queue's address is not one it understands ({e}): start again from the queue"),
            )
        })?;
        Ok(QueueQuery { list, msg, since })
    }
}

fn effective(q: &ListQuery) -> ListQuery {
    let mut q = q.clone();
    match q.status.as_deref() {
        None | Some("") | Some("open") => q.status = Some("pending,active".into()),
        Some("all") => q.status = None,
        _ => {}
    }
    q.limit = Some(50);
    q
}

/// The URL of the queue with these filters.
fn url(q: &ListQuery) -> String {
    let query = serde_urlencoded::to_string(q).unwrap_or_default();
    if query.is_empty() {
        "/".into()
    } else {
        format!("/?{query}")
    }
}

const COLUMNS: [(&str, &str); 9] = [
    ("severity", "Sev"),
    ("id", "#"),
    ("name", "Name"),
    ("organization", "Organization"),
    ("instance", "Instance"),
    ("status", "Status"),
    ("owner", "Owner"),
    ("occurred", "Age"),
    ("sla", "SLA"),
];

pub(crate) fn rows(incidents: &[Incident]) -> Markup {
    let now = Utc::now();
    html! {
        @for i in incidents {
            tr data-id=(i.id) {
                td { input type="checkbox" name="id" value=(i.id) form="bulk" aria-label="select"; }
                td { (severity_chip(i.severity)) }
                td.num { (i.id) }
                td.name { a href={ "/incidents/" (i.id) } { (i.name) } }
                td { (i.organization.as_deref().unwrap_or("")) }
                td { (if i.is_manual() { "manual" } else { i.instance.as_str() }) }
                td { (status_badge(i.status)) }
                td { (i.owner.as_deref().unwrap_or("")) }
                // Two clocks: the age counts from when the provider made it, the SLA from
                // when watchfloor stored it; where they differ, the cell says both.
                td.num title={ "occurred " (super::when(i.occurred)) " · stored " (super::when(i.created)) } {
                    (span_text((now - i.occurred).num_seconds()))
                    @if (i.created - i.occurred).num_seconds() > 3_600 {
                        br; span.hint.stored { "stored " (span_text((now - i.created).num_seconds())) " ago" }
                    }
                }
                td { (sla_cell(i, now)) }
            }
        }
    }
}

fn select(name: &str, current: Option<&str>, options: &[(&str, &str)]) -> Markup {
    html! {
        select name=(name) {
            @for (value, label) in options {
                option value=(value) selected[current.unwrap_or("").eq_ignore_ascii_case(value)] { (label) }
            }
        }
    }
}

/// The search term of the unassigned incidents.
const UNASSIGNED: &str = "owner:\"\"";

/// `on`, the class of the value a filter is set to.
fn on(set: bool) -> Option<&'static str> {
    set.then_some("on")
}

/// The filter counts: for each counted filter, its values with how many incidents each has
/// under the other filters, each a link that sets it (the one set is marked).
fn facet_bar(list: &ListQuery, f: &Facets) -> Markup {
    let mut without_after = list.clone();
    without_after.after = None;
    let link = |set: &dyn Fn(&mut ListQuery)| {
        let mut l = without_after.clone();
        set(&mut l);
        url(&l)
    };
    let count = |n: u64| {
        // 1234567 as "1,234,567".
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    let open: u64 = f
        .status
        .iter()
        .filter(|(s, _)| *s != Status::Closed)
        .map(|(_, n)| n)
        .sum();
    let current_status = list.status.as_deref().unwrap_or("");
    let unassigned = list
        .q
        .as_deref()
        .is_some_and(|q| q.split_whitespace().any(|t| t == UNASSIGNED));
    html! {
        div.facets {
            span.facet {
                span.label { "Status" }
                a class=[on(current_status.is_empty() || current_status == "open")] href=(link(&|l| l.status = None)) {
                    "open " span.n { (count(open)) }
                }
                @for (s, n) in &f.status {
                    a class=[on(current_status == s.as_str())] href=(link(&|l| l.status = Some(s.as_str().into()))) {
                        (s.as_str()) " " span.n { (count(*n)) }
                    }
                }
            }
            span.facet {
                span.label { "Severity" }
                @for (s, n) in f.severity.iter().filter(|(_, n)| *n > 0) {
                    a class=[on(list.severity.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(s.label())))] href=(link(&|l| l.severity = Some(s.label().into()))) {
                        (s.label()) " " span.n { (count(*n)) }
                    }
                }
            }
            @if !f.organization.is_empty() {
                span.facet {
                    span.label { "Organization" }
                    @for (o, n) in f.organization.iter().filter(|(o, _)| !o.is_empty()) {
                        a class=[on(list.organization.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(o)))] href=(link(&|l| l.organization = Some(o.clone()))) {
                            (o) " " span.n { (count(*n)) }
                        }
                    }
                }
            }
            @if let Some(n) = f.sampled {
                span.hint title="this search's counts are not kept: they are counted among its first matches" { "counts of the first " (n) " matches" }
            }
            span.facet {
                span.label { "Owner" }
                @for (o, n) in &f.owner {
                    @match o {
                        Some(o) => a class=[on(list.owner.as_deref() == Some(o.as_str()))] href=(link(&|l| l.owner = Some(o.clone()))) {
                            (o) " " span.n { (count(*n)) }
                        },
                        // The owner filter's empty box is no filter; the search's term is
                        // the unassigned.
                        None => a class=[on(unassigned)] href=(link(&|l| if !unassigned {
                            l.q = Some(format!("{} {UNASSIGNED}", l.q.as_deref().unwrap_or_default()).trim().to_string());
                        })) {
                            "unassigned " span.n { (count(*n)) }
                        },
                    }
                }
            }
        }
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match QueueQuery::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return error_page(e),
    };
    let list = &q.list;
    let shown = effective(list);
    let caller = Caller::of(&user);
    let (page, facets) = tokio::join!(
        state.service.queue_page(&caller, &shown),
        state.service.queue_facets(&caller, &shown)
    );
    let page = match page {
        Ok(p) => p,
        Err(e) => return error_page(e.into()),
    };
    let facets = match facets {
        Ok(f) => f,
        Err(e) => return error_page(e.into()),
    };
    let mut without_after = list.clone();
    without_after.after = None;
    let sort_link = |field: &str| {
        let mut l = without_after.clone();
        let same = l.sort.as_deref() == Some(field)
            || (field == "occurred" && l.sort.as_deref().unwrap_or("").is_empty());
        l.order = Some(if same && l.order.as_deref() != Some("asc") {
            "asc".into()
        } else {
            "desc".into()
        });
        l.sort = Some(field.into());
        url(&l)
    };
    let mut next = list.clone();
    next.after = page.next.clone();
    // Each level alone, then each level and above (as the CLI's `--severity high+`).
    let severities: Vec<(&str, &str)> = std::iter::once(("", "any severity"))
        .chain(Severity::ALL.iter().map(|s| (s.label(), s.label())))
        .chain([("high+", "High+"), ("medium+", "Medium+"), ("low+", "Low+")])
        .collect();
    let newest = page
        .incidents
        .iter()
        .map(|i| i.created)
        .max()
        .unwrap_or_else(Utc::now);
    let body = html! {
        (flash(q.msg.as_deref()))
        form.filters method="get" action="/" {
            input type="search" name="q" value=(list.q.clone().unwrap_or_default()) placeholder="Search: words, or -status:closed owner:\"\" type:phishing" aria-label="search";
            (select("status", list.status.as_deref(), &[("", "open"), ("pending", "pending"), ("active", "active"), ("closed", "closed"), ("all", "all")]))
            (select("severity", list.severity.as_deref(), &severities))
            (select("sla", list.sla.as_deref(), &[("", "any SLA"), ("ok", "ok"), ("at-risk", "at risk"), ("breached", "breached")]))
            input name="organization" value=(list.organization.clone().unwrap_or_default()) placeholder="organization" aria-label="organization";
            input name="instance" value=(list.instance.clone().unwrap_or_default()) placeholder="instance" aria-label="instance";
            input name="owner" value=(list.owner.clone().unwrap_or_default()) placeholder="owner" aria-label="owner";
            @if let Some(sort) = &list.sort { input type="hidden" name="sort" value=(sort); }
            @if let Some(order) = &list.order { input type="hidden" name="order" value=(order); }
            button type="submit" { "Filter" }
            a href="/" { "Clear" }
        }
        @if let Some(f) = &facets { (facet_bar(list, f)) }
        form #bulk .bulk method="post" action="/queue/bulk" {
            (csrf_field(&csrf))
            input type="hidden" name="back" value=(url(list));
            input type="hidden" name="filter" value=(selection_filter(list));
            @if user.role != Role::Viewer {
                span { "Selected" }
                label.all title="change every incident these filters match (at most 10,000), asked once more before anything changes" {
                    input type="checkbox" name="all" value="1";
                    " or every match:"
                }
                button type="submit" name="action" value="assign-me" { "Assign to me" }
                input name="owner" placeholder="owner" aria-label="assign to";
                button type="submit" name="action" value="assign" { "Assign" }
                select name="severity" aria-label="severity to set" {
                    option value="" { "severity…" }
                    @for s in Severity::ALL.iter().rev() { option value=(s.label()) { (s.label()) } }
                }
                button type="submit" name="action" value="severity" { "Set severity" }
                select name="reason" aria-label="close reason" {
                    @for r in CloseReason::ALL { option value=(r.as_str()) { (r.as_str()) } }
                }
                input name="notes" placeholder="close notes" aria-label="close notes";
                button type="submit" name="action" value="close" { "Close" }
                button type="submit" name="action" value="reopen" { "Reopen" }
                input name="note" placeholder="note (markdown)" aria-label="note to add";
                button type="submit" name="action" value="note" { "Add note" }
            }
            span.hint { "j/k move · Enter open · a assign to me · c close · / search" }
        }
        div #fresh .fresh hidden {}
        table.queue data-fresh=(format!("/queue/fresh{}", url(&effective(list)).trim_start_matches('/'))) data-since=(newest.to_rfc3339()) data-first-page=(list.after.is_none()) {
            thead {
                tr {
                    th { input type="checkbox" #select-all aria-label="select all"; }
                    @for (field, label) in COLUMNS {
                        // The number and the age are right-aligned, as their cells are.
                        th class=[matches!(field, "id" | "occurred").then_some("num")] {
                            @if field.is_empty() { (label) } @else { a href=(sort_link(field)) { (label) } }
                        }
                    }
                }
            }
            tbody { (rows(&page.incidents)) }
        }
        @if page.incidents.is_empty() { p.empty { "No incidents match." } }
        nav.pages {
            @if list.after.is_some() { a href=(url(&without_after)) { "« First page" } }
            @if page.next.is_some() { a #next-page href=(url(&next)) { "Next page »" } }
        }
    };
    layout("Queue", &user, &csrf, "Queue", body)
}

/// For live updates: how many incidents matching the queue's filters arrived since `since`,
/// and the first page's rows.
pub(crate) async fn fresh(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match QueueQuery::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let Some(since) = q.since.as_deref().and_then(watchfloor_core::time::moment) else {
        return ApiError(
            axum::http::StatusCode::BAD_REQUEST,
            "`since` is not a time".into(),
        )
        .into_response();
    };
    let page = match state.service.queue_page(&Caller::of(&user), &q.list).await {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let new = page.incidents.iter().filter(|i| i.created > since).count();
    Json(json!({"new": new, "rows": rows(&page.incidents).into_string()})).into_response()
}

/// The queue's filters as a bulk change over every match takes them: what the page shows,
/// unpaged.
fn selection_filter(list: &ListQuery) -> String {
    let mut q = effective(list);
    q.limit = None;
    q.after = None;
    q.count = false;
    serde_urlencoded::to_string(&q).unwrap_or_default()
}

/// The change a bulk form's `action` asks for.
/// What the queue's bulk form does to each incident: a change, or the same note (kept here).
fn bulk_action(form: &FormData, user: &User) -> Result<ToEach, String> {
    let text = |key: &str| form.get(key).unwrap_or_default().trim().to_string();
    Ok(ToEach::Change(
        match form.get("action").unwrap_or_default() {
            "note" if text("note").is_empty() => {
                return Err("Write the note to add first.".into());
            }
            "note" => {
                return Ok(ToEach::Note {
                    text: text("note"),
                    mirror: false,
                });
            }
            "assign-me" => Change::Update(Edit {
                owner: Some(Some(user.name.clone())),
                ..Edit::default()
            }),
            "assign" => Change::Update(Edit {
                owner: Some(Some(text("owner")).filter(|o| !o.is_empty())),
                ..Edit::default()
            }),
            "severity" if text("severity").is_empty() => {
                return Err("Choose the severity to set first.".into());
            }
            "severity" => Change::Update(Edit {
                severity: Some(Severity::parse(&text("severity"))?),
                ..Edit::default()
            }),
            "close" => Change::Close {
                reason: CloseReason::parse(&text("reason"))?,
                notes: Some(text("notes")).filter(|n| !n.is_empty()),
            },
            "reopen" => Change::Reopen,
            other => return Err(format!("Unknown action {other:?}.")),
        },
    ))
}

/// What a bulk change does, in words for its confirmation.
fn describe(action: &ToEach) -> String {
    let change = match action {
        ToEach::Change(change) => change,
        ToEach::Note { .. } => return "Add the note to".into(),
    };
    match change {
        Change::Update(Edit {
            owner: Some(Some(owner)),
            ..
        }) => format!("Assign to {owner}"),
        Change::Update(Edit {
            owner: Some(None), ..
        }) => "Unassign".into(),
        Change::Update(Edit {
            severity: Some(s), ..
        }) => format!("Set severity {}", s.label()),
        Change::Update(_) => "Change".into(),
        Change::Close { reason, .. } => format!("Close as {}", reason.as_str()),
        Change::Reopen => "Reopen".into(),
    }
}

/// Bulk assign, severity, close and reopen: each selected incident goes through the same
/// rules as one. With `all`, the change is for every incident the queue's filters match, and
/// is shown for confirmation (how many, and the first of them) before anything changes.
pub(crate) async fn bulk(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    body: axum::body::Bytes,
) -> Response {
    let form = match FormData::checked(&body, &csrf) {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    let back = super::back_to(&form, "/");
    let action = match bulk_action(&form, &user) {
        Ok(action) => action,
        Err(e) => return redirect_with(&back, &e),
    };
    let caller = Caller::of(&user);
    let selection = if form.get("all") == Some("1") {
        match serde_urlencoded::from_str::<ListQuery>(form.get("filter").unwrap_or_default()) {
            Ok(filter) => Selection::Matching(Box::new(filter)),
            Err(e) => {
                return redirect_with(
                    &back,
                    &format!("The queue's filters were not understood ({e})."),
                );
            }
        }
    } else {
        let ids: Vec<i64> = form.all("id").filter_map(|v| v.parse().ok()).collect();
        if ids.is_empty() {
            return redirect_with(&back, "Select incidents first, or tick every match.");
        }
        Selection::Ids(ids)
    };
    let service = &state.service;
    if matches!(selection, Selection::Matching(_)) && form.get("confirm") != Some("1") {
        return match service.preview_each(&caller, &selection, &action).await {
            Ok(selected) => confirm_page(&user, &csrf, &form, &action, &selected),
            Err(e) => redirect_with(&back, &format!("{e}.")),
        };
    }
    let (done, refused) = match service.to_each_selected(&caller, &selection, &action).await {
        Ok((changed, refused)) => (changed.len(), refused),
        Err(e) if e.is_callers() => return redirect_with(&back, &format!("{e}.")),
        Err(e) => return error_page(e.into()),
    };
    let refused: Vec<String> = refused
        .into_iter()
        .map(|(id, why)| format!("#{id}: {why}"))
        .collect();
    let (done_word, not_word) = match action {
        ToEach::Change(_) => ("changed", "Not changed"),
        ToEach::Note { .. } => ("noted", "Not noted"),
    };
    let mut message = format!("{done} {done_word}.");
    if !refused.is_empty() {
        message.push_str(&format!(" {not_word}: {}", refused.join("; ")));
    }
    redirect_with(&back, &message)
}

/// The page that asks once more before a change to every match: how many, the first of them,
/// and the same form again with `confirm`.
fn confirm_page(
    user: &User,
    csrf: &Csrf,
    form: &FormData,
    action: &ToEach,
    selected: &[Incident],
) -> Response {
    const SHOWN: usize = 20;
    let back = super::back_to(form, "/");
    let what = describe(action);
    let body = html! {
        h1 { (what) ": " (selected.len()) " incidents" }
        @if selected.is_empty() {
            p.empty { "No incidents match these filters." }
            p { a href=(back) { "Back to the queue" } }
        } @else {
            p { "Every incident the queue's filters match, each through the same rules as a change to one (a closed incident is not closed again):" }
            table.queue.preview { tbody { (rows(&selected[..selected.len().min(SHOWN)])) } }
            @if selected.len() > SHOWN { p.hint { "and " (selected.len() - SHOWN) " more" } }
            form.confirm method="post" action="/queue/bulk" {
                (csrf_field(csrf))
                @if let ToEach::Note { text, .. } = action { p { "The note: " q { (text) } } }
                @for key in ["back", "filter", "action", "owner", "severity", "reason", "notes", "note"] {
                    @if let Some(v) = form.get(key) { input type="hidden" name=(key) value=(v); }
                }
                input type="hidden" name="all" value="1";
                input type="hidden" name="confirm" value="1";
                button type="submit" { (what) " " (selected.len()) " incidents" }
                " "
                a href=(back) { "Cancel" }
            }
        }
    };
    layout("Change every match", user, csrf, "Queue", body)
}
