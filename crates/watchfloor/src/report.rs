//! `watchfloor report`: the provider accountability figures of one organization (or of every
//! organization `--as` sees) for a month or a day, as a table, CSV or JSON, read through the
//! service.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use watchfloor_core::report::Report;
use watchfloor_service::Service;

use crate::Failure;
use crate::output::headed_table;
use crate::work::{ChangeOpts, caller_of, failed};

/// How `report` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportOutput {
    /// XSOAR's markdown tables.
    Md,
    /// One row per group (all, each instance, organization and type), for a spreadsheet.
    Csv,
    Json,
    /// The customer report: one self-contained HTML page (no script, no other asset) that
    /// prints to PDF from a browser.
    Html,
    /// The period's incidents, a row each, with the times each figure is measured from.
    IncidentsCsv,
}

/// What `report` was asked.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// One organization (a user of some organizations may name only its own).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// A month (2026-11) or a day (2026-11-03), in UTC.
    #[arg(long, value_name = "P")]
    pub period: Option<String>,
    /// Instead of --period: from this time (e.g. `7 days`, or 2026-11-01T00:00:00Z)...
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// ...until this one (default: now).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Read as this user (that user's organizations only).
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// md (tables), csv (a row per group), json, html (the customer report) or incidents-csv.
    #[arg(long, value_enum, default_value_t = ReportOutput::Md)]
    pub output: ReportOutput,
}

/// Runs `report`; the text to print.
pub async fn run(service: &Service, args: ReportArgs) -> Result<String, Failure> {
    let (since, until) = watchfloor_core::report::asked(
        args.period.as_deref(),
        args.since.as_deref(),
        args.until.as_deref(),
        Utc::now(),
    )
    .map_err(|m| Failure::Usage(anyhow::anyhow!(m)))?;
    let caller = caller_of(
        service.store(),
        &ChangeOpts {
            as_user: args.as_user,
            if_version: None,
        },
    )
    .await?;
    let org = args.org.as_deref();
    let customer = || async {
        service
            .customer_report(&caller, org, since, until)
            .await
            .map_err(failed)
    };
    let report = || async {
        service
            .report(&caller, org, since, until)
            .await
            .map_err(failed)
    };
    Ok(match args.output {
        ReportOutput::Html => {
            watchfloor_notify::report_page::customer_report_html(&customer().await?, Utc::now())
        }
        ReportOutput::IncidentsCsv => {
            let c = customer().await?;
            watchfloor_core::report::incidents_csv(&c.rows, c.report.until)
        }
        ReportOutput::Json => serde_json::to_string_pretty(&report().await?)
            .map_err(|e| Failure::Command(anyhow::anyhow!("cannot write the report: {e}")))?,
        ReportOutput::Csv => watchfloor_core::report::groups_csv(&report().await?),
        ReportOutput::Md => markdown(&report().await?),
    })
}

/// Seconds as the UI and the reports say them (`45s`, `12m`, `3h 20m`, `2d 4h`), or `-`.
fn duration(seconds: Option<i64>) -> String {
    seconds.map_or_else(|| "-".into(), watchfloor_core::time::span_text)
}

fn share(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn period_of(report: &Report) -> String {
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    format!("{} to {} UTC", day(report.since), day(report.until))
}

fn markdown(report: &Report) -> String {
    let title = format!(
        "Provider report: {}, {}",
        report
            .organization
            .as_deref()
            .unwrap_or("every organization"),
        period_of(report)
    );
    let rows: Vec<Value> = report
        .groups()
        .into_iter()
        .map(|(what, name, f, poll)| {
            json!({
                "Group": match (what, poll) {
                    ("all", _) => "all".to_string(),
                    (_, Some(every)) => format!("{what}: {name} (fetched every {})", duration(Some(every as i64))),
                    _ => format!("{what}: {name}"),
                },
                "Incidents": f.incidents,
                "Delivery lag p50": duration(f.delivery_lag.median_s),
                "Delivery lag p90": duration(f.delivery_lag.p90_s),
                "Provider resolve p50": duration(f.provider_time_to_resolve.median_s),
                "Provider ack p50": duration(f.provider_time_to_acknowledge.median_s),
                "Acknowledge p50": duration(f.time_to_acknowledge.median_s),
                "Assign p50": duration(f.time_to_assign.median_s),
                "Assign p90": duration(f.time_to_assign.p90_s),
                "Close p50": duration(f.time_to_close.median_s),
                "Close p90": duration(f.time_to_close.p90_s),
                "Closed": f.closed,
                "FP or duplicate": share(f.false_positive_share),
                "Within SLA": share(f.sla_compliance),
                "Open at end": f.open_at_end,
                "Open past SLA": f.open_breaches,
            })
        })
        .collect();
    let mut text = headed_table(
        &title,
        rows,
        &[
            "Group",
            "Incidents",
            "Delivery lag p50",
            "Delivery lag p90",
            "Provider resolve p50",
            "Provider ack p50",
            "Acknowledge p50",
            "Assign p50",
            "Assign p90",
            "Close p50",
            "Close p90",
            "Closed",
            "FP or duplicate",
            "Within SLA",
            "Open at end",
            "Open past SLA",
        ],
    );
    let severities: Vec<Value> = report
        .all
        .by_severity
        .iter()
        .map(|(severity, n)| json!({"Severity": severity, "Incidents": n}))
        .collect();
    text.push('\n');
    text.push_str(&headed_table(
        "Incidents by severity",
        severities,
        &["Severity", "Incidents"],
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        for (s, text) in [
            (None, "-"),
            (Some(0), "0s"),
            (Some(59), "59s"),
            (Some(725), "12m"),
            (Some(12_000), "3h 20m"),
            (Some(187_200), "2d 4h"),
        ] {
            assert_eq!(duration(s), text);
        }
    }
}
