//! Tests of Covalence for Security Providers against the HTTPS simulator on port 0, in direct
//! and broker mode: every command, sessions, state, faults and errors.

use std::path::Path;

use serde_json::{Value, json};
use watchfloor_core::{Config, Entry};
use watchfloor_simulators::{
    CovalenceSecurityProvidersOptions, CovalenceSecurityProvidersSetup,
    CovalenceSecurityProvidersSimulator, FaultSpec,
};

use crate::Runner;
use crate::test_support::TempDir;

const DIRECT: &str = "2019-004-DA";
const SERVICES: &str = "/CovalenceWebUI/services";

struct App {
    sim: CovalenceSecurityProvidersSimulator,
    runner: Runner,
    _dir: TempDir,
}

fn temp_dir() -> TempDir {
    TempDir::new("wf-cov")
}

fn runner(instances: &str) -> Result<Runner, String> {
    let config = Config::parse(
        Path::new("test.toml"),
        instances,
        &[super::definition()],
        &|_| None,
    )
    .map_err(|e| e.to_string())?;
    Runner::new(crate::builtin(), &config).map_err(|e| e.to_string())
}

fn instance(name: &str, host: &str, broker: bool, password: &str, extra: &str) -> String {
    format!(
        "[[instances]]\nname = \"{name}\"\nintegration = \"covalence-security-providers\"\n[instances.params]\n\
         host = \"{host}\"\nbroker = {broker}\nusername = \"analyst\"\npassword = \"{password}\"\ntimeout = \"5s\"\n{extra}"
    )
}

async fn spawn_with(opts: CovalenceSecurityProvidersOptions) -> App {
    let sim = CovalenceSecurityProvidersSimulator::start(opts)
        .await
        .expect("simulator starts");
    let dir = temp_dir();
    let ca = dir.0.join("ca.pem");
    std::fs::write(&ca, &sim.ca_pem).unwrap();
    let ca_line = format!("ca_file = \"{}\"\n", ca.display());
    let text = instance("direct", &sim.direct_url, false, &sim.password, &ca_line)
        + &instance("broker", &sim.broker_url, true, &sim.password, &ca_line);
    App {
        runner: runner(&text).unwrap(),
        sim,
        _dir: dir,
    }
}

async fn spawn() -> App {
    spawn_with(CovalenceSecurityProvidersOptions::default()).await
}

impl App {
    async fn run(&self, instance: &str, line: &str) -> Entry {
        match self.runner.run(line, Some(instance)).await {
            Ok(e) => e,
            Err(e) => panic!("{line} on {instance} failed: {e}"),
        }
    }

    async fn fail(&self, instance: &str, line: &str) -> String {
        match self.runner.run(line, Some(instance)).await {
            Ok(e) => panic!("{line} on {instance} should fail, got {}", e.readable),
            Err(e) => e.to_string(),
        }
    }

    fn cov_ids(&self, org: &str) -> Vec<String> {
        self.sim
            .appliances()
            .into_iter()
            .filter(|(_, o)| o == org)
            .map(|(id, _)| id)
            .collect()
    }
}

fn rows(entry: &Entry, key: &str) -> Vec<Value> {
    match entry.entry_context().get(key) {
        Some(Value::Array(a)) => a.clone(),
        Some(one) => vec![one.clone()],
        None => vec![],
    }
}

/// Every command in direct mode: its table title, context key and record count.
#[tokio::test]
async fn every_command_runs_in_direct_mode() {
    let app = spawn().await;
    let sensors = app.sim.collection(DIRECT, "sensors");
    let agents = app.sim.collection(DIRECT, "agents");
    let sensor_id = sensors[1]["id"].as_str().unwrap();
    let uuid = agents[0]["agentUuid"].as_str().unwrap();
    for (line, title, key, count) in [
        (
            "!cov-secpr-list-alerts".to_string(),
            "### Alerts",
            "Covalence.Alert(val.id && val.id == obj.id)",
            12,
        ),
        (
            "!cov-secpr-list-sensors".to_string(),
            "### Sensors",
            "Covalence.Sensors(val.id && val.id == obj.id)",
            2,
        ),
        (
            format!("!cov-secpr-get-sensor sensor_id={sensor_id}"),
            "### Sensor",
            "Covalence.Sensor(val.id && val.id == obj.id)",
            1,
        ),
        (
            "!cov-secpr-connections-summary-ip".to_string(),
            "### Connections",
            "Covalence.Connections(val.id && val.id == obj.id)",
            6,
        ),
        (
            "!cov-secpr-connections-summary-port source_ip=nowhere".to_string(),
            "No connections found",
            "Covalence.Connections(val.id && val.id == obj.id)",
            0,
        ),
        (
            "!cov-secpr-list-dns-resolutions".to_string(),
            "### DNS Resolutions",
            "Covalence.DNSResolutions(val.id && val.id == obj.id)",
            5,
        ),
        (
            "!cov-secpr-list-internal-networks".to_string(),
            "### Internal Networks",
            "Covalence.InternalNetworks(val.cidr && val.cidr == obj.cidr)",
            2,
        ),
        (
            "!cov-secpr-list-endpoint-agents".to_string(),
            "### Endpoint Agents",
            "Covalence.EndpointAgents(val.agentUuid && val.agentUuid == obj.agentUuid)",
            3,
        ),
        (
            "!cov-secpr-find-endpoint-agents-by-user user=asmith".to_string(),
            "### Endpoint Agents",
            "Covalence.EndpointAgents(val.agentUuid && val.agentUuid == obj.agentUuid)",
            1,
        ),
        (
            format!("!cov-secpr-find-endpoint-agents-by-uuid uuid={uuid}"),
            "### Endpoint Agents",
            "Covalence.EndpointAgents(val.agentUuid && val.agentUuid == obj.agentUuid)",
            1,
        ),
        (
            "!cov-secpr-search-endpoint-process name=powershell.exe".to_string(),
            "### Endpoint Process",
            "Covalence.EndpointProcess(val.id && val.id == obj.id)",
            3,
        ),
        (
            "!cov-secpr-search-endpoint-installed-software name=7-Zip".to_string(),
            "### Endpoint Software",
            "Covalence.EndpointSoftware(val.id && val.id == obj.id)",
            3,
        ),
        ("!test-module".to_string(), "ok", "", 0),
    ] {
        let entry = app.run("direct", &line).await;
        assert!(
            entry.readable.starts_with(title),
            "{line}: {}",
            entry.readable
        );
        assert_eq!(
            rows(&entry, key).len(),
            count,
            "{line}: {:?}",
            entry.entry_context()
        );
    }
    assert_eq!(app.sim.logins(DIRECT), 1, "one login for the whole run");
}

#[tokio::test]
async fn summaries_match_the_reference_and_details_keeps_everything() {
    let app = spawn().await;
    let sensors = app.run("direct", "!cov-secpr-list-sensors").await;
    assert_eq!(
        sensors.readable,
        "### Sensors\n|Isauthorized|Isnetflowgenerator|Name|\n|---|---|---|\n| false | true | External Sources |\n| true | false | 10.10.0.4 |\n"
    );
    let full = app
        .run("direct", "!cov-secpr-list-sensors details=true")
        .await;
    let full = rows(&full, "Covalence.Sensors(val.id && val.id == obj.id)");
    assert!(
        full[1]["listeningInterfaces"].is_array() && full[1].get("lastActive").is_none(),
        "lastActive is dropped: {}",
        full[1]
    );
    let alerts = app
        .run("direct", "!cov-secpr-list-alerts max_count=1")
        .await;
    let alert = &rows(&alerts, "Covalence.Alert(val.id && val.id == obj.id)")[0];
    let mut keys: Vec<&str> = alert
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "acknowledgedStatus",
            "analystDescription",
            "analystTitle",
            "destIp",
            "sourceIp",
            "subType",
            "title",
            "type"
        ]
    );
    // Provider text keeps XSOAR's bytes in the table; its `|` cannot split the cell.
    let all = app.run("direct", "!cov-secpr-list-alerts").await;
    assert!(
        all.readable
            .contains("Script injection <script>alert(1)</script> \\| in title"),
        "{}",
        all.readable
    );
}

#[tokio::test]
async fn broker_mode_routes_tags_and_merges_appliances() {
    let app = spawn().await;
    let globex = app
        .run("broker", "!cov-secpr-list-sensors target_org=globex")
        .await;
    let rows_g = rows(&globex, "Covalence.Sensors(val.id && val.id == obj.id)");
    assert_eq!(rows_g.len(), 2);
    assert!(
        rows_g
            .iter()
            .all(|r| r["org_name"] == "Globex" && r["appliance_id"] == "2019-004-AA"),
        "{rows_g:?}"
    );
    assert!(
        globex.readable.starts_with(
            "### Sensors\n|Appliance Id|Isauthorized|Isnetflowgenerator|Name|Org Name|\n"
        ),
        "{}",
        globex.readable
    );

    // Initech has two appliances: both are asked, and the results merged.
    let initech = app
        .run("broker", "!cov-secpr-list-alerts target_org=Initech")
        .await;
    let alerts = rows(&initech, "Covalence.Alert(val.id && val.id == obj.id)");
    let ids = app.cov_ids("Initech");
    assert_eq!(ids.len(), 2);
    for id in &ids {
        assert_eq!(
            alerts
                .iter()
                .filter(|a| a["appliance_id"] == id.as_str())
                .count(),
            12,
            "{id}"
        );
    }
    let soylent = app
        .run(
            "broker",
            "!cov-secpr-list-internal-networks target_org=\"soylent & sons <foods>\"",
        )
        .await;
    assert_eq!(
        rows(
            &soylent,
            "Covalence.InternalNetworks(val.cidr && val.cidr == obj.cidr)"
        )
        .len(),
        2
    );

    let orgs = app.run("broker", "!cov-secpr-list-organizations").await;
    let orgs = rows(
        &orgs,
        "Covalence.Organization(val.org_name && val.org_name == obj.org_name)",
    );
    assert_eq!(
        orgs,
        vec![
            json!({"org_name": "Globex", "appliance_ids": ["2019-004-AA"]}),
            json!({"org_name": "Initech", "appliance_ids": ["2019-004-AB", "2019-004-AC"]}),
            json!({"org_name": "Soylent & Sons <Foods>", "appliance_ids": ["2019-004-AD"]}),
        ]
    );
    assert_eq!(app.run("broker", "!test-module").await.readable, "ok");
    for id in app.sim.appliances().iter().skip(1).map(|(id, _)| id) {
        assert_eq!(app.sim.logins(id), 1, "one login per appliance: {id}");
    }
}

#[tokio::test]
async fn broker_mode_needs_a_known_target_org() {
    let app = spawn().await;
    assert_eq!(
        app.fail("broker", "!cov-secpr-list-sensors").await,
        "instance `broker`: target_org is required in broker mode; organizations: Globex, Initech, Soylent & Sons <Foods>"
    );
    assert_eq!(
        app.fail("broker", "!cov-secpr-list-sensors target_org=Hooli")
            .await,
        "instance `broker`: unknown organization `Hooli`; organizations behind the broker: Globex, Initech, Soylent & Sons <Foods>"
    );
    assert_eq!(
        app.fail("direct", "!cov-secpr-list-organizations").await,
        "instance `direct`: cov-secpr-list-organizations needs broker mode (set broker = true)"
    );
}

/// Regression, reference quirk 5: set-internal-networks replaced every network with one.
#[tokio::test]
async fn a_network_set_shows_in_the_next_list_without_wiping_the_others() {
    let app = spawn().await;
    let set = app
        .run(
            "direct",
            "!cov-secpr-set-internal-networks cidr=10.99.0.0/16 notes=\"Lab | <b>new</b>\"",
        )
        .await;
    assert_eq!(
        set.readable,
        "Internal network set as 10.99.0.0/16 with notes \"Lab | <b>new</b>\""
    );
    assert_eq!(
        set.entry_context(),
        json!({"Covalence.InternalNetworks(val.cidr && val.cidr == obj.cidr)": {"cidr": "10.99.0.0/16", "notes": "Lab | <b>new</b>"}})
            .as_object()
            .unwrap()
            .clone()
    );
    let list = app.run("direct", "!cov-secpr-list-internal-networks").await;
    let cidrs: Vec<String> = rows(
        &list,
        "Covalence.InternalNetworks(val.cidr && val.cidr == obj.cidr)",
    )
    .iter()
    .map(|n| n["cidr"].as_str().unwrap().to_string())
    .collect();
    assert_eq!(cidrs, ["10.10.0.0/24", "10.10.1.0/24", "10.99.0.0/16"]);

    app.run(
        "direct",
        "!cov-secpr-set-internal-networks cidr=10.10.0.0/24 notes=Renamed",
    )
    .await;
    let stored = app.sim.collection(DIRECT, "internal_networks");
    assert_eq!(stored.len(), 3);
    assert_eq!(
        stored.iter().find(|n| n["cidr"] == "10.10.0.0/24").unwrap()["notes"],
        "Renamed"
    );

    app.run(
        "direct",
        "!cov-secpr-set-internal-networks cidr=192.168.0.0/16 notes=Only replace=true",
    )
    .await;
    assert_eq!(
        app.sim.collection(DIRECT, "internal_networks"),
        vec![json!({"cidr": "192.168.0.0/16", "notes": "Only"})]
    );

    let bad = app
        .fail(
            "direct",
            "!cov-secpr-set-internal-networks cidr=10.0.0.0/33 notes=x",
        )
        .await;
    assert_eq!(
        bad,
        "instance `direct`: `10.0.0.0/33` is not a network in CIDR notation, e.g. 10.20.0.0/24"
    );

    // In broker mode the network goes to every appliance of the organization.
    app.run(
        "broker",
        "!cov-secpr-set-internal-networks target_org=Initech cidr=172.16.0.0/12 notes=VPN",
    )
    .await;
    for id in app.cov_ids("Initech") {
        assert!(
            app.sim
                .collection(&id, "internal_networks")
                .iter()
                .any(|n| n["cidr"] == "172.16.0.0/12"),
            "{id}"
        );
    }
}

/// Regression, reference quirk 7: `clients_only=false` turned the filter on.
#[tokio::test]
async fn boolean_filters_mean_what_they_say() {
    let app = spawn().await;
    let count = async |line: &str| {
        rows(
            &app.run("direct", line).await,
            "Covalence.Connections(val.id && val.id == obj.id)",
        )
        .len()
    };
    assert_eq!(
        count("!cov-secpr-connections-summary-ip clients_only=false").await,
        6
    );
    assert_eq!(
        count("!cov-secpr-connections-summary-ip clients_only=true").await,
        3
    );
    assert_eq!(
        count("!cov-secpr-connections-summary-ip internal_only=no").await,
        6
    );
    assert_eq!(
        count("!cov-secpr-connections-summary-ip internal_only=yes").await,
        4
    );
}

/// Regression, reference quirk 16: user input went into advancedFilter unescaped.
#[tokio::test]
async fn user_input_cannot_change_the_advanced_filter() {
    let app = spawn().await;
    let entry = app
        .run(
            "direct",
            r#"!cov-secpr-find-endpoint-agents-by-user user="jdoe\" OR lastSessionUser=\"asmith""#,
        )
        .await;
    assert_eq!(entry.readable, "No endpoint agents found");
    let one = app
        .run(
            "direct",
            "!cov-secpr-find-endpoint-agents-by-user user=jdoe",
        )
        .await;
    assert_eq!(
        rows(
            &one,
            "Covalence.EndpointAgents(val.agentUuid && val.agentUuid == obj.agentUuid)"
        )[0]["lastSessionUser"],
        "jdoe"
    );
}

#[tokio::test]
async fn max_count_above_a_page_pages_with_initial_index() {
    let app = spawn_with(CovalenceSecurityProvidersOptions {
        setup: CovalenceSecurityProvidersSetup {
            alerts_per_appliance: 800,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let entry = app
        .run(
            "direct",
            "!cov-secpr-list-alerts max_count=700 initial_index=50",
        )
        .await;
    let alerts = rows(&entry, "Covalence.Alert(val.id && val.id == obj.id)");
    assert_eq!(alerts.len(), 700);
    let stored = app.sim.collection(DIRECT, "alerts");
    assert_eq!(alerts[0]["analystTitle"], stored[50]["analystTitle"]);
    assert_eq!(
        app.sim
            .faults
            .requests(&format!("{SERVICES}/rest/v1/alerts")),
        2
    );
    let rest = app
        .run(
            "direct",
            "!cov-secpr-list-alerts max_count=1000 initial_index=700",
        )
        .await;
    assert_eq!(
        rows(&rest, "Covalence.Alert(val.id && val.id == obj.id)").len(),
        100,
        "stops at the end"
    );
}

#[tokio::test]
async fn an_expired_session_is_renewed_transparently() {
    let app = spawn().await;
    app.run("direct", "!cov-secpr-list-sensors").await;
    app.sim.expire_sessions();
    app.run("direct", "!cov-secpr-list-sensors").await;
    assert_eq!(app.sim.logins(DIRECT), 2);
    let short = spawn_with(CovalenceSecurityProvidersOptions {
        setup: CovalenceSecurityProvidersSetup {
            session_ttl: Some(std::time::Duration::from_millis(200)),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    short
        .run("broker", "!cov-secpr-list-sensors target_org=Globex")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    short
        .run("broker", "!cov-secpr-list-sensors target_org=Globex")
        .await;
    assert_eq!(short.sim.logins("2019-004-AA"), 2);
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_and_never_shown() {
    let app = spawn().await;
    let dir = temp_dir();
    let ca = dir.0.join("ca.pem");
    std::fs::write(&ca, &app.sim.ca_pem).unwrap();
    let wrong = runner(&instance(
        "direct",
        &app.sim.direct_url,
        false,
        "canary-pw-1234",
        &format!("ca_file = \"{}\"\n", ca.display()),
    ))
    .unwrap();
    let err = wrong
        .run("!cov-secpr-list-sensors", None)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "instance `direct`: Covalence POST /rest/login returned HTTP 401 Unauthorized: Invalid username or password; check the instance's username and password"
    );
    assert!(!err.contains("canary"));
}

#[tokio::test]
async fn a_malformed_response_names_the_endpoint_and_the_next_command_works() {
    let app = spawn().await;
    app.run("direct", "!cov-secpr-list-sensors").await;
    app.sim.faults.set(FaultSpec {
        malformed: 1,
        ..FaultSpec::default()
    });
    let err = app.fail("direct", "!cov-secpr-list-dns-resolutions").await;
    assert!(
        err.starts_with(
            "instance `direct`: malformed JSON from Covalence GET /rest/v1/dns/resolutions:"
        ),
        "{err}"
    );
    let broker_err = {
        app.sim.faults.set(FaultSpec {
            malformed: 1,
            ..FaultSpec::default()
        });
        app.run("broker", "!cov-secpr-list-sensors target_org=Globex")
            .await; // logs in; the index page is not JSON
        app.sim.faults.set(FaultSpec {
            malformed: 1,
            ..FaultSpec::default()
        });
        app.fail("broker", "!cov-secpr-list-sensors target_org=Globex")
            .await
    };
    assert!(
        broker_err.starts_with("instance `broker`: organization `Globex`, appliance 2019-004-AA: malformed JSON from Covalence GET /rest/v1/sensors"),
        "{broker_err}"
    );
    assert!(
        app.run("direct", "!cov-secpr-list-dns-resolutions")
            .await
            .readable
            .starts_with("### DNS Resolutions")
    );
}

#[tokio::test]
async fn tls_is_verified_by_default() {
    let app = spawn().await;
    let no_ca = runner(&instance(
        "direct",
        &app.sim.direct_url,
        false,
        &app.sim.password,
        "",
    ))
    .unwrap();
    let err = no_ca
        .run("!cov-secpr-list-sensors", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("instance `direct`: cannot reach Covalence for POST /rest/login:"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let unverified = runner(&instance(
        "direct",
        &app.sim.direct_url,
        false,
        &app.sim.password,
        "verify_ssl = false\n",
    ))
    .unwrap();
    assert!(
        unverified
            .run("!cov-secpr-list-sensors", None)
            .await
            .is_ok()
    );
}

/// Regression (hardening 12): bad argument values (a negative count, a malformed CIDR) exited
/// 1 like a provider failure; they are usage errors, found before any request.
#[tokio::test]
async fn bad_argument_values_are_usage_errors() {
    let app = spawn().await;
    for (line, expected) in [
        (
            "!cov-secpr-list-alerts max_count=-1",
            "argument `max_count` must be a whole number from 0 to 100000, got `-1`",
        ),
        (
            "!cov-secpr-set-internal-networks cidr=10.0.0.0/99 notes=x",
            "instance `direct`: ",
        ),
    ] {
        let err = app.runner.run(line, Some("direct")).await.expect_err(line);
        assert!(err.is_usage(), "{line}: {err}");
        assert!(err.to_string().starts_with(expected), "{line}: {err}");
    }
}

/// Regression (first hour): an untrusted certificate said `UnknownIssuer` and nothing about
/// `ca_file`, and was retried as if it could pass.
#[tokio::test]
async fn an_untrusted_certificate_says_to_set_ca_file_and_is_not_retried() {
    let sim =
        CovalenceSecurityProvidersSimulator::start(CovalenceSecurityProvidersOptions::default())
            .await
            .unwrap();
    let runner = runner(&instance(
        "direct",
        &sim.direct_url,
        false,
        &sim.password,
        "",
    ))
    .unwrap();
    let started = std::time::Instant::now();
    let err = runner
        .run("!cov-secpr-list-alerts max_count=1", Some("direct"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("set the instance's `ca_file` to that CA's PEM file"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_millis(200),
        "no retries: {:?}",
        started.elapsed()
    );
}

/// Every field of every record a command returns (with `details=true`, in direct and broker
/// mode), nested ones too, is a declared output, and every declared output is in the context,
/// so the docs, `commands --json` and the UI's completion describe the whole context (issue
/// 33, point 5: connections declared 8 of 24, DNS 6 of 9, agents 8 of 25, process 8 of 13,
/// software 7 of 16; list-alerts once declared 13).
#[tokio::test]
async fn every_field_of_every_record_is_a_declared_output() {
    let app = spawn().await;
    let def = super::definition();
    let mut failures = Vec::new();
    let mut contexts: std::collections::BTreeMap<&str, Vec<Value>> = Default::default();
    for (instance, org) in [("direct", ""), ("broker", " target_org=Globex")] {
        let first = |entry: Entry, key: &str| {
            rows(
                &entry,
                &entry.entry_context().keys().next().unwrap().clone(),
            )[0][key]
                .as_str()
                .unwrap()
                .to_string()
        };
        let sensor = first(
            app.run(
                instance,
                &format!("!cov-secpr-list-sensors details=true{org}"),
            )
            .await,
            "id",
        );
        let uuid = first(
            app.run(
                instance,
                &format!("!cov-secpr-list-endpoint-agents details=true{org}"),
            )
            .await,
            "agentUuid",
        );
        let source = first(
            app.run(
                instance,
                &format!("!cov-secpr-connections-summary-ip details=true{org}"),
            )
            .await,
            "sourceIpAddress",
        );
        for (command, args) in [
            (
                "cov-secpr-list-alerts",
                "details=true max_count=20".to_string(),
            ),
            ("cov-secpr-list-sensors", "details=true".to_string()),
            ("cov-secpr-get-sensor", format!("sensor_id={sensor}")),
            (
                "cov-secpr-connections-summary-ip",
                "details=true".to_string(),
            ),
            (
                "cov-secpr-connections-summary-port",
                format!("details=true source_ip={source}"),
            ),
            ("cov-secpr-list-dns-resolutions", "details=true".to_string()),
            ("cov-secpr-list-internal-networks", String::new()),
            (
                "cov-secpr-set-internal-networks",
                "cidr=10.98.0.0/16 notes=lab".to_string(),
            ),
            ("cov-secpr-list-endpoint-agents", "details=true".to_string()),
            (
                "cov-secpr-find-endpoint-agents-by-user",
                "user=jdoe".to_string(),
            ),
            (
                "cov-secpr-find-endpoint-agents-by-uuid",
                format!("uuid={uuid}"),
            ),
            (
                "cov-secpr-search-endpoint-process",
                "name=powershell.exe details=true".to_string(),
            ),
            (
                "cov-secpr-search-endpoint-installed-software",
                "name=7-Zip details=true".to_string(),
            ),
        ] {
            let line = format!("!{command} {args}{org}");
            let entry = app.run(instance, &line).await;
            let value = entry.outputs.map(|o| o.value).unwrap_or_default();
            assert!(!value.is_null(), "{line} on {instance} gave no context");
            contexts.entry(command).or_default().push(value);
        }
    }
    let orgs = app.run("broker", "!cov-secpr-list-organizations").await;
    contexts
        .entry("cov-secpr-list-organizations")
        .or_default()
        .push(orgs.outputs.unwrap().value);
    for (command, values) in &contexts {
        if let Err(e) = crate::test_support::outputs_declared(def.command(command).unwrap(), values)
        {
            failures.push(e);
        }
    }
    assert_eq!(contexts.len(), 14, "every command that has outputs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue 33, point 1: a Windows path read `C:\\Windows\\...` in the table, as every backslash was
/// escaped; XSOAR's `tableToMarkdown` keeps it as written. Golden bytes of one whole table.
#[tokio::test]
async fn a_process_table_keeps_xsoars_bytes() {
    let app = spawn().await;
    let entry = app
        .run(
            "direct",
            "!cov-secpr-search-endpoint-process name=chrome.exe advanced_filter=username=jdoe",
        )
        .await;
    assert_eq!(
        entry.readable,
        "### Endpoint Process\n\
         |Commandline|Firstseentime|Lastseentime|Processpath|Username|\n\
         |---|---|---|---|---|\n\
         | chrome.exe -NoProfile | 2024-05-01T08:00:00.000Z | 2024-05-02T08:00:00.000Z | C:\\Windows\\System32\\chrome.exe | jdoe |\n"
    );
}
