//! The SWS simulator in `simulate` and `demo`: how it starts for a scenario, and the instance
//! that points at it, with its client certificate.

use base64::Engine;

use super::*;
use crate::scenario::{Running, Scenario, SimInstance, Started, secret_file, text};

pub(crate) fn launch(
    scenario: &Scenario,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Started> + Send + '_>> {
    Box::pin(async move {
        let setup = SymantecMssSetup {
            stray_entities: scenario.stray_entities,
            ..SymantecMssSetup::default()
        };
        let sim = SymantecMssSimulator::start(scenario.options.with(setup)).await?;
        Ok(Box::new(sim) as Box<dyn Running>)
    })
}

impl Running for SymantecMssSimulator {
    fn endpoints(&self) -> Vec<(&'static str, String)> {
        vec![("Symantec MSS (mutual TLS)", self.url.clone())]
    }

    fn control_url(&self) -> String {
        self.url.clone()
    }

    fn instances(&self) -> Vec<SimInstance> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.client_p12);
        vec![SimInstance {
            name: "symantec".into(),
            integration: "symantec-mss",
            params: vec![
                ("server", text(&self.url)),
                ("certificate_file", text("symantec-client.p12")),
                ("passphrase", secret_file("symantec-passphrase")),
                ("ca_file", text("symantec-ca.pem")),
                ("severities", text("Emergency,Critical,Warning")),
            ],
            files: vec![
                ("symantec-ca.pem", self.ca_pem.clone().into_bytes()),
                ("symantec-passphrase", self.passphrase.clone().into_bytes()),
                ("symantec-client.p12", self.client_p12.clone()),
                // For the `certificate` parameter, which takes the .p12 in base64.
                ("symantec-client.p12.b64", b64.into_bytes()),
            ],
            fetch_interval: "1m",
            first_fetch: "2024-04-01T00:00:00Z",
            organization: None,
        }]
    }

    fn examples(&self) -> Vec<String> {
        vec![
            format!(
                "!symantec-mss-incidents-list time={} severities=Critical,Emergency",
                self.seeded_from.format("%Y-%m-%d")
            ),
            "!symantec-mss-get-incident number=7781203".into(),
            "!symantec-mss-update-incident number=7781203 status=Closed resolution=Resolved comments=Handled".into(),
        ]
    }
}
