//! Covalence for Security Providers: Covalence appliances reached directly or through a broker,
//! commands `cov-secpr-*`.
//!
//! - `integration.toml`: the definition (parameters, commands, arguments, outputs).
//! - [`config`]: instance settings and the base URLs built from `host`.
//! - [`client`]: sessions per appliance, the broker's index page, and fan-out to an
//!   organization's appliances.
//! - [`commands`]: what each command asks and how it shapes the answer.

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
        panic!("built-in covalence-security-providers definition is invalid: {e}")
    })
});

/// The integration's definition.
pub fn definition() -> &'static IntegrationDef {
    &DEFINITION
}

/// The Covalence for Security Providers integration.
pub struct CovalenceSecurityProviders;

impl Integration for CovalenceSecurityProviders {
    fn definition(&self) -> &IntegrationDef {
        definition()
    }

    fn connect(&self, config: &InstanceConfig) -> Result<Box<dyn Instance>, CommandError> {
        let settings = config::Settings::from_config(config)?;
        Ok(Box::new(commands::CovalenceInstance::new(&settings)?))
    }
}
