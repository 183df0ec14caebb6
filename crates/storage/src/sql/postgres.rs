//! Opening a PostgreSQL store, which several watchfloor processes share: its own versioned
//! migrations, applied once however many processes start together.

use sqlx::any::AnyPoolOptions;
use sqlx::{ConnectOptions, Connection};

use super::SqlStore;
use crate::StoreError;
use crate::dialect::Backend;

/// Migrations, in order. Each runs once, in its own transaction, under an advisory lock.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (2, include_str!("../../migrations/postgres/0002_leases.sql")),
    (
        3,
        include_str!("../../migrations/postgres/0003_incident_counts.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_incident_counts_version.sql"),
    ),
    (5, include_str!("../../migrations/postgres/0005_audit.sql")),
    (
        6,
        include_str!("../../migrations/postgres/0006_scope_health.sql"),
    ),
    (7, include_str!("../../migrations/postgres/0007_rules.sql")),
    (
        8,
        include_str!("../../migrations/postgres/0008_rule_events.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_sla_marks.sql"),
    ),
    (
        10,
        include_str!("../../migrations/postgres/0010_rule_ticks.sql"),
    ),
    (
        11,
        include_str!("../../migrations/postgres/0011_notifications.sql"),
    ),
    (
        12,
        include_str!("../../migrations/postgres/0012_indicators.sql"),
    ),
    (
        13,
        include_str!("../../migrations/postgres/0013_indicator_links.sql"),
    ),
    (
        14,
        include_str!("../../migrations/postgres/0014_indicator_verdicts.sql"),
    ),
    (
        15,
        include_str!("../../migrations/postgres/0015_enrichment_cache.sql"),
    ),
    (
        16,
        include_str!("../../migrations/postgres/0016_report_sends.sql"),
    ),
    (
        17,
        include_str!("../../migrations/postgres/0017_provider_times.sql"),
    ),
    (
        18,
        include_str!("../../migrations/postgres/0018_first_active.sql"),
    ),
    (
        19,
        include_str!("../../migrations/postgres/0019_packed_records.sql"),
    ),
    (
        20,
        include_str!("../../migrations/postgres/0020_integer_times.sql"),
    ),
    (
        21,
        include_str!("../../migrations/postgres/0021_organization_filters.sql"),
    ),
    (
        22,
        include_str!("../../migrations/postgres/0022_rule_ledger_incident.sql"),
    ),
    (
        23,
        include_str!("../../migrations/postgres/0023_organization_triage.sql"),
    ),
    (
        24,
        include_str!("../../migrations/postgres/0024_provider_acknowledged.sql"),
    ),
];

/// Connections each process keeps to the database at most, besides `PAGE_CONNECTIONS`.
const MAX_CONNECTIONS: u32 = 8;

/// Connections each process keeps at most for reading pages of incidents (8 served no more
/// pages than 4 under 32 clients on two cores: bench/RESULTS.md).
const PAGE_CONNECTIONS: u32 = 4;

pub(crate) fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A URL with its password hidden, for messages and logs.
pub use watchfloor_core::secret::redact_url as redact;

fn open_error(url: &str, message: String) -> StoreError {
    // The driver's own messages can quote the URL.
    let message = match url.split_once("://").and_then(|(_, r)| r.split_once('@')) {
        Some((userinfo, _)) => match userinfo.split_once(':') {
            Some((_, password)) if !password.is_empty() => message.replace(password, "***"),
            _ => message,
        },
        None => message,
    };
    crate::base::open_error(&redact(url), message)
}

/// What every connection sets for its session. The store's reads are short and many at once;
/// PostgreSQL's planner, which guesses that 2% of a large table matches a text search, would
/// otherwise compile a page's query to machine code (JIT) and start two worker processes for
/// it: at ten million incidents a rare word's page took 55 ms alone and 500 ms under 32
/// clients, and 3 ms without them.
const SESSION_SETTINGS: &str = "SET jit = off; SET max_parallel_workers_per_gather = 0";

pub(crate) async fn connect(url: &str) -> Result<SqlStore, StoreError> {
    sqlx::any::install_default_drivers();
    let options: sqlx::any::AnyConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| open_error(url, e.to_string()))?;
    let options = options.disable_statement_logging();
    let refused = |e: sqlx::Error| {
        open_error(
            url,
            format!("{e}; is PostgreSQL running there, and may this user connect?"),
        )
    };
    // One connection first, so that a server that cannot be reached says why at once (the
    // pool would retry until its timeout).
    let first = sqlx::AnyConnection::connect_with(&options)
        .await
        .map_err(refused)?;
    let _ = first.close().await;
    let pool = AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .after_connect(|conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(SESSION_SETTINGS).await.map(drop)
            })
        })
        .acquire_timeout(crate::ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(refused)?;
    let page_options: sqlx::postgres::PgConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| open_error(url, e.to_string()))?;
    let pages = sqlx::postgres::PgPoolOptions::new()
        .max_connections(PAGE_CONNECTIONS)
        .after_connect(|conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(SESSION_SETTINGS).await.map(drop)
            })
        })
        .acquire_timeout(crate::ACQUIRE_TIMEOUT)
        .connect_lazy_with(page_options.clone().disable_statement_logging());
    let listen = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(crate::ACQUIRE_TIMEOUT)
        .connect_lazy_with(page_options);
    let mut store = SqlStore::new(pool.clone(), pool, Backend::Postgres);
    store.pages = Some(pages);
    store.listen = Some(listen);
    Ok(store)
}

/// Opens the database at `url` (which must exist) and applies pending migrations.
pub(crate) async fn open(url: &str) -> Result<SqlStore, StoreError> {
    let mut store = connect(url).await?;
    store.applied = store.migrate(MIGRATIONS).await?;
    store.check_version(&redact(url), MIGRATIONS).await?;
    store.indicators.start_drain(store.pool.clone());
    super::repack::start(store.writer.clone(), Backend::Postgres);
    if let Some(listen) = &store.listen {
        super::callers::listen(listen.clone(), std::sync::Arc::downgrade(&store.callers));
    }
    Ok(store)
}

/// Opens the database at `url` without changing its schema.
pub(crate) async fn open_existing(url: &str) -> Result<SqlStore, StoreError> {
    let store = connect(url).await?;
    store.check_version(&redact(url), MIGRATIONS).await?;
    store.indicators.start_drain(store.pool.clone());
    Ok(store)
}

/// Adds `n` synthetic incidents in one statement (see [`SqlStore::fill_synthetic`] and
/// SQLite's, which this mirrors).
pub(crate) const FILL_SYNTHETIC: &str = "INSERT INTO incidents (instance, integration, external_id, name, type, occurred, created, modified, \
      severity, status, organization, owner, details, labels, raw_json, sla_due) \
     SELECT 'synthetic', 'synthetic', 's' || x, \
      'Alert ' || x || CASE x % 4 WHEN 0 THEN ' port scan' WHEN 1 THEN ' phishing mail' \
        WHEN 2 THEN ' malware beacon' ELSE ' impossible travel' END, 'Synthetic', \
      ($3 + x * $2) * 1000000, \
      ($3 + x * $2) * 1000000, \
      ($3 + x * $2) * 1000000, \
      CASE WHEN b % 100 < 10 THEN 0 WHEN b % 100 < 35 THEN 0.5 WHEN b % 100 < 65 THEN 1 \
        WHEN b % 100 < 85 THEN 2 WHEN b % 100 < 97 THEN 3 ELSE 4 END, \
      CASE WHEN a % 100 < 70 THEN 'closed' WHEN a % 100 < 85 THEN 'pending' ELSE 'active' END, \
      'Org ' || (c % 200), CASE WHEN a % 100 >= 70 AND a % 100 < 85 THEN NULL ELSE 'analyst' || (d % 7) END, \
      'Synthetic alert number ' || x || \
        CASE WHEN x % 10 = 0 THEN ' from 198.51.100.' || (x % 250) ELSE '' END, '[]', '{}', \
      ($3 + x * $2 + 86400) * 1000000 \
     FROM (SELECT x, (x * 2654435761) % 1000003 AS a, (x * 40503) % 999983 AS b, \
      (x * 97) % 1009 AS c, (x * 7919) % 10007 AS d FROM generate_series(1, $1) AS k(x)) AS h";

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted_from_urls() {
        let check = |url: &str, shown: &str| assert_eq!(redact(url), shown, "{url}");
        check(
            "postgres://wf:s3cret@db.example:5432/wf",
            "postgres://wf:***@db.example:5432/wf",
        );
        check("postgres://wf@db/wf", "postgres://wf@db/wf");
        check(
            "postgresql://wf:p@ss@db/wf?sslmode=require",
            "postgresql://wf:***@db/wf?sslmode=require",
        );
        check("postgres://db/wf", "postgres://db/wf");
    }
}
