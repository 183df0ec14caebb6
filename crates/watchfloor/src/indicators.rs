//! `watchfloor indicators`: the indicators found in incidents (list, one with its incidents,
//! reindex), read through the service as `--as` names a user (that user's organizations) or
//! as a local administrator.

use serde_json::json;
use watchfloor_service::Service;
use watchfloor_storage::IndicatorSummary;

use crate::output::headed_table as table;
use crate::work::{ChangeOpts, caller_of, failed};
use crate::{Failure, ListOutput};

#[derive(clap::Subcommand)]
pub enum IndicatorsAction {
    /// Indicators, those of the latest stored incidents first: type, value, incidents, first
    /// and last seen.
    List {
        /// One type only: ip, cidr, domain, url, email, md5, sha1, sha256, host or user.
        #[arg(long = "type", value_name = "T")]
        kind: Option<String>,
        /// One value only.
        #[arg(long, value_name = "V")]
        value: Option<String>,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
        /// Read as this user (that user's organizations only).
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// One indicator and the incidents that hold it (and, for a user of some organizations,
    /// how many other organizations saw it).
    Show {
        /// The indicator, as incidents hold it (defanged forms are read too).
        value: String,
        /// Its type, when a value could be of several.
        #[arg(long = "type", value_name = "T")]
        kind: Option<String>,
        /// Act as this user, as the war room and the audit log record (default: the OS user).
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// Gives an indicator a verdict in the organizations (of `--as`) that hold it:
    /// malicious, suspicious, benign (it then relates no incidents) or unknown (taken back).
    Verdict {
        /// The indicator.
        value: String,
        /// malicious, suspicious, benign or unknown.
        verdict: String,
        /// Its type, when a value could be of several.
        #[arg(long = "type", value_name = "T")]
        kind: Option<String>,
        /// Act as this user, as the war room and the audit log record (default: the OS user).
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
    /// The allow list: values, networks (10.0.0.0/8) and *.domains that are no indicators in
    /// incidents stored from then on (`reindex` applies it to all).
    Allow {
        #[command(subcommand)]
        action: AllowAction,
    },
    /// Finds every incident's indicators again with the config's exclusions as they are now.
    Reindex,
}

#[derive(clap::Subcommand)]
pub enum AllowAction {
    /// The entries, with who added each and when.
    List {
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// Adds an entry.
    Add {
        /// A value, a network (10.0.0.0/8) or a *.domain.
        entry: String,
        /// Act as this user, as the war room and the audit log record (default: the OS user).
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
    /// Removes an entry.
    Remove {
        /// The entry, as `indicators allow list` shows it.
        entry: String,
        /// Act as this user, as the war room and the audit log record (default: the OS user).
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
}

fn json_text(v: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(v)
        .map_err(|e| Failure::Command(anyhow::anyhow!("cannot write JSON: {e}")))
}

/// The verdict, with who gave it, or nothing.
fn verdict(s: &IndicatorSummary) -> String {
    s.verdict
        .as_ref()
        .map(|v| format!("{} ({})", v.verdict, v.by))
        .unwrap_or_default()
}

/// "seen in N other organizations", or nothing.
pub fn elsewhere(s: &IndicatorSummary) -> String {
    match s.other_organizations {
        Some(0) | None => String::new(),
        Some(1) => "seen in 1 other organization".into(),
        Some(n) => format!("seen in {n} other organizations"),
    }
}

/// Runs an `indicators` command; the text to print.
pub async fn run(service: &Service, action: IndicatorsAction) -> Result<String, Failure> {
    let caller = async |as_user: Option<String>| {
        caller_of(
            service.store(),
            &ChangeOpts {
                as_user,
                if_version: None,
            },
        )
        .await
    };
    match action {
        IndicatorsAction::List {
            kind,
            value,
            limit,
            as_user,
            output,
        } => {
            let caller = caller(as_user).await?;
            let found = service
                .indicators(&caller, kind.as_deref(), value.as_deref(), Some(limit))
                .await
                .map_err(failed)?;
            if output == ListOutput::Json {
                return json_text(&found);
            }
            if found.is_empty() {
                return Ok("no indicators in the incidents you can see".into());
            }
            let rows = found
                .iter()
                .map(|s| {
                    json!({"Type": s.kind, "Value": s.value, "Incidents": s.incidents,
                        "First seen": s.first_seen.to_rfc3339(), "Last seen": s.last_seen.to_rfc3339(),
                        "Verdict": verdict(s), "Elsewhere": elsewhere(s)})
                })
                .collect();
            Ok(output.present(table(
                "Indicators",
                rows,
                &[
                    "Type",
                    "Value",
                    "Incidents",
                    "First seen",
                    "Last seen",
                    "Elsewhere",
                ],
            )))
        }
        IndicatorsAction::Show {
            value,
            kind,
            as_user,
            output,
        } => {
            let caller = caller(as_user).await?;
            let found = service
                .indicator(&caller, kind.as_deref(), &value)
                .await
                .map_err(failed)?;
            if output == ListOutput::Json {
                return json_text(&found);
            }
            let s = &found.summary;
            let mut text = table(
                "Indicator",
                vec![
                    json!({"Type": s.kind, "Value": s.value, "Incidents": s.incidents,
                    "First seen": s.first_seen.to_rfc3339(), "Last seen": s.last_seen.to_rfc3339(),
                    "Elsewhere": elsewhere(s)}),
                ],
                &[
                    "Type",
                    "Value",
                    "Incidents",
                    "First seen",
                    "Last seen",
                    "Elsewhere",
                ],
            );
            if !found.found_in.is_empty() {
                text.push_str("\n\n");
                text.push_str(
                    &crate::incidents::list(&found.found_in, found.found_in.len(), false)
                        .map_err(Failure::Command)?,
                );
            }
            Ok(output.present(text))
        }
        IndicatorsAction::Verdict {
            value,
            verdict,
            kind,
            as_user,
        } => {
            let caller = caller(as_user).await?;
            let found = service
                .set_verdict(&caller, kind.as_deref(), &value, &verdict)
                .await
                .map_err(failed)?;
            let s = &found.summary;
            Ok(match &s.verdict {
                Some(v) => format!("{} {} is {} (by {})", s.kind, s.value, v.verdict, v.by),
                None => format!("{} {} has no verdict", s.kind, s.value),
            })
        }
        IndicatorsAction::Allow { action } => match action {
            AllowAction::List { output } => {
                let entries = service
                    .allowlist(&caller(None).await?)
                    .await
                    .map_err(failed)?;
                if output == ListOutput::Json {
                    return json_text(&entries);
                }
                if entries.is_empty() {
                    return Ok("the allow list is empty".into());
                }
                let rows = entries
                    .iter()
                    .map(|e| json!({"Entry": e.entry, "By": e.by, "At": e.at.to_rfc3339()}))
                    .collect();
                Ok(output.present(table("Allow list", rows, &["Entry", "By", "At"])))
            }
            AllowAction::Add { entry, as_user } => {
                let changed = service
                    .change_allowlist(&caller(as_user).await?, &entry, true)
                    .await
                    .map_err(failed)?;
                Ok(if changed {
                    format!(
                        "`{entry}` is on the allow list: incidents stored from now on leave it out (`watchfloor indicators reindex` applies it to all)"
                    )
                } else {
                    format!("`{entry}` was on the allow list already")
                })
            }
            AllowAction::Remove { entry, as_user } => {
                let changed = service
                    .change_allowlist(&caller(as_user).await?, &entry, false)
                    .await
                    .map_err(failed)?;
                Ok(if changed {
                    format!("`{entry}` is off the allow list")
                } else {
                    format!("`{entry}` was not on the allow list")
                })
            }
        },
        IndicatorsAction::Reindex => {
            let caller = caller(None).await?;
            service.reindex_indicators(&caller).await.map_err(failed)?;
            Ok("indicators found again in every incident".into())
        }
    }
}
