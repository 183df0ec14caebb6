//! watchfloor on PostgreSQL: moving a SQLite installation there with `db copy`, and serving
//! from it. PostgreSQL runs in a private cluster that the tests start and stop themselves.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Served, fes_fetch_config, watchfloor};
use serde_json::Value;
use watchfloor_simulators::{CovalenceManagedSecurityOptions, CovalenceManagedSecuritySimulator};

/// Every stored incident of the database at `db`, as `incidents list` prints them.
fn stored(dir: &Path, cfg: &str, db: &str) -> Vec<Value> {
    let list = watchfloor(
        dir,
        &[
            "--config",
            cfg,
            "--db",
            db,
            "incidents",
            "list",
            "--limit",
            "100000",
            "--output",
            "json",
        ],
    );
    assert_eq!(list.code, 0, "{}", list.stderr);
    serde_json::from_str(&list.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn db_copy_moves_an_installation_and_serve_carries_on_without_refetching() {
    let Some(pg) = watchfloor_storage::test_cluster::fresh_database().await else {
        return;
    };
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = fes_fetch_config(dir.path(), &sim, "fetch_interval = \"1s\"\n");
    let cfg = config.to_str().unwrap();
    let fetched = watchfloor(dir.path(), &["--config", cfg, "fetch"]);
    assert_eq!(fetched.code, 0, "{}", fetched.stderr);
    let sqlite = "sqlite://wf.db";
    let before = stored(dir.path(), cfg, sqlite);
    assert!(before.len() > 3);
    let (before_closed, before_deleted) = (before[0]["id"].clone(), before[1]["id"].clone());
    let closed = before_closed.to_string();
    let deleted = before_deleted.to_string();
    for args in [
        vec![
            "incidents",
            "close",
            closed.as_str(),
            "--reason",
            "Resolved",
        ],
        vec!["incidents", "delete", deleted.as_str()],
    ] {
        let mut all = vec!["--config", cfg];
        all.extend(args);
        let out = watchfloor(dir.path(), &all);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let before = stored(dir.path(), cfg, sqlite);

    let copy = watchfloor(
        dir.path(),
        &["--config", cfg, "db", "copy", "--from", sqlite, "--to", &pg],
    );
    assert_eq!(copy.code, 0, "{}", copy.stderr);
    assert!(
        copy.stdout.contains(&format!("{} incidents", before.len())),
        "{}",
        copy.stdout
    );
    assert_eq!(
        stored(dir.path(), cfg, &pg),
        before,
        "the copy reads as the original"
    );
    let again = watchfloor(
        dir.path(),
        &["--config", cfg, "db", "copy", "--from", sqlite, "--to", &pg],
    );
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("pass --replace"), "{}", again.stderr);

    // One alert arrives after the move; serve on PostgreSQL fetches it and nothing else.
    sim.add_aro(0, "arrived after the move");
    let serve = Served::start(
        dir.path(),
        &[
            "--config",
            cfg,
            "--db",
            &pg,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
        None,
        Stdio::null(),
    );
    let started = Instant::now();
    let after = loop {
        let now = stored(dir.path(), cfg, &pg);
        if now.len() > before.len() || started.elapsed() > Duration::from_secs(30) {
            break now;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // A few more cycles, to see that nothing else comes.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(serve.stop(), Some(0));
    let after_more = stored(dir.path(), cfg, &pg);
    assert_eq!(after_more.len(), after.len());
    assert_eq!(
        after.len(),
        before.len() + 1,
        "only the new alert is fetched"
    );
    let new: Vec<&Value> = after
        .iter()
        .filter(|i| !before.iter().any(|b| b["id"] == i["id"]))
        .collect();
    assert_eq!(new.len(), 1);
    assert!(
        new[0]["name"]
            .as_str()
            .unwrap()
            .contains("arrived after the move"),
        "{}",
        new[0]
    );
    assert!(after.iter().all(|i| i["id"] != before_deleted));
    let was_closed = after.iter().find(|i| i["id"] == before_closed).unwrap();
    assert_eq!(was_closed["status"], "closed");
}
