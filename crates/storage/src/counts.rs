//! The kept filter counts (`incident_counts`): new incidents added in the transaction that
//! inserts them, and everything counted again after a copy.

use crate::StoreError;
use crate::base::Tx;
use crate::dialect::{Backend, Sql};

/// New incidents' values of the counted filters (see `incident_counts`).
pub(crate) struct Counted<'a> {
    pub(crate) status: &'static str,
    pub(crate) severity: f64,
    pub(crate) organization: Option<String>,
    pub(crate) owner: Option<String>,
    pub(crate) instance: &'a str,
}

/// Adds new incidents to `incident_counts`, in the inserting transaction: one statement for a
/// batch, each combination's rows once, in one order (so that concurrent writers on PostgreSQL
/// lock the same rows in the same order). Updates and deletes are counted by triggers.
pub(crate) async fn count_new(
    tx: &mut Tx,
    backend: Backend,
    rows: &[Counted<'_>],
) -> Result<(), StoreError> {
    let mut combos = std::collections::BTreeMap::new();
    for r in rows {
        let key = (
            r.status,
            r.severity.to_bits(),
            r.organization.as_deref().unwrap_or(""),
            r.owner.as_deref().unwrap_or(""),
            r.instance,
        );
        *combos.entry(key).or_insert(0i64) += 1;
    }
    if combos.is_empty() {
        return Ok(());
    }
    let mut q = Sql::new(
        backend,
        "INSERT INTO incident_counts (status, severity, organization, owner, instance, n) VALUES ",
    );
    for (n, ((status, severity, organization, owner, instance), count)) in
        combos.into_iter().enumerate()
    {
        q.push(if n == 0 { "(" } else { ", (" })
            .push_bind(status)
            .push(", ")
            .push_bind(f64::from_bits(severity))
            .push(", ")
            .push_bind(organization.to_string())
            .push(", ")
            .push_bind(owner.to_string())
            .push(", ")
            .push_bind(instance.to_string())
            .push(", ")
            .push_bind(count)
            .push(")");
    }
    q.push(
        " ON CONFLICT (status, severity, organization, owner, instance) \
         DO UPDATE SET n = incident_counts.n + excluded.n",
    );
    q.build().execute(&mut **tx).await?;
    bump_counts_version(tx).await
}

/// Adds the `n` incidents with the highest ids to `incident_counts`: on SQLite, the rows that
/// the writing transaction inserted (one transaction writes at a time, and `AUTOINCREMENT` ids
/// only grow), counted in the database rather than sent back row by row to be counted.
pub(crate) async fn count_newest(tx: &mut Tx, n: usize) -> Result<(), StoreError> {
    if n == 0 {
        return Ok(());
    }
    // `WHERE true`: SQLite's grammar needs a WHERE before an upsert's ON CONFLICT.
    sqlx::query(
        "INSERT INTO incident_counts (status, severity, organization, owner, instance, n) \
         SELECT status, severity, COALESCE(organization, ''), COALESCE(owner, ''), instance, COUNT(*) \
         FROM (SELECT status, severity, organization, owner, instance FROM incidents \
               ORDER BY id DESC LIMIT $1) \
         WHERE true GROUP BY 1, 2, 3, 4, 5 \
         ON CONFLICT (status, severity, organization, owner, instance) \
         DO UPDATE SET n = incident_counts.n + excluded.n",
    )
    .bind(n as i64)
    .execute(&mut **tx)
    .await?;
    bump_counts_version(tx).await
}

/// Marks `incident_counts` changed (the filter counts are kept by its version).
pub(super) async fn bump_counts_version(tx: &mut Tx) -> Result<(), StoreError> {
    sqlx::query("UPDATE incident_counts_version SET v = v + 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Counts every incident again into `incident_counts`, after rows were written around the
/// counting (a copy, the benchmarks' synthetic fill).
pub(crate) async fn recount(tx: &mut Tx) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM incident_counts")
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO incident_counts (status, severity, organization, owner, instance, n) \
         SELECT status, severity, COALESCE(organization, ''), COALESCE(owner, ''), instance, COUNT(*) \
         FROM incidents GROUP BY status, severity, COALESCE(organization, ''), COALESCE(owner, ''), instance",
    )
    .execute(&mut **tx)
    .await?;
    bump_counts_version(tx).await
}
