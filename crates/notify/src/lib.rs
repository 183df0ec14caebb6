//! Notification messages and their delivery: what a channel sends for a delivery (one
//! incident, or a digest of many), rendered for its kind with provider text escaped for that
//! format, and sent over SMTP (lettre), or POSTed as a webhook, Slack or Teams payload.
//!
//! Every message carries the delivery's stable id (`Message-ID`, `X-Watchfloor-Delivery`), so
//! that a receiver can drop a repeat sent after a crash mid-send.

mod email;
pub mod escape;
mod http;
pub mod report_page;

use serde::Serialize;
use watchfloor_core::channel::{ChannelConfig, ChannelKind};

/// What a message says about one incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub incident_id: i64,
    /// Provider text: escaped wherever it is shown.
    pub name: String,
    pub severity: String,
    pub organization: Option<String>,
    pub status: String,
    pub owner: Option<String>,
    /// `ok`, `at-risk` or `breached`.
    pub sla: String,
    /// The incident in the UI, when `[server] public_url` is set.
    pub link: Option<String>,
    /// The rule that asked for it, and what fired it.
    pub rule: String,
    pub trigger: String,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outgoing {
    /// Stable across attempts.
    pub id: String,
    pub digest: bool,
    /// A `channels test` message, about no incident.
    pub test: bool,
    pub items: Vec<Item>,
    /// A scheduled customer report, about no incident.
    pub report: Option<Box<ReportMessage>>,
}

/// What a message carrying a customer report says: a summary, the report's page and its
/// incidents' CSV (attached to an e-mail), and its figures (in a webhook's body).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportMessage {
    pub organization: String,
    /// `2026-11` or `2026-11-03`.
    pub period: String,
    /// Plain text, one figure a line; no provider text.
    pub summary: Vec<String>,
    #[serde(skip)]
    pub html: String,
    #[serde(skip)]
    pub csv: String,
    pub figures: serde_json::Value,
}

/// Why a message was not delivered: the receiver's answer, or why it could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the channel is not usable: {0}")]
    Config(String),
    #[error("{0}")]
    Refused(String),
}

impl Outgoing {
    /// A one-line summary: the subject of an e-mail, the fallback text of a chat message.
    pub fn subject(&self) -> String {
        if self.test {
            return "watchfloor: a test message".into();
        }
        if let Some(r) = &self.report {
            return format!(
                "watchfloor report: {}, {}",
                one_line(&r.organization),
                r.period
            );
        }
        match self.items.as_slice() {
            [one] => format!(
                "[{}] incident {}: {}{}",
                one.severity,
                one.incident_id,
                one_line(&one.name),
                one.organization
                    .as_deref()
                    .map(|o| format!(" ({})", one_line(o)))
                    .unwrap_or_default()
            ),
            items => format!("watchfloor digest: {} incidents", items.len()),
        }
    }
}

/// Text on one line (a CR or LF in a subject would start a header).
fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How long one message may take to send, whatever the receiver does.
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends `message` on `channel`, within [`SEND_TIMEOUT`].
pub async fn send(channel: &ChannelConfig, message: &Outgoing) -> Result<(), SendError> {
    let sending = async {
        match channel.kind {
            ChannelKind::Email => email::send(channel, message).await,
            ChannelKind::Webhook | ChannelKind::Slack | ChannelKind::Teams => {
                http::send(channel, message).await
            }
        }
    };
    tokio::time::timeout(SEND_TIMEOUT, sending)
        .await
        .unwrap_or_else(|_| {
            Err(SendError::Refused(format!(
                "the receiver did not take the message within {} s",
                SEND_TIMEOUT.as_secs()
            )))
        })
}

/// The body a channel of `kind` posts (webhook, Slack, Teams), as documented in
/// `docs/notifications.md`.
pub fn payload(kind: ChannelKind, message: &Outgoing) -> serde_json::Value {
    http::payload(kind, message)
}

/// The signature header's value of a webhook body: `sha256=` and the hex HMAC-SHA256 of
/// `{timestamp}.{body}` under the channel's secret.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    http::signature(secret, timestamp, body)
}
