//! `watchfloor rules`: import, export, list, show, enable and disable automation rules, and
//! test one against an incident or back-test it over past incidents.

use std::path::PathBuf;

use serde_json::json;
use watchfloor_service::Service;

use crate::output::headed_table as table;
use crate::work::{failed, local};
use crate::{Failure, ListOutput};

#[derive(clap::Subcommand)]
pub enum RulesAction {
    /// Check a rule file whole, then store it: its rules replace those of the same names, or
    /// with --replace it becomes the whole set. Errors name the rule, line and key.
    Import {
        /// The rule file (TOML, `[[rules]]`).
        file: PathBuf,
        /// Make the file the whole set: rules not in it are removed.
        #[arg(long)]
        replace: bool,
    },
    /// Every rule as one file (to FILE, or standard output), as import takes it back.
    Export {
        /// Where to write (default: standard output).
        file: Option<PathBuf>,
    },
    /// The rules in the order they run: name, triggers, mode, enabled.
    List {
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// One rule: its TOML, and whether it is enabled.
    Show {
        /// The rule's name.
        name: String,
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// Switch a rule on: it acts on events from now on.
    Enable {
        /// The rule's name.
        name: String,
    },
    /// Switch a rule off: it acts on nothing until enabled again.
    Disable {
        /// The rule's name.
        name: String,
    },
    /// What the rule would do to an incident now, doing nothing.
    Test {
        /// The rule's name.
        name: String,
        /// The incident's ID.
        #[arg(long, value_name = "ID")]
        incident: i64,
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// How many incidents created since T the rule's condition matches, with the first 20.
    Backtest {
        /// The rule's name.
        name: String,
        /// e.g. `30 days` or 2026-11-01T00:00:00Z.
        #[arg(long, value_name = "T", default_value = "30 days")]
        since: String,
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
}

fn usage(message: String) -> Failure {
    Failure::Usage(anyhow::anyhow!(message))
}

fn json_text(v: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(v)
        .map_err(|e| Failure::Command(anyhow::anyhow!("cannot write JSON: {e}")))
}

/// Runs a `rules` command as a local administrator; the text to print.
pub async fn run(service: &Service, action: RulesAction) -> Result<String, Failure> {
    let admin = local(None);
    match action {
        RulesAction::Import { file, replace } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
            let names = service
                .import_rules(&admin, &text, replace)
                .await
                .map_err(|e| usage(format!("{}: {e}", file.display())))?;
            Ok(format!(
                "imported {} {}: {}",
                names.len(),
                if names.len() == 1 { "rule" } else { "rules" },
                names.join(", ")
            ))
        }
        RulesAction::Export { file } => {
            let text = service.export_rules(&admin).await.map_err(failed)?;
            match file {
                Some(path) => {
                    std::fs::write(&path, &text).map_err(|e| {
                        Failure::Command(anyhow::anyhow!("cannot write {}: {e}", path.display()))
                    })?;
                    Ok(format!("wrote the rules to {}", path.display()))
                }
                None => Ok(text),
            }
        }
        RulesAction::List { output } => {
            let rules = service.rules(&admin).await.map_err(failed)?;
            if output == ListOutput::Json {
                return json_text(&rules);
            }
            let rows = rules
                .iter()
                .map(|r| {
                    let enabled = match (&r.stored.enabled, &r.stored.disabled_reason) {
                        (true, _) => "yes".to_string(),
                        (false, Some(why)) => format!("no: {why}"),
                        (false, None) => "no".to_string(),
                    };
                    json!({"Name": r.stored.name, "On": r.on.join(", "), "When": r.when,
                           "Actions": r.actions.join(", "), "Mode": r.mode, "Enabled": enabled})
                })
                .collect();
            Ok(output.present(table(
                "Rules",
                rows,
                &["Name", "On", "When", "Actions", "Mode", "Enabled"],
            )))
        }
        RulesAction::Show { name, output } => {
            let (stored, rule) = service.rule(&admin, &name).await.map_err(failed)?;
            if output == ListOutput::Json {
                return json_text(&stored);
            }
            let state = match (stored.enabled, &stored.disabled_reason) {
                (true, _) => "enabled".to_string(),
                (false, Some(why)) => format!("disabled: {why}"),
                (false, None) => "disabled".to_string(),
            };
            Ok(format!(
                "# {state}; changed by {} at {}\n{}",
                stored.updated_by,
                stored.updated.to_rfc3339(),
                rule.to_toml()
            ))
        }
        RulesAction::Enable { name } => {
            service
                .set_rule_enabled(&admin, &name, true)
                .await
                .map_err(failed)?;
            Ok(format!("enabled {name}"))
        }
        RulesAction::Disable { name } => {
            service
                .set_rule_enabled(&admin, &name, false)
                .await
                .map_err(failed)?;
            Ok(format!("disabled {name}"))
        }
        RulesAction::Test {
            name,
            incident,
            output,
        } => {
            let plan = service
                .test_rule(&admin, &name, incident)
                .await
                .map_err(failed)?;
            if output == ListOutput::Json {
                return json_text(&plan);
            }
            let head = match plan.matched {
                true => format!("rule {name} matches incident {incident}; it would:"),
                false => {
                    format!("rule {name} does not match incident {incident}; if it did, it would:")
                }
            };
            let lines: Vec<String> = plan.actions.iter().map(|a| format!("- {a}")).collect();
            Ok(format!("{head}\n{}", lines.join("\n")))
        }
        RulesAction::Backtest {
            name,
            since,
            output,
        } => {
            let since = watchfloor_core::time::parse_time(&since, chrono::Utc::now())
                .map_err(|e| usage(format!("--since: {e}")))?;
            let result = service
                .backtest_rule(&admin, &name, since)
                .await
                .map_err(failed)?;
            if output == ListOutput::Json {
                return json_text(&result);
            }
            let rows = result
                .first
                .iter()
                .map(|(id, name)| json!({"ID": id, "Name": name}))
                .collect();
            let count = match result.capped {
                true => format!("more than {}", result.matched),
                false => result.matched.to_string(),
            };
            let noun = if result.matched == 1 && !result.capped {
                "incident"
            } else {
                "incidents"
            };
            Ok(output.present(format!(
                "rule {name} matches {count} {noun} created since {}\n\n{}",
                since.to_rfc3339(),
                table("The first 20", rows, &["ID", "Name"])
            )))
        }
    }
}
