//! The incident lifecycle as pure rules: what a change may do to an incident, what it changes
//! (old → new, for the war room), and the SLA an incident is held to. Storage applies these in
//! one transaction with the version check and the war-room entries; every front end (CLI, API,
//! UI) goes through them, so no rule is written twice.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::incident::{Label, Severity, Status};

/// Why an analyst closed an incident, as XSOAR names the reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CloseReason {
    Resolved,
    #[serde(rename = "False Positive")]
    FalsePositive,
    Duplicate,
    Other,
}

impl CloseReason {
    pub const ALL: [CloseReason; 4] = [
        CloseReason::Resolved,
        CloseReason::FalsePositive,
        CloseReason::Duplicate,
        CloseReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Resolved => "Resolved",
            CloseReason::FalsePositive => "False Positive",
            CloseReason::Duplicate => "Duplicate",
            CloseReason::Other => "Other",
        }
    }

    /// A reason in any case, with a space, a dash or nothing between the words.
    pub fn parse(s: &str) -> Result<CloseReason, String> {
        let squeeze = |t: &str| {
            t.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        };
        let wanted = squeeze(s);
        CloseReason::ALL
            .into_iter()
            .find(|r| squeeze(r.as_str()) == wanted)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a close reason: use Resolved, False Positive, Duplicate or Other"
                )
            })
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lifecycle fields of an incident: what changes can touch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lifecycle {
    pub status: Status,
    pub severity: Severity,
    pub owner: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub labels: Vec<Label>,
    pub close_reason: Option<CloseReason>,
    pub close_notes: Option<String>,
    pub closed: Option<DateTime<Utc>>,
    pub first_assigned: Option<DateTime<Utc>>,
}

/// Field edits; `None` leaves a field as it is, `owner: Some(None)` unassigns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edit {
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub owner: Option<Option<String>>,
    pub kind: Option<String>,
    /// Labels to add (a label of the same type and value is not added twice).
    pub labels: Vec<Label>,
}

/// What someone asks of an incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Update(Edit),
    Close {
        reason: CloseReason,
        notes: Option<String>,
    },
    Reopen,
}

/// A change the provider is told of: what the outbox carries, one push each. Which changes
/// are mirrored is decided here ([`Mirrored::of_change`]), next to the lifecycle rules, and a
/// push is written ([`Mirrored::kind`], [`Mirrored::body`]) and read back
/// ([`Mirrored::parse`]) by one function each.
#[derive(Debug, Clone, PartialEq)]
pub enum Mirrored {
    Close {
        reason: CloseReason,
        notes: Option<String>,
    },
    /// A closed incident opened again: the provider's alert goes back to unresolved.
    Reopen,
    /// A note sent to the provider.
    Note { text: String },
}

impl Mirrored {
    /// Every kind of push, as the outbox names them.
    pub const KINDS: [&'static str; 3] = ["close", "reopen", "note"];

    /// What a lifecycle change of a provider's incident tells the provider, if anything: a
    /// close and a reopen are mirrored; an edit of fields stays local.
    pub fn of_change(change: &Change) -> Option<Mirrored> {
        match change {
            Change::Close { reason, notes } => Some(Mirrored::Close {
                reason: *reason,
                notes: notes.clone(),
            }),
            Change::Reopen => Some(Mirrored::Reopen),
            Change::Update(_) => None,
        }
    }

    /// The push's kind, as the outbox stores it.
    pub fn kind(&self) -> &'static str {
        match self {
            Mirrored::Close { .. } => "close",
            Mirrored::Reopen => "reopen",
            Mirrored::Note { .. } => "note",
        }
    }

    /// The push's body, as the outbox stores it.
    pub fn body(&self) -> serde_json::Value {
        match self {
            Mirrored::Close { reason, notes } => {
                serde_json::json!({"reason": reason.as_str(), "notes": notes})
            }
            Mirrored::Reopen => serde_json::json!({}),
            Mirrored::Note { text } => serde_json::json!({"text": text}),
        }
    }

    /// A push read back from the outbox.
    pub fn parse(kind: &str, body: &serde_json::Value) -> Result<Mirrored, String> {
        match kind {
            "close" => Ok(Mirrored::Close {
                reason: CloseReason::parse(body["reason"].as_str().unwrap_or_default())?,
                notes: body["notes"].as_str().map(str::to_string),
            }),
            "reopen" => Ok(Mirrored::Reopen),
            "note" => match body["text"].as_str() {
                Some(text) => Ok(Mirrored::Note {
                    text: text.to_string(),
                }),
                None => Err("a note push without its text".into()),
            },
            other => Err(format!(
                "unknown push `{other}`; known: {}",
                Mirrored::KINDS.join(", ")
            )),
        }
    }
}

/// One field a change moved, for the war room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// A change the lifecycle does not allow. Each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("the incident is closed; reopen it first")]
    Closed,
    #[error("the incident is already closed")]
    AlreadyClosed,
    #[error("the incident is not closed, so it cannot be reopened")]
    NotClosed,
    #[error("an incident is closed with `close`, which records a reason")]
    CloseByUpdate,
    #[error("the change changes nothing")]
    Nothing,
}

fn shown<T: fmt::Display>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(|v| v.to_string())
}

impl Lifecycle {
    /// Applies `change` at `now`; returns what moved, or why it may not.
    pub fn apply(
        &mut self,
        change: &Change,
        now: DateTime<Utc>,
    ) -> Result<Vec<FieldChange>, LifecycleError> {
        let mut moved = Vec::new();
        let mut set = |field: &str, old: Option<String>, new: Option<String>| {
            if old != new {
                moved.push(FieldChange {
                    field: field.to_string(),
                    old,
                    new,
                });
            }
        };
        match change {
            Change::Update(Edit {
                status,
                severity,
                owner,
                kind,
                labels,
            }) => {
                if self.status == Status::Closed {
                    return Err(LifecycleError::Closed);
                }
                if *status == Some(Status::Closed) {
                    return Err(LifecycleError::CloseByUpdate);
                }
                if let Some(s) = status {
                    set(
                        "status",
                        Some(self.status.as_str().into()),
                        Some(s.as_str().into()),
                    );
                    self.status = *s;
                }
                if let Some(s) = severity {
                    set(
                        "severity",
                        Some(self.severity.label().into()),
                        Some(s.label().into()),
                    );
                    self.severity = *s;
                }
                if let Some(o) = owner {
                    set("owner", self.owner.clone(), o.clone());
                    if o.is_some() && self.first_assigned.is_none() {
                        self.first_assigned = Some(now);
                    }
                    self.owner = o.clone();
                }
                if let Some(k) = kind {
                    set("type", Some(self.kind.clone()), Some(k.clone()));
                    self.kind = k.clone();
                }
                for label in labels {
                    if !self.labels.contains(label) {
                        set(
                            "label",
                            None,
                            Some(format!("{}: {}", label.kind, label.value)),
                        );
                        self.labels.push(label.clone());
                    }
                }
            }
            Change::Close { reason, notes } => {
                if self.status == Status::Closed {
                    return Err(LifecycleError::AlreadyClosed);
                }
                set(
                    "status",
                    Some(self.status.as_str().into()),
                    Some("closed".into()),
                );
                set(
                    "close reason",
                    shown(&self.close_reason),
                    Some(reason.to_string()),
                );
                set("close notes", self.close_notes.clone(), notes.clone());
                self.status = Status::Closed;
                self.close_reason = Some(*reason);
                self.close_notes = notes.clone();
                self.closed = Some(now);
            }
            Change::Reopen => {
                if self.status != Status::Closed {
                    return Err(LifecycleError::NotClosed);
                }
                // The close was: its reason and notes go to the war room's history, not the
                // incident's current state.
                set("status", Some("closed".into()), Some("active".into()));
                set("close reason", shown(&self.close_reason), None);
                set("close notes", self.close_notes.clone(), None);
                self.status = Status::Active;
                self.closed = None;
                self.close_reason = None;
                self.close_notes = None;
            }
        }
        if moved.is_empty() {
            return Err(LifecycleError::Nothing);
        }
        Ok(moved)
    }
}

/// How long an incident of each severity may stay open: `[sla]` in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaPolicy {
    /// When the time starts: when watchfloor stored the incident (the default) or when it
    /// occurred at the provider.
    pub from: SlaFrom,
    pub critical: Duration,
    pub high: Duration,
    pub medium: Duration,
    pub low: Duration,
    /// Informational and unknown severities.
    pub informational: Duration,
}

impl Default for SlaPolicy {
    /// One hour for critical, four for high, a day for medium, three for low, a week otherwise.
    fn default() -> Self {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        SlaPolicy {
            from: SlaFrom::Stored,
            critical: hours(1),
            high: hours(4),
            medium: hours(24),
            low: hours(72),
            informational: hours(168),
        }
    }
}

/// Where an incident's SLA time starts (`[sla] from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlaFrom {
    /// When watchfloor stored it (fetched, or made by hand).
    #[default]
    Stored,
    /// When it occurred at the provider: an alert fetched late is as late as it is.
    Occurred,
}

/// Where an incident stands against its SLA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlaState {
    Ok,
    /// In the last quarter of its time.
    AtRisk,
    Breached,
}

impl SlaState {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaState::Ok => "ok",
            SlaState::AtRisk => "at-risk",
            SlaState::Breached => "breached",
        }
    }

    pub fn parse(s: &str) -> Result<SlaState, String> {
        match s.trim().to_ascii_lowercase().replace(' ', "-").as_str() {
            "ok" => Ok(SlaState::Ok),
            "at-risk" => Ok(SlaState::AtRisk),
            "breached" => Ok(SlaState::Breached),
            other => Err(format!(
                "`{other}` is not an SLA state: use ok, at-risk or breached"
            )),
        }
    }
}

impl SlaPolicy {
    pub fn allowed(&self, severity: Severity) -> Duration {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Informational | Severity::Unknown => self.informational,
        }
    }

    /// When an incident created at `created` with `severity` is due.
    /// When an incident stored at `created` that occurred at `occurred` starts its time.
    pub fn start(&self, created: DateTime<Utc>, occurred: DateTime<Utc>) -> DateTime<Utc> {
        match self.from {
            SlaFrom::Stored => created,
            SlaFrom::Occurred => occurred,
        }
    }

    /// When an incident of `severity` whose time starts at `start` is due.
    pub fn due(&self, start: DateTime<Utc>, severity: Severity) -> DateTime<Utc> {
        let allowed = TimeDelta::from_std(self.allowed(severity)).unwrap_or(TimeDelta::MAX);
        start
            .checked_add_signed(allowed)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The SLA state at `now` of an incident created at `created`, due at `due`, and closed at
/// `closed` if it is: a closed incident keeps the state it closed in.
pub fn sla_state(
    created: DateTime<Utc>,
    due: DateTime<Utc>,
    closed: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> SlaState {
    let at = closed.unwrap_or(now);
    if at > due {
        return SlaState::Breached;
    }
    let quarter = (due - created) / 4;
    if closed.is_none() && at > due - quarter {
        SlaState::AtRisk
    } else {
        SlaState::Ok
    }
}

#[cfg(test)]
mod tests {
    /// A push the outbox cannot read says why, naming the kinds it knows.
    #[test]
    fn an_unreadable_push_says_why() {
        let e = Mirrored::parse("escalate", &serde_json::json!({})).unwrap_err();
        assert!(
            e.contains("unknown push `escalate`") && e.contains("close, reopen, note"),
            "{e}"
        );
        let e = Mirrored::parse("note", &serde_json::json!({})).unwrap_err();
        assert!(e.contains("without its text"), "{e}");
        assert!(Mirrored::parse("close", &serde_json::json!({"reason": "Nope"})).is_err());
        assert_eq!(Mirrored::of_change(&Change::Update(Edit::default())), None);
    }

    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_714_550_400 + minutes * 60, 0).unwrap()
    }

    fn open() -> Lifecycle {
        Lifecycle {
            status: Status::Pending,
            severity: Severity::High,
            owner: None,
            kind: "Covalence ARO".into(),
            labels: vec![],
            close_reason: None,
            close_notes: None,
            closed: None,
            first_assigned: None,
        }
    }

    fn moved(changes: &[FieldChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| {
                format!(
                    "{}: {} -> {}",
                    c.field,
                    c.old.as_deref().unwrap_or("-"),
                    c.new.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    #[test]
    fn a_life_from_pending_to_closed_and_back() {
        let mut inc = open();
        let assign = Change::Update(Edit {
            owner: Some(Some("dana".into())),
            status: Some(Status::Active),
            ..Edit::default()
        });
        assert_eq!(
            moved(&inc.apply(&assign, t(5)).unwrap()),
            ["status: pending -> active", "owner: - -> dana"]
        );
        assert_eq!(inc.first_assigned, Some(t(5)));
        let reassign = Change::Update(Edit {
            owner: Some(Some("sam".into())),
            ..Edit::default()
        });
        inc.apply(&reassign, t(9)).unwrap();
        assert_eq!(inc.first_assigned, Some(t(5)), "the first assignment stays");
        let close = Change::Close {
            reason: CloseReason::FalsePositive,
            notes: Some("scanner".into()),
        };
        assert_eq!(
            moved(&inc.apply(&close, t(30)).unwrap()),
            [
                "status: active -> closed",
                "close reason: - -> False Positive",
                "close notes: - -> scanner"
            ]
        );
        assert_eq!(inc.apply(&close, t(31)), Err(LifecycleError::AlreadyClosed));
        assert_eq!(inc.apply(&reassign, t(31)), Err(LifecycleError::Closed));
        // Regression (first hour: the close reason and notes still showed after a reopen):
        // they leave the current state, and the war room keeps them.
        assert_eq!(
            moved(&inc.apply(&Change::Reopen, t(40)).unwrap()),
            [
                "status: closed -> active",
                "close reason: False Positive -> -",
                "close notes: scanner -> -"
            ]
        );
        assert_eq!((inc.status, inc.closed), (Status::Active, None));
        assert_eq!((inc.close_reason, inc.close_notes.as_deref()), (None, None));
        assert_eq!(
            inc.apply(&Change::Reopen, t(41)),
            Err(LifecycleError::NotClosed)
        );
    }

    #[test]
    fn updates_that_are_not_allowed_or_change_nothing() {
        let mut inc = open();
        let close_by_update = Change::Update(Edit {
            status: Some(Status::Closed),
            ..Edit::default()
        });
        assert_eq!(
            inc.apply(&close_by_update, t(1)),
            Err(LifecycleError::CloseByUpdate)
        );
        let same = Change::Update(Edit {
            severity: Some(Severity::High),
            ..Edit::default()
        });
        assert_eq!(inc.apply(&same, t(1)), Err(LifecycleError::Nothing));
        let label = Label {
            kind: "Team".into(),
            value: "Blue".into(),
        };
        let add = Change::Update(Edit {
            labels: vec![label.clone()],
            ..Edit::default()
        });
        assert_eq!(
            moved(&inc.apply(&add, t(1)).unwrap()),
            ["label: - -> Team: Blue"]
        );
        assert_eq!(inc.apply(&add, t(2)), Err(LifecycleError::Nothing));
    }

    #[test]
    fn close_reasons_read_as_people_write_them() {
        for (text, reason) in [
            ("resolved", CloseReason::Resolved),
            ("False Positive", CloseReason::FalsePositive),
            ("false-positive", CloseReason::FalsePositive),
            ("FALSEPOSITIVE", CloseReason::FalsePositive),
            ("duplicate", CloseReason::Duplicate),
            ("other", CloseReason::Other),
        ] {
            assert_eq!(CloseReason::parse(text), Ok(reason), "{text}");
        }
        assert!(CloseReason::parse("fixed").is_err());
    }

    /// SLA states change as time passes, computed at a given time rather than waited for.
    #[test]
    fn sla_states_follow_the_clock() {
        let policy = SlaPolicy::default();
        let created = t(0);
        let due = policy.due(created, Severity::Critical);
        assert_eq!(due, t(60));
        for (now, state) in [
            (t(0), SlaState::Ok),
            (t(44), SlaState::Ok),
            (t(46), SlaState::AtRisk),
            (t(60), SlaState::AtRisk),
            (t(61), SlaState::Breached),
        ] {
            assert_eq!(sla_state(created, due, None, now), state, "{now}");
        }
        assert_eq!(
            sla_state(created, due, Some(t(50)), t(500)),
            SlaState::Ok,
            "closed in time"
        );
        assert_eq!(
            sla_state(created, due, Some(t(70)), t(500)),
            SlaState::Breached
        );
        // A lower severity moves the due time.
        assert_eq!(policy.due(created, Severity::Low), t(72 * 60));
    }
}
