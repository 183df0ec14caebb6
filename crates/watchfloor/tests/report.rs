//! `watchfloor report` from the command line: `--as` a user of one organization reports on
//! that organization alone and is refused another's; CSV keeps provider text from breaking a
//! row or running as a formula; a bad period is a usage error that says what is wrong.

mod common;

use common::*;
use serde_json::Value;

fn created(dir: &std::path::Path, cfg: &str, name: &str, org: &str) {
    let out = watchfloor(
        dir,
        &[
            "--config",
            cfg,
            "incidents",
            "create",
            "--name",
            name,
            "--severity",
            "high",
            "--org",
            org,
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn the_cli_reports_on_the_organizations_of_the_user_it_runs_as() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("wf.toml");
    std::fs::write(&cfg, "[storage]\nurl = \"sqlite://wf.db\"\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    create_user_with_password(
        dir.path(),
        cfg,
        "dana",
        "analyst",
        &["--org", "Acme"],
        "a-long-password",
    );
    created(dir.path(), cfg, "Beacon", "Acme");
    created(dir.path(), cfg, "Beacon again", "Acme");
    created(
        dir.path(),
        cfg,
        "Payroll exfil",
        "=cmd|' /C calc'!A0, Globex",
    );

    let report = |extra: &[&str]| {
        let mut args = vec!["--config", cfg, "report", "--since", "1 hour"];
        args.extend_from_slice(extra);
        watchfloor(dir.path(), &args)
    };
    let out = report(&["--as", "dana", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let body: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(body["organization"], "Acme");
    assert_eq!(body["all"]["incidents"], 2);
    assert!(!out.stdout.contains("calc"), "{}", out.stdout);

    // The customer report and its incidents' CSV, of Acme alone.
    let out = report(&["--as", "dana", "--output", "html"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("<!DOCTYPE html>"), "{}", out.stdout);
    assert!(
        out.stdout.contains("Security monitoring report: Acme")
            && out.stdout.contains("Beacon again")
            && !out.stdout.contains("Payroll")
            && !out.stdout.contains("<script"),
        "{}",
        out.stdout
    );
    let out = report(&["--as", "dana", "--output", "incidents-csv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);

    let out = report(&["--as", "dana", "--org", "Globex"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("own organizations"), "{}", out.stderr);
    assert!(out.stdout.is_empty());

    // On the machine itself, every organization; the hostile name is one quoted text cell.
    let out = report(&["--output", "csv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("group,name,incidents,"));
    assert!(lines[1].starts_with("all,,3,"), "{}", lines[1]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("organization,\"'=cmd|' /C calc'!A0, Globex\",1,")),
        "{}",
        out.stdout
    );
    let out = report(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("Provider report: every organization"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Incidents by severity"));

    for (args, says) in [
        (vec!["--config", cfg, "report"], "say which period"),
        (
            vec!["--config", cfg, "report", "--period", "2026-13"],
            "period",
        ),
        (
            vec![
                "--config", cfg, "report", "--period", "2026-11", "--since", "1 day",
            ],
            "cannot be given together",
        ),
    ] {
        let out = watchfloor(dir.path(), &args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}

/// The figures equal those computed from known times: FES AROs made at set times (two of
/// them shown by the portal 20 s late), two resolved there at set times after they were
/// fetched (mirrored in), one closed here as a false positive, one left open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_equal_those_computed_from_the_simulators_known_times() {
    use chrono::{TimeDelta, Utc};
    use std::time::Duration;
    use watchfloor_simulators::{
        CovalenceManagedSecurityOptions, CovalenceManagedSecuritySetup,
        CovalenceManagedSecuritySimulator,
    };
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions {
        setup: CovalenceManagedSecuritySetup {
            aros_per_org: 0,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    // Whole seconds, as the portal gives its times.
    let t0 = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let late = Duration::from_secs(20);
    let at = |secs: i64| t0 + TimeDelta::seconds(secs);
    // (title, made at, shown after): A and D are shown 20 s late; B and C an hour and half an
    // hour ago, shown 20 s after they were made.
    let a = sim.add_aro_timed(0, "A late", at(0), late, None);
    let b = sim.add_aro_timed(0, "B resolved there", at(-3_600), late, None);
    let c = sim.add_aro_timed(0, "C dismissed there", at(-1_800), late, None);
    let _d = sim.add_aro_timed(0, "D late and open", at(0), late, None);
    let dir = tempfile::tempdir().unwrap();
    let cfg = fes_fetch_config(
        dir.path(),
        &sim,
        "first_fetch = \"1 day\"\nfetch_interval = \"30s\"\n",
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("first_fetch = \"2024-04-01T00:00:00Z\"\n", "");
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--config", cfg];
        all.extend_from_slice(args);
        let out = watchfloor(dir.path(), &all);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        out.stdout
    };
    let ids = |run: &dyn Fn(&[&str]) -> String| -> Vec<(String, i64)> {
        let list: serde_json::Value =
            serde_json::from_str(&run(&["incidents", "list", "--output", "json"])).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["external_id"].as_str().unwrap().to_string(),
                    i["id"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    // Fetch until all four are in: A and D only once the portal shows them.
    let started = std::time::Instant::now();
    loop {
        run(&["fetch", "--instance", "fes"]);
        if ids(&run).len() == 4 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:?}",
            ids(&run)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let id_of = |aro: &serde_json::Value| {
        ids(&run)
            .into_iter()
            .find(|(ext, _)| ext == aro["ID"].as_str().unwrap())
            .unwrap()
            .1
    };
    // The provider resolves B 10 minutes after making it and dismisses C after 2; sync reads it.
    sim.resolve_aro_at(b["ID"].as_str().unwrap(), at(-3_600 + 600), "Resolved")
        .unwrap();
    sim.resolve_aro_at(c["ID"].as_str().unwrap(), at(-1_800 + 120), "Dismissed")
        .unwrap();
    run(&["sync", "--instance", "fes"]);
    let a_id = id_of(&a).to_string();
    run(&["incidents", "close", &a_id, "--reason", "False Positive"]);
    // D is taken up (made active), and stays open.
    let d_id = id_of(&_d).to_string();
    run(&["incidents", "update", &d_id, "--status", "active"]);

    let report: serde_json::Value =
        serde_json::from_str(&run(&["report", "--since", "1 hour", "--output", "json"])).unwrap();
    let csv = run(&["report", "--since", "1 hour", "--output", "incidents-csv"]);
    // The expected values, from the simulator's times and the times stored (the CSV).
    let head: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |row: &str, name: &str| -> String {
        let at = head.iter().position(|h| *h == name).unwrap();
        row.split(',').nth(at).unwrap().to_string()
    };
    let time = |s: String| chrono::DateTime::parse_from_rfc3339(&s).unwrap().to_utc();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{csv}");
    let mut lags: Vec<i64> = rows
        .iter()
        .map(|r| (time(col(r, "first_seen")) - time(col(r, "occurred"))).num_seconds())
        .collect();
    lags.sort();
    let a_row = rows
        .iter()
        .find(|r| r.starts_with(&format!("{a_id},")))
        .unwrap();
    let a_lag = (time(col(a_row, "first_seen")) - at(0)).num_seconds();
    assert!(
        a_lag >= 20,
        "A was shown 20 s late, first seen after {a_lag} s"
    );
    let mut closes: Vec<i64> = rows
        .iter()
        .filter(|r| !col(r, "closed").is_empty())
        .map(|r| (time(col(r, "closed")) - time(col(r, "first_seen"))).num_seconds())
        .collect();
    closes.sort();
    let within = rows
        .iter()
        .filter(|r| !col(r, "closed").is_empty())
        .filter(|r| time(col(r, "closed")) <= time(col(r, "sla_due")))
        .count();
    let all = &report["all"];
    assert_eq!(all["incidents"], 4);
    // Nearest rank: of 4, the median is the 2nd and the p90 the 4th; of 3, the 2nd and 3rd.
    assert_eq!(all["delivery_lag"]["median_s"], lags[1], "{lags:?}");
    assert_eq!(all["delivery_lag"]["p90_s"], lags[3], "{lags:?}");
    assert!(lags[3] >= 3_600);
    assert_eq!(all["provider_time_to_resolve"]["n"], 2);
    assert_eq!(all["provider_time_to_resolve"]["median_s"], 120);
    assert_eq!(all["provider_time_to_resolve"]["p90_s"], 600);
    assert_eq!(all["closed"], 3);
    assert_eq!(all["time_to_close"]["median_s"], closes[1], "{closes:?}");
    assert_eq!(all["time_to_close"]["p90_s"], closes[2], "{closes:?}");
    assert_eq!(all["false_positive_or_duplicate"], 1);
    assert_eq!(all["false_positive_share"], 1.0 / 3.0);
    assert_eq!(all["closed_within_sla"], within);
    assert_eq!(all["open_at_end"], 1);
    let d_row = rows
        .iter()
        .find(|r| r.starts_with(&format!("{d_id},")))
        .unwrap();
    let d_ack = (time(col(d_row, "first_active")) - time(col(d_row, "first_seen"))).num_seconds();
    assert_eq!(all["time_to_acknowledge"]["n"], 1);
    assert_eq!(all["time_to_acknowledge"]["median_s"], d_ack);
    // The provider's resolution times as stored.
    let b_row = rows
        .iter()
        .find(|r| r.starts_with(&format!("{},", id_of(&b))))
        .unwrap();
    assert_eq!(time(col(b_row, "provider_resolved")), at(-3_000));
    assert_eq!(col(b_row, "close_reason"), "Resolved");
    // How much of the lag may be our poll interval, per instance.
    assert_eq!(report["by_instance"][0]["poll_interval_s"], 30);
    let table = run(&["report", "--since", "1 hour"]);
    assert!(
        table.contains("instance: fes (fetched every 30s)"),
        "{table}"
    );
}
