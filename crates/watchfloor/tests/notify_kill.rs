//! Notifications through kills: `watchfloor serve` SIGKILLed at random points of delivery,
//! again and again, while a slow receiver takes webhooks. Every notification arrives; a
//! repeat is only ever one the receiver can drop by its delivery id, and they are counted.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// What the receiver took: (delivery id, incident ids), in order.
type Taken = Arc<Mutex<Vec<(String, Vec<i64>)>>>;

/// A webhook receiver that takes 300 ms to answer, so that kills land mid-send.
fn receiver() -> (String, Taken) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let taken: Taken = Arc::default();
    let seen = taken.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let seen = seen.clone();
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
    (url, taken)
}

#[test]
fn killed_while_delivering_serve_loses_no_notification() {
    let dir = tempfile::tempdir().unwrap();
    let (url, taken) = receiver();
    let cfg = dir.path().join("watchfloor.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\nurl = \"sqlite://wf.db\"\n[cluster]\nlease = \"1s\"\n\
             [[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\nmax_per_hour = 10000\n"
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"tell\"\non = [\"created\"]\nactions = [{ action = \"notify\", channel = \"hook\" }]\n",
    )
    .unwrap();
    let out = watchfloor(
        dir.path(),
        &["--config", cfg, "rules", "import", rules.to_str().unwrap()],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    const N: i64 = 30;
    for n in 0..N {
        let name = format!("incident {n}");
        let out = watchfloor(
            dir.path(),
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
        let served = Served::start(
            dir.path(),
            &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
            Some("warn"),
            Stdio::null(),
        );
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = served.child;
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
