//! Incident queries in XSOAR's search syntax (`-status:closed severity:high owner:"" phish`):
//! one parser for the XSOAR API's `filter.query`, the native API's `q` and the web UI's search box.
//!
//! A query is a conjunction of conditions. `field:value` matches a field, a bare word matches
//! the name, details or provider id as text, and a leading `-` negates a term. Values with
//! spaces are quoted. `created`, `occurred` and `closed` take a comparison (`created:>=2024-05-01`, or
//! relative to now, `created:<-15m`). `a OR b` is one condition of alternatives (OR binds
//! tighter than the implicit AND); parentheses group terms, nested up to [`MAX_DEPTH`], and
//! `-` or `NOT` negates a term or a group whole.

use chrono::{DateTime, Utc};

use crate::incident::{Severity, Status};

/// One term of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Status(Status),
    Severity(Severity),
    /// An owner, or `None` for unassigned (`owner:""`).
    Owner(Option<String>),
    /// The incident type, in any case.
    Kind(String),
    /// Part of the name, in any case.
    Name(String),
    Id(i64),
    /// The organization, in any case.
    Organization(String),
    Instance(String),
    /// Part of the name, details or provider id, in any case.
    Text(String),
    /// An indicator the incident holds (`indicator:203.0.113.7`), whatever its type.
    Indicator(String),
    /// An indicator of the incident has this verdict (`indicator.verdict:malicious`).
    IndicatorVerdict(String),
    Created(Cmp, DateTime<Utc>),
    Occurred(Cmp, DateTime<Utc>),
    /// When it was closed; an open incident matches no `closed:` comparison.
    Closed(Cmp, DateTime<Utc>),
    /// A term no incident matches, such as `category:job` or `status:archive`: watchfloor has
    /// no jobs and no archive, so scripts that exclude them (`-category:job`) keep working.
    Nothing,
    /// Any of these terms; none matches nothing. Made by XSOAR's list filters (`id: [..]`)
    /// and by `OR`.
    Any(Vec<Term>),
    /// Every one of these conditions: a group of terms joined by AND (`(a b)`), or one
    /// negated term among alternatives (`a OR -b`).
    All(Vec<Condition>),
}

/// A term comparing one of an incident's times, made from how it compares and with what.
pub type TimeTerm = fn(Cmp, DateTime<Utc>) -> Term;

/// The term of a time field a query (or XSOAR's filter) names: `created`, `occurred`, `closed`.
pub fn time_term(field: &str) -> Option<TimeTerm> {
    match field {
        "created" => Some(Term::Created),
        "occurred" => Some(Term::Occurred),
        "closed" => Some(Term::Closed),
        _ => None,
    }
}

/// How a time term compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Before,
    AtOrBefore,
    At,
    AtOrAfter,
    After,
}

impl Cmp {
    pub fn sql(self) -> &'static str {
        match self {
            Cmp::Before => "<",
            Cmp::AtOrBefore => "<=",
            Cmp::At => "=",
            Cmp::AtOrAfter => ">=",
            Cmp::After => ">",
        }
    }
}

/// A term, negated or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub term: Term,
    pub negated: bool,
}

/// A query that cannot be read; the message names the part and says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the query: {0}")]
pub struct QueryError(String);

/// The fields a query knows, for messages.
pub const FIELDS: &str =
    "status, severity, owner, type, name, id, organization, instance, created, occurred, closed";

/// The items of a comma-separated filter value (`pending,active`), each read by `parse`; none
/// when the value is absent or empty. Queue filters of the CLI and the APIs take lists so.
pub fn comma_list<T>(
    text: Option<&str>,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    text.into_iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse)
        .collect()
}

/// Reads a query. An empty query matches every incident.
pub fn parse(query: &str) -> Result<Vec<Condition>, QueryError> {
    parse_at(query, Utc::now())
}

/// Reads a query whose relative times (`created:<-15m`) count back from `now`.
pub fn parse_at(query: &str, now: DateTime<Utc>) -> Result<Vec<Condition>, QueryError> {
    if query.contains('\0') {
        return Err(QueryError(
            "the search has a NUL character, which no incident holds: remove it".into(),
        ));
    }
    let mut parser = Parser {
        tokens: tokens(query)?,
        at: 0,
        now,
        terms: 0,
        depth: 0,
    };
    let mut conditions = Vec::new();
    for node in parser.conjunction(false)? {
        conjoin(node, &mut conditions);
    }
    Ok(conditions)
}

/// The most terms one search takes (the databases refuse expressions much deeper).
pub const MAX_TERMS: usize = 100;

/// How deep parentheses may nest.
pub const MAX_DEPTH: usize = 8;

/// A query as read, before it is said as conditions.
enum Node {
    Term(Term),
    Not(Box<Node>),
    All(Vec<Node>),
    Any(Vec<Node>),
}

/// A recursive descent over the tokens: a conjunction of disjunctions of (negated) terms and
/// groups; `OR` binds tighter than `AND`, which is implicit between terms.
struct Parser {
    tokens: Vec<String>,
    at: usize,
    now: DateTime<Utc>,
    terms: usize,
    depth: usize,
}

fn is_and(token: &str) -> bool {
    matches!(token, "AND" | "and" | "&&")
}

fn is_or(token: &str) -> bool {
    matches!(token, "OR" | "or" | "||")
}

fn is_not(token: &str) -> bool {
    matches!(token, "NOT" | "not")
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    /// Whether a term or a group comes next (not the end, a `)` or an operator).
    fn operand_follows(&self) -> bool {
        self.peek()
            .is_some_and(|t| t != ")" && !is_or(t) && !is_and(t))
    }

    /// Terms and groups up to the end, or (`inside` a group) up to its `)`.
    fn conjunction(&mut self, inside: bool) -> Result<Vec<Node>, QueryError> {
        let mut nodes = Vec::new();
        loop {
            match self.peek() {
                None if inside => return Err(QueryError("a `(` is not closed".into())),
                None => return Ok(nodes),
                Some(")") if inside => return Ok(nodes),
                Some(")") => return Err(QueryError("a `)` has no `(` before it".into())),
                // Terms are joined by AND anyway; a dangling one, as scripts that join optional
                // parts leave, is passed over.
                Some(t) if is_and(t) => self.at += 1,
                Some(t) if is_or(t) => {
                    return Err(QueryError("`OR` needs a term on each side".into()));
                }
                Some(_) => nodes.push(self.disjunction()?),
            }
        }
    }

    /// One term or group, or several joined by `OR`.
    fn disjunction(&mut self) -> Result<Node, QueryError> {
        let mut alternatives = vec![self.unary()?];
        while self.peek().is_some_and(is_or) {
            self.at += 1;
            if !self.operand_follows() {
                return Err(QueryError("`OR` needs a term on each side".into()));
            }
            alternatives.push(self.unary()?);
        }
        Ok(match alternatives.len() {
            1 => alternatives.remove(0),
            _ => Node::Any(alternatives),
        })
    }

    /// A term, a group, or either negated (`-term`, `-(...)`, `NOT ...`).
    fn unary(&mut self) -> Result<Node, QueryError> {
        let Some(token) = self.tokens.get(self.at).cloned() else {
            return Err(QueryError(
                "the search ends where a term was expected".into(),
            ));
        };
        self.at += 1;
        if is_not(&token) {
            if !self.operand_follows() {
                return Err(QueryError("`NOT` needs a term or a group after it".into()));
            }
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if token == "(" || token == "-(" {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(QueryError(format!(
                    "parentheses nest deeper than {MAX_DEPTH}: simplify the search"
                )));
            }
            let mut inner = self.conjunction(true)?;
            self.at += 1;
            self.depth -= 1;
            let group = match inner.len() {
                0 => return Err(QueryError("a group `()` has no terms".into())),
                1 => inner.remove(0),
                _ => Node::All(inner),
            };
            return Ok(match token.as_str() {
                "-(" => Node::Not(Box::new(group)),
                _ => group,
            });
        }
        if token == ")" {
            return Err(QueryError("a `)` has no `(` before it".into()));
        }
        let (negated, body) = match token.strip_prefix('-') {
            Some(rest) if !rest.is_empty() => (true, rest),
            _ => (false, token.as_str()),
        };
        let term = match split_field(body) {
            Some((field, value)) => term(&field, &value, self.now)?,
            None => Term::Text(unquote(body)),
        };
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(QueryError(format!(
                "the search has more than {MAX_TERMS} terms; narrow it to fewer"
            )));
        }
        Ok(match negated {
            true => Node::Not(Box::new(Node::Term(term))),
            false => Node::Term(term),
        })
    }
}

/// Adds `node` to a conjunction of conditions: a group of terms that must all hold adds each.
fn conjoin(node: Node, conditions: &mut Vec<Condition>) {
    match node {
        Node::All(nodes) => nodes.into_iter().for_each(|n| conjoin(n, conditions)),
        other => conditions.push(condition(other)),
    }
}

/// `node` as one condition.
fn condition(node: Node) -> Condition {
    match node {
        Node::Term(term) => Condition {
            term,
            negated: false,
        },
        Node::Not(inner) => {
            let c = condition(*inner);
            Condition {
                negated: !c.negated,
                ..c
            }
        }
        Node::Any(nodes) => {
            let mut terms = Vec::new();
            for n in nodes {
                alternative(n, &mut terms);
            }
            Condition {
                term: Term::Any(terms),
                negated: false,
            }
        }
        Node::All(nodes) => {
            let mut conditions = Vec::new();
            for n in nodes {
                conjoin(n, &mut conditions);
            }
            Condition {
                term: Term::All(conditions),
                negated: false,
            }
        }
    }
}

/// Adds `node` to a list of alternatives: alternatives of its own add each.
fn alternative(node: Node, terms: &mut Vec<Term>) {
    match node {
        Node::Any(nodes) => nodes.into_iter().for_each(|n| alternative(n, terms)),
        other => match condition(other) {
            Condition {
                term,
                negated: false,
            } => terms.push(term),
            negated => terms.push(Term::All(vec![negated])),
        },
    }
}

/// `field:value` if the token has an unquoted colon before any quote.
fn split_field(token: &str) -> Option<(String, String)> {
    let colon = token.find(':')?;
    let quote = token.find('"').unwrap_or(usize::MAX);
    if colon > quote || colon == 0 {
        return None;
    }
    Some((token[..colon].to_string(), token[colon + 1..].to_string()))
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

fn term(field: &str, raw: &str, now: DateTime<Utc>) -> Result<Term, QueryError> {
    let value = unquote(raw);
    let bad = |e: String| QueryError(format!("`{field}:{raw}`: {e}"));
    let field_name = field.to_ascii_lowercase();
    if let Some(time) = time_term(&field_name) {
        let (cmp, at) = comparison(&value, now).map_err(bad)?;
        return Ok(time(cmp, at));
    }
    Ok(match field_name.as_str() {
        "status" => match value.to_ascii_lowercase().as_str() {
            "archive" | "3" => Term::Nothing,
            "0" => Term::Status(Status::Pending),
            "1" => Term::Status(Status::Active),
            "2" | "done" => Term::Status(Status::Closed),
            v => Term::Status(Status::parse(v).map_err(bad)?),
        },
        "severity" => Term::Severity(Severity::parse(&value).map_err(bad)?),
        "owner" => Term::Owner(Some(value).filter(|v| !v.is_empty())),
        "type" => Term::Kind(value),
        "name" => Term::Name(value),
        "id" => Term::Id(
            value
                .parse()
                .map_err(|_| bad("an incident id is a number".into()))?,
        ),
        "organization" | "org" => Term::Organization(value),
        "instance" | "sourceinstance" => Term::Instance(value),
        "indicator" if value.trim().is_empty() => {
            return Err(bad("name an indicator, e.g. indicator:203.0.113.7".into()));
        }
        "indicator" => Term::Indicator(value.trim().to_string()),
        "indicator.verdict" => match value.trim().to_ascii_lowercase().as_str() {
            v @ ("malicious" | "suspicious" | "benign") => Term::IndicatorVerdict(v.to_string()),
            _ => {
                return Err(bad(
                    "a verdict is malicious, suspicious or benign".to_string()
                ));
            }
        },
        "category" => Term::Nothing,
        _ => {
            return Err(QueryError(format!(
                "`{field}` is not a field to search: use {FIELDS}, or words alone to search text"
            )));
        }
    })
}

fn comparison(value: &str, now: DateTime<Utc>) -> Result<(Cmp, DateTime<Utc>), String> {
    let (cmp, rest) = [
        (">=", Cmp::AtOrAfter),
        ("<=", Cmp::AtOrBefore),
        (">", Cmp::After),
        ("<", Cmp::Before),
    ]
    .into_iter()
    .find_map(|(p, c)| value.strip_prefix(p).map(|r| (c, r)))
    .unwrap_or((Cmp::At, value));
    let rest = unquote(rest);
    // `-15m`: that long before now, as rules write "older than".
    let ago = || {
        let d = humantime::parse_duration(rest.strip_prefix('-')?.trim()).ok()?;
        Some(now - chrono::TimeDelta::from_std(d).ok()?)
    };
    let at = crate::time::moment(&rest).or_else(ago).ok_or_else(|| {
        format!(
            "`{rest}` is not a time: write 2024-05-01, 2024-05-01T09:00:00Z, or -15m for 15 minutes ago"
        )
    })?;
    Ok((cmp, at))
}

/// Splits on whitespace outside double quotes; quotes stay in the token.
fn tokens(query: &str) -> Result<Vec<String>, QueryError> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in query.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            '(' | ')' if !quoted => {
                // A group: `(`, `-(` and `)` stand alone.
                if c == '(' && current == "-" {
                    current.clear();
                    out.push("-(".to_string());
                    continue;
                }
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                out.push(c.to_string());
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(QueryError("a quote is not closed".into()));
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

/// Whether any term of `conditions`, nested ones too, is one `is` picks.
pub fn any_term(conditions: &[Condition], is: &dyn Fn(&Term) -> bool) -> bool {
    fn any(t: &Term, is: &dyn Fn(&Term) -> bool) -> bool {
        match t {
            Term::Any(inner) => inner.iter().any(|t| any(t, is)),
            Term::All(inner) => inner.iter().any(|c| any(&c.term, is)),
            t => is(t),
        }
    }
    conditions.iter().any(|c| any(&c.term, is))
}

/// Whether any of `conditions` asks for an indicator's verdict (which only a search can
/// judge: verdicts are stored, not in the incident).
pub fn asks_verdict(conditions: &[Condition]) -> bool {
    any_term(conditions, &|t| matches!(t, Term::IndicatorVerdict(_)))
}

/// The words of a query as this syntax reads them (split at spaces outside double quotes,
/// the quotes kept), for queries of other things in the same syntax, such as XSOAR's
/// indicator searches.
pub fn words(query: &str) -> Result<Vec<String>, QueryError> {
    tokens(query)
}

/// `value` without the double quotes around it, if it has them.
pub fn unquoted(value: &str) -> String {
    unquote(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (more than about 1,000 search terms gave 500, "Expression tree is too
    /// large"): a search of too many terms is refused, saying so.
    #[test]
    fn a_search_of_too_many_terms_is_refused() {
        let many = vec!["word"; MAX_TERMS + 1].join(" ");
        let e = parse(&many).unwrap_err().to_string();
        assert!(e.contains("more than 100 terms"), "{e}");
        assert_eq!(
            parse(&vec!["w"; MAX_TERMS].join(" ")).unwrap().len(),
            MAX_TERMS
        );
    }

    fn check(query: &str, expected: &[(&str, bool)]) {
        let got: Vec<(String, bool)> = parse(query)
            .unwrap()
            .into_iter()
            .map(|c| (format!("{:?}", c.term), c.negated))
            .collect();
        let expected: Vec<(String, bool)> =
            expected.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        assert_eq!(got, expected, "query {query:?}");
    }

    #[test]
    fn reads_the_queries_scripts_send() {
        check(
            "-status:closed -category:job",
            &[("Status(Closed)", true), ("Nothing", true)],
        );
        check(
            "status:Active severity:high owner:bob",
            &[
                ("Status(Active)", false),
                ("Severity(High)", false),
                ("Owner(Some(\"bob\"))", false),
            ],
        );
        check("owner:\"\"", &[("Owner(None)", false)]);
        check(
            "name:\"port scan\" type:Covalence",
            &[
                ("Name(\"port scan\")", false),
                ("Kind(\"Covalence\")", false),
            ],
        );
        check(
            "phish AND -\"two words\"",
            &[("Text(\"phish\")", false), ("Text(\"two words\")", true)],
        );
        check(
            "id:12 status:2",
            &[("Id(12)", false), ("Status(Closed)", false)],
        );
        check("", &[]);
    }

    /// `OR` and parentheses: alternatives within a conjunction, a group negated as a whole.
    #[test]
    fn reads_alternatives() {
        let c = parse(
            "status:active severity:high OR severity:critical -(owner:bob OR owner:eve) (a OR b)",
        )
        .unwrap();
        assert_eq!(
            c,
            [
                Condition {
                    term: Term::Status(Status::Active),
                    negated: false
                },
                Condition {
                    term: Term::Any(vec![
                        Term::Severity(Severity::High),
                        Term::Severity(Severity::Critical)
                    ]),
                    negated: false
                },
                Condition {
                    term: Term::Any(vec![
                        Term::Owner(Some("bob".into())),
                        Term::Owner(Some("eve".into()))
                    ]),
                    negated: true
                },
                Condition {
                    term: Term::Any(vec![Term::Text("a".into()), Term::Text("b".into())]),
                    negated: false
                },
            ]
        );
        assert_eq!(parse("a OR b OR c").unwrap().len(), 1);
        assert_eq!(
            parse("name:\"a (b)\"").unwrap()[0].term,
            Term::Name("a (b)".into())
        );
    }

    /// Groups nest, hold terms joined by AND, and `-` or `NOT` negates a term or a group,
    /// alone or among alternatives.
    #[test]
    fn reads_nested_groups_and_not() {
        let t = |s: &str| Term::Text(s.into());
        let yes = |term: Term| Condition {
            term,
            negated: false,
        };
        let no = |term: Term| Condition {
            term,
            negated: true,
        };
        let org = |o: &str| Term::Organization(o.into());
        assert_eq!(
            parse("severity:high (org:acme OR (org:globex type:phishing))").unwrap(),
            [
                yes(Term::Severity(Severity::High)),
                yes(Term::Any(vec![
                    org("acme"),
                    Term::All(vec![yes(org("globex")), yes(Term::Kind("phishing".into()))]),
                ])),
            ]
        );
        // NOT is `-`; a group of terms that must all hold is its terms, unless negated.
        assert_eq!(parse("NOT a").unwrap(), parse("-a").unwrap());
        assert_eq!(parse("(a b) c").unwrap(), parse("a b c").unwrap());
        assert_eq!(parse("(a AND b)").unwrap(), parse("a b").unwrap());
        // A dangling AND, as scripts that join optional parts leave, is passed over.
        assert_eq!(parse("AND a AND").unwrap(), parse("a").unwrap());
        assert_eq!(parse("(a AND) b").unwrap(), parse("a b").unwrap());
        assert_eq!(parse("((a OR b))").unwrap(), parse("a OR b").unwrap());
        assert_eq!(parse("NOT -a").unwrap(), parse("a").unwrap());
        assert_eq!(
            parse("NOT (a b)").unwrap(),
            [no(Term::All(vec![yes(t("a")), yes(t("b"))]))]
        );
        assert_eq!(
            parse("a OR -b OR NOT (c OR d)").unwrap(),
            [yes(Term::Any(vec![
                t("a"),
                Term::All(vec![no(t("b"))]),
                Term::All(vec![no(Term::Any(vec![t("c"), t("d")]))]),
            ]))]
        );
        assert_eq!(
            parse("-(a OR (b -c))").unwrap(),
            [no(Term::Any(vec![
                t("a"),
                Term::All(vec![yes(t("b")), no(t("c"))]),
            ]))]
        );
        // Alternatives of alternatives are one list.
        assert_eq!(
            parse("a OR (b OR c)").unwrap(),
            [yes(Term::Any(vec![t("a"), t("b"), t("c")]))]
        );
        let deep = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(parse(&deep).unwrap(), [yes(t("a"))]);
    }

    #[test]
    fn reads_time_comparisons() {
        let c = parse("created:>=\"2024-05-01T00:00:00\"").unwrap();
        assert_eq!(
            c[0].term,
            Term::Created(Cmp::AtOrAfter, "2024-05-01T00:00:00Z".parse().unwrap())
        );
        let c = parse("closed:<2024-06-01").unwrap();
        assert_eq!(
            c[0].term,
            Term::Closed(Cmp::Before, "2024-06-01T00:00:00Z".parse().unwrap())
        );
        // Relative to now, as rules write "older than 15 minutes".
        let before = Utc::now() - chrono::TimeDelta::minutes(15);
        let c = parse("created:<-15m occurred:>=-7d").unwrap();
        match (&c[0].term, &c[1].term) {
            (Term::Created(Cmp::Before, a), Term::Occurred(Cmp::AtOrAfter, b)) => {
                assert!((*a - before).num_seconds().abs() < 5, "{a}");
                assert!(
                    (*b - (Utc::now() - chrono::TimeDelta::days(7)))
                        .num_seconds()
                        .abs()
                        < 5
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mistakes_name_the_part_and_the_fix() {
        for (query, says) in [
            ("colour:red", "`colour` is not a field"),
            ("status:done-ish", "`status:done-ish`"),
            ("severity:urgent", "is not a severity"),
            ("id:abc", "an incident id is a number"),
            ("a OR", "`OR` needs a term on each side"),
            ("OR a", "`OR` needs a term on each side"),
            ("(a OR b", "a `(` is not closed"),
            ("((a OR b)", "a `(` is not closed"),
            ("a)", "a `)` has no `(`"),
            ("(a))", "a `)` has no `(`"),
            ("()", "a group `()` has no terms"),
            ("a OR ()", "a group `()` has no terms"),
            ("NOT", "`NOT` needs a term or a group after it"),
            ("a NOT", "`NOT` needs a term or a group after it"),
            ("(NOT)", "`NOT` needs a term or a group after it"),
            ("NOT OR a", "`NOT` needs a term or a group after it"),
            ("a OR AND b", "`OR` needs a term on each side"),
            ("(a OR)", "`OR` needs a term on each side"),
            ("((((((((( a )))))))))", "parentheses nest deeper than 8"),
            ("name:\"open", "a quote is not closed"),
            ("created:>=yesterdayish", "is not a time"),
        ] {
            let e = parse(query).unwrap_err().to_string();
            assert!(e.contains(says), "{query}: {e}");
        }
    }
}
