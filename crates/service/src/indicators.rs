//! Indicators as each caller may see them: the incidents of the caller's organizations that
//! hold one, and for an analyst scoped to some organizations a count of the others that saw
//! it too (never which, and never when the config's `cross_org_counts` is off).

use serde::Serialize;
use watchfloor_core::Incident;
use watchfloor_indicators::Kind;
use watchfloor_storage::{AllowEntry, IndicatorFilter, IndicatorSummary, RelatedIncident};

use crate::{Caller, Service, ServiceError};

/// Indicators listed at most per request.
pub const MAX_LIST: usize = 1_000;
/// Incidents listed with one indicator.
pub const INCIDENTS_SHOWN: usize = 200;

/// One indicator with the incidents the caller may see that hold it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndicatorDetail {
    #[serde(flatten)]
    pub summary: IndicatorSummary,
    /// The latest of those incidents (at most [`INCIDENTS_SHOWN`]).
    pub found_in: Vec<Incident>,
}

/// A type as the caller wrote it, checked.
fn kind(name: &str) -> Result<String, ServiceError> {
    Kind::parse(name)
        .map(|k| k.as_str().to_string())
        .map_err(ServiceError::Invalid)
}

impl Service {
    /// Whether analysts scoped to some organizations learn how many others saw an indicator
    /// (`[indicators] cross_org_counts`, on unless told).
    pub fn with_cross_org_counts(mut self, on: bool) -> Service {
        self.cross_org_counts = on;
        self
    }

    /// `summary` as the caller may see it: the count of other organizations only if counts
    /// are on (the store gives it only to scoped callers).
    fn shown(&self, mut summary: IndicatorSummary) -> IndicatorSummary {
        if !self.cross_org_counts {
            summary.other_organizations = None;
        }
        summary
    }

    /// Indicators in the caller's organizations, those of the latest stored incidents first.
    pub async fn indicators(
        &self,
        caller: &Caller,
        kind_name: Option<&str>,
        value: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<IndicatorSummary>, ServiceError> {
        let filter = IndicatorFilter {
            scope: caller.scope.clone(),
            kind: kind_name.map(kind).transpose()?,
            value: value.map(str::to_string).filter(|v| !v.trim().is_empty()),
            limit: limit.unwrap_or(100).clamp(1, MAX_LIST),
        };
        let found = self.store.indicators(&filter).await?;
        Ok(found.into_iter().map(|s| self.shown(s)).collect())
    }

    /// One indicator (of any type when none is named) and the incidents of the caller's
    /// organizations that hold it. One only other organizations saw is shown as their count
    /// alone, if counts are on; otherwise it is not found.
    pub async fn indicator(
        &self,
        caller: &Caller,
        kind_name: Option<&str>,
        value: &str,
    ) -> Result<IndicatorDetail, ServiceError> {
        let kind_name = kind_name.map(kind).transpose()?;
        for form in watchfloor_indicators::lookups(value) {
            let mut found = self
                .store
                .indicator(&caller.scope, kind_name.as_deref(), &form)
                .await?;
            // Seen only elsewhere as the first type, maybe in the caller's incidents as
            // another: with counts off, the others are asked one by one.
            if kind_name.is_none()
                && !self.cross_org_counts
                && found.as_ref().is_some_and(|s| s.incidents == 0)
            {
                found = None;
                for k in Kind::ALL {
                    let s = self
                        .store
                        .indicator(&caller.scope, Some(k.as_str()), &form)
                        .await?;
                    if let Some(s) = s.filter(|s| s.incidents > 0) {
                        found = Some(s);
                        break;
                    }
                }
            }
            let Some(summary) = found.map(|s| self.shown(s)) else {
                continue;
            };
            if summary.incidents == 0 && summary.other_organizations.unwrap_or(0) == 0 {
                continue;
            }
            let found_in = self
                .store
                .indicator_incidents(
                    &caller.scope,
                    &summary.kind,
                    &summary.value,
                    INCIDENTS_SHOWN,
                )
                .await?;
            return Ok(IndicatorDetail { summary, found_in });
        }
        Err(ServiceError::NotFound(format!(
            "no indicator `{value}` in the incidents you can see; `watchfloor indicators list` (or GET /api/v1/indicators) lists them"
        )))
    }

    /// The ids of the caller's incidents that hold one indicator (of this exact type and
    /// value), latest first: what XSOAR's indicator search lists with each.
    pub async fn indicator_incident_ids(
        &self,
        caller: &Caller,
        kind: &str,
        value: &str,
    ) -> Result<Vec<i64>, ServiceError> {
        let found = self
            .store
            .indicator_incidents(&caller.scope, kind, value, INCIDENTS_SHOWN)
            .await?;
        Ok(found.into_iter().map(|i| i.id).collect())
    }

    /// The indicators of an incident the caller may see, each counted over the caller's
    /// organizations (the count includes this incident).
    pub async fn incident_indicators(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<Vec<IndicatorSummary>, ServiceError> {
        self.visible(caller, id).await?;
        let found = self.store.incident_indicators(&caller.scope, id).await?;
        Ok(found.into_iter().map(|s| self.shown(s)).collect())
    }

    /// Incidents of the caller's organizations that share indicators with one it may see.
    pub async fn related_incidents(
        &self,
        caller: &Caller,
        id: i64,
        limit: usize,
    ) -> Result<Vec<RelatedIncident>, ServiceError> {
        self.visible(caller, id).await?;
        Ok(self
            .store
            .related_incidents(&caller.scope, id, limit.clamp(1, 100))
            .await?)
    }

    /// Gives an indicator a verdict in the caller's organizations that hold it (`unknown`
    /// takes it back), recorded as the caller's; viewers give none. The indicator as it
    /// stands then.
    pub async fn set_verdict(
        &self,
        caller: &Caller,
        kind_name: Option<&str>,
        value: &str,
        verdict: &str,
    ) -> Result<IndicatorDetail, ServiceError> {
        self.may_change(caller)?;
        let verdict = match verdict.trim().to_ascii_lowercase().as_str() {
            v @ ("malicious" | "suspicious" | "benign") => Some(v.to_string()),
            "unknown" => None,
            other => {
                return Err(ServiceError::Invalid(format!(
                    "`{other}` is not a verdict: use malicious, suspicious, benign or unknown"
                )));
            }
        };
        let found = self.indicator(caller, kind_name, value).await?;
        if found.summary.incidents == 0 {
            return Err(ServiceError::NotFound(format!(
                "no indicator `{value}` in the incidents you can see"
            )));
        }
        let (kind, value) = (found.summary.kind.clone(), found.summary.value.clone());
        self.store
            .set_verdict(
                &caller.scope,
                &kind,
                &value,
                verdict.as_deref(),
                &caller.name,
                self.now(),
            )
            .await?;
        self.indicator(caller, Some(&kind), &value).await
    }

    /// The allow list: values, networks and `*.domains` that are no indicators in incidents
    /// stored from when they were added (admins only: it holds for every organization).
    pub async fn allowlist(&self, caller: &Caller) -> Result<Vec<AllowEntry>, ServiceError> {
        self.admins_only(caller, "keep the allow list")?;
        Ok(self.store.allowlist().await?)
    }

    /// Adds an entry to the allow list, or removes one (admins only); an entry that is none of
    /// a value, a network or a `*.domain` is refused with why.
    pub async fn change_allowlist(
        &self,
        caller: &Caller,
        entry: &str,
        add: bool,
    ) -> Result<bool, ServiceError> {
        self.admins_only(caller, "keep the allow list")?;
        let entry = entry.trim().to_ascii_lowercase();
        if add {
            watchfloor_indicators::Exclusions::parse(std::slice::from_ref(&entry), false)
                .map_err(ServiceError::Invalid)?;
        }
        Ok(self
            .store
            .change_allowlist(&entry, add, &caller.name, self.now())
            .await?)
    }

    /// Finds every incident's indicators again, with the exclusions set now (admins only:
    /// it reads every organization's incidents).
    pub async fn reindex_indicators(&self, caller: &Caller) -> Result<(), ServiceError> {
        self.admins_only(caller, "reindex indicators")?;
        self.store.reindex_indicators().await?;
        Ok(())
    }
}
