//! Rules at work in `watchfloor serve` against the FES simulator: each fetched ARO of an
//! organization is assigned, enriched by a provider command and noted, each exactly once and
//! authored `rule:NAME`, and a restart repeats nothing.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Served, fes_fetch_config, watchfloor};
use serde_json::Value;
use watchfloor_simulators::{CovalenceManagedSecurityOptions, CovalenceManagedSecuritySimulator};

const RULES: &str = r#"
[[rules]]
name = "acme-triage"
on = ["created"]
when = "organization:Acme"
actions = [
  { action = "assign", to = "alice" },
  { action = "run", line = "!cov-mgsec-list-org" },
  { action = "note", text = "Triaged ${incident.name} for ${incident.organization} by ${rule.name}" },
]
"#;

/// The war room of each incident of `query`: (id, owner, entries).
fn incidents(dir: &std::path::Path, cfg: &str, query: &str) -> Vec<(i64, Value, Vec<Value>)> {
    let listed = watchfloor(
        dir,
        &[
            "--config",
            cfg,
            "incidents",
            "list",
            "--query",
            query,
            "--limit",
            "500",
            "--output",
            "json",
        ],
    );
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap_or(Value::Null);
    listed
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let id = i["id"].as_i64().unwrap();
            let entries = watchfloor(
                dir,
                &[
                    "--config",
                    cfg,
                    "incidents",
                    "entries",
                    &id.to_string(),
                    "--output",
                    "json",
                ],
            );
            let entries: Vec<Value> = serde_json::from_str(&entries.stdout).unwrap_or_default();
            (id, i["owner"].clone(), entries)
        })
        .collect()
}

/// Entries of `kind` that the rule wrote.
fn by_rule<'a>(entries: &'a [Value], kind: &str) -> Vec<&'a Value> {
    entries
        .iter()
        .filter(|e| e["author"] == "rule:acme-triage" && e["kind"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetched_aro_is_assigned_enriched_and_noted_once() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = fes_fetch_config(dir.path(), &sim, "fetch_interval = \"1s\"\n");
    let cfg = config.to_str().unwrap();
    let wf = |args: &[&str]| {
        let mut all = vec!["--config", cfg];
        all.extend_from_slice(args);
        watchfloor(dir.path(), &all)
    };
    assert_eq!(
        wf(&[
            "users", "create", "alice", "--role", "analyst", "--org", "Acme"
        ])
        .code,
        0
    );
    std::fs::write(dir.path().join("rules.toml"), RULES).unwrap();
    let imported = wf(&["rules", "import", "rules.toml"]);
    assert_eq!(imported.code, 0, "{}", imported.stderr);

    let serve = Served::start(
        dir.path(),
        &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
        None,
        Stdio::null(),
    );
    let expected_acme = sim
        .aros()
        .iter()
        .filter(|a| a["organization"]["name"] == "Acme" && a["resolution"] == "Unresolved")
        .count();
    assert!(expected_acme > 0);
    let started = Instant::now();
    let acme = loop {
        let acme = incidents(dir.path(), cfg, "organization:Acme");
        let done = acme.len() == expected_acme
            && acme
                .iter()
                .all(|(_, _, entries)| !by_rule(entries, "note").is_empty());
        if done {
            break acme;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the rules did not finish: {acme:#?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let organizations_listed = || {
        sim.faults
            .request_counts()
            .iter()
            .filter(|(p, _)| p.ends_with("/organizations"))
            .map(|(_, n)| *n)
            .sum::<usize>()
    };
    for (id, owner, entries) in &acme {
        assert_eq!(owner, "alice", "incident {id}");
        assert_eq!(by_rule(entries, "change").len(), 1, "{id}: {entries:#?}");
        assert_eq!(by_rule(entries, "command").len(), 1, "{id}: {entries:#?}");
        let notes = by_rule(entries, "note");
        assert_eq!(notes.len(), 1, "{id}: {entries:#?}");
        let text = notes[0]["body"]["text"].as_str().unwrap();
        assert!(
            text.starts_with("Triaged [Acme]") && text.ends_with("for Acme by acme-triage"),
            "{text}"
        );
    }
    assert_eq!(
        organizations_listed(),
        acme.len(),
        "one provider call per incident"
    );
    // Other organizations' incidents: untouched.
    for (id, owner, entries) in incidents(dir.path(), cfg, "-organization:Acme") {
        assert!(owner.is_null(), "{id}");
        assert!(
            entries.iter().all(|e| e["author"] != "rule:acme-triage"),
            "{id}"
        );
    }
    assert_eq!(serve.stop(), Some(0));

    // A restart repeats nothing.
    let again = Served::start(
        dir.path(),
        &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
        None,
        Stdio::null(),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(again.stop(), Some(0));
    for (id, _, entries) in incidents(dir.path(), cfg, "organization:Acme") {
        assert_eq!(by_rule(&entries, "note").len(), 1, "{id}");
        assert_eq!(by_rule(&entries, "command").len(), 1, "{id}");
    }
    assert_eq!(organizations_listed(), acme.len());
}
