//! The engine against the FES simulator: every unresolved ARO in the ground truth becomes
//! exactly one incident, whatever the limit, late arrivals, faults and malformed responses.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use watchfloor_core::Config;
use watchfloor_engine::{Engine, Steps};
use watchfloor_integrations::Runner;
use watchfloor_simulators::{
    CovalenceManagedSecurityOptions, CovalenceManagedSecuritySetup,
    CovalenceManagedSecuritySimulator, FaultSpec,
};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{IncidentFilter, SqlStore, Store};

struct Setup {
    sim: CovalenceManagedSecuritySimulator,
    runner: Arc<Runner>,
    engine: Engine,
    store: Arc<SqlStore>,
    _dir: tempfile::TempDir,
}

async fn setup(opts: CovalenceManagedSecurityOptions, fetch: &str) -> Setup {
    let sim = CovalenceManagedSecuritySimulator::start(opts)
        .await
        .unwrap();
    let text = format!(
        "[[instances]]\nname = \"fes\"\nintegration = \"covalence-managed-security\"\nfetch = true\n\
         first_fetch = \"2024-04-01T00:00:00Z\"\n{fetch}[instances.params]\nportal_url = \"{}\"\napi_key = \"{}\"\ntimeout = \"5s\"\n",
        sim.portal_url, sim.api_key
    );
    let config = Config::parse(
        Path::new("t.toml"),
        &text,
        &watchfloor_integrations::definitions(),
        &|_| None,
    )
    .unwrap();
    let runner = Arc::new(Runner::new(watchfloor_integrations::builtin(), &config).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let engine = Engine::new(runner.clone(), store.clone());
    Setup {
        sim,
        runner,
        engine,
        store,
        _dir: dir,
    }
}

fn no_stop() -> watch::Receiver<bool> {
    watch::channel(false).1
}

impl Setup {
    async fn cycle(&self, steps: Steps) -> Result<usize, String> {
        self.engine
            .cycle("fes", steps, &|_| {}, &no_stop())
            .await
            .map(|r| r.new_incidents)
            .map_err(|e| e.to_string())
    }

    async fn stored(&self) -> Vec<String> {
        let all = self
            .store
            .incidents(&IncidentFilter::default())
            .await
            .unwrap();
        all.into_iter().map(|i| i.external_id).collect()
    }

    /// Ground truth: unresolved AROs the portal shows.
    fn expected(&self) -> BTreeSet<String> {
        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        self.sim
            .aros()
            .iter()
            .filter(|a| {
                a["resolution"] == "Unresolved"
                    && a["data"]["visible_at"]
                        .as_str()
                        .is_some_and(|v| v <= now.as_str())
            })
            .map(|a| a["ID"].as_str().unwrap().to_string())
            .collect()
    }

    /// Asserts that the store holds each expected ARO exactly once.
    async fn assert_exactly_once(&self) {
        let stored = self.stored().await;
        let unique: BTreeSet<String> = stored.iter().cloned().collect();
        assert_eq!(unique.len(), stored.len(), "duplicates in {stored:?}");
        assert_eq!(unique, self.expected());
    }
}

#[tokio::test]
async fn every_unresolved_aro_becomes_exactly_one_incident() {
    let s = setup(
        CovalenceManagedSecurityOptions {
            setup: CovalenceManagedSecuritySetup {
                orgs: 4,
                aros_per_org: 30,
                ..Default::default()
            },
            ..Default::default()
        },
        "",
    )
    .await;
    let added = s.cycle(Steps::UntilCaughtUp).await.unwrap();
    assert_eq!(added, s.expected().len());
    s.assert_exactly_once().await;
    assert_eq!(
        s.cycle(Steps::UntilCaughtUp).await.unwrap(),
        0,
        "a second cycle adds nothing"
    );

    let one = s
        .store
        .incidents(&IncidentFilter {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let aro = s
        .sim
        .aros()
        .into_iter()
        .find(|a| a["ID"] == one.external_id.as_str())
        .unwrap();
    assert_eq!(
        one.name,
        format!(
            "[{}] [{}] {}",
            aro["organization"]["name"].as_str().unwrap(),
            aro["type"].as_str().unwrap(),
            aro["title"].as_str().unwrap()
        )
    );
    assert_eq!(
        (one.kind.as_str(), one.integration.as_str()),
        ("Covalence ARO", "covalence-managed-security")
    );
    assert!(
        one.details
            .contains("\n\nMitigation Steps\n- Investigate activity on"),
        "{}",
        one.details
    );
    assert!(
        one.details
            .contains("\nActive Response Profile\n- Response policy: "),
        "{}",
        one.details
    );
    let lookups: usize = s
        .sim
        .faults
        .request_counts()
        .iter()
        .filter(|(p, _)| p.starts_with("/v1/my_organizations/"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        lookups <= 4 * 2,
        "one profile lookup per organization per fetch, not per ARO: {lookups}"
    );
    let health = &s.store.health().await.unwrap()[0];
    assert_eq!(
        (health.consecutive_failures, health.incidents_last_cycle),
        (0, 0)
    );
}

#[tokio::test]
async fn a_fetch_limit_smaller_than_the_window_fetches_everything_over_cycles() {
    let s = setup(
        CovalenceManagedSecurityOptions {
            setup: CovalenceManagedSecuritySetup {
                aros_per_org: 10,
                ..Default::default()
            },
            ..Default::default()
        },
        "fetch_limit = 3\n",
    )
    .await;
    let expected = s.expected().len();
    assert!(expected > 6);
    let mut cycles = 0;
    while s.stored().await.len() < expected && cycles < 100 {
        let added = s.cycle(Steps::One).await.unwrap();
        assert!(added <= 3, "the limit holds");
        cycles += 1;
    }
    assert_eq!(cycles, expected.div_ceil(3));
    s.assert_exactly_once().await;
}

#[tokio::test]
async fn progress_shows_a_backfill_covering_its_window() {
    let s = setup(
        CovalenceManagedSecurityOptions {
            setup: CovalenceManagedSecuritySetup {
                aros_per_org: 20,
                ..Default::default()
            },
            ..Default::default()
        },
        "fetch_limit = 4\n",
    )
    .await;
    let seen = std::sync::Mutex::new(Vec::new());
    let record = |p: &watchfloor_engine::Progress| {
        seen.lock()
            .unwrap()
            .push((p.new_incidents, p.covered.unwrap()))
    };
    let report = s
        .engine
        .cycle("fes", Steps::UntilCaughtUp, &record, &no_stop())
        .await
        .unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), report.steps);
    assert!(
        seen.windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1),
        "counts and coverage only grow: {seen:?}"
    );
    assert!(
        seen[0].1 < 0.5,
        "the first steps cover little of the window since April 2024: {seen:?}"
    );
    assert_eq!(seen.last().unwrap(), &(report.new_incidents, 1.0));
}

#[tokio::test]
async fn late_arrivals_are_still_fetched() {
    let s = setup(
        CovalenceManagedSecurityOptions {
            late_arrival: Duration::from_secs(2),
            ..Default::default()
        },
        "look_back = \"1m\"\n",
    )
    .await;
    s.cycle(Steps::UntilCaughtUp).await.unwrap();
    let late: Vec<String> = (0..3)
        .map(|n| {
            s.sim.add_aro(n, &format!("late {n}"))["ID"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        s.cycle(Steps::UntilCaughtUp).await.unwrap(),
        0,
        "not visible yet"
    );
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(s.cycle(Steps::UntilCaughtUp).await.unwrap(), 3);
    let stored = s.stored().await;
    assert!(late.iter().all(|id| stored.contains(id)));
    s.assert_exactly_once().await;
}

#[tokio::test]
async fn thirty_percent_failures_converge_to_the_same_incidents() {
    let faults = FaultSpec {
        random_failure_percent: 30,
        retry_after_secs: 0,
        ..FaultSpec::default()
    };
    let s = setup(
        CovalenceManagedSecurityOptions {
            faults,
            setup: CovalenceManagedSecuritySetup {
                aros_per_org: 40,
                ..Default::default()
            },
            ..Default::default()
        },
        "fetch_limit = 10\n",
    )
    .await;
    let expected = s.expected().len();
    let (mut failed, mut cycles) = (0, 0);
    while s.stored().await.len() < expected && cycles < 200 {
        if s.cycle(Steps::One).await.is_err() {
            failed += 1;
        }
        cycles += 1;
    }
    s.assert_exactly_once().await;
    let requests: usize = s.sim.faults.request_counts().values().sum();
    let injected = s.sim.faults.injected();
    assert!(
        injected * 100 >= requests * 20,
        "about 30% of {requests} requests failed: {injected}"
    );
    eprintln!("{cycles} cycles, {failed} failed; {injected} of {requests} requests failed");
}

#[tokio::test]
async fn a_malformed_response_is_recorded_in_health_and_loses_nothing() {
    let s = setup(CovalenceManagedSecurityOptions::default(), "").await;
    s.sim.faults.set(FaultSpec {
        malformed: 1,
        ..FaultSpec::default()
    });
    let err = s.cycle(Steps::UntilCaughtUp).await.unwrap_err();
    assert!(
        err.starts_with(
            "instance `fes`: fetch failed: malformed JSON from FES Portal GET /my_providers"
        ),
        "{err}"
    );
    let health = &s.store.health().await.unwrap()[0];
    assert_eq!(
        (health.consecutive_failures, health.last_error.as_deref()),
        (1, Some(err.as_str()))
    );
    // Its one scope's own health says the same (hardening 27.18).
    let scopes = |h: &watchfloor_storage::Health| -> Vec<(String, i64, Option<String>)> {
        h.scopes
            .iter()
            .map(|s| {
                (
                    s.scope.clone(),
                    s.consecutive_failures,
                    s.last_error.clone(),
                )
            })
            .collect()
    };
    assert_eq!(scopes(health), [(String::new(), 1, Some(err.clone()))]);
    assert_eq!(
        s.store.cursor("fes", "").await.unwrap(),
        None::<Value>,
        "the cursor did not move"
    );
    s.cycle(Steps::UntilCaughtUp).await.unwrap();
    s.assert_exactly_once().await;
    let health = &s.store.health().await.unwrap()[0];
    assert_eq!(health.consecutive_failures, 0);
    assert_eq!(scopes(health)[0].1, 0);
}

#[tokio::test]
async fn the_scheduler_fetches_on_its_interval_and_stops_when_told() {
    let s = setup(
        CovalenceManagedSecurityOptions {
            generate_every: Some(Duration::from_millis(150)),
            ..Default::default()
        },
        "fetch_interval = \"1s\"\n",
    )
    .await;
    let engine = Arc::new(s.engine);
    let (tx, rx) = watch::channel(false);
    let serving = tokio::spawn(engine.clone().serve(2, rx));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("stops promptly")
        .unwrap();
    let stored = s.store.incidents(&IncidentFilter::default()).await.unwrap();
    let generated = stored
        .iter()
        .filter(|i| i.name.contains("Generated alert"))
        .count();
    assert!(
        generated >= 5,
        "cycles ran on the interval and picked up new AROs: {generated}"
    );
}

/// Regression (hardening 3): one ARO with `creation_time: "yesterday-ish"` (or a numeric `ID`)
/// failed every fetch and the valid ones were never stored. It is set aside, named in the
/// instance's health, and the rest are fetched.
#[tokio::test]
async fn a_malformed_record_is_set_aside_and_the_rest_are_fetched() {
    let s = setup(CovalenceManagedSecurityOptions::default(), "").await;
    let valid = s.expected();
    let poisoned = |field: &str, value: Value| {
        let mut fields = serde_json::Map::new();
        fields.insert(field.into(), value);
        fields
    };
    let bad_time = s.sim.add_aro_with(
        0,
        "Bad time",
        poisoned("creation_time", Value::from("yesterday-ish")),
    );
    s.sim
        .add_aro_with(1, "Numeric id", poisoned("ID", Value::from(5)));
    s.cycle(Steps::UntilCaughtUp).await.unwrap();
    let stored: BTreeSet<String> = s.stored().await.into_iter().collect();
    assert_eq!(stored, valid, "every valid ARO is stored");
    let health = s.store.health().await.unwrap();
    let reasons: Vec<String> = health[0]
        .set_aside
        .iter()
        .map(|r| format!("{}: {}", r.record.id, r.record.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            format!(
                "{}: its creation_time is \"yesterday-ish\", not YYYY-MM-DD HH:MM:SS",
                bad_time["ID"].as_str().unwrap()
            ),
            "?: its ID is 5 (a number), not an id".to_string(),
        ]
    );
    // Seen again on the next cycle, they are not noted twice.
    s.cycle(Steps::UntilCaughtUp).await.unwrap();
    assert_eq!(s.store.health().await.unwrap()[0].set_aside.len(), 2);
}

/// Regression (hardening 1): a portal that always says another page follows kept fetch
/// running forever. The step fails with a clear error in health, and nothing half-stored.
#[tokio::test]
async fn endless_pages_fail_the_step_not_the_process() {
    let s = setup(
        CovalenceManagedSecurityOptions {
            faults: FaultSpec {
                endless_pages: true,
                ..FaultSpec::default()
            },
            ..Default::default()
        },
        "",
    )
    .await;
    let err = tokio::time::timeout(Duration::from_secs(60), s.cycle(Steps::UntilCaughtUp))
        .await
        .expect("the cycle ends")
        .unwrap_err();
    assert!(
        err.contains("still says more follow after 200 pages"),
        "{err}"
    );
    assert!(s.stored().await.is_empty());
    let health = s.store.health().await.unwrap();
    assert_eq!(health[0].consecutive_failures, 1);
}

/// Regression (hardening 27.3): one ARO larger than 64 MiB failed every fetch of its instance
/// ("sent more than 64 MiB") and none of the batch was stored. It is set aside, named in the
/// instance's health, and the others arrive.
#[tokio::test]
async fn a_record_over_64_mib_is_set_aside_and_the_others_arrive() {
    let s = setup(CovalenceManagedSecurityOptions::default(), "").await;
    let ordinary = s.expected();
    let huge = s.sim.add_aro_with(0, "Huge", serde_json::Map::new());
    s.sim.faults.set(FaultSpec {
        huge_record_mib: 65,
        ..FaultSpec::default()
    });
    s.cycle(Steps::UntilCaughtUp).await.unwrap();
    let stored: BTreeSet<String> = s.stored().await.into_iter().collect();
    assert_eq!(stored, ordinary, "every other ARO is stored");
    let health = s.store.health().await.unwrap();
    let reasons: Vec<String> = health[0]
        .set_aside
        .iter()
        .map(|r| format!("{}: {}", r.record.id, r.record.reason))
        .collect();
    assert_eq!(
        reasons,
        [format!(
            "{}: it is 65.0 MiB, more than the 16 MiB one record may be; read it at the provider",
            huge["ID"].as_str().unwrap()
        )]
    );
    assert_eq!(health[0].consecutive_failures, 0);
}

/// Regression (hardening 4): with thousands of AROs waiting, every 200-incident step re-read
/// the whole window (47 pages of 500 each). A step now reads about one step's worth.
#[tokio::test]
async fn a_backfill_step_reads_about_one_steps_worth() {
    let s = setup(
        CovalenceManagedSecurityOptions {
            setup: CovalenceManagedSecuritySetup {
                orgs: 10,
                aros_per_org: 800,
                ..Default::default()
            },
            ..Default::default()
        },
        "",
    )
    .await;
    let expected = s.expected().len();
    assert!(expected > 2_000, "{expected} AROs to backfill");
    let report = s
        .engine
        .cycle("fes", Steps::UntilCaughtUp, &|_| {}, &no_stop())
        .await
        .unwrap();
    s.assert_exactly_once().await;
    let pages: usize = s
        .sim
        .faults
        .request_counts()
        .iter()
        .filter(|(path, _)| path.ends_with("/aros"))
        .map(|(_, n)| n)
        .sum();
    // Re-reading the window would take about (expected / 500) pages per step.
    assert!(
        pages <= 3 * report.steps + 10,
        "{pages} ARO pages for {} steps of {expected} AROs",
        report.steps
    );
}

/// Regression (hardening 8): one ARO with huge details was stored whole. It is stored with
/// its text cut, and marked as cut.
#[tokio::test]
async fn an_oversized_aro_is_stored_cut_and_marked() {
    let s = setup(CovalenceManagedSecurityOptions::default(), "").await;
    let mut fields = serde_json::Map::new();
    fields.insert("details".into(), Value::from("d".repeat(2_000_000)));
    let aro = s.sim.add_aro_with(0, "Huge", fields);
    s.cycle(Steps::UntilCaughtUp).await.unwrap();
    let all = s.store.incidents(&IncidentFilter::default()).await.unwrap();
    let stored = all.iter().find(|i| i.external_id == aro["ID"]).unwrap();
    assert!(
        stored.details.len() < 70_000,
        "{} bytes",
        stored.details.len()
    );
    assert!(stored.details.contains("[truncated: "), "marked");
    assert!(stored.raw.to_string().len() < 70_000);
}

mod mirroring {
    use super::*;
    use watchfloor_core::{Change, CloseReason, SlaPolicy};

    async fn fetched() -> (Setup, Vec<watchfloor_core::Incident>) {
        let s = setup(CovalenceManagedSecurityOptions::default(), "").await;
        s.cycle(Steps::UntilCaughtUp).await.unwrap();
        let all = s.store.incidents(&IncidentFilter::default()).await.unwrap();
        (s, all)
    }

    fn transitions(s: &Setup, aro: &str) -> usize {
        s.sim.transitions(aro).len()
    }

    fn close(reason: CloseReason, notes: &str) -> Change {
        Change::Close {
            reason,
            notes: Some(notes.into()),
        }
    }

    /// Regression (a close sent twice under shared work): the lease check ran once, before a
    /// push's first attempt; a retry after a 503 or a rate limit went out after the lease had
    /// passed to another process, which had found the ARO unresolved and closed it too (the
    /// portal saw two transitions). Every attempt of a push's write is now fenced by
    /// `send_by`, and a retry that could only go out after it is not waited for.
    #[tokio::test]
    async fn a_pushs_retry_is_not_sent_after_its_hold_on_the_mirroring_runs_out() {
        let (s, all) = fetched().await;
        let aro = &all[0].external_id;
        let change = watchfloor_integrations::Outgoing::Close {
            reason: CloseReason::Resolved,
            notes: None,
        };
        let instance = s.runner.instance("fes").unwrap().instance;
        let refuse_once = || {
            s.sim.faults.set(FaultSpec {
                server_errors: 1,
                only_path: Some("/transition".into()),
                ..FaultSpec::default()
            })
        };
        // The first attempt meets a 503; the retry (250 ms later) would come after the fence.
        refuse_once();
        let started = std::time::Instant::now();
        let by = started + Duration::from_millis(150);
        let err = instance.push(aro, &change, Some(by)).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("was not sent: this process's hold on the instance's mirroring ran out"),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "no retry waited for"
        );
        assert_eq!(transitions(&s, aro), 0, "nothing reached the portal");
        // A fence already passed sends nothing at all.
        let err = instance
            .push(aro, &change, Some(std::time::Instant::now()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("was not sent"), "{err}");
        assert_eq!(transitions(&s, aro), 0);
        // Time enough: the retry goes out, once.
        refuse_once();
        let by = std::time::Instant::now() + Duration::from_secs(5);
        instance.push(aro, &change, Some(by)).await.unwrap();
        assert_eq!(s.sim.transitions(aro), ["Resolved"]);
    }

    /// A close with each reason reaches the provider exactly once, as the mapped resolution
    /// with the notes; a mirrored note arrives once as a comment, an unmirrored one never.
    #[tokio::test]
    async fn closes_and_mirrored_notes_reach_the_provider_exactly_once() {
        let (s, all) = fetched().await;
        let sla = SlaPolicy::default();
        let cases = [
            (CloseReason::Resolved, "Resolved"),
            (CloseReason::FalsePositive, "Dismissed"),
            (CloseReason::Duplicate, "Dismissed"),
            (CloseReason::Other, "Resolved"),
        ];
        for ((reason, _), inc) in cases.iter().zip(&all) {
            s.store
                .change_incident(inc.id, None, "dana", &close(*reason, "handled"), &sla)
                .await
                .unwrap();
        }
        let note_inc = &all[4];
        s.store
            .add_note(note_inc.id, "dana", "Called the site lead", true)
            .await
            .unwrap();
        s.store
            .add_note(note_inc.id, "dana", "internal only", false)
            .await
            .unwrap();
        let first = s.engine.sync("fes").await.unwrap();
        assert_eq!((first.pushed, first.pending), (5, 0));
        let second = s.engine.sync("fes").await.unwrap();
        assert_eq!(second.pushed, 0, "nothing is pushed twice");
        let aros = s.sim.aros();
        for ((_, resolution), inc) in cases.iter().zip(&all) {
            let aro = aros
                .iter()
                .find(|a| a["ID"] == inc.external_id.as_str())
                .unwrap();
            assert_eq!(aro["resolution"], *resolution, "{}", inc.external_id);
            assert_eq!(transitions(&s, &inc.external_id), 1);
            let comments = s.sim.comments(&inc.external_id);
            assert_eq!(comments.len(), 1, "the close notes, once");
            assert_eq!(comments[0]["text"], "handled");
        }
        let comments: Vec<Value> = s.sim.comments(&note_inc.external_id);
        let texts: Vec<&str> = comments
            .iter()
            .map(|c| c["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["Called the site lead"]);
        let kinds: Vec<String> = s
            .store
            .entries(all[0].id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| format!("{}/{}", e.author, e.kind))
            .collect();
        assert_eq!(kinds, ["dana/change", "sync:fes/sync-out"]);
    }

    /// A resolution made in the portal closes the local incident within one sync, with an
    /// entry, and nothing is sent back.
    #[tokio::test]
    async fn a_remote_resolution_closes_the_incident_and_sends_nothing_back() {
        let (s, all) = fetched().await;
        let inc = &all[0];
        let mut fields = serde_json::Map::new();
        fields.insert("resolution".into(), Value::from("Resolved"));
        fields.insert("status".into(), Value::from("Closed"));
        s.sim.update_aro(&inc.external_id, fields).unwrap();
        let report = s.engine.sync("fes").await.unwrap();
        assert_eq!(report.pulled, 1);
        let closed = s.store.incident(inc.id).await.unwrap().unwrap();
        assert_eq!(
            (closed.status, closed.close_reason),
            (watchfloor_core::Status::Closed, Some(CloseReason::Resolved))
        );
        let entries = s.store.entries(inc.id).await.unwrap();
        assert!(
            entries
                .iter()
                .all(|e| e.author == "sync:fes" && e.kind == "sync-in")
        );
        assert!(
            entries
                .iter()
                .any(|e| e.body["changes"][0]["new"] == "closed")
        );
        // Regression (a mirrored change read as its JSON in the war room, the CLI and
        // XSOAR's entries): it reads as a change made here does.
        let said: Vec<String> = entries.iter().map(|e| e.text()).collect();
        assert!(
            said.iter()
                .any(|t| t.lines().any(|l| l == "status: pending → closed")),
            "{said:?}"
        );
        assert!(said.iter().all(|t| !t.contains('{')), "{said:?}");
        s.engine.sync("fes").await.unwrap();
        assert_eq!(transitions(&s, &inc.external_id), 0, "no echo");
        assert!(s.sim.comments(&inc.external_id).is_empty());
        assert!(s.store.pending_pushes("fes").await.unwrap().is_empty());
    }

    /// Regression (a reopen stayed local): an incident closed and reopened here sends the
    /// close and then the reopen, in order, and its ARO ends Unresolved; one resolved in the
    /// portal and reopened here goes back to Unresolved there. Nothing is sent twice, and the
    /// reopened incidents stay open.
    #[tokio::test]
    async fn a_reopen_sends_the_aro_back_to_unresolved_once() {
        let (s, all) = fetched().await;
        let sla = SlaPolicy::default();
        let (here, there) = (&all[0], &all[1]);
        s.store
            .change_incident(
                here.id,
                None,
                "dana",
                &close(CloseReason::Resolved, "done"),
                &sla,
            )
            .await
            .unwrap();
        let mut fields = serde_json::Map::new();
        fields.insert("resolution".into(), Value::from("Dismissed"));
        s.sim.update_aro(&there.external_id, fields).unwrap();
        assert_eq!(s.engine.sync("fes").await.unwrap().pushed, 1);
        let closed = s.store.incident(there.id).await.unwrap().unwrap();
        assert_eq!(closed.status, watchfloor_core::Status::Closed);
        for inc in [here, there] {
            s.store
                .change_incident(inc.id, None, "dana", &Change::Reopen, &sla)
                .await
                .unwrap();
        }
        let report = s.engine.sync("fes").await.unwrap();
        assert_eq!((report.pushed, report.pending), (2, 0));
        assert_eq!(
            s.sim.transitions(&here.external_id),
            ["Resolved", "Unresolved"]
        );
        assert_eq!(s.sim.transitions(&there.external_id), ["Unresolved"]);
        let said: Vec<String> = s
            .store
            .entries(there.id)
            .await
            .unwrap()
            .iter()
            .filter_map(|e| e.body["text"].as_str().map(str::to_string))
            .collect();
        assert!(
            said.contains(&format!(
                "ARO {} transitioned back to Unresolved in the FES Portal (it was Dismissed)",
                there.external_id
            )),
            "{said:?}"
        );
        let again = s.engine.sync("fes").await.unwrap();
        assert_eq!((again.pushed, again.pulled), (0, 0), "nothing echoes");
        for inc in [here, there] {
            let local = s.store.incident(inc.id).await.unwrap().unwrap();
            assert_ne!(local.status, watchfloor_core::Status::Closed);
            let aros = s.sim.aros();
            let aro = aros.iter().find(|a| a["ID"] == inc.external_id.as_str());
            assert_eq!(aro.unwrap()["resolution"], "Unresolved");
        }
    }

    /// With the provider failing every request, a close stays pending and visible; once it
    /// recovers, the close is pushed exactly once.
    #[tokio::test]
    async fn a_failing_provider_keeps_changes_pending_until_it_recovers() {
        let (s, all) = fetched().await;
        let inc = &all[0];
        s.store
            .change_incident(
                inc.id,
                None,
                "dana",
                &close(CloseReason::Resolved, "done"),
                &SlaPolicy::default(),
            )
            .await
            .unwrap();
        s.sim.faults.set(FaultSpec {
            server_errors: 1_000,
            ..FaultSpec::default()
        });
        for _ in 0..3 {
            let err = s.engine.sync("fes").await.unwrap_err().to_string();
            assert!(err.contains("a push failed and is retried"), "{err}");
        }
        let pending = s.store.pending_pushes("fes").await.unwrap();
        assert_eq!(pending.len(), 1);
        assert!(pending[0].attempts >= 3);
        let failures: Vec<_> = s
            .store
            .entries(inc.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "sync-failed")
            .collect();
        assert_eq!(
            failures.len(),
            1,
            "one entry for the same error, not one per retry"
        );
        let health = s.store.health().await.unwrap();
        assert!(
            health[0]
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("mirroring")
        );
        s.sim.faults.set(FaultSpec::default());
        assert_eq!(s.engine.sync("fes").await.unwrap().pushed, 1);
        s.engine.sync("fes").await.unwrap();
        assert_eq!(transitions(&s, &inc.external_id), 1, "pushed once");
    }
}

/// Regression (mirroring): `serve` mirrored only the instances that fetch; one whose fetching
/// was turned off kept its incidents' closes in the outbox for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_mirrors_an_instance_that_does_not_fetch() {
    let s = setup(CovalenceManagedSecurityOptions::default(), "").await;
    s.engine
        .cycle("fes", Steps::UntilCaughtUp, &|_| {}, &no_stop())
        .await
        .unwrap();
    // The same instance, with fetching turned off.
    let text = format!(
        "[[instances]]\nname = \"fes\"\nintegration = \"covalence-managed-security\"\n\
         [instances.params]\nportal_url = \"{}\"\napi_key = \"{}\"\ntimeout = \"5s\"\n",
        s.sim.portal_url, s.sim.api_key
    );
    let config = Config::parse(
        Path::new("t.toml"),
        &text,
        &watchfloor_integrations::definitions(),
        &|_| None,
    )
    .unwrap();
    let runner = Arc::new(Runner::new(watchfloor_integrations::builtin(), &config).unwrap());
    assert!(runner.fetching_instances().is_empty());
    let engine = Arc::new(Engine::new(runner, s.store.clone()));
    let incident = s
        .store
        .incidents(&watchfloor_storage::IncidentFilter::default())
        .await
        .unwrap()[0]
        .clone();
    let close = watchfloor_core::Change::Close {
        reason: watchfloor_core::CloseReason::Resolved,
        notes: None,
    };
    s.store
        .change_incident(
            incident.id,
            None,
            "dana",
            &close,
            &watchfloor_core::SlaPolicy::default(),
        )
        .await
        .unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let serving = tokio::spawn(engine.serve(1, stop));
    let started = std::time::Instant::now();
    loop {
        let resolved = s
            .sim
            .aros()
            .iter()
            .any(|a| a["ID"] == incident.external_id.as_str() && a["resolution"] == "Resolved");
        if resolved {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "the close never reached the provider"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop_tx.send(true).unwrap();
    serving.await.unwrap();
    assert!(s.store.pending_pushes("fes").await.unwrap().is_empty());
}

/// An engine paused past its lease (a long GC pause, SIGSTOP, a partition) while a fetch is in
/// flight stores nothing when it wakes: another process took the scope over meanwhile, and the
/// lease's fencing token says so.
#[tokio::test]
async fn a_fetch_that_outlives_its_lease_stores_nothing() {
    use watchfloor_engine::sharing::Sharing;
    let Setup {
        engine,
        store,
        _dir,
        sim: _sim,
        ..
    } = setup(
        CovalenceManagedSecurityOptions {
            faults: FaultSpec {
                latency_ms: 600,
                ..Default::default()
            },
            ..Default::default()
        },
        "",
    )
    .await;
    let sharing = Arc::new(Sharing::new(
        store.clone(),
        std::time::Duration::from_millis(200),
    ));
    let engine = engine.with_sharing(sharing.clone());
    sharing.tick().await.unwrap();
    let other = async {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        store
            .acquire_lease(
                "fetch:fes",
                "another-process",
                std::time::Duration::from_secs(60),
            )
            .await
            .unwrap()
    };
    let stop = no_stop();
    let (report, taken) = tokio::join!(engine.cycle("fes", Steps::One, &|_| {}, &stop), other);
    let taken = taken.expect("the expired lease is taken over");
    assert_eq!(taken.token, 2);
    assert_eq!(report.unwrap().new_incidents, 0);
    assert_eq!(
        store.count("fes").await.unwrap(),
        0,
        "nothing stored under the stale lease"
    );
    assert_eq!(
        store.cursor("fes", "").await.unwrap(),
        None,
        "nor its cursor"
    );
    // The scope is the other process's now: this one leaves it alone.
    let again = engine
        .cycle("fes", Steps::One, &|_| {}, &no_stop())
        .await
        .unwrap();
    assert_eq!((again.steps, store.count("fes").await.unwrap()), (0, 0));
}

/// Regression (a process that fetches none of an instance's scopes recorded a success for it
/// every cycle, hiding the failure of the process that does): two engines share one store; the
/// one that holds the instance's scope fails and says so in health, and the other's cycle,
/// which leaves the scope to it, records nothing over that.
#[tokio::test]
async fn a_process_that_holds_no_scope_does_not_hide_the_holders_failure() {
    use watchfloor_engine::sharing::Sharing;
    let s = setup(CovalenceManagedSecurityOptions::default(), "").await;
    let store: Arc<dyn Store> = s.store.clone();
    let period = Duration::from_secs(30);
    let (a, b) = (
        Arc::new(Sharing::new(store.clone(), period)),
        Arc::new(Sharing::new(store.clone(), period)),
    );
    let holder = Engine::new(s.runner.clone(), s.store.clone()).with_sharing(a.clone());
    let other = Engine::new(s.runner.clone(), s.store.clone()).with_sharing(b.clone());
    a.tick().await.unwrap();
    holder
        .cycle("fes", Steps::UntilCaughtUp, &|_| {}, &no_stop())
        .await
        .unwrap();
    b.tick().await.unwrap();
    s.sim.faults.set(watchfloor_simulators::FaultSpec {
        server_errors: 1000,
        ..Default::default()
    });
    assert!(
        holder
            .cycle("fes", Steps::One, &|_| {}, &no_stop())
            .await
            .is_err()
    );
    let report = other
        .cycle("fes", Steps::One, &|_| {}, &no_stop())
        .await
        .unwrap();
    assert_eq!((report.steps, report.held), (0, 1));
    let health = s.store.health().await.unwrap();
    let fes = health.iter().find(|h| h.instance == "fes").unwrap();
    assert!(fes.last_error.is_some(), "{fes:?}");
    assert!(fes.consecutive_failures >= 1, "{fes:?}");
}

/// Regression (a NUL in one ARO stopped every fetch of its instance on PostgreSQL, "invalid
/// byte sequence for encoding UTF8: 0x00", and none of the batch was stored): with the
/// simulator's hostile `nul_in_text` mode, every ARO arrives, on SQLite and on PostgreSQL.
#[tokio::test]
async fn aros_with_nul_in_their_titles_arrive_on_both_databases() {
    let mut urls = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    urls.push(format!("sqlite://{}/wf.db", dir.path().display()));
    if let Some(pg) = watchfloor_storage::test_cluster::fresh_database().await {
        urls.push(pg);
    }
    for url in urls {
        let s = setup(
            CovalenceManagedSecurityOptions {
                faults: watchfloor_simulators::FaultSpec {
                    nul_in_text: true,
                    ..Default::default()
                },
                ..Default::default()
            },
            "",
        )
        .await;
        let store = Arc::new(SqlStore::open(&url).await.unwrap());
        let engine = Engine::new(s.runner.clone(), store.clone());
        engine
            .cycle("fes", Steps::UntilCaughtUp, &|_| {}, &no_stop())
            .await
            .unwrap();
        let stored = store.incidents(&IncidentFilter::default()).await.unwrap();
        let unresolved = s
            .sim
            .aros()
            .iter()
            .filter(|a| a["resolution"] == "Unresolved")
            .count();
        assert_eq!(stored.len(), unresolved, "{url}");
        assert!(
            stored.iter().all(|i| i.name.contains("nul\u{fffd}")),
            "{url}: {:?}",
            stored.iter().map(|i| &i.name).collect::<Vec<_>>()
        );
    }
}

/// Issue 34: incoming mirroring read each open incident's ARO alone, one request per open
/// incident per cycle. It now lists the open AROs of the incidents' time span, 500 a page: over
/// 200 organizations it makes at most 1/100 of the per-incident pattern's requests (counted
/// at the simulator, both patterns in one run), and a change made at the provider (a
/// resolution, new analyst notes, Help Requested) is seen in the next cycle, once.
#[tokio::test]
async fn mirroring_reads_open_aros_in_bulk_and_still_sees_each_change() {
    let s = setup(
        CovalenceManagedSecurityOptions {
            setup: CovalenceManagedSecuritySetup {
                orgs: 200,
                aros_per_org: 40,
                ..Default::default()
            },
            ..Default::default()
        },
        "fetch_limit = 10000\n",
    )
    .await;
    s.cycle(Steps::UntilCaughtUp).await.unwrap();
    s.assert_exactly_once().await;
    let open = s.store.incidents(&IncidentFilter::default()).await.unwrap();
    assert!(open.len() >= 5_000, "{} open incidents", open.len());
    let aro_requests = || -> usize {
        s.sim
            .faults
            .request_counts()
            .iter()
            .filter(|(path, _)| path.ends_with("/aros"))
            .map(|(_, n)| n)
            .sum()
    };

    // The per-incident pattern, for comparison: one request per open incident.
    let instance = s.runner.instance("fes").unwrap().instance;
    let alerts: Vec<watchfloor_integrations::OpenAlert> = open
        .iter()
        .map(|i| watchfloor_integrations::OpenAlert {
            external_id: i.external_id.clone(),
            occurred: i.occurred,
            seen: i.raw.clone(),
        })
        .collect();
    let before = aro_requests();
    let each = watchfloor_integrations::pull_each(instance, &alerts)
        .await
        .unwrap();
    let per_incident = aro_requests() - before;
    assert_eq!(per_incident, open.len());
    assert!(each.iter().all(Option::is_none), "nothing changed yet");

    let before = aro_requests();
    let quiet = s.engine.sync("fes").await.unwrap();
    let bulk = aro_requests() - before;
    assert_eq!(quiet.pulled, 0);
    assert_eq!(
        quiet.requests as usize, bulk,
        "the report counts what the simulator saw"
    );
    assert!(
        bulk * 100 <= per_incident,
        "bulk {bulk} requests against {per_incident} one by one"
    );

    let set = |id: &str, pairs: &[(&str, &str)]| {
        let fields: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        s.sim.update_aro(id, fields).unwrap();
    };
    let (resolved, noted, helped) = (&open[10], &open[2_000], &open[4_999]);
    set(
        &resolved.external_id,
        &[("resolution", "Resolved"), ("status", "Closed")],
    );
    set(&noted.external_id, &[("analyst_notes", "Host reimaged.")]);
    set(&helped.external_id, &[("resolution", "Help Requested")]);
    let before = aro_requests();
    let changed = s.engine.sync("fes").await.unwrap();
    let requests = aro_requests() - before;
    assert_eq!(changed.pulled, 3, "each change in one cycle");
    assert!(requests * 100 <= per_incident, "{requests} requests");
    let closed = s.store.incident(resolved.id).await.unwrap().unwrap();
    assert_eq!(closed.status, watchfloor_core::Status::Closed);
    for inc in [noted, helped] {
        let entries = s.store.entries(inc.id).await.unwrap();
        assert_eq!(
            entries.iter().filter(|e| e.kind == "sync-in").count(),
            1,
            "{}",
            inc.external_id
        );
    }
    let again = s.engine.sync("fes").await.unwrap();
    assert_eq!(again.pulled, 0, "each change once");
}

/// Regression: an open incident whose stored record could not be read (a damaged row) failed
/// its instance's whole mirroring page, so no change of any incident after it was seen again.
/// It is passed over and counted; the others' changes arrive.
#[tokio::test]
async fn a_damaged_stored_record_is_passed_over_and_the_others_mirror() {
    use sqlx::Connection;
    let s = setup(
        CovalenceManagedSecurityOptions {
            setup: CovalenceManagedSecuritySetup {
                orgs: 2,
                aros_per_org: 5,
                ..Default::default()
            },
            ..Default::default()
        },
        "",
    )
    .await;
    s.cycle(Steps::UntilCaughtUp).await.unwrap();
    let open = s.store.incidents(&IncidentFilter::default()).await.unwrap();
    assert!(open.len() >= 3, "{} open incidents", open.len());
    // The oldest open incident, first in mirroring's order, is damaged on disk.
    let damaged = open.iter().min_by_key(|i| (i.occurred, i.id)).unwrap();
    let changed = open.iter().find(|i| i.id != damaged.id).unwrap();
    let mut db = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        s._dir.path().join("wf.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE incidents SET record = x'ff0001' WHERE id = ?")
        .bind(damaged.id)
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let mut notes = serde_json::Map::new();
    notes.insert("analyst_notes".into(), Value::from("Host reimaged."));
    s.sim.update_aro(&changed.external_id, notes).unwrap();

    let report = s.engine.sync("fes").await.unwrap();
    assert_eq!((report.pulled, report.unreadable), (1, 1), "{report:?}");
    let entries = s.store.entries(changed.id).await.unwrap();
    assert_eq!(entries.iter().filter(|e| e.kind == "sync-in").count(), 1);
}
