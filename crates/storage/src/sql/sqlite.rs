//! Opening a SQLite store: one file, WAL journal, versioned migrations applied on open, and
//! waiting out another process's lock.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{ConnectOptions, Connection};

use super::SqlStore;
use crate::StoreError;
use crate::base::open_error;
use crate::dialect::Backend;
use crate::search::is_busy;
use crate::search::{self, SearchIndex, TextIndex};

/// Migrations, in order. Each runs once, in its own transaction.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_init.sql")),
    (2, include_str!("../../migrations/0002_set_aside.sql")),
    (3, include_str!("../../migrations/0003_lifecycle.sql")),
    (4, include_str!("../../migrations/0004_mirroring.sql")),
    (5, include_str!("../../migrations/0005_queue_indexes.sql")),
    (6, include_str!("../../migrations/0006_users.sql")),
    (7, include_str!("../../migrations/0007_sessions.sql")),
    (8, include_str!("../../migrations/0008_text_search.sql")),
    (9, include_str!("../../migrations/0009_sort_indexes.sql")),
    (10, include_str!("../../migrations/0010_leases.sql")),
    (11, include_str!("../../migrations/0011_ingest.sql")),
    (
        12,
        include_str!("../../migrations/0012_covering_indexes.sql"),
    ),
    (
        13,
        include_str!("../../migrations/0013_incident_counts.sql"),
    ),
    (
        14,
        include_str!("../../migrations/0014_incident_counts_version.sql"),
    ),
    (15, include_str!("../../migrations/0015_search_file.sql")),
    (
        16,
        include_str!("../../migrations/0016_outbox_incident.sql"),
    ),
    (17, include_str!("../../migrations/0017_audit.sql")),
    (18, include_str!("../../migrations/0018_scope_health.sql")),
    (19, include_str!("../../migrations/0019_rules.sql")),
    (20, include_str!("../../migrations/0020_rule_events.sql")),
    (21, include_str!("../../migrations/0021_sla_marks.sql")),
    (22, include_str!("../../migrations/0022_rule_ticks.sql")),
    (23, include_str!("../../migrations/0023_notifications.sql")),
    (
        24,
        include_str!("../../migrations/0024_indicator_verdicts.sql"),
    ),
    (
        25,
        include_str!("../../migrations/0025_enrichment_cache.sql"),
    ),
    (26, include_str!("../../migrations/0026_report_sends.sql")),
    (27, include_str!("../../migrations/0027_provider_times.sql")),
    (28, include_str!("../../migrations/0028_first_active.sql")),
    (29, include_str!("../../migrations/0029_packed_records.sql")),
    (30, include_str!("../../migrations/0030_integer_times.sql")),
    (
        31,
        include_str!("../../migrations/0031_rule_ledger_incident.sql"),
    ),
    (
        32,
        include_str!("../../migrations/0032_organization_triage.sql"),
    ),
    (
        33,
        include_str!("../../migrations/0033_provider_acknowledged.sql"),
    ),
];

/// How long a writer waits for another process's write to finish before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Run on every new connection. Each connection caches 8 MB of pages; the file is read, not
/// mapped into memory (`mmap_size` stays 0): a mapping made the process look a gigabyte large
/// and sped nothing up that the benchmarks could see. The WAL is copied back into the database
/// once it holds 10,000 pages (40 MB), not SQLite's default 1,000: a page that many commits
/// change is copied once, and ingest is about a third faster.
const SETUP: &str = "PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON; \
     PRAGMA synchronous = NORMAL; PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 10000;";

/// Run also on the write connection: its statement journals (the pages a statement changed,
/// kept so that a failed statement can be undone inside its transaction) stay in memory, where
/// SQLite otherwise creates, writes and deletes a temporary file for every batch of incidents
/// larger than 64 KB of changed pages (about a tenth of ingest). They hold one statement's
/// pages; crash recovery does not use them (the WAL does). Readers keep temporary data on disk,
/// so a large sort cannot grow the process.
const WRITER_SETUP: &str = "PRAGMA temp_store = MEMORY;";

/// A connection unused this long is closed, and its cache freed: a quiet `serve` gives its
/// memory back.
const IDLE: Duration = Duration::from_secs(10);

/// The file a `sqlite:` URL names, or why it names none.
fn path_of(url: &str) -> Result<std::path::PathBuf, StoreError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            open_error(
                url,
                "use a sqlite: or postgres: URL, e.g. sqlite://./watchfloor-data/watchfloor.db"
                    .into(),
            )
        })?;
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        return Err(open_error(
            url,
            "the URL names no database file: use sqlite://PATH, e.g. sqlite://./watchfloor-data/watchfloor.db".into(),
        ));
    }
    Ok(std::path::PathBuf::from(path))
}

/// The URL of the file, with the open mode the driver should use.
fn url_with(path: &std::path::Path, mode: &str) -> String {
    format!("sqlite://{}?{mode}", path.display())
}

/// Says plainly when another process holds the database past the busy timeout.
fn busy_hint(url: &str, e: StoreError) -> StoreError {
    if is_busy(&e) {
        open_error(
            url,
            format!(
                "another process has held the database for more than {}s; wait for it to finish, or stop it",
                BUSY_TIMEOUT.as_secs()
            ),
        )
    } else {
        e
    }
}

/// Connects to the database at `driver_url`; read connections attach the full-text index's
/// file `search` (see `search.rs`) when there is one.
pub(crate) async fn connect(
    url: &str,
    driver_url: &str,
    search: Option<std::path::PathBuf>,
) -> Result<SqlStore, StoreError> {
    sqlx::any::install_default_drivers();
    let options: sqlx::any::AnyConnectOptions = driver_url
        .parse()
        .map_err(|e: sqlx::Error| open_error(url, e.to_string()))?;
    let options = options.disable_statement_logging();
    // One connection first, so that a database that cannot be opened says why at once (the
    // pool would retry until its timeout).
    let mut first = sqlx::AnyConnection::connect_with(&options)
        .await
        .map_err(|e| open_error(url, e.to_string()))?;
    sqlx::raw_sql(SETUP)
        .execute(&mut first)
        .await
        .map_err(|e| open_error(url, e.to_string()))?;
    let _ = first.close().await;
    // Only the connections that search text attach the index (see `SqlStore::text_reads`):
    // not the write connection, whose write transactions would take the index's write lock
    // too, and wait for the indexer.
    let pool_of = |size: u32, writes: bool, search: Option<std::path::PathBuf>| {
        AnyPoolOptions::new()
            .max_connections(size)
            .idle_timeout(IDLE)
            .after_connect(move |conn, _| {
                let search = search.clone();
                Box::pin(async move {
                    sqlx::raw_sql(SETUP).execute(&mut *conn).await?;
                    if writes {
                        sqlx::raw_sql(WRITER_SETUP).execute(&mut *conn).await?;
                    }
                    if let Some(search) = search {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "ATTACH DATABASE $1 AS {}",
                            crate::search::SCHEMA
                        )))
                        .bind(search.display().to_string())
                        .execute(conn)
                        .await?;
                    }
                    Ok(())
                })
            })
    };
    let pool = pool_of(4, false, None)
        .connect_with(options.clone())
        .await
        .map_err(|e| open_error(url, e.to_string()))?;
    // Connected at the first write: a store opened to read never makes one.
    let writer = pool_of(1, true, None).connect_lazy_with(options.clone());
    let mut store = SqlStore::new(pool.clone(), writer, Backend::Sqlite);
    if search.is_some() {
        store.text_reads = pool_of(4, false, search).connect_lazy_with(options);
    }
    Ok(store)
}

/// Creates `path` empty and readable by its owner only, if it does not exist.
fn private_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens (creating if needed) the database at `url` and applies pending migrations. While
/// another process creates or migrates the same database, it waits its turn (up to the busy
/// timeout).
pub(crate) async fn open(url: &str) -> Result<SqlStore, StoreError> {
    let path = path_of(url)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| open_error(url, format!("cannot create {}: {e}", dir.display())))?;
    }
    // The database and its full-text index hold everyone's incidents: readable by their
    // owner only. SQLite makes its -wal and -shm files with the database's permissions.
    for file in [path.clone(), search::path_for(&path)] {
        private_file(&file)
            .map_err(|e| open_error(url, format!("cannot create {}: {e}", file.display())))?;
    }
    let driver_url = url_with(&path, "mode=rwc");
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        // Switching a new file to WAL and migrating can meet another process's lock without
        // SQLite's busy handler being asked, so the whole open is retried.
        let attempt = async {
            let mut store = connect(url, &driver_url, Some(search::path_for(&path))).await?;
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(store.pool())
                .await?;
            store.applied = store.migrate(MIGRATIONS).await?;
            let index = SearchIndex::open(&path, store.indicators.clone()).await?;
            index.verify().await?;
            store.text = TextIndex::Ready(index);
            store.text.wake();
            // Keeps the planner's statistics current, so each queue filter uses its index.
            sqlx::query("PRAGMA optimize").execute(store.pool()).await?;
            Ok::<_, StoreError>(store)
        };
        match attempt.await {
            Ok(store) => {
                store.check_version(url, MIGRATIONS).await?;
                super::repack::start(store.writer.clone(), Backend::Sqlite);
                return Ok(store);
            }
            Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(busy_hint(url, e)),
        }
    }
}

/// Opens an existing database for reading only: nothing is created or migrated, so a
/// mistyped path is an error, not a new empty database. On a read-only file system, where
/// SQLite cannot make the WAL's shared-memory file, the database is read as immutable.
pub(crate) async fn open_read_only(url: &str) -> Result<SqlStore, StoreError> {
    let path = path_of(url)?;
    if !path.is_file() {
        return Err(open_error(
            url,
            format!(
                "there is no database at {}; nothing has been fetched there yet (run `watchfloor fetch`), or check --db and the config's [storage] url",
                path.display()
            ),
        ));
    }
    // The full-text index is derived data, written even by a store that only reads (where
    // it can be: not on a read-only file system).
    let indicators = std::sync::Arc::new(crate::indicators::Indicators::default());
    let text = match SearchIndex::open(&path, indicators.clone()).await {
        Ok(index) => TextIndex::Ready(index),
        Err(e) => TextIndex::Unavailable(e.to_string()),
    };
    let attach = matches!(text, TextIndex::Ready(_)).then(|| search::path_for(&path));
    let opened = async |mode: &str| {
        let mut store = connect(url, &url_with(&path, mode), attach.clone()).await?;
        store.check_version(url, MIGRATIONS).await?;
        store.indicators = indicators.clone();
        store.text = match &text {
            TextIndex::Ready(index) => match index.verify().await {
                Ok(()) => text.clone(),
                Err(e) => TextIndex::Unavailable(e.to_string()),
            },
            other => other.clone(),
        };
        Ok::<_, StoreError>(store)
    };
    match opened("mode=ro").await {
        Err(e) if e.to_string().contains("unable to open") => {
            opened("mode=ro&immutable=true").await
        }
        other => other,
    }
}

/// Adds `n` synthetic incidents in one statement (see [`SqlStore::fill_synthetic`]). Status,
/// severity, organization and owner come from independent hashes of the row number, in the
/// proportions of a working queue: seven in ten closed, few critical, pending ones unowned.
pub(crate) const FILL_SYNTHETIC: &str = "WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM k WHERE x < $1), \
     h AS (SELECT x, (x * 2654435761) % 1000003 AS a, (x * 40503) % 999983 AS b, \
      (x * 97) % 1009 AS c, (x * 7919) % 10007 AS d FROM k) \
     INSERT INTO incidents (instance, integration, external_id, name, type, occurred, created, modified, \
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
     FROM h";
