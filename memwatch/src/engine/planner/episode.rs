//! What the planner remembers per target between intervals, and the
//! episode (critical or emergency until back at normal) that becomes one
//! incident record.
use std::collections::{HashMap, VecDeque};

use crate::{
    engine::{LeakVerdict, Level},
    model::{
        incident::{
            ActionRecord, Incident, IncidentEnd, IncidentKind, LeakRecord, LevelChange, TIMELINE_SAMPLES,
            TimelineSample, round_ms,
        },
        sample::ProcessId,
        target_key::TargetKey,
    },
};

use super::{input::Observed, newest::Newest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    Critical,
    Leak,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Step {
    Idle,
    /// Cleanup pass `pass` (1-based, `id` among all passes) started at
    /// `sent_at` with usage `before`; its steps' records are `records` of
    /// the episode's actions. `running`: some step is still being applied
    /// (off the monitoring loop); the pass is judged by the first reading
    /// `pass_wait` after it is all `done_at`.
    Cleanup {
        reason: Reason,
        pass: u32,
        id: u64,
        sent_at: f64,
        before: u64,
        records: Records,
        running: bool,
        done_at: f64,
    },
    /// SIGTERM went to `id` at `sent_at`; SIGKILL follows after the grace period.
    Terminating {
        id: ProcessId,
        sent_at: f64,
    },
}

/// A consecutive run of an episode's action records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Records {
    pub first: usize,
    pub count: usize,
}

impl Records {
    pub fn contains(&self, index: usize) -> bool {
        (self.first..self.first + self.count).contains(&index)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Episode {
    pub started: f64,
    pub peak_level: Level,
    pub peak_usage: u64,
    pub levels: Newest<LevelChange>,
    pub leak: Option<LeakRecord>,
    pub actions: Newest<ActionRecord>,
    /// Each process's RSS when the episode began: the largest grower is
    /// measured against it.
    pub baseline: HashMap<ProcessId, u64>,
    /// The cgroup memwatch lowered, to restore at the end.
    pub throttled: Option<String>,
    pub killed: bool,
    pub dry_run: bool,
    pub protected: bool,
    /// What the cleanup passes freed, each by its re-measure (target usage
    /// before the pass minus usage after it): the incident's figure. The
    /// steps' own figures are detail, measured around each step.
    pub passes_freed: i64,
}

#[derive(Debug, Default)]
pub(super) struct TargetState {
    pub level: Level,
    pub policy: String,
    pub cgroup: Option<String>,
    pub limit_bytes: u64,
    pub timeline: VecDeque<TimelineSample>,
    pub episode: Option<Episode>,
    pub step: Option<Step>,
    /// No new procedure before this (cooldown).
    pub next_allowed: f64,
    /// When the emergency clamp was last applied in the current emergency.
    pub clamped_at: Option<f64>,
    /// The reading that last crossed a threshold upwards (or brought a
    /// verdict), or an operator's cleanup request.
    pub crossed_at: f64,
    pub leak: Option<LeakVerdict>,
    /// A verdict arrived that the policy's `on_leak` has not acted on yet.
    pub leak_unhandled: bool,
    /// Level changes since the target was last normal, for the episode
    /// that opens next (if any).
    pub pending_levels: Vec<LevelChange>,
    /// The last re-measured cleanup pass: (signalled at, freed bytes), for
    /// an operator's request waiting on it.
    pub last_pass: Option<(f64, i64)>,
    /// This target holds the host not ready.
    pub holds_not_ready: bool,
    /// Its cgroup's missing memory.reclaim was said once.
    pub reclaim_missing_said: bool,
    /// A cleanup pass (id, its records) still being applied off the loop:
    /// kept apart from `step`, which an emergency may replace meanwhile.
    pub running_pass: Option<(u64, Records)>,
}

impl TargetState {
    pub fn is_idle(&self) -> bool {
        matches!(self.step, None | Some(Step::Idle)) && self.running_pass.is_none()
    }

    /// A step of the running pass (record `index`) is being applied off the loop.
    pub fn mark_pass_running(&mut self, index: usize) {
        if let Some(Step::Cleanup { id, records, running, .. }) = &mut self.step
            && records.contains(index)
        {
            *running = true;
            self.running_pass = Some((*id, *records));
        }
    }

    /// Takes this interval's reading of the target into its timeline.
    pub fn observe(&mut self, target: &Observed<'_>, now: f64) {
        self.policy = target.policy.to_owned();
        self.cgroup = target.cgroup.map(str::to_owned);
        self.limit_bytes = target.limit_bytes;
        if self.timeline.len() == TIMELINE_SAMPLES {
            self.timeline.pop_front();
        }
        self.timeline.push_back(TimelineSample {
            t: round_ms(now),
            usage_bytes: target.usage_bytes,
            limit_bytes: target.limit_bytes,
            level: self.level,
        });
        if let Some(episode) = &mut self.episode {
            episode.peak_level = episode.peak_level.max(self.level);
            episode.peak_usage = episode.peak_usage.max(target.usage_bytes);
        }
    }

    pub fn open_episode(&mut self, target: &Observed<'_>, now: f64, dry_run: bool, protected: bool) {
        let mut episode = new_episode(now, self.level, target, dry_run, protected);
        episode.levels = std::mem::take(&mut self.pending_levels).into_iter().collect();
        episode.leak = self.leak.map(Into::into);
        // The baseline is best taken before the climb: the oldest reading we
        // have of each process is this one, so growth counts from the
        // episode's start.
        self.episode = Some(episode);
    }

    pub fn finish(&mut self, now: f64, cooldown: f64) {
        self.step = Some(Step::Idle);
        self.next_allowed = now + cooldown;
    }
}

pub(super) fn new_episode(now: f64, level: Level, target: &Observed<'_>, dry_run: bool, protected: bool) -> Episode {
    Episode {
        started: now,
        peak_level: level,
        peak_usage: target.usage_bytes,
        levels: Newest::default(),
        leak: None,
        actions: Newest::default(),
        baseline: target.members.iter().map(|m| (m.id, m.rss)).collect(),
        throttled: None,
        killed: false,
        dry_run,
        protected,
        passes_freed: 0,
    }
}

/// The member that grew most since the episode began (new processes count
/// from zero); never the daemon, never init. Where the target's policy
/// matched some of its processes, only those: a sidecar sharing the cgroup
/// of a policy matching `comm = "java"` was not asked about. (Under the
/// defaults no process is matched, and every one is the defaults'.)
pub(super) fn largest_grower(state: &TargetState, target: &Observed<'_>, daemon_pid: u32) -> Option<ProcessId> {
    let baseline = state.episode.as_ref().map(|e| &e.baseline);
    let only_matched = target.members.iter().any(|m| m.matched);
    target
        .members
        .iter()
        .filter(|m| m.matched || !only_matched)
        .filter(|m| m.id.pid != daemon_pid && m.id.pid > 1)
        .max_by_key(|m| {
            let before = baseline.and_then(|b| b.get(&m.id)).copied().unwrap_or(0);
            (m.rss.saturating_sub(before), m.rss)
        })
        .map(|m| m.id)
}

/// An episode being closed this interval: its record is written once the
/// undo decisions it ended with (restore, ready) have their outcomes.
#[derive(Debug)]
pub(super) struct Closing {
    pub episode: Episode,
    pub policy: String,
    pub cgroup: Option<String>,
    pub limit_bytes: u64,
    pub timeline: Vec<TimelineSample>,
    pub t: f64,
    pub end: IncidentEnd,
}

impl Closing {
    pub fn new(state: &TargetState, episode: Episode, t: f64, end: IncidentEnd) -> Self {
        Self {
            episode,
            policy: state.policy.clone(),
            cgroup: state.cgroup.clone(),
            limit_bytes: state.limit_bytes,
            timeline: state.timeline.iter().copied().collect(),
            t,
            end,
        }
    }

    pub fn incident(&self, key: &TargetKey, kind: IncidentKind) -> Incident {
        let episode = &self.episode;
        Incident {
            kind,
            target: key.to_string(),
            policy: self.policy.clone(),
            cgroup: self.cgroup.clone(),
            started: round_ms(episode.started),
            ended: round_ms(self.t),
            duration_s: round_ms(self.t - episode.started),
            end: self.end,
            peak_level: episode.peak_level,
            peak_usage_bytes: episode.peak_usage,
            limit_bytes: self.limit_bytes,
            dry_run: episode.dry_run,
            protected: episode.protected,
            freed_bytes: episode.passes_freed,
            levels: episode.levels.iter().cloned().collect(),
            levels_dropped: episode.levels.dropped(),
            leak: episode.leak,
            actions: episode.actions.iter().cloned().collect(),
            actions_dropped: episode.actions.dropped(),
            timeline: self.timeline.clone(),
        }
    }
}
