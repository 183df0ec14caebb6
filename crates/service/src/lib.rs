//! watchfloor-service: the rules every front end shares (the CLI, the API, XSOAR's API, the UI
//! and, later, automation rules), in one place, so that each front end only translates.
//!
//! [`Service`] is the facade: front ends hold one and call its methods for a [`Caller`].
//!
//! - [`incidents`]: who may see and change an incident, and every change to one.
//! - [`queue`]: the queue's filter from parameters, its pages and its counts.
//! - [`commands`]: provider commands run in an incident, under the organization rule
//!   ([`tenancy`]) and with `${...}` references resolved ([`refs`]).
//! - [`accounts`]: users, API keys and login sessions ([`auth`], [`login`]).
//! - [`instances`]: test-module and a fetch now, and commands on their own.
//! - [`error`]: [`ServiceError`], with no HTTP in it.

pub mod accounts;
pub mod auth;
pub mod automation;
pub mod commands;
pub mod error;
pub mod incidents;
pub mod indicators;
pub mod instances;
pub mod login;
pub mod notifications;
pub mod queue;
pub mod refs;
pub mod reports;
pub mod rules;
pub mod tenancy;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use watchfloor_core::SlaPolicy;
use watchfloor_core::channel::ChannelConfig;
use watchfloor_integrations::Runner;
use watchfloor_storage::{Actor, Role, Scope, Store, User};

pub use error::ServiceError;
pub use incidents::{Selection, ToEach};
pub use queue::{QueuePage, QueueParams};

/// The rules every front end shares, over one store: cheap to clone.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    /// The SLA changes are held to (the config's `[sla]`).
    sla: SlaPolicy,
    /// The configured instances, to run provider commands.
    runner: Option<Arc<Runner>>,
    /// The fetch engine, for "fetch now".
    engine: Option<Arc<watchfloor_engine::Engine>>,
    /// Failed logins, by user and by address.
    limiter: Arc<login::Limiter>,
    /// The notification channels (the config's `[[channels]]`).
    channels: Arc<Vec<ChannelConfig>>,
    /// The scheduled customer reports (the config's `[[reports]]`).
    reports: Arc<Vec<watchfloor_core::report::ReportSchedule>>,
    /// How often each fetching instance fetches, in seconds (the config's `fetch_interval`).
    fetch_intervals: Arc<std::collections::BTreeMap<String, u64>>,
    /// Where users reach the UI (`[server] public_url`), for links in notifications.
    public_url: Option<Arc<str>>,
    /// What time it is: the system's clock, or a test's.
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// How long a delivery being sent is claimed ([`notifications::CLAIM`] unless told).
    claim: std::time::Duration,
    /// Whether scoped analysts see how many other organizations saw an indicator.
    cross_org_counts: bool,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, sla: SlaPolicy) -> Service {
        Service {
            store,
            sla,
            runner: None,
            engine: None,
            limiter: Arc::default(),
            channels: Arc::default(),
            reports: Arc::default(),
            fetch_intervals: Arc::default(),
            public_url: None,
            clock: Arc::new(Utc::now),
            claim: notifications::CLAIM,
            cross_org_counts: true,
        }
    }

    /// Claims deliveries being sent for `claim` (`serve`: its lease, which only one process
    /// holds at a time): one cut off mid-send goes again after it.
    pub fn with_delivery_claim(mut self, claim: std::time::Duration) -> Service {
        self.claim = claim;
        self
    }

    /// With notification channels, and where the UI is for the links in their messages.
    pub fn with_channels(
        mut self,
        channels: Vec<ChannelConfig>,
        public_url: Option<String>,
    ) -> Service {
        self.channels = Arc::new(channels);
        self.public_url = public_url.map(Arc::from);
        self
    }

    /// With what the config says of the service: the channels and the UI's address, the
    /// scheduled reports, the instances' fetch intervals (for the reports' delivery lag) and
    /// whether scoped analysts see counts of other organizations.
    pub fn with_settings(self, shared: &watchfloor_core::Shared) -> Service {
        let mut service = self
            .with_channels(shared.channels.clone(), shared.public_url.clone())
            .with_reports(shared.reports.clone())
            .with_cross_org_counts(shared.indicators.cross_org_counts);
        service.fetch_intervals = Arc::new(
            shared
                .instances
                .iter()
                .filter_map(|(name, every)| every.map(|e| (name.clone(), e.as_secs())))
                .collect(),
        );
        service
    }

    /// With scheduled customer reports (the config's `[[reports]]`), sent through the channels.
    pub fn with_reports(
        mut self,
        reports: Vec<watchfloor_core::report::ReportSchedule>,
    ) -> Service {
        self.reports = Arc::new(reports);
        self
    }

    /// With another clock than the system's (tests of what happens after minutes or hours).
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>) -> Service {
        self.clock = clock;
        self
    }

    /// What time it is for the rules and the notifications.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The configured notification channels.
    pub fn channels(&self) -> &[ChannelConfig] {
        &self.channels
    }

    /// With the fetch engine, so that a fetch can be asked for.
    pub fn with_engine(mut self, engine: Arc<watchfloor_engine::Engine>) -> Service {
        self.engine = Some(engine);
        self
    }

    /// With the configured instances, so that commands can run.
    pub fn with_runner(mut self, runner: Arc<Runner>) -> Service {
        self.runner = Some(runner);
        self
    }

    /// The store, for what no rule guards (health, metrics).
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    pub fn sla(&self) -> &SlaPolicy {
        &self.sla
    }

    /// The configured instances, or why there are none.
    pub fn runner(&self) -> Result<&Runner, ServiceError> {
        self.runner.as_deref().ok_or_else(|| {
            ServiceError::Unavailable(
                "this server runs no instances: start it with a config file".into(),
            )
        })
    }
}

/// Who asks: the name the war room records, the role, and the organizations seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    pub scope: Scope,
    /// The address the request came from, for the audit log; none on the machine itself.
    pub address: Option<String>,
}

impl Caller {
    /// A user of the store.
    pub fn of(user: &User) -> Caller {
        Caller {
            name: user.name.clone(),
            role: user.role,
            scope: Scope::of(user),
            address: None,
        }
    }

    /// Someone on the machine itself (the CLI): an administrator, recorded as `name`.
    pub fn local(name: &str) -> Caller {
        Caller {
            name: name.to_string(),
            role: Role::Admin,
            scope: Scope::All,
            address: None,
        }
    }

    /// The caller, asking from `address`.
    pub fn at(mut self, address: std::net::SocketAddr) -> Caller {
        self.address = Some(address.ip().to_string());
        self
    }

    /// Who the audit log records.
    pub fn actor(&self) -> Actor {
        Actor::new(&self.name, self.address.clone())
    }
}
