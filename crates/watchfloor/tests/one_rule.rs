//! One rule, four front ends: the same refused change (an empty note, another organization's
//! incident, a viewer's edit, a stale version) through the CLI, `/api/v1`, XSOAR's API and a
//! UI form, each refusing it in its own form, and nothing changed.

mod common;

use std::process::Stdio;

use common::{Served, create_user_with_password, fes_fetch_config, watchfloor};
use serde_json::{Value, json};
use watchfloor_simulators::{CovalenceManagedSecurityOptions, CovalenceManagedSecuritySimulator};

/// The four changes, each as every front end asks for it.
#[derive(Clone, Copy, Debug)]
enum Case {
    EmptyNote,
    OtherOrganization,
    ViewersEdit,
    StaleVersion,
}

struct Web {
    http: reqwest::Client,
    base: String,
}

impl Web {
    async fn key(&self, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A session cookie and the form token of incident `id`'s page.
    async fn session(&self, name: &str, id: &str) -> (String, String) {
        let (_, login) = self
            .key(
                "",
                "POST",
                "/api/v1/login",
                json!({"name": name, "password": "pw-of-the-test"}),
            )
            .await;
        let cookie = format!("wf_session={}", login["token"].as_str().unwrap());
        let page = self
            .http
            .get(format!("{}/incidents/{id}", self.base))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = page
            .split("data-csrf=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_string();
        (cookie, csrf)
    }

    /// A form post: the status and, for a redirect, the message it carries.
    async fn form(
        &self,
        session: &(String, String),
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        form.append_pair("csrf", &session.1);
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Cookie", &session.0)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.finish())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let message = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.split_once("msg="))
            .map(|(_, m)| {
                let m = m.split('#').next().unwrap_or_default();
                form_urlencoded::parse(format!("m={m}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        (status, message)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_refused_change_is_refused_by_every_front_end() {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = fes_fetch_config(dir.path(), &sim, "");
    let cfg = config.to_str().unwrap();
    let wf = |args: &[&str]| {
        let mut all = vec!["--config", cfg];
        all.extend_from_slice(args);
        watchfloor(dir.path(), &all)
    };
    assert_eq!(wf(&["fetch"]).code, 0);
    let listed: Vec<Value> = serde_json::from_str(
        &wf(&["incidents", "list", "--output", "json", "--limit", "500"]).stdout,
    )
    .unwrap();
    let of = |org: &str| {
        listed
            .iter()
            .find(|i| i["organization"] == org)
            .unwrap_or_else(|| panic!("an incident of {org}"))["id"]
            .to_string()
    };
    let (acme, globex) = (of("Acme"), of("Globex"));
    for (name, role) in [("ana", "analyst"), ("vic", "viewer")] {
        create_user_with_password(
            dir.path(),
            cfg,
            name,
            role,
            &["--org", "Acme"],
            "pw-of-the-test",
        );
    }
    let key = |name: &str| wf(&["users", "api-key", name]).stdout.trim().to_string();
    let (ana, vic) = (key("ana"), key("vic"));
    let before = |id: &str| -> Value {
        serde_json::from_str(&wf(&["incidents", "show", id, "--output", "json"]).stdout).unwrap()
    };
    let (acme_before, globex_before) = (before(&acme), before(&globex));
    let entries = |id: &str| wf(&["incidents", "entries", id, "--output", "json"]).stdout;
    let acme_entries = entries(&acme);

    let serve = Served::start(
        dir.path(),
        &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
        None,
        Stdio::null(),
    );
    let web = Web {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: format!("http://{}", serve.addr),
    };
    let ana_ui = web.session("ana", &acme).await;
    let vic_ui = web.session("vic", &acme).await;

    let mut failures = Vec::new();
    for case in [
        Case::EmptyNote,
        Case::OtherOrganization,
        Case::ViewersEdit,
        Case::StaleVersion,
    ] {
        // The CLI: exit 2 and a message that says why.
        let cli = match case {
            Case::EmptyNote => wf(&["incidents", "note", &acme, "  ", "--as", "ana"]),
            Case::OtherOrganization => wf(&[
                "incidents",
                "close",
                &globex,
                "--reason",
                "Resolved",
                "--as",
                "ana",
            ]),
            Case::ViewersEdit => wf(&[
                "incidents",
                "update",
                &acme,
                "--severity",
                "low",
                "--as",
                "vic",
            ]),
            Case::StaleVersion => wf(&[
                "incidents",
                "close",
                &acme,
                "--reason",
                "Resolved",
                "--if-version",
                "0",
                "--as",
                "ana",
            ]),
        };
        let says = match case {
            Case::EmptyNote => "the note is empty",
            Case::OtherOrganization => &format!("no incident {globex}"),
            Case::ViewersEdit => "viewers cannot change incidents",
            Case::StaleVersion => "changed since",
        };
        if cli.code != 2 || !cli.stderr.contains(says) {
            failures.push(format!("CLI {case:?}: exit {} {}", cli.code, cli.stderr));
        }
        // /api/v1: a status and a stable code.
        let (status, body) = match case {
            Case::EmptyNote => {
                web.key(
                    &ana,
                    "POST",
                    &format!("/api/v1/incidents/{acme}/notes"),
                    json!({"text": "  "}),
                )
                .await
            }
            Case::OtherOrganization => {
                web.key(
                    &ana,
                    "POST",
                    &format!("/api/v1/incidents/{globex}/close"),
                    json!({"reason": "Resolved"}),
                )
                .await
            }
            Case::ViewersEdit => {
                web.key(
                    &vic,
                    "PATCH",
                    &format!("/api/v1/incidents/{acme}"),
                    json!({"severity": "low"}),
                )
                .await
            }
            Case::StaleVersion => {
                web.key(
                    &ana,
                    "POST",
                    &format!("/api/v1/incidents/{acme}/close"),
                    json!({"reason": "Resolved", "version": 0}),
                )
                .await
            }
        };
        let expected = match case {
            Case::EmptyNote => (400, "bad_request"),
            Case::OtherOrganization => (404, "not_found"),
            Case::ViewersEdit => (403, "forbidden"),
            Case::StaleVersion => (409, "conflict"),
        };
        if (status, body["code"].as_str().unwrap_or_default()) != expected {
            failures.push(format!("API {case:?}: {status} {body}"));
        }
        // XSOAR's API: its own routes and fields, the same statuses.
        let (status, body) = match case {
            Case::EmptyNote => {
                web.key(
                    &ana,
                    "POST",
                    "/entry/note",
                    json!({"investigationId": acme, "data": "  "}),
                )
                .await
            }
            Case::OtherOrganization => {
                web.key(
                    &ana,
                    "POST",
                    "/incident/close",
                    json!({"id": globex, "version": -1}),
                )
                .await
            }
            Case::ViewersEdit => {
                web.key(
                    &vic,
                    "POST",
                    "/incident",
                    json!({"id": acme, "version": -1, "severity": 1}),
                )
                .await
            }
            Case::StaleVersion => {
                web.key(
                    &ana,
                    "POST",
                    "/incident/close",
                    json!({"id": acme, "version": 0}),
                )
                .await
            }
        };
        if status != expected.0 {
            failures.push(format!("XSOAR {case:?}: {status} {body}"));
        }
        // A UI form: what the caller may not do is an error page; what was not saved is said
        // on the incident's page.
        let (status, message) = match case {
            Case::EmptyNote => {
                web.form(
                    &ana_ui,
                    &format!("/incidents/{acme}/note"),
                    &[("text", "  ")],
                )
                .await
            }
            Case::OtherOrganization => {
                web.form(
                    &ana_ui,
                    &format!("/incidents/{globex}/close"),
                    &[("reason", "Resolved")],
                )
                .await
            }
            Case::ViewersEdit => {
                web.form(
                    &vic_ui,
                    &format!("/incidents/{acme}/edit"),
                    &[("severity", "low")],
                )
                .await
            }
            Case::StaleVersion => {
                web.form(
                    &ana_ui,
                    &format!("/incidents/{acme}/close"),
                    &[("reason", "Resolved"), ("version", "0")],
                )
                .await
            }
        };
        let ok = match case {
            Case::EmptyNote => status == 303 && message.contains("the note is empty"),
            Case::OtherOrganization => status == 404,
            Case::ViewersEdit => status == 403,
            Case::StaleVersion => status == 303 && message.contains("changed since"),
        };
        if !ok {
            failures.push(format!("UI {case:?}: {status} {message:?}"));
        }
    }
    assert_eq!(serve.stop(), Some(0));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(before(&acme), acme_before, "the Acme incident is as it was");
    assert_eq!(
        before(&globex),
        globex_before,
        "the Globex incident is as it was"
    );
    assert_eq!(entries(&acme), acme_entries, "no entry was added");
}
