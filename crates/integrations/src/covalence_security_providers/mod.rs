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
mod mirror;
#[cfg(test)]
mod tests;

use crate::Integration;

/// The integration: its definition and how an instance connects.
pub static INTEGRATION: Integration = Integration::new(
    || Integration::parse(include_str!("integration.toml")),
    |config| {
        let settings = config::Settings::from_config(config)?;
        Ok(Box::new(commands::CovalenceSecurityProvidersInstance::new(
            &settings,
        )?))
    },
);

/// The integration's definition.
pub fn definition() -> &'static watchfloor_core::IntegrationDef {
    INTEGRATION.definition()
}
