//! The CLI's side of the API: HTTP/1 over the daemon's Unix socket, and what
//! `status` (`table`) and `top` (`top`) draw of the daemon's view.
pub mod table;
pub mod top;

use std::path::{Path, PathBuf};

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
}

pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self { socket: socket.into() }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// One request on a fresh connection: the CLI asks once per interval,
    /// so keeping a connection alive would buy nothing.
    pub async fn request(&self, method: Method, path: &str) -> Result<Bytes, ClientError> {
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
