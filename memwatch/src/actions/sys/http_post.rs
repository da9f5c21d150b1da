//! The `http` cleanup step: one POST to a service's own cleanup endpoint on
//! loopback or a Unix socket. No redirects are followed, the whole exchange
//! has one deadline, and only the start of the answer is kept.
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{
    Request,
    body::Body,
    rt::{Read, Write},
};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, UnixStream};

use super::ActError;
use crate::config::cleanup::HttpEndpoint;

/// What of an answer's body is kept in the record.
pub const KEPT_BODY_BYTES: usize = 512;
/// What is read of a body at most: the rest is not waited for.
const READ_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The body's first `KEPT_BODY_BYTES`, lossily as text.
    pub body: String,
}

/// POSTs to `endpoint` with an empty body, all within `timeout`.
pub fn post(endpoint: &HttpEndpoint, timeout: Duration) -> Result<Answer, ActError> {
    let failed = |detail: String| ActError::Step { what: format!("POST {endpoint}"), detail };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| failed(format!("no runtime for the request: {e}")))?;
    runtime.block_on(async {
        match tokio::time::timeout(timeout, exchange(endpoint)).await {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(failed(format!("no answer within {} ms", timeout.as_millis()))),
        }
    })
}

async fn exchange(endpoint: &HttpEndpoint) -> Result<Answer, String> {
    match endpoint {
        HttpEndpoint::Loopback { host, port, path } => {
            // "localhost" is 127.0.0.1 here, not whatever /etc/hosts says.
            let ip = host.parse::<IpAddr>().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            if !ip.is_loopback() {
                return Err(format!("{ip} is not a loopback address"));
            }
            let stream = TcpStream::connect(SocketAddr::new(ip, *port)).await.map_err(|e| format!("connect: {e}"))?;
            let authority = if ip.is_ipv6() { format!("[{ip}]:{port}") } else { format!("{host}:{port}") };
            send(TokioIo::new(stream), &authority, path).await
        }
        HttpEndpoint::Unix { socket, path } => {
            let stream = UnixStream::connect(socket).await.map_err(|e| format!("connect {}: {e}", socket.display()))?;
            send(TokioIo::new(stream), "localhost", path).await
        }
    }
}

async fn send<T>(io: T, host: &str, path: &str) -> Result<Answer, String>
where
    T: Read + Write + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("handshake: {e}"))?;
    let driver = tokio::spawn(connection);
    let request = Request::post(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, concat!("memwatch/", env!("CARGO_PKG_VERSION")))
        .header(hyper::header::CONTENT_LENGTH, "0")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut kept = Vec::new();
    let mut read = 0;
    while read < READ_BODY_BYTES && !body.is_end_stream() {
        let Some(frame) = body.frame().await else { break };
        let frame = frame.map_err(|e| format!("reading the answer: {e}"))?;
        if let Ok(data) = frame.into_data() {
            read += data.len();
            let room = KEPT_BODY_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    driver.abort();
    Ok(Answer { status, body: String::from_utf8_lossy(&kept).trim().to_owned() })
}
