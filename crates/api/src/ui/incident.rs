//! One incident: its fields (editable), close and reopen, the provider's details as sanitised
//! markdown, the raw JSON, SLA and sync status, the war room with a note box, a command console
//! and the incident's context as a tree.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use chrono::Utc;
use maud::{Markup, html};
use serde_json::Value;
use watchfloor_core::{Change, CloseReason, Edit, Label, Severity, Status};
use watchfloor_storage::{Role, User, WarRoomEntry};

use super::{
    Csrf, FormData, csrf_field, error_page, flash, layout, markdown, message_of, raw,
    redirect_with, severity_chip, sla_cell, status_badge, when,
};
use watchfloor_service::{Caller, ServiceError};

use crate::error::{ApiError, internal};
use crate::state::AppState;

/// A JSON value as a tree of folded sections.
fn tree(value: &Value) -> Markup {
    match value {
        Value::Object(map) if !map.is_empty() => html! {
            ul.tree {
                @for (k, v) in map {
                    li {
                        @if matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty()) {
                            details { summary { (k) } (tree(v)) }
                        } @else {
                            span.key { (k) ": " } (leaf(v))
                        }
                    }
                }
            }
        },
        Value::Array(items) if !items.is_empty() => html! {
            ol.tree start="0" {
                @for v in items {
                    li {
                        @if v.is_object() || v.is_array() { (tree(v)) } @else { (leaf(v)) }
                    }
                }
            }
        },
        other => leaf(other),
    }
}

fn leaf(v: &Value) -> Markup {
    match v {
        Value::String(s) => html! { span.str { (s) } },
        other => html! { span.val { (other.to_string()) } },
    }
}

/// One war-room entry on the timeline.
fn entry(e: &WarRoomEntry) -> Markup {
    let class = format!("entry kind-{}", e.kind);
    html! {
        li class=(class) id={ "entry-" (e.id) } {
            div.meta {
                span.when { (when(e.created)) }
                " " span.author { (e.author) }
                " " span.kind { (e.kind) }
                @if e.body["mirror"] == true { " " span.badge { "sent to provider" } }
                @if e.body["failed"] == true { " " span.badge.failed { "failed" } }
            }
            @if e.kind == "command" {
                div.command { code { (e.body["command"].as_str().unwrap_or_default()) } }
                div.md { (raw(markdown::command_html(e.body["text"].as_str().unwrap_or_default()))) }
            } @else if e.kind == "note" || e.kind == "chat" {
                div.md { (raw(markdown::to_html(e.body["text"].as_str().unwrap_or_default()))) }
            } @else {
                pre.text { (e.text()) }
            }
        }
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
) -> Response {
    let caller = Caller::of(&user);
    let oldest_first = super::query_value(query.as_deref(), "order").as_deref() == Some("oldest");
    let i = match state.service.visible(&caller, id).await {
        Ok(i) => i,
        Err(e) => return error_page(e.into()),
    };
    let (entries, context, health, pending, (acted, notified, indicators, related, assignable)) =
        match async {
            let entries = state.service.entries(&caller, id).await?;
            let context = state.service.context(&caller, id).await?;
            let health = state.service.health(&caller).await?;
            let pending = if i.is_manual() {
                Vec::new()
            } else {
                state.store.incident_pushes(id).await.map_err(internal)?
            };
            let acted = state.service.rules_of_incident(&caller, id).await?;
            let notified = state
                .service
                .notifications(
                    &caller,
                    watchfloor_storage::NotificationFilter {
                        incident: Some(id),
                        limit: Some(20),
                        ..Default::default()
                    },
                )
                .await?;
            let indicators = state.service.incident_indicators(&caller, id).await?;
            let related = state.service.related_incidents(&caller, id, 20).await?;
            let assignable = state.service.assignable(&caller, id).await?;
            Ok::<_, ApiError>((
                entries,
                context,
                health,
                pending,
                (acted, notified, indicators, related, assignable),
            ))
        }
        .await
        {
            Ok(all) => all,
            Err(e) => return error_page(e),
        };
    let health = health.into_iter().find(|h| h.instance == i.instance);
    let can_change = user.role != Role::Viewer;
    let now = Utc::now();
    // The commands this incident's instance runs, for the console and its completion.
    let commands: Vec<(String, Vec<String>)> = state
        .runner
        .as_ref()
        .map(|r| {
            r.definitions()
                .into_iter()
                .flat_map(|d| d.commands.iter())
                .filter(|c| i.is_manual() || r.instance_has_command(&i.instance, &c.name))
                .map(|c| {
                    (
                        c.name.clone(),
                        c.args.iter().map(|a| a.name.clone()).collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let completions = serde_json::to_string(
        &commands
            .iter()
            .map(|(c, args)| (c.clone(), args.clone()))
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
    .unwrap_or_default();
    let last_command = entries.iter().rev().find(|e| e.kind == "command");
    let action = |what: &str| format!("/incidents/{id}/{what}");
    let body = html! {
        (flash(message_of(query.as_deref()).as_deref()))
        div.incident-head {
            (severity_chip(i.severity))
            h1 { span.num { "#" (i.id) } " " (i.name) }
            (status_badge(i.status))
        }
        div.incident {
            section.main {
                h2 { "Details" }
                div.md.details { (raw(markdown::to_html(&i.details))) }
                (super::indicators::of_incident(&indicators, &related))
                details.raw {
                    summary { "Provider record (JSON)" }
                    pre { (serde_json::to_string_pretty(&i.raw).unwrap_or_default()) }
                }
                h2 #console { "Command console" }
                @if can_change && !commands.is_empty() {
                    form.console method="post" action=(action("run")) {
                        (csrf_field(&csrf))
                        input #command-line name="line" list="command-list" placeholder="!command arg=value" autocomplete="off" aria-label="command" required;
                        datalist #command-list {
                            @for (name, _) in &commands { option value={ "!" (name) " " } {} }
                        }
                        script #command-defs type="application/json" { (raw(completions.replace('<', "\\u003c"))) }
                        button type="submit" { "Run" }
                    }
                } @else if commands.is_empty() {
                    p.hint { "No instance with commands is configured for this incident." }
                }
                @if let Some(c) = last_command {
                    div.result {
                        div.meta { "Last: " code { (c.body["command"].as_str().unwrap_or_default()) } " · " (when(c.created)) }
                        div.md { (raw(markdown::command_html(c.body["text"].as_str().unwrap_or_default()))) }
                    }
                }
                h2 {
                    "War room "
                    // Newest first by default; the CLI's `incidents entries` reads oldest first,
                    // and either can read the other way.
                    @if oldest_first {
                        a.hint href={ "/incidents/" (i.id) "?order=newest" } { "(oldest first · newest first)" }
                    } @else {
                        a.hint href={ "/incidents/" (i.id) "?order=oldest" } { "(newest first · oldest first)" }
                    }
                }
                @if can_change {
                    form.note method="post" action=(action("note")) {
                        (csrf_field(&csrf))
                        textarea name="text" rows="3" placeholder="Add a note (markdown)" aria-label="note" required {}
                        label.check {
                            input type="checkbox" name="mirror" value="1" disabled[i.is_manual()];
                            " Send to provider"
                        }
                        button type="submit" { "Add note" }
                    }
                }
                ol.timeline {
                    @if oldest_first { @for e in &entries { (entry(e)) } }
                    @else { @for e in entries.iter().rev() { (entry(e)) } }
                }
            }
            aside.side {
                h2 { "Fields" }
                @if can_change && i.status != Status::Closed {
                    form.fields method="post" action=(action("edit")) {
                        (csrf_field(&csrf))
                        input type="hidden" name="version" value=(i.version);
                        label { "Status" select name="status" {
                            @for s in [Status::Pending, Status::Active] { option value=(s.as_str()) selected[s == i.status] { (s.as_str()) } }
                        } }
                        label { "Severity" select name="severity" {
                            @for s in Severity::ALL { option value=(s.label()) selected[s == i.severity] { (s.label()) } }
                        } }
                        label { "Owner" input name="owner" value=(i.owner.clone().unwrap_or_default()) placeholder="unassigned" list="assignable" autocomplete="off"; }
                        datalist #assignable { @for name in &assignable { option value=(name) {} } }
                        label { "Type" input name="type" value=(i.kind); }
                        label { "Add label" input name="label" placeholder="type: value"; }
                        button type="submit" { "Save" }
                        button type="submit" name="owner_me" value="1" { "Assign to me" }
                    }
                } @else {
                    dl {
                        dt { "Owner" } dd { (i.owner.as_deref().unwrap_or("unassigned")) }
                        dt { "Type" } dd { (i.kind) }
                    }
                }
                @if !i.labels.is_empty() {
                    ul.labels { @for l in &i.labels { li { span.key { (l.kind) } " " (l.value) } } }
                }
                h2 { "Lifecycle" }
                dl {
                    dt { "Organization" } dd { (i.organization.as_deref().unwrap_or("—")) }
                    dt { "Instance" } dd { (if i.is_manual() { "manual" } else { i.instance.as_str() }) }
                    dt { "Provider id" } dd { (i.external_id) }
                    dt { "Occurred" } dd { (when(i.occurred)) }
                    dt { "Stored" } dd { (when(i.created)) }
                    dt { "SLA" } dd { (sla_cell(&i, now)) }
                    @if let Some(closed) = i.closed {
                        dt { "Closed" } dd { (when(closed)) " · " (i.close_reason.map(|r| r.as_str()).unwrap_or_default()) }
                        @if let Some(n) = &i.close_notes { dt { "Notes" } dd { (n) } }
                    }
                    dt { "Version" } dd { (i.version) }
                }
                @if can_change {
                    @if i.status == Status::Closed {
                        form.reopen method="post" action=(action("reopen")) {
                            (csrf_field(&csrf))
                            input type="hidden" name="version" value=(i.version);
                            button type="submit" { "Reopen" }
                        }
                    } @else {
                        details.close-dialog #close open[false] {
                            summary { "Close…" }
                            form method="post" action=(action("close")) {
                                (csrf_field(&csrf))
                                input type="hidden" name="version" value=(i.version);
                                label { "Reason" select name="reason" {
                                    @for r in CloseReason::ALL { option value=(r.as_str()) { (r.as_str()) } }
                                } }
                                label { "Notes" textarea name="notes" rows="2" {} }
                                button type="submit" { "Close incident" }
                            }
                        }
                    }
                }
                @if !i.is_manual() {
                    h2 { "Sync" }
                    dl {
                        dt { "Pushes pending" } dd { (pending.len()) }
                        @for p in &pending {
                            dt { (p.kind) } dd { (p.attempts) " attempts" @if let Some(e) = &p.last_error { " · " (e) } }
                        }
                        @if let Some(h) = &health {
                            dt { "Last success" } dd { (h.last_success.map(when).unwrap_or_else(|| "never".into())) }
                            @if let Some(e) = &h.last_error {
                                dt { "Last failure" } dd.error { (h.last_error_at.map(when).unwrap_or_default()) " · " (e) }
                            }
                        }
                    }
                }
                @if !acted.is_empty() {
                    h2 { "Rules" }
                    dl.rules {
                        @for (rule, n) in &acted {
                            dt { (rule) } dd { (n) @if *n == 1 { " action" } @else { " actions" } }
                        }
                    }
                }
                @if !notified.is_empty() {
                    h2 { "Notifications" }
                    dl.notifications {
                        @for n in &notified {
                            dt { (n.channel) } dd { (n.status) " · " (n.rule) " on " (n.trigger) " · " (when(n.created)) }
                        }
                    }
                }
                h2 { "Context" }
                @if context.as_object().is_some_and(|m| !m.is_empty()) { (tree(&context)) } @else { p.hint { "Empty: command outputs land here." } }
            }
        }
    };
    layout(&format!("#{id} {}", i.name), &user, &csrf, "Queue", body)
}

/// The form, if it carries the CSRF token, and the incident's version it was made from.
fn form_and_version(body: &[u8], csrf: &Csrf) -> Result<(FormData, Option<i64>), Response> {
    let form = FormData::checked(body, csrf)?;
    let version = form.get("version").and_then(|v| v.parse().ok());
    Ok((form, version))
}

/// A change the caller may make but that was not made (a stale version, a change the
/// lifecycle refuses, an empty note): said on the page. Anything else is an error page.
fn not_saved(back: &str, e: ServiceError) -> Response {
    match e {
        ServiceError::Conflict(why) | ServiceError::Refused(why) => {
            redirect_with(back, &format!("Not saved: {why}"))
        }
        ServiceError::Invalid(why) => redirect_with(back, &format!("Not saved: {why}.")),
        e => error_page(e.into()),
    }
}

async fn changed(
    state: &AppState,
    user: &User,
    id: i64,
    version: Option<i64>,
    change: Change,
    done: &str,
) -> Response {
    let back = format!("/incidents/{id}");
    match state
        .service
        .change(&Caller::of(user), id, version, &change)
        .await
    {
        Ok(_) => redirect_with(&back, done),
        Err(e) => not_saved(&back, e),
    }
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let (form, version) = match form_and_version(&body, &csrf) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let current = match state.service.changeable(&Caller::of(&user), id).await {
        Ok(i) => i,
        Err(e) => return error_page(e.into()),
    };
    let owner = if form.get("owner_me").is_some() {
        Some(user.name.clone())
    } else {
        form.get("owner")
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_string)
    };
    let label = match form.get("label").map(str::trim).filter(|l| !l.is_empty()) {
        None => Vec::new(),
        Some(l) => match l.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() => vec![Label {
                kind: k.trim().to_string(),
                value: v.trim().to_string(),
            }],
            _ => {
                return redirect_with(&format!("/incidents/{id}"), "Write a label as type: value.");
            }
        },
    };
    let status = form.get("status").and_then(|s| Status::parse(s).ok());
    let severity = form.get("severity").and_then(|s| Severity::parse(s).ok());
    let kind = form
        .get("type")
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != current.kind)
        .map(str::to_string);
    let edit = Edit {
        status: status.filter(|s| *s != current.status),
        severity: severity.filter(|s| *s != current.severity),
        owner: Some(owner).filter(|o| *o != current.owner),
        kind,
        labels: label,
    };
    if edit == Edit::default() {
        return redirect_with(&format!("/incidents/{id}"), "Nothing to change.");
    }
    changed(&state, &user, id, version, Change::Update(edit), "Saved.").await
}

pub(crate) async fn close(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let (form, version) = match form_and_version(&body, &csrf) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let reason = match CloseReason::parse(form.get("reason").unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => return redirect_with(&format!("/incidents/{id}"), &e),
    };
    let notes = form
        .get("notes")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    changed(
        &state,
        &user,
        id,
        version,
        Change::Close { reason, notes },
        "Closed.",
    )
    .await
}

pub(crate) async fn reopen(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let (_, version) = match form_and_version(&body, &csrf) {
        Ok(f) => f,
        Err(r) => return r,
    };
    changed(&state, &user, id, version, Change::Reopen, "Reopened.").await
}

pub(crate) async fn note(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let form = match FormData::checked(&body, &csrf) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let text = form.get("text").unwrap_or_default().trim();
    let mirror = form.get("mirror") == Some("1");
    let back = format!("/incidents/{id}");
    match state
        .service
        .note(&Caller::of(&user), id, text, mirror)
        .await
    {
        Ok(_) => redirect_with(
            &back,
            if mirror {
                "Note added; it goes to the provider with the next sync."
            } else {
                "Note added."
            },
        ),
        Err(e) => not_saved(&back, e),
    }
}

pub(crate) async fn run(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let form = match FormData::checked(&body, &csrf) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let line = form.get("line").unwrap_or_default().trim();
    let back = format!("/incidents/{id}#console");
    match state
        .service
        .run_and_record(&Caller::of(&user), id, line, None)
        .await
    {
        Ok((Ok(_), _)) => redirect_with(&back, "Command ran."),
        Ok((Err(e), _)) => redirect_with(&back, &format!("The command failed: {e}")),
        Err(ServiceError::Invalid(why)) => redirect_with(&back, &why),
        Err(e) => error_page(e.into()),
    }
}
