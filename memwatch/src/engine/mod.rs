//! The detection engine: from (time, target, usage, limit) readings to
//! typed events. Pure and deterministic: no I/O, no clock, no randomness,
//! targets kept in a sorted map, so the same readings always give the same
//! events, live (`memwatch run`) or offline (`memwatch replay`).
//!
//! Per target it keeps a bounded history (`history`), a threshold state
//! machine (`levels`), a leak detector (`leak`, built on `trend`), and the
//! seed's rule as a separate signal (`seed_rule`). Which settings apply to
//! a target and what its limit is are decided by the caller (policies,
//! `limit`), so the engine never reads configuration either. The `planner`
//! turns its levels and verdicts into decisions, just as purely.
mod cycles;
mod evaluation_line;
mod event;
pub mod history;
pub mod leak;
pub mod levels;
pub mod limit;
pub mod planner;
pub mod pressure;
pub mod ring;
pub mod seed_rule;
pub mod trend;
pub mod window;

use std::collections::BTreeMap;

use crate::model::{heap_ceiling::HeapCeiling, target_key::TargetKey};

pub use event::{Event, EventKind, LeakVerdict};
pub use leak::LeakSettings;
pub use levels::{Hysteresis, Level, Thresholds};
pub use limit::{LimitSpec, resolve_limit};
pub use pressure::PressureSettings;

use history::History;
use leak::{LeakChange, LeakDetector};
use levels::LevelMachine;
use pressure::PressureWatch;

/// Everything the engine needs to know about how to judge one target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetSettings {
    pub thresholds: Thresholds,
    pub hysteresis: Hysteresis,
    pub leak: LeakSettings,
    pub pressure: PressureSettings,
}

impl Default for TargetSettings {
    fn default() -> Self {
        Self {
            thresholds: Thresholds::DEFAULT,
            hysteresis: Hysteresis::DEFAULT,
            leak: LeakSettings::DEFAULT,
            pressure: PressureSettings::DEFAULT,
        }
    }
}

/// One reading of one target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading<'a> {
    /// Seconds, any origin, increasing per target.
    pub t: f64,
    pub key: &'a TargetKey,
    pub usage_bytes: u64,
    /// The resolved limit (see `limit::resolve_limit`); never 0.
    pub limit_bytes: u64,
    /// PSI `some avg10` of the target's cgroup, in percent, where measured.
    pub pressure: Option<f64>,
    /// The heap ceiling its runtime declared (`model::heap_ceiling`).
    pub heap_ceiling: Option<HeapCeiling>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// Also emit `seed_rule` events (the scorer compares the seed with the engine).
    pub seed_rule_events: bool,
    /// Also emit a `leak_evaluation` event at every minute the leak
    /// detector evaluates (`memwatch replay --explain`).
    pub leak_evaluations: bool,
}

#[derive(Debug, Default)]
pub struct Engine {
    options: EngineOptions,
    targets: BTreeMap<TargetKey, Target>,
    scratch: leak::Scratch,
}

#[derive(Debug, Default)]
struct Target {
    last_t: Option<f64>,
    /// What memwatch's own cleanups took below the workload's lower
    /// envelope, added back to every later reading of the trend history
    /// (see `note_freed`).
    freed_by_memwatch: u64,
    /// A cleanup that freed memory since the last reading: how much, and
    /// the lower envelope of the trend history when it was noted.
    pending_free: Option<(u64, u64)>,
    history: History,
    levels: LevelMachine,
    pressure: PressureWatch,
    leak: LeakDetector,
    seed_firing: bool,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Self {
        Self { options, targets: BTreeMap::new(), scratch: leak::Scratch::default() }
    }

    /// Feeds one reading; appends what it caused to `events`, in this order:
    /// level change, leak change, leak evaluation, seed rule.
    pub fn observe(&mut self, reading: &Reading<'_>, settings: &TargetSettings, events: &mut Vec<Event>) {
        let target = match self.targets.get_mut(reading.key) {
            Some(target) => target,
            None => self.targets.entry(reading.key.clone()).or_default(),
        };
        let emit = |events: &mut Vec<Event>, kind| {
            events.push(Event { t: reading.t, key: reading.key.clone(), kind });
        };

        let limit = reading.limit_bytes.max(1);
        let ratio = reading.usage_bytes as f64 / limit as f64;
        let floor = target.pressure.floor(reading.t, reading.pressure, &settings.pressure);
        if let Some(change) = target.levels.observe(ratio, floor, &settings.thresholds, &settings.hysteresis) {
            // Named where the pressure, not the usage, holds the new level
            // (a level hysteresis keeps above the reading's is usage's too).
            let by_pressure = floor >= change.to && settings.thresholds.level_for(ratio) < change.to;
            emit(
                events,
                EventKind::State {
                    from: change.from,
                    to: change.to,
                    usage_bytes: reading.usage_bytes,
                    limit_bytes: limit,
                    pressure: reading.pressure.filter(|_| by_pressure),
                },
            );
        }

        // A clock that steps back (NTP on a live host) would fold minutes
        // onto each other; such a reading still counts for the levels but
        // not for the trend.
        if target.last_t.is_some_and(|last| reading.t <= last) {
            return;
        }
        target.last_t = Some(reading.t);
        if let Some((freed, envelope)) = target.pending_free.take() {
            // Only what fell below the workload's own lower envelope is
            // memwatch's: a collection it asked for that ends where the
            // runtime's own collections end took nothing the workload keeps.
            let now = reading.usage_bytes.saturating_add(target.freed_by_memwatch);
            target.freed_by_memwatch += envelope.saturating_sub(now).min(freed);
        }
        let trend_usage = reading.usage_bytes.saturating_add(target.freed_by_memwatch);
        let closed_minute = target.history.push(reading.t, trend_usage);
        if closed_minute {
            match target.leak.evaluate(
                &target.history,
                reading.t,
                leak::Bounds {
                    limit_bytes: limit as f64,
                    heap_ceiling: reading.heap_ceiling,
                    trend_offset: target.freed_by_memwatch as f64,
                },
                &settings.leak,
                &mut self.scratch,
            ) {
                Some(LeakChange::Started(trend)) => {
                    emit(events, EventKind::LeakDetected(LeakVerdict::new(trend, reading.usage_bytes, limit)));
                }
                Some(LeakChange::Ended { leaked_for_secs }) => {
                    emit(events, EventKind::LeakEnded { leaked_for_secs });
                }
                None => {}
            }
            if self.options.leak_evaluations {
                emit(events, EventKind::LeakEvaluation(Box::new(target.leak.explain(reading.t))));
            }
        }

        let seed = seed_rule::seed_rule(target.history.recent());
        let started = seed.is_some() && !target.seed_firing;
        target.seed_firing = seed.is_some();
        if let (true, Some(per_check)) = (started && self.options.seed_rule_events, seed) {
            emit(events, EventKind::SeedRule { growth_bytes_per_check: per_check });
        }
    }

    /// Tells the engine that a cleanup step memwatch decided at `t` freed
    /// `bytes` of `key`. A fall memwatch caused is not the workload giving
    /// memory back: at the next reading, whatever the usage fell below the
    /// lower envelope of the minutes before `t` (up to `bytes`) is added
    /// back to the trend history from then on, so the leak detector reads
    /// neither a return to a baseline (a cycle) nor a large fall where the
    /// workload kept growing. A fall that ends at the envelope (a
    /// collection memwatch asked for, ending where the runtime's own
    /// collections end) adds nothing. Levels see the usage as it is.
    pub fn note_freed(&mut self, key: &TargetKey, t: f64, bytes: u64) {
        let Some(target) = self.targets.get_mut(key) else { return };
        // Before the step: a pass applied off the loop is reported when it
        // is done, and readings since then already show its fall.
        let Some(envelope) = target.history.envelope_before(t, window::ENVELOPE_MINUTES) else { return };
        let (pending, _) = target.pending_free.get_or_insert((0, envelope as u64));
        *pending = pending.saturating_add(bytes);
    }

    /// Starts `key`'s trend history anew at `t`, its levels kept: its usage
    /// changed what it counts (a cgroup's working set, or its processes'
    /// RSS), and the step between the two says nothing about the workload.
    /// A leak being reported ends (`leak_ended`), to be found again on the
    /// new figure.
    pub fn restart_trend(&mut self, t: f64, key: &TargetKey, events: &mut Vec<Event>) {
        let Some(target) = self.targets.get_mut(key) else { return };
        if let Some(leaked_for_secs) = target.leak.leaking_for(t) {
            events.push(Event { t, key: key.clone(), kind: EventKind::LeakEnded { leaked_for_secs } });
        }
        target.history = History::default();
        target.leak = LeakDetector::default();
        target.freed_by_memwatch = 0;
        target.pending_free = None;
    }

    /// Drops the state of targets for which `keep` is false (processes that
    /// exited, units that stopped), so a long-running daemon stays bounded.
    pub fn retain(&mut self, mut keep: impl FnMut(&TargetKey) -> bool) {
        self.targets.retain(|key, _| keep(key));
    }

    pub fn level(&self, key: &TargetKey) -> Option<Level> {
        self.targets.get(key).map(|t| t.levels.level())
    }

    pub fn target_count(&self) -> usize {
        self.targets.len()
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "note_freed_tests.rs"]
mod note_freed_tests;
