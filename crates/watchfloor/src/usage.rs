//! The README's usage block, made from the command-line definitions themselves (a line per
//! command with its arguments and what it does), so that the README cannot drift from them.

use clap::{ArgAction, Command};

/// One line per command that runs (not per group), in the order `--help` lists them.
pub fn lines(root: &Command) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root.get_name(), &mut out);
    out
}

fn walk(cmd: &Command, path: &str, out: &mut Vec<String>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let path = format!("{path} {}", sub.get_name());
        if sub.has_subcommands() {
            walk(sub, &path, out);
            continue;
        }
        let mut line = path;
        for arg in sub.get_arguments() {
            if arg.is_global_set() || arg.is_hide_set() {
                continue;
            }
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            line.push(' ');
            line.push_str(&shown(arg));
        }
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        let first = about
            .split(". ")
            .next()
            .unwrap_or_default()
            .trim_end_matches('.');
        out.push(format!("{line}   # {}", first.replace('\n', " ")));
    }
}

/// An argument as usage shows it: `ID`, `[ID]`, `--flag`, `--opt V`, `--opt a|b`, `...`.
fn shown(arg: &clap::Arg) -> String {
    let value = || {
        let choices: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_string())
            .collect();
        if !choices.is_empty() {
            return choices.join("|");
        }
        arg.get_value_names()
            .and_then(|names| names.first())
            .map(|n| n.to_string())
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase())
    };
    // A value name that says how it repeats (`[ID]... TEXT`) is shown as it is.
    let repeated = matches!(arg.get_action(), ArgAction::Append)
        && !arg
            .get_value_names()
            .is_some_and(|names| names.iter().any(|n| n.contains("...")));
    let body = match arg.get_long() {
        None => value(),
        Some(long) => match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count => format!("--{long}"),
            _ => format!("--{long} {}", value()),
        },
    };
    let required = arg.is_required_set() && arg.get_default_values().is_empty();
    match (required, repeated) {
        (true, false) => body,
        (true, true) => format!("{body}..."),
        (false, false) => format!("[{body}]"),
        (false, true) => format!("[{body}]..."),
    }
}

/// Every option and argument of every command, named by its command, that has no help text.
pub fn undocumented(root: &Command) -> Vec<String> {
    let mut out = Vec::new();
    fn visit(cmd: &Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" || arg.is_hide_set() {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            if sub.get_about().is_none() {
                out.push(format!("{path} {} (the command)", sub.get_name()));
            }
            visit(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }
    visit(root, root.get_name(), &mut out);
    out
}
