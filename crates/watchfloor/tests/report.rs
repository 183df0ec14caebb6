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
