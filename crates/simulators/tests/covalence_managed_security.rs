//! The FES simulator's own contract: deterministic seeding, authentication, paging envelopes,
//! filters, state changes and faults, as a client sees them over HTTP.

use serde_json::{Value, json};
use watchfloor_simulators::{
    CovalenceManagedSecurityOptions, CovalenceManagedSecuritySetup,
    CovalenceManagedSecuritySimulator, FaultSpec,
};

struct Client {
    http: reqwest::Client,
    sim: CovalenceManagedSecuritySimulator,
}

impl Client {
    async fn new(opts: CovalenceManagedSecurityOptions) -> Self {
        Client {
            http: reqwest::Client::new(),
            sim: CovalenceManagedSecuritySimulator::start(opts)
                .await
                .unwrap(),
        }
    }

    async fn get(&self, url: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(url)
            .bearer_auth(&self.sim.api_key)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POSTs JSON with the API key; returns the status and the body as text.
    async fn post(&self, url: &str, body: Value) -> (u16, String) {
        let resp = self
            .http
            .post(url)
            .bearer_auth(&self.sim.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }

    async fn provider(&self) -> String {
        let (_, providers) = self
            .get(&format!("{}/my_providers", self.sim.portal_url))
            .await;
        providers[0]["ID"].as_str().unwrap().to_string()
    }

    async fn aros(&self, query: &str) -> (u16, Value) {
        let pid = self.provider().await;
        self.get(&format!(
            "{}/providers/{pid}/aros?{query}",
            self.sim.portal_url
        ))
        .await
    }
}

#[tokio::test]
async fn same_seed_gives_the_same_data() {
    let a = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions {
        seed: 42,
        ..Default::default()
    })
    .await
    .unwrap();
    let b = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions {
        seed: 42,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions {
        seed: 43,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(a.aros(), b.aros());
    assert_eq!(a.orgs(), b.orgs());
    assert_ne!(a.aros(), c.aros());
    let sized = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions {
        setup: CovalenceManagedSecuritySetup {
            orgs: 12,
            aros_per_org: 5,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!((sized.orgs().len(), sized.aros().len()), (12, 60));
    assert_eq!(
        sized.orgs()[10]["name"],
        "Acme 2",
        "names stay unique past the name list"
    );
}

#[tokio::test]
async fn portal_needs_the_bearer_key_and_the_broker_ping_does_not() {
    let c = Client::new(CovalenceManagedSecurityOptions::default()).await;
    let resp = c
        .http
        .get(format!("{}/my_providers", c.sim.portal_url))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "Invalid or missing API key"})
    );
    let ping = c
        .http
        .get(format!("{}/ping", c.sim.broker_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.text().await.unwrap(), "pong");
    let orgs = c
        .http
        .get(format!("{}/organizations", c.sim.broker_url))
        .send()
        .await
        .unwrap();
    assert_eq!(orgs.status(), 401);
}

#[tokio::test]
async fn aros_page_newest_first_and_filter() {
    let c = Client::new(CovalenceManagedSecurityOptions {
        setup: CovalenceManagedSecuritySetup {
            aros_per_org: 5,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (status, page) = c.aros("limit=4&page=2").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &page["page"],
            &page["pages"],
            &page["per_page"],
            &page["total"],
            &page["has_next"],
            &page["has_prev"]
        ),
        (
            &json!(2),
            &json!(4),
            &json!(4),
            &json!(15),
            &json!(true),
            &json!(true)
        )
    );
    let all = c.sim.aros();
    assert_eq!(page["items"][0]["ID"], all[4]["ID"]);
    let times: Vec<&str> = all
        .iter()
        .map(|a| a["creation_time"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    let t = times[3];
    let (_, since) = c
        .aros(&format!("since={}&limit=500", t.replace(' ', "%20")))
        .await;
    assert_eq!(since["total"], json!(4), "since is inclusive");
    let (_, until) = c
        .aros(&format!("until={}&limit=500", t.replace(' ', "%20")))
        .await;
    assert_eq!(until["total"], json!(12));
    let (_, unresolved) = c.aros("resolution=Unresolved&type=Action").await;
    assert!(
        unresolved["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["resolution"] == "Unresolved" && a["type"] == "Action")
    );
    let (status, bad) = c.aros("since=yesterday").await;
    assert_eq!(
        (status, bad),
        (
            400,
            json!({"error": "Invalid since \"yesterday\": expected YYYY-MM-DD HH:MM:SS (UTC)"})
        )
    );
}

#[tokio::test]
async fn transitions_change_state_and_unknown_aros_are_404() {
    let c = Client::new(CovalenceManagedSecurityOptions::default()).await;
    let id = c.sim.aros()[0]["ID"].as_str().unwrap().to_string();
    let url = format!("{}/aros/{id}/transition", c.sim.portal_url);
    let (status, _) = c
        .post(&url, json!({"status": "Closed", "resolution": "Dismissed"}))
        .await;
    assert_eq!(status, 200);
    let aro = c
        .sim
        .aros()
        .into_iter()
        .find(|a| a["ID"] == id.as_str())
        .unwrap();
    assert_eq!(
        (&aro["resolution"], &aro["status"]),
        (&json!("Dismissed"), &json!("Closed"))
    );
    let (missing, _) = c
        .post(
            &format!("{}/aros/nope/transition", c.sim.portal_url),
            json!({"resolution": "Resolved"}),
        )
        .await;
    assert_eq!(missing, 404);
    let (bad, body) = c.post(&url, json!({"resolution": "Fixed"})).await;
    assert_eq!(bad, 400);
    assert!(body.contains("Invalid resolution"), "{body}");
}

#[tokio::test]
async fn faults_switch_on_and_off() {
    let c = Client::new(CovalenceManagedSecurityOptions::default()).await;
    let set = c
        .http
        .post(format!("{}/_sim/faults", c.sim.broker_url))
        .json(&json!({"rate_limit": 1, "retry_after_secs": 7, "malformed": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let limited = c
        .http
        .get(format!("{}/my_providers", c.sim.portal_url))
        .bearer_auth(&c.sim.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            limited.status().as_u16(),
            limited.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "7")
    );
    let cut = c
        .http
        .get(format!("{}/my_providers", c.sim.portal_url))
        .bearer_auth(&c.sim.api_key)
        .send()
        .await
        .unwrap();
    assert!(
        serde_json::from_str::<Value>(&cut.text().await.unwrap()).is_err(),
        "malformed body"
    );
    let (status, _) = c.get(&format!("{}/my_providers", c.sim.portal_url)).await;
    assert_eq!(status, 200, "faults were for the next request only");
    assert_eq!(
        c.sim.faults.get(),
        FaultSpec {
            retry_after_secs: 7,
            ..FaultSpec::default()
        }
    );
    assert_eq!(c.sim.faults.requests("/v1/my_providers"), 3);
}

#[tokio::test]
async fn every_simulator_can_generate_alerts_steadily() {
    use std::time::Duration;
    use watchfloor_simulators::{
        CovalenceSecurityProvidersOptions, CovalenceSecurityProvidersSimulator, SymantecMssOptions,
        SymantecMssSimulator,
    };
    let every = Some(Duration::from_millis(100));
    let fes = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions {
        generate_every: every,
        ..Default::default()
    })
    .await
    .unwrap();
    let cov = CovalenceSecurityProvidersSimulator::start(CovalenceSecurityProvidersOptions {
        generate_every: every,
        ..Default::default()
    })
    .await
    .unwrap();
    let sws = SymantecMssSimulator::start(SymantecMssOptions {
        generate_every: every,
        ..Default::default()
    })
    .await
    .unwrap();
    let cov_total = || {
        cov.appliances()
            .iter()
            .map(|(id, _)| cov.collection(id, "alerts").len())
            .sum::<usize>()
    };
    let before = (fes.aros().len(), cov_total(), sws.incident_numbers().len());
    tokio::time::sleep(Duration::from_millis(550)).await;
    let after = (fes.aros().len(), cov_total(), sws.incident_numbers().len());
    assert!(
        after.0 >= before.0 + 3 && after.1 >= before.1 + 3 && after.2 >= before.2 + 3,
        "{before:?} -> {after:?}"
    );
}
