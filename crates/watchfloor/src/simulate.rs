//! `watchfloor simulate` and `watchfloor demo`: run the simulators in the foreground and write a
//! config file that points at them.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use clap::Args;
use watchfloor_simulators::{
    CovalenceOptions, CovalenceSimulator, FaultSpec, FesOptions, FesSimulator, SymantecOptions,
    SymantecSimulator,
};

/// Options of `watchfloor simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Directory for watchfloor.toml and the simulator's API key file.
    #[arg(long)]
    pub dir: PathBuf,
    /// Seed of the generated data; the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of organizations.
    #[arg(long, default_value_t = 3)]
    pub orgs: usize,
    /// AROs per organization.
    #[arg(long, default_value_t = 4)]
    pub aros_per_org: usize,
    /// Latency added to every provider request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Answer the next N requests with 429 Too Many Requests.
    #[arg(long, default_value_t = 0)]
    pub rate_limit: u32,
    /// Retry-After sent with each 429, in seconds.
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
    /// Answer the next N requests with 503.
    #[arg(long, default_value_t = 0)]
    pub server_errors: u32,
    /// Cut the JSON body of the next N responses short.
    #[arg(long, default_value_t = 0)]
    pub malformed: u32,
    /// Fail this percentage of requests at random with 429 or 503.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub failure_percent: u8,
    /// New alerts (every simulator) become visible this many seconds after their creation time.
    #[arg(long, default_value_t = 0)]
    pub late_arrival_secs: u64,
    /// Add a new alert to every simulator every this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    pub generate_every_secs: u64,
    /// Make the Symantec MSS simulator send stray `&nbsp;`-style entities.
    #[arg(long)]
    pub stray_entities: bool,
}

/// The running simulators.
struct Simulators {
    fes: FesSimulator,
    covalence: CovalenceSimulator,
    symantec: SymantecSimulator,
}

/// Starts the simulators and writes `dir/watchfloor.toml`; returns them and the config path.
async fn start(args: &SimulateArgs) -> anyhow::Result<(Simulators, PathBuf)> {
    if args.orgs == 0 {
        anyhow::bail!("--orgs must be at least 1");
    }
    let faults = FaultSpec {
        latency_ms: args.latency_ms,
        rate_limit: args.rate_limit,
        retry_after_secs: args.retry_after_secs,
        server_errors: args.server_errors,
        malformed: args.malformed,
        random_failure_percent: args.failure_percent,
    };
    let fes = FesSimulator::start(FesOptions {
        seed: args.seed,
        orgs: args.orgs,
        aros_per_org: args.aros_per_org,
        faults: faults.clone(),
        late_arrival: std::time::Duration::from_secs(args.late_arrival_secs),
        generate_every: (args.generate_every_secs > 0)
            .then(|| std::time::Duration::from_secs(args.generate_every_secs)),
        ..FesOptions::default()
    })
    .await
    .context("cannot start the FES simulator on loopback")?;
    let covalence = CovalenceSimulator::start(CovalenceOptions {
        seed: args.seed,
        faults: faults.clone(),
        late_arrival: std::time::Duration::from_secs(args.late_arrival_secs),
        generate_every: (args.generate_every_secs > 0)
            .then(|| std::time::Duration::from_secs(args.generate_every_secs)),
        ..CovalenceOptions::default()
    })
    .await
    .context("cannot start the Covalence simulator on loopback")?;
    let symantec = SymantecSimulator::start(SymantecOptions {
        seed: args.seed,
        stray_entities: args.stray_entities,
        faults: faults.clone(),
        late_arrival: std::time::Duration::from_secs(args.late_arrival_secs),
        generate_every: (args.generate_every_secs > 0)
            .then(|| std::time::Duration::from_secs(args.generate_every_secs)),
        ..SymantecOptions::default()
    })
    .await
    .context("cannot start the Symantec MSS simulator on loopback")?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
        let path = args.dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    write("fes-api-key", &fes.api_key)?;
    write("covalence-password", &covalence.password)?;
    write("covalence-ca.pem", &covalence.ca_pem)?;
    write("symantec-ca.pem", &symantec.ca_pem)?;
    write("symantec-passphrase", &symantec.passphrase)?;
    let p12 = args.dir.join("symantec-client.p12");
    std::fs::write(&p12, &symantec.client_p12)
        .with_context(|| format!("cannot write {}", p12.display()))?;
    write(
        "symantec-client.p12.b64",
        &base64::engine::general_purpose::STANDARD.encode(&symantec.client_p12),
    )?;
    let secret_file = |name: &str| format!("{{ file = \"{name}\" }}");
    // The simulators' seeded alerts are from May 2024.
    let fetching = |interval: &str| {
        vec![
            ("fetch", "true".to_string()),
            ("fetch_interval", quoted(interval)),
            ("first_fetch", quoted("2024-04-01T00:00:00Z")),
        ]
    };
    let covalence_params = |host: &str, broker: bool| {
        vec![
            ("host", quoted(host)),
            ("broker", broker.to_string()),
            ("username", quoted(&covalence.username)),
            ("password", secret_file("covalence-password")),
            ("ca_file", quoted("covalence-ca.pem")),
        ]
    };
    let text = [
        format!(
            "# Written by `watchfloor simulate`: instances of the simulators running on this machine.\n\
             [storage]\nurl = {}\n",
            // Relative to this file's directory.
            quoted("sqlite://watchfloor.db")
        ),
        instance_toml(
            "fes",
            "covalence-managed-security",
            &fetching("30s"),
            &[
                ("portal_url", quoted(&fes.portal_url)),
                ("broker_url", quoted(&fes.broker_url)),
                ("api_key", secret_file("fes-api-key")),
                ("timeout", quoted("10s")),
            ],
        ),
        instance_toml("covalence-direct", "covalence-security-providers", &fetching("1m"), &covalence_params(&covalence.direct_url, false)),
        instance_toml("covalence-broker", "covalence-security-providers", &fetching("1m"), &covalence_params(&covalence.broker_url, true)),
        instance_toml(
            "symantec",
            "symantec-mss",
            &fetching("1m"),
            &[
                ("server", quoted(&symantec.url)),
                ("certificate_file", quoted("symantec-client.p12")),
                ("passphrase", secret_file("symantec-passphrase")),
                ("ca_file", quoted("symantec-ca.pem")),
                ("severities", quoted("Emergency,Critical,Warning")),
            ],
        ),
    ]
    .join("\n");
    let config = write("watchfloor.toml", &text)?;
    Ok((
        Simulators {
            fes,
            covalence,
            symantec,
        },
        config,
    ))
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One `[[instances]]` block with instance `settings` and `params`; values are TOML already.
fn instance_toml(
    name: &str,
    integration: &str,
    settings: &[(&str, String)],
    params: &[(&str, String)],
) -> String {
    let mut out = format!(
        "[[instances]]\nname = {}\nintegration = {}\n",
        quoted(name),
        quoted(integration)
    );
    for (key, value) in settings {
        out.push_str(&format!("{key} = {value}\n"));
    }
    out.push_str("[instances.params]\n");
    for (key, value) in params {
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

pub async fn simulate(args: SimulateArgs) -> anyhow::Result<std::process::ExitCode> {
    let (sims, config) = start(&args).await?;
    let fes = &sims.fes;
    say!("FES Portal simulator: {}", fes.portal_url);
    say!("FES Broker simulator: {}", fes.broker_url);
    say!(
        "Covalence appliance simulator: {}",
        sims.covalence.direct_url
    );
    say!("Covalence broker simulator: {}", sims.covalence.broker_url);
    say!("Symantec MSS simulator (mutual TLS): {}", sims.symantec.url);
    say!("config: {}", config.display());
    say!(
        "faults: POST {}/_sim/faults with {{\"rate_limit\": 2, \"retry_after_secs\": 1}} and the like",
        fes.broker_url
    );
    say!("Press Ctrl-C to stop.");
    wait_for_ctrl_c(sims).await
}

pub async fn demo(dir: &Path) -> anyhow::Result<std::process::ExitCode> {
    let args = SimulateArgs {
        dir: dir.to_path_buf(),
        seed: 1,
        orgs: 3,
        aros_per_org: 4,
        latency_ms: 0,
        rate_limit: 0,
        retry_after_secs: 1,
        server_errors: 0,
        malformed: 0,
        failure_percent: 0,
        late_arrival_secs: 0,
        generate_every_secs: 30,
        stray_entities: false,
    };
    let (sims, config) = start(&args).await?;
    let fes = &sims.fes;
    let (runner, storage_url) = {
        let defs = watchfloor_integrations::definitions();
        let cfg = watchfloor_core::Config::load(&config, &defs)?;
        (
            Arc::new(watchfloor_integrations::Runner::new(
                watchfloor_integrations::builtin(),
                &cfg,
            )?),
            cfg.storage_url,
        )
    };
    let entry = runner.run("!cov-mgsec-list-org", None).await?;
    let store = crate::incidents::open_store(storage_url.as_deref()).await?;
    let engine = Arc::new(watchfloor_engine::Engine::new(runner.clone(), store));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut fetched = Vec::new();
    for name in runner.fetching_instances() {
        match engine
            .cycle(
                name,
                watchfloor_engine::Steps::UntilCaughtUp,
                &|_| {},
                &stop,
            )
            .await
        {
            Ok(r) => fetched.push(format!("{name}: {} incidents", r.new_incidents)),
            Err(e) => fetched.push(format!("{name}: {e}")),
        }
    }
    let scheduler = tokio::spawn(engine.clone().serve(4, stop));
    let org_id = fes
        .orgs()
        .first()
        .and_then(|o| o["ID"].as_str().map(str::to_string))
        .unwrap_or_default();
    let aro_id = fes
        .aros()
        .first()
        .and_then(|a| a["ID"].as_str().map(str::to_string))
        .unwrap_or_default();
    let me = std::env::args()
        .next()
        .unwrap_or_else(|| "watchfloor".into());
    let cfg = config.display();
    say!("watchfloor demo: simulators are running and {cfg} points at them.\n");
    say!(
        "$ {me} --config {cfg} run '!cov-mgsec-list-org'\n{}",
        entry.readable
    );
    say!(
        "Fetched into {}: {}. The scheduler keeps fetching, and every simulator adds an alert every 30s.\n",
        dir.join("watchfloor.db").display(),
        fetched.join("; ")
    );
    say!("Try these in another terminal:");
    for line in [
        "!cov-mgsec-get-aro query=\"resolution=Unresolved\"".to_string(),
        "!cov-mgsec-get-aro query=\"org=Globex&type=Action\" details=true".to_string(),
        format!(
            "!cov-mgsec-transition-aro aro_id={aro_id} resolution=Resolved comment=\"Host reimaged\""
        ),
        format!("!cov-mgsec-comment-aro aro_id={aro_id} comment=\"Called the site lead\""),
        format!("!cov-mgsec-list-escalation-contacts org_id={org_id}"),
        format!("!cov-mgsec-list-key-contacts org_id={org_id}"),
        "!cov-mgsec-broker-ping".to_string(),
        format!("!cov-mgsec-broker-endpoint-action-by-aro action_type=ISOLATE aro_id={aro_id}"),
        "!cov-secpr-list-alerts max_count=5 using=covalence-direct".to_string(),
        "!cov-secpr-list-organizations using=covalence-broker".to_string(),
        "!cov-secpr-list-sensors target_org=Initech using=covalence-broker".to_string(),
        "!cov-secpr-set-internal-networks cidr=10.99.0.0/16 notes=Lab using=covalence-direct"
            .to_string(),
        "!symantec-mss-incidents-list time=2024-05-01 severities=Critical,Emergency".to_string(),
        "!symantec-mss-get-incident number=7781203".to_string(),
        "!symantec-mss-update-incident number=7781203 status=Closed resolution=Resolved comments=Handled"
            .to_string(),
    ] {
        say!("  {me} --config {cfg} run '{line}'");
    }
    say!("  {me} --config {cfg} run --output json '!cov-mgsec-list-org'");
    say!("  {me} --config {cfg} instances test");
    say!("  {me} --config {cfg} incidents list --severity critical");
    say!("  {me} --config {cfg} incidents show 1");
    say!("  {me} --config {cfg} instances health");
    say!("  {me} commands cov-mgsec-get-aro\n");
    say!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    // Stop fetching before the simulators go away.
    let _ = stop_tx.send(true);
    let _ = scheduler.await;
    drop(sims);
    say!("stopped");
    Ok(std::process::ExitCode::SUCCESS)
}

async fn wait_for_ctrl_c(sims: Simulators) -> anyhow::Result<std::process::ExitCode> {
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    drop(sims);
    say!("stopped");
    Ok(std::process::ExitCode::SUCCESS)
}
