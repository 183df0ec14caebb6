//! Mirroring with Covalence, incoming only: the appliance API has no way to change an alert,
//! so nothing goes out. Open incidents' alerts are read in bulk, each organization's by the
//! stretches of time they span (`alertTimeMin`, `alertTimeMax`, 500 a page, on its appliances
//! in broker mode), and an alert those listings do not show is read alone by id; changes of
//! its acknowledgement or assignee become war-room entries. Covalence alerts have no closed
//! state, so nothing closes an incident from there.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::client::Covalence;
use crate::{CommandError, OpenAlert, RemoteChange};

/// The appliances' `alertTimeMin`/`alertTimeMax` format (UTC).
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Reads the state of `open` alerts, in order: each organization's by the stretches of time
/// they span (see [`crate::bulk`]), the rest one by one.
pub async fn pull_many(
    client: &Covalence,
    open: &[OpenAlert],
) -> Result<Vec<Option<RemoteChange>>, CommandError> {
    let mut by_org: BTreeMap<Option<&str>, Vec<&OpenAlert>> = BTreeMap::new();
    for alert in open {
        by_org
            .entry(alert.seen["org_name"].as_str())
            .or_default()
            .push(alert);
    }
    let mut listed = std::collections::HashMap::new();
    for (org, alerts) in by_org {
        let found = crate::bulk::read_spans(&alerts, |first, last, cap| async move {
            let query = &[
                (
                    "alertTimeMin".to_string(),
                    first.format(TIME_FORMAT).to_string(),
                ),
                (
                    "alertTimeMax".to_string(),
                    (last + chrono::TimeDelta::seconds(1))
                        .format(TIME_FORMAT)
                        .to_string(),
                ),
            ];
            let cap = cap as u64;
            let alerts = client
                .fan_out(org, |a| async move {
                    client
                        .list(&a, "/rest/v1/alerts", query, Some(cap + 1), 0)
                        .await
                })
                .await?;
            let cut = alerts.len() as u64 > cap;
            Ok(crate::bulk::Listed {
                alerts: alerts
                    .into_iter()
                    // What is compared, not the whole alert: a page's listings hold thousands.
                    .filter_map(|a| Some((a["id"].as_str()?.to_string(), state(&a))))
                    .collect(),
                cut,
            })
        })
        .await?;
        listed.extend(found);
    }
    let mut out = Vec::with_capacity(open.len());
    for alert in open {
        out.push(match listed.get(&alert.external_id) {
            Some(now) => compare(now, &alert.seen),
            None => pull(client, &alert.external_id, &alert.seen).await?,
        });
    }
    Ok(out)
}

/// The alert fields that mirror in.
const FIELDS: [&str; 2] = ["acknowledgedStatus", "assignee"];

fn state(alert: &Value) -> Value {
    Value::Object(
        FIELDS
            .iter()
            .map(|f| (f.to_string(), alert[*f].clone()))
            .collect(),
    )
}

/// What mirroring compares of a stored state or fetched alert: the fields that mirror in, and
/// the organization, whose appliances a read goes to.
pub(super) fn mirror_state(seen: &Value) -> Value {
    let mut kept = state(seen);
    if let Some(org) = seen.get("org_name") {
        kept["org_name"] = org.clone();
    }
    kept
}

pub async fn pull(
    client: &Covalence,
    id: &str,
    seen: &Value,
) -> Result<Option<RemoteChange>, CommandError> {
    let org = seen["org_name"].as_str();
    let filter = format!("id={}", super::commands::filter_value(id));
    let query = &[("advancedFilter".to_string(), filter)];
    let found = client
        .fan_out(org, |a| async move {
            client.list(&a, "/rest/v1/alerts", query, Some(1), 0).await
        })
        .await?;
    let Some(alert) = found.into_iter().find(|a| a["id"] == id) else {
        return Ok(None);
    };
    Ok(compare(&alert, seen))
}

/// What changed in `alert` since `seen`, if anything.
fn compare(alert: &Value, seen: &Value) -> Option<RemoteChange> {
    let org = seen["org_name"].as_str();
    let (now, before) = (state(alert), state(seen));
    if now == before {
        return None;
    }
    let shown = crate::shown;
    let notes = FIELDS
        .iter()
        .filter(|f| now[**f] != before[**f])
        .map(|f| {
            format!(
                "Covalence: {f} {} → {}",
                shown(&before[*f]),
                shown(&now[*f])
            )
        })
        .collect();
    // The acknowledgement carries no time: it is given the time mirroring first saw it.
    let acknowledged = |state: &Value| state["acknowledgedStatus"] == "Acknowledged";
    let provider =
        (acknowledged(&now) && !acknowledged(&before)).then(|| watchfloor_core::ProviderTimes {
            updated: super::fetch::alert_updated(alert),
            resolved: None,
            acknowledged: Some(chrono::Utc::now()),
        });
    // Keep the organization, so the next read goes to the same appliances.
    let mut seen = now;
    seen["org_name"] = json!(org);
    Some(RemoteChange {
        seen,
        notes,
        close: None,
        provider,
        baseline: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (a sync after a backfill took `serve` to 300 MB): mirroring held a batch of
    /// 5,000 whole alerts, and its listings' whole alerts beside them. What it keeps of one is
    /// what it compares, and comparing that finds what comparing the whole alert found.
    #[test]
    fn mirroring_keeps_only_what_it_compares() {
        let raw = json!({
            "id": "a1", "org_name": "Acme", "acknowledgedStatus": "None", "assignee": null,
            "title": "Port scan", "analystDescription": "x".repeat(2000), "destIp": "10.0.0.1",
        });
        let kept = mirror_state(&raw);
        assert_eq!(
            kept,
            json!({"acknowledgedStatus": "None", "assignee": null, "org_name": "Acme"})
        );
        assert_eq!(mirror_state(&kept), kept, "idempotent");
        let mut now = raw.clone();
        now["assignee"] = json!("dana");
        let (whole, part) = (compare(&now, &raw), compare(&state(&now), &kept));
        assert_eq!(whole, part);
        assert_eq!(whole.unwrap().seen["org_name"], "Acme");
        assert_eq!(compare(&raw, &kept), None);
    }
}
