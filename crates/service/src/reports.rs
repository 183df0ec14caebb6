//! Provider accountability reports: the figures of a period's incidents (see
//! `watchfloor_core::report`), per provider instance, organization and type, read within the
//! caller's organizations.

use chrono::{DateTime, Utc};
use watchfloor_core::report::{CustomerReport, Report, ReportRow, TOP};
use watchfloor_storage::{IncidentFilter, Scope};

use crate::{Caller, Service, ServiceError};

/// The longest period a report covers.
pub const MAX_DAYS: i64 = 400;

impl Service {
    /// The report of the incidents first seen in `[since, until)`: of `organization`, or of
    /// every organization the caller sees. A user of some organizations is refused another's.
    async fn read_report(
        &self,
        caller: &Caller,
        organization: Option<&str>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<(Report, Vec<ReportRow>), ServiceError> {
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
        // A period not yet over is judged now: what is open is not yet past due at its end.
        let until = until.min(Utc::now()).max(since);
        Ok((Report::of(named, since, until, &rows), rows))
    }

    /// The report of the incidents first seen in `[since, until)` (see [`Service::report`]).
    pub async fn report(
        &self,
        caller: &Caller,
        organization: Option<&str>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Report, ServiceError> {
        Ok(self
            .read_report(caller, organization, since, until)
            .await?
            .0)
    }

    /// A customer's report of `[since, until)`: the figures, the critical and high incidents
    /// with their outcomes, and the most frequent titles and indicators.
    pub async fn customer_report(
        &self,
        caller: &Caller,
        organization: Option<&str>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<CustomerReport, ServiceError> {
        let (report, rows) = self.read_report(caller, organization, since, until).await?;
        let ids = rows.iter().map(|r| r.id);
        let indicators = match (ids.clone().min(), ids.max()) {
            (Some(first), Some(last)) => {
                self.store
                    .top_indicators(
                        &caller.scope,
                        organization.map(str::trim).filter(|o| !o.is_empty()),
                        (first, last),
                        TOP,
                    )
                    .await?
            }
            _ => Vec::new(),
        };
        Ok(CustomerReport::of(report, rows, indicators))
    }

    /// The figures of each of the last `weeks` weeks (Monday to Monday, UTC) up to `now`,
    /// oldest first: each week's report is judged at its end, or now for this week.
    pub async fn weekly_reports(
        &self,
        caller: &Caller,
        organization: Option<&str>,
        weeks: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Report>, ServiceError> {
        use chrono::{Datelike, TimeDelta};
        let weeks = weeks.clamp(1, 52) as i64;
        let today = now.date_naive();
        let monday = today - TimeDelta::days(today.weekday().num_days_from_monday() as i64);
        let this_week = monday
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now);
        let first = this_week - TimeDelta::weeks(weeks - 1);
        let (report, rows) = self
            .read_report(
                caller,
                organization,
                first,
                now.max(first + TimeDelta::seconds(1)),
            )
            .await?;
        Ok((0..weeks)
            .map(|n| {
                let start = first + TimeDelta::weeks(n);
                let end = (start + TimeDelta::weeks(1)).min(now.max(start));
                let rows: Vec<ReportRow> = rows
                    .iter()
                    .filter(|r| r.created >= start && r.created < start + TimeDelta::weeks(1))
                    .cloned()
                    .collect();
                Report::of(report.organization.clone(), start, end, &rows)
            })
            .collect())
    }
}
