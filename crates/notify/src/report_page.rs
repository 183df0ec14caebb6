//! The customer report as one self-contained HTML page: its style inline, its one chart drawn
//! as SVG here, no script and no other asset, every provider text escaped by `maud`; laid out
//! to print to PDF from a browser.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};
use watchfloor_core::report::{CustomerReport, Figures, Group, MAX_NOTABLE, Spread};

use crate::ReportMessage;

/// The page's whole style, inline so the file stands alone (a policy allows it by its hash).
pub const STYLE: &str = "\
body{font:13px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24;margin:24px auto;max-width:1000px;padding:0 16px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}\
.sub{color:#57606a;margin:0 0 16px}\
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:8px}\
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 10px}.card b{display:block;font-size:20px}.card span{color:#57606a;font-size:12px}\
table{border-collapse:collapse;width:100%;margin:4px 0 8px}th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eaeef2;vertical-align:top}\
th{background:#f6f8fa;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
td.title{word-break:break-word}\
.sev-critical{fill:#8b0000;color:#8b0000}.sev-high{fill:#d1242f;color:#d1242f}.sev-medium{fill:#bf8700;color:#9a6700}\
.sev-low{fill:#0969da;color:#0969da}.sev-informational,.sev-unknown{fill:#8c959f;color:#57606a}\
svg text{font-size:12px;fill:#1b1f24}\
.note{color:#57606a;font-size:12px}\
@page{size:A4;margin:14mm}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr,.card{break-inside:avoid}}";

/// The `style-src` source that allows [`STYLE`] and nothing else.
pub fn style_source() -> String {
    use base64::Engine;
    let digest = Sha256::digest(STYLE.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The Content-Security-Policy a served report carries: its own style, nothing else.
pub fn policy() -> String {
    format!(
        "default-src 'none'; style-src {}; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        style_source()
    )
}

use watchfloor_core::time::span_text;

/// A time in seconds as the report says it, or a dash for none.
pub fn time(t: Option<i64>) -> String {
    t.map(span_text).unwrap_or_else(|| "—".into())
}

fn share(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

fn spread_row(what: &str, s: &Spread) -> Markup {
    html! {
        tr { td { (what) } td.num { (s.n) } td.num { (time(s.median_s)) } td.num { (time(s.p90_s)) } td.num { (time(s.max_s)) } }
    }
}

/// Horizontal bars of the period's incidents by severity.
fn severity_chart(f: &Figures) -> Markup {
    let max = f
        .by_severity
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (w, row) = (520.0, 22.0);
    html! {
        @if f.by_severity.is_empty() { p.note { "No incidents in the period." } }
        @else {
            svg viewBox={ "0 0 " (w) " " (f.by_severity.len() as f64 * row) } width=(w) role="img" aria-label="incidents by severity" {
                @for (n, (label, count)) in f.by_severity.iter().enumerate() {
                    @let y = n as f64 * row;
                    @let len = (*count as f64 / max * (w - 170.0)).max(1.0);
                    text x="0" y=(y + 15.0) { (label) }
                    rect class={ "sev-" (label.to_ascii_lowercase()) } x="110" y=(y + 3.0) width=(len) height=(row - 6.0) {}
                    text x=(len + 116.0) y=(y + 15.0) { (count) }
                }
            }
        }
    }
}

fn group_table(title: &str, groups: &[Group]) -> Markup {
    html! {
        h2 { (title) }
        @if groups.is_empty() { p.note { "None." } }
        @else {
            table {
                thead { tr {
                    th { "Name" } th.num { "Incidents" } th.num { "Delivery lag p50" } th.num { "p90" }
                    th.num { "Provider resolve p50" } th.num { "Provider ack p50" } th.num { "Close p50" } th.num { "p90" } th.num { "Closed" } th.num { "FP or duplicate" }
                    th.num { "Within SLA" } th.num { "Open past SLA" }
                } }
                tbody {
                    @for g in groups {
                        @let f = &g.figures;
                        tr {
                            td.title {
                                (if g.name.is_empty() { "(none)" } else { g.name.as_str() })
                                @if let Some(every) = g.poll_interval_s {
                                    br; span.note { "fetched every " (span_text(every as i64)) }
                                }
                            }
                            td.num { (f.incidents) }
                            td.num { (time(f.delivery_lag.median_s)) } td.num { (time(f.delivery_lag.p90_s)) }
                            td.num { (time(f.provider_time_to_resolve.median_s)) }
                            td.num { (time(f.provider_time_to_acknowledge.median_s)) }
                            td.num { (time(f.time_to_close.median_s)) } td.num { (time(f.time_to_close.p90_s)) }
                            td.num { (f.closed) } td.num { (share(f.false_positive_share)) }
                            td.num { (share(f.sla_compliance)) } td.num { (f.open_breaches) }
                        }
                    }
                }
            }
        }
    }
}

/// The customer report as a whole HTML document, made at `generated`.
pub fn customer_report_html(c: &CustomerReport, generated: DateTime<Utc>) -> String {
    let r = &c.report;
    let f = &r.all;
    let who = r
        .organization
        .as_deref()
        .unwrap_or("every organization")
        .to_string();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Security monitoring report · " (who) " · " (r.since.format("%Y-%m-%d")) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Security monitoring report: " (who) }
                p.sub {
                    "Incidents first seen from " (when(r.since)) " to " (when(r.until)) " UTC. "
                    "Made " (when(generated)) " UTC by watchfloor."
                }
                div.cards {
                    div.card { b { (f.incidents) } span { "incidents" } }
                    div.card { b { (f.closed) } span { "closed by the end" } }
                    div.card { b { (share(f.false_positive_share)) } span { "false positive or duplicate" } }
                    div.card { b { (share(f.sla_compliance)) } span { "closed within SLA" } }
                    div.card { b { (f.open_at_end) } span { "open at the end" } }
                    div.card { b { (f.open_breaches) } span { "open past SLA" } }
                }
                h2 { "How long things took" }
                table {
                    thead { tr { th { "Measure" } th.num { "Incidents" } th.num { "Median" } th.num { "90th percentile" } th.num { "Longest" } } }
                    tbody {
                        (spread_row("Delivery lag (provider's creation to first seen)", &f.delivery_lag))
                        (spread_row("Provider's time to resolve (its creation to its resolution)", &f.provider_time_to_resolve))
                        (spread_row("Provider's time to acknowledge (its creation to its acknowledgement seen)", &f.provider_time_to_acknowledge))
                        (spread_row("Time to acknowledge (first seen to taken up)", &f.time_to_acknowledge))
                        (spread_row("Time to assign (first seen to first owner)", &f.time_to_assign))
                        (spread_row("Time to close (first seen to closed)", &f.time_to_close))
                    }
                }
                h2 { "Incidents by severity" }
                (severity_chart(f))
                (group_table("By provider", &r.by_instance))
                (group_table("By type", &r.by_type))
                h2 { "Critical and high incidents" }
                @if c.notable.is_empty() { p.note { "None in the period." } }
                @else {
                    table {
                        thead { tr { th { "ID" } th { "Severity" } th { "Title" } th { "First seen" } th { "Closed" } th { "Outcome" } } }
                        tbody {
                            @for n in &c.notable {
                                tr {
                                    td.num { (n.id) }
                                    td class={ "sev-" (n.severity.to_ascii_lowercase()) } { (n.severity) }
                                    td.title { (n.name) }
                                    td { (when(n.created)) }
                                    td { (n.closed.map(when).unwrap_or_else(|| "—".into())) }
                                    td { (n.outcome) }
                                }
                            }
                        }
                    }
                    @if c.notable_total > c.notable.len() {
                        p.note { "The first " (MAX_NOTABLE) " of " (c.notable_total) " are listed; the CSV holds them all." }
                    }
                }
                h2 { "Most frequent titles" }
                @if c.top_titles.is_empty() { p.note { "None." } }
                @else {
                    table {
                        thead { tr { th { "Title" } th.num { "Incidents" } } }
                        tbody { @for t in &c.top_titles { tr { td.title { (t.title) } td.num { (t.incidents) } } } }
                    }
                }
                h2 { "Most frequent indicators" }
                @if c.top_indicators.is_empty() { p.note { "None found." } }
                @else {
                    table {
                        thead { tr { th { "Type" } th { "Value" } th.num { "Incidents" } } }
                        tbody { @for i in &c.top_indicators { tr { td { (i.kind) } td.title { (i.value) } td.num { (i.incidents) } } } }
                    }
                }
                p.note {
                    "Medians and 90th percentiles are by nearest rank. An incident closed after the "
                    "period counts as open at its end. Each figure is defined in watchfloor's docs/reports.md."
                }
            }
        }
    };
    page.into_string()
}

impl ReportMessage {
    /// The message that carries `c`, the report of `organization`'s `period`.
    pub fn of(
        c: &CustomerReport,
        organization: &str,
        period: &str,
        generated: DateTime<Utc>,
    ) -> Self {
        let f = &c.report.all;
        let spread = |what: &str, s: &Spread| {
            format!(
                "{what}: median {}, 90th percentile {}",
                time(s.median_s),
                time(s.p90_s)
            )
        };
        let summary = vec![
            format!("Incidents first seen: {}", f.incidents),
            format!(
                "Closed by the end: {} ({} false positive or duplicate, {} within SLA)",
                f.closed,
                share(f.false_positive_share),
                share(f.sla_compliance)
            ),
            format!(
                "Open at the end: {} ({} past SLA)",
                f.open_at_end, f.open_breaches
            ),
            spread("Delivery lag", &f.delivery_lag),
            spread("Provider's time to resolve", &f.provider_time_to_resolve),
            spread(
                "Provider's time to acknowledge",
                &f.provider_time_to_acknowledge,
            ),
            spread("Time to acknowledge", &f.time_to_acknowledge),
            spread("Time to close", &f.time_to_close),
            format!("Critical and high incidents: {}", c.notable_total),
        ];
        ReportMessage {
            organization: organization.to_string(),
            period: period.to_string(),
            summary,
            html: customer_report_html(c, generated),
            csv: watchfloor_core::report::incidents_csv(&c.rows, c.report.until),
            figures: serde_json::to_value(&c.report).unwrap_or_default(),
        }
    }
}
