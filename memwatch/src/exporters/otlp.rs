//! OTLP/gRPC export: one observable instrument per catalogue entry, whose
//! callback reads the latest frame when the SDK's periodic reader collects.
//!
//! Why memory stays bounded while the collector is away: the reader keeps no
//! queue (a failed export is dropped, the next one carries fresh cumulative
//! values), each export is cut off by the timeout, and observable
//! instruments hold only the series of their last callback (the SDK drops
//! attribute sets a callback no longer reports), which the frame bounds.
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use opentelemetry::{
    KeyValue,
    metrics::{AsyncInstrumentBuilder, MeterProvider as _},
};
use opentelemetry_otlp::{MetricExporter, WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    metrics::{PeriodicReader, SdkMeterProvider, Temporality, data::ResourceMetrics, exporter::PushMetricExporter},
};

use super::{
    catalog::{self, Kind, MetricDef},
    frame::{AttrValue, FrameCell, Series},
};

/// Export failures are logged at most this often; the rest are counted.
const FAILURE_LOG_PERIOD: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("building the OTLP exporter: {0}")]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("otlp.headers: {0}")]
    Header(String),
}

/// Where and how to export, resolved from the config and the environment.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// Collector URL, already resolved (see `resolve_endpoint`).
    pub endpoint: String,
    /// Between two collections (and exports).
    pub interval: Duration,
    /// Per export; None leaves it to OTEL_EXPORTER_OTLP_TIMEOUT or the SDK's 10 s.
    pub timeout: Option<Duration>,
    /// gRPC metadata, on top of OTEL_EXPORTER_OTLP_HEADERS.
    pub headers: Vec<(String, String)>,
    /// The `host.name` resource attribute.
    pub host_name: String,
}

impl OtlpSettings {
    /// The config's endpoint, else the standard variables, else the default:
    /// the SDK's own order (programmatic first), with our default endpoint.
    pub fn resolve_endpoint(configured: Option<&str>, env: impl Fn(&str) -> Option<String>) -> String {
        configured
            .map(str::to_owned)
            .or_else(|| env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| crate::config::observe::DEFAULT_OTLP_ENDPOINT.to_owned())
    }
}

/// Counts of exports, for logs, tests and the API.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
}

/// The OTLP exporter with its outcomes counted and failures logged
/// (rate-limited): the SDK itself says nothing without its internal logs.
struct Watched<E> {
    inner: E,
    stats: Arc<ExportStats>,
    last_log: Mutex<Option<Instant>>,
    /// The last export failed: the next success is worth a log line.
    failing: AtomicBool,
}

impl<E: PushMetricExporter> PushMetricExporter for Watched<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        match &result {
            Ok(()) => {
                self.stats.succeeded.fetch_add(1, Ordering::Relaxed);
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("OTLP export resumed");
                }
            }
            Err(e) => {
                self.failing.store(true, Ordering::Relaxed);
                let failed = self.stats.failed.fetch_add(1, Ordering::Relaxed) + 1;
                let mut last = self.last_log.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_none_or(|t| t.elapsed() >= FAILURE_LOG_PERIOD) {
                    tracing::warn!(
                        failed_so_far = failed,
                        "OTLP export failed (metrics dropped, will retry next interval): {e}"
                    );
                    *last = Some(Instant::now());
                }
            }
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

pub struct OtlpExporter {
    provider: SdkMeterProvider,
    pub stats: Arc<ExportStats>,
}

fn attributes(series: &Series) -> Vec<KeyValue> {
    series
        .attrs
        .iter()
        .map(|(k, v)| match v {
            AttrValue::Str(s) => KeyValue::new(*k, s.clone()),
            AttrValue::Int(i) => KeyValue::new(*k, *i),
        })
        .collect()
}

impl OtlpExporter {
    /// Must be called inside a tokio runtime (tonic's channel lives there).
    pub fn start(settings: &OtlpSettings, frames: FrameCell) -> Result<Self, OtlpError> {
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (key, value) in &settings.headers {
            let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes())
                .map_err(|e| OtlpError::Header(format!("{key}: {e}")))?;
            let value = value.parse().map_err(|e| OtlpError::Header(format!("{key}: {e}")))?;
            metadata.insert(key, value);
        }
        let mut builder =
            MetricExporter::builder().with_tonic().with_endpoint(settings.endpoint.clone()).with_metadata(metadata);
        if let Some(timeout) = settings.timeout {
            builder = builder.with_timeout(timeout);
        }
        let stats = Arc::new(ExportStats::default());
        let exporter = Watched {
            inner: builder.build()?,
            stats: Arc::clone(&stats),
            last_log: Mutex::new(None),
            failing: AtomicBool::new(false),
        };
        let reader = PeriodicReader::builder(exporter).with_interval(settings.interval).build();
        let resource = Resource::builder()
            .with_service_name("memwatch")
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("host.name", settings.host_name.clone()),
            ])
            .build();
        let provider = SdkMeterProvider::builder().with_resource(resource).with_reader(reader).build();
        let meter = provider.meter("memwatch");
        for def in catalog::ALL {
            register(&meter, def, frames.clone());
        }
        Ok(Self { provider, stats })
    }

    /// Exports what is pending and stops. Blocking: call it off the async
    /// threads (the SDK warns it can deadlock a current-thread runtime).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!("OTLP shutdown: {e}");
        }
    }
}

/// The SDK keeps the callback registered for the provider's lifetime.
fn register(meter: &opentelemetry::metrics::Meter, def: &'static MetricDef, frames: FrameCell) {
    match def.kind {
        Kind::Gauge => {
            observing(meter.f64_observable_gauge(def.name), def, frames, |value| value).build();
        }
        Kind::Counter if def.counts_fractions() => {
            observing(meter.f64_observable_counter(def.name), def, frames, |value| value).build();
        }
        Kind::Counter => {
            observing(meter.u64_observable_counter(def.name), def, frames, |value| value as u64).build();
        }
    }
}

/// `builder` described by `def`, its callback observing `def`'s series in
/// the latest frame as `measure` makes them.
fn observing<'a, I, M: 'static>(
    builder: AsyncInstrumentBuilder<'a, I, M>,
    def: &'static MetricDef,
    frames: FrameCell,
    measure: fn(f64) -> M,
) -> AsyncInstrumentBuilder<'a, I, M> {
    builder.with_unit(def.unit).with_description(def.help).with_callback(move |observer| {
        for series in frames.get().series(def) {
            observer.observe(measure(series.value), &attributes(series));
        }
    })
}

/// The host's name for `host.name`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_resolution_prefers_config_then_signal_then_generic_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(OtlpSettings::resolve_endpoint(None, env(&[])), "http://127.0.0.1:4317");
        assert_eq!(
            OtlpSettings::resolve_endpoint(None, env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://g:4317")])),
            "http://g:4317"
        );
        assert_eq!(
            OtlpSettings::resolve_endpoint(
                None,
                env(&[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://g:4317"),
                    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4317")
                ])
            ),
            "http://m:4317"
        );
        assert_eq!(
            OtlpSettings::resolve_endpoint(
                Some("http://c:4317"),
                env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://g:4317")])
            ),
            "http://c:4317"
        );
    }
}
