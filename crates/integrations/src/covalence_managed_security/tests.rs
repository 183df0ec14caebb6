//! Tests of Covalence Managed Security against the FES simulator on port 0: every command,
//! state changes, faults, and the error text users see.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use watchfloor_core::{Config, ContextStore, Entry};
use watchfloor_simulators::{
    CovalenceManagedSecurityOptions, CovalenceManagedSecuritySetup,
    CovalenceManagedSecuritySimulator, FaultSpec,
};

use crate::{RunError, Runner};

struct App {
    sim: CovalenceManagedSecuritySimulator,
    runner: Runner,
}

impl App {
    async fn run(&self, line: &str) -> Entry {
        match self.runner.run(line, None).await {
            Ok(entry) => entry,
            Err(e) => panic!("{line} failed: {e}"),
        }
    }

    async fn fail(&self, line: &str) -> String {
        match self.runner.run(line, None).await {
            Ok(entry) => panic!("{line} should fail, got {}", entry.readable),
            Err(e) => e.to_string(),
        }
    }

    /// The ids of all AROs the simulator holds with this resolution, newest first.
    fn aro_ids(&self, resolution: &str) -> Vec<String> {
        self.sim
            .aros()
            .iter()
            .filter(|a| a["resolution"] == resolution)
            .map(|a| a["ID"].as_str().unwrap().to_string())
            .collect()
    }

    fn org_id(&self, index: usize) -> String {
        self.sim.orgs()[index]["ID"].as_str().unwrap().to_string()
    }
}

fn runner_for(params: &str) -> Result<Runner, String> {
    let text = format!(
        "[[instances]]\nname = \"fes\"\nintegration = \"covalence-managed-security\"\n[instances.params]\n{params}"
    );
    let config = Config::parse(
        Path::new("test.toml"),
        &text,
        &[super::definition()],
        &|_| None,
    )
    .map_err(|e| e.to_string())?;
    Runner::new(crate::builtin(), &config).map_err(|e| e.to_string())
}

async fn spawn_with(opts: CovalenceManagedSecurityOptions) -> App {
    let sim = CovalenceManagedSecuritySimulator::start(opts)
        .await
        .expect("simulator starts");
    let runner = runner_for(&format!(
        "portal_url = \"{}\"\nbroker_url = \"{}\"\napi_key = \"{}\"\ntimeout = \"5s\"\n",
        sim.portal_url, sim.broker_url, sim.api_key
    ))
    .unwrap();
    App { sim, runner }
}

async fn spawn() -> App {
    spawn_with(CovalenceManagedSecurityOptions::default()).await
}

fn context(entry: &Entry) -> Value {
    Value::Object(entry.entry_context())
}

/// The seed's documented context examples render to its documented tables, byte for byte.
#[test]
fn golden_tables_match_the_seed_documentation() {
    let def = super::definition();
    let check = |command: &str, outputs: Value, expected: &str| {
        let entry = def.command(command).unwrap().entry(outputs, Value::Null);
        assert_eq!(entry.readable, expected, "{command}");
    };
    check(
        "cov-mgsec-list-org",
        json!([
            {"ID": "9d4297ea-089e-42bd-884d-51744e31a471", "email": "foo@bar.com", "email_aro_details": false, "name": "Acme"},
            {"ID": "e0e04c8b-d50c-4379-bfd6-5e0f2b1037cd", "email": "foo@bar.com", "email_aro_details": false, "name": "Capsule Corp"}
        ]),
        "### Organizations\n\
         |Id|Email|Email Aro Details|Name|\n\
         |---|---|---|---|\n\
         | 9d4297ea-089e-42bd-884d-51744e31a471 | foo@bar.com | false | Acme |\n\
         | e0e04c8b-d50c-4379-bfd6-5e0f2b1037cd | foo@bar.com | false | Capsule Corp |\n",
    );
    check(
        "cov-mgsec-get-aro",
        json!([
            {"organization": {"ID": "9d4297ea-089e-42bd-884d-51744e31a471", "email": "foo@bar.com", "name": "Acme"},
             "resolution": "Unresolved", "severity": "Critical", "status": "Open", "title": "test2", "type": "Action"},
            {"organization": {"ID": "e0e04c8b-d50c-4379-bfd6-5e0f2b1037cd", "email": "foo@bar.com", "name": "Capsule Corp"},
             "resolution": "Unresolved", "severity": "High", "status": "Open", "title": "Vulnerable Software Detected", "type": "Recommendation"}
        ]),
        "### AROs\n\
         |Organization|Resolution|Severity|Status|Title|Type|\n\
         |---|---|---|---|---|---|\n\
         | ID: 9d4297ea-089e-42bd-884d-51744e31a471<br/>email: foo@bar.com<br/>name: Acme | Unresolved | Critical | Open | test2 | Action |\n\
         | ID: e0e04c8b-d50c-4379-bfd6-5e0f2b1037cd<br/>email: foo@bar.com<br/>name: Capsule Corp | Unresolved | High | Open | Vulnerable Software Detected | Recommendation |\n",
    );
}

#[tokio::test]
async fn list_org_lists_every_organization() {
    let app = spawn().await;
    let entry = app.run("!cov-mgsec-list-org").await;
    for org in app.sim.orgs() {
        assert!(
            entry.readable.contains(org["name"].as_str().unwrap()),
            "{}",
            entry.readable
        );
    }
    let orgs = &context(&entry)["FESPortal.Org(val.ID && val.ID == obj.ID)"];
    assert_eq!(orgs.as_array().unwrap().len(), 3);
    assert_eq!(orgs[1]["name"], "Globex");
    assert_eq!(orgs[1]["email_aro_details"], true);
}

#[tokio::test]
async fn get_aro_pages_through_everything_newest_first() {
    // 3 orgs x 400 AROs: the unresolved ones span two pages of 500.
    let app = spawn_with(CovalenceManagedSecurityOptions {
        setup: CovalenceManagedSecuritySetup {
            aros_per_org: 400,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let entry = app
        .run(r#"!cov-mgsec-get-aro query="resolution=Unresolved""#)
        .await;
    let aros = context(&entry)["FESPortal.ARO(val.ID && val.ID == obj.ID)"].clone();
    let got: Vec<&str> = aros
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ID"].as_str().unwrap())
        .collect();
    let expected = app.aro_ids("Unresolved");
    assert!(
        expected.len() > 500,
        "the test needs several pages, has {}",
        expected.len()
    );
    assert_eq!(got, expected);
    let keys: Vec<&String> = aros[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "ID",
            "organization",
            "resolution",
            "severity",
            "status",
            "title",
            "type"
        ]
    );
    assert_eq!(
        entry.raw.as_array().unwrap().len(),
        expected.len(),
        "raw keeps the whole AROs"
    );
    assert!(entry.raw[0]["steps"].is_array());
}

#[tokio::test]
async fn get_aro_filters_by_type_org_and_id_and_honours_details() {
    let app = spawn().await;
    let entry = app
        .run(r#"!cov-mgsec-get-aro query="org=globex&type=Action" details=true"#)
        .await;
    let aros = context(&entry)["FESPortal.ARO(val.ID && val.ID == obj.ID)"].clone();
    let expected: Vec<Value> = app
        .sim
        .aros()
        .into_iter()
        .filter(|a| a["organization"]["name"] == "Globex" && a["type"] == "Action")
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(aros.as_array().unwrap().len(), expected.len());
    assert!(
        aros[0]["steps"].is_array(),
        "details=true keeps every field"
    );
    let one = expected[0]["ID"].as_str().unwrap();
    let entry = app.run(&format!("!cov-mgsec-get-aro query=id={one}")).await;
    assert_eq!(
        context(&entry)["FESPortal.ARO(val.ID && val.ID == obj.ID)"][0]["ID"],
        one
    );
    let none = app
        .run(r#"!cov-mgsec-get-aro query="since=2030-01-01 00:00:00""#)
        .await;
    assert_eq!(none.readable, "No AROs found");
    assert_eq!(none.entry_context().len(), 0);
}

#[tokio::test]
async fn get_aro_rejects_bad_queries_with_the_reason() {
    let app = spawn().await;
    for (query, expected) in [
        (
            "colour=red",
            "instance `fes`: unknown query key `colour`; use id, status, resolution, type, org, organization_id, since, until",
        ),
        (
            "org=nowhere",
            "instance `fes`: unknown organization named `nowhere`; known organizations: Acme, Globex, Initech",
        ),
        (
            "org=e",
            "instance `fes`: organization name `e` matches several organizations (Acme, Globex, Initech); give the full name or organization_id",
        ),
        (
            "resolution=",
            "instance `fes`: query key `resolution` has no value; write `resolution=value`",
        ),
        (
            "since=yesterday",
            "instance `fes`: FES Portal GET /providers/",
        ),
        (
            "resolution=Fixed",
            "Invalid resolution \"Fixed\": expected one of Unresolved, Help Requested, Resolved, Dismissed",
        ),
    ] {
        let err = app
            .fail(&format!("!cov-mgsec-get-aro query=\"{query}\""))
            .await;
        assert!(err.contains(expected), "{query}: {err}");
    }
}

/// Also pins reference bug 1: the transition result goes under `FESPortal.ARO`, not `FESPortal.Org`.
#[tokio::test]
async fn transition_changes_the_aro_and_a_later_get_aro_shows_it() {
    let app = spawn().await;
    let id = app.aro_ids("Unresolved")[0].clone();
    let entry = app
        .run(&format!(r#"!cov-mgsec-transition-aro aro_id={id} resolution=Resolved comment="Host reimaged" is_comment_sensitive=yes"#))
        .await;
    let ctx = context(&entry);
    let aro = &ctx["FESPortal.ARO(val.ID && val.ID == obj.ID)"];
    assert_eq!(
        (
            aro["ID"].as_str(),
            aro["resolution"].as_str(),
            aro["status"].as_str()
        ),
        (Some(id.as_str()), Some("Resolved"), Some("Open"))
    );
    assert!(
        entry.readable.starts_with("### ARO\n"),
        "{}",
        entry.readable
    );
    // Issue 33, point 2: the whole ARO, as the reference returned it, so a playbook can read
    // `last_updated_time` after a transition; details=false gives the summary.
    assert!(
        aro["last_updated_time"].is_string()
            && aro["resolution_time"].is_string()
            && aro["resolution_duration_seconds"].is_number()
            && aro["steps"].is_array(),
        "{aro}"
    );
    assert!(
        entry.readable.contains("|Last Updated Time|"),
        "{}",
        entry.readable
    );
    let summary = app
        .run(&format!(
            "!cov-mgsec-transition-aro aro_id={id} resolution=Resolved details=false"
        ))
        .await;
    let summary = &context(&summary)["FESPortal.ARO(val.ID && val.ID == obj.ID)"];
    let mut keys: Vec<&String> = summary.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "ID",
            "organization",
            "resolution",
            "severity",
            "status",
            "title",
            "type"
        ]
    );
    let comments = app.sim.comments(&id);
    assert_eq!(comments.len(), 1);
    assert_eq!(
        (&comments[0]["text"], &comments[0]["sensitive"]),
        (&json!("Host reimaged"), &json!(true))
    );

    let later = app.run(&format!("!cov-mgsec-get-aro query=id={id}")).await;
    assert_eq!(
        context(&later)["FESPortal.ARO(val.ID && val.ID == obj.ID)"][0]["resolution"],
        "Resolved"
    );
    let unresolved = app
        .run(r#"!cov-mgsec-get-aro query="resolution=Unresolved""#)
        .await;
    assert!(!unresolved.readable.contains(&id));

    let missing = app
        .fail("!cov-mgsec-transition-aro aro_id=nope resolution=Resolved")
        .await;
    assert_eq!(
        missing,
        "instance `fes`: FES Portal POST /aros/nope/transition returned HTTP 404 Not Found: ARO nope not found"
    );
}

/// Issue 33, point 3: the context held a re-read ARO, so the pack's `text` and `author.*`
/// paths were absent. The comment object is the result, in the table and the context, and the
/// ARO is not read again (one request, as the reference).
#[tokio::test]
async fn a_comment_is_stored_and_the_result_is_the_comment() {
    let app = spawn().await;
    let id = app.aro_ids("Unresolved")[1].clone();
    app.run("!cov-mgsec-list-org").await; // looks up the provider id first
    let aro_reads = || -> usize {
        let counts = app.sim.faults.request_counts();
        counts
            .iter()
            .filter(|(path, _)| path.ends_with("/aros"))
            .map(|(_, n)| n)
            .sum()
    };
    let reads_before = aro_reads();
    let entry = app
        .run(&format!(
            r#"!cov-mgsec-comment-aro aro_id={id} comment="Called <b>the</b> site lead""#
        ))
        .await;
    assert_eq!(aro_reads(), reads_before, "the ARO is not read back");
    assert!(
        entry.readable.starts_with("### ARO\n")
            && entry.readable.contains("| Called <b>the</b> site lead |"),
        "{}",
        entry.readable
    );
    let stored = app.sim.comments(&id);
    assert_eq!((stored.len(), &stored[0]["sensitive"]), (1, &json!(false)));
    let ctx = context(&entry);
    let comment = &ctx["FESPortal.AROComment(val.id && val.id == obj.id)"];
    assert_eq!(comment, &stored[0], "the whole comment");
    assert_eq!(
        (
            comment["text"].as_str(),
            comment["aro_id"].as_str(),
            comment["author"]["email"].as_str()
        ),
        (
            Some("Called <b>the</b> site lead"),
            Some(id.as_str()),
            Some("analyst@mssp.example")
        )
    );
    assert_eq!(entry.raw, stored[0]);
}

#[tokio::test]
async fn escalation_contacts_come_by_priority() {
    let app = spawn().await;
    let org = app.org_id(1);
    let entry = app
        .run(&format!("!cov-mgsec-list-escalation-contacts org_id={org}"))
        .await;
    assert!(
        entry.readable.starts_with(
            "### Escalation Contacts\n|Priority|First Name|Last Name|Job Title|Phone Number|Secondary Phone|Email|Notes|\n"
        ),
        "{}",
        entry.readable
    );
    let rows = context(&entry)["FESPortal.EscalationContact(val.id && val.id == obj.id)"].clone();
    let priorities: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["priority"].as_u64().unwrap())
        .collect();
    assert_eq!(priorities, [1, 2, 3]);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["organization_id"] == org.as_str())
    );
    let none = app
        .run("!cov-mgsec-list-escalation-contacts org_id=unknown")
        .await;
    assert_eq!(none.readable, "No escalation contacts found.");
}

#[tokio::test]
async fn key_contacts_keep_key_types_only() {
    let app = spawn().await;
    let entry = app
        .run(&format!(
            "!cov-mgsec-list-key-contacts org_id={}",
            app.org_id(0)
        ))
        .await;
    let rows = context(&entry)["FESPortal.KeyContact(val.id && val.id == obj.id)"].clone();
    let types: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "Administrative",
            "Technical - Primary",
            "Technical - Secondary"
        ]
    );
    assert!(
        rows[1]["email"].as_str().unwrap().contains('@'),
        "user contacts fill in from `user`"
    );
    assert!(
        entry
            .readable
            .starts_with("### Key Contacts\n|First Name|Last Name|Phone Number|Email|Type|\n")
    );
    // The third organization has only a billing contact.
    let none = app
        .run(&format!(
            "!cov-mgsec-list-key-contacts org_id={}",
            app.org_id(2)
        ))
        .await;
    assert_eq!(none.readable, "No key contacts found.");
    let missing = app
        .fail("!cov-mgsec-list-key-contacts org_id=unknown")
        .await;
    assert_eq!(
        missing,
        "instance `fes`: FES Portal GET /organizations/unknown returned HTTP 404 Not Found: Organization unknown not found"
    );
}

#[tokio::test]
async fn language_shows_the_default_locale() {
    let app = spawn().await;
    let org = app.org_id(1);
    let entry = app
        .run(&format!("!cov-mgsec-list-language org_id={org}"))
        .await;
    assert_eq!(
        entry.readable,
        "### Default Organization Language\n|Default Language|\n|---|\n| fr-CA |\n"
    );
    assert_eq!(
        context(&entry),
        json!({"FESPortal.OrgLanguage(val.organization_id && val.organization_id == obj.organization_id)": {"organization_id": org, "default_language": "fr-CA"}})
    );
}

#[tokio::test]
async fn broker_commands_ping_list_and_act() {
    let app = spawn().await;
    let ping = app.run("!cov-mgsec-broker-ping").await;
    assert_eq!(
        (ping.readable.as_str(), context(&ping)),
        ("## Success", json!({"FESBroker.APIStatus": "pong"}))
    );

    let orgs = app.run("!cov-mgsec-broker-list-org").await;
    assert!(
        orgs.readable
            .starts_with("### Organizations\n|ID|client_id|name|\n"),
        "{}",
        orgs.readable
    );
    assert_eq!(
        context(&orgs)["FESBroker.Org(val.ID && val.ID == obj.ID)"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let org = app.org_id(0);
    let by_host = app.run(&format!("!cov-mgsec-broker-endpoint-action-by-host action_type=ISOLATE org_id={org} host_identifier=WS-0192")).await;
    let action =
        &context(&by_host)["FESBroker.Action(val.agent_uuid && val.agent_uuid == obj.agent_uuid)"];
    assert_eq!(action["host_identifier"], "WS-0192");
    assert!(by_host.readable.starts_with(
        "### Command Result - Success\n|agent_uuid|covalence_appliance|host_identifier|task_id|\n"
    ));

    let aro = app.sim.aros()[0].clone();
    let by_aro = app
        .run(&format!(
            "!cov-mgsec-broker-endpoint-action-by-aro action_type=DEFENDER_QUICK_SCAN aro_id={}",
            aro["ID"].as_str().unwrap()
        ))
        .await;
    let action2 =
        &context(&by_aro)["FESBroker.Action(val.agent_uuid && val.agent_uuid == obj.agent_uuid)"];
    assert_eq!(
        action2["task_id"].as_u64(),
        action["task_id"].as_u64().map(|t| t + 1),
        "each action is a new task"
    );

    let cloud = app
        .run(&format!(
            "!cov-mgsec-broker-cloud-action-by-aro action_type=REVOKE_SESSIONS aro_id={}",
            aro["ID"].as_str().unwrap()
        ))
        .await;
    let c = &context(&cloud)["FESBroker.Action(val.action_id && val.action_id == obj.action_id)"];
    assert_eq!(
        (c["action_type"].as_str(), c["status"].as_str()),
        (Some("revoke_sessions"), Some("QUEUED"))
    );
    assert!(cloud.readable.starts_with("### Command Result\n"));

    let bad = app
        .fail("!cov-mgsec-broker-cloud-action-by-aro action_type=ISOLATE aro_id=x")
        .await;
    assert_eq!(
        bad,
        "invalid value `ISOLATE` for argument `action_type`: allowed values are DISABLE_USER, ENABLE_USER, REVOKE_SESSIONS"
    );
    let unknown = app
        .fail("!cov-mgsec-broker-endpoint-action-by-aro action_type=ISOLATE aro_id=nope")
        .await;
    assert_eq!(
        unknown,
        "instance `fes`: FES Broker POST /endpoint/aro/isolate returned HTTP 404 Not Found: ARO nope not found"
    );
}

#[tokio::test]
async fn broker_commands_need_a_broker_url_but_not_the_portal() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    // The portal points at a closed port; the Broker still works.
    let runner = runner_for(&format!(
        "portal_url = \"http://127.0.0.1:9/v1\"\nbroker_url = \"{}\"\napi_key = \"{}\"\n",
        sim.broker_url, sim.api_key
    ))
    .unwrap();
    let orgs = runner
        .run("!cov-mgsec-broker-list-org", None)
        .await
        .unwrap();
    assert!(orgs.readable.contains("Acme"));

    let runner = runner_for(&format!(
        "portal_url = \"{}\"\napi_key = \"{}\"\n",
        sim.portal_url, sim.api_key
    ))
    .unwrap();
    let err = runner
        .run("!cov-mgsec-broker-ping", None)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "instance `fes`: no broker_url is configured; set broker_url in the instance's params to use Broker commands"
    );
}

#[tokio::test]
async fn test_module_reports_ok_or_the_reason() {
    let app = spawn().await;
    assert_eq!(app.run("!test-module").await.readable, "ok");

    let runner = runner_for(&format!(
        "portal_url = \"{}\"\nbroker_url = \"http://127.0.0.1:9\"\napi_key = \"canary-wrong-key-3141\"\n",
        app.sim.portal_url
    ))
    .unwrap();
    let err = runner.run("!test-module", None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RunError::Command { .. }));
    assert!(text.starts_with("instance `fes`: portal: FES Portal GET /my_providers returned HTTP 401 Unauthorized: Invalid or missing API key; check the instance's API key; broker: cannot reach FES Broker for GET /ping"), "{text}");
    assert!(!text.contains("canary"), "the key leaked: {text}");
}

#[tokio::test]
async fn wrong_api_key_names_the_instance_and_the_401() {
    let app = spawn().await;
    let runner = runner_for(&format!(
        "portal_url = \"{}\"\napi_key = \"canary-wrong-key-2718\"\n",
        app.sim.portal_url
    ))
    .unwrap();
    let err = runner
        .run("!cov-mgsec-list-org", None)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "instance `fes`: FES Portal GET /my_providers returned HTTP 401 Unauthorized: Invalid or missing API key; check the instance's API key"
    );
}

#[tokio::test]
async fn malformed_json_names_the_endpoint() {
    let app = spawn_with(CovalenceManagedSecurityOptions {
        faults: FaultSpec {
            malformed: 1,
            ..FaultSpec::default()
        },
        ..Default::default()
    })
    .await;
    let err = app.fail("!cov-mgsec-list-org").await;
    assert!(
        err.starts_with(
            "instance `fes`: malformed JSON from FES Portal GET /my_providers: EOF while parsing"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after() {
    let app = spawn_with(CovalenceManagedSecurityOptions {
        faults: FaultSpec {
            rate_limit: 2,
            retry_after_secs: 1,
            ..FaultSpec::default()
        },
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let entry = app.run("!cov-mgsec-list-org").await;
    assert!(entry.readable.contains("Acme"));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(app.sim.faults.requests("/v1/my_providers"), 3);
}

/// Regression, reference bug 3: errors said `HTTP response: None` and lost the server's text.
#[tokio::test]
async fn server_errors_are_retried_then_reported_with_the_server_text() {
    let app = spawn_with(CovalenceManagedSecurityOptions {
        faults: FaultSpec {
            server_errors: 2,
            ..FaultSpec::default()
        },
        ..Default::default()
    })
    .await;
    assert!(
        app.run("!cov-mgsec-list-org")
            .await
            .readable
            .contains("Acme")
    );
    app.sim.faults.set(FaultSpec {
        server_errors: 100,
        ..FaultSpec::default()
    });
    let err = app
        .fail(r#"!cov-mgsec-get-aro query="resolution=Unresolved""#)
        .await;
    assert!(
        err.ends_with("returned HTTP 503 Service Unavailable: service temporarily unavailable"),
        "{err}"
    );
    let counts = app.sim.faults.request_counts();
    let aro_calls: usize = counts
        .iter()
        .filter(|(p, _)| p.ends_with("/aros"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(aro_calls, 4, "four attempts in all: {counts:?}");
}

#[tokio::test]
async fn a_rate_limited_comment_is_retried_and_stored_once() {
    let app = spawn().await;
    let id = app.aro_ids("Unresolved")[0].clone();
    app.run("!cov-mgsec-list-org").await; // looks up the provider id first
    app.sim.faults.set(FaultSpec {
        rate_limit: 1,
        retry_after_secs: 0,
        ..FaultSpec::default()
    });
    app.run(&format!("!cov-mgsec-comment-aro aro_id={id} comment=once"))
        .await;
    assert_eq!(
        app.sim.faults.requests("/v1/aro_comments"),
        2,
        "the 429 was retried"
    );
    assert_eq!(
        app.sim.comments(&id).len(),
        1,
        "and the comment stored once"
    );
}

/// Regression, reference bug 5: `/my_providers` was called for every command, several times.
#[tokio::test]
async fn provider_id_is_looked_up_once_per_instance() {
    let app = spawn().await;
    app.run("!cov-mgsec-list-org").await;
    app.run(r#"!cov-mgsec-get-aro query="resolution=Unresolved""#)
        .await;
    app.run(r#"!cov-mgsec-get-aro query="org=Acme""#).await;
    assert_eq!(app.sim.faults.requests("/v1/my_providers"), 1);
}

#[tokio::test]
async fn context_merges_by_key_across_runs() {
    let app = spawn().await;
    let mut store = ContextStore::new();
    let line = r#"!cov-mgsec-get-aro query="resolution=Unresolved""#;
    store.merge(&app.run(line).await.entry_context());
    store.merge(&app.run(line).await.entry_context());
    let id = app.aro_ids("Unresolved")[0].clone();
    store.merge(
        &app.run(&format!(
            "!cov-mgsec-transition-aro aro_id={id} resolution=Dismissed"
        ))
        .await
        .entry_context(),
    );
    let aros = store
        .get("FESPortal.ARO")
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        aros.len(),
        app.aro_ids("Unresolved").len() + 1,
        "no duplicates; the transitioned one stays"
    );
    let dismissed = aros.iter().find(|a| a["ID"] == id.as_str()).unwrap();
    assert_eq!(dismissed["resolution"], "Dismissed");
}

#[tokio::test]
async fn a_ca_file_that_is_not_pem_is_a_clear_error() {
    let dir = crate::test_support::TempDir::new("wf-ca");
    let ca = dir.0.join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let run = async |params: &str| {
        runner_for(params)
            .unwrap()
            .run("!cov-mgsec-list-org", None)
            .await
            .unwrap_err()
            .to_string()
    };
    let err = run(&format!(
        "api_key = \"k\"\nca_file = \"{}\"\n",
        ca.display()
    ))
    .await;
    assert_eq!(
        err,
        format!(
            "instance `fes`: cannot set up the FES Portal client: ca_file {} holds no certificates",
            ca.display()
        )
    );
    let missing = run("api_key = \"k\"\nca_file = \"/nonexistent/ca.pem\"\n").await;
    assert!(
        missing.starts_with("instance `fes`: cannot set up the FES Portal client: cannot read ca_file /nonexistent/ca.pem:"),
        "{missing}"
    );
}

#[tokio::test]
async fn a_slow_provider_times_out_with_a_clear_error() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let runner = runner_for(&format!(
        "portal_url = \"{}\"\nbroker_url = \"{}\"\napi_key = \"{}\"\ntimeout = \"200ms\"\n",
        sim.portal_url, sim.broker_url, sim.api_key
    ))
    .unwrap();
    sim.faults.set(FaultSpec {
        latency_ms: 1000,
        ..FaultSpec::default()
    });
    let started = Instant::now();
    // A POST is not retried after a timeout: the provider may have acted on it.
    let err = runner
        .run("!cov-mgsec-broker-endpoint-action-by-host action_type=RESTART org_id=x host_identifier=h", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("instance `fes`: cannot reach FES Broker for POST /endpoint/host/restart:"),
        "{err}"
    );
    assert!(err.contains("timed out"), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "took {:?}",
        started.elapsed()
    );
}

/// Regression, reference bug 7: the ARO paging loop ran forever when a page came back empty
/// while `total` promised more. A portal that does that now ends the paging.
#[tokio::test]
async fn an_empty_page_ends_aro_paging() {
    use axum::{Json, Router, routing::get};
    let portal = Router::new()
        .route("/v1/my_providers", get(|| async { Json(json!([{"ID": "p1", "name": "P"}])) }))
        .route(
            "/v1/providers/p1/aros",
            get(|| async { Json(json!({"items": [], "page": 1, "pages": 9, "per_page": 500, "total": 4000, "has_next": true})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, portal).await });
    let runner = runner_for(&format!("portal_url = \"{url}\"\napi_key = \"k\"\n")).unwrap();
    let entry = tokio::time::timeout(
        Duration::from_secs(5),
        runner.run(r#"!cov-mgsec-get-aro query="resolution=Unresolved""#, None),
    )
    .await
    .expect("paging ends")
    .unwrap();
    assert_eq!(entry.readable, "No AROs found");
}

/// Regression (hardening 1): a portal that always answers `has_next: true` with new items
/// kept `get-aro` paging forever. Paging now stops after a bounded number of pages.
#[tokio::test]
async fn endless_paging_stops_with_a_clear_error() {
    let app = spawn_with(CovalenceManagedSecurityOptions {
        faults: FaultSpec {
            endless_pages: true,
            ..FaultSpec::default()
        },
        ..Default::default()
    })
    .await;
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        app.fail(r#"!cov-mgsec-get-aro query="resolution=Unresolved""#),
    )
    .await
    .expect("paging ends");
    assert!(
        err.contains("still says more follow after 200 pages") && err.contains("narrow the query"),
        "{err}"
    );
}

/// Regression (hardening 27.4): endless paging was bounded in pages only: 200 pages of 2 MiB
/// held 454 MB before the error. A listing stops at 64 MiB, whatever the page count.
#[tokio::test]
async fn endless_heavy_paging_is_bounded_in_bytes() {
    let app = spawn_with(CovalenceManagedSecurityOptions {
        faults: FaultSpec {
            endless_pages: true,
            pad_records_kib: 1024,
            ..FaultSpec::default()
        },
        ..Default::default()
    })
    .await;
    let err = app
        .fail(r#"!cov-mgsec-get-aro query="resolution=Unresolved""#)
        .await;
    let pages: usize = err
        .split("sent more than 64 MiB in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(pages <= 65 && err.contains("narrow the query"), "{err}");
}

/// Regression (hardening 27.3): one ARO over 16 MiB failed the whole listing. The others are
/// shown, and a note names the one left out.
#[tokio::test]
async fn an_oversized_aro_is_left_out_with_a_note() {
    let app = spawn().await;
    let huge = app.sim.add_aro_with(0, "Huge", serde_json::Map::new());
    app.sim.faults.set(FaultSpec {
        huge_record_mib: 17,
        ..FaultSpec::default()
    });
    let entry = app
        .runner
        .run(r#"!cov-mgsec-get-aro query="resolution=Unresolved""#, None)
        .await
        .unwrap();
    let id = huge["ID"].as_str().unwrap();
    assert!(
        entry.readable.contains(&format!(
            "ARO {id} is left out: it is 17.0 MiB, more than the 16 MiB one record may be; read it at the provider."
        )),
        "{}",
        entry.readable
    );
    let shown = entry.raw.as_array().unwrap();
    assert!(!shown.is_empty() && shown.iter().all(|a| a["ID"] != id));
}

/// Regression (hardening 9): `Retry-After: 59` held a command with `timeout = "5s"` for
/// minutes. A wait longer than a request may take fails at once, naming the wait.
#[tokio::test]
async fn a_long_retry_after_fails_fast_naming_the_wait() {
    let app = spawn_with(CovalenceManagedSecurityOptions {
        faults: FaultSpec {
            rate_limit: 100,
            retry_after_secs: 59,
            ..FaultSpec::default()
        },
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let err = app.fail("!cov-mgsec-list-org").await;
    assert_eq!(
        err,
        "instance `fes`: FES Portal GET /my_providers asks to retry after 59s, longer than one request may take (10s, twice the instance's timeout); try again later"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// Regression (hardening 13): rate-limit errors said `Retry-After Some(59s)` and
/// `after 1 attempts`.
#[tokio::test]
async fn rate_limit_errors_read_well() {
    let app = spawn_with(CovalenceManagedSecurityOptions {
        faults: FaultSpec {
            rate_limit: 100,
            retry_after_secs: 0,
            ..FaultSpec::default()
        },
        ..Default::default()
    })
    .await;
    let err = app.fail("!cov-mgsec-list-org").await;
    assert_eq!(
        err,
        "instance `fes`: FES Portal GET /my_providers is still rate limited after 4 attempts (the server asks to wait 0s); try again later"
    );
}

/// Regression (hardening 8): one ARO with 100 MB of details drove the process to 787 MB.
/// It is read as it streams in and left out with a note, never held.
#[tokio::test]
async fn an_oversized_response_is_not_held() {
    let app = spawn().await;
    let mut fields = serde_json::Map::new();
    fields.insert(
        "details".into(),
        json!("x".repeat(crate::http::MAX_BODY + 1024)),
    );
    let aro = app.sim.add_aro_with(0, "Huge", fields);
    let id = aro["ID"].as_str().unwrap();
    let entry = app
        .runner
        .run(&format!("!cov-mgsec-get-aro query=\"id={id}\""), None)
        .await
        .unwrap();
    assert_eq!(
        entry.readable,
        format!(
            "No AROs found\n**ARO {id} is left out: it is 64.0 MiB, more than the 16 MiB one record may be; read it at the provider.**\n"
        )
    );
}

#[tokio::test]
async fn a_command_stops_at_its_deadline() {
    let app = spawn_with(CovalenceManagedSecurityOptions {
        faults: FaultSpec {
            endless_pages: true,
            latency_ms: 100,
            ..FaultSpec::default()
        },
        ..Default::default()
    })
    .await;
    let runner = app.runner.with_deadline(Duration::from_millis(700));
    let started = Instant::now();
    let err = runner
        .run(r#"!cov-mgsec-get-aro query="resolution=Unresolved""#, None)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "instance `fes`: the command did not finish within 700ms; the provider is slow or keeps paging: narrow the query, or try again later"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// Regression (hardening 9): a stalled server held a GET for about 22 s with `timeout = 5s`
/// (four attempts and their backoff). One call now takes at most twice the timeout.
#[tokio::test]
async fn a_stalled_server_costs_at_most_twice_the_timeout() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let runner = runner_for(&format!(
        "portal_url = \"{}\"\napi_key = \"{}\"\ntimeout = \"300ms\"\n",
        sim.portal_url, sim.api_key
    ))
    .unwrap();
    sim.faults.set(FaultSpec {
        latency_ms: 5_000,
        ..FaultSpec::default()
    });
    let started = Instant::now();
    let err = runner
        .run("!cov-mgsec-list-org", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("timed out"), "{err}");
    // Four attempts of 300 ms and their backoff would take about 3 s.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
}

/// Regression (hardening 8): a `get-aro` matching 24,318 AROs held them all (497 MB). A
/// command shows the newest 5,000, and says that more match.
#[tokio::test]
async fn get_aro_shows_the_newest_and_says_more_match() {
    let app = spawn_with(CovalenceManagedSecurityOptions {
        setup: CovalenceManagedSecuritySetup {
            orgs: 10,
            aros_per_org: 800,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let entry = app
        .run("!cov-mgsec-get-aro query=\"resolution=Unresolved\"")
        .await;
    let unresolved = app.aro_ids("Unresolved");
    assert!(unresolved.len() > 5_000, "{} match", unresolved.len());
    let shown: Vec<&str> = entry
        .raw
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ID"].as_str().unwrap())
        .collect();
    assert_eq!(shown, unresolved[..5_000], "the newest 5,000");
    assert!(entry.readable.ends_with(
        "\n**Showing the newest 5000 AROs; more match: narrow the query, e.g. with since= or resolution=.**\n"
    ));
}

/// The ARO resolution of each close reason can be set per instance; a push too late (the
/// process's hold on the instance's mirroring ran out) writes nothing.
#[tokio::test]
async fn close_resolutions_are_set_per_instance() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let runner = runner_for(&format!(
        "portal_url = \"{}\"\napi_key = \"{}\"\nclose_resolutions = \"Resolved=Resolved, False Positive=Resolved, Duplicate=Dismissed, Other=Dismissed\"\n",
        sim.portal_url, sim.api_key
    ))
    .unwrap();
    let aro = sim
        .aros()
        .into_iter()
        .find(|a| a["resolution"] == "Unresolved")
        .unwrap();
    let id = aro["ID"].as_str().unwrap();
    let close = crate::Outgoing::Close {
        reason: watchfloor_core::CloseReason::FalsePositive,
        notes: None,
    };
    let instance = runner.instance("fes").unwrap().instance;
    // Too late (the process's hold on the mirroring ran out): nothing is written.
    let past = Some(std::time::Instant::now());
    let late = instance.push(id, &close, past).await.unwrap_err();
    assert!(late.to_string().contains(" was not sent: "), "{late}");
    let note = crate::Outgoing::Note {
        text: "late".into(),
    };
    assert!(instance.push(id, &note, past).await.is_err());
    assert!(sim.transitions(id).is_empty());
    assert!(sim.comments(id).is_empty());
    let pushed = instance.push(id, &close, None).await.unwrap();
    assert_eq!(
        pushed.text,
        format!("ARO {id} transitioned to Resolved in the FES Portal")
    );
    assert_eq!(sim.transitions(id), ["Resolved"]);
    let again = instance.push(id, &close, None).await.unwrap();
    assert_eq!(
        again.text,
        format!("ARO {id} is already Resolved in the FES Portal")
    );
    assert_eq!(sim.transitions(id).len(), 1);
    // A reopen, repeated (say after a crash), transitions the ARO back once.
    let reopened = instance
        .push(id, &crate::Outgoing::Reopen, None)
        .await
        .unwrap();
    assert_eq!(
        reopened.text,
        format!("ARO {id} transitioned back to Unresolved in the FES Portal (it was Resolved)")
    );
    let again = instance
        .push(id, &crate::Outgoing::Reopen, None)
        .await
        .unwrap();
    assert_eq!(
        again.text,
        format!("ARO {id} is already Unresolved in the FES Portal")
    );
    assert_eq!(sim.transitions(id), ["Resolved", "Unresolved"]);
    let bad = runner_for(&format!(
        "portal_url = \"{}\"\napi_key = \"k\"\nclose_resolutions = \"Resolved=Open\"\n",
        sim.portal_url
    ))
    .unwrap();
    let err = bad
        .run("!cov-mgsec-list-org", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("close_resolutions: `Open` is not an ARO resolution"),
        "{err}"
    );
}

/// Regression (first hour): https:// against a plain HTTP port said "corrupt message".
#[tokio::test]
async fn https_to_a_plain_http_port_says_so() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let runner = runner_for(&format!(
        "portal_url = \"{}\"\napi_key = \"{}\"\n",
        sim.portal_url.replace("http://", "https://"),
        sim.api_key
    ))
    .unwrap();
    let err = app_fail(&runner, "!cov-mgsec-list-org").await;
    assert!(
        err.contains(
            "the server did not answer with TLS: use http:// for this address, or check the port"
        ),
        "{err}"
    );
}

async fn app_fail(runner: &Runner, line: &str) -> String {
    runner.run(line, None).await.unwrap_err().to_string()
}

/// Regression (first hour): a portal URL without `/v1` gave a bare 404.
#[tokio::test]
async fn a_portal_url_without_its_path_says_what_to_check() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let runner = runner_for(&format!(
        "portal_url = \"{}\"\napi_key = \"{}\"\n",
        sim.portal_url.trim_end_matches("/v1"),
        sim.api_key
    ))
    .unwrap();
    let err = app_fail(&runner, "!cov-mgsec-list-org").await;
    assert!(
        err.ends_with("this is not the FES Portal API: check that `portal_url` ends with /v1"),
        "{err}"
    );
}

/// As the reference: a broker answering something other than pong is a note that says so.
#[tokio::test]
async fn a_broker_that_does_not_pong_is_a_failure_note() {
    use axum::{Router, routing::get};
    let broker = Router::new().route("/ping", get(|| async { "maintenance" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, broker).await });
    let runner = runner_for(&format!("broker_url = \"{url}\"\napi_key = \"k\"\n")).unwrap();
    let entry = runner.run("!cov-mgsec-broker-ping", None).await.unwrap();
    assert_eq!(entry.readable, "Failure - maintenance.");
}

/// XSOAR's `proxy`: off by default (straight to the provider), and `proxy_url` sends requests
/// through a proxy of the instance's own. The "proxy" here is a second simulator, which
/// answers what it is sent.
#[tokio::test]
async fn requests_go_through_a_proxy_only_when_asked() {
    let portal =
        CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
            .await
            .unwrap();
    let proxy =
        CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
            .await
            .unwrap();
    let proxy_root = proxy.portal_url.trim_end_matches("/v1").to_string();
    let direct = runner_for(&format!(
        "portal_url = \"{}\"\napi_key = \"{}\"\n",
        portal.portal_url, portal.api_key
    ))
    .unwrap();
    direct.run("!cov-mgsec-list-org", None).await.unwrap();
    assert_eq!(portal.faults.requests("/v1/my_providers"), 1);
    assert_eq!(proxy.faults.requests("/v1/my_providers"), 0);
    let proxied = runner_for(&format!(
        "portal_url = \"{}\"\napi_key = \"{}\"\nproxy_url = \"{proxy_root}\"\n",
        portal.portal_url, portal.api_key
    ))
    .unwrap();
    proxied.run("!cov-mgsec-list-org", None).await.unwrap();
    assert_eq!(
        portal.faults.requests("/v1/my_providers"),
        1,
        "not straight"
    );
    assert_eq!(
        proxy.faults.requests("/v1/my_providers"),
        1,
        "through the proxy"
    );
}

/// XSOAR fidelity 6: two key contacts of the same type in one organization collided in the
/// context; keyed by contact id, both stay.
#[tokio::test]
async fn key_contacts_of_the_same_type_are_both_kept() {
    use axum::{Json, Router, routing::get};
    let contact = |id: &str, name: &str| json!({"id": id, "type": "Technical - Primary", "contact_info": {"first_name": name, "last_name": "X", "email": format!("{name}@x"), "phone_number": "1"}, "user": null});
    let org = json!({"ID": "o1", "name": "Acme", "contacts": [contact("c1", "Dana"), contact("c2", "Sam")]});
    let portal = Router::new()
        .route(
            "/v1/my_providers",
            get(|| async { Json(json!([{"ID": "p1", "name": "P"}])) }),
        )
        .route(
            "/v1/organizations/o1",
            get(move || async move { Json(org) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, portal).await });
    let runner = runner_for(&format!("portal_url = \"{url}\"\napi_key = \"k\"\n")).unwrap();
    let mut store = ContextStore::new();
    for _ in 0..2 {
        let entry = runner
            .run("!cov-mgsec-list-key-contacts org_id=o1", None)
            .await
            .unwrap();
        store.merge(&entry.entry_context());
    }
    let names: Vec<&str> = store
        .get("FESPortal.KeyContact")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .filter_map(|c| c["first_name"].as_str())
        .collect();
    assert_eq!(names, ["Dana", "Sam"]);
}

/// Issue 33, points 2, 3 and 5: every field of every record a command returns (whole, with
/// `details=true` where it applies) is a declared output, and every declared output is in the
/// context; transition-aro once declared 4 of the ARO's paths.
#[tokio::test]
async fn every_field_of_every_record_is_a_declared_output() {
    let app = spawn().await;
    let def = super::definition();
    let org = app.org_id(0);
    let aro = app.aro_ids("Unresolved")[0].clone();
    let other = app.aro_ids("Unresolved")[1].clone();
    let mut failures = Vec::new();
    for (command, line) in [
        (
            "cov-mgsec-get-aro",
            r#"!cov-mgsec-get-aro query="status=Open" details=true"#.to_string(),
        ),
        ("cov-mgsec-list-org", "!cov-mgsec-list-org".to_string()),
        (
            "cov-mgsec-transition-aro",
            format!("!cov-mgsec-transition-aro aro_id={aro} resolution=Resolved"),
        ),
        (
            "cov-mgsec-comment-aro",
            format!("!cov-mgsec-comment-aro aro_id={other} comment=seen is_comment_sensitive=true"),
        ),
        (
            "cov-mgsec-list-escalation-contacts",
            format!("!cov-mgsec-list-escalation-contacts org_id={org}"),
        ),
        (
            "cov-mgsec-list-key-contacts",
            format!("!cov-mgsec-list-key-contacts org_id={org}"),
        ),
        (
            "cov-mgsec-list-language",
            format!("!cov-mgsec-list-language org_id={org}"),
        ),
        (
            "cov-mgsec-broker-list-org",
            "!cov-mgsec-broker-list-org".to_string(),
        ),
        (
            "cov-mgsec-broker-endpoint-action-by-host",
            format!(
                "!cov-mgsec-broker-endpoint-action-by-host action_type=ISOLATE org_id={org} host_identifier=WS-0192"
            ),
        ),
        (
            "cov-mgsec-broker-endpoint-action-by-aro",
            format!("!cov-mgsec-broker-endpoint-action-by-aro action_type=RESTART aro_id={aro}"),
        ),
        (
            "cov-mgsec-broker-cloud-action-by-aro",
            format!("!cov-mgsec-broker-cloud-action-by-aro action_type=DISABLE_USER aro_id={aro}"),
        ),
    ] {
        let entry = app.run(&line).await;
        let value = entry.outputs.map(|o| o.value).unwrap_or_default();
        assert!(!value.is_null(), "{line} gave no context");
        if let Err(e) =
            crate::test_support::outputs_declared(def.command(command).unwrap(), &[value])
        {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
