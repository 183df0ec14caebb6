//! `/api/v1/rules`: admins import (checked whole; errors name rule, line and key), others who
//! see every organization read, test and back-test; users of some organizations see no rules.

mod common;

use std::sync::Arc;

use serde_json::{Value, json};
use watchfloor_api::AppState;
use watchfloor_core::SlaPolicy;
use watchfloor_storage::{Role, SqlStore};

async fn send(url: &str, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{url}{path}"),
        )
        .header("Authorization", key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn rules_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let root = common::user_with_key(&store, "root", Role::Admin, &[]).await;
    let analyst = common::user_with_key(&store, "ana", Role::Analyst, &[]).await;
    let scoped = common::user_with_key(&store, "dana", Role::Analyst, &["Acme"]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(watchfloor_api::serve(
        listener,
        AppState::new(store.clone(), SlaPolicy::default()),
        std::future::pending(),
    ));
    let good = "[[rules]]\nname = \"acme\"\non = [\"created\"]\nwhen = \"organization:Acme\"\nactions = [{ action = \"assign\", to = \"dana\" }]\n";
    let bad = "[[rules]]\nname = \"acme\"\non = [\"created\"]\nactions = [{ action = \"assign\", to = \"nobody\" }]\n";

    let (status, err) = send(
        &url,
        "POST",
        "/api/v1/rules/import",
        &root,
        Some(json!({"toml": bad})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        err["error"],
        "rule `acme`, line 4, `to`: no user named `nobody`"
    );
    let (status, _) = send(
        &url,
        "POST",
        "/api/v1/rules/import",
        &analyst,
        Some(json!({"toml": good})),
    )
    .await;
    assert_eq!(status, 403, "analysts do not change rules");
    let (status, done) = send(
        &url,
        "POST",
        "/api/v1/rules/import",
        &root,
        Some(json!({"toml": good})),
    )
    .await;
    assert_eq!(
        (status, &done["imported"]),
        (200, &json!(["acme"])),
        "{done}"
    );

    let (status, list) = send(&url, "GET", "/api/v1/rules", &analyst, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["rules"][0]["name"], "acme");
    assert_eq!(list["rules"][0]["last_day"]["acted"], 0);
    let (status, _) = send(&url, "GET", "/api/v1/rules", &scoped, None).await;
    assert_eq!(status, 403, "rules name every organization");
    let (status, text) = send(&url, "GET", "/api/v1/rules/export", &analyst, None).await;
    assert_eq!(status, 200);
    assert!(text.as_str().unwrap().contains("name = \"acme\""), "{text}");
    assert_eq!(
        send(&url, "POST", "/api/v1/rules/acme/disable", &analyst, None)
            .await
            .0,
        403
    );
    assert_eq!(
        send(&url, "POST", "/api/v1/rules/acme/disable", &root, None)
            .await
            .0,
        204
    );
    let (_, shown) = send(&url, "GET", "/api/v1/rules/acme", &root, None).await;
    assert_eq!(shown["rule"]["enabled"], false);
    assert_eq!(
        send(&url, "POST", "/api/v1/rules/nope/enable", &root, None)
            .await
            .0,
        404
    );

    let (status, made) = send(
        &url,
        "POST",
        "/api/v1/incidents",
        &root,
        Some(json!({"name": "Beacon", "severity": "high", "organization": "Acme"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_i64().unwrap();
    let (status, plan) = send(
        &url,
        "POST",
        "/api/v1/rules/acme/test",
        &analyst,
        Some(json!({"incident": id})),
    )
    .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["matched"], true);
    assert_eq!(plan["actions"], json!(["assign to dana"]));
    let (status, back) = send(
        &url,
        "GET",
        "/api/v1/rules/acme/backtest?since=1%20day",
        &analyst,
        None,
    )
    .await;
    assert_eq!((status, &back["matched"]), (200, &json!(1)), "{back}");
    assert_eq!(
        send(
            &url,
            "GET",
            "/api/v1/rules/acme/backtest?since=whenever",
            &analyst,
            None
        )
        .await
        .0,
        400
    );
}
