//! The daemon's configuration file (TOML).
//!
//! Parsed whole with serde; unknown keys are errors, so a typo never silently
//! becomes a default.
use std::{path::Path, time::Duration};

use serde::Deserialize;

use crate::{
    collect::ModeRequest,
    observe_config::{ApiConfig, MetricsConfig, OtlpConfig},
};

/// The seed's sampling interval: often enough to catch a fast leak within a
/// minute, rarely enough to cost nothing measurable.
pub const DEFAULT_INTERVAL_SECS: f64 = 5.0;
/// mmaps at least this large are reported individually (debug log).
pub const DEFAULT_LARGE_MAPPING_BYTES: u64 = 64 << 20;
/// How many top growers the per-interval summary line names.
pub const DEFAULT_SUMMARY_TOP: usize = 3;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub daemon: DaemonConfig,
    // --- issue 5: observability and control (observe_config.rs) ---
    pub api: ApiConfig,
    pub otlp: OtlpConfig,
    pub metrics: MetricsConfig,
    // --- end issue 5 ---
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Seconds between two readings of the probes' maps.
    pub interval_secs: f64,
    /// `auto` (eBPF, else /proc polling), `ebpf` (or fail), `procfs`.
    pub mode: ModeRequest,
    /// mmaps at least this many bytes long are logged one by one.
    pub large_mapping_bytes: u64,
    /// Growers named in each interval's summary line.
    pub summary_top: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            interval_secs: DEFAULT_INTERVAL_SECS,
            mode: ModeRequest::Auto,
            large_mapping_bytes: DEFAULT_LARGE_MAPPING_BYTES,
            summary_top: DEFAULT_SUMMARY_TOP,
        }
    }
}

impl DaemonConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_secs)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid { path: path.display().to_string(), message })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        let interval = config.daemon.interval_secs;
        if !(interval.is_finite() && interval > 0.0 && interval <= 3600.0) {
            return Err(format!(
                "daemon.interval_secs = {interval}: must be more than 0 and at most 3600 seconds"
            ));
        }
        let errors = crate::observe_config::validate(&config.api, &config.otlp, &config.metrics);
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_config_is_valid_and_keeps_the_seed_interval() {
        let text = include_str!("../../config.toml");
        let config = Config::parse(text).unwrap();
        assert_eq!(config.daemon.interval(), Duration::from_secs(5));
        assert_eq!(config.daemon.mode, ModeRequest::Auto);
        // issue 5's tables: every key present in the file, at its default.
        assert_eq!(config.api, ApiConfig::default());
        assert_eq!(config.otlp, OtlpConfig::default());
        assert_eq!(config.metrics, MetricsConfig::default());
    }

    #[test]
    fn observability_tables_parse_and_bad_values_are_named() {
        let config = Config::parse(
            "[api]\ntcp_enabled = true\ntoken_file = \"/etc/memwatch/token\"\n[otlp]\nendpoint = \"http://c:4317\"\nheaders = { x-tenant = \"a\" }\n[metrics]\ntop_processes = 10\n",
        )
        .unwrap();
        assert!(config.api.tcp_enabled);
        assert_eq!(config.otlp.headers["x-tenant"], "a");
        assert_eq!(config.metrics.top_processes, 10);
        let err = Config::parse("[otlp]\ninterval_secs = -1\nendpoint = \"c:4317\"\n").unwrap_err();
        assert!(err.contains("otlp.interval_secs") && err.contains("otlp.endpoint"), "{err}");
        assert!(Config::parse("[api]\nport = 1\n").unwrap_err().contains("port"));
    }

    #[test]
    fn empty_config_means_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_and_bad_intervals_are_rejected_by_name() {
        let err = Config::parse("[daemon]\ninterval = 5\n").unwrap_err();
        assert!(err.contains("unknown field `interval`"), "{err}");
        let err = Config::parse("[daemon]\ninterval_secs = 0\n").unwrap_err();
        assert!(err.contains("daemon.interval_secs"), "{err}");
        let err = Config::parse("[daemon]\nmode = \"kprobe\"\n").unwrap_err();
        assert!(err.contains("mode"), "{err}");
    }
}
