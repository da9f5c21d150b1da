//! `[api]`, `[otlp]` and `[metrics]`: read by the same walker as every other
//! table, so each problem is reported, all at once, as `path: problem`.
use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use axum::http;
use toml::Table;

use super::{
    policy::read_duration,
    walk::{Fields, Problems, expected},
};

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
/// Open connections per listener. A scraper, `status`, `top` and a few
/// health checks need a handful; the cap keeps a flood of clients from
/// taking the file descriptors the monitoring needs.
pub const DEFAULT_MAX_CONNECTIONS: usize = 32;
/// A client has this long to send a request's headers, and a kept-alive
/// connection may sit idle this long between requests.
pub const DEFAULT_HEADER_TIMEOUT_SECS: f64 = 10.0;
/// A client has this long to send a request's body.
pub const DEFAULT_BODY_TIMEOUT_SECS: f64 = 10.0;

#[derive(Debug, Clone, PartialEq)]
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
    pub max_connections: usize,
    pub header_timeout_secs: f64,
    pub body_timeout_secs: f64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_SOCKET),
            tcp_enabled: false,
            tcp_listen: DEFAULT_TCP_LISTEN.parse().expect("valid default address"),
            token_file: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout_secs: DEFAULT_HEADER_TIMEOUT_SECS,
            body_timeout_secs: DEFAULT_BODY_TIMEOUT_SECS,
        }
    }
}

impl ApiConfig {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_timeout_secs)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.body_timeout_secs)
    }
}

#[derive(Debug, Clone, PartialEq)]
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

#[derive(Debug, Clone, PartialEq)]
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

/// Seconds in (0, 3600].
fn seconds(fields: &mut Fields<'_>, key: &'static str, problems: &mut Problems) -> Option<f64> {
    let secs = fields.read(key, problems, read_duration)?;
    if secs > 0.0 && secs <= 3600.0 {
        Some(secs)
    } else {
        problems.push(&fields.path_of(key), format!("{secs} must be more than 0 and at most 3600 seconds"));
        None
    }
}

pub fn read_api(table: &Table, problems: &mut Problems) -> ApiConfig {
    let mut fields = Fields::new(table, "api");
    let mut api = ApiConfig::default();
    if let Some(socket) = fields.string("socket", problems) {
        api.socket = PathBuf::from(socket);
    }
    if let Some(enabled) = fields.bool("tcp_enabled", problems) {
        api.tcp_enabled = enabled;
    }
    if let Some(address) = fields.read("tcp_listen", problems, |v| match v.as_str() {
        Some(text) => {
            text.parse::<SocketAddr>().map_err(|_| format!("{text:?} is not an address like \"127.0.0.1:9464\""))
        }
        None => Err(expected("an address string like \"127.0.0.1:9464\"", v)),
    }) {
        api.tcp_listen = address;
    }
    if let Some(path) = fields.string("token_file", problems) {
        if path.trim().is_empty() {
            problems.push(&fields.path_of("token_file"), "must not be empty (leave it out for no token)");
        } else {
            api.token_file = Some(PathBuf::from(path));
        }
    }
    if let Some(max) = fields.unsigned("max_connections", problems) {
        match usize::try_from(max) {
            Ok(n @ 1..=1024) => api.max_connections = n,
            _ => problems.push(&fields.path_of("max_connections"), format!("{max} must be between 1 and 1024")),
        }
    }
    if let Some(secs) = seconds(&mut fields, "header_timeout", problems) {
        api.header_timeout_secs = secs;
    }
    if let Some(secs) = seconds(&mut fields, "body_timeout", problems) {
        api.body_timeout_secs = secs;
    }
    fields.finish(problems);
    if api.socket.as_os_str().is_empty() && !api.tcp_enabled {
        problems.push("api.socket", "\"\" with tcp_enabled = false leaves the daemon without an API");
    }
    api
}

pub fn read_otlp(table: &Table, problems: &mut Problems) -> OtlpConfig {
    let mut fields = Fields::new(table, "otlp");
    let mut otlp = OtlpConfig::default();
    if let Some(enabled) = fields.bool("enabled", problems) {
        otlp.enabled = enabled;
    }
    if let Some(endpoint) = fields.read("endpoint", problems, |v| match v.as_str() {
        Some(text) => check_endpoint(text).map(|()| text.to_owned()),
        None => Err(expected("a URL string like \"http://127.0.0.1:4317\"", v)),
    }) {
        otlp.endpoint = Some(endpoint);
    }
    otlp.interval_secs = seconds(&mut fields, "interval_secs", problems);
    otlp.timeout_secs = seconds(&mut fields, "timeout_secs", problems);
    if let Some(headers) = fields.table("headers", problems) {
        let path = fields.path_of("headers");
        for (name, value) in headers {
            let key = format!("{path}.{name}");
            match value.as_str() {
                Some(value) => match check_header(name, value) {
                    Ok(()) => {
                        otlp.headers.insert(name.clone(), value.to_owned());
                    }
                    Err(problem) => problems.push(&key, problem),
                },
                None => problems.push(&key, expected("a string", value)),
            }
        }
    }
    fields.finish(problems);
    otlp
}

pub fn read_metrics(table: &Table, problems: &mut Problems) -> MetricsConfig {
    let mut fields = Fields::new(table, "metrics");
    let mut metrics = MetricsConfig::default();
    if let Some(top) = fields.unsigned("top_processes", problems) {
        match usize::try_from(top) {
            Ok(n @ 0..=1000) => metrics.top_processes = n,
            _ => problems.push(&fields.path_of("top_processes"), format!("{top} is more than 1000 (cardinality)")),
        }
    }
    fields.finish(problems);
    metrics
}

/// An http(s) URL with a host.
fn check_endpoint(text: &str) -> Result<(), String> {
    let uri: http::Uri = text.parse().map_err(|e| format!("{text:?} is not a URL with a host ({e})"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("{text:?} must start with http:// or https://"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    Ok(())
}

/// A header gRPC metadata can carry: a lower-case token name, a visible
/// ASCII value (no NUL, no line break).
fn check_header(name: &str, value: &str) -> Result<(), String> {
    http::HeaderName::from_lowercase(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name (lower-case letters, digits, '-')"))?;
    let value_ok = http::HeaderValue::from_str(value).is_ok() && !value.bytes().any(|b| b < 0x20 || b == 0x7f);
    if !value_ok {
        return Err("the value holds a control character (NUL, line break, ...)".to_owned());
    }
    Ok(())
}
