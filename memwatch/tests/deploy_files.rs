//! The files under deploy/ that no binary here can run are checked by
//! reading them: the OpenTelemetry Collector config (no collector is
//! packaged for Debian 12) and the structure the alert rules promise
//! (promtool, in tests/tests/prometheus_alerts.rs, checks their syntax and
//! behaviour).
use std::path::Path;

use serde_yaml_ng::Value;

fn read(relative: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn names(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_collector_config_wires_memwatchs_otlp_into_prometheus_and_otlp() {
    let config = read("otel-collector.yaml");
    let pipeline = &config["service"]["pipelines"]["metrics"];
    for (section, kind) in [("receivers", "receivers"), ("processors", "processors"), ("exporters", "exporters")] {
        for name in names(&pipeline[section]) {
            assert!(config[kind].get(&name).is_some(), "pipeline {section} names {name}, which {kind} does not define");
        }
    }
    let grpc = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].as_str().unwrap();
    let default = memwatch::config::observe::DEFAULT_OTLP_ENDPOINT;
    assert!(default.ends_with(grpc), "the receiver ({grpc}) is where memwatch pushes by default ({default})");
    assert_eq!(names(&pipeline["exporters"]), ["prometheus", "otlp"]);
    assert_eq!(
        config["exporters"]["prometheus"]["resource_to_telemetry_conversion"]["enabled"].as_bool(),
        Some(true),
        "resource attributes (host.name) become labels"
    );
    assert_eq!(
        names(&pipeline["processors"])[0],
        "memory_limiter",
        "the limiter goes first, as the collector's docs ask"
    );
}

#[test]
fn the_level_alerts_carry_their_level_and_the_warning_fires_within_a_minute() {
    let rules = read("prometheus/alerts.yml");
    let rules = rules["groups"][0]["rules"].as_sequence().unwrap();
    let alert = |name: &str| {
        rules.iter().find(|r| r["alert"].as_str() == Some(name)).unwrap_or_else(|| panic!("no alert {name}"))
    };
    for (name, level, state) in [
        ("MemwatchTargetWarning", "warning", 1),
        ("MemwatchTargetCritical", "critical", 2),
        ("MemwatchTargetEmergency", "emergency", 3),
    ] {
        let rule = alert(name);
        assert_eq!(rule["labels"]["level"].as_str(), Some(level), "{name}");
        assert_eq!(rule["expr"].as_str(), Some(format!("memwatch_target_state == {state}").as_str()), "{name}");
    }
    let wait = alert("MemwatchTargetWarning")["for"].as_str().unwrap().to_owned();
    let seconds: u64 = match wait.strip_suffix('s') {
        Some(s) => s.parse().unwrap(),
        None => wait.strip_suffix('m').unwrap().parse::<u64>().unwrap() * 60,
    };
    // memwatch applies its own hysteresis to levels: a longer wait only delays the word.
    assert!(seconds <= 60, "the warning alert waits {wait}: at most a minute");
    for name in ["MemwatchCacheMissRateHigh", "MemwatchLeakConfirmed", "MemwatchTimeToLimitUnderOneHour"] {
        alert(name);
    }
}
