//! `watchfloor db migrate|copy`: bring a database's schema up to date, and move an
//! installation from one database to another (SQLite to PostgreSQL).

use watchfloor_storage::{SqlStore, redact_url};

use crate::Failure;

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
            let store = SqlStore::open(url).await.map_err(|e| fail(e.into()))?;
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
