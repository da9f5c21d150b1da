//! The seed's JSON shapes, built from the view. Pure, so the shapes are
//! tested without a server.
use serde_json::{Value, json};

use crate::view::{Level, StatusView};

fn percent(ratio: f64) -> f64 {
    (ratio * 1000.0).round() / 10.0
}

fn host_usage(view: &StatusView) -> Value {
    json!({
        "used": view.host.used,
        "total": view.host.total,
        "usagePercent": percent(view.host.usage_ratio),
    })
}

/// GET /health: (healthy?, body). Unhealthy when any target is in
/// emergency, or while the executor holds the host not ready (`not_ready`:
/// the targets holding it, from `actions::Readiness`). The flag outlasts the
/// emergency: it is cleared only when the target is back at normal, so load
/// balancers do not send work back to a host still at critical.
pub fn health(view: &StatusView, not_ready: &[String]) -> (bool, Value) {
    let worst = view.targets.iter().map(|t| t.usage_ratio()).fold(0.0_f64, f64::max);
    let emergencies: Vec<_> = view.targets.iter().filter(|t| t.level == Level::Emergency).collect();
    // Held, but no longer (or not yet, in this view) in emergency.
    let held: Vec<&str> =
        not_ready.iter().map(String::as_str).filter(|key| !emergencies.iter().any(|t| t.name == *key)).collect();
    if emergencies.is_empty() && held.is_empty() {
        return (
            true,
            json!({
                "status": "healthy",
                "level": view.worst_level(),
                "monitoring": view.monitoring,
                "memoryUsage": host_usage(view),
                "heapUsage": worst,
            }),
        );
    }
    let ratio_of = |key: &str| view.target(key).map(|t| t.usage_ratio());
    let mut errors = Vec::new();
    if !emergencies.is_empty() {
        let named: Vec<String> =
            emergencies.iter().map(|t| format!("{} ({:.1}% of limit)", t.name, t.usage_ratio() * 100.0)).collect();
        errors.push(format!("Memory usage at emergency level: {}", named.join(", ")));
    }
    if !held.is_empty() {
        let named: Vec<String> = held
            .iter()
            .map(|key| match ratio_of(key) {
                Some(ratio) => format!("{key} ({:.1}% of limit)", ratio * 100.0),
                None => (*key).to_owned(),
            })
            .collect();
        errors.push(format!("Not ready after an emergency, until back at normal: {}", named.join(", ")));
    }
    let names: Vec<&str> = emergencies.iter().map(|t| t.name.as_str()).chain(held.iter().copied()).collect();
    (
        false,
        json!({
            "status": "unhealthy",
            "error": errors.join("; "),
            "memoryUsage": host_usage(view),
            "heapUsage": names.iter().filter_map(|k| ratio_of(k)).fold(0.0_f64, f64::max),
            "targets": names,
            "notReady": not_ready,
        }),
    )
}

/// GET /health/metrics.
/// `not_ready` as for `health`.
pub fn health_metrics(view: &StatusView, not_ready: &[String]) -> Value {
    let targets: Vec<Value> = view
        .targets
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "kind": t.kind,
                "usage": t.usage_bytes,
                "limit": t.limit_bytes,
                "usagePercent": percent(t.usage_ratio()),
                "level": t.level,
                "growthBytesPerSecond": t.growth_bytes_per_s,
                "leak": t.leak.as_ref().map(|l| json!({
                    "slopeBytesPerSecond": l.slope_bytes_per_s,
                    "confidence": l.confidence,
                    "timeToLimitSeconds": l.time_to_limit_s,
                })),
                "lastAction": t.last_action,
                "notReady": not_ready.contains(&t.name),
            })
        })
        .collect();
    let caches: serde_json::Map<String, Value> = view
        .caches
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                json!({
                    "size": c.entries,
                    "maxSize": c.max_entries,
                    "hits": c.hits,
                    "misses": c.misses,
                    "hitRate": c.hit_rate(),
                }),
            )
        })
        .collect();
    json!({
        "memory": {
            "current": host_usage(view),
            "thresholds": view.thresholds,
            "monitoring": view.monitoring,
            "ready": not_ready.is_empty(),
            "notReady": not_ready,
            "mode": view.mode,
            "lastCleanup": view.last_cleanup.as_ref().map(|c| json!({
                "at": c.at_unix_s,
                "target": c.target,
                "freedBytes": c.freed_bytes,
                "actions": c.actions,
            })),
        },
        "targets": targets,
        "caches": caches,
    })
}
