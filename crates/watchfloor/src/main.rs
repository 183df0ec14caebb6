//! The `watchfloor` command-line program: thin glue over the core, integrations and simulators.
//!
//! Exit codes: 0 ok, 1 provider or command failure, 2 usage or configuration error.

#[macro_use]
mod output;
mod db;
mod fetch;
mod incidents;
mod indicators;
mod notify;
mod report;
mod rules;
#[cfg(feature = "simulators")]
mod simulate;
#[cfg(test)]
mod usage;
mod users;
mod work;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use watchfloor_core::table::terminal_safe;
use watchfloor_core::{Config, docs};
use watchfloor_integrations::{RunError, Runner};

#[derive(Parser)]
#[command(
    name = "watchfloor",
    version,
    about = "MSSP alerts as incidents, and every provider command, without XSOAR"
)]
struct Cli {
    /// Config file. Default: $WATCHFLOOR_CONFIG, then ./watchfloor.toml.
    #[arg(long, global = true, env = "WATCHFLOOR_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database URL. Default: the config's [storage] url, then sqlite://./watchfloor-data/watchfloor.db.
    #[arg(long, global = true, env = "WATCHFLOOR_DB", value_name = "URL")]
    db: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List integrations and their commands, or show one command's arguments and outputs.
    Commands {
        /// A command name, as `watchfloor commands` lists them.
        name: Option<String>,
        /// Print the definitions as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run an XSOAR-style command line: '!command arg=value arg2="quoted value"'.
    Run {
        /// The instance to run on (same as using=NAME in the command line).
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// md: readable markdown; json: the whole entry; context: the entry context.
        #[arg(long, value_enum, default_value_t = Output::Auto)]
        output: Output,
        /// The command line.
        line: String,
    },
    /// Manage configured instances.
    Instances {
        #[command(subcommand)]
        action: InstancesAction,
    },
    /// Run the provider simulators in the foreground and write DIR/watchfloor.toml for them.
    #[cfg(feature = "simulators")]
    Simulate(simulate::SimulateArgs),
    /// Start the simulators with a config in ./watchfloor-demo/ and print commands to try.
    #[cfg(feature = "simulators")]
    Demo {
        /// Where to write the demo config.
        #[arg(long, default_value = "watchfloor-demo")]
        dir: PathBuf,
        /// Where the web UI answers (another free port if this one is taken).
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: std::net::SocketAddr,
    },
    /// Run the service: fetch and mirror every instance on its interval, serve the web UI and
    /// the HTTP API (with XSOAR's), run the rules and send notifications and reports, until
    /// SIGTERM (which stops it within 2 s).
    Serve {
        /// Fetch cycles running at the same time.
        #[arg(long, value_name = "N", default_value_t = 4)]
        concurrency: usize,
        /// Also serve the HTTP API on this address, e.g. 127.0.0.1:8080; overrides
        /// `[server] listen`.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Users of the API: create, list, disable, enable, and API keys.
    Users {
        #[command(subcommand)]
        action: users::UsersAction,
    },
    /// Automation rules: import, export, list, show, enable, disable, test and back-test.
    Rules {
        #[command(subcommand)]
        action: rules::RulesAction,
    },
    /// Notification channels (the config's [[channels]]): list them with their state, send a
    /// test message.
    Channels {
        #[command(subcommand)]
        action: notify::ChannelsAction,
    },
    /// Notifications that rules queued, and how their delivery went.
    Notifications {
        #[command(subcommand)]
        action: notify::NotificationsAction,
    },
    /// Indicators found in incidents (IPs, domains, URLs, e-mails, hashes, hosts, users):
    /// list them, show one with its incidents, reindex after changing the exclusions.
    Indicators {
        #[command(subcommand)]
        action: indicators::IndicatorsAction,
    },
    /// How well each provider and your analysts did in a period, from both sides' timestamps:
    /// volume by severity, delivery lag, times to assign and close (medians and 90th
    /// percentiles), the share closed as false positive or duplicate, SLA compliance and open
    /// breaches; for all, and per instance, organization and type (docs/reports.md).
    Report(report::ReportArgs),
    /// The audit log, newest first: logins (with the address), sessions ended, API keys made
    /// and revoked, users made, changed, disabled and enabled.
    Audit {
        /// Only events from this time on: e.g. `1 day`, or 2026-12-01T00:00:00Z.
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// Fetch incidents now, for one instance or every instance with fetch = true. Scopes that
    /// a running `serve` is fetching are left to it.
    Fetch {
        /// Only this instance (default: every instance with fetch = true).
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// One fetch step per scope, rather than until caught up.
        #[arg(long)]
        once: bool,
    },
    /// One mirroring cycle: push local changes to the providers, read theirs. An instance that
    /// a running `serve` is mirroring is left to it.
    Sync {
        /// Only this instance (default: every instance).
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// One cycle, then exit (what `sync` always does; accepted for scripts that say so).
        #[arg(long)]
        once: bool,
    },
    /// The processes serving one database together, and the work each holds.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// The database: apply migrations, or copy one database into another.
    Db {
        #[command(subcommand)]
        action: db::DbAction,
    },
    /// Work stored incidents: list, show, change, close, and their war room.
    Incidents {
        #[command(subcommand)]
        action: IncidentsAction,
    },
    /// Write the integration reference docs (one markdown file per integration) into DIR.
    Docs {
        /// Where to write them.
        #[arg(default_value = "docs/integrations")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum IncidentsAction {
    /// Incidents, newest first.
    List {
        /// pending, active or closed; several as a list: pending,active.
        #[arg(long, value_name = "S")]
        status: Option<String>,
        /// A severity label or number (Unknown, Informational, Low, Medium, High, Critical), a
        /// list (high,critical), or that level and above (high+).
        #[arg(long, value_name = "S")]
        severity: Option<String>,
        /// Organization name, in any case.
        #[arg(long)]
        org: Option<String>,
        /// Only this instance's incidents.
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// Occurred at or after: e.g. "3 days" or 2024-05-01T00:00:00Z.
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Fetched (stored) at or after: e.g. "1 hour".
        #[arg(long, value_name = "T")]
        fetched_since: Option<String>,
        /// Only this user's incidents; "" for the unassigned.
        #[arg(long, value_name = "USER")]
        owner: Option<String>,
        /// ok, at-risk or breached.
        #[arg(long, value_name = "ok|at-risk|breached")]
        sla: Option<String>,
        /// A search in XSOAR's query syntax: e.g. `-status:closed owner:"" phishing`.
        #[arg(long, value_name = "Q", short, allow_hyphen_values = true)]
        query: Option<String>,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// One incident: its fields, lifecycle, SLA and latest war-room entries.
    Show {
        /// The incident's ID, as `incidents list` shows it.
        id: i64,
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// Make an incident by hand.
    Create {
        /// Its name, as the queue shows it.
        #[arg(long)]
        name: String,
        /// A severity label or number.
        #[arg(long, value_name = "S")]
        severity: String,
        /// The organization it belongs to (who may see it).
        #[arg(long)]
        org: Option<String>,
        /// The incident type.
        #[arg(long = "type", default_value = "Manual")]
        kind: String,
        /// Its description.
        #[arg(long, value_name = "TEXT", default_value = "")]
        details: String,
        /// The source record it was made from, as JSON (`@FILE` reads a file): kept as a
        /// fetched incident's raw record, and searched for indicators.
        #[arg(long, value_name = "JSON")]
        raw: Option<String>,
        #[command(flatten)]
        who: work::ChangeOpts,
    },
    /// Change incidents' status (pending or active), severity, owner, type or labels: by ID,
    /// or every match of --query.
    Update {
        /// The incidents' IDs, as `incidents list` shows them.
        #[arg(value_name = "ID", required_unless_present = "query")]
        ids: Vec<i64>,
        #[command(flatten)]
        select: work::SelectOpts,
        /// pending or active; closing takes `close`.
        #[arg(long, value_name = "S")]
        status: Option<String>,
        /// A severity label or number.
        #[arg(long, value_name = "S")]
        severity: Option<String>,
        /// The user to assign it to.
        #[arg(long, value_name = "USER", conflicts_with = "unassign")]
        owner: Option<String>,
        /// Remove the owner.
        #[arg(long)]
        unassign: bool,
        /// The incident type.
        #[arg(long = "type")]
        kind: Option<String>,
        /// Add a label, TYPE=VALUE; may be repeated.
        #[arg(long = "label", value_name = "TYPE=VALUE")]
        labels: Vec<String>,
        #[command(flatten)]
        who: work::ChangeOpts,
    },
    /// Add a note to the war room: of incidents by ID, or of every match of --query.
    Note {
        /// The incidents' IDs, as `incidents list` shows them (none with --query), then the
        /// note's text (markdown, quoted as one word).
        #[arg(
            value_name = "[ID]... TEXT",
            num_args = 1..,
            required = true
        )]
        words: Vec<String>,
        #[command(flatten)]
        select: work::SelectOpts,
        /// Send the note to the provider too, where the instance mirrors out.
        #[arg(long)]
        mirror: bool,
        #[command(flatten)]
        who: work::ChangeOpts,
    },
    /// Close incidents with a reason (Resolved, False Positive, Duplicate or Other): by ID, or
    /// every match of --query.
    Close {
        /// The incidents' IDs, as `incidents list` shows them.
        #[arg(value_name = "ID", required_unless_present = "query")]
        ids: Vec<i64>,
        #[command(flatten)]
        select: work::SelectOpts,
        /// Resolved, "False Positive", Duplicate or Other (any case; false-positive too).
        #[arg(long, value_name = "R")]
        reason: String,
        /// What was found and done, for the war room (and the provider, where the close is
        /// mirrored out).
        #[arg(long, value_name = "TEXT")]
        notes: Option<String>,
        #[command(flatten)]
        who: work::ChangeOpts,
    },
    /// Reopen closed incidents: by ID, or every match of --query.
    Reopen {
        /// The incidents' IDs, as `incidents list` shows them.
        #[arg(value_name = "ID", required_unless_present = "query")]
        ids: Vec<i64>,
        #[command(flatten)]
        select: work::SelectOpts,
        #[command(flatten)]
        who: work::ChangeOpts,
    },
    /// Delete an incident; its alert is never fetched again.
    Delete {
        /// The incident's ID, as `incidents list` shows it.
        id: i64,
        #[command(flatten)]
        who: work::ChangeOpts,
    },
    /// The war room, oldest first (or --newest-first).
    Entries {
        /// The incident's ID, as `incidents list` shows it.
        id: i64,
        /// Newest first, as the UI reads them (default: oldest first).
        #[arg(long)]
        newest_first: bool,
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
    /// The incident's context as JSON.
    Context {
        /// The incident's ID, as `incidents list` shows it.
        id: i64,
    },
    /// Run a provider command in the incident's context: its result is a war-room entry and
    /// its outputs merge into the incident's context. It runs on the incident's own instance
    /// when that has the command.
    Run {
        /// The incident's ID, as `incidents list` shows it.
        id: i64,
        /// The command line, as `watchfloor run` takes it.
        line: String,
        /// The instance to run on (default: the incident's own, or the one that has the command).
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// md: readable markdown; json: the whole entry; context: the entry context.
        #[arg(long, value_enum, default_value_t = Output::Auto)]
        output: Output,
        #[command(flatten)]
        who: work::ChangeOpts,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListOutput {
    /// A table for a terminal, markdown when piped.
    Auto,
    /// Aligned columns for a terminal.
    Table,
    /// XSOAR's markdown, for scripts.
    Md,
    Json,
}

impl ListOutput {
    /// Whether markdown is drawn for a terminal (a table, or by default on a terminal).
    fn draws(self) -> bool {
        match self {
            ListOutput::Table => true,
            ListOutput::Auto => std::io::IsTerminal::is_terminal(&std::io::stdout()),
            ListOutput::Md | ListOutput::Json => false,
        }
    }

    /// Markdown as this output shows it.
    fn present(self, text: String) -> String {
        match self {
            ListOutput::Json => text,
            _ => output::present(text, self == ListOutput::Table, self == ListOutput::Md),
        }
    }
}

#[derive(Subcommand)]
enum ClusterAction {
    /// The live processes, which fetch scopes and mirroring each holds, and lease ages.
    Status {
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
}

#[derive(Subcommand)]
enum InstancesAction {
    /// Run test-module on every instance, or on NAME, and print ok or the reason.
    Test {
        /// One instance (default: every instance).
        name: Option<String>,
    },
    /// List configured instances.
    List,
    /// Fetch health of every instance: last success, last error, consecutive failures. Exits 1
    /// when an instance is failing, or has not succeeded within three of its fetch intervals.
    Health {
        /// How to print: auto (a table on a terminal, markdown when piped), table, md or json.
        #[arg(long, value_enum, default_value_t = ListOutput::Auto)]
        output: ListOutput,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// A table for a terminal, markdown when piped.
    Auto,
    /// Aligned columns for a terminal.
    Table,
    /// XSOAR's markdown, for scripts and golden tests.
    Md,
    /// The whole entry.
    Json,
    /// The entry context.
    Context,
}

impl Output {
    /// An entry as this output shows it.
    fn show(self, entry: &watchfloor_core::Entry) -> String {
        match self {
            Output::Json => pretty(&entry.to_json()),
            Output::Context => pretty(&serde_json::Value::Object(entry.entry_context())),
            _ => output::present_entry(entry, self == Output::Table, self == Output::Md),
        }
    }
}

/// A failure and its exit code.
enum Failure {
    Usage(anyhow::Error),
    Command(anyhow::Error),
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        if e.is_usage() {
            Failure::Usage(e.into())
        } else {
            Failure::Command(e.into())
        }
    }
}

fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Usage(e.into())
}

fn main() -> ExitCode {
    // Two malloc arenas rather than eight per core: `serve`'s threads (the runtime's and the
    // database's) otherwise each keep their own pool of freed memory.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: set once, before any other thread starts; mallopt only tunes the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(log_directives(
            std::env::var("WATCHFLOOR_LOG").ok().as_deref(),
        )))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            eprintln!("error: {}", terminal_safe(&format!("{e:#}")));
            ExitCode::from(2)
        }
        Err(Failure::Command(e)) => {
            eprintln!("error: {}", terminal_safe(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Commands { name, json } => list_commands(name.as_deref(), json),
        Command::Run {
            instance,
            output,
            line,
        } => {
            let (runner, _) = load_runner(cli.config.as_deref())?;
            let entry = runner.run(&line, instance.as_deref()).await?;
            let text = output.show(&entry);
            say!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Instances { action } => match action {
            InstancesAction::Health { output } => {
                let store = store_for(cli.db.as_deref(), cli.config.as_deref()).await?;
                let shared = shared_settings(cli.config.as_deref())?;
                let (text, healthy) =
                    incidents::health(&*store, &shared, output == ListOutput::Json)
                        .await
                        .map_err(Failure::Command)?;
                say!("{}", output.present(text).trim_end());
                Ok(if healthy {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
            InstancesAction::List => {
                let (runner, _) = load_runner(cli.config.as_deref())?;
                for name in runner.instance_names() {
                    say!("{name}");
                }
                Ok(ExitCode::SUCCESS)
            }
            InstancesAction::Test { name } => {
                let (runner, _) = load_runner(cli.config.as_deref())?;
                let path = config_path(cli.config.as_deref())?;
                test_instances(&runner, name.as_deref(), &path).await
            }
        },
        Command::Cluster {
            action: ClusterAction::Status { output },
        } => {
            let store = store_for(cli.db.as_deref(), cli.config.as_deref()).await?;
            let text = db::cluster_status(&store, output == ListOutput::Json)
                .await
                .map_err(Failure::Command)?;
            say!("{}", output.present(text).trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Db { action } => {
            let shared = shared_settings(cli.config.as_deref())?;
            let url = cli
                .db
                .as_deref()
                .or(shared.storage_url.as_deref())
                .unwrap_or(watchfloor_storage::DEFAULT_URL);
            let text = db::run(action, url).await?;
            say!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules { action } => {
            let service = local_service(cli.config.as_deref(), cli.db.as_deref()).await?;
            let text = rules::run(&service, action).await?;
            say!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Channels { action } => {
            let service = local_service(cli.config.as_deref(), cli.db.as_deref()).await?;
            let text = notify::channels(&service, action).await?;
            say!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Notifications { action } => {
            let service = local_service(cli.config.as_deref(), cli.db.as_deref()).await?;
            let text = notify::notifications(&service, action).await?;
            say!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Indicators { action } => {
            let service = local_service(cli.config.as_deref(), cli.db.as_deref()).await?;
            let text = indicators::run(&service, action).await?;
            say!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => {
            let service = local_service(cli.config.as_deref(), cli.db.as_deref()).await?;
            let text = report::run(&service, args).await?;
            say!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            since,
            limit,
            output,
        } => {
            let service = local_service(cli.config.as_deref(), cli.db.as_deref()).await?;
            let text = users::audit(
                &service,
                since.as_deref(),
                limit,
                output == ListOutput::Json,
            )
            .await?;
            say!("{}", output.present(text).trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Users { action } => {
            let service = local_service(cli.config.as_deref(), cli.db.as_deref()).await?;
            let text = users::run(&service, action).await?;
            say!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            concurrency,
            listen,
        } => {
            let (runner, shared) = load_runner(cli.config.as_deref())?;
            let store = incidents::open_store(
                cli.db.as_deref().or(shared.storage_url.as_deref()),
                &shared.indicators,
            )
            .await
            .map_err(usage)?;
            let listen = listen.or(shared.listen);
            let tls = shared
                .tls
                .as_ref()
                .map(|t| watchfloor_api::tls::acceptor(&t.cert, &t.key))
                .transpose()
                .map_err(|e| usage(anyhow!("[server] TLS: {e}")))?;
            let listener = match listen {
                Some(addr) => Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| {
                            format!("cannot listen on {addr}; is another server there?")
                        })
                        .map_err(usage)?,
                ),
                None => None,
            };
            fetch::serve(Arc::new(runner), store, shared, concurrency, listener, tls)
                .await
                .map_err(usage)
        }
        Command::Fetch { instance, once } => {
            let (runner, shared) = load_runner(cli.config.as_deref())?;
            let store = incidents::open_store(
                cli.db.as_deref().or(shared.storage_url.as_deref()),
                &shared.indicators,
            )
            .await
            .map_err(usage)?;
            fetch::fetch(
                Arc::new(runner),
                store,
                shared.sla,
                instance.as_deref(),
                once,
            )
            .await
            .map_err(usage)
        }
        Command::Sync { instance, once: _ } => {
            let (runner, shared) = load_runner(cli.config.as_deref())?;
            let store = incidents::open_store(
                cli.db.as_deref().or(shared.storage_url.as_deref()),
                &shared.indicators,
            )
            .await
            .map_err(usage)?;
            fetch::sync(Arc::new(runner), store, shared.sla, instance.as_deref())
                .await
                .map_err(Failure::Command)
        }
        Command::Incidents { action } => {
            let text = incidents_command(action, cli.db.as_deref(), cli.config.as_deref()).await?;
            say!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "simulators")]
        Command::Simulate(args) => simulate::simulate(args).await.map_err(Failure::Command),
        #[cfg(feature = "simulators")]
        Command::Demo { dir, listen } => {
            simulate::demo(&dir, listen).await.map_err(Failure::Command)
        }
        Command::Docs { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))
                .map_err(usage)?;
            for def in watchfloor_integrations::definitions() {
                let path = dir.join(format!("{}.md", def.id));
                std::fs::write(&path, docs::integration_markdown(def))
                    .with_context(|| format!("cannot write {}", path.display()))
                    .map_err(Failure::Command)?;
                say!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("cannot render JSON: {e}"))
}

fn list_commands(name: Option<&str>, json: bool) -> Result<ExitCode, Failure> {
    let defs = watchfloor_integrations::definitions();
    if let Some(name) = name {
        let name = name.trim_start_matches('!');
        let found = defs.iter().find_map(|d| d.command(name).map(|c| (d, c)));
        let Some((def, cmd)) = found else {
            let all = defs
                .iter()
                .flat_map(|d| d.commands.iter().map(|c| c.name.as_str()));
            return Err(usage(watchfloor_core::UsageError::unknown_command(
                name, all,
            )));
        };
        if json {
            say!(
                "{}",
                pretty(&watchfloor_core::docs::definition_json(def, Some(cmd)))
            );
        } else {
            say_raw!("{}", docs::command_help(def, cmd));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        let all: Vec<serde_json::Value> = defs
            .iter()
            .map(|d| watchfloor_core::docs::definition_json(d, None))
            .collect();
        say!("{}", pretty(&serde_json::Value::Array(all)));
        return Ok(ExitCode::SUCCESS);
    }
    for def in defs {
        say!("{} ({})\n", def.display, def.id);
        for cmd in &def.commands {
            say_raw!("{}", docs::command_summary(cmd));
        }
        say!();
    }
    say!(
        "* marks a required argument. Run `watchfloor commands NAME` for each argument's meaning."
    );
    Ok(ExitCode::SUCCESS)
}

/// The crates whose logs `WATCHFLOOR_LOG=LEVEL` turns up; libraries stay at `warn`.
const OUR_CRATES: [&str; 6] = [
    "watchfloor",
    "watchfloor_core",
    "watchfloor_engine",
    "watchfloor_integrations",
    "watchfloor_storage",
    "watchfloor_simulators",
];

/// Log filter directives: by default warnings, and a line per fetch or mirroring cycle; a bare
/// level (`debug`) applies to watchfloor's own crates only; anything else is taken as
/// directives, e.g. `debug,sqlx=trace`.
fn log_directives(env: Option<&str>) -> String {
    let ours = |level: &str| {
        std::iter::once("warn".to_string())
            .chain(OUR_CRATES.iter().map(|c| format!("{c}={level}")))
            .collect::<Vec<_>>()
            .join(",")
    };
    match env.map(str::trim) {
        None | Some("") => "warn,watchfloor_engine=info".into(),
        Some(level @ ("error" | "warn" | "info" | "debug" | "trace")) => ours(level),
        Some(directives) => directives.to_string(),
    }
}

/// The database for commands that only read it, opened read-only.
async fn store_for(
    db: Option<&str>,
    config: Option<&Path>,
) -> Result<Arc<watchfloor_storage::SqlStore>, Failure> {
    let shared = shared_settings(config)?;
    let url = db
        .or(shared.storage_url.as_deref())
        .unwrap_or(watchfloor_storage::DEFAULT_URL);
    let store = watchfloor_storage::SqlStore::open_read_only(url)
        .await
        .map_err(|e| usage(anyhow::Error::from(e)))?;
    // It may find indicators of incidents not yet read (its reads catch up): as configured.
    store.set_indicator_extractor(watchfloor_indicators::Extractor::new(
        shared.indicators.exclusions(),
        watchfloor_integrations::indicator_maps(),
    ));
    Ok(Arc::new(store))
}

/// `[storage]` and `[sla]` of the config file, if there is one (its instances and secrets are
/// not read); the defaults otherwise.
/// The service over the store the command line and the config name, for commands of the
/// machine's administrator (`users`, `rules`, `audit`).
async fn local_service(
    config: Option<&Path>,
    db: Option<&str>,
) -> Result<watchfloor_service::Service, Failure> {
    let shared = shared_settings(config)?;
    let store = incidents::open_store(db.or(shared.storage_url.as_deref()), &shared.indicators)
        .await
        .map_err(usage)?;
    Ok(watchfloor_service::Service::new(store, shared.sla.clone()).with_settings(&shared))
}

fn shared_settings(config: Option<&Path>) -> Result<watchfloor_core::Shared, Failure> {
    match config_path(config) {
        Ok(path) => Config::load_shared(&path).map_err(usage),
        Err(_) => Ok(watchfloor_core::Shared::default()),
    }
}

/// `watchfloor incidents ...`: reading commands open the database read-only, changes open it
/// for writing; both go through the store's lifecycle rules.
async fn incidents_command(
    action: IncidentsAction,
    db: Option<&str>,
    config: Option<&Path>,
) -> Result<String, Failure> {
    let shared = shared_settings(config)?;
    let writer = async || {
        incidents::open_store(db.or(shared.storage_url.as_deref()), &shared.indicators)
            .await
            .map_err(usage)
    };
    // A change (or a note) to the incidents given by ID or by `--query`.
    let each = async |ids,
                      select: &work::SelectOpts,
                      who: &work::ChangeOpts,
                      what: watchfloor_service::ToEach| {
        work::change_each(writer().await?, &shared.sla, ids, select, who, &what).await
    };
    // The CLI runs on the machine itself: a local administrator, recorded as `--as`.
    let service = |store: Arc<watchfloor_storage::SqlStore>| {
        watchfloor_service::Service::new(store, shared.sla.clone()).with_settings(&shared)
    };
    Ok(match action {
        IncidentsAction::List {
            status,
            severity,
            org,
            instance,
            since,
            fetched_since,
            owner,
            sla,
            query,
            limit,
            output,
        } => {
            let names = shared.instance_names();
            if let Some(name) = &instance
                && !names.is_empty()
                && !names.contains(&name.as_str())
            {
                return Err(usage(anyhow!(
                    "no instance named `{name}`; configured instances: {}",
                    names.join(", ")
                )));
            }
            let store = store_for(db, config).await?;
            // `--owner ""` is the unassigned, as the query's `owner:""` (the API and the UI
            // take an empty owner as no filter, as a form's empty box sends it).
            let (owner, query) = match owner {
                Some(o) if o.trim().is_empty() => (
                    None,
                    Some(format!("owner:\"\" {}", query.unwrap_or_default())),
                ),
                owner => (owner, query),
            };
            let params = watchfloor_service::QueueParams {
                status,
                severity,
                organization: org,
                instance,
                owner,
                sla,
                since,
                fetched_since,
                q: query,
                limit: Some(limit),
                ..Default::default()
            };
            let (found, all) = service(store)
                .incidents(&work::local(None), &params)
                .await
                .map_err(work::failed)?;
            output.present(
                incidents::list(&found, all, output == ListOutput::Json)
                    .map_err(Failure::Command)?,
            )
        }
        IncidentsAction::Show { id, output } => {
            let store = store_for(db, config).await?;
            output.present(
                incidents::show(&service(store), id, output == ListOutput::Json)
                    .await
                    .map_err(usage)?,
            )
        }
        IncidentsAction::Entries {
            id,
            newest_first,
            output,
        } => {
            let store = store_for(db, config).await?;
            let mut entries = service(store)
                .entries(&work::local(None), id)
                .await
                .map_err(work::failed)?;
            if newest_first {
                entries.reverse();
            }
            output.present(
                work::entries(id, &entries, output == ListOutput::Json, output.draws())
                    .map_err(Failure::Command)?,
            )
        }
        IncidentsAction::Context { id } => {
            let store = store_for(db, config).await?;
            let context = service(store)
                .context(&work::local(None), id)
                .await
                .map_err(work::failed)?;
            pretty(&context)
        }
        IncidentsAction::Create {
            name,
            severity,
            org,
            kind,
            details,
            raw,
            who,
        } => {
            let raw = raw.map(|r| raw_record(&r)).transpose()?;
            let incident = watchfloor_storage::ManualIncident {
                name,
                severity: watchfloor_core::Severity::parse(&severity)
                    .map_err(|e| usage(anyhow!(e)))?,
                organization: org,
                kind,
                details,
                raw,
                ..Default::default()
            };
            let store = writer().await?;
            let caller = work::caller_of(&*store, &who).await?;
            let created = service(store)
                .create(&caller, incident)
                .await
                .map_err(work::failed)?;
            format!("created incident {}", created.id)
        }
        IncidentsAction::Update {
            ids,
            select,
            status,
            severity,
            owner,
            unassign,
            kind,
            labels,
            who,
        } => {
            let edit = work::edit(status, severity, owner, unassign, kind, labels)
                .map_err(|e| usage(anyhow!(e)))?;
            let change = watchfloor_core::Change::Update(edit);
            each(
                ids,
                &select,
                &who,
                watchfloor_service::ToEach::Change(change),
            )
            .await?
        }
        IncidentsAction::Close {
            ids,
            select,
            reason,
            notes,
            who,
        } => {
            let reason =
                watchfloor_core::CloseReason::parse(&reason).map_err(|e| usage(anyhow!(e)))?;
            let change = watchfloor_core::Change::Close { reason, notes };
            each(
                ids,
                &select,
                &who,
                watchfloor_service::ToEach::Change(change),
            )
            .await?
        }
        IncidentsAction::Reopen { ids, select, who } => {
            each(
                ids,
                &select,
                &who,
                watchfloor_service::ToEach::Change(watchfloor_core::Change::Reopen),
            )
            .await?
        }
        IncidentsAction::Note {
            words,
            select,
            mirror,
            who,
        } => {
            let (ids, text) = work::ids_then_text(&words).map_err(usage)?;
            let note = watchfloor_service::ToEach::Note {
                text: text.to_string(),
                mirror,
            };
            each(ids, &select, &who, note).await?
        }
        IncidentsAction::Run {
            id,
            line,
            instance,
            output,
            who,
        } => {
            let (runner, _) = load_runner(config)?;
            let store = writer().await?;
            let caller = work::caller_of(&*store, &who).await?;
            let entry = service(store)
                .with_runner(Arc::new(runner))
                .run_in_incident(&caller, id, &line, instance.as_deref())
                .await
                .map_err(work::failed)?
                .map_err(|e| match e {
                    watchfloor_service::commands::CommandFailure::Run(e) => Failure::from(e),
                    other => usage(anyhow!(other.to_string())),
                })?;
            output.show(&entry)
        }
        IncidentsAction::Delete { id, who } => {
            let store = writer().await?;
            let caller = work::caller_of(&*store, &who).await?;
            service(store)
                .delete(&caller, id)
                .await
                .map_err(work::failed)?;
            format!("deleted incident {id}; its alert will not be fetched again")
        }
    })
}

/// The config file: --config, then $WATCHFLOOR_CONFIG (both via clap), then ./watchfloor.toml.
fn config_path(config: Option<&Path>) -> Result<PathBuf, Failure> {
    match config {
        Some(p) => Ok(p.to_path_buf()),
        None if Path::new("watchfloor.toml").exists() => Ok(PathBuf::from("watchfloor.toml")),
        None => Err(usage(anyhow!(
            "no config file: pass --config PATH, set WATCHFLOOR_CONFIG, or create ./watchfloor.toml \
             (`watchfloor simulate --dir DIR` writes one for the simulators)"
        ))),
    }
}

/// Loads the config and connects its instances; also returns its `[storage] url`.
/// The configured instances, with what they share: the database and the SLA.
fn load_runner(config: Option<&Path>) -> Result<(Runner, watchfloor_core::Shared), Failure> {
    let path = config_path(config)?;
    let defs = watchfloor_integrations::definitions();
    let config = Config::load(&path, &defs).map_err(usage)?;
    let runner = Runner::new(watchfloor_integrations::builtin(), &config)?;
    let shared = config.shared();
    Ok((runner, shared))
}

async fn test_instances(
    runner: &Runner,
    only: Option<&str>,
    config: &Path,
) -> Result<ExitCode, Failure> {
    let names: Vec<String> = match only {
        // The runner says when there is no such instance.
        Some(name) => vec![name.to_string()],
        None => runner
            .instance_names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    if names.is_empty() {
        return Err(usage(anyhow!(
            "config file {} has no instances; add an [[instances]] block (see the README)",
            config.display()
        )));
    }
    let mut failed = false;
    for name in names {
        match runner.run("!test-module", Some(&name)).await {
            Ok(_) => say!("{name}: ok"),
            Err(RunError::Command { error, .. }) => {
                failed = true;
                say!("{name}: failed: {error}");
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::log_directives;

    /// Regression (first hour): `serve` logged nothing at the default level, and
    /// `WATCHFLOOR_LOG=debug` flooded the terminal with library noise.
    #[test]
    fn log_levels_apply_to_watchfloor_and_keep_libraries_quiet() {
        assert_eq!(log_directives(None), "warn,watchfloor_engine=info");
        let debug = log_directives(Some("debug"));
        assert!(debug.starts_with("warn,watchfloor=debug,"), "{debug}");
        assert!(!debug.contains("sqlx") && !debug.contains("hyper"));
        assert_eq!(log_directives(Some("debug,sqlx=trace")), "debug,sqlx=trace");
    }
}

#[cfg(test)]
mod usage_tests {
    use clap::CommandFactory;

    /// Every option and argument of every command says what it is for in `--help`.
    #[test]
    fn every_option_has_help() {
        let missing = crate::usage::undocumented(&crate::Cli::command());
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    /// The README's usage block is the one the command-line definitions make.
    #[cfg(feature = "simulators")]
    #[test]
    fn the_readme_usage_block_matches_the_definitions() {
        let readme = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
        )
        .unwrap();
        let block = readme
            .split("<!-- usage: made by `cargo test -p watchfloor usage`; do not edit -->\n```sh\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("the README's usage block and its marker");
        let want = crate::usage::lines(&crate::Cli::command()).join("\n") + "\n";
        assert!(
            block == want,
            "the README's usage block is out of date; it should read:\n{want}"
        );
    }
}

/// The `--raw` of `incidents create`: JSON, or `@FILE` to read it from a file.
fn raw_record(given: &str) -> Result<serde_json::Value, Failure> {
    let (text, from) = match given.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| usage(anyhow!("cannot read --raw file {path}: {e}")))?,
            format!("the file {path}"),
        ),
        None => (given.to_string(), "--raw".to_string()),
    };
    serde_json::from_str(&text).map_err(|e| usage(anyhow!("{from} is not JSON: {e}")))
}
