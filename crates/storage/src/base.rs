//! What the files of the SQL store share, below them all: write transactions, stored
//! timestamps, open errors, the lease check. They import from here and never from each other
//! in a circle.

use chrono::{DateTime, Utc};
use sqlx::any::Any;

use crate::dialect::Backend;
use crate::{Lease, StoreError};

/// Incidents a fetch commit inserts per statement.
pub(crate) const ROWS_PER_INSERT: usize = 200;

/// A timestamp as the tables other than `incidents` store it (see [`micros`] for an
/// incident's): fixed-width UTC text with microseconds (`2024-05-01T08:00:00.000000Z`), so
/// that text order is time order. Written without a
/// format string, which chrono would parse on every call (a tenth of ingest's time).
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// An incident's time as stored (its nine time columns, since migration 30): microseconds
/// since 1970-01-01 UTC. Eight bytes where the text took 27, in the row and in each index.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// An incident's stored time, read back.
pub(crate) fn from_micros(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("time {us} is out of range")))
}

/// An incident's stored time that may be unset, read back.
pub(crate) fn opt_micros(us: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    us.map(from_micros).transpose()
}

pub(crate) fn open_error(url: &str, message: String) -> StoreError {
    StoreError::Open {
        url: url.to_string(),
        message,
    }
}

/// A write transaction.
pub(crate) type Tx = sqlx::Transaction<'static, Any>;

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

/// Text as both databases store it: a NUL character, which PostgreSQL's text refuses, is
/// replaced by U+FFFD, the same on SQLite, so that one alert or error message carrying one
/// cannot stop a fetch. JSON columns keep NUL exact, escaped as `\u0000`.
pub(crate) fn stored_text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// A row that holds an incident's columns, as either driver gives it: `Any`'s, or (for
/// PostgreSQL's pages) PostgreSQL's own, which decodes a column where it lies rather than
/// copying every value of every row first.
pub(crate) trait IncidentRow {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn text_or_null(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn int_or_null(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn real(&self, column: &str) -> Result<f64, sqlx::Error>;
    fn bytes_or_null(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

macro_rules! incident_row {
    ($row:ty) => {
        impl IncidentRow for $row {
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn text_or_null(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn int_or_null(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn real(&self, column: &str) -> Result<f64, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn bytes_or_null(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
        }
    };
}
incident_row!(sqlx::any::AnyRow);
incident_row!(sqlx::postgres::PgRow);
