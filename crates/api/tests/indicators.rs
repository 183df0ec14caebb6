//! Indicators through every front end of the server (`/api/v1`, XSOAR's `/indicators/search`,
//! the browser): an analyst of one organization sees that organization's incidents for an
//! indicator, and of the others a count alone (none when `cross_org_counts` is off); no answer
//! names another organization, its incidents' ids or their titles.

mod common;

use std::sync::Arc;

use serde_json::{Value, json};
use watchfloor_api::AppState;
use watchfloor_core::{NewIncident, Severity, SlaPolicy};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{FetchTarget, Role, SqlStore};

/// Text of other organizations that an Acme analyst must never meet.
const FOREIGN: [&str; 4] = [
    "Globex",
    "Initech",
    "globex-only.example.com",
    "quarterly payroll exfil",
];

struct World {
    /// Servers with cross-organization counts on, and off.
    on: String,
    off: String,
    store: Arc<SqlStore>,
    alice: String,
    root: String,
    acme: Vec<i64>,
    foreign: Vec<i64>,
    _dir: tempfile::TempDir,
}

fn incident(id: &str, minute: u32, org: &str, name: &str, details: &str) -> NewIncident {
    NewIncident {
        provider: Default::default(),
        external_id: id.into(),
        name: name.into(),
        occurred: format!("2024-05-01T08:{minute:02}:00Z").parse().unwrap(),
        severity: Severity::High,
        organization: Some(org.into()),
        details: details.into(),
        labels: Vec::new(),
        raw: json!({"id": id}),
    }
}

async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(watchfloor_api::serve(
        listener,
        state,
        std::future::pending(),
    ));
    url
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let batch = vec![
        incident(
            "a1",
            1,
            "Acme",
            "Beacon from a laptop",
            "to 203.0.113.7 and evil.example.com",
        ),
        incident("a2", 2, "Acme", "Second beacon", "203.0.113.7 again"),
        incident(
            "g1",
            3,
            "Globex",
            "Globex quarterly payroll exfil",
            "to 203.0.113.7 via globex-only.example.com",
        ),
        incident("i1", 4, "Initech", "Initech scan", "scanner 203.0.113.7"),
    ];
    let sla = SlaPolicy::default();
    store
        .commit_fetch(
            FetchTarget {
                instance: "fes",
                integration: "covalence-managed-security",
                incident_type: "Covalence ARO",
                scope: "",
                sla: &sla,
                lease: None,
            },
            &batch,
            &json!({}),
        )
        .await
        .unwrap();
    let mut acme = Vec::new();
    let mut foreign = Vec::new();
    for id in ["a1", "a2", "g1", "i1"] {
        let i = store
            .incident_by_external_id("fes", id)
            .await
            .unwrap()
            .unwrap();
        if id.starts_with('a') {
            acme.push(i.id);
        } else {
            foreign.push(i.id);
        }
    }
    let alice = common::user_with_key(&store, "alice", Role::Analyst, &["Acme"]).await;
    let root = common::user_with_key(&store, "root", Role::Admin, &[]).await;
    let on = serve(AppState::new(store.clone(), sla.clone())).await;
    let off = serve(AppState::new(store.clone(), sla).with_cross_org_counts(false)).await;
    World {
        on,
        off,
        store,
        alice,
        root,
        acme,
        foreign,
        _dir: dir,
    }
}

async fn send(
    url: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, String) {
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
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Every number under a key named `id`, `incident_id` or `investigationIDs` in `v`.
fn ids_in(v: &Value, out: &mut Vec<i64>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                match (k.as_str(), x) {
                    ("id" | "incident_id", Value::Number(n)) => out.extend(n.as_i64()),
                    ("investigationIDs", Value::Array(items)) => {
                        out.extend(items.iter().filter_map(|i| i.as_str()?.parse::<i64>().ok()))
                    }
                    _ => ids_in(x, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| ids_in(i, out)),
        _ => {}
    }
}

impl World {
    /// That an answer to Acme's analyst names nothing of another organization.
    fn nothing_foreign(&self, what: &str, body: &str) {
        for text in FOREIGN {
            assert!(!body.contains(text), "{what} names `{text}`: {body}");
        }
        if let Ok(v) = serde_json::from_str::<Value>(body) {
            let mut ids = Vec::new();
            ids_in(&v, &mut ids);
            for id in &self.foreign {
                assert!(!ids.contains(id), "{what} names incident {id}: {body}");
            }
        }
        for id in &self.foreign {
            assert!(
                !body.contains(&format!("/incidents/{id}\"")),
                "{what} links incident {id}: {body}"
            );
        }
    }
}

/// The JSON front ends: what Acme's analyst reads, with counts on and off, and what an admin
/// reads.
#[tokio::test]
async fn an_analyst_sees_its_organizations_incidents_and_a_count_of_the_others() {
    let w = world().await;
    for (url, counts) in [(&w.on, true), (&w.off, false)] {
        let (status, body) = send(url, "GET", "/api/v1/indicators", &w.alice, None).await;
        assert_eq!(status, 200, "{body}");
        w.nothing_foreign("GET /api/v1/indicators", &body);
        let list: Value = serde_json::from_str(&body).unwrap();
        let ip = list["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["value"] == "203.0.113.7")
            .expect("the shared address is listed");
        assert_eq!(ip["incidents"], 2, "{ip}");
        assert_eq!(
            ip.get("other_organizations"),
            counts.then_some(&json!(2)),
            "{ip}"
        );

        let (status, body) = send(
            url,
            "GET",
            "/api/v1/indicators/ip/203.0.113.7",
            &w.alice,
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        w.nothing_foreign("GET /api/v1/indicators/ip/203.0.113.7", &body);
        let one: Value = serde_json::from_str(&body).unwrap();
        let mut found: Vec<i64> = one["found_in"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect();
        found.sort();
        assert_eq!(found, w.acme);

        // Only Globex saw this domain: a count alone, or nothing at all.
        let (status, body) = send(
            url,
            "GET",
            "/api/v1/indicators/domain/globex-only.example.com",
            &w.alice,
            None,
        )
        .await;
        if counts {
            assert_eq!(status, 200, "{body}");
            let one: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                (one["incidents"].clone(), one["other_organizations"].clone()),
                (json!(0), json!(1))
            );
            assert_eq!(one["found_in"], json!([]));
        } else {
            assert_eq!(status, 404, "{body}");
        }

        let (status, body) = send(
            url,
            "GET",
            &format!("/api/v1/incidents/{}/indicators", w.acme[0]),
            &w.alice,
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        w.nothing_foreign("an incident's indicators", &body);
        let of: Value = serde_json::from_str(&body).unwrap();
        let related: Vec<i64> = of["related"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["incident"]["id"].as_i64().unwrap())
            .collect();
        assert_eq!(related, [w.acme[1]]);
        for id in &w.foreign {
            let (status, body) = send(
                url,
                "GET",
                &format!("/api/v1/incidents/{id}/indicators"),
                &w.alice,
                None,
            )
            .await;
            assert_eq!(status, 404, "{body}");
            w.nothing_foreign("another organization's incident", &body);
        }

        // XSOAR's face, as demisto-py's search_indicators sends it.
        for query in ["", "value:203.0.113.7", "203.0.113.7", "type:IP"] {
            let (status, body) = send(
                url,
                "POST",
                "/indicators/search",
                &w.alice,
                Some(json!({"query": query, "size": 50, "page": 0})),
            )
            .await;
            assert_eq!(status, 200, "{query}: {body}");
            w.nothing_foreign(&format!("/indicators/search {query:?}"), &body);
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(v["total"].as_u64().unwrap() >= 1, "{query}: {body}");
            let ip = v["iocObjects"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["value"] == "203.0.113.7")
                .unwrap_or_else(|| panic!("{query}: {body}"));
            assert_eq!(ip["indicator_type"], "IP");
            let mut ids: Vec<i64> = ip["investigationIDs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().parse().unwrap())
                .collect();
            ids.sort();
            assert_eq!(ids, w.acme, "{query}");
        }
        let (status, body) = send(
            url,
            "POST",
            "/indicators/search",
            &w.alice,
            Some(json!({"query": format!("investigationIDs:{}", w.foreign[0]), "size": 50})),
        )
        .await;
        assert_eq!(
            (
                status,
                serde_json::from_str::<Value>(&body).unwrap()["total"].clone()
            ),
            (200, json!(0))
        );
        let (status, body) = send(
            url,
            "POST",
            "/indicators/search",
            &w.alice,
            Some(json!({"query": "score:3"})),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains("value:, type: and investigationIDs:"),
            "{body}"
        );

        // The queue's term.
        let (status, body) = send(
            url,
            "GET",
            "/api/v1/incidents?q=indicator:203.0.113.7",
            &w.alice,
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        w.nothing_foreign("the queue filtered by indicator", &body);
        let page: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page["data"].as_array().map(Vec::len), Some(2), "{body}");
    }
    // An admin sees every organization's incidents, and no "other organizations".
    let (_, body) = send(
        &w.on,
        "GET",
        "/api/v1/indicators/ip/203.0.113.7",
        &w.root,
        None,
    )
    .await;
    let one: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(one["incidents"], 4);
    assert!(one.get("other_organizations").is_none(), "{body}");
    // Reindexing is an admin's.
    let (status, _) = send(&w.on, "POST", "/api/v1/indicators/reindex", &w.alice, None).await;
    assert_eq!(status, 403);
    let (status, _) = send(&w.on, "POST", "/api/v1/indicators/reindex", &w.root, None).await;
    assert_eq!(status, 204);
    let (_, body) = send(
        &w.on,
        "GET",
        "/api/v1/indicators/ip/203.0.113.7",
        &w.root,
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["incidents"],
        4
    );
    let (status, body) = send(&w.on, "GET", "/api/v1/indicators?type=hash", &w.root, None).await;
    assert_eq!(status, 400);
    assert!(body.contains("not an indicator type"), "{body}");
    drop(w.store);
}

/// The browser: the Indicators page, one indicator's page and an incident's page show Acme's
/// analyst Acme's incidents, the count of the others when it is on, and nothing else.
#[tokio::test]
async fn the_pages_show_an_analyst_nothing_of_other_organizations() {
    let w = world().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (url, counts) in [(&w.on, true), (&w.off, false)] {
        let session = common::ui_session(&http, url, "alice", "/indicators").await;
        let get = async |path: &str| {
            let r = http
                .get(format!("{url}{path}"))
                .header("Cookie", &session.0)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        };
        for path in [
            "/indicators".to_string(),
            "/indicators?type=ip".to_string(),
            "/indicators/ip/203.0.113.7".to_string(),
            format!("/incidents/{}", w.acme[0]),
        ] {
            let (status, page) = get(&path).await;
            assert_eq!(status, 200, "{path}: {page}");
            w.nothing_foreign(&path, &page);
            assert_eq!(
                page.contains("2 other organizations"),
                counts,
                "{path} with counts {counts}"
            );
        }
        let (_, page) = get(&format!("/incidents/{}", w.acme[0])).await;
        assert!(
            page.contains("evil.example.com"),
            "the incident lists its indicators"
        );
        assert!(
            page.contains(&format!("/incidents/{}\"", w.acme[1])),
            "and the related incident"
        );
        let (_, page) = get("/indicators/ip/203.0.113.7").await;
        for id in &w.acme {
            assert!(page.contains(&format!("/incidents/{id}\"")), "{page}");
        }
        for id in &w.foreign {
            let (status, page) = get(&format!("/incidents/{id}")).await;
            assert_eq!(status, 404, "{page}");
            w.nothing_foreign("another organization's incident page", &page);
        }
        let (status, page) = get("/indicators/domain/globex-only.example.com").await;
        assert_eq!(status, if counts { 200 } else { 404 }, "{page}");
        assert_eq!(page.contains("1 other organization"), counts);
    }
}

/// Verdicts through the API and XSOAR's face: an analyst gives one in its organizations, a
/// viewer gives none, another organization's analyst does not see it; the allow list is the
/// admins', checked when added.
#[tokio::test]
async fn verdicts_are_an_organizations_own_and_the_allow_list_an_admins() {
    let w = world().await;
    let vera = common::user_with_key(&w.store, "vera", Role::Viewer, &["Acme"]).await;
    let gus = common::user_with_key(&w.store, "gus", Role::Analyst, &["Globex"]).await;
    let path = "/api/v1/indicators/ip/203.0.113.7/verdict";
    let (status, body) = send(
        &w.on,
        "POST",
        path,
        &vera,
        Some(json!({"verdict": "malicious"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(
        &w.on,
        "POST",
        path,
        &w.alice,
        Some(json!({"verdict": "evil"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("malicious, suspicious, benign or unknown"),
        "{body}"
    );
    let (status, body) = send(
        &w.on,
        "POST",
        path,
        &w.alice,
        Some(json!({"verdict": "malicious"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let one: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            one["verdict"]["verdict"].clone(),
            one["verdict"]["by"].clone()
        ),
        (json!("malicious"), json!("alice"))
    );
    w.nothing_foreign("a verdict's answer", &body);
    // Globex's analyst: no verdict of Acme's, and a score of 0 on XSOAR's face.
    let (_, body) = send(
        &w.on,
        "GET",
        "/api/v1/indicators/ip/203.0.113.7",
        &gus,
        None,
    )
    .await;
    assert!(
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .get("verdict")
            .is_none(),
        "{body}"
    );
    let score = async |key: &str| {
        let (_, body) = send(
            &w.on,
            "POST",
            "/indicators/search",
            key,
            Some(json!({"query": "value:203.0.113.7", "size": 10})),
        )
        .await;
        serde_json::from_str::<Value>(&body).unwrap()["iocObjects"][0]["score"].clone()
    };
    assert_eq!(score(&w.alice).await, json!(3));
    assert_eq!(score(&gus).await, json!(0));
    let (status, body) = send(
        &w.on,
        "GET",
        "/api/v1/incidents?q=indicator.verdict:malicious",
        &w.alice,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2), "{body}");

    // The allow list.
    let (status, _) = send(&w.on, "GET", "/api/v1/indicators/allowlist", &w.alice, None).await;
    assert_eq!(status, 403);
    let (status, body) = send(
        &w.on,
        "POST",
        "/api/v1/indicators/allowlist",
        &w.root,
        Some(json!({"entry": "*.com"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("excludes too much"), "{body}");
    let (status, body) = send(
        &w.on,
        "POST",
        "/api/v1/indicators/allowlist",
        &w.root,
        Some(json!({"entry": "evil.example.com"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, body) = send(&w.on, "GET", "/api/v1/indicators/allowlist", &w.root, None).await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["allowlist"][0]["entry"], "evil.example.com", "{body}");
    assert_eq!(list["allowlist"][0]["by"], "root", "{body}");
    let (status, _) = send(&w.on, "POST", "/api/v1/indicators/reindex", &w.root, None).await;
    assert_eq!(status, 204);
    let (status, _) = send(
        &w.on,
        "GET",
        "/api/v1/indicators/domain/evil.example.com",
        &w.root,
        None,
    )
    .await;
    assert_eq!(
        status, 404,
        "allowed values are no indicators once reindexed"
    );
    let (status, _) = send(
        &w.on,
        "DELETE",
        "/api/v1/indicators/allowlist/evil.example.com",
        &w.root,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(
        &w.on,
        "DELETE",
        "/api/v1/indicators/allowlist/evil.example.com",
        &w.root,
        None,
    )
    .await;
    assert_eq!(status, 404);
}

/// The browser's forms: an analyst sets a verdict on an indicator's page (a viewer's page has
/// no form); an admin adds to and removes from the allow list on the Indicators page.
#[tokio::test]
async fn the_verdict_and_allow_list_forms_work() {
    let w = world().await;
    common::user_with_key(&w.store, "vera", Role::Viewer, &["Acme"]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = "/indicators/ip/203.0.113.7";
    let get = async |session: &(String, String), path: &str| {
        http.get(format!("{}{path}", w.on))
            .header("Cookie", &session.0)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let vera = common::ui_session(&http, &w.on, "vera", page).await;
    assert!(
        !get(&vera, page).await.contains("Set verdict"),
        "a viewer gives no verdict"
    );
    let alice = common::ui_session(&http, &w.on, "alice", page).await;
    let r = common::post_form(
        &http,
        &w.on,
        &alice,
        &format!("{page}/verdict"),
        &[("verdict", "suspicious")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let shown = get(&alice, page).await;
    assert!(
        shown.contains("class=\"verdict suspicious\"") && shown.contains("alice"),
        "{shown}"
    );
    let r = common::post_form(
        &http,
        &w.on,
        &vera,
        &format!("{page}/verdict"),
        &[("verdict", "benign")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 403, "a viewer's form post is refused");

    let root = common::ui_session(&http, &w.on, "root", "/indicators").await;
    let r = common::post_form(
        &http,
        &w.on,
        &root,
        "/indicators/allow",
        &[("entry", "8.8.8.8")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let list = get(&root, "/indicators").await;
    assert!(
        list.contains("Allow list") && list.contains("<td>8.8.8.8</td>"),
        "{list}"
    );
    assert!(
        !get(&alice, "/indicators").await.contains("Allow list"),
        "the admins' alone"
    );
    let r = common::post_form(
        &http,
        &w.on,
        &root,
        "/indicators/allow",
        &[("remove", "8.8.8.8")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    assert!(!get(&root, "/indicators").await.contains("<td>8.8.8.8</td>"));
}
