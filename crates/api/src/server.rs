//! The accept loop behind `serve`: HTTP/1 connections with a header-read timeout (which also
//! ends idle keep-alive connections) and a cap on open connections, so that idle or half-sent
//! requests cannot use up the process's file descriptors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use tower_service::Service as _;

use crate::Peer;

/// Connection limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection whose request head has not arrived this long after it opened, or after its
    /// last response, is closed.
    pub header_read_timeout: Duration,
    /// Connections open at once; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves; then lets each connection finish the
/// request in flight and returns when all are closed.
pub async fn run<L>(
    mut listener: L,
    router: Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropped to ask every connection to close gracefully; each holds a receiver until done.
    let (closing, closing_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(Peer(addr)));
                router.clone().call(req)
            });
        let mut closing_rx = closing_rx.clone();
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended");
                    }
                }
                _ = closing_rx.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop((permit, done_tx));
        });
    }
    drop(listener);
    drop(closing);
    drop(done_tx);
    let mut done_rx = done_rx;
    // Every sender gone means every connection task has ended.
    while done_rx.changed().await.is_ok() {}
    Ok(())
}
