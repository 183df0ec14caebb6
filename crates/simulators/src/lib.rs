//! watchfloor-simulators: faithful provider API servers for tests, the demo and benchmarks.
//!
//! Each simulator is a library that binds loopback on any port (port 0 in tests), seeds
//! deterministic data, checks authentication, pages like the real API, really changes state,
//! and injects faults on demand ([`faults`]). `watchfloor simulate` runs them in the foreground.

#![recursion_limit = "256"]

use std::time::Duration;

pub mod api;
pub mod covalence_managed_security;
pub mod covalence_security_providers;
pub mod faults;
pub mod rng;
pub mod scenario;
pub mod server;
pub mod symantec_mss;
pub mod tls;

/// The severity scale of Field Effect's products (FES Portal AROs and Covalence alerts).
pub const FIELD_EFFECT_SEVERITIES: [&str; 6] = [
    "Informational",
    "Warning",
    "Low",
    "Medium",
    "High",
    "Critical",
];

pub use covalence_managed_security::{
    CovalenceManagedSecuritySetup, CovalenceManagedSecuritySimulator,
};
pub use covalence_security_providers::{
    CovalenceSecurityProvidersSetup, CovalenceSecurityProvidersSimulator,
};
pub use faults::{FaultSpec, Faults};
pub use scenario::{Running, SIMULATORS, Scenario, SimInstance};
pub use symantec_mss::{SymantecMssSetup, SymantecMssSimulator};

/// Options every simulator takes, around its own setup `S` (sizes, credentials, quirks).
#[derive(Debug, Clone)]
pub struct SimOptions<S> {
    /// Seed of the generated data: the same seed gives the same data.
    pub seed: u64,
    pub faults: FaultSpec,
    /// New alerts become visible this long after their creation time, as when a provider
    /// indexes them late.
    pub late_arrival: Duration,
    /// Add a new alert this often.
    pub generate_every: Option<Duration>,
    /// When the newest seeded alert was created, about: the seeded data is moved to end then
    /// (`demo` gives now, so that its queue's ages, lags and reports read as a live one's).
    /// Unset, it starts on 2024-05-01, where tests and the docs' examples expect it.
    pub seeded_until: Option<chrono::DateTime<chrono::Utc>>,
    pub setup: S,
}

impl<S: Default> Default for SimOptions<S> {
    fn default() -> Self {
        SimOptions {
            seed: 1,
            faults: FaultSpec::default(),
            late_arrival: Duration::ZERO,
            generate_every: None,
            seeded_until: None,
            setup: S::default(),
        }
    }
}

/// Options of the FES Portal and Broker simulator.
pub type CovalenceManagedSecurityOptions = SimOptions<CovalenceManagedSecuritySetup>;
/// Options of the Covalence appliance and broker simulator.
pub type CovalenceSecurityProvidersOptions = SimOptions<CovalenceSecurityProvidersSetup>;
/// Options of the SWS simulator.
pub type SymantecMssOptions = SimOptions<SymantecMssSetup>;
