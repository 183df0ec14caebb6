//! [`UsageError`]: a command line or argument the user got wrong, shared by the parser
//! ([`crate::cmdline`]) and argument binding ([`crate::args`]).

/// A command line or argument the user got wrong. Each message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("empty command line: expected `!command arg=value ...`")]
    Empty,
    #[error("expected a command name first, found `{}`", clip(.0))]
    NoCommand(String),
    #[error("argument `{token}` has no value: write it as `{token}=value`", token = clip(.0))]
    NoValue(String),
    #[error("argument with value `{}` has no name", clip(.0))]
    NoArgName(String),
    #[error("argument `{0}` is given more than once")]
    Duplicate(String),
    #[error("unterminated {quote} quote in `{}`: close the quote", clip(.1), quote = .0)]
    UnterminatedQuote(char, String),
    #[error("the command line ends with a lone backslash: escape it as `\\\\`")]
    TrailingBackslash,
    #[error("unknown command `{}`{}", clip(name), did_you_mean(suggestions))]
    UnknownCommand {
        name: String,
        suggestions: Vec<String>,
    },
    #[error(
        "unknown argument `{}` for `{command}`{} (valid arguments: {valid})",
        clip(arg),
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
    #[error(
        "invalid value `{}` for argument `{arg}`: allowed values are {allowed}",
        clip(value)
    )]
    NotAllowed {
        arg: String,
        value: String,
        allowed: String,
    },
    #[error(
        "argument `{arg}` does not contain a valid boolean-like value: `{}` (use true, false, yes or no)",
        clip(value)
    )]
    NotBoolean { arg: String, value: String },
    #[error("argument `{arg}` is not a number: `{}`", clip(value))]
    NotNumber { arg: String, value: String },
    #[error(
        "argument `{arg}` must be a whole number{range}, got `{}`",
        clip(value)
    )]
    OutOfRange {
        arg: String,
        value: String,
        range: String,
    },
    #[error("argument `{arg}`: {message}")]
    NotTime { arg: String, message: String },
    #[error(
        "argument `{arg}` is {len} characters long; the most a value may hold is {MAX_VALUE_CHARS}"
    )]
    TooLong { arg: String, len: usize },
}

/// The longest argument value accepted, in characters.
pub const MAX_VALUE_CHARS: usize = 65_536;

/// User input as an error message quotes it: at most 80 characters, and how long it was.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((cut, _)) => format!("{}… ({} characters)", &s[..cut], s.chars().count()),
        None => s.to_string(),
    }
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
