//! `${incident.<field>}` and `${<ContextKey>.<path>}` in command lines, as XSOAR users write
//! them, resolved from the incident and its context. Each argument value is resolved on its
//! own after the line is parsed, so a value cannot add arguments.

use serde_json::Value;
use watchfloor_core::{CommandLine, Incident};

pub use watchfloor_core::incident::XSOAR_FIELDS as INCIDENT_FIELDS;

/// Resolves every `${...}` in the values of `line` from `incident` and its `context`.
pub fn resolve(line: &mut CommandLine, incident: &Incident, context: &Value) -> Result<(), String> {
    for value in line.values_mut() {
        if value.contains("${") {
            *value = resolve_text(value, incident, context)?;
        }
    }
    Ok(())
}

/// One value with its references replaced.
pub fn resolve_text(text: &str, incident: &Incident, context: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "`{}` has no closing `}}`; write references as ${{incident.<field>}} or ${{<ContextKey>.<path>}}",
                &rest[start..]
            ));
        };
        let reference = after[..end].trim();
        out.push_str(&lookup(reference, incident, context)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(reference: &str, incident: &Incident, context: &Value) -> Result<String, String> {
    if reference.is_empty() {
        return Err(
            "`${}` names nothing; write ${incident.<field>} or ${<ContextKey>.<path>}".into(),
        );
    }
    if let Some(field) = reference.strip_prefix("incident.") {
        return incident_field(field, incident);
    }
    let values = context_values(context, reference);
    if values.is_empty() {
        return Err(format!(
            "`${{{reference}}}` is not in incident {}'s context; `incidents context {}` shows what is there",
            incident.id, incident.id
        ));
    }
    Ok(values.join(","))
}

pub(crate) fn incident_field(field: &str, i: &Incident) -> Result<String, String> {
    let missing = |what: &str| {
        Err(format!(
            "`${{incident.{field}}}` does not resolve: incident {} has no {what}",
            i.id
        ))
    };
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(match field {
        "id" => i.id.to_string(),
        "name" => i.name.clone(),
        "type" => i.kind.clone(),
        "severity" => i.severity.value().to_string(),
        "status" => i.status.as_str().to_string(),
        "owner" => match &i.owner {
            Some(o) => o.clone(),
            None => return missing("owner"),
        },
        "organization" => match &i.organization {
            Some(o) => o.clone(),
            None => return missing("organization"),
        },
        "dbotMirrorId" => match i.is_manual() {
            true => return missing("provider record (it was made by hand)"),
            false => i.external_id.clone(),
        },
        "sourceInstance" => match i.is_manual() {
            true => return missing("instance (it was made by hand)"),
            false => i.instance.clone(),
        },
        "sourceBrand" => match i.is_manual() {
            true => return missing("integration (it was made by hand)"),
            false => i.integration.clone(),
        },
        "occurred" => time(i.occurred),
        "created" => time(i.created),
        "modified" => time(i.modified),
        "details" => i.details.clone(),
        "closeReason" => match i.close_reason {
            Some(r) => r.as_str().to_string(),
            None => return missing("close reason"),
        },
        "closeNotes" => match &i.close_notes {
            Some(n) => n.clone(),
            None => return missing("close notes"),
        },
        "version" => i.version.to_string(),
        "sourceip" => match i
            .labels
            .iter()
            .find(|l| l.kind == watchfloor_core::incident::SOURCE_IP_LABEL)
        {
            Some(l) => l.value.clone(),
            None => return missing("source IP"),
        },
        other => {
            return Err(format!(
                "`${{incident.{other}}}` does not resolve: incidents have no field `{other}`; use one of {}",
                INCIDENT_FIELDS.join(", ")
            ));
        }
    })
}

/// The values at a dotted path of the context, through lists (XSOAR's `${FESPortal.ARO.ID}`
/// gives every ARO's id). Context keys may hold spaces (`Symantec MSS.Incidents list`).
pub(crate) fn context_values(context: &Value, path: &str) -> Vec<String> {
    let mut current: Vec<&Value> = vec![context];
    for part in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            match v {
                Value::Array(items) => next.extend(items.iter().filter_map(|x| x.get(part))),
                other => next.extend(other.get(part)),
            }
        }
        current = next;
    }
    let mut out = Vec::new();
    for v in current {
        match v {
            Value::Array(items) => out.extend(items.iter().filter_map(scalar)),
            other => out.extend(scalar(other)),
        }
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;
    use watchfloor_core::{Severity, Status};

    fn incident() -> Incident {
        Incident {
            id: 12,
            instance: "fes".into(),
            integration: "covalence-managed-security".into(),
            external_id: "aro-1".into(),
            name: "Malware detected".into(),
            kind: "Covalence ARO".into(),
            occurred: Utc::now(),
            created: Utc::now(),
            modified: Utc::now(),
            severity: Severity::High,
            severity_label: "High",
            status: Status::Active,
            organization: Some("Acme Corp".into()),
            owner: None,
            details: String::new(),
            labels: vec![],
            raw: json!({}),
            version: 3,
            closed: None,
            close_reason: None,
            close_notes: None,
            first_assigned: None,
            sla_due: Utc::now(),
        }
    }

    fn resolved(line: &str, context: &Value) -> Result<CommandLine, String> {
        let mut line = CommandLine::parse(line).unwrap();
        resolve(&mut line, &incident(), context)?;
        Ok(line)
    }

    #[test]
    fn incident_fields_and_context_paths_resolve_in_each_value() {
        let context = json!({
            "FESPortal": {"ARO": [{"ID": "a"}, {"ID": "b"}]},
            "Symantec MSS": {"Incidents list": {"IncidentNumber": 7}},
        });
        let line = resolved(
            r#"!cmd aro_id=${incident.dbotMirrorId} query="org=${incident.organization}&x=1" ids=${FESPortal.ARO.ID} n="${Symantec MSS.Incidents list.IncidentNumber}" ${incident.version}"#,
            &context,
        )
        .unwrap();
        assert_eq!(
            line.args,
            vec![
                ("aro_id".to_string(), "aro-1".to_string()),
                ("query".to_string(), "org=Acme Corp&x=1".to_string()),
                ("ids".to_string(), "a,b".to_string()),
                ("n".to_string(), "7".to_string()),
            ]
        );
        assert_eq!(line.bare.as_deref(), Some("3"));
    }

    /// A value that resolves to text with spaces or `x=y` stays one value.
    #[test]
    fn a_resolved_value_adds_no_arguments() {
        let mut i = incident();
        i.name = "a using=other b=c".into();
        let mut line = CommandLine::parse("!cmd note=${incident.name}").unwrap();
        resolve(&mut line, &i, &json!({})).unwrap();
        assert_eq!(line.args.len(), 1);
        assert_eq!(line.using, None);
    }

    #[test]
    fn a_reference_that_does_not_resolve_says_why() {
        for (line, says) in [
            ("!cmd a=${incident.nope}", "no field `nope`"),
            ("!cmd a=${incident.owner}", "has no owner"),
            ("!cmd a=${Missing.Key}", "not in incident 12's context"),
            ("!cmd a=${incident.name", "no closing"),
            ("!cmd a=${}", "names nothing"),
        ] {
            let e = resolved(line, &json!({})).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
    }
}
