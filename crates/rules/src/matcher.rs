//! Rule conditions against one incident, in memory: the query syntax of searches, read the
//! same way, so that a rule's `when` pasted into the queue finds what the rule matches.

use chrono::{DateTime, Utc};
use watchfloor_core::Incident;
use watchfloor_core::query::{Cmp, Condition, Term};

/// Whether `incident` meets every condition of `when` (empty meets all); relative times are
/// taken from now. A condition that does not parse meets nothing.
pub fn matches(when: &str, incident: &Incident) -> bool {
    match when.trim() {
        "" => true,
        text => match watchfloor_core::query::parse(text) {
            Ok(conditions) => meets(&conditions, incident),
            Err(_) => false,
        },
    }
}

/// Whether `incident` meets every one of `conditions` (a condition parsed once for many
/// incidents, with relative times taken from when it was parsed).
pub fn meets(conditions: &[Condition], incident: &Incident) -> bool {
    meets_with(conditions, incident, &|_| false)
}

/// [`meets`], where `verdict(V)` says whether an indicator of the incident was judged V (the
/// store knows: verdicts are not in the incident).
pub fn meets_with(
    conditions: &[Condition],
    incident: &Incident,
    verdict: &dyn Fn(&str) -> bool,
) -> bool {
    conditions.iter().all(|c| holds(c, incident, verdict))
}

/// The organizations a condition requires (its terms `organization:X` not negated).
pub fn names_organizations(when: &str) -> Vec<String> {
    watchfloor_core::query::parse(when)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !c.negated)
        .filter_map(|c| match c.term {
            Term::Organization(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn holds(c: &Condition, i: &Incident, verdict: &dyn Fn(&str) -> bool) -> bool {
    term(&c.term, i, verdict) != c.negated
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn compare(cmp: Cmp, value: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    match cmp {
        Cmp::Before => value < to,
        Cmp::AtOrBefore => value <= to,
        Cmp::At => value == to,
        Cmp::AtOrAfter => value >= to,
        Cmp::After => value > to,
    }
}

fn term(t: &Term, i: &Incident, verdict: &dyn Fn(&str) -> bool) -> bool {
    match t {
        Term::Status(s) => i.status == *s,
        Term::Severity(s) => i.severity == *s,
        Term::Owner(o) => i.owner == *o,
        Term::Kind(k) => i.kind.eq_ignore_ascii_case(k),
        Term::Name(n) => contains(&i.name, n),
        Term::Id(id) => i.id == *id,
        Term::Organization(o) => i
            .organization
            .as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(o)),
        Term::Instance(n) => i.instance == *n,
        Term::Text(t) => {
            contains(&i.name, t) || contains(&i.details, t) || contains(&i.external_id, t)
        }
        Term::Indicator(v) => watchfloor_indicators::mentions(&i.name, &i.details, &i.raw, v),
        Term::IndicatorVerdict(v) => verdict(v),
        Term::Created(cmp, at) => compare(*cmp, i.created, *at),
        Term::Occurred(cmp, at) => compare(*cmp, i.occurred, *at),
        Term::Closed(cmp, at) => i.closed.is_some_and(|closed| compare(*cmp, closed, *at)),
        Term::Nothing => false,
        Term::Any(terms) => terms.iter().any(|t| term(t, i, verdict)),
        Term::All(conditions) => conditions.iter().all(|c| holds(c, i, verdict)),
    }
}
