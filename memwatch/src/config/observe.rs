//! The `[api]`, `[otlp]` and `[metrics]` tables (issue 5). Kept apart from
//! config.rs so the engine's tables and these merge without touching each other.
use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

/// Where `memwatch status` / `top` look by default, and where the daemon listens.
pub const DEFAULT_SOCKET: &str = "/run/memwatch/memwatch.sock";
/// The port Prometheus exporters conventionally take for a host agent's
/// metrics (9464 is OpenTelemetry's Prometheus exporter default); loopback only.
pub const DEFAULT_TCP_LISTEN: &str = "127.0.0.1:9464";
/// The OTLP/gRPC port of a collector on the same host.
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://127.0.0.1:4317";
/// The OTLP exporters' own default: long enough for a loaded collector,
/// short enough that a dead one does not stall the next export for long.
pub const DEFAULT_OTLP_TIMEOUT_SECS: f64 = 10.0;
/// Per-process series are exported for this many top growers.
pub const DEFAULT_TOP_PROCESSES: usize = 50;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Unix socket of the API (mode 0600); "" turns it off.
    pub socket: PathBuf,
    /// Also listen on TCP: /metrics and /health open, the rest behind the token.
    pub tcp_enabled: bool,
    /// Address of the TCP listener.
    pub tcp_listen: SocketAddr,
    /// File holding the bearer token for TCP requests; none means every
    /// protected endpoint answers 401 over TCP.
    pub token_file: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_SOCKET),
            tcp_enabled: false,
            tcp_listen: DEFAULT_TCP_LISTEN.parse().expect("valid default address"),
            token_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// Export metrics over OTLP/gRPC.
    pub enabled: bool,
    /// Collector endpoint. Unset: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, then
    /// OTEL_EXPORTER_OTLP_ENDPOINT, then DEFAULT_OTLP_ENDPOINT.
    pub endpoint: Option<String>,
    /// Seconds between exports. Unset: the sample interval.
    pub interval_secs: Option<f64>,
    /// Seconds one export may take. Unset: OTEL_EXPORTER_OTLP_TIMEOUT, else 10.
    pub timeout_secs: Option<f64>,
    /// gRPC metadata sent with every export (added to OTEL_EXPORTER_OTLP_HEADERS).
    pub headers: BTreeMap<String, String>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self { enabled: true, endpoint: None, interval_secs: None, timeout_secs: None, headers: BTreeMap::new() }
    }
}

impl OtlpConfig {
    pub fn interval(&self, sample_interval: Duration) -> Duration {
        self.interval_secs.map_or(sample_interval, Duration::from_secs_f64)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Processes exported one by one (top growers); the rest only count in
    /// their target's series. Bounds the exporters' cardinality.
    pub top_processes: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { top_processes: DEFAULT_TOP_PROCESSES }
    }
}

/// Every problem of these tables, each with its key path.
pub fn validate(api: &ApiConfig, otlp: &OtlpConfig, metrics: &MetricsConfig) -> Vec<String> {
    let mut errors = Vec::new();
    let seconds = |key: &str, value: Option<f64>, errors: &mut Vec<String>| {
        if let Some(v) = value
            && !(v.is_finite() && v > 0.0 && v <= 3600.0)
        {
            errors.push(format!("{key}: {v} must be more than 0 and at most 3600 seconds"));
        }
    };
    seconds("otlp.interval_secs", otlp.interval_secs, &mut errors);
    seconds("otlp.timeout_secs", otlp.timeout_secs, &mut errors);
    if let Some(endpoint) = &otlp.endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        errors.push(format!("otlp.endpoint: {endpoint:?} must start with http:// or https://"));
    }
    if metrics.top_processes > 1000 {
        errors.push(format!("metrics.top_processes: {} is more than 1000 (cardinality)", metrics.top_processes));
    }
    if api.socket.as_os_str().is_empty() && !api.tcp_enabled {
        errors.push("api.socket: \"\" with tcp_enabled = false leaves the daemon without an API".into());
    }
    errors
}
