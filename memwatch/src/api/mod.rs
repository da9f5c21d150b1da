//! The HTTP API (axum): the seed's health endpoints, Prometheus /metrics,
//! and the full view for the CLI, over a Unix socket and optionally TCP.
pub mod auth;
pub mod control;
pub mod error;
pub mod listen;
pub mod routes;
pub mod seed;
pub mod serve;

use std::future::Future;

use tokio::net::{TcpListener, UnixListener};

pub use routes::{Access, ApiState, router};
pub use serve::{Limits, MAX_AGE};

/// Serves the Unix socket until `stop` resolves.
pub async fn serve_unix(
    listener: UnixListener,
    state: ApiState,
    limits: Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    serve::serve(listener, router(state, Access::Local), limits, stop).await
}

/// Serves TCP until `stop` resolves; peers' addresses go into refusal logs.
pub async fn serve_tcp(
    listener: TcpListener,
    state: ApiState,
    token: auth::Token,
    limits: Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    serve::serve(listener, router(state, Access::Remote(token)), limits, stop).await
}

#[cfg(test)]
mod tests;
