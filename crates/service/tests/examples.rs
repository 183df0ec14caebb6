//! The example rules shipped in `docs/rules/` do what their comments say.

use std::sync::Arc;

use tokio::sync::watch;
use watchfloor_core::{Change, Config, Edit, Severity, SlaPolicy, Status};
use watchfloor_integrations::Runner;
use watchfloor_service::{Caller, Service};
use watchfloor_simulators::{
    CovalenceSecurityProvidersOptions, CovalenceSecurityProvidersSimulator,
};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{Actor, IncidentFilter, ManualIncident, Role, SqlStore};

const ASSIGN: &str = include_str!("../../../docs/rules/assign-per-organization.toml");
const ESCALATE: &str = include_str!("../../../docs/rules/escalate-critical-to-oncall.toml");
const ENRICH: &str = include_str!("../../../docs/rules/enrich-covalence-source-ip.toml");
const DUPLICATES: &str = include_str!("../../../docs/rules/link-duplicates.toml");
const STALE: &str = include_str!("../../../docs/rules/close-stale-observations.toml");

async fn store(dir: &tempfile::TempDir) -> Arc<SqlStore> {
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    for (name, orgs) in [
        ("acme-lead", vec!["Acme".to_string()]),
        ("globex-lead", vec!["Globex".to_string()]),
        ("oncall-1", vec![]),
        ("oncall-2", vec![]),
    ] {
        store
            .create_user(&Actor::default(), name, Role::Analyst, &orgs, "hash")
            .await
            .unwrap();
    }
    store
}

async fn settle(service: &Service) {
    while service.run_rules(100).await.unwrap() > 0 {}
}

async fn make(service: &Service, name: &str, org: &str, severity: Severity) -> i64 {
    service
        .create(
            &Caller::local("root"),
            ManualIncident {
                name: name.into(),
                severity,
                organization: Some(org.into()),
                ..ManualIncident::default()
            },
        )
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn each_organization_goes_to_its_lead() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let service = Service::new(store.clone(), SlaPolicy::default());
    service
        .import_rules(&Caller::local("root"), ASSIGN, true)
        .await
        .unwrap();
    let acme = make(&service, "a", "Acme", Severity::Low).await;
    let globex = make(&service, "g", "Globex", Severity::Low).await;
    let other = make(&service, "i", "Initech", Severity::Low).await;
    settle(&service).await;
    let owner = |id| {
        let store = store.clone();
        async move { store.incident(id).await.unwrap().unwrap().owner }
    };
    assert_eq!(owner(acme).await.as_deref(), Some("acme-lead"));
    assert_eq!(owner(globex).await.as_deref(), Some("globex-lead"));
    assert_eq!(owner(other).await, None);
}

#[tokio::test]
async fn critical_incidents_go_to_the_least_loaded_oncall() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let service = Service::new(store.clone(), SlaPolicy::default());
    service
        .import_rules(&Caller::local("root"), ESCALATE, true)
        .await
        .unwrap();
    let first = make(&service, "ransomware", "Acme", Severity::Critical).await;
    let calm = make(&service, "scan", "Acme", Severity::Low).await;
    settle(&service).await;
    let i = store.incident(first).await.unwrap().unwrap();
    assert_eq!(
        (i.owner.as_deref(), i.status),
        (Some("oncall-1"), Status::Active)
    );
    assert_eq!(store.incident(calm).await.unwrap().unwrap().owner, None);
    // Raised to critical later: escalated to the other on-call, who has fewer open.
    service
        .change(
            &Caller::local("root"),
            calm,
            None,
            &Change::Update(Edit {
                severity: Some(Severity::Critical),
                ..Edit::default()
            }),
        )
        .await
        .unwrap();
    settle(&service).await;
    let i = store.incident(calm).await.unwrap().unwrap();
    assert_eq!(i.owner.as_deref(), Some("oncall-2"));
    let notes: Vec<String> = store
        .entries(calm)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "note")
        .map(|e| e.body["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(notes, ["Escalated to on-call (changed): scan"]);
}

#[tokio::test]
async fn a_later_same_titled_incident_is_closed_as_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let service = Service::new(store.clone(), SlaPolicy::default());
    service
        .import_rules(&Caller::local("root"), DUPLICATES, true)
        .await
        .unwrap();
    let first = make(&service, "Beacon to 203.0.113.9", "Acme", Severity::High).await;
    let again = make(&service, "Beacon to 203.0.113.9", "Acme", Severity::High).await;
    settle(&service).await;
    let dup = store.incident(again).await.unwrap().unwrap();
    assert_eq!(dup.status, Status::Closed);
    assert_eq!(
        dup.close_notes,
        Some(format!("duplicate of incident {first}"))
    );
    assert_ne!(
        store.incident(first).await.unwrap().unwrap().status,
        Status::Closed
    );
}

#[tokio::test]
async fn informational_observations_are_closed_after_seven_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let service = Service::new(store.clone(), SlaPolicy::default());
    service
        .import_rules(&Caller::local("root"), STALE, true)
        .await
        .unwrap();
    let made = |name: &str, kind: &str, severity: Severity, days_ago: i64| {
        let service = &service;
        let incident = ManualIncident {
            name: name.into(),
            kind: kind.into(),
            severity,
            organization: Some("Acme".into()),
            occurred: Some(chrono::Utc::now() - chrono::TimeDelta::days(days_ago)),
            ..ManualIncident::default()
        };
        async move {
            service
                .create(&Caller::local("root"), incident)
                .await
                .unwrap()
                .id
        }
    };
    let stale = made("old", "Observation", Severity::Informational, 8).await;
    let recent = made("new", "Observation", Severity::Informational, 1).await;
    let serious = made("old but low", "Observation", Severity::Low, 8).await;
    let other = made("old other", "Phishing", Severity::Informational, 8).await;
    assert_eq!(service.fire_schedules().await.unwrap(), 1);
    settle(&service).await;
    let status = |id| {
        let store = store.clone();
        async move { store.incident(id).await.unwrap().unwrap() }
    };
    let closed = status(stale).await;
    assert_eq!(closed.status, Status::Closed);
    assert_eq!(
        closed.close_notes.as_deref(),
        Some("Closed by close-stale-observations: an informational observation older than 7 days.")
    );
    for open in [recent, serious, other] {
        assert_ne!(status(open).await.status, Status::Closed);
    }
}

/// Each fetched Covalence alert with a source IP gets that IP's connection summary, asked of
/// the simulator once, in its context.
#[tokio::test]
async fn a_covalence_alert_is_enriched_with_its_source_ips_connections() {
    let sim =
        CovalenceSecurityProvidersSimulator::start(CovalenceSecurityProvidersOptions::default())
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &sim.ca_pem).unwrap();
    let text = format!(
        "[[instances]]\nname = \"cov\"\nintegration = \"covalence-security-providers\"\nfetch = true\n\
         first_fetch = \"2024-04-01T00:00:00Z\"\n[instances.params]\nhost = \"{}\"\n\
         username = \"{}\"\npassword = \"{}\"\nca_file = \"ca.pem\"\n",
        sim.direct_url, sim.username, sim.password
    );
    let config = Config::parse(
        &dir.path().join("watchfloor.toml"),
        &text,
        &watchfloor_integrations::definitions(),
        &|_| None,
    )
    .unwrap();
    let runner = Arc::new(Runner::new(watchfloor_integrations::builtin(), &config).unwrap());
    let store = store(&dir).await;
    let service = Service::new(store.clone(), SlaPolicy::default()).with_runner(runner.clone());
    service
        .import_rules(&Caller::local("root"), ENRICH, true)
        .await
        .unwrap();
    let engine = watchfloor_engine::Engine::new(runner, store.clone());
    engine
        .cycle(
            "cov",
            watchfloor_engine::Steps::UntilCaughtUp,
            &|_| {},
            &watch::channel(false).1,
        )
        .await
        .unwrap();
    settle(&service).await;
    let incidents = store.incidents(&IncidentFilter::default()).await.unwrap();
    assert!(!incidents.is_empty());
    let mut with_ip = 0;
    for i in &incidents {
        let ip = i.labels.iter().find(|l| l.kind == "Source IP");
        let commands: Vec<_> = store
            .entries(i.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.author == "rule:covalence-source-ip")
            .collect();
        match ip {
            Some(ip) => {
                with_ip += 1;
                assert_eq!(commands.len(), 1, "{}", i.id);
                assert_eq!(commands[0].kind, "command");
                assert!(
                    commands[0].body["command"]
                        .as_str()
                        .unwrap()
                        .contains(&ip.value),
                    "{:?}",
                    commands[0].body
                );
                let context = store.context(i.id).await.unwrap();
                assert!(
                    context["Covalence"]["Connections"].is_array()
                        || context["Covalence"]["Connections"].is_object()
                        || commands[0].body["text"] == "No connections found",
                    "{context}"
                );
            }
            None => assert!(
                commands.iter().all(|e| e.kind == "rule"),
                "no command without a source IP"
            ),
        }
    }
    assert!(with_ip > 0, "the simulator's alerts carry source IPs");
    let asked: usize = sim
        .faults
        .request_counts()
        .iter()
        .filter(|(p, _)| p.contains("onnection"))
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(asked, with_ip, "one summary per alert");
}
