//! The daemon's configuration file (TOML) and its environment overrides.
//!
//! The file is parsed into a TOML table, then read key by key (`walk`), so
//! that every problem — unknown keys, wrong types, bad values — is collected
//! with its key path and reported together; a typo never silently becomes a
//! default, and a user fixes everything in one go.
pub mod actions;
pub mod cleanup;
mod env;
pub mod files;
pub mod observe;
mod policy;
mod pressure;
mod signal_warnings;
mod units;
mod walk;

use std::{collections::HashMap, fmt, path::Path, time::Duration};

pub use actions::{ActionSettings, ActionsConfig, LeakAction};
pub use env::{Env, from_process as env_from_process};
pub use policy::{Granularity, Identity, Matcher, Policy, PolicySettings};
pub use signal_warnings::signal_warnings;
pub use units::{parse_duration_secs, parse_size};

use toml::{Table, Value};
use walk::{Fields, Problems, expected};

use crate::{
    config::observe::{ApiConfig, MetricsConfig, OtlpConfig},
    sources::{collect::ModeRequest, ebpf::ProbeOptions},
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
/// Targets with a history of their own. Each costs about 6 KiB in the
/// engine (tests/engine_footprint.rs); 2000 is far more services than a host runs,
/// and caps what a `target = "process"` policy matching everything costs.
pub const DEFAULT_MAX_TARGETS: usize = 2000;
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
    /// On kernels that refuse fexit programs, count mmap/munmap/brk through
    /// the `syscalls:*` tracepoints, which slow every syscall on the host.
    pub syscall_tracepoints: bool,
    /// Growers named in each interval's summary line.
    pub summary_top: usize,
    /// Targets judged one by one; beyond this many (largest usage first),
    /// process targets are folded into their cgroup's target.
    pub max_targets: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            interval_secs: DEFAULT_INTERVAL_SECS,
            mode: ModeRequest::Auto,
            large_mapping_bytes: DEFAULT_LARGE_MAPPING_BYTES,
            syscall_tracepoints: false,
            summary_top: DEFAULT_SUMMARY_TOP,
            max_targets: DEFAULT_MAX_TARGETS,
        }
    }
}

impl DaemonConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_secs)
    }

    pub fn probe_options(&self) -> ProbeOptions {
        ProbeOptions { large_mapping_bytes: self.large_mapping_bytes, syscall_tracepoints: self.syscall_tracepoints }
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

/// A problem is shown on one line, at most this long: a TOML error echoes
/// the offending line, which a hostile file can make megabytes long.
const MAX_PROBLEM_CHARS: usize = 300;

/// One line of at most `MAX_PROBLEM_CHARS` characters.
fn one_line(problem: &str) -> String {
    let flat: String =
        problem.split('\n').map(str::trim_end).filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join(" | ");
    match flat.char_indices().nth(MAX_PROBLEM_CHARS) {
        Some((end, _)) => format!("{}… ({} characters in all)", &flat[..end], flat.chars().count()),
        None => flat,
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.iter().map(|p| one_line(p)).collect::<Vec<_>>().join("\n"))
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
    errors.0.iter().map(|e| format!("  {}", one_line(e))).collect::<Vec<_>>().join("\n")
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

    /// `load`, then the checks of the files it names (`files::check`):
    /// what `run` and `check-config` use, so they refuse the same things.
    pub fn load_for_daemon(path: &Path) -> Result<Self, ConfigError> {
        let config = Self::load(path)?;
        let problems = files::check(&config, path);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid { path: path.display().to_string(), errors: ConfigErrors(problems) })
        }
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
        config.defaults = policy::read_settings(&mut fields, &PolicySettings::default(), false, problems);
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
                // Name -> first index: linear in the number of policies.
                let mut names: HashMap<String, usize> = HashMap::with_capacity(entries.len());
                for (index, entry) in entries.iter().enumerate() {
                    if let Some(policy) = policy::read_policy(index, entry, &config.defaults, problems) {
                        if let Some(first) = names.get(&policy.name) {
                            problems.push(
                                &format!("policy[{index}].name"),
                                format!("duplicate policy name {:?} (already used by policy[{first}])", policy.name),
                            );
                        } else {
                            names.insert(policy.name.clone(), index);
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

/// `[api]`, `[otlp]`, `[metrics]` (observe.rs).
fn read_observe_tables(top: &mut Fields<'_>, config: &mut Config, problems: &mut Problems) {
    config.api = match top.table("api", problems) {
        Some(table) => observe::read_api(table, problems),
        None => ApiConfig::default(),
    };
    if let Some(table) = top.table("otlp", problems) {
        config.otlp = observe::read_otlp(table, problems);
    }
    if let Some(table) = top.table("metrics", problems) {
        config.metrics = observe::read_metrics(table, problems);
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
        Value::String(s) => match units::parse_size(s)? {
            0 => Err(format!("{s:?} must be more than 0 bytes")),
            bytes => Ok(bytes),
        },
        Value::Integer(i) => Err(format!("{i} must be more than 0 bytes")),
        other => Err(expected("bytes (an integer) or a size string", other)),
    }) {
        daemon.large_mapping_bytes = bytes;
    }
    if let Some(on) = fields.bool("syscall_tracepoints", problems) {
        daemon.syscall_tracepoints = on;
    }
    if let Some(top) = fields.unsigned("summary_top", problems) {
        daemon.summary_top = usize::try_from(top).unwrap_or(usize::MAX);
    }
    if let Some(max) = fields.unsigned("max_targets", problems) {
        match usize::try_from(max) {
            Ok(n @ 1..=100_000) => daemon.max_targets = n,
            _ => problems.push("daemon.max_targets", format!("{max} must be between 1 and 100000")),
        }
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
