//! The audit log: security events written in the transaction of the change they record, or on
//! their own (a failed login), and read newest first by admins.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{SqlStore, parse_ts};
use crate::base::{Tx, stored_text, ts};
use crate::{Actor, AuditEvent, AuditStore, BoxFuture, StoreError};

/// Writes one event inside `tx`.
pub(super) async fn record(
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at, actor, action, target, address, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ts(Utc::now()))
    .bind(stored_text(&actor.name))
    .bind(action)
    .bind(stored_text(target))
    .bind(actor.address.as_deref().map(stored_text))
    .bind(stored_text(detail))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl AuditStore for SqlStore {
    fn record_audit<'a>(
        &'a self,
        actor: &'a Actor,
        action: &'a str,
        target: &'a str,
        detail: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            record(&mut tx, actor, action, target, detail).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn audit_log(
        &self,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<AuditEvent>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, at, actor, action, target, address, detail FROM audit \
                 WHERE at >= $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(since.map(ts).unwrap_or_default())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(AuditEvent {
                        id: r.try_get("id")?,
                        at: parse_ts(&r.try_get::<String, _>("at")?)?,
                        actor: r.try_get("actor")?,
                        action: r.try_get("action")?,
                        target: r.try_get("target")?,
                        address: r.try_get("address")?,
                        detail: r.try_get("detail")?,
                    })
                })
                .collect()
        })
    }
}
