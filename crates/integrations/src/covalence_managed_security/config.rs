//! Instance settings of Covalence Managed Security, read from a checked [`InstanceConfig`].

use std::path::PathBuf;
use std::time::Duration;

use watchfloor_core::{InstanceConfig, Secret};

use crate::CommandError;
use crate::http::HttpOptions;

/// What one instance needs to talk to the portal and the Broker.
#[derive(Debug, Clone)]
pub struct Settings {
    pub portal_url: String,
    pub api_key: Secret,
    pub broker_url: Option<String>,
    pub http: HttpOptions,
}

impl Settings {
    pub fn from_config(config: &InstanceConfig) -> Result<Self, CommandError> {
        let missing =
            |name: &str| CommandError::NotConfigured(format!("parameter `{name}` is not set"));
        Ok(Settings {
            portal_url: config
                .text("portal_url")
                .ok_or_else(|| missing("portal_url"))?
                .to_string(),
            api_key: config
                .secret("api_key")
                .ok_or_else(|| missing("api_key"))?
                .clone(),
            broker_url: config.text("broker_url").map(str::to_string),
            http: HttpOptions {
                timeout: config
                    .duration("timeout")
                    .unwrap_or(Duration::from_secs(30)),
                ca_file: config.text("ca_file").map(PathBuf::from),
                insecure: config.bool("insecure").unwrap_or(false),
                ..HttpOptions::default()
            },
        })
    }
}
