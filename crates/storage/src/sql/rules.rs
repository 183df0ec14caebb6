//! Automation rules as stored: their TOML in run order, enabled or not, each change audited in
//! its own transaction.

use chrono::Utc;
use sqlx::Row;

use super::{SqlStore, audit, parse_ts};
use crate::base::ts;
use crate::{Actor, BoxFuture, NewRule, RuleStore, StoreError, StoredRule};

impl RuleStore for SqlStore {
    fn rules(&self) -> BoxFuture<'_, Result<Vec<StoredRule>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM rules ORDER BY position")
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(StoredRule {
                        name: r.try_get("name")?,
                        position: r.try_get("position")?,
                        source: r.try_get("source")?,
                        enabled: r.try_get::<i64, _>("enabled")? != 0,
                        disabled_reason: r.try_get("disabled_reason")?,
                        updated_by: r.try_get("updated_by")?,
                        updated: parse_ts(&r.try_get::<String, _>("updated")?)?,
                    })
                })
                .collect()
        })
    }

    fn put_rules<'a>(
        &'a self,
        actor: &'a Actor,
        rules: &'a [NewRule],
        replace: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = ts(Utc::now());
            let mut tx = self.write().await?;
            if replace {
                sqlx::query("DELETE FROM rules").execute(&mut *tx).await?;
            }
            let mut next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM rules")
                .fetch_one(&mut *tx)
                .await?;
            for rule in rules {
                let updated = sqlx::query(
                    "UPDATE rules SET source = $1, enabled = $2, disabled_reason = NULL, updated_by = $3, updated = $4 WHERE name = $5",
                )
                .bind(&rule.source)
                .bind(i64::from(rule.enabled))
                .bind(&actor.name)
                .bind(&now)
                .bind(&rule.name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    next += 1;
                    sqlx::query(
                        "INSERT INTO rules (name, position, source, enabled, updated_by, updated) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&rule.name)
                    .bind(next)
                    .bind(&rule.source)
                    .bind(i64::from(rule.enabled))
                    .bind(&actor.name)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
            let detail = match replace {
                true => format!("the whole set is now: {}", names.join(", ")),
                false => names.join(", "),
            };
            audit::record(&mut tx, actor, "rules_imported", "rules", &detail).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn set_rule_enabled<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        enabled: bool,
        reason: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let changed = sqlx::query(
                "UPDATE rules SET enabled = $1, disabled_reason = $2, updated_by = $3, updated = $4 WHERE name = $5",
            )
            .bind(i64::from(enabled))
            .bind(reason)
            .bind(&actor.name)
            .bind(ts(Utc::now()))
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if changed {
                let action = match enabled {
                    true => "rule_enabled",
                    false => "rule_disabled",
                };
                audit::record(&mut tx, actor, action, name, reason.unwrap_or_default()).await?;
            }
            tx.commit().await?;
            Ok(changed)
        })
    }
}
