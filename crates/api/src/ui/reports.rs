//! The Providers view: a period's figures per provider instance and per organization, a weekly
//! trend per provider drawn as SVG, and links to the customer report (one self-contained page)
//! and its CSV; all within the user's organizations.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use watchfloor_core::report::{Figures, Group, Report};
use watchfloor_service::Caller;
use watchfloor_storage::User;

use super::{Csrf, error_page, layout, span_text};
use crate::error::ApiError;
use crate::state::AppState;
use watchfloor_notify::report_page::{customer_report_html, time};

/// Weeks in the trend charts.
const WEEKS: u32 = 12;

#[derive(Deserialize, Default)]
pub(crate) struct ReportQuery {
    org: Option<String>,
    period: Option<String>,
}

impl ReportQuery {
    fn org(&self) -> Option<&str> {
        self.org.as_deref().map(str::trim).filter(|o| !o.is_empty())
    }

    /// The month asked for, or this one.
    fn period(&self, now: DateTime<Utc>) -> String {
        self.period
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:04}-{:02}", now.year(), now.month()))
    }

    /// This page's query for another path.
    fn link(&self, path: &str, period: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(org) = self.org() {
            q.append_pair("org", org);
        }
        q.append_pair("period", period);
        format!("{path}?{}", q.finish())
    }
}

fn share(v: Option<f64>) -> String {
    v.map(|v| format!("{:.0}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// Small bars, one per week: `value` of each week's figures, with its text as the tooltip.
fn spark(
    weeks: &[(String, Option<&Figures>)],
    value: impl Fn(&Figures) -> Option<f64>,
    text: impl Fn(&Figures) -> String,
    class: &str,
) -> Markup {
    let (w, h) = (WEEKS as f64 * 7.0, 24.0);
    let values: Vec<Option<f64>> = weeks.iter().map(|(_, f)| f.and_then(&value)).collect();
    let max = values
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(1e-9);
    html! {
        svg.spark viewBox={ "0 0 " (w) " " (h) } width=(w) height=(h) role="img" {
            line.axis x1="0" y1=(h - 0.5) x2=(w) y2=(h - 0.5) {}
            @for (n, ((week, f), v)) in weeks.iter().zip(&values).enumerate() {
                @if let (Some(f), Some(v)) = (f, v) {
                    @let height = (v / max * (h - 2.0)).max(1.0);
                    rect class=(class) x=(n as f64 * 7.0 + 1.0) y=(h - height) width="5" height=(height) {
                        title { "week of " (week) ": " (text(f)) }
                    }
                }
            }
        }
    }
}

/// The per-provider table with a trend row of sparklines per provider.
fn providers_table(report: &Report, weeks: &[Report]) -> Markup {
    let labels: Vec<String> = weeks
        .iter()
        .map(|w| w.since.format("%Y-%m-%d").to_string())
        .collect();
    let trend = |name: &str| -> Vec<(String, Option<&Figures>)> {
        weeks
            .iter()
            .zip(&labels)
            .map(|(w, label)| {
                (
                    label.clone(),
                    w.by_instance
                        .iter()
                        .find(|g| g.name == name)
                        .map(|g| &g.figures),
                )
            })
            .collect()
    };
    html! {
        table.grid.providers {
            thead { tr {
                th { "Instance" } th.num { "Incidents" } th.num { "Lag p50" } th.num { "Lag p90" }
                th.num title="the provider's creation to its own resolution, median" { "Theirs to" br; "resolve" }
                th.num title="the provider's creation to its acknowledgement as mirroring first saw it, median (Covalence)" { "Theirs to" br; "ack" }
                th.num { "Ack p50" } th.num { "Assign p50" } th.num { "Close p50" } th.num { "Close p90" }
                th.num { "FP or dup." } th.num { "In SLA" } th.num { "Past SLA" }
                th { "Incidents/wk" } th { "Lag p50/wk" } th { "Close p50/wk" }
            } }
            tbody {
                @for g in &report.by_instance {
                    @let f = &g.figures;
                    @let t = trend(&g.name);
                    tr {
                        td {
                            (g.name)
                            @if let Some(every) = g.poll_interval_s {
                                // On a line of its own, so that the table fits a screen.
                                br; span.hint title="a delivery lag up to this is our poll interval; beyond it, the provider's" { "fetched every " (span_text(every as i64)) }
                            }
                        }
                        td.num { (f.incidents) }
                        td.num { (time(f.delivery_lag.median_s)) } td.num { (time(f.delivery_lag.p90_s)) }
                        td.num { (time(f.provider_time_to_resolve.median_s)) }
                        td.num { (time(f.provider_time_to_acknowledge.median_s)) }
                        td.num { (time(f.time_to_acknowledge.median_s)) }
                        td.num { (time(f.time_to_assign.median_s)) }
                        td.num { (time(f.time_to_close.median_s)) } td.num { (time(f.time_to_close.p90_s)) }
                        td.num { (share(f.false_positive_share)) } td.num { (share(f.sla_compliance)) }
                        td.num { (f.open_breaches) }
                        td { (spark(&t, |f| Some(f.incidents as f64), |f| format!("{} incidents", f.incidents), "spark-volume")) }
                        td { (spark(&t, |f| f.delivery_lag.median_s.map(|s| s as f64), |f| format!("lag p50 {}", time(f.delivery_lag.median_s)), "spark-lag")) }
                        td { (spark(&t, |f| f.time_to_close.median_s.map(|s| s as f64), |f| format!("close p50 {}", time(f.time_to_close.median_s)), "spark-close")) }
                    }
                }
            }
        }
    }
}

fn groups_table(first: &str, groups: &[Group]) -> Markup {
    html! {
        table.grid {
            thead { tr {
                th { (first) } th.num { "Incidents" } th.num { "Lag p50" } th.num { "Ack p50" } th.num { "Assign p50" }
                th.num { "Close p50" } th.num { "Close p90" } th.num { "Closed" } th.num { "FP or dup." }
                th.num { "Within SLA" } th.num { "Open at end" } th.num { "Open past SLA" }
            } }
            tbody {
                @for g in groups {
                    @let f = &g.figures;
                    tr {
                        td { (if g.name.is_empty() { "(none)" } else { g.name.as_str() }) }
                        td.num { (f.incidents) } td.num { (time(f.delivery_lag.median_s)) }
                        td.num { (time(f.time_to_acknowledge.median_s)) }
                        td.num { (time(f.time_to_assign.median_s)) }
                        td.num { (time(f.time_to_close.median_s)) } td.num { (time(f.time_to_close.p90_s)) }
                        td.num { (f.closed) } td.num { (share(f.false_positive_share)) }
                        td.num { (share(f.sla_compliance)) } td.num { (f.open_at_end) } td.num { (f.open_breaches) }
                    }
                }
            }
        }
    }
}

/// `/reports`: the Providers view.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let now = Utc::now();
    let caller = Caller::of(&user);
    let period = q.period(now);
    let (since, until) = match watchfloor_core::report::period(&period) {
        Ok(p) => p,
        Err(m) => return error_page(ApiError(StatusCode::BAD_REQUEST, m)),
    };
    let report = match state.service.report(&caller, q.org(), since, until).await {
        Ok(r) => r,
        Err(e) => return error_page(e.into()),
    };
    let weeks = match state
        .service
        .weekly_reports(&caller, q.org(), WEEKS, now)
        .await
    {
        Ok(w) => w,
        Err(e) => return error_page(e.into()),
    };
    let f = &report.all;
    let body = html! {
        h1 { "Providers" }
        form.filters method="get" action="/reports" {
            label { "Month " input type="month" name="period" value=(period); }
            label { "Organization " input type="text" name="org" value=[q.org()] placeholder="all I see" list="report-orgs"; }
            datalist #report-orgs {
                @for g in &report.by_organization { option value=(g.name) {} }
            }
            button type="submit" { "Show" }
            a.button href=(q.link("/reports/customer", &period)) { "Customer report" }
            a.button href=(q.link("/reports/customer.csv", &period)) { "Incidents CSV" }
        }
        p.hint {
            "Incidents first seen in " (period) " in "
            (report.organization.as_deref().unwrap_or("every organization you see")) ": "
            (f.incidents) " incidents, " (f.closed) " closed ("
            (share(f.false_positive_share)) " false positive or duplicate, "
            (share(f.sla_compliance)) " within SLA), " (f.open_at_end) " open, "
            (f.open_breaches) " past SLA. Trends: the last " (WEEKS) " weeks, by the week first seen."
        }
        section.card.wide {
            h2 { "By provider instance" }
            @if report.by_instance.is_empty() { p.hint { "No incidents in this month." } }
            @else { (providers_table(&report, &weeks)) }
        }
        section.card.wide {
            h2 { "By organization" }
            (groups_table("Organization", &report.by_organization))
        }
        section.card.wide {
            h2 { "By type (escalation quality)" }
            (groups_table("Type", &report.by_type))
        }
    };
    layout("Providers", &user, &csrf, "Providers", body)
}

/// The customer report's period and organization as asked, read through the service.
async fn customer(
    state: &AppState,
    user: &User,
    q: &ReportQuery,
) -> Result<watchfloor_core::report::CustomerReport, Response> {
    let now = Utc::now();
    let (since, until) = watchfloor_core::report::period(&q.period(now))
        .map_err(|m| error_page(ApiError(StatusCode::BAD_REQUEST, m)))?;
    state
        .service
        .customer_report(&Caller::of(user), q.org(), since, until)
        .await
        .map_err(|e| error_page(e.into()))
}

/// `/reports/customer`: the customer report as its own page.
pub(crate) async fn customer_page(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Query(q): Query<ReportQuery>,
) -> Response {
    match customer(&state, &user, &q).await {
        Ok(c) => {
            let mut answer = (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                customer_report_html(&c, Utc::now()),
            )
                .into_response();
            crate::reports_api::set_report_policy(&mut answer);
            answer
        }
        Err(page) => page,
    }
}

/// `/reports/customer.csv`: the period's incidents, a row each.
pub(crate) async fn customer_csv(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Query(q): Query<ReportQuery>,
) -> Response {
    match customer(&state, &user, &q).await {
        Ok(c) => {
            let body = watchfloor_core::report::incidents_csv(&c.rows, c.report.until);
            let mut answer =
                ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
            answer.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"incidents.csv\""),
            );
            answer
        }
        Err(page) => page,
    }
}
