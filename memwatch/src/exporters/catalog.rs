//! Every metric memwatch exports, named once. OTLP uses `name` and `unit`
//! (OpenTelemetry semantic conventions where they exist); Prometheus gets the
//! conventional translation of the same definition (dots to underscores, a
//! unit suffix, `_total` on counters), so the two never drift apart.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Monotonic; the value is the running total.
    Counter,
}

#[derive(Debug, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    /// UCUM, as OTLP carries it.
    pub unit: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

macro_rules! metric {
    ($id:ident, $name:literal, $unit:literal, $kind:ident, $help:literal) => {
        pub static $id: MetricDef = MetricDef { name: $name, unit: $unit, kind: Kind::$kind, help: $help };
    };
}

metric!(SYSTEM_MEMORY_USAGE, "system.memory.usage", "By", Gauge, "Host memory in use, by state");
metric!(SYSTEM_MEMORY_UTILIZATION, "system.memory.utilization", "1", Gauge, "Share of host memory in use");
metric!(SYSTEM_MEMORY_LIMIT, "system.memory.limit", "By", Gauge, "Total host memory");
metric!(PROCESS_MEMORY_USAGE, "process.memory.usage", "By", Gauge, "Resident memory of a process");
metric!(PROCESS_MEMORY_VIRTUAL, "process.memory.virtual", "By", Gauge, "Virtual memory of a process");
metric!(PROCESS_PAGING_FAULTS, "process.paging.faults", "{fault}", Counter, "Page faults of a process");
metric!(
    TARGET_USAGE,
    "memwatch.target.memory.usage",
    "By",
    Gauge,
    "What a target's level is judged on: its cgroup's working set (charge less inactive page cache), else its processes' resident memory"
);
metric!(
    TARGET_CHARGED,
    "memwatch.target.memory.charged",
    "By",
    Gauge,
    "Memory charged to a cgroup target's cgroup (memory.current; v1 memory.usage_in_bytes)"
);
metric!(
    TARGET_PRESSURE,
    "memwatch.target.memory.pressure",
    "1",
    Gauge,
    "Share of time a cgroup target's tasks stalled on memory (PSI), by stall (some, full) and window (10s, 60s)"
);
metric!(TARGET_LIMIT, "memwatch.target.memory.limit", "By", Gauge, "Memory limit of a target");
metric!(TARGET_UTILIZATION, "memwatch.target.memory.utilization", "1", Gauge, "Target usage over its limit");
metric!(
    TARGET_STATE,
    "memwatch.target.state",
    "{level}",
    Gauge,
    "Target level: 0 normal, 1 warning, 2 critical, 3 emergency"
);
metric!(LEAK_SLOPE, "memwatch.leak.slope", "By/s", Gauge, "Growth rate of a suspected leak");
metric!(LEAK_TIME_TO_LIMIT, "memwatch.leak.time_to_limit", "s", Gauge, "Time until a leaking target reaches its limit");
metric!(ACTIONS, "memwatch.actions", "{action}", Counter, "Actions taken, by action and result");
metric!(CLEANUP_FREED, "memwatch.cleanup.freed", "By", Counter, "Memory freed by cleanups");
metric!(BPF_EVENTS_LOST, "memwatch.bpf.events.lost", "{event}", Counter, "Kernel-side events dropped, by kind");
metric!(CACHE_HITS, "memwatch.cache.hits", "{hit}", Counter, "Lookups answered by a cache");
metric!(CACHE_MISSES, "memwatch.cache.misses", "{miss}", Counter, "Lookups a cache could not answer");
metric!(CACHE_ENTRIES, "memwatch.cache.entries", "{entry}", Gauge, "Entries held by a cache");
metric!(CACHE_CAPACITY, "memwatch.cache.capacity", "{entry}", Gauge, "Entries a cache may hold ([cache] max_size)");
metric!(
    MONITOR_MODE,
    "memwatch.monitor.mode",
    "{mode}",
    Gauge,
    "1 for the mode the figures come from (ebpf or procfs)"
);
metric!(DAEMON_MEMORY, "memwatch.daemon.memory.usage", "By", Gauge, "Resident memory of the memwatch daemon itself");
metric!(DAEMON_CPU, "memwatch.daemon.cpu.time", "s", Counter, "CPU time the memwatch daemon has used, user and system");
metric!(CONFIG_RELOADS, "memwatch.config.reloads", "{reload}", Counter, "Config reloads (SIGHUP), by result");

pub static ALL: &[&MetricDef] = &[
    &SYSTEM_MEMORY_USAGE,
    &SYSTEM_MEMORY_UTILIZATION,
    &SYSTEM_MEMORY_LIMIT,
    &PROCESS_MEMORY_USAGE,
    &PROCESS_MEMORY_VIRTUAL,
    &PROCESS_PAGING_FAULTS,
    &TARGET_USAGE,
    &TARGET_CHARGED,
    &TARGET_PRESSURE,
    &TARGET_LIMIT,
    &TARGET_UTILIZATION,
    &TARGET_STATE,
    &LEAK_SLOPE,
    &LEAK_TIME_TO_LIMIT,
    &ACTIONS,
    &CLEANUP_FREED,
    &BPF_EVENTS_LOST,
    &CACHE_HITS,
    &CACHE_MISSES,
    &CACHE_ENTRIES,
    &CACHE_CAPACITY,
    &MONITOR_MODE,
    &CONFIG_RELOADS,
    &DAEMON_MEMORY,
    &DAEMON_CPU,
];

impl MetricDef {
    /// The Prometheus base name and unit suffix (the library appends the
    /// suffix, and `_total` for counters). Annotations like `{fault}` have no
    /// Prometheus unit.
    pub fn prometheus(&self) -> (String, Option<&'static str>) {
        let unit = match self.unit {
            "By" => Some("bytes"),
            "s" => Some("seconds"),
            "By/s" => Some("bytes_per_second"),
            // As the OpenTelemetry Collector's Prometheus exporter translates
            // them, so a scrape of memwatch and of a collector in front of it
            // give the same names (a level or a mode is an annotation, `{level}`,
            // not the ratio "1").
            "1" => Some("ratio"),
            _ => None,
        };
        (self.name.replace('.', "_"), unit)
    }

    /// A counter of time (CPU seconds), whose fractions matter: exported as
    /// a float counter where every other counter is an integer.
    pub fn counts_fractions(&self) -> bool {
        self.kind == Kind::Counter && self.unit == "s"
    }

    /// The name a Prometheus server stores the samples under: the base
    /// name, its unit suffix, and `_total` for counters.
    pub fn prometheus_sample_name(&self) -> String {
        let (base, unit) = self.prometheus();
        let mut name = unit.map_or(base.clone(), |u| format!("{base}_{u}"));
        if self.kind == Kind::Counter {
            name.push_str("_total");
        }
        name
    }
}
