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
mod mirror;
#[cfg(test)]
mod tests;

use crate::Integration;

/// The integration: its definition and how an instance connects.
pub static INTEGRATION: Integration = Integration::new(
    || Integration::parse(include_str!("integration.toml")),
    |config| {
        let settings = config::Settings::from_config(config)?;
        Ok(Box::new(commands::CovalenceManagedSecurityInstance::new(
            &settings,
        )?))
    },
);

/// The integration's definition.
pub fn definition() -> &'static watchfloor_core::IntegrationDef {
    INTEGRATION.definition()
}
