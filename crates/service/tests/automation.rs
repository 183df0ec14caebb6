//! Rules against a real store: one case per trigger and per action, chains stopped at depth 3,
//! the breaker, dry runs, an assignee outside the organization, and no action done twice when
//! the same events are handled again.

use std::sync::Arc;

use serde_json::{Value, json};
use watchfloor_core::{Change, CloseReason, Edit, Severity, SlaPolicy, Status};
use watchfloor_service::{Caller, Service};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{Actor, ManualIncident, Role, Scope, SqlStore};

struct Setup {
    service: Service,
    store: Arc<SqlStore>,
    admin: Caller,
    _dir: tempfile::TempDir,
}

async fn setup(rules: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    for (name, orgs) in [
        ("alice", vec!["Acme".to_string()]),
        ("gina", vec!["Globex".to_string()]),
        ("bob", vec![]),
    ] {
        store
            .create_user(&Actor::default(), name, Role::Analyst, &orgs, "hash")
            .await
            .unwrap();
    }
    let service = Service::new(store.clone(), SlaPolicy::default());
    let admin = Caller::local("root");
    service.import_rules(&admin, rules, true).await.unwrap();
    Setup {
        service,
        store,
        admin,
        _dir: dir,
    }
}

impl Setup {
    async fn create(&self, name: &str, org: &str) -> i64 {
        self.service
            .create(
                &self.admin,
                ManualIncident {
                    name: name.into(),
                    severity: Severity::Medium,
                    organization: Some(org.into()),
                    ..ManualIncident::default()
                },
            )
            .await
            .unwrap()
            .id
    }

    /// Runs the rules until no event is left; how many events there were.
    async fn settle(&self) -> usize {
        let mut handled = 0;
        loop {
            match self.service.run_rules(100).await.unwrap() {
                0 => return handled,
                n => handled += n,
            }
            assert!(handled < 1_000, "events without end");
        }
    }

    /// What rules wrote in the war room: (author, kind, body).
    async fn by_rules(&self, id: i64) -> Vec<(String, String, Value)> {
        self.store
            .entries(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.author.starts_with("rule:"))
            .map(|e| (e.author, e.kind, e.body))
            .collect()
    }

    async fn change(&self, id: i64, change: Change) {
        self.service
            .change(&self.admin, id, None, &change)
            .await
            .unwrap();
    }
}

fn note_rule(on: &str, extra: &str) -> String {
    format!(
        "[[rules]]\nname = \"r\"\non = [\"{on}\"]\n{extra}\nactions = [{{ action = \"note\", text = \"on ${{trigger}}\" }}]\n"
    )
}

/// One case per trigger: the rule notes the incident when, and only when, its trigger fires.
#[tokio::test]
async fn each_trigger_fires_its_rules() {
    let severity = || {
        Change::Update(Edit {
            severity: Some(Severity::High),
            ..Edit::default()
        })
    };
    let owner = || {
        Change::Update(Edit {
            owner: Some(Some("alice".into())),
            ..Edit::default()
        })
    };
    let close = || Change::Close {
        reason: CloseReason::Resolved,
        notes: None,
    };
    // (trigger, extra keys, what happens after the incident is made, notes expected)
    type Step = fn(Change, Change, Change) -> Vec<Change>;
    let cases: Vec<(&str, &str, Step, usize)> = vec![
        ("created", "", |_, _, _| vec![], 1),
        ("changed", "", |s, _, _| vec![s], 1),
        ("changed", "changed = [\"owner\"]", |s, _, _| vec![s], 0),
        ("changed", "changed = [\"owner\"]", |_, o, _| vec![o], 1),
        ("closed", "", |s, _, c| vec![s, c], 1),
        ("reopened", "", |_, _, c| vec![c, Change::Reopen], 1),
    ];
    for (trigger, extra, steps, notes) in cases {
        let s = setup(&note_rule(trigger, extra)).await;
        let id = s.create("x", "Acme").await;
        for change in steps(severity(), owner(), close()) {
            s.change(id, change).await;
        }
        s.settle().await;
        let wrote = s.by_rules(id).await;
        assert_eq!(wrote.len(), notes, "{trigger} {extra}: {wrote:?}");
        if notes == 1 {
            assert_eq!(wrote[0].2["text"], format!("on {trigger}"));
        }
    }
    // A note fires `note`; the rule's own note fires it again, one deeper, until the rule's
    // hourly limit (2 here) holds it back, with an entry saying so.
    let s = setup(&note_rule("note", "max_per_hour = 2")).await;
    let id = s.create("x", "Acme").await;
    s.service.note(&s.admin, id, "hello", false).await.unwrap();
    s.settle().await;
    let wrote: Vec<(String, Value)> = s
        .by_rules(id)
        .await
        .into_iter()
        .map(|(_, k, b)| (k, b["text"].clone()))
        .collect();
    assert_eq!(
        wrote,
        [
            ("note".to_string(), json!("on note")),
            ("note".to_string(), json!("on note")),
            (
                "rule".to_string(),
                json!(
                    "rule r did not run: it ran 2 times in the last hour, its limit (max_per_hour)"
                )
            ),
        ]
    );
    // A change from the provider fires `remote`.
    let s = setup(&note_rule("remote", "")).await;
    let id = s.create("x", "Acme").await;
    s.store
        .remote_update(
            id,
            "",
            None,
            &json!({}),
            &[],
            Some(&close()),
            None,
            &SlaPolicy::default(),
        )
        .await
        .unwrap();
    s.settle().await;
    assert_eq!(s.by_rules(id).await.len(), 1);
}

/// One case per action, each checked on the incident it changed.
#[tokio::test]
async fn each_action_does_what_it_says() {
    let rules = r#"
[[rules]]
name = "all"
on = ["created"]
when = 'name:"do it"'
actions = [
  { action = "assign", to = "alice" },
  { action = "severity", to = "critical" },
  { action = "status", to = "active" },
  { action = "type", to = "Phishing" },
  { action = "label", name = "triage", value = "${rule.name} on ${incident.organization}" },
  { action = "note", text = "noted ${incident.name}" },
  { action = "close", reason = "False Positive", notes = "closed by ${rule.name}" },
  { action = "stop" },
]

[[rules]]
name = "after-stop"
on = ["created"]
actions = [{ action = "note", text = "never" }]
"#;
    let s = setup(rules).await;
    let id = s.create("do it now", "Acme").await;
    s.settle().await;
    let i = s.store.incident(id).await.unwrap().unwrap();
    assert_eq!(i.owner.as_deref(), Some("alice"));
    assert_eq!(i.severity, Severity::Critical);
    assert_eq!(i.kind, "Phishing");
    assert_eq!(i.status, Status::Closed);
    assert_eq!(i.close_reason, Some(CloseReason::FalsePositive));
    assert_eq!(i.close_notes.as_deref(), Some("closed by all"));
    assert!(
        i.labels
            .iter()
            .any(|l| l.kind == "triage" && l.value == "all on Acme")
    );
    let wrote = s.by_rules(id).await;
    assert!(wrote.iter().all(|(a, _, _)| a == "rule:all"), "{wrote:?}");
    assert!(
        wrote
            .iter()
            .any(|(_, k, b)| k == "note" && b["text"] == "noted do it now")
    );
    // Handling the same events again does nothing more.
    let before = s.store.entries(id).await.unwrap().len();
    s.settle().await;
    assert_eq!(s.store.entries(id).await.unwrap().len(), before);

    // Round robin and least loaded pick among those who may see the incident.
    let rules = r#"
[[rules]]
name = "spread"
on = ["created"]
actions = [{ action = "assign", to = ["bob", "alice"], pick = "least-loaded" }]
"#;
    let s = setup(rules).await;
    let mut owners = Vec::new();
    for n in 0..4 {
        let id = s.create(&format!("i{n}"), "Acme").await;
        s.settle().await;
        owners.push(s.store.incident(id).await.unwrap().unwrap().owner.unwrap());
    }
    owners.sort();
    assert_eq!(owners, ["alice", "alice", "bob", "bob"]);

    // Duplicates: the later one is closed and linked to the first.
    let rules = r#"
[[rules]]
name = "dups"
on = ["created"]
actions = [{ action = "link-duplicates", key = ["name", "organization"], within = "1h" }]
"#;
    let s = setup(rules).await;
    let first = s.create("Same alert", "Acme").await;
    let other_org = s.create("Same alert", "Globex").await;
    let second = s.create("Same alert", "Acme").await;
    s.settle().await;
    let closed = s.store.incident(second).await.unwrap().unwrap();
    assert_eq!(closed.close_reason, Some(CloseReason::Duplicate));
    assert_eq!(
        closed.close_notes.as_deref(),
        Some(format!("duplicate of incident {first}").as_str())
    );
    for open in [first, other_org] {
        assert_ne!(
            s.store.incident(open).await.unwrap().unwrap().status,
            Status::Closed
        );
    }
    assert!(s.by_rules(first).await.iter().any(|(_, _, b)| {
        b["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("incident {second} was closed as a duplicate")))
    }));

    // Keyed on a shared indicator: differently named incidents of one scanner are duplicates;
    // one that shares only an address judged benign is not.
    let rules = r#"
[[rules]]
name = "same-scanner"
on = ["created"]
actions = [{ action = "link-duplicates", key = ["indicator"], within = "1h" }]
"#;
    let s = setup(rules).await;
    let made = async |name: &str, details: &str| {
        s.service
            .create(
                &s.admin,
                ManualIncident {
                    name: name.into(),
                    severity: Severity::Medium,
                    organization: Some("Acme".into()),
                    details: details.into(),
                    ..ManualIncident::default()
                },
            )
            .await
            .unwrap()
            .id
    };
    let first = made("Port scan", "from 203.0.113.7").await;
    let other = made("Unrelated", "from 198.51.100.1").await;
    s.settle().await;
    s.service
        .set_verdict(&s.admin, Some("ip"), "198.51.100.1", "benign")
        .await
        .unwrap();
    let again = made("SSH brute force", "again 203.0.113.7").await;
    let harmless = made("Login", "from 198.51.100.1").await;
    s.settle().await;
    let closed = s.store.incident(again).await.unwrap().unwrap();
    assert_eq!(
        closed.close_notes.as_deref(),
        Some(format!("duplicate of incident {first}").as_str())
    );
    for open in [first, other, harmless] {
        assert_ne!(
            s.store.incident(open).await.unwrap().unwrap().status,
            Status::Closed,
            "{open}"
        );
    }
}

/// Regression guard for loops: two rules that change each other's field stop at depth 3,
/// with an entry saying so.
#[tokio::test]
async fn rules_that_feed_each_other_stop_at_depth_three() {
    let rules = r#"
[[rules]]
name = "up"
on = ["created", "changed"]
when = "severity:medium"
actions = [{ action = "severity", to = "high" }]

[[rules]]
name = "down"
on = ["changed"]
when = "severity:high"
actions = [{ action = "severity", to = "medium" }]
"#;
    let s = setup(rules).await;
    let id = s.create("ping-pong", "Acme").await;
    s.settle().await;
    let wrote = s.by_rules(id).await;
    // up (on the creation, depth 0), down (depth 1), then both on the depth-2 change, as each
    // rule sees the incident as it is when its turn comes; the changes they make are depth 3,
    // and nothing answers them.
    let changes = wrote.iter().filter(|(_, k, _)| k == "change").count();
    assert_eq!(changes, 4, "{wrote:#?}");
    assert!(wrote.iter().any(|(_, k, b)| {
        k == "rule"
            && b["text"]
                .as_str()
                .is_some_and(|t| t.contains("chains stop there"))
    }));
}

/// The breaker disables a rule whose last 10 actions failed; an assignee who cannot see the
/// incident's organization is refused at run time, with an entry.
#[tokio::test]
async fn a_failing_rule_is_refused_then_disabled() {
    let rules = r#"
[[rules]]
name = "wrong-person"
on = ["created"]
actions = [{ action = "assign", to = "gina" }]
"#;
    let s = setup(rules).await;
    let first = s.create("a", "Acme").await;
    s.settle().await;
    let wrote = s.by_rules(first).await;
    assert_eq!(wrote.len(), 1, "{wrote:?}");
    assert_eq!(
        wrote[0].2["text"],
        "rule wrong-person: assign failed: user `gina` cannot see organization `Acme`"
    );
    for n in 0..10 {
        s.create(&format!("b{n}"), "Acme").await;
    }
    s.settle().await;
    let (stored, _) = s.service.rule(&s.admin, "wrong-person").await.unwrap();
    assert!(!stored.enabled);
    assert_eq!(
        stored.disabled_reason.as_deref(),
        Some("its last 10 actions failed")
    );
    // Disabled, it no longer runs (and no events are queued while no rule is enabled).
    let late = s.create("late", "Acme").await;
    s.settle().await;
    assert!(s.by_rules(late).await.is_empty());
}

/// A dry run records what the rule would do and does nothing.
#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let rules = r#"
[[rules]]
name = "try"
on = ["created"]
mode = "dry-run"
actions = [{ action = "assign", to = "alice" }, { action = "note", text = "hi ${incident.name}" }]
"#;
    let s = setup(rules).await;
    let id = s.create("x", "Acme").await;
    s.settle().await;
    let i = s.store.incident(id).await.unwrap().unwrap();
    assert_eq!(i.owner, None);
    let wrote = s.by_rules(id).await;
    assert_eq!(wrote.len(), 1, "{wrote:?}");
    assert_eq!(
        wrote[0].2["text"],
        "rule try (dry run) would: assign to alice; add a note: hi x"
    );
}

/// `sla-at-risk` and `sla-breached` fire once each, when an open incident is found in that
/// state (here with an SLA of two seconds).
#[tokio::test]
async fn sla_triggers_fire_once_per_incident() {
    let rules = format!(
        "{}{}",
        note_rule("sla-at-risk", "").replace("name = \"r\"", "name = \"risk\""),
        note_rule("sla-breached", "").replace("name = \"r\"", "name = \"late\"")
    );
    let s = setup(&rules).await;
    let two = std::time::Duration::from_secs(2);
    let service = Service::new(
        s.store.clone(),
        SlaPolicy {
            from: Default::default(),
            critical: two,
            high: two,
            medium: two,
            low: two,
            informational: two,
        },
    );
    let id = service
        .create(
            &s.admin,
            ManualIncident {
                name: "x".into(),
                severity: Severity::Critical,
                organization: Some("Acme".into()),
                ..ManualIncident::default()
            },
        )
        .await
        .unwrap()
        .id;
    let texts = || async {
        s.by_rules(id)
            .await
            .into_iter()
            .map(|(_, _, b)| b["text"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(service.fire_sla_triggers().await.unwrap(), 0, "on time");
    tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
    assert_eq!(service.fire_sla_triggers().await.unwrap(), 1);
    s.settle().await;
    assert_eq!(texts().await, ["on sla-at-risk"]);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(service.fire_sla_triggers().await.unwrap(), 1);
    assert_eq!(service.fire_sla_triggers().await.unwrap(), 0, "once each");
    s.settle().await;
    assert_eq!(texts().await, ["on sla-at-risk", "on sla-breached"]);
}

/// A `schedule` rule runs over the incidents its condition matches when it is due, and not
/// again before `every` has passed.
#[tokio::test]
async fn a_schedule_rule_runs_over_what_it_matches_when_due() {
    let s = setup(&note_rule(
        "schedule",
        "every = \"1h\"\nwhen = 'name:stale -status:closed created:<-1s'",
    ))
    .await;
    let stale = s.create("stale alert", "Acme").await;
    let fresh = s.create("new alert", "Acme").await;
    s.settle().await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(s.service.fire_schedules().await.unwrap(), 1);
    assert_eq!(
        s.service.fire_schedules().await.unwrap(),
        0,
        "not due again"
    );
    s.settle().await;
    let wrote: Vec<Value> = s
        .by_rules(stale)
        .await
        .into_iter()
        .map(|(_, _, b)| b["text"].clone())
        .collect();
    assert_eq!(wrote, [json!("on schedule")]);
    assert!(s.by_rules(fresh).await.is_empty());
}

/// The worker writes a batch of store-only actions together; a later rule of the same event
/// still sees the incident as an earlier rule left it, and a rule of a later event in the
/// batch sees it too.
#[tokio::test]
async fn a_rule_sees_what_an_earlier_rule_of_the_batch_did() {
    let s = setup(
        r#"
[[rules]]
name = "raise"
on = ["created"]
when = 'name:"Port scan"'
actions = [{ action = "severity", to = "critical" }, { action = "assign", to = "alice" }]

[[rules]]
name = "see-critical"
on = ["created"]
when = 'severity:critical owner:alice'
actions = [{ action = "note", text = "now ${incident.severity} for ${incident.owner}" }]
"#,
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(s.create(&format!("Port scan {n}"), "Acme").await);
    }
    let other = s.create("Phishing", "Acme").await;
    // All 31 `created` events (and nothing else yet) in one batch.
    assert_eq!(s.service.run_rules(100).await.unwrap(), 31);
    for id in ids {
        let i = s.store.incident(id).await.unwrap().unwrap();
        assert_eq!(i.severity, Severity::Critical);
        assert_eq!(i.owner.as_deref(), Some("alice"));
        let notes: Vec<_> = s
            .by_rules(id)
            .await
            .into_iter()
            .filter(|(author, kind, _)| author == "rule:see-critical" && kind == "note")
            .map(|(_, _, body)| body["text"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(notes, ["now 4 for alice"], "incident {id}");
    }
    assert!(s.by_rules(other).await.is_empty());
    // No rule listens to the changes the batch made, so they queued nothing.
    assert_eq!(s.settle().await, 0);
}

/// The worker reads in full only the incidents the database says a rule may match: that set
/// must hold every incident the rules' own matcher matches (for every kind of term, with
/// case, non-ASCII text and groups), and should leave out the rest where it can judge.
#[tokio::test]
async fn the_database_never_leaves_out_an_incident_a_rule_matches() {
    let s = setup("").await;
    let mut ids = Vec::new();
    for (name, org) in [
        ("Port scan from host", "Acme"),
        ("PORT SCAN", "acme"),
        ("Phishing", "Globex"),
        ("Überwachung", "Müller GmbH"),
        ("überwachung", "MÜLLER GMBH"),
        ("Malware", "Initech"),
    ] {
        ids.push(s.create(name, org).await);
    }
    s.change(
        ids[2],
        Change::Update(Edit {
            owner: Some(Some("gina".into())),
            severity: Some(Severity::Critical),
            ..Edit::default()
        }),
    )
    .await;
    let incidents = s.store.incidents_by_id(&ids).await.unwrap();
    for when in [
        "organization:acme",
        "organization:\"Müller GmbH\"",
        "name:überwachung",
        "\"port scan\"",
        "severity:critical owner:gina",
        "-owner:gina -organization:acme",
        "organization:Acme OR organization:Initech",
        "-(organization:Acme OR name:malware)",
        "severity:critical (organization:acme OR (organization:globex owner:gina))",
        "organization:Acme OR -owner:gina",
        "NOT (organization:acme \"port scan\")",
        "-(owner:gina OR (organization:initech -name:malware))",
        "(owner:gina OR (status:pending -id:1)) -id:2",
        "created:<-15m",
        "created:>-15m status:pending",
        "type:unclassified",
        "id:3",
    ] {
        let conditions = watchfloor_core::query::parse(when).unwrap();
        let mut expected: Vec<i64> = incidents
            .iter()
            .filter(|i| watchfloor_rules::meets(&conditions, i))
            .map(|i| i.id)
            .collect();
        expected.sort();
        let mut may = s
            .store
            .may_meet(&ids, std::slice::from_ref(&conditions))
            .await
            .unwrap();
        may.sort();
        assert!(
            expected.iter().all(|id| may.contains(id)),
            "`{when}`: the rules match {expected:?}, the database offered {may:?}"
        );
        if [
            "organization:acme",
            "severity:critical owner:gina",
            "id:3",
            "(owner:gina OR (status:pending -id:1)) -id:2",
        ]
        .contains(&when)
        {
            assert_eq!(may, expected, "`{when}` is judged alike");
        }
    }
    // With no condition at all nothing is read; with an empty one, everything.
    assert!(s.store.may_meet(&ids, &[]).await.unwrap().is_empty());
    assert_eq!(
        s.store.may_meet(&ids, &[vec![]]).await.unwrap().len(),
        ids.len()
    );
}

/// A rule's condition asks an indicator's verdict: an incident holding an address marked
/// malicious in its organization matches; one made before the mark, or of another
/// organization, does not.
#[tokio::test]
async fn a_rule_matches_an_indicators_verdict() {
    let rules = r#"
[[rules]]
name = "known-bad"
on = ["created"]
when = 'indicator.verdict:malicious'
actions = [{ action = "note", text = "holds a known-bad indicator" }]
"#;
    let s = setup(rules).await;
    let made = async |org: &str, details: &str| {
        s.service
            .create(
                &s.admin,
                ManualIncident {
                    name: "Beacon".into(),
                    severity: Severity::Medium,
                    organization: Some(org.into()),
                    details: details.into(),
                    ..ManualIncident::default()
                },
            )
            .await
            .unwrap()
            .id
    };
    let before = made("Acme", "to 203.0.113.7").await;
    s.settle().await;
    let acme = Caller {
        name: "ann".into(),
        role: Role::Analyst,
        scope: Scope::Orgs(vec!["Acme".into()]),
        address: None,
    };
    s.service
        .set_verdict(&acme, Some("ip"), "203.0.113.7", "malicious")
        .await
        .unwrap();
    let after = made("Acme", "again 203.0.113.7").await;
    let elsewhere = made("Globex", "also 203.0.113.7").await;
    s.settle().await;
    let noted = |wrote: Vec<(String, String, serde_json::Value)>| {
        wrote.iter().any(|(_, kind, _)| kind == "note")
    };
    assert!(
        noted(s.by_rules(after).await),
        "the incident made after the mark"
    );
    assert!(!noted(s.by_rules(before).await), "made before it");
    assert!(
        !noted(s.by_rules(elsewhere).await),
        "Acme's verdict is Acme's"
    );
    let plan = s
        .service
        .test_rule(&s.admin, "known-bad", after)
        .await
        .unwrap();
    assert!(plan.matched);
}
