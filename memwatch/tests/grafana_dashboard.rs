//! `deploy/grafana/memwatch.json` is built here from the metric catalog,
//! and the committed file must equal what this builds, so no panel can ask
//! for a name memwatch does not export. `MEMWATCH_BLESS=1 cargo test -p
//! memwatch --test grafana_dashboard` rewrites it after a change. That the
//! names are the ones a real Prometheus stores from a real scrape is checked
//! in `tests/tests/prometheus_alerts.rs`.
use std::path::Path;

use memwatch::exporters::catalog::{self, MetricDef};
use serde_json::{Value, json};

/// A series selector on `def` restricted to the chosen instances.
fn select(def: &MetricDef, extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!("{}{{job=~\"$job\",instance=~\"$instance\"{sep}{extra}}}", def.prometheus_sample_name())
}

struct Panel {
    title: &'static str,
    kind: &'static str,
    unit: &'static str,
    description: &'static str,
    /// (query, legend)
    queries: Vec<(String, &'static str)>,
    width: u32,
}

fn panels() -> Vec<Panel> {
    let state = |level: u32| format!("count({} == {level}) or vector(0)", select(&catalog::TARGET_STATE, ""));
    vec![
        Panel {
            title: "Host memory used",
            kind: "timeseries",
            unit: "percentunit",
            description: "MemTotal - MemAvailable over MemTotal, per host.",
            queries: vec![(
                select(&catalog::SYSTEM_MEMORY_UTILIZATION, "system_memory_state=\"used\""),
                "{{instance}}",
            )],
            width: 12,
        },
        Panel {
            title: "Targets by level",
            kind: "stat",
            unit: "none",
            description: "How many targets are at each level (each policy's thresholds, with hysteresis).",
            queries: vec![(state(0), "normal"), (state(1), "warning"), (state(2), "critical"), (state(3), "emergency")],
            width: 12,
        },
        Panel {
            title: "Targets: usage of their limit",
            kind: "timeseries",
            unit: "percentunit",
            description: "Each target's usage over its limit; warning at 0.8, critical 0.9, emergency 0.95 by default.",
            queries: vec![(select(&catalog::TARGET_UTILIZATION, ""), "{{memwatch_target}}")],
            width: 12,
        },
        Panel {
            title: "Top growers (15 min)",
            kind: "timeseries",
            unit: "Bps",
            description: "The ten targets whose usage grew fastest over the last 15 minutes.",
            queries: vec![(
                format!("topk(10, deriv({}[15m]))", select(&catalog::TARGET_USAGE, "")),
                "{{memwatch_target}}",
            )],
            width: 12,
        },
        Panel {
            title: "Leaks: growth rate",
            kind: "timeseries",
            unit: "Bps",
            description: "Targets with a standing leak verdict and the slope of their growth.",
            queries: vec![(select(&catalog::LEAK_SLOPE, ""), "{{memwatch_target}}")],
            width: 12,
        },
        Panel {
            title: "Leaks: time to limit",
            kind: "timeseries",
            unit: "s",
            description: "When each leaking target reaches its limit at its current growth.",
            queries: vec![(select(&catalog::LEAK_TIME_TO_LIMIT, ""), "{{memwatch_target}}")],
            width: 12,
        },
        Panel {
            title: "Actions",
            kind: "timeseries",
            unit: "short",
            description: "Actions memwatch took, by action and result.",
            queries: vec![(
                format!(
                    "sum by (memwatch_action, memwatch_result) (increase({}[$__rate_interval]))",
                    select(&catalog::ACTIONS, "")
                ),
                "{{memwatch_action}} {{memwatch_result}}",
            )],
            width: 12,
        },
        Panel {
            title: "Kernel events lost",
            kind: "timeseries",
            unit: "short",
            description: "Events the eBPF programs could not hand over (full map or ring buffer), per second.",
            queries: vec![(
                format!(
                    "sum by (instance, memwatch_bpf_kind) (rate({}[$__rate_interval]))",
                    select(&catalog::BPF_EVENTS_LOST, "")
                ),
                "{{instance}} {{memwatch_bpf_kind}}",
            )],
            width: 12,
        },
        Panel {
            title: "memwatch's own footprint",
            kind: "timeseries",
            unit: "bytes",
            description: "The daemon's resident memory, and its CPU use as a share of one core (right axis).",
            queries: vec![
                (select(&catalog::DAEMON_MEMORY, ""), "{{instance}} RSS"),
                (format!("rate({}[$__rate_interval])", select(&catalog::DAEMON_CPU, "")), "{{instance}} CPU"),
            ],
            width: 24,
        },
    ]
}

fn dashboard() -> Value {
    let datasource = json!({ "type": "prometheus", "uid": "${datasource}" });
    let (mut x, mut y) = (0, 0);
    let panels: Vec<Value> = panels()
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            if x + p.width > 24 {
                x = 0;
                y += 8;
            }
            let targets: Vec<Value> = p
                .queries
                .iter()
                .zip('A'..)
                .map(|((expr, legend), ref_id)| {
                    json!({ "datasource": datasource, "expr": expr, "legendFormat": legend, "refId": ref_id.to_string() })
                })
                .collect();
            let mut fields = json!({ "defaults": { "unit": p.unit }, "overrides": [] });
            if p.title == "memwatch's own footprint" {
                fields["overrides"] = json!([{
                    "matcher": { "id": "byFrameRefID", "options": "B" },
                    "properties": [
                        { "id": "unit", "value": "percentunit" },
                        { "id": "custom.axisPlacement", "value": "right" }
                    ]
                }]);
            }
            let panel = json!({
                "id": i + 1,
                "type": p.kind,
                "title": p.title,
                "description": p.description,
                "datasource": datasource,
                "gridPos": { "x": x, "y": y, "w": p.width, "h": 8 },
                "fieldConfig": fields,
                "targets": targets,
            });
            x += p.width;
            panel
        })
        .collect();
    let variable = |name: &str, query: String| {
        json!({
            "name": name,
            "type": "query",
            "datasource": datasource,
            "query": { "query": query, "refId": name },
            "definition": query,
            "includeAll": true,
            "multi": true,
            "allValue": ".*",
            "current": { "text": "All", "value": "$__all" },
            "refresh": 2
        })
    };
    let mode = catalog::MONITOR_MODE.prometheus_sample_name();
    json!({
        "title": "memwatch",
        "uid": "memwatch",
        "description": "Memory per host and per target as memwatch judges it: levels, leaks, time to limit, actions. Generated by memwatch/tests/grafana_dashboard.rs from the metric catalog.",
        "tags": ["memwatch", "memory"],
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "time": { "from": "now-6h", "to": "now" },
        "refresh": "30s",
        "templating": { "list": [
            {
                "name": "datasource",
                "type": "datasource",
                "query": "prometheus",
                "label": "Prometheus",
                "current": {}
            },
            variable("job", format!("label_values({mode}, job)")),
            variable("instance", format!("label_values({mode}{{job=~\"$job\"}}, instance)")),
        ] },
        "panels": panels,
    })
}

fn committed() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/memwatch.json")
}

#[test]
fn the_committed_dashboard_is_the_one_built_from_the_catalog() {
    let built = serde_json::to_string_pretty(&dashboard()).unwrap() + "\n";
    let path = committed();
    if std::env::var_os("MEMWATCH_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &built).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == built,
        "{} is not what the catalog builds: rerun with MEMWATCH_BLESS=1 and commit it",
        path.display()
    );
}

#[test]
fn the_dashboard_covers_what_operators_look_for() {
    let board = dashboard();
    let exprs: Vec<&str> = board["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap()))
        .collect();
    for needed in [
        &catalog::SYSTEM_MEMORY_UTILIZATION,
        &catalog::TARGET_STATE,
        &catalog::TARGET_USAGE,
        &catalog::LEAK_SLOPE,
        &catalog::LEAK_TIME_TO_LIMIT,
        &catalog::ACTIONS,
        &catalog::BPF_EVENTS_LOST,
        &catalog::DAEMON_MEMORY,
    ] {
        let name = needed.prometheus_sample_name();
        assert!(exprs.iter().any(|e| e.contains(&format!("{name}{{"))), "no panel shows {name}");
    }
}
