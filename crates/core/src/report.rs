//! Provider accountability figures: from each incident's provider and local timestamps, the
//! volume, delivery lag, times to assign and close, escalation quality and SLA compliance of a
//! period, as medians and 90th percentiles (see docs/reports.md for each definition).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{CloseReason, Severity};

/// What a report reads of one incident.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub id: i64,
    pub name: String,
    pub instance: String,
    pub organization: Option<String>,
    pub kind: String,
    pub severity: Severity,
    /// The provider's creation time.
    pub occurred: DateTime<Utc>,
    /// When watchfloor first saw it (fetched, or made by hand).
    pub created: DateTime<Utc>,
    pub first_assigned: Option<DateTime<Utc>>,
    /// When it first became active (was taken up).
    pub first_active: Option<DateTime<Utc>>,
    pub closed: Option<DateTime<Utc>>,
    pub close_reason: Option<CloseReason>,
    pub sla_due: DateTime<Utc>,
    /// When the provider resolved it, if it did (FES).
    pub provider_resolved: Option<DateTime<Utc>>,
    /// When the provider was first seen to have acknowledged it (Covalence).
    pub provider_acknowledged: Option<DateTime<Utc>>,
}

/// How long something took over a set of incidents, in whole seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Spread {
    /// How many incidents it was measured on.
    pub n: usize,
    pub median_s: Option<i64>,
    pub p90_s: Option<i64>,
    pub max_s: Option<i64>,
}

impl Spread {
    /// The spread of `seconds` (in any order).
    pub fn of(mut seconds: Vec<i64>) -> Spread {
        seconds.sort_unstable();
        Spread {
            n: seconds.len(),
            median_s: percentile(&seconds, 50),
            p90_s: percentile(&seconds, 90),
            max_s: seconds.last().copied(),
        }
    }
}

/// The `p`th percentile of `sorted` by the nearest-rank method: the smallest value that at
/// least `p` percent of the values are at or below; none of nothing.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p.min(100) as usize).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The figures of a set of incidents first seen in a period that ends at `until`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Incidents first seen in the period.
    pub incidents: usize,
    /// Of them, by severity (its label), most severe first.
    pub by_severity: Vec<(String, usize)>,
    /// The provider's creation to watchfloor's first sight.
    pub delivery_lag: Spread,
    /// The provider's creation to its own resolution, of those it resolved by the period's
    /// end (FES).
    pub provider_time_to_resolve: Spread,
    /// The provider's creation to its acknowledgement as mirroring first saw it, of those it
    /// acknowledged by the period's end (Covalence).
    pub provider_time_to_acknowledge: Spread,
    /// First sight to first active (taken up), of those active by the period's end.
    pub time_to_acknowledge: Spread,
    /// First sight to the first owner, of those assigned by the period's end.
    pub time_to_assign: Spread,
    /// First sight to closed, of those closed by the period's end.
    pub time_to_close: Spread,
    /// Closed by the period's end.
    pub closed: usize,
    /// Of them, closed as False Positive or Duplicate.
    pub false_positive_or_duplicate: usize,
    /// That share of the closed, 0 to 1; none when none closed.
    pub false_positive_share: Option<f64>,
    /// Of the closed, closed by their SLA's due time.
    pub closed_within_sla: usize,
    /// That share of the closed; none when none closed.
    pub sla_compliance: Option<f64>,
    /// Still open at the period's end (closed later counts as open).
    pub open_at_end: usize,
    /// Of them, past their SLA's due time at the period's end.
    pub open_breaches: usize,
}

impl Figures {
    /// The figures of `rows` (incidents first seen in the period) at the period's end `until`.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a ReportRow>, until: DateTime<Utc>) -> Figures {
        let mut f = Figures::default();
        let mut severities: BTreeMap<std::cmp::Reverse<Severity>, usize> = BTreeMap::new();
        let (mut lag, mut assign, mut close) = (Vec::new(), Vec::new(), Vec::new());
        let (mut resolve, mut acknowledge) = (Vec::new(), Vec::new());
        let mut provider_acknowledge = Vec::new();
        for row in rows {
            f.incidents += 1;
            *severities
                .entry(std::cmp::Reverse(row.severity))
                .or_default() += 1;
            lag.push((row.created - row.occurred).num_seconds().max(0));
            if let Some(at) = row.provider_resolved.filter(|at| *at <= until) {
                resolve.push((at - row.occurred).num_seconds().max(0));
            }
            if let Some(at) = row.provider_acknowledged.filter(|at| *at <= until) {
                provider_acknowledge.push((at - row.occurred).num_seconds().max(0));
            }
            if let Some(at) = row.first_active.filter(|at| *at <= until) {
                acknowledge.push((at - row.created).num_seconds().max(0));
            }
            if let Some(at) = row.first_assigned.filter(|at| *at <= until) {
                assign.push((at - row.created).num_seconds().max(0));
            }
            match row.closed.filter(|at| *at <= until) {
                Some(at) => {
                    f.closed += 1;
                    close.push((at - row.created).num_seconds().max(0));
                    if matches!(
                        row.close_reason,
                        Some(CloseReason::FalsePositive | CloseReason::Duplicate)
                    ) {
                        f.false_positive_or_duplicate += 1;
                    }
                    if at <= row.sla_due {
                        f.closed_within_sla += 1;
                    }
                }
                None => {
                    f.open_at_end += 1;
                    if row.sla_due < until {
                        f.open_breaches += 1;
                    }
                }
            }
        }
        f.by_severity = severities
            .into_iter()
            .map(|(s, n)| (s.0.label().to_string(), n))
            .collect();
        f.delivery_lag = Spread::of(lag);
        f.provider_time_to_resolve = Spread::of(resolve);
        f.provider_time_to_acknowledge = Spread::of(provider_acknowledge);
        f.time_to_acknowledge = Spread::of(acknowledge);
        f.time_to_assign = Spread::of(assign);
        f.time_to_close = Spread::of(close);
        let share = |n: usize| (f.closed > 0).then(|| n as f64 / f.closed as f64);
        f.false_positive_share = share(f.false_positive_or_duplicate);
        f.sla_compliance = share(f.closed_within_sla);
        f
    }
}

/// One group's figures in a report: a provider instance, an organization or a type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
    pub figures: Figures,
    /// Of a provider instance: how often watchfloor fetches from it, in seconds. A delivery
    /// lag up to this is our poll interval; beyond it, the provider's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_interval_s: Option<u64>,
}

/// A report of a period: the figures of all its incidents, and per instance, organization and
/// type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The organization reported on; none for every organization the reader sees.
    pub organization: Option<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub all: Figures,
    pub by_instance: Vec<Group>,
    pub by_organization: Vec<Group>,
    pub by_type: Vec<Group>,
}

impl Report {
    /// The report of `rows`, the incidents first seen in `[since, until)`.
    pub fn of(
        organization: Option<String>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        rows: &[ReportRow],
    ) -> Report {
        let group = |key: &dyn Fn(&ReportRow) -> String| -> Vec<Group> {
            let mut groups: BTreeMap<String, Vec<&ReportRow>> = BTreeMap::new();
            for row in rows {
                groups.entry(key(row)).or_default().push(row);
            }
            groups
                .into_iter()
                .map(|(name, rows)| Group {
                    name,
                    figures: Figures::of(rows, until),
                    poll_interval_s: None,
                })
                .collect()
        };
        Report {
            organization,
            since,
            until,
            all: Figures::of(rows, until),
            by_instance: group(&|r| r.instance.clone()),
            by_organization: group(&|r| r.organization.clone().unwrap_or_default()),
            by_type: group(&|r| r.kind.clone()),
        }
    }
}

impl Report {
    /// Every group with what kind of group it is (all, instance, organization, type), and a
    /// provider instance's poll interval.
    pub fn groups(&self) -> Vec<(&'static str, &str, &Figures, Option<u64>)> {
        let mut out = vec![("all", "", &self.all, None)];
        for (what, list) in [
            ("instance", &self.by_instance),
            ("organization", &self.by_organization),
            ("type", &self.by_type),
        ] {
            out.extend(
                list.iter()
                    .map(|g| (what, g.name.as_str(), &g.figures, g.poll_interval_s)),
            );
        }
        out
    }
}

/// One CSV field: quoted when it must be, and a leading `=`, `+`, `-` or `@` (which a
/// spreadsheet would run as a formula) kept as text.
pub fn csv_field(value: &str) -> String {
    let value = match value.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{value}"),
        _ => value.to_string(),
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// A report as CSV: one row per group (all, each instance, organization and type).
pub fn groups_csv(report: &Report) -> String {
    let secs = |s: Option<i64>| s.map(|s| s.to_string()).unwrap_or_default();
    let ratio = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    let mut out = String::from(
        "group,name,incidents,delivery_lag_median_s,delivery_lag_p90_s,provider_time_to_resolve_median_s,provider_time_to_resolve_p90_s,time_to_acknowledge_median_s,time_to_acknowledge_p90_s,time_to_assign_median_s,time_to_assign_p90_s,time_to_close_median_s,time_to_close_p90_s,closed,false_positive_or_duplicate,false_positive_share,closed_within_sla,sla_compliance,open_at_end,open_breaches,provider_time_to_acknowledge_median_s,provider_time_to_acknowledge_p90_s\n",
    );
    for (what, name, f, _) in report.groups() {
        let cells = [
            what.to_string(),
            csv_field(name),
            f.incidents.to_string(),
            secs(f.delivery_lag.median_s),
            secs(f.delivery_lag.p90_s),
            secs(f.provider_time_to_resolve.median_s),
            secs(f.provider_time_to_resolve.p90_s),
            secs(f.time_to_acknowledge.median_s),
            secs(f.time_to_acknowledge.p90_s),
            secs(f.time_to_assign.median_s),
            secs(f.time_to_assign.p90_s),
            secs(f.time_to_close.median_s),
            secs(f.time_to_close.p90_s),
            f.closed.to_string(),
            f.false_positive_or_duplicate.to_string(),
            ratio(f.false_positive_share),
            f.closed_within_sla.to_string(),
            ratio(f.sla_compliance),
            f.open_at_end.to_string(),
            f.open_breaches.to_string(),
            secs(f.provider_time_to_acknowledge.median_s),
            secs(f.provider_time_to_acknowledge.p90_s),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// The incidents of a report's period as CSV, one row each, with the times each figure is
/// measured from (seconds, empty where not yet reached by the period's end `until`).
pub fn incidents_csv(rows: &[ReportRow], until: DateTime<Utc>) -> String {
    let mut out = String::from(
        "id,title,organization,instance,type,severity,occurred,first_seen,first_active,first_assigned,closed,close_reason,sla_due,provider_resolved,delivery_lag_s,provider_time_to_resolve_s,time_to_acknowledge_s,time_to_assign_s,time_to_close_s,within_sla,provider_acknowledged,provider_time_to_acknowledge_s\n",
    );
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default()
    };
    for r in rows {
        let assigned = r.first_assigned.filter(|t| *t <= until);
        let active = r.first_active.filter(|t| *t <= until);
        let closed = r.closed.filter(|t| *t <= until);
        let resolved = r.provider_resolved.filter(|t| *t <= until);
        let acknowledged = r.provider_acknowledged.filter(|t| *t <= until);
        let since_seen =
            |t: Option<DateTime<Utc>>| t.map(|t| (t - r.created).num_seconds().max(0).to_string());
        let cells = [
            r.id.to_string(),
            csv_field(&r.name),
            csv_field(r.organization.as_deref().unwrap_or_default()),
            csv_field(&r.instance),
            csv_field(&r.kind),
            r.severity.label().to_string(),
            time(Some(r.occurred)),
            time(Some(r.created)),
            time(active),
            time(assigned),
            time(closed),
            closed
                .and(r.close_reason)
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
            time(Some(r.sla_due)),
            time(resolved),
            (r.created - r.occurred).num_seconds().max(0).to_string(),
            resolved
                .map(|t| (t - r.occurred).num_seconds().max(0).to_string())
                .unwrap_or_default(),
            since_seen(active).unwrap_or_default(),
            since_seen(assigned).unwrap_or_default(),
            since_seen(closed).unwrap_or_default(),
            closed
                .map(|t| (t <= r.sla_due).to_string())
                .unwrap_or_default(),
            time(acknowledged),
            acknowledged
                .map(|t| (t - r.occurred).num_seconds().max(0).to_string())
                .unwrap_or_default(),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// A critical or high incident of a customer report, with its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notable {
    pub id: i64,
    pub name: String,
    pub organization: Option<String>,
    pub severity: String,
    pub created: DateTime<Utc>,
    /// When it was closed, if by the period's end.
    pub closed: Option<DateTime<Utc>>,
    /// Its close reason, or `Open` at the period's end.
    pub outcome: String,
}

/// An indicator that many of a period's incidents hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopIndicator {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub incidents: i64,
}

/// A title and how many of a period's incidents bore it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopTitle {
    pub title: String,
    pub incidents: usize,
}

/// A customer's report of a period: the figures, the period's critical and high incidents with
/// their outcomes, its most frequent titles and indicators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerReport {
    pub report: Report,
    /// Critical first, then high; each by when it was first seen; at most [`MAX_NOTABLE`].
    pub notable: Vec<Notable>,
    /// How many critical and high incidents there were in all.
    pub notable_total: usize,
    pub top_titles: Vec<TopTitle>,
    pub top_indicators: Vec<TopIndicator>,
    /// Every incident of the period (for [`incidents_csv`]).
    #[serde(skip)]
    pub rows: Vec<ReportRow>,
}

/// The most critical and high incidents a customer report lists.
pub const MAX_NOTABLE: usize = 500;
/// How many titles and indicators a customer report names.
pub const TOP: usize = 10;

impl CustomerReport {
    /// The report of `rows` (incidents first seen in the report's period) with the period's
    /// most frequent indicators.
    pub fn of(report: Report, rows: Vec<ReportRow>, top_indicators: Vec<TopIndicator>) -> Self {
        let until = report.until;
        let mut notable: Vec<&ReportRow> = rows
            .iter()
            .filter(|r| r.severity >= Severity::High)
            .collect();
        notable.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.created.cmp(&b.created))
                .then(a.id.cmp(&b.id))
        });
        let notable_total = notable.len();
        let notable = notable
            .into_iter()
            .take(MAX_NOTABLE)
            .map(|r| {
                let closed = r.closed.filter(|at| *at <= until);
                Notable {
                    id: r.id,
                    name: r.name.clone(),
                    organization: r.organization.clone(),
                    severity: r.severity.label().to_string(),
                    created: r.created,
                    closed,
                    outcome: match (closed, r.close_reason) {
                        (Some(_), Some(reason)) => reason.as_str().to_string(),
                        (Some(_), None) => "Closed".into(),
                        (None, _) => "Open".into(),
                    },
                }
            })
            .collect();
        let mut titles: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &rows {
            *titles.entry(r.name.as_str()).or_default() += 1;
        }
        let mut top_titles: Vec<TopTitle> = titles
            .into_iter()
            .map(|(title, incidents)| TopTitle {
                title: title.to_string(),
                incidents,
            })
            .collect();
        top_titles.sort_by(|a, b| b.incidents.cmp(&a.incidents).then(a.title.cmp(&b.title)));
        top_titles.truncate(TOP);
        CustomerReport {
            report,
            notable,
            notable_total,
            top_titles,
            top_indicators,
            rows,
        }
    }
}

/// How often a scheduled report goes out: `every = "month"` (the default) or `"day"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    Month,
    Day,
}

/// A `[[reports]]` entry: the customer report of `org`, sent through `channel` once each
/// period has ended, about that period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSchedule {
    pub org: String,
    pub every: Every,
    pub channel: String,
}

impl ReportSchedule {
    /// The period whose report is due at `now`, as [`period`] reads it: the one that ended
    /// when the current one began. A month's report stays due all the next month, so that a
    /// process that was down on the first day sends it late rather than never (each period
    /// is sent once: the sends are recorded under a key of organization, channel and period).
    pub fn due(&self, now: DateTime<Utc>) -> Option<String> {
        use chrono::{Datelike, Months};
        let today = now.date_naive();
        match self.every {
            Every::Month => today
                .with_day(1)?
                .checked_sub_months(Months::new(1))
                .map(|previous| previous.format("%Y-%m").to_string()),
            Every::Day => today.pred_opt().map(|d| d.format("%Y-%m-%d").to_string()),
        }
    }

    /// The periods before the one [`due`](Self::due) names whose reports may still go out
    /// late, newest first: a day's, the [`DAYS_SENT_LATE`] days before yesterday; none for a
    /// month (its report stays due all the next month). The sender sends those after the
    /// newest one it has sent, so a process down for days catches up and a new schedule
    /// does not send a week of reports.
    pub fn late(&self, now: DateTime<Utc>) -> Vec<String> {
        match self.every {
            Every::Month => Vec::new(),
            Every::Day => (2..2 + DAYS_SENT_LATE)
                .filter_map(|back| {
                    now.date_naive()
                        .checked_sub_signed(chrono::TimeDelta::days(back))
                })
                .map(|d| d.format("%Y-%m-%d").to_string())
                .collect(),
        }
    }
}

/// How many days before yesterday a day's report may still go out late (see
/// [`ReportSchedule::late`]).
pub const DAYS_SENT_LATE: i64 = 7;

/// A report's period from `2026-11` (a month) or `2026-11-03` (a day), in UTC: its start and
/// the start of the next.
pub fn period(text: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    use chrono::{Months, NaiveDate, TimeDelta};
    let bad = || format!("period {text:?} is neither a month (2026-11) nor a day (2026-11-03)");
    let text = text.trim();
    let (start, next) = if text.len() == 7 {
        let start =
            NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").map_err(|_| bad())?;
        (
            start,
            start.checked_add_months(Months::new(1)).ok_or_else(bad)?,
        )
    } else {
        let start = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?;
        (
            start,
            start
                .checked_add_signed(TimeDelta::days(1))
                .ok_or_else(bad)?,
        )
    };
    let utc = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(bad);
    Ok((utc(start)?, utc(next)?))
}

/// A report's period as asked: a `period` (see [`period`]), or `since` (and `until`, default
/// `now`) as [`crate::time::parse_time`] reads them; one way or the other, not both.
pub fn asked(
    period_text: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let time =
        |t: &str, what: &str| crate::time::parse_time(t, now).map_err(|e| format!("{what}: {e}"));
    match (period_text, since, until) {
        (Some(p), None, None) => period(p),
        (None, Some(since), until) => Ok((
            time(since, "since")?,
            until.map(|u| time(u, "until")).transpose()?.unwrap_or(now),
        )),
        (None, None, _) => Err(
            "say which period: a month (2026-11) or a day (2026-11-03), or since (and until)"
                .into(),
        ),
        _ => Err("a period and since/until cannot be given together".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest-rank percentiles on a table of cases.
    #[test]
    fn percentiles_by_nearest_rank() {
        let cases: &[(&[i64], Option<i64>, Option<i64>)] = &[
            (&[], None, None),
            (&[7], Some(7), Some(7)),
            (&[5, 5, 5, 5], Some(5), Some(5)),
            (&[1, 2], Some(1), Some(2)),
            (&[1, 2, 3], Some(2), Some(3)),
            (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], Some(5), Some(9)),
            (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], Some(6), Some(10)),
            // One stale incident does not move the median.
            (&[60, 60, 60, 60, 86_400], Some(60), Some(86_400)),
            (&[3, 3, 9, 9], Some(3), Some(9)),
        ];
        for (values, median, p90) in cases {
            assert_eq!(percentile(values, 50), *median, "median of {values:?}");
            assert_eq!(percentile(values, 90), *p90, "p90 of {values:?}");
        }
        assert_eq!(percentile(&[1, 2, 3], 0), Some(1));
        assert_eq!(percentile(&[1, 2, 3], 100), Some(3));
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn row(created: &str, closed: Option<(&str, CloseReason)>, due: &str) -> ReportRow {
        ReportRow {
            id: 1,
            name: "Suspicious login".into(),
            instance: "fes".into(),
            organization: Some("Acme".into()),
            kind: "ARO".into(),
            severity: Severity::High,
            occurred: at(created) - chrono::TimeDelta::seconds(20),
            created: at(created),
            first_assigned: None,
            first_active: None,
            closed: closed.map(|(t, _)| at(t)),
            close_reason: closed.map(|(_, r)| r),
            sla_due: at(due),
            provider_resolved: None,
            provider_acknowledged: None,
        }
    }

    /// Incidents open at the period's end, or closed after it, count as open (and breached
    /// when past due then), not as closed at the end; an empty period has no shares.
    #[test]
    fn figures_at_the_end_of_a_period() {
        let until = at("2026-12-01T00:00:00Z");
        let empty = Figures::of(&[], until);
        assert_eq!(empty.incidents, 0);
        assert_eq!(empty.sla_compliance, None);
        assert_eq!(empty.delivery_lag, Spread::default());
        let rows = [
            row(
                "2026-11-02T00:00:00Z",
                Some(("2026-11-02T01:00:00Z", CloseReason::FalsePositive)),
                "2026-11-02T04:00:00Z",
            ),
            row(
                "2026-11-03T00:00:00Z",
                Some(("2026-11-03T06:00:00Z", CloseReason::Resolved)),
                "2026-11-03T04:00:00Z",
            ),
            // Closed after the period: open at its end, and past due then.
            row(
                "2026-11-30T00:00:00Z",
                Some(("2026-12-02T00:00:00Z", CloseReason::Resolved)),
                "2026-11-30T04:00:00Z",
            ),
            // Open, not yet due.
            row("2026-11-30T22:00:00Z", None, "2026-12-01T02:00:00Z"),
        ];
        let mut rows = rows;
        // The provider resolved the first 10 minutes after making it; the third after the end.
        // It acknowledged the second 3 minutes after making it; the third after the end too.
        rows[0].provider_resolved = Some(rows[0].occurred + chrono::TimeDelta::minutes(10));
        rows[1].provider_acknowledged = Some(rows[1].occurred + chrono::TimeDelta::minutes(3));
        rows[2].provider_acknowledged = Some(at("2026-12-01T00:00:01Z"));
        rows[2].provider_resolved = Some(at("2026-12-01T00:00:01Z"));
        let f = Figures::of(&rows, until);
        assert_eq!(f.provider_time_to_resolve.n, 1);
        assert_eq!(f.provider_time_to_resolve.median_s, Some(600));
        assert_eq!(
            (
                f.provider_time_to_acknowledge.n,
                f.provider_time_to_acknowledge.median_s
            ),
            (1, Some(180))
        );
        assert_eq!(f.incidents, 4);
        assert_eq!(f.by_severity, [("High".to_string(), 4)]);
        assert_eq!(f.delivery_lag.median_s, Some(20));
        assert_eq!(f.closed, 2);
        assert_eq!(f.time_to_close.median_s, Some(3_600));
        assert_eq!(f.time_to_close.p90_s, Some(21_600));
        assert_eq!(f.false_positive_share, Some(0.5));
        assert_eq!(f.sla_compliance, Some(0.5));
        assert_eq!((f.open_at_end, f.open_breaches), (2, 1));
    }

    /// A customer report lists the critical and high incidents, most severe first, with their
    /// outcome at the period's end, and the most frequent titles.
    #[test]
    fn a_customer_report_names_the_serious_incidents_and_frequent_titles() {
        let until = at("2026-12-01T00:00:00Z");
        let mut rows = vec![
            row(
                "2026-11-02T00:00:00Z",
                Some(("2026-11-02T01:00:00Z", CloseReason::FalsePositive)),
                "2026-11-02T04:00:00Z",
            ),
            row(
                "2026-11-03T00:00:00Z",
                Some(("2026-12-03T00:00:00Z", CloseReason::Resolved)),
                "2026-11-03T04:00:00Z",
            ),
            row("2026-11-04T00:00:00Z", None, "2026-11-04T04:00:00Z"),
            row("2026-11-05T00:00:00Z", None, "2026-11-05T04:00:00Z"),
        ];
        rows[1].severity = Severity::Critical;
        rows[2].severity = Severity::Low;
        rows[3].name = "Port scan".into();
        for (n, r) in rows.iter_mut().enumerate() {
            r.id = n as i64 + 1;
        }
        let since = at("2026-11-01T00:00:00Z");
        let report = Report::of(Some("Acme".into()), since, until, &rows);
        let c = CustomerReport::of(report, rows, vec![]);
        let listed: Vec<(i64, &str, &str)> = c
            .notable
            .iter()
            .map(|n| (n.id, n.severity.as_str(), n.outcome.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                (2, "Critical", "Open"),
                (1, "High", "False Positive"),
                (4, "High", "Open")
            ]
        );
        assert_eq!(c.notable_total, 3);
        assert_eq!(
            c.top_titles,
            [
                TopTitle {
                    title: "Suspicious login".into(),
                    incidents: 3
                },
                TopTitle {
                    title: "Port scan".into(),
                    incidents: 1
                }
            ]
        );
    }

    /// Provider text in a CSV cannot break a row or run as a spreadsheet formula.
    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("Acme"), "Acme");
        assert_eq!(csv_field("Acme, Inc."), "\"Acme, Inc.\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
    }

    /// A monthly report is due from the first day of the month, about the month before; a
    /// daily one every day, about the day before. Regression: a month's report was due only
    /// on the first day, so a process that was down that day never sent it.
    #[test]
    fn a_scheduled_report_is_due_once_its_period_is_over() {
        let monthly = ReportSchedule {
            org: "Acme".into(),
            every: Every::Month,
            channel: "mail".into(),
        };
        for (now, due) in [
            ("2026-12-01T00:00:00Z", Some("2026-11")),
            ("2026-12-01T23:59:59Z", Some("2026-11")),
            ("2026-12-02T00:00:00Z", Some("2026-11")),
            ("2026-12-31T23:59:59Z", Some("2026-11")),
            ("2026-11-30T12:00:00Z", Some("2026-10")),
            ("2027-01-01T06:00:00Z", Some("2026-12")),
            ("2027-03-31T06:00:00Z", Some("2027-02")),
        ] {
            let got = monthly.due(at(now));
            assert_eq!(got.as_deref(), due, "{now}");
            if let Some(name) = got {
                let (_, until) = period(&name).unwrap();
                assert!(until <= at(now), "{now}: the period is over");
            }
        }
        let daily = ReportSchedule {
            every: Every::Day,
            ..monthly.clone()
        };
        let name = daily.due(at("2026-12-06T15:00:00Z")).unwrap();
        assert_eq!(name, "2026-12-05");
        assert_eq!(period(&name).unwrap().1, at("2026-12-06T00:00:00Z"));
        assert!(monthly.late(at("2026-12-06T15:00:00Z")).is_empty());
        assert_eq!(
            daily.late(at("2026-12-06T15:00:00Z")),
            [
                "2026-12-04",
                "2026-12-03",
                "2026-12-02",
                "2026-12-01",
                "2026-11-30",
                "2026-11-29",
                "2026-11-28"
            ]
        );
    }

    #[test]
    fn periods_are_months_or_days() {
        assert_eq!(
            period("2026-11").unwrap(),
            (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            period("2026-12").unwrap(),
            (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            period("2026-11-30").unwrap(),
            (at("2026-11-30T00:00:00Z"), at("2026-12-01T00:00:00Z"))
        );
        for bad in ["2026-13", "november", "2026-11-31", ""] {
            assert!(period(bad).unwrap_err().contains("period"), "{bad}");
        }
    }
}
