//! Rules benchmark, run with `cargo bench -p watchfloor-service --bench rules`: ingest through
//! `Store::commit_fetch` without rules and with 20 enabled rules (each matching about a tenth of
//! the incidents, acting on the store only) while the rules worker runs beside it, as `serve`
//! runs it; side by side in one run, on fresh SQLite stores. Then the time from an incident's
//! commit to its first rule action, after that burst and at a steady 200 incidents a second:
//! median, p99 and max.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::json;
use watchfloor_core::{Label, NewIncident, Severity, SlaPolicy};
use watchfloor_service::{Caller, Service};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{FetchTarget, IncidentFilter, SqlStore};

const INCIDENTS: usize = 20_000;
const BATCH: usize = 200;
const RUNS: usize = 3;
/// The steady load the latency is also measured at.
const PACED_PER_SECOND: usize = 200;
const PACED_SECONDS: usize = 10;

fn incidents(prefix: &str) -> Vec<NewIncident> {
    let start = Utc::now();
    (0..INCIDENTS)
        .map(|i| NewIncident {
            external_id: format!("{prefix}-{i}"),
            name: format!("[Org {}] [NETWORK] Port scan {i}", i % 10),
            occurred: start + TimeDelta::seconds(i as i64),
            severity: Severity::ALL[i % 6],
            organization: Some(format!("Org {}", i / BATCH % 10)),
            details: "Port scan from 10.1.2.3 against 10.1.2.0/24.".repeat(4),
            labels: vec![Label {
                kind: "Alert type".into(),
                value: "NETWORK".into(),
            }],
            raw: json!({"id": format!("{prefix}-{i}"), "n": i}),
        })
        .collect()
}

/// 20 rules over 10 organizations: each matches the incidents of one organization, about a
/// tenth, and adds a label or a note; two rules act on each incident.
fn rules() -> String {
    let mut text = String::new();
    for n in 0..20 {
        let action = if n % 2 == 0 {
            format!("{{ action = \"label\", name = \"rule\", value = \"r{n}\" }}")
        } else {
            format!("{{ action = \"note\", text = \"rule {n} saw ${{incident.name}}\" }}")
        };
        text.push_str(&format!(
            "[[rules]]\nname = \"r{n}\"\non = [\"created\"]\nwhen = 'organization:\"Org {}\"'\nactions = [{action}]\n\n",
            n % 10
        ));
    }
    text
}

/// A fresh store (with the 20 rules, if asked) and the rules worker running on it, as `serve`
/// runs it.
async fn start(
    with_rules: bool,
) -> (
    Arc<SqlStore>,
    tokio::task::JoinHandle<()>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let service = Service::new(store.clone(), SlaPolicy::default());
    if with_rules {
        service
            .import_rules(&Caller::local("bench"), &rules(), true)
            .await
            .unwrap();
    }
    let worker = tokio::spawn(async move {
        loop {
            match service.run_rules(100).await {
                Ok(0) => tokio::time::sleep(Duration::from_millis(20)).await,
                Ok(_) => {}
                Err(e) => panic!("rules: {e}"),
            }
        }
    });
    (store, worker, dir)
}

/// Where the benchmark's incidents are committed.
fn target(sla: &SlaPolicy) -> FetchTarget<'_> {
    FetchTarget {
        instance: "bench",
        integration: "bench",
        incident_type: "Bench",
        scope: "",
        sla,
        lease: None,
    }
}

/// Ingests on a fresh store, with the rules worker running when there are rules; returns
/// incidents per second of ingest, events per second the rules handled (from the first commit
/// until none was left), and the store to measure what followed.
async fn run(with_rules: bool) -> (f64, f64, Arc<SqlStore>, tempfile::TempDir) {
    let (store, worker, dir) = start(with_rules).await;
    let all = incidents("b");
    let sla = SlaPolicy::default();
    let target = target(&sla);
    let started = Instant::now();
    for (n, chunk) in all.chunks(BATCH).enumerate() {
        store
            .commit_fetch(target.clone(), chunk, &json!({"step": n}))
            .await
            .unwrap();
    }
    let rate = INCIDENTS as f64 / started.elapsed().as_secs_f64();
    if with_rules {
        // Until the rules have had every event.
        while !store.pending_events(1).await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let handled = INCIDENTS as f64 / started.elapsed().as_secs_f64();
    worker.abort();
    (rate, handled, store, dir)
}

/// Paced ingest: `per_second` incidents a second for `seconds`, in batches every 100 ms, with
/// the rules and their worker; the store to measure latencies in.
async fn paced(per_second: usize, seconds: usize) -> (Arc<SqlStore>, tempfile::TempDir) {
    let (store, worker, dir) = start(true).await;
    let all = incidents("p");
    let sla = SlaPolicy::default();
    let target = target(&sla);
    let per_tick = (per_second / 10).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for (n, chunk) in all.chunks(per_tick).take(seconds * 10).enumerate() {
        tick.tick().await;
        store
            .commit_fetch(target.clone(), chunk, &json!({"step": n}))
            .await
            .unwrap();
    }
    while !store.pending_events(1).await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.abort();
    (store, dir)
}

/// Commit-to-action times of a sample of incidents: from `created` to the first rule entry.
async fn latencies(store: &SqlStore) -> Vec<Duration> {
    let sample = store
        .incidents(&IncidentFilter {
            limit: Some(2_000),
            ..IncidentFilter::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    for i in sample {
        let first = store
            .entries(i.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.author.starts_with("rule:"))
            .map(|e| e.created)
            .min();
        if let Some(at) = first {
            out.push((at - i.created).to_std().unwrap_or_default());
        }
    }
    out.sort();
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (mut plain, mut ruled, mut handled) = (Vec::new(), Vec::new(), Vec::new());
    let mut all_latencies = Vec::new();
    for _ in 0..RUNS {
        let (rate, ..) = run(false).await;
        plain.push(rate);
        let (rate, rules_rate, store, _dir) = run(true).await;
        ruled.push(rate);
        handled.push(rules_rate);
        all_latencies.extend(latencies(&store).await);
    }
    let (plain, ruled, handled) = (median(plain), median(ruled), median(handled));
    all_latencies.sort();
    let pick = |q: f64| all_latencies[((all_latencies.len() - 1) as f64 * q) as usize];
    println!(
        "Ingest of {INCIDENTS} incidents in batches of {BATCH} on SQLite, median of {RUNS} runs:"
    );
    println!("  without rules:              {plain:>9.0}/s");
    println!("  with 20 rules and the worker: {ruled:>7.0}/s");
    println!(
        "  ratio (with / without):     {:>9.2}x (target: at least 0.70x)",
        ruled / plain
    );
    println!(
        "  events the rules handled, from the first commit until none was left: {handled:.0}/s"
    );
    println!(
        "Commit to first rule action after that burst ({} incidents sampled): median {:?}, p99 {:?}, max {:?} (target: p99 under 500 ms)",
        all_latencies.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
    let (store, _dir) = paced(PACED_PER_SECOND, PACED_SECONDS).await;
    let steady = latencies(&store).await;
    let pick = |q: f64| steady[((steady.len() - 1) as f64 * q) as usize];
    println!(
        "Commit to first rule action at a steady {PACED_PER_SECOND} incidents/s for {PACED_SECONDS} s ({} sampled): median {:?}, p99 {:?}, max {:?}",
        steady.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}
