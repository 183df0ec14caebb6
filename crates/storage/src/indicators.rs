//! Indicators as stored: one row per (value, type, organization) with when it was first and
//! last seen and in how many incidents, and a link per (indicator, incident). Both are derived
//! from the incidents, beside ingest: on SQLite by the full-text index's step, in its file and
//! transaction (`search.rs`); on PostgreSQL by draining `indicator_queue`, which triggers fill
//! in the transaction that changes an incident. Either way an incident's indicators are
//! written in the same transaction as the mark that says it was read, so a crash loses none
//! and counts none twice.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::{AnyConnection, Row};
use watchfloor_indicators::Extractor;

use crate::StoreError;
use crate::dialect::Backend;

/// The tables on SQLite, in the full-text index's file (every statement may meet them made
/// already). PostgreSQL's are made by its migration `0012_indicators.sql`, alike.
pub(crate) const SQLITE_TABLES: &str = "\
     CREATE TABLE IF NOT EXISTS indicators (id INTEGER PRIMARY KEY, value TEXT NOT NULL, \
      kind TEXT NOT NULL, organization TEXT NOT NULL, first_seen TEXT NOT NULL, \
      last_seen TEXT NOT NULL, incidents INTEGER NOT NULL, UNIQUE (value, kind, organization)); \
     CREATE TABLE IF NOT EXISTS incident_indicators (indicator_id INTEGER NOT NULL, \
      incident_id INTEGER NOT NULL, PRIMARY KEY (indicator_id, incident_id)) WITHOUT ROWID; \
     CREATE INDEX IF NOT EXISTS incident_indicators_incident \
      ON incident_indicators (incident_id, indicator_id);";

/// Empties the tables (the index is built again, or reindexed).
pub(crate) const CLEAR: [&str; 2] = ["DELETE FROM incident_indicators", "DELETE FROM indicators"];

/// Indicators are kept under the organization's name in lower case ('' for none), which is
/// how scope compares them.
pub(crate) fn org_key(organization: Option<&str>) -> String {
    organization.unwrap_or_default().to_lowercase()
}

/// What extracts indicators in this process, and (PostgreSQL) what wakes its drain.
pub(crate) struct Indicators {
    extractor: RwLock<Arc<Extractor>>,
    wake: std::sync::OnceLock<tokio::sync::mpsc::Sender<()>>,
    /// One drain at a time in this process (others wait on the advisory lock).
    pub(crate) turn: tokio::sync::Mutex<()>,
}

impl Default for Indicators {
    fn default() -> Indicators {
        Indicators {
            extractor: RwLock::new(Arc::new(Extractor::default())),
            wake: Default::default(),
            turn: Default::default(),
        }
    }
}

impl Indicators {
    pub(crate) fn extractor(&self) -> Arc<Extractor> {
        self.extractor
            .read()
            .map(|e| e.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub(crate) fn set_extractor(&self, extractor: Extractor) {
        let mut slot = self.extractor.write().unwrap_or_else(|e| e.into_inner());
        *slot = Arc::new(extractor);
    }

    pub(crate) fn wake(&self) {
        if let Some(wake) = self.wake.get() {
            let _ = wake.try_send(());
        }
    }

    /// PostgreSQL: starts the task that drains the queue whenever this process commits
    /// incidents, and at least every second (other processes commit too); it ends when the
    /// store is closed or dropped.
    pub(crate) fn start_drain(self: &Arc<Self>, pool: sqlx::AnyPool) {
        let (tx, mut woken) = tokio::sync::mpsc::channel(1);
        if self.wake.set(tx).is_err() {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(Duration::from_secs(1), woken.recv()).await;
                let Some(me) = weak.upgrade() else { break };
                if pool.is_closed() {
                    break;
                }
                if let Err(e) = drain(&pool, &me).await {
                    tracing::warn!(error = %e, "indicators fell behind; the next read of them catches up");
                }
            }
        });
    }
}

/// An incident as extraction reads it.
struct Source {
    id: i64,
    organization: String,
    integration: String,
    name: String,
    details: String,
    raw_json: String,
    occurred: String,
}

const SOURCE_COLUMNS: &str = "id, organization, integration, name, details, raw_json, occurred";

fn source(r: &sqlx::any::AnyRow) -> Result<Source, StoreError> {
    Ok(Source {
        id: r.try_get("id")?,
        organization: org_key(r.try_get::<Option<String>, _>("organization")?.as_deref()),
        integration: r.try_get("integration")?,
        name: r.try_get("name")?,
        details: r.try_get("details")?,
        raw_json: r.try_get("raw_json")?,
        occurred: r.try_get("occurred")?,
    })
}

/// Indexes the incidents with ids in `(from, to]` (none of which has links yet), reading them
/// from `incidents` (`data.incidents` on SQLite's index connection).
pub(crate) async fn add_range(
    conn: &mut AnyConnection,
    backend: Backend,
    incidents: &str,
    from: i64,
    to: i64,
    extractor: Arc<Extractor>,
) -> Result<(), StoreError> {
    if extractor.is_off() {
        return Ok(());
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SOURCE_COLUMNS} FROM {incidents} WHERE id > $1 AND id <= $2"
    )))
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let sources = rows.iter().map(source).collect::<Result<Vec<_>, _>>()?;
    add(conn, backend, sources, extractor).await
}

/// Indexes the incidents `ids` again as they are now: their links out, and in again (an
/// incident that is gone keeps none).
pub(crate) async fn redo(
    conn: &mut AnyConnection,
    backend: Backend,
    incidents: &str,
    ids: &[i64],
    extractor: Arc<Extractor>,
) -> Result<(), StoreError> {
    let mut sources = Vec::new();
    for chunk in ids.chunks(500) {
        let list = id_list(chunk);
        remove(conn, &list).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SOURCE_COLUMNS} FROM {incidents} WHERE id IN ({list})"
        )))
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            sources.push(source(r)?);
        }
    }
    add(conn, backend, sources, extractor).await
}

/// Ids as SQL (they are numbers: nothing to bind).
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Takes the links of the incidents in `list` out, and the indicators no incident has left.
async fn remove(conn: &mut AnyConnection, list: &str) -> Result<(), StoreError> {
    let counts: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT indicator_id, COUNT(*) FROM incident_indicators \
         WHERE incident_id IN ({list}) GROUP BY indicator_id"
    )))
    .fetch_all(&mut *conn)
    .await?;
    if counts.is_empty() {
        return Ok(());
    }
    for (indicator, n) in &counts {
        sqlx::query("UPDATE indicators SET incidents = incidents - $1 WHERE id = $2")
            .bind(*n)
            .bind(*indicator)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM incident_indicators WHERE incident_id IN ({list})"
    )))
    .execute(&mut *conn)
    .await?;
    let touched: Vec<i64> = counts.iter().map(|(i, _)| *i).collect();
    for chunk in touched.chunks(500) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM indicators WHERE incidents <= 0 AND id IN ({})",
            id_list(chunk)
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// An indicator of an organization: (value, type, organization).
type Key = (String, &'static str, String);
/// When it was first and last seen in a batch, and by which incidents.
type Seen = (String, String, Vec<i64>);

/// Rows per upsert statement (seven values each).
const UPSERT_ROWS: usize = 200;
/// Links per insert statement.
const LINK_ROWS: usize = 500;

/// Extracts the indicators of `sources` (off the async threads) and adds them.
async fn add(
    conn: &mut AnyConnection,
    backend: Backend,
    sources: Vec<Source>,
    extractor: Arc<Extractor>,
) -> Result<(), StoreError> {
    if sources.is_empty() {
        return Ok(());
    }
    let grouped = tokio::task::spawn_blocking(move || {
        let mut grouped: BTreeMap<Key, Seen> = BTreeMap::new();
        for s in &sources {
            for i in extractor.incident(&s.integration, &s.name, &s.details, &s.raw_json) {
                let e = grouped
                    .entry((i.value, i.kind.as_str(), s.organization.clone()))
                    .or_insert_with(|| (s.occurred.clone(), s.occurred.clone(), Vec::new()));
                if s.occurred < e.0 {
                    e.0 = s.occurred.clone();
                }
                if s.occurred > e.1 {
                    e.1 = s.occurred.clone();
                }
                e.2.push(s.id);
            }
        }
        grouped
    })
    .await
    .map_err(|e| StoreError::Database(format!("extracting indicators failed: {e}")))?;
    let (least, greatest) = match backend {
        Backend::Sqlite => ("min", "max"),
        Backend::Postgres => ("LEAST", "GREATEST"),
    };
    let entries: Vec<(Key, Seen)> = grouped.into_iter().collect();
    let mut links: Vec<(i64, i64)> = Vec::new();
    for chunk in entries.chunks(UPSERT_ROWS) {
        let mut q = crate::dialect::Sql::new(
            backend,
            "INSERT INTO indicators (value, kind, organization, first_seen, last_seen, incidents) VALUES ",
        );
        for (n, ((value, kind, org), (first, last, ids))) in chunk.iter().enumerate() {
            q.push(if n == 0 { "(" } else { ", (" })
                .push_bind(value.clone())
                .push(", ")
                .push_bind(kind.to_string())
                .push(", ")
                .push_bind(org.clone())
                .push(", ")
                .push_bind(first.clone())
                .push(", ")
                .push_bind(last.clone())
                .push(", ")
                .push_bind(ids.len() as i64)
                .push(")");
        }
        q.push(format!(
            " ON CONFLICT (value, kind, organization) DO UPDATE SET \
             first_seen = {least}(indicators.first_seen, excluded.first_seen), \
             last_seen = {greatest}(indicators.last_seen, excluded.last_seen), \
             incidents = indicators.incidents + excluded.incidents \
             RETURNING id, value, kind, organization"
        ));
        let rows = q.build().fetch_all(&mut *conn).await?;
        let mut ids: BTreeMap<(String, String, String), i64> = BTreeMap::new();
        for r in rows {
            ids.insert(
                (
                    r.try_get("value")?,
                    r.try_get("kind")?,
                    r.try_get("organization")?,
                ),
                r.try_get("id")?,
            );
        }
        for ((value, kind, org), (_, _, incidents)) in chunk {
            let id = ids
                .get(&(value.clone(), kind.to_string(), org.clone()))
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("indicator {kind} {value} was not stored"))
                })?;
            links.extend(incidents.iter().map(|i| (*id, *i)));
        }
    }
    for chunk in links.chunks(LINK_ROWS) {
        let values = chunk
            .iter()
            .map(|(x, i)| format!("({x},{i})"))
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO incident_indicators (indicator_id, incident_id) VALUES {values} \
             ON CONFLICT DO NOTHING"
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Incidents drained per PostgreSQL transaction.
const DRAIN_STEP: i64 = 2_000;
/// The advisory lock that makes one drain at a time across processes.
const DRAIN_LOCK: i64 = 0x1d1c_a705;

/// PostgreSQL: indexes every incident queued before the call.
pub(crate) async fn drain(pool: &sqlx::AnyPool, state: &Indicators) -> Result<(), StoreError> {
    let _turn = state.turn.lock().await;
    loop {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DRAIN_LOCK)
            .execute(&mut *tx)
            .await?;
        let queued: Vec<i64> = sqlx::query_scalar(
            "DELETE FROM indicator_queue WHERE seq IN \
             (SELECT seq FROM indicator_queue ORDER BY seq LIMIT $1) RETURNING incident_id",
        )
        .bind(DRAIN_STEP)
        .fetch_all(&mut *tx)
        .await?;
        let done = (queued.len() as i64) < DRAIN_STEP;
        let mut ids = queued;
        ids.sort_unstable();
        ids.dedup();
        redo(
            &mut tx,
            Backend::Postgres,
            "incidents",
            &ids,
            state.extractor(),
        )
        .await?;
        tx.commit().await?;
        if done {
            return Ok(());
        }
    }
}
