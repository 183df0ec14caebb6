//! Symantec Managed Security Services: the SWS incidents SOAP API over mutual TLS, commands
//! `symantec-mss-*`.
//!
//! - `integration.toml`: the definition (parameters, commands, arguments, outputs).
//! - [`config`]: instance settings; the PKCS#12 certificate, decoded once ([`certificate`]).
//! - [`client`]: SOAP 1.2 envelopes, faults and the four operations.
//! - [`commands`]: what each command asks and how it shapes the answer.

mod certificate;
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
    IntegrationDef::from_toml(include_str!("integration.toml"))
        .unwrap_or_else(|e| panic!("built-in symantec-mss definition is invalid: {e}"))
});

/// The integration's definition.
pub fn definition() -> &'static IntegrationDef {
    &DEFINITION
}

/// The Symantec MSS integration.
pub struct SymantecMss;

impl Integration for SymantecMss {
    fn definition(&self) -> &IntegrationDef {
        definition()
    }

    fn connect(&self, config: &InstanceConfig) -> Result<Box<dyn Instance>, CommandError> {
        let settings = config::Settings::from_config(config)?;
        Ok(Box::new(commands::SymantecInstance::new(&settings)?))
    }
}
