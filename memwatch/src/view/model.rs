//! The view model: everything the API, the exporters and the CLI show, as
//! one value rebuilt each interval. It is the boundary between whoever
//! decides (the engine, and the actions for the cleanup records)
//! and whoever shows; nothing here does I/O.
use serde::{Deserialize, Serialize};

use super::{Level, Thresholds};
use crate::{cache::CacheStats, model::container::Container, model::working_set::Pressure};

/// How many readings of each target are kept for sparklines (`memwatch top`).
pub const HISTORY_LEN: usize = 60;
/// How many recent events the view keeps.
pub const EVENTS_LEN: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostView {
    /// MemTotal - MemAvailable, bytes.
    pub used: u64,
    pub total: u64,
    pub usage_ratio: f64,
    pub free: u64,
    pub buffers: u64,
    pub cached: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakView {
    pub slope_bytes_per_s: f64,
    /// 0..1.
    pub confidence: f64,
    /// None when the usage is not heading for the limit.
    pub time_to_limit_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionView {
    pub action: String,
    /// The outcome: "ok", "failed", "dry_run", "refused", "skipped", ...
    pub result: String,
    pub at_unix_s: u64,
    pub freed_bytes: u64,
}

/// The container (and Kubernetes pod) a target or process runs in, as the
/// cgroup path names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerView {
    pub id: String,
    /// Where the runtime's or the kubelet's files name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl From<&Container> for ContainerView {
    fn from(c: &Container) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            runtime: c.runtime.map(|r| r.as_str().to_owned()),
            pod_uid: c.pod.as_ref().map(|p| p.uid.clone()),
            qos_class: c.pod.as_ref().map(|p| p.qos.as_str().to_owned()),
            pod_name: c.pod.as_ref().and_then(|p| p.name.clone()),
            namespace: c.pod.as_ref().and_then(|p| p.namespace.clone()),
        }
    }
}

impl ContainerView {
    /// The id as `docker ps` and `crictl ps` show it.
    pub fn short_id(&self) -> &str {
        Container::short(&self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetView {
    pub name: String,
    /// "unit", "cgroup", "host", or whatever the engine's policies name.
    pub kind: String,
    /// What the level is judged on: a cgroup target's working set where
    /// `charged_bytes` was read, else its processes' RSS summed.
    pub usage_bytes: u64,
    /// What its cgroup is charged (page cache and kernel memory included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged_bytes: Option<u64>,
    /// Its cgroup's memory pressure (cgroup v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure: Option<Pressure>,
    pub limit_bytes: u64,
    pub level: Level,
    pub growth_bytes_per_s: f64,
    pub leak: Option<LeakView>,
    pub last_action: Option<ActionView>,
    pub processes: usize,
    /// Last readings of `usage_bytes`, oldest first, at most HISTORY_LEN.
    pub history: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerView>,
}

impl TargetView {
    pub fn usage_ratio(&self) -> f64 {
        if self.limit_bytes == 0 { 0.0 } else { self.usage_bytes as f64 / self.limit_bytes as f64 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessView {
    pub pid: u32,
    pub comm: String,
    pub cmdline: String,
    pub cgroup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerView>,
    pub target: String,
    pub rss_bytes: u64,
    /// Virtual size, where it was read.
    pub virtual_bytes: Option<u64>,
    pub growth_bytes_per_s: f64,
    /// Since the process started (procfs) or since the probes attached (eBPF).
    pub page_faults: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanupView {
    pub at_unix_s: u64,
    pub target: Option<String>,
    pub freed_bytes: u64,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub at_unix_s: u64,
    pub target: Option<String>,
    pub message: String,
}

/// Cumulative count of one (action, result) pair: `memwatch.actions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCount {
    pub action: String,
    pub result: String,
    pub count: u64,
}

/// The last `SIGHUP` (config reload) and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadView {
    pub at_unix_s: u64,
    /// The new config is in force (but for `restart_needed`).
    pub applied: bool,
    /// Why it was refused, as `check-config` says it.
    pub errors: Vec<String>,
    /// Changed keys that only a restart applies.
    pub restart_needed: Vec<String>,
    /// Reloads since start, applied and refused.
    pub applied_total: u64,
    pub rejected_total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub generated_at_unix_s: u64,
    pub interval_s: f64,
    /// "ebpf" or "procfs".
    pub mode: String,
    /// False until the first reading.
    pub monitoring: bool,
    pub host: HostView,
    pub thresholds: Thresholds,
    /// Worst level first, then largest usage.
    pub targets: Vec<TargetView>,
    /// The processes exported one by one: the top growers.
    pub processes: Vec<ProcessView>,
    pub caches: Vec<CacheStats>,
    pub last_cleanup: Option<CleanupView>,
    /// Newest last.
    pub events: Vec<EventView>,
    pub actions: Vec<ActionCount>,
    /// Bytes freed by cleanups since start, all targets.
    pub cleanup_freed_bytes: u64,
    /// Kernel-side events lost, by kind (cumulative).
    pub bpf_events_lost: Vec<(String, u64)>,
    /// The last config reload, if any.
    #[serde(default)]
    pub config_reload: Option<ReloadView>,
    /// The daemon's own footprint, where it could be read.
    #[serde(default)]
    pub daemon: Option<DaemonView>,
}

/// What the daemon itself costs the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonView {
    pub rss_bytes: u64,
    /// User and system CPU time since it started.
    pub cpu_seconds: f64,
}

impl StatusView {
    pub fn worst_level(&self) -> Level {
        self.targets.iter().map(|t| t.level).max().unwrap_or_default()
    }

    pub fn target(&self, name: &str) -> Option<&TargetView> {
        self.targets.iter().find(|t| t.name == name)
    }
}
