//! Instance settings of Covalence Managed Security, read from a checked [`InstanceConfig`].

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
        Ok(Settings {
            portal_url: config.get::<&str>("portal_url")?.to_string(),
            api_key: config.get::<&Secret>("api_key")?.clone(),
            broker_url: config.optional::<&str>("broker_url").map(str::to_string),
            http: HttpOptions::from_config(config)?,
        })
    }
}
