//! `watchfloor db migrate|copy`: bring a database's schema up to date, and move an
//! installation from one database to another (SQLite to PostgreSQL).

use watchfloor_storage::{SqlStore, redact_url};

use crate::Failure;
use watchfloor_storage::prelude::*;

#[derive(clap::Subcommand)]
pub enum DbAction {
    /// Apply the schema migrations this watchfloor needs (what every other command also does
    /// on open); says which it applied.
    Migrate,
    /// Copy every incident, war room, tombstone, cursor, user and API key from one database
    /// into another, keeping ids. The source is only read.
    Copy {
        /// The database to copy from, e.g. sqlite://./watchfloor-data/watchfloor.db.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The database to copy into, e.g. postgres://watchfloor@db.example/watchfloor.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Delete what the target holds first (without it, a target that is not empty is
        /// refused).
        #[arg(long)]
        replace: bool,
    },
}

pub async fn run(action: DbAction, url: &str) -> Result<String, Failure> {
    let fail = |e: anyhow::Error| Failure::Command(e);
    match action {
        DbAction::Migrate => {
            // A database newer than this watchfloor is a usage matter (exit 2), as it is for
            // every other command: upgrade watchfloor.
            let store = SqlStore::open(url).await.map_err(|e| match e {
                e @ watchfloor_storage::StoreError::NewerSchema { .. } => Failure::Usage(e.into()),
                e => fail(e.into()),
            })?;
            let applied = store.migrations_applied();
            let version = store.schema_version();
            Ok(if applied.is_empty() {
                format!(
                    "{}: schema version {version}, nothing to apply",
                    redact_url(url)
                )
            } else {
                let list: Vec<String> = applied.iter().map(i64::to_string).collect();
                format!(
                    "{}: schema version {version} (applied {})",
                    redact_url(url),
                    list.join(", ")
                )
            })
        }
        DbAction::Copy { from, to, replace } => {
            let source = SqlStore::open_read_only(&from)
                .await
                .map_err(|e| fail(anyhow::Error::from(e).context("cannot read the source")))?;
            let target = SqlStore::open(&to)
                .await
                .map_err(|e| fail(anyhow::Error::from(e).context("cannot open the target")))?;
            let report = watchfloor_storage::copy(&source, &target, replace)
                .await
                .map_err(|e| fail(e.into()))?;
            let rows: Vec<String> = report
                .iter()
                .map(|(table, n)| format!("{n} {}", table.replace('_', " ")))
                .collect();
            Ok(format!(
                "copied {} into {}: {}",
                redact_url(&from),
                redact_url(&to),
                rows.join(", ")
            ))
        }
    }
}

/// `watchfloor cluster status`: the processes serving the database, the leases each holds and
/// how old they are, as markdown tables (or JSON).
pub async fn cluster_status(store: &SqlStore, as_json: bool) -> anyhow::Result<String> {
    use watchfloor_core::table::{TableOptions, table_to_markdown};

    let status = store.cluster().await?;
    if as_json {
        return Ok(serde_json::to_string_pretty(&status)?);
    }
    let seconds = |ms: i64| format!("{:.1}s", ms as f64 / 1000.0);
    let processes: Vec<serde_json::Value> = status
        .processes
        .iter()
        .map(|p| {
            let held = status
                .leases
                .iter()
                .filter(|l| l.holder == p.id && l.expires_ms > status.now_ms)
                .count();
            serde_json::json!({
                "Process": p.id,
                "Host": p.host,
                "PID": p.pid,
                "Last seen": format!("{} ago", seconds(status.now_ms - p.seen_ms)),
                "Up for": seconds(status.now_ms - p.started_ms),
                "Leases": held,
            })
        })
        .collect();
    let leases: Vec<serde_json::Value> = status
        .leases
        .iter()
        .map(|l| {
            let left = l.expires_ms - status.now_ms;
            serde_json::json!({
                "Work": l.scope,
                "Holder": l.holder,
                "Token": l.token,
                "Held for": seconds(status.now_ms - l.acquired_ms),
                "Expires": if left > 0 { format!("in {}", seconds(left)) } else { "expired (free)".into() },
            })
        })
        .collect();
    let headers = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let process_headers = headers(&["Process", "Host", "PID", "Last seen", "Up for", "Leases"]);
    let lease_headers = headers(&["Work", "Holder", "Token", "Held for", "Expires"]);
    let table = |title: &str, rows: Vec<serde_json::Value>, headers: &Vec<String>| {
        table_to_markdown(
            title,
            &serde_json::json!(rows),
            &TableOptions {
                headers: Some(headers),
                ..TableOptions::default()
            },
        )
    };
    Ok(format!(
        "{}\n{}",
        table("Processes", processes, &process_headers),
        table("Leases", leases, &lease_headers)
    ))
}
