//! Fetching AROs as incidents: unresolved AROs created in the window, oldest first. Each
//! organization's active response profile is looked up once per fetch, not once per ARO.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use watchfloor_core::fetch::Dated;
use watchfloor_core::{FetchSettings, Label, NewIncident};

use super::client::Portal;
use crate::CommandError;
use crate::fetch::{FetchBatch, Read, field_effect_severity, windowed};

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

fn parse_created(aro: &Value) -> Result<DateTime<Utc>, CommandError> {
    let raw = aro["creation_time"].as_str().unwrap_or_default();
    NaiveDateTime::parse_from_str(raw, TIME_FORMAT)
        .map(|t| t.and_utc())
        .map_err(|_| {
            CommandError::Provider(format!(
                "FES Portal sent ARO {} with creation_time {raw:?}, not YYYY-MM-DD HH:MM:SS",
                aro["ID"].as_str().unwrap_or("?")
            ))
        })
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
        async |from: DateTime<Utc>, until: DateTime<Utc>| {
            let filters = [
                ("resolution".to_string(), "Unresolved".to_string()),
                ("since".to_string(), from.format(TIME_FORMAT).to_string()),
                ("until".to_string(), until.format(TIME_FORMAT).to_string()),
            ];
            let aros = portal.aros(&filters).await?;
            aros.into_iter()
                .map(|aro| {
                    let id = aro["ID"]
                        .as_str()
                        .filter(|id| !id.is_empty())
                        .map(str::to_string);
                    let id = id.ok_or_else(|| {
                        CommandError::Provider("FES Portal sent an ARO without an ID".into())
                    })?;
                    Ok(Dated {
                        id,
                        created: parse_created(&aro)?,
                        item: aro,
                    })
                })
                .collect::<Result<Vec<_>, CommandError>>()
                .map(Read::from)
        },
    )
    .await?;
    let mut profiles: BTreeMap<String, Value> = BTreeMap::new();
    for org in aros.iter().filter_map(|a| a["organization"]["ID"].as_str()) {
        if !profiles.contains_key(org) {
            let detail = portal.my_organization(org).await?;
            profiles.insert(org.to_string(), detail["active_response_profile"].clone());
        }
    }
    let incidents = aros
        .iter()
        .map(|aro| incident(aro, &profiles))
        .collect::<Result<_, _>>()?;
    Ok(next.batch(incidents))
}

/// An ARO as an incident: name `[org] [type] title`, details with mitigation steps and the
/// organization's active response profile.
fn incident(aro: &Value, profiles: &BTreeMap<String, Value>) -> Result<NewIncident, CommandError> {
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
    Ok(NewIncident {
        external_id: aro["ID"].as_str().unwrap_or_default().to_string(),
        name: format!("[{}] [{kind}] {title}", org.unwrap_or("No org name")),
        occurred: parse_created(aro)?,
        severity: field_effect_severity(aro["severity"].as_str()),
        organization: org.map(str::to_string),
        details,
        labels,
        raw: aro.clone(),
    })
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
        let inc = incident(&aro, &profiles).unwrap();
        assert_eq!(inc.name, "[Globex] [Action] Malware detected");
        assert_eq!(inc.occurred.to_rfc3339(), "2024-05-02T14:03:11+00:00");
        assert_eq!(inc.severity, Severity::Low);
        assert_eq!(
            inc.details,
            "Malware was blocked.\n\nMitigation Steps\n- Isolate the host.\n- Reset the password.\n\nActive Response Profile\n- Response policy: Off\n- Exclusions/ Modifications: None\n"
        );
        let bare = incident(
            &json!({"ID": "a2", "creation_time": "2024-05-02 14:03:11", "organization": null}),
            &profiles,
        )
        .unwrap();
        assert_eq!(
            (bare.name.as_str(), bare.severity, bare.details.as_str()),
            (
                "[No org name] [No ARO type] No title",
                Severity::Unknown,
                ""
            )
        );
        let bad = incident(
            &json!({"ID": "a3", "creation_time": "yesterday"}),
            &profiles,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            bad,
            "FES Portal sent ARO a3 with creation_time \"yesterday\", not YYYY-MM-DD HH:MM:SS"
        );
    }
}
