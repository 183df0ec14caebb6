//! Fetching AROs as incidents: unresolved AROs created in the window, oldest first. Each
//! organization's active response profile is looked up once per fetch, not once per ARO.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use watchfloor_core::fetch::{Dated, describe, record_id};
use watchfloor_core::{FetchSettings, Label, NewIncident, ProviderTimes, SetAside};

use super::client::Portal;
use crate::CommandError;
use crate::fetch::{FetchBatch, Read, field_effect_severity, windowed};

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// An ARO's id and creation time, or why it cannot be fetched.
fn date(aro: &Value) -> Result<(String, DateTime<Utc>), SetAside> {
    let id = record_id(aro, "ID")?;
    let created = aro["creation_time"]
        .as_str()
        .and_then(|raw| NaiveDateTime::parse_from_str(raw, TIME_FORMAT).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| SetAside {
            id: id.clone(),
            reason: format!(
                "its creation_time is {}, not YYYY-MM-DD HH:MM:SS",
                describe(&aro["creation_time"])
            ),
        })?;
    Ok((id, created))
}

/// An ARO's own times beyond its creation: its last update, and when it was resolved
/// (`resolution_time`; without one, the last update of an ARO Resolved or Dismissed). A time
/// that is not one is left out.
pub fn provider_times(aro: &Value) -> ProviderTimes {
    let time = |key: &str| {
        aro[key]
            .as_str()
            .and_then(|raw| NaiveDateTime::parse_from_str(raw, TIME_FORMAT).ok())
            .map(|t| t.and_utc())
    };
    let resolved = matches!(aro["resolution"].as_str(), Some("Resolved" | "Dismissed"));
    ProviderTimes {
        updated: time("last_updated_time"),
        resolved: resolved
            .then(|| time("resolution_time").or_else(|| time("last_updated_time")))
            .flatten(),
        acknowledged: None,
    }
}

/// One fetch step.
pub async fn fetch(
    portal: &Portal,
    cursor: Option<&Value>,
    settings: &FetchSettings,
) -> Result<FetchBatch, CommandError> {
    let (aros, next) = windowed(
        cursor,
        settings,
        |from: DateTime<Utc>, until: DateTime<Utc>| async move {
            let filters = [
                ("resolution".to_string(), "Unresolved".to_string()),
                ("since".to_string(), from.format(TIME_FORMAT).to_string()),
                ("until".to_string(), until.format(TIME_FORMAT).to_string()),
            ];
            let found = portal.aros(&filters).await?;
            let mut read = Read::sort_out(found.items, date);
            read.set_aside
                .extend(found.oversized.iter().map(|huge| huge.set_aside("ID")));
            Ok(read)
        },
    )
    .await?;
    let mut profiles: BTreeMap<String, Value> = BTreeMap::new();
    for org in aros
        .iter()
        .filter_map(|a| a.item["organization"]["ID"].as_str())
    {
        if !profiles.contains_key(org) {
            let detail = portal.my_organization(org).await?;
            profiles.insert(org.to_string(), detail["active_response_profile"].clone());
        }
    }
    Ok(next.batch(aros.iter().map(|a| incident(a, &profiles)).collect()))
}

/// An ARO as an incident: name `[org] [type] title`, details with mitigation steps and the
/// organization's active response profile.
fn incident(dated: &Dated<Value>, profiles: &BTreeMap<String, Value>) -> NewIncident {
    let aro = &dated.item;
    let org = aro["organization"]["name"]
        .as_str()
        .filter(|s| !s.is_empty());
    let kind = aro["type"].as_str().unwrap_or("No ARO type");
    let title = aro["title"].as_str().unwrap_or("No title");
    let mut details = aro["details"].as_str().unwrap_or_default().to_string();
    if !details.is_empty() {
        let steps: Vec<&str> = aro["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["label"].as_str())
            .collect();
        if !steps.is_empty() {
            details.push_str("\n\nMitigation Steps\n");
            for step in steps {
                details.push_str(&format!("- {step}\n"));
            }
        }
        if let Some(profile) = aro["organization"]["ID"]
            .as_str()
            .and_then(|id| profiles.get(id))
            .filter(|p| p.is_object())
        {
            let show = |v: &Value| match v {
                Value::Null => "None".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            details.push_str(&format!(
                "\nActive Response Profile\n- Response policy: {}\n- Exclusions/ Modifications: {}\n",
                show(&profile["response_policy"]),
                show(&profile["options"])
            ));
        }
    }
    let mut labels = vec![Label {
        kind: "ARO type".into(),
        value: kind.to_string(),
    }];
    if let Some(org) = org {
        labels.push(Label {
            kind: "Organization".into(),
            value: org.to_string(),
        });
    }
    NewIncident {
        external_id: dated.id.clone(),
        name: format!("[{}] [{kind}] {title}", org.unwrap_or("No org name")),
        occurred: dated.created,
        severity: field_effect_severity(aro["severity"].as_str()),
        organization: org.map(str::to_string),
        details,
        labels,
        raw: aro.clone(),
        provider: provider_times(aro),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use watchfloor_core::Severity;

    #[test]
    fn an_aro_becomes_an_incident_like_the_reference() {
        let aro = json!({"ID": "a1", "creation_time": "2024-05-02 14:03:11", "details": "Malware was blocked.",
            "organization": {"ID": "o1", "email": "x", "name": "Globex"}, "severity": "Warning", "title": "Malware detected",
            "type": "Action", "steps": [{"label": "Isolate the host."}, {"label": "Reset the password."}]});
        let profiles = BTreeMap::from([(
            "o1".to_string(),
            json!({"response_policy": "Off", "options": null}),
        )]);
        let dated = |aro: Value| {
            let (id, created) = date(&aro).unwrap();
            Dated {
                id,
                created,
                item: aro,
            }
        };
        let inc = incident(&dated(aro), &profiles);
        assert_eq!(inc.name, "[Globex] [Action] Malware detected");
        assert_eq!(inc.occurred.to_rfc3339(), "2024-05-02T14:03:11+00:00");
        assert_eq!(inc.severity, Severity::Low);
        assert_eq!(
            inc.details,
            "Malware was blocked.\n\nMitigation Steps\n- Isolate the host.\n- Reset the password.\n\nActive Response Profile\n- Response policy: Off\n- Exclusions/ Modifications: None\n"
        );
        let bare = incident(
            &dated(
                json!({"ID": "a2", "creation_time": "2024-05-02 14:03:11", "organization": null}),
            ),
            &profiles,
        );
        assert_eq!(
            (bare.name.as_str(), bare.severity, bare.details.as_str()),
            (
                "[No org name] [No ARO type] No title",
                Severity::Unknown,
                ""
            )
        );
        // Regression (hardening 3, 13): one malformed ARO failed every fetch, a numeric id
        // read "ARO without an ID", and a numeric time was shown as "".
        for (aro, id, reason) in [
            (
                json!({"ID": "a3", "creation_time": "yesterday-ish"}),
                "a3",
                "its creation_time is \"yesterday-ish\", not YYYY-MM-DD HH:MM:SS",
            ),
            (
                json!({"ID": "a4", "creation_time": 1714550400}),
                "a4",
                "its creation_time is 1714550400 (a number), not YYYY-MM-DD HH:MM:SS",
            ),
            (
                json!({"ID": 5, "creation_time": "2024-05-02 14:03:11"}),
                "?",
                "its ID is 5 (a number), not an id",
            ),
            (
                json!({"creation_time": "2024-05-02 14:03:11"}),
                "?",
                "its ID is nothing, not an id",
            ),
        ] {
            assert_eq!(
                date(&aro),
                Err(SetAside {
                    id: id.into(),
                    reason: reason.into()
                })
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::test_support::cases())]

        /// Provider JSON of any shape is dated, set aside or made an incident: no panic.
        #[test]
        fn any_aro_json_is_handled(aro in crate::test_support::arbitrary_json()) {
            if let Ok((id, created)) = date(&aro) {
                let profiles = BTreeMap::from([("o".to_string(), aro.clone())]);
                let _ = incident(&Dated { id, created, item: aro }, &profiles).bounded();
            }
        }
    }
}
