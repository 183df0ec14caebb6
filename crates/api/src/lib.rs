//! watchfloor-api: the HTTP API that `watchfloor serve --listen` runs: health, authentication
//! by API key, and the incident routes, each scoped to the caller's organizations by the store
//! itself ([`watchfloor_storage::Scope`]). Another organization's incident is a 404, never a
//! 403, so its existence does not leak.

pub mod auth;
pub mod login;
mod routes;

pub use routes::{AppState, router};

/// Serves the API on `listener` until `stop` resolves; requests in flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
}
