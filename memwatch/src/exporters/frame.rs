//! The internal metrics model: one frame per interval, built from the view,
//! read by both exporters. Cardinality is decided here and only here:
//! per-process series exist only for the processes the view lists (the top
//! growers); everything else is in its target's series.
use std::sync::{Arc, RwLock};

use super::catalog::{self, MetricDef};
use crate::view::{ContainerView, StatusView};

#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub attrs: Vec<(&'static str, AttrValue)>,
    pub value: f64,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Frame {
    pub metrics: Vec<(&'static MetricDef, Vec<Series>)>,
}

impl Frame {
    pub fn series(&self, def: &MetricDef) -> &[Series] {
        self.metrics.iter().find(|(d, _)| *d == def).map_or(&[], |(_, s)| s.as_slice())
    }

    pub fn series_count(&self) -> usize {
        self.metrics.iter().map(|(_, s)| s.len()).sum()
    }
}

/// The latest frame, shared with exporter threads (OTLP's reader runs its
/// callbacks on its own thread, so this is a std lock, held only to clone an Arc).
#[derive(Clone, Default)]
pub struct FrameCell(Arc<RwLock<Arc<Frame>>>);

impl FrameCell {
    pub fn set(&self, frame: Frame) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(frame);
    }

    pub fn get(&self) -> Arc<Frame> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.to_owned())
}

/// OpenTelemetry's container and k8s attributes (Prometheus labels
/// `container_id`, `container_name`, `container_runtime`, `k8s_pod_uid`,
/// `k8s_pod_name`, `k8s_namespace_name`); the QoS class has no
/// semantic-convention name, so it is memwatch's own.
fn container_attrs(container: Option<&ContainerView>, attrs: &mut Vec<(&'static str, AttrValue)>) {
    let Some(c) = container else { return };
    attrs.push(("container.id", s(&c.id)));
    let optional = [
        ("container.name", &c.name),
        ("container.runtime", &c.runtime),
        ("k8s.pod.uid", &c.pod_uid),
        ("k8s.pod.name", &c.pod_name),
        ("k8s.namespace.name", &c.namespace),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            attrs.push((key, s(value)));
        }
    }
    if let Some(qos) = &c.qos_class {
        attrs.push(("memwatch.k8s.pod.qos_class", s(qos)));
    }
}

pub fn frame_from(view: &StatusView) -> Frame {
    let mut f = Frame::default();
    let mut add = |def: &'static MetricDef, series: Vec<Series>| f.metrics.push((def, series));
    let one = |attrs: Vec<(&'static str, AttrValue)>, value: f64| Series { attrs, value };

    let h = &view.host;
    add(
        &catalog::SYSTEM_MEMORY_USAGE,
        [("used", h.used), ("free", h.free), ("buffers", h.buffers), ("cached", h.cached)]
            .into_iter()
            .map(|(state, v)| one(vec![("system.memory.state", s(state))], v as f64))
            .collect(),
    );
    add(&catalog::SYSTEM_MEMORY_UTILIZATION, vec![one(vec![("system.memory.state", s("used"))], h.usage_ratio)]);
    add(&catalog::SYSTEM_MEMORY_LIMIT, vec![one(vec![], h.total as f64)]);

    let process_attrs = |p: &crate::view::ProcessView| {
        let mut attrs = vec![
            ("process.pid", AttrValue::Int(i64::from(p.pid))),
            ("process.executable.name", s(&p.comm)),
            ("process.command", s(p.cmdline.split(' ').next().unwrap_or_default())),
            ("memwatch.target", s(&p.target)),
        ];
        if let Some(cgroup) = &p.cgroup {
            attrs.push(("process.linux.cgroup", s(cgroup)));
        }
        container_attrs(p.container.as_ref(), &mut attrs);
        attrs
    };
    add(
        &catalog::PROCESS_MEMORY_USAGE,
        view.processes.iter().map(|p| one(process_attrs(p), p.rss_bytes as f64)).collect(),
    );
    add(
        &catalog::PROCESS_MEMORY_VIRTUAL,
        view.processes.iter().filter_map(|p| p.virtual_bytes.map(|v| one(process_attrs(p), v as f64))).collect(),
    );
    // Minor and major faults are one count in both modes, so no
    // system.paging.fault.type attribute: it is not known.
    add(
        &catalog::PROCESS_PAGING_FAULTS,
        view.processes.iter().map(|p| one(process_attrs(p), p.page_faults as f64)).collect(),
    );

    let target_attrs = |t: &crate::view::TargetView| {
        let mut attrs = vec![("memwatch.target", s(&t.name)), ("memwatch.target.kind", s(&t.kind))];
        container_attrs(t.container.as_ref(), &mut attrs);
        attrs
    };
    let per_target = |value: &dyn Fn(&crate::view::TargetView) -> Option<f64>| -> Vec<Series> {
        view.targets.iter().filter_map(|t| value(t).map(|v| one(target_attrs(t), v))).collect()
    };
    add(&catalog::TARGET_USAGE, per_target(&|t| Some(t.usage_bytes as f64)));
    add(&catalog::TARGET_CHARGED, per_target(&|t| t.charged_bytes.map(|b| b as f64)));
    add(
        &catalog::TARGET_PRESSURE,
        view.targets
            .iter()
            .filter_map(|t| Some((t, t.pressure?)))
            .flat_map(|(t, p)| {
                [
                    ("some", "10s", p.some_avg10),
                    ("some", "60s", p.some_avg60),
                    ("full", "10s", p.full_avg10),
                    ("full", "60s", p.full_avg60),
                ]
                .map(|(stall, window, percent)| {
                    let mut attrs = target_attrs(t);
                    attrs.extend([("memwatch.pressure.stall", s(stall)), ("memwatch.pressure.window", s(window))]);
                    one(attrs, percent / 100.0)
                })
            })
            .collect(),
    );
    add(&catalog::TARGET_LIMIT, per_target(&|t| Some(t.limit_bytes as f64)));
    add(&catalog::TARGET_UTILIZATION, per_target(&|t| Some(t.usage_ratio())));
    add(&catalog::TARGET_STATE, per_target(&|t| Some(f64::from(t.level.index()))));
    add(&catalog::LEAK_SLOPE, per_target(&|t| t.leak.as_ref().map(|l| l.slope_bytes_per_s)));
    add(&catalog::LEAK_TIME_TO_LIMIT, per_target(&|t| t.leak.as_ref().and_then(|l| l.time_to_limit_s)));

    add(
        &catalog::ACTIONS,
        view.actions
            .iter()
            .map(|a| one(vec![("memwatch.action", s(&a.action)), ("memwatch.result", s(&a.result))], a.count as f64))
            .collect(),
    );
    add(&catalog::CLEANUP_FREED, vec![one(vec![], view.cleanup_freed_bytes as f64)]);
    add(
        &catalog::BPF_EVENTS_LOST,
        view.bpf_events_lost.iter().map(|(kind, n)| one(vec![("memwatch.bpf.kind", s(kind))], *n as f64)).collect(),
    );
    let per_cache = |value: &dyn Fn(&crate::cache::CacheStats) -> u64| -> Vec<Series> {
        view.caches.iter().map(|c| one(vec![("memwatch.cache", s(&c.name))], value(c) as f64)).collect()
    };
    add(&catalog::CACHE_HITS, per_cache(&|c| c.hits));
    add(&catalog::CACHE_MISSES, per_cache(&|c| c.misses));
    add(&catalog::CACHE_ENTRIES, per_cache(&|c| c.entries));
    add(&catalog::CACHE_CAPACITY, per_cache(&|c| c.max_entries));
    let reloads = view.config_reload.as_ref().map_or((0, 0), |r| (r.applied_total, r.rejected_total));
    add(
        &catalog::CONFIG_RELOADS,
        [("applied", reloads.0), ("rejected", reloads.1)]
            .into_iter()
            .map(|(result, n)| one(vec![("memwatch.result", s(result))], n as f64))
            .collect(),
    );
    let daemon =
        |value: fn(&crate::view::DaemonView) -> f64| view.daemon.iter().map(|d| one(vec![], value(d))).collect();
    add(&catalog::DAEMON_MEMORY, daemon(|d| d.rss_bytes as f64));
    add(&catalog::DAEMON_CPU, daemon(|d| d.cpu_seconds));
    add(
        &catalog::MONITOR_MODE,
        if view.monitoring { vec![one(vec![("memwatch.mode", s(&view.mode))], 1.0)] } else { vec![] },
    );
    f
}
