//! The native API's answers as JSON Schemas, for the OpenAPI document: each route names its
//! answer (`Endpoint::returns`), and the shapes are written here once, in a short notation. A
//! test checks real answers of a running `serve` against them, so they stay true.
//!
//! Notation of a field's type: `string`, `integer`, `number`, `boolean`, `object`, `any`; a
//! component's name (`Incident`); `[T]` for a list of T; a trailing `?` for "or null". A field
//! name with a trailing `?` may be absent. Objects may hold more fields than are listed.

use serde_json::{Map, Value, json};

/// A field's type in the notation above, as a JSON Schema.
fn ty(t: &str) -> Value {
    if let Some(inner) = t.strip_suffix('?') {
        return json!({"anyOf": [ty(inner), {"type": "null"}]});
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return json!({"type": "array", "items": ty(inner)});
    }
    match t {
        "any" => json!({}),
        "string" | "integer" | "number" | "boolean" | "object" => json!({"type": t}),
        component => json!({"$ref": format!("#/components/schemas/{component}")}),
    }
}

/// An object with these fields (`name: type`, as above).
fn obj(fields: &[(&str, &str)]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, t) in fields {
        match name.strip_suffix('?') {
            Some(optional) => {
                properties.insert(optional.to_string(), ty(t));
            }
            None => {
                properties.insert(name.to_string(), ty(t));
                required.push(json!(name));
            }
        }
    }
    json!({"type": "object", "required": required, "properties": properties})
}

/// The named shapes answers are made of, as the document's `components.schemas`.
pub fn components() -> Map<String, Value> {
    let counts = obj(&[
        ("matched", "integer"),
        ("acted", "integer"),
        ("failed", "integer"),
        ("skipped", "integer"),
        ("dry_run", "integer"),
    ]);
    let health_times: [(&str, &str); 5] = [
        ("last_success", "string?"),
        ("last_error", "string?"),
        ("last_error_at", "string?"),
        ("consecutive_failures", "integer"),
        ("last_cycle_at", "string?"),
    ];
    let mut health = vec![
        ("instance", "string"),
        ("incidents_last_cycle", "integer"),
        ("set_aside", "[object]"),
        ("scopes", "[ScopeHealth]"),
    ];
    health.extend(health_times);
    let mut scope_health = vec![("scope", "string")];
    scope_health.extend(health_times);
    let facet = ty("[FacetCount]");
    let list: Vec<(&str, Value)> = vec![
        (
            "Error",
            json!({
                "type": "object",
                "required": ["error", "code"],
                "properties": {
                    "error": {"type": "string", "description": "what failed and what to do"},
                    "code": {"type": "string", "description": "bad_request, unauthorized, forbidden, not_found, conflict, refused, too_many_requests, provider_failed, unavailable or internal"},
                },
            }),
        ),
        ("Label", obj(&[("type", "string"), ("value", "string")])),
        (
            "Incident",
            obj(&[
                ("id", "integer"),
                ("instance", "string"),
                ("integration", "string"),
                ("external_id", "string"),
                ("name", "string"),
                ("type", "string"),
                ("occurred", "string"),
                ("created", "string"),
                ("modified", "string"),
                ("severity", "number"),
                ("severity_label", "string"),
                ("status", "string"),
                ("organization", "string?"),
                ("owner", "string?"),
                ("details", "string"),
                ("labels", "[Label]"),
                ("raw", "any"),
                ("version", "integer"),
                ("closed", "string?"),
                ("close_reason", "string?"),
                ("close_notes", "string?"),
                ("first_assigned", "string?"),
                ("sla_due", "string"),
            ]),
        ),
        (
            "IncidentPage",
            obj(&[
                ("data", "[Incident]"),
                ("next", "string?"),
                ("total?", "integer"),
                ("total_capped?", "boolean"),
            ]),
        ),
        (
            "FacetCount",
            obj(&[("value", "string?"), ("count", "integer")]),
        ),
        (
            "Facets",
            json!({
                "type": "object",
                "required": ["facets", "sampled"],
                "properties": {
                    "sampled": {"anyOf": [{"type": "object"}, {"type": "null"}]},
                    "facets": {
                        "type": "object",
                        "required": ["status", "severity", "organization", "owner", "instance"],
                        "properties": {
                            "status": facet, "severity": facet, "organization": facet,
                            "owner": facet, "instance": facet,
                        },
                    },
                },
            }),
        ),
        (
            "Entry",
            obj(&[
                ("id", "integer"),
                ("incident_id", "integer"),
                ("created", "string"),
                ("author", "string"),
                ("kind", "string"),
                ("body", "object"),
            ]),
        ),
        (
            "CommandEntry",
            obj(&[
                ("Type", "integer"),
                ("ContentsFormat", "string"),
                ("Contents", "any"),
                ("HumanReadable?", "string?"),
                ("ReadableContentsFormat?", "string"),
                ("EntryContext?", "object?"),
            ]),
        ),
        (
            "BulkResult",
            obj(&[
                ("changed?", "[Incident]"),
                ("failed?", "[object]"),
                ("dry_run?", "boolean"),
                ("selected?", "[Incident]"),
            ]),
        ),
        (
            "User",
            obj(&[
                ("id", "integer"),
                ("name", "string"),
                ("role", "string"),
                ("orgs", "[string]"),
                ("disabled", "boolean"),
                ("created", "string"),
            ]),
        ),
        ("NewUser", obj(&[("user", "User"), ("password?", "string")])),
        ("NewApiKey", obj(&[("key", "string"), ("id", "integer")])),
        ("ApiKeys", obj(&[("keys", "[ApiKeyInfo]")])),
        (
            "ApiKeyInfo",
            obj(&[
                ("id", "integer"),
                ("created", "string"),
                ("revoked", "string?"),
            ]),
        ),
        (
            "Session",
            obj(&[("token", "string"), ("expires", "string")]),
        ),
        ("AuditLog", obj(&[("events", "[AuditEvent]")])),
        (
            "AuditEvent",
            obj(&[
                ("id", "integer"),
                ("at", "string"),
                ("actor", "string"),
                ("action", "string"),
                ("target", "string?"),
                ("address", "string?"),
                ("detail", "string"),
            ]),
        ),
        ("Health", obj(&health)),
        ("ScopeHealth", obj(&scope_health)),
        (
            "Instance",
            obj(&[
                ("name", "string"),
                ("integration", "string"),
                ("fetch", "boolean"),
                ("fetch_interval_seconds", "integer"),
                ("mirror", "string"),
                ("health", "Health?"),
            ]),
        ),
        (
            "TestResult",
            obj(&[("ok", "boolean"), ("message", "string")]),
        ),
        (
            "FetchResult",
            obj(&[
                ("new_incidents", "integer"),
                ("steps", "integer"),
                ("held", "integer"),
            ]),
        ),
        (
            "Integration",
            obj(&[
                ("id", "string"),
                ("display", "string"),
                ("commands", "[Command]"),
            ]),
        ),
        (
            "Command",
            obj(&[
                ("name", "string"),
                ("description", "string"),
                ("arguments", "[Argument]"),
                ("outputs_prefix", "string?"),
                ("key_field", "[string]"),
                ("outputs", "[Output]"),
                ("organizations", "string?"),
            ]),
        ),
        (
            "Argument",
            obj(&[
                ("name", "string"),
                ("description", "string"),
                ("required", "boolean"),
                ("default", "string?"),
                ("allowed", "[string]"),
                ("array", "boolean"),
                ("type", "string"),
            ]),
        ),
        (
            "Output",
            obj(&[
                ("path", "string"),
                ("type", "string"),
                ("description", "string"),
            ]),
        ),
        ("RuleCounts", counts),
        (
            "RuleSummary",
            obj(&[
                ("name", "string"),
                ("position", "integer"),
                ("source", "string"),
                ("enabled", "boolean"),
                ("disabled_reason", "string?"),
                ("updated_by", "string"),
                ("updated", "string"),
                ("on", "[string]"),
                ("mode", "string"),
                ("when", "string"),
                ("actions", "[string]"),
                ("last_day", "RuleCounts"),
            ]),
        ),
        ("Rules", obj(&[("rules", "[RuleSummary]")])),
        (
            "Rule",
            obj(&[
                ("rule", "object"),
                ("last_hour", "RuleCounts"),
                ("last_day", "RuleCounts"),
            ]),
        ),
        ("RulesImported", obj(&[("imported", "[string]")])),
        (
            "RuleTest",
            obj(&[
                ("rule", "string"),
                ("incident", "integer"),
                ("matched", "boolean"),
                ("actions", "[string]"),
            ]),
        ),
        (
            "Backtest",
            obj(&[
                ("rule", "string"),
                ("since", "string"),
                ("matched", "integer"),
                ("capped", "boolean"),
                ("first", "[[any]]"),
            ]),
        ),
        (
            "Channel",
            obj(&[
                ("name", "string"),
                ("kind", "string"),
                ("target", "string"),
                ("max_per_hour", "integer"),
                ("give_up_after", "string"),
                ("signed", "boolean"),
                ("waiting", "integer"),
                ("sent_last_hour", "integer"),
                ("failed_last_day", "integer"),
                ("last_error", "string?"),
                ("last_error_at", "string?"),
            ]),
        ),
        ("Channels", obj(&[("channels", "[Channel]")])),
        (
            "Notification",
            obj(&[
                ("id", "integer"),
                ("channel", "string"),
                ("incident_id", "integer"),
                ("rule", "string"),
                ("trigger", "string"),
                ("created", "string"),
                ("delivery", "string?"),
                ("status", "string"),
                ("organization", "string?"),
                ("incident_name", "string"),
            ]),
        ),
        ("Notifications", obj(&[("notifications", "[Notification]")])),
        (
            "IndicatorSummary",
            obj(&[
                ("type", "string"),
                ("value", "string"),
                ("first_seen", "string"),
                ("last_seen", "string"),
                ("incidents", "integer"),
            ]),
        ),
        ("Indicators", obj(&[("indicators", "[IndicatorSummary]")])),
        (
            "IncidentIndicators",
            obj(&[
                ("indicators", "[IndicatorSummary]"),
                ("related", "[RelatedIncident]"),
            ]),
        ),
        (
            "RelatedIncident",
            obj(&[("incident", "Incident"), ("shared", "integer")]),
        ),
        (
            "Indicator",
            obj(&[
                ("type", "string"),
                ("value", "string"),
                ("found_in", "[any]"),
            ]),
        ),
        ("Allowlist", obj(&[("allowlist", "[string]")])),
        (
            "AllowlistAdded",
            obj(&[("entry", "string"), ("added", "boolean")]),
        ),
        (
            "ReportSend",
            obj(&[
                ("id", "string"),
                ("organization", "string"),
                ("channel", "string"),
                ("period", "string"),
                ("status", "string"),
                ("attempts", "integer"),
                ("created", "string"),
                ("sent", "string?"),
                ("last_error", "string?"),
            ]),
        ),
        (
            "Report",
            obj(&[
                ("organization", "string?"),
                ("since", "string"),
                ("until", "string"),
            ]),
        ),
    ];
    list.into_iter()
        .map(|(name, schema)| (name.to_string(), schema))
        .collect()
}

/// A route's answer from its `returns`: `STATUS TYPE`, `TYPE` (status 200), `204` (no body),
/// or `text` (a text body). The status, and the media type with its schema, if it has a body.
pub fn answer(returns: &str) -> (String, Option<(&'static str, Value)>) {
    let (status, t) = match returns.split_once(' ') {
        Some((status, t)) => (status, t),
        None if returns.chars().all(|c| c.is_ascii_digit()) => (returns, ""),
        None => ("200", returns),
    };
    let body = match t {
        "" => None,
        "text" => Some(("text/plain", json!({"type": "string"}))),
        t => Some(("application/json", ty(t))),
    };
    (status.to_string(), body)
}

/// Whether every type a `returns` names is a component or a plain type: a test runs it over
/// every route.
pub fn names_known(returns: &str) -> bool {
    let (_, body) = answer(returns);
    let components = components();
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r.trim_start_matches("#/components/schemas/").to_string());
                }
                o.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut named = Vec::new();
    if let Some((_, schema)) = &body {
        refs(schema, &mut named);
    }
    components.values().for_each(|v| refs(v, &mut named));
    !returns.is_empty() && named.iter().all(|n| components.contains_key(n))
}
