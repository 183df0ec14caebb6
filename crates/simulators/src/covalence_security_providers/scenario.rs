//! The Covalence simulator in `simulate` and `demo`: how it starts for a scenario, and the
//! direct and broker instances that point at it.

use super::*;
use crate::scenario::{Running, Scenario, SimInstance, Started, secret_file, text};

pub(crate) fn launch(
    scenario: &Scenario,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Started> + Send + '_>> {
    Box::pin(async move {
        let defaults = CovalenceSecurityProvidersSetup::default();
        let setup = CovalenceSecurityProvidersSetup {
            broker_orgs: scenario.orgs.unwrap_or(defaults.broker_orgs),
            alerts_per_appliance: scenario
                .alerts_per_org
                .unwrap_or(defaults.alerts_per_appliance),
            ..defaults
        };
        let sim = CovalenceSecurityProvidersSimulator::start(scenario.options.with(setup)).await?;
        Ok(Box::new(sim) as Box<dyn Running>)
    })
}

impl Running for CovalenceSecurityProvidersSimulator {
    fn endpoints(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Covalence appliance", self.direct_url.clone()),
            ("Covalence broker", self.broker_url.clone()),
        ]
    }

    fn control_url(&self) -> String {
        self.direct_url.clone()
    }

    fn instances(&self) -> Vec<SimInstance> {
        let instance = |name: &str, host: &str, broker: bool| SimInstance {
            name: name.into(),
            integration: "covalence-security-providers",
            params: vec![
                ("host", text(host)),
                ("broker", toml::Value::Boolean(broker)),
                ("username", text(&self.username)),
                ("password", secret_file("covalence-password")),
                ("ca_file", text("covalence-ca.pem")),
            ],
            files: vec![
                ("covalence-password", self.password.clone().into_bytes()),
                ("covalence-ca.pem", self.ca_pem.clone().into_bytes()),
            ],
            fetch_interval: "1m",
            first_fetch: "2024-04-01T00:00:00Z",
            // The direct appliance monitors one customer.
            organization: (!broker).then_some(DIRECT_ORG),
        };
        vec![
            instance("covalence-direct", &self.direct_url, false),
            instance("covalence-broker", &self.broker_url, true),
        ]
    }

    fn examples(&self) -> Vec<String> {
        [
            "!cov-secpr-list-alerts max_count=5 using=covalence-direct",
            "!cov-secpr-list-organizations using=covalence-broker",
            "!cov-secpr-list-sensors target_org=Initech using=covalence-broker",
            "!cov-secpr-set-internal-networks cidr=10.99.0.0/16 notes=Lab using=covalence-direct",
        ]
        .map(str::to_string)
        .to_vec()
    }
}
