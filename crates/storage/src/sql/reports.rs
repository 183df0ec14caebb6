//! What provider reports read of incidents: their provider and local timestamps, within the
//! reader's scope.

use chrono::{DateTime, Utc};
use sqlx::Row;
use watchfloor_core::report::ReportRow;
use watchfloor_core::{CloseReason, Severity};

use super::SqlStore;
use super::filter::{Hints, push_filter};
use crate::base::{from_micros, micros, opt_micros};
use crate::{IncidentFilter, StoreError};

impl SqlStore {
    pub(super) async fn read_report_rows(
        &self,
        filter: &IncidentFilter,
        until: DateTime<Utc>,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let mut q = self.sql(
            "SELECT id, name, instance, organization, type, severity, occurred, created, first_assigned, \
             closed, close_reason, sla_due, provider_resolved, provider_acknowledged, first_active \
             FROM incidents WHERE created < ",
        );
        q.push_bind(micros(until));
        push_filter(&mut q, filter, &Hints::default());
        let rows = q.build().fetch_all(self.reads(filter)).await?;
        rows.iter()
            .map(|r| {
                let reason: Option<String> = r.try_get("close_reason")?;
                let severity: f64 = r.try_get("severity")?;
                let severity = Severity::from_value(severity)
                    .ok_or_else(|| StoreError::Corrupt(format!("severity {severity}")))?;
                Ok(ReportRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    instance: r.try_get("instance")?,
                    organization: r.try_get("organization")?,
                    kind: r.try_get("type")?,
                    severity,
                    occurred: from_micros(r.try_get("occurred")?)?,
                    created: from_micros(r.try_get("created")?)?,
                    first_assigned: opt_micros(r.try_get("first_assigned")?)?,
                    closed: opt_micros(r.try_get("closed")?)?,
                    close_reason: reason.and_then(|r| CloseReason::parse(&r).ok()),
                    sla_due: from_micros(r.try_get("sla_due")?)?,
                    provider_resolved: opt_micros(r.try_get("provider_resolved")?)?,
                    provider_acknowledged: opt_micros(r.try_get("provider_acknowledged")?)?,
                    first_active: opt_micros(r.try_get("first_active")?)?,
                })
            })
            .collect()
    }
}
