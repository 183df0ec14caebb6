//! The server against clients that connect and then say nothing, or half a request: closed
//! after the header-read timeout, and never more connections open than the cap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use watchfloor_api::{AppState, Limits};
use watchfloor_core::SlaPolicy;
use watchfloor_storage::SqlStore;

const TIMEOUT: Duration = Duration::from_millis(600);

async fn start(max_connections: usize) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(watchfloor_api::serve_with(
        listener,
        AppState::new(store, SlaPolicy::default()),
        Limits {
            header_read_timeout: TIMEOUT,
            max_connections,
        },
        std::future::pending(),
    ));
    (addr, dir)
}

/// Reads until the server closes the connection; what it sent, and when it closed.
async fn until_closed(conn: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

/// Regression (hardening 27.7): an idle socket and a half-sent request were still open after
/// 430 s. Each is closed after the header-read timeout, as is a keep-alive connection left
/// idle after its answer.
#[tokio::test]
async fn idle_and_half_sent_connections_are_closed() {
    let (addr, _dir) = start(64).await;
    let cases: [(&str, &[u8]); 3] = [
        ("idle", b""),
        ("half-sent", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"),
        (
            "idle after an answer",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
    ];
    for (case, sent) in cases {
        let mut conn = TcpStream::connect(&addr).await.unwrap();
        conn.write_all(sent).await.unwrap();
        let (got, after) = until_closed(&mut conn).await;
        assert!(
            after >= TIMEOUT / 2 && after < TIMEOUT * 4,
            "{case}: closed after {after:?}"
        );
        assert_eq!(
            got.starts_with("HTTP/1.1 200"),
            case == "idle after an answer",
            "{case}: {got}"
        );
    }
}

/// Regression (hardening 27.7): there was no cap on open connections. Past it, a new
/// connection waits until one closes, and is then served.
#[tokio::test]
async fn connections_past_the_cap_wait_for_one_to_close() {
    let (addr, _dir) = start(3).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut late = TcpStream::connect(&addr).await.unwrap();
    late.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = until_closed(&mut late).await;
    let waited = started.elapsed();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        waited >= TIMEOUT / 2,
        "served after {waited:?}, before an idle connection was closed"
    );
    for mut conn in idle {
        let (got, _) = until_closed(&mut conn).await;
        assert_eq!(got, "");
    }
}
