//! How the queue's filters become SQL: the WHERE clauses of an `IncidentFilter` (its
//! conditions, text search and keyset), the hints that steer a query's plan, and the filters
//! that the kept filter counts (`incident_counts`) share with the incidents table.

use chrono::DateTime;
use watchfloor_core::query::Term;
use watchfloor_core::{Incident, SlaState};

use crate::base::micros;
use crate::dialect::{Backend, Sql};
use crate::{IncidentFilter, KeyValue, SortField};

/// Puts a page in its sort order (SQLite builds the JSON array in no promised order).
pub(super) fn sort_page(page: &mut [Incident], sort: crate::Sort) {
    use std::cmp::Ordering;
    let key = |a: &KeyValue, b: &KeyValue| match (a, b) {
        (KeyValue::Time(x), KeyValue::Time(y)) => x.cmp(y),
        (KeyValue::Int(x), KeyValue::Int(y)) => x.cmp(y),
        (KeyValue::Real(x), KeyValue::Real(y)) => x.total_cmp(y),
        (KeyValue::Text(x), KeyValue::Text(y)) => x.cmp(y),
        _ => Ordering::Equal,
    };
    page.sort_by(|a, b| {
        let order = key(&sort.field.key(a), &sort.field.key(b)).then(a.id.cmp(&b.id));
        if sort.ascending {
            order
        } else {
            order.reverse()
        }
    });
}

/// One organization's open incidents of one status and one severity, by occurrence: on SQLite
/// read from the triage index (migration 32), which holds open incidents only and which a query
/// uses only when it says so, as the index does (`status <> 'closed'`).
pub(super) fn triage_view(backend: Backend, filter: &IncidentFilter) -> bool {
    backend == Backend::Sqlite
        && filter.sort.field == SortField::Occurred
        && filter.organization.is_some()
        && filter.severity.len() == 1
        && matches!(filter.status.as_slice(), [s] if *s != watchfloor_core::Status::Closed)
}

/// The WHERE clauses of an incident filter (after `WHERE 1 = 1`).
pub(super) fn push_filter(q: &mut Sql, filter: &IncidentFilter, hints: &Hints) {
    let backend = q.backend;
    let common = &hints.common;
    // A broad filter is tested row by row while the sort's index is walked (SQLite's unary `+`
    // keeps the filter's own index out).
    let column = |name: &'static str| -> String {
        if backend == Backend::Sqlite && hints.broad.contains(name) {
            format!("+{name}")
        } else {
            name.to_string()
        }
    };
    push_counted_filters(q, filter, None, &column);
    if triage_view(backend, filter) {
        q.push(" AND status <> 'closed'");
    }
    if let Some((state, now)) = filter.sla {
        // The same rule as `watchfloor_core::lifecycle::sla_state`, in SQL: the time an
        // incident is judged at is when it closed, or now.
        let now = micros(now);
        let at = |q: &mut Sql| {
            let now = q.param(now);
            q.push(backend.seconds(&format!("COALESCE(closed, {now})")));
        };
        let due = backend.seconds("sla_due");
        let risk_starts = format!("{due} - ({due} - {}) / 4", backend.seconds("created"));
        match state {
            // Times are integers, compared as stored: no date arithmetic per row, and the
            // columns are read from the index.
            SlaState::Breached => {
                q.push(" AND COALESCE(closed, ").push_bind(now);
                q.push(") > sla_due");
            }
            SlaState::AtRisk => {
                // Open and not yet due, said first as a plain comparison, so that the SLA index's range
                // from now on is what is read.
                q.push(" AND closed IS NULL AND sla_due >= ").push_bind(now);
                q.push(" AND ");
                at(q);
                q.push(format!(" <= {due} AND "));
                at(q);
                q.push(format!(" > {risk_starts}"));
            }
            SlaState::Ok => {
                q.push(" AND ");
                at(q);
                q.push(format!(" <= {due} AND (closed IS NOT NULL OR "));
                at(q);
                q.push(format!(" <= {risk_starts})"));
            }
        }
    }
    if let Some(t) = filter.due_from {
        q.push(" AND closed IS NULL AND sla_due >= ")
            .push_bind(micros(t));
    }
    if let Some(t) = filter.since {
        q.push(" AND occurred >= ").push_bind(micros(t));
    }
    if let Some(t) = filter.fetched_since {
        q.push(" AND created >= ").push_bind(micros(t));
    }
    for c in &filter.conditions {
        q.push(" AND ");
        push_condition(q, c, common);
    }
    if let Some(after) = &filter.after {
        let beyond = if filter.sort.ascending { ">" } else { "<" };
        let column = sort_column(filter.sort.field);
        match hints.keyset {
            KeysetPart::Whole => {
                q.push(" AND (");
                // Sorted by occurrence, the filters' indexes are in that order and the keyset
                // is a range in them; in the other sorts it would steer SQLite to walk the
                // sort's index.
                if hints.narrow
                    && backend == Backend::Sqlite
                    && filter.sort.field != SortField::Occurred
                {
                    q.push("+");
                }
                q.push(format!("{column}, id) {beyond} ("));
                push_key(q, &after.value);
                q.push(", ").push_bind(after.id).push(")");
            }
            KeysetPart::Tie => {
                q.push(format!(" AND {column} = "));
                push_key(q, &after.value);
                q.push(format!(" AND id {beyond} ")).push_bind(after.id);
            }
            KeysetPart::Beyond => {
                q.push(format!(" AND {column} {beyond} "));
                push_key(q, &after.value);
            }
        }
    }
}

/// Which rows past a page's keyset a read takes. SQLite ranges an index on the first column
/// of a row-value comparison only: `(severity, id) < (?, ?)` walks from the top of the
/// cursor's severity and skips every entry above the cursor's id (at a million, 24 ms for a
/// cursor deep in one severity, 2 ms near its top). A sort whose column repeats reads its
/// next page in two parts, each a range of the sort's index: the cursor's own value below
/// its id, then the values beyond.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum KeysetPart {
    /// `(column, id)` past the cursor's, in one comparison.
    #[default]
    Whole,
    /// The cursor's value of the sort column, ids past the cursor's.
    Tie,
    /// Values of the sort column past the cursor's.
    Beyond,
}

/// Whether a page past a keyset is read in two parts ([`KeysetPart`]): on SQLite, in a sort
/// whose column repeats and whose index holds `id` next, unless the filter's matches are
/// read through their own index and sorted ([`Hints::narrow`]) or the page is an offset.
pub(super) fn keyset_in_parts(backend: Backend, filter: &IncidentFilter, narrow: bool) -> bool {
    backend == Backend::Sqlite
        && filter.after.is_some()
        && filter.offset.is_none()
        && !narrow
        && matches!(filter.sort.field, SortField::Severity | SortField::SlaDue)
}

/// What a filter matches, as a key for the judgements and counts kept about it: the filter
/// without its sort, page and the clock its SLA state is judged by (a key per second would
/// keep nothing).
pub(super) fn filter_key(filter: &IncidentFilter) -> String {
    let matching = IncidentFilter {
        sla: filter.sla.map(|(state, _)| (state, DateTime::UNIX_EPOCH)),
        due_from: filter.due_from.map(|_| DateTime::UNIX_EPOCH),
        sort: crate::Sort::default(),
        after: None,
        offset: None,
        limit: None,
        ..filter.clone()
    };
    format!("{matching:?}")
}

/// Search texts that match so many incidents that they are looked for by scanning (see
/// [`push_term`]).
pub(super) type CommonWords = std::collections::HashSet<String>;

/// What a query's plan should know of how much its terms match.
#[derive(Debug, Default)]
pub(super) struct Hints {
    pub(super) common: CommonWords,
    /// Filter columns (`status`, `organization`, `instance`, `owner`) whose value matches so
    /// many incidents that, sorted by another indexed column, walking the sort's index finds a
    /// page sooner than reading every match through the filter's index and sorting them.
    pub(super) broad: std::collections::HashSet<&'static str>,
    /// The whole filter matches few incidents: read them through the narrowest filter's
    /// index and sort them, even on a later page (whose keyset would otherwise steer SQLite to
    /// walk the sort's index from there).
    pub(super) narrow: bool,
    /// Which rows past the page's keyset are read.
    pub(super) keyset: KeysetPart,
}

/// Above this many full-text matches, a text is common.
pub(super) const COMMON: i64 = 2000;

/// The search texts of a filter, nested ones too.
pub(super) fn texts(terms: impl Iterator<Item = Term>) -> Vec<String> {
    collect_terms(terms, &|t| match t {
        Term::Text(t) => Some(t),
        _ => None,
    })
}

/// The indicator values a filter asks for, nested ones too.
pub(super) fn indicators(terms: impl Iterator<Item = Term>) -> Vec<String> {
    collect_terms(terms, &|t| match t {
        Term::Indicator(v) => Some(v),
        _ => None,
    })
}

/// What `pick` takes of a filter's terms, those nested in groups too.
fn collect_terms(
    terms: impl Iterator<Item = Term>,
    pick: &dyn Fn(Term) -> Option<String>,
) -> Vec<String> {
    fn collect(term: Term, pick: &dyn Fn(Term) -> Option<String>, out: &mut Vec<String>) {
        match term {
            Term::Any(inner) => inner.into_iter().for_each(|t| collect(t, pick, out)),
            Term::All(inner) => inner.into_iter().for_each(|c| collect(c.term, pick, out)),
            other => out.extend(pick(other)),
        }
    }
    let mut out = Vec::new();
    terms.for_each(|t| collect(t, pick, &mut out));
    out
}

/// How an indicator is kept among the common search texts (see [`CommonWords`]).
pub(super) fn common_indicator_key(value: &str) -> String {
    format!("indicator:{value}")
}

/// Whether a filter asks for an indicator or its verdict (read through the indicator tables,
/// which on SQLite are in the full-text index's file), nested ones too.
pub(super) fn has_indicator(terms: &[watchfloor_core::query::Condition]) -> bool {
    watchfloor_core::query::any_term(terms, &|t| {
        matches!(t, Term::Indicator(_) | Term::IndicatorVerdict(_))
    })
}

/// The expression a sort field orders by; never NULL, so that keyset comparisons hold.
pub(super) fn sort_column(field: SortField) -> &'static str {
    match field {
        SortField::Occurred => "occurred",
        SortField::Created => "created",
        SortField::Modified => "modified",
        SortField::Severity => "severity",
        SortField::Id => "id",
        SortField::Name => "name",
        SortField::Status => "status",
        SortField::Owner => "COALESCE(owner, '')",
        SortField::SlaDue => "sla_due",
        SortField::Organization => "COALESCE(organization, '')",
        SortField::Instance => "instance",
    }
}

pub(super) fn push_key(q: &mut Sql, value: &KeyValue) {
    match value {
        KeyValue::Time(t) => q.push_bind(micros(*t)),
        KeyValue::Int(n) => q.push_bind(*n),
        KeyValue::Real(r) => q.push_bind(*r),
        KeyValue::Text(t) => q.push_bind(t.clone()),
    };
}

/// `%text%` for LIKE, with LIKE's own characters escaped.
pub(super) fn contains(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// `value IN (...)` over every form an indicator's value may be kept in.
pub(super) fn push_lookups(q: &mut Sql, value: &str) {
    q.push("value IN (");
    for (n, form) in watchfloor_indicators::lookups(value)
        .into_iter()
        .enumerate()
    {
        q.push(if n == 0 { "" } else { ", " }).push_bind(form);
    }
    q.push(")");
}

pub(super) fn push_term(q: &mut Sql, term: &Term, common: &CommonWords) {
    match term {
        Term::Status(s) => {
            q.push("status = ").push_bind(s.as_str());
        }
        Term::Severity(s) => {
            q.push("severity = ").push_bind(s.value());
        }
        Term::Owner(Some(o)) => {
            q.push("owner = ").push_bind(o.clone());
        }
        Term::Owner(None) => {
            q.push("owner IS NULL");
        }
        Term::Kind(k) => {
            q.backend.push_eq_nocase(q, "type", k.clone());
        }
        Term::Name(n) => {
            let like = q.backend.like();
            q.push(format!("name {like} "))
                .push_bind(contains(n))
                .push(" ESCAPE '\\'");
        }
        Term::Id(id) => {
            q.push("id = ").push_bind(*id);
        }
        Term::Organization(o) => {
            q.backend.push_eq_nocase(q, "organization", o.clone());
        }
        Term::Instance(i) => {
            q.push("instance = ").push_bind(i.clone());
        }
        // Words go to the full-text index, each a prefix ("phish" finds "phishing"). Text
        // that many incidents have is looked for as it is, in the queue's order, which finds a
        // page at once where the index would list every match first; so does text with no
        // word in it (punctuation alone).
        Term::Text(t) if t.chars().any(char::is_alphanumeric) && !common.contains(t) => {
            q.backend.push_rare_text_match(q, t);
        }
        Term::Text(t) => {
            let pattern = contains(t);
            let like = q.backend.like();
            for (n, column) in ["name", "details", "external_id"].into_iter().enumerate() {
                q.push(if n == 0 { "" } else { " OR " })
                    .push(format!("{column} {like} "))
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\'");
            }
        }
        // An indicator of any type, under each form its value may be kept in. One that many
        // incidents have is tested on each incident met in the queue's order, which finds a
        // page soon, where reading every match first and sorting them took 270 ms for 40,000
        // matches at ten million (SQLite: `+id` keeps the list from choosing the rows).
        Term::Indicator(v) => {
            let ix = q.backend.index_schema();
            let plus = if q.backend == Backend::Sqlite && common.contains(&common_indicator_key(v))
            {
                "+"
            } else {
                ""
            };
            q.push(format!(
                "{plus}id IN (SELECT incident_id FROM {ix}indicator_links WHERE "
            ));
            push_lookups(q, v);
            q.push(")");
        }
        // Verdicts are given per organization: the incident's own indicator rows meet them.
        Term::IndicatorVerdict(v) => {
            let ix = q.backend.index_schema();
            q.push(format!(
                "id IN (SELECT l.incident_id FROM {ix}indicator_links l JOIN indicator_verdicts v \
                 ON v.value = l.value AND v.kind = l.kind AND v.organization = l.organization \
                 WHERE v.verdict = "
            ))
            .push_bind(v.clone())
            .push(")");
        }
        Term::Created(cmp, t) => {
            q.push(format!("created {} ", cmp.sql()).as_str())
                .push_bind(micros(*t));
        }
        Term::Occurred(cmp, t) => {
            q.push(format!("occurred {} ", cmp.sql()).as_str())
                .push_bind(micros(*t));
        }
        Term::Closed(cmp, t) => {
            q.push(format!("closed {} ", cmp.sql()).as_str())
                .push_bind(micros(*t));
        }
        Term::Nothing => {
            q.push("FALSE");
        }
        Term::Any(terms) if terms.is_empty() => {
            q.push("FALSE");
        }
        Term::Any(terms) => {
            for (n, t) in terms.iter().enumerate() {
                q.push(if n == 0 { "(" } else { " OR (" });
                push_term(q, t, common);
                q.push(")");
            }
        }
        Term::All(conditions) if conditions.is_empty() => {
            q.push("TRUE");
        }
        Term::All(conditions) => {
            for (n, c) in conditions.iter().enumerate() {
                q.push(if n == 0 { "" } else { " AND " });
                push_condition(q, c, common);
            }
        }
    }
}

/// One condition, in parentheses. A negated term is false where the field is NULL too
/// (`-owner:bob` keeps unassigned); elsewhere NULL stays as false as it is (SQL's AND and OR
/// treat it so), up to the next negation.
pub(super) fn push_condition(
    q: &mut Sql,
    c: &watchfloor_core::query::Condition,
    common: &CommonWords,
) {
    q.push(if c.negated { "NOT COALESCE((" } else { "(" });
    push_term(q, &c.term, common);
    q.push(if c.negated { "), FALSE)" } else { ")" });
}

/// Which of the counted filters a facet counts by.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Facet {
    Status,
    Severity,
    Organization,
    Owner,
    Instance,
}

/// The conditions of the filters that `incident_counts` counts (the reader's organizations,
/// status, severity, organization, instance, owner), but `except`'s: the same SQL on the
/// incidents table (`push_filter`) and on the counts (`Store::facets`), whose columns share
/// their names and values (an unassigned owner is NULL in one and '' in the other, and a
/// filter never asks for it by name). `column` names a column as the query wants it.
pub(super) fn push_counted_filters(
    q: &mut Sql,
    filter: &IncidentFilter,
    except: Option<Facet>,
    column: &dyn Fn(&'static str) -> String,
) {
    let backend = q.backend;
    let keep = |f: Facet| except != Some(f);
    if let crate::Scope::Orgs(orgs) = &filter.scope {
        q.push(" AND ");
        backend.push_in_nocase(q, "organization", orgs);
    }
    if keep(Facet::Status) && !filter.status.is_empty() {
        q.push(format!(" AND {} IN (", column("status")));
        for (n, s) in filter.status.iter().enumerate() {
            q.push(if n == 0 { "" } else { ", " }).push_bind(s.as_str());
        }
        q.push(")");
    }
    if keep(Facet::Severity) {
        if !filter.severity.is_empty() {
            q.push(format!(" AND {} IN (", column("severity")));
            for (n, s) in filter.severity.iter().enumerate() {
                q.push(if n == 0 { "" } else { ", " }).push_bind(s.value());
            }
            q.push(")");
        }
        if let Some(s) = filter.min_severity {
            q.push(" AND severity >= ").push_bind(s.value());
        }
    }
    if keep(Facet::Organization)
        && let Some(o) = &filter.organization
    {
        q.push(" AND ");
        backend.push_eq_nocase(q, &column("organization"), o.clone());
    }
    if keep(Facet::Instance)
        && let Some(i) = &filter.instance
    {
        q.push(format!(" AND {} = ", column("instance")))
            .push_bind(i.clone());
    }
    if keep(Facet::Owner)
        && let Some(o) = &filter.owner
    {
        q.push(format!(" AND {} = ", column("owner")))
            .push_bind(o.clone());
    }
}
