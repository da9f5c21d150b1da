//! Environment overrides for the seed's variables.
//!
//! Each setting has the seed's name (MEMORY_WARNING_THRESHOLD, ...) and a
//! MEMWATCH_-prefixed one; the MEMWATCH_ one wins, so memwatch can be
//! configured apart from other tools that read the seed's names. Overrides
//! apply over the file's `[defaults]` and `[cache]` (policies that set their
//! own thresholds keep them). The environment is passed in as a map, so
//! tests never touch the process's own.
use std::collections::BTreeMap;

use super::{CacheConfig, units, walk::Problems};
use crate::engine::Thresholds;

pub type Env = BTreeMap<String, String>;

/// (seed name, memwatch name)
pub const WARNING: (&str, &str) = ("MEMORY_WARNING_THRESHOLD", "MEMWATCH_WARNING_THRESHOLD");
pub const CRITICAL: (&str, &str) = ("MEMORY_CRITICAL_THRESHOLD", "MEMWATCH_CRITICAL_THRESHOLD");
pub const EMERGENCY: (&str, &str) = ("MEMORY_EMERGENCY_THRESHOLD", "MEMWATCH_EMERGENCY_THRESHOLD");
pub const CACHE_MAX_SIZE: (&str, &str) = ("CACHE_MAX_SIZE", "MEMWATCH_CACHE_MAX_SIZE");
pub const CACHE_TTL: (&str, &str) = ("CACHE_TTL", "MEMWATCH_CACHE_TTL");

/// Every variable memwatch reads, for filtering the process environment.
pub const ALL: [(&str, &str); 5] = [WARNING, CRITICAL, EMERGENCY, CACHE_MAX_SIZE, CACHE_TTL];

/// The process environment, restricted to the variables above.
pub fn from_process() -> Env {
    ALL.iter()
        .flat_map(|(seed, ours)| [*seed, *ours])
        .filter_map(|name| std::env::var(name).ok().map(|v| (name.to_owned(), v)))
        .collect()
}

/// The value and the name of the variable it came from.
fn lookup<'a>(env: &'a Env, (seed, ours): (&'static str, &'static str)) -> Option<(&'static str, &'a str)> {
    env.get(ours).map(|v| (ours, v.as_str())).or_else(|| env.get(seed).map(|v| (seed, v.as_str())))
}

/// Applies the threshold variables; returns which ones were set, for error messages.
pub fn apply_thresholds(
    env: &Env,
    thresholds: &mut Thresholds,
    problems: &mut Problems,
) -> Vec<(&'static str, &'static str)> {
    let mut applied = Vec::new();
    for (vars, level, slot) in [
        (WARNING, "warning", &mut thresholds.warning),
        (CRITICAL, "critical", &mut thresholds.critical),
        (EMERGENCY, "emergency", &mut thresholds.emergency),
    ] {
        let Some((name, text)) = lookup(env, vars) else {
            continue;
        };
        match text.trim().parse::<f64>() {
            Ok(v) if v > 0.0 && v <= 1.0 => {
                *slot = v;
                applied.push((level, name));
            }
            Ok(v) => problems.push(name, format!("{v} must be a fraction of the limit in (0, 1]")),
            Err(_) => problems.push(name, format!("{text:?} is not a number")),
        }
    }
    applied
}

pub fn apply_cache(env: &Env, cache: &mut CacheConfig, problems: &mut Problems) {
    if let Some((name, text)) = lookup(env, CACHE_MAX_SIZE) {
        match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => cache.max_size = n,
            _ => problems.push(name, format!("{text:?} must be a whole number above 0")),
        }
    }
    if let Some((name, text)) = lookup(env, CACHE_TTL) {
        match units::parse_duration_secs(text).and_then(units::at_most_max_duration) {
            Ok(secs) if secs > 0.0 => cache.ttl_secs = secs,
            Ok(_) => problems.push(name, format!("{text:?} must be longer than 0 seconds")),
            Err(message) => problems.push(name, message),
        }
    }
}
