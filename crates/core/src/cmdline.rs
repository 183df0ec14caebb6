//! The XSOAR command line: `!name a=b c="quoted value" d='x' e=1,2 using=instance`.
//!
//! Quoting: a value may be wrapped in double or single quotes, and quotes may start mid-token
//! (`a="x y"`). A backslash makes the next character literal, inside or outside quotes, so
//! `a="say \"hi\""` gives `say "hi"`. `using=<instance>` picks the instance and is not an argument.

use crate::usage::UsageError;

/// A command line split into its command name, its arguments in order, and the chosen instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub name: String,
    pub args: Vec<(String, String)>,
    pub using: Option<String>,
    /// A value given without a name, for the command's default argument (`!cmd 123`).
    pub bare: Option<String>,
}

impl CommandLine {
    /// Parses a command line. The leading `!` is optional.
    pub fn parse(input: &str) -> Result<Self, UsageError> {
        let input = input.trim();
        let input = input.strip_prefix('!').unwrap_or(input);
        let mut tokens = tokenize(input)?.into_iter();
        let name = match tokens.next() {
            Some(t) if !t.had_equals && !t.text.is_empty() => t.text,
            Some(t) => return Err(UsageError::NoCommand(t.text)),
            None => return Err(UsageError::Empty),
        };
        let mut args = Vec::new();
        let mut using = None;
        let mut bare: Option<String> = None;
        for token in tokens {
            let Some((key, value)) = token.key_value() else {
                // One value without a name may go to the default argument; binding decides.
                if bare.is_some() {
                    return Err(UsageError::NoValue(token.text));
                }
                let len = token.text.chars().count();
                if len > crate::usage::MAX_VALUE_CHARS {
                    return Err(UsageError::TooLong {
                        arg: "(without a name)".into(),
                        len,
                    });
                }
                bare = Some(token.text);
                continue;
            };
            if key.is_empty() {
                return Err(UsageError::NoArgName(value));
            }
            let len = value.chars().count();
            if len > crate::usage::MAX_VALUE_CHARS {
                return Err(UsageError::TooLong { arg: key, len });
            }
            if key == "using" {
                if using.is_some() {
                    return Err(UsageError::Duplicate(key));
                }
                using = Some(value);
            } else if args.iter().any(|(k, _)| *k == key) {
                return Err(UsageError::Duplicate(key));
            } else {
                args.push((key, value));
            }
        }
        Ok(CommandLine {
            name,
            args,
            using,
            bare,
        })
    }
}

impl CommandLine {
    /// The value given for `arg`: by name, or without a name when `arg` is `def`'s default
    /// argument. An empty value counts as not given, as binding counts it.
    pub fn value_of(&self, def: &crate::CommandDef, arg: &str) -> Option<&str> {
        let named = self
            .args
            .iter()
            .find(|(k, _)| k == arg)
            .map(|(_, v)| v.as_str());
        let bare = match def.arg(arg) {
            Some(a) if a.default_arg => self.bare.as_deref(),
            _ => None,
        };
        named.or(bare).filter(|v| !v.is_empty())
    }

    /// Sets `arg` to `value`, in place of the value given by name or without a name.
    pub fn set(&mut self, def: &crate::CommandDef, arg: &str, value: String) {
        if def.arg(arg).is_some_and(|a| a.default_arg) && self.bare.is_some() {
            self.bare = Some(value);
            return;
        }
        match self.args.iter_mut().find(|(k, _)| k == arg) {
            Some((_, v)) => *v = value,
            None => self.args.push((arg.to_string(), value)),
        }
    }

    /// Every value given, named or not, for rewriting (`${...}` references).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.args
            .iter_mut()
            .map(|(_, v)| v)
            .chain(self.bare.as_mut())
    }
}

/// One whitespace-separated token, with where its first unquoted `=` fell.
struct Token {
    text: String,
    /// Byte offset of the first unquoted `=` in `text`.
    equals_at: Option<usize>,
    had_equals: bool,
}

impl Token {
    fn key_value(&self) -> Option<(String, String)> {
        let at = self.equals_at?;
        Some((self.text[..at].to_string(), self.text[at + 1..].to_string()))
    }
}

fn tokenize(input: &str) -> Result<Vec<Token>, UsageError> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(tokens);
        }
        let mut text = String::new();
        let mut equals_at = None;
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => match chars.next() {
                    Some(next) => text.push(next),
                    None => return Err(UsageError::TrailingBackslash),
                },
                (q, None) if q == '"' || q == '\'' => quote = Some(q),
                (q, Some(open)) if q == open => quote = None,
                (c, None) if c.is_whitespace() => break,
                ('=', None) if equals_at.is_none() => {
                    equals_at = Some(text.len());
                    text.push('=');
                }
                (c, _) => text.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(UsageError::UnterminatedQuote(q, text));
        }
        tokens.push(Token {
            had_equals: equals_at.is_some(),
            text,
            equals_at,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected parse: command name, arguments, and the `using=` instance.
    type Parsed<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);

    fn check(input: &str, expected: Result<Parsed<'_>, &str>) {
        let got = CommandLine::parse(input).map_err(|e| e.to_string());
        let expected = expected
            .map(|(name, args, using)| CommandLine {
                name: name.to_string(),
                args: args
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                using: using.map(str::to_string),
                bare: None,
            })
            .map_err(str::to_string);
        assert_eq!(got, expected, "input: {input}");
    }

    /// Regression (hardening 12): a second `using=` won silently, and a 100 KB value came back
    /// in a 200 KB one-line error.
    #[test]
    fn duplicate_instances_and_huge_values_are_refused() {
        check(
            "!x using=a using=b",
            Err("argument `using` is given more than once"),
        );
        let huge = "x".repeat(100_000);
        check(
            &format!("!x a={huge}"),
            Err("argument `a` is 100000 characters long; the most a value may hold is 65536"),
        );
        check(
            &format!("!x {huge}"),
            Err(
                "argument `(without a name)` is 100000 characters long; the most a value may hold is 65536",
            ),
        );
        let long = "y".repeat(5_000);
        let err = CommandLine::parse(&format!("!x a {long}"))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 400, "{}", &err[..400.min(err.len())]);
        assert!(
            err.ends_with("… (5000 characters)=value`"),
            "{}",
            &err[..400.min(err.len())]
        );
    }

    #[test]
    fn parses_xsoar_command_lines() {
        check("!cov-mgsec-list-org", Ok(("cov-mgsec-list-org", &[], None)));
        check(
            "  cov-mgsec-list-org  ",
            Ok(("cov-mgsec-list-org", &[], None)),
        );
        check(
            r#"!name a=b c="quoted value" d='x' e=1,2"#,
            Ok((
                "name",
                &[("a", "b"), ("c", "quoted value"), ("d", "x"), ("e", "1,2")],
                None,
            )),
        );
        check(
            r#"!cov-mgsec-get-aro query="resolution=Unresolved&type=Action" using=fes"#,
            Ok((
                "cov-mgsec-get-aro",
                &[("query", "resolution=Unresolved&type=Action")],
                Some("fes"),
            )),
        );
        check(
            r#"!x a="say \"hi\"" b=it\'s c='a "b"' d=one\ two e="""#,
            Ok((
                "x",
                &[
                    ("a", r#"say "hi""#),
                    ("b", "it's"),
                    ("c", r#"a "b""#),
                    ("d", "one two"),
                    ("e", ""),
                ],
                None,
            )),
        );
        check(r#"!x "a b"=c"#, Ok(("x", &[("a b", "c")], None)));
        check("!x q=a=b", Ok(("x", &[("q", "a=b")], None)));
        check("!x q=\"a\nb\"", Ok(("x", &[("q", "a\nb")], None)));
    }

    #[test]
    fn rejects_malformed_command_lines() {
        check(
            "",
            Err("empty command line: expected `!command arg=value ...`"),
        );
        check(
            "!",
            Err("empty command line: expected `!command arg=value ...`"),
        );
        // One value without a name may be the default argument's (binding decides); a second
        // is an argument with no value.
        check(
            "!x a b",
            Err("argument `b` has no value: write it as `b=value`"),
        );
        check(
            r#"!x a="open"#,
            Err("unterminated \" quote in `a=open`: close the quote"),
        );
        check("!x a=1 a=2", Err("argument `a` is given more than once"));
        check(
            r"!x a=1\",
            Err("the command line ends with a lone backslash: escape it as `\\\\`"),
        );
        check("!a=b", Err("expected a command name first, found `a=b`"));
        check("!x =v", Err("argument with value `v` has no name"));
    }
}
