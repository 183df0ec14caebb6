//! The configured instances: who may act on one (users who see every organization and are not
//! viewers, since an instance serves every organization), test-module now, a fetch now, and a
//! command on its own.

use watchfloor_core::Entry;
use watchfloor_engine::CycleReport;
use watchfloor_integrations::{RunError, Runner};
use watchfloor_storage::{Role, Scope};

use crate::{Caller, Service, ServiceError};

impl Service {
    /// Refuses users who may not act on an instance: viewers, and users limited to
    /// organizations.
    pub fn may_run_instances(&self, caller: &Caller) -> Result<(), ServiceError> {
        if caller.role == Role::Viewer || caller.scope != Scope::All {
            return Err(ServiceError::Forbidden(
                "only users who see every organization (and are not viewers) act on instances"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The configured instances, if the caller may act on instance `name`.
    fn instance_to_act_on(&self, caller: &Caller, name: &str) -> Result<&Runner, ServiceError> {
        self.may_run_instances(caller)?;
        let runner = self.runner()?;
        runner
            .instance(name)
            .map_err(|e| ServiceError::NotFound(e.to_string()))?;
        Ok(runner)
    }

    /// Runs test-module on instance `name`: `Ok` with its answer, or `Err` with why it failed.
    pub async fn test_instance(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Result<String, String>, ServiceError> {
        let runner = self.instance_to_act_on(caller, name)?;
        Ok(runner
            .run("!test-module", Some(name))
            .await
            .map(|entry| entry.readable)
            .map_err(|e| e.to_string()))
    }

    /// A fetch cycle of instance `name` now, until caught up. `Err(Ok(..))`: the caller may
    /// not, or nothing fetches here; `Err(Err(..))`: the fetch failed.
    pub async fn fetch_instance(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Result<CycleReport, String>, ServiceError> {
        self.instance_to_act_on(caller, name)?;
        let engine = self
            .engine
            .as_ref()
            .ok_or_else(|| ServiceError::Unavailable("this server runs no fetch engine".into()))?;
        let (_keep, stop) = tokio::sync::watch::channel(false);
        let report = engine
            .cycle(
                name,
                watchfloor_engine::Steps::UntilCaughtUp,
                &|_| {},
                &stop,
            )
            .await
            .map_err(|e| e.to_string());
        if let Ok(report) = &report {
            tracing::info!(instance = %name, by = %caller.name, new = report.new_incidents, "fetch asked for");
        }
        Ok(report)
    }

    /// A provider command on its own, outside any incident. Provider answers are not tied to
    /// an organization, so only users who see every organization (and may change things) run
    /// commands this way; others run them in an incident.
    pub async fn run_command(
        &self,
        caller: &Caller,
        line: &str,
        instance: Option<&str>,
    ) -> Result<Result<Entry, RunError>, ServiceError> {
        if caller.role == Role::Viewer || caller.scope != Scope::All {
            return Err(ServiceError::Forbidden(
                "only users who see every organization run commands on their own; run it in an incident (POST /api/v1/incidents/{id}/run)".into(),
            ));
        }
        Ok(self.runner()?.run(line, instance).await)
    }
}

impl Service {
    /// Each instance's fetch health. A user limited to organizations sees whether each is
    /// fetching, not what it set aside or the provider's error text, which can name other
    /// customers' alerts.
    pub async fn health(
        &self,
        caller: &Caller,
    ) -> Result<Vec<watchfloor_storage::Health>, ServiceError> {
        let mut health = self.store.health().await?;
        if caller.scope != Scope::All {
            for h in &mut health {
                h.set_aside.clear();
                // Scopes are organizations of every customer of the instance.
                h.scopes.clear();
                if h.last_error.is_some() {
                    h.last_error = Some("the last fetch failed; an administrator sees why".into());
                }
            }
        }
        Ok(health)
    }
}
