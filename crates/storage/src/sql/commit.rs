//! Committing fetch steps: each step's incidents and cursor in one transaction, and on
//! SQLite, where writes take turns, the steps waiting for the turn written together.

use chrono::Utc;
use serde_json::Value;
use sqlx::Row;
use watchfloor_core::{NewIncident, Status};

use super::SqlStore;
use crate::base::{ROWS_PER_INSERT, Tx, check_lease, micros, stored_text, ts};
use crate::counts::{Counted, count_new, count_newest};
use crate::dialect::{Backend, Sql};
use crate::{FetchTarget, Lease, StoreError};

/// One fetch step's writes, ready to commit: its insert statements (built, values bound), and
/// the cursor that is stored with them.
pub(crate) struct FetchCommit {
    inserts: Vec<Sql>,
    lease: Option<Lease>,
    instance: String,
    scope: String,
    cursor: String,
    now: String,
}

impl FetchCommit {
    /// The step that stores `incidents` (new ones only: those whose external id is in
    /// `stored` are left out before they are packed) with `cursor`, for `target`.
    pub(crate) fn new(
        store: &SqlStore,
        target: &FetchTarget<'_>,
        incidents: &[NewIncident],
        stored: &std::collections::HashSet<String>,
        cursor: &Value,
    ) -> Result<FetchCommit, StoreError> {
        let incidents: Vec<&NewIncident> = incidents
            .iter()
            .filter(|i| !stored.contains(&stored_text(&i.external_id)))
            .collect();
        let now_t = Utc::now();
        let now = micros(now_t);
        let updated = ts(now_t);
        // Many rows per statement: a statement's fixed cost, paid once per batch. The
        // statements are built before the write lock is taken, so that one scope's batch
        // is prepared while another's commits.
        let mut inserts = Vec::new();
        for chunk in incidents.chunks(ROWS_PER_INSERT) {
            let mut q = store.sql(
                "WITH v (external_id, name, occurred, severity, organization, details, labels, \
                 raw_json, record, sla_due, provider_updated, provider_resolved, \
                 provider_acknowledged) AS (VALUES ",
            );
            for (n, inc) in chunk.iter().enumerate() {
                // Packed here, before the write turn, as the statement is built.
                let (labels, raw, record) = if store.pack {
                    let record = crate::record::pack(
                        target.integration,
                        &crate::record::RecordRef {
                            raw: &inc.raw,
                            labels: &inc.labels,
                            seen: None,
                        },
                    )?;
                    (String::new(), String::new(), Some(record))
                } else {
                    let labels = serde_json::to_string(&inc.labels)
                        .map_err(|e| StoreError::Database(e.to_string()))?;
                    (labels, inc.raw.to_string(), None)
                };
                q.push(if n == 0 { "(" } else { ", (" })
                    .push_bind(stored_text(&inc.external_id))
                    .push(", ")
                    .push_bind(stored_text(&inc.name))
                    .push(", ")
                    .push_bind(micros(inc.occurred))
                    .push(", ")
                    .push_bind(inc.severity.value())
                    .push(", ")
                    .push_bind(inc.organization.as_deref().map(stored_text))
                    .push(", ")
                    .push_bind(stored_text(&inc.details))
                    .push(", ")
                    .push_bind(labels)
                    .push(", ")
                    .push_bind(raw)
                    .push(", ")
                    .push_bind(record)
                    .push(", ")
                    .push_bind(micros(
                        target
                            .sla
                            .due(target.sla.start(now_t, inc.occurred), inc.severity),
                    ))
                    .push(", ")
                    .push_bind(inc.provider.updated.map(micros))
                    .push(", ")
                    .push_bind(inc.provider.resolved.map(micros))
                    .push(", ")
                    .push_bind(inc.provider.acknowledged.map(micros))
                    .push(")");
            }
            // A deleted incident's tombstone keeps its alert out.
            q.push(
                ") INSERT INTO incidents (instance, integration, external_id, name, type, occurred, \
                 created, modified, severity, status, organization, details, labels, raw_json, record, \
                 sla_due, provider_updated, provider_resolved, provider_acknowledged) SELECT ",
            )
            .push_bind(target.instance.to_string())
            .push(", ")
            .push_bind(target.integration.to_string())
            .push(", external_id, name, ")
            .push_bind(target.incident_type.to_string())
            .push(", occurred, ")
            .push_bind(now)
            .push(", ")
            .push_bind(now)
            .push(
                ", severity, 'pending', organization, details, labels, raw_json, record, sla_due, \
                 provider_updated, provider_resolved, provider_acknowledged FROM v \
                 WHERE NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.instance = ",
            )
            .push_bind(target.instance.to_string())
            .push(
                " AND t.external_id = v.external_id) \
                 ON CONFLICT (instance, external_id) DO NOTHING",
            );
            // PostgreSQL counts the rows it inserted from what they return (see `write_step`).
            if store.backend() == Backend::Postgres {
                q.push(" RETURNING id, severity, organization");
            }
            inserts.push(q);
        }
        Ok(FetchCommit {
            inserts,
            lease: target.lease.cloned(),
            instance: target.instance.to_string(),
            scope: target.scope.to_string(),
            cursor: cursor.to_string(),
            now: updated,
        })
    }
}

/// Fetch steps waiting to be written (SQLite, where writes take turns anyway): whoever's turn
/// comes writes every step waiting then, in one transaction. Each step keeps its incidents and
/// its cursor together (a savepoint each, so that one step refused, say fenced off, leaves the
/// others), and the pages that steps share (their scopes' index entries lie side by side when
/// they span the same hours) are written once for all of them.
#[derive(Default)]
pub(crate) struct CommitQueue {
    waiting: std::sync::Mutex<Waiting>,
    turn: tokio::sync::Mutex<()>,
}

type Waiting = Vec<(
    FetchCommit,
    tokio::sync::oneshot::Sender<Result<usize, StoreError>>,
)>;

impl CommitQueue {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes one step in `tx`: the lease check, its incidents and its cursor. Returns how many
/// incidents were new. On PostgreSQL, whose writers insert side by side, the new rows' filter
/// values are returned and added to `counts`; on SQLite, where one transaction writes at a
/// time and ids only grow, the rows a transaction inserted are its newest, and
/// [`count_newest`] counts them in the database after the last step (no row is sent back).
async fn write_step<'a>(
    tx: &mut Tx,
    backend: Backend,
    step: &'a FetchCommit,
    inserts: Vec<Sql>,
    counts: &mut Vec<Counted<'a>>,
    ids: &mut Vec<i64>,
) -> Result<usize, StoreError> {
    if let Some(lease) = &step.lease {
        check_lease(tx, backend, lease).await?;
    }
    let mut added = 0;
    for q in inserts {
        if backend == Backend::Sqlite {
            added += q.build().execute(&mut **tx).await?.rows_affected() as usize;
            continue;
        }
        for row in q.build().fetch_all(&mut **tx).await? {
            ids.push(row.try_get("id")?);
            counts.push(Counted {
                status: Status::Pending.as_str(),
                severity: row.try_get("severity")?,
                organization: row.try_get("organization")?,
                owner: None,
                instance: &step.instance,
            });
            added += 1;
        }
    }
    sqlx::query(
        "INSERT INTO fetch_cursors (instance, scope, cursor, updated) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (instance, scope) DO UPDATE SET cursor = excluded.cursor, updated = excluded.updated",
    )
    .bind(&step.instance)
    .bind(&step.scope)
    .bind(&step.cursor)
    .bind(&step.now)
    .execute(&mut **tx)
    .await?;
    Ok(added)
}

impl SqlStore {
    /// Queues `step` and, when the write turn comes, writes every step waiting then (see
    /// [`CommitQueue`]); returns how many of this step's incidents were new.
    pub(crate) async fn commit_in_turn(&self, step: FetchCommit) -> Result<usize, StoreError> {
        let (done, mut result) = tokio::sync::oneshot::channel();
        self.commits.waiting().push((step, done));
        {
            let _turn = self.commits.turn.lock().await;
            // Written meanwhile by the steps' turn before: nothing to do.
            if let Ok(written) = result.try_recv() {
                return written;
            }
            let steps = std::mem::take(&mut *self.commits.waiting());
            let (steps, done): (Vec<_>, Vec<_>) = steps.into_iter().unzip();
            let results = self.commit_steps(steps).await;
            for (done, result) in done.into_iter().zip(results) {
                let _ = done.send(result);
            }
        }
        result.await.unwrap_or_else(|_| {
            Err(StoreError::Database(
                "the commit was cut short (the process is stopping); the step is fetched again"
                    .into(),
            ))
        })
    }

    /// Writes `steps` in one transaction, each under a savepoint when there are several; the
    /// result of each, in order. A failure of the transaction itself fails them all.
    pub(crate) async fn commit_steps(
        &self,
        mut steps: Vec<FetchCommit>,
    ) -> Vec<Result<usize, StoreError>> {
        let n = steps.len();
        let all = |e: StoreError| -> Vec<Result<usize, StoreError>> {
            let message = e.to_string();
            let mut e = Some(e);
            (0..n)
                .map(|_| {
                    Err(e
                        .take()
                        .unwrap_or_else(|| StoreError::Database(message.clone())))
                })
                .collect()
        };
        let mut tx = match self.write().await {
            Ok(tx) => tx,
            Err(e) => return all(e),
        };
        let alone = steps.len() == 1;
        let inserts: Vec<Vec<Sql>> = steps
            .iter_mut()
            .map(|s| std::mem::take(&mut s.inserts))
            .collect();
        let mut counts = Vec::new();
        let mut ids = Vec::new();
        let mut added = 0;
        let mut results = Vec::with_capacity(steps.len());
        for (step, inserts) in steps.iter().zip(inserts) {
            if !alone && let Err(e) = sqlx::query("SAVEPOINT step").execute(&mut *tx).await {
                return all(e.into());
            }
            let mut mine = Vec::new();
            let mut my_ids = Vec::new();
            match write_step(
                &mut tx,
                self.backend(),
                step,
                inserts,
                &mut mine,
                &mut my_ids,
            )
            .await
            {
                Ok(new) => {
                    if !alone && let Err(e) = sqlx::query("RELEASE step").execute(&mut *tx).await {
                        return all(e.into());
                    }
                    counts.extend(mine);
                    ids.extend(my_ids);
                    added += new;
                    results.push(Ok(new));
                }
                Err(e) if alone => return vec![Err(e)],
                Err(e) => {
                    for undo in ["ROLLBACK TO step", "RELEASE step"] {
                        if let Err(e) = sqlx::query(undo).execute(&mut *tx).await {
                            return all(e.into());
                        }
                    }
                    results.push(Err(e));
                }
            }
        }
        let counted = match self.backend() {
            Backend::Sqlite => count_newest(&mut tx, added).await,
            Backend::Postgres => count_new(&mut tx, self.backend(), &counts).await,
        };
        if let Err(e) = counted {
            return all(e);
        }
        // The rules hear of each new incident in the transaction that stores it.
        let newest = match self.backend() {
            Backend::Sqlite => added,
            Backend::Postgres => 0,
        };
        if let Err(e) = super::rules::queue_created(&mut tx, self.backend(), &ids, newest).await {
            return all(e);
        }
        if let Err(e) = tx.commit().await {
            return all(e.into());
        }
        if added > 0 {
            self.text.wake();
            self.indicators.wake();
        }
        results
    }
}
