//! Mirroring with SWS. Out: a close sends `UpdateIncidentWorkflow` with status Closed, the
//! mapped resolution and the close notes as its comment; a reopen sends status Open and
//! resolution Unresolved; a mirrored note is a workflow comment.
//! In: a remote Closed closes the local incident, and new remote comments become war-room
//! entries. Comments can be read back, so a repeated push never adds a comment twice. Where
//! the incident list was read (bulk mirroring), its `UpdateTimestampGMT` is kept as the
//! provider's last update, and, of an incident found Closed, as its resolution: the workflow
//! itself carries no time.

use std::collections::HashMap;

use serde_json::{Value, json};
use watchfloor_core::CloseReason;
use watchfloor_core::xml::Element;

use super::commands::{SymantecMssInstance, Workflow};
use crate::{CommandError, OpenAlert, Outgoing, Pushed, RemoteChange};

/// Summaries `IncidentGetList` sends at most in one answer.
const LIST_PAGE: u32 = 500;
/// Answers of `IncidentGetList` one bulk read asks for at most.
const LIST_PAGES: usize = 200;

/// The SWS resolution a close reason maps to.
pub fn resolution(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::Resolved | CloseReason::Other => "Resolved",
        CloseReason::FalsePositive => "False Positive",
        CloseReason::Duplicate => "Duplicate",
    }
}

/// The part of an incident that mirrors in: workflow status and resolution, and comments.
fn state(inc: &Element) -> Value {
    let workflow = inc.child("WorkFlowDetail");
    let field = |name: &str| {
        workflow
            .and_then(|w| w.child_text(name))
            .unwrap_or_default()
    };
    let comments: Vec<&str> = inc
        .child("IncidentComments")
        .map(|c| {
            c.children_named("IncidentComment")
                .filter_map(|c| c.child_text("Comment"))
                .collect()
        })
        .unwrap_or_default();
    json!({"status": field("Status"), "resolution": field("Resolution"), "comments": comments})
}

/// The provider's times from a listed `UpdateTimestampGMT`: its last update, and if the
/// workflow is `closed`, when it was resolved (the last update of a Closed incident, as FES's
/// last update of a resolved ARO without a resolution time).
fn provider_times(updated: &str, closed: bool) -> watchfloor_core::ProviderTimes {
    let updated = super::client::utc_time(updated);
    watchfloor_core::ProviderTimes {
        updated,
        resolved: updated.filter(|_| closed),
        acknowledged: None,
    }
}

/// What mirroring compares of a stored state: all of a workflow state read before; of a
/// fetched summary (no workflow: its first read is the baseline), nothing.
pub(super) fn mirror_state(seen: Value) -> Value {
    match seen.get("comments") {
        Some(_) => seen,
        None => json!({}),
    }
}

fn comments(seen: &Value) -> Vec<&str> {
    seen["comments"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl SymantecMssInstance {
    pub(super) async fn push_change(
        &self,
        number: &str,
        change: &Outgoing,
        send_by: Option<std::time::Instant>,
    ) -> Result<Pushed, CommandError> {
        let before = state(&self.sws().incident(number).await?);
        let text = match change {
            Outgoing::Close { reason, notes } => {
                let wanted = resolution(*reason);
                let notes_there = notes
                    .as_deref()
                    .is_none_or(|n| comments(&before).contains(&n));
                if before["status"] == "Closed" && before["resolution"] == wanted && notes_there {
                    return Ok(Pushed {
                        text: format!(
                            "incident {number} is already Closed as {wanted} in Symantec MSS"
                        ),
                        seen: Some(before),
                    });
                }
                let workflow = Workflow {
                    status: Some("Closed"),
                    resolution: Some(wanted),
                    comments: notes.as_deref(),
                    ..Workflow::default()
                };
                crate::fenced(send_by, self.confirmed_update(number, &workflow)).await?;
                format!("incident {number} closed as {wanted} in Symantec MSS")
            }
            Outgoing::Reopen => {
                if before["status"] != "Closed" {
                    return Ok(Pushed {
                        text: format!(
                            "incident {number} is already open in Symantec MSS (workflow status {})",
                            before["status"].as_str().unwrap_or("-")
                        ),
                        seen: Some(before),
                    });
                }
                let workflow = Workflow {
                    status: Some("Open"),
                    resolution: Some("Unresolved"),
                    ..Workflow::default()
                };
                crate::fenced(send_by, self.confirmed_update(number, &workflow)).await?;
                format!(
                    "incident {number} opened again in Symantec MSS (status Open, resolution Unresolved)"
                )
            }
            Outgoing::Note { text } => {
                // Read back before writing: a push repeated after a crash finds its comment.
                if comments(&before).contains(&text.as_str()) {
                    return Ok(Pushed {
                        text: format!("incident {number} already has this comment in Symantec MSS"),
                        seen: Some(before),
                    });
                }
                let workflow = Workflow {
                    comments: Some(text),
                    ..Workflow::default()
                };
                crate::fenced(send_by, self.confirmed_update(number, &workflow)).await?;
                format!("the note was added to incident {number} as a workflow comment")
            }
        };
        let after = state(&self.sws().incident(number).await?);
        Ok(Pushed {
            text,
            seen: Some(after),
        })
    }

    pub(super) async fn pull_change(
        &self,
        number: &str,
        seen: &Value,
    ) -> Result<Option<RemoteChange>, CommandError> {
        let now = state(&self.sws().incident(number).await?);
        // Before the first sync, `seen` is the fetched summary, which has no workflow: the
        // first read is the baseline, and only a close counts.
        if seen.get("comments").is_none() {
            let closed = now["status"] == "Closed";
            let baseline = RemoteChange {
                seen: now.clone(),
                baseline: !closed,
                ..RemoteChange::default()
            };
            return Ok(Some(if closed {
                self.closing(baseline, &now, &json!({}))
            } else {
                baseline
            }));
        }
        let before = seen.clone();
        if now == before {
            return Ok(None);
        }
        let mut change = RemoteChange {
            seen: now.clone(),
            ..RemoteChange::default()
        };
        let known = comments(&before);
        for c in comments(&now).into_iter().filter(|c| !known.contains(c)) {
            change.notes.push(format!("Symantec MSS comment: {c}"));
        }
        if now["status"] != before["status"] {
            change.notes.push(format!(
                "Symantec MSS: workflow status {} → {}",
                before["status"].as_str().unwrap_or("-"),
                now["status"].as_str().unwrap_or("-")
            ));
        }
        Ok(Some(self.closing(change, &now, &before)))
    }

    /// Reads the state of `open` incidents, in order. SWS lists incidents with the time each
    /// was last updated (`UpdateTimestampGMT`) but without their workflow, so the list, from
    /// the oldest open incident on, says which changed; only those, and incidents never read
    /// before (their first read is the baseline) or not in the list, are read one by one
    /// (`IncidentWorkflowQuery`).
    pub(super) async fn pull_many_changes(
        &self,
        open: &[OpenAlert],
    ) -> Result<Vec<Option<RemoteChange>>, CommandError> {
        let mut updated: HashMap<String, String> = HashMap::new();
        if let (Some(first), Some(last)) = (
            open.iter().map(|a| a.occurred).min(),
            open.iter().map(|a| a.occurred).max(),
        ) && open.len() >= crate::bulk::BULK_MIN
        {
            let mut start = first;
            for _ in 0..LIST_PAGES {
                let page = self
                    .sws()
                    .incidents(start, &[], None, Some(LIST_PAGE))
                    .await?;
                let mut newest = start;
                for summary in &page {
                    if let (Some(number), Some(at)) = (
                        summary["IncidentNumber"].as_str(),
                        summary["UpdateTimestampGMT"].as_str(),
                    ) {
                        updated.insert(number.to_string(), at.to_string());
                    }
                    if let Some(created) = summary["TimeCreated"]
                        .as_str()
                        .and_then(super::client::utc_time)
                    {
                        newest = newest.max(created);
                    }
                }
                // A short answer is the last; so is one that does not move past its start
                // (more than a page created at one instant: those are read one by one).
                if page.len() < LIST_PAGE as usize || newest <= start || newest > last {
                    break;
                }
                start = newest;
            }
        }
        let mut out = Vec::with_capacity(open.len());
        for alert in open {
            let listed = updated.get(&alert.external_id);
            if listed.is_some() && alert.seen["updated"].as_str() == listed.map(String::as_str) {
                out.push(None);
                continue;
            }
            let change = self.pull_change(&alert.external_id, &alert.seen).await?;
            // Remember the update time the list gave, so the next cycle can tell from the list;
            // it is the provider's last update, and the resolution of one found Closed.
            out.push(match (change, listed) {
                (Some(mut change), Some(at)) => {
                    change.seen["updated"] = json!(at);
                    change.provider = Some(provider_times(at, change.seen["status"] == "Closed"));
                    Some(change)
                }
                (None, Some(at)) => {
                    let mut seen = alert.seen.clone();
                    seen["updated"] = json!(at);
                    Some(RemoteChange {
                        provider: Some(provider_times(at, seen["status"] == "Closed")),
                        seen,
                        baseline: true,
                        ..RemoteChange::default()
                    })
                }
                (change, None) => change,
            });
        }
        Ok(out)
    }

    /// Adds the close to `change` if the workflow became Closed.
    fn closing(&self, mut change: RemoteChange, now: &Value, before: &Value) -> RemoteChange {
        if now["status"] == "Closed" && before["status"] != "Closed" {
            let reason = match now["resolution"].as_str() {
                Some("False Positive") => CloseReason::FalsePositive,
                Some("Duplicate") => CloseReason::Duplicate,
                Some("Resolved") => CloseReason::Resolved,
                _ => CloseReason::Other,
            };
            change.close = Some((reason, Some("closed in Symantec MSS".into())));
        }
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What mirroring keeps of a stored state: a fetched summary (no workflow read yet) as
    /// nothing, which still reads as the first read; a workflow state whole.
    #[test]
    fn mirroring_keeps_a_state_and_drops_a_summary() {
        let summary =
            json!({"IncidentNumber": "7781200", "UpdateTimestampGMT": "2024-05-02T13:56:00.000"});
        assert_eq!(mirror_state(summary), json!({}));
        assert!(
            json!({}).get("comments").is_none(),
            "the first read is the baseline"
        );
        let state = json!({"status": "Open", "resolution": "Unresolved", "comments": ["x"], "updated": "t"});
        assert_eq!(mirror_state(state.clone()), state);
    }

    #[test]
    fn close_reasons_map_to_resolutions() {
        for (reason, expected) in [
            (CloseReason::Resolved, "Resolved"),
            (CloseReason::Other, "Resolved"),
            (CloseReason::FalsePositive, "False Positive"),
            (CloseReason::Duplicate, "Duplicate"),
        ] {
            assert_eq!(resolution(reason), expected);
        }
    }
}
