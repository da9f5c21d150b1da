//! The planner: from the engine's level changes and leak verdicts, each
//! target's policy and this interval's readings, the actions to take, as
//! values (`Decision`s). Pure: no I/O, no clock; the caller applies the
//! decisions (`actions::Executor`) and hands their outcomes back
//! (`settle`), which is all the planner learns of the world.
//!
//! Step-wise, advanced once per reading, rather than a task per target
//! sleeping through its re-measure waits: the re-measure a cleanup pass
//! needs *is* the next reading, so waiting for it costs nothing; all state
//! has one owner, so there is no race between a pass and a recovery; and
//! the same readings always give the same decisions, live or replayed. The
//! price is that waits round up to whole intervals.
//!
//! Decisions that depend on an outcome (a throttle to restore later, a
//! SIGTERM to follow with SIGKILL) are planned as if it succeeded and
//! undone in `settle` when it did not.
mod cleanup;
mod decision;
mod episode;
mod input;
mod newest;
mod procedure;
mod round;

use std::collections::{BTreeMap, BTreeSet};

pub use decision::{Decision, Measure, Plan, Why};
pub use input::{Member, Observed};
pub use newest::KEPT as KEPT_RECORDS;
pub use round::{Applied, Performed, Settled, assume_success, signal_result};

use crate::{
    engine::{Event, EventKind, Level},
    model::{
        incident::{ActionKind, ActionRecord, IncidentEnd, LevelChange, Outcome, round_ms},
        target_key::TargetKey,
    },
};
use episode::{Closing, Reason, Step, TargetState};
use round::{Context, Round, Undo};

/// What became of a cleanup pass signalled at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// Not re-measured yet (the pass waits `pass_wait` for a reading).
    Pending,
    /// Usage at the signal minus usage at the re-measure (negative: it grew).
    Freed(i64),
    /// The target is gone, or a later pass replaced this one unmeasured.
    Unknown,
}

pub struct Planner {
    /// Never signalled, and its cgroup never throttled.
    daemon_pid: u32,
    /// `[actions] dry_run`: overrides every policy.
    global_dry_run: bool,
    targets: BTreeMap<TargetKey, TargetState>,
    /// Episodes ended this round, waiting for their undo outcomes.
    closing: BTreeMap<TargetKey, Closing>,
    round: Round,
    /// The last cleanup pass's number (every pass gets the next).
    next_pass: u64,
}

impl Planner {
    pub fn new(daemon_pid: u32, global_dry_run: bool) -> Self {
        Self {
            daemon_pid,
            global_dry_run,
            targets: BTreeMap::new(),
            closing: BTreeMap::new(),
            round: Round::default(),
            next_pass: 0,
        }
    }

    /// `[actions] dry_run` after a reload.
    pub fn set_global_dry_run(&mut self, dry_run: bool) {
        self.global_dry_run = dry_run;
    }

    /// One interval: the engine's `events` and every live target. Targets
    /// not in `observed` are gone (service stopped, process exited): their
    /// episodes end, once a pass still being applied to them is done (its
    /// outcomes belong in the record, and a target coming back under the
    /// same key must not get a second pass meanwhile). Apply the decisions,
    /// then call `settle`.
    pub fn plan(&mut self, t: f64, events: &[Event], observed: &[Observed<'_>]) -> Vec<Decision> {
        for event in events {
            self.take_event(event);
        }
        for target in observed {
            let mut state = self.targets.remove(target.key).unwrap_or_default();
            self.advance(&mut state, target, t);
            self.targets.insert(target.key.clone(), state);
        }
        let live: BTreeSet<&TargetKey> = observed.iter().map(|o| o.key).collect();
        let gone: Vec<TargetKey> = self
            .targets
            .iter()
            .filter(|(k, s)| !live.contains(k) && s.running_pass.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            let mut state = self.targets.remove(&key).expect("listed above");
            self.close(&key, &mut state, t, IncidentEnd::Gone);
        }
        self.round.decisions()
    }

    /// An operator's request (`POST /health/gc`): starts the critical-level
    /// cleanup on `target` now, between readings, instead of waiting for the
    /// engine to cross critical. The passes that follow, their re-measures
    /// and a throttle if still critical after the last pass come from the
    /// next readings, as for any cleanup. Refused (protected, busy, cooling
    /// down), it decides nothing and says why.
    pub fn request_cleanup(&mut self, t: f64, target: &Observed<'_>) -> Result<Vec<Decision>, ActionRecord> {
        let settings = target.settings;
        let dry_run = self.global_dry_run || settings.dry_run;
        let mut state = self.targets.remove(target.key).unwrap_or_default();
        let refusal = if settings.protect {
            Some((Outcome::Refused, "protected by its policy".to_owned()))
        } else if !state.is_idle() {
            Some((Outcome::Skipped, "a procedure is already running on this target".to_owned()))
        } else if t < state.next_allowed {
            Some((Outcome::Skipped, format!("cooldown: next action allowed in {:.0} s", state.next_allowed - t)))
        } else {
            None
        };
        let result = match refusal {
            Some((outcome, detail)) => Err(round::record(t, ActionKind::Reclaim, outcome, detail)),
            None => {
                // The request is the trigger: latency counts from it.
                state.crossed_at = t;
                if state.episode.is_none() {
                    state.open_episode(target, t, dry_run, false);
                }
                self.cleanup_pass(&mut state, target, t, Reason::Critical, 1, dry_run, Why::Request);
                Ok(self.round.decisions())
            }
        };
        self.targets.insert(target.key.clone(), state);
        result
    }

    /// The outcomes of the decisions handed out since the last settle, in
    /// their order: filled into the episodes' records, plans that assumed
    /// success undone where it failed, ended episodes turned into incidents.
    pub fn settle(&mut self, applied: &[Applied]) -> Settled {
        self.round.settle(applied, &mut self.targets, &mut self.closing)
    }

    /// memwatch is stopping: every open episode ends, undoing what it left.
    pub fn shutdown(&mut self, t: f64) -> Vec<Decision> {
        for (key, mut state) in std::mem::take(&mut self.targets) {
            self.close(&key, &mut state, t, IncidentEnd::Shutdown);
        }
        self.round.decisions()
    }

    /// Cleanup passes still being applied off the loop.
    pub fn passes_running(&self) -> usize {
        self.targets.values().filter(|s| s.running_pass.is_some()).count()
    }

    /// The engine's level of `key` as of the last reading (normal if unseen).
    pub fn level(&self, key: &TargetKey) -> Level {
        self.targets.get(key).map_or(Level::Normal, |s| s.level)
    }

    /// Whether an episode or a procedure is open on `key` (its members'
    /// signal dispositions may be needed next).
    pub fn is_active(&self, key: &TargetKey) -> bool {
        self.targets.get(key).is_some_and(|s| s.episode.is_some() || !s.is_idle())
    }

    /// Whether a leak verdict stands on `key`.
    pub fn has_leak(&self, key: &TargetKey) -> bool {
        self.targets.get(key).is_some_and(|s| s.leak.is_some())
    }

    /// Whether the cleanup pass signalled on `key` at `sent_at` was re-measured.
    pub fn measured(&self, key: &TargetKey, sent_at: f64) -> Measured {
        let Some(state) = self.targets.get(key) else { return Measured::Unknown };
        match (state.last_pass, state.step) {
            (Some((at, freed)), _) if at == sent_at => Measured::Freed(freed),
            (_, Some(Step::Cleanup { sent_at: at, .. })) if at == sent_at => Measured::Pending,
            _ => Measured::Unknown,
        }
    }

    /// What the planner noticed without deciding anything (a pass
    /// re-measured, a request not run), for the log.
    pub fn take_notes(&mut self) -> Vec<(TargetKey, String)> {
        self.round.take_notes()
    }

    fn take_event(&mut self, event: &Event) {
        let state = self.targets.entry(event.key.clone()).or_default();
        match &event.kind {
            EventKind::State { from, to, usage_bytes, .. } => {
                state.level = *to;
                if to > from {
                    state.crossed_at = event.t;
                }
                let change = LevelChange { t: round_ms(event.t), from: *from, to: *to, usage_bytes: *usage_bytes };
                match &mut state.episode {
                    Some(episode) => {
                        episode.levels.push(change);
                    }
                    // What led up to an episode starts at the last normal: a
                    // target going in and out of warning keeps no history.
                    None if *to == Level::Normal => state.pending_levels.clear(),
                    None => state.pending_levels.push(change),
                }
            }
            EventKind::LeakDetected(verdict) => {
                state.leak = Some(*verdict);
                state.leak_unhandled = true;
                state.crossed_at = event.t;
                if let Some(episode) = &mut state.episode {
                    episode.leak = Some((*verdict).into());
                }
            }
            EventKind::LeakEnded { .. } => {
                state.leak = None;
                state.leak_unhandled = false;
            }
            EventKind::SeedRule { .. } | EventKind::LeakEvaluation(_) => {}
        }
    }

    /// Ends an episode: undoes what it lowered and held, and keeps it until
    /// `settle` has those outcomes for its record.
    fn close(&mut self, key: &TargetKey, state: &mut TargetState, t: f64, end: IncidentEnd) {
        state.step = None;
        let Some(mut episode) = state.episode.take() else { return };
        if let Some(cgroup) = episode.throttled.take() {
            let (context, plan) = (Context::of(state), Plan::Restore { cgroup });
            let (action, why) = (ActionKind::Restore, Why::EpisodeEnd);
            self.round.decide(key, context, t, &mut episode, action, why, plan, Undo::Nothing, None);
        }
        if std::mem::take(&mut state.holds_not_ready) {
            let (context, plan) = (Context::of(state), Plan::ReleaseReady);
            let (action, why) = (ActionKind::Ready, Why::EpisodeEnd);
            self.round.decide(key, context, t, &mut episode, action, why, plan, Undo::Nothing, None);
        }
        self.closing.insert(key.clone(), Closing::new(state, episode, t, end));
    }
}

#[cfg(test)]
mod tests;
