//! The engine's verdicts into the view: its targets (keys), limits, levels
//! (with hysteresis), leak verdicts and events.
use std::collections::HashSet;

use super::{Observability, unix_now};
use crate::{
    bytes::human_bytes,
    engine::{Event, EventKind},
    model::sample::Snapshot,
    pipeline::monitor::Monitor,
    sources::cgroupfs::Limits,
    view::{LeakView, builder::Judged},
};

impl Observability {
    /// One interval with the engine's verdicts: its targets (keys), limits,
    /// levels (with hysteresis), leak verdicts and events.
    pub fn update_judged(
        &mut self,
        previous: &Snapshot,
        now: &Snapshot,
        targets: &[crate::model::targets::Target],
        monitor: &Monitor,
        limits: &Limits,
        events: &[Event],
    ) {
        self.read_host();
        for event in events {
            self.engine_event(event);
        }
        let keys: HashSet<&str> = targets.iter().map(|t| t.key.as_str()).collect();
        self.leaks.retain(|key, _| keys.contains(key.as_str()));
        let judged = targets
            .iter()
            .map(|t| {
                let observed = t
                    .cgroup
                    .as_deref()
                    .and_then(|c| self.builder.cgroups().info_with(c, |c| limits.cgroup_limit(c)).limit);
                Judged {
                    name: t.key.clone(),
                    kind: t.key.split_once(':').map_or("target", |(kind, _)| kind).to_owned(),
                    usage_bytes: t.usage_bytes,
                    limit_bytes: monitor.limit_bytes(t.policy, observed),
                    level: monitor.level(&t.key).unwrap_or_default(),
                    leak: self.leaks.get(&t.key).cloned(),
                    processes: t.processes,
                }
            })
            .collect();
        let target_of = |pid: u32, info: &crate::model::sample::ProcessInfo| {
            let alone = crate::model::targets::process_key(pid, &info.comm);
            if keys.contains(alone.as_str()) {
                alone
            } else {
                info.cgroup.as_deref().map_or_else(|| "-".to_owned(), crate::model::targets::cgroup_key)
            }
        };
        let view = self.builder.build_judged(
            previous,
            now,
            self.host.clone(),
            self.caches.stats(),
            self.interval.as_secs_f64(),
            unix_now(),
            judged,
            &target_of,
        );
        self.publish(view);
    }

    fn engine_event(&mut self, event: &Event) {
        let at = event.t.max(0.0) as u64;
        let key = event.key.clone();
        let message = match &event.kind {
            EventKind::State { from, to, usage_bytes, limit_bytes } => format!(
                "{key}: {} -> {} ({} of {})",
                from.as_str(),
                to.as_str(),
                human_bytes(*usage_bytes),
                human_bytes(*limit_bytes)
            ),
            EventKind::LeakDetected(v) => {
                self.leaks.insert(
                    key.clone(),
                    LeakView {
                        slope_bytes_per_s: v.slope_bytes_per_s,
                        confidence: v.confidence,
                        time_to_limit_s: v.time_to_limit_s,
                    },
                );
                format!("{key}: leak detected, {}/h", human_bytes((v.slope_bytes_per_s * 3600.0).max(0.0) as u64))
            }
            EventKind::LeakEnded { leaked_for_secs } => {
                self.leaks.remove(&key);
                format!("{key}: leak ended after {leaked_for_secs:.0}s")
            }
            EventKind::SeedRule { .. } => return,
        };
        self.builder.event(at, Some(key), message);
    }
}
