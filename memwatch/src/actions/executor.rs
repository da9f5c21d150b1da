//! The per-target action state machine: turns the engine's level changes and
//! leak verdicts, plus each interval's readings, into actions.
//!
//! Step-wise, advanced once per sampling tick, rather than a task per target
//! sleeping through its re-measure waits: the re-measure a cleanup pass needs
//! *is* the next reading, so waiting for the tick costs nothing; the sampling
//! loop never blocks (each step is a few file writes or signals, microseconds);
//! all state has one owner, so no locks and no race between a pass and a
//! recovery; and tests drive it with a fake clock, deterministically. The
//! price is that waits round up to whole intervals.
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    path::PathBuf,
    time::Instant,
};

use super::{
    effects::{Hands, LimitChange, Signaller, record},
    incident::{
        ActionKind, ActionRecord, Incident, IncidentEnd, IncidentKind, LeakRecord, LevelChange, Outcome,
        TIMELINE_SAMPLES, TimelineSample, round_ms,
    },
    incident_log::IncidentLog,
    readiness::Readiness,
};
use crate::{
    config::{LeakAction, PolicySettings, actions::signal_name},
    engine::{Event, EventKind, LeakVerdict, Level},
    model::sample::ProcessId,
};

/// One process of a target, as this interval read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub id: ProcessId,
    pub rss: u64,
}

/// One target as this interval saw it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub key: &'a str,
    pub policy: &'a str,
    pub settings: &'a PolicySettings,
    /// The cgroup to throttle: only for cgroup targets (a process target
    /// shares its cgroup with others, who must not be throttled with it).
    pub cgroup: Option<&'a str>,
    pub usage_bytes: u64,
    pub limit_bytes: u64,
    pub members: &'a [Member],
    /// A protected process target lives in this cgroup: throttling the
    /// cgroup would throttle it too, so it is refused.
    pub protected_inside: bool,
}

/// When a tick's reading was taken: `t` (unix seconds) orders and stamps
/// everything; `started` measures how long acting took after it.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    pub t: f64,
    pub started: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Critical,
    Leak,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Idle,
    /// Cleanup pass `pass` (1-based) was signalled at `sent_at` with usage
    /// `before`; its record is `actions[record]` of the episode.
    Cleanup {
        reason: Reason,
        pass: u32,
        sent_at: f64,
        before: u64,
        record: usize,
    },
    /// SIGTERM went to `id` at `sent_at`; SIGKILL follows after the grace period.
    Terminating {
        id: ProcessId,
        sent_at: f64,
    },
}

#[derive(Debug)]
struct Episode {
    started: f64,
    peak_level: Level,
    peak_usage: u64,
    levels: Vec<LevelChange>,
    leak: Option<LeakRecord>,
    actions: Vec<ActionRecord>,
    /// Each process's RSS when the episode began: the largest grower is
    /// measured against it.
    baseline: HashMap<ProcessId, u64>,
    /// The cgroup directory memwatch lowered, to restore at recovery.
    throttled: Option<PathBuf>,
    killed: bool,
    dry_run: bool,
    protected: bool,
}

#[derive(Debug, Default)]
struct TargetState {
    level: Level,
    policy: String,
    cgroup: Option<String>,
    limit_bytes: u64,
    timeline: VecDeque<TimelineSample>,
    episode: Option<Episode>,
    step: Option<Step>,
    /// No new procedure before this (cooldown).
    next_allowed: f64,
    /// When the emergency clamp was last applied in the current emergency.
    clamped_at: Option<f64>,
    /// The reading that last crossed a threshold upwards (or brought a
    /// verdict), or an operator's cleanup request.
    crossed_at: f64,
    leak: Option<LeakVerdict>,
    /// A verdict arrived that the policy's `on_leak` has not acted on yet.
    leak_unhandled: bool,
    /// Level changes seen before an episode opened this tick.
    pending_levels: Vec<LevelChange>,
    /// The last re-measured cleanup pass: (signalled at, freed bytes), for
    /// an operator's request waiting on it (`measured`).
    last_pass: Option<(f64, i64)>,
}

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

pub struct Executor<S> {
    hands: Hands<S>,
    /// `[actions] dry_run`: overrides every policy.
    global_dry_run: bool,
    readiness: Readiness,
    incidents: Option<IncidentLog>,
    targets: BTreeMap<String, TargetState>,
    /// Every action taken since the last `take_performed`, by target key,
    /// for the status view and the `memwatch.actions` counter.
    performed: Vec<(String, ActionRecord)>,
}

impl<S: Signaller> Executor<S> {
    pub fn new(hands: Hands<S>, global_dry_run: bool, readiness: Readiness, incidents: Option<IncidentLog>) -> Self {
        Self { hands, global_dry_run, readiness, incidents, targets: BTreeMap::new(), performed: Vec::new() }
    }

    /// The actions taken since the last call, oldest first.
    pub fn take_performed(&mut self) -> Vec<(String, ActionRecord)> {
        std::mem::take(&mut self.performed)
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub fn hands(&self) -> &Hands<S> {
        &self.hands
    }

    pub fn hands_mut(&mut self) -> &mut Hands<S> {
        &mut self.hands
    }

    /// One interval: the engine's `events` and every live target.
    pub fn tick(&mut self, tick: Tick, events: &[Event], observed: &[Observed<'_>]) {
        for event in events {
            let state = self.targets.entry(event.key.clone()).or_default();
            match &event.kind {
                EventKind::State { from, to, usage_bytes, .. } => {
                    state.level = *to;
                    if to > from {
                        state.crossed_at = event.t;
                    }
                    let change = LevelChange { t: round_ms(event.t), from: *from, to: *to, usage_bytes: *usage_bytes };
                    match &mut state.episode {
                        Some(episode) => episode.levels.push(change),
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
                EventKind::SeedRule { .. } => {}
            }
        }
        for target in observed {
            let mut state = self.targets.remove(target.key).unwrap_or_default();
            self.advance(&mut state, target, tick);
            self.targets.insert(target.key.to_owned(), state);
        }
        // Targets not seen this interval are gone (service stopped, process exited).
        let gone: Vec<String> =
            self.targets.keys().filter(|k| !observed.iter().any(|o| o.key == k.as_str())).cloned().collect();
        for key in gone {
            let mut state = self.targets.remove(&key).expect("listed above");
            self.close(&key, &mut state, tick.t, IncidentEnd::Gone);
        }
    }

    /// The engine's level of `key` as of the last tick (normal if unseen).
    pub fn level(&self, key: &str) -> Level {
        self.targets.get(key).map_or(Level::Normal, |s| s.level)
    }

    /// Whether the cleanup pass signalled on `key` at `sent_at` was re-measured.
    pub fn measured(&self, key: &str, sent_at: f64) -> Measured {
        let Some(state) = self.targets.get(key) else { return Measured::Unknown };
        match (state.last_pass, state.step) {
            (Some((at, freed)), _) if at == sent_at => Measured::Freed(freed),
            (_, Some(Step::Cleanup { sent_at: at, .. })) if at == sent_at => Measured::Pending,
            _ => Measured::Unknown,
        }
    }

    /// An operator's request (`POST /health/gc`): starts the critical-level
    /// cleanup on `target` now, between ticks, instead of waiting for the
    /// engine to cross critical. It is the same procedure the ticks run: the
    /// passes that follow, their re-measures and a throttle if the target is
    /// still critical after the last pass come from the next ticks. Returns
    /// the first pass's record (or why nothing was done); it is also the
    /// episode's, so it reaches the incident log.
    pub fn cleanup_now(&mut self, tick: Tick, target: &Observed<'_>) -> ActionRecord {
        let now = tick.t;
        let settings = target.settings;
        let dry_run = self.global_dry_run || settings.dry_run;
        let mut state = self.targets.remove(target.key).unwrap_or_default();
        let r = if settings.protect {
            record(now, ActionKind::Signal, Outcome::Refused, "protected by its policy")
        } else if !matches!(state.step, None | Some(Step::Idle)) {
            record(now, ActionKind::Signal, Outcome::Skipped, "a procedure is already running on this target")
        } else if now < state.next_allowed {
            let left = state.next_allowed - now;
            record(now, ActionKind::Signal, Outcome::Skipped, format!("cooldown: next action allowed in {left:.0} s"))
        } else {
            // The request is the trigger: latency counts from it.
            state.crossed_at = now;
            if state.episode.is_none() {
                open_episode(&mut state, target, now, dry_run, false);
            }
            self.cleanup_pass(&mut state, target, tick, Reason::Critical, 1, dry_run);
            let Some(Step::Cleanup { record: i, .. }) = state.step else { unreachable!("cleanup_pass sets the step") };
            state.episode.as_ref().map(|e| e.actions[i].clone()).expect("opened above")
        };
        if matches!(r.outcome, Outcome::Refused | Outcome::Skipped) {
            tracing::info!(target_key = %target.key, detail = %r.detail, "requested cleanup not run");
        }
        self.targets.insert(target.key.to_owned(), state);
        r
    }

    /// Clean exit: closes open episodes and restores every lowered limit.
    pub fn shutdown(&mut self, t: f64) {
        let keys: Vec<String> = self.targets.keys().cloned().collect();
        for key in keys {
            let mut state = self.targets.remove(&key).expect("listed above");
            self.close(&key, &mut state, t, IncidentEnd::Shutdown);
        }
        // Nothing recorded, nothing to write: a daemon that never acted leaves no state file.
        if !self.hands.throttles.entries().is_empty() {
            restore_all(&mut self.hands.throttles, "exit");
        }
        self.readiness.clear();
    }

    fn advance(&mut self, state: &mut TargetState, target: &Observed<'_>, tick: Tick) {
        let now = tick.t;
        let settings = target.settings;
        let actions = &settings.actions;
        let dry_run = self.global_dry_run || settings.dry_run;
        state.policy = target.policy.to_owned();
        state.cgroup = target.cgroup.map(str::to_owned);
        state.limit_bytes = target.limit_bytes;
        if state.timeline.len() == TIMELINE_SAMPLES {
            state.timeline.pop_front();
        }
        state.timeline.push_back(TimelineSample {
            t: round_ms(now),
            usage_bytes: target.usage_bytes,
            limit_bytes: target.limit_bytes,
            level: state.level,
        });
        if state.level >= Level::Critical && state.episode.is_none() {
            open_episode(state, target, now, dry_run, settings.protect);
        }
        if let Some(episode) = &mut state.episode {
            episode.peak_level = episode.peak_level.max(state.level);
            episode.peak_usage = episode.peak_usage.max(target.usage_bytes);
        }
        if settings.protect {
            // Watched and recorded, never touched.
            state.step = None;
        } else {
            // The emergency first: its clamp is the action that cannot wait.
            self.emergency(state, target, tick, dry_run);
            self.progress(state, target, tick, dry_run);
            self.start_procedure(state, target, tick, dry_run);
        }
        let throttle_held = state.leak.is_some()
            && actions.on_leak == LeakAction::Throttle
            && state.episode.as_ref().is_some_and(|e| e.throttled.is_some());
        let idle = matches!(state.step, None | Some(Step::Idle));
        if state.episode.is_some() && state.level == Level::Normal && idle && !throttle_held {
            let key = target.key.to_owned();
            self.close(&key, state, now, IncidentEnd::Recovered);
        }
    }

    /// Moves a running procedure on once its wait is over.
    fn progress(&mut self, state: &mut TargetState, target: &Observed<'_>, tick: Tick, dry_run: bool) {
        let now = tick.t;
        let actions = &target.settings.actions;
        match state.step {
            Some(Step::Cleanup { reason, pass, sent_at, before, record })
                if now - sent_at >= actions.pass_wait_secs - 1e-6 =>
            {
                let freed = before as i64 - target.usage_bytes as i64;
                if let Some(episode) = &mut state.episode
                    && let Some(r) = episode.actions.get_mut(record)
                {
                    r.freed_bytes = Some(freed);
                }
                state.last_pass = Some((sent_at, freed));
                tracing::info!(target_key = %target.key, pass, freed_bytes = freed, "cleanup pass re-measured");
                // The engine's level lags on the way down (hysteresis); usage
                // back under the critical threshold means the pass worked.
                let ratio = target.usage_bytes as f64 / target.limit_bytes.max(1) as f64;
                let critical = state.level >= Level::Critical && ratio >= target.settings.engine.thresholds.critical;
                let still_needed = match reason {
                    Reason::Critical => critical,
                    Reason::Leak => true,
                };
                if still_needed && pass < actions.cleanup_passes {
                    self.cleanup_pass(state, target, tick, reason, pass + 1, dry_run);
                    return;
                }
                if reason == Reason::Critical && critical {
                    self.throttle(state, target, tick, throttle_change(target), dry_run);
                }
                finish(state, now, actions.cooldown_secs);
            }
            Some(Step::Terminating { id, sent_at }) if now - sent_at >= actions.kill_grace_secs - 1e-6 => {
                if target.members.iter().any(|m| m.id == id) {
                    let r = self.hands.signal_all(
                        now,
                        ActionKind::Kill,
                        &[id],
                        rustix::process::Signal::KILL,
                        "SIGKILL",
                        dry_run,
                    );
                    let killed = r.outcome == Outcome::Ok;
                    self.push(state, target, tick, r);
                    // A dry run's "would kill" is no kill to put on record.
                    if killed {
                        self.write_kill_record(target.key, state, now);
                    }
                } else {
                    tracing::info!(target_key = %target.key, pid = id.pid, "exited after SIGTERM; no SIGKILL needed");
                }
                finish(state, now, actions.cooldown_secs);
            }
            _ => {}
        }
    }

    /// Emergency: clamp memory.high at usage, hold the host not ready, and
    /// (if allowed) terminate the largest grower. Not subject to the
    /// cooldown the first time: an emergency cannot wait.
    fn emergency(&mut self, state: &mut TargetState, target: &Observed<'_>, tick: Tick, dry_run: bool) {
        let now = tick.t;
        let actions = &target.settings.actions;
        if state.level < Level::Emergency {
            state.clamped_at = None;
            return;
        }
        if state.clamped_at.is_some_and(|at| now < at + actions.cooldown_secs) {
            return;
        }
        state.clamped_at = Some(now);
        self.throttle(state, target, tick, LimitChange::Clamp, dry_run);
        if dry_run {
            let r = record(now, ActionKind::NotReady, Outcome::DryRun, "would report the host not ready");
            self.push(state, target, tick, r);
        } else if self.readiness.hold(target.key) {
            let r = record(now, ActionKind::NotReady, Outcome::Ok, "host reported not ready");
            self.push(state, target, tick, r);
        }
        let killed = state.episode.as_ref().is_some_and(|e| e.killed);
        if actions.kill && !killed && !matches!(state.step, Some(Step::Terminating { .. })) {
            let Some(id) = largest_grower(state, target, self.hands.daemon_pid) else { return };
            let r = self.hands.signal_all(
                now,
                ActionKind::Terminate,
                &[id],
                rustix::process::Signal::TERM,
                "SIGTERM",
                dry_run,
            );
            let sent = r.outcome == Outcome::Ok || r.outcome == Outcome::DryRun;
            self.push(state, target, tick, r);
            if let Some(episode) = &mut state.episode {
                episode.killed = true;
            }
            if sent {
                state.step = Some(Step::Terminating { id, sent_at: now });
            }
        }
    }

    /// Starts a critical or leak procedure when nothing runs and the cooldown is over.
    fn start_procedure(&mut self, state: &mut TargetState, target: &Observed<'_>, tick: Tick, dry_run: bool) {
        let now = tick.t;
        let actions = &target.settings.actions;
        if !matches!(state.step, None | Some(Step::Idle)) || now < state.next_allowed {
            return;
        }
        let reason = if state.level >= Level::Critical {
            Reason::Critical
        } else if state.leak_unhandled && actions.on_leak != LeakAction::Report {
            Reason::Leak
        } else {
            return;
        };
        if reason == Reason::Leak {
            state.leak_unhandled = false;
            if state.episode.is_none() {
                open_episode(state, target, now, dry_run, false);
            }
        }
        let passes =
            if reason == Reason::Leak && actions.on_leak == LeakAction::Throttle { 0 } else { actions.cleanup_passes };
        if passes > 0 {
            self.cleanup_pass(state, target, tick, reason, 1, dry_run);
        } else {
            self.throttle(state, target, tick, throttle_change(target), dry_run);
            finish(state, now, actions.cooldown_secs);
        }
    }

    fn cleanup_pass(
        &mut self,
        state: &mut TargetState,
        target: &Observed<'_>,
        tick: Tick,
        reason: Reason,
        pass: u32,
        dry_run: bool,
    ) {
        let signal = target.settings.actions.cleanup_signal;
        let ids: Vec<ProcessId> = target.members.iter().map(|m| m.id).collect();
        let name = format!("{} (pass {pass})", signal_name(signal));
        let r = self.hands.signal_all(tick.t, ActionKind::Signal, &ids, signal, &name, dry_run);
        let record = self.push(state, target, tick, r);
        state.step = Some(Step::Cleanup { reason, pass, sent_at: tick.t, before: target.usage_bytes, record });
    }

    fn throttle(
        &mut self,
        state: &mut TargetState,
        target: &Observed<'_>,
        tick: Tick,
        change: LimitChange,
        dry_run: bool,
    ) {
        let kind = if change == LimitChange::Clamp { ActionKind::Clamp } else { ActionKind::Throttle };
        let r = match target.cgroup {
            None => record(tick.t, kind, Outcome::Skipped, "a process target: its cgroup may hold others"),
            Some(_) if target.members.iter().any(|m| m.id.pid == self.hands.daemon_pid) => {
                record(tick.t, kind, Outcome::Refused, "memwatch itself runs in this cgroup")
            }
            Some(_) if target.protected_inside => {
                record(tick.t, kind, Outcome::Refused, "a protected process shares this cgroup")
            }
            Some(cgroup) => {
                let (r, dir) = self.hands.lower_limit(tick.t, cgroup, target.usage_bytes, change, dry_run);
                if let (Some(dir), Some(episode)) = (dir, &mut state.episode) {
                    episode.throttled = Some(dir);
                }
                r
            }
        };
        self.push(state, target, tick, r);
    }

    /// Logs `r`, stamps its latency, and adds it to the episode; returns its index.
    fn push(&mut self, state: &mut TargetState, target: &Observed<'_>, tick: Tick, mut r: ActionRecord) -> usize {
        let since_crossing = (tick.t - state.crossed_at).max(0.0) + tick.started.elapsed().as_secs_f64();
        r.applied_after_ms = Some((since_crossing * 1e6).round() / 1e3);
        let action = serde_json::to_value(r.action).unwrap_or_default();
        let outcome = serde_json::to_value(r.outcome).unwrap_or_default();
        let (action, outcome) = (action.as_str().unwrap_or("?"), outcome.as_str().unwrap_or("?"));
        match r.outcome {
            Outcome::Failed => {
                tracing::warn!(target_key = %target.key, action, outcome, detail = %r.detail, "action failed")
            }
            _ => tracing::warn!(
                target_key = %target.key,
                policy = %target.policy,
                level = %state.level,
                action,
                outcome,
                applied_after_ms = r.applied_after_ms.unwrap_or_default(),
                detail = %r.detail,
                "action"
            ),
        }
        self.performed.push((target.key.to_owned(), r.clone()));
        let episode = state.episode.get_or_insert_with(|| new_episode(tick.t, state.level, target, false, false));
        episode.actions.push(r);
        episode.actions.len() - 1
    }

    /// Ends an episode: restores what was lowered, releases readiness, writes the record.
    fn close(&mut self, key: &str, state: &mut TargetState, t: f64, end: IncidentEnd) {
        state.step = None;
        let Some(mut episode) = state.episode.take() else {
            self.readiness.release(key);
            return;
        };
        if let Some(dir) = episode.throttled.take() {
            let restored = self.hands.restore(t, &dir);
            self.performed.push((key.to_owned(), restored.clone()));
            episode.actions.push(restored);
        }
        if self.readiness.release(key) {
            let ready = record(t, ActionKind::Ready, Outcome::Ok, "host reported ready again");
            self.performed.push((key.to_owned(), ready.clone()));
            episode.actions.push(ready);
        }
        let incident = incident_of(key, state, &episode, IncidentKind::Episode, t, end);
        tracing::info!(target_key = %key, end = ?end, duration_s = incident.duration_s, freed_bytes = incident.freed_bytes, "incident closed");
        self.write(&incident);
    }

    fn write_kill_record(&mut self, key: &str, state: &TargetState, t: f64) {
        if let Some(episode) = &state.episode {
            let incident = incident_of(key, state, episode, IncidentKind::Kill, t, IncidentEnd::Killed);
            self.write(&incident);
        }
    }

    fn write(&self, incident: &Incident) {
        if let Some(log) = &self.incidents
            && let Err(e) = log.append(incident)
        {
            tracing::warn!("incident not recorded: {e}");
        }
    }
}

fn throttle_change(target: &Observed<'_>) -> LimitChange {
    let headroom = target.limit_bytes as f64 * target.settings.actions.throttle_headroom;
    LimitChange::Throttle { headroom_bytes: headroom as u64 }
}

fn finish(state: &mut TargetState, now: f64, cooldown: f64) {
    state.step = Some(Step::Idle);
    state.next_allowed = now + cooldown;
}

fn new_episode(now: f64, level: Level, target: &Observed<'_>, dry_run: bool, protected: bool) -> Episode {
    Episode {
        started: now,
        peak_level: level,
        peak_usage: target.usage_bytes,
        levels: Vec::new(),
        leak: None,
        actions: Vec::new(),
        baseline: target.members.iter().map(|m| (m.id, m.rss)).collect(),
        throttled: None,
        killed: false,
        dry_run,
        protected,
    }
}

fn open_episode(state: &mut TargetState, target: &Observed<'_>, now: f64, dry_run: bool, protected: bool) {
    let mut episode = new_episode(now, state.level, target, dry_run, protected);
    episode.levels = std::mem::take(&mut state.pending_levels);
    episode.leak = state.leak.map(Into::into);
    // The baseline is best taken before the climb: the oldest reading we have
    // of each process is this one, so growth counts from the episode's start.
    state.episode = Some(episode);
}

/// The member that grew most since the episode began (new processes count
/// from zero); never the daemon.
fn largest_grower(state: &TargetState, target: &Observed<'_>, daemon_pid: u32) -> Option<ProcessId> {
    let baseline = state.episode.as_ref().map(|e| &e.baseline);
    target
        .members
        .iter()
        .filter(|m| m.id.pid != daemon_pid && m.id.pid > 1)
        .max_by_key(|m| {
            let before = baseline.and_then(|b| b.get(&m.id)).copied().unwrap_or(0);
            (m.rss.saturating_sub(before), m.rss)
        })
        .map(|m| m.id)
}

fn incident_of(
    key: &str,
    state: &TargetState,
    episode: &Episode,
    kind: IncidentKind,
    t: f64,
    end: IncidentEnd,
) -> Incident {
    Incident {
        kind,
        target: key.to_owned(),
        policy: state.policy.clone(),
        cgroup: state.cgroup.clone(),
        started: round_ms(episode.started),
        ended: round_ms(t),
        duration_s: round_ms(t - episode.started),
        end,
        peak_level: episode.peak_level,
        peak_usage_bytes: episode.peak_usage,
        limit_bytes: state.limit_bytes,
        dry_run: episode.dry_run,
        protected: episode.protected,
        freed_bytes: episode.actions.iter().filter_map(|a| a.freed_bytes).sum(),
        levels: episode.levels.clone(),
        leak: episode.leak,
        actions: episode.actions.clone(),
        timeline: state.timeline.iter().copied().collect(),
    }
}

/// Restores every recorded throttle, logging what happened (start-up and exit).
pub fn restore_all(throttles: &mut crate::actions::sys::throttle_state::Throttles, when: &str) {
    match throttles.restore_all() {
        Ok(report) => {
            for (dir, limit) in &report.restored {
                tracing::warn!(cgroup = %dir.display(), %limit, "memory limit restored ({when})");
            }
            for dir in &report.gone {
                tracing::info!(cgroup = %dir.display(), "throttled cgroup is gone; record dropped ({when})");
            }
            for (dir, e) in &report.failed {
                tracing::error!(cgroup = %dir.display(), "could not restore memory limit ({when}): {e}");
            }
        }
        Err(e) => tracing::error!("restoring memory limits ({when}): {e}"),
    }
}
