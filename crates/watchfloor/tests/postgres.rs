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
    let migrate = |expected: &str| {
        let out = watchfloor(dir.path(), &["--config", cfg, "--db", &pg, "db", "migrate"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.trim_end().ends_with(expected), "{}", out.stdout);
    };
    let version = watchfloor_storage::schema_version(watchfloor_storage::Backend::Postgres);
    let all: Vec<String> = (1..=version).map(|v| v.to_string()).collect();
    migrate(&format!(
        "schema version {version} (applied {})",
        all.join(", ")
    ));
    migrate(&format!("schema version {version}, nothing to apply"));
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

/// One of the `serve` processes of the cluster test, and where its log goes.
struct Slot {
    served: Option<Served>,
    log: std::path::PathBuf,
    incarnation: usize,
}

fn start_slot(dir: &Path, cfg: &str, db: &str, slot: &mut Slot) {
    slot.incarnation += 1;
    slot.log = dir.join(format!(
        "serve-{}.log",
        slot.incarnation * 10 + slot.served.is_none() as usize
    ));
    let log = std::fs::File::create(&slot.log).unwrap();
    slot.served = Some(Served::start(
        dir,
        &[
            "--config",
            cfg,
            "--db",
            db,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
        Some("warn,watchfloor_engine=debug"),
        Stdio::from(log),
    ));
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status();
}

/// The cluster test: three `serve` processes on one PostgreSQL share fetching (24 broker
/// organizations and a FES instance) and mirroring, while the providers answer 30% of requests
/// with 429 or 503 and show new alerts late, and one process at a time is SIGKILLed (and
/// restarted) or SIGSTOPped past its lease (and resumed). Every alert becomes exactly one
/// incident, every close reaches the provider exactly once, and each process did part of the
/// work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_the_work_through_kills_and_pauses() {
    use watchfloor_simulators::{
        CovalenceManagedSecuritySetup, CovalenceSecurityProvidersOptions,
        CovalenceSecurityProvidersSetup, CovalenceSecurityProvidersSimulator, FaultSpec,
    };
    let Some(pg) = watchfloor_storage::test_cluster::fresh_database().await else {
        return;
    };
    let faults = FaultSpec {
        latency_ms: 5,
        random_failure_percent: 30,
        retry_after_secs: 0,
        ..FaultSpec::default()
    };
    let cov = CovalenceSecurityProvidersSimulator::start(CovalenceSecurityProvidersOptions {
        faults: faults.clone(),
        late_arrival: Duration::from_secs(2),
        setup: CovalenceSecurityProvidersSetup {
            broker_orgs: 24,
            alerts_per_appliance: 6,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let fes = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions {
        faults,
        setup: CovalenceManagedSecuritySetup {
            orgs: 3,
            aros_per_org: 8,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &cov.ca_pem).unwrap();
    let config = dir.path().join("watchfloor.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nurl = \"{pg}\"\n[cluster]\nlease = \"2s\"\n\
             [[instances]]\nname = \"cov\"\nintegration = \"covalence-security-providers\"\nfetch = true\n\
             fetch_interval = \"1s\"\nlook_back = \"1m\"\nfirst_fetch = \"2024-04-01T00:00:00Z\"\n\
             [instances.params]\nhost = \"{}\"\nbroker = true\nusername = \"{}\"\npassword = \"{}\"\nca_file = \"ca.pem\"\n\
             [[instances]]\nname = \"fes\"\nintegration = \"covalence-managed-security\"\nfetch = true\n\
             fetch_interval = \"1s\"\nfirst_fetch = \"2024-04-01T00:00:00Z\"\n\
             [instances.params]\nportal_url = \"{}\"\napi_key = \"{}\"\n",
            cov.broker_url, cov.username, cov.password, fes.portal_url, fes.api_key
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let fes_truth: std::collections::BTreeSet<String> = fes
        .aros()
        .iter()
        .filter(|a| a["resolution"] == "Unresolved")
        .map(|a| a["ID"].as_str().unwrap().to_string())
        .collect();
    let broker_appliances: Vec<String> = cov
        .appliances()
        .into_iter()
        .skip(1)
        .map(|(id, _)| id)
        .collect();

    let mut slots: Vec<Slot> = (0..3)
        .map(|_| Slot {
            served: None,
            log: Default::default(),
            incarnation: 0,
        })
        .collect();
    for (n, slot) in slots.iter_mut().enumerate() {
        slot.incarnation = n * 100;
        start_slot(dir.path(), cfg, &pg, slot);
    }

    // The FES incidents first, so that every round has one to close.
    assert!(fes_truth.len() >= 12, "{} unresolved AROs", fes_truth.len());
    let started = Instant::now();
    while stored(dir.path(), cfg, &pg)
        .iter()
        .filter(|i| i["instance"] == "fes")
        .count()
        < fes_truth.len()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the FES incidents were not fetched"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut rng = 0x5851_f42d_4c95_7f2du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut closed: Vec<String> = Vec::new();
    let (mut kills, mut pauses) = (0, 0);
    for round in 0..12 {
        // New alerts, shown late; and an incident closed here, to mirror out.
        for n in 0..3 {
            let appliance = &broker_appliances[(next() as usize) % broker_appliances.len()];
            cov.add_alert(appliance, &format!("round {round} alert {n}"));
        }
        let fes_incidents: Vec<Value> = stored(dir.path(), cfg, &pg)
            .into_iter()
            .filter(|i| i["instance"] == "fes" && i["status"] != "closed")
            .collect();
        if let Some(i) = fes_incidents.first() {
            let id = i["id"].to_string();
            let out = watchfloor(
                dir.path(),
                &[
                    "--config",
                    cfg,
                    "--db",
                    &pg,
                    "incidents",
                    "close",
                    &id,
                    "--reason",
                    "Resolved",
                ],
            );
            assert_eq!(out.code, 0, "{}", out.stderr);
            closed.push(i["external_id"].as_str().unwrap().to_string());
        }
        let victim = &mut slots[(next() as usize) % 3];
        let pid = victim.served.as_ref().unwrap().child.id();
        if next() % 2 == 0 {
            signal(pid, "-KILL");
            let mut gone = victim.served.take().unwrap();
            let _ = gone.child.wait();
            kills += 1;
            std::thread::sleep(Duration::from_millis(300 + next() % 700));
            start_slot(dir.path(), cfg, &pg, victim);
        } else {
            // Past its lease: the others take its work over meanwhile.
            signal(pid, "-STOP");
            pauses += 1;
            std::thread::sleep(Duration::from_millis(2500 + next() % 1000));
            signal(pid, "-CONT");
        }
        std::thread::sleep(Duration::from_millis(400 + next() % 600));
    }
    assert!(kills >= 3 && pauses >= 3, "{kills} kills, {pauses} pauses");

    // The alerts the provider shows, and everything stored and pushed, once the survivors
    // have caught up.
    let cov_truth = || -> std::collections::BTreeSet<String> {
        broker_appliances
            .iter()
            .flat_map(|a| cov.collection(a, "alerts"))
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    let started = Instant::now();
    let (incidents, caught_up) = loop {
        let now = stored(dir.path(), cfg, &pg);
        let cov_ids: std::collections::BTreeSet<String> = now
            .iter()
            .filter(|i| i["instance"] == "cov")
            .map(|i| i["external_id"].as_str().unwrap().to_string())
            .collect();
        let pushed = closed.iter().all(|aro| !fes.transitions(aro).is_empty());
        let done = cov_ids == cov_truth() && pushed;
        if done || started.elapsed() > Duration::from_secs(60) {
            break (now, done);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    // A few more cycles: nothing may arrive twice, and no push may repeat.
    std::thread::sleep(Duration::from_secs(3));
    let status = watchfloor(
        dir.path(),
        &[
            "--config", cfg, "--db", &pg, "cluster", "status", "--output", "json",
        ],
    );
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let table = watchfloor(
        dir.path(),
        &["--config", cfg, "cluster", "status", "--output", "md"],
    );
    assert!(
        table.stdout.contains("### Processes") && table.stdout.contains("### Leases"),
        "{}",
        table.stdout
    );
    for p in status["processes"].as_array().unwrap() {
        assert!(
            table.stdout.contains(p["id"].as_str().unwrap()),
            "{}",
            table.stdout
        );
    }
    // Every process serves the API from the shared database: a session made on one is good
    // on the others.
    common::create_user_with_password(dir.path(), cfg, "dana", "analyst", &[], "correct horse");
    let served: Vec<&Served> = slots.iter().map(|s| s.served.as_ref().unwrap()).collect();
    let login = served[0].call(
        "POST",
        "/api/v1/login",
        "",
        r#"{"name":"dana","password":"correct horse"}"#,
    );
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let token =
        serde_json::from_str::<Value>(login.split("\r\n\r\n").nth(1).unwrap()).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();
    for other in &served[1..] {
        let me = other.call("GET", "/api/v1/me", &format!("Bearer {token}"), "");
        assert!(
            me.starts_with("HTTP/1.1 200") && me.contains("dana"),
            "{me}"
        );
    }
    for slot in &mut slots {
        assert_eq!(slot.served.take().unwrap().stop(), Some(0));
    }
    assert!(caught_up, "the processes did not catch up in 60s");

    let after = stored(dir.path(), cfg, &pg);
    assert_eq!(
        after.len(),
        incidents.len(),
        "nothing arrived after catching up"
    );
    for instance in ["cov", "fes"] {
        let ids: Vec<&str> = after
            .iter()
            .filter(|i| i["instance"] == instance)
            .map(|i| i["external_id"].as_str().unwrap())
            .collect();
        let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{instance}: no alert stored twice");
    }
    let cov_stored: std::collections::BTreeSet<String> = after
        .iter()
        .filter(|i| i["instance"] == "cov")
        .map(|i| i["external_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(cov_stored, cov_truth(), "every broker alert, exactly once");
    assert!(cov_stored.len() >= 25 * 6 + 36);
    let fes_stored: std::collections::BTreeSet<String> = after
        .iter()
        .filter(|i| i["instance"] == "fes")
        .map(|i| i["external_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fes_stored, fes_truth, "every FES ARO, exactly once");
    assert_eq!(closed.len(), 12, "one close a round");
    for aro in &closed {
        assert_eq!(
            fes.transitions(aro),
            ["Resolved"],
            "ARO {aro} closed exactly once"
        );
    }

    // Each live process held part of the work at the end, and did some of it.
    let processes = status["processes"].as_array().unwrap();
    let live: Vec<&str> = processes
        .iter()
        .filter(|p| p["seen_ms"].as_i64().unwrap() > status["now_ms"].as_i64().unwrap() - 2000)
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(live.len(), 3, "{status}");
    let now_ms = status["now_ms"].as_i64().unwrap();
    for id in &live {
        let held = status["leases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| {
                l["holder"] == *id
                    && l["scope"].as_str().unwrap().starts_with("fetch:")
                    && l["expires_ms"].as_i64().unwrap() > now_ms
            })
            .count();
        assert!(
            (6..=11).contains(&held),
            "{id} holds {held} of 25 fetch scopes: {status}"
        );
    }
    let mut all_logs = String::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            all_logs.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    let lost = all_logs.matches("lease lost").count();
    eprintln!(
        "leases taken {}, lost to another process {lost}; fetch steps committed {}; cycles failed {}",
        all_logs.matches("lease taken").count(),
        all_logs.matches("fetch step committed").count(),
        all_logs.matches("fetch cycle failed").count(),
    );
    assert!(lost > 0, "no paused process found its leases taken over");
    for slot in &slots {
        let log = std::fs::read_to_string(&slot.log).unwrap();
        assert!(
            log.contains("fetch step committed"),
            "{} did no work:\n{log}",
            slot.log.display()
        );
    }
}
