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
mod mirror;
#[cfg(test)]
mod tests;

use crate::Integration;

/// The integration: its definition and how an instance connects.
pub static INTEGRATION: Integration = Integration::new(
    || Integration::parse(include_str!("integration.toml")),
    |config| {
        let settings = config::Settings::from_config(config)?;
        Ok(Box::new(commands::SymantecMssInstance::new(&settings)?))
    },
);

/// The integration's definition.
pub fn definition() -> &'static watchfloor_core::IntegrationDef {
    INTEGRATION.definition()
}
