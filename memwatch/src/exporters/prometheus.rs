//! GET /metrics: the frame in the Prometheus text format, encoded by
//! `prometheus-client` at scrape time (a custom collector), so only the
//! series of the latest frame exist: no stale per-process series pile up.
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::{Registry, Unit},
};

use super::{
    catalog::Kind,
    frame::{AttrValue, FrameCell},
};

#[derive(Clone)]
struct FrameCollector(FrameCell);

impl std::fmt::Debug for FrameCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameCollector")
    }
}

impl Collector for FrameCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let frame = self.0.get();
        for (def, series) in &frame.metrics {
            // Families without series still get their HELP/TYPE lines, so
            // a scrape always shows every name memwatch can export.
            let (name, unit) = def.prometheus();
            let unit = unit.map(|u| Unit::Other(u.to_owned()));
            let kind = match def.kind {
                Kind::Gauge => MetricType::Gauge,
                Kind::Counter => MetricType::Counter,
            };
            let mut family = encoder.encode_descriptor(&name, def.help, unit.as_ref(), kind)?;
            for point in series {
                let labels: Vec<(String, String)> = point
                    .attrs
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            AttrValue::Str(s) => s.clone(),
                            AttrValue::Int(i) => i.to_string(),
                        };
                        (k.replace('.', "_"), v)
                    })
                    .collect();
                let metric = family.encode_family(&labels)?;
                match def.kind {
                    Kind::Gauge => ConstGauge::new(point.value).encode(metric)?,
                    Kind::Counter if def.counts_fractions() => ConstCounter::new(point.value).encode(metric)?,
                    Kind::Counter => ConstCounter::new(point.value as u64).encode(metric)?,
                }
            }
        }
        Ok(())
    }
}

pub struct PrometheusExporter {
    registry: Registry,
}

impl PrometheusExporter {
    pub fn new(frames: FrameCell) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(FrameCollector(frames)));
        Self { registry }
    }

    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cache::CacheStats,
        exporters::frame::frame_from,
        view::ActionCount,
        view::{Level, ProcessView, StatusView, TargetView},
    };

    pub(crate) fn sample_view() -> StatusView {
        StatusView {
            mode: "procfs".into(),
            monitoring: true,
            host: crate::view::HostView { used: 600, total: 1000, usage_ratio: 0.6, ..Default::default() },
            targets: vec![TargetView {
                name: "api.service".into(),
                kind: "unit".into(),
                usage_bytes: 960,
                charged_bytes: None,
                pressure: None,
                limit_bytes: 1000,
                level: Level::Emergency,
                growth_bytes_per_s: 12.0,
                leak: None,
                last_action: None,
                processes: 1,
                history: vec![900, 960],
                container: None,
            }],
            processes: vec![ProcessView {
                pid: 42,
                comm: "api".into(),
                cmdline: "/usr/bin/api --port 80".into(),
                cgroup: Some("/system.slice/api.service".into()),
                container: None,
                target: "api.service".into(),
                rss_bytes: 960,
                virtual_bytes: Some(4096),
                growth_bytes_per_s: 12.0,
                page_faults: 7,
            }],
            caches: vec![CacheStats { name: "process-info".into(), entries: 3, max_entries: 1000, hits: 9, misses: 3 }],
            actions: vec![ActionCount { action: "reclaim".into(), result: "ok".into(), count: 2 }],
            daemon: Some(crate::view::DaemonView { rss_bytes: 12 << 20, cpu_seconds: 1.25 }),
            ..Default::default()
        }
    }

    #[test]
    fn the_text_format_carries_conventional_names_labels_and_types() {
        let cell = FrameCell::default();
        cell.set(frame_from(&sample_view()));
        let text = PrometheusExporter::new(cell).render().unwrap();
        for expected in [
            "# TYPE process_memory_usage_bytes gauge",
            "process_memory_usage_bytes{process_pid=\"42\",process_executable_name=\"api\",process_command=\"/usr/bin/api\",memwatch_target=\"api.service\",process_linux_cgroup=\"/system.slice/api.service\"} 960",
            "memwatch_target_state{memwatch_target=\"api.service\",memwatch_target_kind=\"unit\"} 3",
            "memwatch_target_memory_utilization_ratio{",
            "# TYPE memwatch_actions counter",
            "memwatch_actions_total{memwatch_action=\"reclaim\",memwatch_result=\"ok\"} 2",
            "memwatch_cache_hits_total{memwatch_cache=\"process-info\"} 9",
            "process_paging_faults_total{",
            "system_memory_usage_bytes{system_memory_state=\"used\"} 600",
            "memwatch_monitor_mode{memwatch_mode=\"procfs\"} 1",
            "memwatch_daemon_memory_usage_bytes 12582912",
            "memwatch_daemon_cpu_time_seconds_total 1.25",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_cgroup_target_carries_its_charge_and_its_pressure_by_stall_and_window() {
        let mut view = sample_view();
        view.targets[0].charged_bytes = Some(1200);
        view.targets[0].pressure = Some(crate::model::working_set::Pressure {
            some_avg10: 12.5,
            some_avg60: 4.0,
            full_avg10: 2.0,
            full_avg60: 0.5,
        });
        let cell = FrameCell::default();
        cell.set(frame_from(&view));
        let text = PrometheusExporter::new(cell.clone()).render().unwrap();
        let labels = "memwatch_target=\"api.service\",memwatch_target_kind=\"unit\"";
        for expected in [
            format!("memwatch_target_memory_charged_bytes{{{labels}}} 1200"),
            format!(
                "memwatch_target_memory_pressure_ratio{{{labels},memwatch_pressure_stall=\"some\",memwatch_pressure_window=\"10s\"}} 0.125"
            ),
            format!(
                "memwatch_target_memory_pressure_ratio{{{labels},memwatch_pressure_stall=\"full\",memwatch_pressure_window=\"60s\"}} 0.005"
            ),
        ] {
            assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
        }
        // A target without them has no such series, not zeros.
        cell.set(frame_from(&sample_view()));
        let text = PrometheusExporter::new(cell).render().unwrap();
        assert!(!text.contains("memwatch_target_memory_pressure_ratio{"), "{text}");
        assert!(!text.contains("memwatch_target_memory_charged_bytes{"), "{text}");
    }

    #[test]
    fn a_container_target_carries_its_container_and_pod() {
        let id = "4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091";
        let cgroup = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8f1c0e3a_1b2c_4d5e_9f60_7a8b9c0d1e2f.slice/cri-containerd-{id}.scope"
        );
        let mut view = sample_view();
        view.targets[0].container =
            crate::model::container::Container::of_cgroup(&cgroup).as_ref().map(crate::view::ContainerView::from);
        let cell = FrameCell::default();
        cell.set(frame_from(&view));
        let text = PrometheusExporter::new(cell).render().unwrap();
        let expected = format!(
            "memwatch_target_state{{memwatch_target=\"api.service\",memwatch_target_kind=\"unit\",container_id=\"{id}\",container_runtime=\"containerd\",k8s_pod_uid=\"8f1c0e3a-1b2c-4d5e-9f60-7a8b9c0d1e2f\",memwatch_k8s_pod_qos_class=\"Burstable\"}} 3"
        );
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
}
