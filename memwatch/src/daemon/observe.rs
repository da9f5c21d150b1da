//! The daemon's observability and control, as one piece `run` drives: it
//! owns the caches, builds the view each interval, feeds the exporters and
//! serves the API, and answers control requests inside the daemon loop.
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    actions::{Measured, Readiness},
    api::control::{self, ControlRequest, Controller, PendingCleanups},
    api::{self, ApiState, auth::Token, listen},
    cache::{CacheLimits, CacheRegistry},
    config::Config,
    exporters::{FrameCell, frame_from, otlp, prometheus::PrometheusExporter},
    sources::collect::{PROCESS_INFO_CACHE, ProcessInfoCache},
    sources::meminfo::read_host,
    view::{
        ActionView, CleanupView, HostView, LeakView, StatusStore, Thresholds, builder::ViewBuilder,
        cgroups_old::CgroupFs,
    },
};

#[path = "observe_engine.rs"]
mod engine;

pub struct Observability {
    info_cache: Arc<ProcessInfoCache>,
    caches: CacheRegistry,
    builder: ViewBuilder,
    store: StatusStore,
    frames: FrameCell,
    /// Cleanup answers waiting for their passes' re-measure.
    pending: PendingCleanups,
    requests: mpsc::Receiver<ControlRequest>,
    otlp: Option<otlp::OtlpExporter>,
    servers: Vec<JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    socket: Option<PathBuf>,
    proc_root: PathBuf,
    interval: Duration,
    host: HostView,
    /// Leak verdicts of the targets leaking now (engine events open and close them).
    leaks: HashMap<String, LeakView>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Observability {
    /// Binds the API listeners and starts the OTLP exporter. A listener that
    /// cannot bind stops the daemon (a silent API would fool health checks);
    /// an OTLP exporter that cannot be built is logged and skipped.
    ///
    /// `limits` bound every cache (the engine branch's `[cache]` table).
    /// `readiness` is the executor's not-ready flag: `GET /health` reads it.
    pub async fn start(config: &Config, limits: CacheLimits, readiness: Readiness) -> anyhow::Result<Self> {
        let info_cache = Arc::new(ProcessInfoCache::new(PROCESS_INFO_CACHE, limits));
        let cgroups = CgroupFs::new("/sys/fs/cgroup", limits);
        let mut caches = CacheRegistry::default();
        caches.register(info_cache.clone());
        caches.register(cgroups.cache());

        let proc_root = PathBuf::from("/proc");
        let interval = config.daemon.interval();
        let t = config.defaults.engine.thresholds;
        let thresholds = Thresholds { warning: t.warning, critical: t.critical, emergency: t.emergency };
        let builder = ViewBuilder::new(thresholds, config.metrics.top_processes, proc_root.clone(), cgroups);
        let store = StatusStore::default();
        let frames = FrameCell::default();
        let (handle, requests) = control::channel();
        let state = ApiState {
            status: store.clone(),
            control: handle,
            readiness,
            prometheus: Arc::new(PrometheusExporter::new(frames.clone())),
        };

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = move || {
            let mut rx = stopped.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let mut servers = Vec::new();
        let socket = (!config.api.socket.as_os_str().is_empty()).then(|| config.api.socket.clone());
        if let Some(path) = &socket {
            let listener = listen::bind_unix(path).await.context("api.socket")?;
            tracing::info!(socket = %path.display(), "API listening (unix socket, mode 0600)");
            let (state, stop) = (state.clone(), until_stopped());
            servers.push(tokio::spawn(async move {
                if let Err(e) = api::serve_unix(listener, state, stop).await {
                    tracing::error!("API socket server stopped: {e}");
                }
            }));
        }
        if config.api.tcp_enabled {
            let token = match &config.api.token_file {
                Some(path) => Token::load(path).with_context(|| format!("api.token_file {}", path.display()))?,
                None => {
                    tracing::warn!("api.tcp_enabled without api.token_file: only /metrics and /health answer over TCP");
                    Token::none()
                }
            };
            let listener = listen::bind_tcp(config.api.tcp_listen).await.context("api.tcp_listen")?;
            tracing::info!(address = %config.api.tcp_listen, "API listening (TCP; /metrics and /health open, the rest needs the token)");
            let (state, stop) = (state.clone(), until_stopped());
            servers.push(tokio::spawn(async move {
                if let Err(e) = api::serve_tcp(listener, state, token, stop).await {
                    tracing::error!("API TCP server stopped: {e}");
                }
            }));
        }

        let otlp = if config.otlp.enabled {
            let settings = otlp::OtlpSettings {
                endpoint: otlp::OtlpSettings::resolve_endpoint(config.otlp.endpoint.as_deref(), |k| {
                    std::env::var(k).ok()
                }),
                interval: config.otlp.interval(interval),
                timeout: config.otlp.timeout_secs.map(Duration::from_secs_f64),
                headers: config.otlp.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                host_name: otlp::host_name(),
            };
            match otlp::OtlpExporter::start(&settings, frames.clone()) {
                Ok(exporter) => {
                    tracing::info!(endpoint = %settings.endpoint, every = ?settings.interval, "OTLP metrics export on");
                    Some(exporter)
                }
                Err(e) => {
                    tracing::warn!("OTLP export off: {e}");
                    None
                }
            }
        } else {
            None
        };

        Ok(Self {
            pending: PendingCleanups::default(),
            info_cache,
            caches,
            builder,
            store,
            frames,
            requests,
            otlp,
            servers,
            stop,
            socket,
            proc_root,
            interval,
            host: HostView::default(),
            leaks: HashMap::new(),
        })
    }

    /// The process-info cache, for the collector to use.
    pub fn info_cache(&self) -> Arc<ProcessInfoCache> {
        Arc::clone(&self.info_cache)
    }

    /// The next control request from the API (cancel-safe, for `select!`).
    pub async fn next_request(&mut self) -> Option<ControlRequest> {
        self.requests.recv().await
    }

    /// The daemon's caches, for the controller that clears them.
    pub fn caches(&self) -> CacheRegistry {
        self.caches.clone()
    }

    /// Answers one API request with `controller` (the executor, borrowed).
    /// A cleanup that sent signals is answered once its passes are
    /// re-measured (`settle_cleanups`); the loop never waits for it.
    pub fn serve(&mut self, request: ControlRequest, controller: &mut dyn Controller) {
        if let Some((target, report)) = self.pending.serve(request, controller, Instant::now()) {
            self.record(target, &report);
        }
    }

    /// After a reading: answers the cleanups whose passes `measured` says
    /// are re-measured (or out of time), and records them in the view.
    pub fn settle_cleanups(&mut self, measured: impl Fn(&str, f64) -> Measured) {
        for (target, report) in self.pending.settle(Instant::now(), measured) {
            self.record(target, &report);
        }
    }

    /// Actions the executor took (on its own or on request): the view's
    /// per-target last action and the `memwatch.actions` counters.
    pub fn record_actions(&mut self, performed: Vec<(String, crate::actions::incident::ActionRecord)>) {
        for (target, record) in performed {
            let name = |v: serde_json::Value| v.as_str().unwrap_or("unknown").to_owned();
            let action = ActionView {
                action: name(serde_json::to_value(record.action).unwrap_or_default()),
                result: name(serde_json::to_value(record.outcome).unwrap_or_default()),
                at_unix_s: record.t.max(0.0) as u64,
                freed_bytes: record.freed_bytes.unwrap_or(0).max(0) as u64,
            };
            self.builder.record_action(target, action);
        }
    }

    /// The view's last cleanup and per-target last action.
    fn record(&mut self, target: Option<String>, report: &control::CleanupReport) {
        let at = unix_now();
        let per_target = report
            .targets
            .iter()
            .map(|t| {
                let action = ActionView {
                    action: "cleanup".into(),
                    result: t.outcome.clone(),
                    at_unix_s: at,
                    freed_bytes: t.freed_bytes,
                };
                (t.target.clone(), action)
            })
            .collect();
        let actions =
            report.targets.iter().flat_map(|t| t.actions.iter().map(move |a| format!("{}: {a}", t.target))).collect();
        self.builder.record_cleanup(
            CleanupView { at_unix_s: at, target, freed_bytes: report.freed_bytes, actions },
            per_target,
        );
        self.builder.event(
            at,
            None,
            format!("requested cleanup freed {}", crate::bytes::human_bytes(report.freed_bytes)),
        );
    }

    fn read_host(&mut self) {
        match read_host(&self.proc_root) {
            Ok(host) => self.host = host,
            Err(e) => tracing::debug!("reading host memory: {e}"),
        }
    }

    fn publish(&mut self, view: crate::view::StatusView) {
        self.frames.set(frame_from(&view));
        self.store.publish(view);
    }

    pub fn event(&mut self, message: String) {
        self.builder.event(unix_now(), None, message);
    }

    /// Stops the servers (removing the socket) and flushes the exporter.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for server in self.servers {
            let _ = server.await;
        }
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
        if let Some(exporter) = self.otlp {
            // Blocking, and must not run on a runtime thread (see OtlpExporter::shutdown).
            let _ = tokio::task::spawn_blocking(move || exporter.shutdown()).await;
        }
    }
}
