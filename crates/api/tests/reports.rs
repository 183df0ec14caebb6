//! `/api/v1/reports`: the figures equal those computed from the incidents' own times (the
//! provider's creation, first sight, close and its reason, the SLA), and an analyst of one
//! organization gets that organization's figures only.

mod common;

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use watchfloor_api::AppState;
use watchfloor_core::{Change, CloseReason, NewIncident, Severity, SlaPolicy};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{FetchTarget, Role, SqlStore};

/// How long before first sight each incident was made at the provider, in seconds.
const LAGS: [(&str, &str, i64); 5] = [
    ("a1", "Acme", 20),
    ("a2", "Acme", 20),
    ("a3", "Acme", 40),
    ("a4", "Acme", 3_600),
    ("g1", "Globex", 7_200),
];

fn incident(id: &str, org: &str, lag: i64) -> NewIncident {
    NewIncident {
        provider: Default::default(),
        external_id: id.into(),
        name: format!("<b>{id}</b>"),
        occurred: Utc::now() - TimeDelta::seconds(lag),
        severity: if id == "a1" {
            Severity::Critical
        } else {
            Severity::High
        },
        organization: Some(org.into()),
        details: format!("beacon to {}-login.com", org.to_lowercase()),
        labels: Vec::new(),
        raw: json!({"id": id}),
    }
}

async fn get(url: &str, path: &str, key: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .header("Authorization", key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

struct Setup {
    url: String,
    alice: String,
    root: String,
    _dir: tempfile::TempDir,
}

/// On SQLite, or on a fresh PostgreSQL database: the incidents of [`LAGS`] fetched, a1 closed as a false positive and a2 resolved; alice an
/// analyst of Acme, root an admin; the API served.
async fn setup(postgres: Option<String>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = postgres.unwrap_or_else(|| format!("sqlite://{}/wf.db", dir.path().display()));
    let store = Arc::new(SqlStore::open(&url).await.unwrap());
    let sla = SlaPolicy::default();
    let batch: Vec<NewIncident> = LAGS
        .iter()
        .map(|(id, org, lag)| incident(id, org, *lag))
        .collect();
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
    let id = async |ext: &str| {
        store
            .incident_by_external_id("fes", ext)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    // a1 closed as a false positive, a2 resolved; a3 and a4 stay open; one Globex incident.
    for (ext, reason) in [
        ("a1", CloseReason::FalsePositive),
        ("a2", CloseReason::Resolved),
    ] {
        let close = Change::Close {
            reason,
            notes: None,
        };
        store
            .change_incident(id(ext).await, None, "dana", &close, &sla)
            .await
            .unwrap();
    }
    let alice = common::user_with_key(&store, "alice", Role::Analyst, &["Acme"]).await;
    let root = common::user_with_key(&store, "root", Role::Admin, &[]).await;
    let url = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(watchfloor_api::serve(
            listener,
            AppState::new(store.clone(), sla.clone()),
            std::future::pending(),
        ));
        url
    };
    Setup {
        url,
        alice,
        root,
        _dir: dir,
    }
}

#[tokio::test]
async fn figures_follow_the_incidents_times_within_the_callers_organizations() {
    // (The directory is bound, so it lives as long as the test.)
    let Setup {
        url,
        alice,
        root,
        _dir,
    } = setup(None).await;
    let until = (Utc::now() + TimeDelta::minutes(1)).to_rfc3339();
    let path = |org: &str| {
        format!(
            "/api/v1/reports?since=1%20hour&until={}{org}",
            until.replace('+', "%2B")
        )
    };

    // Alice sees Acme alone, whether she names it or not.
    for p in [path(""), path("&org=Acme"), path("&org=acme")] {
        let (status, body) = get(&url, &p, &alice).await;
        assert_eq!(status, 200, "{p}: {body}");
        let all = &body["all"];
        assert_eq!(all["incidents"], 4, "{p}");
        // Lags 20, 20, 40, 3600 s (give or take the second the commit took).
        let median = all["delivery_lag"]["median_s"].as_i64().unwrap();
        assert!((20..=22).contains(&median), "{median}");
        let p90 = all["delivery_lag"]["p90_s"].as_i64().unwrap();
        assert!((3_600..=3_602).contains(&p90), "{p90}");
        assert_eq!(all["closed"], 2);
        assert_eq!(all["false_positive_share"], 0.5);
        assert_eq!(all["sla_compliance"], 1.0);
        assert_eq!(all["open_at_end"], 2);
        assert_eq!(all["by_severity"], json!([["Critical", 1], ["High", 3]]));
        let orgs: Vec<&str> = body["by_organization"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(orgs, ["Acme"]);
        assert!(!body.to_string().contains("Globex"), "{body}");
    }
    // Another organization's report is refused, and says nothing of it.
    let (status, body) = get(&url, &path("&org=Globex"), &alice).await;
    assert_eq!(status, 403, "{body}");
    // An admin sees both, and the provider's lag for Globex.
    let (status, body) = get(&url, &path(""), &root).await;
    assert_eq!(status, 200);
    assert_eq!(body["all"]["incidents"], 5);
    let globex = body["by_organization"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Globex")
        .unwrap();
    let lag = globex["figures"]["delivery_lag"]["median_s"]
        .as_i64()
        .unwrap();
    assert!((7_200..=7_202).contains(&lag), "{lag}");
    // Scheduled reports go to every organization's channels: the admin reads them, alice not.
    let (status, body) = get(&url, "/api/v1/reports/sends", &root).await;
    assert_eq!((status, body), (200, json!([])));
    let (status, _) = get(&url, "/api/v1/reports/sends", &alice).await;
    assert_eq!(status, 403);
    // A period before anything was stored is empty, with no shares.
    let (status, body) = get(&url, "/api/v1/reports?period=2020-01", &root).await;
    assert_eq!(status, 200);
    assert_eq!(body["all"]["incidents"], 0);
    assert_eq!(body["all"]["sla_compliance"], Value::Null);
    // Bad periods are 400s that say what is wrong.
    for bad in [
        "/api/v1/reports",
        "/api/v1/reports?period=2026-13",
        "/api/v1/reports?period=2026-11&since=1%20day",
        "/api/v1/reports?since=1%20day&until=2%20days",
        "/api/v1/reports?period=2026-11&colour=red",
    ] {
        let (status, body) = get(&url, bad, &root).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

async fn text(url: &str, path: &str, key: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .header("Authorization", key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

/// The customer report is one page that stands alone: no script, no asset from elsewhere,
/// provider text escaped, a policy that allows its own style only; it and its incidents' CSV
/// hold the caller's organization alone.
#[tokio::test]
async fn the_customer_report_is_one_escaped_page_of_the_callers_organization() {
    customer_report_on(None).await;
    if let Some(pg) = watchfloor_storage::test_cluster::fresh_database().await {
        customer_report_on(Some(pg)).await;
    }
}

async fn customer_report_on(postgres: Option<String>) {
    // (The directory is bound, so it lives as long as the test.)
    let Setup {
        url,
        alice,
        root,
        _dir,
    } = setup(postgres).await;
    let (status, headers, page) =
        text(&url, "/api/v1/reports?since=1%20hour&format=html", &alice).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.starts_with("default-src 'none'; style-src 'sha256-"),
        "{policy}"
    );
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    for absent in [
        "<script",
        "<link",
        "<img",
        "src=",
        "href=",
        "<b>a",
        "Globex",
        "globex-login.com",
    ] {
        assert!(!page.contains(absent), "{absent} in {page}");
    }
    // The titles, escaped, and the critical and high incidents with their outcomes.
    assert!(page.contains("&lt;b&gt;a1&lt;/b&gt;"), "{page}");
    assert!(page.contains("Security monitoring report: Acme"), "{page}");
    let outcomes = page.matches("<td>False Positive</td>").count();
    assert_eq!(outcomes, 1, "{page}");
    assert_eq!(page.matches("<td>Open</td>").count(), 2, "{page}");
    // The most frequent indicator of the period: the domain all four Acme incidents name.
    assert!(
        page.contains("acme-login.com</td><td class=\"num\">4</td>"),
        "{page}"
    );

    let (status, _, csv) = text(
        &url,
        "/api/v1/reports?since=1%20hour&format=incidents-csv",
        &alice,
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("id,title,organization,"), "{csv}");
    assert!(lines[1..].iter().all(|l| l.contains(",Acme,")), "{csv}");
    assert!(csv.contains(",False Positive,"), "{csv}");

    // Another organization's is refused; an admin's holds both.
    let (status, _, body) = text(
        &url,
        "/api/v1/reports?since=1%20hour&format=html&org=Globex",
        &alice,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (_, _, page) = text(&url, "/api/v1/reports?since=1%20hour&format=html", &root).await;
    assert!(
        page.contains("globex-login.com") && page.contains("every organization"),
        "{page}"
    );
    let (status, _, body) = text(&url, "/api/v1/reports?since=1%20hour&format=pdf", &root).await;
    assert_eq!(status, 400);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .starts_with("format \"pdf\" is not one of"),
        "{body}"
    );
}
