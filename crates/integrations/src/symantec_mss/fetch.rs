//! Fetching Symantec MSS incidents: the instance's severities, created since the window start,
//! at most 500 per call. When the service caps an answer, the cursor moves only as far as the
//! newest incident it returned.

use chrono::{DateTime, Utc};
use serde_json::Value;
use watchfloor_core::fetch::Dated;
use watchfloor_core::{FetchSettings, Label, NewIncident, Severity};

use super::client::{Sws, utc_timestamp};
use crate::CommandError;
use crate::fetch::{FetchBatch, Read, windowed};

/// The most IncidentGetList returns.
const MAX_INCIDENTS: u32 = 500;

fn created(summary: &Value) -> Result<DateTime<Utc>, CommandError> {
    let raw = summary["TimeCreated"].as_str().unwrap_or_default();
    DateTime::parse_from_rfc3339(&utc_timestamp(raw))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            CommandError::Provider(format!(
                "Symantec MSS sent incident {} with TimeCreated {raw:?}, not a timestamp",
                summary["IncidentNumber"].as_str().unwrap_or("?")
            ))
        })
}

/// One fetch step.
pub async fn fetch(
    sws: &Sws,
    severities: &[String],
    cursor: Option<&Value>,
    settings: &FetchSettings,
) -> Result<FetchBatch, CommandError> {
    let (summaries, next) = windowed(
        cursor,
        settings,
        async |from: DateTime<Utc>, until: DateTime<Utc>| {
            let summaries = sws
                .incidents(from, severities, None, Some(MAX_INCIDENTS))
                .await?;
            let capped = summaries.len() >= MAX_INCIDENTS as usize;
            let mut alerts = Vec::new();
            for summary in summaries {
                let id = summary["IncidentNumber"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .map(str::to_string);
                let id = id.ok_or_else(|| {
                    CommandError::Provider(
                        "Symantec MSS sent an incident without an IncidentNumber".into(),
                    )
                })?;
                let created = created(&summary)?;
                if created <= until {
                    alerts.push(Dated {
                        id,
                        created,
                        item: summary,
                    });
                }
            }
            Ok(Read { alerts, capped })
        },
    )
    .await?;
    let incidents = summaries.iter().map(incident).collect::<Result<_, _>>()?;
    Ok(next.batch(incidents))
}

/// Emergency 4, Critical 3, Warning 2, Informational 0.5.
fn severity(word: Option<&str>) -> Severity {
    match word.unwrap_or_default() {
        "Emergency" => Severity::Critical,
        "Critical" => Severity::High,
        "Warning" => Severity::Medium,
        "Informational" => Severity::Informational,
        _ => Severity::Unknown,
    }
}

/// A summary as an incident: name `Incident: N (Classification)`, occurred in UTC.
fn incident(summary: &Value) -> Result<NewIncident, CommandError> {
    let text = |k: &str| summary[k].as_str().unwrap_or_default();
    let mut details = Vec::new();
    for (label, key) in [
        ("Category", "Category"),
        ("Source IP", "SourceIPString"),
        ("Source organization", "SourceOrganizationName"),
        ("Country", "CountryName"),
    ] {
        if !text(key).is_empty() {
            details.push(format!("{label}: {}", text(key)));
        }
    }
    let organization = Some(text("DestOrganizationName"))
        .filter(|o| !o.is_empty())
        .map(str::to_string);
    Ok(NewIncident {
        external_id: text("IncidentNumber").to_string(),
        name: format!(
            "Incident: {} ({})",
            text("IncidentNumber"),
            text("Classification")
        ),
        occurred: created(summary)?,
        severity: severity(summary["Severity"].as_str()),
        organization,
        details: details.join("\n"),
        labels: vec![
            Label {
                kind: "Severity".into(),
                value: text("Severity").to_string(),
            },
            Label {
                kind: "Category".into(),
                value: text("Category").to_string(),
            },
        ],
        raw: summary.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn incidents_are_named_and_dated_in_utc() {
        let s = json!({"IncidentNumber": "7781200", "Classification": "Web Server Attack", "TimeCreated": "2024-05-02T13:55:12.120",
                       "Severity": "Emergency", "Category": "Malicious Activity", "DestOrganizationName": "Globex"});
        let inc = incident(&s).unwrap();
        assert_eq!(inc.name, "Incident: 7781200 (Web Server Attack)");
        assert_eq!(inc.occurred.to_rfc3339(), "2024-05-02T13:55:12.120+00:00");
        assert_eq!(
            (inc.severity, inc.organization.as_deref()),
            (Severity::Critical, Some("Globex"))
        );
        let offset =
            json!({"IncidentNumber": "1", "TimeCreated": "2017-12-20T10:04:35.4355923+02:00"});
        assert_eq!(
            incident(&offset).unwrap().occurred.to_rfc3339(),
            "2017-12-20T08:04:35.435+00:00"
        );
    }
}
