//! Mirroring with the FES Portal. Out: a close transitions the ARO (to the resolution the
//! instance's `close_resolutions` gives its reason) with the close notes as its comment, a
//! reopen transitions it back to Unresolved, and a mirrored note becomes an ARO comment. In:
//! open incidents' AROs are read in bulk ([`pull_many`]); a remote resolution closes an
//! incident, and changes of status or analyst notes become war-room entries. The documented
//! API cannot list an ARO's comments, so remote comments are not mirrored in.

use serde_json::{Value, json};
use watchfloor_core::CloseReason;

use super::client::Portal;
use super::config::CloseResolutions;
use crate::{CommandError, OpenAlert, Outgoing, Pushed, RemoteChange};

/// The resolutions of an ARO that is still open: what the bulk read lists.
const OPEN_RESOLUTIONS: [&str; 2] = ["Unresolved", "Help Requested"];
/// The portal's `since`/`until` format (UTC).
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The part of an ARO that mirrors in.
pub(super) fn state(aro: &Value) -> Value {
    json!({
        "resolution": aro["resolution"],
        "status": aro["status"],
        "analyst_notes": aro["analyst_notes"],
    })
}

pub async fn push(
    portal: &Portal,
    resolutions: &CloseResolutions,
    aro_id: &str,
    change: &Outgoing,
    send_by: Option<std::time::Instant>,
) -> Result<Pushed, CommandError> {
    match change {
        Outgoing::Close { reason, notes } => {
            let wanted = resolutions.of(*reason);
            // A push repeated after a crash finds the ARO already transitioned.
            let aro = portal.aro(aro_id).await?;
            if aro["resolution"] == wanted {
                return Ok(Pushed {
                    text: format!("ARO {aro_id} is already {wanted} in the FES Portal"),
                    seen: Some(state(&aro)),
                });
            }
            // The local close wins over a different remote resolution; the entry says both.
            let was = match aro["resolution"].as_str() {
                Some(r) if r != "Unresolved" => format!(" (it was {r} there)"),
                _ => String::new(),
            };
            let body = Portal::transition_body(wanted, notes.as_deref().map(|n| (n, false)));
            let aro = crate::fenced(send_by, portal.transition(aro_id, &body)).await?;
            Ok(Pushed {
                text: format!("ARO {aro_id} transitioned to {wanted} in the FES Portal{was}"),
                seen: aro.is_object().then(|| state(&aro)),
            })
        }
        Outgoing::Reopen => {
            // A push repeated after a crash finds the ARO already unresolved.
            let aro = portal.aro(aro_id).await?;
            let was = match aro["resolution"].as_str() {
                Some("Unresolved") => {
                    return Ok(Pushed {
                        text: format!("ARO {aro_id} is already Unresolved in the FES Portal"),
                        seen: Some(state(&aro)),
                    });
                }
                Some(r) => format!(" (it was {r})"),
                None => String::new(),
            };
            let body = Portal::transition_body("Unresolved", None);
            let aro = crate::fenced(send_by, portal.transition(aro_id, &body)).await?;
            Ok(Pushed {
                text: format!(
                    "ARO {aro_id} transitioned back to Unresolved in the FES Portal{was}"
                ),
                seen: aro.is_object().then(|| state(&aro)),
            })
        }
        Outgoing::Note { text } => {
            crate::fenced(send_by, portal.comment(aro_id, text, false)).await?;
            Ok(Pushed {
                text: format!("the note was added to ARO {aro_id} as a comment"),
                seen: None,
            })
        }
    }
}

/// Reads the state of `open` AROs, in order. The open AROs of each stretch of time the
/// incidents span are listed (`resolution`, `since`, `until`, 500 a page; see
/// [`crate::bulk`]), so a hundred thousand open incidents cost a few hundred requests rather
/// than one each. An ARO the listings do not show (resolved or dismissed since, or in a
/// stretch too small to list) is read alone.
pub async fn pull_many(
    portal: &Portal,
    open: &[OpenAlert],
) -> Result<Vec<Option<RemoteChange>>, CommandError> {
    let refs: Vec<&OpenAlert> = open.iter().collect();
    let listed = crate::bulk::read_spans(&refs, |first, last, cap| async move {
        let mut listed = crate::bulk::Listed {
            alerts: Vec::new(),
            cut: false,
        };
        for resolution in OPEN_RESOLUTIONS {
            let filters = [
                ("resolution".to_string(), resolution.to_string()),
                ("since".to_string(), first.format(TIME_FORMAT).to_string()),
                (
                    "until".to_string(),
                    (last + chrono::TimeDelta::seconds(1))
                        .format(TIME_FORMAT)
                        .to_string(),
                ),
            ];
            let page = portal.newest_aros(&filters, cap).await?;
            listed.cut |= page.more;
            listed.alerts.extend(
                page.items
                    .into_iter()
                    .filter_map(|aro| Some((aro["ID"].as_str()?.to_string(), aro))),
            );
        }
        Ok(listed)
    })
    .await?;
    let mut out = Vec::with_capacity(open.len());
    for alert in open {
        out.push(match listed.get(&alert.external_id) {
            Some(aro) => compare(aro, &alert.seen),
            None => pull(portal, &alert.external_id, &alert.seen).await?,
        });
    }
    Ok(out)
}

pub async fn pull(
    portal: &Portal,
    aro_id: &str,
    seen: &Value,
) -> Result<Option<RemoteChange>, CommandError> {
    let aro = portal.aro(aro_id).await?;
    Ok(compare(&aro, seen))
}

/// What changed in `aro` since `seen`, if anything.
fn compare(aro: &Value, seen: &Value) -> Option<RemoteChange> {
    let now = state(aro);
    let before = state(seen);
    if now == before {
        return None;
    }
    let text = crate::shown;
    let mut change = RemoteChange {
        seen: now.clone(),
        provider: Some(super::fetch::provider_times(aro)),
        ..RemoteChange::default()
    };
    for field in ["status", "resolution", "analyst_notes"] {
        if now[field] != before[field] {
            change.notes.push(format!(
                "FES Portal: {field} {} → {}",
                text(&before[field]),
                text(&now[field])
            ));
        }
    }
    change.close = match now["resolution"].as_str() {
        Some("Resolved") if before["resolution"] != "Resolved" => Some((
            CloseReason::Resolved,
            Some("resolved in the FES Portal".into()),
        )),
        Some("Dismissed") if before["resolution"] != "Dismissed" => Some((
            CloseReason::Other,
            Some("dismissed in the FES Portal".into()),
        )),
        _ => None,
    };
    Some(change)
}
