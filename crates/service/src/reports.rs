//! Provider accountability reports: the figures of a period's incidents (see
//! `watchfloor_core::report`), per provider instance, organization and type, read within the
//! caller's organizations.

use chrono::{DateTime, Utc};
use watchfloor_core::report::Report;
use watchfloor_storage::{IncidentFilter, Scope};

use crate::{Caller, Service, ServiceError};

/// The longest period a report covers.
pub const MAX_DAYS: i64 = 400;

impl Service {
    /// The report of the incidents first seen in `[since, until)`: of `organization`, or of
    /// every organization the caller sees. A user of some organizations is refused another's.
    pub async fn report(
        &self,
        caller: &Caller,
        organization: Option<&str>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Report, ServiceError> {
        if since >= until {
            return Err(ServiceError::Invalid(format!(
                "a report's period must end after it starts (since {since}, until {until})"
            )));
        }
        if until - since > chrono::TimeDelta::days(MAX_DAYS) {
            return Err(ServiceError::Invalid(format!(
                "a report covers at most {MAX_DAYS} days: ask for a shorter period"
            )));
        }
        let organization = organization.map(str::trim).filter(|o| !o.is_empty());
        if let Some(org) = organization
            && !caller.scope.allows(Some(org))
        {
            return Err(ServiceError::Forbidden(format!(
                "{} sees only the reports of its own organizations: name one of them, or \
                 no organization for all of them",
                caller.name
            )));
        }
        let filter = IncidentFilter {
            scope: caller.scope.clone(),
            organization: organization.map(str::to_string),
            fetched_since: Some(since),
            ..IncidentFilter::default()
        };
        let rows = self.store.report_rows(&filter, until).await?;
        // The name as the caller gave it, or the one organization a scoped caller sees.
        let named = organization.map(str::to_string).or(match &caller.scope {
            Scope::Orgs(orgs) if orgs.len() == 1 => Some(orgs[0].clone()),
            _ => None,
        });
        Ok(Report::of(named, since, until, &rows))
    }
}
