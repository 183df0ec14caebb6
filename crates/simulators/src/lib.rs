//! watchfloor-simulators: faithful provider API servers for tests, the demo and benchmarks.
//!
//! Each simulator is a library that binds loopback on any port (port 0 in tests), seeds
//! deterministic data, checks authentication, pages like the real API, really changes state,
//! and injects faults on demand ([`faults`]). `watchfloor simulate` runs them in the foreground.

#![recursion_limit = "256"]

pub mod api;
pub mod covalence;
pub mod faults;
pub mod fes;
pub mod rng;
pub mod server;
pub mod symantec;
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

pub use covalence::{CovalenceOptions, CovalenceSimulator};
pub use faults::{FaultSpec, Faults};
pub use fes::{FesOptions, FesSimulator};
pub use symantec::{SymantecOptions, SymantecSimulator};
