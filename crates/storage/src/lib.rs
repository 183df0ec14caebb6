//! watchfloor-storage: incidents, their war-room entries, fetch cursors and instance health,
//! behind the [`Store`] trait. [`SqlStore`] implements it once for SQLite (the default, one
//! file) and PostgreSQL (shared by several processes), chosen by the database URL.
//!
//! The one write that matters most, [`Store::commit_fetch`], stores a fetch's incidents and its
//! new cursor in one transaction, and drops incidents already stored for the instance
//! (unique on instance and external id). So a crash between fetching and committing repeats
//! the fetch, and never loses or duplicates an incident.

mod base;
mod copy;
mod counts;
mod dialect;
mod indicators;
mod record;
mod search;
mod sql;
#[doc(hidden)]
pub mod test_cluster;

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use watchfloor_core::{
    Change, Incident, Label, LifecycleError, NewIncident, SetAside, Severity, SlaPolicy, SlaState,
    Status,
};

pub use copy::{CopyError, CopyReport, copy};
pub use dialect::Backend;

/// The schema version this build migrates a database of `backend` to.
pub fn schema_version(backend: Backend) -> i64 {
    let migrations = match backend {
        Backend::Sqlite => sql::sqlite::MIGRATIONS,
        Backend::Postgres => sql::postgres::MIGRATIONS,
    };
    migrations.last().map_or(0, |(v, _)| *v)
}
pub use sql::SqlStore;

/// Every role trait of the store, for code that calls them on a `SqlStore` itself.
pub mod prelude {
    pub use crate::{
        AccountStore, AuditStore, FetchStore, HealthStore, IncidentStore, IndicatorStore,
        LeaseStore, NotifyStore, OutboxStore, QueueStore, RuleStore, Store,
    };
}
pub use sql::postgres::redact as redact_url;

/// The default database URL.
pub const DEFAULT_URL: &str = "sqlite://./watchfloor-data/watchfloor.db";

/// A boxed future, so stores can sit behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {url}: {message}")]
    Open { url: String, message: String },
    #[error("database migration {version} failed: {message}")]
    Migration { version: i64, message: String },
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error(
        "the database has schema version {found}, newer than this watchfloor knows ({known}); upgrade watchfloor, or use another database"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("incident {0} does not exist")]
    NoIncident(i64),
    #[error(
        "incident {id} changed since you read it (version {expected}, now {found}); read it again and retry"
    )]
    Conflict { id: i64, expected: i64, found: i64 },
    #[error("incident {id}: {error}")]
    Refused { id: i64, error: LifecycleError },
    #[error("there is no user `{0}`; `watchfloor users list` shows them")]
    NoUser(String),
    #[error("a user named `{0}` exists already")]
    UserExists(String),
    #[error(
        "the lease on `{0}` passed to another process (this one was paused or cut off past it); its work there was not stored, and the new holder carries on"
    )]
    Fenced(String),
    /// The database cannot be reached or is held by another process now; trying again later
    /// may succeed.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

/// How long a request waits for a database connection before it is told the database is
/// unavailable.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if matches!(
            e,
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
        ) {
            return StoreError::Unavailable(format!(
                "{e}; check that the database server is up and reachable"
            ));
        }
        match e.as_database_error().and_then(|d| d.code()).as_deref() {
            // SQLITE_BUSY after the busy timeout.
            Some("5") => StoreError::Unavailable(
                "the database is locked: another process has been writing to it for too long; try again".into(),
            ),
            // PostgreSQL refuses connections: shutting down, starting, too many, or not
            // allowed now.
            Some("57P01") | Some("57P02") | Some("57P03") | Some("53300") | Some("55000") => {
                StoreError::Unavailable(e.to_string())
            }
            // PostgreSQL: a serialization failure or a deadlock, which the next try resolves.
            Some("40001") | Some("40P01") => StoreError::Database(
                "the database refused a write that raced another process's; try again".into(),
            ),
            _ => StoreError::Database(e.to_string()),
        }
    }
}

/// Which instance a fetch's incidents belong to, how they are typed, and their SLA.
#[derive(Debug, Clone)]
pub struct FetchTarget<'a> {
    pub instance: &'a str,
    pub integration: &'a str,
    pub incident_type: &'a str,
    /// The cursor's scope: "" for the instance, or an organization in broker mode.
    pub scope: &'a str,
    pub sla: &'a SlaPolicy,
    /// The lease this process holds on the scope, when processes share the work: the commit
    /// stores nothing unless the lease is still this one.
    pub lease: Option<&'a Lease>,
}

/// A lease on one piece of shared work (a fetch scope, an instance's mirroring), held by one
/// process. `token` grows whenever the lease changes hands, so work done under an older token
/// is refused (fencing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub scope: String,
    pub holder: String,
    pub token: i64,
    /// By this process's clock, when the lease runs out unless renewed: the moment it was asked
    /// for plus its period, so never later than the database's expiry. Work that the database
    /// cannot fence (a request to a provider) is not started after it.
    #[serde(skip)]
    pub valid_until: std::time::Instant,
}

/// A process sharing the work, as it last said it was alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    pub id: String,
    pub host: String,
    pub pid: i64,
    /// Milliseconds since the Unix epoch, by the database's clock.
    pub started_ms: i64,
    pub seen_ms: i64,
}

/// A lease as `cluster status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseInfo {
    pub scope: String,
    pub holder: String,
    pub token: i64,
    pub acquired_ms: i64,
    pub expires_ms: i64,
}

/// Every process and lease, and the database's clock when they were read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub now_ms: i64,
    pub processes: Vec<ProcessInfo>,
    pub leases: Vec<LeaseInfo>,
}

/// Which organizations' incidents a reader may see. Every read that serves a user takes one, so
/// that no route can forget it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every incident (an admin, or the CLI on the machine itself).
    #[default]
    All,
    /// Incidents of these organizations only.
    Orgs(Vec<String>),
}

impl Scope {
    /// The scope of a user: its organizations, or all for an admin or a user given none.
    pub fn of(user: &User) -> Scope {
        if user.role == Role::Admin || user.orgs.is_empty() {
            Scope::All
        } else {
            Scope::Orgs(user.orgs.clone())
        }
    }

    pub fn allows(&self, organization: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Orgs(orgs) => {
                organization.is_some_and(|o| orgs.iter().any(|s| s.eq_ignore_ascii_case(o)))
            }
        }
    }
}

/// Filters of [`Store::incidents`].
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// The organizations the reader may see.
    pub scope: Scope,
    /// Any of these statuses (all when empty).
    pub status: Vec<Status>,
    /// Any of these severities (all when empty).
    pub severity: Vec<Severity>,
    /// This severity or above.
    pub min_severity: Option<Severity>,
    /// The organization, in any case.
    pub organization: Option<String>,
    pub instance: Option<String>,
    pub owner: Option<String>,
    /// With the time it is judged at (now, unless a test says otherwise).
    pub sla: Option<(SlaState, DateTime<Utc>)>,
    /// Not closed and not yet due at this time (at risk or within their SLA, were they
    /// judged then): what the SLA index holds from then on, so counted without reading the
    /// incidents already past due.
    pub due_from: Option<DateTime<Utc>>,
    /// Occurred at or after.
    pub since: Option<DateTime<Utc>>,
    /// Stored (fetched or created) at or after.
    pub fetched_since: Option<DateTime<Utc>>,
    /// Terms of a search in XSOAR's query syntax, all of which must hold.
    pub conditions: Vec<watchfloor_core::query::Condition>,
    pub sort: Sort,
    /// Rows after this one in the sort (keyset paging).
    pub after: Option<Keyset>,
    /// Rows to skip (page-number paging, as XSOAR's API pages).
    pub offset: Option<usize>,
    pub limit: Option<usize>,
}

/// What incidents are sorted by. Ties are broken by id, in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortField {
    #[default]
    Occurred,
    Created,
    Modified,
    Severity,
    Id,
    Name,
    Status,
    Owner,
    SlaDue,
    Organization,
    Instance,
}

impl SortField {
    pub const ALL: [SortField; 11] = [
        SortField::Occurred,
        SortField::Created,
        SortField::Modified,
        SortField::Severity,
        SortField::Id,
        SortField::Name,
        SortField::Status,
        SortField::Owner,
        SortField::SlaDue,
        SortField::Organization,
        SortField::Instance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortField::Occurred => "occurred",
            SortField::Created => "created",
            SortField::Modified => "modified",
            SortField::Severity => "severity",
            SortField::Id => "id",
            SortField::Name => "name",
            SortField::Status => "status",
            SortField::Owner => "owner",
            SortField::SlaDue => "sla",
            SortField::Organization => "organization",
            SortField::Instance => "instance",
        }
    }

    /// A field name as the native API or XSOAR's API spells it (`dueDate` is the SLA).
    pub fn parse(s: &str) -> Result<SortField, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("dueDate") || s.eq_ignore_ascii_case("sla_due") {
            return Ok(SortField::SlaDue);
        }
        SortField::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = SortField::ALL.iter().map(|f| f.as_str()).collect();
                format!("`{s}` is not a field to sort by: use {}", names.join(", "))
            })
    }

    /// The incident's value of this field, to page after it.
    pub fn key(self, incident: &Incident) -> KeyValue {
        match self {
            SortField::Occurred => KeyValue::Time(incident.occurred),
            SortField::Created => KeyValue::Time(incident.created),
            SortField::Modified => KeyValue::Time(incident.modified),
            SortField::SlaDue => KeyValue::Time(incident.sla_due),
            SortField::Severity => KeyValue::Real(incident.severity.value()),
            SortField::Id => KeyValue::Int(incident.id),
            SortField::Name => KeyValue::Text(incident.name.clone()),
            SortField::Status => KeyValue::Text(incident.status.as_str().into()),
            SortField::Owner => KeyValue::Text(incident.owner.clone().unwrap_or_default()),
            SortField::Organization => {
                KeyValue::Text(incident.organization.clone().unwrap_or_default())
            }
            SortField::Instance => KeyValue::Text(incident.instance.clone()),
        }
    }
}

/// An order: a field, newest or largest first unless `ascending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort {
    pub field: SortField,
    pub ascending: bool,
}

/// A sort value, typed as the store compares it.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    Time(DateTime<Utc>),
    Int(i64),
    Real(f64),
    Text(String),
}

/// Where a page ends: the last row's sort value and id.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyset {
    pub value: KeyValue,
    pub id: i64,
}

impl Keyset {
    /// The keyset after `incident` in `sort`.
    pub fn after(incident: &Incident, sort: Sort) -> Keyset {
        Keyset {
            value: sort.field.key(incident),
            id: incident.id,
        }
    }

    /// A cursor for a URL: opaque, and safe in a query string.
    pub fn encode(&self) -> String {
        let value = match &self.value {
            KeyValue::Time(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            KeyValue::Int(n) => n.to_string(),
            KeyValue::Real(r) => r.to_string(),
            KeyValue::Text(t) => t.clone(),
        };
        format!("{}:{value}", self.id)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads a cursor made by [`Keyset::encode`] for the same sort field.
    pub fn decode(cursor: &str, field: SortField) -> Result<Keyset, String> {
        let bad = || {
            "the cursor is not one this server gave: start again from the first page".to_string()
        };
        if !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..cursor.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (id, value) = text.split_once(':').ok_or_else(bad)?;
        let id = id.parse().map_err(|_| bad())?;
        // The cursor's value is read as the field's own kind of value.
        let value = match field {
            SortField::Occurred | SortField::Created | SortField::Modified | SortField::SlaDue => {
                KeyValue::Time(
                    chrono::DateTime::parse_from_rfc3339(value)
                        .map_err(|_| bad())?
                        .with_timezone(&Utc),
                )
            }
            SortField::Id => KeyValue::Int(value.parse().map_err(|_| bad())?),
            SortField::Severity => KeyValue::Real(value.parse().map_err(|_| bad())?),
            SortField::Name
            | SortField::Status
            | SortField::Owner
            | SortField::Organization
            | SortField::Instance => KeyValue::Text(value.to_string()),
        };
        Ok(Keyset { value, id })
    }
}

/// How many incidents have each value of the queue's filters (the filter counts), under a
/// filter: each list counts what the filter would match with its own field set to that value
/// instead, as filter chips show. Values with no incidents are left out, except statuses and
/// severities, which are all listed, and incidents of no organization from `organization`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facets {
    pub status: Vec<(Status, u64)>,
    pub severity: Vec<(Severity, u64)>,
    /// The most frequent, at most [`Facets::TOP`], most first.
    pub organization: Vec<(String, u64)>,
    /// The most frequent, at most [`Facets::TOP`], most first; `None` is unassigned.
    pub owner: Vec<(Option<String>, u64)>,
    /// The most frequent, at most [`Facets::TOP`], most first; `""` is incidents made by hand.
    pub instance: Vec<(String, u64)>,
    /// For a filter whose counts are not kept (text, times, SLA, query terms): the counts are
    /// of at most this many matching incidents per list, and some list reached it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled: Option<usize>,
}

impl Facets {
    /// Organizations, owners and instances listed at most.
    pub const TOP: usize = 20;
    /// Matching incidents counted at most per list when the counts are not kept.
    pub const SAMPLE: usize = 10_000;

    /// Whether the counts can be read for this filter: its fields are the counted ones
    /// (status, severity, organization, owner, instance, and the reader's organizations).
    /// Text, SLA, time and query terms are not counted ahead.
    pub fn countable(filter: &IncidentFilter) -> bool {
        filter.sla.is_none()
            && filter.due_from.is_none()
            && filter.since.is_none()
            && filter.fetched_since.is_none()
            && filter.conditions.is_empty()
    }
}

/// A local change waiting to be pushed to the provider: written in the same transaction as
/// the change, pushed by the sync worker, never lost across a crash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Push {
    pub id: i64,
    pub incident_id: i64,
    pub external_id: String,
    /// `close` (body: `reason`, `notes`), `reopen` (body: `{}`) or `note` (body: `text`).
    pub kind: String,
    pub body: Value,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// When a send began that never recorded its end: the provider may or may not have it.
    pub sending: Option<DateTime<Utc>>,
}

impl Push {
    /// The change this push carries, read back by the one parser of the outbox's kinds.
    pub fn change(&self) -> Result<watchfloor_core::Mirrored, String> {
        watchfloor_core::Mirrored::parse(&self.kind, &self.body)
    }
}

/// How a push ended.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    /// The provider took it (or already had it).
    Pushed(String),
    /// Not pushed, on purpose (the instance does not mirror out, or cannot).
    Skipped(String),
    /// A send was cut short and cannot be checked: not sent again, so never twice, and the
    /// war room says to check the provider.
    Uncertain(String),
    /// It failed; it stays pending and is retried.
    Failed(String),
}

/// An open incident that mirrors in: its id, the provider's id, and the provider state last
/// seen (or its fetched alert, before the first sync).
#[derive(Debug, Clone, PartialEq)]
pub struct Mirrored {
    pub id: i64,
    pub external_id: String,
    /// When the alert occurred, as fetched: list filters read by it.
    pub occurred: DateTime<Utc>,
    /// The state last seen, or why the stored record cannot be read (a damaged row is
    /// passed over, and the rest of the page is mirrored).
    pub seen: Result<Value, String>,
}

/// The state a provider's change was found against (see [`Store::remote_update`]): the
/// stored state as [`Store::mirrored`] gave it, after `kept` took what mirroring compares of
/// it (an integration's `mirror_state`), since a sync holds thousands and not whole records.
#[derive(Clone, Copy)]
pub struct Since<'a> {
    pub found: &'a Value,
    pub kept: &'a (dyn Fn(Value) -> Value + Send + Sync),
}

impl<'a> Since<'a> {
    /// The state found, whole.
    pub fn whole(found: &'a Value) -> Self {
        Since {
            found,
            kept: &|v| v,
        }
    }

    /// Whether `stored` is still the state the change was found against.
    pub fn holds(&self, stored: &Value) -> bool {
        (self.kept)(stored.clone()) == *self.found
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, in every organization, and managing users.
    Admin,
    /// Works incidents of its organizations.
    Analyst,
    /// Reads incidents of its organizations.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "analyst" => Ok(Role::Analyst),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "`{other}` is not a role: use admin, analyst or viewer"
            )),
        }
    }
}

/// A user of the API and the UI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The organizations the user sees; empty means all (for an admin, or a user of an install
    /// with no organizations).
    pub orgs: Vec<String>,
    pub disabled: bool,
    pub created: DateTime<Utc>,
    #[serde(skip)]
    pub password_hash: String,
}

/// An incident someone makes by hand.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManualIncident {
    pub name: String,
    pub severity: Severity,
    pub organization: Option<String>,
    pub kind: String,
    pub details: String,
    /// When it happened; now if not given.
    pub occurred: Option<DateTime<Utc>>,
    /// Assigned from the start.
    pub owner: Option<String>,
    pub labels: Vec<Label>,
    /// The source record it was made from (XSOAR's `rawJSON`), kept as a fetched incident's
    /// raw record is: shown with it, and searched for indicators. None (or null): an empty
    /// object.
    pub raw: Option<Value>,
}

/// One war-room entry: who, when, what kind, and its body. Entries are never edited.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarRoomEntry {
    pub id: i64,
    pub incident_id: i64,
    pub created: DateTime<Utc>,
    pub author: String,
    /// `created`, `change`, `note`, `command`, `deleted`, ...
    pub kind: String,
    pub body: Value,
}

impl WarRoomEntry {
    /// One line of what an entry says. A change (`change`, or `sync-in` when mirroring brought
    /// it) reads as one `field: old → new` line per field.
    pub fn text(&self) -> String {
        match self.kind.as_str() {
            "change" | "sync-in" if self.body["changes"].is_array() => self.body["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let side = |v: &Value| v.as_str().unwrap_or("-").to_string();
                    format!(
                        "{}: {} → {}",
                        side(&c["field"]),
                        side(&c["old"]),
                        side(&c["new"])
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            "note" => {
                let mirrored = if self.body["mirror"] == true {
                    " (mirrored)"
                } else {
                    ""
                };
                format!(
                    "{}{mirrored}",
                    self.body["text"].as_str().unwrap_or_default()
                )
            }
            "created" => format!(
                "created: {} ({})",
                self.body["name"].as_str().unwrap_or_default(),
                self.body["severity"].as_str().unwrap_or_default()
            ),
            _ => self.body["text"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| self.body.to_string()),
        }
    }
}

/// What the dashboard draws, read within one scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DashboardStats {
    /// Incidents stored per day ("YYYY-MM-DD") and severity, since the time asked.
    pub created_by_day: Vec<(String, Severity, usize)>,
    /// Open (pending or active) incidents.
    pub open: usize,
    /// Open (pending or active) incidents per organization ("" when none).
    pub open_by_org: Vec<(String, usize)>,
    /// Open incidents per owner ("" when unassigned).
    pub open_by_owner: Vec<(String, usize)>,
    /// Mean times to assign and to close, per provider and per organization, of the
    /// incidents stored since the time asked.
    pub times: Vec<TimesToAct>,
}

/// Mean seconds from an incident's arrival to its first owner and to its close.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimesToAct {
    /// `provider` or `organization`.
    pub by: &'static str,
    pub name: String,
    pub to_assign: Option<f64>,
    pub to_close: Option<f64>,
    pub incidents: usize,
}

/// An instance's health record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Health {
    pub instance: String,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i64,
    pub incidents_last_cycle: i64,
    pub last_cycle_at: Option<DateTime<Utc>>,
    /// Provider records set aside because they could not be read, oldest first.
    pub set_aside: Vec<SetAsideRecord>,
    /// Each scope's own health, by scope.
    pub scopes: Vec<ScopeHealth>,
}

/// The health of one scope of an instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeHealth {
    pub scope: String,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i64,
    pub last_cycle_at: DateTime<Utc>,
}

/// A set-aside record and when it was first seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SetAsideRecord {
    #[serde(flatten)]
    pub record: SetAside,
    pub at: DateTime<Utc>,
}

/// An indicator as a reader sees it: summed over the organizations of the reader's scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndicatorSummary {
    /// Its type: `ip`, `domain`, `url`, `email`, `md5`, `sha1`, `sha256`, `cidr`, `host`, `user`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    /// When the earliest and the latest incident that holds it occurred.
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Incidents in the reader's scope that hold it.
    pub incidents: i64,
    /// How many organizations outside the reader's scope saw it too, named nowhere; absent for
    /// a reader who sees every organization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_organizations: Option<i64>,
    /// The latest verdict on it in the reader's organizations; absent while none was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictMark>,
}

/// A verdict on an indicator: `malicious`, `suspicious` or `benign`, with who gave it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerdictMark {
    pub verdict: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A `run` result kept by a rule's `cache`: its war-room body, its context outputs, and when
/// it was fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptRun {
    pub body: Value,
    pub context: Value,
    pub at: DateTime<Utc>,
}

/// An entry of the allow list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowEntry {
    pub entry: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Which indicators to list.
#[derive(Debug, Clone, Default)]
pub struct IndicatorFilter {
    pub scope: Scope,
    /// One type only.
    pub kind: Option<String>,
    /// One value only (in any of the forms it may be kept in).
    pub value: Option<String>,
    pub limit: usize,
}

/// An incident that shares indicators with another, and how many.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelatedIncident {
    pub incident: Incident,
    pub shared: i64,
}

/// Indicators found in incidents, kept per organization; every read takes the reader's scope.
pub trait IndicatorStore: Send + Sync {
    /// The indicators most of the scope's incidents with ids in `incidents` (first, last) hold,
    /// of `organization` only when one is named; most held first, at most `limit`.
    fn top_indicators<'a>(
        &'a self,
        scope: &'a Scope,
        organization: Option<&'a str>,
        incidents: (i64, i64),
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<watchfloor_core::report::TopIndicator>, StoreError>>;

    /// Indicators of the latest stored incidents first, summed over the scope's organizations.
    fn indicators<'a>(
        &'a self,
        filter: &'a IndicatorFilter,
    ) -> BoxFuture<'a, Result<Vec<IndicatorSummary>, StoreError>>;

    /// One indicator in the scope (of any type when none is named: the first type, as they
    /// are listed, that some organization saw it as), or `None` when no organization saw it
    /// (one that only organizations outside the scope saw has no incidents and their count).
    fn indicator<'a>(
        &'a self,
        scope: &'a Scope,
        kind: Option<&'a str>,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Option<IndicatorSummary>, StoreError>>;

    /// The incidents in the scope that hold an indicator, latest first.
    fn indicator_incidents<'a>(
        &'a self,
        scope: &'a Scope,
        kind: &'a str,
        value: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Incident>, StoreError>>;

    /// An incident's indicators, each summed over the scope (its count includes the incident).
    fn incident_indicators<'a>(
        &'a self,
        scope: &'a Scope,
        incident_id: i64,
    ) -> BoxFuture<'a, Result<Vec<IndicatorSummary>, StoreError>>;

    /// Incidents in the scope that share indicators with one, most shared first.
    fn related_incidents<'a>(
        &'a self,
        scope: &'a Scope,
        incident_id: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RelatedIncident>, StoreError>>;

    /// Finds every incident's indicators again with the extractor set now.
    fn reindex_indicators(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Gives an indicator a verdict (`None`: takes it back, unknown again) in every
    /// organization of the scope that holds it, recorded as `author`'s at `at`; how many
    /// organizations that was.
    fn set_verdict<'a>(
        &'a self,
        scope: &'a Scope,
        kind: &'a str,
        value: &'a str,
        verdict: Option<&'a str>,
        author: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<usize, StoreError>>;

    /// The verdicts given to an incident's indicators in its organization.
    fn incident_verdicts(&self, incident_id: i64)
    -> BoxFuture<'_, Result<Vec<String>, StoreError>>;

    /// A `run` result kept for `organization`, `instance` and the line as sent, if it was kept
    /// at or after `since`: its war-room body, its context outputs and when it was kept.
    fn cached_run<'a>(
        &'a self,
        organization: &'a str,
        instance: &'a str,
        line: &'a str,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<KeptRun>, StoreError>>;

    /// Keeps a `run` result (replacing an older one).
    fn cache_run<'a>(
        &'a self,
        organization: &'a str,
        instance: &'a str,
        line: &'a str,
        body: &'a Value,
        context: &'a Value,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The allow list's entries (values, networks, `*.domains` that are no indicators).
    fn allowlist(&self) -> BoxFuture<'_, Result<Vec<AllowEntry>, StoreError>>;

    /// Adds (`add`) or removes an allow-list entry, recorded as `author`'s; whether it changed.
    fn change_allowlist<'a>(
        &'a self,
        entry: &'a str,
        add: bool,
        author: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// Where incidents live: every role the store plays. A caller that needs one role can ask for
/// it alone (`&dyn QueueStore`); the front ends and the engine hold the whole `Store`.
pub trait Store:
    FetchStore
    + HealthStore
    + QueueStore
    + IncidentStore
    + OutboxStore
    + LeaseStore
    + AccountStore
    + AuditStore
    + RuleStore
    + NotifyStore
    + IndicatorStore
{
}

impl<T> Store for T where
    T: FetchStore
        + HealthStore
        + QueueStore
        + IncidentStore
        + OutboxStore
        + LeaseStore
        + AccountStore
        + AuditStore
        + RuleStore
        + NotifyStore
        + IndicatorStore
{
}

/// What a fetch writes and reads: each step with its cursor, and the incidents an instance has.
pub trait FetchStore: Send + Sync {
    /// Stores a fetch's incidents and the scope's new cursor in one transaction; incidents the
    /// instance already has are dropped. Returns how many were new.
    fn commit_fetch<'a>(
        &'a self,
        target: FetchTarget<'a>,
        incidents: &'a [NewIncident],
        cursor: &'a Value,
    ) -> BoxFuture<'a, Result<usize, StoreError>>;

    /// The scope's cursor, if a fetch has committed one.
    fn cursor<'a>(
        &'a self,
        instance: &'a str,
        scope: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>, StoreError>>;

    /// How many incidents an instance has.
    fn count<'a>(&'a self, instance: &'a str) -> BoxFuture<'a, Result<usize, StoreError>>;
}

/// How each instance's fetches went: successes, failures and records set aside.
pub trait HealthStore: Send + Sync {
    /// Whether the store can write now: a write transaction begins, writes a row and is
    /// rolled back. `/readyz` asks it, so that a store every write fails on is not "ready".
    fn can_write(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Records a fetch cycle that succeeded, with the incidents it added.
    fn record_success<'a>(
        &'a self,
        instance: &'a str,
        new_incidents: usize,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records a fetch cycle that failed, and why.
    fn record_failure<'a>(
        &'a self,
        instance: &'a str,
        error: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Notes records a fetch set aside (each once), keeping the newest.
    fn record_set_aside<'a>(
        &'a self,
        instance: &'a str,
        records: &'a [SetAside],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records how one scope (a broker organization; `""` for an instance of one) of a
    /// cycle went: `None` for a success, else the error. Each process records the scopes it
    /// fetched, so that one's success cannot hide another's failure.
    fn record_scope<'a>(
        &'a self,
        instance: &'a str,
        scope: &'a str,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Forgets the health of the instance's scopes not in `scopes` (organizations gone).
    fn keep_scopes<'a>(
        &'a self,
        instance: &'a str,
        scopes: &'a [String],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Each instance's health, summarised over its scopes: failing while any scope fails.
    fn health(&self) -> BoxFuture<'_, Result<Vec<Health>, StoreError>>;
}

/// The queue: incidents by filter, their counts, the filter counts and the dashboard.
pub trait QueueStore: Send + Sync {
    /// What a report reads of the incidents `filter` matches that were stored before `until`
    /// (`fetched_since` is the period's start).
    fn report_rows<'a>(
        &'a self,
        filter: &'a IncidentFilter,
        until: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<watchfloor_core::report::ReportRow>, StoreError>>;

    /// Incidents, newest occurrence first.
    fn incidents<'a>(
        &'a self,
        filter: &'a IncidentFilter,
    ) -> BoxFuture<'a, Result<Vec<Incident>, StoreError>>;

    /// Like [`Store::count_matching`], but counts no further than `cap`: a queue page needs
    /// to know "more than 10,000", not the exact number, and reading every match is slow.
    fn count_matching_up_to<'a>(
        &'a self,
        filter: &'a IncidentFilter,
        cap: usize,
    ) -> BoxFuture<'a, Result<usize, StoreError>>;

    /// The filter counts under `filter` (see [`Facets`]), read from counts kept as incidents
    /// change, so as fast with a million incidents as with ten; when the filter is not
    /// [`Facets::countable`], counted among at most [`Facets::SAMPLE`] matches per list.
    fn facets<'a>(
        &'a self,
        filter: &'a IncidentFilter,
    ) -> BoxFuture<'a, Result<Option<Facets>, StoreError>>;

    /// How many incidents match `filter`, whatever its limit.
    fn count_matching<'a>(
        &'a self,
        filter: &'a IncidentFilter,
    ) -> BoxFuture<'a, Result<usize, StoreError>>;

    /// The dashboard's numbers within `scope`; days counted from `since`.
    fn dashboard<'a>(
        &'a self,
        scope: &'a Scope,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<DashboardStats, StoreError>>;
}

/// One incident and its lifecycle: reads, changes with their war-room entries, notes,
/// commands, deletion and retention.
pub trait IncidentStore: Send + Sync {
    fn incident(&self, id: i64) -> BoxFuture<'_, Result<Option<Incident>, StoreError>>;

    /// The incident that instance `instance` fetched from the provider's record `external_id`,
    /// if it holds one: whose the record is, as the fetch recorded it.
    fn incident_by_external_id<'a>(
        &'a self,
        instance: &'a str,
        external_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Incident>, StoreError>>;

    /// The incident, if `scope` may see it: for a reader of other organizations it does not
    /// exist. Scoped reads of one incident go through here, as lists go through
    /// [`IncidentFilter::scope`].
    fn incident_in<'a>(
        &'a self,
        scope: &'a Scope,
        id: i64,
    ) -> BoxFuture<'a, Result<Option<Incident>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .incident(id)
                .await?
                .filter(|i| scope.allows(i.organization.as_deref())))
        })
    }

    /// Makes an incident by hand, with a `created` entry.
    fn create_incident<'a>(
        &'a self,
        incident: &'a ManualIncident,
        author: &'a str,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<Incident, StoreError>>;

    /// Applies a lifecycle change in one transaction: the rules of [`Lifecycle::apply`], the
    /// version check (when `expected_version` is given), the new version, and a `change`
    /// entry with every field's old and new value. A severity change moves the SLA due time.
    fn change_incident<'a>(
        &'a self,
        id: i64,
        expected_version: Option<i64>,
        author: &'a str,
        change: &'a Change,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<Incident, StoreError>> {
        self.change_incident_all(
            id,
            expected_version,
            author,
            std::slice::from_ref(change),
            sla,
        )
    }

    /// Applies `changes` in order, as [`Store::change_incident`] applies one, all in one
    /// transaction: all of them or, if one is refused, none. The version is checked before
    /// the first; each is its own `change` entry and version. No changes: the incident as it
    /// is (after the version check).
    fn change_incident_all<'a>(
        &'a self,
        id: i64,
        expected_version: Option<i64>,
        author: &'a str,
        changes: &'a [Change],
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<Incident, StoreError>>;

    /// Applies one change to each of `ids`, as [`Store::change_incident`] applies it to one,
    /// many to a transaction: the result of each, in order. An incident the lifecycle refuses
    /// the change, or that no longer exists, is its own error and leaves the others; any other
    /// failure fails the call (the transactions before it stay committed).
    fn change_incidents<'a>(
        &'a self,
        ids: &'a [i64],
        author: &'a str,
        change: &'a Change,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<Vec<Result<Incident, StoreError>>, StoreError>>;

    /// Adds an entry to an incident's war room.
    fn add_entry<'a>(
        &'a self,
        id: i64,
        author: &'a str,
        kind: &'a str,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<WarRoomEntry, StoreError>>;

    /// An incident's war room, oldest first.
    fn entries(&self, id: i64) -> BoxFuture<'_, Result<Vec<WarRoomEntry>, StoreError>>;

    /// Deletes an incident and its war room, leaving a tombstone so that no fetch brings its
    /// alert back.
    fn delete_incident<'a>(
        &'a self,
        id: i64,
        author: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// An incident's context, as commands run in it have built it.
    fn context(&self, id: i64) -> BoxFuture<'_, Result<Value, StoreError>>;

    /// Adds a note to the war room; a mirrored note of a provider incident also goes to the
    /// outbox, in the same transaction.
    fn add_note<'a>(
        &'a self,
        id: i64,
        author: &'a str,
        text: &'a str,
        mirror: bool,
    ) -> BoxFuture<'a, Result<WarRoomEntry, StoreError>>;

    /// Adds the same note to each of `ids`, as [`Store::add_note`] adds it to one, many to a
    /// transaction: each entry, in order, or for an incident that does not exist its error
    /// (any other failure fails the call; the transactions before it stay committed).
    fn add_notes<'a>(
        &'a self,
        ids: &'a [i64],
        author: &'a str,
        text: &'a str,
        mirror: bool,
    ) -> BoxFuture<'a, Result<Vec<Result<WarRoomEntry, StoreError>>, StoreError>>;

    /// Purges incidents closed before `before`, with their war rooms, what rules did with
    /// them and their notifications, at most `limit` at a time; a provider incident leaves a
    /// tombstone so it is never fetched again, and one with a push or a notification still
    /// waiting is kept until it is sent. Returns how many were purged.
    fn purge_closed(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Records a command run in an incident's context, in one transaction: a `command` entry
    /// with `body`, and `entry_context` merged into the incident's context by XSOAR's rules.
    fn record_command<'a>(
        &'a self,
        id: i64,
        author: &'a str,
        body: &'a Value,
        entry_context: &'a serde_json::Map<String, Value>,
    ) -> BoxFuture<'a, Result<WarRoomEntry, StoreError>>;
}

/// Mirroring: the outbox's pushes, and the provider's changes coming in.
pub trait OutboxStore: Send + Sync {
    /// An instance's pushes still waiting, oldest first.
    fn pending_pushes<'a>(
        &'a self,
        instance: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Push>, StoreError>>;

    /// One incident's pushes still waiting, oldest first.
    fn incident_pushes(&self, incident_id: i64) -> BoxFuture<'_, Result<Vec<Push>, StoreError>>;

    /// How many pushes wait, by instance (instances with none are left out).
    fn outbox_depth(&self) -> BoxFuture<'_, Result<Vec<(String, usize)>, StoreError>>;

    /// Notes that `push` (as [`Store::pending_pushes`] read it) is about to be sent, before it
    /// is, so that a crash mid-send is known. False if another sender started it since it was
    /// read, or finished it: it is theirs, and not sent twice (two processes mirroring one
    /// instance without a lease, `watchfloor sync` beside `serve`, say). Under a lease, refuses
    /// ([`StoreError::Fenced`]) once the lease has passed on, so that a process that was
    /// paused past it sends nothing.
    fn start_push<'a>(
        &'a self,
        push: &'a Push,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Records how a push ended, with a war-room entry on its incident (for a failure, only when
    /// the error is new), in one transaction.
    fn finish_push<'a>(
        &'a self,
        push: &'a Push,
        instance: &'a str,
        outcome: &'a PushOutcome,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Open incidents of an instance, to read their state from the provider: up to `limit`
    /// of them after `after` (an occurrence and an id), in order of occurrence, so that a sync
    /// reads them a page at a time and each page spans a stretch of time that a provider's list
    /// can cover.
    fn mirrored<'a>(
        &'a self,
        instance: &'a str,
        after: Option<(DateTime<Utc>, i64)>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Mirrored>, StoreError>>;

    /// Applies what the provider changed, in one transaction: the provider state seen, the
    /// war-room entries (`sync-in`), and `change` if any, which is never pushed back. A change
    /// the lifecycle refuses (say, the incident was closed here first, and that close is not
    /// pushed yet) is recorded as an entry, and the local state stays. With `since` (the
    /// state the changes were found against, from [`Store::mirrored`]), only if that is still
    /// the state stored: another process that found the same changes first recorded them, and
    /// they are not recorded twice. False when nothing was applied for that reason.
    /// With `provider`, the provider's own times as read now are kept.
    #[allow(clippy::too_many_arguments)]
    fn remote_update<'a>(
        &'a self,
        id: i64,
        instance: &'a str,
        since: Option<Since<'a>>,
        seen: &'a Value,
        notes: &'a [String],
        change: Option<&'a Change>,
        provider: Option<&'a watchfloor_core::ProviderTimes>,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// Work shared by processes: heartbeats and fenced leases.
pub trait LeaseStore: Send + Sync {
    /// Says that process `me` is alive, and returns the processes that said so within
    /// `within` (by the database's clock), oldest first.
    fn heartbeat<'a>(
        &'a self,
        me: &'a ProcessInfo,
        within: std::time::Duration,
    ) -> BoxFuture<'a, Result<Vec<ProcessInfo>, StoreError>>;

    /// Takes or renews the lease on `scope` for `holder`, for `period`: free, expired or already
    /// the holder's. `None` when another process holds it.
    fn acquire_lease<'a>(
        &'a self,
        scope: &'a str,
        holder: &'a str,
        period: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>>;

    /// Gives a lease back, if it is still this one.
    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>>;

    /// A process that stops: its record goes and its leases are freed at once.
    fn leave<'a>(&'a self, process: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Every process and lease.
    fn cluster(&self) -> BoxFuture<'_, Result<ClusterStatus, StoreError>>;
}

/// Users, API keys and login sessions.
pub trait AccountStore: Send + Sync {
    /// Adds a user; the name must be new. Each change here is written to the audit log in its
    /// own transaction, as done by `actor`.
    fn create_user<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        role: Role,
        orgs: &'a [String],
        password_hash: &'a str,
    ) -> BoxFuture<'a, Result<User, StoreError>>;

    fn users(&self) -> BoxFuture<'_, Result<Vec<User>, StoreError>>;

    fn user(&self, name: &str) -> BoxFuture<'_, Result<Option<User>, StoreError>>;

    /// Sets a user's role and organizations (none: all).
    fn set_user_access<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        role: Role,
        orgs: &'a [String],
    ) -> BoxFuture<'a, Result<User, StoreError>>;

    /// Disables a user, revokes its API keys and ends its sessions.
    fn disable_user<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Enables a disabled user again. Its old keys and sessions stay revoked.
    fn enable_user<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Stores the hash of a new API key of a user, and with `replace` revokes its others;
    /// returns the key's id.
    fn add_api_key<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        key_hash: &'a str,
        replace: bool,
    ) -> BoxFuture<'a, Result<i64, StoreError>>;

    /// A user's API keys, revoked ones too, oldest first.
    fn api_keys<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<ApiKey>, StoreError>>;

    /// Revokes one API key of a user; false if it has no such key or it was revoked already.
    fn revoke_api_key<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        id: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The enabled user an API key (by its hash) belongs to, if it is not revoked.
    fn user_by_key<'a>(
        &'a self,
        key_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<User>, StoreError>>;

    /// Starts a login session for a user, until `expires`; the store keeps the token's hash.
    fn add_session<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        token_hash: &'a str,
        expires: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The enabled user of a live session, if any.
    fn user_by_session<'a>(
        &'a self,
        token_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<User>, StoreError>>;

    /// Ends a session (logout).
    fn end_session<'a>(
        &'a self,
        actor: &'a Actor,
        token_hash: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The audit log of security events: logins, sessions, keys and users. Kept in the database.
pub trait AuditStore: Send + Sync {
    /// Records an event that changes nothing else, e.g. a failed login.
    fn record_audit<'a>(
        &'a self,
        actor: &'a Actor,
        action: &'a str,
        target: &'a str,
        detail: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Events from `since` on, newest first, at most `limit`.
    fn audit_log(
        &self,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<AuditEvent>, StoreError>>;
}

/// Automation rules as stored: each as TOML, in the order they run. The store keeps them; the
/// rule language (`watchfloor-rules`) reads them.
pub trait RuleStore: Send + Sync {
    /// The rules, in order.
    fn rules(&self) -> BoxFuture<'_, Result<Vec<StoredRule>, StoreError>>;

    /// The enabled rules as they read, in run order (a stored rule that no longer reads is
    /// left out); parsed again only when their stored text changed.
    fn enabled_rules(
        &self,
    ) -> BoxFuture<'_, Result<std::sync::Arc<Vec<watchfloor_rules::Rule>>, StoreError>>;

    /// Stores `rules`: with `replace`, they become the whole set; otherwise each replaces the
    /// rule of its name in its place, or is added after the others. Audited as `actor`'s.
    fn put_rules<'a>(
        &'a self,
        actor: &'a Actor,
        rules: &'a [NewRule],
        replace: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Events waiting for the rules, oldest first, at most `limit`.
    fn pending_events(&self, limit: usize) -> BoxFuture<'_, Result<Vec<RuleEvent>, StoreError>>;

    /// Marks events handled: every rule has had them.
    fn finish_events<'a>(&'a self, ids: &'a [i64]) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records what a rule did with an event that changed nothing (it matched, failed, was
    /// dry-run or skipped), once: false when `cause` was recorded already. `entry`, if any,
    /// goes to the incident's war room in the same transaction.
    fn record_rule_outcome<'a>(
        &'a self,
        cause: &'a Cause<'a>,
        outcome: &'a str,
        detail: &'a str,
        entry: Option<(&'a str, &'a Value)>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Whether `cause` was recorded, and how.
    fn rule_outcome<'a>(
        &'a self,
        cause: &'a Cause<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;

    /// Does a rule's action to an incident, once: its effect, the ledger row (`acted`) and the
    /// events it fires (one deeper) in one transaction. Ok(false) when it was done already.
    fn apply_rule_effect<'a>(
        &'a self,
        cause: &'a Cause<'a>,
        effect: &'a RuleEffect<'a>,
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Does a batch of the rules worker's writes (effects and outcomes, as
    /// [`RuleStore::apply_rule_effect`] and [`RuleStore::record_rule_outcome`] do them) and
    /// marks the `finished` events handled, in one transaction: all, or none with the error of
    /// the first that failed. A write whose cause is in the ledger already is left out.
    fn apply_rule_writes<'a>(
        &'a self,
        writes: &'a [RuleWrite<'a>],
        finished: &'a [i64],
        sla: &'a SlaPolicy,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The incidents of these ids that exist (in no particular order), read in one go.
    fn incidents_by_id<'a>(
        &'a self,
        ids: &'a [i64],
    ) -> BoxFuture<'a, Result<Vec<Incident>, StoreError>>;

    /// Of `ids`, those of incidents that may meet every condition of at least one of `any`:
    /// a superset, from the terms the database judges exactly as `watchfloor_rules::meets`
    /// does (text, names, times, and organizations and types not in ASCII are left to it),
    /// so that the rules worker reads in full only the incidents a rule may match.
    fn may_meet<'a>(
        &'a self,
        ids: &'a [i64],
        any: &'a [Vec<watchfloor_core::query::Condition>],
    ) -> BoxFuture<'a, Result<Vec<i64>, StoreError>>;

    /// The ledger rows of these events.
    fn ledger_of<'a>(
        &'a self,
        events: &'a [i64],
    ) -> BoxFuture<'a, Result<Vec<LedgerRow>, StoreError>>;

    /// Queues `sla-at-risk` or `sla-breached` events (by `state`) for open incidents that have
    /// come into that state at `now` and have not fired it before, at most `limit` at a time;
    /// how many. Nothing is queued or marked while no rule is enabled.
    fn queue_sla_events(
        &self,
        state: SlaState,
        now: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// A `schedule` rule's tick: when its last one was `every` or more before `now` (or there
    /// was none), records this one and queues a `schedule` event for each incident `filter`
    /// matches (at most its limit), in one transaction; how many, or `None` when not due.
    fn schedule_tick<'a>(
        &'a self,
        rule: &'a str,
        every: std::time::Duration,
        filter: &'a IncidentFilter,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<usize>, StoreError>>;

    /// How many ledger rows each rule has of each outcome since `since`.
    fn rule_counts(
        &self,
        since: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<RuleCount>, StoreError>>;

    /// The outcomes of a rule's last `n` actions, newest first (for its breaker).
    fn recent_outcomes<'a>(
        &'a self,
        rule: &'a str,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>>;

    /// The rules that acted on an incident, with how many actions each.
    fn rules_of_incident(
        &self,
        incident: i64,
    ) -> BoxFuture<'_, Result<Vec<(String, i64)>, StoreError>>;

    /// Enables or disables a rule, with why (e.g. the breaker's reason); false if there is no
    /// such rule.
    fn set_rule_enabled<'a>(
        &'a self,
        actor: &'a Actor,
        name: &'a str,
        enabled: bool,
        reason: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// Notifications as stored: what `notify` actions queued (in their own transactions, through
/// [`RuleWrite::Notify`]), and the deliveries that carry them, each with a stable id.
pub trait NotifyStore: Send + Sync {
    /// Records that a scheduled report is due (`id` names the organization, channel and
    /// period); whether this call made it due (false: some process did already).
    fn queue_report_send<'a>(
        &'a self,
        send: &'a ReportSend,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Which of these scheduled report sends are recorded (queued, sent or given up on).
    fn report_sends_known<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>>;

    /// Scheduled reports waiting to be sent whose time has come, each claimed until
    /// `retry_at` (one cut off mid-send is sent again then, under the same id); a report
    /// another process claimed first is not among them.
    fn claim_report_sends(
        &self,
        now: DateTime<Utc>,
        retry_at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<ReportSend>, StoreError>>;

    /// Records how sending a scheduled report went.
    fn finish_report_send<'a>(
        &'a self,
        id: &'a str,
        outcome: DeliveryOutcome<'a>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Scheduled reports, newest first.
    fn report_sends(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ReportSend>, StoreError>>;

    /// Gives the notifications of `channel` that wait for a delivery their deliveries, within
    /// its hourly limit: one each while they fit in what is left of it, else all together in
    /// one digest; none while the limit is used up. How many deliveries.
    fn plan_deliveries<'a>(
        &'a self,
        channel: &'a str,
        max_per_hour: u32,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<usize, StoreError>>;

    /// Deliveries of `channel` waiting to be sent whose time has come, oldest first, with
    /// their notifications; each is claimed until `retry_at`, so that one cut off mid-send is
    /// sent again then, under the same id.
    fn claim_deliveries<'a>(
        &'a self,
        channel: &'a str,
        now: DateTime<Utc>,
        retry_at: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>>;

    /// Records how a delivery went: sent, to be tried again at `retry`, or (neither) failed
    /// for good, with a war-room entry on each incident it carried.
    fn finish_delivery<'a>(
        &'a self,
        id: &'a str,
        outcome: DeliveryOutcome<'a>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Notifications, newest first.
    fn notifications<'a>(
        &'a self,
        filter: &'a NotificationFilter,
    ) -> BoxFuture<'a, Result<Vec<Notification>, StoreError>>;

    /// Per channel: notifications waiting, deliveries sent in the hour before `now`, those
    /// that failed for good in the day before, and the last error.
    fn channel_stats(
        &self,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<ChannelStats>, StoreError>>;
}

/// A delivery to send: one notification, or a digest of several.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// Stable across attempts: the e-mail's `Message-ID`, a webhook's delivery header.
    pub id: String,
    pub channel: String,
    pub digest: bool,
    pub attempts: i64,
    pub created: DateTime<Utc>,
    pub notifications: Vec<Notification>,
}

/// A scheduled customer report of one organization and period, to send through a channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSend {
    /// Stable: `report-` and a digest of the organization, channel and period.
    pub id: String,
    pub organization: String,
    pub channel: String,
    /// `2026-11` or `2026-11-03`.
    pub period: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub created: DateTime<Utc>,
    pub sent: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// How a delivery attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome<'a> {
    Sent,
    /// Failed; tried again at this time.
    Retry(&'a str, DateTime<Utc>),
    /// Failed for good.
    Failed(&'a str),
    /// Claimed but not tried, the process stopping: due again at this time, the claim's
    /// attempt not counted.
    Untried(DateTime<Utc>),
}

/// One notification a rule asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub id: i64,
    pub channel: String,
    pub incident_id: i64,
    pub rule: String,
    pub trigger: String,
    pub created: DateTime<Utc>,
    /// The delivery that carries it, once planned.
    pub delivery: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// The organization of its incident (for the reader's scope).
    pub organization: Option<String>,
    /// Its incident's name.
    pub incident_name: String,
}

/// Which notifications to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotificationFilter {
    pub scope: Scope,
    pub channel: Option<String>,
    pub status: Option<String>,
    pub incident: Option<i64>,
    pub limit: Option<usize>,
}

/// A channel's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChannelStats {
    pub channel: String,
    pub waiting: i64,
    pub sent_last_hour: i64,
    pub failed_last_day: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// An event that may fire rules: what happened to which incident, at which causal depth (0
/// for a person or a fetch, one more for each rule in the chain).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleEvent {
    pub id: i64,
    pub incident_id: i64,
    /// `created`, `changed`, `closed`, `reopened`, `note` or `remote`.
    pub trigger: String,
    /// For changes: the war-room change list (`{field, old, new}` each).
    pub changed: Value,
    pub depth: i64,
    pub created: DateTime<Utc>,
}

/// Which action of which rule, for which event: the ledger's key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cause<'a> {
    pub event: &'a RuleEvent,
    pub rule: &'a str,
    /// The action's index; -1 for the rule as a whole (its match).
    pub action: i64,
}

/// What a rule's action does to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleEffect<'a> {
    /// Lifecycle changes, all or none, as `rule:NAME`.
    Change(&'a [Change]),
    /// A note; with `mirror`, also sent to the provider through the outbox.
    Note { text: &'a str, mirror: bool },
    /// Another war-room entry.
    Entry { kind: &'a str, body: &'a Value },
}

/// A row of the rules' ledger: (event, rule, action, outcome).
pub type LedgerRow = (i64, String, i64, String);

/// One write of the rules worker, for [`RuleStore::apply_rule_writes`].
#[derive(Debug, Clone, PartialEq)]
pub enum RuleWrite<'a> {
    /// An action's effect, with its `acted` ledger row.
    Effect {
        cause: Cause<'a>,
        effect: RuleEffect<'a>,
    },
    /// A notification queued on `channel`, with its `acted` ledger row. For a `schedule`
    /// event it is queued once per (rule, incident, channel): a rule that looks every few
    /// minutes notifies about an incident once.
    Notify { cause: Cause<'a>, channel: &'a str },
    /// An outcome that changes nothing else, with a war-room entry if any.
    Outcome {
        cause: Cause<'a>,
        outcome: &'a str,
        detail: &'a str,
        entry: Option<(&'a str, &'a Value)>,
    },
}

/// How many ledger rows a rule has of one outcome (`matched`, `acted`, `failed`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    pub rule: String,
    pub outcome: String,
    pub n: i64,
}

/// A rule to store: its name and TOML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    pub name: String,
    pub source: String,
    pub enabled: bool,
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRule {
    pub name: String,
    pub position: i64,
    /// The rule as TOML.
    pub source: String,
    pub enabled: bool,
    /// Why it was disabled, when something other than a person did it.
    pub disabled_reason: Option<String>,
    pub updated_by: String,
    pub updated: DateTime<Utc>,
}

/// Who did something, and from where, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actor {
    pub name: String,
    /// The address a request came from; none for the CLI.
    pub address: Option<String>,
}

impl Actor {
    pub fn new(name: &str, address: Option<String>) -> Self {
        Actor {
            name: name.to_string(),
            address,
        }
    }
}

/// One event of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// What happened: `login`, `login_failed`, `logout`, `user_created`, `user_changed`,
    /// `user_disabled`, `user_enabled`, `api_key_created`, `api_key_revoked`.
    pub action: String,
    /// What it happened to, e.g. the user changed.
    pub target: String,
    pub address: Option<String>,
    pub detail: String,
}

/// An API key of a user, as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub created: DateTime<Utc>,
    pub revoked: Option<DateTime<Utc>>,
}
