//! The SQL store, on SQLite or PostgreSQL: every [`Store`] operation written once, over
//! sqlx's `Any` driver, with what differs between the two in [`Backend`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::{Any, AnyRow};
use watchfloor_core::{
    Change, CloseReason, Incident, Label, NewIncident, Severity, SlaPolicy, SlaState, Status,
};

use watchfloor_core::SetAside;
use watchfloor_core::query::Term;

use crate::commit::FetchCommit;
use crate::dialect::{Backend, Sql};
use crate::{
    BoxFuture, ClusterStatus, Facets, FetchTarget, Health, IncidentFilter, KeyValue, Lease,
    LeaseInfo, ManualIncident, Mirrored, ProcessInfo, Push, PushOutcome, Role, SetAsideRecord,
    SortField, Store, StoreError, User, WarRoomEntry,
};

/// Incidents a fetch commit inserts per statement.
pub(crate) const ROWS_PER_INSERT: usize = 200;

/// Set-aside records kept per instance, the newest.
const SET_ASIDE_KEPT: usize = 50;

/// Timestamps are stored as fixed-width UTC text, so they sort as they compare.
/// A timestamp as stored: fixed-width UTC text with microseconds
/// (`2024-05-01T08:00:00.000000Z`), so that text order is time order. Written without a
/// format string, which chrono would parse on every call (a tenth of ingest's time).
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{s}`: {e}")))
}

fn parse_opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.as_deref().map(parse_ts).transpose()
}

pub(crate) fn open_error(url: &str, message: String) -> StoreError {
    StoreError::Open {
        url: url.to_string(),
        message,
    }
}

/// A database of incidents: SQLite (one file) or PostgreSQL (shared by several processes).
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// Where write transactions run. On SQLite, one connection of its own: writes take turns
    /// anyway, and a connection that wrote last keeps its page cache, where any other would
    /// throw its cache away on seeing the database changed. On PostgreSQL, `pool` again.
    writer: AnyPool,
    backend: Backend,
    /// Filter counts as last read, by the version of `incident_counts` and the filter.
    facets: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<(i64, String), Facets>>>,
    /// Which search texts were common, and when that was read: the live queue repeats its
    /// search every few seconds, and how common a word is changes slowly.
    common_texts: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (bool, std::time::Instant)>>,
    >,
    /// The migrations this open applied.
    pub(crate) applied: Vec<i64>,
    /// Fetch steps waiting for their turn to write (SQLite).
    pub(crate) commits: std::sync::Arc<crate::commit::CommitQueue>,
    /// SQLite's full-text index, in a file of its own (PostgreSQL's is in the table).
    pub(crate) text: crate::search::TextIndex,
    /// Where queries with a search text read: on SQLite, connections of their own that attach
    /// the full-text index (attached to every read connection it cost `serve` about 10 MB of
    /// memory); on PostgreSQL, `pool` again.
    pub(crate) text_reads: AnyPool,
}

/// How long a search text's commonness is trusted.
const COMMON_TTL: Duration = Duration::from_secs(300);

/// A write transaction.
pub(crate) type Tx = sqlx::Transaction<'static, Any>;

/// The columns of an incident, as every read of whole incidents selects them.
const INCIDENT_COLUMNS: &str = "id, instance, integration, external_id, name, type, occurred, \
     created, modified, severity, status, organization, owner, details, labels, raw_json, version, \
     closed, close_reason, close_notes, first_assigned, sla_due";

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
        }
    }

    /// Opens the database at `url`, creating it and applying pending migrations as needed:
    /// `sqlite://PATH` (a file, made if missing) or `postgres://USER@HOST/DB` (an existing
    /// database). Several processes may open one database at once; migrations run once.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if crate::postgres::is_postgres(url) {
            crate::postgres::open(url).await
        } else {
            crate::sqlite::open(url).await
        }
    }

    /// Opens an existing database for reading only: nothing is created or migrated, so a
    /// mistyped SQLite path is an error, not a new empty database.
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        if crate::postgres::is_postgres(url) {
            crate::postgres::open_existing(url).await
        } else {
            crate::sqlite::open_read_only(url).await
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
    }

    /// The connections that read `filter`: those that can search text, if it has a text.
    fn reads(&self, filter: &IncidentFilter) -> &AnyPool {
        if texts(filter.conditions.iter().map(|c| c.term.clone())).is_empty() {
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

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn sql(&self, text: impl Into<String>) -> Sql {
        Sql::new(self.backend, text)
    }

    fn migrations(&self) -> &'static [(i64, &'static str)] {
        match self.backend {
            Backend::Sqlite => crate::sqlite::MIGRATIONS,
            Backend::Postgres => crate::postgres::MIGRATIONS,
        }
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
            sqlx::query("INSERT INTO schema_version (version, applied) VALUES ($1, $2)")
                .bind(version)
                .bind(ts(Utc::now()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            applied.push(*version);
        }
        Ok(applied)
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
    occurred: String,
    created: String,
    modified: String,
    severity: f64,
    status: String,
    organization: Option<String>,
    owner: Option<String>,
    details: String,
    labels: Vec<Label>,
    raw: Value,
    version: i64,
    closed: Option<String>,
    close_reason: Option<String>,
    close_notes: Option<String>,
    first_assigned: Option<String>,
    sla_due: String,
}

impl StoredIncident {
    fn into_incident(self) -> Result<Incident, StoreError> {
        let severity = Severity::from_value(self.severity)
            .ok_or_else(|| StoreError::Corrupt(format!("severity {}", self.severity)))?;
        Ok(Incident {
            id: self.id,
            instance: self.instance,
            integration: self.integration,
            external_id: self.external_id,
            name: self.name,
            kind: self.kind,
            occurred: parse_ts(&self.occurred)?,
            created: parse_ts(&self.created)?,
            modified: parse_ts(&self.modified)?,
            severity,
            severity_label: severity.label(),
            status: Status::parse(&self.status).map_err(StoreError::Corrupt)?,
            organization: self.organization,
            owner: self.owner,
            details: self.details,
            labels: self.labels,
            raw: self.raw,
            version: self.version,
            closed: parse_opt_ts(self.closed)?,
            close_reason: self
                .close_reason
                .map(|r| CloseReason::parse(&r).map_err(StoreError::Corrupt))
                .transpose()?,
            close_notes: self.close_notes,
            first_assigned: parse_opt_ts(self.first_assigned)?,
            sla_due: parse_ts(&self.sla_due)?,
        })
    }
}

fn incident_from_row(row: &AnyRow) -> Result<Incident, StoreError> {
    let labels: String = row.try_get("labels")?;
    let raw: String = row.try_get("raw_json")?;
    StoredIncident {
        id: row.try_get("id")?,
        instance: row.try_get("instance")?,
        integration: row.try_get("integration")?,
        external_id: row.try_get("external_id")?,
        name: row.try_get("name")?,
        kind: row.try_get("type")?,
        occurred: row.try_get("occurred")?,
        created: row.try_get("created")?,
        modified: row.try_get("modified")?,
        severity: row.try_get("severity")?,
        status: row.try_get("status")?,
        organization: row.try_get("organization")?,
        owner: row.try_get("owner")?,
        details: row.try_get("details")?,
        labels: serde_json::from_str::<Vec<Label>>(&labels)
            .map_err(|e| StoreError::Corrupt(format!("labels: {e}")))?,
        raw: serde_json::from_str(&raw)
            .map_err(|e| StoreError::Corrupt(format!("raw JSON: {e}")))?,
        version: row.try_get("version")?,
        closed: row.try_get("closed")?,
        close_reason: row.try_get("close_reason")?,
        close_notes: row.try_get("close_notes")?,
        first_assigned: row.try_get("first_assigned")?,
        sla_due: row.try_get("sla_due")?,
    }
    .into_incident()
}

/// Puts a page in its sort order (SQLite builds the JSON array in no promised order).
fn sort_page(page: &mut [Incident], sort: crate::Sort) {
    use std::cmp::Ordering;
    let key = |a: &KeyValue, b: &KeyValue| match (a, b) {
        (KeyValue::Time(x), KeyValue::Time(y)) => x.cmp(y),
        (KeyValue::Int(x), KeyValue::Int(y)) => x.cmp(y),
        (KeyValue::Real(x), KeyValue::Real(y)) => x.total_cmp(y),
        (KeyValue::Text(x), KeyValue::Text(y)) => x.cmp(y),
        _ => Ordering::Equal,
    };
    page.sort_by(|a, b| {
        let order = key(&sort.field.key(a), &sort.field.key(b)).then(a.id.cmp(&b.id));
        if sort.ascending {
            order
        } else {
            order.reverse()
        }
    });
}

/// The WHERE clauses of an incident filter (after `WHERE 1 = 1`).
fn push_filter(q: &mut Sql, filter: &IncidentFilter, hints: &Hints) {
    let backend = q.backend;
    let common = &hints.common;
    // A broad filter is tested row by row while the sort's index is walked (SQLite's unary `+`
    // keeps the filter's own index out).
    let column = |name: &'static str| -> String {
        if backend == Backend::Sqlite && hints.broad.contains(name) {
            format!("+{name}")
        } else {
            name.to_string()
        }
    };
    push_counted_filters(q, filter, None, &column);
    if let Some((state, now)) = filter.sla {
        // The same rule as `watchfloor_core::lifecycle::sla_state`, in SQL: the time an
        // incident is judged at is when it closed, or now.
        let now = ts(now);
        let at = |q: &mut Sql| {
            let now = q.param(now.clone());
            q.push(backend.seconds(&format!("COALESCE(closed, {now})")));
        };
        let due = backend.seconds("sla_due");
        let risk_starts = format!("{due} - ({due} - {}) / 4", backend.seconds("created"));
        match state {
            // Timestamps are fixed-width text, so they compare as text: no date arithmetic
            // per row, and the columns are read from the index.
            SlaState::Breached => {
                q.push(" AND COALESCE(closed, ").push_bind(now.clone());
                q.push(") > sla_due");
            }
            SlaState::AtRisk => {
                q.push(" AND closed IS NULL AND ");
                at(q);
                q.push(format!(" <= {due} AND "));
                at(q);
                q.push(format!(" > {risk_starts}"));
            }
            SlaState::Ok => {
                q.push(" AND ");
                at(q);
                q.push(format!(" <= {due} AND (closed IS NOT NULL OR "));
                at(q);
                q.push(format!(" <= {risk_starts})"));
            }
        }
    }
    if let Some(t) = filter.since {
        q.push(" AND occurred >= ").push_bind(ts(t));
    }
    if let Some(t) = filter.fetched_since {
        q.push(" AND created >= ").push_bind(ts(t));
    }
    for c in &filter.conditions {
        // A negated term is false where the field is NULL too (`-owner:bob` keeps unassigned).
        q.push(if c.negated {
            " AND NOT COALESCE(("
        } else {
            " AND ("
        });
        push_term(q, &c.term, common);
        q.push(if c.negated { "), FALSE)" } else { ")" });
    }
    if let Some(after) = &filter.after {
        q.push(" AND (");
        // Sorted by occurrence, the filters' indexes are in that order and the keyset is a
        // range in them; in the other sorts it would steer SQLite to walk the sort's index.
        if hints.narrow && backend == Backend::Sqlite && filter.sort.field != SortField::Occurred {
            q.push("+");
        }
        q.push(sort_column(filter.sort.field));
        q.push(", id) ");
        q.push(if filter.sort.ascending { ">" } else { "<" });
        q.push(" (");
        push_key(q, &after.value);
        q.push(", ").push_bind(after.id).push(")");
    }
}

/// What a filter matches, as a key for the judgements and counts kept about it: the filter
/// without its sort, page and the clock its SLA state is judged by (a key per second would
/// keep nothing).
fn filter_key(filter: &IncidentFilter) -> String {
    let matching = IncidentFilter {
        sla: filter.sla.map(|(state, _)| (state, DateTime::UNIX_EPOCH)),
        sort: crate::Sort::default(),
        after: None,
        offset: None,
        limit: None,
        ..filter.clone()
    };
    format!("{matching:?}")
}

/// Search texts that match so many incidents that they are looked for by scanning (see
/// [`push_term`]).
type CommonWords = std::collections::HashSet<String>;

/// What a query's plan should know of how much its terms match.
#[derive(Debug, Default)]
struct Hints {
    common: CommonWords,
    /// Filter columns (`status`, `organization`, `instance`, `owner`) whose value matches so
    /// many incidents that, sorted by another indexed column, walking the sort's index finds a
    /// page sooner than reading every match through the filter's index and sorting them.
    broad: std::collections::HashSet<&'static str>,
    /// The whole filter matches few incidents: read them through the narrowest filter's
    /// index and sort them, even on a later page (whose keyset would otherwise steer SQLite to
    /// walk the sort's index from there).
    narrow: bool,
}

/// Above this many full-text matches, a text is common.
const COMMON: i64 = 2000;

/// The search texts of a filter, nested ones too.
fn texts(terms: impl Iterator<Item = Term>) -> Vec<String> {
    let mut out = Vec::new();
    for term in terms {
        match term {
            Term::Text(t) => out.push(t),
            Term::Any(inner) => out.extend(texts(inner.into_iter())),
            _ => {}
        }
    }
    out
}

/// The expression a sort field orders by; never NULL, so that keyset comparisons hold.
fn sort_column(field: SortField) -> &'static str {
    match field {
        SortField::Occurred => "occurred",
        SortField::Created => "created",
        SortField::Modified => "modified",
        SortField::Severity => "severity",
        SortField::Id => "id",
        SortField::Name => "name",
        SortField::Status => "status",
        SortField::Owner => "COALESCE(owner, '')",
        SortField::SlaDue => "sla_due",
        SortField::Organization => "COALESCE(organization, '')",
        SortField::Instance => "instance",
    }
}

fn push_key(q: &mut Sql, value: &KeyValue) {
    match value {
        KeyValue::Time(t) => q.push_bind(ts(*t)),
        KeyValue::Int(n) => q.push_bind(*n),
        KeyValue::Real(r) => q.push_bind(*r),
        KeyValue::Text(t) => q.push_bind(t.clone()),
    };
}

/// `%text%` for LIKE, with LIKE's own characters escaped.
fn contains(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn push_term(q: &mut Sql, term: &Term, common: &CommonWords) {
    match term {
        Term::Status(s) => {
            q.push("status = ").push_bind(s.as_str());
        }
        Term::Severity(s) => {
            q.push("severity = ").push_bind(s.value());
        }
        Term::Owner(Some(o)) => {
            q.push("owner = ").push_bind(o.clone());
        }
        Term::Owner(None) => {
            q.push("owner IS NULL");
        }
        Term::Kind(k) => {
            q.backend.push_eq_nocase(q, "type", k.clone());
        }
        Term::Name(n) => {
            let like = q.backend.like();
            q.push(format!("name {like} "))
                .push_bind(contains(n))
                .push(" ESCAPE '\\'");
        }
        Term::Id(id) => {
            q.push("id = ").push_bind(*id);
        }
        Term::Organization(o) => {
            q.backend.push_eq_nocase(q, "organization", o.clone());
        }
        Term::Instance(i) => {
            q.push("instance = ").push_bind(i.clone());
        }
        // Words go to the full-text index, each a prefix ("phish" finds "phishing"). Text
        // that many incidents have is looked for as it is, in the queue's order, which finds a
        // page at once where the index would list every match first; so does text with no
        // word in it (punctuation alone).
        Term::Text(t) if t.chars().any(char::is_alphanumeric) && !common.contains(t) => {
            q.backend.push_text_match(q, t);
        }
        Term::Text(t) => {
            let pattern = contains(t);
            let like = q.backend.like();
            for (n, column) in ["name", "details", "external_id"].into_iter().enumerate() {
                q.push(if n == 0 { "" } else { " OR " })
                    .push(format!("{column} {like} "))
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\'");
            }
        }
        Term::Created(cmp, t) => {
            q.push(format!("created {} ", cmp.sql()).as_str())
                .push_bind(ts(*t));
        }
        Term::Occurred(cmp, t) => {
            q.push(format!("occurred {} ", cmp.sql()).as_str())
                .push_bind(ts(*t));
        }
        Term::Nothing => {
            q.push("FALSE");
        }
        Term::Any(terms) if terms.is_empty() => {
            q.push("FALSE");
        }
        Term::Any(terms) => {
            for (n, t) in terms.iter().enumerate() {
                q.push(if n == 0 { "(" } else { " OR (" });
                push_term(q, t, common);
                q.push(")");
            }
        }
    }
}

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
async fn bump_counts_version(tx: &mut Tx) -> Result<(), StoreError> {
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

/// Which of the counted filters a facet counts by.
#[derive(Clone, Copy, PartialEq)]
enum Facet {
    Status,
    Severity,
    Organization,
    Owner,
    Instance,
}

/// The conditions of the filters that `incident_counts` counts (the reader's organizations,
/// status, severity, organization, instance, owner), but `except`'s: the same SQL on the
/// incidents table (`push_filter`) and on the counts (`Store::facets`), whose columns share
/// their names and values (an unassigned owner is NULL in one and '' in the other, and a
/// filter never asks for it by name). `column` names a column as the query wants it.
fn push_counted_filters(
    q: &mut Sql,
    filter: &IncidentFilter,
    except: Option<Facet>,
    column: &dyn Fn(&'static str) -> String,
) {
    let backend = q.backend;
    let keep = |f: Facet| except != Some(f);
    if let crate::Scope::Orgs(orgs) = &filter.scope {
        q.push(" AND ");
        backend.push_in_nocase(q, "organization", orgs);
    }
    if keep(Facet::Status) && !filter.status.is_empty() {
        q.push(format!(" AND {} IN (", column("status")));
        for (n, s) in filter.status.iter().enumerate() {
            q.push(if n == 0 { "" } else { ", " }).push_bind(s.as_str());
        }
        q.push(")");
    }
    if keep(Facet::Severity) {
        if !filter.severity.is_empty() {
            q.push(format!(" AND {} IN (", column("severity")));
            for (n, s) in filter.severity.iter().enumerate() {
                q.push(if n == 0 { "" } else { ", " }).push_bind(s.value());
            }
            q.push(")");
        }
        if let Some(s) = filter.min_severity {
            q.push(" AND severity >= ").push_bind(s.value());
        }
    }
    if keep(Facet::Organization)
        && let Some(o) = &filter.organization
    {
        q.push(" AND ");
        backend.push_eq_nocase(q, &column("organization"), o.clone());
    }
    if keep(Facet::Instance)
        && let Some(i) = &filter.instance
    {
        q.push(format!(" AND {} = ", column("instance")))
            .push_bind(i.clone());
    }
    if keep(Facet::Owner)
        && let Some(o) = &filter.owner
    {
        q.push(format!(" AND {} = ", column("owner")))
            .push_bind(o.clone());
    }
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
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1{}",
        backend.for_update()
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NoIncident(id))?;
    incident_from_row(&row)
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

/// Refuses to go on unless `lease` is still held as it was taken (same holder, same token);
/// the lease row stays locked until the transaction ends, so it cannot pass on meanwhile.
pub(crate) async fn check_lease(
    tx: &mut Tx,
    backend: Backend,
    lease: &Lease,
) -> Result<(), StoreError> {
    let row: Option<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT holder, token FROM leases WHERE scope = $1{}",
        backend.for_update()
    )))
    .bind(&lease.scope)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some((holder, token)) if holder == lease.holder && token == lease.token => Ok(()),
        _ => Err(StoreError::Fenced(lease.scope.clone())),
    }
}

/// Applies a lifecycle change to `before` inside a transaction: the new fields, a version
/// bump, the SLA due time for the new severity, and an entry of `kind` listing what moved.
async fn apply_change(
    tx: &mut Tx,
    before: &Incident,
    author: &str,
    change: &Change,
    sla: &SlaPolicy,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let id = before.id;
    let mut after = before.lifecycle();
    let moved = after
        .apply(change, now)
        .map_err(|error| StoreError::Refused { id, error })?;

    let labels =
        serde_json::to_string(&after.labels).map_err(|e| StoreError::Database(e.to_string()))?;
    sqlx::query(
        "UPDATE incidents SET status = $1, severity = $2, owner = $3, type = $4, labels = $5, close_reason = $6, \
         close_notes = $7, closed = $8, first_assigned = $9, sla_due = $10, modified = $11, version = version + 1 \
         WHERE id = $12",
    )
    .bind(after.status.as_str())
    .bind(after.severity.value())
    .bind(&after.owner)
    .bind(&after.kind)
    .bind(labels)
    .bind(after.close_reason.map(|r| r.as_str()))
    .bind(&after.close_notes)
    .bind(after.closed.map(ts))
    .bind(after.first_assigned.map(ts))
    .bind(ts(sla.due(before.created, after.severity)))
    .bind(ts(now))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let body = serde_json::json!({"changes": moved});
    insert_entry(tx, id, now, author, kind, &body).await?;
    Ok(())
}

/// Queues a push of an incident's change to its provider.
async fn queue_push(
    tx: &mut Tx,
    incident: &Incident,
    kind: &str,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (incident_id, instance, external_id, kind, body, created) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(incident.id)
    .bind(&incident.instance)
    .bind(&incident.external_id)
    .bind(kind)
    .bind(body.to_string())
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

impl SqlStore {
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
        for text in texts(filter.conditions.iter().map(|c| c.term.clone())) {
            if !text.chars().any(char::is_alphanumeric) {
                continue;
            }
            if !caught_up {
                self.text.catch_up().await?;
                caught_up = true;
            }
            let count = async {
                let n: i64 = self
                    .backend
                    .text_count(&text, COMMON + 1)
                    .build_query_scalar()
                    .fetch_one(&self.text_reads)
                    .await?;
                Ok(n as usize)
            };
            let is_common = self.more_than_common(text.clone(), count).await?;
            if is_common {
                common.insert(text);
            }
        }
        Ok(common)
    }

    /// Adds `n` synthetic incidents of instance `synthetic`, in one statement, for benchmarks
    /// and load tests: a minute apart, across 20 organizations, every severity and status, a
    /// quarter unassigned.
    pub async fn fill_synthetic(&self, n: usize) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let fill = match self.backend {
            Backend::Sqlite => crate::sqlite::FILL_SYNTHETIC,
            Backend::Postgres => crate::postgres::FILL_SYNTHETIC,
        };
        sqlx::query(fill).bind(n as i64).execute(&mut *tx).await?;
        recount(&mut tx).await?;
        tx.commit().await?;
        // The planner's statistics and the full-text index, as a store that grew to this size
        // over time would have them.
        self.text.catch_up().await?;
        sqlx::query("ANALYZE").execute(&self.pool).await?;
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

impl Store for SqlStore {
    fn commit_fetch<'a>(
        &'a self,
        target: FetchTarget<'a>,
        incidents: &'a [NewIncident],
        cursor: &'a Value,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let step = FetchCommit::new(self, &target, incidents, cursor)?;
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
            .bind(error)
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

    fn health(&self) -> BoxFuture<'_, Result<Vec<Health>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM instance_health ORDER BY instance")
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(Health {
                        instance: r.try_get("instance")?,
                        last_success: parse_opt_ts(r.try_get("last_success")?)?,
                        last_error: r.try_get("last_error")?,
                        last_error_at: parse_opt_ts(r.try_get("last_error_at")?)?,
                        consecutive_failures: r.try_get("consecutive_failures")?,
                        incidents_last_cycle: r.try_get("incidents_last_cycle")?,
                        last_cycle_at: parse_opt_ts(r.try_get("last_cycle_at")?)?,
                        set_aside: serde_json::from_str(&r.try_get::<String, _>("set_aside")?)
                            .map_err(|e| StoreError::Corrupt(format!("set-aside records: {e}")))?,
                    })
                })
                .collect()
        })
    }

    fn incidents<'a>(
        &'a self,
        filter: &'a IncidentFilter,
    ) -> BoxFuture<'a, Result<Vec<Incident>, StoreError>> {
        Box::pin(async move {
            let (broad, narrow) = self.steer(filter).await?;
            let hints = Hints {
                common: self.common_words(filter).await?,
                broad,
                narrow,
            };
            let q = self.page_query(filter, &hints, self.backend.page_as_json(), ") AS page");
            let text: String = q.build_query_scalar().fetch_one(self.reads(filter)).await?;
            let stored: Vec<StoredIncident> = serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("incident page: {e}")))?;
            let mut page = stored
                .into_iter()
                .map(StoredIncident::into_incident)
                .collect::<Result<Vec<_>, _>>()?;
            sort_page(&mut page, filter.sort);
            Ok(page)
        })
    }

    fn facets<'a>(
        &'a self,
        filter: &'a IncidentFilter,
    ) -> BoxFuture<'a, Result<Option<Facets>, StoreError>> {
        Box::pin(async move {
            if !Facets::countable(filter) {
                return Ok(None);
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
                (Facet::Status, "status", "status"),
                (Facet::Severity, "severity", "severity"),
                (
                    Facet::Organization,
                    "lower(organization)",
                    "MIN(organization)",
                ),
                (Facet::Owner, "owner", "owner"),
                (Facet::Instance, "instance", "instance"),
            ];
            let mut q = self.sql("");
            for (n, (facet, group, shown)) in facets.into_iter().enumerate() {
                q.push(if n == 0 { "" } else { " UNION ALL " });
                q.push(format!(
                    "SELECT * FROM (SELECT {n} AS facet, CAST({shown} AS TEXT) AS value, \
                     CAST(SUM(n) AS BIGINT) AS n FROM incident_counts WHERE n > 0"
                ));
                push_counted_filters(&mut q, filter, Some(facet), &|c| c.to_string());
                q.push(format!(
                    " GROUP BY {group} ORDER BY 3 DESC, 2 LIMIT {}) AS f{n}",
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

    fn count<'a>(&'a self, instance: &'a str) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM incidents WHERE instance = $1")
                .bind(instance)
                .fetch_one(&self.pool)
                .await?;
            Ok(n as usize)
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
            let labels = serde_json::to_string(&incident.labels)
                .map_err(|e| StoreError::Corrupt(format!("labels: {e}")))?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO incidents (instance, integration, external_id, name, type, occurred, created, modified, \
                 severity, status, organization, owner, first_assigned, details, labels, raw_json, sla_due) \
                 VALUES ('', '', '', $1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11, '{}', $12) RETURNING id",
            )
            .bind(&incident.name)
            .bind(&incident.kind)
            .bind(ts(incident.occurred.unwrap_or(now)))
            .bind(ts(now))
            .bind(ts(now))
            .bind(incident.severity.value())
            .bind(&incident.organization)
            .bind(&incident.owner)
            .bind(incident.owner.as_ref().map(|_| ts(now)))
            .bind(&incident.details)
            .bind(labels)
            .bind(ts(sla.due(now, incident.severity)))
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
            let created = read_incident(&mut tx, self.backend, id).await?;
            tx.commit().await?;
            Ok(created)
        })
    }

    fn change_incident<'a>(
        &'a self,
        id: i64,
        expected_version: Option<i64>,
        author: &'a str,
        change: &'a Change,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<Incident, StoreError>> {
        Box::pin(async move {
            let now = Utc::now();
            let mut tx = self.write().await?;
            let before = read_incident(&mut tx, self.backend, id).await?;
            if let Some(expected) = expected_version.filter(|v| *v != before.version) {
                return Err(StoreError::Conflict {
                    id,
                    expected,
                    found: before.version,
                });
            }
            apply_change(&mut tx, &before, author, change, sla, "change", now).await?;
            if let Change::Close { reason, notes } = change
                && !before.is_manual()
            {
                let body = serde_json::json!({"reason": reason.as_str(), "notes": notes});
                queue_push(&mut tx, &before, "close", &body, now).await?;
            }
            if let Change::Reopen = change
                && !before.is_manual()
            {
                queue_push(&mut tx, &before, "reopen", &serde_json::json!({}), now).await?;
            }
            let changed = read_incident(&mut tx, self.backend, id).await?;
            tx.commit().await?;
            Ok(changed)
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
            let chosen = sqlx::query(
                "INSERT INTO purging (id) SELECT id FROM incidents \
                 WHERE status = 'closed' AND closed < $1 \
                 AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.incident_id = incidents.id AND done IS NULL) \
                 LIMIT $2",
            )
            .bind(ts(before))
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
            for table in ["incident_entries", "outbox"] {
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
                let push = serde_json::json!({"text": text, "entry": entry.id});
                queue_push(&mut tx, &incident, "note", &push, now).await?;
            }
            tx.commit().await?;
            Ok(entry)
        })
    }

    fn start_push<'a>(
        &'a self,
        push_id: i64,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            if let Some(lease) = lease {
                check_lease(&mut tx, self.backend, lease).await?;
            }
            sqlx::query("UPDATE outbox SET sending = $1 WHERE id = $2")
                .bind(ts(Utc::now()))
                .bind(push_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
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
            let grouped = |select: &str, rest: &str| {
                let mut q = self.sql(select);
                q.push(" FROM incidents WHERE 1 = 1");
                push_filter(&mut q, &scoped, &Hints::default());
                q.push(rest);
                q
            };
            let mut q = grouped(
                "SELECT substr(created, 1, 10) AS day, severity, COUNT(*)",
                "",
            );
            q.push(" AND created >= ")
                .push_bind(ts(since))
                .push(" GROUP BY day, severity ORDER BY day");
            let rows: Vec<(String, f64, i64)> = q.build_query_as().fetch_all(&self.pool).await?;
            let created_by_day = rows
                .into_iter()
                .filter_map(|(d, s, n)| Some((d, Severity::from_value(s)?, n as usize)))
                .collect();
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
            // The period's incidents read once, grouped by provider and organization together,
            // and summed both ways here (two groupings read them twice).
            let mut q = grouped(
                &format!(
                    "SELECT COALESCE(NULLIF(integration, ''), '(manual)'), \
                     COALESCE(NULLIF(organization, ''), '(none)'), \
                     SUM({assigned} - {created}), COUNT(first_assigned), \
                     SUM({closed} - {created}), COUNT(closed), COUNT(*)",
                    assigned = self.backend.seconds("first_assigned"),
                    closed = self.backend.seconds("closed"),
                    created = self.backend.seconds("created"),
                ),
                "",
            );
            q.push(" AND created >= ")
                .push_bind(ts(since))
                .push(" GROUP BY 1, 2");
            // Time to assign summed and counted, the same to close, and incidents.
            type Sums = (Option<f64>, i64, Option<f64>, i64, i64);
            type ByBoth = (String, String, Option<f64>, i64, Option<f64>, i64, i64);
            let rows: Vec<ByBoth> = q.build_query_as().fetch_all(&self.pool).await?;
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
            Ok(crate::DashboardStats {
                created_by_day,
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
            rows.iter()
                .map(|r| {
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
                })
                .collect()
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
                    sqlx::query("UPDATE outbox SET done = $1, outcome = $2, attempts = attempts + 1 WHERE id = $3")
                        .bind(ts(now))
                        .bind(result)
                        .bind(push.id)
                        .execute(&mut *tx)
                        .await?;
                    if exists.is_some() {
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
        after: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Mirrored>, StoreError>> {
        Box::pin(async move {
            // The page's ids first: ordering them sorts numbers, not every open incident's raw
            // JSON, which on a large instance held the whole instance in memory.
            let rows = sqlx::query(
                "SELECT id, external_id, COALESCE(remote_state, raw_json) AS seen FROM incidents \
                 WHERE id IN (SELECT id FROM incidents WHERE instance = $1 AND status != 'closed' \
                 AND id > $2 ORDER BY id LIMIT $3) ORDER BY id",
            )
            .bind(instance)
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Mirrored {
                        id: r.try_get("id")?,
                        external_id: r.try_get("external_id")?,
                        seen: serde_json::from_str(&r.try_get::<String, _>("seen")?)
                            .map_err(|e| StoreError::Corrupt(format!("remote state: {e}")))?,
                    })
                })
                .collect()
        })
    }

    fn remote_update<'a>(
        &'a self,
        id: i64,
        instance: &'a str,
        seen: &'a Value,
        notes: &'a [String],
        change: Option<&'a Change>,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = Utc::now();
            let author = format!("sync:{instance}");
            let mut tx = self.write().await?;
            let before = read_incident(&mut tx, self.backend, id).await?;
            sqlx::query("UPDATE incidents SET remote_state = $1 WHERE id = $2")
                .bind(seen.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for note in notes {
                let body = serde_json::json!({"text": note});
                insert_entry(&mut tx, id, now, &author, "sync-in", &body).await?;
            }
            if let Some(change) = change {
                match apply_change(&mut tx, &before, &author, change, sla, "sync-in", now).await {
                    Ok(()) => {}
                    // The local change wins; the war room shows both.
                    Err(StoreError::Refused { error, .. }) => {
                        let body = serde_json::json!({"text": format!("the provider's change was not applied: {error}")});
                        insert_entry(&mut tx, id, now, &author, "sync-in", &body).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            tx.commit().await?;
            Ok(())
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

    fn create_user<'a>(
        &'a self,
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
            let orgs =
                serde_json::to_string(orgs).map_err(|e| StoreError::Database(e.to_string()))?;
            sqlx::query(
                "INSERT INTO users (name, role, orgs, password_hash, created) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(name)
            .bind(role.as_str())
            .bind(orgs)
            .bind(password_hash)
            .bind(ts(Utc::now()))
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query("SELECT * FROM users WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
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
            tx.commit().await?;
            Ok(user)
        })
    }

    fn disable_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = ts(Utc::now());
            let mut tx = self.write().await?;
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            let id = id.ok_or_else(|| StoreError::NoUser(name.to_string()))?;
            sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE api_keys SET revoked = $1 WHERE user_id = $2 AND revoked IS NULL")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn add_api_key<'a>(
        &'a self,
        name: &'a str,
        key_hash: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let id = enabled_user_id(&mut tx, name).await?;
            sqlx::query("INSERT INTO api_keys (user_id, key_hash, created) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(key_hash)
                .bind(ts(Utc::now()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn user_by_key<'a>(
        &'a self,
        key_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<User>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT users.* FROM api_keys JOIN users ON users.id = api_keys.user_id \
                 WHERE api_keys.key_hash = $1 AND api_keys.revoked IS NULL AND users.disabled = 0",
            )
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    fn add_session<'a>(
        &'a self,
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
            tx.commit().await?;
            Ok(())
        })
    }

    fn user_by_session<'a>(
        &'a self,
        token_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<User>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT users.* FROM sessions JOIN users ON users.id = sessions.user_id \
                 WHERE sessions.token_hash = $1 AND sessions.expires > $2 AND users.disabled = 0",
            )
            .bind(token_hash)
            .bind(ts(Utc::now()))
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    fn end_session<'a>(&'a self, token_hash: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keyset, PushOutcome, Sort};
    use serde_json::json;
    use watchfloor_core::Edit;

    fn incident(id: &str, minute: u32, severity: Severity) -> NewIncident {
        NewIncident {
            external_id: id.to_string(),
            name: format!("alert {id}"),
            occurred: DateTime::parse_from_rfc3339(&format!("2024-05-01T08:{minute:02}:00Z"))
                .unwrap()
                .with_timezone(&Utc),
            severity,
            organization: Some(
                if minute.is_multiple_of(2) {
                    "Acme"
                } else {
                    "Globex"
                }
                .to_string(),
            ),
            details: "d".into(),
            labels: vec![Label {
                kind: "org".into(),
                value: "Acme".into(),
            }],
            raw: json!({"id": id}),
        }
    }

    async fn store() -> (SqlStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/wf.db", dir.path().display());
        (SqlStore::open(&url).await.unwrap(), dir)
    }

    /// A store on a new PostgreSQL database of the test cluster, if there is one.
    async fn pg_store() -> Option<SqlStore> {
        let url = crate::test_cluster::fresh_database().await?;
        Some(SqlStore::open(&url).await.unwrap())
    }

    /// The store suite: each test runs on SQLite and on PostgreSQL, so that the two backends
    /// cannot drift.
    /// Timestamps keep the one stored format (text order is time order), whatever the
    /// fraction of a second.
    #[test]
    fn timestamps_are_fixed_width_text() {
        for (given, stored) in [
            ("2024-05-01T08:00:00Z", "2024-05-01T08:00:00.000000Z"),
            ("2024-05-01T08:00:00.5Z", "2024-05-01T08:00:00.500000Z"),
            (
                "2024-05-01T08:00:00.123456789Z",
                "2024-05-01T08:00:00.123456Z",
            ),
            ("2024-05-01T10:00:00+02:00", "2024-05-01T08:00:00.000000Z"),
        ] {
            let t = DateTime::parse_from_rfc3339(given)
                .unwrap()
                .with_timezone(&Utc);
            assert_eq!(ts(t), stored, "{given}");
            assert_eq!(ts(parse_ts(stored).unwrap()), stored, "{given} read back");
        }
    }

    macro_rules! on_both {
        ($($name:ident),* $(,)?) => {$(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    let (s, _dir) = super::store().await;
                    super::$name(s).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(s) = super::pg_store().await {
                        super::$name(s).await;
                    }
                }
            }
        )*};
    }

    /// Fetch steps of several scopes committing at once (on SQLite, written together when
    /// they wait for the same turn): each stores its incidents and its cursor whole, a step
    /// fenced off stores nothing and fails alone, and duplicates are dropped as one at a time.
    async fn steps_committing_at_once_are_each_whole(s: SqlStore) {
        let old = s
            .acquire_lease("fetch:fes/fenced", "a", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        s.release_lease(&old).await.unwrap();
        s.acquire_lease("fetch:fes/fenced", "b", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let scopes: Vec<String> = (0..8).map(|n| format!("org{n}")).collect();
        let batches: Vec<Vec<NewIncident>> = (0..8)
            .map(|n| {
                (0..30)
                    .map(|k| incident(&format!("s{n}-{k}"), k, Severity::ALL[k as usize % 6]))
                    .collect()
            })
            .collect();
        let fenced: Vec<NewIncident> = (0..5)
            .map(|k| incident(&format!("f{k}"), k, Severity::High))
            .collect();
        let steps = scopes.iter().zip(&batches).map(|(scope, batch)| {
            let s = &s;
            async move {
                s.commit_fetch(target(scope), batch, &json!({ "scope": scope }))
                    .await
            }
        });
        let fenced_step = async {
            let target = FetchTarget {
                lease: Some(&old),
                ..target("fenced")
            };
            s.commit_fetch(target, &fenced, &json!({"scope": "fenced"}))
                .await
        };
        // The same batch again, at once with the first: one of the two stores it.
        let again = async {
            s.commit_fetch(target("org0"), &batches[0], &json!({"scope": "org0"}))
                .await
        };
        let (results, fenced_result, again) =
            tokio::join!(futures_util::future::join_all(steps), fenced_step, again);
        let mut added: Vec<usize> = results.into_iter().map(Result::unwrap).collect();
        added[0] += again.unwrap();
        assert_eq!(added, [30; 8], "each step whole, the repeat dropped");
        assert!(
            matches!(fenced_result, Err(StoreError::Fenced(_))),
            "{fenced_result:?}"
        );
        assert_eq!(s.count("fes").await.unwrap(), 8 * 30);
        for scope in &scopes {
            assert_eq!(
                s.cursor("fes", scope).await.unwrap(),
                Some(json!({ "scope": scope })),
                "{scope}"
            );
        }
        assert_eq!(s.cursor("fes", "fenced").await.unwrap(), None);
        let facets = s.facets(&IncidentFilter::default()).await.unwrap().unwrap();
        let counted: u64 = facets.status.iter().map(|(_, n)| n).sum();
        assert_eq!(counted, 8 * 30, "the filter counts took every step");
    }

    on_both!(
        steps_committing_at_once_are_each_whole,
        open_incidents_are_read_for_mirroring_a_page_at_a_time,
        leases_pass_on_only_when_they_expire,
        a_process_paused_past_its_lease_commits_nothing,
        incidents_and_cursor_commit_together_and_duplicates_are_dropped,
        health_counts_failures_until_a_success,
        changes_are_versioned_and_recorded_in_the_war_room,
        a_deleted_incident_is_not_fetched_again,
        sla_filters_follow_the_clock,
        common_and_rare_words_are_found_either_way,
        text_search_follows_every_change,
        retention_purges_old_closed_incidents_and_keeps_tombstones,
        filter_counts_follow_every_change,
        queries_sorts_and_pages,
    );

    fn target(scope: &str) -> FetchTarget<'_> {
        FetchTarget {
            instance: "fes",
            integration: "covalence-managed-security",
            incident_type: "Covalence ARO",
            scope,
            sla: &SLA,
            lease: None,
        }
    }

    static SLA: std::sync::LazyLock<SlaPolicy> = std::sync::LazyLock::new(SlaPolicy::default);

    async fn incidents_and_cursor_commit_together_and_duplicates_are_dropped(s: SqlStore) {
        let batch = [
            incident("a", 1, Severity::High),
            incident("b", 2, Severity::Low),
        ];
        assert_eq!(
            s.commit_fetch(target(""), &batch, &json!({"n": 1}))
                .await
                .unwrap(),
            2
        );
        // An alert seen twice in one page is stored once.
        let again = [
            incident("b", 2, Severity::Low),
            incident("c", 3, Severity::Critical),
            incident("c", 3, Severity::Critical),
        ];
        assert_eq!(
            s.commit_fetch(target(""), &again, &json!({"n": 2}))
                .await
                .unwrap(),
            1
        );
        assert_eq!(s.count("fes").await.unwrap(), 3);
        assert_eq!(s.cursor("fes", "").await.unwrap(), Some(json!({"n": 2})));
        assert_eq!(s.cursor("fes", "Acme").await.unwrap(), None);

        let all = s.incidents(&IncidentFilter::default()).await.unwrap();
        let ids: Vec<&str> = all.iter().map(|i| i.external_id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"], "newest first");
        assert_eq!(
            (all[0].kind.as_str(), all[0].status, all[0].severity_label),
            ("Covalence ARO", Status::Pending, "Critical")
        );
        let acme = s
            .incidents(&IncidentFilter {
                organization: Some("acme".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(acme.len(), 1);
        let high = s
            .incidents(&IncidentFilter {
                severity: vec![Severity::High],
                limit: Some(5),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(high[0].external_id, "a");
        let one = s.incident(high[0].id).await.unwrap().unwrap();
        assert_eq!((one.raw.clone(), one.labels.len()), (json!({"id": "a"}), 1));
        assert!(s.incident(999).await.unwrap().is_none());
        // More than one statement's worth of rows in one commit.
        let many: Vec<NewIncident> = (0..450)
            .map(|n| incident(&format!("m{n}"), n % 60, Severity::Low))
            .collect();
        let other = FetchTarget {
            instance: "other",
            ..target("")
        };
        assert_eq!(
            s.commit_fetch(other.clone(), &many, &json!({}))
                .await
                .unwrap(),
            450
        );
        assert_eq!(s.commit_fetch(other, &many, &json!({})).await.unwrap(), 0);
        assert_eq!(s.count("other").await.unwrap(), 450);
    }

    async fn health_counts_failures_until_a_success(s: SqlStore) {
        s.record_failure("fes", "malformed JSON from FES Portal GET /my_providers")
            .await
            .unwrap();
        s.record_failure("fes", "again").await.unwrap();
        let h = &s.health().await.unwrap()[0];
        assert_eq!(
            (
                h.consecutive_failures,
                h.last_error.as_deref(),
                h.last_success
            ),
            (2, Some("again"), None)
        );
        s.record_success("fes", 7).await.unwrap();
        let h = &s.health().await.unwrap()[0];
        assert_eq!((h.consecutive_failures, h.incidents_last_cycle), (0, 7));
        assert!(
            h.last_success.is_some() && h.last_error.is_some(),
            "the last error stays visible"
        );
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/wf.db", dir.path().display());
        let s = SqlStore::open(&url).await.unwrap();
        s.commit_fetch(target(""), &[incident("a", 1, Severity::High)], &json!({}))
            .await
            .unwrap();
        drop(s);
        let s = SqlStore::open(&url).await.unwrap();
        assert_eq!(s.count("fes").await.unwrap(), 1);
        let bad = SqlStore::open("mysql://nope")
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            bad,
            "cannot open the database mysql://nope: use a sqlite: or postgres: URL, e.g. sqlite://./watchfloor-data/watchfloor.db"
        );
        // Nothing listens on port 1: the error names the server, not the password.
        let refused = SqlStore::open("postgres://wf:hunter2@127.0.0.1:1/wf")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            refused.starts_with("cannot open the database postgres://wf:***@127.0.0.1:1/wf: ")
                && refused.ends_with("is PostgreSQL running there, and may this user connect?")
                && !refused.contains("hunter2"),
            "{refused}"
        );
    }

    /// Regression (hardening 2): two processes on one database failed with "database is
    /// locked" at migration or commit. Writers now wait their turn.
    #[tokio::test]
    async fn two_writers_on_one_new_database_wait_their_turn() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/shared.db", dir.path().display());
        let writer = |name: &'static str| {
            let url = url.clone();
            async move {
                let s = SqlStore::open(&url).await?;
                for batch in 0..40 {
                    let incidents: Vec<NewIncident> = (0..25)
                        .map(|n| incident(&format!("{name}-{batch}-{n}"), n % 60, Severity::Low))
                        .collect();
                    let target = FetchTarget {
                        instance: name,
                        ..target("")
                    };
                    s.commit_fetch(target, &incidents, &json!({ "batch": batch }))
                        .await?;
                    s.record_success(name, incidents.len()).await?;
                }
                Ok::<_, StoreError>(s)
            }
        };
        let writers = ["one", "two", "three", "four"].map(|name| tokio::spawn(writer(name)));
        let mut stores = Vec::new();
        for (name, w) in ["one", "two", "three", "four"].iter().zip(writers) {
            let store = w
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("writer {name}: {e}"));
            stores.push((name, store));
        }
        for (name, store) in stores {
            assert_eq!(store.count(name).await.unwrap(), 1000, "{name}");
        }
    }

    /// Regression (hardening 10): a database from a newer watchfloor was accepted and written.
    #[tokio::test]
    async fn a_newer_schema_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/wf.db", dir.path().display());
        let s = SqlStore::open(&url).await.unwrap();
        sqlx::query("INSERT INTO schema_version (version, applied) VALUES (99, 'later')")
            .execute(&s.pool)
            .await
            .unwrap();
        drop(s);
        for opened in [
            SqlStore::open(&url).await,
            SqlStore::open_read_only(&url).await,
        ] {
            assert_eq!(
                opened.err().unwrap().to_string(),
                format!(
                    "the database has schema version 99, newer than this watchfloor knows ({}); upgrade watchfloor, or use another database",
                    crate::sqlite::MIGRATIONS.len()
                )
            );
        }
    }

    /// Regression (hardening 13, first hour): `sqlite://` said "no such table", and reading
    /// commands created databases and directories at any path given.
    #[tokio::test]
    async fn reading_creates_nothing_and_an_empty_path_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/wf.db");
        let url = format!("sqlite://{}", missing.display());
        let err = SqlStore::open_read_only(&url).await.err().unwrap();
        assert!(err.to_string().contains("there is no database at"), "{err}");
        assert!(!dir.path().join("no").exists(), "nothing was created");
        for url in ["sqlite://", "sqlite:", "sqlite::memory:"] {
            assert_eq!(
                SqlStore::open(url).await.err().unwrap().to_string(),
                format!(
                    "cannot open the database {url}: the URL names no database file: use sqlite://PATH, e.g. sqlite://./watchfloor-data/watchfloor.db"
                )
            );
        }
        // A database that exists opens for reading, and sees what was written.
        let url = format!("sqlite://{}/wf.db", dir.path().display());
        let s = SqlStore::open(&url).await.unwrap();
        s.commit_fetch(target(""), &[incident("a", 1, Severity::High)], &json!({}))
            .await
            .unwrap();
        let r = SqlStore::open_read_only(&url).await.unwrap();
        assert_eq!(r.count("fes").await.unwrap(), 1);
    }

    /// Regression (hardening 13): on a read-only mount even `incidents list` failed with
    /// "unable to open database file". Needs root to make a read-only bind mount; elsewhere
    /// it says so and checks nothing.
    #[tokio::test]
    async fn a_database_on_a_read_only_mount_can_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let (src, mnt) = (dir.path().join("src"), dir.path().join("mnt"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        let url = format!("sqlite://{}/wf.db", src.display());
        let s = SqlStore::open(&url).await.unwrap();
        s.commit_fetch(target(""), &[incident("a", 1, Severity::High)], &json!({}))
            .await
            .unwrap();
        s.close().await; // the last connection checkpoints and removes -wal and -shm
        assert!(!src.join("wf.db-shm").exists());
        let mount = |args: &[&str]| {
            std::process::Command::new("mount")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        let (src_s, mnt_s) = (src.to_str().unwrap(), mnt.to_str().unwrap());
        if !(mount(&["--bind", src_s, mnt_s]) && mount(&["-o", "remount,ro,bind", mnt_s])) {
            let _ = std::process::Command::new("umount").arg(mnt_s).status();
            eprintln!("no read-only bind mount here (not root?): nothing checked");
            return;
        }
        let read = SqlStore::open_read_only(&format!("sqlite://{mnt_s}/wf.db")).await;
        let count = match &read {
            Ok(r) => r.count("fes").await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        // Its full-text index cannot be brought up to date there: text search says so.
        let search = match &read {
            Ok(r) => r
                .incidents(&IncidentFilter {
                    conditions: watchfloor_core::query::parse("alert").unwrap(),
                    ..IncidentFilter::default()
                })
                .await
                .map(|page| page.len())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Ok(r) = read {
            r.close().await;
        }
        let _ = std::process::Command::new("umount").arg(mnt_s).status();
        assert_eq!(count, Ok(1));
        let refused = search.unwrap_err();
        assert!(
            refused.contains("text search is unavailable") && refused.contains("writable disk"),
            "{refused}"
        );
    }

    /// Regression (memory): a sync read every open incident of an instance, raw JSON and all,
    /// at once (a gigabyte for 100,000 incidents); it reads them a page at a time.
    async fn open_incidents_are_read_for_mirroring_a_page_at_a_time(s: SqlStore) {
        let batch: Vec<NewIncident> = (0..5)
            .map(|n| incident(&format!("m{n}"), n, Severity::Low))
            .collect();
        s.commit_fetch(target(""), &batch, &json!({}))
            .await
            .unwrap();
        let all = s.mirrored("fes", 0, 100).await.unwrap();
        assert_eq!(all.len(), 5);
        s.change_incident(
            all[1].id,
            None,
            "dana",
            &close(CloseReason::Resolved, ""),
            &SLA,
        )
        .await
        .unwrap();
        let mut pages = Vec::new();
        let mut after = 0;
        loop {
            let page = s.mirrored("fes", after, 2).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.id;
            pages.push(
                page.iter()
                    .map(|m| m.external_id.clone())
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(
            pages,
            [vec!["m0", "m2"], vec!["m3", "m4"]],
            "the closed one left out"
        );
        assert_eq!(all[0].seen, json!({"id": "m0"}));
        assert!(s.mirrored("other", 0, 10).await.unwrap().is_empty());
    }

    async fn leases_pass_on_only_when_they_expire(s: SqlStore) {
        let long = Duration::from_secs(60);
        let a = s
            .acquire_lease("fetch:fes", "a", long)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((a.holder.as_str(), a.token), ("a", 1));
        assert_eq!(s.acquire_lease("fetch:fes", "b", long).await.unwrap(), None);
        // Renewed by its holder: the same token, for longer.
        let renewed = s
            .acquire_lease("fetch:fes", "a", long)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&renewed.holder, renewed.token), (&a.holder, a.token));
        assert!(renewed.valid_until > a.valid_until);
        // Given back: the next holder's token grows.
        s.release_lease(&a).await.unwrap();
        let b = s
            .acquire_lease("fetch:fes", "b", long)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.token, 2);
        // A release under an old token changes nothing.
        s.release_lease(&a).await.unwrap();
        assert_eq!(s.acquire_lease("fetch:fes", "c", long).await.unwrap(), None);
        // Expired: taken over.
        let short = Duration::from_millis(50);
        s.acquire_lease("sync:fes", "b", short)
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let c = s
            .acquire_lease("sync:fes", "c", long)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.holder.as_str(), c.token), ("c", 2));

        let me = |id: &str| ProcessInfo {
            id: id.into(),
            host: "h".into(),
            pid: 1,
            started_ms: 0,
            seen_ms: 0,
        };
        s.heartbeat(&me("b"), long).await.unwrap();
        let live = s.heartbeat(&me("c"), long).await.unwrap();
        assert_eq!(
            live.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        let status = s.cluster().await.unwrap();
        assert_eq!(status.processes.len(), 2);
        assert_eq!(
            status
                .leases
                .iter()
                .map(|l| (l.scope.as_str(), l.holder.as_str()))
                .collect::<Vec<_>>(),
            [("fetch:fes", "b"), ("sync:fes", "c")]
        );
        // A process that leaves frees its leases at once.
        s.leave("b").await.unwrap();
        assert!(
            s.acquire_lease("fetch:fes", "c", long)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(s.cluster().await.unwrap().processes.len(), 1);
    }

    /// A process paused past its lease (SIGSTOP, a long GC, a partition) wakes up and commits:
    /// the lease has passed on, so neither its incidents nor its cursor are stored, and it
    /// sends no push.
    async fn a_process_paused_past_its_lease_commits_nothing(s: SqlStore) {
        let short = Duration::from_millis(50);
        let stale = s
            .acquire_lease("fetch:fes", "a", short)
            .await
            .unwrap()
            .unwrap();
        let fresh_batch = [incident("a", 1, Severity::High)];
        s.commit_fetch(
            FetchTarget {
                lease: Some(&stale),
                ..target("")
            },
            &fresh_batch,
            &json!({"by": "a"}),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let taken = s
            .acquire_lease("fetch:fes", "b", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.token, stale.token + 1);
        let late = [incident("b", 2, Severity::High)];
        let refused = s
            .commit_fetch(
                FetchTarget {
                    lease: Some(&stale),
                    ..target("")
                },
                &late,
                &json!({"by": "a, late"}),
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::Fenced(ref k)) if k == "fetch:fes"),
            "{refused:?}"
        );
        assert_eq!(s.count("fes").await.unwrap(), 1);
        assert_eq!(s.cursor("fes", "").await.unwrap(), Some(json!({"by": "a"})));
        // The new holder's commit goes through.
        s.commit_fetch(
            FetchTarget {
                lease: Some(&taken),
                ..target("")
            },
            &late,
            &json!({"by": "b"}),
        )
        .await
        .unwrap();
        assert_eq!(s.count("fes").await.unwrap(), 2);

        // Pushes: a stale holder of the mirroring lease may not start one.
        let id = s.incidents(&IncidentFilter::default()).await.unwrap()[0].id;
        s.add_note(id, "dana", "to the provider", true)
            .await
            .unwrap();
        let push = &s.pending_pushes("fes").await.unwrap()[0];
        let old = s
            .acquire_lease("sync:fes", "a", short)
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let new = s
            .acquire_lease("sync:fes", "b", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            s.start_push(push.id, Some(&old)).await,
            Err(StoreError::Fenced(_))
        ));
        assert_eq!(s.pending_pushes("fes").await.unwrap()[0].sending, None);
        s.start_push(push.id, Some(&new)).await.unwrap();
        assert!(s.pending_pushes("fes").await.unwrap()[0].sending.is_some());
    }

    fn close(reason: CloseReason, notes: &str) -> Change {
        Change::Close {
            reason,
            notes: Some(notes.into()),
        }
    }

    fn assign(owner: &str) -> Change {
        Change::Update(watchfloor_core::Edit {
            owner: Some(Some(owner.into())),
            ..Default::default()
        })
    }

    /// Every change is an entry with its author and old → new values; a change against a
    /// stale version is refused and changes nothing.
    async fn changes_are_versioned_and_recorded_in_the_war_room(s: SqlStore) {
        let sla = SlaPolicy::default();
        s.commit_fetch(target(""), &[incident("a", 1, Severity::High)], &json!({}))
            .await
            .unwrap();
        let id = s.incidents(&IncidentFilter::default()).await.unwrap()[0].id;
        let v1 = s.incident(id).await.unwrap().unwrap();
        assert_eq!(v1.version, 1);
        let v2 = s
            .change_incident(id, Some(1), "dana", &assign("dana"), &sla)
            .await
            .unwrap();
        assert_eq!((v2.version, v2.owner.as_deref()), (2, Some("dana")));
        assert!(v2.first_assigned.is_some());
        let stale = s
            .change_incident(id, Some(1), "sam", &close(CloseReason::Resolved, "x"), &sla)
            .await
            .unwrap_err();
        assert_eq!(
            stale.to_string(),
            format!(
                "incident {id} changed since you read it (version 1, now 2); read it again and retry"
            )
        );
        assert_eq!(
            s.incident(id).await.unwrap().unwrap().status,
            Status::Pending
        );
        let closed = s
            .change_incident(
                id,
                Some(2),
                "sam",
                &close(CloseReason::FalsePositive, "scanner"),
                &sla,
            )
            .await
            .unwrap();
        assert_eq!(
            (
                closed.status,
                closed.close_reason,
                closed.close_notes.as_deref(),
                closed.version
            ),
            (
                Status::Closed,
                Some(CloseReason::FalsePositive),
                Some("scanner"),
                3
            )
        );
        let refused = s
            .change_incident(id, None, "sam", &assign("kim"), &sla)
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!("incident {id}: the incident is closed; reopen it first")
        );
        let entries = s.entries(id).await.unwrap();
        let seen: Vec<(String, String, Value)> = entries
            .iter()
            .map(|e| (e.author.clone(), e.kind.clone(), e.body["changes"].clone()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "dana".to_string(),
                    "change".to_string(),
                    json!([{"field": "owner", "old": null, "new": "dana"}])
                ),
                (
                    "sam".to_string(),
                    "change".to_string(),
                    json!([
                        {"field": "status", "old": "pending", "new": "closed"},
                        {"field": "close reason", "old": null, "new": "False Positive"},
                        {"field": "close notes", "old": null, "new": "scanner"}
                    ])
                ),
            ]
        );
    }

    /// A deleted incident leaves a tombstone: a later fetch or look-back re-read of the same
    /// alert does not bring it back.
    async fn a_deleted_incident_is_not_fetched_again(s: SqlStore) {
        let alert = [incident("gone", 1, Severity::Low)];
        s.commit_fetch(target(""), &alert, &json!({}))
            .await
            .unwrap();
        let id = s.incidents(&IncidentFilter::default()).await.unwrap()[0].id;
        s.delete_incident(id, "dana").await.unwrap();
        assert_eq!(
            s.commit_fetch(target(""), &alert, &json!({}))
                .await
                .unwrap(),
            0
        );
        assert_eq!(s.count("fes").await.unwrap(), 0);
        assert!(matches!(
            s.entries(id).await,
            Err(StoreError::NoIncident(_))
        ));
    }

    /// The SLA filter agrees with the pure rule, judged at a given time.
    async fn sla_filters_follow_the_clock(s: SqlStore) {
        let sla = SlaPolicy::default();
        let manual = |name: &str, severity| ManualIncident {
            name: name.into(),
            severity,
            organization: None,
            kind: "Manual".into(),
            details: String::new(),
            ..Default::default()
        };
        let critical = s
            .create_incident(&manual("c", Severity::Critical), "dana", &sla)
            .await
            .unwrap();
        let low = s
            .create_incident(&manual("l", Severity::Low), "dana", &sla)
            .await
            .unwrap();
        let at = |minutes: i64| critical.created + chrono::TimeDelta::minutes(minutes);
        let names = |state, minutes| {
            let filter = IncidentFilter {
                sla: Some((state, at(minutes))),
                ..IncidentFilter::default()
            };
            let s = &s;
            async move {
                let mut names: Vec<String> = s
                    .incidents(&filter)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|i| {
                        assert_eq!(i.sla_state(at(minutes)), state, "SQL and the rule agree");
                        i.name
                    })
                    .collect();
                names.sort();
                names
            }
        };
        assert_eq!(names(SlaState::Ok, 10).await, ["c", "l"]);
        assert_eq!(names(SlaState::AtRisk, 50).await, ["c"]);
        assert_eq!(names(SlaState::Breached, 61).await, ["c"]);
        assert_eq!(names(SlaState::Ok, 61).await, ["l"]);
        // Lowering the severity moves the due time, and the incident is no longer breached.
        let lower = Change::Update(watchfloor_core::Edit {
            severity: Some(Severity::Low),
            ..Default::default()
        });
        s.change_incident(critical.id, None, "dana", &lower, &sla)
            .await
            .unwrap();
        assert!(names(SlaState::Breached, 61).await.is_empty());
        assert_eq!(low.sla_due, low.created + chrono::TimeDelta::hours(72));
    }

    /// Every queue filter is served by an index (regression, speed: a filter that matched
    /// nothing read the whole table, as the only index was on `occurred`).
    #[tokio::test]
    async fn queue_filters_use_an_index() {
        let (s, _dir) = store().await;
        // A queue of some size, with the statistics SQLite keeps (`PRAGMA optimize` on open).
        let many: Vec<NewIncident> = (0..300)
            .map(|n| incident(&format!("i{n}"), (n % 60) as u32, Severity::ALL[n % 6]))
            .collect();
        s.commit_fetch(target(""), &many, &json!({})).await.unwrap();
        sqlx::query("ANALYZE").execute(&s.pool).await.unwrap();
        for (filter, index) in [
            ("status = 'closed'", "incidents_status"),
            ("severity = 4", "incidents_by_severity"),
            (
                "organization = 'Acme' COLLATE NOCASE",
                "incidents_organization",
            ),
            ("instance = 'fes'", "incidents_instance"),
            ("owner = 'dana'", "incidents_owner"),
        ] {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN SELECT * FROM incidents WHERE {filter} ORDER BY occurred DESC LIMIT 50"
            )))
            .fetch_all(&s.pool)
            .await
            .unwrap();
            let plan: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String, _>("detail").unwrap_or_default())
                .collect();
            assert!(plan.iter().any(|p| p.contains(index)), "{filter}: {plan:?}");
        }
    }

    /// Regression (speed): the queue's indexes hold every filter column, so that filters
    /// combined are tested on index entries, not a row read each (60 ms for a page of status,
    /// severity, organization, owner and SLA at 1,000,000 when they did not).
    #[tokio::test]
    async fn combined_filters_are_tested_on_index_entries() {
        let (s, _dir) = store().await;
        s.fill_synthetic(30_000).await.unwrap();
        let filter = IncidentFilter {
            status: vec![Status::Active],
            severity: vec![Severity::High],
            organization: Some("Org 4".into()),
            owner: Some("analyst3".into()),
            instance: Some("synthetic".into()),
            sla: Some((SlaState::Breached, Utc::now())),
            ..Default::default()
        };
        for sort in [SortField::Occurred, SortField::Severity, SortField::SlaDue] {
            let f = IncidentFilter {
                sort: crate::Sort {
                    field: sort,
                    ascending: false,
                },
                limit: Some(50),
                ..filter.clone()
            };
            let q = s.page_query(
                &f,
                &Hints::default(),
                "EXPLAIN QUERY PLAN SELECT id FROM incidents WHERE 1 = 1",
                "",
            );
            let plan: Vec<String> = q
                .build()
                .fetch_all(&s.pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String, _>("detail").unwrap_or_default())
                .collect();
            assert!(
                plan.iter().any(|p| p.contains("COVERING INDEX")),
                "{sort:?}: {plan:?}"
            );
        }
    }

    /// Regression (speed), on PostgreSQL: every queue filter, sorted by occurrence, reads an
    /// index, never the whole table.
    #[tokio::test]
    async fn postgres_queue_filters_use_an_index() {
        let Some(s) = pg_store().await else {
            return;
        };
        s.fill_synthetic(30_000).await.unwrap();
        let check = |filter: IncidentFilter| {
            let s = s.clone();
            async move {
                let q = s.page_query(
                    &filter,
                    &Hints::default(),
                    "EXPLAIN SELECT id FROM incidents WHERE 1 = 1",
                    "",
                );
                let rows: Vec<String> = q.build_query_scalar().fetch_all(&s.pool).await.unwrap();
                let plan = rows.join("\n");
                assert!(
                    plan.contains("Index") && !plan.contains("Seq Scan"),
                    "{filter:?}:\n{plan}"
                );
            }
        };
        let page = |f: IncidentFilter| IncidentFilter {
            limit: Some(50),
            ..f
        };
        check(page(IncidentFilter::default())).await;
        check(page(IncidentFilter {
            status: vec![Status::Pending],
            ..Default::default()
        }))
        .await;
        check(page(IncidentFilter {
            severity: vec![Severity::High],
            ..Default::default()
        }))
        .await;
        check(page(IncidentFilter {
            organization: Some("org 7".into()),
            ..Default::default()
        }))
        .await;
        check(page(IncidentFilter {
            instance: Some("synthetic".into()),
            ..Default::default()
        }))
        .await;
        check(page(IncidentFilter {
            owner: Some("analyst3".into()),
            ..Default::default()
        }))
        .await;
        check(page(IncidentFilter {
            conditions: watchfloor_core::query::parse("beacon").unwrap(),
            ..Default::default()
        }))
        .await;
        check(page(IncidentFilter {
            conditions: watchfloor_core::query::parse("s29999").unwrap(),
            ..Default::default()
        }))
        .await;
    }

    /// Regression (speed): a broad filter sorted by severity or SLA read every match through
    /// the filter's index and sorted them (1.2 s at 1,000,000); it walks the sort's index. A
    /// narrow filter keeps its own index, and so do broad filters narrow together (they
    /// walked the whole SLA index for a few matches: 30 ms at 1,000,000).
    #[tokio::test]
    async fn broad_filters_walk_the_sort_index() {
        let (s, _dir) = store().await;
        s.fill_synthetic(30_000).await.unwrap();
        let plan = |filter: IncidentFilter| {
            let s = s.clone();
            async move {
                let (broad, narrow) = s.steer(&filter).await.unwrap();
                let hints = Hints {
                    broad,
                    narrow,
                    ..Hints::default()
                };
                let q = s.page_query(
                    &filter,
                    &hints,
                    "EXPLAIN QUERY PLAN SELECT id FROM incidents WHERE 1 = 1",
                    "",
                );
                let rows = q.build().fetch_all(&s.pool).await.unwrap();
                rows.iter()
                    .map(|r| r.try_get::<String, _>("detail").unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        let sorted = |field: SortField, f: IncidentFilter| IncidentFilter {
            sort: crate::Sort {
                field,
                ascending: true,
            },
            limit: Some(50),
            ..f
        };
        let broad = plan(sorted(
            SortField::SlaDue,
            IncidentFilter {
                status: vec![Status::Pending],
                instance: Some("synthetic".into()),
                ..Default::default()
            },
        ))
        .await;
        assert!(
            broad.contains("incidents_by_sla") && !broad.contains("TEMP B-TREE"),
            "{broad}"
        );
        let by_severity = plan(sorted(
            SortField::Severity,
            IncidentFilter {
                owner: Some("analyst3".into()),
                ..Default::default()
            },
        ))
        .await;
        assert!(
            by_severity.contains("incidents_by_severity") && !by_severity.contains("TEMP B-TREE"),
            "{by_severity}"
        );
        let narrow = plan(sorted(
            SortField::SlaDue,
            IncidentFilter {
                owner: Some("nobody".into()),
                ..Default::default()
            },
        ))
        .await;
        assert!(narrow.contains("incidents_owner"), "{narrow}");
        // Severity has no index in occurrence order: a common one walks occurrence's.
        let severity = plan(sorted(
            SortField::Occurred,
            IncidentFilter {
                severity: vec![Severity::Low],
                ..Default::default()
            },
        ))
        .await;
        assert!(
            severity.contains("incidents_occurred") && !severity.contains("TEMP B-TREE"),
            "{severity}"
        );
        // Broad filters that are narrow together (a few dozen of 30,000) are read through
        // the narrowest filter's index, not by walking the sort's.
        let four = || IncidentFilter {
            status: vec![Status::Active],
            severity: vec![Severity::High],
            organization: Some("Org 4".into()),
            owner: Some("analyst3".into()),
            ..Default::default()
        };
        let together = plan(sorted(SortField::SlaDue, four())).await;
        assert!(!together.contains("incidents_by_sla"), "{together}");
        // So are their later pages, whose keyset would otherwise start a walk of the SLA
        // index from there (55 ms for the third page at 1,000,000).
        let later = plan(IncidentFilter {
            after: Some(crate::Keyset {
                value: KeyValue::Time(Utc::now()),
                id: 1,
            }),
            ..sorted(SortField::SlaDue, four())
        })
        .await;
        assert!(!later.contains("incidents_by_sla"), "{later}");
        // Sorted by severity, the severity filter's index is the sort's: narrow filters
        // together are read through another.
        let by_severity = plan(IncidentFilter {
            after: Some(crate::Keyset {
                value: KeyValue::Real(3.0),
                id: 1,
            }),
            ..sorted(
                SortField::Severity,
                IncidentFilter {
                    owner: None,
                    ..four()
                },
            )
        })
        .await;
        assert!(
            !by_severity.contains("incidents_by_severity"),
            "{by_severity}"
        );
        // The same rows either way.
        let page = |f| {
            let s = s.clone();
            async move { s.incidents(&f).await.unwrap() }
        };
        let f = sorted(
            SortField::SlaDue,
            IncidentFilter {
                status: vec![Status::Active],
                ..Default::default()
            },
        );
        let steered = page(f.clone()).await;
        assert_eq!(steered.len(), 50);
        assert!(steered.iter().all(|i| i.status == Status::Active));
        assert!(steered.windows(2).all(|w| w[0].sla_due <= w[1].sla_due));
    }

    /// Regression (speed): text search read every row with `LIKE`; it goes through the
    /// full-text index.
    #[tokio::test]
    async fn text_search_uses_the_full_text_index() {
        let (s, _dir) = store().await;
        let mut q = Sql::new(
            Backend::Sqlite,
            "EXPLAIN QUERY PLAN SELECT id FROM incidents WHERE 1 = 1",
        );
        let filter = IncidentFilter {
            conditions: watchfloor_core::query::parse("phishing").unwrap(),
            ..IncidentFilter::default()
        };
        push_filter(&mut q, &filter, &Hints::default());
        let rows = q.build().fetch_all(s.reads(&filter)).await.unwrap();
        let plan: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap_or_default())
            .collect();
        assert!(
            plan.iter().any(|p| p.contains("VIRTUAL TABLE INDEX")),
            "{plan:?}"
        );
    }

    /// A word many incidents have is found by scanning in the queue's order, a rare one
    /// through the index; both give the newest matches first.
    async fn common_and_rare_words_are_found_either_way(s: SqlStore) {
        s.fill_synthetic(10_000).await.unwrap();
        let search = |q: &str| IncidentFilter {
            conditions: watchfloor_core::query::parse(q).unwrap(),
            limit: Some(5),
            ..IncidentFilter::default()
        };
        let common = s.common_words(&search("phishing s9999")).await.unwrap();
        assert_eq!(common, CommonWords::from(["phishing".to_string()]));
        let page = s.incidents(&search("phishing")).await.unwrap();
        let ids: Vec<&str> = page.iter().map(|i| i.external_id.as_str()).collect();
        assert_eq!(ids, ["s9997", "s9993", "s9989", "s9985", "s9981"]);
        let rare = s.incidents(&search("S9999")).await.unwrap();
        assert_eq!(rare.len(), 1);
        assert_eq!(rare[0].external_id, "s9999");
        assert_eq!(s.count_matching(&search("phishing")).await.unwrap(), 2500);
    }

    /// The external ids a text search finds, in the queue's order.
    async fn found(s: &SqlStore, text: &str) -> Vec<String> {
        let filter = IncidentFilter {
            conditions: watchfloor_core::query::parse(text).unwrap(),
            ..IncidentFilter::default()
        };
        let page = s.incidents(&filter).await.unwrap();
        page.into_iter().map(|i| i.external_id).collect()
    }

    /// Text search finds what was committed just before it, and stops finding what was
    /// deleted or purged (SQLite indexes text beside the writes: a search catches the index
    /// up first).
    async fn text_search_follows_every_change(s: SqlStore) {
        let batch = [
            incident("zeta-1", 1, Severity::High),
            incident("zeta-2", 2, Severity::Low),
            incident("omega", 3, Severity::Low),
        ];
        s.commit_fetch(target(""), &batch, &json!({}))
            .await
            .unwrap();
        assert_eq!(found(&s, "zeta").await, ["zeta-2", "zeta-1"]);
        let manual = ManualIncident {
            name: "Kappa beacon".into(),
            severity: Severity::Medium,
            organization: None,
            kind: "Manual".into(),
            details: "seen on <b>host</b>".into(),
            occurred: None,
            owner: None,
            labels: vec![],
        };
        let made = s.create_incident(&manual, "ana", &SLA).await.unwrap();
        assert_eq!(
            found(&s, "kappa").await,
            std::slice::from_ref(&made.external_id)
        );
        assert_eq!(found(&s, "host").await, [made.external_id]);
        // Ids in the order committed: zeta-1 is 1, zeta-2 is 2.
        s.delete_incident(1, "ana").await.unwrap();
        assert_eq!(found(&s, "zeta").await, ["zeta-2"]);
        let close = Change::Close {
            reason: CloseReason::Resolved,
            notes: None,
        };
        s.change_incident(2, None, "ana", &close, &SLA)
            .await
            .unwrap();
        for push in s.pending_pushes("fes").await.unwrap() {
            s.finish_push(&push, "fes", &PushOutcome::Pushed("ok".into()))
                .await
                .unwrap();
        }
        let purged = s
            .purge_closed(Utc::now() + chrono::TimeDelta::hours(1), 100)
            .await
            .unwrap();
        assert_eq!(purged, 1);
        assert_eq!(found(&s, "zeta").await, Vec::<String>::new());
        assert_eq!(found(&s, "omega").await, ["omega"]);
        if s.backend() == Backend::Sqlite {
            // The index keeps no entries of incidents gone (which the common-word judgement
            // would count): of the three alerts, omega is left.
            let indexed: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM search_index.incidents_fts WHERE incidents_fts MATCH 'alert'",
            )
            .fetch_one(&s.text_reads)
            .await
            .unwrap();
            assert_eq!(indexed, 1);
            // The purge that follows keeps no more of the log than the index has not read.
            s.purge_closed(Utc::now(), 100).await.unwrap();
            let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM text_changes")
                .fetch_one(&s.pool)
                .await
                .unwrap();
            assert_eq!(logged, 0);
        }
    }

    /// A database from before the full-text index had a file of its own (schema 14) finds its
    /// incidents by text once upgraded: the index is built from them.
    #[tokio::test]
    async fn an_upgraded_database_finds_its_incidents_by_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wf.db");
        let url = format!("sqlite://{}", path.display());
        let driver_url = format!("sqlite://{}?mode=rwc", path.display());
        let old = crate::sqlite::connect(&url, &driver_url, None)
            .await
            .unwrap();
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(old.pool())
            .await
            .unwrap();
        old.migrate(&crate::sqlite::MIGRATIONS[..14]).await.unwrap();
        let batch = [
            incident("delta-1", 1, Severity::Low),
            incident("delta-2", 2, Severity::Low),
        ];
        old.commit_fetch(target(""), &batch, &json!({}))
            .await
            .unwrap();
        old.close().await;
        let s = SqlStore::open(&url).await.unwrap();
        assert_eq!(s.applied, [15]);
        assert_eq!(found(&s, "delta").await, ["delta-2", "delta-1"]);
        s.close().await;
    }

    /// SQLite's full-text index is derived data in a file of its own: removed or damaged, it
    /// is built again; left from a newer state of the database (the database restored from a copy), it
    /// is built again rather than trusted; and a store opened only to read builds it too.
    #[tokio::test]
    async fn the_search_file_is_built_again_when_it_cannot_be_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("wf.db");
        let url = format!("sqlite://{}", db.display());
        let remove_index = || {
            for end in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(dir.path().join(format!("wf.db-search{end}")));
            }
        };
        let commit = async |ids: &[&str]| {
            let s = SqlStore::open(&url).await.unwrap();
            let batch: Vec<NewIncident> = ids
                .iter()
                .map(|id| incident(id, 1, Severity::Low))
                .collect();
            s.commit_fetch(target(""), &batch, &json!({}))
                .await
                .unwrap();
            s.index_text().await.unwrap();
            s.close().await;
        };
        commit(&["alpha-1", "alpha-2"]).await;
        std::fs::copy(&db, dir.path().join("backup.db")).unwrap();
        commit(&["alpha-3", "alpha-4"]).await;

        remove_index();
        let s = SqlStore::open(&url).await.unwrap();
        assert_eq!(found(&s, "alpha").await.len(), 4);
        s.close().await;

        // The database goes back to the copy of two incidents; the index had read four. New
        // incidents take ids the index had read as others', and go past where it had read.
        std::fs::copy(dir.path().join("backup.db"), &db).unwrap();
        commit(&["beta-1", "beta-2", "beta-3"]).await;
        let s = SqlStore::open(&url).await.unwrap();
        assert_eq!(found(&s, "alpha").await, ["alpha-2", "alpha-1"]);
        assert_eq!(found(&s, "beta").await, ["beta-3", "beta-2", "beta-1"]);
        s.close().await;

        // Another database's index, put in its place: it has read fewer incidents than this
        // one holds, and its incident 1 is not this one's.
        let other = SqlStore::open(&format!("sqlite://{}/other.db", dir.path().display()))
            .await
            .unwrap();
        let gamma = [incident("gamma-1", 1, Severity::Low)];
        other
            .commit_fetch(target(""), &gamma, &json!({}))
            .await
            .unwrap();
        other.index_text().await.unwrap();
        other.close().await;
        remove_index();
        std::fs::copy(
            dir.path().join("other.db-search"),
            dir.path().join("wf.db-search"),
        )
        .unwrap();
        let s = SqlStore::open(&url).await.unwrap();
        assert_eq!(found(&s, "gamma").await, Vec::<String>::new());
        assert_eq!(found(&s, "alpha").await, ["alpha-2", "alpha-1"]);
        assert_eq!(found(&s, "beta").await.len(), 3);
        s.close().await;

        // Damaged: not a database at all.
        remove_index();
        std::fs::write(dir.path().join("wf.db-search"), "not a database").unwrap();
        let s = SqlStore::open(&url).await.unwrap();
        assert_eq!(found(&s, "beta").await.len(), 3);
        s.close().await;

        remove_index();
        let read = SqlStore::open_read_only(&url).await.unwrap();
        assert_eq!(found(&read, "beta").await.len(), 3);
        read.close().await;
    }

    /// Retention purges closed incidents past their age with their war rooms, keeps their
    /// tombstones so they are not fetched again, and keeps one whose push is not yet sent.
    /// The filter counts, kept as incidents change, agree with counting the incidents
    /// themselves after fetches (duplicates too), a manual incident, assignments, a severity
    /// change, closes, a reopen, a delete and a purge; and each list leaves out its own filter.
    async fn filter_counts_follow_every_change(s: SqlStore) {
        // What counting the incidents gives, in the facets' shape.
        async fn counted(s: &SqlStore, filter: &IncidentFilter) -> Facets {
            let all = s.incidents(&IncidentFilter::default()).await.unwrap();
            let holds = |i: &Incident, except: &str| {
                (except == "status"
                    || filter.status.is_empty()
                    || filter.status.contains(&i.status))
                    && (except == "severity"
                        || (filter.severity.is_empty() || filter.severity.contains(&i.severity))
                            && filter.min_severity.is_none_or(|m| i.severity >= m))
                    && (except == "organization"
                        || filter.organization.as_deref().is_none_or(|o| {
                            i.organization
                                .as_deref()
                                .is_some_and(|x| x.eq_ignore_ascii_case(o))
                        }))
                    && (except == "owner" || filter.owner.is_none() || filter.owner == i.owner)
                    && (except == "instance"
                        || filter.instance.as_deref().is_none_or(|x| x == i.instance))
            };
            let tally = |except: &str, key: &dyn Fn(&Incident) -> String| {
                let mut m = std::collections::BTreeMap::<String, u64>::new();
                for i in all.iter().filter(|i| holds(i, except)) {
                    *m.entry(key(i)).or_default() += 1;
                }
                m
            };
            let top = |m: std::collections::BTreeMap<String, u64>| {
                let mut v: Vec<(String, u64)> = m.into_iter().collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                v
            };
            let status = tally("status", &|i| i.status.as_str().to_string());
            let severity = tally("severity", &|i| i.severity.label().to_string());
            Facets {
                status: [Status::Pending, Status::Active, Status::Closed]
                    .into_iter()
                    .map(|x| (x, status.get(x.as_str()).copied().unwrap_or(0)))
                    .collect(),
                severity: Severity::ALL
                    .into_iter()
                    .rev()
                    .map(|x| (x, severity.get(x.label()).copied().unwrap_or(0)))
                    .collect(),
                // Organizations are one whatever their case, as their filter is.
                organization: top(tally("organization", &|i| {
                    i.organization.clone().unwrap_or_default().to_lowercase()
                }))
                .into_iter()
                .filter(|(o, _)| !o.is_empty())
                .collect(),
                owner: top(tally("owner", &|i| i.owner.clone().unwrap_or_default()))
                    .into_iter()
                    .map(|(o, n)| ((!o.is_empty()).then_some(o), n))
                    .collect(),
                instance: top(tally("instance", &|i| i.instance.clone())),
            }
        }
        let check = |label: &'static str, filter: IncidentFilter| {
            let s = s.clone();
            async move {
                let kept = s.facets(&filter).await.unwrap().expect("countable");
                let mut expected = counted(&s, &filter).await;
                // Incidents of no organization are counted under "" and not listed.
                let mut kept_orgs = kept.organization.clone();
                kept_orgs.retain(|(o, _)| !o.is_empty());
                kept_orgs
                    .iter_mut()
                    .for_each(|(o, _)| *o = o.to_lowercase());
                expected.organization.truncate(Facets::TOP);
                assert_eq!(
                    Facets {
                        organization: kept_orgs,
                        ..kept
                    },
                    expected,
                    "{label}"
                );
            }
        };
        let batch: Vec<NewIncident> = (0..12)
            .map(|n| incident(&format!("f{n}"), n, Severity::ALL[n as usize % 6]))
            .collect();
        s.commit_fetch(target(""), &batch, &json!({}))
            .await
            .unwrap();
        s.commit_fetch(target(""), &batch[..4], &json!({}))
            .await
            .unwrap();
        check("fetched, duplicates dropped", IncidentFilter::default()).await;
        // Steps committed at once (on SQLite, in one transaction, where the rows it inserted
        // are counted in the database): one of new and duplicate incidents mixed, one of new
        // ones, and one fenced off by a newer lease holder, stored and counted not at all.
        let stale = s
            .acquire_lease("fetch:fes", "a", Duration::from_millis(50))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        s.acquire_lease("fetch:fes", "b", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let numbered = |from: u32, to: u32| -> Vec<NewIncident> {
            (from..to)
                .map(|n| incident(&format!("f{n}"), n, Severity::ALL[n as usize % 6]))
                .collect()
        };
        let (mixed, fenced, fresh) = (numbered(9, 15), numbered(15, 19), numbered(19, 23));
        let cursor = json!({});
        let (mixed, fenced, fresh) = tokio::join!(
            s.commit_fetch(target("x"), &mixed, &cursor),
            s.commit_fetch(
                FetchTarget {
                    lease: Some(&stale),
                    ..target("y")
                },
                &fenced,
                &cursor
            ),
            s.commit_fetch(target("z"), &fresh, &cursor),
        );
        assert!(matches!(fenced, Err(StoreError::Fenced(_))), "{fenced:?}");
        assert_eq!((mixed.unwrap(), fresh.unwrap()), (3, 4));
        assert_eq!(s.count("fes").await.unwrap(), 19);
        check("steps at once, one fenced off", IncidentFilter::default()).await;
        let manual = ManualIncident {
            name: "by hand".into(),
            severity: Severity::Critical,
            organization: Some("ACME".into()),
            kind: "Manual".into(),
            details: String::new(),
            occurred: None,
            owner: Some("dana".into()),
            labels: vec![],
        };
        s.create_incident(&manual, "dana", &SLA).await.unwrap();
        let edit = |e: Edit| Change::Update(e);
        s.change_incident(
            1,
            None,
            "t",
            &edit(Edit {
                owner: Some(Some("dana".into())),
                status: Some(Status::Active),
                ..Edit::default()
            }),
            &SLA,
        )
        .await
        .unwrap();
        s.change_incident(
            2,
            None,
            "t",
            &edit(Edit {
                severity: Some(Severity::Critical),
                ..Edit::default()
            }),
            &SLA,
        )
        .await
        .unwrap();
        let close = Change::Close {
            reason: CloseReason::Resolved,
            notes: None,
        };
        for id in [3, 4, 5] {
            s.change_incident(id, None, "t", &close, &SLA)
                .await
                .unwrap();
        }
        s.change_incident(5, None, "t", &Change::Reopen, &SLA)
            .await
            .unwrap();
        s.delete_incident(6, "t").await.unwrap();
        check("after changes", IncidentFilter::default()).await;
        // The dashboard's open incidents per organization and owner come from the same counts;
        // its times to act cover the period asked for.
        for scope in [crate::Scope::All, crate::Scope::Orgs(vec!["acme".into()])] {
            let day_ago = Utc::now() - chrono::TimeDelta::days(1);
            let board = s.dashboard(&scope, day_ago).await.unwrap();
            let all = s
                .incidents(&IncidentFilter {
                    scope: scope.clone(),
                    ..IncidentFilter::default()
                })
                .await
                .unwrap();
            let open = all.iter().filter(|i| i.status != Status::Closed);
            let tally = |key: &dyn Fn(&Incident) -> String| {
                let mut m = std::collections::BTreeMap::<String, usize>::new();
                for i in open.clone() {
                    *m.entry(key(i)).or_default() += 1;
                }
                m
            };
            let shown = |rows: &[(String, usize)]| {
                assert!(rows.windows(2).all(|w| w[0].1 >= w[1].1), "most first");
                rows.iter()
                    .map(|(k, n)| (k.to_lowercase(), *n))
                    .collect::<std::collections::BTreeMap<_, _>>()
            };
            assert_eq!(
                shown(&board.open_by_org),
                tally(&|i| i.organization.clone().unwrap_or_default().to_lowercase()),
                "{scope:?}"
            );
            assert_eq!(
                shown(&board.open_by_owner),
                tally(&|i| i.owner.clone().unwrap_or_default()),
                "{scope:?}"
            );
            let counted: usize = board
                .times
                .iter()
                .filter(|t| t.by == "provider")
                .map(|t| t.incidents)
                .sum();
            assert_eq!(
                counted,
                all.len(),
                "{scope:?}: every incident of the period"
            );
            // Each organization's mean time to close, as the incidents give it.
            let secs = |a: DateTime<Utc>, b: DateTime<Utc>| {
                (a - b).num_microseconds().unwrap() as f64 / 1e6
            };
            let orgs: Vec<&crate::TimesToAct> = board
                .times
                .iter()
                .filter(|t| t.by == "organization")
                .collect();
            assert_eq!(orgs.iter().map(|t| t.incidents).sum::<usize>(), all.len());
            for t in orgs {
                let mine: Vec<&Incident> = all
                    .iter()
                    .filter(|i| {
                        i.organization
                            .as_deref()
                            .filter(|o| !o.is_empty())
                            .unwrap_or("(none)")
                            == t.name
                    })
                    .collect();
                assert_eq!(t.incidents, mine.len(), "{}", t.name);
                let closes: Vec<f64> = mine
                    .iter()
                    .filter_map(|i| i.closed.map(|c| secs(c, i.created)))
                    .collect();
                let expected =
                    (!closes.is_empty()).then(|| closes.iter().sum::<f64>() / closes.len() as f64);
                match (t.to_close, expected) {
                    (Some(got), Some(want)) => assert!((got - want).abs() < 0.01, "{got} {want}"),
                    (got, want) => assert_eq!(got.is_some(), want.is_some(), "{}", t.name),
                }
            }
            let later = s
                .dashboard(&scope, Utc::now() + chrono::TimeDelta::days(1))
                .await
                .unwrap();
            assert!(later.times.is_empty() && later.created_by_day.is_empty());
            assert_eq!(later.open_by_org, board.open_by_org, "open whenever stored");
        }
        check(
            "filtered",
            IncidentFilter {
                status: vec![Status::Pending, Status::Active],
                organization: Some("acme".into()),
                ..IncidentFilter::default()
            },
        )
        .await;
        check(
            "owner and severity",
            IncidentFilter {
                owner: Some("dana".into()),
                min_severity: Some(Severity::High),
                ..IncidentFilter::default()
            },
        )
        .await;
        s.purge_closed(Utc::now() + chrono::TimeDelta::days(1), 100)
            .await
            .unwrap();
        check("after a purge", IncidentFilter::default()).await;
        let uncountable = IncidentFilter {
            since: Some(Utc::now()),
            ..IncidentFilter::default()
        };
        assert_eq!(s.facets(&uncountable).await.unwrap(), None);
    }

    async fn retention_purges_old_closed_incidents_and_keeps_tombstones(s: SqlStore) {
        let batch = [
            incident("a", 1, Severity::High),
            incident("b", 2, Severity::Low),
            incident("c", 3, Severity::Low),
        ];
        s.commit_fetch(target(""), &batch, &json!({}))
            .await
            .unwrap();
        let close = Change::Close {
            reason: CloseReason::Resolved,
            notes: None,
        };
        for id in [1, 2] {
            s.change_incident(id, None, "t", &close, &SLA)
                .await
                .unwrap();
        }
        let pushes = s.pending_pushes("fes").await.unwrap();
        let sent = pushes.iter().find(|p| p.incident_id == 1).unwrap();
        s.finish_push(sent, "fes", &PushOutcome::Pushed("ok".into()))
            .await
            .unwrap();
        let later = Utc::now() + chrono::TimeDelta::days(1);
        assert_eq!(
            s.purge_closed(Utc::now() - chrono::TimeDelta::days(1), 100)
                .await
                .unwrap(),
            0,
            "not old yet"
        );
        assert_eq!(
            s.purge_closed(later, 100).await.unwrap(),
            1,
            "b waits for its push"
        );
        assert!(s.incident(1).await.unwrap().is_none());
        assert!(s.incident(2).await.unwrap().is_some());
        assert!(
            s.incident(3).await.unwrap().is_some(),
            "open incidents stay"
        );
        let entries: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM incident_entries WHERE incident_id = 1")
                .fetch_one(&s.pool)
                .await
                .unwrap();
        assert_eq!(entries, 0);
        assert_eq!(
            s.commit_fetch(target(""), &batch[..1], &json!({}))
                .await
                .unwrap(),
            0,
            "a purged incident is not fetched again"
        );
    }

    /// Searches in XSOAR's query syntax, every sort, and both kinds of paging.
    async fn queries_sorts_and_pages(s: SqlStore) {
        let many: Vec<NewIncident> = (0..12)
            .map(|n| incident(&format!("i{n}"), n as u32, Severity::ALL[n % 6]))
            .collect();
        s.commit_fetch(target(""), &many, &json!({})).await.unwrap();
        let id_of = |ext: &str| -> i64 { ext[1..].parse::<i64>().unwrap() + 1 };
        let assign = Change::Update(Edit {
            owner: Some(Some("dana".into())),
            ..Edit::default()
        });
        for ext in ["i1", "i2"] {
            s.change_incident(id_of(ext), None, "t", &assign, &SLA)
                .await
                .unwrap();
        }
        let close = Change::Close {
            reason: CloseReason::Resolved,
            notes: None,
        };
        s.change_incident(id_of("i3"), None, "t", &close, &SLA)
            .await
            .unwrap();

        let check = |query: &'static str, expected: &'static [&'static str]| {
            let s = &s;
            async move {
                let filter = IncidentFilter {
                    conditions: watchfloor_core::query::parse(query).unwrap(),
                    ..IncidentFilter::default()
                };
                let got: Vec<String> = s
                    .incidents(&filter)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|i| i.external_id)
                    .collect();
                assert_eq!(got, expected, "{query}");
                assert_eq!(
                    s.count_matching(&filter).await.unwrap(),
                    expected.len(),
                    "count of {query}"
                );
            }
        };
        check("status:closed", &["i3"]).await;
        check("owner:dana", &["i2", "i1"]).await;
        check("-owner:dana severity:critical", &["i11", "i5"]).await;
        check("owner:\"\" severity:4", &["i11", "i5"]).await;
        check("name:\"alert i1\"", &["i11", "i10", "i1"]).await;
        check("i10", &["i10"]).await;
        // Full-text: words in any case, the last one a prefix.
        check("\"ALERT I1\"", &["i11", "i10", "i1"]).await;
        check(
            "aler -i1",
            &["i9", "i8", "i7", "i6", "i5", "i4", "i3", "i2", "i0"],
        )
        .await;
        check("id:3", &["i2"]).await;
        check("organization:globex -status:pending", &["i3"]).await;
        check(
            "type:\"covalence aro\" occurred:<2024-05-01T08:02:00Z",
            &["i1", "i0"],
        )
        .await;
        check("-category:job -status:closed status:archive", &[]).await;
        check("a%b", &[]).await;

        // Every sort pages the same by keyset and by offset, with no row lost or repeated.
        for field in SortField::ALL {
            for ascending in [false, true] {
                let sort = Sort { field, ascending };
                let all: Vec<i64> = s
                    .incidents(&IncidentFilter {
                        sort,
                        ..IncidentFilter::default()
                    })
                    .await
                    .unwrap()
                    .iter()
                    .map(|i| i.id)
                    .collect();
                assert_eq!(all.len(), 12);
                let (mut by_key, mut by_offset) = (Vec::new(), Vec::new());
                let mut after = None;
                for page in 0..4 {
                    let rows = s
                        .incidents(&IncidentFilter {
                            sort,
                            after: after.clone(),
                            limit: Some(5),
                            ..IncidentFilter::default()
                        })
                        .await
                        .unwrap();
                    if let Some(last) = rows.last() {
                        let key = Keyset::after(last, sort);
                        after = Some(Keyset::decode(&key.encode(), field).unwrap());
                    }
                    by_key.extend(rows.iter().map(|i| i.id));
                    let rows = s
                        .incidents(&IncidentFilter {
                            sort,
                            offset: Some(page * 5),
                            limit: Some(5),
                            ..IncidentFilter::default()
                        })
                        .await
                        .unwrap();
                    by_offset.extend(rows.iter().map(|i| i.id));
                }
                assert_eq!(by_key, all, "keyset paging by {field:?} {ascending}");
                assert_eq!(by_offset, all, "offset paging by {field:?} {ascending}");
            }
        }
        assert!(Keyset::decode("zz", SortField::Id).is_err());
    }
}
