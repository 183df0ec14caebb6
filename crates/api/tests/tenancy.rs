//! Provider commands for analysts of one organization, through every front end that runs them
//! in an incident (`/api/v1`, XSOAR's `/entry/execute/sync` and the UI console), against the
//! three providers' simulators: what the organization rule allows, fills, narrows and refuses,
//! and that a refused command sends the provider nothing.

mod common;

use std::sync::Arc;

use serde_json::{Value, json};
use watchfloor_api::AppState;
use watchfloor_core::{NewIncident, Severity, SlaPolicy};
use watchfloor_simulators::{
    CovalenceManagedSecuritySimulator, CovalenceSecurityProvidersSimulator, Running,
    SymantecMssSimulator,
};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{FetchTarget, IncidentFilter, Role, SqlStore};

/// Organizations the simulators serve besides the FES portal's; an analyst's output names
/// none but its own.
const MORE_ORGS: [&str; 2] = ["Soylent", "Org 00"];

struct World {
    url: String,
    store: Arc<SqlStore>,
    runner: Arc<watchfloor_integrations::Runner>,
    http: reqwest::Client,
    admin: String,
    fes: CovalenceManagedSecuritySimulator,
    cov: CovalenceSecurityProvidersSimulator,
    sym: SymantecMssSimulator,
    /// UI sessions by user: the cookie and the form token.
    sessions: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
    _dir: tempfile::TempDir,
}

/// Who runs the command, and how.
#[derive(Clone, Copy, Debug)]
enum Front {
    Api,
    Xsoar,
    Ui,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// The command ran; its entry as the front end shows it.
    Ran(String),
    /// The organization rule refused it.
    Refused(String),
    /// A mistake in the line (a missing argument, a reference that does not resolve).
    Usage(String),
}

impl World {
    async fn start() -> World {
        let fes = CovalenceManagedSecuritySimulator::start(Default::default())
            .await
            .unwrap();
        let cov = CovalenceSecurityProvidersSimulator::start(Default::default())
            .await
            .unwrap();
        let sym = SymantecMssSimulator::start(Default::default())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        let instances = [&fes as &dyn Running, &cov, &sym]
            .into_iter()
            .flat_map(|s| s.instances());
        // The direct appliance serves one customer (its `organization`).
        for instance in instances {
            instance.write_files(dir.path()).unwrap();
            text.push_str(&instance.toml());
        }
        let config = watchfloor_core::Config::parse(
            &dir.path().join("watchfloor.toml"),
            &text,
            &watchfloor_integrations::definitions(),
            &|_| None,
        )
        .unwrap();
        let runner = Arc::new(
            watchfloor_integrations::Runner::new(watchfloor_integrations::builtin(), &config)
                .unwrap(),
        );
        let store = Arc::new(
            SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
                .await
                .unwrap(),
        );
        let engine = Arc::new(watchfloor_engine::Engine::new(
            runner.clone(),
            store.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(store.clone(), SlaPolicy::default())
            .with_runner(runner.clone())
            .with_engine(engine);
        tokio::spawn(watchfloor_api::serve(
            listener,
            state,
            std::future::pending(),
        ));
        let mut world = World {
            url,
            store,
            runner,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            admin: String::new(),
            fes,
            cov,
            sym,
            sessions: Default::default(),
            _dir: dir,
        };
        world.admin = world.user("root", Role::Admin, &[]).await;
        for name in ["fes", "covalence-direct", "covalence-broker", "symantec"] {
            let (status, body) = world
                .post(
                    &world.admin,
                    &format!("/api/v1/instances/{name}/fetch"),
                    json!({}),
                )
                .await;
            assert_eq!(status, 200, "{name}: {body}");
        }
        // Another customer's Symantec incident, as a second SWS account would bring it in.
        let target = FetchTarget {
            instance: "symantec",
            integration: "symantec-mss",
            incident_type: "Symantec MSS",
            scope: "other-account",
            sla: &SlaPolicy::default(),
            lease: None,
        };
        let other = NewIncident {
            provider: Default::default(),
            external_id: "7781999".into(),
            name: "Incident: 7781999 (Initech's)".into(),
            occurred: chrono::Utc::now(),
            severity: Severity::High,
            organization: Some("Initech".into()),
            details: String::new(),
            labels: vec![],
            raw: json!({}),
        };
        world
            .store
            .commit_fetch(target, &[other], &json!({}))
            .await
            .unwrap();
        world
    }

    /// A user with an API key (password `pw`).
    async fn user(&self, name: &str, role: Role, orgs: &[&str]) -> String {
        common::user_with_key(&self.store, name, role, orgs).await
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Authorization", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, key: &str, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .header("Authorization", key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }

    /// Every provider request the three simulators have answered.
    fn provider_requests(&self) -> usize {
        [&self.fes.faults, &self.cov.faults, &self.sym.faults]
            .iter()
            .map(|f| f.request_counts().values().sum::<usize>())
            .sum()
    }

    /// A fetched incident of `org` on `instance`.
    async fn incident(&self, instance: &str, org: &str) -> watchfloor_core::Incident {
        let filter = IncidentFilter {
            instance: Some(instance.into()),
            organization: Some(org.into()),
            limit: Some(1),
            ..Default::default()
        };
        let found = self.store.incidents(&filter).await.unwrap();
        found
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {org} incident on {instance}"))
    }

    /// The id of the first sensor a listing shows, run as an administrator.
    async fn sensor(&self, line: &str) -> String {
        let entry = self.runner.run(line, None).await.unwrap();
        entry.raw[0]["id"].as_str().unwrap().to_string()
    }

    /// A UI session for `name`: its cookie and the page's form token.
    async fn ui_session(&self, name: &str, id: i64) -> (String, String) {
        if let Some(known) = self.sessions.lock().unwrap().get(name) {
            return known.clone();
        }
        let (cookie, csrf) =
            common::ui_session(&self.http, &self.url, name, &format!("/incidents/{id}")).await;
        self.sessions
            .lock()
            .unwrap()
            .insert(name.to_string(), (cookie.clone(), csrf.clone()));
        (cookie, csrf)
    }

    /// Runs `line` in incident `id` as `user` through `front`.
    async fn run(&self, front: Front, user: &(String, String), id: i64, line: &str) -> Outcome {
        let (name, key) = user;
        match front {
            Front::Api => {
                let (status, body) = self
                    .post(
                        key,
                        &format!("/api/v1/incidents/{id}/run"),
                        json!({"line": line}),
                    )
                    .await;
                match status {
                    200 => Outcome::Ran(body.to_string()),
                    403 => Outcome::Refused(body["error"].as_str().unwrap().to_string()),
                    400 => Outcome::Usage(body["error"].as_str().unwrap().to_string()),
                    other => panic!("{line}: {other} {body}"),
                }
            }
            Front::Xsoar => {
                let (status, body) = self
                    .post(
                        key,
                        "/entry/execute/sync",
                        json!({"investigationId": id.to_string(), "data": line}),
                    )
                    .await;
                if status == 400 {
                    return Outcome::Usage(body.to_string());
                }
                assert_eq!(status, 200, "{line}: {body}");
                let entry = &body[0];
                let contents = entry["contents"].as_str().unwrap().to_string();
                match (entry["type"].as_i64(), contents.contains("refused:")) {
                    (Some(1), _) => Outcome::Ran(contents),
                    (Some(4), true) => Outcome::Refused(contents),
                    (Some(4), false) => Outcome::Usage(contents),
                    other => panic!("{line}: {other:?} {body}"),
                }
            }
            Front::Ui => {
                let (cookie, csrf) = self.ui_session(name, id).await;
                let session = (cookie, csrf);
                let path = format!("/incidents/{id}/run");
                let resp =
                    common::post_form(&self.http, &self.url, &session, &path, &[("line", line)])
                        .await;
                assert_eq!(resp.status(), 303, "{line}");
                let location = resp.headers()["location"].to_str().unwrap().to_string();
                let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
                let query = query.split('#').next().unwrap_or_default();
                let message: String = form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "msg")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                if message == "Command ran." {
                    // What the console shows: the war room's newest entry.
                    let entries = self
                        .get(&self.admin, &format!("/api/v1/incidents/{id}/entries"))
                        .await;
                    let last = entries.as_array().unwrap().last().unwrap().clone();
                    Outcome::Ran(last.to_string())
                } else if message.contains("refused:") {
                    Outcome::Refused(message)
                } else {
                    Outcome::Usage(message)
                }
            }
        }
    }
}

/// What a case expects.
#[derive(Clone, Debug)]
enum Expect {
    /// Runs, and what it shows names no other organization. `Some(text)`: it shows `text`.
    Ran(Option<String>),
    Refused,
    Usage,
}

/// The incidents the cases run in.
#[derive(Clone, Copy, Debug)]
enum In {
    AcmeFes,
    GlobexFes,
    GlobexBroker,
    AcmeDirect,
    GlobexSymantec,
}

struct Ids {
    acme_org: String,
    globex_org: String,
    acme_aro: String,
    globex_aro: String,
    globex_sym: String,
    globex_sensor: String,
    acme_sensor: String,
}

/// Every command of the three integrations, for an analyst of Acme and one of Globex: an
/// argument in scope, one out of scope, and none; instances other than the incident's;
/// `${...}` references.
fn cases(ids: &Ids) -> Vec<(&'static str, In, String, Expect)> {
    use Expect::*;
    use In::*;
    let mut cases: Vec<(&'static str, In, String, Expect)> = Vec::new();
    let mut add = |who, inc, line: String, expect| cases.push((who, inc, line, expect));
    let (ao, go, aa, ga) = (
        &ids.acme_org,
        &ids.globex_org,
        &ids.acme_aro,
        &ids.globex_aro,
    );
    // Covalence Managed Security, in an Acme incident of the FES instance.
    let a = "acme-an";
    add(
        a,
        AcmeFes,
        r#"!cov-mgsec-get-aro query="org=Acme""#.into(),
        Ran(Some("Acme".into())),
    );
    add(
        a,
        AcmeFes,
        r#"!cov-mgsec-get-aro query="org=Globex""#.into(),
        Refused,
    );
    add(
        a,
        AcmeFes,
        r#"!cov-mgsec-get-aro query="resolution=Unresolved""#.into(),
        Ran(None),
    );
    add(
        a,
        AcmeFes,
        r#"!cov-mgsec-get-aro query="status=Open&type=Action""#.into(),
        Ran(None),
    );
    add(
        a,
        AcmeFes,
        format!(r#"!cov-mgsec-get-aro query="organization_id={ao}""#),
        Ran(Some("Acme".into())),
    );
    add(
        a,
        AcmeFes,
        format!(r#"!cov-mgsec-get-aro query="organization_id={go}""#),
        Refused,
    );
    add(
        a,
        AcmeFes,
        format!(r#"!cov-mgsec-get-aro query="id={ga}""#),
        Ran(None),
    );
    add(
        a,
        AcmeFes,
        format!("!cov-mgsec-get-aro query=\"id={ga}\" details=true"),
        Ran(None),
    );
    add(
        a,
        AcmeFes,
        "!cov-mgsec-list-org".into(),
        Ran(Some("Acme".into())),
    );
    add(
        a,
        AcmeFes,
        format!("!cov-mgsec-transition-aro aro_id={aa} resolution=Unresolved"),
        Ran(Some("Acme".into())),
    );
    add(
        a,
        AcmeFes,
        format!("!cov-mgsec-transition-aro aro_id={ga} resolution=Dismissed"),
        Refused,
    );
    add(
        a,
        AcmeFes,
        "!cov-mgsec-transition-aro resolution=Dismissed".into(),
        Usage,
    );
    add(
        a,
        AcmeFes,
        format!("!cov-mgsec-comment-aro aro_id={aa} comment=seen"),
        Ran(None),
    );
    add(
        a,
        AcmeFes,
        format!("!cov-mgsec-comment-aro aro_id={ga} comment=seen"),
        Refused,
    );
    add(
        a,
        AcmeFes,
        "!cov-mgsec-comment-aro comment=seen".into(),
        Usage,
    );
    for cmd in [
        "cov-mgsec-list-escalation-contacts",
        "cov-mgsec-list-key-contacts",
        "cov-mgsec-list-language",
    ] {
        add(a, AcmeFes, format!("!{cmd} org_id={ao}"), Ran(None));
        add(a, AcmeFes, format!("!{cmd} org_id={go}"), Refused);
        add(a, AcmeFes, format!("!{cmd}"), Ran(None));
    }
    add(a, AcmeFes, "!cov-mgsec-broker-ping".into(), Ran(None));
    add(
        a,
        AcmeFes,
        "!cov-mgsec-broker-list-org".into(),
        Ran(Some("Acme".into())),
    );
    let host =
        "!cov-mgsec-broker-endpoint-action-by-host action_type=ISOLATE host_identifier=WS-0192";
    add(
        a,
        AcmeFes,
        format!("{host} org_id={ao}"),
        Ran(Some("WS-0192".into())),
    );
    add(a, AcmeFes, format!("{host} org_id={go}"), Refused);
    add(a, AcmeFes, host.into(), Ran(Some("WS-0192".into())));
    for cmd in [
        "cov-mgsec-broker-endpoint-action-by-aro action_type=ISOLATE",
        "cov-mgsec-broker-cloud-action-by-aro action_type=REVOKE_SESSIONS",
    ] {
        add(a, AcmeFes, format!("!{cmd} aro_id={aa}"), Ran(None));
        add(a, AcmeFes, format!("!{cmd} aro_id={ga}"), Refused);
        add(a, AcmeFes, format!("!{cmd}"), Usage);
    }
    add(a, AcmeFes, "!test-module".into(), Refused);
    // Instances other than the incident's.
    add(
        a,
        AcmeFes,
        "!symantec-mss-get-incident 7781203".into(),
        Refused,
    );
    add(a, AcmeFes, "!symantec-mss-incidents-list".into(), Refused);
    add(
        a,
        AcmeFes,
        "!cov-secpr-list-sensors using=covalence-broker target_org=Acme".into(),
        Refused,
    );
    add(
        a,
        AcmeFes,
        "!cov-mgsec-list-org using=fes".into(),
        Ran(Some("Acme".into())),
    );
    // The direct appliance serves Acme alone (`organization = "Acme"`).
    add(
        a,
        AcmeFes,
        "!cov-secpr-list-sensors using=covalence-direct".into(),
        Ran(None),
    );
    // References to the incident.
    add(
        a,
        AcmeFes,
        "!cov-mgsec-transition-aro aro_id=${incident.dbotMirrorId} resolution=Unresolved".into(),
        Ran(Some("Acme".into())),
    );
    add(
        a,
        AcmeFes,
        r#"!cov-mgsec-get-aro query="org=${incident.organization}""#.into(),
        Ran(Some("Acme".into())),
    );
    add(
        a,
        AcmeFes,
        "!cov-mgsec-list-language org_id=${incident.nope}".into(),
        Usage,
    );
    add(
        a,
        AcmeFes,
        "!cov-mgsec-list-language org_id=${NotInContext.ID}".into(),
        Usage,
    );

    // Covalence for Security Providers, in a Globex incident of the broker and in an Acme
    // incident of the direct appliance.
    let g = "globex-an";
    for (cmd, extra) in [
        ("cov-secpr-list-alerts", ""),
        ("cov-secpr-list-sensors", ""),
        ("cov-secpr-get-sensor", "get-sensor"),
        ("cov-secpr-connections-summary-ip", ""),
        ("cov-secpr-connections-summary-port", " source_ip=10.0.0.1"),
        ("cov-secpr-list-dns-resolutions", ""),
        ("cov-secpr-list-internal-networks", ""),
        (
            "cov-secpr-set-internal-networks",
            " cidr=10.99.0.0/16 notes=Lab",
        ),
        ("cov-secpr-list-endpoint-agents", ""),
        ("cov-secpr-find-endpoint-agents-by-user", " user=jdoe"),
        ("cov-secpr-find-endpoint-agents-by-uuid", " uuid=x"),
        ("cov-secpr-search-endpoint-process", ""),
        (
            "cov-secpr-search-endpoint-installed-software",
            " name=Chrome",
        ),
    ] {
        // A sensor of each appliance.
        let (extra, direct_extra) = match extra {
            "get-sensor" => (
                format!(" sensor_id={}", ids.globex_sensor),
                format!(" sensor_id={}", ids.acme_sensor),
            ),
            other => (other.to_string(), other.to_string()),
        };
        add(
            g,
            GlobexBroker,
            format!("!{cmd}{extra} target_org=Globex"),
            Ran(None),
        );
        add(
            g,
            GlobexBroker,
            format!("!{cmd}{extra} target_org=Initech"),
            Refused,
        );
        add(g, GlobexBroker, format!("!{cmd}{extra}"), Ran(None));
        add(a, AcmeDirect, format!("!{cmd}{direct_extra}"), Ran(None));
        add(
            a,
            AcmeDirect,
            format!("!{cmd}{direct_extra} target_org=Globex"),
            Refused,
        );
    }
    add(
        g,
        GlobexBroker,
        "!cov-secpr-list-organizations".into(),
        Ran(Some("Globex".into())),
    );
    add(g, GlobexBroker, "!test-module".into(), Refused);
    add(
        g,
        GlobexBroker,
        "!cov-secpr-list-alerts using=covalence-direct".into(),
        Refused,
    );

    // Symantec MSS, in a Globex incident.
    let gs = &ids.globex_sym;
    add(
        g,
        GlobexSymantec,
        "!symantec-mss-incidents-list time=\"2000-01-01T00:00:00Z\"".into(),
        Ran(Some("Globex".into())),
    );
    add(
        g,
        GlobexSymantec,
        format!("!symantec-mss-get-incident {gs}"),
        Ran(Some(gs.clone())),
    );
    add(
        g,
        GlobexSymantec,
        "!symantec-mss-get-incident 7781999".into(),
        Refused,
    );
    add(
        g,
        GlobexSymantec,
        "!symantec-mss-get-incident".into(),
        Usage,
    );
    add(
        g,
        GlobexSymantec,
        format!("!symantec-mss-update-incident {gs} reference=T-1"),
        Ran(None),
    );
    add(
        g,
        GlobexSymantec,
        "!symantec-mss-update-incident 7781999 status=Closed".into(),
        Refused,
    );
    add(
        g,
        GlobexSymantec,
        "!symantec-mss-update-incident status=Closed".into(),
        Usage,
    );
    add(
        g,
        GlobexSymantec,
        "!symantec-mss-get-incident number=${incident.dbotMirrorId}".into(),
        Ran(None),
    );
    add(g, GlobexSymantec, "!test-module".into(), Refused);
    // A Globex analyst's FES incident narrows to Globex.
    add(
        g,
        GlobexFes,
        "!cov-mgsec-list-org".into(),
        Ran(Some("Globex".into())),
    );
    add(
        g,
        GlobexFes,
        format!("!cov-mgsec-transition-aro aro_id={aa} resolution=Dismissed"),
        Refused,
    );
    cases
}

/// The organizations an output must not name, for an analyst of `own`.
fn others(own: &str) -> Vec<&'static str> {
    watchfloor_simulators::covalence_managed_security::ORG_NAMES
        .iter()
        .chain(&MORE_ORGS)
        .copied()
        .filter(|o| *o != own)
        .collect()
}

#[tokio::test]
async fn an_analyst_of_one_organization_reaches_only_its_own_through_every_front_end() {
    let world = World::start().await;
    let acme = (
        "acme-an".to_string(),
        world.user("acme-an", Role::Analyst, &["Acme"]).await,
    );
    let globex = (
        "globex-an".to_string(),
        world.user("globex-an", Role::Analyst, &["Globex"]).await,
    );
    let acme_fes = world.incident("fes", "Acme").await;
    let globex_fes = world.incident("fes", "Globex").await;
    let ids = Ids {
        acme_org: acme_fes.raw["organization"]["ID"].as_str().unwrap().into(),
        globex_org: globex_fes.raw["organization"]["ID"]
            .as_str()
            .unwrap()
            .into(),
        acme_aro: acme_fes.external_id.clone(),
        globex_aro: globex_fes.external_id.clone(),
        globex_sym: world.incident("symantec", "Globex").await.external_id,
        globex_sensor: world
            .sensor("!cov-secpr-list-sensors target_org=Globex details=true using=covalence-broker")
            .await,
        acme_sensor: world
            .sensor("!cov-secpr-list-sensors details=true using=covalence-direct")
            .await,
    };
    let incident_of = async |inc: In| match inc {
        In::AcmeFes => acme_fes.id,
        In::GlobexFes => globex_fes.id,
        In::GlobexBroker => world.incident("covalence-broker", "Globex").await.id,
        In::AcmeDirect => world.incident("covalence-direct", "Acme").await.id,
        In::GlobexSymantec => world.incident("symantec", "Globex").await.id,
    };
    let mut failures = Vec::new();
    let mut ran = 0;
    for front in [Front::Api, Front::Xsoar, Front::Ui] {
        for (who, inc, line, expect) in cases(&ids) {
            let (user, own) = match who {
                "acme-an" => (&acme, "Acme"),
                _ => (&globex, "Globex"),
            };
            let id = incident_of(inc).await;
            let before = world.provider_requests();
            let outcome = world.run(front, user, id, &line).await;
            let sent = world.provider_requests() - before;
            let case = format!("{front:?} {who} {inc:?} {line}");
            match (expect, &outcome) {
                (Expect::Ran(shows), Outcome::Ran(text)) => {
                    ran += 1;
                    let lower = text.to_lowercase();
                    let named: Vec<_> = others(own)
                        .into_iter()
                        .filter(|o| lower.contains(&o.to_lowercase()))
                        .collect();
                    if !named.is_empty() {
                        failures.push(format!("{case}: names {named:?}: {text}"));
                    }
                    if let Some(shown) = &shows
                        && !text.contains(shown.as_str())
                    {
                        failures.push(format!("{case}: does not show {shown}: {text}"));
                    }
                    if sent == 0 {
                        failures.push(format!("{case}: ran without asking the provider"));
                    }
                }
                (Expect::Refused, Outcome::Refused(message))
                | (Expect::Usage, Outcome::Usage(message)) => {
                    if sent != 0 {
                        failures.push(format!("{case}: refused, yet {sent} provider requests"));
                    }
                    let lower = message.to_lowercase();
                    if others(own)
                        .iter()
                        .any(|o| lower.contains(&o.to_lowercase()))
                        && !line.contains("Globex")
                        && !line.contains("Initech")
                    {
                        failures.push(format!(
                            "{case}: the refusal names another organization: {message}"
                        ));
                    }
                }
                (expect, outcome) => {
                    failures.push(format!("{case}: expected {expect:?}, got {outcome:?}"))
                }
            }
        }
        // Whatever ran, no incident's context names another organization.
        for (inc, own) in [
            (In::AcmeFes, "Acme"),
            (In::GlobexBroker, "Globex"),
            (In::AcmeDirect, "Acme"),
            (In::GlobexSymantec, "Globex"),
        ] {
            let id = incident_of(inc).await;
            let context = world
                .get(&world.admin, &format!("/api/v1/incidents/{id}/context"))
                .await
                .to_string()
                .to_lowercase();
            for other in others(own) {
                if context.contains(&other.to_lowercase()) {
                    failures.push(format!("{front:?}: the context of {inc:?} names {other}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran > 100, "the allowed cases ran: {ran}");
}

/// Results of other organizations that the provider returns anyway are withheld, and the
/// entry says how many, naming none.
#[tokio::test]
async fn results_are_narrowed_and_the_entry_says_how_many_were_withheld() {
    let world = World::start().await;
    let acme = (
        "acme-an".to_string(),
        world.user("acme-an", Role::Analyst, &["Acme"]).await,
    );
    let id = world.incident("fes", "Acme").await.id;
    let Outcome::Ran(text) = world
        .run(Front::Api, &acme, id, "!cov-mgsec-list-org")
        .await
    else {
        panic!("list-org runs, narrowed");
    };
    let entry: Value = serde_json::from_str(&text).unwrap();
    let all = world.runner.run("!cov-mgsec-list-org", None).await.unwrap();
    let withheld = all.raw.as_array().unwrap().len() - 1;
    assert!(
        entry["HumanReadable"]
            .as_str()
            .unwrap()
            .contains(&format!("{withheld} records withheld")),
        "{entry}"
    );
    assert_eq!(entry["Contents"].as_array().unwrap().len(), 1, "{entry}");
    assert_eq!(entry["Contents"][0]["name"], "Acme");
}

/// An administrator, and an analyst who sees every organization, run commands in incidents
/// as before: the same entry as the command on its own.
#[tokio::test]
async fn users_who_see_every_organization_run_commands_as_written() {
    let world = World::start().await;
    let all = (
        "all-an".to_string(),
        world.user("all-an", Role::Analyst, &[]).await,
    );
    let admin = ("root".to_string(), world.admin.clone());
    let acme = world.incident("fes", "Acme").await;
    let globex = world.incident("fes", "Globex").await;
    let globex_id = globex.raw["organization"]["ID"].as_str().unwrap();
    for line in [
        "!cov-mgsec-list-org".to_string(),
        r#"!cov-mgsec-get-aro query="org=Globex""#.to_string(),
        format!("!cov-mgsec-list-key-contacts org_id={globex_id}"),
        "!symantec-mss-incidents-list time=\"2000-01-01T00:00:00Z\"".to_string(),
    ] {
        let direct = world.runner.run(&line, None).await.unwrap().readable;
        for user in [&all, &admin] {
            let Outcome::Ran(text) = world.run(Front::Api, user, acme.id, &line).await else {
                panic!("{} runs {line}", user.0);
            };
            let entry: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(entry["HumanReadable"].as_str().unwrap(), direct, "{line}");
        }
    }
}

/// A command aimed at another instance in the API's `instance` field is refused, as `using=`.
#[tokio::test]
async fn another_instance_named_in_the_request_is_refused() {
    let world = World::start().await;
    let acme = world.user("acme-an", Role::Analyst, &["Acme"]).await;
    let id = world.incident("fes", "Acme").await.id;
    let before = world.provider_requests();
    let (status, body) = world
        .post(
            &acme,
            &format!("/api/v1/incidents/{id}/run"),
            json!({"line": "!symantec-mss-get-incident 7781203", "instance": "symantec"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert_eq!(world.provider_requests(), before);
    let entries = world
        .get(&world.admin, &format!("/api/v1/incidents/{id}/entries"))
        .await;
    let last = entries.as_array().unwrap().last().unwrap();
    assert_eq!(
        last["body"]["failed"], true,
        "the refusal is in the war room: {last}"
    );
}
