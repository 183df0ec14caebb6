//! The queue: filter parameters, as the CLI, `/api/v1` and the UI take them, read into a
//! store filter within the caller's organizations; a page with its next cursor; the filter
//! counts. XSOAR's search reads its own filter shape but scopes it here too ([`Service::scoped`]).

use serde::{Deserialize, Serialize};
use watchfloor_core::time::parse_time;
use watchfloor_core::{Incident, Severity, SlaState, Status, query};
use watchfloor_storage::{Facets, IncidentFilter, Keyset, Sort, SortField};

use crate::{Caller, Service, ServiceError};

/// The queue's filter, page and sort, as text the way people and URLs give them.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    /// Statuses, comma-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Severities, comma-separated, or one with `+` for it and above (`high+`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// ok, at-risk or breached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla: Option<String>,
    /// Occurred at or after: relative (`3 days`) or absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Stored (fetched or created) at or after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched_since: Option<String>,
    /// A search in XSOAR's query syntax.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// A field to sort by (default `occurred`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// `asc` or `desc` (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// The `next` cursor of the page before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Count the matches too (up to [`TOTAL_CAP`]), at the cost of reading them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub count: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// The queue counts matches (when asked) up to this many.
pub const TOTAL_CAP: usize = 10_000;

/// One page of the queue: the incidents, the count (if asked) and the next page's cursor.
pub struct QueuePage {
    pub incidents: Vec<Incident>,
    pub total: Option<usize>,
    pub next: Option<String>,
}

fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl QueueParams {
    /// Whether it names nothing to match by (sorting, paging and counting aside): the
    /// whole queue, which a change to many refuses to take.
    pub fn selects_nothing(&self) -> bool {
        [
            &self.status,
            &self.severity,
            &self.organization,
            &self.instance,
            &self.owner,
            &self.sla,
            &self.since,
            &self.fetched_since,
            &self.q,
        ]
        .iter()
        .all(|v| text(v).is_none())
    }

    /// The store's filter within `caller`'s organizations (without its keyset or limit).
    pub fn filter(&self, caller: &Caller) -> Result<IncidentFilter, ServiceError> {
        let bad = ServiceError::Invalid;
        for (what, value) in [
            ("the organization filter", &self.organization),
            ("the instance filter", &self.instance),
            ("the owner filter", &self.owner),
        ] {
            crate::error::no_nul(what, value.as_deref().unwrap_or_default())?;
        }
        let now = chrono::Utc::now();
        let sort = Sort {
            field: text(&self.sort)
                .map(SortField::parse)
                .transpose()
                .map_err(bad)?
                .unwrap_or_default(),
            ascending: match text(&self.order) {
                None | Some("desc") => false,
                Some("asc") => true,
                Some(other) => {
                    return Err(bad(format!("`order={other}`: use asc or desc")));
                }
            },
        };
        let (severity, min_severity) = match text(&self.severity) {
            Some(s) if s.ends_with('+') || s.starts_with(">=") => {
                let level = s.trim_end_matches('+').trim_start_matches(">=");
                (Vec::new(), Some(Severity::parse(level).map_err(bad)?))
            }
            other => (
                query::comma_list(other, Severity::parse).map_err(bad)?,
                None,
            ),
        };
        let time = |v: &Option<String>| text(v).map(|t| parse_time(t, now)).transpose();
        Ok(IncidentFilter {
            scope: caller.scope.clone(),
            status: query::comma_list(text(&self.status), Status::parse).map_err(bad)?,
            severity,
            min_severity,
            organization: text(&self.organization).map(str::to_string),
            instance: text(&self.instance).map(str::to_string),
            owner: text(&self.owner).map(str::to_string),
            sla: text(&self.sla)
                .map(SlaState::parse)
                .transpose()
                .map_err(bad)?
                .map(|s| (s, now)),
            since: time(&self.since).map_err(bad)?,
            fetched_since: time(&self.fetched_since).map_err(bad)?,
            conditions: query::parse(text(&self.q).unwrap_or_default())
                .map_err(|e| bad(e.to_string()))?,
            sort,
            ..IncidentFilter::default()
        })
    }
}

impl Service {
    /// A filter built elsewhere (XSOAR's search), within `caller`'s organizations.
    pub fn scoped(&self, caller: &Caller, filter: IncidentFilter) -> IncidentFilter {
        IncidentFilter {
            scope: caller.scope.clone(),
            ..filter
        }
    }

    /// Incidents matching `filter` within the caller's organizations, in its order and
    /// limits (XSOAR's search and batch calls read through here).
    pub async fn matching(
        &self,
        caller: &Caller,
        filter: IncidentFilter,
    ) -> Result<Vec<Incident>, ServiceError> {
        Ok(self.store.incidents(&self.scoped(caller, filter)).await?)
    }

    /// Every incident matching `filter` within the caller's organizations, if there are at
    /// most `most` of them (`None` when more match): what a change to many takes whole or not
    /// at all.
    pub async fn matching_at_most(
        &self,
        caller: &Caller,
        filter: IncidentFilter,
        most: usize,
    ) -> Result<Option<Vec<Incident>>, ServiceError> {
        let filter = IncidentFilter {
            limit: Some(most + 1),
            ..filter
        };
        let found = self.matching(caller, filter).await?;
        Ok((found.len() <= most).then_some(found))
    }

    /// How many incidents match `filter` within the caller's organizations.
    pub async fn count_matching(
        &self,
        caller: &Caller,
        filter: IncidentFilter,
    ) -> Result<usize, ServiceError> {
        Ok(self
            .store
            .count_matching(&self.scoped(caller, filter))
            .await?)
    }

    /// One page of the queue: `limit` (default 50, at most 1,000) incidents after the
    /// `after` cursor, and with `count` how many match in all (up to [`TOTAL_CAP`]).
    pub async fn queue_page(
        &self,
        caller: &Caller,
        q: &QueueParams,
    ) -> Result<QueuePage, ServiceError> {
        let mut filter = q.filter(caller)?;
        let sort = filter.sort;
        let limit = q.limit.unwrap_or(50).clamp(1, 1000);
        let total = match q.count {
            true => Some(self.store.count_matching_up_to(&filter, TOTAL_CAP).await?),
            false => None,
        };
        filter.after = text(&q.after)
            .map(|c| Keyset::decode(c, sort.field))
            .transpose()
            .map_err(ServiceError::Invalid)?;
        // One row more than the page tells whether another page follows.
        filter.limit = Some(limit + 1);
        let mut incidents = self.store.incidents(&filter).await?;
        let next = (incidents.len() > limit).then(|| {
            incidents.truncate(limit);
            incidents
                .last()
                .map(|last| Keyset::after(last, sort).encode())
        });
        Ok(QueuePage {
            incidents,
            total,
            next: next.flatten(),
        })
    }

    /// The filter counts of a queue filter; `None` when it has terms the counts are not kept
    /// for (text, SLA).
    pub async fn queue_facets(
        &self,
        caller: &Caller,
        q: &QueueParams,
    ) -> Result<Option<Facets>, ServiceError> {
        Ok(self.store.facets(&q.filter(caller)?).await?)
    }

    /// Incidents matching a filter within the caller's organizations, as the CLI lists them
    /// (up to `limit`), and how many match in all.
    pub async fn incidents(
        &self,
        caller: &Caller,
        q: &QueueParams,
    ) -> Result<(Vec<Incident>, usize), ServiceError> {
        let filter = IncidentFilter {
            limit: q.limit,
            ..q.filter(caller)?
        };
        let found = self.store.incidents(&filter).await?;
        let all = self.store.count_matching(&filter).await?;
        Ok((found, all))
    }
}

/// The dashboard's numbers within the caller's organizations.
pub struct Dashboard {
    pub stats: watchfloor_storage::DashboardStats,
    /// Open incidents per SLA state: breached, at risk, within.
    pub sla: [(SlaState, usize); 3],
}

impl Service {
    /// The dashboard within the caller's organizations, with days counted from `since`.
    pub async fn dashboard(
        &self,
        caller: &Caller,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Dashboard, ServiceError> {
        let now = chrono::Utc::now();
        let stats = self.store.dashboard(&caller.scope, since).await?;
        // Open incidents per SLA state: those not yet due and those at risk counted side by
        // side, each reading the SLA index from now on only; the other open ones are past due.
        // (Counting the breached ones read every one of them: 350 ms at ten million.)
        let open = IncidentFilter {
            scope: caller.scope.clone(),
            status: vec![Status::Pending, Status::Active],
            ..IncidentFilter::default()
        };
        let not_due = IncidentFilter {
            due_from: Some(now),
            ..open.clone()
        };
        let at_risk = IncidentFilter {
            sla: Some((SlaState::AtRisk, now)),
            ..open
        };
        let (not_due, at_risk) = tokio::try_join!(
            self.store.count_matching(&not_due),
            self.store.count_matching(&at_risk),
        )?;
        let breached = stats.open.saturating_sub(not_due);
        let within = not_due.saturating_sub(at_risk);
        Ok(Dashboard {
            stats,
            sla: [
                (SlaState::Breached, breached),
                (SlaState::AtRisk, at_risk),
                (SlaState::Ok, within),
            ],
        })
    }
}
