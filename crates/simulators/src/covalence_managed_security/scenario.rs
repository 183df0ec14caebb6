//! The FES simulator in `simulate` and `demo`: how it starts for a scenario, and the instance
//! that points at it.

use super::*;
use crate::scenario::{Running, Scenario, SimInstance, Started, secret_file, text};

pub(crate) fn launch(
    scenario: &Scenario,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Started> + Send + '_>> {
    Box::pin(async move {
        let defaults = CovalenceManagedSecuritySetup::default();
        let setup = CovalenceManagedSecuritySetup {
            orgs: scenario.orgs.unwrap_or(defaults.orgs),
            aros_per_org: scenario.alerts_per_org.unwrap_or(defaults.aros_per_org),
            ..defaults
        };
        let sim = CovalenceManagedSecuritySimulator::start(scenario.options.with(setup)).await?;
        Ok(Box::new(sim) as Box<dyn Running>)
    })
}

impl Running for CovalenceManagedSecuritySimulator {
    fn endpoints(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FES Portal", self.portal_url.clone()),
            ("FES Broker", self.broker_url.clone()),
        ]
    }

    fn control_url(&self) -> String {
        self.broker_url.clone()
    }

    fn instances(&self) -> Vec<SimInstance> {
        vec![SimInstance {
            name: "fes".into(),
            integration: "covalence-managed-security",
            params: vec![
                ("portal_url", text(&self.portal_url)),
                ("broker_url", text(&self.broker_url)),
                ("api_key", secret_file("fes-api-key")),
                ("timeout", text("10s")),
            ],
            files: vec![("fes-api-key", self.api_key.clone().into_bytes())],
            fetch_interval: "30s",
            first_fetch: "2024-04-01T00:00:00Z",
            organization: None,
        }]
    }

    fn examples(&self) -> Vec<String> {
        let first = |items: Vec<Value>| {
            items
                .first()
                .and_then(|o| o["ID"].as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let (org_id, aro_id) = (first(self.orgs()), first(self.aros()));
        vec![
            "!cov-mgsec-list-org".to_string(),
            "!cov-mgsec-get-aro query=\"resolution=Unresolved\"".to_string(),
            "!cov-mgsec-get-aro query=\"org=Globex&type=Action\" details=true".to_string(),
            format!(
                "!cov-mgsec-transition-aro aro_id={aro_id} resolution=Resolved comment=\"Host reimaged\""
            ),
            format!("!cov-mgsec-comment-aro aro_id={aro_id} comment=\"Called the site lead\""),
            format!("!cov-mgsec-list-escalation-contacts org_id={org_id}"),
            format!("!cov-mgsec-list-key-contacts org_id={org_id}"),
            "!cov-mgsec-broker-ping".to_string(),
            format!("!cov-mgsec-broker-endpoint-action-by-aro action_type=ISOLATE aro_id={aro_id}"),
        ]
    }
}
