//! Covalence Managed Security: the FES Portal (AROs, organizations, contacts) and the Broker
//! (host, ARO and cloud response actions), commands `cov-mgsec-*`.
//!
//! - `integration.toml`: the definition (parameters, commands, arguments, outputs).
//! - [`config`]: instance settings from the config file.
//! - [`client`]: the portal and Broker HTTP clients.
//! - [`commands`]: what each command asks the provider and how it shapes the answer.

mod client;
mod commands;
mod config;
mod fetch;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use watchfloor_core::{InstanceConfig, IntegrationDef};

use crate::{CommandError, Instance, Integration};

static DEFINITION: LazyLock<IntegrationDef> = LazyLock::new(|| {
    IntegrationDef::from_toml(include_str!("integration.toml")).unwrap_or_else(|e| {
        panic!("built-in covalence-managed-security definition is invalid: {e}")
    })
});

/// The integration's definition.
pub fn definition() -> &'static IntegrationDef {
    &DEFINITION
}

/// The Covalence Managed Security integration.
pub struct CovalenceManagedSecurity;

impl Integration for CovalenceManagedSecurity {
    fn definition(&self) -> &IntegrationDef {
        definition()
    }

    fn connect(&self, config: &InstanceConfig) -> Result<Box<dyn Instance>, CommandError> {
        let settings = config::Settings::from_config(config)?;
        Ok(Box::new(commands::FesInstance::new(&settings)?))
    }
}
