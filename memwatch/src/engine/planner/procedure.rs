//! The procedures, one reading at a time: the emergency clamp (and kill,
//! where allowed), the critical-level cleanup passes with their re-measures
//! and the throttle after them, the leak actions, and recovery.
use rustix::process::Signal;

use super::{
    Planner,
    cleanup::still_critical,
    decision::{Plan, Why},
    episode::{Reason, Step, TargetState, largest_grower, new_episode},
    input::Observed,
    round::{Context, Undo, signal_result},
};
use crate::{
    bytes::human_bytes,
    config::LeakAction,
    engine::Level,
    model::untouchable::refusal,
    model::{
        cgroup::{KnobReading, Limit},
        incident::{ActionKind, IncidentEnd, Outcome},
        sample::ProcessId,
    },
};

/// How the throttle knob is to be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitChange {
    /// Just above current usage: the kernel reclaims before the cgroup grows further.
    Throttle { headroom_bytes: u64 },
    /// At current usage: new allocations wait for reclaim.
    Clamp,
}

impl Planner {
    pub(super) fn advance(&mut self, state: &mut TargetState, target: &Observed<'_>, t: f64) {
        let settings = target.settings;
        let dry_run = self.global_dry_run || settings.dry_run;
        state.observe(target, t);
        if state.level >= Level::Critical && state.episode.is_none() {
            state.open_episode(target, t, dry_run, settings.protect);
        }
        if settings.protect {
            // Watched and recorded, never touched.
            state.step = None;
        } else {
            // The emergency first: its clamp is the action that cannot wait.
            self.emergency(state, target, t, dry_run);
            self.progress(state, target, t, dry_run);
            self.start_procedure(state, target, t, dry_run);
        }
        let throttle_held = state.leak.is_some()
            && settings.actions.on_leak == LeakAction::Throttle
            && state.episode.as_ref().is_some_and(|e| e.throttled.is_some());
        if state.episode.is_some() && state.level == Level::Normal && state.is_idle() && !throttle_held {
            self.close(target.key, state, t, IncidentEnd::Recovered);
        }
    }

    /// Emergency: clamp the knob at usage, hold the host not ready, and (if
    /// allowed) terminate the largest grower. Not subject to the cooldown the
    /// first time: an emergency cannot wait.
    fn emergency(&mut self, state: &mut TargetState, target: &Observed<'_>, t: f64, dry_run: bool) {
        let actions = &target.settings.actions;
        if state.level < Level::Emergency {
            state.clamped_at = None;
            return;
        }
        if state.clamped_at.is_some_and(|at| t < at + actions.cooldown_secs) {
            return;
        }
        state.clamped_at = Some(t);
        self.throttle(state, target, t, LimitChange::Clamp, dry_run, Why::Emergency);
        if dry_run {
            let plan = Plan::Record { outcome: Outcome::DryRun, detail: "would report the host not ready".into() };
            self.decide(state, target, t, ActionKind::NotReady, Why::Emergency, plan, Undo::Nothing, None);
        } else if !state.holds_not_ready {
            state.holds_not_ready = true;
            self.decide(
                state,
                target,
                t,
                ActionKind::NotReady,
                Why::Emergency,
                Plan::HoldNotReady,
                Undo::NotReady,
                None,
            );
        }
        let killed = state.episode.as_ref().is_some_and(|e| e.killed);
        if actions.kill && !killed && !matches!(state.step, Some(Step::Terminating { .. })) {
            let Some(id) = largest_grower(state, target, self.daemon_pid) else { return };
            let plan = self.kill_plan(id, Signal::TERM, "SIGTERM", dry_run);
            let sent = !matches!(&plan, Plan::Record { outcome, .. } if *outcome != Outcome::DryRun);
            let previous = state.step;
            if sent {
                state.step = Some(Step::Terminating { id, sent_at: t });
            }
            self.decide(
                state,
                target,
                t,
                ActionKind::Terminate,
                Why::Emergency,
                plan,
                Undo::Terminating(previous),
                None,
            );
            if let Some(episode) = &mut state.episode {
                episode.killed = true;
            }
        }
    }

    /// Moves a running procedure on once its wait is over.
    fn progress(&mut self, state: &mut TargetState, target: &Observed<'_>, t: f64, dry_run: bool) {
        let actions = &target.settings.actions;
        match state.step {
            Some(Step::Cleanup { reason, pass, sent_at, before, records, running, done_at, .. })
                if !running && t - done_at >= actions.pass_wait_secs - 1e-6 =>
            {
                let freed = self.judge_pass(state, records, before, target.usage_bytes);
                state.last_pass = Some((sent_at, freed));
                self.round.note(target.key, format!("cleanup pass {pass} re-measured: freed {freed} bytes"));
                let critical = still_critical(state, target);
                let still_needed = match reason {
                    Reason::Critical => critical,
                    Reason::Leak => true,
                };
                if still_needed && pass < actions.cleanup_passes {
                    let why = if reason == Reason::Leak { Why::Leak } else { Why::Critical };
                    self.cleanup_pass(state, target, t, reason, pass + 1, dry_run, why);
                    return;
                }
                if reason == Reason::Critical && critical {
                    self.throttle(state, target, t, throttle_change(target), dry_run, Why::Critical);
                }
                state.finish(t, actions.cooldown_secs);
            }
            Some(Step::Terminating { id, sent_at }) if t - sent_at >= actions.kill_grace_secs - 1e-6 => {
                if target.members.iter().any(|m| m.id == id) {
                    let plan = self.kill_plan(id, Signal::KILL, "SIGKILL", dry_run);
                    self.decide(state, target, t, ActionKind::Kill, Why::Emergency, plan, Undo::Nothing, None);
                } else {
                    self.round.note(target.key, format!("pid {} exited after SIGTERM; no SIGKILL needed", id.pid));
                }
                state.finish(t, actions.cooldown_secs);
            }
            _ => {}
        }
    }

    /// Starts a critical or leak procedure when nothing runs and the cooldown is over.
    fn start_procedure(&mut self, state: &mut TargetState, target: &Observed<'_>, t: f64, dry_run: bool) {
        let actions = &target.settings.actions;
        if !state.is_idle() || t < state.next_allowed {
            return;
        }
        let reason = if state.level >= Level::Critical {
            Reason::Critical
        } else if state.leak_unhandled && actions.on_leak != LeakAction::Report {
            Reason::Leak
        } else {
            return;
        };
        let why = match reason {
            Reason::Critical => Why::Critical,
            Reason::Leak => Why::Leak,
        };
        if reason == Reason::Leak {
            state.leak_unhandled = false;
            if state.episode.is_none() {
                state.open_episode(target, t, dry_run, false);
            }
        }
        let passes =
            if reason == Reason::Leak && actions.on_leak == LeakAction::Throttle { 0 } else { actions.cleanup_passes };
        if passes > 0 {
            self.cleanup_pass(state, target, t, reason, 1, dry_run, why);
        } else {
            self.throttle(state, target, t, throttle_change(target), dry_run, why);
            state.finish(t, actions.cooldown_secs);
        }
    }

    fn throttle(
        &mut self,
        state: &mut TargetState,
        target: &Observed<'_>,
        t: f64,
        change: LimitChange,
        dry_run: bool,
        why: Why,
    ) {
        let kind = if change == LimitChange::Clamp { ActionKind::Clamp } else { ActionKind::Throttle };
        let skip = |outcome, detail: &str| Plan::Record { outcome, detail: detail.to_owned() };
        let plan = match target.cgroup {
            None => skip(Outcome::Skipped, "a process target: its cgroup may hold others"),
            Some(_) if target.members.iter().any(|m| m.id.pid == self.daemon_pid) => {
                skip(Outcome::Refused, "memwatch itself runs in this cgroup")
            }
            Some(_) if target.protected_inside => skip(Outcome::Refused, "a protected process shares this cgroup"),
            Some(cgroup) => lower_limit_plan(cgroup, target.knob, target.usage_bytes, change, dry_run),
        };
        let previous = state.episode.as_ref().and_then(|e| e.throttled.clone());
        if let Plan::LowerLimit { cgroup, .. } = &plan {
            let cgroup = cgroup.clone();
            self.decide(state, target, t, kind, why, plan, Undo::Throttled(previous), None);
            if let Some(episode) = &mut state.episode {
                episode.throttled = Some(cgroup);
            }
        } else {
            self.decide(state, target, t, kind, why, plan, Undo::Nothing, None);
        }
    }

    /// A decision on a live target, recorded in its episode (opened if
    /// none); `pass` when it is a step of a cleanup pass.
    #[expect(clippy::too_many_arguments, reason = "one decision's whole description")]
    pub(super) fn decide(
        &mut self,
        state: &mut TargetState,
        target: &Observed<'_>,
        t: f64,
        action: ActionKind,
        why: Why,
        plan: Plan,
        undo: Undo,
        pass: Option<u64>,
    ) -> usize {
        let context = Context::of(state);
        let level = state.level;
        let episode = state.episode.get_or_insert_with(|| new_episode(t, level, target, false, false));
        self.round.decide(target.key, context, t, episode, action, why, plan, undo, pass)
    }

    /// The pure half of a SIGTERM or SIGKILL to the largest grower: meant to
    /// end it, so no handler is looked for; never init or memwatch.
    fn kill_plan(&self, id: ProcessId, signal: Signal, name: &str, dry_run: bool) -> Plan {
        if dry_run {
            return Plan::Record { outcome: Outcome::DryRun, detail: format!("would send {name} to 1 process(es)") };
        }
        if refusal(id, self.daemon_pid).is_some() {
            let (outcome, detail) = signal_result(name, 1, 0, 0, 1, 0, &[], &[]);
            return Plan::Record { outcome, detail };
        }
        Plan::Signal {
            signal,
            name: name.to_owned(),
            to: vec![id],
            members: 1,
            refused: 0,
            unhandled: 0,
            notes: Vec::new(),
        }
    }
}

fn throttle_change(target: &Observed<'_>) -> LimitChange {
    let headroom = target.limit_bytes as f64 * target.settings.actions.throttle_headroom;
    LimitChange::Throttle { headroom_bytes: headroom as u64 }
}

/// The knob's new value from this reading, never raising it.
fn lower_limit_plan(
    cgroup: &str,
    knob: Option<&KnobReading>,
    rss_usage: u64,
    change: LimitChange,
    dry_run: bool,
) -> Plan {
    let (knob, limit, usage) = match knob {
        Some(KnobReading::Read { knob, limit, usage, .. }) => (*knob, *limit, usage.unwrap_or(rss_usage)),
        Some(KnobReading::Unreadable { gone, detail }) => {
            let outcome = if *gone { Outcome::Gone } else { Outcome::Failed };
            return Plan::Record { outcome, detail: detail.clone() };
        }
        None => return Plan::Record { outcome: Outcome::Skipped, detail: format!("cgroup {cgroup}: no knob read") },
    };
    let bytes = match change {
        LimitChange::Throttle { headroom_bytes } => usage.saturating_add(headroom_bytes),
        LimitChange::Clamp => usage,
    };
    let file = knob.file();
    if let Limit::Bytes(now) = limit
        && now <= bytes
    {
        let detail = format!("{file} already {} (usage {})", human_bytes(now), human_bytes(usage));
        return Plan::Record { outcome: Outcome::Skipped, detail };
    }
    if dry_run {
        let detail = format!("would set {file} to {} (usage {})", human_bytes(bytes), human_bytes(usage));
        return Plan::Record { outcome: Outcome::DryRun, detail };
    }
    Plan::LowerLimit { cgroup: cgroup.to_owned(), bytes, usage }
}
