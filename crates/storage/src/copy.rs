//! Copying one store into another (SQLite to PostgreSQL, or back): every table that holds
//! state, with ids kept, in one transaction on the target.

use futures_util::TryStreamExt;
use sqlx::Row;

use crate::StoreError;
use crate::dialect::Backend;
use crate::sql::SqlStore;

/// A column's type, as both backends store it.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

use Kind::{Blob, Int, Real, Text};

/// The tables that hold state, parents before children, with their columns. (Caches, such as
/// the full-text index, rebuild themselves.)
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "users",
        &[
            ("id", Int),
            ("name", Text),
            ("role", Text),
            ("orgs", Text),
            ("password_hash", Text),
            ("disabled", Int),
            ("created", Text),
        ],
    ),
    (
        "api_keys",
        &[
            ("id", Int),
            ("user_id", Int),
            ("key_hash", Text),
            ("created", Text),
            ("revoked", Text),
        ],
    ),
    (
        "sessions",
        &[
            ("token_hash", Text),
            ("user_id", Int),
            ("created", Text),
            ("expires", Text),
        ],
    ),
    (
        "rules",
        &[
            ("name", Text),
            ("position", Int),
            ("source", Text),
            ("enabled", Int),
            ("disabled_reason", Text),
            ("updated_by", Text),
            ("updated", Text),
        ],
    ),
    ("rule_ticks", &[("rule", Text), ("last_tick", Text)]),
    (
        "sla_marks",
        &[("incident_id", Int), ("state", Text), ("at", Text)],
    ),
    (
        "rule_events",
        &[
            ("id", Int),
            ("incident_id", Int),
            ("trigger", Text),
            ("changed", Text),
            ("depth", Int),
            ("created", Text),
        ],
    ),
    (
        "rule_ledger",
        &[
            ("event_id", Int),
            ("rule", Text),
            ("action", Int),
            ("incident_id", Int),
            ("outcome", Text),
            ("detail", Text),
            ("at", Text),
        ],
    ),
    (
        "notifications",
        &[
            ("id", Int),
            ("channel", Text),
            ("incident_id", Int),
            ("rule", Text),
            ("trigger", Text),
            ("created", Text),
            ("delivery", Text),
            ("status", Text),
        ],
    ),
    (
        "indicator_verdicts",
        &[
            ("value", Text),
            ("kind", Text),
            ("organization", Text),
            ("verdict", Text),
            ("author", Text),
            ("at", Text),
        ],
    ),
    (
        "enrichment_cache",
        &[
            ("organization", Text),
            ("instance", Text),
            ("line", Text),
            ("body", Text),
            ("context", Text),
            ("at", Text),
        ],
    ),
    (
        "indicator_allowlist",
        &[("entry", Text), ("author", Text), ("at", Text)],
    ),
    (
        "report_sends",
        &[
            ("id", Text),
            ("organization", Text),
            ("channel", Text),
            ("period", Text),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt", Text),
            ("created", Text),
            ("sent", Text),
            ("last_error", Text),
        ],
    ),
    (
        "deliveries",
        &[
            ("id", Text),
            ("channel", Text),
            ("digest", Int),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt", Text),
            ("created", Text),
            ("sent", Text),
            ("last_error", Text),
        ],
    ),
    (
        "scope_health",
        &[
            ("instance", Text),
            ("scope", Text),
            ("last_success", Text),
            ("last_error", Text),
            ("last_error_at", Text),
            ("consecutive_failures", Int),
            ("last_cycle_at", Text),
        ],
    ),
    (
        "audit",
        &[
            ("id", Int),
            ("at", Text),
            ("actor", Text),
            ("action", Text),
            ("target", Text),
            ("address", Text),
            ("detail", Text),
        ],
    ),
    (
        "incidents",
        &[
            ("id", Int),
            ("instance", Text),
            ("integration", Text),
            ("external_id", Text),
            ("name", Text),
            ("type", Text),
            ("occurred", Int),
            ("created", Int),
            ("modified", Int),
            ("severity", Real),
            ("status", Text),
            ("organization", Text),
            ("owner", Text),
            ("details", Text),
            ("labels", Text),
            ("raw_json", Text),
            ("version", Int),
            ("closed", Int),
            ("close_reason", Text),
            ("close_notes", Text),
            ("first_assigned", Int),
            ("sla_due", Int),
            ("context", Text),
            ("remote_state", Text),
            ("provider_updated", Int),
            ("provider_resolved", Int),
            ("provider_acknowledged", Int),
            ("first_active", Int),
            ("record", Blob),
        ],
    ),
    ("record_repack", &[("upto", Int), ("done", Int)]),
    (
        "incident_entries",
        &[
            ("id", Int),
            ("incident_id", Int),
            ("created", Text),
            ("author", Text),
            ("kind", Text),
            ("body", Text),
        ],
    ),
    (
        "tombstones",
        &[
            ("instance", Text),
            ("external_id", Text),
            ("deleted", Text),
            ("author", Text),
        ],
    ),
    (
        "fetch_cursors",
        &[
            ("instance", Text),
            ("scope", Text),
            ("cursor", Text),
            ("updated", Text),
        ],
    ),
    (
        "instance_health",
        &[
            ("instance", Text),
            ("last_success", Text),
            ("last_error", Text),
            ("last_error_at", Text),
            ("consecutive_failures", Int),
            ("incidents_last_cycle", Int),
            ("last_cycle_at", Text),
            ("set_aside", Text),
        ],
    ),
    (
        "outbox",
        &[
            ("id", Int),
            ("incident_id", Int),
            ("instance", Text),
            ("external_id", Text),
            ("kind", Text),
            ("body", Text),
            ("created", Text),
            ("attempts", Int),
            ("sending", Text),
            ("last_error", Text),
            ("done", Text),
            ("outcome", Text),
        ],
    ),
];

/// Tables whose rows make a store "not empty".
const CONTENT: &[&str] = &["incidents", "tombstones", "fetch_cursors", "users"];

/// Rows inserted per statement.
const ROWS_PER_INSERT: usize = 200;

/// Why a copy was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "the target already holds data ({0}); copy into an empty database, or pass --replace to delete what it holds first"
    )]
    TargetNotEmpty(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        CopyError::Store(e.into())
    }
}

/// How many rows of each table were copied.
pub type CopyReport = Vec<(&'static str, u64)>;

/// One row's values, read by column type.
enum Cell {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

/// Copies every table of `from` into `to`, keeping ids, in one transaction on `to`. A target
/// that holds incidents, tombstones, cursors or users is refused unless `replace`, which
/// deletes them first.
pub async fn copy(from: &SqlStore, to: &SqlStore, replace: bool) -> Result<CopyReport, CopyError> {
    let mut held = Vec::new();
    for table in CONTENT {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(to.pool())
                .await?;
        if n > 0 {
            held.push(format!("{n} {}", table.replace('_', " ")));
        }
    }
    if !held.is_empty() && !replace {
        return Err(CopyError::TargetNotEmpty(held.join(", ")));
    }
    // On the connections that attach SQLite's full-text index, which is told below.
    let mut tx = to.text_reads.begin_with(to.backend().begin_write()).await?;
    for (table, _) in TABLES.iter().rev() {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *tx)
            .await?;
    }
    let mut report = Vec::new();
    for (table, columns) in TABLES {
        let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
        let select = format!("SELECT {} FROM {table}", names.join(", "));
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(from.pool());
        let mut batch: Vec<Vec<Cell>> = Vec::new();
        let mut copied = 0;
        loop {
            let row = rows.try_next().await?;
            if let Some(row) = &row {
                let mut cells = Vec::with_capacity(columns.len());
                for (name, kind) in columns.iter() {
                    let cell = match kind {
                        Int => row.try_get(*name).map(Cell::Int),
                        Real => row.try_get(*name).map(Cell::Real),
                        Text => row.try_get(*name).map(Cell::Text),
                        Blob => row.try_get(*name).map(Cell::Blob),
                    }
                    .map_err(|e| StoreError::Corrupt(format!("{table}.{name}: {e}")))?;
                    cells.push(cell);
                }
                batch.push(cells);
            }
            if batch.len() == ROWS_PER_INSERT || (row.is_none() && !batch.is_empty()) {
                copied += insert(
                    &mut tx,
                    to.backend(),
                    table,
                    &names,
                    std::mem::take(&mut batch),
                )
                .await?;
            }
            if row.is_none() {
                break;
            }
        }
        report.push((*table, copied));
    }
    if to.backend() == Backend::Postgres {
        // Ids were copied as they were: new rows take the next ones.
        for (table, columns) in TABLES {
            if columns
                .first()
                .is_some_and(|(c, k)| *c == "id" && matches!(k, Int))
            {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                )))
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    // The filter counts are kept as incidents are written; these were copied around them.
    crate::counts::recount(&mut tx).await?;
    // So is SQLite's full-text index, attached to this connection: it forgets which database
    // it was built from, and so is built again (`search.rs`); the log it followed goes.
    if to.backend() == Backend::Sqlite && to.has_text_index() {
        for reset in [
            "DELETE FROM text_changes".to_string(),
            format!("UPDATE {}.indexed SET database = ''", crate::search::SCHEMA),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(reset))
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    to.text.wake();
    Ok(report)
}

async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    table: &str,
    names: &[&str],
    rows: Vec<Vec<Cell>>,
) -> Result<u64, StoreError> {
    let mut q = crate::dialect::Sql::new(
        backend,
        format!("INSERT INTO {table} ({}) VALUES ", names.join(", ")),
    );
    for (n, row) in rows.into_iter().enumerate() {
        q.push(if n == 0 { "(" } else { ", (" });
        for (m, cell) in row.into_iter().enumerate() {
            if m > 0 {
                q.push(", ");
            }
            match cell {
                Cell::Int(v) => q.push_bind(v),
                Cell::Real(v) => q.push_bind(v),
                Cell::Text(v) => q.push_bind(v),
                Cell::Blob(v) => q.push_bind(v),
            };
        }
        q.push(")");
    }
    Ok(q.build().execute(&mut **tx).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::{FetchTarget, IncidentFilter, ManualIncident, Role};
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use watchfloor_core::{NewIncident, Severity, SlaPolicy};

    fn alert(id: &str) -> NewIncident {
        NewIncident {
            provider: Default::default(),
            external_id: id.into(),
            name: format!("<b>alert</b> {id}"),
            occurred: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            severity: Severity::High,
            organization: Some("Acme".into()),
            details: "port scan".into(),
            labels: vec![],
            raw: json!({"id": id, "n": 1.5}),
        }
    }

    /// Everything a user sees of a store, to compare two.
    async fn seen(s: &SqlStore) -> serde_json::Value {
        let incidents = s.incidents(&IncidentFilter::default()).await.unwrap();
        let mut entries = Vec::new();
        for i in &incidents {
            entries.push(s.entries(i.id).await.unwrap());
        }
        json!({
            "incidents": serde_json::to_value(&incidents).unwrap(),
            "entries": serde_json::to_value(&entries).unwrap(),
            "users": serde_json::to_value(s.users().await.unwrap()).unwrap(),
            "cursor": s.cursor("fes", "").await.unwrap(),
            "health": serde_json::to_value(s.health().await.unwrap()).unwrap(),
            "outbox": s.outbox_depth().await.unwrap(),
        })
    }

    static SLA: std::sync::LazyLock<SlaPolicy> = std::sync::LazyLock::new(SlaPolicy::default);

    fn target() -> FetchTarget<'static> {
        FetchTarget {
            instance: "fes",
            integration: "covalence-managed-security",
            incident_type: "Covalence ARO",
            scope: "",
            sla: &SLA,
            lease: None,
        }
    }

    /// Fills `from` with a bit of everything: fetched incidents and their cursor and health,
    /// a mirrored note (a push queued), a deleted incident (a tombstone), one made by hand, a
    /// user and an API key.
    async fn fill(from: &SqlStore) {
        let sla = &*SLA;
        let alerts = [alert("a"), alert("b"), alert("c")];
        from.commit_fetch(target(), &alerts, &json!({"last": "c"}))
            .await
            .unwrap();
        from.record_success("fes", 3).await.unwrap();
        let page = from.incidents(&IncidentFilter::default()).await.unwrap();
        from.add_note(page[0].id, "dana", "escalated", true)
            .await
            .unwrap();
        from.delete_incident(page[2].id, "dana").await.unwrap();
        from.create_incident(
            &ManualIncident {
                name: "by hand".into(),
                ..ManualIncident::default()
            },
            "dana",
            sla,
        )
        .await
        .unwrap();
        from.create_user(
            &crate::Actor::default(),
            "dana",
            Role::Analyst,
            &["Acme".into()],
            "hash",
        )
        .await
        .unwrap();
        from.add_api_key(&crate::Actor::default(), "dana", "keyhash", false)
            .await
            .unwrap();
    }

    async fn counts(s: &SqlStore) -> Option<crate::Facets> {
        s.facets(&IncidentFilter::default()).await.unwrap()
    }

    #[tokio::test]
    async fn sqlite_moves_to_postgres_whole_and_refuses_a_full_target() {
        let Some(url) = crate::test_cluster::fresh_database().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let from = SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap();
        fill(&from).await;
        let to = SqlStore::open(&url).await.unwrap();
        let report = copy(&from, &to, false).await.unwrap();
        assert!(report.contains(&("incidents", 3)), "{report:?}");
        assert!(report.contains(&("tombstones", 1)), "{report:?}");
        assert_eq!(seen(&to).await, seen(&from).await);
        assert_eq!(counts(&to).await, counts(&from).await, "filter counts");
        assert!(to.user_by_key("keyhash").await.unwrap().is_some());

        // The deleted alert stays deleted; a new one takes a new id.
        let again = to
            .commit_fetch(target(), &[alert("a"), alert("c"), alert("d")], &json!({}))
            .await
            .unwrap();
        assert_eq!(again, 1);
        let ids: Vec<i64> = to
            .incidents(&IncidentFilter::default())
            .await
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids.len(), 4);
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            4
        );

        let refused = copy(&from, &to, false).await.err().unwrap().to_string();
        assert_eq!(
            refused,
            "the target already holds data (4 incidents, 1 tombstones, 1 fetch cursors, 1 users); \
             copy into an empty database, or pass --replace to delete what it holds first"
        );
        copy(&from, &to, true).await.unwrap();
        assert_eq!(seen(&to).await, seen(&from).await);
        assert_eq!(
            counts(&to).await,
            counts(&from).await,
            "filter counts, replaced"
        );
    }

    /// Regression (no test copied into SQLite): a copy into SQLite, fresh or replacing what it
    /// held, is what the source is, its full-text index (a file beside the database) finds the
    /// copied incidents and forgets the replaced ones, and fetches after it take new ids and
    /// keep the filter counts (which SQLite takes from a transaction's newest ids).
    #[tokio::test]
    async fn sqlite_copies_into_sqlite_searchable_and_counting() {
        let dir = tempfile::tempdir().unwrap();
        let url = |name: &str| format!("sqlite://{}/{name}", dir.path().display());
        let from = SqlStore::open(&url("from.db")).await.unwrap();
        fill(&from).await;
        let to = SqlStore::open(&url("to.db")).await.unwrap();
        let found = |s: &SqlStore, text: &str| {
            let (s, text) = (s.clone(), text.to_string());
            async move {
                let filter = IncidentFilter {
                    conditions: watchfloor_core::query::parse(&text).unwrap(),
                    ..IncidentFilter::default()
                };
                let page = s.incidents(&filter).await.unwrap();
                page.into_iter().map(|i| i.external_id).collect::<Vec<_>>()
            }
        };
        let lateral = NewIncident {
            details: "lateral movement".into(),
            ..alert("x")
        };
        // Its ids are the source's: an index that remembered them would find the wrong ones.
        to.commit_fetch(target(), &[alert("y"), lateral.clone()], &json!({}))
            .await
            .unwrap();
        assert_eq!(found(&to, "lateral").await, ["x"]);

        copy(&from, &to, true).await.unwrap();
        assert_eq!(seen(&to).await, seen(&from).await);
        assert_eq!(counts(&to).await, counts(&from).await, "filter counts");
        let mut scanned = found(&to, "scan").await;
        scanned.sort();
        assert_eq!(scanned, ["b", "c"], "the copied incidents are found");
        assert!(
            found(&to, "lateral").await.is_empty(),
            "the replaced one is not"
        );

        // Fetched after the copy: a new id above the copied ones, found, and counted.
        let before = to.incidents(&IncidentFilter::default()).await.unwrap();
        let added = to
            .commit_fetch(target(), &[alert("b"), lateral], &json!({}))
            .await
            .unwrap();
        assert_eq!(added, 1);
        let after = to.incidents(&IncidentFilter::default()).await.unwrap();
        let newest = after.iter().map(|i| i.id).max().unwrap();
        assert!(before.iter().all(|i| i.id < newest));
        assert_eq!(found(&to, "lateral").await, ["x"]);
        let status = counts(&to).await.unwrap().status;
        assert_eq!(
            status.iter().map(|(_, n)| n).sum::<u64>(),
            after.len() as u64,
            "{status:?}"
        );
    }
}
