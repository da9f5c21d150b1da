//! The HTTP API (axum): the seed's health endpoints, Prometheus /metrics,
//! and the full view for the CLI, over a Unix socket and optionally TCP.
pub mod auth;
pub mod control;
pub mod error;
pub mod listen;
pub mod routes;
pub mod seed;

use std::{future::Future, net::SocketAddr};

use tokio::net::{TcpListener, UnixListener};

pub use routes::{Access, ApiState, router};

/// Serves the Unix socket until `stop` resolves.
pub async fn serve_unix(
    listener: UnixListener,
    state: ApiState,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state, Access::Local)).with_graceful_shutdown(stop).await
}

/// Serves TCP until `stop` resolves; peers' addresses go into refusal logs.
pub async fn serve_tcp(
    listener: TcpListener,
    state: ApiState,
    token: auth::Token,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state, Access::Remote(token)).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(stop).await
}

#[cfg(test)]
mod tests;
