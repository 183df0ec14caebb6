//! Work sharing between processes, as the engine sees it: shares divided evenly among the live
//! processes, and a dead process's work taken over within one lease period.

use std::sync::Arc;
use std::time::{Duration, Instant};

use watchfloor_engine::sharing::{Sharing, Work};
use watchfloor_storage::{SqlStore, Store};

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("fetch:broker/Org {i}")).collect()
}

/// A store in `dir`, as the processes share it.
async fn store_in(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    )
}

async fn held(sharing: &Sharing, keys: &[String]) -> usize {
    let leases = sharing.claim_each(Work::Fetch, keys).await;
    for k in keys {
        sharing.done(k);
    }
    leases.iter().filter(|l| l.is_some()).count()
}

#[tokio::test]
async fn shares_are_even_and_a_dead_processs_work_is_taken_over_within_a_lease() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let period = Duration::from_millis(600);
    let scopes = keys(10);
    let processes: Vec<Sharing> = (0..3)
        .map(|_| Sharing::new(store.clone(), period))
        .collect();
    for p in &processes {
        p.set_fetch_scopes("broker", scopes.len());
    }
    for _ in 0..2 {
        for p in &processes {
            p.tick().await.unwrap();
        }
    }
    let mut counts = Vec::new();
    for p in &processes {
        counts.push(held(p, &scopes).await);
    }
    counts.sort();
    assert_eq!(counts, [3, 3, 4], "10 scopes over 3 processes");

    // The third process dies: it neither renews nor says it is alive.
    let died = Instant::now();
    let survivors = &processes[..2];
    let mut all_held_at = None;
    while died.elapsed() < period * 3 {
        for p in survivors {
            p.tick().await.unwrap();
        }
        let mut total = 0;
        for p in survivors {
            total += held(p, &scopes).await;
        }
        if total == scopes.len() {
            all_held_at = Some(died.elapsed());
            break;
        }
        tokio::time::sleep(period / 10).await;
    }
    let took = all_held_at.expect("the survivors took every scope over");
    // Within one lease period of its last renewal (plus the survivors' next look).
    assert!(took <= period + period / 4, "took {took:?}");
    let mut split = Vec::new();
    for p in survivors {
        split.push(held(p, &scopes).await);
    }
    split.sort();
    assert_eq!(split, [5, 5]);
}

/// Regression: a process paused between reading a provider's alert and writing to it, past its
/// lease, sent a close that the process which took the mirroring over had sent too (the
/// provider saw two transitions). A change to a provider is now sent only before `send_by`: a
/// quarter period before the lease, as last renewed, runs out; at once once it is lost.
#[tokio::test]
async fn a_change_is_not_sent_once_the_mirroring_lease_may_have_passed_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let period = Duration::from_millis(800);
    let (a, b) = (
        Sharing::new(store.clone(), period),
        Sharing::new(store.clone(), period),
    );
    let key = watchfloor_engine::sharing::sync_key("fes");
    for p in [&a, &b] {
        p.add_sync_target("fes");
    }
    let asked = Instant::now();
    assert!(a.claim(Work::Sync, &key).await.is_some());
    let got = Instant::now();
    a.done(&key);
    let by = a.send_by(&key);
    assert!(
        by >= asked + period - period / 4 && by <= got + period - period / 4,
        "held: a quarter of the period before it runs out is kept for the request's way"
    );
    // Renewed: later.
    tokio::time::sleep(period / 4).await;
    a.tick().await.unwrap();
    assert!(a.send_by(&key) > by, "renewing the lease extends it");
    // Paused past the lease: another process takes the mirroring over.
    tokio::time::sleep(period + period / 4).await;
    assert!(a.send_by(&key) <= Instant::now(), "too late to send");
    b.tick().await.unwrap();
    assert!(b.claim(Work::Sync, &key).await.is_some(), "taken over");
    a.tick().await.unwrap();
    assert!(
        a.send_by(&key) <= Instant::now(),
        "a lost lease sends nothing"
    );
}
