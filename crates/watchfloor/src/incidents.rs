//! `watchfloor fetch`, `serve`, `incidents list|show` and `instances health`: the CLI over the
//! fetch engine and the store.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use serde_json::{Value, json};
use tokio::sync::watch;
use watchfloor_core::table::{TableOptions, escape, escape_html, table_to_markdown};
use watchfloor_core::time::parse_time;
use watchfloor_core::{Incident, Severity, Status};
use watchfloor_engine::{Engine, Progress, Steps};
use watchfloor_integrations::Runner;
use watchfloor_storage::{IncidentFilter, SqliteStore, Store};

/// Opens the database: `--db`, else the config's `[storage] url`, else the default.
pub async fn open_store(url: Option<&str>) -> anyhow::Result<Arc<SqliteStore>> {
    let url = url.unwrap_or(watchfloor_storage::DEFAULT_URL);
    Ok(Arc::new(SqliteStore::open(url).await?))
}

/// A channel that turns true on Ctrl-C or SIGTERM.
pub fn stop_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        let _ = tx.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        eprintln!("stopping after the fetch step in flight…");
        let _ = tx.send(true);
    });
    rx
}

/// `watchfloor fetch`: cycles now for the named instance or every fetching one.
pub async fn fetch(
    runner: Arc<Runner>,
    store: Arc<SqliteStore>,
    instance: Option<&str>,
    once: bool,
) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = match instance {
        Some(name) => {
            runner.instance(name)?;
            vec![name.to_string()]
        }
        None => runner
            .fetching_instances()
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    if names.is_empty() {
        return Err(anyhow!(
            "no instance has fetch = true; set it in the config, or name one with --instance"
        ));
    }
    let engine = Engine::new(runner, store);
    let stop = stop_on_signals();
    let steps = if once {
        Steps::One
    } else {
        Steps::UntilCaughtUp
    };
    let mut failed = false;
    for name in names {
        let live = std::io::stderr().is_terminal();
        let progress = |p: &Progress| {
            if live {
                eprint!(
                    "\r{name}: {}{} new incidents…",
                    bar(p.covered),
                    p.new_incidents
                );
                let _ = std::io::stderr().flush();
            }
        };
        let result = engine.cycle(&name, steps, &progress, &stop).await;
        if live {
            eprint!("\r\x1b[K");
        }
        match result {
            Ok(r) => say!(
                "{name}: {} new {} in {} fetch {}",
                r.new_incidents,
                plural(r.new_incidents, "incident", "incidents"),
                r.steps,
                plural(r.steps, "step", "steps")
            ),
            Err(e) => {
                failed = true;
                say!("{name}: failed: {e}");
            }
        }
        if *stop.borrow() {
            break;
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `[#######-------]  48% ` for the share of the fetch window covered.
fn bar(covered: Option<f64>) -> String {
    const WIDTH: usize = 24;
    match covered {
        Some(c) => {
            let filled = ((c * WIDTH as f64).round() as usize).min(WIDTH);
            format!(
                "[{}{}] {:>3.0}% ",
                "#".repeat(filled),
                "-".repeat(WIDTH - filled),
                c * 100.0
            )
        }
        None => String::new(),
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `watchfloor serve`: the scheduler, until Ctrl-C or SIGTERM.
pub async fn serve(
    runner: Arc<Runner>,
    store: Arc<SqliteStore>,
    concurrency: usize,
) -> anyhow::Result<ExitCode> {
    let names = runner
        .fetching_instances()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    if names.is_empty() {
        return Err(anyhow!("no instance has fetch = true; nothing to serve"));
    }
    say!(
        "fetching {} on their intervals; Ctrl-C or SIGTERM stops after the cycle in flight",
        names.join(", ")
    );
    let engine = Arc::new(Engine::new(runner, store));
    engine.serve(concurrency, stop_on_signals()).await;
    say!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Filters of `incidents list`, as the user gave them.
pub struct ListArgs<'a> {
    pub status: Option<&'a str>,
    pub severity: Option<&'a str>,
    pub org: Option<&'a str>,
    pub instance: Option<&'a str>,
    pub since: Option<&'a str>,
    pub limit: usize,
    pub json: bool,
}

pub fn filter(args: &ListArgs<'_>) -> Result<IncidentFilter, String> {
    Ok(IncidentFilter {
        status: args.status.map(Status::parse).transpose()?,
        severity: args.severity.map(Severity::parse).transpose()?,
        organization: args.org.map(str::to_string),
        instance: args.instance.map(str::to_string),
        since: args
            .since
            .map(|t| parse_time(t, chrono::Utc::now()))
            .transpose()?,
        limit: Some(args.limit),
    })
}

fn summary(i: &Incident) -> Value {
    json!({
        "id": i.id, "instance": i.instance, "external_id": i.external_id, "name": i.name, "type": i.kind,
        "severity": i.severity, "severity_label": i.severity_label, "status": i.status, "occurred": i.occurred,
        "organization": i.organization, "owner": i.owner, "details": i.details,
    })
}

pub async fn list(
    store: &dyn Store,
    filter: &IncidentFilter,
    json_out: bool,
) -> anyhow::Result<String> {
    let incidents = store.incidents(filter).await?;
    if json_out {
        return Ok(serde_json::to_string_pretty(
            &incidents.iter().map(summary).collect::<Vec<_>>(),
        )?);
    }
    let rows: Vec<Value> = incidents
        .iter()
        .map(|i| {
            json!({"ID": i.id, "Occurred": i.occurred.format("%Y-%m-%d %H:%M:%SZ").to_string(), "Severity": i.severity_label,
                   "Status": i.status.as_str(), "Instance": i.instance, "Organization": i.organization, "Name": i.name})
        })
        .collect();
    let headers: Vec<String> = [
        "ID",
        "Occurred",
        "Severity",
        "Status",
        "Instance",
        "Organization",
        "Name",
    ]
    .map(String::from)
    .to_vec();
    let title = format!("Incidents ({})", incidents.len());
    Ok(table_to_markdown(
        &title,
        &json!(rows),
        &TableOptions {
            headers: Some(&headers),
            ..TableOptions::default()
        },
    ))
}

pub async fn show(store: &dyn Store, id: i64, json_out: bool) -> anyhow::Result<String> {
    let incident = store.incident(id).await?.with_context(|| {
        format!("no incident with id {id}; `watchfloor incidents list` shows the ids")
    })?;
    if json_out {
        return Ok(serde_json::to_string_pretty(&incident)?);
    }
    let labels: Vec<String> = incident
        .labels
        .iter()
        .map(|l| format!("{}: {}", l.kind, l.value))
        .collect();
    let fields = [
        ("ID", json!(incident.id)),
        ("Instance", json!(incident.instance)),
        ("Integration", json!(incident.integration)),
        ("External ID", json!(incident.external_id)),
        ("Type", json!(incident.kind)),
        (
            "Severity",
            json!(format!(
                "{} ({})",
                incident.severity_label,
                incident.severity.value()
            )),
        ),
        ("Status", json!(incident.status.as_str())),
        ("Occurred", json!(incident.occurred.to_rfc3339())),
        ("Created", json!(incident.created.to_rfc3339())),
        ("Organization", json!(incident.organization)),
        ("Owner", json!(incident.owner)),
        ("Labels", json!(labels)),
    ];
    let rows: Vec<Value> = fields
        .into_iter()
        .map(|(k, v)| json!({"Field": k, "Value": v}))
        .collect();
    let headers = vec!["Field".to_string(), "Value".to_string()];
    let mut out = table_to_markdown(
        &escape(&incident.name),
        &json!(rows),
        &TableOptions {
            headers: Some(&headers),
            ..TableOptions::default()
        },
    );
    if !incident.details.is_empty() {
        out.push_str(&format!(
            "\n#### Details\n{}\n",
            escape_html(&incident.details)
        ));
    }
    Ok(out)
}

pub async fn health(store: &dyn Store) -> anyhow::Result<String> {
    let rows: Vec<Value> = store
        .health()
        .await?
        .iter()
        .map(|h| {
            let t = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string());
            json!({"Instance": h.instance, "Last success": t(h.last_success), "Consecutive failures": h.consecutive_failures,
                   "New in last cycle": h.incidents_last_cycle, "Last error": h.last_error, "Last error at": t(h.last_error_at)})
        })
        .collect();
    let headers: Vec<String> = [
        "Instance",
        "Last success",
        "Consecutive failures",
        "New in last cycle",
        "Last error",
        "Last error at",
    ]
    .map(String::from)
    .to_vec();
    Ok(table_to_markdown(
        "Instance health",
        &json!(rows),
        &TableOptions {
            headers: Some(&headers),
            ..TableOptions::default()
        },
    ))
}
