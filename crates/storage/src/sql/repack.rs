//! Packing the records of rows stored before records were packed (migration 29 on SQLite,
//! 19 on PostgreSQL): a small batch per write transaction, in the background, so that an
//! upgrade neither waits for it nor holds the write lock for long.

use std::time::Duration;

use sqlx::{AnyPool, Row};

use super::SqlStore;
use crate::StoreError;
use crate::dialect::Backend;
use crate::record;

/// Rows (by id) packed per transaction in the background: a few milliseconds of the lock.
pub(crate) const BATCH: i64 = 500;

/// The pause between background batches, in which other writers take the lock.
const PAUSE: Duration = Duration::from_millis(20);

/// Packs the rows with ids in the next `batch` ids not yet looked at, in one transaction.
/// Returns how many were packed and whether any are left. A row whose record cannot be read
/// (it was stored damaged) stays as it is and is read as before.
pub(crate) async fn step(
    writer: &AnyPool,
    backend: Backend,
    batch: i64,
) -> Result<(u64, bool), StoreError> {
    let mut tx = writer.begin_with(backend.begin_write()).await?;
    // Processes sharing a PostgreSQL database take turns on the next batch.
    let Some((upto, done)) = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(format!(
        "SELECT upto, done FROM record_repack{}",
        backend.for_update()
    )))
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok((0, false));
    };
    if done >= upto {
        return Ok((0, false));
    }
    let end = done.saturating_add(batch.max(1)).min(upto);
    let rows = sqlx::query(
        "SELECT id, integration, record, raw_json, labels, remote_state FROM incidents \
         WHERE id > $1 AND id <= $2 AND record IS NULL",
    )
    .bind(done)
    .bind(end)
    .fetch_all(&mut *tx)
    .await?;
    let mut packed = 0;
    for row in &rows {
        let Ok(record) = record::from_row(row) else {
            continue;
        };
        let integration: String = row.try_get("integration")?;
        sqlx::query(
            "UPDATE incidents SET record = $1, raw_json = '', labels = '', remote_state = NULL \
             WHERE id = $2",
        )
        .bind(record::pack(&integration, &record.borrowed())?)
        .bind(row.try_get::<i64, _>("id")?)
        .execute(&mut *tx)
        .await?;
        packed += 1;
    }
    sqlx::query("UPDATE record_repack SET done = $1")
        .bind(end)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((packed, end < upto))
}

/// Packs every row left, a batch at a time with a pause between, until none is left or the
/// store is closed. Started by each open.
pub(crate) fn start(writer: AnyPool, backend: Backend) {
    tokio::spawn(async move {
        // Every open starts this, commands that only list incidents too: once everything is
        // packed, one read says so, without taking the write lock.
        let left: Result<Option<(i64, i64)>, _> =
            sqlx::query_as("SELECT upto, done FROM record_repack")
                .fetch_optional(&writer)
                .await;
        if !matches!(left, Ok(Some((upto, done))) if done < upto) {
            return;
        }
        let mut total = 0;
        loop {
            match step(&writer, backend, BATCH).await {
                Ok((n, more)) => {
                    total += n;
                    if !more {
                        if total > 0 {
                            tracing::info!("packed the records of {total} incidents stored before");
                        }
                        return;
                    }
                }
                // Closed, or busy beyond the timeout: the next open goes on from here.
                Err(e) => {
                    if !writer.is_closed() {
                        tracing::warn!(
                            "packing the records of older incidents stopped: {e}; the next start goes on"
                        );
                    }
                    return;
                }
            }
            tokio::time::sleep(PAUSE).await;
        }
    });
}

impl SqlStore {
    /// Packs the records of up to `batch` more rows stored before records were packed, in one
    /// transaction (the background does this on its own after an upgrade). Returns how many
    /// were packed and whether any are left.
    pub async fn repack_step(&self, batch: i64) -> Result<(u64, bool), StoreError> {
        step(&self.writer, self.backend, batch).await
    }
}
