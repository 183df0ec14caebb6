//! `watchfloor simulate` and `watchfloor demo`: run the simulators in the foreground and write a
//! config file that points at them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use watchfloor_simulators::{FaultSpec, Running, Scenario, SimOptions};

/// Options of `watchfloor simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Directory for watchfloor.toml and the simulator's API key file.
    #[arg(long)]
    pub dir: PathBuf,
    /// Seed of the generated data; the same seed gives the same data.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Organizations, for providers that have them (each simulator's default if not given).
    #[arg(long, value_name = "N")]
    pub orgs: Option<usize>,
    /// Alerts per organization (each simulator's default if not given).
    #[arg(long, value_name = "N")]
    pub alerts_per_org: Option<usize>,
    /// Latency added to every provider request, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,
    /// Answer the next N requests with 429 Too Many Requests.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub rate_limit: u32,
    /// Retry-After sent with each 429, in seconds.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub retry_after_secs: u64,
    /// Answer the next N requests with 503.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub server_errors: u32,
    /// Cut the JSON body of the next N responses short.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub malformed: u32,
    /// Fail this percentage of requests at random with 429 or 503.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub failure_percent: u8,
    /// New alerts (every simulator) become visible this many seconds after their creation time.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub late_arrival_secs: u64,
    /// Add a new alert to every simulator every this many seconds (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub generate_every_secs: u64,
    /// Make the XML (SOAP) simulators send stray `&nbsp;`-style entities.
    #[arg(long)]
    pub stray_entities: bool,
    /// Seed the alerts of the last few hours, the newest made now, rather than from
    /// 2024-05-01, where the docs' examples expect them.
    #[arg(long)]
    pub recent: bool,
}

/// Starts every simulator and writes `dir/watchfloor.toml` with the instances that point at
/// them; returns them and the config path.
async fn start(args: &SimulateArgs) -> anyhow::Result<(Vec<Box<dyn Running>>, PathBuf)> {
    if args.orgs == Some(0) {
        anyhow::bail!("--orgs must be at least 1");
    }
    let scenario = Scenario {
        options: SimOptions {
            seed: args.seed,
            faults: FaultSpec {
                latency_ms: args.latency_ms,
                rate_limit: args.rate_limit,
                retry_after_secs: args.retry_after_secs,
                server_errors: args.server_errors,
                malformed: args.malformed,
                random_failure_percent: args.failure_percent,
                ..FaultSpec::default()
            },
            late_arrival: Duration::from_secs(args.late_arrival_secs),
            generate_every: (args.generate_every_secs > 0)
                .then(|| Duration::from_secs(args.generate_every_secs)),
            seeded_until: args.recent.then(chrono::Utc::now),
            setup: (),
        },
        orgs: args.orgs,
        alerts_per_org: args.alerts_per_org,
        stray_entities: args.stray_entities,
    };
    let sims = watchfloor_simulators::scenario::start_all(&scenario)
        .await
        .map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut text = format!(
        "# Written by `watchfloor simulate`: instances of the simulators running on this machine.\n\
         [storage]\nurl = {}\n",
        // Relative to this file's directory.
        toml::Value::String("sqlite://watchfloor.db".into())
    );
    for instance in sims.iter().flat_map(|s| s.instances()) {
        for (name, contents) in &instance.files {
            let path = args.dir.join(name);
            std::fs::write(&path, contents)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        text.push('\n');
        text.push_str(&instance.toml());
    }
    let config = args.dir.join("watchfloor.toml");
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    Ok((sims, config))
}

pub async fn simulate(args: SimulateArgs) -> anyhow::Result<std::process::ExitCode> {
    let (sims, config) = start(&args).await?;
    for (what, url) in sims.iter().flat_map(|s| s.endpoints()) {
        say!("{what} simulator: {url}");
    }
    say!("config: {}", config.display());
    if let Some(url) = sims.first().map(|s| s.control_url()) {
        say!(
            "faults: POST {url}/_sim/faults with {{\"rate_limit\": 2, \"retry_after_secs\": 1}} and the like"
        );
    }
    say!("Press Ctrl-C to stop.");
    wait_for_ctrl_c(sims).await
}

pub async fn demo(
    dir: &Path,
    listen: std::net::SocketAddr,
) -> anyhow::Result<std::process::ExitCode> {
    let args = SimulateArgs {
        dir: dir.to_path_buf(),
        seed: 1,
        orgs: None,
        alerts_per_org: None,
        latency_ms: 0,
        rate_limit: 0,
        retry_after_secs: 1,
        server_errors: 0,
        malformed: 0,
        failure_percent: 0,
        late_arrival_secs: 0,
        generate_every_secs: 30,
        stray_entities: false,
        recent: true,
    };
    let (sims, config) = start(&args).await?;
    let examples: Vec<String> = sims.iter().flat_map(|s| s.examples()).collect();
    let (runner, shared) = {
        let defs = watchfloor_integrations::definitions();
        let cfg = watchfloor_core::Config::load(&config, &defs)?;
        (
            Arc::new(watchfloor_integrations::Runner::new(
                watchfloor_integrations::builtin(),
                &cfg,
            )?),
            cfg.shared(),
        )
    };
    let first = examples
        .first()
        .context("the simulators suggest no command to try")?;
    let entry = runner.run(first, None).await?;
    // The simulators start afresh, so the demo's database does too: a kept one would hold
    // every seeded alert already, and the demo would fetch nothing.
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.join(format!("watchfloor.db{suffix}"));
        if file.exists() {
            std::fs::remove_file(&file)
                .with_context(|| format!("cannot reset the demo database {}", file.display()))?;
        }
    }
    let store =
        crate::incidents::open_store(shared.storage_url.as_deref(), &shared.indicators).await?;
    // The UI and the API, with an admin and an analyst of one organization to log in as.
    let setup = watchfloor_storage::Actor::new("demo setup", None);
    let (_, admin_password) = watchfloor_api::auth::new_user(
        &*store,
        &setup,
        "admin",
        watchfloor_storage::Role::Admin,
        &[],
        None,
    )
    .await?;
    let (_, analyst_password) = watchfloor_api::auth::new_user(
        &*store,
        &setup,
        "analyst",
        watchfloor_storage::Role::Analyst,
        &["Acme".to_string()],
        None,
    )
    .await?;
    // Rules, so that the first fetch is already worked on as `serve` works it.
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, DEMO_RULES)
        .with_context(|| format!("cannot write {}", rules.display()))?;
    // The demo's setup acts through the service as an administrator on the machine does.
    let engine = Arc::new(
        watchfloor_engine::Engine::new(runner.clone(), store.clone()).with_sla(shared.sla.clone()),
    );
    let service = watchfloor_service::Service::new(store.clone(), shared.sla.clone())
        .with_runner(runner.clone())
        .with_engine(engine);
    let setup_caller = watchfloor_service::Caller::local("demo setup");
    service
        .import_rules(&setup_caller, DEMO_RULES, true)
        .await
        .context("the demo's rules")?;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        // Something else has the port: any free one will do for a demo.
        Err(_) => tokio::net::TcpListener::bind((listen.ip(), 0))
            .await
            .with_context(|| format!("cannot listen on {}", listen.ip()))?,
    };
    let address = listener.local_addr()?;
    let mut fetched = Vec::new();
    for name in runner.fetching_instances() {
        match service.fetch_instance(&setup_caller, name).await? {
            Ok(r) => fetched.push(format!("{name}: {} incidents", r.new_incidents)),
            Err(e) => fetched.push(format!("{name}: {e}")),
        }
    }
    let me = std::env::args()
        .next()
        .unwrap_or_else(|| "watchfloor".into());
    let cfg = config.display();
    say!("watchfloor demo: simulators are running and {cfg} points at them.\n");
    say!("$ {me} --config {cfg} run '{first}'\n{}", entry.readable);
    say!(
        "Fetched into {} (a fresh database each run): {}. The scheduler keeps fetching, and every simulator adds an alert every 30s.\n",
        dir.join("watchfloor.db").display(),
        fetched.join("; ")
    );
    say!(
        "A rule from {} works each incident as it arrives (Acme's critical ones go to analyst, made active and noted): see the Rules page, or `{me} --config {cfg} rules list`.\n",
        rules.display()
    );
    say!(
        "The web UI: http://{address}/\n  log in as admin, password {}\n  or as analyst (organization Acme only), password {}\n",
        admin_password.unwrap_or_default(),
        analyst_password.unwrap_or_default()
    );
    say!("Try these in another terminal:");
    for line in examples.iter().skip(1) {
        say!("  {me} --config {cfg} run '{line}'");
    }
    say!("  {me} --config {cfg} run --output json '{first}'");
    say!("  {me} --config {cfg} instances test");
    say!("  {me} --config {cfg} incidents list --severity critical");
    say!("  {me} --config {cfg} incidents show 1");
    say!(
        "  {me} --config {cfg} incidents close --query 'organization:globex severity:low' --reason duplicate --dry-run"
    );
    say!("  {me} --config {cfg} instances health");
    say!("  {me} commands\n");
    say!("Press Ctrl-C to stop.");
    // From here the demo is `serve`: fetching and mirroring, the UI and the API, the rules and
    // any channels of the config, until Ctrl-C.
    let ended = crate::fetch::serve(runner, store, shared, 4, Some(listener), None).await;
    drop(sims);
    ended
}

/// The rules the demo starts with (written beside its config, as `rules import` takes them).
const DEMO_RULES: &str = r#"# The demo's rules: they work each incident as it arrives, as `watchfloor serve` runs them.
# Change them on the Rules page, or edit this file and `watchfloor rules import` it.

[[rules]]
name = "acme-critical-to-analyst"
on = ["created"]
when = 'organization:Acme severity:critical owner:""'
actions = [
  { action = "assign", to = "analyst" },
  { action = "status", to = "active" },
  { action = "note", text = "Critical for Acme: given to its analyst by ${rule.name}." },
]

# More to start from: docs/rules/ (escalation, assignment per organization, enrichment,
# duplicates, stale incidents).
"#;

async fn wait_for_ctrl_c(sims: Vec<Box<dyn Running>>) -> anyhow::Result<std::process::ExitCode> {
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    drop(sims);
    say!("stopped");
    Ok(std::process::ExitCode::SUCCESS)
}
