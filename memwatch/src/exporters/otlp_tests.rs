//! OTLP export against a real gRPC receiver in the test process (a tonic
//! server from opentelemetry-proto): what arrives, and what happens when the
//! receiver goes away and comes back.
use std::{
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
        metrics_service_server::{MetricsService, MetricsServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value},
    metrics::v1::{Metric, metric::Data, number_data_point},
};
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::{
    FrameCell, frame_from,
    otlp::{OtlpExporter, OtlpSettings},
};
use crate::{
    cache::CacheStats,
    view::{HostView, Level, ProcessView, StatusView, TargetView},
};

struct Receiver(mpsc::UnboundedSender<ExportMetricsServiceRequest>);

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn start_receiver(
    addr: SocketAddr,
    tx: mpsc::UnboundedSender<ExportMetricsServiceRequest>,
) -> (Running, SocketAddr) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(MetricsServiceServer::new(Receiver(tx)))
            .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (Running { stop, task }, addr)
}

impl Running {
    /// Stops accepting and closes the exporter's connection (GOAWAY).
    async fn kill(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// A view with `n` processes whose pids start at `first_pid` (churn: each
/// round can bring a whole new set of pids) and one target at `usage`.
fn view(first_pid: u32, n: u32, usage: u64) -> StatusView {
    StatusView {
        mode: "procfs".into(),
        monitoring: true,
        host: HostView { used: 600, total: 1000, usage_ratio: 0.6, ..Default::default() },
        targets: vec![TargetView {
            name: "api.service".into(),
            kind: "unit".into(),
            usage_bytes: usage,
            charged_bytes: None,
            pressure: None,
            limit_bytes: 1000,
            level: Level::Emergency,
            growth_bytes_per_s: 1.0,
            leak: None,
            last_action: None,
            processes: n as usize,
            history: vec![],
            container: None,
        }],
        processes: (first_pid..first_pid + n)
            .map(|pid| ProcessView {
                pid,
                comm: "api".into(),
                cmdline: "/usr/bin/api --serve".into(),
                cgroup: Some("/system.slice/api.service".into()),
                container: None,
                target: "api.service".into(),
                rss_bytes: 4096,
                virtual_bytes: Some(1 << 20),
                growth_bytes_per_s: 0.0,
                page_faults: 11,
            })
            .collect(),
        caches: vec![CacheStats { name: "process-info".into(), entries: 5, max_entries: 1000, hits: 8, misses: 2 }],
        ..Default::default()
    }
}

fn metrics(request: &ExportMetricsServiceRequest) -> Vec<&Metric> {
    request.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).collect()
}

fn find<'a>(request: &'a ExportMetricsServiceRequest, name: &str) -> &'a Metric {
    metrics(request).into_iter().find(|m| m.name == name).unwrap_or_else(|| panic!("{name} not exported"))
}

fn string(value: &Option<AnyValue>) -> Option<&str> {
    match value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Option<AnyValue>> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

fn points(metric: &Metric) -> Vec<(&[KeyValue], f64)> {
    let points = match metric.data.as_ref().unwrap() {
        Data::Gauge(g) => &g.data_points,
        Data::Sum(s) => &s.data_points,
        other => panic!("unexpected data {other:?}"),
    };
    points
        .iter()
        .map(|p| {
            let v = match p.value.unwrap() {
                number_data_point::Value::AsDouble(d) => d,
                number_data_point::Value::AsInt(i) => i as f64,
            };
            (p.attributes.as_slice(), v)
        })
        .collect()
}

/// The next request that carries metrics (the SDK may send empty ones).
async fn next(
    rx: &mut mpsc::UnboundedReceiver<ExportMetricsServiceRequest>,
    within: Duration,
) -> ExportMetricsServiceRequest {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no export arrived within {within:?}"))
            .expect("receiver channel closed");
        if !metrics(&request).is_empty() {
            return request;
        }
    }
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The outage is 3 s by default; the 60 s runs with
/// `MEMWATCH_OTLP_OUTAGE_SECS=60 cargo test -p memwatch --lib otlp_export`.
fn outage() -> Duration {
    Duration::from_secs_f64(std::env::var("MEMWATCH_OTLP_OUTAGE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0))
}

/// Set in the process that runs the outage alone (see below).
const ALONE: &str = "MEMWATCH_OTLP_TEST_ALONE";

/// The outage's memory bound is judged on this process's VmRSS, which the
/// other tests of this binary, running in parallel threads, would inflate:
/// so the test runs again in a process of its own, with only itself.
#[test]
fn otlp_export_reaches_a_real_receiver_survives_its_outage_and_resumes() {
    if std::env::var_os(ALONE).is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        return runtime.block_on(export_outage_and_resume());
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "exporters::otlp_tests::otlp_export_reaches_a_real_receiver_survives_its_outage_and_resumes"])
        .args(["--nocapture", "--test-threads=1"])
        .env(ALONE, "1")
        .status()
        .expect("running the test in a process of its own");
    assert!(status.success(), "the OTLP outage test failed in its own process: {status}");
}

async fn export_outage_and_resume() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (receiver, addr) = start_receiver("127.0.0.1:0".parse().unwrap(), tx.clone()).await;
    let frames = FrameCell::default();
    frames.set(frame_from(&view(100, 50, 900)));
    let settings = OtlpSettings {
        endpoint: format!("http://{addr}"),
        interval: Duration::from_millis(200),
        timeout: Some(Duration::from_secs(1)),
        headers: vec![("x-tenant".into(), "t1".into())],
        host_name: "test-host".into(),
    };
    let exporter = OtlpExporter::start(&settings, frames.clone()).unwrap();
    let stats = Arc::clone(&exporter.stats);

    // What arrives: names, units, attributes, kinds, resource.
    let first = next(&mut rx, Duration::from_secs(10)).await;
    let resource = first.resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(string(attr(&resource.attributes, "service.name").unwrap()), Some("memwatch"));
    assert_eq!(string(attr(&resource.attributes, "host.name").unwrap()), Some("test-host"));
    assert_eq!(string(attr(&resource.attributes, "service.version").unwrap()), Some(env!("CARGO_PKG_VERSION")));
    let usage = find(&first, "process.memory.usage");
    assert_eq!(usage.unit, "By");
    let pts = points(usage);
    assert_eq!(pts.len(), 50);
    let (attrs, value) = pts
        .iter()
        .find(|(a, _)| {
            matches!(attr(a, "process.pid"), Some(Some(AnyValue { value: Some(any_value::Value::IntValue(100)) })))
        })
        .expect("pid 100 exported with an integer process.pid");
    assert_eq!(*value, 4096.0);
    assert_eq!(string(attr(attrs, "process.executable.name").unwrap()), Some("api"));
    assert_eq!(string(attr(attrs, "process.command").unwrap()), Some("/usr/bin/api"));
    assert_eq!(string(attr(attrs, "process.linux.cgroup").unwrap()), Some("/system.slice/api.service"));
    assert_eq!(find(&first, "process.memory.virtual").unit, "By");
    let faults = find(&first, "process.paging.faults");
    assert_eq!(faults.unit, "{fault}");
    assert!(matches!(&faults.data, Some(Data::Sum(s)) if s.is_monotonic), "faults are a monotonic sum");
    let state = find(&first, "memwatch.target.state");
    let state_points = points(state);
    assert_eq!(string(attr(state_points[0].0, "memwatch.target").unwrap()), Some("api.service"));
    assert_eq!(state_points[0].1, 3.0);
    assert_eq!(find(&first, "memwatch.target.memory.utilization").unit, "1");
    assert_eq!(find(&first, "system.memory.usage").unit, "By");
    assert!(matches!(&find(&first, "memwatch.cache.hits").data, Some(Data::Sum(s)) if s.is_monotonic));
    assert_eq!(points(find(&first, "memwatch.cache.entries"))[0].1, 5.0);
    assert_eq!(points(find(&first, "memwatch.monitor.mode")).len(), 1);

    // Outage: the receiver goes away while the daemon goes on producing
    // frames with a churning set of processes.
    receiver.kill().await;
    let failed_before = stats.failed.load(Ordering::Relaxed);
    let rss_before = vm_rss_kib();
    let started = Instant::now();
    let mut round = 0u32;
    let mut peak = rss_before;
    while started.elapsed() < outage() {
        round += 1;
        // 50 new pids every 20 ms: thousands of distinct series over the outage.
        frames.set(frame_from(&view(1_000 + round * 50, 50, 900)));
        peak = peak.max(vm_rss_kib());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failed_during = stats.failed.load(Ordering::Relaxed) - failed_before;
    assert!(failed_during >= 2, "exports did not fail while the receiver was down ({failed_during})");
    let growth_kib = peak.saturating_sub(rss_before);
    eprintln!(
        "outage {:?}: {round} frames of churn ({} distinct pids), {failed_during} failed exports, VmRSS {rss_before} KiB -> peak {peak} KiB (+{growth_kib} KiB)",
        outage(),
        round * 50,
    );
    assert!(growth_kib < 16 * 1024, "memory grew by {growth_kib} KiB during the outage");
    // Drain what arrived before the kill.
    while rx.try_recv().is_ok() {}

    // The receiver returns on the same address; export resumes by itself.
    let (receiver, _) = start_receiver(addr, tx).await;
    let marker = 777;
    frames.set(frame_from(&view(5, 50, marker)));
    let resumed = next(&mut rx, Duration::from_secs(15)).await;
    let resumed = if points(find(&resumed, "memwatch.target.memory.usage"))[0].1 == marker as f64 {
        resumed
    } else {
        next(&mut rx, Duration::from_secs(5)).await
    };
    assert_eq!(points(find(&resumed, "memwatch.target.memory.usage"))[0].1, marker as f64);
    assert!(stats.succeeded.load(Ordering::Relaxed) >= 2, "the exporter did not count the resumed export");
    // Bounded: only the current frame's 50 processes, none of the churned ones.
    let pids = points(find(&resumed, "process.memory.usage")).len();
    assert_eq!(pids, 50, "stale per-process series were kept");

    tokio::task::spawn_blocking(move || exporter.shutdown()).await.unwrap();
    receiver.kill().await;
}
