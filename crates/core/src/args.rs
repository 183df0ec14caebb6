//! Binding a parsed command line to a command definition, with XSOAR's argument rules.

use std::collections::BTreeMap;

use crate::cmdline::CommandLine;
use crate::usage::UsageError;
use chrono::{DateTime, Utc};

use crate::definition::{ArgType, CommandDef};
use crate::time::TimeSpec;

/// Validated arguments of one command run: defaults applied, booleans normalised to
/// `true`/`false`, numbers, times and allowed values checked, and each value parsed once into
/// its type.
#[derive(Debug, Clone, Default)]
pub struct Args {
    values: BTreeMap<String, Bound>,
}

/// One bound argument: its normalised text, and its value as its type says.
#[derive(Debug, Clone)]
struct Bound {
    text: String,
    value: Typed,
}

#[derive(Debug, Clone, Copy)]
enum Typed {
    /// A string or a list; the text is the value.
    Text,
    Bool(bool),
    Integer(i64),
    Time(DateTime<Utc>),
}

impl Args {
    /// Binds a parsed command line to `def`: rejects unknown arguments, applies defaults, checks
    /// required arguments, allowed values, booleans (XSOAR's `argToBoolean`) and numbers.
    /// An empty value counts as absent.
    pub fn bind(def: &CommandDef, line: &CommandLine) -> Result<Self, UsageError> {
        let mut given = BTreeMap::new();
        for (name, value) in &line.args {
            let Some(arg) = def.arg(name) else {
                let names: Vec<&str> = def.args.iter().map(|a| a.name.as_str()).collect();
                return Err(UsageError::UnknownArgument {
                    command: def.name.clone(),
                    arg: name.clone(),
                    suggestions: crate::suggest::closest(name, names.iter().copied()),
                    valid: if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    },
                });
            };
            if !value.is_empty() {
                given.insert(arg.name.clone(), value.clone());
            }
        }
        if let Some(value) = &line.bare {
            let Some(arg) = def.args.iter().find(|a| a.default_arg) else {
                return Err(UsageError::NoValue(value.clone()));
            };
            if given.contains_key(&arg.name) || line.args.iter().any(|(k, _)| *k == arg.name) {
                return Err(UsageError::Duplicate(arg.name.clone()));
            }
            if !value.is_empty() {
                given.insert(arg.name.clone(), value.clone());
            }
        }
        let now = Utc::now();
        let mut values = BTreeMap::new();
        for arg in &def.args {
            let value = match (given.remove(&arg.name), &arg.default) {
                (Some(v), _) => v,
                (None, Some(default)) => default.clone(),
                (None, None) if arg.required => {
                    return Err(UsageError::MissingArgument {
                        command: def.name.clone(),
                        arg: arg.name.clone(),
                    });
                }
                (None, None) => continue,
            };
            let bound = if arg.array {
                let mut normalised = Vec::new();
                for item in value.split(',').map(str::trim) {
                    normalised.push(check_value(arg, item, now)?.text);
                }
                Bound {
                    text: normalised.join(","),
                    value: Typed::Text,
                }
            } else {
                check_value(arg, &value, now)?
            };
            values.insert(arg.name.clone(), bound);
        }
        Ok(Args { values })
    }

    /// The value of an argument as text, if given or defaulted.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|b| b.text.as_str())
    }

    /// The value of a boolean argument; absent means false.
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.typed(name), Some(Typed::Bool(true)))
    }

    /// The value of a `number` argument, checked against its range at binding.
    pub fn integer(&self, name: &str) -> Option<i64> {
        match self.typed(name) {
            Some(Typed::Integer(n)) => Some(n),
            _ => None,
        }
    }

    /// The value of a `time` argument; relative times were counted back from binding.
    pub fn time(&self, name: &str) -> Option<DateTime<Utc>> {
        match self.typed(name) {
            Some(Typed::Time(t)) => Some(t),
            _ => None,
        }
    }

    fn typed(&self, name: &str) -> Option<Typed> {
        self.values.get(name).map(|b| b.value)
    }

    /// The items of an array argument; absent means empty.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.str(name)
            .map(|v| v.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(k, v)| (k.as_str(), v.text.as_str()))
    }
}

fn check_value(
    arg: &crate::definition::ArgDef,
    value: &str,
    now: DateTime<Utc>,
) -> Result<Bound, UsageError> {
    let (text, typed) = match arg.kind {
        ArgType::Boolean => match parse_bool(value) {
            Some(b) => (b.to_string(), Typed::Bool(b)),
            None => {
                return Err(UsageError::NotBoolean {
                    arg: arg.name.clone(),
                    value: value.to_string(),
                });
            }
        },
        ArgType::Number => {
            let n = parse_whole(arg, value)?;
            (value.to_string(), Typed::Integer(n))
        }
        ArgType::Time => {
            let t = TimeSpec::parse(value).map_err(|message| UsageError::NotTime {
                arg: arg.name.clone(),
                message,
            })?;
            (value.to_string(), Typed::Time(t.at(now)))
        }
        ArgType::String => (value.to_string(), Typed::Text),
    };
    if !arg.allowed.is_empty() && !arg.allowed.contains(&text) {
        return Err(UsageError::NotAllowed {
            arg: arg.name.clone(),
            value: text,
            allowed: arg.allowed.join(", "),
        });
    }
    Ok(Bound { text, value: typed })
}

/// A `number` argument: a whole number within the definition's `min` and `max`.
fn parse_whole(arg: &crate::definition::ArgDef, value: &str) -> Result<i64, UsageError> {
    let out_of_range = || UsageError::OutOfRange {
        arg: arg.name.clone(),
        value: value.to_string(),
        range: match (arg.min, arg.max) {
            (Some(min), Some(max)) => format!(" from {min} to {max}"),
            (Some(min), None) => format!(" of at least {min}"),
            (None, Some(max)) => format!(" of at most {max}"),
            (None, None) => String::new(),
        },
    };
    match value.trim().parse::<i64>() {
        Ok(n) if arg.min.is_some_and(|min| n < min) || arg.max.is_some_and(|max| n > max) => {
            Err(out_of_range())
        }
        Ok(n) => Ok(n),
        Err(_) if value.trim().parse::<f64>().is_ok_and(f64::is_finite) => Err(out_of_range()),
        Err(_) => Err(UsageError::NotNumber {
            arg: arg.name.clone(),
            value: value.to_string(),
        }),
    }
}

/// XSOAR's `argToBoolean`: true/false/yes/no in any case.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::IntegrationDef;

    const DEF: &str = r#"
id = "t"
display = "T"
description = "test"
[[commands]]
name = "t-transition"
tenancy = { objects = ["aro_id"] }
description = "d"
[[commands.args]]
name = "aro_id"
description = "d"
required = true
[[commands.args]]
name = "resolution"
description = "d"
required = true
allowed = ["Unresolved", "Resolved"]
[[commands.args]]
name = "sensitive"
description = "d"
type = "boolean"
default = "false"
[[commands.args]]
name = "limit"
description = "d"
type = "number"
min = 1
max = 500
[[commands.args]]
name = "since"
description = "d"
type = "time"
default_arg = true
[[commands.args]]
name = "kinds"
description = "d"
array = true
allowed = ["a", "b"]
"#;

    fn check(line: &str, expected: Result<&[(&str, &str)], &str>) {
        let def = IntegrationDef::from_toml(DEF).unwrap();
        let got = CommandLine::parse(line)
            .and_then(|l| Args::bind(&def.commands[0], &l))
            .map(|args| {
                args.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>()
            })
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|pairs| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .map_err(str::to_string);
        assert_eq!(got, expected, "line: {line}");
    }

    #[test]
    fn typed_values_are_parsed_once_at_binding() {
        let def = IntegrationDef::from_toml(DEF).unwrap();
        let line = CommandLine::parse(
            "!t-transition aro_id=1 resolution=Resolved limit=42 since=2024-05-01T00:00:00Z",
        )
        .unwrap();
        let args = Args::bind(&def.commands[0], &line).unwrap();
        assert_eq!(args.integer("limit"), Some(42));
        assert_eq!(
            args.time("since").map(|t| t.to_rfc3339()),
            Some("2024-05-01T00:00:00+00:00".to_string())
        );
        assert!(!args.bool("sensitive"));
        assert_eq!(
            args.integer("aro_id"),
            None,
            "a string argument has no number"
        );
    }

    #[test]
    fn binds_and_validates_arguments() {
        check(
            "!t-transition aro_id=1 resolution=Resolved",
            Ok(&[
                ("aro_id", "1"),
                ("resolution", "Resolved"),
                ("sensitive", "false"),
            ]),
        );
        check(
            "!t-transition aro_id=1 resolution=Resolved sensitive=YES limit=5 kinds=a,b",
            Ok(&[
                ("aro_id", "1"),
                ("resolution", "Resolved"),
                ("sensitive", "true"),
                ("limit", "5"),
                ("kinds", "a,b"),
            ]),
        );
        check(
            "!t-transition aro_id=1 resolution=Resolved sensitive=No",
            Ok(&[
                ("aro_id", "1"),
                ("resolution", "Resolved"),
                ("sensitive", "false"),
            ]),
        );
        check(
            "!t-transition resolution=Resolved",
            Err("missing required argument `aro_id` for `t-transition`"),
        );
        check(
            "!t-transition aro_id= resolution=Resolved",
            Err("missing required argument `aro_id` for `t-transition`"),
        );
        check(
            "!t-transition aro_id=1 resolution=Fixed",
            Err(
                "invalid value `Fixed` for argument `resolution`: allowed values are Unresolved, Resolved",
            ),
        );
        check(
            "!t-transition aro_id=1 resolution=Resolved sensitive=1",
            Err(
                "argument `sensitive` does not contain a valid boolean-like value: `1` (use true, false, yes or no)",
            ),
        );
        check(
            "!t-transition aro_id=1 resolution=Resolved limit=ten",
            Err("argument `limit` is not a number: `ten`"),
        );
        for (limit, error) in [
            (
                "0",
                "argument `limit` must be a whole number from 1 to 500, got `0`",
            ),
            (
                "501",
                "argument `limit` must be a whole number from 1 to 500, got `501`",
            ),
            (
                "-1",
                "argument `limit` must be a whole number from 1 to 500, got `-1`",
            ),
            (
                "2.5",
                "argument `limit` must be a whole number from 1 to 500, got `2.5`",
            ),
        ] {
            check(
                &format!("!t-transition aro_id=1 resolution=Resolved limit={limit}"),
                Err(error),
            );
        }
        check(
            "!t-transition aro_id=1 resolution=Resolved since=yesterday",
            Err(
                "argument `since`: `yesterday` is not a time: use e.g. \"3 days\", \"12 hours ago\" or 2024-05-01T00:00:00Z",
            ),
        );
        // XSOAR's default argument takes a value given without its name.
        check(
            "!t-transition aro_id=1 resolution=Resolved 2024-05-01",
            Ok(&[
                ("aro_id", "1"),
                ("resolution", "Resolved"),
                ("sensitive", "false"),
                ("since", "2024-05-01"),
            ]),
        );
        check(
            "!t-transition aro_id=1 resolution=Resolved 2024-05-01 since=2024-05-02",
            Err("argument `since` is given more than once"),
        );
        check(
            "!t-transition aro_id=1 resolution=Resolved kinds=a,c",
            Err("invalid value `c` for argument `kinds`: allowed values are a, b"),
        );
        check(
            "!t-transition aro=1 resolution=Resolved",
            Err(
                "unknown argument `aro` for `t-transition`; did you mean `aro_id`? (valid arguments: aro_id, resolution, sensitive, limit, since, kinds)",
            ),
        );
    }
}
