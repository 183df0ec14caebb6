//! `watchfloor channels` and `watchfloor notifications`: the configured notification channels
//! with their state, a test message, and the notifications rules queued.

use serde_json::json;
use watchfloor_service::Service;
use watchfloor_storage::NotificationFilter;

use crate::output::headed_table as table;
use crate::work::{failed, local};
use crate::{Failure, ListOutput};

#[derive(clap::Subcommand)]
pub enum ChannelsAction {
    /// The channels of the config file: kind, where they deliver (no secrets), the hourly
    /// limit, and their state (waiting, sent in the last hour, failed in the last day).
    List {
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// Sends a test message on a channel now; exits 1 with the receiver's error if it fails.
    Test {
        /// The channel's name, as `channels list` shows it.
        name: String,
    },
}

#[derive(clap::Subcommand)]
pub enum NotificationsAction {
    /// Notifications, newest first.
    List {
        /// One channel only.
        #[arg(long, value_name = "NAME")]
        channel: Option<String>,
        /// pending, sent or failed.
        #[arg(long, value_name = "S")]
        status: Option<String>,
        /// One incident's only (its ID).
        #[arg(long, value_name = "ID")]
        incident: Option<i64>,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
}

fn json_text(v: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(v)
        .map_err(|e| Failure::Command(anyhow::anyhow!("cannot write JSON: {e}")))
}

/// Runs a `channels` command as a local administrator; the text to print.
pub async fn channels(service: &Service, action: ChannelsAction) -> Result<String, Failure> {
    let admin = local(None);
    match action {
        ChannelsAction::List { output } => {
            let channels = service.channel_views(&admin).await.map_err(failed)?;
            if output == ListOutput::Json {
                return json_text(&channels);
            }
            if channels.is_empty() {
                return Ok(
                    "no channels: add [[channels]] to the config file (see docs/notifications.md)"
                        .into(),
                );
            }
            let rows = channels
                .iter()
                .map(|c| {
                    json!({"Name": c.name, "Kind": c.kind, "Target": c.target,
                        "Max/hour": c.max_per_hour, "Waiting": c.stats.waiting,
                        "Sent (1h)": c.stats.sent_last_hour,
                        "Failed (24h)": c.stats.failed_last_day,
                        "Last error": c.stats.last_error.clone().unwrap_or_default()})
                })
                .collect();
            Ok(output.present(table(
                "Channels",
                rows,
                &[
                    "Name",
                    "Kind",
                    "Target",
                    "Max/hour",
                    "Waiting",
                    "Sent (1h)",
                    "Failed (24h)",
                    "Last error",
                ],
            )))
        }
        ChannelsAction::Test { name } => {
            service
                .test_channel(&admin, &name)
                .await
                .map_err(|e| Failure::Command(anyhow::anyhow!("{e}")))?;
            Ok(format!("sent a test message on channel {name}"))
        }
    }
}

/// Runs a `notifications` command as a local administrator; the text to print.
pub async fn notifications(
    service: &Service,
    action: NotificationsAction,
) -> Result<String, Failure> {
    let admin = local(None);
    match action {
        NotificationsAction::List {
            channel,
            status,
            incident,
            limit,
            output,
        } => {
            let found = service
                .notifications(
                    &admin,
                    NotificationFilter {
                        channel,
                        status,
                        incident,
                        limit: Some(limit),
                        ..NotificationFilter::default()
                    },
                )
                .await
                .map_err(failed)?;
            if output == ListOutput::Json {
                return json_text(&found);
            }
            let rows = found
                .iter()
                .map(|n| {
                    json!({"Id": n.id, "Channel": n.channel, "Incident": n.incident_id,
                        "Name": n.incident_name, "Rule": n.rule, "Event": n.trigger,
                        "Status": n.status, "Created": n.created.to_rfc3339(),
                        "Delivery": n.delivery.clone().unwrap_or_default()})
                })
                .collect();
            Ok(output.present(table(
                "Notifications",
                rows,
                &[
                    "Id", "Channel", "Incident", "Name", "Rule", "Event", "Status", "Created",
                    "Delivery",
                ],
            )))
        }
    }
}
