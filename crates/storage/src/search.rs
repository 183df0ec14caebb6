//! SQLite's full-text index of incidents: a file of its own beside the database
//! (`watchfloor.db-search`), kept up to date by a connection of its own, so that indexing runs
//! beside ingest instead of inside the database's one write turn.
//!
//! The database says what to index: incidents above the index's high-water mark (ids only
//! grow: SQLite writes one transaction at a time and `AUTOINCREMENT` never reuses an id), and
//! the `text_changes` log that triggers write when an incident's text changes or it is
//! deleted. The index keeps how far it has read of both in the same transaction as what it
//! indexed, so a crash loses nothing and indexes nothing twice. A text search first brings the
//! index up to date with what was committed before it (usually nothing is left: every commit
//! wakes the indexer), so it finds every incident a plain read would. The file is derived
//! data: removed, damaged, built from another database (or told so, as `copy` does) or from a
//! newer state of this one, it is built again from the incidents.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, ConnectOptions};

use crate::StoreError;

/// The name the index's file is attached under on the connections that search text.
pub(crate) const SCHEMA: &str = crate::dialect::INDEX_SCHEMA;

/// Incidents indexed per transaction: a transaction's work stays short, so that a search
/// waiting on the index waits for one step at most beyond what it needs.
const STEP: i64 = 2_000;

/// Creates the index's tables (every statement may meet them made already).
const CREATE: &str = "PRAGMA journal_mode = WAL; \
     CREATE VIRTUAL TABLE IF NOT EXISTS incidents_fts USING fts5(name, details, external_id, \
      content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'); \
     CREATE TABLE IF NOT EXISTS indexed (one INTEGER PRIMARY KEY CHECK (one = 1), \
      incidents INTEGER NOT NULL, changes INTEGER NOT NULL, database TEXT NOT NULL); \
     INSERT OR IGNORE INTO indexed VALUES (1, 0, 0, '');
     CREATE TABLE IF NOT EXISTS indicators_kept (version INTEGER NOT NULL);";

/// The index's connection: durable as the database is (`sqlite.rs`), with a page cache of 2 MB
/// (it appends; 8 MB indexed no faster and showed in `serve`'s peak memory).
const SETUP: &str = "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL; \
     PRAGMA cache_size = -2048;";

/// The index's file for the database at `data`.
pub(crate) fn path_for(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push("-search");
    PathBuf::from(name)
}

/// The full-text index of a SQLite store, or why it has none.
#[derive(Clone)]
pub(crate) enum TextIndex {
    /// PostgreSQL indexes text in the table itself.
    InTable,
    Ready(Arc<SearchIndex>),
    /// It could not be opened (a read-only file system, say): text search says why.
    Unavailable(String),
}

impl TextIndex {
    /// Brings the index up to date with everything committed before the call.
    pub(crate) async fn catch_up(&self) -> Result<(), StoreError> {
        match self {
            TextIndex::InTable => Ok(()),
            TextIndex::Ready(index) => index.catch_up().await,
            TextIndex::Unavailable(why) => Err(StoreError::Database(format!(
                "text search is unavailable: its index cannot be opened ({why}); search from a copy of the database on a writable disk"
            ))),
        }
    }

    /// Wakes the indexer: incidents were committed.
    pub(crate) fn wake(&self) {
        if let TextIndex::Ready(index) = self {
            let _ = index.wake.try_send(());
        }
    }

    /// How many incidents were committed that the index has not read yet (it does not catch
    /// up first): none once the background task is done.
    pub(crate) async fn unread(&self) -> Result<i64, StoreError> {
        match self {
            TextIndex::Ready(index) => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM data.incidents WHERE id > indexed.incidents) \
                     FROM indexed",
                )
                .fetch_one(&index.conn)
                .await?;
                Ok(n)
            }
            _ => Ok(0),
        }
    }

    /// How far the index has read the `text_changes` log: entries up to there may go.
    pub(crate) async fn changes_read(&self) -> Result<Option<i64>, StoreError> {
        match self {
            TextIndex::Ready(index) => {
                let n: i64 = sqlx::query_scalar("SELECT changes FROM indexed")
                    .fetch_one(&index.conn)
                    .await?;
                Ok(Some(n))
            }
            _ => Ok(None),
        }
    }

    pub(crate) async fn close(&self) {
        if let TextIndex::Ready(index) = self {
            index.conn.close().await;
        }
    }
}

/// The index's connection (see [`SearchIndex::conn`]), with its tables made.
async fn connect(path: &Path, data: &Path) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let options: sqlx::any::AnyConnectOptions = format!("sqlite://{}?mode=rwc", path.display())
        .parse()
        .map_err(|e: sqlx::Error| StoreError::Database(e.to_string()))?;
    let options = options.disable_statement_logging();
    let data_uri = format!("file:{}?mode=ro", data.display());
    let conn = AnyPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            let data_uri = data_uri.clone();
            Box::pin(async move {
                sqlx::raw_sql(SETUP).execute(&mut *conn).await?;
                sqlx::query("ATTACH DATABASE $1 AS data")
                    .bind(data_uri)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    let create = format!("{CREATE} {}", crate::indicators::SQLITE_TABLES);
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&conn)
        .await
    {
        conn.close().await;
        return Err(e.into());
    }
    Ok(conn)
}

/// The index's own connection and the process's turn to use it.
pub(crate) struct SearchIndex {
    /// One connection: the index's file, with the database attached read-only as `data`.
    conn: AnyPool,
    /// One catch-up at a time in this process (other processes wait on the file's lock).
    turn: tokio::sync::Mutex<()>,
    /// Wakes the task that indexes in the background (see [`SearchIndex::open`]).
    wake: tokio::sync::mpsc::Sender<()>,
    /// What extracts indicators, which each step stores beside the text it indexes.
    indicators: Arc<crate::indicators::Indicators>,
}

impl SearchIndex {
    /// Opens (creating if needed) the index of the database at `data`, and starts the task
    /// that indexes whenever incidents are committed; it ends when the index is dropped.
    pub(crate) async fn open(
        data: &Path,
        indicators: Arc<crate::indicators::Indicators>,
    ) -> Result<Arc<SearchIndex>, StoreError> {
        let path = path_for(data);
        // Where the file cannot be written (a read-only file system), SQLite would open it
        // read-only and wait out its busy timeout for the WAL it cannot make: say so at once.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::Database(format!("cannot write {}: {e}", path.display())))?;
        let remove = || {
            tracing::warn!(path = %path.display(), "the search index cannot be read; building it again");
            for end in ["", "-wal", "-shm"] {
                let mut name = path.as_os_str().to_owned();
                name.push(end);
                let _ = std::fs::remove_file(PathBuf::from(name));
            }
        };
        // Not a database at all (found before SQLite is asked, whose connection pool would
        // retry until its timeout): it is derived data, made again.
        let mut header = [0u8; 16];
        let read = std::fs::File::open(&path).and_then(|mut f| {
            use std::io::Read;
            f.read(&mut header)
        });
        if read.is_ok_and(|n| n > 0) && &header != b"SQLite format 3\0" {
            remove();
        }
        let conn = match connect(&path, data).await {
            // Damaged otherwise: made again too.
            Err(e) if !is_busy(&e) => {
                remove();
                connect(&path, data).await?
            }
            other => other?,
        };
        let (wake, mut woken) = tokio::sync::mpsc::channel(1);
        let index = Arc::new(SearchIndex {
            conn,
            turn: tokio::sync::Mutex::new(()),
            wake,
            indicators,
        });
        let weak: Weak<SearchIndex> = Arc::downgrade(&index);
        tokio::spawn(async move {
            while woken.recv().await.is_some() {
                let Some(index) = weak.upgrade() else { break };
                // The store was closed: nothing more to index here.
                if index.conn.is_closed() {
                    break;
                }
                if let Err(e) = index.catch_up().await {
                    tracing::warn!(error = %e, "the search index fell behind; the next text search brings it up to date");
                }
            }
        });
        Ok(index)
    }

    /// Indexes what was committed to the database before the call and is not yet indexed.
    pub(crate) async fn catch_up(&self) -> Result<(), StoreError> {
        // Nothing to do is the usual answer, and costs one read: the index has read up to
        // the database's sequences (which only grow, and to which it moves when it has read
        // everything).
        let current: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT incidents = {MADE} AND changes = {LOGGED} AND database = {IDENTITY} FROM indexed"
        )))
        .fetch_one(&self.conn)
        .await?;
        if current == 1 {
            return Ok(());
        }
        let _turn = self.turn.lock().await;
        let mut conn = self.conn.acquire().await?;
        while !step(&mut conn, self.indicators.extractor()).await? {}
        Ok(())
    }

    /// Empties the indicators and the text index and builds both again from every incident,
    /// with the extractor set now.
    pub(crate) async fn rebuild(&self) -> Result<(), StoreError> {
        {
            let _turn = self.turn.lock().await;
            let mut conn = self.conn.acquire().await?;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
            clear(&mut tx).await?;
            sqlx::query("UPDATE indexed SET incidents = 0, changes = 0")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        self.catch_up().await
    }

    /// Drops what the index holds if it was built from another database, or from a newer
    /// state of this one (the database restored from a copy): its ids now name other
    /// incidents. Done at open, before anything is committed that could hide it.
    pub(crate) async fn verify(&self) -> Result<(), StoreError> {
        let _turn = self.turn.lock().await;
        let mut conn = self.conn.acquire().await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        trusted(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The database's incident sequence, its text-change log's, and its identity, as SQL.
const MADE: &str = "COALESCE((SELECT seq FROM data.sqlite_sequence WHERE name = 'incidents'), 0)";
const LOGGED: &str =
    "COALESCE((SELECT seq FROM data.sqlite_sequence WHERE name = 'text_changes'), 0)";
const IDENTITY: &str = "(SELECT id FROM data.database_identity)";

type IndexTx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// Where the index stands in `tx` (incidents read up to, changes read up to), after
/// emptying it if it cannot be trusted (see [`SearchIndex::verify`]); and the database's
/// sequences.
async fn trusted(tx: &mut IndexTx<'_>) -> Result<(i64, i64, i64, i64), StoreError> {
    let (from, changes_from, built_from, made, logged, identity): (
        i64,
        i64,
        String,
        i64,
        i64,
        String,
    ) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT incidents, changes, database, {MADE}, {LOGGED}, {IDENTITY} FROM indexed"
    )))
    .fetch_one(&mut **tx)
    .await?;
    // An index made before indicators were kept as they are now is built again, to find them
    // in every incident.
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM indicators_kept WHERE version = $1")
        .bind(crate::indicators::KEPT_VERSION)
        .fetch_one(&mut **tx)
        .await?;
    if kept == 0 {
        for statement in crate::indicators::SQLITE_UPGRADE {
            sqlx::query(statement).execute(&mut **tx).await?;
        }
        sqlx::query("INSERT INTO indicators_kept VALUES ($1)")
            .bind(crate::indicators::KEPT_VERSION)
            .execute(&mut **tx)
            .await?;
    }
    if from > made || changes_from > logged || built_from != identity || kept == 0 {
        clear(tx).await?;
        sqlx::query("UPDATE indexed SET incidents = 0, changes = 0, database = $1")
            .bind(&identity)
            .execute(&mut **tx)
            .await?;
        return Ok((0, 0, made, logged));
    }
    Ok((from, changes_from, made, logged))
}

/// Empties the text index and the indicators.
async fn clear(tx: &mut IndexTx<'_>) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO incidents_fts (incidents_fts) VALUES ('delete-all')")
        .execute(&mut **tx)
        .await?;
    for statement in crate::indicators::CLEAR {
        sqlx::query(statement).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Indexes the next [`STEP`] incidents and every text change not yet read, in one
/// transaction, their text and their indicators; true when that reached the end of what
/// the database held.
async fn step(
    conn: &mut sqlx::AnyConnection,
    extractor: Arc<watchfloor_indicators::Extractor>,
) -> Result<bool, StoreError> {
    // IMMEDIATE takes the index's write lock first (the database, attached read-only, is
    // only read), so that what is read next is read under it, in one snapshot.
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    let (from, changes_from, made, logged) = trusted(&mut tx).await?;
    // Text changed or gone, of incidents already indexed: out, and in again as they are
    // now (deleted ones are not found). Later incidents are indexed as they are now anyway.
    if logged > changes_from {
        let changed = "SELECT incident_id FROM data.text_changes \
             WHERE seq > $1 AND incident_id <= $2";
        for statement in [
            format!("DELETE FROM incidents_fts WHERE rowid IN ({changed})"),
            format!(
                "INSERT INTO incidents_fts (rowid, name, details, external_id) \
                 SELECT id, name, details, external_id FROM data.incidents WHERE id IN ({changed})"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .bind(changes_from)
                .bind(from)
                .execute(&mut *tx)
                .await?;
        }
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT incident_id FROM data.text_changes WHERE seq > $1 AND incident_id <= $2",
        )
        .bind(changes_from)
        .bind(from)
        .fetch_all(&mut *tx)
        .await?;
        ids.sort_unstable();
        crate::indicators::redo(
            &mut tx,
            crate::Backend::Sqlite,
            "data.",
            &ids,
            extractor.clone(),
        )
        .await?;
    }
    let to: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(id), $1) FROM \
         (SELECT id FROM data.incidents WHERE id > $1 ORDER BY id LIMIT $2)",
    )
    .bind(from)
    .bind(STEP)
    .fetch_one(&mut *tx)
    .await?;
    if to > from {
        sqlx::query(
            "INSERT INTO incidents_fts (rowid, name, details, external_id) \
             SELECT id, name, details, external_id FROM data.incidents WHERE id > $1 AND id <= $2",
        )
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        crate::indicators::add_range(
            &mut tx,
            crate::Backend::Sqlite,
            "data.",
            from,
            to,
            extractor,
        )
        .await?;
    }
    // At the end, the index has read up to the sequence: no id up to it can come later.
    let done = to - from < STEP;
    sqlx::query("UPDATE indexed SET incidents = $1, changes = $2")
        .bind(if done { made } else { to })
        .bind(logged)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done)
}

/// Whether a store error is SQLite's busy timeout (another process holds the write lock).
pub(crate) fn is_busy(e: &StoreError) -> bool {
    e.to_string().contains("database is locked")
}
