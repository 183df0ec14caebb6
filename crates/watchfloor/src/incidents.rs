//! `watchfloor incidents list|show` and `instances health`: the CLI over the store.

use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use watchfloor_core::Incident;
use watchfloor_core::table::{TableOptions, escape, escape_markdown, table_to_markdown};
use watchfloor_storage::{Health, SqlStore, Store};

/// Opens the database: `--db`, else the config's `[storage] url`, else the default.
pub async fn open_store(
    url: Option<&str>,
    indicators: &watchfloor_core::config::IndicatorConfig,
) -> anyhow::Result<Arc<SqlStore>> {
    let url = url.unwrap_or(watchfloor_storage::DEFAULT_URL);
    let store = SqlStore::open(url).await?;
    // Indicators are found as the config says, in whichever process finds them.
    store.set_indicator_extractor(watchfloor_indicators::Extractor::new(
        indicators.exclusions(),
        watchfloor_integrations::indicator_maps(),
    ));
    Ok(Arc::new(store))
}

fn summary(i: &Incident) -> Value {
    json!({
        "id": i.id, "instance": i.instance, "external_id": i.external_id, "name": i.name, "type": i.kind,
        "severity": i.severity, "severity_label": i.severity_label, "status": i.status, "occurred": i.occurred,
        "organization": i.organization, "owner": i.owner, "details": i.details, "version": i.version,
        "sla_due": i.sla_due, "closed": i.closed, "close_reason": i.close_reason,
    })
}

/// Incidents as a table (or JSON).
pub fn list(incidents: &[Incident], all: usize, json_out: bool) -> anyhow::Result<String> {
    let now = chrono::Utc::now();
    if json_out {
        return Ok(serde_json::to_string_pretty(
            &incidents.iter().map(summary).collect::<Vec<_>>(),
        )?);
    }
    let rows: Vec<Value> = incidents
        .iter()
        .map(|i| {
            json!({"ID": i.id, "Occurred": i.occurred.format(watchfloor_core::terminal::TIME_FORMAT).to_string(), "Severity": i.severity_label,
                   "Status": i.status.as_str(), "Owner": i.owner, "SLA": i.sla_state(now).as_str(), "Instance": i.instance,
                   "Organization": i.organization, "Name": i.name})
        })
        .collect();
    let headers: Vec<String> = [
        "ID",
        "Occurred",
        "Severity",
        "Status",
        "Owner",
        "SLA",
        "Instance",
        "Organization",
        "Name",
    ]
    .map(String::from)
    .to_vec();
    let title = if all == incidents.len() {
        format!("Incidents ({all})")
    } else {
        format!(
            "Incidents (the newest {} of {all}; --limit shows more)",
            incidents.len()
        )
    };
    Ok(table_to_markdown(
        &title,
        &json!(rows),
        &TableOptions {
            headers: Some(&headers),
            ..TableOptions::default()
        },
    ))
}

/// War-room entries `incidents show` shows, the latest.
const LATEST_ENTRIES: usize = 5;

pub async fn show(
    service: &watchfloor_service::Service,
    id: i64,
    json_out: bool,
) -> anyhow::Result<String> {
    let now = chrono::Utc::now();
    let store = service.store();
    let incident = store.incident(id).await?.with_context(|| {
        format!("no incident with id {id}; `watchfloor incidents list` shows the ids")
    })?;
    let indicators = service
        .incident_indicators(&crate::work::local(None), id)
        .await?;
    if json_out {
        let mut value = serde_json::to_value(&incident)?;
        value["indicators"] = serde_json::to_value(&indicators)?;
        return Ok(serde_json::to_string_pretty(&value)?);
    }
    let labels: Vec<String> = incident
        .labels
        .iter()
        .map(|l| format!("{}: {}", l.kind, l.value))
        .collect();
    let fields = [
        ("ID", json!(incident.id)),
        ("Instance", json!(incident.instance)),
        ("Integration", json!(incident.integration)),
        ("External ID", json!(incident.external_id)),
        ("Type", json!(incident.kind)),
        (
            "Severity",
            json!(format!(
                "{} ({})",
                incident.severity_label,
                incident.severity.value()
            )),
        ),
        ("Status", json!(incident.status.as_str())),
        ("Occurred", json!(incident.occurred.to_rfc3339())),
        ("Stored", json!(incident.created.to_rfc3339())),
        ("Modified", json!(incident.modified.to_rfc3339())),
        ("Organization", json!(incident.organization)),
        ("Owner", json!(incident.owner)),
        (
            "First assigned",
            json!(incident.first_assigned.map(|t| t.to_rfc3339())),
        ),
        ("Labels", json!(labels)),
        (
            "SLA",
            json!(format!(
                "{} (due {}, counted from when {})",
                incident.sla_state(now).as_str(),
                incident
                    .sla_due
                    .format(watchfloor_core::terminal::TIME_FORMAT),
                match service.sla().from {
                    watchfloor_core::SlaFrom::Stored => "watchfloor stored it",
                    watchfloor_core::SlaFrom::Occurred => "it occurred",
                }
            )),
        ),
        ("Closed", json!(incident.closed.map(|t| t.to_rfc3339()))),
        (
            "Close reason",
            json!(incident.close_reason.map(|r| r.as_str())),
        ),
        ("Close notes", json!(incident.close_notes)),
        ("Version", json!(incident.version)),
    ];
    let rows: Vec<Value> = fields
        .into_iter()
        .map(|(k, v)| json!({"Field": k, "Value": v}))
        .collect();
    let headers = vec!["Field".to_string(), "Value".to_string()];
    let mut out = table_to_markdown(
        &escape(&incident.name),
        &json!(rows),
        &TableOptions {
            headers: Some(&headers),
            ..TableOptions::default()
        },
    );
    if !incident.details.is_empty() {
        out.push_str(&format!(
            "\n#### Details\n{}\n",
            escape_markdown(&incident.details)
        ));
    }
    if !indicators.is_empty() {
        let rows: Vec<Value> = indicators
            .iter()
            .map(|s| {
                json!({"Type": s.kind, "Value": s.value,
                    "Other incidents": s.incidents.saturating_sub(1),
                    "Elsewhere": crate::indicators::elsewhere(s)})
            })
            .collect();
        out.push('\n');
        out.push_str(&table_to_markdown(
            "Indicators",
            &json!(rows),
            &TableOptions {
                headers: Some(&["Type", "Value", "Other incidents", "Elsewhere"].map(String::from)),
                ..TableOptions::default()
            },
        ));
    }
    let entries = store.entries(id).await?;
    if !entries.is_empty() {
        let latest = &entries[entries.len().saturating_sub(LATEST_ENTRIES)..];
        out.push('\n');
        out.push_str(&crate::work::entries_table(
            &format!("Latest war-room entries ({} in all)", entries.len()),
            latest,
        ));
    }
    Ok(out)
}

/// An instance's state for monitoring: `ok`, `failing` (its last cycle failed), `stale` (no
/// success within three fetch intervals), or `never` (no cycle yet).
fn health_state(
    h: &Health,
    interval: Option<std::time::Duration>,
    now: chrono::DateTime<chrono::Utc>,
) -> &'static str {
    let stale = |last: chrono::DateTime<chrono::Utc>| {
        interval.is_some_and(|i| {
            now - last > chrono::TimeDelta::from_std(i * 3).unwrap_or(chrono::TimeDelta::MAX)
        })
    };
    match h.last_success {
        _ if h.consecutive_failures > 0 => "failing",
        Some(last) if stale(last) => "stale",
        Some(_) => "ok",
        None => "never",
    }
}

/// `instances health`: a table or JSON, and whether every instance is healthy.
pub async fn health(
    store: &dyn Store,
    shared: &watchfloor_core::Shared,
    json_out: bool,
) -> anyhow::Result<(String, bool)> {
    let now = chrono::Utc::now();
    let records = store.health().await?;
    let interval = |name: &str| {
        shared
            .instances
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, i)| *i)
    };
    let states: Vec<&str> = records
        .iter()
        .map(|h| health_state(h, interval(&h.instance), now))
        .collect();
    // A channel whose deliveries failed for good in the last day is a line of its own.
    let failing_channels: Vec<watchfloor_storage::ChannelStats> = store
        .channel_stats(now)
        .await?
        .into_iter()
        .filter(|c| c.failed_last_day > 0)
        .collect();
    let healthy = states.iter().all(|s| *s == "ok") && failing_channels.is_empty();
    if json_out {
        let rows: Vec<Value> = records
            .iter()
            .zip(&states)
            .map(|(h, state)| {
                let mut v = json!(h);
                v["state"] = json!(state);
                v
            })
            .collect();
        return Ok((serde_json::to_string_pretty(&rows)?, healthy));
    }
    let mut table = health_table(&records, &states);
    for c in &failing_channels {
        table.push_str(&format!(
            "\nchannel {}: {} {} failed for good in the last day; last error: {}\n",
            c.channel,
            c.failed_last_day,
            if c.failed_last_day == 1 {
                "delivery"
            } else {
                "deliveries"
            },
            c.last_error.as_deref().unwrap_or("(none)")
        ));
    }
    Ok((table, healthy))
}

fn health_table(records: &[Health], states: &[&str]) -> String {
    let rows: Vec<Value> = records
        .iter()
        .zip(states)
        .map(|(h, state)| {
            let t = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.format(watchfloor_core::terminal::TIME_FORMAT).to_string());
            let set_aside = h.set_aside.last().map(|last| {
                format!(
                    "{} (latest: {}: {})",
                    h.set_aside.len(),
                    last.record.id,
                    last.record.reason
                )
            });
            let failing: Vec<&str> = h
                .scopes
                .iter()
                .filter(|s| s.consecutive_failures > 0)
                .map(|s| s.scope.as_str())
                .collect();
            let scopes = match (h.scopes.len(), failing.len()) {
                (0 | 1, _) => String::new(),
                (n, 0) => format!("{n} ok"),
                (n, _) => format!("{} of {n} failing: {}", failing.len(), failing.join(", ")),
            };
            json!({"Instance": h.instance, "State": state, "Scopes": scopes, "Last success": t(h.last_success), "Consecutive failures": h.consecutive_failures,
                   "New in last cycle": h.incidents_last_cycle, "Last error": h.last_error, "Last error at": t(h.last_error_at),
                   "Set aside": set_aside})
        })
        .collect();
    let headers: Vec<String> = [
        "Instance",
        "State",
        "Last success",
        "Consecutive failures",
        "New in last cycle",
        "Scopes",
        "Last error",
        "Last error at",
        "Set aside",
    ]
    .map(String::from)
    .to_vec();
    table_to_markdown(
        "Instance health",
        &json!(rows),
        &TableOptions {
            headers: Some(&headers),
            ..TableOptions::default()
        },
    )
}
