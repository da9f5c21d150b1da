//! The API against its handlers (tower oneshot) and over real sockets.
use std::sync::Arc;

use axum::{
    Router,
    body::{Body, Bytes},
    http::{Method, Request, StatusCode, header},
};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

use super::{Access, ApiState, auth::Token, listen, router};
use crate::{
    actions::Readiness,
    api::control::{self, CleanupReport, ControlError, Controller, PendingCleanups, TargetCleanup},
    cache::{CacheLimits, CacheRegistry, NamedCache},
    client::Client,
    exporters::{FrameCell, frame_from, prometheus::PrometheusExporter},
    view::{HostView, Level, StatusStore, StatusView, TargetView},
};

fn target(name: &str, level: Level, usage: u64) -> TargetView {
    TargetView {
        name: name.into(),
        kind: "unit".into(),
        usage_bytes: usage,
        charged_bytes: None,
        pressure: None,
        limit_bytes: 1000,
        level,
        growth_bytes_per_s: 1.5,
        leak: None,
        last_action: None,
        processes: 1,
        history: vec![usage],
        container: None,
    }
}

fn view(levels: &[(&str, Level, u64)]) -> StatusView {
    StatusView {
        mode: "procfs".into(),
        monitoring: true,
        interval_s: 5.0,
        host: HostView { used: 500, total: 1000, usage_ratio: 0.5, ..Default::default() },
        targets: levels.iter().map(|(n, l, u)| target(n, *l, *u)).collect(),
        ..Default::default()
    }
}

/// Answers from the view as a dry-run executor would: the routing, status
/// codes and JSON are under test here; the executor's side is tested in
/// `actions::tests` (requested cleanups).
struct DryRun {
    caches: CacheRegistry,
    status: StatusStore,
}

impl Controller for DryRun {
    fn cleanup(&mut self, target: Option<&str>) -> Result<CleanupReport, ControlError> {
        let view = self.status.current();
        let chosen: Vec<&TargetView> = match target {
            Some(name) => vec![view.target(name).ok_or_else(|| ControlError::UnknownTarget(name.to_owned()))?],
            None => view.targets.iter().filter(|t| t.level >= Level::Warning).collect(),
        };
        Ok(CleanupReport {
            dry_run: true,
            targets: chosen
                .into_iter()
                .map(|t| TargetCleanup {
                    target: t.name.clone(),
                    level: t.level,
                    outcome: crate::model::incident::Outcome::DryRun,
                    actions: vec!["would send SIGUSR1 (pass 1) to 1 process(es)".into()],
                    sent_at: Some(1.0),
                    freed_bytes: 0,
                    measured: false,
                })
                .collect(),
            freed_bytes: 0,
            note: None,
        })
    }

    fn clear_cache(&mut self, name: &str) -> Result<u64, ControlError> {
        Ok(self.caches.clear(name)?)
    }
}

/// A state whose control requests are answered on their own task, as the
/// daemon loop would.
fn state(view: StatusView) -> (ApiState, Arc<NamedCache<u32, u32>>) {
    let (state, cache, _) = state_with_readiness(view);
    (state, cache)
}

fn state_with_readiness(view: StatusView) -> (ApiState, Arc<NamedCache<u32, u32>>, Readiness) {
    let cache = Arc::new(NamedCache::new("process-info", CacheLimits::default()));
    cache.insert(1, 1);
    cache.insert(2, 2);
    let mut caches = CacheRegistry::default();
    caches.register(cache.clone());
    let view = StatusView { caches: caches.stats(), ..view };
    let store = StatusStore::new(view);
    let frames = FrameCell::default();
    frames.set(frame_from(&store.current()));
    let (handle, mut requests) = control::channel();
    let loop_store = store.clone();
    tokio::spawn(async move {
        let mut controller = DryRun { caches, status: loop_store };
        let mut pending = PendingCleanups::default();
        while let Some(request) = requests.recv().await {
            pending.serve(request, &mut controller, std::time::Instant::now());
        }
    });
    let readiness = Readiness::new();
    (
        ApiState {
            status: store,
            control: handle,
            readiness: readiness.clone(),
            prometheus: Arc::new(PrometheusExporter::new(frames)),
        },
        cache,
        readiness,
    )
}

async fn call(app: &Router, method: Method, uri: &str, token: Option<&str>) -> (StatusCode, Bytes) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

fn json(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

#[tokio::test]
async fn health_is_200_until_a_target_reaches_emergency_then_503_with_the_seed_body() {
    let (ok, _) = state(view(&[("a.service", Level::Critical, 920)]));
    let (code, body) = call(&router(ok, Access::Local), Method::GET, "/health", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(json(&body)["status"], "healthy");

    let (bad, _) = state(view(&[("a.service", Level::Emergency, 970), ("b.service", Level::Normal, 1)]));
    let (code, body) = call(&router(bad, Access::Local), Method::GET, "/health", None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let body = json(&body);
    assert!(body["error"].as_str().unwrap().contains("a.service (97.0% of limit)"), "{body}");
    assert_eq!(body["memoryUsage"]["used"], 500);
    assert_eq!(body["memoryUsage"]["total"], 1000);
    assert_eq!(body["memoryUsage"]["usagePercent"], 50.0);
    assert_eq!(body["heapUsage"], 0.97);
    assert_eq!(body["targets"], serde_json::json!(["a.service"]));
}

/// The executor's not-ready flag outlasts the emergency: /health stays 503
/// while it is held, though no target is in emergency any more.
#[tokio::test]
async fn health_follows_the_not_ready_flag_until_it_is_cleared() {
    let (state, _, readiness) = state_with_readiness(view(&[("a.service", Level::Critical, 920)]));
    let app = router(state, Access::Local);
    let health = |app: Router| async move { call(&app, Method::GET, "/health", None).await };
    assert_eq!(health(app.clone()).await.0, StatusCode::OK);

    readiness.hold("a.service");
    let (code, body) = health(app.clone()).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let body = json(&body);
    assert!(body["error"].as_str().unwrap().contains("until back at normal: a.service (92.0% of limit)"), "{body}");
    assert_eq!(body["memoryUsage"]["used"], 500, "the seed's body: {body}");
    assert_eq!(body["heapUsage"], 0.92);
    assert_eq!(body["targets"], serde_json::json!(["a.service"]));
    let (_, metrics) = call(&app, Method::GET, "/health/metrics", None).await;
    let metrics = json(&metrics);
    assert_eq!(metrics["memory"]["ready"], false);
    assert_eq!(metrics["targets"][0]["notReady"], true);

    readiness.release("a.service");
    let (code, body) = health(app.clone()).await;
    assert_eq!((code, json(&body)["status"].as_str()), (StatusCode::OK, Some("healthy")));
    let (_, metrics) = call(&app, Method::GET, "/health/metrics", None).await;
    assert_eq!(json(&metrics)["memory"]["ready"], true);
}

#[tokio::test]
async fn health_metrics_has_the_seed_shape() {
    let (state, _) = state(view(&[("a.service", Level::Warning, 850)]));
    let (code, body) = call(&router(state, Access::Local), Method::GET, "/health/metrics", None).await;
    assert_eq!(code, StatusCode::OK);
    let body = json(&body);
    let memory = &body["memory"];
    assert_eq!(memory["current"]["used"], 500);
    assert_eq!(memory["current"]["usagePercent"], 50.0);
    assert_eq!(memory["thresholds"]["warning"], 0.8);
    assert_eq!(memory["thresholds"]["emergency"], 0.95);
    assert_eq!(memory["monitoring"], true);
    assert_eq!(memory["mode"], "procfs");
    assert!(memory["lastCleanup"].is_null());
    let t = &body["targets"][0];
    assert_eq!(
        (t["name"].as_str(), t["usage"].as_u64(), t["limit"].as_u64()),
        (Some("a.service"), Some(850), Some(1000))
    );
    assert_eq!(t["level"], "warning");
    assert!(t["leak"].is_null());
    let cache = &body["caches"]["process-info"];
    assert_eq!((cache["size"].as_u64(), cache["maxSize"].as_u64()), (Some(2), Some(1000)));
    assert!(cache["hits"].is_u64() && cache["misses"].is_u64() && cache["hitRate"].is_f64(), "{cache}");
}

#[tokio::test]
async fn gc_and_cache_clearing_go_through_control_and_bad_requests_get_json_4xx() {
    let (state, cache) = state(view(&[("a.service", Level::Critical, 920), ("b.service", Level::Normal, 10)]));
    let app = router(state, Access::Local);

    let (code, body) = call(&app, Method::POST, "/health/gc", None).await;
    assert_eq!(code, StatusCode::OK);
    let report = json(&body);
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["freedBytes"], 0);
    assert_eq!(report["targets"][0]["target"], "a.service");
    assert_eq!(report["targets"][0]["freedBytes"], 0);
    assert_eq!(report["targets"].as_array().unwrap().len(), 1, "only warning and above: {report}");
    let (code, body) = call(&app, Method::POST, "/health/gc?target=b.service", None).await;
    assert_eq!((code, json(&body)["targets"][0]["level"].as_str()), (StatusCode::OK, Some("normal")));

    let (code, body) = call(&app, Method::DELETE, "/health/cache/process-info", None).await;
    assert_eq!((code, json(&body)["cleared"].as_u64()), (StatusCode::OK, Some(2)));
    assert_eq!(cache.get(&1), None, "the cache was not cleared");

    for (method, uri, expected) in [
        (Method::POST, "/health/gc?target=nope", StatusCode::NOT_FOUND),
        (Method::POST, "/health/gc?target=a&force=%zz", StatusCode::BAD_REQUEST),
        (Method::POST, "/health/gc?unknown=1", StatusCode::BAD_REQUEST),
        (Method::DELETE, "/health/cache/nope", StatusCode::NOT_FOUND),
        (Method::DELETE, "/health/cache/%FF%FE", StatusCode::BAD_REQUEST),
        (Method::GET, "/health/gc", StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/no/such/thing", StatusCode::NOT_FOUND),
    ] {
        let (code, body) = call(&app, method.clone(), uri, None).await;
        assert_eq!(code, expected, "{method} {uri}");
        let body = json(&body);
        assert!(body["error"].is_string(), "{method} {uri}: {body}");
    }
}

#[tokio::test]
async fn over_tcp_only_metrics_and_health_are_open_and_the_rest_needs_the_token() {
    let (state, _) = state(view(&[("a.service", Level::Normal, 10)]));
    let app = router(state, Access::Remote(Token::new("s3cret")));
    for open in ["/health", "/metrics"] {
        assert_eq!(call(&app, Method::GET, open, None).await.0, StatusCode::OK, "{open}");
    }
    for (method, uri) in [
        (Method::POST, "/health/gc"),
        (Method::GET, "/health/metrics"),
        (Method::DELETE, "/health/cache/process-info"),
        (Method::GET, "/status"),
    ] {
        let (code, body) = call(&app, method.clone(), uri, None).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {uri} without a token");
        assert!(json(&body)["error"].as_str().unwrap().contains("missing token"));
        let (code, _) = call(&app, method.clone(), uri, Some("guess")).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {uri} with a wrong token");
        let (code, _) = call(&app, method.clone(), uri, Some("s3cret")).await;
        assert!(code.is_success(), "{method} {uri} with the token: {code}");
    }
}

#[tokio::test]
async fn real_unix_socket_round_trip_serves_the_view_and_the_seed_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memwatch/memwatch.sock");
    let listener = listen::bind_unix(&path).await.unwrap();
    let (state, _) = state(view(&[("a.service", Level::Warning, 850)]));
    let expected = state.status.current();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(super::serve_unix(listener, state, limits(), async {
        let _ = stopped.await;
    }));

    let client = Client::new(&path);
    let got: StatusView = client.get_json("/status").await.unwrap();
    assert_eq!(&got, expected.as_ref());
    let metrics: Value = client.get_json("/health/metrics").await.unwrap();
    assert_eq!(metrics["targets"][0]["level"], "warning");
    let table = crate::client::table::render(&got);
    assert!(table.lines().any(|l| l.starts_with("a.service") && l.contains("warning")), "{table}");

    stop.send(()).unwrap();
    server.await.unwrap();
}

fn limits() -> super::Limits {
    super::Limits {
        max_connections: 8,
        header_timeout: std::time::Duration::from_secs(5),
        body_timeout: std::time::Duration::from_secs(5),
        max_age: super::MAX_AGE,
    }
}

/// One HTTP/1 request over TCP.
async fn tcp_call(addr: std::net::SocketAddr, method: Method, uri: &str, token: Option<&str>) -> (StatusCode, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut request = Request::builder().method(method).uri(uri).header(header::HOST, "localhost");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender.send_request(request.body(http_body_util::Empty::<Bytes>::new()).unwrap()).await.unwrap();
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn real_tcp_round_trip_lists_metrics_and_refuses_gc_without_the_token() {
    let listener = listen::bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (state, _) = state(view(&[("a.service", Level::Emergency, 990)]));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(super::serve_tcp(listener, state, Token::new("s3cret"), limits(), async {
        let _ = stopped.await;
    }));

    let (code, body) = tcp_call(addr, Method::GET, "/metrics", None).await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(code, StatusCode::OK);
    assert!(
        text.contains("memwatch_target_state{memwatch_target=\"a.service\",memwatch_target_kind=\"unit\"} 3"),
        "{text}"
    );
    assert!(text.contains("# TYPE process_memory_usage_bytes gauge"), "{text}");
    assert_eq!(tcp_call(addr, Method::GET, "/health", None).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(tcp_call(addr, Method::POST, "/health/gc", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(tcp_call(addr, Method::POST, "/health/gc", Some("s3cret")).await.0, StatusCode::OK);

    // Garbage on the wire is refused and the server goes on.
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"\x00\x01 NOT HTTP\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        raw.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    assert_eq!(tcp_call(addr, Method::GET, "/metrics", None).await.0, StatusCode::OK);

    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_capped_per_listener_and_closed_at_the_header_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = listen::bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (state, _) = state(view(&[("a.service", Level::Normal, 10)]));
    let limits = super::Limits {
        max_connections: 3,
        header_timeout: std::time::Duration::from_millis(400),
        body_timeout: std::time::Duration::from_secs(1),
        max_age: super::MAX_AGE,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(super::serve_tcp(listener, state, Token::none(), limits, async {
        let _ = stopped.await;
    }));
    // Ten clients that each send half a request and then nothing.
    let mut idle = Vec::new();
    for _ in 0..10 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        idle.push(stream);
    }
    // While the cap's three hold their permits, a full request waits in the backlog.
    let started = std::time::Instant::now();
    let waited =
        tokio::time::timeout(std::time::Duration::from_millis(150), tcp_call(addr, Method::GET, "/health", None)).await;
    assert!(waited.is_err(), "answered at once although all 3 connections were taken");
    // Each held connection is closed at the header timeout, the next ones
    // get their turn and time out too, and then a real request is served.
    let (code, _) =
        tokio::time::timeout(std::time::Duration::from_secs(10), tcp_call(addr, Method::GET, "/health", None))
            .await
            .expect("served once the stalled connections timed out");
    assert_eq!(code, StatusCode::OK);
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(400), "served after {took:?}: the cap was not held");
    // The server closed the stalled ones: reading gives end of file or an error, never a hang.
    for mut stream in idle.drain(..3) {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(_)) | Ok(Err(_))), "a stalled connection stayed open");
    }
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server).await.expect("the server stops").unwrap();
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_gives_its_connection_up_at_its_max_age() {
    use tokio::io::AsyncWriteExt as _;
    let listener = listen::bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (state, _) = state(view(&[("a.service", Level::Normal, 10)]));
    let max_age = std::time::Duration::from_millis(500);
    let limits = super::Limits {
        max_connections: 1,
        header_timeout: std::time::Duration::from_secs(30),
        body_timeout: std::time::Duration::from_secs(30),
        max_age,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(super::serve_tcp(listener, state, Token::none(), limits, async {
        let _ = stopped.await;
    }));
    // Thousands of pipelined requests on a small receive window, and not a
    // byte read back: the answers fill every buffer and the server's write
    // stalls, with no header or body to wait for.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(addr).await.unwrap();
    let writer = tokio::spawn(async move {
        let requests = "GET /metrics HTTP/1.1\r\nHost: memwatch\r\n\r\n".repeat(5000);
        let _ = stalled.write_all(requests.as_bytes()).await;
        stalled
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // The only permit is held by the stalled connection until its max age
    // and grace have passed; then the next client is served.
    let started = std::time::Instant::now();
    let (code, _) =
        tokio::time::timeout(std::time::Duration::from_secs(10), tcp_call(addr, Method::GET, "/health", None))
            .await
            .expect("served once the stalled connection was cut off");
    assert_eq!(code, StatusCode::OK);
    assert!(
        started.elapsed() >= max_age / 2,
        "served after {:?}: the stalled connection held nothing",
        started.elapsed()
    );
    drop(writer);
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server).await.expect("the server stops").unwrap();
}
