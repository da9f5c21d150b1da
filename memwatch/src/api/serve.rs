//! The API's accept loop: a bounded number of connections per listener,
//! each served by hyper's HTTP/1 connection with a header (and idle
//! keep-alive) timeout, behind a body timeout and a body size limit.
//!
//! `axum::serve` sets no hyper timer, so its header timeout never fires,
//! and a concurrency limit in tower caps requests, not connections: a client
//! that opens a connection and sends half a request would hold a file
//! descriptor forever. Here a connection is accepted only with a permit of
//! the listener's semaphore, so over the cap clients wait in the kernel's
//! backlog, costing memwatch no descriptor, and every accepted one ends
//! within the timeouts. hyper has no timeout for writing an answer, so a
//! client that sends requests and never reads the answers would stall its
//! connection in a write for good: each connection is also closed at its
//! `max_age`, and cut off if it has not finished by twice that.
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo, serve::Listener};
use hyper::{Request, body::Incoming};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;
use tower_http::{limit::RequestBodyLimitLayer, timeout::RequestBodyTimeoutLayer};

/// No endpoint takes a body; a small one is tolerated, a large one refused.
const MAX_BODY_BYTES: usize = 64 << 10;
/// A request's head (line and headers) larger than this is refused (431).
const MAX_HEADER_BYTES: usize = 16 << 10;
/// On stop, connections still open get this long to finish their request.
const DRAIN: Duration = Duration::from_secs(5);
/// The daemon's `Limits::max_age`: a Prometheus scraping every 15 s
/// reconnects every few scrapes, and a cleanup asked for (answered within
/// 30 s) always has its answer delivered.
pub const MAX_AGE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Connections open at once on this listener.
    pub max_connections: usize,
    /// To send a request's headers, and to sit idle between requests.
    pub header_timeout: Duration,
    /// To send a request's body.
    pub body_timeout: Duration,
    /// A connection is closed after this long, once its request in flight
    /// (if any) is answered; one still unanswered as long again is cut off.
    pub max_age: Duration,
}

/// The peer's address, for the TCP listener's refusal logs.
pub trait PeerAddr {
    fn socket_addr(&self) -> Option<SocketAddr>;
}

impl PeerAddr for SocketAddr {
    fn socket_addr(&self) -> Option<SocketAddr> {
        Some(*self)
    }
}

impl PeerAddr for tokio::net::unix::SocketAddr {
    fn socket_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// Serves `app` on `listener` within `limits` until `stop` resolves; then
/// stops accepting and gives open connections `DRAIN` to finish.
pub async fn serve<L>(mut listener: L, app: Router, limits: Limits, stop: impl Future<Output = ()> + Send + 'static)
where
    L: Listener,
    L::Addr: PeerAddr,
{
    let app =
        app.layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)).layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stopping, stopped) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let peer = peer.socket_addr();
        let app = app.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service = app.map_request(move |mut request: Request<Incoming>| {
                if let Some(peer) = peer {
                    request.extensions_mut().insert(ConnectInfo(peer));
                }
                request
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_HEADER_BYTES.max(8192))
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
            tokio::pin!(connection);
            let stop_requested = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let grace = tokio::select! {
                result = connection.as_mut() => {
                    log_connection_end(result);
                    None
                }
                () = stop_requested => Some(DRAIN),
                () = tokio::time::sleep(limits.max_age) => Some(limits.max_age),
            };
            if let Some(grace) = grace {
                connection.as_mut().graceful_shutdown();
                if let Ok(result) = tokio::time::timeout(grace, connection.as_mut()).await {
                    log_connection_end(result);
                }
            }
            drop(permit);
        });
    }
    let _ = stopping.send(true);
    // Every permit back means every connection is done (or cut off after
    // DRAIN; one already in its max-age grace keeps it, past this return).
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), permits.acquire_many(all)).await;
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    match result {
        Ok(()) => {}
        // A client that stalls or goes away is the client's problem.
        Err(e) if e.is_timeout() || e.is_incomplete_message() || e.is_canceled() => {
            tracing::debug!("API connection closed: {e}");
        }
        Err(e) => tracing::debug!("API connection failed: {e}"),
    }
}
