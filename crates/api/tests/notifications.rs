//! `/api/v1/channels` and `/api/v1/notifications`, and the channels on the Instances page:
//! secrets (an SMTP password, a webhook secret, a token in a Slack URL) are canaries that
//! show in no API answer, no error and no page; scoped users read no channels.

mod common;

use std::sync::Arc;
use std::time::Duration;

use watchfloor_api::AppState;
use watchfloor_core::channel::{ChannelConfig, ChannelKind, SecretSource};
use watchfloor_core::{Secret, SlaPolicy};
use watchfloor_storage::{Role, SqlStore};

const CANARIES: [&str; 3] = [
    "canary-smtp-pass-77d1",
    "canary-hook-secret-03be",
    "CANARYTOKEN0f1e",
];

fn channels() -> Vec<ChannelConfig> {
    let base = |name: &str, kind| ChannelConfig {
        name: name.into(),
        kind,
        smtp: None,
        ca_file: None,
        username: None,
        password: None,
        from: None,
        to: Vec::new(),
        url: None,
        secret: None,
        max_per_hour: 30,
        give_up_after: Duration::from_secs(3600),
    };
    vec![
        ChannelConfig {
            smtp: Some("smtp://127.0.0.1:1".into()),
            username: Some("wf".into()),
            password: Some(SecretSource::Inline(Secret::new(CANARIES[0]))),
            from: Some("wf@soc.example".into()),
            to: vec!["oncall@soc.example".into()],
            ..base("mail", ChannelKind::Email)
        },
        ChannelConfig {
            url: Some("http://127.0.0.1:1/hook".into()),
            secret: Some(SecretSource::Inline(Secret::new(CANARIES[1]))),
            ..base("hook", ChannelKind::Webhook)
        },
        ChannelConfig {
            url: Some(format!("http://127.0.0.1:1/services/{}", CANARIES[2])),
            ..base("slack", ChannelKind::Slack)
        },
    ]
}

fn no_canary(what: &str, text: &str) {
    for c in CANARIES {
        assert!(!text.contains(c), "{what} shows a secret: {text}");
    }
}

#[tokio::test]
async fn channels_show_no_secret_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let root = common::user_with_key(&store, "root", Role::Admin, &[]).await;
    let scoped = common::user_with_key(&store, "dana", Role::Analyst, &["Acme"]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(watchfloor_api::serve(
        listener,
        AppState::new(store.clone(), SlaPolicy::default()).with_channels(channels(), None),
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    let get = async |path: &str, key: &str| {
        let r = http
            .get(format!("{url}{path}"))
            .header("Authorization", key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (status, body) = get("/api/v1/channels", &root).await;
    assert_eq!(status, 200, "{body}");
    no_canary("GET /api/v1/channels", &body);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["channels"].as_array().unwrap().len(), 3);
    assert_eq!(listed["channels"][1]["signed"], true);
    assert_eq!(listed["channels"][2]["target"], "http://127.0.0.1:1/…");

    for name in ["mail", "hook", "slack"] {
        let r = http
            .post(format!("{url}/api/v1/channels/{name}/test"))
            .header("Authorization", &root)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 502, "nothing listens on port 1");
        no_canary("a failed test", &r.text().await.unwrap());
    }
    let (status, _) = get("/api/v1/channels", &scoped).await;
    assert_eq!(status, 403, "channels carry every organization's incidents");
    let (status, body) = get("/api/v1/notifications?status=sent", &scoped).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get("/api/v1/notifications?status=lost", &root).await;
    assert_eq!(status, 400);
    assert!(body.contains("pending, sent or failed"), "{body}");

    let session = common::ui_session(&http, &url, "root", "/instances").await;
    let page = http
        .get(format!("{url}/instances"))
        .header("Cookie", &session.0)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Notification channels") && page.contains("soc.example"),
        "{page}"
    );
    no_canary("the Instances page", &page);
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = common::post_form(&no_follow, &url, &session, "/channels/hook/test", &[]).await;
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    no_canary("a test from the UI", &location);
    assert!(location.contains("channel"), "{location}");
}
