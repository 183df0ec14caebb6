//! Indicators as read: counted from their links over the organizations of the reader's scope,
//! each read first brought up to date with what was committed before it. The scope is applied
//! here, to the links (each belongs to one organization) and again to the incidents they lead
//! to.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;

use super::{INCIDENT_COLUMNS, SqlStore, incident_from_row, parse_ts};
use crate::base::ts;
use crate::dialect::Sql;
use crate::indicators::org_key;
use crate::{
    AllowEntry, BoxFuture, IndicatorFilter, IndicatorStore, IndicatorSummary, KeptRun,
    RelatedIncident, Scope, StoreError, VerdictMark,
};
use watchfloor_core::incident::Incident;
use watchfloor_core::report::TopIndicator;

/// Indicators shared with more incidents than this relate no incidents: a scanner's address
/// in a hundred thousand incidents says nothing about any two of them.
const RELATION_CAP: i64 = 5_000;

/// The scope's organizations as kept on indicator rows.
fn scope_orgs(scope: &Scope) -> Option<Vec<String>> {
    match scope {
        Scope::All => None,
        Scope::Orgs(orgs) => Some(orgs.iter().map(|o| org_key(Some(o))).collect()),
    }
}

/// ` AND {column} IN (...)` (or NOT IN) for the scope's organizations; nothing for all.
fn push_orgs(q: &mut Sql, column: &str, orgs: &Option<Vec<String>>, inside: bool) {
    let Some(orgs) = orgs else { return };
    if orgs.is_empty() {
        q.push(if inside { " AND 1 = 0" } else { "" });
        return;
    }
    q.push(format!(
        " AND {column} {}IN (",
        if inside { "" } else { "NOT " }
    ));
    for (n, o) in orgs.iter().enumerate() {
        q.push(if n == 0 { "" } else { ", " }).push_bind(o.clone());
    }
    q.push(")");
}

/// Per (kind, value): the rows of each organization (organization, first, last, incidents).
type Rows = BTreeMap<(String, String), Vec<(String, String, String, i64)>>;
/// Per (kind, value): each organization's verdict (organization, verdict, author, at).
type Verdicts = BTreeMap<(String, String), Vec<(String, String, String, String)>>;

/// Sums the rows of each indicator over the scope; counts the organizations outside it; takes
/// the latest verdict given in the scope.
fn summarize(
    (rows, mut verdicts): (Rows, Verdicts),
    orgs: &Option<Vec<String>>,
) -> Result<Vec<IndicatorSummary>, StoreError> {
    let mut out = Vec::new();
    for ((kind, value), per_org) in rows {
        let verdict = verdicts
            .remove(&(kind.clone(), value.clone()))
            .unwrap_or_default()
            .into_iter()
            .filter(|(org, ..)| orgs.as_ref().is_none_or(|o| o.contains(org)))
            .max_by(|a, b| a.3.cmp(&b.3))
            .map(|(_, verdict, by, at)| {
                Ok::<_, StoreError>(VerdictMark {
                    verdict,
                    by,
                    at: parse_ts(&at)?,
                })
            })
            .transpose()?;
        let mut first: Option<String> = None;
        let mut last: Option<String> = None;
        let mut incidents = 0;
        let mut others = 0;
        for (org, f, l, n) in per_org {
            let inside = orgs.as_ref().is_none_or(|o| o.contains(&org));
            if inside {
                incidents += n;
                first = Some(first.map_or(f.clone(), |x| x.min(f.clone())));
                last = Some(last.map_or(l.clone(), |x| x.max(l.clone())));
            } else if !org.is_empty() {
                others += 1;
            }
        }
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        out.push(IndicatorSummary {
            kind,
            value,
            first_seen: first.as_deref().map(parse_ts).transpose()?.unwrap_or(epoch),
            last_seen: last.as_deref().map(parse_ts).transpose()?.unwrap_or(epoch),
            incidents,
            other_organizations: orgs.as_ref().map(|_| others),
            verdict,
        });
    }
    Ok(out)
}

impl SqlStore {
    /// Every organization's counts of the indicators `(kind, value)` (all kinds when none),
    /// and their verdicts: two reads per 500 values, whatever their number.
    async fn rows_of(
        &self,
        wanted: &[(Option<String>, String)],
    ) -> Result<(Rows, Verdicts), StoreError> {
        let ix = self.backend.index_schema();
        let mut rows: Rows = BTreeMap::new();
        let mut verdicts: Verdicts = BTreeMap::new();
        let values: std::collections::BTreeSet<&String> = wanted.iter().map(|(_, v)| v).collect();
        let values: Vec<&String> = values.into_iter().collect();
        // Read by value (the key's first column), kept if a wanted pair names its type.
        let asked = |kind: &str, value: &str| {
            wanted
                .iter()
                .any(|(k, v)| v == value && k.as_deref().is_none_or(|k| k == kind))
        };
        let push_values = |q: &mut Sql, chunk: &[&String]| {
            q.push(" WHERE value IN (");
            for (n, v) in chunk.iter().enumerate() {
                q.push(if n == 0 { "" } else { ", " })
                    .push_bind((*v).clone());
            }
            q.push(")");
        };
        for chunk in values.chunks(500) {
            let mut q = self.sql(format!(
                "SELECT kind, value, organization, MIN(occurred) AS first_seen, \
                 MAX(occurred) AS last_seen, COUNT(*) AS incidents FROM {ix}indicator_links"
            ));
            push_values(&mut q, chunk);
            q.push(" GROUP BY kind, value, organization");
            for r in q.build().fetch_all(&self.text_reads).await? {
                let (kind, value): (String, String) = (r.try_get("kind")?, r.try_get("value")?);
                if asked(&kind, &value) {
                    rows.entry((kind, value)).or_default().push((
                        r.try_get("organization")?,
                        r.try_get("first_seen")?,
                        r.try_get("last_seen")?,
                        r.try_get("incidents")?,
                    ));
                }
            }
            let mut q = self.sql(
                "SELECT kind, value, organization, verdict, author, at FROM indicator_verdicts",
            );
            push_values(&mut q, chunk);
            for r in q.build().fetch_all(&self.text_reads).await? {
                let (kind, value): (String, String) = (r.try_get("kind")?, r.try_get("value")?);
                if asked(&kind, &value) {
                    verdicts.entry((kind, value)).or_default().push((
                        r.try_get("organization")?,
                        r.try_get("verdict")?,
                        r.try_get("author")?,
                        r.try_get("at")?,
                    ));
                }
            }
        }
        Ok((rows, verdicts))
    }
}

impl IndicatorStore for SqlStore {
    fn top_indicators<'a>(
        &'a self,
        scope: &'a Scope,
        organization: Option<&'a str>,
        incidents: (i64, i64),
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<TopIndicator>, StoreError>> {
        Box::pin(async move {
            self.catch_up_indicators().await?;
            let orgs = scope_orgs(scope);
            let ix = self.backend.index_schema();
            // By the incidents' index: the period's incidents are one range of ids.
            let mut q = self.sql(format!(
                "SELECT kind, value, COUNT(*) AS n FROM {ix}indicator_links WHERE incident_id >= "
            ));
            q.push_bind(incidents.0)
                .push(" AND incident_id <= ")
                .push_bind(incidents.1);
            push_orgs(&mut q, "organization", &orgs, true);
            if let Some(org) = organization {
                q.push(" AND organization = ").push_bind(org_key(Some(org)));
            }
            q.push(" GROUP BY kind, value ORDER BY n DESC, kind, value LIMIT ")
                .push_bind(limit as i64);
            let rows = q.build().fetch_all(&self.text_reads).await?;
            rows.iter()
                .map(|r| {
                    Ok(TopIndicator {
                        kind: r.try_get("kind")?,
                        value: r.try_get("value")?,
                        incidents: r.try_get("n")?,
                    })
                })
                .collect()
        })
    }

    fn reindex_indicators(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(SqlStore::reindex_indicators(self))
    }

    fn set_verdict<'a>(
        &'a self,
        scope: &'a Scope,
        kind: &'a str,
        value: &'a str,
        verdict: Option<&'a str>,
        author: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            self.catch_up_indicators().await?;
            let orgs = scope_orgs(scope);
            let ix = self.backend.index_schema();
            // The organizations of the scope that hold it.
            let mut q = self.sql(format!(
                "SELECT DISTINCT organization FROM {ix}indicator_links WHERE value = "
            ));
            q.push_bind(value.to_string())
                .push(" AND kind = ")
                .push_bind(kind.to_string());
            push_orgs(&mut q, "organization", &orgs, true);
            let holders: Vec<String> = q.build_query_scalar().fetch_all(&self.text_reads).await?;
            let mut tx = self.write().await?;
            for org in &holders {
                sqlx::query(
                    "DELETE FROM indicator_verdicts WHERE value = $1 AND kind = $2 AND organization = $3",
                )
                .bind(value)
                .bind(kind)
                .bind(org)
                .execute(&mut *tx)
                .await?;
                if let Some(v) = verdict {
                    sqlx::query(
                        "INSERT INTO indicator_verdicts (value, kind, organization, verdict, author, at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(value)
                    .bind(kind)
                    .bind(org)
                    .bind(v)
                    .bind(author)
                    .bind(ts(at))
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(holders.len())
        })
    }

    fn incident_verdicts(
        &self,
        incident_id: i64,
    ) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            self.catch_up_indicators().await?;
            let ix = self.backend.index_schema();
            let found: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT v.verdict FROM {ix}indicator_links l JOIN indicator_verdicts v \
                 ON v.value = l.value AND v.kind = l.kind AND v.organization = l.organization \
                 WHERE l.incident_id = $1"
            )))
            .bind(incident_id)
            .fetch_all(&self.text_reads)
            .await?;
            Ok(found)
        })
    }

    fn cached_run<'a>(
        &'a self,
        organization: &'a str,
        instance: &'a str,
        line: &'a str,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<KeptRun>, StoreError>> {
        Box::pin(async move {
            let row: Option<(String, String, String)> = sqlx::query_as(
                "SELECT body, context, at FROM enrichment_cache \
                 WHERE organization = $1 AND instance = $2 AND line = $3 AND at >= $4",
            )
            .bind(organization)
            .bind(instance)
            .bind(line)
            .bind(ts(since))
            .fetch_optional(&self.pool)
            .await?;
            row.map(|(body, context, at)| {
                let read = |t: &str| {
                    serde_json::from_str::<Value>(t)
                        .map_err(|e| StoreError::Corrupt(format!("a kept run result: {e}")))
                };
                Ok(KeptRun {
                    body: read(&body)?,
                    context: read(&context)?,
                    at: parse_ts(&at)?,
                })
            })
            .transpose()
        })
    }

    fn cache_run<'a>(
        &'a self,
        organization: &'a str,
        instance: &'a str,
        line: &'a str,
        body: &'a Value,
        context: &'a Value,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            sqlx::query(
                "DELETE FROM enrichment_cache WHERE organization = $1 AND instance = $2 AND line = $3",
            )
            .bind(organization)
            .bind(instance)
            .bind(line)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO enrichment_cache (organization, instance, line, body, context, at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(organization)
            .bind(instance)
            .bind(line)
            .bind(body.to_string())
            .bind(context.to_string())
            .bind(ts(at))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn allowlist(&self) -> BoxFuture<'_, Result<Vec<AllowEntry>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, String, String)> =
                sqlx::query_as("SELECT entry, author, at FROM indicator_allowlist ORDER BY entry")
                    .fetch_all(&self.pool)
                    .await?;
            rows.into_iter()
                .map(|(entry, by, at)| {
                    Ok(AllowEntry {
                        entry,
                        by,
                        at: parse_ts(&at)?,
                    })
                })
                .collect()
        })
    }

    fn change_allowlist<'a>(
        &'a self,
        entry: &'a str,
        add: bool,
        author: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let changed = if add {
                sqlx::query(
                    "INSERT INTO indicator_allowlist (entry, author, at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(entry)
                .bind(author)
                .bind(ts(at))
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query("DELETE FROM indicator_allowlist WHERE entry = $1")
                    .bind(entry)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            };
            tx.commit().await?;
            Ok(changed > 0)
        })
    }

    fn indicators<'a>(
        &'a self,
        filter: &'a IndicatorFilter,
    ) -> BoxFuture<'a, Result<Vec<IndicatorSummary>, StoreError>> {
        Box::pin(async move {
            self.catch_up_indicators().await?;
            let orgs = scope_orgs(&filter.scope);
            let ix = self.backend.index_schema();
            // A value asked for is looked up by its index, under each form it may be kept in.
            if let Some(value) = &filter.value {
                let wanted: Vec<(Option<String>, String)> = watchfloor_indicators::lookups(value)
                    .into_iter()
                    .map(|v| (filter.kind.clone(), v))
                    .collect();
                let mut found = summarize(self.rows_of(&wanted).await?, &orgs)?;
                found.retain(|s| s.incidents > 0);
                found.truncate(filter.limit);
                return Ok(found);
            }
            // The most recently stored incidents' indicators first: the links by incident,
            // newest first, until enough distinct ones are found.
            let mut q = self.sql(format!(
                "SELECT kind, value FROM {ix}indicator_links WHERE 1 = 1"
            ));
            push_orgs(&mut q, "organization", &orgs, true);
            if let Some(k) = &filter.kind {
                q.push(" AND kind = ").push_bind(k.clone());
            }
            q.push(" ORDER BY incident_id DESC");
            let mut order: Vec<(String, String)> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            {
                let mut links = q.build().fetch(&self.text_reads);
                while let Some(r) = futures_util::TryStreamExt::try_next(&mut links).await? {
                    let key: (String, String) = (r.try_get("kind")?, r.try_get("value")?);
                    if seen.insert(key.clone()) {
                        order.push(key);
                        if order.len() >= filter.limit {
                            break;
                        }
                    }
                }
            }
            let wanted: Vec<(Option<String>, String)> = order
                .iter()
                .map(|(k, v)| (Some(k.clone()), v.clone()))
                .collect();
            let mut by_key: BTreeMap<(String, String), IndicatorSummary> =
                summarize(self.rows_of(&wanted).await?, &orgs)?
                    .into_iter()
                    .map(|s| ((s.kind.clone(), s.value.clone()), s))
                    .collect();
            let out: Vec<IndicatorSummary> =
                order.iter().filter_map(|k| by_key.remove(k)).collect();
            Ok(out)
        })
    }

    fn indicator<'a>(
        &'a self,
        scope: &'a Scope,
        kind: Option<&'a str>,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Option<IndicatorSummary>, StoreError>> {
        Box::pin(async move {
            self.catch_up_indicators().await?;
            let orgs = scope_orgs(scope);
            let rows = self
                .rows_of(&[(kind.map(str::to_string), value.to_string())])
                .await?;
            // Of several types, the first as the types are listed.
            let rank = |k: &str| {
                watchfloor_indicators::Kind::ALL
                    .iter()
                    .position(|x| x.as_str() == k)
                    .unwrap_or(usize::MAX)
            };
            Ok(summarize(rows, &orgs)?
                .into_iter()
                .filter(|s| s.incidents > 0 || s.other_organizations.unwrap_or(0) > 0)
                .min_by_key(|s| rank(&s.kind)))
        })
    }

    fn indicator_incidents<'a>(
        &'a self,
        scope: &'a Scope,
        kind: &'a str,
        value: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Incident>, StoreError>> {
        Box::pin(async move {
            self.catch_up_indicators().await?;
            let orgs = scope_orgs(scope);
            let ix = self.backend.index_schema();
            let mut q = self.sql(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id IN \
                 (SELECT x.incident_id FROM {ix}indicator_links x WHERE x.kind = "
            ));
            q.push_bind(kind.to_string())
                .push(" AND x.value = ")
                .push_bind(value.to_string());
            push_orgs(&mut q, "x.organization", &orgs, true);
            q.push(")");
            // The incidents' own organizations are in scope too (they are what the rows say).
            if let Scope::Orgs(list) = scope {
                q.push(" AND ");
                self.backend.push_in_nocase(&mut q, "organization", list);
            }
            q.push(" ORDER BY occurred DESC, id DESC LIMIT ")
                .push_bind(limit as i64);
            let rows = q.build().fetch_all(&self.text_reads).await?;
            rows.iter().map(incident_from_row).collect()
        })
    }

    fn incident_indicators<'a>(
        &'a self,
        scope: &'a Scope,
        incident_id: i64,
    ) -> BoxFuture<'a, Result<Vec<IndicatorSummary>, StoreError>> {
        Box::pin(async move {
            self.catch_up_indicators().await?;
            let orgs = scope_orgs(scope);
            let ix = self.backend.index_schema();
            let mine: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT kind, value FROM {ix}indicator_links WHERE incident_id = $1"
            )))
            .bind(incident_id)
            .fetch_all(&self.text_reads)
            .await?;
            let wanted: Vec<(Option<String>, String)> =
                mine.into_iter().map(|(k, v)| (Some(k), v)).collect();
            let mut out = summarize(self.rows_of(&wanted).await?, &orgs)?;
            out.sort_by(|a, b| (&a.kind, &a.value).cmp(&(&b.kind, &b.value)));
            Ok(out)
        })
    }

    fn related_incidents<'a>(
        &'a self,
        scope: &'a Scope,
        incident_id: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RelatedIncident>, StoreError>> {
        Box::pin(async move {
            self.catch_up_indicators().await?;
            let ix = self.backend.index_schema();
            // Links of one indicator are of one organization: the incident's own. Each of its
            // indicators held by few enough incidents adds one to every other incident's count.
            let mine: Vec<(String, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT value, kind, organization FROM {ix}indicator_links WHERE incident_id = $1"
            )))
            .bind(incident_id)
            .fetch_all(&self.text_reads)
            .await?;
            let mut counts: std::collections::HashMap<i64, i64> = Default::default();
            for (value, kind, org) in &mine {
                // An indicator judged benign relates nothing.
                let verdict: Option<String> = sqlx::query_scalar(
                    "SELECT verdict FROM indicator_verdicts \
                     WHERE value = $1 AND kind = $2 AND organization = $3",
                )
                .bind(value)
                .bind(kind)
                .bind(org)
                .fetch_optional(&self.text_reads)
                .await?;
                if verdict.as_deref() == Some("benign") {
                    continue;
                }
                let holders: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT incident_id FROM {ix}indicator_links \
                     WHERE value = $1 AND kind = $2 AND organization = $3 LIMIT $4"
                )))
                .bind(value)
                .bind(kind)
                .bind(org)
                .bind(RELATION_CAP + 1)
                .fetch_all(&self.text_reads)
                .await?;
                if holders.len() as i64 > RELATION_CAP {
                    continue;
                }
                for id in holders.into_iter().filter(|id| *id != incident_id) {
                    *counts.entry(id).or_default() += 1;
                }
            }
            let mut shared: Vec<(i64, i64)> = counts.into_iter().collect();
            shared.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
            shared.truncate(limit);
            if shared.is_empty() {
                return Ok(Vec::new());
            }
            let list: Vec<String> = shared.iter().map(|(id, _)| id.to_string()).collect();
            let mut q = self.sql(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id IN ({})",
                list.join(",")
            ));
            if let Scope::Orgs(orgs) = scope {
                q.push(" AND ");
                self.backend.push_in_nocase(&mut q, "organization", orgs);
            }
            let rows = q.build().fetch_all(&self.pool).await?;
            let mut found: BTreeMap<i64, Incident> = BTreeMap::new();
            for r in &rows {
                let i = incident_from_row(r)?;
                found.insert(i.id, i);
            }
            Ok(shared
                .into_iter()
                .filter_map(|(id, n)| {
                    found.remove(&id).map(|incident| RelatedIncident {
                        incident,
                        shared: n,
                    })
                })
                .collect())
        })
    }
}
