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
        external_id: id.into(),
        name: format!("<b>{id}</b>"),
        occurred: Utc::now() - TimeDelta::seconds(lag),
        severity: if id == "a1" {
            Severity::Critical
        } else {
            Severity::High
        },
        organization: Some(org.into()),
        details: String::new(),
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

#[tokio::test]
async fn figures_follow_the_incidents_times_within_the_callers_organizations() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
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
