//! Notifications: the configured channels and their state, the deliveries that a `notify`
//! action queued (planned under each channel's hourly limit, digests beyond it; sent; retried
//! with backoff while the receiver fails; given up after the channel's `give_up_after`), a
//! test message, and who may read which.

use std::time::Duration;

use serde::Serialize;
use watchfloor_core::channel::ChannelConfig;
use watchfloor_notify::{Item, Outgoing};
use watchfloor_storage::{
    ChannelStats, Delivery, DeliveryOutcome, Notification, NotificationFilter, Role, Scope,
};

use crate::{Caller, Service, ServiceError};

/// How long a delivery being sent is left alone unless the service is told otherwise (`serve`
/// claims for as long as its lease lasts): one cut off mid-send (the process killed) is sent
/// again after this, under the same id.
pub const CLAIM: Duration = Duration::from_secs(120);
/// Deliveries a channel sends at most per pass.
const PER_PASS: usize = 50;

/// How long after the `attempts`-th failed attempt the next one is: 30 s, doubling, at most an
/// hour.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = attempts.clamp(1, 8) - 1;
    Duration::from_secs((30u64 << doublings).min(3600))
}

/// What a failed send leads to: another attempt after [`backoff`], or, once it has been
/// tried for `give_up_after` since `created`, failed for good.
pub(crate) fn after_failure<'a>(
    error: &'a str,
    created: chrono::DateTime<chrono::Utc>,
    attempts: i64,
    give_up_after: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> DeliveryOutcome<'a> {
    let age = (now - created).to_std().unwrap_or_default();
    if age >= give_up_after {
        DeliveryOutcome::Failed(error)
    } else {
        DeliveryOutcome::Retry(
            error,
            now + chrono::TimeDelta::from_std(backoff(attempts)).unwrap_or_default(),
        )
    }
}

/// A channel as the CLI, the API and the UI show it: no secret, no token-bearing URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelView {
    pub name: String,
    pub kind: String,
    /// Where it delivers, without secrets.
    pub target: String,
    pub max_per_hour: u32,
    pub give_up_after: String,
    pub signed: bool,
    #[serde(flatten)]
    pub stats: ChannelStats,
}

impl Service {
    /// Only callers who see every organization read channels: they carry every one's
    /// incidents.
    pub(crate) fn may_read_channels(&self, caller: &Caller) -> Result<(), ServiceError> {
        match caller.scope {
            Scope::All => Ok(()),
            Scope::Orgs(_) => Err(ServiceError::Forbidden(
                "channels carry every organization's incidents: only users who see all of them read channels".into(),
            )),
        }
    }

    pub(crate) fn channel(&self, name: &str) -> Result<&ChannelConfig, ServiceError> {
        self.channels
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "there is no channel `{name}`; `watchfloor channels list` shows them"
                ))
            })
    }

    /// The configured channels, each with its state.
    pub async fn channel_views(&self, caller: &Caller) -> Result<Vec<ChannelView>, ServiceError> {
        self.may_read_channels(caller)?;
        let stats = self.store.channel_stats(self.now()).await?;
        Ok(self
            .channels
            .iter()
            .map(|c| ChannelView {
                name: c.name.clone(),
                kind: c.kind.as_str().into(),
                target: c.target(),
                max_per_hour: c.max_per_hour,
                give_up_after: humantime::format_duration(c.give_up_after).to_string(),
                signed: c.secret.is_some(),
                stats: stats
                    .iter()
                    .find(|s| s.channel == c.name)
                    .cloned()
                    .unwrap_or_else(|| ChannelStats {
                        channel: c.name.clone(),
                        ..ChannelStats::default()
                    }),
            })
            .collect())
    }

    /// Sends a test message on a channel now (not through the outbox); the receiver's error
    /// if it fails. Administrators only.
    pub async fn test_channel(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        if caller.role != Role::Admin {
            return Err(ServiceError::Forbidden(
                "only admins send test messages".into(),
            ));
        }
        let channel = self.channel(name)?;
        let message = Outgoing {
            id: format!(
                "test-{}",
                self.now().timestamp_nanos_opt().unwrap_or_default()
            ),
            digest: false,
            test: true,
            items: Vec::new(),
            report: None,
        };
        watchfloor_notify::send(channel, &message)
            .await
            .map_err(|e| ServiceError::Failed(format!("channel {name}: {e}")))
    }

    /// Notifications of the incidents the caller sees, newest first.
    pub async fn notifications(
        &self,
        caller: &Caller,
        mut filter: NotificationFilter,
    ) -> Result<Vec<Notification>, ServiceError> {
        if let Some(status) = &filter.status
            && !["pending", "sent", "failed"].contains(&status.as_str())
        {
            return Err(ServiceError::Invalid(format!(
                "`{status}` is not a notification status: pending, sent or failed"
            )));
        }
        if let Some(id) = filter.incident {
            self.visible(caller, id).await?;
        }
        filter.scope = caller.scope.clone();
        filter.limit = Some(filter.limit.unwrap_or(100).min(1_000));
        Ok(self.store.notifications(&filter).await?)
    }

    /// Sends the scheduled reports that are due, then plans and sends what is due on every
    /// channel; how many messages went out.
    pub async fn deliver_notifications(&self) -> Result<usize, ServiceError> {
        self.deliver_notifications_until(&tokio::sync::watch::channel(false).1)
            .await
    }

    /// As [`Service::deliver_notifications`], until `stop` turns true: a message being sent
    /// then is let finish and recorded (its receiver has it: it must not go out again), and
    /// those claimed but not yet tried are left due at once for the next process.
    pub async fn deliver_notifications_until(
        &self,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<usize, ServiceError> {
        // Scheduled reports first; one that cannot be read or queued holds up no incident's.
        let mut sent = match self.send_scheduled_reports(stop).await {
            Ok(n) => n,
            Err(error) => {
                tracing::error!(%error, "cannot send the scheduled reports; trying again");
                0
            }
        };
        for channel in self.channels.iter() {
            if *stop.borrow() {
                break;
            }
            let now = self.now();
            self.store
                .plan_deliveries(&channel.name, channel.max_per_hour, now)
                .await?;
            let retry_at = now + chrono::TimeDelta::from_std(self.claim).unwrap_or_default();
            let due = self
                .store
                .claim_deliveries(&channel.name, now, retry_at, PER_PASS)
                .await?;
            for (n, delivery) in due.iter().enumerate() {
                if *stop.borrow() {
                    let now = self.now();
                    for untried in &due[n..] {
                        self.store
                            .finish_delivery(&untried.id, DeliveryOutcome::Untried(now), now)
                            .await?;
                    }
                    break;
                }
                let message = self.message(delivery).await?;
                let outcome = watchfloor_notify::send(channel, &message).await;
                let now = self.now();
                match outcome {
                    Ok(()) => {
                        self.store
                            .finish_delivery(&delivery.id, DeliveryOutcome::Sent, now)
                            .await?;
                        sent += 1;
                    }
                    Err(e) => {
                        let error = e.to_string();
                        tracing::warn!(channel = %channel.name, delivery = %delivery.id, %error, "a notification was not delivered");
                        let outcome = after_failure(
                            &error,
                            delivery.created,
                            delivery.attempts,
                            channel.give_up_after,
                            now,
                        );
                        self.store
                            .finish_delivery(&delivery.id, outcome, now)
                            .await?;
                    }
                }
            }
        }
        Ok(sent)
    }

    /// The message of a delivery: each incident as it stands now.
    async fn message(&self, delivery: &Delivery) -> Result<Outgoing, ServiceError> {
        let now = self.now();
        // A digest's incidents are read together.
        let ids: Vec<i64> = delivery
            .notifications
            .iter()
            .map(|n| n.incident_id)
            .collect();
        let incidents: std::collections::HashMap<i64, watchfloor_core::Incident> = self
            .store
            .incidents_by_id(&ids)
            .await?
            .into_iter()
            .map(|i| (i.id, i))
            .collect();
        let mut items = Vec::with_capacity(delivery.notifications.len());
        for n in &delivery.notifications {
            let incident = incidents.get(&n.incident_id);
            let link = self
                .public_url
                .as_deref()
                .map(|u| format!("{u}/incidents/{}", n.incident_id));
            items.push(match incident {
                Some(i) => Item {
                    incident_id: i.id,
                    name: i.name.clone(),
                    severity: i.severity.label().to_string(),
                    organization: i.organization.clone(),
                    status: i.status.as_str().to_string(),
                    owner: i.owner.clone(),
                    sla: i.sla_state(now).as_str().to_string(),
                    link,
                    rule: n.rule.clone(),
                    trigger: n.trigger.clone(),
                },
                // Deleted since: named by what the notification kept.
                None => Item {
                    incident_id: n.incident_id,
                    name: n.incident_name.clone(),
                    severity: String::new(),
                    organization: n.organization.clone(),
                    status: "deleted".into(),
                    owner: None,
                    sla: String::new(),
                    link: None,
                    rule: n.rule.clone(),
                    trigger: n.trigger.clone(),
                },
            });
        }
        Ok(Outgoing {
            id: delivery.id.clone(),
            digest: delivery.digest,
            test: false,
            items,
            report: None,
        })
    }
}
