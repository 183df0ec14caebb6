//! What the API's test files share: users with keys, and browser sessions.
#![allow(dead_code)]

use watchfloor_api::auth;
use watchfloor_storage::prelude::*;
use watchfloor_storage::{Actor, Role, SqlStore};

/// Makes a user (password `pw`) with an API key, and returns the key.
pub async fn user_with_key(store: &SqlStore, name: &str, role: Role, orgs: &[&str]) -> String {
    let orgs: Vec<String> = orgs.iter().map(|o| o.to_string()).collect();
    let hash = auth::hash_password("pw").unwrap();
    store
        .create_user(&Actor::default(), name, role, &orgs, &hash)
        .await
        .unwrap();
    let key = auth::random_secret().unwrap();
    store
        .add_api_key(&Actor::default(), name, &auth::key_hash(&key), false)
        .await
        .unwrap();
    key
}

/// A browser session of `name` (password `pw`): its cookie, and the form token that the page
/// at `page` carries.
pub async fn ui_session(
    http: &reqwest::Client,
    url: &str,
    name: &str,
    page: &str,
) -> (String, String) {
    let login: serde_json::Value = http
        .post(format!("{url}/api/v1/login"))
        .json(&serde_json::json!({"name": name, "password": "pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cookie = format!("wf_session={}", login["token"].as_str().unwrap());
    let html = http
        .get(format!("{url}{page}"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = html
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the page carries its form token")
        .to_string();
    (cookie, csrf)
}

/// A browser form post with the session's cookie and form token: the answer, not followed.
pub async fn post_form(
    http: &reqwest::Client,
    url: &str,
    session: &(String, String),
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    form.append_pair("csrf", &session.1);
    http.post(format!("{url}{path}"))
        .header("Cookie", &session.0)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.finish())
        .send()
        .await
        .unwrap()
}
