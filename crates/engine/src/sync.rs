//! Mirroring: one sync cycle of an instance pushes its outbox (oldest first, stopping at the
//! first failure so that changes reach the provider in order) and reads the provider's state of
//! its open incidents. Changes that come from the provider are stored as such and never pushed
//! back, so nothing echoes.

use watchfloor_integrations::Outgoing;
use watchfloor_storage::PushOutcome;

use crate::{Engine, EngineError};

/// Open incidents compared per batch when reading the provider's state: the integration
/// reads a batch's alerts in bulk where it can (a batch of 5,000 over 1,000 organizations
/// still gives each organization's alerts a listing of their own).
const MIRROR_PAGE: usize = 5_000;

/// Stored records decoded at a time while a batch is gathered: each is kept only as what the
/// integration compares (`mirror_state`), so a batch is not thousands of whole records (5,000
/// whole records a batch, with the listings' whole alerts beside them, took `serve` from 57 to
/// 300 MB after a backfill).
const READ_PAGE: usize = 500;

/// What a sync cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub pushed: usize,
    pub skipped: usize,
    /// Pushes that failed and wait for the next cycle.
    pub pending: usize,
    /// Incidents whose provider state changed (a first read, the baseline, is not counted).
    pub pulled: usize,
    /// Nothing was done: another process holds the instance's mirroring (its id, and how
    /// long its lease has left).
    pub held_by: Option<(String, std::time::Duration)>,
    /// Requests sent to the provider (pushes, and reading the open incidents' state).
    pub requests: u64,
    /// Open incidents passed over because their stored record cannot be read.
    pub unreadable: usize,
}

impl Engine {
    /// One mirroring cycle of `name`: pushes first, then (if they all went through) the
    /// provider's changes. A failed push stays queued, is an entry on its incident
    /// and a line in the instance's health, and is retried next cycle.
    pub async fn sync(&self, name: &str) -> Result<SyncReport, EngineError> {
        let result = match &self.sharing {
            Some(sharing) => {
                let key = crate::sharing::sync_key(name);
                sharing.add_sync_target(name);
                let Some(lease) = sharing.claim(crate::sharing::Work::Sync, &key).await else {
                    return Ok(SyncReport::default());
                };
                let result = self.counted_sync(name, Some(&lease)).await;
                match &result {
                    Err(EngineError::Store {
                        error: watchfloor_storage::StoreError::Fenced(_),
                        ..
                    }) => {
                        sharing.lost(&key);
                        return Ok(SyncReport::default());
                    }
                    _ => sharing.done(&key),
                }
                result
            }
            None => self.sync_alone(name).await,
        };
        let outcome = match &result {
            Ok(report) if report.pending == 0 => "ok",
            _ => "failed",
        };
        watchfloor_core::metrics::SYNC_CYCLES.add(&[("instance", name), ("outcome", outcome)], 1);
        result
    }

    /// One cycle by a process that does not share the work (`watchfloor sync`): not while a
    /// process that does (`serve`) holds the instance's mirroring, so that the two never read
    /// the provider's changes side by side and record them twice. It takes no lease itself: one
    /// left behind by a `watchfloor sync` that was killed would stop the next for its period.
    /// (Were a `serve` to take the lease mid-cycle, a push is still sent once: `start_push`.)
    async fn sync_alone(&self, name: &str) -> Result<SyncReport, EngineError> {
        let held = crate::sharing::held_now(self.store.as_ref())
            .await
            .map_err(|error| EngineError::Store {
                instance: name.to_string(),
                error,
            })?;
        if let Some(holder) = held.get(&crate::sharing::sync_key(name)) {
            return Ok(SyncReport {
                held_by: Some(holder.clone()),
                ..SyncReport::default()
            });
        }
        self.counted_sync(name, None).await
    }

    /// [`Engine::sync_once`], with the provider requests it sent in its report and metrics.
    async fn counted_sync(
        &self,
        name: &str,
        lease: Option<&watchfloor_storage::Lease>,
    ) -> Result<SyncReport, EngineError> {
        let (result, requests) =
            watchfloor_integrations::count_requests(self.sync_once(name, lease)).await;
        watchfloor_core::metrics::SYNC_REQUESTS.add(&[("instance", name)], requests);
        result.map(|report| SyncReport { requests, ..report })
    }

    async fn sync_once(
        &self,
        name: &str,
        lease: Option<&watchfloor_storage::Lease>,
    ) -> Result<SyncReport, EngineError> {
        let inst = self.runner.instance(name)?;
        let support = inst.instance.mirroring();
        let store_err = |error| EngineError::Store {
            instance: name.to_string(),
            error,
        };
        // Under a lease, nothing is sent once it may have passed to another process.
        let key = crate::sharing::sync_key(name);
        let send_by = || {
            lease
                .and(self.sharing.as_ref())
                .map(|sharing| sharing.send_by(&key))
        };
        let mut report = SyncReport::default();
        let pending = self.store.pending_pushes(name).await.map_err(store_err)?;
        let mut failed = None;
        for (n, push) in pending.iter().enumerate() {
            if failed.is_some() {
                report.pending += 1;
                continue;
            }
            let outcome = if !(inst.mirror.outgoing() && support.outgoing) {
                PushOutcome::Skipped(format!(
                    "not sent to the provider: instance `{name}` does not mirror changes out"
                ))
            } else if push.sending.is_some()
                && matches!(push.change(), Ok(Outgoing::Note { .. }))
                && !support.notes_checkable
            {
                PushOutcome::Uncertain(
                    "sending this note was cut short and the provider cannot be asked whether it has it; it is not sent again: check the alert's comments".into(),
                )
            } else {
                if !self
                    .store
                    .start_push(push, lease)
                    .await
                    .map_err(store_err)?
                {
                    // Another process started or sent it since it was read: it is mirroring
                    // this instance without a lease (`watchfloor sync` beside another), and
                    // this cycle leaves the rest to it.
                    tracing::info!(
                        instance = name,
                        "another process is mirroring this instance; this cycle stops"
                    );
                    report.pending += pending.len() - n;
                    return Ok(report);
                }
                match push.change() {
                    Err(e) => PushOutcome::Skipped(e),
                    Ok(change) => match inst
                        .instance
                        .push(&push.external_id, &change, send_by())
                        .await
                    {
                        Ok(pushed) => {
                            if let Some(seen) = &pushed.seen {
                                self.store
                                    .remote_update(
                                        push.incident_id,
                                        name,
                                        None,
                                        seen,
                                        &[],
                                        None,
                                        None,
                                        &self.sla,
                                    )
                                    .await
                                    .or_else(|e| match e {
                                        // Deleted since: nothing to remember.
                                        watchfloor_storage::StoreError::NoIncident(_) => Ok(false),
                                        e => Err(e),
                                    })
                                    .map_err(store_err)?;
                            }
                            PushOutcome::Pushed(pushed.text)
                        }
                        Err(e) => PushOutcome::Failed(e.to_string()),
                    },
                }
            };
            self.store
                .finish_push(push, name, &outcome)
                .await
                .map_err(store_err)?;
            match outcome {
                PushOutcome::Pushed(_) => report.pushed += 1,
                PushOutcome::Skipped(_) | PushOutcome::Uncertain(_) => report.skipped += 1,
                PushOutcome::Failed(error) => {
                    report.pending += 1;
                    failed = Some(error);
                }
            }
        }
        if let Some(error) = failed {
            let message = format!("mirroring: a push failed and is retried: {error}");
            self.store
                .record_failure(name, &message)
                .await
                .map_err(store_err)?;
            return Err(EngineError::Sync {
                instance: name.to_string(),
                message,
            });
        }
        // The open incidents a page at a time: memory stays bounded however many there are.
        let mut after = None;
        let kept = |seen| inst.instance.mirror_state(seen);
        while inst.mirror.incoming() && support.incoming {
            let mut ids = Vec::with_capacity(MIRROR_PAGE);
            let mut open = Vec::with_capacity(MIRROR_PAGE);
            let mut last_page = false;
            while !last_page && open.len() < MIRROR_PAGE {
                let page = self
                    .store
                    .mirrored(name, after, READ_PAGE)
                    .await
                    .map_err(store_err)?;
                last_page = page.len() < READ_PAGE;
                after = page.last().map_or(after, |m| Some((m.occurred, m.id)));
                for m in page {
                    match m.seen {
                        Ok(seen) => {
                            ids.push(m.id);
                            open.push(watchfloor_integrations::OpenAlert {
                                external_id: m.external_id,
                                occurred: m.occurred,
                                seen: kept(seen),
                            });
                        }
                        // An incident whose stored record cannot be read is passed over (and
                        // said so): the rest of the instance is still mirrored.
                        Err(error) => {
                            report.unreadable += 1;
                            tracing::warn!(
                                instance = %name,
                                incident = m.id,
                                "mirroring passes over an incident whose stored record cannot be read: {error}"
                            );
                        }
                    }
                }
            }
            let pulled = inst
                .instance
                .pull_many(&open)
                .await
                .map_err(|error| EngineError::Sync {
                    instance: name.to_string(),
                    message: format!("mirroring: reading the provider's state failed: {error}"),
                });
            let pulled = match pulled {
                Ok(p) => p,
                Err(e) => {
                    self.store
                        .record_failure(name, &e.to_string())
                        .await
                        .map_err(store_err)?;
                    return Err(e);
                }
            };
            for ((id, alert), remote) in ids.iter().zip(&open).zip(pulled) {
                let Some(remote) = remote else { continue };
                let close = remote
                    .close
                    .map(|(reason, notes)| watchfloor_core::Change::Close { reason, notes });
                // Against the state it was found from: another process that recorded the same
                // change first has it, and it is not recorded twice.
                if self
                    .store
                    .remote_update(
                        *id,
                        name,
                        Some(watchfloor_storage::Since {
                            found: &alert.seen,
                            kept: &kept,
                        }),
                        &remote.seen,
                        &remote.notes,
                        close.as_ref(),
                        remote.provider.as_ref(),
                        &self.sla,
                    )
                    .await
                    .map_err(store_err)?
                    && !remote.baseline
                {
                    report.pulled += 1;
                }
            }
            if last_page {
                break;
            }
        }
        Ok(report)
    }
}
