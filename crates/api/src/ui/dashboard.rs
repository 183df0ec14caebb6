//! The dashboard: SVG charts drawn here from the store's numbers, within the user's scope:
//! incidents over time by severity, open incidents by organization and by owner, SLA state of
//! open incidents, and mean times to assign and to close per provider and organization.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use chrono::{TimeDelta, Utc};
use maud::{Markup, html};
use watchfloor_core::Severity;
use watchfloor_storage::User;

use super::{Csrf, error_page, layout, span_text};
use crate::state::AppState;
use watchfloor_service::Caller;

const DAYS: i64 = 14;

/// Stacked bars: one per day, a segment per severity.
fn by_day(days: &[String], counts: &BTreeMap<(String, Severity), usize>) -> Markup {
    let (w, h, pad) = (1200.0, 200.0, 28.0);
    let totals: Vec<usize> = days
        .iter()
        .map(|d| {
            Severity::ALL
                .iter()
                .map(|s| counts.get(&(d.clone(), *s)).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let slot = (w - pad) / days.len().max(1) as f64;
    html! {
        svg.chart viewBox={ "0 0 " (w) " " (h + 20.0) } role="img" aria-label="incidents per day by severity" {
            text.axis x="0" y="12" { (max as usize) }
            line.axis x1=(pad) y1=(h) x2=(w) y2=(h) {}
            @for (n, day) in days.iter().enumerate() {
                @let x = pad + n as f64 * slot + 2.0;
                @let mut top = h;
                @for s in Severity::ALL {
                    @let c = counts.get(&(day.clone(), s)).copied().unwrap_or(0);
                    @if c > 0 {
                        @let height = c as f64 / max * (h - 16.0);
                        @let y = { top -= height; top };
                        rect class={ "sev-" (s.label().to_ascii_lowercase()) } x=(x) y=(y) width=(slot - 4.0) height=(height) {
                            title { (day) ": " (c) " " (s.label()) }
                        }
                    }
                }
                text.axis x=(x) y=(h + 14.0) { (day.get(5..).unwrap_or(day)) }
            }
        }
        ul.legend {
            @for s in Severity::ALL.iter().rev() {
                li { span class={ "swatch sev-" (s.label().to_ascii_lowercase()) } {} (s.label()) }
            }
        }
    }
}

/// Horizontal bars with their labels and counts; `class` colours each by its label.
fn bars(rows: &[(String, usize)], class: impl Fn(&str) -> String) -> Markup {
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let (w, row) = (420.0, 22.0);
    html! {
        @if rows.is_empty() { p.hint { "Nothing open." } }
        @else {
            svg.chart viewBox={ "0 0 " (w) " " (rows.len() as f64 * row) } role="img" {
                @for (n, (label, count)) in rows.iter().enumerate() {
                    @let y = n as f64 * row;
                    text.label x="0" y=(y + 15.0) { (label) }
                    rect class=(class(label)) x="150" y=(y + 3.0) width=((*count as f64 / max * (w - 200.0)).max(1.0)) height=(row - 6.0) {}
                    text.count x=((*count as f64 / max * (w - 200.0)).max(1.0) + 156.0) y=(y + 15.0) { (count) }
                }
            }
        }
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(user): Extension<Arc<User>>,
    Extension(csrf): Extension<Csrf>,
) -> Response {
    let now = Utc::now();
    let since = (now - TimeDelta::days(DAYS - 1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    let (stats, sla) = match state.service.dashboard(&Caller::of(&user), since).await {
        Ok(d) => (
            d.stats,
            d.sla.map(|(s, n)| (s.as_str().to_string(), n)).to_vec(),
        ),
        Err(e) => return error_page(e.into()),
    };
    let days: Vec<String> = (0..DAYS)
        .map(|n| (since + TimeDelta::days(n)).format("%Y-%m-%d").to_string())
        .collect();
    let counts: BTreeMap<(String, Severity), usize> = stats
        .created_by_day
        .iter()
        .map(|(d, s, n)| ((d.clone(), *s), *n))
        .collect();
    let owners: Vec<(String, usize)> = stats
        .open_by_owner
        .iter()
        .map(|(o, n)| {
            (
                if o.is_empty() {
                    "unassigned".into()
                } else {
                    o.clone()
                },
                *n,
            )
        })
        .collect();
    let orgs: Vec<(String, usize)> = stats
        .open_by_org
        .iter()
        .map(|(o, n)| {
            (
                if o.is_empty() {
                    "(none)".into()
                } else {
                    o.clone()
                },
                *n,
            )
        })
        .collect();
    let mean = |v: Option<f64>| v.map(|s| span_text(s as i64)).unwrap_or_else(|| "—".into());
    let body = html! {
        h1 { "Dashboard" }
        div.cards {
            section.card.wide {
                h2 { "Incidents per day, last " (DAYS) " days" }
                (by_day(&days, &counts))
            }
            section.card {
                h2 { "SLA of open incidents" }
                (bars(&sla, |label| format!("sla-bar {label}")))
            }
            section.card {
                h2 { "Open by organization" }
                (bars(&orgs, |_| "org-bar".into()))
            }
            section.card {
                h2 { "Open by owner" }
                (bars(&owners, |_| "owner-bar".into()))
            }
            section.card.wide {
                h2 { "Mean time to assign and to close, incidents of the last " (DAYS) " days" }
                table.grid {
                    thead { tr { th { "By" } th { "Name" } th.num { "Incidents" } th.num { "To assign" } th.num { "To close" } } }
                    tbody {
                        @for t in &stats.times {
                            tr { td { (t.by) } td { (t.name) } td.num { (t.incidents) } td.num { (mean(t.to_assign)) } td.num { (mean(t.to_close)) } }
                        }
                    }
                }
            }
        }
    };
    layout("Dashboard", &user, &csrf, "Dashboard", body)
}
