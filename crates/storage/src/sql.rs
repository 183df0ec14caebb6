//! The SQL store, on SQLite or PostgreSQL: every [`Store`] operation written once, over
//! sqlx's `Any` driver, with what differs between the two in [`Backend`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::AnyRow;
use watchfloor_core::Mirrored as ToProvider;
use watchfloor_core::{
    Change, CloseReason, Incident, Label, NewIncident, Severity, SlaPolicy, Status,
};

use watchfloor_core::SetAside;

use crate::dialect::{Backend, SQLITE_PAGE, Sql};
use crate::{
    AccountStore, FetchStore, HealthStore, IncidentStore, LeaseStore, OutboxStore, QueueStore,
};
use crate::{
    Actor, ApiKey, BoxFuture, ClusterStatus, Facets, FetchTarget, Health, IncidentFilter, Lease,
    LeaseInfo, ManualIncident, Mirrored, ProcessInfo, Push, PushOutcome, Role, ScopeHealth,
    SetAsideRecord, SortField, StoreError, User, WarRoomEntry,
};
use callers::Credential;
use commit::FetchCommit;

mod audit;
mod callers;
mod commit;
mod filter;
mod indicators;
mod notify;
pub(crate) mod postgres;
mod repack;
mod reports;
mod rules;
pub(crate) mod sqlite;

use crate::base::{Tx, check_lease, from_micros, micros, open_error, opt_micros, stored_text, ts};
use crate::counts::{Counted, count_new, recount};
use crate::record;
use filter::{
    COMMON, CommonWords, Facet, Hints, KeysetPart, filter_key, keyset_in_parts,
    push_counted_filters, push_filter, sort_column, sort_page, texts,
};

/// Set-aside records kept per instance, the newest.
const SET_ASIDE_KEPT: usize = 50;

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{s}`: {e}")))
}

fn parse_opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.as_deref().map(parse_ts).transpose()
}

/// A database of incidents: SQLite (one file) or PostgreSQL (shared by several processes).
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    /// Where write transactions run. On SQLite, one connection of its own: writes take turns
    /// anyway, and a connection that wrote last keeps its page cache, where any other would
    /// throw its cache away on seeing the database changed. On PostgreSQL, `pool` again.
    pub(crate) writer: AnyPool,
    pub(crate) backend: Backend,
    /// Filter counts as last read, by the version of `incident_counts` and the filter.
    pub(crate) facets:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<(i64, String), Facets>>>,
    /// Which search texts were common, and when that was read: the live queue repeats its
    /// search every few seconds, and how common a word is changes slowly.
    pub(crate) common_texts: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (bool, std::time::Instant)>>,
    >,
    /// The migrations this open applied.
    pub(crate) applied: Vec<i64>,
    /// Fetch steps waiting for their turn to write (SQLite).
    pub(crate) commits: std::sync::Arc<commit::CommitQueue>,
    /// SQLite's full-text index, in a file of its own (PostgreSQL's is in the table).
    pub(crate) text: crate::search::TextIndex,
    /// Where queries with a search text read: on SQLite, connections of their own that attach
    /// the full-text index (attached to every read connection it cost `serve` about 10 MB of
    /// memory); on PostgreSQL, `pool` again.
    pub(crate) text_reads: AnyPool,
    /// What extracts indicators, and PostgreSQL's drain of them.
    pub(crate) indicators: std::sync::Arc<crate::indicators::Indicators>,
    /// Whether fetches store records packed (always, but in a benchmark's comparison).
    pub(crate) pack: bool,
    /// Where PostgreSQL reads pages of incidents: connections of PostgreSQL's own driver,
    /// whose rows are decoded where they lie (`Any`'s copied each row's every value and
    /// column name first: 7% of the machine under 32 clients).
    pub(crate) pages: Option<sqlx::PgPool>,
    /// Who API keys and session tokens belonged to a moment ago, on PostgreSQL (`callers.rs`).
    pub(crate) callers: std::sync::Arc<callers::Callers>,
    /// PostgreSQL: the connection that hears other processes' changes to callers.
    pub(crate) listen: Option<sqlx::PgPool>,
}

/// How long a search text's commonness is trusted.
const COMMON_TTL: Duration = Duration::from_secs(300);

/// The columns of an incident, as every read of whole incidents selects them.
const INCIDENT_COLUMNS: &str = "id, instance, integration, external_id, name, type, occurred, \
     created, modified, severity, status, organization, owner, details, labels, raw_json, record, \
     version, closed, close_reason, close_notes, first_assigned, sla_due";

impl SqlStore {
    pub(crate) fn new(pool: AnyPool, writer: AnyPool, backend: Backend) -> SqlStore {
        SqlStore {
            pool: pool.clone(),
            writer,
            backend,
            facets: Default::default(),
            common_texts: Default::default(),
            applied: Vec::new(),
            commits: Default::default(),
            text: crate::search::TextIndex::InTable,
            text_reads: pool,
            indicators: Default::default(),
            pack: true,
            pages: None,
            callers: std::sync::Arc::new(callers::Callers::new(backend == Backend::Postgres)),
            listen: None,
        }
    }

    /// Commits a change to users, keys or sessions, and forgets the callers remembered in
    /// this process and (PostgreSQL, told as the transaction commits) in every other.
    async fn commit_callers_change(&self, mut tx: Tx) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query(callers::NOTIFY).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.callers.forget();
        Ok(())
    }

    /// This store, fetching into the layout stores had before records were packed (raw
    /// record and labels as text): for a benchmark to measure both side by side. Rows
    /// written so are packed by [`SqlStore::repack_step`] only if the database was
    /// upgraded with them in it.
    #[doc(hidden)]
    pub fn unpacked_for_comparison(mut self) -> SqlStore {
        self.pack = false;
        self
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn sql(&self, text: impl Into<String>) -> Sql {
        Sql::new(self.backend, text)
    }

    /// Refuses a database written by a newer watchfloor, or one that is not watchfloor's.
    pub(crate) async fn check_version(
        &self,
        url: &str,
        migrations: &[(i64, &str)],
    ) -> Result<(), StoreError> {
        let known = migrations.last().map_or(0, |(v, _)| *v);
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| match e.to_string() {
                m if m.contains("no such table") || m.contains("does not exist") => open_error(
                    url,
                    "it is not a watchfloor database (it has no schema_version table); `watchfloor db migrate` makes one"
                        .into(),
                ),
                m => open_error(url, m),
            })?;
        match version.unwrap_or(0) {
            v if v > known => Err(StoreError::NewerSchema { found: v, known }),
            v if v < known => Err(open_error(
                url,
                format!(
                    "its schema version {v} is older than this watchfloor's ({known}); run `watchfloor db migrate` to upgrade it"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// A write transaction (see [`Backend::begin_write`]).
    pub(crate) async fn write(&self) -> Result<Tx, StoreError> {
        for _ in 0..3 {
            match self.writer.begin_with(self.backend.begin_write()).await {
                // A transaction the database ended itself (SQLite rolls back a COMMIT that
                // failed on a full disk) leaves the driver's connection believing it is still
                // in one, and refusing every BEGIN: that connection is replaced.
                Err(sqlx::Error::InvalidSavePointStatement | sqlx::Error::BeginFailed) => {
                    tracing::warn!(
                        "a write connection was left in a transaction the database had ended; replacing it"
                    );
                    self.writer.acquire().await?.close().await?;
                }
                other => return Ok(other?),
            }
        }
        Ok(self.writer.begin_with(self.backend.begin_write()).await?)
    }

    /// Applies the migrations not yet applied, each in its own transaction. Processes that
    /// migrate one database at once take turns: SQLite's write lock, or an advisory lock on
    /// PostgreSQL.
    pub(crate) async fn migrate(&self, migrations: &[(i64, &str)]) -> Result<Vec<i64>, StoreError> {
        let mut applied = Vec::new();
        let create = match self.backend {
            Backend::Sqlite => {
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)"
            }
            Backend::Postgres => {
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied TEXT NOT NULL)"
            }
        };
        // Most opens find every migration applied: one read says so, with no transaction per
        // migration and no change to the write connection.
        // (The table is made under the migrations' lock below: two PostgreSQL processes
        // making it at once can collide.)
        let exists = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'schema_version'"
            }
        };
        let exists: i64 = sqlx::query_scalar(exists).fetch_one(&self.writer).await?;
        if exists > 0 {
            let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_version")
                .fetch_all(&self.writer)
                .await?;
            if migrations.iter().all(|(v, _)| done.contains(v)) {
                return Ok(applied);
            }
        }
        // SQLite rebuilds a table by dropping it and renaming a new one in its place, which
        // with foreign keys on would delete (or refuse to drop) what refers to its rows: keys
        // are off while migrations run on the one write connection, and checked after.
        let sqlite = self.backend == Backend::Sqlite;
        if sqlite {
            sqlx::query("PRAGMA foreign_keys = OFF")
                .execute(&self.writer)
                .await?;
        }
        let result = self.migrate_each(migrations, create, &mut applied).await;
        if sqlite {
            sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&self.writer)
                .await?;
        }
        result?;
        Ok(applied)
    }

    async fn migrate_each(
        &self,
        migrations: &[(i64, &str)],
        create: &'static str,
        applied: &mut Vec<i64>,
    ) -> Result<(), StoreError> {
        for (version, sql) in migrations {
            let mut tx = self.write().await?;
            if self.backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(7461636801)")
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(create).execute(&mut *tx).await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_version WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Migration {
                    version: *version,
                    message: e.to_string(),
                })?;
            // Only a migration that drops a table (or deletes rows) can leave a reference
            // dangling; the check reads every referring table, so the others skip it.
            if self.backend == Backend::Sqlite
                && (sql.contains("DROP TABLE") || sql.contains("DELETE FROM"))
            {
                let broken: Option<String> = sqlx::query_scalar(
                    "SELECT \"table\" || ' row ' || rowid FROM pragma_foreign_key_check LIMIT 1",
                )
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(broken) = broken {
                    return Err(StoreError::Migration {
                        version: *version,
                        message: format!(
                            "it left {broken} referring to a row that is gone; nothing was \
                             changed: keep running the version before, and report this with \
                             the database's schema (`sqlite3 FILE .schema`)"
                        ),
                    });
                }
            }
            sqlx::query("INSERT INTO schema_version (version, applied) VALUES ($1, $2)")
                .bind(version)
                .bind(ts(Utc::now()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            applied.push(*version);
        }
        Ok(())
    }

    /// Opens the database at `url`, creating it and applying pending migrations as needed:
    /// `sqlite://PATH` (a file, made if missing) or `postgres://USER@HOST/DB` (an existing
    /// database). Several processes may open one database at once; migrations run once.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if postgres::is_postgres(url) {
            postgres::open(url).await
        } else {
            sqlite::open(url).await
        }
    }

    /// Opens an existing database for reading only: nothing is created or migrated, so a
    /// mistyped SQLite path is an error, not a new empty database.
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        if postgres::is_postgres(url) {
            postgres::open_existing(url).await
        } else {
            sqlite::open_read_only(url).await
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        // The index's connection first: it reads the database without writing it, and the
        // last connection to close should be one that may tidy the database's WAL away.
        self.text.close().await;
        self.writer.close().await;
        self.pool.close().await;
        self.text_reads.close().await;
        if let Some(pages) = &self.pages {
            pages.close().await;
        }
        if let Some(listen) = &self.listen {
            listen.close().await;
        }
    }

    /// The connections that read `filter`: those that can search text, if it has a text.
    fn reads(&self, filter: &IncidentFilter) -> &AnyPool {
        if texts(filter.conditions.iter().map(|c| c.term.clone())).is_empty()
            && !filter::has_indicator(&filter.conditions)
        {
            &self.pool
        } else {
            &self.text_reads
        }
    }

    /// Whether the read connections have SQLite's full-text index attached.
    pub(crate) fn has_text_index(&self) -> bool {
        matches!(self.text, crate::search::TextIndex::Ready(_))
    }

    /// Brings SQLite's full-text index up to date with every incident committed before the
    /// call (text searches do this themselves; the index is otherwise kept up to date in the
    /// background). Nothing to do on PostgreSQL.
    pub async fn index_text(&self) -> Result<(), StoreError> {
        self.text.catch_up().await
    }

    /// Brings the indicators up to date with every incident committed before the call (their
    /// reads do this themselves; they are otherwise kept up to date in the background).
    pub async fn catch_up_indicators(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => self.text.catch_up().await,
            Backend::Postgres => crate::indicators::drain(&self.pool, &self.indicators).await,
        }
    }

    /// How many committed incidents the indicators (and, on SQLite, the full-text index) have
    /// not read yet, without catching up: how far the background work trails.
    pub async fn indicators_behind(&self) -> Result<i64, StoreError> {
        match self.backend {
            Backend::Sqlite => self.text.unread().await,
            Backend::Postgres => {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM indicator_queue")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n)
            }
        }
    }

    /// Sets what extracts indicators from incidents stored from now on (the config's
    /// exclusions and the integrations' field maps); until then, text only, with private
    /// and reserved ranges excluded.
    pub fn set_indicator_extractor(&self, extractor: watchfloor_indicators::Extractor) {
        self.indicators.set_extractor(extractor);
    }

    /// Finds every incident's indicators again with the extractor set now (on SQLite, the
    /// full-text index is built again with them).
    pub async fn reindex_indicators(&self) -> Result<(), StoreError> {
        match (&self.backend, &self.text) {
            (Backend::Sqlite, crate::search::TextIndex::Ready(index)) => index.rebuild().await,
            (Backend::Sqlite, _) => self.text.catch_up().await,
            (Backend::Postgres, _) => {
                let mut tx = self.pool.begin().await?;
                for statement in crate::indicators::CLEAR {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                sqlx::query("DELETE FROM indicator_queue")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO indicator_queue (incident_id) SELECT id FROM incidents ORDER BY id",
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                self.catch_up_indicators().await
            }
        }
    }

    fn migrations(&self) -> &'static [(i64, &'static str)] {
        match self.backend {
            Backend::Sqlite => sqlite::MIGRATIONS,
            Backend::Postgres => postgres::MIGRATIONS,
        }
    }

    /// The schema versions this open applied (none when the schema was current).
    pub fn migrations_applied(&self) -> &[i64] {
        &self.applied
    }

    /// The schema version this watchfloor writes on this backend.
    pub fn schema_version(&self) -> i64 {
        self.migrations().last().map_or(0, |(v, _)| *v)
    }
}

/// An incident's columns as they are stored, read from a row or from the JSON a page query
/// builds in SQL.
#[derive(serde::Deserialize)]
struct StoredIncident {
    id: i64,
    instance: String,
    integration: String,
    external_id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    occurred: i64,
    created: i64,
    modified: i64,
    severity: f64,
    status: String,
    organization: Option<String>,
    owner: Option<String>,
    details: String,
    /// Labels and raw record of a row not packed yet (see [`crate::record`]).
    #[serde(default)]
    labels: Option<Vec<Label>>,
    #[serde(default)]
    raw: Option<Value>,
    /// A packed row's record, in hex.
    #[serde(default)]
    record: Option<String>,
    version: i64,
    closed: Option<i64>,
    close_reason: Option<String>,
    close_notes: Option<String>,
    first_assigned: Option<i64>,
    sla_due: i64,
}

impl StoredIncident {
    /// The incident. A packed record that cannot be read (a damaged row) leaves the incident
    /// without its labels and raw record, and says so in the log, rather than failing every
    /// page and list it is on.
    fn into_incident(self) -> Result<Incident, StoreError> {
        let (labels, raw) = match &self.record {
            Some(hex) => match record::unpack_hex(hex) {
                Ok(r) => (r.labels, r.raw),
                Err(e) => without_record(self.id, &e),
            },
            None => (
                self.labels.unwrap_or_default(),
                self.raw.unwrap_or(Value::Null),
            ),
        };
        let severity = Severity::from_value(self.severity)
            .ok_or_else(|| StoreError::Corrupt(format!("severity {}", self.severity)))?;
        Ok(Incident {
            id: self.id,
            instance: self.instance,
            integration: self.integration,
            external_id: self.external_id,
            name: self.name,
            kind: self.kind,
            occurred: from_micros(self.occurred)?,
            created: from_micros(self.created)?,
            modified: from_micros(self.modified)?,
            severity,
            severity_label: severity.label(),
            status: Status::parse(&self.status).map_err(StoreError::Corrupt)?,
            organization: self.organization,
            owner: self.owner,
            details: self.details,
            labels,
            raw,
            version: self.version,
            closed: opt_micros(self.closed)?,
            close_reason: self
                .close_reason
                .map(|r| CloseReason::parse(&r).map_err(StoreError::Corrupt))
                .transpose()?,
            close_notes: self.close_notes,
            first_assigned: opt_micros(self.first_assigned)?,
            sla_due: from_micros(self.sla_due)?,
        })
    }
}

/// What an incident whose stored record cannot be read (`error`) is shown with: no labels and
/// no raw record, and a line in the log.
fn without_record(id: i64, error: &StoreError) -> (Vec<Label>, Value) {
    tracing::warn!(
        incident = id,
        "an incident's stored record cannot be read; it is shown without it: {error}"
    );
    (Vec::new(), Value::Null)
}

/// The record of incident `id`, read in `tx`.
pub(crate) async fn read_record(tx: &mut Tx, id: i64) -> Result<record::Record, StoreError> {
    let row =
        sqlx::query("SELECT record, raw_json, labels, remote_state FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(StoreError::NoIncident(id))?;
    record::from_row(&row)
}

/// Stores `record` as incident `id`'s, packed (a row not packed yet is packed by this).
pub(crate) async fn write_record(
    tx: &mut Tx,
    id: i64,
    integration: &str,
    record: &record::Record,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE incidents SET record = $1, raw_json = '', labels = '', remote_state = NULL \
         WHERE id = $2",
    )
    .bind(record::pack(integration, &record.borrowed())?)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn incident_from_row<R: crate::base::IncidentRow>(row: &R) -> Result<Incident, StoreError> {
    let id = row.int("id")?;
    let (labels, raw) = match record::from_row(row) {
        Ok(r) => (r.labels, r.raw),
        Err(e) => without_record(id, &e),
    };
    incident_with(row, labels, raw)
}

/// Incident `id` and its record, read in `tx` from one row (the record unpacked once), the
/// row locked for the change to come. A record that cannot be read fails the read: the change
/// would write it.
async fn read_incident_and_record(
    tx: &mut Tx,
    backend: Backend,
    id: i64,
) -> Result<(Incident, record::Record), StoreError> {
    let row = locked_row(tx, backend, id).await?;
    let record = record::from_row(&row)?;
    let incident = incident_with(&row, record.labels.clone(), record.raw.clone())?;
    Ok((incident, record))
}

/// The incident of `row` (its columns as `INCIDENT_COLUMNS` names them), with the labels and
/// raw record read from it.
fn incident_with<R: crate::base::IncidentRow>(
    row: &R,
    labels: Vec<Label>,
    raw: Value,
) -> Result<Incident, StoreError> {
    StoredIncident {
        id: row.int("id")?,
        instance: row.text("instance")?,
        integration: row.text("integration")?,
        external_id: row.text("external_id")?,
        name: row.text("name")?,
        kind: row.text("type")?,
        occurred: row.int("occurred")?,
        created: row.int("created")?,
        modified: row.int("modified")?,
        severity: row.real("severity")?,
        status: row.text("status")?,
        organization: row.text_or_null("organization")?,
        owner: row.text_or_null("owner")?,
        details: row.text("details")?,
        labels: Some(labels),
        raw: Some(raw),
        record: None,
        version: row.int("version")?,
        closed: row.int_or_null("closed")?,
        close_reason: row.text_or_null("close_reason")?,
        close_notes: row.text_or_null("close_notes")?,
        first_assigned: row.int_or_null("first_assigned")?,
        sla_due: row.int("sla_due")?,
    }
    .into_incident()
}

fn push_from_row(r: &AnyRow) -> Result<Push, StoreError> {
    Ok(Push {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        external_id: r.try_get("external_id")?,
        kind: r.try_get("kind")?,
        body: serde_json::from_str(&r.try_get::<String, _>("body")?)
            .map_err(|e| StoreError::Corrupt(format!("outbox body: {e}")))?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        sending: parse_opt_ts(r.try_get("sending")?)?,
    })
}

fn user_from_row(r: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: Role::parse(&r.try_get::<String, _>("role")?).map_err(StoreError::Corrupt)?,
        orgs: serde_json::from_str(&r.try_get::<String, _>("orgs")?)
            .map_err(|e| StoreError::Corrupt(format!("user organizations: {e}")))?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created: parse_ts(&r.try_get::<String, _>("created")?)?,
        password_hash: r.try_get("password_hash")?,
    })
}

/// The id of an enabled user, inside a transaction.
async fn enabled_user_id(tx: &mut Tx, name: &str) -> Result<i64, StoreError> {
    let id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE name = $1 AND disabled = 0")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
    id.ok_or_else(|| StoreError::NoUser(name.to_string()))
}

/// One incident, read inside a transaction.
async fn read_incident(tx: &mut Tx, backend: Backend, id: i64) -> Result<Incident, StoreError> {
    incident_from_row(&locked_row(tx, backend, id).await?)
}

/// Incident `id`'s row (`INCIDENT_COLUMNS` and `remote_state`, which a row stored before
/// records were packed keeps its provider state in), read in `tx` and locked for a change.
async fn locked_row(tx: &mut Tx, backend: Backend, id: i64) -> Result<AnyRow, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INCIDENT_COLUMNS}, remote_state FROM incidents WHERE id = $1{}",
        backend.for_update()
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NoIncident(id))
}

/// The incidents of `ids` that exist, read in `tx` and locked for a change (in id order, as
/// every change to many locks them, so that two of them wait for each other rather than
/// deadlock), by id.
async fn locked_incidents(
    tx: &mut Tx,
    backend: Backend,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Incident>, StoreError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INCIDENT_COLUMNS}, remote_state FROM incidents WHERE id IN ({}) ORDER BY id{}",
        list.join(", "),
        backend.for_update()
    )))
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|row| incident_from_row(row).map(|i| (i.id, i)))
    .collect()
}

/// A process as `processes` rows are selected: id, host, pid, started_ms, seen_ms.
type ProcessRow = (String, String, i64, i64, i64);

fn process_from((id, host, pid, started_ms, seen_ms): ProcessRow) -> ProcessInfo {
    ProcessInfo {
        id,
        host,
        pid,
        started_ms,
        seen_ms,
    }
}

/// How many incidents one transaction of a change to many changes: few enough that the
/// write turn it holds (on SQLite, every writer's) stays short.
const CHANGES_PER_TRANSACTION: usize = 200;

/// Applies `changes` to incident `id` in `tx`, as [`IncidentStore::change_incident_all`]
/// describes: each with its entry, its push to the provider and its rule event. A refusal
/// comes before anything is written.
#[allow(clippy::too_many_arguments)]
async fn change_in(
    tx: &mut Tx,
    backend: Backend,
    id: i64,
    expected_version: Option<i64>,
    author: &str,
    changes: &[Change],
    sla: &SlaPolicy,
    now: DateTime<Utc>,
) -> Result<Incident, StoreError> {
    let mut before = read_incident(tx, backend, id).await?;
    if let Some(expected) = expected_version.filter(|v| *v != before.version) {
        return Err(StoreError::Conflict {
            id,
            expected,
            found: before.version,
        });
    }
    for change in changes {
        let (moved, _) =
            apply_change(tx, backend, &before, author, change, sla, "change", now).await?;
        if let Some(mirrored) = ToProvider::of_change(change)
            && !before.is_manual()
        {
            queue_push(tx, &before, &mirrored, now).await?;
        }
        rules::queue_event(tx, backend, id, rules::trigger_of(change), &moved, 0).await?;
        before = read_incident(tx, backend, id).await?;
    }
    Ok(before)
}

/// Applies a lifecycle change to `before` inside a transaction: the new fields, a version
/// bump, the SLA due time for the new severity, and an entry of `kind` listing what moved.
/// Returns what moved and the lifecycle as written.
#[allow(clippy::too_many_arguments)]
async fn apply_change(
    tx: &mut Tx,
    backend: Backend,
    before: &Incident,
    author: &str,
    change: &Change,
    sla: &SlaPolicy,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<(Value, watchfloor_core::Lifecycle), StoreError> {
    let (moved, after) = write_change(tx, backend, before, change, sla, now).await?;
    let body = serde_json::json!({"changes": moved});
    insert_entry(tx, before.id, now, author, kind, &body).await?;
    Ok((moved, after))
}

/// [`apply_change`] but its entry: the lifecycle's rules (a refusal comes before anything
/// is written), the new fields, the version and the SLA due time. Returns what moved, for
/// the entry, and the lifecycle as written.
async fn write_change(
    tx: &mut Tx,
    backend: Backend,
    before: &Incident,
    change: &Change,
    sla: &SlaPolicy,
    now: DateTime<Utc>,
) -> Result<(Value, watchfloor_core::Lifecycle), StoreError> {
    let id = before.id;
    let mut after = before.lifecycle();
    let moved = after
        .apply(change, now)
        .map_err(|error| StoreError::Refused { id, error })?;

    // Only the columns that moved are written, so that the triggers on the others (the
    // facet counts) do not fire for, say, a label.
    let before_l = before.lifecycle();
    let mut q = crate::dialect::Sql::new(backend, "UPDATE incidents SET modified = ");
    q.push_bind(micros(now)).push(", version = version + 1");
    if after.status != before_l.status {
        q.push(", status = ").push_bind(after.status.as_str());
        if after.status == Status::Active {
            q.push(", first_active = COALESCE(first_active, ")
                .push_bind(micros(now))
                .push(")");
        }
    }
    if after.severity != before_l.severity {
        q.push(", severity = ").push_bind(after.severity.value());
        q.push(", sla_due = ").push_bind(micros(
            sla.due(sla.start(before.created, before.occurred), after.severity),
        ));
    }
    if after.owner != before_l.owner {
        q.push(", owner = ").push_bind(after.owner.clone());
    }
    if after.first_assigned != before_l.first_assigned {
        q.push(", first_assigned = ")
            .push_bind(after.first_assigned.map(micros));
    }
    if after.kind != before_l.kind {
        q.push(", type = ").push_bind(after.kind.clone());
    }
    if after.close_reason != before_l.close_reason {
        q.push(", close_reason = ")
            .push_bind(after.close_reason.map(|r| r.as_str()));
    }
    if after.close_notes != before_l.close_notes {
        q.push(", close_notes = ")
            .push_bind(after.close_notes.clone());
    }
    if after.closed != before_l.closed {
        q.push(", closed = ").push_bind(after.closed.map(micros));
    }
    q.push(" WHERE id = ").push_bind(id);
    q.build().execute(&mut **tx).await?;
    // Labels are kept in the packed record.
    if after.labels != before_l.labels {
        let mut record = read_record(tx, id).await?;
        record.labels = after.labels.clone();
        write_record(tx, id, &before.integration, &record).await?;
    }
    let moved = serde_json::to_value(&moved).map_err(|e| StoreError::Database(e.to_string()))?;
    Ok((moved, after))
}

/// Appends war-room entries of `kind` by `author` made at `at`, each an incident's id and
/// body, in one statement.
async fn insert_entries(
    tx: &mut Tx,
    backend: Backend,
    at: DateTime<Utc>,
    author: &str,
    kind: &str,
    entries: &[(i64, Value)],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut q = crate::dialect::Sql::new(
        backend,
        "INSERT INTO incident_entries (incident_id, created, author, kind, body) VALUES ",
    );
    for (n, (id, body)) in entries.iter().enumerate() {
        q.push_row(n == 0, |row| {
            row.bind(*id)
                .bind(ts(at))
                .bind(author.to_string())
                .bind(kind.to_string())
                .bind(body.to_string());
        });
    }
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Queues pushes of incidents' changes to their providers, in one statement.
async fn queue_pushes(
    tx: &mut Tx,
    backend: Backend,
    pushes: &[(Incident, ToProvider)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if pushes.is_empty() {
        return Ok(());
    }
    let mut q = crate::dialect::Sql::new(
        backend,
        "INSERT INTO outbox (incident_id, instance, external_id, kind, body, created) VALUES ",
    );
    for (n, (incident, change)) in pushes.iter().enumerate() {
        q.push_row(n == 0, |row| {
            row.bind(incident.id)
                .bind(incident.instance.clone())
                .bind(incident.external_id.clone())
                .bind(change.kind())
                .bind(change.body().to_string())
                .bind(ts(now));
        });
    }
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Queues a push of an incident's change to its provider.
async fn queue_push(
    tx: &mut Tx,
    incident: &Incident,
    change: &ToProvider,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (incident_id, instance, external_id, kind, body, created) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(incident.id)
    .bind(&incident.instance)
    .bind(&incident.external_id)
    .bind(change.kind())
    .bind(change.body().to_string())
    .bind(ts(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends a war-room entry inside a transaction.
async fn insert_entry(
    tx: &mut Tx,
    id: i64,
    at: DateTime<Utc>,
    author: &str,
    kind: &str,
    body: &Value,
) -> Result<WarRoomEntry, StoreError> {
    let entry_id: i64 = sqlx::query_scalar(
        "INSERT INTO incident_entries (incident_id, created, author, kind, body) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(id)
    .bind(ts(at))
    .bind(author)
    .bind(kind)
    .bind(body.to_string())
    .fetch_one(&mut **tx)
    .await?;
    Ok(WarRoomEntry {
        id: entry_id,
        incident_id: id,
        created: at,
        author: author.to_string(),
        kind: kind.to_string(),
        body: body.clone(),
    })
}

/// The start of a page of incidents read as rows (PostgreSQL): the columns every read of an
/// incident takes.
static PAGE_ROWS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE 1 = 1"));

impl SqlStore {
    /// One page of `filter`'s incidents, in its order. SQLite builds the page as one JSON text
    /// (one value through the driver, rather than two dozen per row); PostgreSQL sends rows, as
    /// building JSON there took a third of its time per page (`json_build_object` looks up
    /// each argument's type on every row, and a packed record goes as hex).
    async fn read_page(
        &self,
        filter: &IncidentFilter,
        hints: &Hints,
    ) -> Result<Vec<Incident>, StoreError> {
        match self.backend {
            Backend::Sqlite => {
                let q = self.page_query(filter, hints, SQLITE_PAGE, ") AS page");
                let text: String = q.build_query_scalar().fetch_one(self.reads(filter)).await?;
                let stored: Vec<StoredIncident> = serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("incident page: {e}")))?;
                let mut page = stored
                    .into_iter()
                    .map(StoredIncident::into_incident)
                    .collect::<Result<Vec<_>, _>>()?;
                sort_page(&mut page, filter.sort);
                Ok(page)
            }
            Backend::Postgres => {
                let pages = self.pages.as_ref().ok_or_else(|| {
                    StoreError::Database("the store has no connections for pages".into())
                })?;
                let q = self.page_query(filter, hints, &PAGE_ROWS, "");
                let rows = q.build_postgres()?.fetch_all(pages).await?;
                rows.iter().map(incident_from_row).collect()
            }
        }
    }

    /// The query of one page of `filter`: `head`, the filter, its order and limits, `tail`.
    fn page_query(&self, filter: &IncidentFilter, hints: &Hints, head: &str, tail: &str) -> Sql {
        let mut q = self.sql(head);
        push_filter(&mut q, filter, hints);
        let direction = if filter.sort.ascending { "ASC" } else { "DESC" };
        q.push(format!(
            " ORDER BY {} {direction}, id {direction}",
            sort_column(filter.sort.field)
        ));
        match filter.limit {
            Some(n) => q.push(" LIMIT ").push_bind(n as i64),
            None => q.push(format!(" LIMIT {}", self.backend.no_limit())),
        };
        if let Some(n) = filter.offset {
            q.push(" OFFSET ").push_bind(n as i64);
        }
        q.push(tail);
        q
    }

    /// The filter columns to test row by row rather than through their index (see
    /// [`Hints::broad`]) and whether the whole filter is narrow ([`Hints::narrow`]): on SQLite, when the page is sorted by occurrence, severity or SLA due
    /// time and the filter's index is in another order, those whose value matches more than
    /// [`COMMON`] incidents (counted no further, remembered for
    /// [`COMMON_TTL`]), unless the whole filter matches no more than that. PostgreSQL's planner
    /// weighs this itself.
    async fn steer(
        &self,
        filter: &IncidentFilter,
    ) -> Result<(std::collections::HashSet<&'static str>, bool), StoreError> {
        let mut broad = std::collections::HashSet::new();
        let sort = filter.sort.field;
        if self.backend != Backend::Sqlite
            || !matches!(
                sort,
                SortField::Occurred | SortField::Severity | SortField::SlaDue
            )
        {
            return Ok((broad, false));
        }
        // One organization's open incidents of one status and one severity, by occurrence:
        // the triage index holds them in that order, however many match; a `+` on either
        // would keep it out.
        if filter::triage_view(self.backend, filter) {
            return Ok((broad, false));
        }
        // Status, organization, instance and owner have indexes in occurrence order; severity
        // has one in its own order only.
        let other_sort = sort != SortField::Occurred;
        // Each filter alone, whose index is in another order than the sort: status,
        // organization, instance and owner have theirs in occurrence order, severity its own.
        let mut terms: Vec<(&'static str, IncidentFilter)> = Vec::new();
        let alone = IncidentFilter::default;
        if other_sort {
            if !filter.status.is_empty() {
                let status = filter.status.clone();
                terms.push(("status", IncidentFilter { status, ..alone() }));
            }
            if let Some(o) = &filter.organization {
                let organization = Some(o.clone());
                terms.push((
                    "organization",
                    IncidentFilter {
                        organization,
                        ..alone()
                    },
                ));
            }
            if let Some(i) = &filter.instance {
                let instance = Some(i.clone());
                terms.push((
                    "instance",
                    IncidentFilter {
                        instance,
                        ..alone()
                    },
                ));
            }
            if let Some(o) = &filter.owner {
                let owner = Some(o.clone());
                terms.push(("owner", IncidentFilter { owner, ..alone() }));
            }
        }
        if !filter.severity.is_empty() && sort != SortField::Severity {
            let severity = filter.severity.clone();
            terms.push((
                "severity",
                IncidentFilter {
                    severity,
                    ..alone()
                },
            ));
        }
        for (column, term) in terms {
            let count = self.count_matching_up_to(&term, COMMON as usize + 1);
            if self.more_than_common(filter_key(&term), count).await? {
                broad.insert(column);
            }
        }
        // Filters each broad can still be narrow together; then walking the sort's index
        // would read much of it, where the narrowest filter's index holds every match.
        let filtered = !broad.is_empty()
            || !filter.status.is_empty()
            || !filter.severity.is_empty()
            || filter.organization.is_some()
            || filter.instance.is_some()
            || filter.owner.is_some()
            || !filter.conditions.is_empty();
        let mut narrow = false;
        // (A later page sorted by occurrence needs no judgement: its keyset is a range in the
        // filters' own indexes.)
        if filtered && (!broad.is_empty() || (other_sort && filter.after.is_some())) {
            let all = IncidentFilter {
                after: None,
                offset: None,
                limit: None,
                ..filter.clone()
            };
            let count = self.count_matching_up_to(&all, COMMON as usize + 1);
            if !self.more_than_common(filter_key(filter), count).await? {
                broad.clear();
                narrow = true;
                // Sorted by severity, severity's index is the sort's; another filter's, if
                // there is one, reads fewer.
                if sort == SortField::Severity
                    && (!filter.status.is_empty()
                        || filter.organization.is_some()
                        || filter.instance.is_some()
                        || filter.owner.is_some())
                {
                    broad.insert("severity");
                }
            }
        }
        Ok((broad, narrow))
    }

    /// Whether more than [`COMMON`] incidents match, as `count` (counting no further) says,
    /// remembered under `key` for [`COMMON_TTL`]: the live queue repeats its query every few
    /// seconds, and how many match changes slowly.
    async fn more_than_common(
        &self,
        key: String,
        count: impl std::future::Future<Output = Result<usize, StoreError>>,
    ) -> Result<bool, StoreError> {
        let known = {
            let cache = self.common_texts.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .get(&key)
                .filter(|(_, at)| at.elapsed() < COMMON_TTL)
                .map(|(c, _)| *c)
        };
        if let Some(known) = known {
            return Ok(known);
        }
        let many = count.await? > COMMON as usize;
        let mut cache = self.common_texts.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= 1000 {
            cache.clear();
        }
        cache.insert(key, (many, std::time::Instant::now()));
        Ok(many)
    }

    /// Which of a filter's search texts are common: more than [`COMMON`] incidents match
    /// them in the full-text index (counted no further), remembered for [`COMMON_TTL`].
    /// Every query whose filter has a search text asks this first, and so first brings the
    /// full-text index up to date with what was committed before it.
    async fn common_words(&self, filter: &IncidentFilter) -> Result<CommonWords, StoreError> {
        let mut common = CommonWords::new();
        let mut caught_up = false;
        if filter::has_indicator(&filter.conditions) {
            self.catch_up_indicators().await?;
            caught_up = true;
        }
        for value in filter::indicators(filter.conditions.iter().map(|c| c.term.clone())) {
            let key = filter::common_indicator_key(&value);
            let count = async {
                let ix = self.backend.index_schema();
                let mut q = self.sql(format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM {ix}indicator_links WHERE "
                ));
                filter::push_lookups(&mut q, &value);
                q.push(format!(" LIMIT {}) AS found", COMMON + 1));
                let n: i64 = q.build_query_scalar().fetch_one(&self.text_reads).await?;
                Ok(n as usize)
            };
            if self.more_than_common(key.clone(), count).await? {
                common.insert(key);
            }
        }
        for text in texts(filter.conditions.iter().map(|c| c.term.clone())) {
            if !text.chars().any(char::is_alphanumeric) {
                continue;
            }
            if !caught_up {
                self.text.catch_up().await?;
                caught_up = true;
            }
            let count = async {
                let q = self.backend.text_count(&text, COMMON + 1);
                let n: i64 = match self.backend {
                    Backend::Sqlite => q.build_query_scalar().fetch_one(&self.text_reads).await?,
                    // PostgreSQL guesses that 2% of rows match any text, so with the count's
                    // LIMIT it reads the table until it has found that many: for a word few
                    // incidents hold, the whole table (3.6 s at ten million). Told to use the
                    // text index, a rare word is counted in 3 ms, and the commonest in
                    // 250 ms (once per `COMMON_TTL`).
                    Backend::Postgres => {
                        let mut tx = self.text_reads.begin().await?;
                        sqlx::query("SET LOCAL enable_seqscan = off")
                            .execute(&mut *tx)
                            .await?;
                        let n = q.build_query_scalar().fetch_one(&mut *tx).await?;
                        tx.rollback().await?;
                        n
                    }
                };
                Ok(n as usize)
            };
            let is_common = self.more_than_common(text.clone(), count).await?;
            if is_common {
                common.insert(text);
            }
        }
        Ok(common)
    }

    /// Which of `incidents` the instance has stored already, by external id (as stored), on
    /// SQLite: a fetch step that reads a window again is mostly such, and they need not be
    /// packed and written to be dropped (the same 100,000 again: 122,000/s packed, 415,000/s
    /// left out). One stored meanwhile is still dropped by the insert's key. Not asked on
    /// PostgreSQL, whose planner, with no statistics yet for a growing table, read the whole
    /// table for it (new incidents: 12,500/s became 2,900/s).
    async fn stored_of(
        &self,
        instance: &str,
        incidents: &[NewIncident],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut stored = std::collections::HashSet::new();
        if self.backend != Backend::Sqlite {
            return Ok(stored);
        }
        for chunk in incidents.chunks(500) {
            let mut q = self.sql("SELECT external_id FROM incidents WHERE instance = ");
            q.push_bind(instance.to_string())
                .push(" AND external_id IN (");
            for (n, inc) in chunk.iter().enumerate() {
                q.push(if n == 0 { "" } else { ", " })
                    .push_bind(stored_text(&inc.external_id));
            }
            q.push(")");
            let found: Vec<String> = q.build_query_scalar().fetch_all(&self.pool).await?;
            stored.extend(found);
        }
        Ok(stored)
    }

    /// Adds `n` synthetic incidents of instance `synthetic`, in one statement, for benchmarks
    /// and load tests: a minute apart (closer for more than 2.6 million, so that they span at
    /// most five years), the newest a minute ago, across 200 organizations, every severity and
    /// status, a quarter unassigned.
    pub async fn fill_synthetic(&self, n: usize) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let fill = match self.backend {
            Backend::Sqlite => sqlite::FILL_SYNTHETIC,
            Backend::Postgres => postgres::FILL_SYNTHETIC,
        };
        // A minute apart, or closer for more than 2.6 million (five years), the newest a
        // minute ago: a real store's incidents all occurred in the past, and its last days
        // hold some (at ten million, a minute apart from 2020 ran to 2039, and "SLA breached"
        // walked the newest 6 million to find any).
        let step = (160_000_000 / n.max(1) as i64).clamp(1, 60);
        let first = Utc::now().timestamp() - step * n as i64;
        sqlx::query(fill)
            .bind(n as i64)
            .bind(step)
            .bind(first)
            .execute(&mut *tx)
            .await?;
        recount(&mut tx).await?;
        tx.commit().await?;
        // The planner's statistics, the full-text index and the indicators, as a store that
        // grew to this size over time would have them (on PostgreSQL, a benchmark measured
        // before the indicators caught up measured their drain as well). PostgreSQL's rows
        // are vacuumed too, as autovacuum would have done a part at a time as they came: one
        // statement's ten million rows were otherwise vacuumed, and their hint bits set, by
        // the first reads and autovacuum while a benchmark ran.
        self.catch_up_indicators().await?;
        let analyze = match self.backend {
            Backend::Sqlite => "ANALYZE",
            Backend::Postgres => "VACUUM (ANALYZE)",
        };
        sqlx::raw_sql(analyze).execute(&self.pool).await?;
        Ok(())
    }
}

/// The sum of two sums of which either may be none (SQL's SUM of no values).
fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

impl FetchStore for SqlStore {
    fn commit_fetch<'a>(
        &'a self,
        target: FetchTarget<'a>,
        incidents: &'a [NewIncident],
        cursor: &'a Value,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let stored = self.stored_of(target.instance, incidents).await?;
            let step = FetchCommit::new(self, &target, incidents, &stored, cursor)?;
            match self.backend {
                // Writers take turns on SQLite: steps that wait are written together.
                Backend::Sqlite => self.commit_in_turn(step).await,
                // PostgreSQL writes concurrently.
                Backend::Postgres => {
                    let mut results = self.commit_steps(vec![step]).await;
                    results.pop().unwrap_or(Ok(0))
                }
            }
        })
    }

    fn cursor<'a>(
        &'a self,
        instance: &'a str,
        scope: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>, StoreError>> {
        Box::pin(async move {
            let text: Option<String> = sqlx::query_scalar(
                "SELECT cursor FROM fetch_cursors WHERE instance = $1 AND scope = $2",
            )
            .bind(instance)
            .bind(scope)
            .fetch_optional(&self.pool)
            .await?;
            text.map(|t| {
                serde_json::from_str(&t)
                    .map_err(|e| StoreError::Corrupt(format!("cursor of {instance}: {e}")))
            })
            .transpose()
        })
    }

    fn count<'a>(&'a self, instance: &'a str) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM incidents WHERE instance = $1")
                .bind(instance)
                .fetch_one(&self.pool)
                .await?;
            Ok(n as usize)
        })
    }
}

impl HealthStore for SqlStore {
    fn can_write(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            sqlx::query("DELETE FROM schema_version WHERE version = -1")
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO schema_version (version, applied) VALUES (-1, 'write check')")
                .execute(&mut *tx)
                .await?;
            tx.rollback().await?;
            Ok(())
        })
    }

    fn record_success<'a>(
        &'a self,
        instance: &'a str,
        new_incidents: usize,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = ts(Utc::now());
            sqlx::query(
                "INSERT INTO instance_health (instance, last_success, consecutive_failures, incidents_last_cycle, last_cycle_at) \
                 VALUES ($1, $2, 0, $3, $4) ON CONFLICT (instance) DO UPDATE SET last_success = excluded.last_success, \
                 consecutive_failures = 0, incidents_last_cycle = excluded.incidents_last_cycle, last_cycle_at = excluded.last_cycle_at",
            )
            .bind(instance)
            .bind(&now)
            .bind(new_incidents as i64)
            .bind(&now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn record_failure<'a>(
        &'a self,
        instance: &'a str,
        error: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = ts(Utc::now());
            sqlx::query(
                "INSERT INTO instance_health (instance, last_error, last_error_at, consecutive_failures, incidents_last_cycle, last_cycle_at) \
                 VALUES ($1, $2, $3, 1, 0, $4) ON CONFLICT (instance) DO UPDATE SET last_error = excluded.last_error, \
                 last_error_at = excluded.last_error_at, consecutive_failures = instance_health.consecutive_failures + 1, \
                 incidents_last_cycle = 0, last_cycle_at = excluded.last_cycle_at",
            )
            .bind(instance)
            .bind(stored_text(error))
            .bind(&now)
            .bind(&now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn record_set_aside<'a>(
        &'a self,
        instance: &'a str,
        records: &'a [SetAside],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if records.is_empty() {
                return Ok(());
            }
            let mut tx = self.write().await?;
            sqlx::query("INSERT INTO instance_health (instance) VALUES ($1) ON CONFLICT (instance) DO NOTHING")
                .bind(instance)
                .execute(&mut *tx)
                .await?;
            let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT set_aside FROM instance_health WHERE instance = $1{}",
                self.backend.for_update()
            )))
            .bind(instance)
            .fetch_one(&mut *tx)
            .await?;
            let mut kept: Vec<SetAsideRecord> = serde_json::from_str(&text).map_err(|e| {
                StoreError::Corrupt(format!("set-aside records of {instance}: {e}"))
            })?;
            let now = Utc::now();
            for r in records {
                // A record re-read within the look-back is noted once.
                if !kept.iter().any(|k| k.record == *r) {
                    kept.push(SetAsideRecord {
                        record: r.clone(),
                        at: now,
                    });
                }
            }
            let excess = kept.len().saturating_sub(SET_ASIDE_KEPT);
            kept.drain(..excess);
            let text =
                serde_json::to_string(&kept).map_err(|e| StoreError::Database(e.to_string()))?;
            sqlx::query("UPDATE instance_health SET set_aside = $1 WHERE instance = $2")
                .bind(text)
                .bind(instance)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn record_scope<'a>(
        &'a self,
        instance: &'a str,
        scope: &'a str,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = ts(Utc::now());
            let q = match error {
                None => sqlx::query(
                    "INSERT INTO scope_health (instance, scope, last_success, consecutive_failures, last_cycle_at) \
                     VALUES ($1, $2, $3, 0, $3) ON CONFLICT (instance, scope) DO UPDATE SET \
                     last_success = excluded.last_success, consecutive_failures = 0, last_cycle_at = excluded.last_cycle_at",
                )
                .bind(instance)
                .bind(scope)
                .bind(&now),
                Some(error) => sqlx::query(
                    "INSERT INTO scope_health (instance, scope, last_error, last_error_at, consecutive_failures, last_cycle_at) \
                     VALUES ($1, $2, $3, $4, 1, $4) ON CONFLICT (instance, scope) DO UPDATE SET \
                     last_error = excluded.last_error, last_error_at = excluded.last_error_at, \
                     consecutive_failures = scope_health.consecutive_failures + 1, last_cycle_at = excluded.last_cycle_at",
                )
                .bind(instance)
                .bind(scope)
                .bind(stored_text(error))
                .bind(&now),
            };
            q.execute(&self.pool).await?;
            Ok(())
        })
    }

    fn keep_scopes<'a>(
        &'a self,
        instance: &'a str,
        scopes: &'a [String],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let known: Vec<String> =
                sqlx::query_scalar("SELECT scope FROM scope_health WHERE instance = $1")
                    .bind(instance)
                    .fetch_all(&self.pool)
                    .await?;
            for gone in known.iter().filter(|k| !scopes.contains(k)) {
                sqlx::query("DELETE FROM scope_health WHERE instance = $1 AND scope = $2")
                    .bind(instance)
                    .bind(gone)
                    .execute(&self.pool)
                    .await?;
            }
            Ok(())
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<Vec<Health>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM instance_health ORDER BY instance")
                .fetch_all(&self.pool)
                .await?;
            let scope_rows = sqlx::query("SELECT * FROM scope_health ORDER BY instance, scope")
                .fetch_all(&self.pool)
                .await?;
            let mut scopes: Vec<(String, ScopeHealth)> = scope_rows
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get::<String, _>("instance")?,
                        ScopeHealth {
                            scope: r.try_get("scope")?,
                            last_success: parse_opt_ts(r.try_get("last_success")?)?,
                            last_error: r.try_get("last_error")?,
                            last_error_at: parse_opt_ts(r.try_get("last_error_at")?)?,
                            consecutive_failures: r.try_get("consecutive_failures")?,
                            last_cycle_at: parse_ts(&r.try_get::<String, _>("last_cycle_at")?)?,
                        },
                    ))
                })
                .collect::<Result<_, StoreError>>()?;
            rows.iter()
                .map(|r| {
                    let instance: String = r.try_get("instance")?;
                    let mut health = Health {
                        scopes: scopes
                            .extract_if(.., |(i, _)| *i == instance)
                            .map(|(_, s)| s)
                            .collect(),
                        instance,
                        last_success: parse_opt_ts(r.try_get("last_success")?)?,
                        last_error: r.try_get("last_error")?,
                        last_error_at: parse_opt_ts(r.try_get("last_error_at")?)?,
                        consecutive_failures: r.try_get("consecutive_failures")?,
                        incidents_last_cycle: r.try_get("incidents_last_cycle")?,
                        last_cycle_at: parse_opt_ts(r.try_get("last_cycle_at")?)?,
                        set_aside: serde_json::from_str(&r.try_get::<String, _>("set_aside")?)
                            .map_err(|e| StoreError::Corrupt(format!("set-aside records: {e}")))?,
                    };
                    // A scope still failing keeps the instance failing, whatever another
                    // process's success on its own scopes recorded since.
                    if let Some(worst) = health
                        .scopes
                        .iter()
                        .filter(|s| s.consecutive_failures > health.consecutive_failures)
                        .max_by_key(|s| (s.consecutive_failures, s.last_error_at))
                    {
                        health.consecutive_failures = worst.consecutive_failures;
                        health.last_error = worst.last_error.clone();
                        health.last_error_at = worst.last_error_at;
                    }
                    Ok(health)
                })
                .collect()
        })
    }
}

impl SqlStore {
    /// The filter counts of a filter they are not kept for: each list counted among at most
    /// [`Facets::SAMPLE`] matching incidents, its own field left out of the filter (as the kept
    /// counts do), organizations one whatever their case.
    async fn sampled_facets(&self, filter: &IncidentFilter) -> Result<Facets, StoreError> {
        let hints = Hints {
            common: self.common_words(filter).await?,
            ..Hints::default()
        };
        let base = IncidentFilter {
            limit: None,
            offset: None,
            after: None,
            ..filter.clone()
        };
        let mut out = Facets::default();
        let mut reached = false;
        for (facet, column) in [
            (Facet::Status, "status"),
            (Facet::Severity, "severity"),
            (Facet::Organization, "organization"),
            (Facet::Owner, "owner"),
            (Facet::Instance, "instance"),
        ] {
            let mut f = base.clone();
            match facet {
                Facet::Status => f.status.clear(),
                Facet::Severity => {
                    f.severity.clear();
                    f.min_severity = None;
                }
                Facet::Organization => f.organization = None,
                Facet::Owner => f.owner = None,
                Facet::Instance => f.instance = None,
            }
            let mut q = self.sql(format!(
                "SELECT CAST(value AS TEXT) AS value, CAST(COUNT(*) AS BIGINT) AS n FROM \
                 (SELECT {column} AS value FROM incidents WHERE 1 = 1"
            ));
            push_filter(&mut q, &f, &hints);
            q.push(" LIMIT ")
                .push_bind(Facets::SAMPLE as i64)
                .push(") AS m GROUP BY value ORDER BY 2 DESC, 1");
            let mut counts: Vec<(Option<String>, u64)> = Vec::new();
            for row in q.build().fetch_all(self.reads(filter)).await? {
                let value: Option<String> = row.try_get("value")?;
                counts.push((value, row.try_get::<i64, _>("n")? as u64));
            }
            reached |= counts.iter().map(|(_, n)| n).sum::<u64>() >= Facets::SAMPLE as u64;
            match facet {
                Facet::Status => {
                    out.status = [Status::Pending, Status::Active, Status::Closed]
                        .into_iter()
                        .map(|s| {
                            let n = counts
                                .iter()
                                .find(|(v, _)| v.as_deref() == Some(s.as_str()))
                                .map_or(0, |(_, n)| *n);
                            (s, n)
                        })
                        .collect();
                }
                Facet::Severity => {
                    out.severity = Severity::ALL
                        .into_iter()
                        .rev()
                        .map(|s| {
                            let n = counts
                                .iter()
                                .filter(|(v, _)| {
                                    v.as_deref()
                                        .and_then(|v| v.parse::<f64>().ok())
                                        .and_then(Severity::from_value)
                                        == Some(s)
                                })
                                .map(|(_, n)| *n)
                                .sum();
                            (s, n)
                        })
                        .collect();
                }
                Facet::Organization => {
                    // One entry per organization whatever its case, shown as most spell it.
                    let mut merged: Vec<(String, u64, u64)> = Vec::new();
                    for (v, n) in counts {
                        let v = v.unwrap_or_default();
                        match merged
                            .iter_mut()
                            .find(|(o, _, _)| o.eq_ignore_ascii_case(&v))
                        {
                            Some(m) => m.1 += n,
                            None => merged.push((v, n, n)),
                        }
                    }
                    merged.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    out.organization = merged
                        .into_iter()
                        .take(Facets::TOP)
                        .map(|(o, n, _)| (o, n))
                        .collect();
                }
                Facet::Owner => {
                    out.owner = counts
                        .into_iter()
                        .take(Facets::TOP)
                        .map(|(v, n)| (v.filter(|v| !v.is_empty()), n))
                        .collect();
                }
                Facet::Instance => {
                    out.instance = counts
                        .into_iter()
                        .take(Facets::TOP)
                        .map(|(v, n)| (v.unwrap_or_default(), n))
                        .collect();
                }
            }
        }
        out.sampled = reached.then_some(Facets::SAMPLE);
        Ok(out)
    }
}

impl QueueStore for SqlStore {
    fn report_rows<'a>(
        &'a self,
        filter: &'a IncidentFilter,
        until: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<watchfloor_core::report::ReportRow>, StoreError>> {
        Box::pin(self.read_report_rows(filter, until))
    }

    fn incidents<'a>(
        &'a self,
        filter: &'a IncidentFilter,
    ) -> BoxFuture<'a, Result<Vec<Incident>, StoreError>> {
        Box::pin(async move {
            let (broad, narrow) = self.steer(filter).await?;
            let mut hints = Hints {
                common: self.common_words(filter).await?,
                broad,
                narrow,
                keyset: KeysetPart::Whole,
            };
            let parts: &[KeysetPart] = if keyset_in_parts(self.backend, filter, narrow) {
                &[KeysetPart::Tie, KeysetPart::Beyond]
            } else {
                &[KeysetPart::Whole]
            };
            let mut page = Vec::new();
            for &part in parts {
                let limit = filter.limit.map(|n| n.saturating_sub(page.len()));
                if limit == Some(0) {
                    break;
                }
                hints.keyset = part;
                let f = IncidentFilter {
                    limit,
                    ..filter.clone()
                };
                page.extend(self.read_page(&f, &hints).await?);
            }
            Ok(page)
        })
    }

    fn facets<'a>(
        &'a self,
        filter: &'a IncidentFilter,
    ) -> BoxFuture<'a, Result<Option<Facets>, StoreError>> {
        Box::pin(async move {
            if !Facets::countable(filter) {
                return self.sampled_facets(filter).await.map(Some);
            }
            // The queue asks the same counts again and again until something changes: they
            // are kept by the version of `incident_counts` (read first, so that counts are
            // never older than the version they are kept under) and the filter.
            let version: i64 = sqlx::query_scalar("SELECT v FROM incident_counts_version")
                .fetch_one(&self.pool)
                .await?;
            let key = (version, filter_key(filter));
            {
                let cache = self.facets.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(f) = cache.get(&key) {
                    return Ok(Some(f.clone()));
                }
            }
            // One statement, so that the lists agree with each other (one snapshot).
            let facets = [
                (Facet::Status, "status"),
                (Facet::Severity, "severity"),
                (Facet::Organization, "organization"),
                (Facet::Owner, "owner"),
                (Facet::Instance, "instance"),
            ];
            let mut q = self.sql("");
            for (n, (facet, column)) in facets.into_iter().enumerate() {
                q.push(if n == 0 { "" } else { " UNION ALL " });
                if facet == Facet::Organization {
                    // Organizations match in any case, so their spellings count as one,
                    // shown as the spelling most incidents have: one incident spelled
                    // otherwise cannot relabel an organization for everyone.
                    q.push(format!(
                        "SELECT * FROM (SELECT {n} AS facet, CAST(value AS TEXT) AS value, \
                         CAST(total AS BIGINT) AS n FROM (SELECT organization AS value, \
                         SUM(SUM(n)) OVER (PARTITION BY lower(organization)) AS total, \
                         ROW_NUMBER() OVER (PARTITION BY lower(organization) \
                         ORDER BY SUM(n) DESC, organization) AS rank \
                         FROM incident_counts WHERE n > 0"
                    ));
                    push_counted_filters(&mut q, filter, Some(facet), &|c| c.to_string());
                    q.push(format!(
                        " GROUP BY organization) AS spellings WHERE rank = 1 \
                         ORDER BY 3 DESC, 2 LIMIT {}) AS f{n}",
                        Facets::TOP
                    ));
                    continue;
                }
                q.push(format!(
                    "SELECT * FROM (SELECT {n} AS facet, CAST({column} AS TEXT) AS value, \
                     CAST(SUM(n) AS BIGINT) AS n FROM incident_counts WHERE n > 0"
                ));
                push_counted_filters(&mut q, filter, Some(facet), &|c| c.to_string());
                q.push(format!(
                    " GROUP BY {column} ORDER BY 3 DESC, 2 LIMIT {}) AS f{n}",
                    Facets::TOP
                ));
            }
            let mut out = Facets::default();
            let (mut status, mut severity) = (Vec::new(), Vec::new());
            for row in q.build().fetch_all(&self.pool).await? {
                let facet: i64 = row.try_get("facet")?;
                let value: String = row.try_get("value")?;
                let n = row.try_get::<i64, _>("n")? as u64;
                match facet {
                    0 => status.push((Status::parse(&value).map_err(StoreError::Corrupt)?, n)),
                    1 => {
                        let v: f64 = value
                            .parse()
                            .map_err(|_| StoreError::Corrupt(format!("a severity of {value}")))?;
                        let s = Severity::from_value(v)
                            .ok_or_else(|| StoreError::Corrupt(format!("a severity of {value}")))?;
                        severity.push((s, n));
                    }
                    2 => out.organization.push((value, n)),
                    3 => out.owner.push(((!value.is_empty()).then_some(value), n)),
                    _ => out.instance.push((value, n)),
                }
            }
            let of = |v: &[(Status, u64)], s: Status| {
                v.iter().find(|(x, _)| *x == s).map_or(0, |(_, n)| *n)
            };
            out.status = [Status::Pending, Status::Active, Status::Closed]
                .into_iter()
                .map(|s| (s, of(&status, s)))
                .collect();
            out.severity = Severity::ALL
                .into_iter()
                .rev()
                .map(|s| {
                    let n = severity
                        .iter()
                        .find(|(x, _)| *x == s)
                        .map_or(0, |(_, n)| *n);
                    (s, n)
                })
                .collect();
            let mut cache = self.facets.lock().unwrap_or_else(|e| e.into_inner());
            // Only the newest version's are worth keeping, and not without bound.
            cache.retain(|(v, _), _| *v >= version);
            if cache.len() >= 1000 {
                cache.clear();
            }
            cache.insert(key, out.clone());
            Ok(Some(out))
        })
    }

    fn count_matching<'a>(
        &'a self,
        filter: &'a IncidentFilter,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let mut q = self.sql("SELECT COUNT(*) FROM incidents WHERE 1 = 1");
            let hints = Hints {
                common: self.common_words(filter).await?,
                ..Hints::default()
            };
            push_filter(&mut q, filter, &hints);
            let n: i64 = q.build_query_scalar().fetch_one(self.reads(filter)).await?;
            Ok(n as usize)
        })
    }

    fn count_matching_up_to<'a>(
        &'a self,
        filter: &'a IncidentFilter,
        cap: usize,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let mut q = self.sql("SELECT COUNT(*) FROM (SELECT 1 FROM incidents WHERE 1 = 1");
            let hints = Hints {
                common: self.common_words(filter).await?,
                ..Hints::default()
            };
            push_filter(&mut q, filter, &hints);
            q.push(" LIMIT ").push_bind(cap as i64).push(") AS matches");
            let n: i64 = q.build_query_scalar().fetch_one(self.reads(filter)).await?;
            Ok(n as usize)
        })
    }

    fn dashboard<'a>(
        &'a self,
        scope: &'a crate::Scope,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<crate::DashboardStats, StoreError>> {
        Box::pin(async move {
            let scoped = IncidentFilter {
                scope: scope.clone(),
                ..IncidentFilter::default()
            };
            // Open incidents per organization and owner are the filter counts of the open
            // filter, not counted here (a million incidents took a second).
            let open = self
                .facets(&IncidentFilter {
                    scope: scope.clone(),
                    status: vec![Status::Pending, Status::Active],
                    ..IncidentFilter::default()
                })
                .await?
                .unwrap_or_default();
            // The period's incidents read once, grouped by day, severity, provider and
            // organization together, and summed each way here: one organization's incidents
            // are read through its index (which tells the period on its entries), a row each,
            // and reading them twice (for the days, then for the times) took 320 ms at ten
            // million.
            let mut q = self.sql(format!(
                "SELECT {day} AS day, severity, \
                 COALESCE(NULLIF(integration, ''), '(manual)'), \
                 COALESCE(NULLIF(organization, ''), '(none)'), \
                 SUM({assigned} - {created}), COUNT(first_assigned), \
                 SUM({closed} - {created}), COUNT(closed), COUNT(*) FROM incidents WHERE 1 = 1",
                assigned = self.backend.seconds("first_assigned"),
                closed = self.backend.seconds("closed"),
                created = self.backend.seconds("created"),
                day = self.backend.day("created"),
            ));
            push_filter(&mut q, &scoped, &Hints::default());
            q.push(" AND created >= ")
                .push_bind(micros(since))
                .push(" GROUP BY 1, 2, 3, 4");
            // Time to assign summed and counted, the same to close, and incidents.
            type Sums = (Option<f64>, i64, Option<f64>, i64, i64);
            type Grouped = (
                String,
                f64,
                String,
                String,
                Option<f64>,
                i64,
                Option<f64>,
                i64,
                i64,
            );
            let rows: Vec<Grouped> = q.build_query_as().fetch_all(&self.pool).await?;
            let mut by_day = std::collections::BTreeMap::<(String, Severity), usize>::new();
            for (day, severity, .., n) in &rows {
                if let Some(severity) = Severity::from_value(*severity) {
                    *by_day.entry((day.clone(), severity)).or_default() += *n as usize;
                }
            }
            let created_by_day = by_day
                .into_iter()
                .map(|((day, severity), n)| (day, severity, n))
                .collect();
            let rows = rows
                .into_iter()
                .map(|(_, _, provider, organization, a, na, c, nc, n)| {
                    (provider, organization, a, na, c, nc, n)
                });
            let mut by_provider = std::collections::BTreeMap::<String, Sums>::new();
            let mut by_organization = std::collections::BTreeMap::<String, Sums>::new();
            for (provider, organization, assign, assigned, close, closed, n) in rows {
                for (m, key) in [
                    (&mut by_provider, provider),
                    (&mut by_organization, organization),
                ] {
                    let e = m.entry(key).or_insert((None, 0, None, 0, 0));
                    e.0 = add(e.0, assign);
                    e.1 += assigned;
                    e.2 = add(e.2, close);
                    e.3 += closed;
                    e.4 += n;
                }
            }
            let mut times = Vec::new();
            for (by, sums) in [("provider", by_provider), ("organization", by_organization)] {
                let mut rows: Vec<(String, Sums)> = sums.into_iter().collect();
                rows.sort_by(|a, b| b.1.4.cmp(&a.1.4).then_with(|| a.0.cmp(&b.0)));
                let mean = |sum: Option<f64>, n: i64| sum.filter(|_| n > 0).map(|s| s / n as f64);
                times.extend(rows.into_iter().take(20).map(|(name, (a, na, c, nc, n))| {
                    crate::TimesToAct {
                        by,
                        name,
                        to_assign: mean(a, na),
                        to_close: mean(c, nc),
                        incidents: n as usize,
                    }
                }));
            }
            // The status counts leave out the status filter: every status is there.
            let open_total = (open.status.iter())
                .filter(|(s, _)| *s != Status::Closed)
                .map(|(_, n)| *n as usize)
                .sum();
            Ok(crate::DashboardStats {
                created_by_day,
                open: open_total,
                open_by_org: (open.organization.into_iter())
                    .map(|(o, n)| (o, n as usize))
                    .collect(),
                open_by_owner: (open.owner.into_iter())
                    .map(|(o, n)| (o.unwrap_or_default(), n as usize))
                    .collect(),
                times,
            })
        })
    }
}

impl IncidentStore for SqlStore {
    fn incident(&self, id: i64) -> BoxFuture<'_, Result<Option<Incident>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(incident_from_row).transpose()
        })
    }

    fn incident_by_external_id<'a>(
        &'a self,
        instance: &'a str,
        external_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Incident>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE instance = $1 AND external_id = $2"
            )))
            .bind(instance)
            .bind(stored_text(external_id))
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(incident_from_row).transpose()
        })
    }

    fn create_incident<'a>(
        &'a self,
        incident: &'a ManualIncident,
        author: &'a str,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<Incident, StoreError>> {
        Box::pin(async move {
            let now = Utc::now();
            let mut tx = self.write().await?;
            // Manual incidents belong to no instance; their external id is their own id.
            let empty = Value::Object(Default::default());
            let record = record::pack(
                "",
                &record::RecordRef {
                    raw: incident
                        .raw
                        .as_ref()
                        .filter(|r| !r.is_null())
                        .unwrap_or(&empty),
                    labels: &incident.labels,
                    seen: None,
                },
            )?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO incidents (instance, integration, external_id, name, type, occurred, created, modified, \
                 severity, status, organization, owner, first_assigned, details, labels, raw_json, record, sla_due) \
                 VALUES ('', '', '', $1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, '', '', $11, $12) RETURNING id",
            )
            .bind(&incident.name)
            .bind(&incident.kind)
            .bind(micros(incident.occurred.unwrap_or(now)))
            .bind(micros(now))
            .bind(micros(now))
            .bind(incident.severity.value())
            .bind(&incident.organization)
            .bind(&incident.owner)
            .bind(incident.owner.as_ref().map(|_| micros(now)))
            .bind(&incident.details)
            .bind(record)
            .bind(micros(sla.due(
                sla.start(now, incident.occurred.unwrap_or(now)),
                incident.severity,
            )))
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("UPDATE incidents SET external_id = $1 WHERE id = $2")
                .bind(format!("manual-{id}"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let counted = Counted {
                status: Status::Pending.as_str(),
                severity: incident.severity.value(),
                organization: incident.organization.clone(),
                owner: incident.owner.clone(),
                instance: "",
            };
            count_new(&mut tx, self.backend, &[counted]).await?;
            let body =
                serde_json::json!({"name": incident.name, "severity": incident.severity.label()});
            insert_entry(&mut tx, id, now, author, "created", &body).await?;
            rules::queue_event(
                &mut tx,
                self.backend,
                id,
                "created",
                &Value::Array(Vec::new()),
                0,
            )
            .await?;
            let created = read_incident(&mut tx, self.backend, id).await?;
            tx.commit().await?;
            Ok(created)
        })
    }

    fn change_incident_all<'a>(
        &'a self,
        id: i64,
        expected_version: Option<i64>,
        author: &'a str,
        changes: &'a [Change],
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<Incident, StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let after = change_in(
                &mut tx,
                self.backend,
                id,
                expected_version,
                author,
                changes,
                sla,
                Utc::now(),
            )
            .await?;
            tx.commit().await?;
            Ok(after)
        })
    }

    fn change_incidents<'a>(
        &'a self,
        ids: &'a [i64],
        author: &'a str,
        change: &'a Change,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<Vec<Result<Incident, StoreError>>, StoreError>> {
        Box::pin(async move {
            let backend = self.backend;
            let mut results = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(CHANGES_PER_TRANSACTION) {
                let now = Utc::now();
                let mut tx = self.write().await?;
                // What a change to one reads per incident is read once for the chunk: the
                // incidents before, the rules' gate, the incidents after.
                let mut before = locked_incidents(&mut tx, backend, chunk).await?;
                let gate = rules::gate(&mut tx).await?;
                let mut outcomes = Vec::with_capacity(chunk.len());
                // The entries and pushes are written for the chunk at its end, in order.
                let mut entries = Vec::with_capacity(chunk.len());
                let mut pushes = Vec::new();
                for &id in chunk {
                    // An id given twice is changed from the state the first change left.
                    let before = match before.remove(&id) {
                        Some(found) => found,
                        None => match read_incident(&mut tx, backend, id).await {
                            Ok(found) => found,
                            Err(e @ StoreError::NoIncident(_)) => {
                                outcomes.push(Err(e));
                                continue;
                            }
                            Err(e) => return Err(e),
                        },
                    };
                    // A refusal comes before anything is written, so the others of the
                    // transaction go on without it; any other failure ends the transaction,
                    // and what it held is not stored.
                    let moved =
                        match write_change(&mut tx, backend, &before, change, sla, now).await {
                            Ok((moved, _)) => moved,
                            Err(e @ StoreError::Refused { .. }) => {
                                outcomes.push(Err(e));
                                continue;
                            }
                            Err(e) => return Err(e),
                        };
                    rules::queue_event_in(
                        &mut tx,
                        backend,
                        gate.as_deref(),
                        id,
                        rules::trigger_of(change),
                        &moved,
                        0,
                    )
                    .await?;
                    entries.push((id, serde_json::json!({ "changes": moved })));
                    if let Some(mirrored) = ToProvider::of_change(change)
                        && !before.is_manual()
                    {
                        pushes.push((before, mirrored));
                    }
                    outcomes.push(Ok(id));
                }
                insert_entries(&mut tx, backend, now, author, "change", &entries).await?;
                queue_pushes(&mut tx, backend, &pushes, now).await?;
                let changed: Vec<i64> = outcomes
                    .iter()
                    .filter_map(|o| o.as_ref().ok())
                    .copied()
                    .collect();
                let after = locked_incidents(&mut tx, backend, &changed).await?;
                tx.commit().await?;
                for outcome in outcomes {
                    results.push(
                        outcome.and_then(|id| {
                            after.get(&id).cloned().ok_or(StoreError::NoIncident(id))
                        }),
                    );
                }
            }
            Ok(results)
        })
    }

    fn add_entry<'a>(
        &'a self,
        id: i64,
        author: &'a str,
        kind: &'a str,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<WarRoomEntry, StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            read_incident(&mut tx, self.backend, id).await?;
            let entry = insert_entry(&mut tx, id, Utc::now(), author, kind, body).await?;
            tx.commit().await?;
            Ok(entry)
        })
    }

    fn entries(&self, id: i64) -> BoxFuture<'_, Result<Vec<WarRoomEntry>, StoreError>> {
        Box::pin(async move {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            exists.ok_or(StoreError::NoIncident(id))?;
            let rows =
                sqlx::query("SELECT * FROM incident_entries WHERE incident_id = $1 ORDER BY id")
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?;
            rows.iter()
                .map(|r| {
                    Ok(WarRoomEntry {
                        id: r.try_get("id")?,
                        incident_id: r.try_get("incident_id")?,
                        created: parse_ts(&r.try_get::<String, _>("created")?)?,
                        author: r.try_get("author")?,
                        kind: r.try_get("kind")?,
                        body: serde_json::from_str(&r.try_get::<String, _>("body")?)
                            .map_err(|e| StoreError::Corrupt(format!("entry body: {e}")))?,
                    })
                })
                .collect()
        })
    }

    fn delete_incident<'a>(
        &'a self,
        id: i64,
        author: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let incident = read_incident(&mut tx, self.backend, id).await?;
            if !incident.is_manual() {
                sqlx::query(
                    "INSERT INTO tombstones (instance, external_id, deleted, author) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (instance, external_id) DO NOTHING",
                )
                .bind(&incident.instance)
                .bind(&incident.external_id)
                .bind(ts(Utc::now()))
                .bind(author)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM incident_entries WHERE incident_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM incidents WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn purge_closed(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            let now = ts(Utc::now());
            // What the full-text index has followed of the log of changed text can go; a
            // log the index is behind on is kept until it has read it.
            let read = match self.text.catch_up().await {
                Ok(()) => self.text.changes_read().await?,
                Err(_) => None,
            };
            let mut tx = self.write().await?;
            if let Some(read) = read {
                sqlx::query("DELETE FROM text_changes WHERE seq <= $1")
                    .bind(read)
                    .execute(&mut *tx)
                    .await?;
            }
            // The incidents to purge, in a temporary table so that every statement below
            // agrees on them.
            sqlx::query("CREATE TEMP TABLE IF NOT EXISTS purging (id BIGINT PRIMARY KEY)")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM purging").execute(&mut *tx).await?;
            // An incident waits while a push or a notification of it is still to go out.
            let chosen = sqlx::query(
                "INSERT INTO purging (id) SELECT id FROM incidents \
                 WHERE status = 'closed' AND closed < $1 \
                 AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.incident_id = incidents.id AND done IS NULL) \
                 AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.incident_id = incidents.id AND n.status = 'pending') \
                 LIMIT $2",
            )
            .bind(micros(before))
            .bind(limit as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "INSERT INTO tombstones (instance, external_id, deleted, author) \
                 SELECT instance, external_id, $1, 'retention' FROM incidents \
                 WHERE id IN (SELECT id FROM purging) AND instance <> '' \
                 ON CONFLICT (instance, external_id) DO NOTHING",
            )
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            // A delivery goes with the last of its notifications (a digest that also carries
            // incidents kept stays).
            sqlx::query(
                "DELETE FROM deliveries WHERE status <> 'pending' AND id IN \
                 (SELECT delivery FROM notifications WHERE incident_id IN (SELECT id FROM purging)) \
                 AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.channel = deliveries.channel \
                 AND n.delivery = deliveries.id AND n.incident_id NOT IN (SELECT id FROM purging))",
            )
            .execute(&mut *tx)
            .await?;
            // What rules did with it, and what it still had queued for them, go too.
            for table in [
                "incident_entries",
                "outbox",
                "notifications",
                "rule_ledger",
                "rule_events",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE incident_id IN (SELECT id FROM purging)"
                )))
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM incidents WHERE id IN (SELECT id FROM purging)")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM purging").execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(chosen as usize)
        })
    }

    fn add_note<'a>(
        &'a self,
        id: i64,
        author: &'a str,
        text: &'a str,
        mirror: bool,
    ) -> BoxFuture<'a, Result<WarRoomEntry, StoreError>> {
        Box::pin(async move {
            let now = Utc::now();
            let mut tx = self.write().await?;
            let incident = read_incident(&mut tx, self.backend, id).await?;
            let body = serde_json::json!({"text": text, "mirror": mirror});
            let entry = insert_entry(&mut tx, id, now, author, "note", &body).await?;
            if mirror && !incident.is_manual() {
                let note = ToProvider::Note {
                    text: text.to_string(),
                };
                queue_push(&mut tx, &incident, &note, now).await?;
            }
            rules::queue_event(
                &mut tx,
                self.backend,
                id,
                "note",
                &Value::Array(Vec::new()),
                0,
            )
            .await?;
            tx.commit().await?;
            Ok(entry)
        })
    }

    fn add_notes<'a>(
        &'a self,
        ids: &'a [i64],
        author: &'a str,
        text: &'a str,
        mirror: bool,
    ) -> BoxFuture<'a, Result<Vec<Result<WarRoomEntry, StoreError>>, StoreError>> {
        Box::pin(async move {
            let backend = self.backend;
            let body = serde_json::json!({"text": text, "mirror": mirror});
            let note = ToProvider::Note {
                text: text.to_string(),
            };
            let mut results = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(CHANGES_PER_TRANSACTION) {
                let now = Utc::now();
                let mut tx = self.write().await?;
                let incidents = locked_incidents(&mut tx, backend, chunk).await?;
                let gate = rules::gate(&mut tx).await?;
                let mut noted = Vec::with_capacity(chunk.len());
                for &id in chunk {
                    let Some(incident) = incidents.get(&id) else {
                        noted.push(Err(StoreError::NoIncident(id)));
                        continue;
                    };
                    let entry = insert_entry(&mut tx, id, now, author, "note", &body).await?;
                    if mirror && !incident.is_manual() {
                        queue_push(&mut tx, incident, &note, now).await?;
                    }
                    rules::queue_event_in(
                        &mut tx,
                        backend,
                        gate.as_deref(),
                        id,
                        "note",
                        &Value::Array(Vec::new()),
                        0,
                    )
                    .await?;
                    noted.push(Ok(entry));
                }
                tx.commit().await?;
                results.extend(noted);
            }
            Ok(results)
        })
    }

    fn context(&self, id: i64) -> BoxFuture<'_, Result<Value, StoreError>> {
        Box::pin(async move {
            let text: Option<String> =
                sqlx::query_scalar("SELECT context FROM incidents WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            let text = text.ok_or(StoreError::NoIncident(id))?;
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("context: {e}")))
        })
    }

    fn record_command<'a>(
        &'a self,
        id: i64,
        author: &'a str,
        body: &'a Value,
        entry_context: &'a serde_json::Map<String, Value>,
    ) -> BoxFuture<'a, Result<WarRoomEntry, StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let text: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT context FROM incidents WHERE id = $1{}",
                self.backend.for_update()
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let text = text.ok_or(StoreError::NoIncident(id))?;
            let current: Value = serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("context: {e}")))?;
            let mut context = watchfloor_core::ContextStore::from_json(current);
            context.merge(entry_context);
            sqlx::query("UPDATE incidents SET context = $1 WHERE id = $2")
                .bind(Value::Object(context.as_map().clone()).to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let entry = insert_entry(&mut tx, id, Utc::now(), author, "command", body).await?;
            tx.commit().await?;
            Ok(entry)
        })
    }
}

impl OutboxStore for SqlStore {
    fn start_push<'a>(
        &'a self,
        push: &'a Push,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            if let Some(lease) = lease {
                check_lease(&mut tx, self.backend, lease).await?;
            }
            // Only if no one started or finished it since it was read.
            let started = sqlx::query(
                "UPDATE outbox SET sending = $1 WHERE id = $2 AND done IS NULL \
                 AND COALESCE(sending, '') = $3",
            )
            .bind(ts(Utc::now()))
            .bind(push.id)
            .bind(push.sending.map(ts).unwrap_or_default())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(started == 1)
        })
    }

    fn outbox_depth(&self) -> BoxFuture<'_, Result<Vec<(String, usize)>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT instance, COUNT(*) FROM outbox WHERE done IS NULL GROUP BY instance ORDER BY instance",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(|(i, n)| (i, n as usize)).collect())
        })
    }

    fn pending_pushes<'a>(
        &'a self,
        instance: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Push>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM outbox WHERE instance = $1 AND done IS NULL ORDER BY id",
            )
            .bind(instance)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(push_from_row).collect()
        })
    }

    fn incident_pushes(&self, incident_id: i64) -> BoxFuture<'_, Result<Vec<Push>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM outbox WHERE incident_id = $1 AND done IS NULL ORDER BY id",
            )
            .bind(incident_id)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(push_from_row).collect()
        })
    }

    fn finish_push<'a>(
        &'a self,
        push: &'a Push,
        instance: &'a str,
        outcome: &'a PushOutcome,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = Utc::now();
            let mut tx = self.write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM incidents WHERE id = $1")
                .bind(push.incident_id)
                .fetch_optional(&mut *tx)
                .await?;
            let author = format!("sync:{instance}");
            match outcome {
                PushOutcome::Pushed(what)
                | PushOutcome::Skipped(what)
                | PushOutcome::Uncertain(what) => {
                    let (kind, result) = match outcome {
                        PushOutcome::Pushed(_) => ("sync-out", "pushed"),
                        PushOutcome::Uncertain(_) => ("sync-uncertain", "uncertain"),
                        _ => ("sync-skipped", "skipped"),
                    };
                    // Once: a push another sender finished is not recorded again.
                    let finished = sqlx::query(
                        "UPDATE outbox SET done = $1, outcome = $2, attempts = attempts + 1 \
                         WHERE id = $3 AND done IS NULL",
                    )
                    .bind(ts(now))
                    .bind(result)
                    .bind(push.id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if exists.is_some() && finished == 1 {
                        let body = serde_json::json!({"text": what, "push": push.kind});
                        insert_entry(&mut tx, push.incident_id, now, &author, kind, &body).await?;
                    }
                }
                PushOutcome::Failed(error) => {
                    sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = $1 WHERE id = $2",
                    )
                    .bind(error)
                    .bind(push.id)
                    .execute(&mut *tx)
                    .await?;
                    if exists.is_some() && push.last_error.as_deref() != Some(error) {
                        let body = serde_json::json!({"text": format!("pushing the {} failed; it is retried: {error}", push.kind), "push": push.kind});
                        insert_entry(
                            &mut tx,
                            push.incident_id,
                            now,
                            &author,
                            "sync-failed",
                            &body,
                        )
                        .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn mirrored<'a>(
        &'a self,
        instance: &'a str,
        after: Option<(DateTime<Utc>, i64)>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Mirrored>, StoreError>> {
        Box::pin(async move {
            // The page's keys first (the (instance, occurred, id) index): ordering them sorts
            // keys, not every open incident's raw JSON, which on a large instance held the
            // whole instance in memory.
            let (occurred, id) = after.map_or((i64::MIN, 0), |(t, id)| (micros(t), id));
            let rows = sqlx::query(
                "SELECT id, external_id, occurred, record, raw_json, labels, remote_state FROM incidents \
                 WHERE id IN (SELECT id FROM incidents WHERE instance = $1 AND status != 'closed' \
                 AND (occurred > $2 OR (occurred = $2 AND id > $3)) ORDER BY occurred, id LIMIT $4) \
                 ORDER BY occurred, id",
            )
            .bind(instance)
            .bind(occurred)
            .bind(id)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Mirrored {
                        id: r.try_get("id")?,
                        external_id: r.try_get("external_id")?,
                        occurred: from_micros(r.try_get("occurred")?)?,
                        seen: record::from_row(r)
                            .map(|record| record.seen.unwrap_or(record.raw))
                            .map_err(|e| e.to_string()),
                    })
                })
                .collect()
        })
    }

    fn remote_update<'a>(
        &'a self,
        id: i64,
        instance: &'a str,
        since: Option<crate::Since<'a>>,
        seen: &'a Value,
        notes: &'a [String],
        change: Option<&'a Change>,
        provider: Option<&'a watchfloor_core::ProviderTimes>,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let now = Utc::now();
            let author = format!("sync:{instance}");
            let mut tx = self.write().await?;
            let (before, mut record) = read_incident_and_record(&mut tx, self.backend, id).await?;
            if since.is_some_and(|since| !since.holds(record.seen())) {
                return Ok(false);
            }
            record.seen = (*seen != record.raw).then(|| seen.clone());
            write_record(&mut tx, id, &before.integration, &record).await?;
            if let Some(p) = provider {
                // Resolved as the provider says now: reopened there, resolved no longer. The
                // first acknowledgement seen is kept.
                sqlx::query(
                    "UPDATE incidents SET provider_updated = COALESCE($1, provider_updated), \
                     provider_resolved = $2, \
                     provider_acknowledged = COALESCE(provider_acknowledged, $3) WHERE id = $4",
                )
                .bind(p.updated.map(micros))
                .bind(p.resolved.map(micros))
                .bind(p.acknowledged.map(micros))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            for note in notes {
                let body = serde_json::json!({"text": note});
                insert_entry(&mut tx, id, now, &author, "sync-in", &body).await?;
            }
            if let Some(change) = change {
                match apply_change(
                    &mut tx,
                    self.backend,
                    &before,
                    &author,
                    change,
                    sla,
                    "sync-in",
                    now,
                )
                .await
                {
                    Ok((moved, _)) => {
                        rules::queue_event(&mut tx, self.backend, id, "remote", &moved, 0).await?
                    }
                    // The local change wins; the war room shows both.
                    Err(StoreError::Refused { error, .. }) => {
                        let body = serde_json::json!({"text": format!("the provider's change was not applied: {error}")});
                        insert_entry(&mut tx, id, now, &author, "sync-in", &body).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}

impl LeaseStore for SqlStore {
    fn heartbeat<'a>(
        &'a self,
        me: &'a ProcessInfo,
        within: Duration,
    ) -> BoxFuture<'a, Result<Vec<ProcessInfo>, StoreError>> {
        Box::pin(async move {
            let now = self.backend.now_ms();
            let mut tx = self.write().await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO processes (id, host, pid, started_ms, seen_ms) VALUES ($1, $2, $3, {now}, {now}) \
                 ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms"
            )))
            .bind(&me.id)
            .bind(&me.host)
            .bind(me.pid)
            .execute(&mut *tx)
            .await?;
            let rows: Vec<ProcessRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id, host, pid, started_ms, seen_ms FROM processes WHERE seen_ms > {now} - $1 \
                 ORDER BY started_ms, id"
            )))
            .bind(within.as_millis() as i64)
            .fetch_all(&mut *tx)
            .await?;
            // Processes gone for a day are forgotten.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM processes WHERE seen_ms < {now} - 86400000"
            )))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(rows.into_iter().map(process_from).collect())
        })
    }

    fn acquire_lease<'a>(
        &'a self,
        scope: &'a str,
        holder: &'a str,
        period: Duration,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        Box::pin(async move {
            let valid_until = std::time::Instant::now() + period;
            let now = self.backend.now_ms();
            let period = period.as_millis() as i64;
            let mut tx = self.write().await?;
            let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO leases (scope, holder, token, expires_ms, acquired_ms) \
                 VALUES ($1, $2, 1, {now} + $3, {now}) ON CONFLICT (scope) DO NOTHING"
            )))
            .bind(scope)
            .bind(holder)
            .bind(period)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                tx.commit().await?;
                return Ok(Some(Lease {
                    scope: scope.to_string(),
                    holder: holder.to_string(),
                    token: 1,
                    valid_until,
                }));
            }
            // Renewed by its holder (the token stays: nobody else worked meanwhile), or taken
            // over once expired (the token grows, fencing off the old holder).
            let token: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "UPDATE leases SET \
                   token = CASE WHEN holder = $2 THEN token ELSE token + 1 END, \
                   acquired_ms = CASE WHEN holder = $2 THEN acquired_ms ELSE {now} END, \
                   holder = $2, expires_ms = {now} + $3 \
                 WHERE scope = $1 AND (holder = $2 OR expires_ms <= {now}) RETURNING token"
            )))
            .bind(scope)
            .bind(holder)
            .bind(period)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(token.map(|token| Lease {
                scope: scope.to_string(),
                holder: holder.to_string(),
                token,
                valid_until,
            }))
        })
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            // Expired rather than deleted, so that the next holder's token still grows.
            sqlx::query(
                "UPDATE leases SET expires_ms = 0 WHERE scope = $1 AND holder = $2 AND token = $3",
            )
            .bind(&lease.scope)
            .bind(&lease.holder)
            .bind(lease.token)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn leave<'a>(&'a self, process: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            sqlx::query("UPDATE leases SET expires_ms = 0 WHERE holder = $1")
                .bind(process)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM processes WHERE id = $1")
                .bind(process)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn cluster(&self) -> BoxFuture<'_, Result<ClusterStatus, StoreError>> {
        Box::pin(async move {
            let now_ms: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT {}",
                self.backend.now_ms()
            )))
            .fetch_one(&self.pool)
            .await?;
            let processes: Vec<ProcessRow> = sqlx::query_as(
                "SELECT id, host, pid, started_ms, seen_ms FROM processes ORDER BY started_ms, id",
            )
            .fetch_all(&self.pool)
            .await?;
            let leases: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
                "SELECT scope, holder, token, acquired_ms, expires_ms FROM leases ORDER BY scope",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(ClusterStatus {
                now_ms,
                processes: processes.into_iter().map(process_from).collect(),
                leases: leases
                    .into_iter()
                    .map(
                        |(scope, holder, token, acquired_ms, expires_ms)| LeaseInfo {
                            scope,
                            holder,
                            token,
                            acquired_ms,
                            expires_ms,
                        },
                    )
                    .collect(),
            })
        })
    }
}

impl AccountStore for SqlStore {
    fn create_user<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        role: Role,
        orgs: &'a [String],
        password_hash: &'a str,
    ) -> BoxFuture<'a, Result<User, StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(StoreError::UserExists(name.to_string()));
            }
            let orgs_json =
                serde_json::to_string(orgs).map_err(|e| StoreError::Database(e.to_string()))?;
            sqlx::query(
                "INSERT INTO users (name, role, orgs, password_hash, created) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(name)
            .bind(role.as_str())
            .bind(orgs_json)
            .bind(password_hash)
            .bind(ts(Utc::now()))
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query("SELECT * FROM users WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
            audit::record(&mut tx, actor, "user_created", name, &access(role, orgs)).await?;
            tx.commit().await?;
            user_from_row(&row)
        })
    }

    fn users(&self) -> BoxFuture<'_, Result<Vec<User>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM users ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(user_from_row).collect()
        })
    }

    fn user(&self, name: &str) -> BoxFuture<'_, Result<Option<User>, StoreError>> {
        let name = name.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM users WHERE name = $1")
                .bind(&name)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    fn set_user_access<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        role: Role,
        orgs: &'a [String],
    ) -> BoxFuture<'a, Result<User, StoreError>> {
        Box::pin(async move {
            let orgs_json = serde_json::to_string(orgs)
                .map_err(|e| StoreError::Corrupt(format!("user organizations: {e}")))?;
            let mut tx = self.write().await?;
            let changed = sqlx::query("UPDATE users SET role = $1, orgs = $2 WHERE name = $3")
                .bind(role.as_str())
                .bind(orgs_json)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(StoreError::NoUser(name.to_string()));
            }
            let row = sqlx::query("SELECT * FROM users WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
            let user = user_from_row(&row)?;
            audit::record(&mut tx, actor, "user_changed", name, &access(role, orgs)).await?;
            self.commit_callers_change(tx).await?;
            Ok(user)
        })
    }

    fn disable_user<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = ts(Utc::now());
            let mut tx = self.write().await?;
            let id = user_id(&mut tx, name).await?;
            sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let keys = sqlx::query(
                "UPDATE api_keys SET revoked = $1 WHERE user_id = $2 AND revoked IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let sessions = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let detail = format!(
                "{}, {}",
                counted(keys, "API key revoked", "API keys revoked"),
                counted(sessions, "session ended", "sessions ended")
            );
            audit::record(&mut tx, actor, "user_disabled", name, &detail).await?;
            self.commit_callers_change(tx).await?;
            Ok(())
        })
    }

    fn enable_user<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let id = user_id(&mut tx, name).await?;
            sqlx::query("UPDATE users SET disabled = 0 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            audit::record(&mut tx, actor, "user_enabled", name, "").await?;
            self.commit_callers_change(tx).await?;
            Ok(())
        })
    }

    fn add_api_key<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        key_hash: &'a str,
        replace: bool,
    ) -> BoxFuture<'a, Result<i64, StoreError>> {
        Box::pin(async move {
            let now = ts(Utc::now());
            let mut tx = self.write().await?;
            let id = enabled_user_id(&mut tx, name).await?;
            let revoked = match replace {
                true => sqlx::query(
                    "UPDATE api_keys SET revoked = $1 WHERE user_id = $2 AND revoked IS NULL",
                )
                .bind(&now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                false => 0,
            };
            let key_id: i64 = sqlx::query_scalar(
                "INSERT INTO api_keys (user_id, key_hash, created) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(id)
            .bind(key_hash)
            .bind(&now)
            .fetch_one(&mut *tx)
            .await?;
            let detail = match replace {
                true => format!(
                    "key {key_id}; {}",
                    counted(revoked, "other key revoked", "other keys revoked")
                ),
                false => format!("key {key_id}"),
            };
            audit::record(&mut tx, actor, "api_key_created", name, &detail).await?;
            self.commit_callers_change(tx).await?;
            Ok(key_id)
        })
    }

    fn api_keys<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<ApiKey>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT api_keys.id, api_keys.created, api_keys.revoked FROM api_keys \
                 JOIN users ON users.id = api_keys.user_id WHERE users.name = $1 ORDER BY api_keys.id",
            )
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ApiKey {
                        id: r.try_get("id")?,
                        created: parse_ts(&r.try_get::<String, _>("created")?)?,
                        revoked: r
                            .try_get::<Option<String>, _>("revoked")?
                            .as_deref()
                            .map(parse_ts)
                            .transpose()?,
                    })
                })
                .collect()
        })
    }

    fn revoke_api_key<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        key: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let id = user_id(&mut tx, name).await?;
            let revoked = sqlx::query(
                "UPDATE api_keys SET revoked = $1 WHERE id = $2 AND user_id = $3 AND revoked IS NULL",
            )
            .bind(ts(Utc::now()))
            .bind(key)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if revoked {
                audit::record(
                    &mut tx,
                    actor,
                    "api_key_revoked",
                    name,
                    &format!("key {key}"),
                )
                .await?;
            }
            self.commit_callers_change(tx).await?;
            Ok(revoked)
        })
    }

    fn user_by_key<'a>(
        &'a self,
        key_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<User>, StoreError>> {
        Box::pin(async move {
            let generation = match self.callers.known(Credential::Key, key_hash) {
                Ok(user) => return Ok(Some(user)),
                Err(generation) => generation,
            };
            let row = sqlx::query(
                "SELECT users.* FROM api_keys JOIN users ON users.id = api_keys.user_id \
                 WHERE api_keys.key_hash = $1 AND api_keys.revoked IS NULL AND users.disabled = 0",
            )
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
            let user = row.as_ref().map(user_from_row).transpose()?;
            if let Some(user) = &user {
                self.callers
                    .keep(Credential::Key, key_hash, generation, user);
            }
            Ok(user)
        })
    }

    fn add_session<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        token_hash: &'a str,
        expires: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let id = enabled_user_id(&mut tx, name).await?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, created, expires) VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(id)
            .bind(ts(Utc::now()))
            .bind(ts(expires))
            .execute(&mut *tx)
            .await?;
            audit::record(&mut tx, actor, "login", name, "").await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn user_by_session<'a>(
        &'a self,
        token_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<User>, StoreError>> {
        Box::pin(async move {
            let generation = match self.callers.known(Credential::Session, token_hash) {
                Ok(user) => return Ok(Some(user)),
                Err(generation) => generation,
            };
            let row = sqlx::query(
                "SELECT users.* FROM sessions JOIN users ON users.id = sessions.user_id \
                 WHERE sessions.token_hash = $1 AND sessions.expires > $2 AND users.disabled = 0",
            )
            .bind(token_hash)
            .bind(ts(Utc::now()))
            .fetch_optional(&self.pool)
            .await?;
            let user = row.as_ref().map(user_from_row).transpose()?;
            if let Some(user) = &user {
                self.callers
                    .keep(Credential::Session, token_hash, generation, user);
            }
            Ok(user)
        })
    }

    fn end_session<'a>(
        &'a self,
        actor: &'a Actor,
        token_hash: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let ended = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if ended > 0 {
                audit::record(&mut tx, actor, "logout", &actor.name, "").await?;
            }
            self.commit_callers_change(tx).await?;
            Ok(())
        })
    }
}

/// `n` and the words for one or many.
fn counted(n: u64, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// A user's role and organizations, as the audit log shows them.
fn access(role: Role, orgs: &[String]) -> String {
    match orgs.is_empty() {
        true => format!("role {}, all organizations", role.as_str()),
        false => format!("role {}, organizations {}", role.as_str(), orgs.join(", ")),
    }
}

/// The id of a user, enabled or not, inside a transaction.
async fn user_id(tx: &mut Tx, name: &str) -> Result<i64, StoreError> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    id.ok_or_else(|| StoreError::NoUser(name.to_string()))
}

#[cfg(test)]
mod tests;
