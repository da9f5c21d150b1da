//! The CLI's side of the API: HTTP/1 over the daemon's Unix socket, and what
//! `status` (`table`) and `top` (`top`) draw of the daemon's view.
pub mod table;
pub mod top;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path} (is `memwatch run` running, and may you open its socket?): {source}")]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("talking to the daemon: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("the daemon answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("unexpected answer from the daemon: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the daemon at {path} did not answer within {secs} s (over its connection limit, or stuck)")]
    Timeout { path: PathBuf, secs: u64 },
}

/// A daemon answers `/status` at once; one over its connection limit keeps
/// a client in its backlog, and a stuck one would keep it for good.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self { socket: socket.into(), timeout: DEFAULT_TIMEOUT }
    }

    /// How long a request may take, from connecting to the answer's end.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// One request on a fresh connection: the CLI asks once per interval,
    /// so keeping a connection alive would buy nothing.
    pub async fn request(&self, method: Method, path: &str) -> Result<Bytes, ClientError> {
        tokio::time::timeout(self.timeout, self.exchange(method, path))
            .await
            .map_err(|_| ClientError::Timeout { path: self.socket.clone(), secs: self.timeout.as_secs() })?
    }

    async fn exchange(&self, method: Method, path: &str) -> Result<Bytes, ClientError> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect { path: self.socket.clone(), source })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "memwatch")
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        driver.abort();
        if !status.is_success() {
            return Err(ClientError::Status { status, body: String::from_utf8_lossy(&body).into_owned() });
        }
        Ok(body)
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Ok(serde_json::from_slice(&self.request(Method::GET, path).await?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_daemon_that_never_answers_is_a_timeout_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stuck.sock");
        // Accepts, reads nothing, answers nothing.
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let held = tokio::spawn(async move { listener.accept().await.map(|(stream, _)| stream) });
        let client = Client::new(&path).with_timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = client.get_json::<serde_json::Value>("/status").await.unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("stuck.sock"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(held);
    }
}
