//! Binding a parsed command line to a command definition, with XSOAR's argument rules.

use std::collections::BTreeMap;

use crate::cmdline::CommandLine;
use crate::definition::{ArgType, CommandDef};

/// A command line or argument the user got wrong. Each message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("empty command line: expected `!command arg=value ...`")]
    Empty,
    #[error("expected a command name first, found `{0}`")]
    NoCommand(String),
    #[error("argument `{0}` has no value: write it as `{0}=value`")]
    NoValue(String),
    #[error("argument with value `{0}` has no name")]
    NoArgName(String),
    #[error("argument `{0}` is given more than once")]
    Duplicate(String),
    #[error("unterminated {0} quote in `{1}`: close the quote")]
    UnterminatedQuote(char, String),
    #[error("the command line ends with a lone backslash: escape it as `\\\\`")]
    TrailingBackslash,
    #[error("unknown command `{name}`{}", did_you_mean(suggestions))]
    UnknownCommand {
        name: String,
        suggestions: Vec<String>,
    },
    #[error(
        "unknown argument `{arg}` for `{command}`{} (valid arguments: {valid})",
        did_you_mean(suggestions)
    )]
    UnknownArgument {
        command: String,
        arg: String,
        suggestions: Vec<String>,
        valid: String,
    },
    #[error("missing required argument `{arg}` for `{command}`")]
    MissingArgument { command: String, arg: String },
    #[error("invalid value `{value}` for argument `{arg}`: allowed values are {allowed}")]
    NotAllowed {
        arg: String,
        value: String,
        allowed: String,
    },
    #[error(
        "argument `{arg}` does not contain a valid boolean-like value: `{value}` (use true, false, yes or no)"
    )]
    NotBoolean { arg: String, value: String },
    #[error("argument `{arg}` is not a number: `{value}`")]
    NotNumber { arg: String, value: String },
}

impl UsageError {
    /// An unknown command, with the closest of the `known` names as suggestions.
    pub fn unknown_command<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Self {
        UsageError::UnknownCommand {
            name: name.to_string(),
            suggestions: crate::suggest::closest(name, known),
        }
    }
}

fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        many => format!(
            "; did you mean one of {}?",
            many.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Validated arguments of one command run: defaults applied, booleans normalised to
/// `true`/`false`, numbers and allowed values checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    values: BTreeMap<String, String>,
}

impl Args {
    /// Binds a parsed command line to `def`: rejects unknown arguments, applies defaults, checks
    /// required arguments, allowed values, booleans (XSOAR's `argToBoolean`) and numbers.
    /// An empty value counts as absent.
    pub fn bind(def: &CommandDef, line: &CommandLine) -> Result<Self, UsageError> {
        let mut values = BTreeMap::new();
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
                values.insert(arg.name.clone(), value.clone());
            }
        }
        for arg in &def.args {
            let value = match (values.remove(&arg.name), &arg.default) {
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
            let items: Vec<&str> = if arg.array {
                value.split(',').map(str::trim).collect()
            } else {
                vec![value.as_str()]
            };
            let mut normalised = Vec::with_capacity(items.len());
            for item in items {
                normalised.push(check_value(arg, item)?);
            }
            values.insert(arg.name.clone(), normalised.join(","));
        }
        Ok(Args { values })
    }

    /// Arguments from name/value pairs, unchecked; for callers that build arguments in code.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Args {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The value of a string argument, if given or defaulted.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of a boolean argument; absent means false.
    pub fn bool(&self, name: &str) -> bool {
        self.str(name).and_then(parse_bool).unwrap_or(false)
    }

    /// The items of an array argument; absent means empty.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.str(name)
            .map(|v| v.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn check_value(arg: &crate::definition::ArgDef, value: &str) -> Result<String, UsageError> {
    let value = match arg.kind {
        ArgType::Boolean => match parse_bool(value) {
            Some(b) => b.to_string(),
            None => {
                return Err(UsageError::NotBoolean {
                    arg: arg.name.clone(),
                    value: value.to_string(),
                });
            }
        },
        ArgType::Number => {
            if value.parse::<f64>().map(f64::is_finite) != Ok(true) {
                return Err(UsageError::NotNumber {
                    arg: arg.name.clone(),
                    value: value.to_string(),
                });
            }
            value.to_string()
        }
        ArgType::String => value.to_string(),
    };
    if !arg.allowed.is_empty() && !arg.allowed.contains(&value) {
        return Err(UsageError::NotAllowed {
            arg: arg.name.clone(),
            value,
            allowed: arg.allowed.join(", "),
        });
    }
    Ok(value)
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
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|pairs| Args::from_pairs(pairs.iter().copied()))
            .map_err(str::to_string);
        assert_eq!(got, expected, "line: {line}");
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
        check(
            "!t-transition aro_id=1 resolution=Resolved kinds=a,c",
            Err("invalid value `c` for argument `kinds`: allowed values are a, b"),
        );
        check(
            "!t-transition aro=1 resolution=Resolved",
            Err(
                "unknown argument `aro` for `t-transition`; did you mean `aro_id`? (valid arguments: aro_id, resolution, sensitive, limit, kinds)",
            ),
        );
    }
}
