//! Provider accountability reports: the figures of a period's incidents (see
//! `watchfloor_core::report`), per provider instance, organization and type, read within the
//! caller's organizations.

use chrono::{DateTime, Utc};
use watchfloor_core::report::{CustomerReport, Report, ReportRow, TOP};
use watchfloor_notify::{Outgoing, ReportMessage};
use watchfloor_storage::{DeliveryOutcome, IncidentFilter, ReportSend, Role, Scope};

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
        let until = until.min(self.now()).max(since);
        let mut report = Report::of(named, since, until, &rows);
        for group in &mut report.by_instance {
            group.poll_interval_s = self.fetch_intervals.get(&group.name).copied();
        }
        Ok((report, rows))
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

    /// Queues the scheduled reports that are due (each organization, channel and period
    /// once, whichever process finds it first), then sends those whose time has come; how
    /// many went out. A report is read as a user of its organization alone would read it.
    /// Once `stop` turns true, a report being sent is let finish and recorded, and those
    /// claimed but not yet tried are left due.
    pub(crate) async fn send_scheduled_reports(
        &self,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<usize, ServiceError> {
        let now = self.now();
        for schedule in self.reports.iter() {
            let id = |period: &str| report_send_id(&schedule.org, &schedule.channel, period);
            // Days missed while no process ran: those after the newest one queued.
            let late = schedule.late(now);
            let mut periods = Vec::new();
            if !late.is_empty() {
                let ids: Vec<String> = late.iter().map(|p| id(p)).collect();
                let known = self.store.report_sends_known(&ids).await?;
                if let Some(newest) = ids.iter().position(|i| known.contains(i)) {
                    periods.extend(late[..newest].iter().rev().cloned());
                }
            }
            periods.extend(schedule.due(now));
            for period in periods {
                let send = ReportSend {
                    id: id(&period),
                    organization: schedule.org.clone(),
                    channel: schedule.channel.clone(),
                    period,
                    status: "pending".into(),
                    attempts: 0,
                    created: now,
                    sent: None,
                    last_error: None,
                };
                if self.store.queue_report_send(&send, now).await? {
                    tracing::info!(organization = %send.organization, period = %send.period, channel = %send.channel, "a scheduled report is due");
                }
            }
        }
        let retry_at = now + chrono::TimeDelta::from_std(self.claim).unwrap_or_default();
        let mut sent = 0;
        let claimed = self.store.claim_report_sends(now, retry_at).await?;
        for (n, send) in claimed.iter().enumerate() {
            if *stop.borrow() {
                let now = self.now();
                for untried in &claimed[n..] {
                    self.store
                        .finish_report_send(&untried.id, DeliveryOutcome::Untried(now), now)
                        .await?;
                }
                break;
            }
            let outcome = self.send_report(send).await;
            let now = self.now();
            match outcome {
                Ok(()) => {
                    self.store
                        .finish_report_send(&send.id, DeliveryOutcome::Sent, now)
                        .await?;
                    sent += 1;
                }
                Err((error, for_good)) => {
                    tracing::warn!(report = %send.id, channel = %send.channel, %error, "a scheduled report was not sent");
                    let give_up = self
                        .channel(&send.channel)
                        .map(|c| c.give_up_after)
                        .unwrap_or_default();
                    let outcome = match for_good {
                        true => DeliveryOutcome::Failed(&error),
                        false => crate::notifications::after_failure(
                            &error,
                            send.created,
                            send.attempts,
                            give_up,
                            now,
                        ),
                    };
                    self.store
                        .finish_report_send(&send.id, outcome, now)
                        .await?;
                }
            }
        }
        Ok(sent)
    }

    /// Reads and sends one scheduled report; on failure, why, and whether it is for good.
    async fn send_report(&self, send: &ReportSend) -> Result<(), (String, bool)> {
        let channel = self
            .channel(&send.channel)
            .map_err(|e| (e.to_string(), true))?;
        let (since, until) =
            watchfloor_core::report::period(&send.period).map_err(|m| (m, true))?;
        let caller = Caller {
            name: format!("report:{}", send.organization),
            role: Role::Analyst,
            scope: Scope::Orgs(vec![send.organization.clone()]),
            address: None,
        };
        let report = self
            .customer_report(&caller, Some(&send.organization), since, until)
            .await
            .map_err(|e| (format!("cannot read the report: {e}"), false))?;
        let message = Outgoing {
            id: send.id.clone(),
            digest: false,
            test: false,
            items: Vec::new(),
            report: Some(Box::new(ReportMessage::of(
                &report,
                &send.organization,
                &send.period,
                self.now(),
            ))),
        };
        watchfloor_notify::send(channel, &message)
            .await
            .map_err(|e| (e.to_string(), false))
    }

    /// The scheduled reports queued and sent, newest first (callers who see every
    /// organization only).
    pub async fn report_sends(&self, caller: &Caller) -> Result<Vec<ReportSend>, ServiceError> {
        self.may_read_channels(caller)?;
        Ok(self.store.report_sends(200).await?)
    }
}

/// A scheduled report's stable id: the same for one organization, channel and period in every
/// process, so it is queued once and a receiver can drop a repeat by it.
pub fn report_send_id(organization: &str, channel: &str, period: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{organization}\0{channel}\0{period}").as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("report-{period}-{hex}")
}
