//! The seed's JSON shapes, built from the view. Pure, so the shapes are
//! tested without a server.
use serde_json::{Value, json};

use crate::status::{Level, StatusView};

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

/// GET /health: (healthy?, body). Unhealthy when any target is in emergency.
pub fn health(view: &StatusView) -> (bool, Value) {
    let worst = view
        .targets
        .iter()
        .map(|t| t.usage_ratio())
        .fold(0.0_f64, f64::max);
    let emergencies: Vec<_> = view
        .targets
        .iter()
        .filter(|t| t.level == Level::Emergency)
        .collect();
    if emergencies.is_empty() {
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
    let named: Vec<String> = emergencies
        .iter()
        .map(|t| format!("{} ({:.1}% of limit)", t.name, t.usage_ratio() * 100.0))
        .collect();
    (
        false,
        json!({
            "status": "unhealthy",
            "error": format!("Memory usage at emergency level: {}", named.join(", ")),
            "memoryUsage": host_usage(view),
            "heapUsage": emergencies.iter().map(|t| t.usage_ratio()).fold(0.0_f64, f64::max),
            "targets": emergencies.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        }),
    )
}

/// GET /health/metrics.
pub fn health_metrics(view: &StatusView) -> Value {
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
