//! The one path from a target's reading to engine events, shared by `memwatch
//! run` and `memwatch replay` so their verdicts agree: look up the target's
//! policy settings, resolve its limit, feed the engine.
use crate::{
    config::Config,
    engine::{Engine, EngineOptions, Event, Level, Reading, resolve_limit},
    model::{heap_ceiling::HeapCeiling, target_key::TargetKey},
};

/// What was measured of one target this interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub usage_bytes: u64,
    /// The target's own cgroup limit, if any (live: read from sysfs;
    /// replay: the trace's limit_bytes column).
    pub cgroup_limit: Option<u64>,
    /// PSI `some avg10` of its cgroup, in percent, where measured.
    pub pressure: Option<f64>,
    /// The heap ceiling its runtime declared (`model::heap_ceiling`).
    pub heap_ceiling: Option<HeapCeiling>,
}

pub struct Monitor {
    engine: Engine,
    config: Config,
    host_total: u64,
}

impl Monitor {
    /// `host_total` is the host's memory in bytes (the last-resort limit and
    /// the base of "NN%" limits).
    pub fn new(config: Config, host_total: u64, options: EngineOptions) -> Self {
        Self { engine: Engine::new(options), config, host_total }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A reloaded config: its thresholds and policies judge the next
    /// readings; what the engine learned of each target stays.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// One reading of the target `key`, judged by policy `policy` (`None`:
    /// the defaults).
    pub fn observe(
        &mut self,
        t: f64,
        key: &TargetKey,
        policy: Option<usize>,
        measured: Measured,
        events: &mut Vec<Event>,
    ) {
        let settings = self.config.settings(policy);
        let Measured { usage_bytes, cgroup_limit, pressure, heap_ceiling } = measured;
        let limit_bytes = self.limit_bytes(policy, cgroup_limit);
        let reading = Reading { t, key, usage_bytes, limit_bytes, pressure, heap_ceiling };
        self.engine.observe(&reading, &settings.engine, events);
    }

    /// The limit a target is judged against (what `observe` resolves).
    pub fn limit_bytes(&self, policy: Option<usize>, observed_limit: Option<u64>) -> u64 {
        resolve_limit(self.config.settings(policy).limit, observed_limit, self.host_total)
    }

    /// The target's current level, once it has been observed.
    pub fn level(&self, key: &TargetKey) -> Option<Level> {
        self.engine.level(key)
    }

    /// A cleanup step memwatch decided at `t` freed `bytes` of `key` (see
    /// `Engine::note_freed`).
    pub fn note_freed(&mut self, key: &TargetKey, t: f64, bytes: u64) {
        self.engine.note_freed(key, t, bytes);
    }

    /// Starts `key`'s trend history anew at `t` (see `Engine::restart_trend`).
    pub fn restart_trend(&mut self, t: f64, key: &TargetKey, events: &mut Vec<Event>) {
        self.engine.restart_trend(t, key, events);
    }

    /// Forgets targets that are gone.
    pub fn retain(&mut self, keep: impl FnMut(&TargetKey) -> bool) {
        self.engine.retain(keep);
    }
}
