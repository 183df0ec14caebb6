//! Working an incident from the CLI: who makes a change, the edits of `incidents update`, the
//! changes themselves (through the store's lifecycle rules), and the war room as a table.

use serde_json::{Value, json};
use watchfloor_core::table::{TableOptions, table_to_markdown};
use watchfloor_core::{Change, Edit, Label, Severity, Status};
use watchfloor_service::{Caller, QueueParams, Selection, Service, ServiceError, ToEach};
use watchfloor_storage::{Store, WarRoomEntry};

use crate::Failure;

/// Who makes a change, and the version it was made against.
#[derive(clap::Args, Debug)]
pub struct ChangeOpts {
    /// The user the change is recorded for (default: the OS user).
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// Refuse the change unless the incident is still at this version.
    #[arg(long, value_name = "VERSION")]
    pub if_version: Option<i64>,
}

/// Which incidents a change to many is for, besides their IDs.
#[derive(clap::Args, Debug)]
pub struct SelectOpts {
    /// Every incident this search matches (XSOAR's query syntax, as `incidents list --query`
    /// takes it), at most 10,000: e.g. `organization:acme severity:low -status:closed`.
    #[arg(long, short, value_name = "Q", allow_hyphen_values = true)]
    pub query: Option<String>,
    /// Change nothing: list the incidents the change would be tried on.
    #[arg(long)]
    pub dry_run: bool,
}

impl ChangeOpts {
    pub fn author(&self) -> String {
        self.as_user
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(os_user)
    }

    /// The CLI acts as a local administrator, recorded under `--as` (or the OS user).
    pub fn caller(&self) -> Caller {
        local(Some(self.author()))
    }
}

/// A local administrator, recorded as `name` (or the OS user).
pub fn local(name: Option<String>) -> Caller {
    Caller::local(&name.unwrap_or_else(os_user))
}

/// The OS user running the CLI, as the war room records it.
fn os_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Who makes a change or runs a command: `--as` naming a user of the store brings that
/// user's role and organizations; otherwise a local administrator recorded under that name.
pub async fn caller_of(store: &dyn Store, opts: &ChangeOpts) -> Result<Caller, Failure> {
    let Some(name) = &opts.as_user else {
        return Ok(opts.caller());
    };
    match store
        .user(name)
        .await
        .map_err(|e| Failure::Command(e.into()))?
    {
        Some(user) if user.disabled => Err(Failure::Usage(anyhow::anyhow!(
            "user `{name}` is disabled; run as another user or without --as"
        ))),
        Some(user) => Ok(Caller::of(&user)),
        None => Ok(opts.caller()),
    }
}

/// What the service refused, as the CLI says it: the caller's mistake or right exits 2, a
/// failure of the store 1.
pub fn failed(e: ServiceError) -> Failure {
    match e.is_callers() {
        true => Failure::Usage(e.into()),
        false => Failure::Command(e.into()),
    }
}

/// The edit `incidents update` asks for.
pub fn edit(
    status: Option<String>,
    severity: Option<String>,
    owner: Option<String>,
    unassign: bool,
    kind: Option<String>,
    labels: Vec<String>,
) -> Result<Edit, String> {
    let labels = labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok(Label {
                kind: k.trim().to_string(),
                value: v.trim().to_string(),
            }),
            _ => Err(format!("label `{l}` is not TYPE=VALUE")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let owner = match (owner, unassign) {
        (Some(o), _) => Some(Some(o)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    Ok(Edit {
        status: status.as_deref().map(Status::parse).transpose()?,
        severity: severity.as_deref().map(Severity::parse).transpose()?,
        owner,
        kind,
        labels,
    })
}

/// Applies a change and says what it did.
pub async fn change(
    store: std::sync::Arc<watchfloor_storage::SqlStore>,
    sla: &watchfloor_core::SlaPolicy,
    id: i64,
    opts: &ChangeOpts,
    change: &Change,
) -> Result<String, Failure> {
    let caller = caller_of(&*store, opts).await?;
    let changed = Service::new(store, sla.clone())
        .change(&caller, id, opts.if_version, change)
        .await
        .map_err(failed)?;
    let (what, _) = words(change);
    Ok(format!(
        "incident {id} {what} (now version {})",
        changed.version
    ))
}

/// `incidents note`'s words: the incidents' IDs, then the note's text (the last word).
pub fn ids_then_text(words: &[String]) -> anyhow::Result<(Vec<i64>, &str)> {
    let Some((text, ids)) = words.split_last() else {
        anyhow::bail!("give the note's text");
    };
    let ids = ids
        .iter()
        .map(|id| {
            id.parse::<i64>().map_err(|_| {
                anyhow::anyhow!(
                    "`{id}` is not an incident ID: give IDs, then the note's text quoted as one word"
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((ids, text))
}

/// Adds a note to one incident and says so.
async fn note(
    store: std::sync::Arc<watchfloor_storage::SqlStore>,
    sla: &watchfloor_core::SlaPolicy,
    id: i64,
    opts: &ChangeOpts,
    text: &str,
    mirror: bool,
) -> Result<String, Failure> {
    let caller = caller_of(&*store, opts).await?;
    let entry = Service::new(store, sla.clone())
        .note_at(&caller, id, opts.if_version, text, mirror)
        .await
        .map_err(failed)?;
    Ok(format!("noted on incident {id} (entry {})", entry.id))
}

/// What a change did and does, as the CLI says it: `closed`, `close`.
fn words(change: &Change) -> (&'static str, &'static str) {
    match change {
        Change::Close { .. } => ("closed", "close"),
        Change::Reopen => ("reopened", "reopen"),
        Change::Update(_) => ("updated", "update"),
    }
}

/// What a change to many did and does, as the CLI says it: `closed`, `close`.
fn words_of(what: &ToEach) -> (&'static str, &'static str) {
    match what {
        ToEach::Change(change) => words(change),
        ToEach::Note { .. } => ("noted", "note"),
    }
}

/// Applies a change (or a note) to one incident, to several by ID, or to every match of
/// `--query`, and says what it did. One incident answers as [`change`] does; several list
/// what changed, and the incidents refused with why, which makes the command fail (exit 2)
/// though the others changed.
pub async fn change_each(
    store: std::sync::Arc<watchfloor_storage::SqlStore>,
    sla: &watchfloor_core::SlaPolicy,
    ids: Vec<i64>,
    select: &SelectOpts,
    opts: &ChangeOpts,
    what: &ToEach,
) -> Result<String, Failure> {
    if select.query.is_some() && !ids.is_empty() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "give the incidents by ID or by --query, not both"
        )));
    }
    if select.query.is_none() && ids.is_empty() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "give the incidents' IDs, or --query for every match of a search"
        )));
    }
    let selection = match &select.query {
        Some(q) => Selection::Matching(Box::new(QueueParams {
            q: Some(q.clone()),
            ..QueueParams::default()
        })),
        None if ids.len() == 1 && !select.dry_run => {
            return match what {
                ToEach::Change(change) => self::change(store, sla, ids[0], opts, change).await,
                ToEach::Note { text, mirror } => {
                    note(store, sla, ids[0], opts, text, *mirror).await
                }
            };
        }
        None => Selection::Ids(ids),
    };
    if opts.if_version.is_some() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--if-version holds for one incident: change several without it"
        )));
    }
    let caller = caller_of(&*store, opts).await?;
    let service = Service::new(store, sla.clone());
    let (done, undone) = words_of(what);
    if select.dry_run {
        let selected = service
            .preview_each(&caller, &selection, what)
            .await
            .map_err(failed)?;
        let table =
            crate::incidents::list(&selected, selected.len(), false).map_err(Failure::Command)?;
        // The table drawn for a terminal, as `incidents list` draws it.
        return Ok(crate::output::present(
            format!(
                "would {undone} {} (nothing changed; each is tried through the same rules as one)\n\n{table}",
                count(selected.len())
            ),
            false,
            false,
        ));
    }
    let (changed, refused) = service
        .to_each_selected(&caller, &selection, what)
        .await
        .map_err(failed)?;
    let ids: Vec<String> = changed.iter().map(|i| i.id.to_string()).collect();
    let mut said = match refused.len() {
        0 => format!("{done} {}", count(changed.len())),
        n => format!("{done} {} of {}", changed.len(), count(changed.len() + n)),
    };
    if !ids.is_empty() {
        said.push_str(&format!(": {}", ids.join(", ")));
    }
    if refused.is_empty() {
        return Ok(said);
    }
    for (_, why) in &refused {
        said.push_str(&format!("\nnot {done}: {why}"));
    }
    Err(Failure::Usage(anyhow::anyhow!(said)))
}

fn count(n: usize) -> String {
    match n {
        1 => "1 incident".into(),
        n => format!("{n} incidents"),
    }
}

/// The war room as a table (or JSON), oldest first.
pub fn entries(
    id: i64,
    entries: &[WarRoomEntry],
    json_out: bool,
    drawn: bool,
) -> anyhow::Result<String> {
    if json_out {
        return Ok(serde_json::to_string_pretty(&entries)?);
    }
    let title = format!("War room of incident {id}");
    if !drawn {
        return Ok(entries_table(&title, entries));
    }
    // For a terminal, each entry's markdown reads as text: emphasis marks dropped, a link as
    // its text and address.
    let plain: Vec<WarRoomEntry> = entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if e.kind == "note" {
                let text =
                    crate::output::markdown_as_text(e.body["text"].as_str().unwrap_or_default());
                e.body["text"] = serde_json::Value::String(text);
            }
            e
        })
        .collect();
    Ok(entries_table(&title, &plain))
}

/// Entries as a markdown table: when, who, what kind, and what.
pub fn entries_table(title: &str, entries: &[WarRoomEntry]) -> String {
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({"Entry": e.id, "When": e.created.format(watchfloor_core::terminal::TIME_FORMAT).to_string(),
                   "Author": e.author, "Kind": e.kind, "What": e.text()})
        })
        .collect();
    let headers: Vec<String> = ["Entry", "When", "Author", "Kind", "What"]
        .map(String::from)
        .to_vec();
    table_to_markdown(
        title,
        &json!(rows),
        &TableOptions {
            headers: Some(&headers),
            ..TableOptions::default()
        },
    )
}
