//! `AppState`, what every route and page shares: the service, the store, the instances and
//! the engine.

use std::sync::Arc;

use axum::http::StatusCode;
use watchfloor_core::SlaPolicy;
use watchfloor_integrations::Runner;
use watchfloor_service::Service;
use watchfloor_storage::Store;

use crate::error::ApiError;

/// What every route shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The SLA changes are held to (the config's `[sla]`).
    pub sla: SlaPolicy,
    /// The configured instances, to run provider commands.
    pub runner: Option<Arc<Runner>>,
    /// The rules every front end shares.
    pub service: Service,
    /// The fetch engine, for "fetch now".
    pub engine: Option<Arc<watchfloor_engine::Engine>>,
    /// Whether the server runs over TLS, so that session cookies are marked Secure.
    pub secure_cookies: bool,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, sla: SlaPolicy) -> Self {
        AppState {
            service: Service::new(store.clone(), sla.clone()),
            store,
            sla,
            runner: None,
            engine: None,
            secure_cookies: false,
        }
    }

    /// Under TLS: session cookies are marked Secure.
    pub fn over_tls(mut self) -> Self {
        self.secure_cookies = true;
        self
    }

    /// With the fetch engine, so that a fetch can be asked for.
    pub fn with_engine(mut self, engine: Arc<watchfloor_engine::Engine>) -> Self {
        self.service = self.service.with_engine(engine.clone());
        self.engine = Some(engine);
        self
    }

    /// Whether scoped analysts see how many other organizations saw an indicator.
    pub fn with_cross_org_counts(mut self, on: bool) -> Self {
        self.service = self.service.with_cross_org_counts(on);
        self
    }

    /// With what the config says of the service (see [`watchfloor_service::Service::with_settings`]).
    pub fn with_settings(mut self, shared: &watchfloor_core::Shared) -> Self {
        self.service = self.service.with_settings(shared);
        self
    }

    /// With notification channels, and where the UI is for the links in their messages.
    pub fn with_channels(
        mut self,
        channels: Vec<watchfloor_core::channel::ChannelConfig>,
        public_url: Option<String>,
    ) -> Self {
        self.service = self.service.with_channels(channels, public_url);
        self
    }

    /// With the configured instances, so that commands can run.
    pub fn with_runner(mut self, runner: Arc<Runner>) -> Self {
        self.service = self.service.with_runner(runner.clone());
        self.runner = Some(runner);
        self
    }

    pub(crate) fn runner(&self) -> Result<&Runner, ApiError> {
        self.runner.as_deref().ok_or_else(|| {
            ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "this server runs no instances: start it with a config file".into(),
            )
        })
    }
}
