//! Fetching Covalence alerts as incidents: alerts created in the window, every page of them;
//! in broker mode one cursor per organization, its appliances read together.

use chrono::{DateTime, Utc};
use serde_json::Value;
use watchfloor_core::fetch::{Dated, describe, record_id};
use watchfloor_core::{FetchSettings, Label, NewIncident, ProviderTimes, SetAside};

use super::client::Covalence;
use crate::CommandError;
use crate::fetch::{FetchBatch, Read, field_effect_severity, windowed};

const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";
/// Reads every alert of the window; pages of 500 until a short one.
const READ_ALL: u64 = 1_000_000;

/// An alert's id and creation time (epoch seconds), or why it cannot be fetched.
fn date(alert: &Value) -> Result<(String, DateTime<Utc>), SetAside> {
    let id = record_id(alert, "id")?;
    let created = alert["createdTime"]
        .as_i64()
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .ok_or_else(|| SetAside {
            id: id.clone(),
            reason: format!(
                "its createdTime is {}, not epoch seconds",
                describe(&alert["createdTime"])
            ),
        })?;
    Ok((id, created))
}

/// When Covalence last alerted on it (`lastAlertedTime`, epoch seconds), if it says.
pub(super) fn alert_updated(alert: &Value) -> Option<DateTime<Utc>> {
    alert["lastAlertedTime"]
        .as_i64()
        .and_then(|t| DateTime::from_timestamp(t, 0))
}

/// The broker's organizations, or "" for a direct appliance.
pub async fn scopes(client: &Covalence) -> Result<Vec<String>, CommandError> {
    if !client.broker {
        return Ok(vec![String::new()]);
    }
    let mut orgs: Vec<String> = Vec::new();
    for link in client.index(true).await? {
        if !orgs.contains(&link.org) {
            orgs.push(link.org);
        }
    }
    Ok(orgs)
}

/// One fetch step for a scope.
pub async fn fetch(
    client: &Covalence,
    scope: &str,
    cursor: Option<&Value>,
    settings: &FetchSettings,
) -> Result<FetchBatch, CommandError> {
    let org = (!scope.is_empty()).then_some(scope);
    let (alerts, next) = windowed(
        cursor,
        settings,
        |from: DateTime<Utc>, until: DateTime<Utc>| async move {
            let query = &[
                (
                    "alertTimeMin".to_string(),
                    from.format(TIME_FORMAT).to_string(),
                ),
                (
                    "alertTimeMax".to_string(),
                    until.format(TIME_FORMAT).to_string(),
                ),
            ];
            let alerts = client
                .fan_out(org, |a| async move {
                    client
                        .list(&a, "/rest/v1/alerts", query, Some(READ_ALL), 0)
                        .await
                })
                .await?;
            Ok(Read::sort_out(alerts, date))
        },
    )
    .await?;
    Ok(next.batch(alerts.iter().map(|a| incident(a, org)).collect()))
}

/// Python's `str()` of a JSON value, as the reference's name formatting shows it.
fn shown(v: Option<&Value>, missing: &str) -> String {
    match v {
        None => missing.to_string(),
        Some(Value::Null) => "None".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// An alert as an incident: name `[type] analystTitle`, `[org] [type] analystTitle` in broker mode.
/// The label that carries an alert's source IP address.
pub const SOURCE_IP: &str = watchfloor_core::incident::SOURCE_IP_LABEL;

fn incident(dated: &Dated<Value>, org: Option<&str>) -> NewIncident {
    let alert = &dated.item;
    let kind = shown(alert.get("type"), "No alert type");
    let title = shown(alert.get("analystTitle"), "No title");
    let name = match org {
        Some(org) => format!("[{org}] [{kind}] {title}"),
        None => format!("[{kind}] {title}"),
    };
    let mut labels = vec![Label {
        kind: "Alert type".into(),
        value: kind,
    }];
    if let Some(org) = org {
        labels.push(Label {
            kind: "Organization".into(),
            value: org.to_string(),
        });
    }
    // XSOAR's `sourceip` field, which rules read as `${incident.sourceip}`.
    if let Some(ip) = alert["sourceIp"].as_str().filter(|ip| !ip.is_empty()) {
        labels.push(Label {
            kind: SOURCE_IP.into(),
            value: ip.to_string(),
        });
    }
    NewIncident {
        external_id: dated.id.clone(),
        name,
        occurred: dated.created,
        severity: field_effect_severity(alert["severity"].as_str()),
        organization: org.map(str::to_string),
        details: alert["analystDescription"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        labels,
        raw: alert.clone(),
        provider: ProviderTimes {
            updated: alert_updated(&dated.item),
            resolved: None,
            // Acknowledged before it was first seen: at most now (its time is not given).
            acknowledged: (alert["acknowledgedStatus"] == "Acknowledged").then(Utc::now),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dated(alert: Value) -> Dated<Value> {
        let (id, created) = date(&alert).unwrap();
        Dated {
            id,
            created,
            item: alert,
        }
    }

    #[test]
    fn names_follow_the_reference() {
        let alert = dated(
            json!({"id": "x", "type": "NETWORK", "analystTitle": "Port scan", "createdTime": 1709280000, "severity": "High", "analystDescription": "d"}),
        );
        let direct = incident(&alert, None);
        assert_eq!(
            (
                direct.name.as_str(),
                direct.occurred.to_rfc3339().as_str(),
                direct.details.as_str()
            ),
            ("[NETWORK] Port scan", "2024-03-01T08:00:00+00:00", "d")
        );
        assert_eq!(
            incident(&alert, Some("Globex")).name,
            "[Globex] [NETWORK] Port scan"
        );
        assert_eq!(
            incident(
                &dated(json!({"id": "y", "type": null, "createdTime": 0})),
                None
            )
            .name,
            "[None] No title"
        );
        // Regression (hardening 3): a record without a usable time no longer reads as 1970.
        assert_eq!(
            date(&json!({"id": "z", "createdTime": "soon"})),
            Err(SetAside {
                id: "z".into(),
                reason: "its createdTime is \"soon\", not epoch seconds".into()
            })
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::test_support::cases())]

        /// Provider JSON of any shape is dated, set aside or made an incident: no panic.
        #[test]
        fn any_alert_json_is_handled(alert in crate::test_support::arbitrary_json()) {
            if let Ok((id, created)) = date(&alert) {
                let _ = incident(&Dated { id, created, item: alert }, Some("o")).bounded();
            }
        }

        /// The broker's index page, whatever its HTML, parses to links or none.
        #[test]
        fn any_index_page_is_handled(html in "(<a href=\"/index/[a-z0-9-]{0,12}\">[^<]{0,20}</a>|&amp;|&lt;|[^<&]{0,10}){0,12}") {
            let _ = super::super::client::parse_index(&html);
        }
    }
}
