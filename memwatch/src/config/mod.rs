//! The daemon's configuration file (TOML) and its environment overrides.
//!
//! The file is parsed into a TOML table, then read key by key (`walk`), so
//! that every problem — unknown keys, wrong types, bad values — is collected
//! with its key path and reported together; a typo never silently becomes a
//! default, and a user fixes everything in one go.
pub mod actions;
mod env;
pub mod observe;
mod policy;
mod units;
mod walk;

use std::{fmt, path::Path, time::Duration};

pub use actions::{ActionSettings, ActionsConfig, LeakAction};
pub use env::{Env, from_process as env_from_process};
pub use policy::{Granularity, Identity, Matcher, Policy, PolicySettings};
pub use units::{parse_duration_secs, parse_size};

use toml::{Table, Value};
use walk::{Fields, Problems, expected};

use crate::{
    config::observe::{ApiConfig, MetricsConfig, OtlpConfig},
    sources::collect::ModeRequest,
};

/// What records and logs call the `[defaults]` "policy".
pub const DEFAULTS_NAME: &str = "defaults";

/// The seed's sampling interval: often enough to catch a fast leak within a
/// minute, rarely enough to cost nothing measurable.
pub const DEFAULT_INTERVAL_SECS: f64 = 5.0;
/// mmaps at least this large are reported individually (debug log).
pub const DEFAULT_LARGE_MAPPING_BYTES: u64 = 64 << 20;
/// How many top growers the per-interval summary line names.
pub const DEFAULT_SUMMARY_TOP: usize = 3;
/// The seed's cache size (entries) and entry lifetime.
pub const DEFAULT_CACHE_MAX_SIZE: u64 = 1000;
pub const DEFAULT_CACHE_TTL_SECS: f64 = 30.0 * 60.0;

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub cache: CacheConfig,
    /// `[actions]`: daemon-wide action settings (files, global dry run).
    pub actions: ActionsConfig,
    /// What applies to targets no policy matches, and what policies inherit.
    pub defaults: PolicySettings,
    /// In file order: the first match wins.
    pub policies: Vec<Policy>,
    // --- issue 5: observability and control (observe_config.rs) ---
    pub api: ApiConfig,
    pub otlp: OtlpConfig,
    pub metrics: MetricsConfig,
    // --- end issue 5 ---
}

#[derive(Debug, Clone, PartialEq)]
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

/// The seed's cache settings. Read and validated here; used by a later issue.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Entries kept at most.
    pub max_size: u64,
    /// Seconds an entry lives.
    pub ttl_secs: f64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { max_size: DEFAULT_CACHE_MAX_SIZE, ttl_secs: DEFAULT_CACHE_TTL_SECS }
    }
}

/// Every problem found in a configuration, each as "key.path: what is wrong".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

/// Why a configuration cannot be used. `main` maps it to exit status 78 (EX_CONFIG).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {} error(s):\n{}", errors.0.len(), indent(errors))]
    Invalid { path: String, errors: ConfigErrors },
}

fn indent(errors: &ConfigErrors) -> String {
    errors.0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
}

impl Config {
    /// Reads `path`, with overrides from the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, &env::from_process())
    }

    pub fn load_with_env(path: &Path, env: &Env) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse_with_env(&text, env)
            .map_err(|errors| ConfigError::Invalid { path: path.display().to_string(), errors })
    }

    /// Parses `text` alone (no environment).
    pub fn parse(text: &str) -> Result<Self, ConfigErrors> {
        Self::parse_with_env(text, &Env::new())
    }

    pub fn parse_with_env(text: &str, env: &Env) -> Result<Self, ConfigErrors> {
        let table: Table =
            text.parse().map_err(|e: toml::de::Error| ConfigErrors(vec![e.to_string().trim_end().to_owned()]))?;
        let mut problems = Problems::default();
        let config = read_config(&table, env, &mut problems);
        if problems.0.is_empty() { Ok(config) } else { Err(ConfigErrors(problems.0)) }
    }

    /// The index of the first policy matching `id`.
    pub fn policy_for(&self, id: &Identity<'_>) -> Option<usize> {
        self.policies.iter().position(|p| p.matcher.matches(id))
    }

    /// The name of policy `index` as logs and records show it; `defaults`
    /// for targets no policy matched.
    pub fn policy_name(&self, index: Option<usize>) -> &str {
        index.and_then(|i| self.policies.get(i)).map_or(DEFAULTS_NAME, |p| p.name.as_str())
    }

    /// The settings of policy `index`, or the defaults.
    pub fn settings(&self, index: Option<usize>) -> &PolicySettings {
        index.and_then(|i| self.policies.get(i)).map_or(&self.defaults, |p| &p.settings)
    }
}

fn read_config(table: &Table, env: &Env, problems: &mut Problems) -> Config {
    let mut top = Fields::new(table, "");
    let mut config = Config::default();
    if let Some(daemon) = top.table("daemon", problems) {
        config.daemon = read_daemon(daemon, problems);
    }
    if let Some(cache) = top.table("cache", problems) {
        config.cache = read_cache(cache, problems);
    }
    env::apply_cache(env, &mut config.cache, problems);
    if let Some(actions) = top.table("actions", problems) {
        config.actions = actions::read_config(actions, problems);
    }

    if let Some(defaults) = top.table("defaults", problems) {
        let mut fields = Fields::new(defaults, "defaults");
        config.defaults = policy::read_settings(&mut fields, &PolicySettings::default(), problems);
        fields.finish(problems);
    }
    let from_env = env::apply_thresholds(env, &mut config.defaults.engine.thresholds, problems);
    let mut threshold_problems = Problems::default();
    policy::check_thresholds("defaults", &config.defaults.engine.thresholds, &mut threshold_problems);
    for problem in threshold_problems.0 {
        // Name the variables involved: the file may be fine and the environment not.
        let set_by: Vec<String> = from_env.iter().map(|(level, var)| format!("{level} from {var}")).collect();
        if set_by.is_empty() {
            problems.0.push(problem);
        } else {
            problems.0.push(format!("{problem} ({})", set_by.join(", ")));
        }
    }

    if let Some(value) = top.raw("policy") {
        match value {
            Value::Array(entries) => {
                for (index, entry) in entries.iter().enumerate() {
                    if let Some(policy) = policy::read_policy(index, entry, &config.defaults, problems) {
                        if let Some(first) = config.policies.iter().position(|p| p.name == policy.name) {
                            problems.push(
                                &format!("policy[{index}].name"),
                                format!("duplicate policy name {:?} (already used by policy[{first}])", policy.name),
                            );
                        }
                        config.policies.push(policy);
                    }
                }
            }
            other => problems.push("policy", expected("an array of tables ([[policy]])", other)),
        }
    }
    read_observe_tables(&mut top, &mut config, problems);
    top.finish(problems);
    config
}

/// issue 5's tables are plain serde structs (observe_config.rs); their
/// errors join the others, each with its key path.
fn read_observe_tables(top: &mut Fields<'_>, config: &mut Config, problems: &mut Problems) {
    fn table<T: serde::de::DeserializeOwned + Default>(
        top: &mut Fields<'_>,
        key: &'static str,
        problems: &mut Problems,
    ) -> T {
        match top.raw(key) {
            None => T::default(),
            Some(value) => T::deserialize(value.clone()).unwrap_or_else(|e| {
                problems.push(key, e.to_string().trim_end());
                T::default()
            }),
        }
    }
    config.api = table(top, "api", problems);
    config.otlp = table(top, "otlp", problems);
    config.metrics = table(top, "metrics", problems);
    for problem in crate::config::observe::validate(&config.api, &config.otlp, &config.metrics) {
        problems.0.push(problem);
    }
}

fn read_daemon(table: &Table, problems: &mut Problems) -> DaemonConfig {
    let mut fields = Fields::new(table, "daemon");
    let mut daemon = DaemonConfig::default();
    if let Some(interval) = fields.number("interval_secs", problems) {
        if interval.is_finite() && interval > 0.0 && interval <= 3600.0 {
            daemon.interval_secs = interval;
        } else {
            problems.push("daemon.interval_secs", format!("{interval}: must be more than 0 and at most 3600 seconds"));
        }
    }
    if let Some(mode) = fields.read("mode", problems, |v| match v.as_str() {
        Some("auto") => Ok(ModeRequest::Auto),
        Some("ebpf") => Ok(ModeRequest::Ebpf),
        Some("procfs") => Ok(ModeRequest::Procfs),
        Some(other) => Err(format!("{other:?} is not a mode (use \"auto\", \"ebpf\" or \"procfs\")")),
        None => Err(expected("a string", v)),
    }) {
        daemon.mode = mode;
    }
    if let Some(bytes) = fields.read("large_mapping_bytes", problems, |v| match v {
        Value::Integer(i) if *i > 0 => Ok(*i as u64),
        Value::String(s) => units::parse_size(s),
        Value::Integer(i) => Err(format!("{i} must be more than 0 bytes")),
        other => Err(expected("bytes (an integer) or a size string", other)),
    }) {
        daemon.large_mapping_bytes = bytes;
    }
    if let Some(top) = fields.unsigned("summary_top", problems) {
        daemon.summary_top = usize::try_from(top).unwrap_or(usize::MAX);
    }
    fields.finish(problems);
    daemon
}

fn read_cache(table: &Table, problems: &mut Problems) -> CacheConfig {
    let mut fields = Fields::new(table, "cache");
    let mut cache = CacheConfig::default();
    if let Some(size) = fields.unsigned("max_size", problems) {
        if size > 0 {
            cache.max_size = size;
        } else {
            problems.push("cache.max_size", "must be above 0");
        }
    }
    if let Some(ttl) = fields.read("ttl", problems, policy::read_duration) {
        if ttl > 0.0 {
            cache.ttl_secs = ttl;
        } else {
            problems.push("cache.ttl", "must be longer than 0 seconds");
        }
    }
    fields.finish(problems);
    cache
}

#[cfg(test)]
mod tests;
