//! Faults that left watchfloor up but stuck, each pinned by the regression it names.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Served, fes_fetch_config, sigterm, watchfloor};
use serde_json::Value;
use watchfloor_simulators::{
    CovalenceManagedSecurityOptions, CovalenceManagedSecuritySimulator, FaultSpec,
};

/// Regression (a stop took 20–30 s while a provider failed): `serve` kept retrying the fetch
/// step in flight after SIGTERM. It now stops within two seconds, storing nothing half done,
/// and gives its leases back so another process can carry on at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_within_two_seconds_while_a_provider_is_failing() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    // Every answer slow, and a failure the client retries with backoff.
    sim.faults.set(FaultSpec {
        latency_ms: 700,
        server_errors: 1_000_000,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = fes_fetch_config(dir.path(), &sim, "");
    let cfg = config.to_str().unwrap();
    let mut serve = Served::start(
        dir.path(),
        &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
        None,
        Stdio::null(),
    );
    // Let the fetch get going: requests are in flight and failing.
    let started = Instant::now();
    while sim.faults.request_counts().values().sum::<usize>() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve asks the provider"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let child = &mut serve.child;
    let asked = Instant::now();
    sigterm(child.id());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if asked.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("serve did not stop on SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(2), "stopped in {took:?}");
    // Its leases were given back: no process is left holding any.
    let cluster = watchfloor(
        dir.path(),
        &["--config", cfg, "cluster", "status", "--output", "json"],
    );
    assert_eq!(cluster.code, 0, "{}", cluster.stderr);
    let cluster: Value = serde_json::from_str(&cluster.stdout).unwrap();
    let now = cluster["now_ms"].as_i64().unwrap();
    let leases = cluster["leases"].as_array().cloned().unwrap_or_default();
    assert!(
        leases
            .iter()
            .all(|l| l["expires_ms"].as_i64().unwrap() <= now),
        "a lease is still held: {cluster}"
    );
    // Nothing half done: the provider's alerts arrive whole, once, when it answers again.
    sim.faults.set(FaultSpec::default());
    assert_eq!(watchfloor(dir.path(), &["--config", cfg, "fetch"]).code, 0);
    let listed = watchfloor(
        dir.path(),
        &[
            "--config",
            cfg,
            "incidents",
            "list",
            "--output",
            "json",
            "--limit",
            "10000",
        ],
    );
    let listed: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    let stored: std::collections::BTreeSet<&str> = listed
        .iter()
        .map(|i| i["external_id"].as_str().unwrap())
        .collect();
    let truth: std::collections::BTreeSet<String> = sim
        .aros()
        .iter()
        .filter(|a| a["resolution"] == "Unresolved")
        .map(|a| a["ID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored.len(), listed.len(), "no duplicates");
    assert_eq!(stored, truth.iter().map(String::as_str).collect());
}

/// Regression (321 warning lines in three minutes under 20% provider faults, one per retry):
/// retries are logged at debug, and a request that gives up is one warning with its count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_quiet_and_giving_up_is_one_warning() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = fes_fetch_config(dir.path(), &sim, "");
    let run = |line: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_watchfloor"))
            .args(["--config", config.to_str().unwrap(), "run", line])
            .current_dir(dir.path())
            .env_remove("WATCHFLOOR_LOG")
            .output()
            .unwrap()
    };
    // Two failures, then an answer: the command succeeds and warns of nothing.
    sim.faults.set(FaultSpec {
        server_errors: 2,
        ..Default::default()
    });
    let out = run("!cov-mgsec-list-org");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("retrying"), "{stderr}");
    // Failing for good: one warning that it gave up, with the attempts.
    sim.faults.set(FaultSpec {
        server_errors: 1_000,
        ..Default::default()
    });
    let out = run("!cov-mgsec-list-org");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        stderr.matches("request failed after retries").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("retrying"), "{stderr}");
}

/// Regression (`watchfloor sync --once` was refused as an unexpected argument): it is
/// accepted, and runs one cycle as `sync` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_once_is_accepted() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = fes_fetch_config(dir.path(), &sim, "");
    let cfg = config.to_str().unwrap();
    assert_eq!(watchfloor(dir.path(), &["--config", cfg, "fetch"]).code, 0);
    let out = watchfloor(dir.path(), &["--config", cfg, "sync", "--once"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Regression (`db migrate` exited 1 on a database newer than it, where other commands exit
/// 2): it exits 2 and says to upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_database_is_a_usage_error_for_db_migrate_too() {
    use sqlx::ConnectOptions;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wf.db");
    let url = format!("sqlite://{}", db.display());
    assert_eq!(
        watchfloor(dir.path(), &["--db", &url, "db", "migrate"]).code,
        0
    );
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .connect()
        .await
        .unwrap();
    sqlx::query("INSERT INTO schema_version (version, applied) VALUES (9999, 'later')")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let migrate = watchfloor(dir.path(), &["--db", &url, "db", "migrate"]);
    assert_eq!(migrate.code, 2, "{}", migrate.stderr);
    assert!(
        migrate.stderr.contains("upgrade watchfloor"),
        "{}",
        migrate.stderr
    );
    let list = watchfloor(dir.path(), &["--db", &url, "incidents", "list"]);
    assert_eq!(list.code, 2, "{}", list.stderr);
}
