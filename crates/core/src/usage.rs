//! [`UsageError`]: a command line or argument the user got wrong, shared by the parser
//! ([`crate::cmdline`]) and argument binding ([`crate::args`]).

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
    #[error("argument `{arg}` must be a whole number{range}, got `{value}`")]
    OutOfRange {
        arg: String,
        value: String,
        range: String,
    },
    #[error("argument `{arg}`: {message}")]
    NotTime { arg: String, message: String },
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
