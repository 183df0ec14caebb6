//! `watchfloor fetch` and `watchfloor serve`: the CLI over the fetch engine, with its progress
//! bar and the signals that stop it.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio::sync::watch;
use watchfloor_core::SlaPolicy;
use watchfloor_engine::{Engine, Progress, Steps};
use watchfloor_integrations::Runner;
use watchfloor_storage::SqlStore;
use watchfloor_storage::prelude::*;

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
        // Told first: a stderr that is gone (its reader died) must not keep the process from
        // stopping, as `eprintln!` would by panicking here.
        let _ = tx.send(true);
        let _ = writeln!(
            std::io::stderr(),
            "stopping after the fetch step in flight…"
        );
    });
    rx
}

/// The instance named (checked), or else `all`.
fn chosen(runner: &Runner, instance: Option<&str>, all: Vec<&str>) -> anyhow::Result<Vec<String>> {
    Ok(match instance {
        Some(name) => {
            runner.instance(name)?;
            vec![name.to_string()]
        }
        None => all.into_iter().map(str::to_string).collect(),
    })
}

/// `watchfloor fetch`: cycles now for the named instance or every fetching one.
pub async fn fetch(
    runner: Arc<Runner>,
    store: Arc<SqlStore>,
    sla: SlaPolicy,
    instance: Option<&str>,
    once: bool,
) -> anyhow::Result<ExitCode> {
    let names = chosen(&runner, instance, runner.fetching_instances())?;
    if names.is_empty() {
        return Err(anyhow!(
            "no instance has fetch = true; set it in the config, or name one with --instance"
        ));
    }
    let engine = Engine::new(runner, store).with_sla(sla);
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
                "{name}: {} new {} in {} fetch {}{}",
                r.new_incidents,
                plural(r.new_incidents, "incident", "incidents"),
                r.steps,
                plural(r.steps, "step", "steps"),
                match r.held {
                    0 => String::new(),
                    n => format!(
                        "; {n} {} left to the serve process fetching {}",
                        plural(n, "scope", "scopes"),
                        plural(n, "it", "them")
                    ),
                }
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

/// How long requests in flight may take to end after a stop, once the scheduler has stopped.
const HTTP_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// `watchfloor serve`: the scheduler, until Ctrl-C or SIGTERM, which stops it within two
/// seconds whatever the providers do.
pub async fn serve(
    runner: Arc<Runner>,
    store: Arc<SqlStore>,
    shared: watchfloor_core::Shared,
    concurrency: usize,
    listener: Option<tokio::net::TcpListener>,
    tls: Option<watchfloor_api::tls::Acceptor>,
) -> anyhow::Result<ExitCode> {
    let names = runner
        .fetching_instances()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    if names.is_empty() && listener.is_none() {
        return Err(anyhow!(
            "no instance has fetch = true and no --listen address: nothing to serve"
        ));
    }
    for channel in &shared.channels {
        channel
            .check_secrets()
            .map_err(|e| anyhow!("channel {}: {e}", channel.name))?;
    }
    let sla = shared.sla.clone();
    let lease = shared
        .lease
        .unwrap_or(watchfloor_engine::sharing::DEFAULT_LEASE);
    let stop = stop_on_signals();
    tokio::spawn(give_back_free_memory(stop.clone()));
    if let Some(keep) = shared.retention {
        tokio::spawn(purge_closed(store.clone(), keep, stop.clone()));
    }
    // Processes serving one database share its work under leases (alone, it holds them all).
    let sharing = Arc::new(watchfloor_engine::sharing::Sharing::new(
        store.clone(),
        lease,
    ));
    tracing::info!(process = sharing.id(), lease = ?lease, "serving");
    let engine = Arc::new(
        Engine::new(runner.clone(), store.clone())
            .with_sla(sla.clone())
            .with_sharing(sharing.clone()),
    );
    // Automation: the rules hear of each change once it has committed.
    let service = watchfloor_service::Service::new(store.clone(), sla.clone())
        .with_runner(runner.clone())
        .with_engine(engine.clone())
        .with_settings(&shared);
    let notifier = (!shared.channels.is_empty()).then(|| {
        tokio::spawn(deliver_notifications(
            service.clone().with_delivery_claim(lease),
            sharing.id().to_string(),
            lease,
            stop.clone(),
        ))
    });
    tokio::spawn(run_rules(
        service,
        sharing.id().to_string(),
        lease,
        stop.clone(),
    ));
    let http = match listener {
        Some(listener) => {
            let scheme = if tls.is_some() { "https" } else { "http" };
            crate::tell!("API on {scheme}://{}", listener.local_addr()?);
            let mut state = watchfloor_api::AppState::new(store.clone(), sla.clone())
                .with_runner(runner.clone())
                .with_engine(engine.clone())
                .with_settings(&shared);
            if tls.is_some() {
                state = state.over_tls();
            }
            let mut stopped = stop.clone();
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            Some(match tls {
                Some(acceptor) => tokio::spawn(watchfloor_api::serve_tls(
                    watchfloor_api::tls::TlsListener::new(listener, acceptor),
                    state,
                    shutdown,
                )),
                None => tokio::spawn(watchfloor_api::serve(listener, state, shutdown)),
            })
        }
        None => None,
    };
    if !names.is_empty() {
        crate::tell!(
            "fetching {} on their intervals; Ctrl-C or SIGTERM stops within two seconds",
            names.join(", ")
        );
    }
    engine.serve(concurrency, stop.clone()).await;
    if let Some(http) = http {
        // With nothing to fetch, the scheduler returns at once: wait for the signal.
        let mut stopped = stop;
        let _ = stopped.wait_for(|s| *s).await;
        // Requests in flight have a moment to end; a slow one (a provider command) is cut.
        let mut http = http;
        match tokio::time::timeout(HTTP_GRACE, &mut http).await {
            Ok(ended) => ended
                .context("the API server stopped unexpectedly")?
                .context("the API server failed")?,
            Err(_) => {
                tracing::info!("stopping: requests still in flight are cut short");
                http.abort();
            }
        }
    }
    if let Some(notifier) = notifier {
        // It bounds its own grace (from the same signal); this only waits for it to end.
        let _ = tokio::time::timeout(NOTIFY_GRACE, notifier).await;
    }
    crate::tell!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// A long-running `serve` hands memory it freed back to the system now and then: glibc keeps
/// freed blocks in its arenas otherwise, and a backfill's peak would stay resident while idle.
async fn give_back_free_memory(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = stop.changed() => {}
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free memory of the allocator to the system; it is
        // safe to call at any time from any thread.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// `[retention] closed_after`: at start and every hour, purges incidents closed longer ago
/// than `keep`, a batch at a time, until serve stops.
/// How often the rules worker looks for incidents whose SLA came at risk or was breached, and
/// for `schedule` rules that are due.
const SLA_LOOK: std::time::Duration = std::time::Duration::from_secs(10);

/// A lease on work that one process of a cluster does at a time (the rules, the
/// notifications): taken, and renewed once a third of it has passed.
struct OneAtATime {
    name: &'static str,
    holder: String,
    lease: std::time::Duration,
    /// When it was last taken or renewed.
    renewed: Option<std::time::Instant>,
}

impl OneAtATime {
    fn new(name: &'static str, holder: String, lease: std::time::Duration) -> Self {
        OneAtATime {
            name,
            holder,
            lease,
            renewed: None,
        }
    }

    /// Whether this process holds the lease now, renewing or taking it when due.
    async fn held(&mut self, service: &watchfloor_service::Service) -> bool {
        if self.renewed.is_none_or(|at| at.elapsed() > self.lease / 3) {
            self.renewed = match service
                .store()
                .acquire_lease(self.name, &self.holder, self.lease)
                .await
            {
                Ok(Some(_)) => Some(std::time::Instant::now()),
                Ok(None) => None,
                Err(error) => {
                    tracing::error!(%error, lease = self.name, "cannot take the lease; trying again");
                    None
                }
            };
        }
        self.renewed.is_some()
    }
}

/// Hands queued events to the rules until the stop, while this process holds the `rules`
/// lease (one process of a cluster at a time; another takes over when it lapses). A stop cuts
/// the batch in flight, which the ledger makes safe: an action is done once or not at all, and
/// its event stays queued.
async fn run_rules(
    service: watchfloor_service::Service,
    holder: String,
    lease: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut rules = OneAtATime::new("rules", holder, lease);
    // When the SLA states were last looked at.
    let mut sla_looked: Option<std::time::Instant> = None;
    loop {
        let wait = if !rules.held(&service).await {
            lease / 4
        } else {
            if sla_looked.is_none_or(|at| at.elapsed() > SLA_LOOK) {
                sla_looked = Some(std::time::Instant::now());
                if let Err(error) = service.fire_sla_triggers().await {
                    tracing::error!(%error, "cannot look for incidents at risk or breached");
                }
                if let Err(error) = service.fire_schedules().await {
                    tracing::error!(%error, "cannot run the scheduled rules");
                }
            }
            tokio::select! {
                ran = service.run_rules(watchfloor_service::automation::BATCH) => match ran {
                    Ok(n) => watchfloor_service::automation::pause_after(n),
                    Err(error) => {
                        tracing::error!(%error, "cannot run the rules; trying again");
                        std::time::Duration::from_secs(1)
                    }
                },
                _ = stop.wait_for(|s| *s) => return,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// How long a message being sent at a stop has to be answered and recorded.
const NOTIFY_GRACE: std::time::Duration = std::time::Duration::from_millis(1200);

/// Delivers notifications until the stop, while this process holds the `notify` lease (one
/// process of a cluster at a time). A stop lets the message being sent finish and be recorded
/// (within [`NOTIFY_GRACE`]) and takes no other. A kill mid-send, or a receiver slower than
/// the grace, leaves the delivery claimed; it is sent again once its claim lapses, under the
/// same id, so that a receiver can drop it.
async fn deliver_notifications(
    service: watchfloor_service::Service,
    holder: String,
    lease: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut notify = OneAtATime::new("notify", holder, lease);
    loop {
        let wait = if !notify.held(&service).await {
            lease / 4
        } else {
            let stopping = stop.clone();
            let pass = service.deliver_notifications_until(&stopping);
            tokio::pin!(pass);
            let sent = tokio::select! {
                sent = &mut pass => sent,
                // (The signal's guard is dropped before the wait below: it is not `Send`.)
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => {
                    if tokio::time::timeout(NOTIFY_GRACE, pass).await.is_err() {
                        tracing::info!("stopping: a notification still being sent is cut short; it is sent again later under the same id");
                    }
                    return;
                }
            };
            if let Err(error) = sent {
                tracing::error!(%error, "cannot deliver notifications; trying again");
            }
            NOTIFY_EVERY
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// How often the notification worker looks for what is due.
const NOTIFY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

async fn purge_closed(
    store: Arc<SqlStore>,
    keep: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(keep) = chrono::TimeDelta::from_std(keep) else {
        return;
    };
    loop {
        let before = chrono::Utc::now() - keep;
        let mut purged = 0;
        loop {
            match store.purge_closed(before, 10_000).await {
                Ok(0) => break,
                Ok(n) => purged += n,
                Err(error) => {
                    tracing::error!(%error, "cannot purge closed incidents");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::info!(
                purged,
                "purged incidents closed before the retention period"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// `watchfloor sync`: one mirroring cycle for the named instance or every instance.
pub async fn sync(
    runner: Arc<Runner>,
    store: Arc<SqlStore>,
    sla: SlaPolicy,
    instance: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let names = chosen(&runner, instance, runner.instance_names())?;
    let engine = Engine::new(runner, store).with_sla(sla);
    let mut failed = false;
    for name in names {
        match engine.sync(&name).await {
            Ok(watchfloor_engine::SyncReport {
                held_by: Some((holder, left)),
                ..
            }) => crate::say!(
                "{name}: skipped: process {holder} is mirroring it (a serve, most likely); let it, or run sync again once it has stopped (its lease ends within {}s)",
                left.as_secs()
            ),
            Ok(r) => {
                crate::say!(
                    "{name}: {} pushed, {} not sent, {} incidents changed at the provider ({} provider requests)",
                    r.pushed,
                    r.skipped,
                    r.pulled,
                    r.requests
                );
                if r.unreadable > 0 {
                    crate::say!(
                        "{name}: {} open incidents passed over: their stored record cannot be read (the log names them); restore them from a backup, or close them",
                        r.unreadable
                    );
                }
            }
            Err(e) => {
                failed = true;
                eprintln!(
                    "{}",
                    watchfloor_core::table::terminal_safe(&format!("{name}: {e}"))
                );
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
