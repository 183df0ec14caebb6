//! Tests of Symantec MSS against the SWS simulator over mutual TLS: every command, certificates
//! made by the `openssl` CLI (legacy and modern), SOAP faults, and workflow updates.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::{Value, json};
use watchfloor_core::{Config, Entry};
use watchfloor_simulators::{SymantecMssOptions, SymantecMssSetup, SymantecMssSimulator};

use crate::Runner;
use crate::test_support::TempDir;

const LIST_KEY: &str =
    "Symantec MSS.Incidents list(val.IncidentNumber && val.IncidentNumber == obj.IncidentNumber)";
const QUERY_KEY: &str =
    "Symantec MSS.Incident query(val.IncidentNumber && val.IncidentNumber == obj.IncidentNumber)";

fn temp_dir() -> TempDir {
    TempDir::new("wf-sws")
}

struct App {
    sim: SymantecMssSimulator,
    dir: TempDir,
    runner: Runner,
}

fn runner_for(params: &str) -> Runner {
    let text = format!(
        "[[instances]]\nname = \"mss\"\nintegration = \"symantec-mss\"\n[instances.params]\n{params}"
    );
    let config = Config::parse(
        Path::new("test.toml"),
        &text,
        &[super::definition()],
        &|_| None,
    )
    .unwrap();
    Runner::new(crate::builtin(), &config).unwrap()
}

impl App {
    /// Instance params for this simulator with the given certificate lines.
    fn params(&self, certificate: &str) -> String {
        format!(
            "server = \"{}\"\nca_file = \"{}\"\ntimeout = \"5s\"\n{certificate}",
            self.sim.url,
            self.dir.0.join("ca.pem").display()
        )
    }

    async fn run(&self, line: &str) -> Entry {
        match self.runner.run(line, None).await {
            Ok(e) => e,
            Err(e) => panic!("{line} failed: {e}"),
        }
    }

    async fn fail(&self, line: &str) -> String {
        match self.runner.run(line, None).await {
            Ok(e) => panic!("{line} should fail, got {}", e.readable),
            Err(e) => e.to_string(),
        }
    }
}

async fn spawn_with(opts: SymantecMssOptions) -> App {
    let sim = SymantecMssSimulator::start(opts).await.unwrap();
    let dir = temp_dir();
    std::fs::write(dir.0.join("ca.pem"), &sim.ca_pem).unwrap();
    std::fs::write(dir.0.join("client.p12"), &sim.client_p12).unwrap();
    let mut app = App {
        runner: runner_for(""),
        sim,
        dir,
    };
    let cert = format!(
        "certificate_file = \"{}\"\npassphrase = \"{}\"\n",
        app.dir.0.join("client.p12").display(),
        app.sim.passphrase
    );
    app.runner = runner_for(&app.params(&cert));
    app
}

async fn spawn() -> App {
    spawn_with(SymantecMssOptions::default()).await
}

fn ctx(entry: &Entry, key: &str) -> Value {
    entry
        .entry_context()
        .get(key)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn lists_incidents_with_filters() {
    let app = spawn().await;
    let all = app
        .run("!symantec-mss-incidents-list time=\"2024-05-01T00:00:00Z\"")
        .await;
    assert!(
        all.readable.starts_with(
            "### Incidents\n|IncidentNumber|TimeCreated|Severity|Category|CountryOfOrigin|"
        ),
        "{}",
        all.readable
    );
    let rows = ctx(&all, LIST_KEY);
    assert_eq!(rows.as_array().unwrap().len(), 12);
    assert_eq!(rows[0]["IncidentNumber"], "7781200");
    assert_eq!(rows[0]["CountryOfOrigin"], Value::Null);
    let critical = app.run("!symantec-mss-incidents-list time=\"2024-05-01T00:00:00Z\" severities=Critical,Emergency max=2").await;
    let rows = ctx(&critical, LIST_KEY);
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| ["Critical", "Emergency"].contains(&r["Severity"].as_str().unwrap()))
    );
    // The seeded incidents are from 2024: the default window (24 hours) has none.
    assert_eq!(
        app.run("!symantec-mss-incidents-list").await.readable,
        "### Incidents\n**No entries.**\n"
    );
    assert_eq!(
        app.fail("!symantec-mss-incidents-list severities=Low")
            .await,
        "invalid value `Low` for argument `severities`: allowed values are Emergency, Critical, Warning, Informational"
    );
    assert_eq!(
        app.fail("!symantec-mss-incidents-list max=0").await,
        "argument `max` must be a whole number from 1 to 100000, got `0`"
    );
}

/// Regression, reference quirks 8 and 9: more than one comment crashed the command, and
/// comments were escaped twice.
#[tokio::test]
async fn an_incident_with_several_comments_signatures_and_attachments() {
    let app = spawn().await;
    // Seeded incident 3 has three comments, one signature; incident 5 has three signatures and two attachments.
    let entry = app.run("!symantec-mss-get-incident number=7781203").await;
    let inc = ctx(&entry, QUERY_KEY);
    let comments = inc["IncidentComments"]["IncidentComment"]
        .as_array()
        .unwrap();
    assert_eq!(comments.len(), 3);
    assert_eq!(
        comments[2]["Comment"], "Note 3 on <Outbound Malware Callback> & follow-up",
        "escaped once, read once"
    );
    assert_eq!(inc["WorkFlowDetail"]["AssignedPerson"], "John");
    assert!(entry.readable.starts_with("### Incident query\n|Incident Number|Time Created|Status|Classification|Assigned Person|Description|Analyst Assessment|Number of Analyzed Signatures|Signatures|Related Incidents|Comment|\n"), "{}", entry.readable);
    // Each comment's text, as the reference's cell holds the comment (the reference showed
    // only one: quirk 8); the signatures as the reference's `json.dumps`.
    assert!(
        entry.readable.contains(
            "| Note 1 on <Outbound Malware Callback> & follow-up,<br/>Note 2 on"
        ) && entry.readable.contains(
            "[{\"SourceIPString\": \"203.0.113.154\", \"SignatureName\": \"SQLi Attempt\", \"VendorSignature\": \"SIG-1723\", \"NumberBlocked\": \"0\", \"NumberNotBlocked\": \"2\"}]"
        ),
        "{}",
        entry.readable
    );

    let five = app.run("!symantec-mss-get-incident number=7781205").await;
    let inc = ctx(&five, QUERY_KEY);
    assert_eq!(
        inc["SignatureList"]["Signature"].as_array().unwrap().len(),
        3
    );
    assert_eq!(
        inc["IncidentAttachmentItems"]["IncidentAttachmentItem"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        inc["RelatedIncidents"]["IncidentNumber"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        inc["SignatureList"]["Signature"][1]["VendorSignature"],
        Value::Null
    );
    assert_eq!(
        five.raw["SignatureList"]["Signature"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "raw keeps the whole incident"
    );
}

#[tokio::test]
async fn an_update_takes_missing_values_from_the_workflow() {
    let app = spawn().await;
    // Incident 7781202: Warning, Open/Unresolved, assigned to the organization Globex SOC.
    let done = app
        .run("!symantec-mss-update-incident number=7781202 comments=\"Checked & <closed>\"")
        .await;
    assert_eq!(
        done.readable,
        "|Update status|\n|---|\n| Updated successfully |\n"
    );
    assert!(done.entry_context().is_empty());
    let inc = app.sim.incident(7_781_202).unwrap();
    assert_eq!(
        (
            &inc["Severity"],
            &inc["WorkFlowDetail"]["Status"],
            &inc["WorkFlowDetail"]["Resolution"],
            &inc["WorkFlowDetail"]["AssignedOrganization"]
        ),
        (
            &json!("Warning"),
            &json!("Open"),
            &json!("Unresolved"),
            &json!("Globex SOC")
        )
    );
    let comments = inc["IncidentComments"]["IncidentComment"]
        .as_array()
        .unwrap();
    assert_eq!(comments.last().unwrap()["Comment"], "Checked & <closed>");

    app.run("!symantec-mss-update-incident number=7781202 status=Closed resolution=Resolved assignPerson=John").await;
    let later = app.run("!symantec-mss-get-incident number=7781202").await;
    let wf = &ctx(&later, QUERY_KEY)["WorkFlowDetail"];
    assert_eq!(
        (&wf["Status"], &wf["Resolution"], &wf["AssignedPerson"]),
        (&json!("Closed"), &json!("Resolved"), &json!("John"))
    );

    assert_eq!(
        app.fail(
            "!symantec-mss-update-incident number=7781202 assignPerson=a assignOrganization=b"
        )
        .await,
        "instance `mss`: give assignOrganization or assignPerson, not both: an incident is assigned to one"
    );
}

#[tokio::test]
async fn a_soap_fault_becomes_a_readable_error() {
    let app = spawn().await;
    assert_eq!(
        app.fail("!symantec-mss-get-incident number=1").await,
        "instance `mss`: Symantec MSS POST /SWS/incidents.asmx returned HTTP 500 Internal Server Error: SOAP fault soap:Sender: Incident 1 was not found"
    );
    // Regression (first hour): a status SWS does not know was only refused by its SOAP fault;
    // it is now checked against the definition before any request.
    assert_eq!(
        app.fail("!symantec-mss-update-incident number=7781200 status=Shelved")
            .await,
        "invalid value `Shelved` for argument `status`: allowed values are New, Open, In Progress, Closed"
    );
}

#[tokio::test]
async fn stray_entities_are_dropped_and_the_incident_still_reads() {
    let app = spawn_with(SymantecMssOptions {
        setup: SymantecMssSetup {
            stray_entities: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let entry = app.run("!symantec-mss-get-incident number=7781200").await;
    let assessment = ctx(&entry, QUERY_KEY)["AnalystAssessment"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(assessment.starts_with("Blockedat WAF;"), "{assessment}");
}

#[tokio::test]
async fn test_module_checks_the_certificate_and_severities() {
    let app = spawn().await;
    assert_eq!(app.run("!test-module").await.readable, "ok");
    let bad = runner_for(&format!(
        "{}severities = \"Emergency, Low\"\n",
        app.params(&format!(
            "certificate_file = \"{}\"\npassphrase = \"{}\"\n",
            app.dir.0.join("client.p12").display(),
            app.sim.passphrase
        ))
    ));
    let err = bad.run("!test-module", None).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "instance `mss`: severities: `Low` is not one of Emergency, Critical, Warning, Informational"
    );
}

#[tokio::test]
async fn a_wrong_passphrase_names_the_instance_and_never_shows_the_secret() {
    let app = spawn().await;
    let wrong = runner_for(&app.params(&format!(
        "certificate_file = \"{}\"\npassphrase = \"canary-pass-77\"\n",
        app.dir.0.join("client.p12").display()
    )));
    let err = wrong
        .run("!test-module", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("instance `mss`: cannot open the PKCS#12 certificate: wrong passphrase, or a damaged file"), "{err}");
    assert!(!err.contains("canary"));
    let neither = runner_for(&app.params(""));
    assert_eq!(
        neither
            .run("!test-module", None)
            .await
            .unwrap_err()
            .to_string(),
        "instance `mss`: no client certificate: set certificate (base64 of the .p12) or certificate_file"
    );
}

#[tokio::test]
async fn the_simulator_refuses_a_client_without_a_certificate() {
    let app = spawn().await;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(app.sim.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let result = client
        .post(format!("{}/SWS/incidents.asmx", app.sim.url))
        .header("content-type", "application/soap+xml; charset=utf-8")
        .body("<x/>")
        .send()
        .await;
    assert!(
        result.is_err(),
        "a client without a certificate got {result:?}"
    );
    // With the certificate, the same request reaches the service (and gets a SOAP fault).
    let fault = app.fail("!symantec-mss-get-incident number=x").await;
    assert!(
        fault.contains("SOAP fault soap:Sender: IncidentNumber must be a number"),
        "{fault}"
    );
}

/// Runs the `openssl` CLI; these tests need it, as CI has it.
fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn loads_pkcs12_files_made_by_openssl_legacy_and_modern() {
    let app = spawn().await;
    let d = &app.dir.0;
    std::fs::write(d.join("client.pem"), &app.sim.client.cert_pem).unwrap();
    std::fs::write(d.join("client.key"), &app.sim.client.key_pem).unwrap();
    let path = |name: &str| d.join(name).display().to_string();
    for (file, legacy) in [("modern.p12", false), ("legacy.p12", true)] {
        let mut args = vec!["pkcs12", "-export", "-inkey"];
        let (key, cert, ca, out) = (
            path("client.key"),
            path("client.pem"),
            path("ca.pem"),
            path(file),
        );
        args.extend([
            key.as_str(),
            "-in",
            cert.as_str(),
            "-certfile",
            ca.as_str(),
            "-passout",
            "pass:s3cret pass",
            "-out",
            out.as_str(),
        ]);
        if legacy {
            args.push("-legacy");
        }
        openssl(&args);
    }
    // The legacy file really is legacy: RC2 or 3DES, not AES.
    let info = Command::new("openssl")
        .args([
            "pkcs12",
            "-info",
            "-nokeys",
            "-nocerts",
            "-legacy",
            "-passin",
            "pass:s3cret pass",
            "-in",
            &path("legacy.p12"),
        ])
        .output()
        .unwrap();
    let info =
        String::from_utf8_lossy(&info.stderr).to_string() + &String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("RC2") || info.contains("3DES") || info.contains("TripleDES"),
        "{info}"
    );

    let modern = runner_for(&app.params(&format!(
        "certificate_file = \"{}\"\npassphrase = \"s3cret pass\"\n",
        path("modern.p12")
    )));
    assert_eq!(
        modern.run("!test-module", None).await.unwrap().readable,
        "ok"
    );
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(d.join("legacy.p12")).unwrap());
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let legacy = runner_for(&app.params(&format!(
        "certificate = \"\"\"\n{wrapped}\n\"\"\"\npassphrase = \"s3cret pass\"\n"
    )));
    assert_eq!(
        legacy.run("!test-module", None).await.unwrap().readable,
        "ok"
    );
}

#[tokio::test]
async fn a_malformed_soap_response_is_a_clear_error() {
    let app = spawn().await;
    app.run("!test-module").await;
    app.sim.faults.set(watchfloor_simulators::FaultSpec {
        malformed: 1,
        ..Default::default()
    });
    let err = app.fail("!symantec-mss-get-incident number=7781200").await;
    assert!(
        err.starts_with("instance `mss`: unreadable SOAP response from Symantec MSS IncidentWorkflowQuery: malformed XML at byte"),
        "{err}"
    );
    assert!(
        app.run("!symantec-mss-get-incident number=7781200")
            .await
            .readable
            .starts_with("### Incident query")
    );
}

/// Regression (hardening 12): `max=0` and `time="yesterday"` exited 1 like a provider failure;
/// they are usage errors, found at binding.
#[tokio::test]
async fn bad_numbers_and_times_are_usage_errors() {
    let app = spawn().await;
    for (line, expected) in [
        (
            "!symantec-mss-incidents-list max=0",
            "argument `max` must be a whole number from 1 to 100000, got `0`",
        ),
        (
            "!symantec-mss-incidents-list time=yesterday",
            "argument `time`: `yesterday` is not a time: use e.g. \"3 days\", \"12 hours ago\" or 2024-05-01T00:00:00Z",
        ),
    ] {
        let err = app.runner.run(line, None).await.expect_err(line);
        assert!(err.is_usage(), "{line}: {err}");
        assert_eq!(err.to_string(), expected);
    }
}

/// XSOAR's default argument: `!symantec-mss-get-incident 7781203` works as in XSOAR, where it
/// said "argument `7781203` has no value".
#[tokio::test]
async fn the_incident_number_may_be_given_without_its_name() {
    let app = spawn().await;
    let number = app.sim.incident_numbers()[0];
    let bare = app
        .run(&format!("!symantec-mss-get-incident {number}"))
        .await;
    let named = app
        .run(&format!("!symantec-mss-get-incident number={number}"))
        .await;
    assert_eq!(bare.readable, named.readable);
    assert_eq!(
        app.fail("!symantec-mss-incidents-list 2024-05-01 severities=Critical 2024-05-02")
            .await,
        "argument `2024-05-02` has no value: write it as `2024-05-02=value`"
    );
}

/// XSOAR fidelity 8: `max` was limited to 500, where the pack returns all incidents when it is
/// not given. The list now reads through SWS's cap of 500 a call.
#[tokio::test]
async fn the_incident_list_reads_past_the_cap_of_500() {
    let app = spawn_with(SymantecMssOptions {
        setup: SymantecMssSetup {
            incidents: 1130,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let count = |entry: &watchfloor_core::Entry| {
        let rows = entry.raw.as_array().unwrap();
        let unique: std::collections::BTreeSet<&str> = rows
            .iter()
            .map(|r| r["IncidentNumber"].as_str().unwrap())
            .collect();
        assert_eq!(unique.len(), rows.len(), "each incident once");
        rows.len()
    };
    let all = app
        .run("!symantec-mss-incidents-list time=2024-04-01")
        .await;
    assert_eq!(count(&all), app.sim.summaries().len());
    let some = app
        .run("!symantec-mss-incidents-list time=2024-04-01 max=600")
        .await;
    assert_eq!(count(&some), 600);
}

/// Regression (a close sent twice by processes sharing the work): a push too late, after the
/// process's hold on the instance's mirroring ran out, reads the incident but writes nothing;
/// in time, it closes it once.
#[tokio::test]
async fn a_push_too_late_writes_nothing() {
    let app = spawn().await;
    let number = app.sim.incident_numbers()[0];
    let instance = app.runner.instance("mss").unwrap().instance;
    let close = crate::Outgoing::Close {
        reason: watchfloor_core::CloseReason::Resolved,
        notes: Some("contained".into()),
    };
    let note = crate::Outgoing::Note {
        text: "late".into(),
    };
    let past = Some(std::time::Instant::now());
    for change in [&close, &note] {
        let err = instance
            .push(&number.to_string(), change, past)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(" was not sent: "), "{err}");
    }
    assert_eq!(app.sim.workflow_updates(), 0);
    let soon = Some(std::time::Instant::now() + std::time::Duration::from_secs(60));
    instance
        .push(&number.to_string(), &close, soon)
        .await
        .unwrap();
    assert_eq!(app.sim.workflow_updates(), 1);
    assert_eq!(
        app.sim.comments(number).last().map(String::as_str),
        Some("contained")
    );
}

/// Issue 33, point 5: every field of every incident in the context is a declared output, and
/// every declared output is in the context (an incident with several comments, signatures and
/// attachments, one with none, and the list).
#[tokio::test]
async fn every_field_of_every_record_is_a_declared_output() {
    let app = spawn().await;
    let def = super::definition();
    let list = app
        .run("!symantec-mss-incidents-list time=\"2024-05-01T00:00:00Z\"")
        .await;
    let mut failures = Vec::new();
    if let Err(e) = crate::test_support::outputs_declared(
        def.command("symantec-mss-incidents-list").unwrap(),
        &[list.outputs.unwrap().value],
    ) {
        failures.push(e);
    }
    let mut incidents = Vec::new();
    for number in ["7781200", "7781203", "7781205"] {
        let entry = app
            .run(&format!("!symantec-mss-get-incident number={number}"))
            .await;
        incidents.push(entry.outputs.unwrap().value);
    }
    if let Err(e) = crate::test_support::outputs_declared(
        def.command("symantec-mss-get-incident").unwrap(),
        &incidents,
    ) {
        failures.push(e);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue 33, point 4: SWS answering `false` to an update made the command fail (exit 1), and
/// stopped a playbook. As the reference, the result says "Update failed" and is not an error;
/// the incident is as it was. A mirrored close that SWS declines is still an error, so it is
/// tried again.
#[tokio::test]
async fn an_update_sws_declines_says_update_failed() {
    let app = spawn().await;
    let before = app.sim.incident(7_781_202).unwrap();
    app.sim.decline_updates(7_781_202, true);
    let entry = app
        .run("!symantec-mss-update-incident number=7781202 status=Closed resolution=Resolved")
        .await;
    assert_eq!(
        entry.readable,
        "|Update status|\n|---|\n| Update failed |\n"
    );
    assert_eq!(entry.raw, json!("Update failed"));
    assert!(entry.entry_context().is_empty());
    assert_eq!(
        app.sim.incident(7_781_202).unwrap(),
        before,
        "nothing changed"
    );
    assert_eq!(app.sim.workflow_updates(), 0);

    let instance = app.runner.instance("mss").unwrap().instance;
    let close = crate::Outgoing::Close {
        reason: watchfloor_core::CloseReason::Resolved,
        notes: None,
    };
    let soon = Some(std::time::Instant::now() + std::time::Duration::from_secs(60));
    let err = instance.push("7781202", &close, soon).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("did not confirm the update of incident 7781202"),
        "{err}"
    );
    app.sim.decline_updates(7_781_202, false);
    let ok = app
        .run("!symantec-mss-update-incident number=7781202 status=Closed resolution=Resolved")
        .await;
    assert_eq!(
        ok.readable,
        "|Update status|\n|---|\n| Updated successfully |\n"
    );
    assert_eq!(app.sim.workflow_updates(), 1);
}
