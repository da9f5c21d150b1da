//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz) and for the test
//! that replays their corpus (`memwatch/tests/fuzz_corpus.rs`): each takes
//! arbitrary bytes and must return without panicking, whatever they are.
#![doc(hidden)]

use std::sync::Arc;

use axum::{body::Body, http};
use tower::ServiceExt as _;

use crate::{
    actions::Readiness,
    api::{Access, ApiState, auth::Token, control},
    config::Config,
    engine::EngineOptions,
    exporters::{FrameCell, prometheus::PrometheusExporter},
    pipeline::replay::{events_of_v1, run_v2},
    trace::{v1, v2},
    view::StatusStore,
};

/// Traces beyond this many bytes are cut: the fuzzer is after the parser's
/// and the pipeline's edges, not after how long a huge trace takes.
const MAX_TRACE_BYTES: usize = 64 << 10;

/// The config reader on any text.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Config::parse(&text);
}

/// Both trace parsers on any text, and what parses through the pipeline
/// to the lines `replay --seed-rule --explain` prints.
pub fn trace(data: &[u8]) {
    let text = String::from_utf8_lossy(&data[..data.len().min(MAX_TRACE_BYTES)]);
    if let Ok(trace) = v1::parse(&text) {
        let options = EngineOptions { seed_rule_events: true, leak_evaluations: true };
        for event in events_of_v1(&trace, Config::default(), 16 << 30, options) {
            let _ = event.to_json_line();
        }
    }
    if let Ok(recording) = v2::parse(&text) {
        let options = EngineOptions { seed_rule_events: true, leak_evaluations: true };
        for event in run_v2(&recording, Config::default(), 16 << 30, options).events {
            let _ = event.to_json_line();
        }
    }
}

/// One HTTP request, from bytes shaped like one (`METHOD PATH`, header
/// lines, a blank line, a body), through the API as a TCP client meets it
/// (the token checked) and as the Unix socket does.
pub fn http(data: &[u8]) {
    let Some(request) = request(data) else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async move {
        let (handle, mut requests) = control::channel();
        // Control requests are answered as the loop would when it is gone.
        tokio::spawn(async move { while requests.recv().await.is_some() {} });
        let state = ApiState {
            status: StatusStore::default(),
            control: handle,
            readiness: Readiness::new(),
            prometheus: Arc::new(PrometheusExporter::new(FrameCell::default())),
        };
        for access in [Access::Remote(Token::new("s3cret")), Access::Local] {
            let app = crate::api::router(state.clone(), access);
            let copy = clone_request(&request);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), app.oneshot(copy)).await;
        }
    });
}

fn request(data: &[u8]) -> Option<http::Request<Vec<u8>>> {
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let (method, path) = (first.next()?, first.next()?);
    let mut builder = http::Request::builder().method(method).uri(path);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            builder = builder.header(name.trim(), value.trim());
        }
    }
    builder.body(body.as_bytes().to_vec()).ok()
}

fn clone_request(request: &http::Request<Vec<u8>>) -> http::Request<Body> {
    let mut copy = http::Request::builder().method(request.method()).uri(request.uri());
    for (name, value) in request.headers() {
        copy = copy.header(name, value);
    }
    copy.body(Body::from(request.body().clone())).expect("a copy of a valid request")
}
