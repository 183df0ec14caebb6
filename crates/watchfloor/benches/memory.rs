//! Memory of `watchfloor serve`, run with `cargo bench -p watchfloor --bench memory`: the
//! resident set while a Covalence broker of 1,000 organizations is backfilled (100,000 alerts,
//! the peak), and once it is caught up and idle with 1,000 organizations' cursors. The targets
//! (#13): idle under 30 MB, peak under 100 MB. Measured from the kernel's own accounting
//! (`VmRSS`, `VmHWM` in /proc) of the real binary, built as the benchmark builds it.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use watchfloor_simulators::{
    CovalenceSecurityProvidersOptions, CovalenceSecurityProvidersSetup,
    CovalenceSecurityProvidersSimulator,
};

/// A field of /proc/PID/status, in MB.
fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    const ORGS: usize = 1000;
    const ALERTS: usize = 100;
    let sim = CovalenceSecurityProvidersSimulator::start(CovalenceSecurityProvidersOptions {
        setup: CovalenceSecurityProvidersSetup {
            broker_orgs: ORGS,
            alerts_per_appliance: ALERTS,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("ca.pem"), &sim.ca_pem).expect("ca");
    let config = dir.path().join("watchfloor.toml");
    std::fs::write(
        &config,
        format!(
            "[[instances]]\nname = \"broker\"\nintegration = \"covalence-security-providers\"\nfetch = true\n\
             fetch_interval = \"1h\"\nfirst_fetch = \"2024-04-01T00:00:00Z\"\nfetch_limit = 1000\n\
             [instances.params]\nhost = \"{}\"\nbroker = true\nusername = \"{}\"\npassword = \"{}\"\nca_file = \"ca.pem\"\n",
            sim.broker_url, sim.username, sim.password
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchfloor"))
        .args(["--config", config.to_str().expect("path"), "serve"])
        .env("WATCHFLOOR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let pid = child.id();
    // The backfill: sample the resident set until the first cycle says it is done.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("fetch cycle done") || line.contains("fetch cycle failed") {
                let _ = done_tx.send(line);
            }
        }
    });
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut anon: Vec<f64> = Vec::new();
    let outcome = loop {
        if let Some(rss) = status_mb(pid, "VmRSS:") {
            samples.push(rss);
        }
        if let Some(a) = status_mb(pid, "RssAnon:") {
            anon.push(a);
        }
        if let Ok(line) = done_rx.try_recv() {
            break line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the backfill did not end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let backfill = started.elapsed();
    assert!(outcome.contains("fetch cycle done"), "{outcome}");
    let peak = status_mb(pid, "VmHWM:").expect("peak");
    // Idle: caught up, 1,000 cursors stored, the next cycle an hour away.
    // Connections unused for 10 s are closed, checked every 10 s: past that, idle is idle.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let (mut idle, mut idle_anon) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        idle.push(status_mb(pid, "VmRSS:").expect("rss"));
        idle_anon.push(status_mb(pid, "RssAnon:").expect("anon"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    let stored = {
        let out = Command::new(env!("CARGO_BIN_EXE_watchfloor"))
            .args([
                "--config",
                config.to_str().expect("path"),
                "instances",
                "health",
                "--output",
                "json",
            ])
            .output()
            .expect("health");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (idle_mb, idle_private) = (max(&idle), max(&idle_anon));
    let peak_private = max(&anon);
    println!(
        "memory of `watchfloor serve` (release build; a Covalence broker of {ORGS} organizations, {} alerts fetched, then mirrored in)\n\
         The resident set (VmRSS) is the target's measure; private memory (RssAnon) is the process's own, without shared libraries.\n\
         - backfill ({:.1} s): peak resident {peak:.0} MB; peak private {peak_private:.0} MB; target under 100 MB: resident {:.2}x of it, private {:.2}x\n\
         - idle with {ORGS} organizations' cursors: resident {idle_mb:.0} MB; private {idle_private:.0} MB; target under 30 MB: resident {:.2}x of it, private {:.2}x\n\
         - health after: {}",
        ORGS * ALERTS + ALERTS,
        backfill.as_secs_f64(),
        peak / 100.0,
        peak_private / 100.0,
        idle_mb / 30.0,
        idle_private / 30.0,
        stored
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(160)
            .collect::<String>()
    );
}
