//! The API as a client sees it: a real server on port 0 over a store with incidents of two
//! organizations, users of each role, and API keys.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
use watchfloor_api::{AppState, auth};
use watchfloor_core::{NewIncident, Severity, SlaPolicy};
use watchfloor_storage::{FetchTarget, IncidentFilter, Role, SqliteStore, Store};

struct App {
    url: String,
    store: Arc<SqliteStore>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl App {
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

    async fn key_for(&self, name: &str, role: Role, orgs: &[&str]) -> String {
        let orgs: Vec<String> = orgs.iter().map(|o| o.to_string()).collect();
        let hash = auth::hash_password("pw").unwrap();
        self.store
            .create_user(name, role, &orgs, &hash)
            .await
            .unwrap();
        let key = auth::random_secret().unwrap();
        self.store
            .add_api_key(name, &auth::key_hash(&key))
            .await
            .unwrap();
        key
    }
}

async fn spawn_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let incident = |id: &str, org: &str| NewIncident {
        external_id: id.into(),
        name: format!("alert {id}"),
        occurred: Utc::now(),
        severity: Severity::High,
        organization: Some(org.into()),
        details: String::new(),
        labels: vec![],
        raw: json!({}),
    };
    let target = FetchTarget {
        instance: "fes",
        integration: "covalence-managed-security",
        incident_type: "Covalence ARO",
        scope: "",
        sla: &SlaPolicy::default(),
    };
    store
        .commit_fetch(
            target,
            &[
                incident("a1", "Acme"),
                incident("a2", "Acme"),
                incident("g1", "Globex"),
            ],
            &json!({}),
        )
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState {
        store: store.clone(),
    };
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
    app.store.disable_user("dana").await.unwrap();
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
    let all = app
        .store
        .incidents(&IncidentFilter::default())
        .await
        .unwrap();
    let globex = all.iter().find(|i| i.external_id == "g1").unwrap().id;
    let mine = all.iter().find(|i| i.external_id == "a1").unwrap().id;
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
