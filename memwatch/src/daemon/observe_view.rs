//! What each interval brings into the view: the engine's events (leak
//! verdicts open and close, level changes become messages), the actions
//! the executor performed, the requested cleanups, and the targets as the
//! pipeline assessed them.
use std::{collections::HashSet, sync::Arc};

use super::{Observability, cache_limits, unix_now};
use crate::{
    api::control::CleanupReport,
    bytes::human_bytes,
    config::Config,
    engine::{Event, EventKind, planner::Performed},
    model::{incident::Outcome, sample::Snapshot},
    pipeline::Assessed,
    sources::collect::{PROCESS_INFO_CACHE, ProcessInfoCache},
    sources::meminfo,
    view::{ActionView, CleanupView, HostView, LeakView, builder::Interval},
};

impl Observability {
    /// One interval: the view from the pipeline's targets and the engine's
    /// events, published to the API and the exporters.
    pub fn update(&mut self, previous: &Snapshot, now: &Snapshot, targets: &[Assessed], events: &[Event]) {
        match meminfo::read(&self.proc_root) {
            Ok(host) => self.host = host_view(host),
            Err(e) => tracing::debug!("reading host memory: {e}"),
        }
        for event in events {
            self.engine_event(event);
        }
        let keys: HashSet<_> = targets.iter().map(|t| &t.key).collect();
        self.leaks.retain(|key, _| keys.contains(key));
        let mut view = self.builder.build(Interval {
            previous,
            now,
            host: self.host.clone(),
            caches: self.caches.stats(),
            interval_s: self.interval.as_secs_f64(),
            unix_now: unix_now(),
            targets,
            leaks: &self.leaks,
        });
        view.daemon = crate::daemon::footprint::measure();
        self.frames.set(crate::exporters::frame_from(&view));
        self.store.publish(view);
    }

    /// Actions the executor took (on its own or on request): the view's
    /// per-target last action and the `memwatch.actions` counters. A step
    /// still being applied off the loop is counted once, when it is done.
    pub fn record_performed(&mut self, performed: &[Performed]) {
        for p in performed.iter().filter(|p| p.record.outcome != Outcome::Pending) {
            let action = ActionView {
                action: p.record.action.as_str().to_owned(),
                result: p.record.outcome.as_str().to_owned(),
                at_unix_s: p.record.t.max(0.0) as u64,
                freed_bytes: p.record.freed_bytes.unwrap_or(0).max(0) as u64,
            };
            self.builder.record_action(p.target.to_string(), action);
        }
    }

    /// What a SIGHUP came to, for `memwatch status` and the reload metric.
    pub fn record_reload(&mut self, errors: Vec<String>, restart_needed: Vec<String>) {
        let applied = errors.is_empty();
        let message = if applied {
            "config reloaded".to_owned()
        } else {
            format!("config reload rejected ({} errors)", errors.len())
        };
        self.builder.record_reload(unix_now(), errors, restart_needed);
        self.builder.event(unix_now(), None, message);
    }

    /// A reloaded config's view settings and cache limits. Returns the
    /// process-info cache built anew when its limits changed, for the
    /// collector to use.
    pub fn reconfigure(&mut self, config: &Config) -> Option<Arc<ProcessInfoCache>> {
        self.builder.reconfigure(config.defaults.engine.thresholds, config.metrics.top_processes);
        self.interval = config.daemon.interval();
        let limits = cache_limits(config);
        if limits == self.cache_limits {
            return None;
        }
        self.cache_limits = limits;
        let cache = Arc::new(ProcessInfoCache::new(PROCESS_INFO_CACHE, limits));
        self.caches.register(cache.clone());
        self.info_cache = Arc::clone(&cache);
        Some(cache)
    }

    /// The view's last cleanup and per-target last action.
    pub(super) fn record_cleanup(&mut self, target: Option<String>, report: &CleanupReport) {
        let at = unix_now();
        let per_target = report
            .targets
            .iter()
            .map(|t| {
                let action = ActionView {
                    action: "cleanup".into(),
                    result: t.outcome.as_str().to_owned(),
                    at_unix_s: at,
                    freed_bytes: t.freed_bytes,
                };
                (t.target.clone(), action)
            })
            .collect();
        let actions =
            report.targets.iter().flat_map(|t| t.actions.iter().map(move |a| format!("{}: {a}", t.target))).collect();
        self.builder.record_cleanup(
            CleanupView { at_unix_s: at, target, freed_bytes: report.freed_bytes, actions },
            per_target,
        );
        self.builder.event(at, None, format!("requested cleanup freed {}", human_bytes(report.freed_bytes)));
    }

    fn engine_event(&mut self, event: &Event) {
        let at = event.t.max(0.0) as u64;
        let key = &event.key;
        let message = match &event.kind {
            EventKind::State { from, to, usage_bytes, limit_bytes, pressure } => {
                let mut text =
                    format!("{key}: {from} -> {to} ({} of {})", human_bytes(*usage_bytes), human_bytes(*limit_bytes));
                if let Some(stall) = pressure {
                    text.push_str(&format!(", memory pressure {stall:.1}%"));
                }
                text
            }
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
                self.leaks.remove(key);
                format!("{key}: leak ended after {leaked_for_secs:.0}s")
            }
            EventKind::SeedRule { .. } | EventKind::LeakEvaluation(_) => return,
        };
        self.builder.event(at, Some(key.to_string()), message);
    }
}

fn host_view(host: meminfo::HostMemory) -> HostView {
    let used = host.used();
    HostView {
        used,
        total: host.total,
        usage_ratio: used as f64 / host.total.max(1) as f64,
        free: host.free,
        buffers: host.buffers,
        cached: host.cached,
    }
}
