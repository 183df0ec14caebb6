//! What differs between the SQL of SQLite and of PostgreSQL, in one place, and a query builder
//! whose `$n` placeholders both accept.

use sqlx::any::{Any, AnyArguments};
use sqlx::{Arguments, Encode, Type};

/// The name SQLite's full-text index file (and the indicators in it) is attached under on
/// the connections that read text.
pub(crate) const INDEX_SCHEMA: &str = "search_index";

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The statement that starts a write transaction. SQLite takes its write lock at once, so
    /// a second process waits its turn instead of failing when it upgrades a read lock;
    /// PostgreSQL locks rows as it goes (see [`Backend::for_update`]).
    pub fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Appended to a read that a transaction goes on to write: SQLite already holds the
    /// database's write lock, PostgreSQL locks the rows read.
    pub fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// The database's clock, in milliseconds since the Unix epoch: leases are judged by one
    /// clock, whichever machine each process runs on.
    pub fn now_ms(self) -> &'static str {
        match self {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// A case-insensitive LIKE (SQLite's LIKE is, for ASCII).
    pub fn like(self) -> &'static str {
        match self {
            Backend::Sqlite => "LIKE",
            Backend::Postgres => "ILIKE",
        }
    }

    /// A LIMIT that limits nothing (SQLite wants a LIMIT before an OFFSET).
    pub fn no_limit(self) -> &'static str {
        match self {
            Backend::Sqlite => "-1",
            Backend::Postgres => "ALL",
        }
    }

    /// Seconds since the Unix epoch of an incident's stored time (integer microseconds), as
    /// a float.
    pub fn seconds(self, expr: &str) -> String {
        match self {
            Backend::Sqlite => format!("({expr} / 1000000.0)"),
            Backend::Postgres => format!("(CAST({expr} AS DOUBLE PRECISION) / 1000000)"),
        }
    }

    /// The UTC day (`YYYY-MM-DD`) of an incident's stored time.
    pub fn day(self, expr: &str) -> String {
        match self {
            Backend::Sqlite => format!("date({expr} / 1000000, 'unixepoch')"),
            Backend::Postgres => format!(
                "to_char(to_timestamp({expr} / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            ),
        }
    }

    /// The words of a search text as the full-text index's query: a phrase whose last word is
    /// a prefix ("phish" finds "phishing").
    pub fn text_query(self, text: &str) -> String {
        match self {
            Backend::Sqlite => format!("\"{}\"*", text.replace('"', "\"\"")),
            Backend::Postgres => {
                let words: Vec<String> = text
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(|w| format!("'{}'", w.to_lowercase()))
                    .collect();
                match words.split_last() {
                    Some((last, [])) => format!("{last}:*"),
                    Some((last, rest)) => format!("{} <-> {last}:*", rest.join(" <-> ")),
                    None => String::new(),
                }
            }
        }
    }

    /// Where the indicator tables are, as a prefix of their names: SQLite keeps them in the
    /// full-text index's file, attached to the connections that read text.
    pub fn index_schema(self) -> &'static str {
        match self {
            Backend::Sqlite => "search_index.",
            Backend::Postgres => "",
        }
    }

    /// `id` of incidents whose name, details or external id hold the text query bound next.
    pub fn push_text_match(self, q: &mut Sql, text: &str) {
        match self {
            Backend::Sqlite => {
                q.push(format!(
                    "id IN (SELECT rowid FROM {}.incidents_fts WHERE incidents_fts MATCH ",
                    INDEX_SCHEMA
                ))
                .push_bind(self.text_query(text))
                .push(")");
            }
            Backend::Postgres => {
                q.push("search @@ to_tsquery('simple', ")
                    .push_bind(self.text_query(text))
                    .push(")");
            }
        }
    }

    /// `id` of incidents whose name, details or external id hold the text query bound next, for
    /// a text that few incidents hold (see `filter::COMMON`). PostgreSQL estimates any text
    /// search to match 2% of the rows, so left to itself it walks the queue's order and tests
    /// every row until a page is found, which for a rare word is every row (0.5 s at a million
    /// incidents, 5 s under load); the matches' ids are read from the text index first, as a
    /// list, and the rows then found by id.
    pub fn push_rare_text_match(self, q: &mut Sql, text: &str) {
        match self {
            Backend::Sqlite => self.push_text_match(q, text),
            Backend::Postgres => {
                q.push("id = ANY(ARRAY(SELECT id FROM incidents WHERE ");
                self.push_text_match(q, text);
                q.push("))");
            }
        }
    }

    /// How many incidents the full-text index finds for a text, counted no further than `cap`.
    pub fn text_count(self, text: &str, cap: i64) -> Sql {
        let mut q = Sql::new(self, "SELECT COUNT(*) FROM (SELECT 1 FROM ");
        match self {
            Backend::Sqlite => {
                q.push(format!(
                    "{}.incidents_fts WHERE incidents_fts MATCH ",
                    INDEX_SCHEMA
                ))
                .push_bind(self.text_query(text));
            }
            Backend::Postgres => {
                q.push("incidents WHERE ");
                self.push_text_match(&mut q, text);
            }
        }
        q.push(" LIMIT ").push_bind(cap).push(") AS matches");
        q
    }

    /// `column = value`, in any case.
    pub fn push_eq_nocase(self, q: &mut Sql, column: &str, value: String) {
        match self {
            Backend::Sqlite => {
                q.push(format!("{column} = "))
                    .push_bind(value)
                    .push(" COLLATE NOCASE");
            }
            Backend::Postgres => {
                q.push(format!("lower({column}) = lower("))
                    .push_bind(value)
                    .push(")");
            }
        }
    }

    /// `column IN (values)`, in any case.
    pub fn push_in_nocase(self, q: &mut Sql, column: &str, values: &[String]) {
        let (open, wrap) = match self {
            Backend::Sqlite => (format!("{column} COLLATE NOCASE IN ("), false),
            Backend::Postgres => (format!("lower({column}) IN ("), true),
        };
        q.push(open);
        for (n, v) in values.iter().enumerate() {
            if n > 0 {
                q.push(", ");
            }
            if wrap {
                q.push("lower(").push_bind(v.clone()).push(")");
            } else {
                q.push_bind(v.clone());
            }
        }
        q.push(")");
    }
}

/// The start of a query that returns one page of incidents as a single JSON array text, on
/// SQLite; the filter follows (after `WHERE 1 = 1`), then ORDER BY, LIMIT and `) AS page`.
pub(crate) const SQLITE_PAGE: &str = "SELECT json_group_array(json_object('id', id, 'instance', instance, \
     'integration', integration, 'external_id', external_id, 'name', name, 'type', type, \
     'occurred', occurred, 'created', created, 'modified', modified, 'severity', severity, \
     'status', status, 'organization', organization, 'owner', owner, 'details', details, \
     'labels', CASE WHEN record IS NULL THEN json(labels) END, \
     'raw', CASE WHEN record IS NULL THEN json(raw_json) END, 'record', CASE WHEN record IS NOT NULL THEN hex(record) END, \
     'version', version, 'closed', closed, \
     'close_reason', close_reason, 'close_notes', close_notes, 'first_assigned', first_assigned, \
     'sla_due', sla_due)) FROM (SELECT id, instance, integration, external_id, name, type, occurred, \
     created, modified, severity, status, organization, owner, details, labels, raw_json, record, version, \
     closed, close_reason, close_notes, first_assigned, sla_due FROM incidents WHERE 1 = 1";

/// A row being bound by [`Sql::push_row`].
pub struct Row<'a> {
    sql: &'a mut Sql,
    n: usize,
}

impl Row<'_> {
    /// Binds the row's next value.
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'static, Any> + Type<Any>,
    {
        if self.n > 0 {
            self.sql.push(", ");
        }
        self.n += 1;
        self.sql.push_bind(value);
        self
    }
}

/// A query being built: its text, with `$n` for each value bound so far, and the values.
pub struct Sql {
    pub backend: Backend,
    text: String,
    args: AnyArguments,
    binds: usize,
}

impl Sql {
    pub fn new(backend: Backend, text: impl Into<String>) -> Sql {
        Sql {
            backend,
            text: text.into(),
            args: AnyArguments::default(),
            binds: 0,
        }
    }

    pub fn push(&mut self, text: impl AsRef<str>) -> &mut Self {
        self.text.push_str(text.as_ref());
        self
    }

    /// Binds a value where the text now ends.
    pub fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'static, Any> + Type<Any>,
    {
        let placeholder = self.param(value);
        self.text.push_str(&placeholder);
        self
    }

    /// One row of a multi-row `VALUES`, `(v1, v2, ...)`, after a comma unless it is the
    /// first: `values` binds each of its values in order.
    pub fn push_row(&mut self, first: bool, values: impl FnOnce(&mut Row<'_>)) -> &mut Self {
        self.push(if first { "(" } else { ", (" });
        values(&mut Row { sql: self, n: 0 });
        self.push(")")
    }

    /// Binds a value and returns its placeholder, to be pushed next: values bind in the
    /// order their placeholders appear, and each placeholder is used once.
    ///
    /// SQLite gets anonymous `?`s: it looks a named or numbered parameter up by a linear
    /// search, once per parameter, which made a 200-row insert spend a quarter of its time
    /// finding its 1,800 parameters. PostgreSQL gets `$n`.
    pub fn param<T>(&mut self, value: T) -> String
    where
        T: Encode<'static, Any> + Type<Any>,
    {
        // Encoding into `Any`'s buffer only copies the value; it cannot fail for the text,
        // integers and floats stored here.
        let _ = self.args.add(value);
        self.binds += 1;
        match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${}", self.binds),
        }
    }

    fn parts(self) -> (sqlx::AssertSqlSafe<String>, AnyArguments) {
        (sqlx::AssertSqlSafe(self.text), self.args)
    }

    /// The query for PostgreSQL's own driver (its values converted as `Any`'s driver would).
    pub(crate) fn build_postgres(
        self,
    ) -> Result<sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>, sqlx::Error>
    {
        let (text, args) = self.parts();
        let args = args.convert_into().map_err(sqlx::Error::Encode)?;
        Ok(sqlx::query_with(text, args))
    }

    pub fn build(self) -> sqlx::query::Query<'static, Any, AnyArguments> {
        let (text, args) = self.parts();
        sqlx::query_with(text, args)
    }

    pub fn build_query_scalar<O>(self) -> sqlx::query::QueryScalar<'static, Any, O, AnyArguments>
    where
        (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let (text, args) = self.parts();
        sqlx::query_scalar_with(text, args)
    }

    pub fn build_query_as<O>(self) -> sqlx::query::QueryAs<'static, Any, O, AnyArguments>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let (text, args) = self.parts();
        sqlx::query_as_with(text, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_queries_are_a_phrase_with_a_prefix_last_word() {
        let check = |backend: Backend, text: &str, expected: &str| {
            assert_eq!(backend.text_query(text), expected, "{backend:?} {text}");
        };
        check(Backend::Sqlite, "phish", "\"phish\"*");
        check(Backend::Sqlite, "say \"hi\"", "\"say \"\"hi\"\"\"*");
        check(Backend::Postgres, "phish", "'phish':*");
        check(Backend::Postgres, "Port scan", "'port' <-> 'scan':*");
        check(
            Backend::Postgres,
            "host.example.com",
            "'host' <-> 'example' <-> 'com':*",
        );
        check(
            Backend::Postgres,
            "o'brien & x|y",
            "'o' <-> 'brien' <-> 'x' <-> 'y':*",
        );
        check(Backend::Postgres, "--", "");
    }

    #[test]
    fn sqlite_binds_are_anonymous() {
        let mut q = Sql::new(Backend::Sqlite, "SELECT 1 WHERE a = ");
        q.push_bind(1_i64).push(" AND ");
        Backend::Sqlite.push_in_nocase(&mut q, "org", &["A".into(), "b".into()]);
        assert_eq!(
            q.text,
            "SELECT 1 WHERE a = ? AND org COLLATE NOCASE IN (?, ?)"
        );
    }

    #[test]
    fn binds_are_numbered_in_order() {
        let mut q = Sql::new(Backend::Postgres, "SELECT 1 WHERE a = ");
        q.push_bind(1_i64).push(" AND ");
        Backend::Postgres.push_in_nocase(&mut q, "org", &["A".into(), "b".into()]);
        assert_eq!(
            q.text,
            "SELECT 1 WHERE a = $1 AND lower(org) IN (lower($2), lower($3))"
        );
    }
}
