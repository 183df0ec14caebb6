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

/// Makes alice (of Acme) and imports [`RULES`] through the CLI.
fn prepare(dir: &std::path::Path, cfg: &str) {
    let wf = |args: &[&str]| {
        let mut all = vec!["--config", cfg];
        all.extend_from_slice(args);
        watchfloor(dir, &all)
    };
    let made = wf(&[
        "users", "create", "alice", "--role", "analyst", "--org", "Acme",
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    std::fs::write(dir.join("rules.toml"), RULES).unwrap();
    let imported = wf(&["rules", "import", "rules.toml"]);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
}

/// Waits until every unresolved Acme ARO of `sim` is an incident the rule has noted; the
/// incidents with their owners and war rooms.
fn settled(
    dir: &std::path::Path,
    cfg: &str,
    sim: &CovalenceManagedSecuritySimulator,
) -> Vec<(i64, Value, Vec<Value>)> {
    let expected = sim
        .aros()
        .iter()
        .filter(|a| a["organization"]["name"] == "Acme" && a["resolution"] == "Unresolved")
        .count();
    assert!(expected > 0);
    let started = Instant::now();
    loop {
        let acme = incidents(dir, cfg, "organization:Acme");
        if acme.len() == expected && acme.iter().all(|(_, _, e)| !by_rule(e, "note").is_empty()) {
            // Read again: the list above was read before the war rooms, so an owner in it
            // may predate the rule's note that was found after it.
            return incidents(dir, cfg, "organization:Acme");
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the rules did not finish: {acme:#?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Requests the simulator had for the rule's command (`cov-mgsec-list-org`).
fn organizations_listed(sim: &CovalenceManagedSecuritySimulator) -> usize {
    sim.faults
        .request_counts()
        .iter()
        .filter(|(p, _)| p.ends_with("/organizations"))
        .map(|(_, n)| *n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetched_aro_is_assigned_enriched_and_noted_once() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = fes_fetch_config(dir.path(), &sim, "fetch_interval = \"1s\"\n");
    let cfg = config.to_str().unwrap();
    prepare(dir.path(), cfg);

    let serve = Served::start(
        dir.path(),
        &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
        None,
        Stdio::null(),
    );
    let acme = settled(dir.path(), cfg, &sim);
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
        organizations_listed(&sim),
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
    assert_eq!(organizations_listed(&sim), acme.len());
}

/// Kill test: `serve` is killed (SIGKILL) at random moments, ten times, while fetch brings
/// AROs in and the rules act on them. In the end every Acme ARO is assigned and noted exactly
/// once; the provider command runs at most once per incident (it is recorded as started before
/// it is sent), and the simulator saw no more requests than the war room shows commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_the_rules_neither_lose_nor_repeat_an_action() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = fes_fetch_config(dir.path(), &sim, "fetch_interval = \"1s\"\n");
    let cfg = config.to_str().unwrap();
    prepare(dir.path(), cfg);
    // A fixed seed: the kill points vary from round to round, and every run repeats them.
    let mut seed: u64 = 0x5eed_1234;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..10 {
        for n in 0..3 {
            sim.add_aro_with(
                0,
                &format!("Round {round} alert {n}"),
                serde_json::Map::new(),
            );
        }
        let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_watchfloor"))
            .args(["--config", cfg, "serve"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + next() % 900));
        serve.kill().unwrap();
        serve.wait().unwrap();
    }
    // A last run to the end.
    let serve = Served::start(
        dir.path(),
        &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
        None,
        Stdio::null(),
    );
    let acme = settled(dir.path(), cfg, &sim);
    assert_eq!(serve.stop(), Some(0));
    let mut commands = 0;
    for (id, owner, entries) in &acme {
        assert_eq!(owner, "alice", "{id}");
        assert_eq!(by_rule(entries, "change").len(), 1, "{id}: {entries:#?}");
        assert_eq!(by_rule(entries, "note").len(), 1, "{id}: {entries:#?}");
        let ran = by_rule(entries, "command").len();
        assert!(ran <= 1, "{id}: {entries:#?}");
        commands += ran;
    }
    let asked = organizations_listed(&sim);
    assert!(
        asked >= commands && asked <= acme.len(),
        "{asked} requests, {commands} commands recorded, {} incidents",
        acme.len()
    );
    eprintln!(
        "{} incidents; {commands} commands recorded, {asked} sent",
        acme.len()
    );
}

/// On PostgreSQL, two `serve` processes share one database: each rule acts on each event once,
/// whichever process handles it; when the one holding the rules stops, the other carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_postgresql_act_on_each_event_once() {
    let Some(pg) = watchfloor_storage::test_cluster::fresh_database().await else {
        return;
    };
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchfloor.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nurl = \"{pg}\"\n[cluster]\nlease = \"2s\"\n[[instances]]\nname = \"fes\"\n\
             integration = \"covalence-managed-security\"\nfetch = true\nfetch_interval = \"1s\"\n\
             first_fetch = \"2024-04-01T00:00:00Z\"\n[instances.params]\nportal_url = \"{}\"\napi_key = \"{}\"\n",
            sim.portal_url, sim.api_key
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    prepare(dir.path(), cfg);
    let start = || {
        Served::start(
            dir.path(),
            &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
            None,
            Stdio::null(),
        )
    };
    let (first, second) = (start(), start());
    // Half way, the first stops; later AROs are the second's alone.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(first.stop(), Some(0));
    for n in 0..3 {
        sim.add_aro_with(0, &format!("Late {n}"), serde_json::Map::new());
    }
    let acme = settled(dir.path(), cfg, &sim);
    assert_eq!(second.stop(), Some(0));
    for (id, owner, entries) in &acme {
        assert_eq!(owner, "alice", "{id}");
        for kind in ["change", "command", "note"] {
            assert_eq!(by_rule(entries, kind).len(), 1, "{id} {kind}: {entries:#?}");
        }
    }
    let asked = organizations_listed(&sim);
    assert_eq!(asked, acme.len());
}

/// A `run` over each indicator with `cache`: every Acme incident's user is looked up, and the
/// provider is asked once per user; the other incidents of that user get the kept answer,
/// marked as such in their war rooms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_per_indicator_asks_the_provider_once_per_value() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = fes_fetch_config(dir.path(), &sim, "fetch_interval = \"1s\"\n");
    let cfg = config.to_str().unwrap();
    let rules = r#"
[[rules]]
name = "enrich-users"
on = ["created"]
when = "organization:Acme"
actions = [{ action = "run", line = '!cov-mgsec-get-aro query="id=${indicator.user}"', cache = "24h" }]
"#;
    std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
    let imported = watchfloor(
        dir.path(),
        &["--config", cfg, "rules", "import", "rules.toml"],
    );
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let serve = Served::start(
        dir.path(),
        &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
        None,
        Stdio::null(),
    );
    let expected = sim
        .aros()
        .iter()
        .filter(|a| a["organization"]["name"] == "Acme" && a["resolution"] == "Unresolved")
        .count();
    let ran = |entries: &[Value]| -> Vec<Value> {
        entries
            .iter()
            .filter(|e| e["author"] == "rule:enrich-users" && e["kind"] == "command")
            .cloned()
            .collect()
    };
    let started = Instant::now();
    let acme = loop {
        let acme = incidents(dir.path(), cfg, "organization:Acme");
        if acme.len() == expected && acme.iter().all(|(_, _, e)| !ran(e).is_empty()) {
            break acme;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the rule did not finish: {acme:#?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let mut asked: std::collections::BTreeMap<String, usize> = Default::default();
    let mut kept = 0;
    for (id, _, entries) in &acme {
        let runs = ran(entries);
        assert_eq!(runs.len(), 1, "incident {id} names one user: {runs:#?}");
        let line = runs[0]["body"]["command"].as_str().unwrap().to_string();
        assert!(
            line.contains("query=\"id=") || line.contains("query=id="),
            "{line}"
        );
        match runs[0]["body"].get("cached") {
            Some(_) => kept += 1,
            None => *asked.entry(line).or_default() += 1,
        }
    }
    assert!(
        asked.values().all(|n| *n == 1),
        "each line went to the provider once: {asked:#?}"
    );
    assert_eq!(asked.len() + kept, expected);
    assert!(kept > 0, "some users repeat among {expected} incidents");
    assert_eq!(serve.stop(), Some(0));
}
