//! Notifications through kills: `watchfloor serve` SIGKILLed at random points of delivery,
//! again and again, while a slow receiver takes webhooks. Every notification arrives; a
//! repeat is only ever one the receiver can drop by its delivery id, and they are counted.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// What the receiver took: (delivery id, incident ids), in order.
type Taken = Arc<Mutex<Vec<(String, Vec<i64>)>>>;

/// A webhook receiver that takes 300 ms to answer, so that kills land mid-send; and how many
/// messages have arrived whole (answered or not).
fn receiver() -> (String, Taken, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let taken: Taken = Arc::default();
    let arrived = Arc::new(AtomicUsize::new(0));
    let seen = taken.clone();
    let counted = arrived.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let seen = seen.clone();
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let (mut length, mut id) = (0usize, String::new());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if let Some(v) = lower.strip_prefix("x-watchfloor-delivery:") {
                        id = v.trim().to_string();
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let ids = json["incidents"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["id"].as_i64())
                    .collect();
                // Taken once the answer is written: a sender killed before reading it
                // sends again, as a real receiver would see.
                if conn
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .is_ok()
                {
                    seen.lock().unwrap().push((id, ids));
                }
            });
        }
    });
    (url, taken, arrived)
}

/// A `watchfloor serve` set up in `dir` with one webhook channel to `url` and a rule that
/// notifies it of each incident created; the config file's path.
fn notifying(dir: &std::path::Path, url: &str, cluster: &str) -> String {
    let cfg = dir.join("watchfloor.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\nurl = \"sqlite://wf.db\"\n{cluster}\
             [[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\nmax_per_hour = 10000\n"
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"tell\"\non = [\"created\"]\nactions = [{ action = \"notify\", channel = \"hook\" }]\n",
    )
    .unwrap();
    let out = watchfloor(
        dir,
        &["--config", &cfg, "rules", "import", rules.to_str().unwrap()],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    cfg
}

/// `watchfloor serve` with the config `cfg`, its log at warnings.
fn serving(dir: &std::path::Path, cfg: &str) -> Served {
    Served::start(
        dir,
        &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
        Some("warn"),
        Stdio::null(),
    )
}

/// `n` high incidents, made from the CLI: `incident 0` and on.
fn create_incidents(dir: &std::path::Path, cfg: &str, n: usize) {
    for n in 0..n {
        let name = format!("incident {n}");
        let out = watchfloor(
            dir,
            &[
                "--config",
                cfg,
                "incidents",
                "create",
                "--name",
                &name,
                "--severity",
                "high",
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
}

/// Regression: a stop (SIGTERM) cut a delivery off between the receiver's answer and its
/// record, so the notification stayed claimed and went out again after a restart. Now the
/// message being sent finishes and is recorded as sent, within the 2 s stop; those not yet
/// tried go out after the restart, each once.
#[test]
fn a_stop_mid_send_records_what_the_receiver_took() {
    let dir = tempfile::tempdir().unwrap();
    let (url, taken, arrived) = receiver();
    let cfg = notifying(dir.path(), &url, "");
    let cfg = cfg.as_str();
    const N: usize = 3;
    create_incidents(dir.path(), cfg, N);
    let mut served = serving(dir.path(), cfg);
    let started = Instant::now();
    while arrived.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The receiver holds its answer for 300 ms: the stop lands mid-send.
    let stopping = Instant::now();
    sigterm(served.child.id());
    let _ = served.child.wait();
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(2), "the stop took {took:?}");
    assert_eq!(taken.lock().unwrap().len(), 1, "one message was being sent");
    let statuses = |dir: &std::path::Path| {
        let out = watchfloor(
            dir,
            &["--config", cfg, "notifications", "list", "--output", "json"],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let mut statuses: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["status"].as_str().unwrap().to_string())
            .collect();
        statuses.sort();
        statuses
    };
    let after_stop = statuses(dir.path());
    assert_eq!(
        after_stop.iter().filter(|s| *s == "sent").count(),
        1,
        "the message the receiver took is recorded as sent: {after_stop:?}"
    );
    // Restarted, it sends the others at once (nothing left claimed) and that one not again.
    let mut served = serving(dir.path(), cfg);
    let started = Instant::now();
    while taken.lock().unwrap().len() < N {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not all were sent after the restart: {:?}",
            taken.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    sigterm(served.child.id());
    let _ = served.child.wait();
    let taken = taken.lock().unwrap().clone();
    let mut incidents: Vec<i64> = taken.iter().flat_map(|(_, i)| i.clone()).collect();
    incidents.sort();
    assert_eq!(incidents, vec![1, 2, 3], "each once: {taken:?}");
    assert_eq!(statuses(dir.path()), vec!["sent"; N]);
}

#[test]
fn killed_while_delivering_serve_loses_no_notification() {
    let dir = tempfile::tempdir().unwrap();
    let (url, taken, _) = receiver();
    let cfg = notifying(dir.path(), &url, "[cluster]\nlease = \"1s\"\n");
    let cfg = cfg.as_str();
    const N: i64 = 30;
    create_incidents(dir.path(), cfg, N as usize);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut kills = 0;
    let started = Instant::now();
    loop {
        let done = taken
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, i)| i.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len() as i64;
        if done == N {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "only {done} of {N} arrived"
        );
        let mut served = serving(dir.path(), cfg);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let child = &mut served.child;
        if kills < 12 {
            std::thread::sleep(Duration::from_millis(200 + rng % 1500));
            child.kill().unwrap();
            kills += 1;
        } else {
            std::thread::sleep(Duration::from_secs(5));
            sigterm(child.id());
        }
        let _ = child.wait();
    }
    assert!(kills >= 10);
    let taken = taken.lock().unwrap().clone();
    let mut per_incident: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (id, incidents) in &taken {
        for i in incidents {
            per_incident.entry(*i).or_default().push(id.clone());
        }
    }
    assert_eq!(per_incident.len() as i64, N, "every notification arrived");
    let mut repeats = 0;
    for (incident, ids) in &per_incident {
        // A repeat carries the same delivery id: the receiver can drop it.
        assert!(
            ids.iter().all(|i| i == &ids[0]),
            "incident {incident} came in different deliveries: {ids:?}"
        );
        repeats += ids.len() - 1;
    }
    eprintln!(
        "{kills} kills; {} messages taken, {repeats} repeats (same delivery id)",
        taken.len()
    );
}
