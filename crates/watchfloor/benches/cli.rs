//! A fresh `watchfloor incidents list` process against 1,000,000 incidents, run with
//! `cargo bench -p watchfloor --bench cli`: wall time from spawn to exit of the real binary (as
//! the benchmark builds it), with no filter, one filter, and two combined (organization and
//! severity), each run 30 times after 3 warm-ups; the target (#34) is under 25 ms for the two
//! combined. `WATCHFLOOR_BENCH_INCIDENTS` changes the size. The same query inside one process
//! (the store already open, as `serve` has it) is printed beside it.

use std::process::Command;
use std::time::{Duration, Instant};

use watchfloor_storage::prelude::*;
use watchfloor_storage::{IncidentFilter, SqlStore};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("WATCHFLOOR_BENCH_INCIDENTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("wf.db");
    let url = format!("sqlite://{}", db.display());
    let store = SqlStore::open(&url).await.expect("store");
    let started = Instant::now();
    store.fill_synthetic(n).await.expect("fill");
    let filled = started.elapsed();
    store.close().await;
    let store = SqlStore::open_read_only(&url).await.expect("store");
    let bytes: u64 = std::fs::read_dir(dir.path())
        .expect("the store's directory")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "stored {n} incidents in {:.1} s: {:.0} MB on disk with the text index ({:.0} bytes each)",
        filled.as_secs_f64(),
        bytes as f64 / 1e6,
        bytes as f64 / n as f64
    );
    let config = dir.path().join("watchfloor.toml");
    std::fs::write(&config, format!("[storage]\nurl = \"{url}\"\n")).expect("config");
    let cases: [(&str, &[&str], IncidentFilter); 3] = [
        ("no filter", &[], IncidentFilter::default()),
        (
            "organization",
            &["--org", "Org 4"],
            IncidentFilter {
                organization: Some("Org 4".into()),
                ..Default::default()
            },
        ),
        (
            "organization and severity",
            &["--org", "Org 4", "--severity", "high"],
            IncidentFilter {
                organization: Some("Org 4".into()),
                severity: vec![watchfloor_core::Severity::High],
                ..Default::default()
            },
        ),
    ];
    println!(
        "fresh `watchfloor incidents list --output md` processes, 30 runs each (p50 / p90 / max):"
    );
    let mut combined_p50 = Duration::ZERO;
    for (name, args, filter) in cases {
        let run = || {
            let started = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_watchfloor"))
                .arg("--config")
                .arg(&config)
                .args(["incidents", "list", "--output", "md"])
                .args(args)
                .output()
                .expect("watchfloor runs");
            let took = started.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("| "), "rows");
            took
        };
        for _ in 0..3 {
            run();
        }
        let mut times: Vec<Duration> = (0..30).map(|_| run()).collect();
        times.sort();
        // What the process does once the store is open: the page and the count of matches.
        let filter = IncidentFilter {
            limit: Some(50),
            ..filter
        };
        let in_process = {
            let started = Instant::now();
            for _ in 0..30 {
                store.incidents(&filter).await.expect("page");
                store.count_matching(&filter).await.expect("count");
            }
            started.elapsed() / 30
        };
        let p50 = percentile(&times, 0.5);
        if name == "organization and severity" {
            combined_p50 = p50;
        }
        println!(
            "  {name:<26} {:>9} / {:>9} / {:>9}   (the same page in a running process: {})",
            ms(p50),
            ms(percentile(&times, 0.9)),
            ms(*times.last().expect("runs")),
            ms(in_process)
        );
    }
    println!(
        "two combined filters from a fresh process: {} against the 25 ms target: {:.2}x",
        ms(combined_p50),
        combined_p50.as_secs_f64() / 0.025
    );
}
