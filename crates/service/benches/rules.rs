//! Rules benchmark, run with `cargo bench -p watchfloor-service --bench rules`: ingest through
//! `Store::commit_fetch` without rules and with 20 enabled rules while the rules worker runs
//! beside it, as `serve` runs it; side by side in one run, on fresh SQLite stores; with the time
//! from each incident's commit to its first rule action (median, p99 and max). Two loads: the
//! issue's (the 20 conditions together match about a tenth of the incidents, each acting on
//! the store only) and a heavy one (every incident matched by two rules). Then the latency at a
//! steady 200 incidents a second under the heavy load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::json;
use watchfloor_core::{Label, NewIncident, Severity, SlaPolicy};
use watchfloor_service::{Caller, Service, automation};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{FetchTarget, IncidentFilter, SqlStore};

const INCIDENTS: usize = 20_000;
const BATCH: usize = 200;
const RUNS: usize = 3;
/// The steady load the latency is also measured at.
const PACED_PER_SECOND: usize = 200;
const PACED_SECONDS: usize = 10;

/// How many of the incidents the rules match.
#[derive(Clone, Copy)]
enum Load {
    /// About a tenth: each rule matches one of 200 organizations.
    Tenth,
    /// All, twice: each rule matches one of 10 organizations, two rules each.
    Heavy,
}

impl Load {
    fn organizations(self) -> usize {
        match self {
            Load::Tenth => 200,
            Load::Heavy => 10,
        }
    }
}

fn incidents(prefix: &str, load: Load) -> Vec<NewIncident> {
    let start = Utc::now();
    (0..INCIDENTS)
        .map(|i| NewIncident {
            provider: Default::default(),
            external_id: format!("{prefix}-{i}"),
            name: format!("[Org {}] [NETWORK] Port scan {i}", i % 10),
            occurred: start + TimeDelta::seconds(i as i64),
            severity: Severity::ALL[i % 6],
            organization: Some(format!("Org {}", i % load.organizations())),
            details: "Port scan from 10.1.2.3 against 10.1.2.0/24.".repeat(4),
            labels: vec![Label {
                kind: "Alert type".into(),
                value: "NETWORK".into(),
            }],
            raw: json!({"id": format!("{prefix}-{i}"), "n": i}),
        })
        .collect()
}

/// 20 rules, each matching the incidents of one organization and adding a label or a note.
fn rules(load: Load) -> String {
    let mut text = String::new();
    for n in 0..20 {
        let action = if n % 2 == 0 {
            format!("{{ action = \"label\", name = \"rule\", value = \"r{n}\" }}")
        } else {
            format!("{{ action = \"note\", text = \"rule {n} saw ${{incident.name}}\" }}")
        };
        text.push_str(&format!(
            "[[rules]]\nname = \"r{n}\"\non = [\"created\"]\nwhen = 'organization:\"Org {}\"'\nactions = [{action}]\n\n",
            n % load.organizations()
        ));
    }
    text
}

/// A fresh store (with the 20 rules, if asked) and the rules worker running on it, as `serve`
/// runs it.
async fn start(
    rules_of: Option<Load>,
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
    if let Some(load) = rules_of {
        service
            .import_rules(&Caller::local("bench"), &rules(load), true)
            .await
            .unwrap();
    }
    let worker = tokio::spawn(async move {
        loop {
            match service.run_rules(automation::BATCH).await {
                Ok(n) => tokio::time::sleep(automation::pause_after(n)).await,
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
async fn run(rules_of: Option<Load>) -> (f64, f64, Arc<SqlStore>, tempfile::TempDir) {
    let (store, worker, dir) = start(rules_of).await;
    let all = incidents("b", rules_of.unwrap_or(Load::Tenth));
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
    if rules_of.is_some() {
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
    let (store, worker, dir) = start(Some(Load::Heavy)).await;
    let all = incidents("p", Load::Heavy);
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

/// Commit-to-action times of every incident a rule acted on: from `created` to the first
/// rule entry.
async fn latencies(store: &SqlStore) -> Vec<Duration> {
    let sample = store
        .incidents(&IncidentFilter {
            limit: Some(INCIDENTS),
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

/// Median ingest without and with rules, the rules' rate, and every latency, over [`RUNS`] runs.
async fn measure(load: Load) -> (f64, f64, f64, Vec<Duration>) {
    let (mut plain, mut ruled, mut handled) = (Vec::new(), Vec::new(), Vec::new());
    let mut all_latencies = Vec::new();
    for _ in 0..RUNS {
        let (rate, ..) = run(None).await;
        plain.push(rate);
        let (rate, rules_rate, store, _dir) = run(Some(load)).await;
        ruled.push(rate);
        handled.push(rules_rate);
        all_latencies.extend(latencies(&store).await);
    }
    all_latencies.sort();
    (median(plain), median(ruled), median(handled), all_latencies)
}

fn quantiles(v: &[Duration]) -> String {
    let pick = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    format!(
        "median {:?}, p99 {:?}, max {:?}",
        pick(0.5),
        pick(0.99),
        pick(1.0)
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for (load, what) in [
        (
            Load::Tenth,
            "20 rules whose conditions together match a tenth of the incidents (the target load)",
        ),
        (
            Load::Heavy,
            "20 rules matching every incident twice (heavier than the target load)",
        ),
    ] {
        let (plain, ruled, handled, latencies) = measure(load).await;
        println!(
            "Ingest of {INCIDENTS} incidents in batches of {BATCH} on SQLite, median of {RUNS} runs, {what}:"
        );
        println!("  without rules:                {plain:>9.0}/s");
        println!("  with the rules and the worker: {ruled:>8.0}/s");
        println!(
            "  ratio (with / without):       {:>9.2}x (target: at least 0.70x)",
            ruled / plain
        );
        println!(
            "  events the rules handled, from the first commit until none was left: {handled:.0}/s"
        );
        println!(
            "  commit to first rule action ({} incidents acted on): {} (target: p99 under 500 ms)",
            latencies.len(),
            quantiles(&latencies)
        );
    }
    let (store, _dir) = paced(PACED_PER_SECOND, PACED_SECONDS).await;
    let steady = latencies(&store).await;
    println!(
        "Commit to first rule action at a steady {PACED_PER_SECOND} incidents/s for {PACED_SECONDS} s, heavy load ({} acted on): {}",
        steady.len(),
        quantiles(&steady)
    );
}
