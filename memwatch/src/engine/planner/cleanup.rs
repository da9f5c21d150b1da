//! A critical-level cleanup pass: the policy's steps in order (reclaim,
//! http, exec, signal), each a decision with its own record; the pass is
//! judged by the first reading `pass_wait` after all its steps are done.
use rustix::process::Signal;

use super::{
    Planner,
    decision::{Measure, Plan, Why},
    episode::{Reason, Records, Step, TargetState},
    input::{Member, Observed},
    round::{Applied, Performed, Undo, signal_result},
};
use crate::{
    bytes::human_bytes,
    config::cleanup::{CleanupStep, signal_name},
    engine::Level,
    model::{
        cgroup::KnobReading,
        incident::{ActionKind, ActionRecord, Outcome},
        untouchable::refusal,
    },
};

impl Planner {
    #[expect(clippy::too_many_arguments, reason = "one pass's whole description")]
    pub(super) fn cleanup_pass(
        &mut self,
        state: &mut TargetState,
        target: &Observed<'_>,
        t: f64,
        reason: Reason,
        pass: u32,
        dry_run: bool,
        why: Why,
    ) {
        self.next_pass += 1;
        let id = self.next_pass;
        let first = state.episode.as_ref().map_or(0, |e| e.actions.next_index());
        let mut count = 0;
        for step in &target.settings.actions.cleanup {
            if let Some((action, plan)) = self.step_plan(state, target, step, pass, dry_run) {
                self.decide(state, target, t, action, why, plan, Undo::Nothing, Some(id));
                count += 1;
            }
        }
        if count == 0 {
            let detail = "no cleanup step applies to this target (reclaim needs a cgroup with memory.reclaim; \
                          the policy has no other step)";
            let plan = Plan::Record { outcome: Outcome::Skipped, detail: detail.to_owned() };
            self.decide(state, target, t, ActionKind::Reclaim, why, plan, Undo::Nothing, Some(id));
            count = 1;
        }
        state.step = Some(Step::Cleanup {
            reason,
            pass,
            id,
            sent_at: t,
            before: target.usage_bytes,
            records: Records { first, count },
            running: false,
            done_at: t,
        });
    }

    /// One step of pass `pass` on `target`, or `None` where it does not
    /// apply (reclaim on a process target, a missing `memory.reclaim` once
    /// said).
    fn step_plan(
        &mut self,
        state: &mut TargetState,
        target: &Observed<'_>,
        step: &CleanupStep,
        pass: u32,
        dry_run: bool,
    ) -> Option<(ActionKind, Plan)> {
        let record = |outcome, detail: String| Plan::Record { outcome, detail };
        let measure = || Measure {
            cgroup: target.cgroup.map(str::to_owned),
            processes: target.members.iter().map(|m| m.id).collect(),
        };
        let plan = match step {
            CleanupStep::Reclaim => {
                let cgroup = target.cgroup?;
                return Some((ActionKind::Reclaim, self.reclaim_plan(state, target, cgroup, dry_run)?));
            }
            CleanupStep::Http { endpoint, .. } if dry_run => {
                return Some((ActionKind::Http, record(Outcome::DryRun, format!("would POST {endpoint}"))));
            }
            CleanupStep::Http { endpoint, timeout_secs } => (
                ActionKind::Http,
                Plan::Http {
                    endpoint: endpoint.clone(),
                    timeout_ms: (timeout_secs * 1000.0) as u64,
                    measure: measure(),
                },
            ),
            CleanupStep::Exec { argv, .. } if dry_run => {
                return Some((ActionKind::Exec, record(Outcome::DryRun, format!("would run {}", argv.join(" ")))));
            }
            CleanupStep::Exec { argv, timeout_secs } => {
                let env = vec![
                    ("MEMWATCH_TARGET".to_owned(), target.key.to_string()),
                    ("MEMWATCH_LEVEL".to_owned(), state.level.as_str().to_owned()),
                    ("MEMWATCH_USAGE_BYTES".to_owned(), target.usage_bytes.to_string()),
                    ("MEMWATCH_LIMIT_BYTES".to_owned(), target.limit_bytes.to_string()),
                ];
                let timeout_ms = (timeout_secs * 1000.0) as u64;
                (ActionKind::Exec, Plan::Exec { argv: argv.clone(), env, timeout_ms, measure: measure() })
            }
            CleanupStep::Signal { signal } => {
                let name = format!("{} (pass {pass})", signal_name(*signal));
                (ActionKind::Signal, self.cleanup_signal_plan(target.members, *signal, &name, dry_run))
            }
        };
        Some(plan)
    }

    fn reclaim_plan(
        &mut self,
        state: &mut TargetState,
        target: &Observed<'_>,
        cgroup: &str,
        dry_run: bool,
    ) -> Option<Plan> {
        let record = |outcome, detail: String| Some(Plan::Record { outcome, detail });
        if target.protected_inside {
            return record(Outcome::Refused, "a protected process shares this cgroup".to_owned());
        }
        if target.members.iter().any(|m| m.id.pid == self.daemon_pid) {
            return record(Outcome::Refused, "memwatch itself runs in this cgroup".to_owned());
        }
        let usage = match target.knob {
            Some(KnobReading::Read { reclaim: false, .. }) => {
                // Said once per target; after that the step is left out.
                if std::mem::replace(&mut state.reclaim_missing_said, true) {
                    return None;
                }
                return record(
                    Outcome::Skipped,
                    format!("{cgroup} has no memory.reclaim (cgroup v1, or Linux before 5.19): the step is left out"),
                );
            }
            Some(KnobReading::Read { usage, .. }) => usage.unwrap_or(target.usage_bytes),
            Some(KnobReading::Unreadable { gone, detail }) => {
                return record(if *gone { Outcome::Gone } else { Outcome::Failed }, detail.clone());
            }
            None => target.usage_bytes,
        };
        let warning = (target.settings.engine.thresholds.warning * target.limit_bytes as f64) as u64;
        let bytes = usage.saturating_sub(warning);
        if bytes == 0 {
            return record(Outcome::Skipped, format!("usage {} is not above the warning level", human_bytes(usage)));
        }
        if dry_run {
            return record(Outcome::DryRun, format!("would ask {cgroup}'s memory.reclaim for {}", human_bytes(bytes)));
        }
        Some(Plan::Reclaim { cgroup: cgroup.to_owned(), bytes })
    }

    /// The pure half of a cleanup signal: only to processes the policy
    /// matched, known to catch, ignore or block it (a process whose masks are
    /// unknown is left out too), whose runtime does not keep the signal for
    /// something of its own, and never init or memwatch.
    fn cleanup_signal_plan(&self, members: &[Member], signal: Signal, name: &str, dry_run: bool) -> Plan {
        let matched: Vec<&Member> = members.iter().filter(|m| m.matched).collect();
        if matched.is_empty() {
            let detail = format!("{name}: no process the policy matched");
            return Plan::Record { outcome: Outcome::Skipped, detail };
        }
        if dry_run {
            let detail = format!("would send {name} to {} process(es)", matched.len());
            return Plan::Record { outcome: Outcome::DryRun, detail };
        }
        let (mut to, mut refused, mut unhandled, mut notes) = (Vec::new(), 0, 0, Vec::new());
        for member in &matched {
            if let Some((runtime, meaning)) = member.runtime.and_then(|r| Some((r, r.reserved(signal)?))) {
                refused += 1;
                notes.push(format!("pid {} is {}: {} {meaning}", member.id.pid, runtime.as_str(), signal_name(signal)));
            } else if member.signals.is_none_or(|s| s.would_terminate(signal.as_raw())) {
                unhandled += 1;
            } else if refusal(member.id, self.daemon_pid).is_some() {
                refused += 1;
            } else {
                to.push(member.id);
            }
        }
        let others = members.len() - matched.len();
        if others > 0 {
            notes.push(format!("{others} process(es) in the target not matched by the policy"));
        }
        if to.is_empty() {
            let (outcome, detail) = signal_result(name, matched.len(), 0, 0, refused, unhandled, &notes, &[]);
            return Plan::Record { outcome, detail };
        }
        Plan::Signal { signal, name: name.to_owned(), to, members: matched.len(), refused, unhandled, notes }
    }

    /// A pass whose steps are all done and whose wait is over: what it freed,
    /// by the target's usage before and after it. That figure is the pass's
    /// in the incident; a signal step, whose effect comes later, is given it
    /// too. Steps measured on their own (reclaim, http, exec) keep theirs,
    /// as detail: the same memory is never counted twice.
    pub(super) fn judge_pass(&mut self, state: &mut TargetState, records: Records, before: u64, usage: u64) -> i64 {
        let freed = before as i64 - usage as i64;
        if let Some(episode) = &mut state.episode {
            episode.passes_freed += freed;
            for index in records.first..records.first + records.count {
                if let Some(action) = episode.actions.get_mut(index).filter(|a| a.action == ActionKind::Signal) {
                    action.freed_bytes = Some(freed);
                }
            }
        }
        freed
    }

    /// The steps of pass `pass`, applied off the monitoring loop, are done
    /// (`results` in step order): their records get the outcomes, and the
    /// pass is judged by the first reading `pass_wait` after `t`.
    pub fn pass_done(&mut self, t: f64, pass: u64, results: &[Applied]) -> Vec<Performed> {
        let Some((key, state)) =
            self.targets.iter_mut().find(|(_, s)| s.running_pass.is_some_and(|(id, _)| id == pass))
        else {
            // Its target is gone and its episode closed: nothing waits for it.
            return Vec::new();
        };
        let Some((_, records)) = state.running_pass.take() else { return Vec::new() };
        if let Some(Step::Cleanup { id, running, done_at, .. }) = &mut state.step
            && *id == pass
        {
            *running = false;
            *done_at = t;
        }
        let (policy, level, crossed_at) = (state.policy.clone(), state.level, state.crossed_at);
        let Some(episode) = &mut state.episode else { return Vec::new() };
        let mut performed = Vec::new();
        for (index, applied) in (records.first..records.first + records.count).zip(results) {
            // A record dropped as the oldest of a long episode has no place left.
            let Some(r) = episode.actions.get_mut(index) else { continue };
            fill_step(r, applied, crossed_at);
            performed.push(Performed { target: key.clone(), policy: policy.clone(), level, record: r.clone() });
        }
        performed
    }
}

fn fill_step(r: &mut ActionRecord, applied: &Applied, crossed_at: f64) {
    r.outcome = applied.outcome;
    r.detail = applied.detail.clone();
    r.freed_bytes = applied.freed_bytes.or(r.freed_bytes);
    let since = (r.t - crossed_at).max(0.0) + applied.done_after_s;
    r.applied_after_ms = Some((since * 1e6).round() / 1e3);
}

/// A level check the pass's re-measure shares with the planner: usage back
/// under the critical threshold (the engine's own test, without the
/// hysteresis lag) means the pass worked.
pub(super) fn still_critical(state: &TargetState, target: &Observed<'_>) -> bool {
    let ratio = target.usage_bytes as f64 / target.limit_bytes.max(1) as f64;
    state.level >= Level::Critical && target.settings.engine.thresholds.level_for(ratio) >= Level::Critical
}
