//! Bulk change benchmark, run with `cargo bench -p watchfloor-service --bench bulk`: closing,
//! assigning and noting the 10,000 incidents a filter matches (the most one change to many
//! takes) in one `Service::change_selected` (or `note_selected`), against the same 10,000
//! changed one `Service::change` (or `note`) each (what a script of single calls, or the bulk
//! change before it was batched, costs); side by side in one run, on fresh SQLite stores
//! holding 12,000 incidents of two organizations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::json;
use watchfloor_core::{Change, CloseReason, Edit, NewIncident, Severity, SlaPolicy};
use watchfloor_service::{Caller, QueueParams, Selection, Service};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{FetchTarget, IncidentFilter, Role, SqlStore};

/// What the filter matches: the most one change to many takes.
const MATCHED: usize = 10_000;
/// Incidents of another organization beside them, which the filter leaves alone.
const OTHERS: usize = 2_000;
const RUNS: usize = 3;

fn incidents() -> Vec<NewIncident> {
    let start = Utc::now() - TimeDelta::days(1);
    (0..MATCHED + OTHERS)
        .map(|i| {
            let org = if i % 6 == 5 { "Acme" } else { "Globex" };
            NewIncident {
                provider: Default::default(),
                external_id: format!("bulk-{i}"),
                name: format!("[{org}] [NETWORK] Port scan {i}"),
                occurred: start + TimeDelta::seconds(i as i64),
                severity: Severity::ALL[i % 6],
                organization: Some(org.into()),
                details: "Port scan from 10.1.2.3 against 10.1.2.0/24.".into(),
                labels: Vec::new(),
                raw: json!({"id": format!("bulk-{i}"), "n": i}),
            }
        })
        .collect()
}

/// A fresh store holding the incidents, with a user `dana` of Globex to assign to.
async fn fresh() -> (Service, Arc<SqlStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let sla = SlaPolicy::default();
    let target = FetchTarget {
        instance: "bench",
        integration: "bench",
        incident_type: "Bench",
        scope: "",
        sla: &sla,
        lease: None,
    };
    for (n, chunk) in incidents().chunks(200).enumerate() {
        store
            .commit_fetch(target.clone(), chunk, &json!({"step": n}))
            .await
            .unwrap();
    }
    let service = Service::new(store.clone(), sla);
    service
        .create_user(
            &Caller::local("bench"),
            "dana",
            Role::Analyst,
            &["Globex".to_string()],
            Some("a long enough password".into()),
        )
        .await
        .unwrap();
    (service, store, dir)
}

fn globex() -> Selection {
    Selection::Matching(Box::new(QueueParams {
        organization: Some("Globex".into()),
        ..Default::default()
    }))
}

/// What is done to each incident.
enum What {
    Change(Change),
    /// The same note.
    Note,
}

const NOTE: &str = "part of campaign #812";

/// The time to do `what` to the 10,000 Globex incidents: one call for all of them, or one
/// call each. Checks that each was changed (or noted) once, and no Acme incident.
async fn time(what: &What, all_at_once: bool) -> Duration {
    let (service, store, _dir) = fresh().await;
    let caller = Caller::local("bench");
    let started = Instant::now();
    let done = match (what, all_at_once) {
        (What::Change(change), true) => {
            let (changed, refused) = service
                .change_selected(&caller, &globex(), change)
                .await
                .unwrap();
            assert!(refused.is_empty(), "{:?}", &refused[..refused.len().min(3)]);
            changed.len()
        }
        (What::Note, true) => {
            let (noted, refused) = service
                .note_selected(&caller, &globex(), NOTE, false)
                .await
                .unwrap();
            assert!(refused.is_empty(), "{:?}", &refused[..refused.len().min(3)]);
            noted.len()
        }
        (what, false) => {
            let matches = match what {
                What::Change(change) => service.preview(&caller, &globex(), change).await,
                What::Note => service.preview_note(&caller, &globex(), NOTE).await,
            }
            .unwrap();
            for incident in &matches {
                match what {
                    What::Change(change) => {
                        service
                            .change(&caller, incident.id, None, change)
                            .await
                            .unwrap();
                    }
                    What::Note => {
                        service
                            .note(&caller, incident.id, NOTE, false)
                            .await
                            .unwrap();
                    }
                }
            }
            matches.len()
        }
    };
    let took = started.elapsed();
    assert_eq!(done, MATCHED);
    let of = |org: &str| {
        let filter = IncidentFilter {
            organization: Some(org.into()),
            limit: Some(MATCHED + OTHERS),
            ..Default::default()
        };
        let store = store.clone();
        async move { store.incidents(&filter).await.unwrap() }
    };
    match what {
        What::Change(_) => {
            let versions = |incidents: Vec<watchfloor_core::Incident>| {
                let mut v: Vec<i64> = incidents.iter().map(|i| i.version).collect();
                v.dedup();
                (v, incidents.len())
            };
            assert_eq!(
                versions(of("Globex").await),
                (vec![2], MATCHED),
                "each changed once"
            );
            assert_eq!(
                versions(of("Acme").await),
                (vec![1], OTHERS),
                "none changed"
            );
        }
        What::Note => {
            for (org, notes) in [("Globex", 1), ("Acme", 0)] {
                for incident in of(org).await {
                    let entries = store.entries(incident.id).await.unwrap();
                    assert_eq!(entries.len(), notes, "{org} #{}", incident.id);
                }
            }
        }
    }
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let close = Change::Close {
        reason: CloseReason::Duplicate,
        notes: Some("one campaign".into()),
    };
    let assign = Change::Update(Edit {
        owner: Some(Some("dana".into())),
        ..Default::default()
    });
    let mut out = format!(
        "## Bulk changes\n\n`cargo bench -p watchfloor-service --bench bulk`: the {MATCHED} incidents \
         a filter matches (`organization:Globex`, beside {OTHERS} of Acme), changed by one \
         change to many against one change each; fresh SQLite stores, the median of {RUNS} runs.\n\n\
         | change | one call | one call each | ratio |\n|---|---|---|---|\n"
    );
    for (name, what) in [
        ("close", What::Change(close)),
        ("assign", What::Change(assign)),
        ("note", What::Note),
    ] {
        let mut bulk = Vec::new();
        let mut each = Vec::new();
        for _ in 0..RUNS {
            bulk.push(time(&what, true).await);
            each.push(time(&what, false).await);
        }
        let (bulk, each) = (median(bulk), median(each));
        let line = format!(
            "| {name} | {:.2} s | {:.2} s | {:.2}x |\n",
            bulk.as_secs_f64(),
            each.as_secs_f64(),
            each.as_secs_f64() / bulk.as_secs_f64()
        );
        eprint!("{line}");
        out.push_str(&line);
    }
    println!("{out}");
}
