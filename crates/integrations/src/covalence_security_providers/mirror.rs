//! Mirroring with Covalence, incoming only: the appliance API has no way to change an alert,
//! so nothing goes out. An open incident's alert is re-read (by id, on its organization's
//! appliances in broker mode); changes of its acknowledgement or assignee become war-room
//! entries. Covalence alerts have no closed state, so nothing closes an incident from there.

use serde_json::{Value, json};

use super::client::Covalence;
use crate::{CommandError, RemoteChange};

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
    let (now, before) = (state(&alert), state(seen));
    if now == before {
        return Ok(None);
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
    // Keep the organization, so the next read goes to the same appliances.
    let mut seen = now;
    seen["org_name"] = json!(org);
    Ok(Some(RemoteChange {
        seen,
        notes,
        close: None,
        provider: None,
    }))
}
