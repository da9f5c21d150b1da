//! The daemon's observability and control, as one piece the loop drives: it
//! owns the caches, the view and its store, feeds the exporters, serves the
//! API, and hands the API's control requests to the loop.
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    actions::Readiness,
    api::{
        self, ApiState,
        auth::Token,
        control::{self, ControlRequest, Controller, PendingCleanups},
        listen::{self, ListenError},
    },
    cache::{CacheLimits, CacheRegistry},
    config::Config,
    engine::planner::Measured,
    exporters::{FrameCell, otlp, prometheus::PrometheusExporter},
    model::target_key::TargetKey,
    sources::collect::{PROCESS_INFO_CACHE, ProcessInfoCache},
    view::{HostView, LeakView, StatusStore, builder::ViewBuilder},
};

#[path = "observe_view.rs"]
mod view_update;

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("{key}: {source}")]
    Listen { key: &'static str, source: ListenError },
    #[error("api.token_file: {0}")]
    Token(String),
}

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
    leaks: HashMap<TargetKey, LeakView>,
    cache_limits: CacheLimits,
}

/// The bounds `[cache]` sets for every cache.
pub fn cache_limits(config: &Config) -> CacheLimits {
    CacheLimits { max_entries: config.cache.max_size, ttl: Duration::from_secs_f64(config.cache.ttl_secs) }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Observability {
    /// Binds the API listeners and starts the OTLP exporter. A listener that
    /// cannot bind stops the daemon (a silent API would fool health checks);
    /// an OTLP exporter that cannot be built is logged and skipped.
    ///
    /// `[cache]` bounds every cache. `readiness` is the executor's
    /// not-ready flag: `GET /health` reads it.
    pub async fn start(config: &Config, readiness: Readiness) -> Result<Self, ObserveError> {
        let caching = cache_limits(config);
        let info_cache = Arc::new(ProcessInfoCache::new(PROCESS_INFO_CACHE, caching));
        let mut caches = CacheRegistry::default();
        caches.register(info_cache.clone());

        let interval = config.daemon.interval();
        let builder = ViewBuilder::new(config.defaults.engine.thresholds, config.metrics.top_processes);
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
        let listeners = usize::from(socket.is_some()) + usize::from(config.api.tcp_enabled);
        let limits = api::Limits {
            max_connections: connections_per_listener(config.api.max_connections, listeners),
            header_timeout: config.api.header_timeout(),
            body_timeout: config.api.body_timeout(),
            max_age: api::MAX_AGE,
        };
        if let Some(path) = &socket {
            let listener =
                listen::bind_unix(path).await.map_err(|source| ObserveError::Listen { key: "api.socket", source })?;
            tracing::info!(socket = %path.display(), "API listening (unix socket, mode 0600)");
            let (state, stop) = (state.clone(), until_stopped());
            servers.push(tokio::spawn(api::serve_unix(listener, state, limits, stop)));
        }
        if config.api.tcp_enabled {
            let token = match &config.api.token_file {
                Some(path) => Token::load(path).map_err(ObserveError::Token)?,
                None => {
                    tracing::warn!("api.tcp_enabled without api.token_file: only /metrics and /health answer over TCP");
                    Token::none()
                }
            };
            let listener = listen::bind_tcp(config.api.tcp_listen)
                .await
                .map_err(|source| ObserveError::Listen { key: "api.tcp_listen", source })?;
            tracing::info!(address = %config.api.tcp_listen, "API listening (TCP; /metrics and /health open, the rest needs the token)");
            let (state, stop) = (state.clone(), until_stopped());
            servers.push(tokio::spawn(api::serve_tcp(listener, state, token, limits, stop)));
        }

        Ok(Self {
            otlp: start_otlp(config, interval, &frames),
            cache_limits: caching,
            pending: PendingCleanups::default(),
            info_cache,
            caches,
            builder,
            store,
            frames,
            requests,
            servers,
            stop,
            socket,
            proc_root: PathBuf::from("/proc"),
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

    /// Answers one API request with `controller`. A cleanup that sent
    /// signals is answered once its passes are re-measured
    /// (`settle_cleanups`); the loop never waits for it.
    pub fn serve(&mut self, request: ControlRequest, controller: &mut dyn Controller) {
        if let Some((target, report)) = self.pending.serve(request, controller, Instant::now()) {
            self.record_cleanup(target, &report);
        }
    }

    /// When a parked cleanup answer is due even without a reading.
    pub fn next_answer_deadline(&self) -> Option<Instant> {
        self.pending.next_deadline()
    }

    /// After a reading: answers the cleanups whose passes `measured` says
    /// are re-measured (or out of time), and records them in the view.
    pub fn settle_cleanups(&mut self, measured: impl Fn(&TargetKey, f64) -> Measured) {
        for (target, report) in self.pending.settle(Instant::now(), measured) {
            self.record_cleanup(target, &report);
        }
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

/// Descriptors held for the monitoring itself beyond those open at start:
/// a /proc walk (directory and a file or two at a time), cgroup and
/// meminfo reads, the state and incident files, the OTLP channel, a
/// recording, with room to spare.
const MONITORING_RESERVE: u64 = 24;

/// Connections each listener may hold: the configured cap, lowered if the
/// file descriptor limit would otherwise let API clients take the
/// descriptors the monitoring needs (those open now, plus a reserve).
fn connections_per_listener(configured: usize, listeners: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let spare = limit.saturating_sub(open + MONITORING_RESERVE);
    let fair = usize::try_from(spare / listeners.max(1) as u64).unwrap_or(usize::MAX);
    if fair >= configured {
        return configured;
    }
    let lowered = fair.max(1);
    tracing::warn!(
        nofile = limit,
        open,
        per_listener = lowered,
        "api.max_connections {configured} lowered to {lowered} per listener: the file descriptor limit \
         leaves no more beside what the monitoring needs (raise it with LimitNOFILE= or ulimit -n)"
    );
    lowered
}

fn start_otlp(config: &Config, interval: Duration, frames: &FrameCell) -> Option<otlp::OtlpExporter> {
    if !config.otlp.enabled {
        return None;
    }
    let settings = otlp::OtlpSettings {
        endpoint: otlp::OtlpSettings::resolve_endpoint(config.otlp.endpoint.as_deref(), |k| std::env::var(k).ok()),
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
}
