//! Indicators as stored: a link per (indicator, incident), keyed by the indicator's value, type
//! and organization; what is first and last seen, and how often, is read from the links. They
//! are derived
//! from the incidents, beside ingest: on SQLite by the full-text index's step, in its file and
//! transaction (`search.rs`); on PostgreSQL by draining `indicator_queue`, which triggers fill
//! in the transaction that changes an incident. Either way an incident's indicators are
//! written in the same transaction as the mark that says it was read, so a crash loses none
//! and counts none twice.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::{AnyConnection, Row};
use watchfloor_indicators::Extractor;

use crate::StoreError;
use crate::dialect::Backend;

/// The table on SQLite, in the full-text index's file (every statement may meet it made
/// already): a link per (indicator, incident), keyed by the indicator's value, type and
/// organization, so that what one indicator holds is one range of the key, and counts are
/// read from there. PostgreSQL's is made by its migration `0013_indicator_links.sql`, alike.
pub(crate) const SQLITE_TABLES: &str = "\
     CREATE TABLE IF NOT EXISTS indicator_links (value TEXT NOT NULL, kind TEXT NOT NULL, \
      organization TEXT NOT NULL, incident_id INTEGER NOT NULL, occurred TEXT NOT NULL, \
      PRIMARY KEY (value, kind, organization, incident_id)) WITHOUT ROWID; \
     CREATE INDEX IF NOT EXISTS indicator_links_incident ON indicator_links (incident_id);";

/// How indicators are kept in SQLite's index file; a file kept otherwise is built again.
pub(crate) const KEPT_VERSION: i64 = 2;

/// What an index file of an earlier version drops (then it is built again).
pub(crate) const SQLITE_UPGRADE: [&str; 3] = [
    "DROP TABLE IF EXISTS incident_indicators",
    "DROP TABLE IF EXISTS indicators",
    "DELETE FROM indicators_kept",
];

/// Empties the table (the index is built again, or reindexed).
pub(crate) const CLEAR: [&str; 1] = ["DELETE FROM indicator_links"];

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
    /// The provider record, or (stored before records were packed) text that is not JSON.
    raw: Result<serde_json::Value, String>,
    occurred: String,
}

const SOURCE_COLUMNS: &str = "id, organization, integration, name, details, raw_json, labels, remote_state, record, occurred";

fn source(r: &sqlx::any::AnyRow) -> Result<Source, StoreError> {
    Ok(Source {
        id: r.try_get("id")?,
        organization: org_key(r.try_get::<Option<String>, _>("organization")?.as_deref()),
        integration: r.try_get("integration")?,
        name: r.try_get("name")?,
        details: r.try_get("details")?,
        // A record that is not JSON (kept as it came, from before records were packed) is
        // searched as text.
        raw: match crate::record::from_row(r) {
            Ok(record) => Ok(record.raw),
            Err(_) => Err(r.try_get("raw_json")?),
        },
        // Links keep the time as text, as the other tables do.
        occurred: crate::base::ts(crate::base::from_micros(r.try_get("occurred")?)?),
    })
}

/// Indexes the incidents with ids in `(from, to]` (none of which has links yet), reading them
/// from the database's tables under the prefix `data` (`data.` on SQLite's index connection).
pub(crate) async fn add_range(
    conn: &mut AnyConnection,
    backend: Backend,
    data: &str,
    from: i64,
    to: i64,
    extractor: Arc<Extractor>,
) -> Result<(), StoreError> {
    if extractor.is_off() {
        return Ok(());
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SOURCE_COLUMNS} FROM {data}incidents WHERE id > $1 AND id <= $2"
    )))
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let sources = rows.iter().map(source).collect::<Result<Vec<_>, _>>()?;
    add(conn, backend, data, sources, extractor).await
}

/// Indexes the incidents `ids` again as they are now: their links out, and in again (an
/// incident that is gone keeps none).
pub(crate) async fn redo(
    conn: &mut AnyConnection,
    backend: Backend,
    data: &str,
    ids: &[i64],
    extractor: Arc<Extractor>,
) -> Result<(), StoreError> {
    let mut sources = Vec::new();
    for chunk in ids.chunks(500) {
        let list = id_list(chunk);
        remove(conn, &list).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SOURCE_COLUMNS} FROM {data}incidents WHERE id IN ({list})"
        )))
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            sources.push(source(r)?);
        }
    }
    add(conn, backend, data, sources, extractor).await
}

/// Ids as SQL (they are numbers: nothing to bind).
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Takes the links of the incidents in `list` out.
async fn remove(conn: &mut AnyConnection, list: &str) -> Result<(), StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM indicator_links WHERE incident_id IN ({list})"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Links per insert statement.
const LINK_ROWS: usize = 2_000;

/// A link as written: value, type, organization, incident, when it occurred.
type Link = (String, &'static str, String, i64, String);

/// Extracts the indicators of `sources` (off the async threads) and links them.
async fn add(
    conn: &mut AnyConnection,
    backend: Backend,
    data: &str,
    sources: Vec<Source>,
    extractor: Arc<Extractor>,
) -> Result<(), StoreError> {
    if sources.is_empty() {
        return Ok(());
    }
    // The admin's allow list, as it is now (`data.` is where the database is).
    let entries: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT entry FROM {data}indicator_allowlist"
    )))
    .fetch_all(&mut *conn)
    .await?;
    // Each entry was checked when it was added; one that no longer reads is left out.
    let allowed: Vec<String> = entries
        .into_iter()
        .filter(|e| {
            watchfloor_indicators::Exclusions::parse(std::slice::from_ref(e), false).is_ok()
        })
        .collect();
    let allowed = watchfloor_indicators::Exclusions::parse(&allowed, false).unwrap_or_default();
    let links = tokio::task::spawn_blocking(move || {
        let mut links: Vec<Link> = Vec::new();
        for s in sources {
            let raw = s.raw.as_ref().map_err(String::as_str);
            let found = extractor.incident_with(&s.integration, &s.name, &s.details, raw);
            for i in allowed.keep(found) {
                links.push((
                    i.value,
                    i.kind.as_str(),
                    s.organization.clone(),
                    s.id,
                    s.occurred.clone(),
                ));
            }
        }
        // In the key's order: each statement writes neighbouring pages.
        links.sort_unstable();
        links
    })
    .await
    .map_err(|e| StoreError::Database(format!("extracting indicators failed: {e}")))?;
    // One statement per chunk, its rows as one JSON parameter that the database unpacks: a
    // bound parameter per value cost more than the writing itself.
    let unpack = match backend {
        Backend::Sqlite => {
            "SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4 \
             FROM json_each($1) AS j WHERE 1"
        }
        Backend::Postgres => {
            "SELECT j ->> 0, j ->> 1, j ->> 2, (j ->> 3)::bigint, j ->> 4 \
             FROM json_array_elements($1::json) AS j"
        }
    };
    for chunk in links.chunks(LINK_ROWS) {
        let rows: Vec<serde_json::Value> = chunk
            .iter()
            .map(|(value, kind, org, incident, occurred)| {
                serde_json::json!([value, kind, org, incident, occurred])
            })
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO indicator_links (value, kind, organization, incident_id, occurred) \
             {unpack} ON CONFLICT DO NOTHING"
        )))
        .bind(serde_json::Value::Array(rows).to_string())
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
    // Nothing queued is the usual answer, read without a transaction or a lock (the task asks
    // every second).
    let queued: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM indicator_queue)")
        .fetch_one(pool)
        .await?;
    if !queued {
        return Ok(());
    }
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
        redo(&mut tx, Backend::Postgres, "", &ids, state.extractor()).await?;
        tx.commit().await?;
        if done {
            return Ok(());
        }
    }
}
