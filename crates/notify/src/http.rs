//! Webhook, Slack and Teams: a JSON POST each. A webhook's body is watchfloor's own (the
//! delivery, its incidents and links), signed with HMAC-SHA256 when the channel has a secret;
//! Slack and Teams get their incoming-webhook payloads (Block Kit; an Adaptive Card).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use watchfloor_core::channel::{ChannelConfig, ChannelKind};

use crate::escape;
use crate::{Outgoing, SendError};

/// How long a receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) fn payload(kind: ChannelKind, m: &Outgoing) -> Value {
    match kind {
        ChannelKind::Slack => slack(m),
        ChannelKind::Teams => teams(m),
        _ => webhook(m),
    }
}

fn webhook(m: &Outgoing) -> Value {
    if let Some(r) = &m.report {
        return json!({
            "delivery": m.id,
            "kind": "report",
            "summary": m.subject(),
            "organization": r.organization,
            "period": r.period,
            "figures": r.figures,
        });
    }
    json!({
        "delivery": m.id,
        "kind": if m.test { "test" } else if m.digest { "digest" } else { "incident" },
        "summary": m.subject(),
        "incidents": m.items.iter().map(|i| json!({
            "id": i.incident_id,
            "name": i.name,
            "severity": i.severity,
            "organization": i.organization,
            "status": i.status,
            "owner": i.owner,
            "sla": i.sla,
            "link": i.link,
            "rule": i.rule,
            "event": i.trigger,
        })).collect::<Vec<_>>(),
    })
}

/// One line per incident, its provider text escaped by `esc`.
fn lines(m: &Outgoing, esc: fn(&str) -> String) -> Vec<String> {
    if let Some(r) = &m.report {
        return r.summary.iter().map(|l| esc(l)).collect();
    }
    m.items
        .iter()
        .map(|i| {
            format!(
                "{} · incident {} · {}{} · SLA {}{}",
                i.severity,
                i.incident_id,
                esc(&i.name),
                i.organization
                    .as_deref()
                    .map(|o| format!(" · {}", esc(o)))
                    .unwrap_or_default(),
                i.sla,
                i.owner
                    .as_deref()
                    .map(|o| format!(" · owner {}", esc(o)))
                    .unwrap_or_else(|| " · unassigned".into()),
            )
        })
        .collect()
}

fn slack(m: &Outgoing) -> Value {
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{}*", escape::slack(&m.subject()))},
    })];
    for (item, line) in m.items.iter().zip(lines(m, escape::slack)) {
        let text = match &item.link {
            // The link is watchfloor's own; only its label comes from the provider.
            Some(link) => format!("<{link}|open> {line}"),
            None => line,
        };
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    json!({"text": escape::slack(&m.subject()), "blocks": blocks})
}

fn teams(m: &Outgoing) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
        "text": escape::teams(&m.subject()),
    })];
    for line in lines(m, escape::teams) {
        body.push(json!({"type": "TextBlock", "wrap": true, "text": line}));
    }
    let actions: Vec<Value> = m
        .items
        .iter()
        .filter_map(|i| {
            i.link.as_ref().map(|l| {
                json!({"type": "Action.OpenUrl", "title": format!("Open incident {}", i.incident_id), "url": l})
            })
        })
        .take(5)
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": actions,
            }
        }]
    })
}

/// An error with its causes, `: `-joined (reqwest's own says only "error sending request").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

pub(crate) async fn send(channel: &ChannelConfig, m: &Outgoing) -> Result<(), SendError> {
    let url = channel
        .url
        .as_deref()
        .ok_or_else(|| SendError::Config("it has no url".into()))?;
    let body = serde_json::to_vec(&payload(channel.kind, m))
        .map_err(|e| SendError::Config(e.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| SendError::Config(e.without_url().to_string()))?;
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-watchfloor-delivery", &m.id)
        .header("x-watchfloor-timestamp", timestamp.to_string());
    if let Some(secret) = &channel.secret {
        let secret = secret
            .read()
            .map_err(|e| SendError::Config(format!("`secret`: {e}")))?;
        request = request.header(
            "x-watchfloor-signature",
            signature(secret.expose(), timestamp, &body),
        );
    }
    // Errors leave the URL out: Slack's and Teams' carry their token.
    let answer = request
        .body(body)
        .send()
        .await
        .map_err(|e| SendError::Refused(with_causes(&e.without_url())))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let text = answer.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    Err(SendError::Refused(format!(
        "the receiver answered {status}: {}",
        text.trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Item;

    fn message() -> Outgoing {
        Outgoing {
            id: "n-1-2".into(),
            digest: false,
            test: false,
            report: None,
            items: vec![Item {
                incident_id: 7,
                name: "<script>x</script> *bold*".into(),
                severity: "Critical".into(),
                organization: Some("Acme".into()),
                status: "pending".into(),
                owner: None,
                sla: "at-risk".into(),
                link: Some("https://soc.example/incidents/7".into()),
                rule: "escalate".into(),
                trigger: "sla-at-risk".into(),
            }],
        }
    }

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 test case 2 ("Jefe"), with the timestamp and dot folded into the data.
        let sig = signature("Jefe", 0, b"what do ya want for nothing?");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        assert_eq!(
            sig,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_ne!(sig, signature("Jefe", 1, b"what do ya want for nothing?"));
    }

    #[test]
    fn chat_payloads_carry_provider_text_as_text() {
        let m = message();
        let slack = payload(ChannelKind::Slack, &m).to_string();
        assert!(
            !slack.contains("<script>") && !slack.contains("*bold*"),
            "{slack}"
        );
        assert!(slack.contains("<https://soc.example/incidents/7|open>"));
        let teams = payload(ChannelKind::Teams, &m).to_string();
        assert!(
            !teams.contains("<script>") && teams.contains("\\\\*bold\\\\*"),
            "{teams}"
        );
        let hook = payload(ChannelKind::Webhook, &m);
        assert_eq!(hook["incidents"][0]["name"], "<script>x</script> *bold*");
        assert_eq!(hook["delivery"], "n-1-2");
    }
}
