//! watchfloor-api: the HTTP API that `watchfloor serve --listen` runs: health, authentication
//! by API key, and the incident routes, each scoped to the caller's organizations by the store
//! itself ([`watchfloor_storage::Scope`]). Another organization's incident is a 404, never a
//! 403, so its existence does not leak.
//!
//! Two faces share one set of rules: the native API under `/api/v1`, and XSOAR's own REST API
//! (`xsoar`) at `/` and under `/xsoar/`, for demisto-py and scripts written for XSOAR.

mod endpoint;
mod error;
mod indicators_api;
mod notify_api;
mod reports_api;
mod routes;
mod rules_api;
pub mod schemas;
mod server;
mod state;
pub mod tls;
mod ui;
mod xsoar;

pub use routes::{Endpoint, endpoints, markdown_table, openapi_document, router};
pub use server::Limits;
pub use state::AppState;
pub use watchfloor_service::{auth, login};

/// Serves the API on `listener` until `stop` resolves; requests in flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::run(listener, router(state), Limits::default(), stop).await
}

/// As [`serve`], with other connection limits.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: Limits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::run(listener, router(state), limits, stop).await
}

/// As [`serve`], over TLS.
pub async fn serve_tls(
    listener: tls::TlsListener,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::run(listener, router(state), Limits::default(), stop).await
}

/// The address a request came from, over plain TCP or TLS (for the login limiter and logs).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);
