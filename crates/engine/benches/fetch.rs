//! Fetch benchmarks, run with `cargo bench -p watchfloor-engine`. Each prints its numbers and a
//! ratio measured side by side in the same run:
//!
//! 1. Ingest throughput: incidents stored per second through `Store::commit_fetch` (the
//!    transaction that also writes the cursor), in batches of 200 against one at a time, by 8
//!    scopes committing at once (as the engine fetches them), and the same batches again, when
//!    every incident is a duplicate the store drops.
//!    On SQLite and, where it is installed, on PostgreSQL in a private cluster, side by side.
//! 2. Broker cycle time over 200 broker organizations of the Covalence simulator with 20 ms of
//!    latency on every request: the first cycle, a steady one (sessions and the appliance index
//!    kept), the reference integration's request pattern (a new session, a login and an index
//!    visit for every call, one organization after another), and the network floor (requests x
//!    latency / concurrency).
//! 3. Indicators: ingest with indicators found beside it against without, on SQLite.
//! 4. Shared work: the same first cycle on PostgreSQL by one, two and three engines that share
//!    the organizations under leases, as `serve` processes do (here in one process, each engine
//!    with its own connections and leases).
//! 6. Ingest into a full store (`ingest-at-size`): the same 100,000 new incidents in batches of
//!    200 into a store that already holds `WATCHFLOOR_BENCH_INCIDENTS` (default 1,000,000)
//!    synthetic incidents, against an empty one, alternating runs on fresh stores.
//! 5. Mirroring in: one cycle over 100,000 open FES incidents of 200 organizations, reading
//!    the open AROs in bulk, against the per-incident pattern (one read per open incident, as
//!    XSOAR's `get-remote-data`): provider requests and cycle time, and a cycle after three
//!    AROs changed at the provider.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::json;
use tokio::sync::watch;
use watchfloor_core::{Config, Label, NewIncident, Severity};
use watchfloor_engine::{Engine, SCOPE_CONCURRENCY, Steps};
use watchfloor_integrations::Runner;
use watchfloor_simulators::{
    CovalenceSecurityProvidersOptions, CovalenceSecurityProvidersSetup,
    CovalenceSecurityProvidersSimulator, FaultSpec,
};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{FetchTarget, SqlStore};

/// `n` alerts of 50 organizations: `org(i)` says whose the `i`th is.
fn incidents(n: usize, prefix: &str, org: impl Fn(usize) -> usize) -> Vec<NewIncident> {
    let start = Utc::now();
    (0..n)
        .map(|i| NewIncident {
            provider: Default::default(),
            external_id: format!("{prefix}-{i}"),
            name: format!("[Org {}] [NETWORK] Port scan {i}", org(i)),
            occurred: start + TimeDelta::seconds(i as i64),
            severity: Severity::ALL[i % 6],
            organization: Some(format!("Org {}", org(i))),
            details: "Port scan from 10.1.2.3 against 10.1.2.0/24.".repeat(4),
            labels: vec![Label { kind: "Alert type".into(), value: "NETWORK".into() }],
            raw: json!({"id": format!("{prefix}-{i}"), "analystTitle": "Port scan", "destIp": "10.1.2.3", "n": i}),
        })
        .collect()
}

/// Commits `all` in batches of `batch`, one after another, as one scope's fetch steps; returns
/// how many were new.
async fn commit_scope(store: &SqlStore, scope: &str, all: &[NewIncident], batch: usize) -> usize {
    let sla = watchfloor_core::SlaPolicy::default();
    let target = FetchTarget {
        instance: "bench",
        integration: "bench",
        incident_type: "Bench",
        scope,
        sla: &sla,
        lease: None,
    };
    let mut added = 0;
    for (n, chunk) in all.chunks(batch).enumerate() {
        added += store
            .commit_fetch(target.clone(), chunk, &json!({"step": n}))
            .await
            .expect("commit");
    }
    added
}

/// Waits until text search finds every incident committed (SQLite indexes text beside the
/// writes, on a connection of its own): ingest is timed until then.
async fn searchable(store: &SqlStore) {
    store.index_text().await.expect("text index");
}

/// Commits `all` in batches of `batch`; returns incidents per second and how many were new.
async fn ingest(store: &SqlStore, all: &[NewIncident], batch: usize) -> (f64, usize) {
    let started = Instant::now();
    let added = commit_scope(store, "", all, batch).await;
    searchable(store).await;
    (all.len() as f64 / started.elapsed().as_secs_f64(), added)
}

/// Commits `all` as the engine does when it fetches `SCOPE_CONCURRENCY` scopes at a time: each
/// scope (one organization, whose alerts are the `n`th of every `SCOPE_CONCURRENCY`, so that
/// the scopes' alerts span the same time) commits its own batches of `batch`, one after
/// another, while the others commit theirs. Returns incidents per second and how many were new.
async fn ingest_scopes(store: &SqlStore, all: &[NewIncident], batch: usize) -> (f64, usize) {
    let scopes: Vec<(String, Vec<NewIncident>)> = (0..SCOPE_CONCURRENCY)
        .map(|n| {
            let mine = all.iter().skip(n).step_by(SCOPE_CONCURRENCY).cloned();
            (format!("org-{n}"), mine.collect())
        })
        .collect();
    let started = Instant::now();
    let added = futures_util::future::join_all(
        scopes
            .iter()
            .map(|(scope, mine)| commit_scope(store, scope, mine, batch)),
    )
    .await;
    searchable(store).await;
    (
        all.len() as f64 / started.elapsed().as_secs_f64(),
        added.into_iter().sum(),
    )
}

/// Ingest rates on one store: new in batches (each of one organization, as a fetch step of one
/// scope is; then of scopes committing at once, as the engine fetches them; then of 50
/// organizations mixed), duplicates, and new one per transaction.
async fn ingest_rates(url: &str) -> [f64; 9] {
    let store = SqlStore::open(url).await.expect("store");
    let batched = incidents(100_000, "b", |i| i / 200 % 50);
    let scoped = incidents(100_000, "c", |i| i % SCOPE_CONCURRENCY);
    let mixed = incidents(20_000, "m", |i| i % 50);
    let single = incidents(2_000, "s", |i| i % 50);
    let (batched_rate, added) = ingest(&store, &batched, 200).await;
    assert_eq!(added, batched.len());
    let (scoped_rate, added) = ingest_scopes(&store, &scoped, 200).await;
    assert_eq!(added, scoped.len());
    let (mixed_rate, added) = ingest(&store, &mixed, 200).await;
    assert_eq!(added, mixed.len());
    let (dup_rate, dup_added) = ingest(&store, &batched, 200).await;
    assert_eq!(dup_added, 0, "every duplicate dropped");
    let (single_rate, _) = ingest(&store, &single, 1).await;
    // The raw ceiling beside it, on SQLite, for the first rows: the same 100,000 in batches
    // of 200, into a file next to the store's; then again with the store's indexes, and with
    // the nine it had before the triage index.
    let (ceiling, indexed, nine, bare) = match url.strip_prefix("sqlite://") {
        Some(path) => {
            let path = std::path::Path::new(path);
            let ten = store_indexes();
            (
                raw_ceiling(&path.with_extension("ceiling.db"), &batched, 200, None).await,
                raw_ceiling(
                    &path.with_extension("indexed.db"),
                    &batched,
                    200,
                    Some(&ten),
                )
                .await,
                raw_ceiling(
                    &path.with_extension("nine.db"),
                    &batched,
                    200,
                    Some(nine_indexes()),
                )
                .await,
                ingest_without_queue_indexes(&path.with_extension("bare.db"), &batched).await,
            )
        }
        None => (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
    };
    [
        batched_rate,
        scoped_rate,
        mixed_rate,
        dup_rate,
        single_rate,
        ceiling,
        indexed,
        nine,
        bare,
    ]
}

/// Ingest as above (one organization's batches of 200, timed until text search finds them),
/// into a store whose ten queue indexes were dropped: what trading every queue index would
/// give ingest, with all else the store does (text index, counts, cursor, packing) kept.
async fn ingest_without_queue_indexes(path: &std::path::Path, all: &[NewIncident]) -> f64 {
    use sqlx::Connection;
    let url = format!("sqlite://{}", path.display());
    SqlStore::open(&url).await.expect("store").close().await;
    let drops: String = store_indexes()
        .split("CREATE INDEX ")
        .skip(1)
        .map(|statement| {
            let name = statement
                .split_whitespace()
                .next()
                .expect("an index's name");
            format!("DROP INDEX {name};")
        })
        .collect();
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drops))
        .execute(&mut conn)
        .await
        .expect("the queue indexes dropped");
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'incidents' \
         AND sql IS NOT NULL",
    )
    .fetch_one(&mut conn)
    .await
    .expect("indexes left");
    assert_eq!(left, 0, "every queue index dropped");
    conn.close().await.expect("close");
    let store = SqlStore::open(&url).await.expect("store");
    let (rate, added) = ingest(&store, all, 200).await;
    assert_eq!(added, all.len());
    store.close().await;
    rate
}

/// SQLite's raw ceiling for the rows of `all`: the same rows through the same driver, in
/// batches of `batch` per transaction (one multi-row INSERT each), into a table with only the
/// (instance, external id) key: no other index, no search, no counts, no cursor. The same
/// connection settings as the store's (WAL, `synchronous = NORMAL`, in-memory statement
/// journals). Incidents per second. With `indexes` (statements that make them), the table has
/// those of the store too (and the two columns they name that these rows leave empty): what
/// the indexes cost, told apart from what the store does besides.
async fn raw_ceiling(
    path: &std::path::Path,
    all: &[NewIncident],
    batch: usize,
    indexes: Option<&str>,
) -> f64 {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{Connection, QueryBuilder};
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("wal_autocheckpoint", "10000")
        .pragma("temp_store", "memory");
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("ceiling database");
    sqlx::query(
        "CREATE TABLE incidents (id INTEGER PRIMARY KEY, instance TEXT NOT NULL, integration TEXT NOT NULL, \
         external_id TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, occurred INTEGER NOT NULL, \
         created INTEGER NOT NULL, modified INTEGER NOT NULL, severity REAL NOT NULL, status TEXT NOT NULL, \
         organization TEXT, details TEXT NOT NULL, labels TEXT NOT NULL, raw_json TEXT NOT NULL, \
         sla_due INTEGER NOT NULL, UNIQUE (instance, external_id))",
    )
    .execute(&mut conn)
    .await
    .expect("ceiling table");
    if let Some(indexes) = indexes {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE incidents ADD COLUMN owner TEXT; \
             ALTER TABLE incidents ADD COLUMN closed INTEGER; {indexes}"
        )))
        .execute(&mut conn)
        .await
        .expect("the store's indexes");
    }
    // Times as the store keeps them: integer microseconds.
    let ts = |t: chrono::DateTime<Utc>| t.timestamp_micros();
    let started = Instant::now();
    for chunk in all.chunks(batch) {
        let now = ts(Utc::now());
        let mut q = QueryBuilder::new(
            "INSERT INTO incidents (instance, integration, external_id, name, type, occurred, created, \
             modified, severity, status, organization, details, labels, raw_json, sla_due) ",
        );
        q.push_values(chunk, |mut row, i| {
            row.push_bind("bench")
                .push_bind("bench")
                .push_bind(&i.external_id)
                .push_bind(&i.name)
                .push_bind("Bench")
                .push_bind(ts(i.occurred))
                .push_bind(now)
                .push_bind(now)
                .push_bind(i.severity.value())
                .push_bind("pending")
                .push_bind(&i.organization)
                .push_bind(&i.details)
                .push_bind(serde_json::to_string(&i.labels).expect("labels"))
                .push_bind(i.raw.to_string())
                .push_bind(now);
        });
        q.push(" ON CONFLICT (instance, external_id) DO NOTHING");
        let mut tx = conn.begin().await.expect("begin");
        q.build().execute(&mut *tx).await.expect("insert");
        tx.commit().await.expect("commit");
    }
    all.len() as f64 / started.elapsed().as_secs_f64()
}

/// Each rate's median over `RUNS` runs on fresh stores (this machine's runs differ by a
/// tenth or more).
async fn median_rates(urls: Vec<String>) -> [f64; 9] {
    let mut runs = Vec::new();
    for url in urls {
        runs.push(ingest_rates(&url).await);
    }
    std::array::from_fn(|n| {
        let mut v: Vec<f64> = runs.iter().map(|r| r[n]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    })
}

const RUNS: usize = 5;

async fn ingest_bench() -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = median_rates(
        (0..RUNS)
            .map(|n| format!("sqlite://{}/bench{n}.db", dir.path().display()))
            .collect(),
    )
    .await;
    // PostgreSQL in a private cluster (fsync off, on loopback), when it is installed.
    let mut pg_urls = Vec::new();
    for _ in 0..RUNS {
        if let Some(url) = watchfloor_storage::test_cluster::fresh_database().await {
            pg_urls.push(url);
        }
    }
    let postgres = if pg_urls.is_empty() {
        None
    } else {
        Some(median_rates(pg_urls).await)
    };
    let row = |what: &str, s: f64, p: Option<f64>| match p {
        Some(p) => format!(
            "- {what:<45} SQLite {s:>7.0}/s   PostgreSQL {p:>7.0}/s   ({:.2}x)\n",
            s / p
        ),
        None => format!("- {what:<45} SQLite {s:>7.0}/s   PostgreSQL (not installed)\n"),
    };
    let rows = [
        "100,000 new, batches of 200 of one org each:",
        "100,000 new, 8 scopes committing at once:",
        "20,000 new, batches of 200 of 50 orgs mixed:",
        "the same 100,000 again, all duplicates:",
        "2,000 new incidents one per transaction:",
    ];
    let mut out = format!(
        "ingest (one transaction per batch with its cursor, timed until text search finds every incident; SQLite in WAL mode, PostgreSQL on loopback; the median of {RUNS} runs)\n",
    );
    for (n, what) in rows.into_iter().enumerate() {
        out += &row(what, sqlite[n], postgres.map(|p| p[n]));
    }
    out += &format!(
        "- batches of 200 vs one at a time on SQLite: {:.1}x\n\
         - SQLite, batches of one org against the 50,000/s target: {:.2}x\n\
         - SQLite's raw ceiling for the same 100,000 rows (the same driver and settings, batches of 200, a table with only the (instance, external id) key: no other index, search or counts): {:.0}/s; ingest of one org's batches is {:.2}x of it (the median of {RUNS} runs each)\n\
         - the same ceiling with the store's ten indexes on its table (still no search, counts, cursor or packing): {:.0}/s, {:.2}x of the raw ceiling; ingest is {:.2}x of it\n\
         - the same with the nine indexes before the triage index (migration 32): {:.0}/s, {:.2}x of the raw ceiling; the tenth index costs the indexed ceiling {:.2}x\n\
         - ingest into a store with its ten queue indexes dropped (text index, counts, cursor and packing kept): {:.0}/s, {:.2}x of the raw ceiling: what trading every queue index would give\n",
        sqlite[0] / sqlite[4],
        sqlite[0] / 50_000.0,
        sqlite[5],
        sqlite[0] / sqlite[5],
        sqlite[6],
        sqlite[6] / sqlite[5],
        sqlite[0] / sqlite[6],
        sqlite[7],
        sqlite[7] / sqlite[5],
        sqlite[6] / sqlite[7],
        sqlite[8],
        sqlite[8] / sqlite[5],
    );
    out
}

/// `n` alerts of 50 organizations whose text and records hold indicators, as real ones do:
/// a public address (one of 2,000, so that organizations share some), a domain, a URL, a
/// SHA-256, besides private addresses that are excluded.
fn incidents_with_indicators(n: usize, prefix: &str) -> Vec<NewIncident> {
    let start = Utc::now();
    (0..n)
        .map(|i| {
            let ip = format!("203.0.{}.{}", 113 + i % 8, i % 250);
            let domain = format!("c2-{}.example.org", i % 1_000);
            NewIncident {
                provider: Default::default(),
                external_id: format!("{prefix}-{i}"),
                name: format!("[Org {}] [NETWORK] Outbound connection to {domain}", i % 50),
                occurred: start + TimeDelta::seconds(i as i64),
                severity: Severity::ALL[i % 6],
                organization: Some(format!("Org {}", i % 50)),
                details: format!(
                    "Host 10.1.2.{} connected to {ip} (hxxps://{domain}/gate.php?id={i}). \
                     Dropped file sha256 {:064x}. Blocked at the firewall.",
                    i % 250,
                    i as u128 * 0x9e37_79b9_7f4a_7c15
                ),
                labels: vec![Label { kind: "Alert type".into(), value: "NETWORK".into() }],
                raw: json!({"id": format!("{prefix}-{i}"), "sourceIp": format!("10.1.2.{}", i % 250),
                    "destIp": ip, "destDomainName": domain, "n": i}),
            }
        })
        .collect()
}

/// Ingest with indicators found beside it against without (the extractor switched off), on
/// SQLite, alternating runs on fresh stores: the commits' own rate (what fetching sees), and
/// the rate until text search and indicators have caught up with every incident; then, at a
/// steady 200 incidents a second, how long after its commit an incident's indicators are
/// stored by the background task.
async fn indicators_bench() -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let all = incidents_with_indicators(50_000, "x");
    let maps: std::collections::HashMap<_, _> = [(
        "bench".to_string(),
        watchfloor_indicators::FieldMap::parse(
            &[
                ("sourceIp".to_string(), "ip".to_string()),
                ("destIp".to_string(), "ip".to_string()),
                ("destDomainName".to_string(), "host".to_string()),
            ]
            .into(),
        )
        .expect("map"),
    )]
    .into();
    let extractor = |on: bool| {
        if on {
            watchfloor_indicators::Extractor::new(
                watchfloor_indicators::Exclusions::default_reserved(),
                maps.clone(),
            )
        } else {
            watchfloor_indicators::Extractor::off()
        }
    };
    // [off, on] x [commits, caught up]
    let mut rates: [[Vec<f64>; 2]; 2] = Default::default();
    let mut found = 0;
    for run in 0..RUNS {
        for (n, on) in [false, true].into_iter().enumerate() {
            let store = SqlStore::open(&format!(
                "sqlite://{}/ind{run}-{n}.db",
                dir.path().display()
            ))
            .await
            .expect("store");
            store.set_indicator_extractor(extractor(on));
            let started = Instant::now();
            let added = commit_scope(&store, "", &all, 200).await;
            let committed = started.elapsed();
            searchable(&store).await;
            let caught_up = started.elapsed();
            assert_eq!(added, all.len());
            if on {
                found = store
                    .indicators(&watchfloor_storage::IndicatorFilter {
                        limit: 1_000_000,
                        ..Default::default()
                    })
                    .await
                    .expect("indicators")
                    .len();
            }
            rates[n][0].push(all.len() as f64 / committed.as_secs_f64());
            rates[n][1].push(all.len() as f64 / caught_up.as_secs_f64());
            store.close().await;
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [[mut off_commit, mut off_all], [mut on_commit, mut on_all]] = rates;
    let (off_commit, off_all) = (median(&mut off_commit), median(&mut off_all));
    let (on_commit, on_all) = (median(&mut on_commit), median(&mut on_all));
    // Steady load: 20 incidents every 100 ms for 5 s; after each commit, how long until the
    // background task has read it (no read forces it).
    let store = SqlStore::open(&format!("sqlite://{}/steady.db", dir.path().display()))
        .await
        .expect("store");
    store.set_indicator_extractor(extractor(true));
    let steady = incidents_with_indicators(1_000, "steady");
    let mut lags = Vec::new();
    for (n, batch) in steady.chunks(20).enumerate() {
        let tick = Instant::now();
        commit_scope(&store, &format!("s{n}"), batch, 20).await;
        let committed = Instant::now();
        while store.indicators_behind().await.expect("behind") > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lags.push(committed.elapsed());
        tokio::time::sleep(Duration::from_millis(100).saturating_sub(tick.elapsed())).await;
    }
    lags.sort();
    let p99 = lags[lags.len() * 99 / 100];
    format!(
        "indicators (SQLite, 50,000 new in batches of 200, each with a public address, a domain, \
         a URL and a hash; the median of {RUNS} runs each, alternating)\n\
         - commits, without indicators: {off_commit:>7.0}/s   with: {on_commit:>7.0}/s   \
         ({:.2}x; target: at least 0.80x)\n\
         - until text search and indicators have every incident, without: {off_all:>7.0}/s   \
         with: {on_all:>7.0}/s   ({:.2}x)\n\
         - {found} distinct indicators\n\
         - at a steady 200/s, commit to indicators stored: median {:?}, p99 {p99:?}, max {:?} \
         (target: within a second)\n",
        on_commit / off_commit,
        on_all / off_all,
        lags[lags.len() / 2],
        lags[lags.len() - 1],
    )
}

/// The Covalence broker of 200 organizations (201 appliances, 5 alerts each) with `faults`, and
/// a directory holding its CA.
async fn broker_sim(faults: FaultSpec) -> (CovalenceSecurityProvidersSimulator, tempfile::TempDir) {
    let sim = CovalenceSecurityProvidersSimulator::start(CovalenceSecurityProvidersOptions {
        faults,
        setup: CovalenceSecurityProvidersSetup {
            broker_orgs: 200,
            alerts_per_appliance: 5,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("ca.pem"), &sim.ca_pem).expect("ca");
    (sim, dir)
}

/// A config with one fetching instance, `broker`, for the simulator.
fn broker_config(sim: &CovalenceSecurityProvidersSimulator, dir: &tempfile::TempDir) -> Config {
    let config = format!(
        "[[instances]]\nname = \"broker\"\nintegration = \"covalence-security-providers\"\nfetch = true\n\
         first_fetch = \"2024-04-01T00:00:00Z\"\n[instances.params]\nhost = \"{}\"\nbroker = true\n\
         username = \"{}\"\npassword = \"{}\"\nca_file = \"ca.pem\"\n",
        sim.broker_url, sim.username, sim.password
    );
    Config::parse(
        &dir.path().join("watchfloor.toml"),
        &config,
        &watchfloor_integrations::definitions(),
        &|_| None,
    )
    .expect("config")
}

/// Requests the simulator has answered so far.
fn requests(sim: &CovalenceSecurityProvidersSimulator) -> usize {
    sim.faults.request_counts().values().sum()
}

/// The reference integration's request pattern for one fetch of every organization, one after
/// another: for every API call the index page again, then per appliance a new session (a new
/// connection), the appliance picked through `/index/{cov_id}`, a login, and the alert read.
async fn reference_cycle(sim: &CovalenceSecurityProvidersSimulator) -> (Duration, usize) {
    let before = requests(sim);
    let started = Instant::now();
    let ca = reqwest::Certificate::from_pem(sim.ca_pem.as_bytes()).expect("ca");
    let mut by_org: Vec<(String, Vec<String>)> = Vec::new();
    for (cov_id, org) in sim.appliances().into_iter().skip(1) {
        match by_org.iter_mut().find(|(o, _)| *o == org) {
            Some((_, ids)) => ids.push(cov_id),
            None => by_org.push((org, vec![cov_id])),
        }
    }
    let since = Utc::now() - TimeDelta::minutes(10);
    for (_org, appliances) in &by_org {
        let session = || {
            reqwest::Client::builder()
                .tls_certs_only([ca.clone()])
                .build()
                .expect("client")
        };
        let index = session()
            .get(format!("{}/index", sim.broker_url))
            .send()
            .await
            .expect("index");
        assert!(index.status().is_success());
        let _ = index.text().await;
        for cov_id in appliances {
            let client = session();
            let mut cookies: Vec<String> = Vec::new();
            let keep = |cookies: &mut Vec<String>, resp: &reqwest::Response| {
                for c in resp.headers().get_all(reqwest::header::SET_COOKIE) {
                    if let Some(pair) = c.to_str().ok().and_then(|c| c.split(';').next()) {
                        cookies.push(pair.to_string());
                    }
                }
            };
            let routed = client
                .get(format!("{}/index/{cov_id}", sim.broker_url))
                .send()
                .await
                .expect("route");
            keep(&mut cookies, &routed);
            let login = client
                .post(format!(
                    "{}/CovalenceWebUI/services/rest/login",
                    sim.broker_url
                ))
                .header(reqwest::header::COOKIE, cookies.join("; "))
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("username", &sim.username)
                        .append_pair("password", &sim.password)
                        .finish(),
                )
                .send()
                .await
                .expect("login");
            assert!(login.status().is_success());
            keep(&mut cookies, &login);
            let alerts = client
                .get(format!(
                    "{}/CovalenceWebUI/services/rest/v1/alerts",
                    sim.broker_url
                ))
                .header(reqwest::header::COOKIE, cookies.join("; "))
                .query(&[
                    ("maxCount", "1000".to_string()),
                    (
                        "alertTimeMin",
                        since.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    ),
                ])
                .send()
                .await
                .expect("alerts");
            assert!(alerts.status().is_success(), "{}", alerts.status());
            let _ = alerts.bytes().await;
        }
    }
    (started.elapsed(), requests(sim) - before)
}

async fn broker_bench() -> String {
    const LATENCY_MS: u64 = 20;
    let faults = FaultSpec {
        latency_ms: LATENCY_MS,
        ..FaultSpec::default()
    };
    let (sim, dir) = broker_sim(faults).await;
    let config = broker_config(&sim, &dir);
    let runner =
        Arc::new(Runner::new(watchfloor_integrations::builtin(), &config).expect("runner"));
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/broker.db", dir.path().display()))
            .await
            .expect("store"),
    );
    let engine = Engine::new(runner, store);
    let stop = watch::channel(false).1;
    let cycle = async || {
        let before = requests(&sim);
        let started = Instant::now();
        let report = engine
            .cycle("broker", Steps::UntilCaughtUp, &|_| {}, &stop)
            .await
            .expect("cycle");
        (
            started.elapsed(),
            requests(&sim) - before,
            report.new_incidents,
        )
    };
    let (first, first_requests, first_new) = cycle().await;
    let (steady, steady_requests, steady_new) = cycle().await;
    assert_eq!((first_new, steady_new), (1005, 0));
    let (reference, reference_requests) = reference_cycle(&sim).await;
    let floor = steady_requests as f64 * LATENCY_MS as f64 / 1000.0 / SCOPE_CONCURRENCY as f64;
    format!(
        "broker cycle (Covalence simulator, 200 organizations, 201 appliances, {LATENCY_MS} ms latency per request; {SCOPE_CONCURRENCY} organizations at a time)\n\
         - first cycle:  {:.2} s, {first_requests} requests ({first_new} incidents; a login per appliance, reading from first_fetch in windows)\n\
         - steady cycle: {:.2} s, {steady_requests} requests (sessions and the appliance index kept; one alert read per appliance)\n\
         - the reference integration's pattern, one organization after another: {:.2} s, {reference_requests} requests\n\
         - network floor of the steady cycle ({steady_requests} requests x {LATENCY_MS} ms / {SCOPE_CONCURRENCY}): {floor:.2} s\n\
         - steady cycle vs the reference pattern: {:.1}x faster (target 20x); vs the floor: {:.2}x (target at most 1.5x)\n",
        first.as_secs_f64(),
        steady.as_secs_f64(),
        reference.as_secs_f64(),
        reference.as_secs_f64() / steady.as_secs_f64(),
        steady.as_secs_f64() / floor,
    )
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; any other argument filters by name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!(
        "watchfloor fetch benchmarks ({} logical CPUs)\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if wants("ingest") {
        // The build that `cargo bench` just ran leaves hundreds of megabytes of dirty pages,
        // whose writing back to disk would slow the ingest runs' own writes (by a sixth on
        // this machine): written out first.
        if let Err(e) = std::process::Command::new("sync").status() {
            println!("(could not run sync, so earlier writes may slow ingest: {e})");
        }
        println!("{}", ingest_bench().await);
    }
    if wants("indicators") {
        println!("{}", indicators_bench().await);
    }
    if wants("broker") {
        println!("{}", broker_bench().await);
    }
    if wants("ingest-at-size") {
        println!("{}", ingest_at_size_bench().await);
    }
    if wants("mirror") {
        println!("{}", mirror_bench().await);
    }
    if wants("cluster") {
        println!("{}", cluster_bench().await);
    }
}

/// The first cycle of the 200-organization broker, shared by `n` engines on one PostgreSQL
/// database: wall time and incidents stored.
async fn shared_cycle(
    sim: &CovalenceSecurityProvidersSimulator,
    dir: &tempfile::TempDir,
    n: usize,
) -> (Duration, usize) {
    use watchfloor_engine::sharing::Sharing;
    let url = watchfloor_storage::test_cluster::fresh_database()
        .await
        .expect("PostgreSQL");
    let config = broker_config(sim, dir);
    let mut engines = Vec::new();
    for _ in 0..n {
        let runner =
            Arc::new(Runner::new(watchfloor_integrations::builtin(), &config).expect("runner"));
        let store = Arc::new(SqlStore::open(&url).await.expect("store"));
        let sharing = Arc::new(Sharing::new(store.clone(), Duration::from_secs(30)));
        engines.push((
            Engine::new(runner, store).with_sharing(sharing.clone()),
            sharing,
        ));
    }
    // Every engine says it is here before any takes work, as processes that run a while have.
    for (_, sharing) in &engines {
        sharing.tick().await.expect("heartbeat");
    }
    for (_, sharing) in &engines {
        sharing.tick().await.expect("heartbeat");
    }
    let stop = watch::channel(false).1;
    let started = Instant::now();
    let reports = futures_util::future::join_all(
        engines
            .iter()
            .map(|(engine, _)| engine.cycle("broker", Steps::UntilCaughtUp, &|_| {}, &stop)),
    )
    .await;
    let elapsed = started.elapsed();
    let reports: Vec<_> = reports.into_iter().map(|r| r.expect("cycle")).collect();
    let stored = reports.iter().map(|r| r.new_incidents).sum();
    (elapsed, stored)
}

async fn cluster_bench() -> String {
    if watchfloor_storage::test_cluster::cluster().is_err() {
        return "shared work: skipped, PostgreSQL is not installed\n".into();
    }
    let (sim, dir) = broker_sim(FaultSpec {
        latency_ms: 20,
        ..FaultSpec::default()
    })
    .await;
    let mut out = String::from(
        "shared work (PostgreSQL; the 200-organization broker's first cycle, 20 ms latency, 8 organizations at a time per engine)\n",
    );
    let mut one = None;
    for n in 1..=3 {
        let (elapsed, stored) = shared_cycle(&sim, &dir, n).await;
        assert_eq!(
            stored, 1005,
            "every alert once, however many share the work"
        );
        let base = *one.get_or_insert(elapsed.as_secs_f64());
        out.push_str(&format!(
            "- {n} engine{}: {:.2} s, {stored} incidents, {:.2}x the speed of one\n",
            if n == 1 { " " } else { "s" },
            elapsed.as_secs_f64(),
            base / elapsed.as_secs_f64()
        ));
    }
    out
}

/// Incoming mirroring over 100,000 open FES incidents: bulk against one read per incident.
async fn mirror_bench() -> String {
    use watchfloor_simulators::{
        CovalenceManagedSecurityOptions, CovalenceManagedSecuritySetup,
        CovalenceManagedSecuritySimulator,
    };
    const ORGS: usize = 200;
    const PER_ORG: usize = 750;
    const LATENCY_MS: u64 = 20;
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions {
        setup: CovalenceManagedSecuritySetup {
            orgs: ORGS,
            aros_per_org: PER_ORG,
            // 150,000 AROs over about 500 days, all of them in the past.
            minutes_apart: 5,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .expect("simulator");
    let text = format!(
        "[[instances]]\nname = \"fes\"\nintegration = \"covalence-managed-security\"\nfetch = true\n\
         first_fetch = \"2024-04-01T00:00:00Z\"\nfetch_limit = 5000\n[instances.params]\nportal_url = \"{}\"\napi_key = \"{}\"\ntimeout = \"30s\"\n",
        sim.portal_url, sim.api_key
    );
    let config = Config::parse(
        std::path::Path::new("bench.toml"),
        &text,
        &watchfloor_integrations::definitions(),
        &|_| None,
    )
    .expect("config");
    let runner =
        Arc::new(Runner::new(watchfloor_integrations::builtin(), &config).expect("runner"));
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/mirror.db", dir.path().display()))
            .await
            .expect("store"),
    );
    let engine = fetch_fes(&runner, &store).await;
    let storage = storage_per_incident(&dir.path().join("mirror.db")).await;
    let before = storage_before_packing(&runner, dir.path()).await;
    let mut open = Vec::new();
    let mut after = None;
    loop {
        let page = store.mirrored("fes", after, 10_000).await.expect("open");
        let Some(last) = page.last() else { break };
        after = Some((last.occurred, last.id));
        open.extend(
            page.into_iter()
                .map(|m| watchfloor_integrations::OpenAlert {
                    external_id: m.external_id,
                    occurred: m.occurred,
                    seen: m.seen.expect("a stored record that reads"),
                }),
        );
    }
    let started = Instant::now();
    let quiet = engine.sync("fes").await.expect("sync");
    let bulk_time = started.elapsed();
    let mut changed_ids = Vec::new();
    for (n, fields) in [
        vec![("resolution", "Resolved"), ("status", "Closed")],
        vec![("analyst_notes", "Host reimaged.")],
        vec![("resolution", "Help Requested")],
    ]
    .into_iter()
    .enumerate()
    {
        let id = &open[n * open.len() / 3].external_id;
        let fields = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
            .collect();
        sim.update_aro(id, fields).expect("aro");
        changed_ids.push(id.clone());
    }
    let started = Instant::now();
    let changed = engine.sync("fes").await.expect("sync");
    let changed_time = started.elapsed();
    assert_eq!(changed.pulled, 3, "each change in one cycle");
    let instance = runner.instance("fes").expect("instance").instance;
    // The pattern compared against, on the same open incidents (the three changed ones included).
    let started = Instant::now();
    let (each, each_requests) = watchfloor_integrations::count_requests(
        watchfloor_integrations::pull_each(instance, &open),
    )
    .await;
    let each_time = started.elapsed();
    let each = each.expect("per incident");
    let seen_each = each.iter().filter(|c| c.is_some()).count();
    format!(
        "mirroring in (FES simulator, {ORGS} organizations, {} open incidents, SQLite)\n\
         | pattern | provider requests | cycle time |\n|---|---|---|\n\
         | bulk: the open AROs of the incidents' time span, 500 a page | {} | {:.2} s |\n\
         | bulk, after 3 AROs changed at the provider ({} seen) | {} | {:.2} s |\n\
         | one read per open incident (XSOAR's `get-remote-data` pattern) | {each_requests} | {:.2} s |\n\
         requests: bulk / per incident = 1/{:.0}; cycle time: per incident / bulk = {:.1}x ({seen_each} changes seen one by one)\n\
         (The simulator answers from memory with no network between: each page of a listing costs it a scan of every ARO, and one ARO by id a lookup. \
         With {LATENCY_MS} ms a request, as to a provider over the Internet, the requests alone take {:.1} s in bulk and {:.0} s one by one, computed: requests x latency, one at a time.)\n\
         storage of the fetched incidents (FES records), SQLite:\n\
         - as stored now (records packed, times as integers): {storage}\n\
         {before}",
        open.len(),
        quiet.requests,
        bulk_time.as_secs_f64(),
        changed.pulled,
        changed.requests,
        changed_time.as_secs_f64(),
        each_time.as_secs_f64(),
        each_requests as f64 / quiet.requests.max(1) as f64,
        each_time.as_secs_f64() / bulk_time.as_secs_f64(),
        quiet.requests as f64 * LATENCY_MS as f64 / 1000.0,
        each_requests as f64 * LATENCY_MS as f64 / 1000.0,
    )
}

/// The same fetch into a store of the layout before (raw records and labels as JSON text,
/// an incident's times as 27-byte text); then that store upgraded as a store of that layout
/// is: its table rebuilt with integer times at open (migration 30, timed: it holds the write
/// lock), and its rows packed by the store's own rewrite, batch by batch, timed.
async fn storage_before_packing(runner: &Arc<Runner>, dir: &std::path::Path) -> String {
    let path = dir.join("unpacked.db");
    let url = format!("sqlite://{}", path.display());
    let store = Arc::new(
        SqlStore::open(&url)
            .await
            .expect("store")
            .unpacked_for_comparison(),
    );
    fetch_fes(runner, &store).await;
    store.close().await;
    with_text_times(&path).await;
    let before = storage_per_incident(&path).await;
    // As an upgrade finds a store of that layout: times to rebuild, every row to pack.
    let started = Instant::now();
    let store = Arc::new(SqlStore::open(&url).await.expect("upgrade"));
    let rebuilt = started.elapsed();
    run_sql(
        &path,
        "UPDATE record_repack SET upto = (SELECT MAX(id) FROM incidents), done = 0",
    )
    .await;
    let started = Instant::now();
    let (mut packed, mut batches, mut longest) = (0, 0, Duration::ZERO);
    loop {
        let one = Instant::now();
        let (n, more) = store.repack_step(500).await.expect("repack");
        longest = longest.max(one.elapsed());
        packed += n;
        batches += 1;
        if !more {
            break;
        }
    }
    let took = started.elapsed();
    let after = storage_per_incident(&path).await;
    // Rows shrunk in place leave their pages part empty until SQLite's VACUUM rewrites the file.
    store.close().await;
    run_sql(&path, "VACUUM").await;
    let vacuumed = storage_per_incident(&path).await;
    format!(
        "- the layout before (raw record and labels as JSON text, times as text): {before}\n\
         - that store upgraded: its table rebuilt with integer times at open in {:.1} s (one transaction), \
         then {packed} rows packed in {batches} transactions of 500 in {:.1} s, the longest {:.0} ms; then {after}\n\
         - and after SQLite's `VACUUM`: {vacuumed}\n",
        rebuilt.as_secs_f64(),
        took.as_secs_f64(),
        longest.as_secs_f64() * 1000.0
    )
}

/// The statements that make the incidents table's first nine indexes on SQLite, as migration
/// 30, which made them last, has them.
fn nine_indexes() -> &'static str {
    let migration = include_str!("../../storage/migrations/0030_integer_times.sql");
    &migration[migration
        .find("CREATE INDEX incidents_instance")
        .expect("the migration's indexes")
        ..migration
            .find("CREATE TRIGGER")
            .expect("the migration's triggers")]
}

/// The statements that make the incidents table's indexes on SQLite: the nine, and migration
/// 32's triage index.
fn store_indexes() -> String {
    let nine = nine_indexes();
    let triage = include_str!("../../storage/migrations/0032_organization_triage.sql");
    let triage = &triage[triage
        .find("CREATE INDEX incidents_organization_triage")
        .expect("the triage index")..];
    let triage = &triage[..=triage.find(';').expect("the triage index's end")];
    format!("{nine}\n{triage}")
}

/// Turns the SQLite store at `path` back into the layout before migration 30: an incident's
/// times as fixed-width text (`2024-05-01T08:00:00.000000Z`), the table rebuilt in id order
/// with the nine indexes it had then, and migrations 30 and 32 (which rebuilt the table, then
/// added an index to it) marked not applied, so that the next open applies them as an upgrade
/// would.
async fn with_text_times(path: &std::path::Path) {
    use sqlx::Connection;
    let indexes = nine_indexes();
    let text = |c: &str| {
        format!(
            "strftime('%Y-%m-%dT%H:%M:%S', {c} / 1000000, 'unixepoch') || printf('.%06dZ', {c} % 1000000)"
        )
    };
    let script = format!(
        "PRAGMA foreign_keys = OFF; BEGIN; \
         CREATE TABLE incidents_text (id INTEGER PRIMARY KEY AUTOINCREMENT, instance TEXT NOT NULL, \
         integration TEXT NOT NULL, external_id TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, \
         occurred TEXT NOT NULL, created TEXT NOT NULL, modified TEXT NOT NULL, severity REAL NOT NULL, \
         status TEXT NOT NULL DEFAULT 'pending', organization TEXT, owner TEXT, \
         details TEXT NOT NULL DEFAULT '', labels TEXT NOT NULL DEFAULT '[]', raw_json TEXT NOT NULL, \
         version INTEGER NOT NULL DEFAULT 1, closed TEXT, close_reason TEXT, close_notes TEXT, \
         first_assigned TEXT, sla_due TEXT, context TEXT NOT NULL DEFAULT '{{}}', remote_state TEXT, \
         provider_updated TEXT, provider_resolved TEXT, first_active TEXT, record BLOB, \
         UNIQUE (instance, external_id)); \
         INSERT INTO incidents_text SELECT id, instance, integration, external_id, name, type, \
         {occurred}, {created}, {modified}, severity, status, organization, owner, details, labels, \
         raw_json, version, {closed}, close_reason, close_notes, {first_assigned}, {sla_due}, context, \
         remote_state, {provider_updated}, {provider_resolved}, {first_active}, record \
         FROM incidents ORDER BY id; \
         DROP TABLE incidents; ALTER TABLE incidents_text RENAME TO incidents; {indexes} \
         DELETE FROM schema_version WHERE version IN (30, 32); COMMIT;",
        occurred = text("occurred"),
        created = text("created"),
        modified = text("modified"),
        closed = text("closed"),
        first_assigned = text("first_assigned"),
        sla_due = text("sla_due"),
        provider_updated = text("provider_updated"),
        provider_resolved = text("provider_resolved"),
        first_active = text("first_active"),
    );
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open");
    sqlx::raw_sql(sqlx::AssertSqlSafe(script))
        .execute(&mut conn)
        .await
        .expect("the layout before");
    conn.close().await.expect("close");
}

/// An engine on `store` that has fetched everything the `fes` instance holds.
async fn fetch_fes(runner: &Arc<Runner>, store: &Arc<SqlStore>) -> Engine {
    let engine = Engine::new(runner.clone(), store.clone());
    let stop = watch::channel(false).1;
    engine
        .cycle("fes", Steps::UntilCaughtUp, &|_| {}, &stop)
        .await
        .expect("fetch");
    engine
}

/// Runs one statement on the SQLite file at `path`, on a connection of its own.
async fn run_sql(path: &std::path::Path, statement: &'static str) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open");
    sqlx::query(statement)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    conn.close().await.expect("close");
}

/// Bytes per incident of the incidents table and its indexes in the SQLite file at `path`
/// (SQLite's own page accounting, `dbstat`), and of the whole file.
async fn storage_per_incident(path: &std::path::Path) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .expect("read the store");
    let incidents: i64 = sqlx::query_scalar("SELECT count(*) FROM incidents")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    let per = |bytes: i64| bytes as f64 / incidents.max(1) as f64;
    let sizes: Result<Vec<(String, i64)>, _> = sqlx::query_as(
        "SELECT s.name, SUM(s.pgsize) FROM dbstat AS s \
         LEFT JOIN sqlite_schema AS m ON m.name = s.name \
         WHERE s.name = 'incidents' OR m.tbl_name = 'incidents' GROUP BY s.name",
    )
    .fetch_all(&mut conn)
    .await;
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut conn)
        .await
        .expect("page size");
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut conn)
        .await
        .expect("pages");
    let whole = format!(
        "the whole file {:.0} bytes per incident",
        per(page_size * pages)
    );
    match sizes {
        Ok(sizes) => {
            let table: i64 = sizes
                .iter()
                .filter(|(n, _)| n == "incidents")
                .map(|(_, b)| b)
                .sum();
            let indexes: i64 = sizes
                .iter()
                .filter(|(n, _)| n != "incidents")
                .map(|(_, b)| b)
                .sum();
            format!(
                "{:.0} bytes per incident ({:.0} table, {:.0} its {} indexes) over {incidents} incidents; {whole}",
                per(table + indexes),
                per(table),
                per(indexes),
                sizes.len().saturating_sub(1)
            )
        }
        Err(e) => format!("{whole} (no page accounting: {e})"),
    }
}

/// Ingest of 100,000 new incidents (batches of 200 of one organization) into a store that
/// holds `WATCHFLOOR_BENCH_INCIDENTS` incidents already, against an empty store: the median of
/// three runs each, alternating, on fresh stores.
async fn ingest_at_size_bench() -> String {
    let n: usize = std::env::var("WATCHFLOOR_BENCH_INCIDENTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let batched = incidents(100_000, "b", |i| i / 200 % 50);
    let mut empty = Vec::new();
    let mut full = Vec::new();
    // The full store is filled once and copied for each run (at ten million a fill takes
    // minutes, a copy seconds): each run writes into a store of its own.
    let template = tempfile::tempdir().expect("temp dir");
    let filled_path = template.path().join("full.db");
    let started = Instant::now();
    {
        let store = SqlStore::open(&format!("sqlite://{}", filled_path.display()))
            .await
            .expect("store");
        store.fill_synthetic(n).await.expect("fill");
        searchable(&store).await;
        store.close().await;
    }
    let fill_time = started.elapsed();
    for run in 0..3 {
        for filled in [false, true] {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join(format!("size{run}.db"));
            if filled {
                for suffix in ["", "-search"] {
                    let from = format!("{}{suffix}", filled_path.display());
                    std::fs::copy(&from, format!("{}{suffix}", path.display()))
                        .expect("copy the filled store");
                }
            }
            // A copy of a large store leaves gigabytes of dirty pages, whose writing back would
            // slow the run's own writes: written out first, before either kind of run.
            if let Err(e) = std::process::Command::new("sync").status() {
                println!("(could not run sync, so the copy's writes may slow ingest: {e})");
            }
            let store = SqlStore::open(&format!("sqlite://{}", path.display()))
                .await
                .expect("store");
            let (rate, added) = ingest(&store, &batched, 200).await;
            assert_eq!(added, batched.len());
            if filled {
                full.push(rate)
            } else {
                empty.push(rate)
            }
            store.close().await;
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (e, f) = (median(&mut empty), median(&mut full));
    format!(
        "ingest into a full store (SQLite; 100,000 new, batches of 200 of one org; the median of 3 runs each, alternating)\n\
         - into an empty store: {e:.0}/s\n\
         - into a store of {n} incidents (filled in {:.0} s): {f:.0}/s\n\
         - full / empty: {:.2}x (target: at least 0.8x)\n",
        fill_time.as_secs_f64(),
        f / e
    )
}
