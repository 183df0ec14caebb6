//! Command help and integration docs, generated from the definitions so they cannot drift.

use std::fmt::Write;

use crate::definition::{ArgType, CommandDef, IntegrationDef};

/// Plain-text help for one command, as `watchfloor commands NAME` prints it.
pub fn command_help(integration: &IntegrationDef, cmd: &CommandDef) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "!{} ({})\n\n{}\n",
        cmd.name, integration.display, cmd.description
    );
    if cmd.args.is_empty() {
        out.push_str("Arguments: none\n");
    } else {
        out.push_str("Arguments:\n");
        for arg in &cmd.args {
            let _ = writeln!(out, "  {}{}", arg.name, arg_facts(arg));
            for line in arg.description.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    if !cmd.outputs.is_empty() {
        let _ = writeln!(out, "\nContext outputs ({}):", context_key_hint(cmd));
        for o in &cmd.outputs {
            let _ = writeln!(out, "  {} ({}): {}", o.path, o.kind, o.description);
        }
    }
    let _ = writeln!(
        out,
        "\nOrganizations (for a user who does not see every organization): {}",
        cmd.tenancy.describe()
    );
    if let Some(example) = &cmd.example {
        let _ = writeln!(out, "\nExample:\n  {example}");
    }
    out
}

/// A command in a few lines: name, description, arguments (`*` when required) and the context
/// it writes, as `watchfloor commands` lists them.
pub fn command_summary(cmd: &CommandDef) -> String {
    let mut out = format!(
        "  !{}\n      {}\n",
        cmd.name,
        cmd.description.lines().next().unwrap_or_default()
    );
    if !cmd.args.is_empty() {
        let args: Vec<String> = cmd
            .args
            .iter()
            .map(|a| {
                if a.required {
                    format!("{}*", a.name)
                } else {
                    a.name.clone()
                }
            })
            .collect();
        let _ = writeln!(out, "      arguments: {}", args.join(" "));
    }
    if cmd.outputs_prefix.is_some() {
        let _ = writeln!(
            out,
            "      outputs: {} ({} paths)",
            context_key_hint(cmd),
            cmd.outputs.len()
        );
    }
    out
}

fn arg_facts(arg: &crate::definition::ArgDef) -> String {
    let mut facts = Vec::new();
    facts.push(if arg.required {
        "required".to_string()
    } else {
        "optional".to_string()
    });
    match arg.kind {
        ArgType::Boolean => facts.push("boolean".into()),
        ArgType::Number => facts.push(match (arg.min, arg.max) {
            (Some(min), Some(max)) => format!("number, {min} to {max}"),
            (Some(min), None) => format!("number, at least {min}"),
            (None, Some(max)) => format!("number, at most {max}"),
            (None, None) => "number".into(),
        }),
        ArgType::Time => facts.push("time".into()),
        ArgType::String => {}
    }
    if arg.array {
        facts.push("comma-separated list".into());
    }
    if arg.default_arg {
        facts.push("may be given without its name".into());
    }
    if let Some(d) = &arg.default {
        facts.push(format!("default {d}"));
    }
    if !arg.allowed.is_empty() {
        facts.push(format!("one of: {}", arg.allowed.join(", ")));
    }
    format!(" [{}]", facts.join("; "))
}

fn context_key_hint(cmd: &CommandDef) -> String {
    match (&cmd.outputs_prefix, cmd.key_field.is_empty()) {
        (Some(p), false) => format!("{p}, keyed by {}", cmd.key_field.join(" + ")),
        (Some(p), true) => p.clone(),
        (None, _) => "none".into(),
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br/>")
}

/// The markdown reference page of an integration: parameters, commands, arguments, outputs and
/// the reference bugs it fixes.
pub fn integration_markdown(def: &IntegrationDef) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}\n\n<!-- Generated from crates/integrations/src/*/integration.toml by `watchfloor docs`. Do not edit. -->\n\n{}\n",
        def.display, def.description
    );
    let _ = writeln!(out, "Integration id: `{}`\n\n## Parameters\n", def.id);
    out.push_str("| **Name** | **Type** | **Required** | **Default** | **Description** |\n| --- | --- | --- | --- | --- |\n");
    for p in &def.params {
        let default = p
            .default
            .as_ref()
            .map(|d| format!("`{d}`"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            p.name,
            p.kind.as_str(),
            p.required,
            default,
            md_cell(&p.description)
        );
    }
    if let Some(fetch) = &def.fetch {
        let _ = writeln!(
            out,
            "\n## Fetching incidents\n\n{}\n\nDefaults: `first_fetch = \"{}\"`, `fetch_limit = {}`{}, `incident_type = \"{}\"`.",
            fetch.description,
            fetch.first_fetch,
            fetch.limit,
            fetch
                .max_limit
                .map(|m| format!(" (at most {m})"))
                .unwrap_or_default(),
            fetch.incident_type
        );
    }
    if let Some(mirroring) = &def.mirroring {
        let _ = writeln!(
            out,
            "\n## Mirroring\n\n{mirroring}\n\nSet `mirror = \"both\" | \"in\" | \"out\" | \"none\"` on an instance (default `both`); `watchfloor sync` runs one cycle, and `serve` runs one after each fetch."
        );
    }
    if !def.xsoar_params.is_empty() {
        out.push_str("\n## Moving from XSOAR\n\nThe pack's instance parameters, and what to write in `watchfloor.toml` instead:\n\n| **XSOAR parameter** | **Here** |\n| --- | --- |\n");
        for x in &def.xsoar_params {
            let _ = writeln!(out, "| {} | {} |", x.name, md_cell(&x.here));
        }
    }
    out.push_str(ORGANIZATIONS_DOC);
    out.push_str("\n| **Command** | **Binding** |\n| --- | --- |\n");
    for cmd in &def.commands {
        let _ = writeln!(
            out,
            "| {} | {} |",
            cmd.name,
            md_cell(&cmd.tenancy.describe())
        );
    }
    out.push_str("\n## Commands\n");
    for cmd in &def.commands {
        let _ = writeln!(
            out,
            "\n### {}\n\n{}\n\n#### Input\n",
            cmd.name, cmd.description
        );
        if cmd.args.is_empty() {
            out.push_str("There are no input arguments for this command.\n");
        } else {
            out.push_str("| **Argument Name** | **Description** | **Required** | **Default** | **Allowed values** |\n| --- | --- | --- | --- | --- |\n");
            for a in &cmd.args {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    a.name,
                    md_cell(&a.description),
                    match (a.required, a.default_arg) {
                        (true, true) => "Required (default argument)",
                        (true, false) => "Required",
                        (false, true) => "Optional (default argument)",
                        (false, false) => "Optional",
                    },
                    a.default.as_deref().unwrap_or(""),
                    a.allowed.join(", ")
                );
            }
        }
        let _ = writeln!(
            out,
            "\n#### Context Output\n\nContext key: `{}`\n",
            context_key_hint(cmd)
        );
        if cmd.outputs.is_empty() {
            out.push_str("There is no context output for this command.\n");
        } else {
            out.push_str("| **Path** | **Type** | **Description** |\n| --- | --- | --- |\n");
            for o in &cmd.outputs {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    o.path,
                    o.kind,
                    md_cell(&o.description)
                );
            }
        }
        let _ = writeln!(
            out,
            "\n#### Organizations\n\n{}",
            md_cell(&cmd.tenancy.describe())
        );
        if let Some(example) = &cmd.example {
            let _ = writeln!(out, "\n#### Command Example\n\n```\n{example}\n```");
        }
    }
    if !def.fixes.is_empty() {
        out.push_str("\n## Fixed bugs of the reference integration\n\n");
        for fix in &def.fixes {
            let _ = writeln!(out, "- {fix}");
        }
    }
    out
}

/// How the docs explain each command's organization binding.
const ORGANIZATIONS_DOC: &str = "
## Organizations

An MSSP's customers share one installation, so each command says how it binds to
organizations. For a user given organizations (`users create NAME --org Acme`), a command runs
only in one of their incidents, on that incident's instance, and:

- an **organization argument** must name one of the user's organizations (by name, or by the
  provider's id as fetched incidents record it); when it is left out, the incident's
  organization fills it;
- an **object argument** (an alert or ARO) must be one fetched into an incident of the user's
  organizations; anything else is refused before the provider sees a request;
- **results** are kept to the user's organizations by the field named; the entry says how
  many records were withheld;
- an **instance-wide** command is narrowed to the user's organizations where its records name
  them, and refused where they do not.

An instance bound to one organization in the config (`organization = \"Acme\"`) serves only
that organization: its commands run for the users who see it. Users who see every
organization run every command as written.
";

/// An integration's definition as JSON (every command, or `only`): `commands --json` and the
/// API's command list.
pub fn definition_json(
    def: &crate::IntegrationDef,
    only: Option<&crate::CommandDef>,
) -> serde_json::Value {
    use serde_json::json;
    let commands: Vec<serde_json::Value> = def
        .commands
        .iter()
        .filter(|c| only.is_none_or(|o| o.name == c.name))
        .map(|c| {
            json!({
                "name": c.name,
                "description": c.description,
                "arguments": c.args.iter().map(|a| json!({
                    "name": a.name, "description": a.description, "required": a.required,
                    "default": a.default, "allowed": a.allowed, "array": a.array,
                    "type": format!("{:?}", a.kind).to_lowercase(),
                })).collect::<Vec<_>>(),
                "outputs_prefix": c.outputs_prefix,
                "key_field": c.key_field,
                "outputs": c.outputs.iter().map(|o| json!({"path": o.path, "type": o.kind, "description": o.description})).collect::<Vec<_>>(),
                "organizations": c.tenancy.describe(),
            })
        })
        .collect();
    json!({"id": def.id, "display": def.display, "commands": commands})
}
