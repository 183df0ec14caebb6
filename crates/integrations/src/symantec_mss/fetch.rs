//! Fetching Symantec MSS incidents: the instance's severities, created since the window start,
//! at most 500 per call. When the service caps an answer, the cursor moves only as far as the
//! newest incident it returned.

use chrono::{DateTime, Utc};
use serde_json::Value;
use watchfloor_core::fetch::{Dated, describe, record_id};
use watchfloor_core::{FetchSettings, Label, NewIncident, ProviderTimes, SetAside, Severity};

use super::client::{Sws, utc_time};
use crate::CommandError;
use crate::fetch::{FetchBatch, Read, windowed};

/// The most IncidentGetList returns.
const MAX_INCIDENTS: u32 = 500;

/// An incident's number and creation time, or why it cannot be fetched.
fn date(summary: &Value) -> Result<(String, DateTime<Utc>), SetAside> {
    let id = record_id(summary, "IncidentNumber")?;
    let created = summary["TimeCreated"]
        .as_str()
        .and_then(utc_time)
        .ok_or_else(|| SetAside {
            id: id.clone(),
            reason: format!(
                "its TimeCreated is {}, not a timestamp",
                describe(&summary["TimeCreated"])
            ),
        })?;
    Ok((id, created))
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
        |from: DateTime<Utc>, until: DateTime<Utc>| async move {
            let summaries = sws
                .incidents(from, severities, None, Some(MAX_INCIDENTS))
                .await?;
            let capped = summaries.len() >= MAX_INCIDENTS as usize;
            let mut read = Read::sort_out(summaries, date);
            read.alerts.retain(|a| a.created <= until);
            read.capped = capped;
            Ok(read)
        },
    )
    .await?;
    Ok(next.batch(summaries.iter().map(incident).collect()))
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
fn incident(dated: &Dated<Value>) -> NewIncident {
    let summary = &dated.item;
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
    NewIncident {
        external_id: dated.id.clone(),
        name: format!(
            "Incident: {} ({})",
            text("IncidentNumber"),
            text("Classification")
        ),
        occurred: dated.created,
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
        provider: ProviderTimes {
            updated: dated.item["UpdateTimestampGMT"].as_str().and_then(utc_time),
            resolved: None,
            acknowledged: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn incidents_are_named_and_dated_in_utc() {
        let s = json!({"IncidentNumber": "7781200", "Classification": "Web Server Attack", "TimeCreated": "2024-05-02T13:55:12.120",
                       "Severity": "Emergency", "Category": "Malicious Activity", "DestOrganizationName": "Globex"});
        let dated = |v: Value| {
            let (id, created) = date(&v).unwrap();
            Dated {
                id,
                created,
                item: v,
            }
        };
        let inc = incident(&dated(s));
        assert_eq!(inc.name, "Incident: 7781200 (Web Server Attack)");
        assert_eq!(inc.occurred.to_rfc3339(), "2024-05-02T13:55:12.120+00:00");
        assert_eq!(
            (inc.severity, inc.organization.as_deref()),
            (Severity::Critical, Some("Globex"))
        );
        let offset =
            json!({"IncidentNumber": "1", "TimeCreated": "2017-12-20T10:04:35.4355923+02:00"});
        assert_eq!(
            incident(&dated(offset)).occurred.to_rfc3339(),
            "2017-12-20T08:04:35.435+00:00"
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::test_support::cases())]

        /// Provider JSON of any shape is dated, set aside or made an incident: no panic.
        #[test]
        fn any_incident_json_is_handled(summary in crate::test_support::arbitrary_json()) {
            if let Ok((id, created)) = date(&summary) {
                let _ = incident(&Dated { id, created, item: summary }).bounded();
            }
        }
    }
}
