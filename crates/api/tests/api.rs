//! The API as a client sees it: a real server on port 0 over a store with incidents of two
//! organizations, users of each role, and API keys.

mod common;

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
use watchfloor_api::{AppState, auth};
use watchfloor_core::{NewIncident, Severity, SlaPolicy};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{Actor, FetchTarget, IncidentFilter, Role, SqlStore};

struct App {
    url: String,
    store: Arc<SqlStore>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl App {
    async fn send(&self, method: &str, path: &str, key: &str, body: Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
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

    async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(key) = key {
            req = req.header("Authorization", key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Closes incident `id` as resolved; the answer's status.
    async fn close(&self, id: i64, key: &str) -> u16 {
        self.send(
            "POST",
            &format!("/api/v1/incidents/{id}/close"),
            key,
            json!({"reason": "Resolved"}),
        )
        .await
        .0
    }

    /// The id of the stored incident with this provider id.
    async fn id_of(&self, external_id: &str) -> i64 {
        let all = self
            .store
            .incidents(&IncidentFilter::default())
            .await
            .unwrap();
        all.iter()
            .find(|i| i.external_id == external_id)
            .unwrap()
            .id
    }

    /// The ids of the fixture's incidents: Acme's a1 and a2, and Globex's g1.
    async fn fixture_ids(&self) -> (i64, i64, i64) {
        (
            self.id_of("a1").await,
            self.id_of("a2").await,
            self.id_of("g1").await,
        )
    }

    /// A UI page as `user` (password `pw`, as `key_for` makes it) sees it, logged in as the
    /// browser's login does.
    async fn ui_page(&self, user: &str, path: &str) -> String {
        let login = self
            .http
            .post(format!("{}/api/v1/login", self.url))
            .json(&json!({"name": user, "password": "pw"}))
            .send()
            .await
            .unwrap();
        let token: Value = login.json().await.unwrap();
        self.http
            .get(format!("{}{path}", self.url))
            .header(
                "Cookie",
                format!("wf_session={}", token["token"].as_str().unwrap()),
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn key_for(&self, name: &str, role: Role, orgs: &[&str]) -> String {
        common::user_with_key(&self.store, name, role, orgs).await
    }
}

/// An alert of `org`, as the `fes` instance fetches it.
fn incident(id: &str, org: &str) -> NewIncident {
    NewIncident {
        provider: Default::default(),
        external_id: id.into(),
        name: format!("alert {id}"),
        occurred: Utc::now(),
        severity: Severity::High,
        organization: Some(org.into()),
        details: String::new(),
        labels: vec![],
        raw: json!({}),
    }
}

/// Stores alerts as the `fes` instance's fetch would.
async fn fetch(store: &SqlStore, incidents: &[NewIncident]) {
    let target = FetchTarget {
        instance: "fes",
        integration: "covalence-managed-security",
        incident_type: "Covalence ARO",
        scope: "",
        sla: &SlaPolicy::default(),
        lease: None,
    };
    store
        .commit_fetch(target, incidents, &json!({}))
        .await
        .unwrap();
}

async fn spawn_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    fetch(
        &store,
        &[
            incident("a1", "Acme"),
            incident("a2", "Acme"),
            incident("g1", "Globex"),
        ],
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(store.clone(), SlaPolicy::default());
    tokio::spawn(watchfloor_api::serve(
        listener,
        state,
        std::future::pending(),
    ));
    App {
        url,
        store,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

#[tokio::test]
async fn health_and_readiness_need_no_key() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await, (200, Value::from("ok")));
    assert_eq!(app.get("/readyz", None).await, (200, Value::from("ready")));
}

#[tokio::test]
async fn every_api_route_needs_a_valid_key() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/incidents", None).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Authorization header")
    );
    assert_eq!(app.get("/api/v1/incidents", Some("made-up")).await.0, 401);
    let key = app.key_for("dana", Role::Analyst, &["Acme"]).await;
    assert_eq!(app.get("/api/v1/incidents", Some(&key)).await.0, 200);
    assert_eq!(
        app.get("/api/v1/incidents", Some(&format!("Bearer {key}")))
            .await
            .0,
        200
    );
    app.store
        .disable_user(&Actor::default(), "dana")
        .await
        .unwrap();
    assert_eq!(
        app.get("/api/v1/incidents", Some(&key)).await.0,
        401,
        "revoked"
    );
}

/// An analyst of one organization sees its incidents only, and another organization's
/// incident is a 404, not a 403; an admin sees all.
#[tokio::test]
async fn each_user_sees_only_its_organizations() {
    let app = spawn_app().await;
    let acme = app.key_for("dana", Role::Analyst, &["acme"]).await;
    let admin = app.key_for("root", Role::Admin, &[]).await;
    let names = |body: &Value| -> Vec<String> {
        let mut n: Vec<String> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["external_id"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&app.get("/api/v1/incidents", Some(&acme)).await.1),
        ["a1", "a2"]
    );
    assert_eq!(
        names(&app.get("/api/v1/incidents", Some(&admin)).await.1),
        ["a1", "a2", "g1"]
    );
    let globex = app.id_of("g1").await;
    let mine = app.id_of("a1").await;
    let (status, body) = app
        .get(&format!("/api/v1/incidents/{globex}"), Some(&acme))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some(format!("no incident {globex}").as_str()))
    );
    let missing = app.get("/api/v1/incidents/999999", Some(&acme)).await;
    assert_eq!(missing.0, 404, "the same answer as a missing one");
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{mine}"), Some(&acme))
            .await
            .0,
        200
    );
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{globex}"), Some(&admin))
            .await
            .0,
        200
    );
}

/// Changes go through the same lifecycle rules as the CLI, recorded for the caller: a stale
/// version is 409, a refused change 422, a viewer 403, another organization's incident 404.
#[tokio::test]
async fn incidents_are_worked_over_the_api() {
    let app = spawn_app().await;
    let dana = app.key_for("dana", Role::Analyst, &["Acme"]).await;
    let vera = app.key_for("vera", Role::Viewer, &["Acme"]).await;
    let (acme, globex) = (app.id_of("a1").await, app.id_of("g1").await);
    let path = |id: i64, rest: &str| format!("/api/v1/incidents/{id}{rest}");

    let (status, body) = app
        .send(
            "PATCH",
            &path(acme, ""),
            &dana,
            json!({"owner": "dana", "status": "active", "version": 1}),
        )
        .await;
    assert_eq!(
        (status, body["owner"].as_str(), body["version"].as_i64()),
        (200, Some("dana"), Some(2))
    );
    let (status, body) = app
        .send(
            "POST",
            &path(acme, "/close"),
            &dana,
            json!({"reason": "False Positive", "version": 1}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("version 1, now 2"));
    let (status, body) = app
        .send(
            "POST",
            &path(acme, "/close"),
            &dana,
            json!({"reason": "False Positive", "notes": "scanner", "version": 2}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("closed")),
        "{body}"
    );
    let (status, body) = app
        .send("PATCH", &path(acme, ""), &dana, json!({"severity": "low"}))
        .await;
    assert_eq!(status, 422);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .ends_with("the incident is closed; reopen it first")
    );
    assert_eq!(
        app.send("POST", &path(acme, "/reopen"), &dana, json!({}))
            .await
            .0,
        200
    );
    let (status, entry) = app
        .send(
            "POST",
            &path(acme, "/notes"),
            &dana,
            json!({"text": "called the site"}),
        )
        .await;
    assert_eq!((status, entry["author"].as_str()), (201, Some("dana")));
    assert_eq!(
        app.send("POST", &path(acme, "/notes"), &vera, json!({"text": "x"}))
            .await
            .0,
        403
    );
    assert_eq!(app.close(globex, &dana).await, 404);
    let (status, entries) = app.get(&path(acme, "/entries"), Some(&vera)).await;
    assert_eq!(status, 200);
    let authors: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["author"].as_str().unwrap())
        .collect();
    assert_eq!(authors, ["dana", "dana", "dana", "dana"]);
    assert_eq!(app.get(&path(globex, "/entries"), Some(&vera)).await.0, 404);
}

#[tokio::test]
async fn metrics_count_incidents_by_status() {
    let app = spawn_app().await;
    let (status, body) = app.get("/metrics", None).await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap();
    assert!(
        text.contains("watchfloor_incidents{status=\"pending\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("watchfloor_incidents{status=\"closed\"} 0\n"),
        "{text}"
    );
}

/// Each answer carries a request id (the caller's, when it sends a sane one), and metrics count
/// requests by route template and status, with latency histograms.
#[tokio::test]
async fn requests_are_counted_by_route_and_carry_an_id() {
    let app = spawn_app().await;
    let key = app.key_for("dana", Role::Analyst, &["Acme"]).await;
    let id = app.id_of("a1").await;
    let answer = app
        .http
        .get(format!("{}/api/v1/incidents/{id}", app.url))
        .header("Authorization", &key)
        .send()
        .await
        .unwrap();
    let made = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(made.len(), 16, "{made}");
    let answer = app
        .http
        .get(format!("{}/api/v1/incidents/{id}", app.url))
        .header("Authorization", &key)
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["x-request-id"], "trace-42");
    let answer = app
        .http
        .get(format!("{}/healthz", app.url))
        .header("x-request-id", "<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(answer.headers()["x-request-id"], "<script>");
    app.get("/api/v1/incidents/999999", Some(&key)).await;
    assert_eq!(app.close(id, &key).await, 200);
    let (_, body) = app.get("/metrics", None).await;
    let text = body.as_str().unwrap();
    for line in [
        "watchfloor_http_requests_total{method=\"GET\",route=\"/api/v1/incidents/{id}\",status=\"200\"}",
        "watchfloor_http_requests_total{method=\"GET\",route=\"/api/v1/incidents/{id}\",status=\"404\"}",
        "watchfloor_http_request_seconds_bucket{route=\"/api/v1/incidents/{id}\",le=\"+Inf\"}",
        "watchfloor_outbox_depth{instance=\"fes\"} 1\n",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert!(!text.contains(&key), "no key in metrics");
}

/// Every /api/v1 route refuses a missing and a revoked key, with the stable code.
#[tokio::test]
async fn every_route_refuses_a_missing_or_revoked_key() {
    let app = spawn_app().await;
    let key = app.key_for("dana", Role::Analyst, &["Acme"]).await;
    app.store
        .disable_user(&Actor::default(), "dana")
        .await
        .unwrap();
    let id = app
        .store
        .incidents(&IncidentFilter::default())
        .await
        .unwrap()[0]
        .id;
    let routes = [
        ("GET", "/api/v1/me".to_string()),
        ("GET", "/api/v1/instances/health".to_string()),
        ("GET", "/api/v1/incidents".to_string()),
        ("POST", "/api/v1/incidents".to_string()),
        ("GET", format!("/api/v1/incidents/{id}")),
        ("PATCH", format!("/api/v1/incidents/{id}")),
        ("DELETE", format!("/api/v1/incidents/{id}")),
        ("GET", format!("/api/v1/incidents/{id}/context")),
        ("GET", format!("/api/v1/incidents/{id}/entries")),
        ("POST", format!("/api/v1/incidents/{id}/close")),
        ("POST", format!("/api/v1/incidents/{id}/reopen")),
        ("POST", format!("/api/v1/incidents/{id}/notes")),
        ("POST", "/api/v1/incidents/bulk".to_string()),
        ("GET", "/api/v1/users".to_string()),
        ("POST", "/api/v1/users".to_string()),
    ];
    // XSOAR's API, at `/` and under `/xsoar`.
    let xsoar = [
        ("POST", "/incidents/search".to_string()),
        ("POST", "/incident".to_string()),
        ("POST", "/incident/close".to_string()),
        ("POST", "/incident/batch".to_string()),
        ("POST", "/incident/batchClose".to_string()),
        ("POST", "/incident/batchDelete".to_string()),
        ("GET", format!("/incident/load/{id}")),
        ("POST", "/entry".to_string()),
        ("POST", "/entry/note".to_string()),
        ("POST", "/entry/formatted".to_string()),
        ("POST", "/entry/execute/sync".to_string()),
        ("POST", format!("/investigation/{id}")),
        ("POST", format!("/investigation/{id}/context")),
        ("GET", "/user".to_string()),
        ("GET", "/about".to_string()),
    ];
    let routes = routes.into_iter().chain(
        xsoar
            .iter()
            .flat_map(|(m, p)| [(*m, p.clone()), (*m, format!("/xsoar{p}"))]),
    );
    for (method, path) in routes {
        for credential in ["", key.as_str()] {
            let (status, body) = app.send(method, &path, credential, json!({})).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (401, Some("unauthorized")),
                "{method} {path}"
            );
        }
    }
}

/// XSOAR's bulk edit (`POST /incident/batch`) sets its `data` on each incident named, counts
/// those it could not change, closes with `status` 2, and refuses by name what it cannot set.
#[tokio::test]
async fn xsoar_batch_edit_sets_its_data_on_each_incident_named() {
    let app = spawn_app().await;
    let admin = app.key_for("root", Role::Admin, &[]).await;
    app.key_for("dana", Role::Analyst, &["Acme", "Globex"])
        .await;
    let (a1, g1) = (app.id_of("a1").await, app.id_of("g1").await);
    let (status, answer) = app
        .send(
            "POST",
            "/incident/batch",
            &admin,
            json!({"ids": [a1.to_string(), g1, "999999"], "data": {"severity": 4, "owner": "dana", "type": "Phishing"}, "CustomFields": {}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["total"].clone(), answer["notUpdated"].clone()),
        (json!(2), json!(1))
    );
    for id in [a1, g1] {
        let i = app.store.incident(id).await.unwrap().unwrap();
        assert_eq!(
            (i.severity, i.owner.as_deref(), i.kind.as_str()),
            (Severity::Critical, Some("dana"), "Phishing")
        );
    }
    // An empty owner unassigns; status 2 alone closes, with the batch's reason.
    let (status, answer) = app
        .send(
            "POST",
            "/incident/batch",
            &admin,
            json!({"ids": [a1], "data": {"owner": ""}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(app.store.incident(a1).await.unwrap().unwrap().owner, None);
    let (status, answer) = app
        .send(
            "POST",
            "/incident/batch",
            &admin,
            json!({"ids": [a1], "data": {"status": 2}, "closeReason": "Resolved", "closeNotes": "bulk"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let closed = app.store.incident(a1).await.unwrap().unwrap();
    assert_eq!(
        (
            closed.close_reason.map(|r| r.as_str()),
            closed.close_notes.as_deref()
        ),
        (Some("Resolved"), Some("bulk"))
    );
    // A closed incident is not edited: counted, not changed.
    let (_, answer) = app
        .send(
            "POST",
            "/incident/batch",
            &admin,
            json!({"ids": [a1], "data": {"severity": 1}}),
        )
        .await;
    assert_eq!(answer["notUpdated"], json!(1), "{answer}");
    for (body, says) in [
        (
            json!({"ids": [g1], "data": {"name": "renamed"}}),
            "`data.name` cannot be changed",
        ),
        (
            json!({"ids": [g1], "data": {"phase": "x"}}),
            "`data.phase` is not a field a batch edit sets",
        ),
        (json!({"ids": [g1], "data": {}}), "the batch sets nothing"),
        (json!({"ids": [g1]}), "the batch sets nothing"),
        (
            json!({"ids": [g1], "data": "severity=4"}),
            "`data` must be an object",
        ),
        (
            json!({"ids": [g1], "data": {"severity": 9}}),
            "not on XSOAR's scale",
        ),
        (
            json!({"ids": [g1], "data": {"status": 2, "owner": "x"}}),
            "sets nothing else: send `data.owner`",
        ),
        (
            json!({"ids": [g1], "data": {"severity": 1}, "CustomFields": {"organization": "Acme"}}),
            "`CustomFields` cannot be set",
        ),
    ] {
        let (status, answer) = app
            .send("POST", "/incident/batch", &admin, body.clone())
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.to_string().contains(says), "{body}: {answer}");
    }
    let g = app.store.incident(g1).await.unwrap().unwrap();
    assert_eq!((g.severity, g.closed), (Severity::Critical, None));
}

/// An analyst of one organization gets nothing of another through any route; a viewer changes
/// nothing; creating and deleting follow the same rules; no response carries a secret.
#[tokio::test]
async fn scoping_holds_on_every_route() {
    let app = spawn_app().await;
    let dana = app.key_for("dana", Role::Analyst, &["Acme"]).await;
    let vera = app.key_for("vera", Role::Viewer, &["Acme"]).await;
    let globex = app.id_of("g1").await;
    for (method, rest, body) in [
        ("GET", "", json!({})),
        ("PATCH", "", json!({"owner": "dana"})),
        ("DELETE", "", json!({})),
        ("GET", "/context", json!({})),
        ("GET", "/entries", json!({})),
        ("POST", "/close", json!({"reason": "Resolved"})),
        ("POST", "/reopen", json!({})),
        ("POST", "/notes", json!({"text": "x"})),
    ] {
        let (status, answer) = app
            .send(
                method,
                &format!("/api/v1/incidents/{globex}{rest}"),
                &dana,
                body,
            )
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (404, Some("not_found")),
            "{method} {rest}"
        );
    }
    // The same through XSOAR's API: another organization's incident does not exist.
    let g = globex.to_string();
    for (method, path, body) in [
        ("GET", format!("/incident/load/{g}"), json!({})),
        (
            "POST",
            "/incident".into(),
            json!({"id": g, "version": -1, "owner": "dana"}),
        ),
        (
            "POST",
            "/incident/close".into(),
            json!({"id": g, "closeReason": "Resolved"}),
        ),
        (
            "POST",
            "/entry".into(),
            json!({"investigationId": g, "data": "x"}),
        ),
        (
            "POST",
            "/entry/note".into(),
            json!({"investigationId": g, "data": "x"}),
        ),
        (
            "POST",
            "/entry/formatted".into(),
            json!({"investigationId": g, "contents": "x"}),
        ),
        (
            "POST",
            "/entry/execute/sync".into(),
            json!({"investigationId": g, "data": "!x"}),
        ),
        ("POST", format!("/investigation/{g}"), json!({})),
        ("POST", format!("/investigation/{g}/context"), json!({})),
    ] {
        let (status, answer) = app.send(method, &path, &dana, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }
    for (path, body) in [
        (
            "/incidents/search",
            json!({"filter": {"query": "", "size": 100}}),
        ),
        (
            "/incidents/search",
            json!({"filter": {"id": [g], "size": 100}}),
        ),
        (
            "/incident/batchClose",
            json!({"ids": [g], "closeReason": "Resolved"}),
        ),
        (
            "/incident/batchClose",
            json!({"all": true, "filter": {"query": "organization:globex"}}),
        ),
        ("/incident/batchDelete", json!({"ids": [g]})),
        (
            "/incident/batch",
            json!({"ids": [g], "data": {"severity": 4}}),
        ),
        (
            "/incident/batch",
            json!({"all": true, "filter": {"query": "organization:globex"}, "data": {"owner": "dana"}}),
        ),
    ] {
        let (status, answer) = app.send("POST", path, &dana, body).await;
        assert_eq!(status, 200, "{path}: {answer}");
        let ids: Vec<&str> = answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert!(!ids.contains(&g.as_str()), "{path}: {answer}");
    }
    let untouched = app.store.incident(globex).await.unwrap().unwrap();
    assert!(untouched.closed.is_none());
    assert_ne!(untouched.severity, Severity::Critical);
    assert_ne!(untouched.owner.as_deref(), Some("dana"));
    let (status, _) = app
        .send(
            "POST",
            "/incident",
            &vera,
            json!({"name": "n", "CustomFields": {"organization": "Acme"}}),
        )
        .await;
    assert_eq!(
        status, 403,
        "a viewer creates nothing through XSOAR's API either"
    );
    let (status, _) = app
        .send(
            "POST",
            "/api/v1/incidents",
            &dana,
            json!({"name": "n", "severity": "high", "organization": "Globex"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, created) = app
        .send(
            "POST",
            "/api/v1/incidents",
            &dana,
            json!({"name": "Phishing report", "severity": "high", "organization": "Acme"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["raw"], json!({}), "none given, none kept");
    let id = created["id"].as_i64().unwrap();
    // A source record given is kept as the incident's raw record.
    let source = json!({"alert": {"src": "198.51.100.77", "tags": ["<b>x</b>"]}});
    let (status, sourced) = app
        .send(
            "POST",
            "/api/v1/incidents",
            &dana,
            json!({"name": "From a script", "severity": "low", "organization": "Acme", "raw": source}),
        )
        .await;
    assert_eq!((status, &sourced["raw"]), (201, &source), "{sourced}");
    // Regression (hardening 27.15): a case variant split an organization's incidents; it is
    // spelled as the creator's organization is.
    let (status, variant) = app
        .send(
            "POST",
            "/api/v1/incidents",
            &dana,
            json!({"name": "Shouted", "severity": "low", "organization": "ACME"}),
        )
        .await;
    assert_eq!(
        (status, &variant["organization"]),
        (201, &json!("Acme")),
        "{variant}"
    );
    assert_eq!(
        app.send(
            "POST",
            "/api/v1/incidents",
            &vera,
            json!({"name": "n", "severity": "low", "organization": "Acme"})
        )
        .await
        .0,
        403
    );
    assert_eq!(
        app.send(
            "DELETE",
            &format!("/api/v1/incidents/{id}"),
            &vera,
            json!({})
        )
        .await
        .0,
        403
    );
    assert_eq!(
        app.send(
            "DELETE",
            &format!("/api/v1/incidents/{id}"),
            &dana,
            json!({})
        )
        .await
        .0,
        204
    );
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{id}"), Some(&dana))
            .await
            .0,
        404
    );
    let (status, me) = app.get("/api/v1/me", Some(&dana)).await;
    assert_eq!(
        (status, me["name"].as_str(), me["role"].as_str()),
        (200, Some("dana"), Some("analyst"))
    );
    assert!(!me.to_string().contains("argon2"), "no password hash: {me}");
    assert!(!me.to_string().contains(&dana), "no key");
}

/// A password login gives a session that works like a key and ends at logout; failed logins
/// are limited per user and per address, and the answer never says which part was wrong.
#[tokio::test]
async fn login_sessions_and_failed_login_limits() {
    let app = spawn_app().await;
    let hash = auth::hash_password("canary-pass-77").unwrap();
    app.store
        .create_user(
            &Actor::default(),
            "dana",
            Role::Analyst,
            &["Acme".into()],
            &hash,
        )
        .await
        .unwrap();
    let app = &app;
    let login = |name: &str, password: &str| {
        let body = json!({"name": name, "password": password});
        async move { app.send("POST", "/api/v1/login", "", body).await }
    };
    let (status, body) = login("dana", "canary-pass-77").await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    let (status, me) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("dana")));
    assert_eq!(
        app.send("POST", "/api/v1/logout", &token, json!({}))
            .await
            .0,
        204
    );
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).await.0,
        401,
        "the session ended"
    );

    let (status, body) = login("dana", "wrong").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("the name or the password is wrong"))
    );
    assert_eq!(
        login("nobody", "x").await.1["error"],
        body["error"],
        "no hint which part"
    );
    for _ in 0..3 {
        assert_eq!(login("dana", "wrong").await.0, 401);
    }
    // Five failures from this address: even the right password waits now.
    let (status, body) = login("dana", "canary-pass-77").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body["code"], "too_many_requests",
        "a stable code, not `internal`"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("too many failed logins; try again in")
    );
    assert!(!body.to_string().contains("canary"));
}

/// Provider commands over the API: the definitions, a command on its own for a user who sees
/// every organization, and one in an incident's context for an analyst of its organization,
/// recorded in the war room.
#[tokio::test]
async fn commands_run_over_the_api() {
    use watchfloor_simulators::{
        CovalenceManagedSecurityOptions, CovalenceManagedSecuritySimulator,
    };
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let config = watchfloor_core::Config::parse(
        std::path::Path::new("wf.toml"),
        &format!(
            "[[instances]]\nname = \"fes\"\nintegration = \"covalence-managed-security\"\nfetch = true\nfirst_fetch = \"2024-04-01T00:00:00Z\"\n[instances.params]\nportal_url = \"{}\"\napi_key = \"{}\"\n",
            sim.portal_url, sim.api_key
        ),
        &watchfloor_integrations::definitions(),
        &|_| None,
    )
    .unwrap();
    let runner = Arc::new(
        watchfloor_integrations::Runner::new(watchfloor_integrations::builtin(), &config).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let engine = Arc::new(watchfloor_engine::Engine::new(
        runner.clone(),
        store.clone(),
    ));
    let state = AppState::new(store.clone(), SlaPolicy::default())
        .with_runner(runner)
        .with_engine(engine);
    tokio::spawn(watchfloor_api::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let app = App {
        url,
        store,
        http: reqwest::Client::new(),
        _dir: dir,
    };
    let admin = app.key_for("root", Role::Admin, &[]).await;
    let dana = app.key_for("dana", Role::Analyst, &["Acme"]).await;

    // Instances: listed without secrets; tested and fetched by users who see every organization.
    let (status, list) = app.get("/api/v1/instances", Some(&dana)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            list[0]["name"].as_str(),
            list[0]["integration"].as_str(),
            list[0]["fetch"].as_bool()
        ),
        (Some("fes"), Some("covalence-managed-security"), Some(true))
    );
    assert!(
        !list.to_string().contains(&sim.api_key),
        "no secret: {list}"
    );
    let (status, tested) = app
        .send("POST", "/api/v1/instances/fes/test", &admin, json!({}))
        .await;
    assert_eq!(
        (status, tested["ok"].as_bool()),
        (200, Some(true)),
        "{tested}"
    );
    assert_eq!(
        app.send("POST", "/api/v1/instances/fes/test", &dana, json!({}))
            .await
            .0,
        403
    );
    assert_eq!(
        app.send("POST", "/api/v1/instances/fes/fetch", &dana, json!({}))
            .await
            .0,
        403
    );
    assert_eq!(
        app.send("POST", "/api/v1/instances/nope/fetch", &admin, json!({}))
            .await
            .0,
        404
    );
    let (status, fetched) = app
        .send("POST", "/api/v1/instances/fes/fetch", &admin, json!({}))
        .await;
    assert_eq!(status, 200, "{fetched}");
    let new = fetched["new_incidents"].as_u64().unwrap();
    assert!(new > 0, "{fetched}");
    assert_eq!(app.store.count("fes").await.unwrap() as u64, new);
    let (_, again) = app
        .send("POST", "/api/v1/instances/fes/fetch", &admin, json!({}))
        .await;
    assert_eq!(again["new_incidents"], 0, "fetched once: {again}");
    assert_eq!(again["held"], 0, "no other process holds a scope: {again}");
    let (_, list) = app.get("/api/v1/instances", Some(&admin)).await;
    assert_eq!(list[0]["health"]["consecutive_failures"], 0, "{list}");

    let (status, defs) = app.get("/api/v1/commands", Some(&dana)).await;
    assert_eq!(status, 200);
    assert!(defs.to_string().contains("cov-mgsec-get-aro"));
    let (status, entry) = app
        .send(
            "POST",
            "/api/v1/commands/run",
            &admin,
            json!({"line": "!cov-mgsec-list-org"}),
        )
        .await;
    assert_eq!(status, 200, "{entry}");
    assert!(entry["HumanReadable"].as_str().unwrap().contains("Acme"));
    assert_eq!(
        app.send(
            "POST",
            "/api/v1/commands/run",
            &dana,
            json!({"line": "!cov-mgsec-list-org"})
        )
        .await
        .0,
        403,
        "an analyst of one organization runs commands in incidents only"
    );
    let (status, bad) = app
        .send(
            "POST",
            "/api/v1/commands/run",
            &admin,
            json!({"line": "!cov-mgsec-get-ar"}),
        )
        .await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_request")));

    let (_, created) = app
        .send(
            "POST",
            "/api/v1/incidents",
            &dana,
            json!({"name": "Check ARO", "severity": "low", "organization": "Acme"}),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    // Regression: an analyst of Acme listed every customer of the provider from an incident
    // made by hand. Such an incident has no instance of its own, so the command is refused,
    // and the refusal is recorded.
    let (status, entry) = app
        .send(
            "POST",
            &format!("/api/v1/incidents/{id}/run"),
            &dana,
            json!({"line": "!cov-mgsec-list-org"}),
        )
        .await;
    assert_eq!(
        (status, entry["code"].as_str()),
        (403, Some("forbidden")),
        "{entry}"
    );
    let (_, entries) = app
        .get(&format!("/api/v1/incidents/{id}/entries"), Some(&dana))
        .await;
    let last = entries.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["kind"].as_str(),
            last["author"].as_str(),
            last["body"]["failed"].as_bool()
        ),
        (Some("command"), Some("dana"), Some(true))
    );
    let (_, context) = app
        .get(&format!("/api/v1/incidents/{id}/context"), Some(&dana))
        .await;
    assert!(!context.to_string().contains("Globex"), "{context}");
    // An administrator runs it there as written, and its outputs merge into the context.
    let (status, entry) = app
        .send(
            "POST",
            &format!("/api/v1/incidents/{id}/run"),
            &admin,
            json!({"line": "!cov-mgsec-list-org"}),
        )
        .await;
    assert_eq!(status, 200, "{entry}");
    let (_, context) = app
        .get(&format!("/api/v1/incidents/{id}/context"), Some(&admin))
        .await;
    assert!(
        context.to_string().contains("Globex"),
        "outputs merged: {context}"
    );
}

/// The list pages by keyset (`next`), filters, searches and sorts, counts the whole match in
/// `total`, and refuses a filter it cannot read with a message that names it.
#[tokio::test]
async fn the_list_filters_searches_and_pages() {
    let app = spawn_app().await;
    let admin = app.key_for("root", Role::Admin, &[]).await;
    let acme = app.key_for("dana", Role::Analyst, &["acme"]).await;
    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["external_id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut seen = Vec::new();
    let mut path = "/api/v1/incidents?limit=2&sort=name&order=asc&count=true".to_string();
    loop {
        let (status, body) = app.get(&path, Some(&admin)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total"], 3);
        seen.extend(ids(&body));
        match body["next"].as_str() {
            Some(next) => {
                path =
                    format!("/api/v1/incidents?limit=2&sort=name&order=asc&count=true&after={next}")
            }
            None => break,
        }
    }
    assert_eq!(seen, ["a1", "a2", "g1"]);
    for (query, key, expected) in [
        ("?q=-organization:acme", &admin, vec!["g1"]),
        ("?q=a2", &admin, vec!["a2"]),
        ("?q=g1", &acme, vec![]),
        ("?organization=GLOBEX", &admin, vec!["g1"]),
        ("?q=alert&sort=name&order=desc", &acme, vec!["a2", "a1"]),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/incidents{query}&count=true"), Some(key))
            .await;
        assert_eq!(
            (status, ids(&body)),
            (200, expected.iter().map(|s| s.to_string()).collect()),
            "{query}"
        );
        assert_eq!(body["total"], expected.len(), "{query}");
    }
    // A body the route cannot read is answered as every error is: a bad request, not a
    // refused change (it was 422, `refused`).
    let (status, body) = app
        .send("POST", "/api/v1/incidents", &admin, json!({"nme": "x"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `nme`"),
        "{body}"
    );
    let (_, uncounted) = app.get("/api/v1/incidents", Some(&admin)).await;
    assert_eq!(uncounted["total"], Value::Null, "counting is asked for");
    for (query, says) in [
        ("?q=colour:red", "`colour` is not a field to search"),
        ("?sort=colour", "`colour` is not a field to sort by"),
        ("?after=nonsense", "the cursor is not one this server gave"),
        ("?status=finished", "is not a status"),
        ("?order=up", "use asc or desc"),
        ("?limt=5", "unknown field `limt`"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/incidents{query}"), Some(&admin))
            .await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["code"], "bad_request");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
}

/// Bulk assign and bulk close change what the caller may change and say why not for the rest.
#[tokio::test]
async fn bulk_changes_follow_the_rules_of_one() {
    let app = spawn_app().await;
    let dana = app.key_for("dana", Role::Analyst, &["Acme"]).await;
    let vera = app.key_for("vera", Role::Viewer, &[]).await;
    let (a1, a2, g1) = app.fixture_ids().await;
    let (status, body) = app
        .send(
            "POST",
            "/api/v1/incidents/bulk",
            &dana,
            json!({"ids": [a1, a2, g1], "action": "assign", "owner": "dana"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let owners: Vec<&str> = body["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["dana", "dana"]);
    assert_eq!(
        body["failed"],
        json!([{"id": g1, "error": format!("no incident {g1}")}])
    );
    let (status, body) = app
        .send(
            "POST",
            "/api/v1/incidents/bulk",
            &dana,
            json!({"ids": [a1, a2], "action": "close", "reason": "Duplicate"}),
        )
        .await;
    assert_eq!(
        (status, body["changed"].as_array().unwrap().len()),
        (200, 2),
        "{body}"
    );
    let (_, again) = app
        .send(
            "POST",
            "/api/v1/incidents/bulk",
            &dana,
            json!({"ids": [a1], "action": "close", "reason": "Duplicate"}),
        )
        .await;
    assert!(
        again["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("already closed"),
        "{again}"
    );
    let (status, body) = app
        .send(
            "POST",
            "/api/v1/incidents/bulk",
            &dana,
            json!({"ids": [a1], "action": "close", "reason": "Fixed"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        app.send(
            "POST",
            "/api/v1/incidents/bulk",
            &vera,
            json!({"ids": [g1], "action": "assign", "owner": null})
        )
        .await
        .0,
        403
    );
    assert_eq!(app.store.incident(g1).await.unwrap().unwrap().owner, None);
}

/// A bulk change by `filter` takes every match within the caller's organizations and no
/// other; a dry run changes nothing; each action takes its own fields, and a selection must
/// say which incidents, by one of `ids` or `filter`, and not the whole queue.
#[tokio::test]
async fn bulk_changes_by_filter_take_every_match_the_caller_may_see() {
    let app = spawn_app().await;
    let dana = app.key_for("dana", Role::Analyst, &["Acme"]).await;
    let root = app.key_for("root", Role::Admin, &[]).await;
    let (a1, a2, g1) = app.fixture_ids().await;
    let bulk = async |key: &str, body: serde_json::Value| {
        app.send("POST", "/api/v1/incidents/bulk", key, body).await
    };
    let ids = |body: &serde_json::Value, key: &str| -> Vec<i64> {
        let mut ids: Vec<i64> = body[key]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect();
        ids.sort();
        ids
    };
    // A dry run lists what the change would be tried on, and changes nothing.
    let every_high = json!({"severity": "high"});
    let (status, body) = bulk(
        &dana,
        json!({"filter": every_high, "action": "edit", "severity": "low", "dry_run": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (ids(&body, "selected"), &body["dry_run"]),
        (vec![a1, a2], &json!(true))
    );
    assert_eq!(
        app.store.incident(a1).await.unwrap().unwrap().severity,
        Severity::High
    );
    // The same filter from an Acme analyst leaves Globex's match alone.
    let (status, body) = bulk(
        &dana,
        json!({"filter": every_high, "action": "edit", "severity": "low", "labels": [{"type": "triage", "value": "bulk"}]}),
    )
    .await;
    assert_eq!(
        (status, ids(&body, "changed")),
        (200, vec![a1, a2]),
        "{body}"
    );
    let a2_now = app.store.incident(a2).await.unwrap().unwrap();
    assert_eq!(a2_now.severity, Severity::Low);
    assert!(
        a2_now
            .labels
            .iter()
            .any(|l| l.kind == "triage" && l.value == "bulk")
    );
    assert_eq!(
        app.store.incident(g1).await.unwrap().unwrap().severity,
        Severity::High
    );
    // Close every match of a search, then reopen them by id.
    let (status, body) = bulk(
        &dana,
        json!({"filter": {"q": "severity:low -status:closed"}, "action": "close", "reason": "Resolved", "notes": "seen"}),
    )
    .await;
    assert_eq!(
        (status, ids(&body, "changed")),
        (200, vec![a1, a2]),
        "{body}"
    );
    let (status, body) = bulk(&dana, json!({"ids": [a1, a2], "action": "reopen"})).await;
    assert_eq!(
        (status, ids(&body, "changed")),
        (200, vec![a1, a2]),
        "{body}"
    );
    assert_eq!(
        app.store.incident(a1).await.unwrap().unwrap().status,
        watchfloor_core::Status::Active
    );
    // The same note on every match, and on none of another organization; its dry run adds
    // none.
    let note = |dry_run: bool| json!({"filter": {"q": "alert"}, "action": "note", "text": "part of campaign #812", "dry_run": dry_run});
    let notes_of = async |id: i64| {
        app.store
            .entries(id)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == "note" && e.text() == "part of campaign #812")
            .map(|e| e.author.clone())
            .collect::<Vec<_>>()
    };
    let (status, body) = bulk(&dana, note(true)).await;
    assert_eq!(
        (status, ids(&body, "selected")),
        (200, vec![a1, a2]),
        "{body}"
    );
    assert!(notes_of(a1).await.is_empty());
    let (status, body) = bulk(&dana, note(false)).await;
    assert_eq!(
        (status, ids(&body, "changed")),
        (200, vec![a1, a2]),
        "{body}"
    );
    for (id, authors) in [(a1, vec!["dana"]), (a2, vec!["dana"]), (g1, vec![])] {
        assert_eq!(notes_of(id).await, authors, "incident {id}");
    }
    // What is refused, and why.
    for (body, says) in [
        (
            json!({"filter": {}, "action": "reopen"}),
            "an empty filter would take every incident",
        ),
        (
            json!({"filter": {"sort": "severity", "q": " "}, "action": "reopen"}),
            "an empty filter would take every incident",
        ),
        (
            json!({"ids": [a1], "filter": {"q": "x"}, "action": "reopen"}),
            "either by `ids` or by `filter`",
        ),
        (
            json!({"action": "reopen"}),
            "either by `ids` or by `filter`",
        ),
        (
            json!({"filter": {"q": "x", "limit": 5}, "action": "reopen"}),
            "leave out `after`, `limit`",
        ),
        (
            json!({"ids": [a1], "action": "assign", "severity": "low"}),
            "`severity` is not part of action `assign`: it takes owner",
        ),
        (
            json!({"ids": [a1], "action": "reopen", "notes": "x"}),
            "`notes` is not part of action `reopen`: it takes nothing more",
        ),
        (
            json!({"ids": [a1], "action": "edit"}),
            "an edit sets at least one of",
        ),
        (
            json!({"ids": [a1], "action": "edit", "severity": "urgent"}),
            "urgent",
        ),
        (
            json!({"ids": [a1], "action": "merge"}),
            "use assign, close, reopen, edit or note",
        ),
        (
            json!({"ids": [a1], "action": "note"}),
            "a note needs its `text`",
        ),
        (
            json!({"ids": [a1], "action": "note", "text": "  ", "dry_run": true}),
            "the note is empty",
        ),
        (
            json!({"ids": [a1], "action": "note", "text": "x", "owner": "dana"}),
            "`owner` is not part of action `note`: it takes text, mirror",
        ),
        // An owner who is no user fails the request whole, and its dry run as it would.
        (
            json!({"ids": [a1, a2], "action": "assign", "owner": "nobody"}),
            "there is no user nobody",
        ),
        (
            json!({"filter": {"q": "alert"}, "action": "edit", "owner": "nobody", "dry_run": true}),
            "there is no user nobody",
        ),
    ] {
        let (status, answer) = bulk(&root, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(says),
            "{body}: {answer}"
        );
    }
    // Nothing above changed Globex's incident, nor did the refused requests change Acme's.
    let g1_now = app.store.incident(g1).await.unwrap().unwrap();
    assert_eq!((g1_now.version, g1_now.severity), (1, Severity::High));
}

/// A filter that matches more than a bulk change takes is refused whole, rather than changing
/// the first 10,000 and leaving the rest: ours, and XSOAR's batch calls with `all`.
#[tokio::test]
async fn a_bulk_change_refuses_more_matches_than_it_takes() {
    let app = spawn_app().await;
    let root = app.key_for("root", Role::Admin, &[]).await;
    let many: Vec<NewIncident> = (0..=watchfloor_service::incidents::MAX_BATCH)
        .map(|i| incident(&format!("big-{i}"), "Big"))
        .collect();
    for batch in many.chunks(2_000) {
        fetch(&app.store, batch).await;
    }
    let (status, body) = app
        .send(
            "POST",
            "/api/v1/incidents/bulk",
            &root,
            json!({"filter": {"organization": "big"}, "action": "close", "reason": "Duplicate"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("more than 10000 incidents match: narrow the filter"),
        "{body}"
    );
    // The incidents of the refused batches that were closed: none.
    let closed = async || {
        let (_, open) = app
            .send(
                "POST",
                "/api/v1/incidents/bulk",
                &root,
                json!({"filter": {"organization": "big", "status": "closed"}, "action": "reopen", "dry_run": true}),
            )
            .await;
        open["selected"].clone()
    };
    assert_eq!(closed().await, json!([]), "none was closed");
    // XSOAR's batch calls with `all` too (they closed the first 10,000 and said nothing of the
    // rest).
    for (path, body) in [
        (
            "/incident/batchClose",
            json!({"all": true, "filter": {"query": "organization:big"}, "closeReason": "Duplicate"}),
        ),
        (
            "/incident/batch",
            json!({"all": true, "filter": {"query": "organization:big"}, "data": {"severity": 1}}),
        ),
    ] {
        let (status, answer) = app.send("POST", path, &root, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(
            answer
                .to_string()
                .contains("more than 10000 incidents match `filter`"),
            "{path}: {answer}"
        );
    }
    assert_eq!(
        closed().await,
        json!([]),
        "none was closed by XSOAR's calls either"
    );
}

/// Admins manage users over the API; others cannot, and a made password or key is shown once.
#[tokio::test]
async fn admins_manage_users() {
    let app = spawn_app().await;
    let root = app.key_for("root", Role::Admin, &[]).await;
    let dana = app.key_for("dana", Role::Analyst, &[]).await;
    let (status, body) = app
        .send(
            "POST",
            "/api/v1/users",
            &root,
            json!({"name": "sam", "role": "analyst", "orgs": ["Acme"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["orgs"], json!(["Acme"]));
    let password = body["password"].as_str().unwrap().to_string();
    assert!(password.len() >= 32);
    let (status, body) = app
        .send(
            "POST",
            "/api/v1/login",
            "",
            json!({"name": "sam", "password": password}),
        )
        .await;
    assert_eq!(status, 200, "the made password logs in: {body}");
    let (status, body) = app
        .send("POST", "/api/v1/users/sam/api-key", &root, json!({}))
        .await;
    assert_eq!(status, 201);
    let key = body["key"].as_str().unwrap().to_string();
    let (_, listed) = app.get("/api/v1/incidents?count=true", Some(&key)).await;
    assert_eq!(listed["total"], 2, "sam sees Acme's two");
    let (_, users) = app.get("/api/v1/users", Some(&root)).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"sam"), "{users}");
    assert!(!users.to_string().contains("argon2"), "no hash in {users}");
    for (method, path, body) in [
        ("GET", "/api/v1/users", json!({})),
        (
            "POST",
            "/api/v1/users",
            json!({"name": "eve", "role": "admin"}),
        ),
        ("POST", "/api/v1/users/sam/disable", json!({})),
        ("POST", "/api/v1/users/sam/api-key", json!({})),
    ] {
        assert_eq!(
            app.send(method, path, &dana, body).await.0,
            403,
            "{method} {path}"
        );
    }
    let (status, body) = app
        .send(
            "POST",
            "/api/v1/users",
            &root,
            json!({"name": "sam", "role": "analyst"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app
        .send(
            "POST",
            "/api/v1/users",
            &root,
            json!({"name": "two words", "role": "analyst"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some("user name `two words` must be non-empty and have no spaces")
        )
    );
    assert_eq!(
        app.send("POST", "/api/v1/users/nobody/disable", &root, json!({}))
            .await
            .0,
        404
    );
    assert_eq!(
        app.send("POST", "/api/v1/users/sam/disable", &root, json!({}))
            .await
            .0,
        204
    );
    assert_eq!(
        app.get("/api/v1/incidents", Some(&key)).await.0,
        401,
        "a disabled user's key is revoked"
    );
}

/// The OpenAPI document is served, names every route the server answers, and no other; the
/// README's table of routes is made from the same list.
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc, watchfloor_api::openapi_document());
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", "1").replace("{name}", "nobody");
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let (status, body) = app
                .send(&method.to_ascii_uppercase(), &concrete, "", json!({}))
                .await;
            if op.get("security").is_some() {
                assert_eq!(
                    status, 401,
                    "{method} {path} is served behind a key: {body}"
                );
            } else {
                assert!(
                    ![404, 405].contains(&status),
                    "{method} {path} is served: {status}"
                );
            }
        }
    }
    assert_eq!(operations, watchfloor_api::endpoints().len());
    // A route the document does not name is not served.
    let key = app.key_for("root", Role::Admin, &[]).await;
    assert_eq!(
        app.send("GET", "/api/v1/nothing", &key, json!({})).await.0,
        404
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(
        readme.contains(&watchfloor_api::markdown_table()),
        "the README's table of routes is out of date; it should read:\n{}",
        watchfloor_api::markdown_table()
    );
}

/// A viewer changes nothing, through any route of either API, and the incident stays as it was.
#[tokio::test]
async fn a_viewer_changes_nothing_anywhere() {
    let app = spawn_app().await;
    let vera = app.key_for("vera", Role::Viewer, &[]).await;
    let id = app.id_of("a1").await;
    let before = app.store.incident(id).await.unwrap().unwrap();
    let s = id.to_string();
    let attempts = [
        (
            "POST",
            "/api/v1/incidents".to_string(),
            json!({"name": "n", "severity": "low"}),
        ),
        (
            "PATCH",
            format!("/api/v1/incidents/{id}"),
            json!({"owner": "vera"}),
        ),
        ("DELETE", format!("/api/v1/incidents/{id}"), json!({})),
        (
            "POST",
            format!("/api/v1/incidents/{id}/close"),
            json!({"reason": "Resolved"}),
        ),
        ("POST", format!("/api/v1/incidents/{id}/reopen"), json!({})),
        (
            "POST",
            format!("/api/v1/incidents/{id}/notes"),
            json!({"text": "x"}),
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/run"),
            json!({"line": "!x"}),
        ),
        (
            "POST",
            "/api/v1/incidents/bulk".to_string(),
            json!({"ids": [id], "action": "close", "reason": "Resolved"}),
        ),
        (
            "POST",
            "/api/v1/commands/run".to_string(),
            json!({"line": "!x"}),
        ),
        (
            "POST",
            "/api/v1/users".to_string(),
            json!({"name": "x", "role": "admin"}),
        ),
        ("POST", "/api/v1/instances/fes/fetch".to_string(), json!({})),
        (
            "POST",
            "/incident".to_string(),
            json!({"id": s, "version": -1, "owner": "vera"}),
        ),
        ("POST", "/incident".to_string(), json!({"name": "n"})),
        ("POST", "/incident/close".to_string(), json!({"id": s})),
        (
            "POST",
            "/incident/batchClose".to_string(),
            json!({"ids": [s]}),
        ),
        (
            "POST",
            "/incident/batchDelete".to_string(),
            json!({"ids": [s]}),
        ),
        (
            "POST",
            "/entry".to_string(),
            json!({"investigationId": s, "data": "x"}),
        ),
        (
            "POST",
            "/entry/note".to_string(),
            json!({"investigationId": s, "data": "x"}),
        ),
        (
            "POST",
            "/entry/formatted".to_string(),
            json!({"investigationId": s, "contents": "x"}),
        ),
        (
            "POST",
            "/entry/execute/sync".to_string(),
            json!({"investigationId": s, "data": "!x"}),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = app.send(method, &path, &vera, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
    let after = app.store.incident(id).await.unwrap().unwrap();
    assert_eq!(after, before);
    assert_eq!(app.store.entries(id).await.unwrap().len(), 0);
    assert_eq!(app.store.count("").await.unwrap(), 0, "nothing created");
}

/// The UI's login gives an HttpOnly, SameSite=Strict cookie; a form without the session's CSRF
/// token is refused; an ended session goes to a login page that says so; every page carries a
/// strict Content-Security-Policy.
#[tokio::test]
async fn ui_sessions_forms_and_headers() {
    let app = spawn_app().await;
    app.key_for("dana", Role::Analyst, &["Acme"]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |password: &'static str| {
        http.post(format!("{}/login", app.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("name=dana&password={password}"))
            .send()
    };
    let wrong = login("nope").await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("The name or the password is wrong.")
    );
    let ok = login("pw").await.unwrap();
    assert_eq!(ok.status(), 303);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();

    let queue = http
        .get(format!("{}/", app.url))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(queue.status(), 200);
    let csp = queue.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let page = queue.text().await.unwrap();
    assert!(
        page.contains("alert a1") && !page.contains("alert g1"),
        "dana sees Acme only"
    );
    assert!(!page.contains("<script>"), "no inline script");
    // The filter counts, within dana's organizations, each a link that sets its filter.
    assert!(
        page.contains(r#"<span class="label">Status</span>"#)
            && page.contains(r#"<a class="on" href="/">open <span class="n">2</span>"#)
            && page.contains(r#"<a href="/?status=closed">closed"#)
            && page.contains(r#"href="/?organization=Acme">Acme <span class="n">2</span>"#)
            && !page.contains("Globex"),
        "{page}"
    );

    let id = app.id_of("a1").await;
    let forged = http
        .post(format!("{}/incidents/{id}/close", app.url))
        .header("Cookie", &session)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("reason=Resolved&csrf=guess")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(
        app.store
            .incident(id)
            .await
            .unwrap()
            .unwrap()
            .closed
            .is_none()
    );

    let ended = http
        .get(format!("{}/", app.url))
        .header("Cookie", "wf_session=long-gone")
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 303);
    assert_eq!(ended.headers()["location"], "/login?expired=1");
    let page = http
        .get(format!("{}/login?expired=1", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Your session has ended."));
    let none = http
        .get(format!("{}/dashboard", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(none.headers()["location"], "/login");
}

/// The filter counts: each list counts under the other filters, within the reader's
/// organizations; a text search's are counted among its matches.
#[tokio::test]
async fn filter_counts_respect_the_filter_and_the_reader() {
    let app = spawn_app().await;
    let dana = app.key_for("dana", Role::Analyst, &["acme"]).await;
    let admin = app.key_for("root", Role::Admin, &[]).await;
    let a1 = app.id_of("a1").await;
    assert_eq!(app.close(a1, &admin).await, 200);
    // [value, count] pairs of one list.
    let pairs = |body: &Value, facet: &str| -> Vec<(Value, u64)> {
        body["facets"][facet]
            .as_array()
            .unwrap_or_else(|| panic!("{facet} in {body}"))
            .iter()
            .map(|v| (v["value"].clone(), v["count"].as_u64().unwrap()))
            .collect()
    };
    let (status, all) = app
        .get("/api/v1/incidents/facets?status=pending", Some(&admin))
        .await;
    assert_eq!(status, 200, "{all}");
    // Status ignores its own filter; the others take it.
    assert_eq!(
        pairs(&all, "status"),
        [
            (json!("pending"), 2),
            (json!("active"), 0),
            (json!("closed"), 1)
        ]
    );
    assert_eq!(
        pairs(&all, "organization"),
        [(json!("Acme"), 1), (json!("Globex"), 1)]
    );
    assert_eq!(pairs(&all, "owner"), [(Value::Null, 2)]);
    let severity = pairs(&all, "severity");
    assert_eq!(severity.len(), 6, "every severity is listed");
    assert!(severity.contains(&(json!("High"), 2)), "{severity:?}");
    // An analyst of Acme counts Acme's incidents only.
    let (_, mine) = app.get("/api/v1/incidents/facets", Some(&dana)).await;
    assert_eq!(pairs(&mine, "organization"), [(json!("Acme"), 2)]);
    assert_eq!(
        pairs(&mine, "status"),
        [
            (json!("pending"), 1),
            (json!("active"), 0),
            (json!("closed"), 1)
        ]
    );
    // Regression (first hour: the counts vanished with text in the search): a search's
    // counts are counted among its matches, within the reader's organizations.
    let (status, text) = app.get("/api/v1/incidents/facets?q=a1", Some(&admin)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        pairs(&text, "status"),
        [
            (json!("pending"), 0),
            (json!("active"), 0),
            (json!("closed"), 1)
        ]
    );
    assert_eq!(pairs(&text, "organization"), [(json!("Acme"), 1)]);
    assert_eq!(text["sampled"], Value::Null);
    let (_, theirs) = app.get("/api/v1/incidents/facets?q=g1", Some(&dana)).await;
    assert_eq!(pairs(&theirs, "organization"), []);
    let (status, bad) = app
        .get("/api/v1/incidents/facets?status=nope", Some(&admin))
        .await;
    assert_eq!(status, 400, "{bad}");
}

/// The dashboard's open incidents per SLA state: breached and at risk counted, the other open
/// ones within their SLA, closed ones nowhere (the open total comes from the kept filter
/// counts, whose status list holds closed ones too).
#[tokio::test]
async fn the_dashboard_counts_open_incidents_per_sla_state() {
    let app = spawn_app().await;
    let admin = app.key_for("root", Role::Admin, &[]).await;
    // Due at once (breached), and due 8 s after it is stored (at risk after 6 s): the page is
    // read between the two, with room for a loaded machine's slow login.
    let sla = SlaPolicy {
        critical: std::time::Duration::from_millis(1),
        medium: std::time::Duration::from_secs(8),
        ..SlaPolicy::default()
    };
    let target = FetchTarget {
        instance: "fes",
        integration: "covalence-managed-security",
        incident_type: "Covalence ARO",
        scope: "",
        sla: &sla,
        lease: None,
    };
    let late = NewIncident {
        severity: Severity::Critical,
        ..incident("late", "Acme")
    };
    let soon = NewIncident {
        severity: Severity::Medium,
        ..incident("soon", "Acme")
    };
    app.store
        .commit_fetch(target, &[late, soon], &json!({}))
        .await
        .unwrap();
    let a1 = app.id_of("a1").await;
    assert_eq!(app.close(a1, &admin).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(6200)).await;
    let page = app.ui_page("root", "/dashboard").await;
    // The number drawn after a state's bar.
    let count = |state: &str| -> u64 {
        let bar = format!("class=\"sla-bar {state}\"");
        let after = &page[page.find(&bar).unwrap_or_else(|| panic!("{bar} in {page}"))..];
        let text = &after[after.find("class=\"count\"").unwrap()..];
        let n = &text[text.find('>').unwrap() + 1..text.find("</text>").unwrap()];
        n.parse().unwrap()
    };
    assert_eq!(
        (count("breached"), count("at-risk"), count("ok")),
        (1, 1, 2),
        "{page}"
    );
}

/// Organization names come from providers: the filter counts show them as text.
#[tokio::test]
async fn filter_counts_escape_provider_names() {
    let app = spawn_app().await;
    app.key_for("root", Role::Admin, &[]).await;
    let evil = NewIncident {
        organization: Some("<img src=x onerror=alert(1)>".into()),
        ..incident("e1", "")
    };
    fetch(&app.store, &[evil]).await;
    let page = app.ui_page("root", "/").await;
    assert!(page.contains(r#"class="facets""#), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt; <span class=\"n\">1</span>"),
        "{page}"
    );
}

/// Regression (NUL in an incident name, owner, organization or filter gave 500 through the
/// API on PostgreSQL): text with a NUL character is refused with a 400 that names the field,
/// through `/api/v1` and XSOAR's API alike, and nothing is stored.
#[tokio::test]
async fn text_with_nul_is_refused_with_a_clear_error() {
    let app = spawn_app().await;
    let admin = app.key_for("root", Role::Admin, &[]).await;
    let before = app.store.count("").await.unwrap();
    let id = app.id_of("a1").await;
    let cases = [
        (
            "POST",
            "/api/v1/incidents".to_string(),
            json!({"name": "nul\u{0}name", "severity": "low"}),
            "the name",
        ),
        (
            "POST",
            "/api/v1/incidents".to_string(),
            json!({"name": "n", "severity": "low", "organization": "Ac\u{0}me"}),
            "the organization",
        ),
        (
            "PATCH",
            format!("/api/v1/incidents/{id}"),
            json!({"owner": "da\u{0}na"}),
            "the owner",
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/notes"),
            json!({"text": "a\u{0}b"}),
            "the note",
        ),
        (
            "POST",
            "/incidents/search".to_string(),
            json!({"filter": {"query": "phish\u{0}", "size": 5}}),
            "NUL",
        ),
        (
            "POST",
            "/incidents/search".to_string(),
            json!({"filter": {"name": ["x\u{0}"], "size": 5}}),
            "filter.name",
        ),
        (
            "POST",
            "/incident".to_string(),
            json!({"name": "nul\u{0}", "severity": 1}),
            "the name",
        ),
    ];
    for (method, path, body, names) in cases {
        let (status, answer) = app.send(method, &path, &admin, body).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(names),
            "{method} {path}: {answer}"
        );
    }
    for query in ["q=phish%00", "organization=Ac%00me", "owner=%00"] {
        let (status, answer) = app
            .get(&format!("/api/v1/incidents?{query}"), Some(&admin))
            .await;
        assert_eq!(status, 400, "{query}: {answer}");
    }
    assert_eq!(
        app.store.count("").await.unwrap(),
        before,
        "nothing was created"
    );
    let a1 = app.store.incident(id).await.unwrap().unwrap();
    assert_eq!(a1.owner, None);
}

/// Regressions of requests that answered 500, redirected off-site or made an admin look
/// scoped: each is now a clear 4xx or a same-site redirect.
#[tokio::test]
async fn hostile_and_mistaken_requests_get_clear_answers() {
    let app = spawn_app().await;
    let admin = app.key_for("root", Role::Admin, &[]).await;
    // An admin given organizations would still see every organization: refused, saying so.
    let (status, answer) = app
        .send(
            "POST",
            "/api/v1/users",
            &admin,
            json!({"name": "boss", "role": "admin", "orgs": ["Acme"]}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("an admin sees every organization")
    );
    // A new API key for a disabled user (was 500 "no user").
    app.key_for("gone", Role::Analyst, &["Acme"]).await;
    assert_eq!(
        app.send("POST", "/api/v1/users/gone/disable", &admin, json!({}))
            .await
            .0,
        204
    );
    let (status, answer) = app
        .send("POST", "/api/v1/users/gone/api-key", &admin, json!({}))
        .await;
    assert_eq!(status, 400, "{answer}");
    // A filter list longer than the databases take (was 500 "Expression tree is too large").
    let ids: Vec<String> = (1..=2000).map(|n| n.to_string()).collect();
    let (status, answer) = app
        .send(
            "POST",
            "/incidents/search",
            &admin,
            json!({"filter": {"id": ids, "size": 5}}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("at most 500"),
        "{answer}"
    );
    // XSOAR's page number past any page (was wrapped to page 0).
    let (status, answer) = app
        .send(
            "POST",
            "/incidents/search",
            &admin,
            json!({"filter": {"page": u64::MAX, "size": 5}}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    // A form's `back` that leaves the site, or carries a newline, goes to the queue instead.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = common::ui_session(&http, &app.url, "root", "/").await;
    let id = app.id_of("a1").await.to_string();
    for back in [
        "/\\evil.example",
        "//evil.example",
        "/ok\r\nSet-Cookie: x=1",
    ] {
        let fields = [("id", id.as_str()), ("action", "assign-me"), ("back", back)];
        let answer = common::post_form(&http, &app.url, &session, "/queue/bulk", &fields).await;
        assert_eq!(answer.status(), 303, "{back:?}");
        let location = answer.headers()["location"].to_str().unwrap();
        assert!(location.starts_with("/?"), "{back:?} -> {location}");
    }
}

/// Regression (an organization-scoped user saw every instance's health, with the ids of the
/// alerts it set aside): such a user sees whether each instance fetches, not the provider's
/// error text or what was set aside; an admin sees all.
#[tokio::test]
async fn a_scoped_user_sees_no_instance_details() {
    let app = spawn_app().await;
    let admin = app.key_for("root", Role::Admin, &[]).await;
    let dana = app.key_for("dana", Role::Analyst, &["Acme"]).await;
    app.store
        .record_set_aside(
            "fes",
            &[watchfloor_core::SetAside {
                id: "globex-aro-77".into(),
                reason: "no creation time".into(),
            }],
        )
        .await
        .unwrap();
    app.store
        .record_failure("fes", "Globex's broker answered 500 for aro globex-aro-78")
        .await
        .unwrap();
    let (status, all) = app.get("/api/v1/instances/health", Some(&admin)).await;
    assert_eq!(status, 200);
    assert!(all.to_string().contains("globex-aro-77") && all.to_string().contains("globex-aro-78"));
    let (status, scoped) = app.get("/api/v1/instances/health", Some(&dana)).await;
    assert_eq!(status, 200);
    let text = scoped.to_string();
    assert!(!text.contains("globex"), "{text}");
    assert!(text.contains("the last fetch failed"), "{text}");
}

/// Regressions (first hour): `/favicon.ico` answered 401; an address nothing answers had no
/// navigation back (a browser now gets a page with it, a script JSON); the severity filter
/// had no "High+".
#[tokio::test]
async fn small_ui_gaps_are_closed() {
    let app = spawn_app().await;
    let icon = app
        .http
        .get(format!("{}/favicon.ico", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert!(icon.text().await.unwrap().starts_with("<svg"));

    let page = app
        .http
        .get(format!("{}/no/such/page", app.url))
        .header("Accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert!(page.headers().contains_key("content-security-policy"));
    let text = page.text().await.unwrap();
    assert!(
        text.contains("there is no page at /no/such/page") && text.contains("href=\"/reports\""),
        "{text}"
    );
    let (status, body) = app.get("/api/v1/no-such-route", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found", "{body}");

    // The war room reads newest first, or oldest first as the CLI does.
    let root = app.key_for("root", Role::Admin, &[]).await;
    let a1 = app.id_of("a1").await;
    for text in ["the first note", "the second note"] {
        let (status, body) = app
            .send(
                "POST",
                &format!("/api/v1/incidents/{a1}/notes"),
                &root,
                json!({ "text": text }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let order = |page: &str| {
        let (first, second) = (
            page.find("the first note").unwrap(),
            page.find("the second note").unwrap(),
        );
        first < second
    };
    let newest = app.ui_page("root", &format!("/incidents/{a1}")).await;
    assert!(!order(&newest), "newest first by default");
    let oldest = app
        .ui_page("root", &format!("/incidents/{a1}?order=oldest"))
        .await;
    assert!(order(&oldest), "oldest first when asked");
    let queue = app.ui_page("root", "/?severity=high%2B").await;
    assert!(
        queue.contains("<option value=\"high+\" selected>High+</option>"),
        "{queue}"
    );
}

/// Regression (first hour): the owner field took any name. The incident page offers the
/// users the incident may be assigned to (enabled, seeing its organization), and the service
/// refuses any other owner, from the API as from the page.
#[tokio::test]
async fn owners_are_users_who_can_work_the_incident() {
    let app = spawn_app().await;
    let root = app.key_for("root", Role::Admin, &[]).await;
    app.key_for("dana", Role::Analyst, &["acme"]).await;
    app.key_for("sam", Role::Analyst, &["globex"]).await;
    let a1 = app.id_of("a1").await;
    let page = app.ui_page("root", &format!("/incidents/{a1}")).await;
    let offered = page
        .split("<datalist id=\"assignable\">")
        .nth(1)
        .and_then(|rest| rest.split("</datalist>").next())
        .unwrap_or_else(|| panic!("{page}"));
    assert!(
        offered.contains("value=\"dana\"") && offered.contains("value=\"root\""),
        "{offered}"
    );
    assert!(!offered.contains("value=\"sam\""), "{offered}");
    for (owner, says) in [
        ("sam", "sam cannot see this incident's organization"),
        ("nobody", "there is no user nobody"),
    ] {
        let (status, body) = app
            .send(
                "PATCH",
                &format!("/api/v1/incidents/{a1}"),
                &root,
                json!({"owner": owner}),
            )
            .await;
        assert_eq!(status, 400, "{owner}: {body}");
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }
}

/// XSOAR's search filter reads `fromClosedDate`/`toClosedDate` and `period`, and refuses
/// what it cannot answer as asked (`andOp` false, `searchAfter`). Regression: they were not
/// read, so a script asking for the last day's incidents, or the week's closes, got all.
#[tokio::test]
async fn xsoar_search_reads_closed_dates_and_periods() {
    let app = spawn_app().await;
    let admin = app.key_for("root", Role::Admin, &[]).await;
    assert_eq!(app.close(app.id_of("a1").await, &admin).await, 200);
    let now = Utc::now();
    let at = |t: chrono::DateTime<Utc>| t.to_rfc3339();
    let hour_ago = at(now - chrono::TimeDelta::hours(1));
    let search = |filter: Value| {
        let app = &app;
        let admin = &admin;
        async move {
            let mut filter = filter;
            filter["size"] = json!(50);
            let (status, body) = app
                .send(
                    "POST",
                    "/incidents/search",
                    admin,
                    json!({ "filter": filter }),
                )
                .await;
            match status {
                200 => {
                    let mut names: Vec<String> = body["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i["name"].as_str().unwrap().replace("alert ", ""))
                        .collect();
                    names.sort();
                    Ok(names)
                }
                _ => Err((
                    status,
                    body["error"].as_str().unwrap_or_default().to_string(),
                )),
            }
        }
    };
    let all: Vec<&str> = vec!["a1", "a2", "g1"];
    for (filter, expected) in [
        (json!({"fromClosedDate": hour_ago}), vec!["a1"]),
        (json!({"toClosedDate": hour_ago}), Vec::<&str>::new()),
        (json!({"query": "closed:>-1h"}), vec!["a1"]),
        (json!({"query": "-closed:>-1h"}), vec!["a2", "g1"]),
        (
            json!({"period": {"by": "day", "fromValue": 1}}),
            all.clone(),
        ),
        (
            json!({"period": {"by": "days", "fromValue": 2, "toValue": 1}}),
            vec![],
        ),
        (
            json!({"period": {"field": "closed", "by": "hour", "fromValue": 1}}),
            vec!["a1"],
        ),
        (
            json!({"period": {"byFrom": "minutes", "fromValue": 5, "field": "occurred"}}),
            all.clone(),
        ),
        (json!({"andOp": true, "searchAfter": []}), all.clone()),
    ] {
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(search(filter.clone()).await, Ok(expected), "{filter}");
    }
    for (filter, says) in [
        (
            json!({"period": {"by": "fortnight", "fromValue": 1}}),
            "\"fortnight\" is not one",
        ),
        (json!({"period": {"fromValue": 1}}), "no unit"),
        (
            json!({"period": {"by": "day", "fromValue": -1}}),
            "whole number",
        ),
        (
            json!({"period": {"field": "modified", "by": "day", "fromValue": 1}}),
            "created, occurred or closed",
        ),
        (
            json!({"period": {"by": "year", "fromValue": 1000000}}),
            "too far back",
        ),
        (json!({"andOp": false}), "`filter.andOp` false"),
        (json!({"searchAfter": ["x"]}), "page with `filter.page`"),
        (json!({"fromClosedDate": "soon"}), "is not a time"),
    ] {
        let (status, body) = search(filter.clone()).await.unwrap_err();
        assert_eq!(status, 400, "{filter}: {body}");
        assert!(body.contains(says), "{filter}: {body}");
    }
}
