//! Notifications as stored: the outbox a `notify` action writes to, and the deliveries that
//! carry it (one notification each, or a digest once a channel is past its hourly limit).

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, parse_ts};
use crate::base::{Tx, ts};
use crate::{
    BoxFuture, ChannelStats, Delivery, DeliveryOutcome, Notification, NotificationFilter,
    NotifyStore, ReportSend, Scope, StoreError,
};

const REPORT_SEND_COLUMNS: &str =
    "id, organization, channel, period, status, attempts, created, sent, last_error";

fn report_send_from_row(r: &AnyRow) -> Result<ReportSend, StoreError> {
    Ok(ReportSend {
        id: r.try_get("id")?,
        organization: r.try_get("organization")?,
        channel: r.try_get("channel")?,
        period: r.try_get("period")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        created: parse_ts(&r.try_get::<String, _>("created")?)?,
        sent: super::parse_opt_ts(r.try_get("sent")?)?,
        last_error: r.try_get("last_error")?,
    })
}

/// A channel's entry of `out`, made empty if it has none yet.
fn stat(
    out: &mut std::collections::BTreeMap<String, ChannelStats>,
    channel: String,
) -> &mut ChannelStats {
    out.entry(channel.clone()).or_insert_with(|| ChannelStats {
        channel,
        ..ChannelStats::default()
    })
}

const NOTIFICATION_COLUMNS: &str = "n.id, n.channel, n.incident_id, n.rule, n.trigger, n.created, \
     n.delivery, n.status, i.organization, i.name";

fn notification_from_row(r: &AnyRow) -> Result<Notification, StoreError> {
    Ok(Notification {
        id: r.try_get("id")?,
        channel: r.try_get("channel")?,
        incident_id: r.try_get("incident_id")?,
        rule: r.try_get("rule")?,
        trigger: r.try_get("trigger")?,
        created: parse_ts(&r.try_get::<String, _>("created")?)?,
        delivery: r.try_get("delivery")?,
        status: r.try_get("status")?,
        organization: r.try_get("organization")?,
        incident_name: r.try_get::<Option<String>, _>("name")?.unwrap_or_default(),
    })
}

/// Queues a notification in `tx` (for a `schedule` event, only if this rule has not notified
/// `channel` of this incident before).
pub(super) async fn queue(
    tx: &mut Tx,
    channel: &str,
    incident_id: i64,
    rule: &str,
    trigger: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if trigger == "schedule" {
        let before: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM notifications WHERE channel = $1 AND incident_id = $2 AND rule = $3 LIMIT 1",
        )
        .bind(channel)
        .bind(incident_id)
        .bind(rule)
        .fetch_optional(&mut **tx)
        .await?;
        if before.is_some() {
            return Ok(());
        }
    }
    sqlx::query(
        "INSERT INTO notifications (channel, incident_id, rule, trigger, created, status) \
         VALUES ($1, $2, $3, $4, $5, 'pending')",
    )
    .bind(channel)
    .bind(incident_id)
    .bind(rule)
    .bind(trigger)
    .bind(ts(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl NotifyStore for SqlStore {
    fn queue_report_send<'a>(
        &'a self,
        send: &'a ReportSend,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            // Asked every pass while it is due: a read answers, without the writer's lock.
            let known: Option<String> =
                sqlx::query_scalar("SELECT id FROM report_sends WHERE id = $1")
                    .bind(&send.id)
                    .fetch_optional(&self.pool)
                    .await?;
            if known.is_some() {
                return Ok(false);
            }
            let mut tx = self.write().await?;
            let made = sqlx::query(
                "INSERT INTO report_sends (id, organization, channel, period, status, attempts, \
                 next_attempt, created) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&send.id)
            .bind(&send.organization)
            .bind(&send.channel)
            .bind(&send.period)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(made == 1)
        })
    }

    fn report_sends_known<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut q = self.sql("SELECT id FROM report_sends WHERE id IN (");
            for (n, id) in ids.iter().enumerate() {
                q.push(if n == 0 { "" } else { ", " }).push_bind(id.clone());
            }
            q.push(")");
            Ok(q.build_query_scalar().fetch_all(&self.pool).await?)
        })
    }

    fn claim_report_sends(
        &self,
        now: DateTime<Utc>,
        retry_at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<ReportSend>, StoreError>> {
        Box::pin(async move {
            let due: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM report_sends WHERE status = 'pending' AND next_attempt <= $1 \
                 ORDER BY created, id LIMIT 20",
            )
            .bind(ts(now))
            .fetch_all(&self.pool)
            .await?;
            let mut out = Vec::new();
            for id in due {
                let mut tx = self.write().await?;
                // Claimed only if still due: of two processes, one moves it and one finds
                // nothing to move.
                let claimed = sqlx::query(
                    "UPDATE report_sends SET next_attempt = $1, attempts = attempts + 1 \
                     WHERE id = $2 AND status = 'pending' AND next_attempt <= $3",
                )
                .bind(ts(retry_at))
                .bind(&id)
                .bind(ts(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 1 {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {REPORT_SEND_COLUMNS} FROM report_sends WHERE id = $1"
                    )))
                    .bind(&id)
                    .fetch_one(&mut *tx)
                    .await?;
                    out.push(report_send_from_row(&row)?);
                }
                tx.commit().await?;
            }
            Ok(out)
        })
    }

    fn finish_report_send<'a>(
        &'a self,
        id: &'a str,
        outcome: DeliveryOutcome<'a>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let q = match outcome {
                DeliveryOutcome::Sent => sqlx::query(
                    "UPDATE report_sends SET status = 'sent', sent = $1, last_error = NULL WHERE id = $2",
                )
                .bind(ts(now))
                .bind(id),
                DeliveryOutcome::Retry(error, at) => sqlx::query(
                    "UPDATE report_sends SET next_attempt = $1, last_error = $2 WHERE id = $3",
                )
                .bind(ts(at))
                .bind(crate::base::stored_text(error))
                .bind(id),
                DeliveryOutcome::Failed(error) => sqlx::query(
                    "UPDATE report_sends SET status = 'failed', last_error = $1, sent = $2 WHERE id = $3",
                )
                .bind(crate::base::stored_text(error))
                .bind(ts(now))
                .bind(id),
                DeliveryOutcome::Untried(at) => sqlx::query(
                    "UPDATE report_sends SET next_attempt = $1, attempts = attempts - 1 WHERE id = $2",
                )
                .bind(ts(at))
                .bind(id),
            };
            q.execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn report_sends(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ReportSend>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {REPORT_SEND_COLUMNS} FROM report_sends ORDER BY created DESC, id DESC LIMIT $1"
            )))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(report_send_from_row).collect()
        })
    }

    fn plan_deliveries<'a>(
        &'a self,
        channel: &'a str,
        max_per_hour: u32,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            // Looked for first without the writer's lock, which an idle worker should not take
            // every pass.
            let any: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM notifications WHERE channel = $1 AND delivery IS NULL LIMIT 1",
            )
            .bind(channel)
            .fetch_optional(&self.pool)
            .await?;
            if any.is_none() {
                return Ok(0);
            }
            let mut tx = self.write().await?;
            let waiting: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM notifications WHERE channel = $1 AND delivery IS NULL ORDER BY id LIMIT 10000",
            )
            .bind(channel)
            .fetch_all(&mut *tx)
            .await?;
            if waiting.is_empty() {
                return Ok(0);
            }
            let hour_ago = now - chrono::TimeDelta::hours(1);
            let used: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries WHERE channel = $1 AND created > $2",
            )
            .bind(channel)
            .bind(ts(hour_ago))
            .fetch_one(&mut *tx)
            .await?;
            let budget = (i64::from(max_per_hour) - used).max(0) as usize;
            if budget == 0 {
                return Ok(0);
            }
            // One each while they fit; else all of them in one digest, so that a storm takes
            // one message of what is left of the limit, not all of it.
            let groups: Vec<&[i64]> = match waiting.len() <= budget {
                true => waiting.chunks(1).collect(),
                false => vec![&waiting[..]],
            };
            let stamp = now.timestamp_nanos_opt().unwrap_or_default();
            for group in &groups {
                let digest = group.len() > 1;
                let id = match digest {
                    true => format!("digest-{}-{}-{stamp}", group[0], group.len()),
                    false => format!("n-{}-{stamp}", group[0]),
                };
                sqlx::query(
                    "INSERT INTO deliveries (id, channel, digest, status, attempts, next_attempt, created) \
                     VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
                )
                .bind(&id)
                .bind(channel)
                .bind(i64::from(digest))
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
                for chunk in group.chunks(500) {
                    let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE notifications SET delivery = $1 WHERE id IN ({})",
                        list.join(", ")
                    )))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(groups.len())
        })
    }

    fn claim_deliveries<'a>(
        &'a self,
        channel: &'a str,
        now: DateTime<Utc>,
        retry_at: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        Box::pin(async move {
            let due: Option<String> = sqlx::query_scalar(
                "SELECT id FROM deliveries WHERE channel = $1 AND status = 'pending' AND next_attempt <= $2 LIMIT 1",
            )
            .bind(channel)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await?;
            if due.is_none() {
                return Ok(Vec::new());
            }
            let mut tx = self.write().await?;
            let rows = sqlx::query(
                "SELECT id, channel, digest, attempts, created FROM deliveries \
                 WHERE channel = $1 AND status = 'pending' AND next_attempt <= $2 \
                 ORDER BY created, id LIMIT $3",
            )
            .bind(channel)
            .bind(ts(now))
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: String = r.try_get("id")?;
                sqlx::query(
                    "UPDATE deliveries SET next_attempt = $1, attempts = attempts + 1 WHERE id = $2",
                )
                .bind(ts(retry_at))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
                let items = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM notifications n \
                     LEFT JOIN incidents i ON i.id = n.incident_id WHERE n.delivery = $1 ORDER BY n.id"
                )))
                .bind(&id)
                .fetch_all(&mut *tx)
                .await?;
                out.push(Delivery {
                    id,
                    channel: r.try_get("channel")?,
                    digest: r.try_get::<i64, _>("digest")? != 0,
                    attempts: r.try_get::<i64, _>("attempts")? + 1,
                    created: parse_ts(&r.try_get::<String, _>("created")?)?,
                    notifications: items
                        .iter()
                        .map(notification_from_row)
                        .collect::<Result<_, _>>()?,
                });
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    fn finish_delivery<'a>(
        &'a self,
        id: &'a str,
        outcome: DeliveryOutcome<'a>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            match outcome {
                DeliveryOutcome::Sent => {
                    sqlx::query(
                        "UPDATE deliveries SET status = 'sent', sent = $1, last_error = NULL WHERE id = $2",
                    )
                    .bind(ts(now))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE notifications SET status = 'sent' WHERE delivery = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                DeliveryOutcome::Untried(at) => {
                    sqlx::query(
                        "UPDATE deliveries SET next_attempt = $1, attempts = attempts - 1 WHERE id = $2",
                    )
                    .bind(ts(at))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                DeliveryOutcome::Retry(error, at) => {
                    sqlx::query(
                        "UPDATE deliveries SET next_attempt = $1, last_error = $2 WHERE id = $3",
                    )
                    .bind(ts(at))
                    .bind(crate::base::stored_text(error))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                DeliveryOutcome::Failed(error) => {
                    sqlx::query(
                        "UPDATE deliveries SET status = 'failed', last_error = $1, sent = $2 WHERE id = $3",
                    )
                    .bind(crate::base::stored_text(error))
                    .bind(ts(now))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    let rows: Vec<(i64, String)> = sqlx::query_as(
                        "SELECT incident_id, channel FROM notifications WHERE delivery = $1",
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE notifications SET status = 'failed' WHERE delivery = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    for (incident, channel) in rows {
                        let text = format!(
                            "the notification to channel {channel} failed for good: {error}"
                        );
                        super::insert_entry(
                            &mut tx,
                            incident,
                            now,
                            "watchfloor",
                            "notification",
                            &json!({"text": text, "channel": channel, "delivery": id}),
                        )
                        .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn notifications<'a>(
        &'a self,
        filter: &'a NotificationFilter,
    ) -> BoxFuture<'a, Result<Vec<Notification>, StoreError>> {
        Box::pin(async move {
            let mut q = crate::dialect::Sql::new(
                self.backend,
                format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM notifications n \
                     LEFT JOIN incidents i ON i.id = n.incident_id WHERE 1 = 1"
                ),
            );
            if let Scope::Orgs(orgs) = &filter.scope {
                q.push(" AND ");
                self.backend.push_in_nocase(&mut q, "i.organization", orgs);
            }
            if let Some(c) = &filter.channel {
                q.push(" AND n.channel = ").push_bind(c.clone());
            }
            if let Some(s) = &filter.status {
                q.push(" AND n.status = ").push_bind(s.clone());
            }
            if let Some(i) = filter.incident {
                q.push(" AND n.incident_id = ").push_bind(i);
            }
            q.push(" ORDER BY n.id DESC LIMIT ")
                .push_bind(filter.limit.unwrap_or(100) as i64);
            let rows = q.build().fetch_all(&self.pool).await?;
            rows.iter().map(notification_from_row).collect()
        })
    }

    fn channel_stats(
        &self,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<ChannelStats>, StoreError>> {
        Box::pin(async move {
            let mut out: std::collections::BTreeMap<String, ChannelStats> = Default::default();
            let waiting: Vec<(String, i64)> = sqlx::query_as(
                "SELECT channel, COUNT(*) FROM notifications WHERE status = 'pending' GROUP BY channel",
            )
            .fetch_all(&self.pool)
            .await?;
            for (c, n) in waiting {
                stat(&mut out, c).waiting = n;
            }
            let sent: Vec<(String, i64)> = sqlx::query_as(
                "SELECT channel, COUNT(*) FROM deliveries WHERE status = 'sent' AND sent > $1 GROUP BY channel",
            )
            .bind(ts(now - chrono::TimeDelta::hours(1)))
            .fetch_all(&self.pool)
            .await?;
            for (c, n) in sent {
                stat(&mut out, c).sent_last_hour = n;
            }
            let failed: Vec<(String, i64)> = sqlx::query_as(
                "SELECT channel, COUNT(*) FROM deliveries WHERE status = 'failed' AND sent > $1 GROUP BY channel",
            )
            .bind(ts(now - chrono::TimeDelta::days(1)))
            .fetch_all(&self.pool)
            .await?;
            for (c, n) in failed {
                stat(&mut out, c).failed_last_day = n;
            }
            // Newest first: the first error of each channel is its last.
            let errors = sqlx::query(
                "SELECT channel, last_error, COALESCE(sent, next_attempt) AS at FROM deliveries \
                 WHERE last_error IS NOT NULL ORDER BY created DESC LIMIT 200",
            )
            .fetch_all(&self.pool)
            .await?;
            for r in &errors {
                let s = stat(&mut out, r.try_get("channel")?);
                if s.last_error.is_none() {
                    s.last_error = r.try_get("last_error")?;
                    s.last_error_at = Some(parse_ts(&r.try_get::<String, _>("at")?)?);
                }
            }
            Ok(out.into_values().collect())
        })
    }
}
