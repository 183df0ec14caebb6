//! Incidents: what a fetch produces ([`NewIncident`]) and what the store keeps ([`Incident`]),
//! with XSOAR's severity scale and the incident lifecycle.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lifecycle::{CloseReason, Lifecycle, SlaPolicy, SlaState, sla_state};

/// XSOAR's severity scale: 0 unknown, 0.5 informational, 1 low, 2 medium, 3 high, 4 critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Severity {
    #[default]
    Unknown,
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 6] = [
        Severity::Unknown,
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The number on XSOAR's scale.
    pub fn value(self) -> f64 {
        match self {
            Severity::Unknown => 0.0,
            Severity::Informational => 0.5,
            Severity::Low => 1.0,
            Severity::Medium => 2.0,
            Severity::High => 3.0,
            Severity::Critical => 4.0,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Severity::Unknown => "Unknown",
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }

    pub fn from_value(v: f64) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.value() == v)
    }

    /// A label (any case) or a number on the scale.
    pub fn parse(s: &str) -> Result<Severity, String> {
        let s = s.trim();
        Severity::ALL
            .into_iter()
            .find(|sev| sev.label().eq_ignore_ascii_case(s))
            .or_else(|| s.parse::<f64>().ok().and_then(Severity::from_value))
            .ok_or_else(|| format!("`{s}` is not a severity: use Unknown, Informational, Low, Medium, High, Critical or 0, 0.5, 1, 2, 3, 4"))
    }
}

impl Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Severity::Informational => s.serialize_f64(0.5),
            whole => s.serialize_u8(whole.value() as u8),
        }
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Severity::from_value(v)
            .ok_or_else(|| serde::de::Error::custom(format!("{v} is not on the severity scale")))
    }
}

/// Where an incident is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Pending,
    Active,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Result<Status, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => Ok(Status::Pending),
            "active" => Ok(Status::Active),
            "closed" => Ok(Status::Closed),
            other => Err(format!(
                "`{other}` is not a status: use pending, active or closed"
            )),
        }
    }
}

/// A label, as XSOAR's `{"type": .., "value": ..}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// The provider's own times of an alert, as its API gives them (see docs/reports.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ProviderTimes {
    /// When the provider last changed it: FES's `last_updated_time`, Covalence's
    /// `lastAlertedTime`, Symantec's `UpdateTimestampGMT`.
    pub updated: Option<DateTime<Utc>>,
    /// When the provider resolved it, if it did: FES's `resolution_time` (or, without one,
    /// `last_updated_time` of an ARO Resolved or Dismissed).
    pub resolved: Option<DateTime<Utc>>,
    /// When the provider was first seen to have acknowledged it: Covalence's
    /// `acknowledgedStatus` turning `Acknowledged`, which carries no time, as mirroring saw
    /// it (within one mirroring interval), or the fetch of an alert acknowledged already.
    pub acknowledged: Option<DateTime<Utc>>,
}

/// An incident as an integration's fetch makes it from a provider alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewIncident {
    /// The provider's id: ARO ID, alert id or IncidentNumber. Unique per instance.
    pub external_id: String,
    pub name: String,
    pub occurred: DateTime<Utc>,
    pub severity: Severity,
    pub organization: Option<String>,
    pub details: String,
    pub labels: Vec<Label>,
    /// The provider's alert, unchanged but for text fields cut to [`MAX_RAW_TEXT`].
    pub raw: Value,
    /// The provider's own times beyond its creation (`occurred`).
    pub provider: ProviderTimes,
}

/// The longest name stored, in characters.
pub const MAX_NAME: usize = 1_000;
/// The longest details stored, in characters.
pub const MAX_DETAILS: usize = 64 * 1024;
/// The longest text field kept in the raw alert, in characters.
pub const MAX_RAW_TEXT: usize = 16 * 1024;

/// `s` cut to `max` characters, with a note of how much was cut.
fn bounded_text(s: &mut String, max: usize) {
    if let Some((cut, _)) = s.char_indices().nth(max) {
        let total = s.chars().count();
        s.truncate(cut);
        s.push_str(&format!(" … [truncated: {total} characters in all]"));
    }
}

fn bound_raw(v: &mut Value) {
    match v {
        Value::String(s) => bounded_text(s, MAX_RAW_TEXT),
        Value::Array(items) => items.iter_mut().for_each(bound_raw),
        Value::Object(fields) => fields.values_mut().for_each(bound_raw),
        _ => {}
    }
}

impl NewIncident {
    /// The incident with its text cut to the stored maximums, each cut marked as such, so one
    /// oversized alert cannot bloat the store or the screens that show it.
    pub fn bounded(mut self) -> Self {
        bounded_text(&mut self.name, MAX_NAME);
        bounded_text(&mut self.details, MAX_DETAILS);
        bound_raw(&mut self.raw);
        self
    }
}

/// The incident fields `${incident.<field>}` reads, by XSOAR's names.
pub const XSOAR_FIELDS: [&str; 18] = [
    "id",
    "name",
    "type",
    "severity",
    "status",
    "owner",
    "organization",
    "dbotMirrorId",
    "sourceInstance",
    "sourceBrand",
    "occurred",
    "created",
    "modified",
    "details",
    "closeReason",
    "closeNotes",
    "version",
    "sourceip",
];

/// The label an integration gives an incident's source IP address: XSOAR's `sourceip`.
pub const SOURCE_IP_LABEL: &str = "Source IP";

/// A stored incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: i64,
    pub instance: String,
    pub integration: String,
    pub external_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub severity: Severity,
    pub severity_label: &'static str,
    pub status: Status,
    pub organization: Option<String>,
    pub owner: Option<String>,
    pub details: String,
    pub labels: Vec<Label>,
    pub raw: Value,
    /// Incremented by every change; a change made against another version is refused.
    pub version: i64,
    pub closed: Option<DateTime<Utc>>,
    pub close_reason: Option<CloseReason>,
    pub close_notes: Option<String>,
    pub first_assigned: Option<DateTime<Utc>>,
    /// When the SLA for its severity runs out.
    pub sla_due: DateTime<Utc>,
}

impl Incident {
    /// The fields the lifecycle rules work on.
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            status: self.status,
            severity: self.severity,
            owner: self.owner.clone(),
            kind: self.kind.clone(),
            labels: self.labels.clone(),
            close_reason: self.close_reason,
            close_notes: self.close_notes.clone(),
            closed: self.closed,
            first_assigned: self.first_assigned,
        }
    }

    /// Takes the fields of `after` (a lifecycle change applied at `now`), with the SLA deadline
    /// its severity gives under `sla`, as the store would have them.
    pub fn set_lifecycle(&mut self, after: Lifecycle, sla: &SlaPolicy, now: DateTime<Utc>) {
        self.sla_due = sla.due(sla.start(self.created, self.occurred), after.severity);
        self.status = after.status;
        self.severity = after.severity;
        self.owner = after.owner;
        self.kind = after.kind;
        self.labels = after.labels;
        self.close_reason = after.close_reason;
        self.close_notes = after.close_notes;
        self.closed = after.closed;
        self.first_assigned = after.first_assigned;
        self.modified = now;
        self.version += 1;
    }

    /// Where the incident stands against its SLA at `now`.
    pub fn sla_state(&self, now: DateTime<Utc>) -> SlaState {
        sla_state(self.created, self.sla_due, self.closed, now)
    }

    /// Manual incidents belong to no provider instance.
    pub fn is_manual(&self) -> bool {
        self.instance.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_follow_xsoar() {
        for (input, expected) in [
            ("critical", Severity::Critical),
            ("0.5", Severity::Informational),
            ("Unknown", Severity::Unknown),
            ("2", Severity::Medium),
        ] {
            assert_eq!(Severity::parse(input), Ok(expected));
        }
        assert!(Severity::parse("urgent").is_err());
        assert_eq!(
            serde_json::to_string(&Severity::Informational).unwrap(),
            "0.5"
        );
        assert!(Severity::Critical > Severity::High && Severity::Informational > Severity::Unknown);
    }

    /// Regression (hardening 8): one ARO with 100 MB of details was stored whole.
    #[test]
    fn oversized_text_is_cut_and_marked() {
        let huge = "é".repeat(MAX_DETAILS + 10);
        let inc = NewIncident {
            provider: Default::default(),
            external_id: "a".into(),
            name: "n".repeat(MAX_NAME + 1),
            occurred: Utc::now(),
            severity: Severity::Low,
            organization: None,
            details: huge.clone(),
            labels: vec![],
            raw: serde_json::json!({"details": huge, "steps": [{"label": "short"}]}),
        }
        .bounded();
        assert!(inc.name.ends_with(&format!(
            " … [truncated: {} characters in all]",
            MAX_NAME + 1
        )));
        assert_eq!(
            inc.details.chars().filter(|c| *c == 'é').count(),
            MAX_DETAILS
        );
        assert!(inc.details.ends_with(&format!(
            "[truncated: {} characters in all]",
            MAX_DETAILS + 10
        )));
        let raw_details = inc.raw["details"].as_str().unwrap();
        assert_eq!(
            raw_details.chars().filter(|c| *c == 'é').count(),
            MAX_RAW_TEXT
        );
        assert_eq!(inc.raw["steps"][0]["label"], "short");
    }
}
