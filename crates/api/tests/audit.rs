//! The audit log and API key management through the API and the UI: every security event is
//! recorded with who and from where, kept in the database across restarts, and shown to admins
//! only; one key can be revoked, a key can replace the others, and a disabled user enabled.

mod common;

use std::sync::Arc;

use serde_json::{Value, json};
use watchfloor_api::AppState;
use watchfloor_core::SlaPolicy;
use watchfloor_storage::prelude::*;
use watchfloor_storage::{Role, SqlStore};

struct App {
    url: String,
    http: reqwest::Client,
}

impl App {
    async fn start(db: &str) -> (App, Arc<SqlStore>) {
        let store = Arc::new(SqlStore::open(db).await.unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(watchfloor_api::serve(
            listener,
            AppState::new(store.clone(), SlaPolicy::default()),
            std::future::pending(),
        ));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        (App { url, http }, store)
    }

    async fn send(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn login(&self, name: &str, password: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/api/v1/login", self.url))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    /// A UI page as the session's browser gets it.
    async fn page(&self, cookie: &str, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.url))
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn me(&self, key: &str) -> u16 {
        self.send("GET", "/api/v1/me", key, None).await.0
    }
}

/// Regression (hardening 27.19, 27.15): there was no audit log, a new API key did not revoke
/// the old ones, no key could be revoked on its own, and a disabled user could not be enabled.
#[tokio::test]
async fn security_events_are_audited_and_keys_managed_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/wf.db", dir.path().display());
    let (app, store) = App::start(&db).await;
    let root = common::user_with_key(&store, "root", Role::Admin, &[]).await;

    // Users made and changed, logins good and bad, a session ended.
    let (status, _) = app
        .send("POST", "/api/v1/users", &root,
            Some(json!({"name": "dana", "role": "analyst", "orgs": ["Acme"], "password": "correct horse"})))
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .send(
            "PATCH",
            "/api/v1/users/dana",
            &root,
            Some(json!({"role": "viewer", "orgs": ["Acme", "Globex"]})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.login("dana", "wrong").await.0, 401);
    assert_eq!(app.login("<b>nobody</b>", "x").await.0, 401);
    let (status, session) = app.login("dana", "correct horse").await;
    assert_eq!(status, 200);
    let token = session["token"].as_str().unwrap().to_string();
    assert_eq!(app.me(&token).await, 200);
    assert_eq!(
        app.send("POST", "/api/v1/logout", &token, None).await.0,
        204
    );
    assert_eq!(app.me(&token).await, 401);

    // Keys: two side by side, one revoked on its own, then one that replaces the rest.
    let key = |v: &Value| {
        (
            v["key"].as_str().unwrap().to_string(),
            v["id"].as_i64().unwrap(),
        )
    };
    let (_, first) = app
        .send("POST", "/api/v1/users/dana/api-key", &root, None)
        .await;
    let (_, second) = app
        .send("POST", "/api/v1/users/dana/api-key", &root, None)
        .await;
    let ((k1, id1), (k2, _)) = (key(&first), key(&second));
    assert_eq!((app.me(&k1).await, app.me(&k2).await), (200, 200));
    let (status, _) = app
        .send(
            "DELETE",
            &format!("/api/v1/users/dana/api-keys/{id1}"),
            &root,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!((app.me(&k1).await, app.me(&k2).await), (401, 200));
    let (status, again) = app
        .send(
            "DELETE",
            &format!("/api/v1/users/dana/api-keys/{id1}"),
            &root,
            None,
        )
        .await;
    assert_eq!(status, 404, "{again}");
    let (_, third) = app
        .send(
            "POST",
            "/api/v1/users/dana/api-key",
            &root,
            Some(json!({"replace": true})),
        )
        .await;
    let (k3, _) = key(&third);
    assert_eq!((app.me(&k2).await, app.me(&k3).await), (401, 200));
    let (_, listed) = app
        .send("GET", "/api/v1/users/dana/api-keys", &root, None)
        .await;
    let revoked: Vec<bool> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| !k["revoked"].is_null())
        .collect();
    assert_eq!(revoked, [true, true, false]);
    assert!(
        !listed.to_string().contains(&k3),
        "a listed key is never the key"
    );

    // Disabled: nothing works. Enabled: old keys stay revoked, a new one works.
    assert_eq!(
        app.send("POST", "/api/v1/users/dana/disable", &root, None)
            .await
            .0,
        204
    );
    assert_eq!(app.me(&k3).await, 401);
    assert_eq!(app.login("dana", "correct horse").await.0, 401);
    let (status, refused) = app
        .send("POST", "/api/v1/users/dana/api-key", &root, None)
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        app.send("POST", "/api/v1/users/dana/enable", &root, None)
            .await
            .0,
        204
    );
    assert_eq!(app.me(&k3).await, 401);
    assert_eq!(app.login("dana", "correct horse").await.0, 200);
    let (status, _) = app
        .send("POST", "/api/v1/users/dana/enable", &root, None)
        .await;
    assert_eq!(status, 400, "enabling an enabled user says so");

    // Only admins read the log.
    let (_, fourth) = app
        .send("POST", "/api/v1/users/dana/api-key", &root, None)
        .await;
    let (k4, _) = key(&fourth);
    assert_eq!(app.send("GET", "/api/v1/audit", &k4, None).await.0, 403);

    let (status, log) = app.send("GET", "/api/v1/audit", &root, None).await;
    assert_eq!(status, 200);
    let mut events: Vec<String> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} [{}]",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["address"].as_str().unwrap_or("-"),
                e["detail"].as_str().unwrap()
            )
        })
        .collect();
    events.reverse();
    // The test's own set-up (its admin and key) is written straight to the store.
    let events = events.split_off(2);
    let expected = [
        "root user_created dana 127.0.0.1 [role analyst, organizations Acme]",
        "root user_changed dana 127.0.0.1 [role viewer, organizations Acme, Globex]",
        "dana login_failed dana 127.0.0.1 [wrong password]",
        "<b>nobody</b> login_failed <b>nobody</b> 127.0.0.1 [no such user]",
        "dana login dana 127.0.0.1 []",
        "dana logout dana 127.0.0.1 []",
    ];
    assert_eq!(&events[..6], expected, "{events:#?}");
    let actions: Vec<&str> = events[6..]
        .iter()
        .map(|e| e.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "api_key_created",
            "api_key_created",
            "api_key_revoked",
            "api_key_created",
            "user_disabled",
            "login_failed",
            "user_enabled",
            "login",
            "api_key_created",
        ]
    );
    assert!(
        events[10].ends_with("[3 API keys revoked, 0 sessions ended]")
            || events[10].contains("user_disabled"),
        "{}",
        events[10]
    );
    let (_, future) = app
        .send(
            "GET",
            "/api/v1/audit?since=2999-01-01T00:00:00Z",
            &root,
            None,
        )
        .await;
    assert_eq!(future["events"], json!([]));
    let (status, bad) = app
        .send("GET", "/api/v1/audit?since=someday", &root, None)
        .await;
    assert_eq!(status, 400, "{bad}");

    // The UI shows it to admins, escaped.
    let session = common::ui_session(&app.http, &app.url, "root", "/audit").await;
    let page = app.page(&session.0, "/audit").await;
    assert!(
        page.contains("&lt;b&gt;nobody&lt;/b&gt;") && !page.contains("<b>nobody"),
        "{page}"
    );
    assert!(page.contains("login failed") && page.contains("127.0.0.1"));

    // Kept in the database: a new process reads the same log.
    drop(store);
    let reopened = SqlStore::open(&db).await.unwrap();
    let kept = reopened.audit_log(None, 1_000).await.unwrap();
    assert!(
        kept.len() >= events.len(),
        "{} of {}",
        kept.len(),
        events.len()
    );
}

/// The UI's users page enables a disabled user and revokes one key.
#[tokio::test]
async fn the_users_page_enables_users_and_revokes_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (app, store) = App::start(&format!("sqlite://{}/wf.db", dir.path().display())).await;
    common::user_with_key(&store, "root", Role::Admin, &[]).await;
    let dana = common::user_with_key(&store, "dana", Role::Analyst, &["Acme"]).await;
    let session = common::ui_session(&app.http, &app.url, "root", "/users").await;
    let keys = store.api_keys("dana").await.unwrap();
    let answer = common::post_form(
        &app.http,
        &app.url,
        &session,
        &format!("/users/dana/keys/{}/revoke", keys[0].id),
        &[],
    )
    .await;
    assert_eq!(answer.status(), 303);
    assert_eq!(app.me(&dana).await, 401);
    common::post_form(&app.http, &app.url, &session, "/users/dana/disable", &[]).await;
    assert!(store.user("dana").await.unwrap().unwrap().disabled);
    let page = app.page(&session.0, "/users").await;
    assert!(page.contains("action=\"/users/dana/enable\""), "{page}");
    common::post_form(&app.http, &app.url, &session, "/users/dana/enable", &[]).await;
    assert!(!store.user("dana").await.unwrap().unwrap().disabled);
    let keys_page = app.page(&session.0, "/users/dana/keys").await;
    assert!(
        keys_page.contains("API keys of dana") && !keys_page.contains("Revoke</button>"),
        "{keys_page}"
    );
}
