//! One round of decisions: handed out by `plan` (or a request), their
//! outcomes taken back by `settle`. Each decision has its placeholder
//! record in its target's episode from the moment it is made, so later
//! readings can refer to it (a pass's re-measure) by index.
use std::collections::BTreeMap;

use super::{
    decision::{Decision, Plan, Why},
    episode::{Closing, Episode, Step, TargetState},
};
use crate::{
    engine::Level,
    model::{
        incident::{ActionKind, ActionRecord, Incident, IncidentEnd, IncidentKind, Outcome},
        target_key::TargetKey,
    },
};

/// What applying one decision came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub outcome: Outcome,
    pub detail: String,
    /// Seconds from the reading (or request) to the action done.
    pub done_after_s: f64,
    /// What the step freed, measured around it (reclaim, http, exec).
    pub freed_bytes: Option<i64>,
}

impl Applied {
    pub fn new(outcome: Outcome, detail: impl Into<String>) -> Self {
        Self { outcome, detail: detail.into(), done_after_s: 0.0, freed_bytes: None }
    }
}

/// One action record of the round, with who it was for.
#[derive(Debug, Clone, PartialEq)]
pub struct Performed {
    pub target: TargetKey,
    pub policy: String,
    pub level: Level,
    pub record: ActionRecord,
}

#[derive(Debug, Default)]
pub struct Settled {
    /// Every action of the round, oldest first: for the log, the view and
    /// the `memwatch.actions` counters.
    pub performed: Vec<Performed>,
    /// Records to append to the incident log: kills at once, episodes that ended.
    pub incidents: Vec<Incident>,
}

/// The record of an action at `t` with `outcome` and `detail`.
pub fn record(t: f64, action: ActionKind, outcome: Outcome, detail: impl Into<String>) -> ActionRecord {
    ActionRecord { t, action, outcome, detail: detail.into(), freed_bytes: None, applied_after_ms: None }
}

/// The outcome and words of a signal step: `sent` of `members` reached,
/// the rest gone, refused, without a handler (the signal would kill them),
/// or failing with `errors`.
#[expect(clippy::too_many_arguments, reason = "every count the record states")]
pub fn signal_result(
    name: &str,
    members: usize,
    sent: usize,
    gone: usize,
    refused: usize,
    unhandled: usize,
    notes: &[String],
    errors: &[String],
) -> (Outcome, String) {
    let outcome = match (sent, errors.is_empty(), refused + unhandled, gone) {
        (1.., _, _, _) => Outcome::Ok,
        (0, false, _, _) => Outcome::Failed,
        (0, true, 1.., _) => Outcome::Refused,
        _ => Outcome::Gone,
    };
    let mut detail = format!("{name} to {sent} of {members} process(es)");
    for (count, what) in
        [(gone, "gone"), (refused, "refused"), (unhandled, "skipped: no handler, the signal would kill them")]
    {
        if count > 0 {
            detail.push_str(&format!(", {count} {what}"));
        }
    }
    for note in notes {
        detail.push_str(&format!("; {note}"));
    }
    if !errors.is_empty() {
        detail.push_str(&format!(", errors: {}", errors.join("; ")));
    }
    (outcome, detail)
}

/// The outcomes decisions would have if everything worked: what a replay
/// without recorded outcomes (or under another config) settles with.
pub fn assume_success(decisions: &[Decision]) -> Vec<Applied> {
    decisions
        .iter()
        .map(|d| {
            let (outcome, detail) = match &d.plan {
                Plan::Record { outcome, detail } => (*outcome, detail.clone()),
                Plan::Signal { name, to, members, refused, unhandled, notes, .. } => {
                    signal_result(name, *members, to.len(), 0, *refused, *unhandled, notes, &[])
                }
                Plan::Reclaim { cgroup, bytes } => (Outcome::Ok, format!("{cgroup}: reclaim of {bytes} bytes asked")),
                Plan::Http { endpoint, .. } => (Outcome::Ok, format!("POST {endpoint}")),
                Plan::Exec { argv, .. } => (Outcome::Ok, format!("ran {}", argv.join(" "))),
                Plan::LowerLimit { cgroup, bytes, .. } => (Outcome::Ok, format!("{cgroup} lowered to {bytes}")),
                Plan::Restore { cgroup } => (Outcome::Ok, format!("{cgroup} restored")),
                Plan::HoldNotReady => (Outcome::Ok, "host reported not ready".to_owned()),
                Plan::ReleaseReady => (Outcome::Ok, "host reported ready again".to_owned()),
            };
            Applied::new(outcome, detail)
        })
        .collect()
}

/// What to put back if a decision planned as a success did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Undo {
    Nothing,
    /// The episode's throttled cgroup before this decision.
    Throttled(Option<String>),
    /// The step before a SIGTERM that was to be followed by SIGKILL.
    Terminating(Option<Step>),
    NotReady,
}

/// Who a decision is for, as its record and log line show it.
#[derive(Debug, Clone)]
pub(super) struct Context {
    pub policy: String,
    pub level: Level,
    pub crossed_at: f64,
}

impl Context {
    pub fn of(state: &TargetState) -> Self {
        Self { policy: state.policy.clone(), level: state.level, crossed_at: state.crossed_at }
    }
}

#[derive(Debug)]
struct Pending {
    target: TargetKey,
    context: Context,
    /// Index of its placeholder in the episode's actions.
    record: usize,
    undo: Undo,
}

#[derive(Debug, Default)]
pub(super) struct Round {
    /// Decided, not yet handed out.
    decisions: Vec<Decision>,
    /// Handed out (or about to be), waiting for outcomes, in order.
    pending: Vec<Pending>,
    notes: Vec<(TargetKey, String)>,
}

impl Round {
    /// Adds a decision and its placeholder record in `episode`; returns the
    /// record's index.
    #[expect(clippy::too_many_arguments, reason = "one decision's whole description")]
    pub fn decide(
        &mut self,
        key: &TargetKey,
        context: Context,
        t: f64,
        episode: &mut Episode,
        action: ActionKind,
        why: Why,
        plan: Plan,
        undo: Undo,
        pass: Option<u64>,
    ) -> usize {
        // Known now for plans that touch nothing; the rest are filled in by `settle`.
        let (outcome, detail) = match &plan {
            Plan::Record { outcome, detail } => (*outcome, detail.clone()),
            _ => (Outcome::Failed, "not applied".to_owned()),
        };
        let index = episode.actions.push(record(t, action, outcome, detail));
        self.decisions.push(Decision { t, target: key.clone(), action, why, plan, pass });
        self.pending.push(Pending { target: key.clone(), context, record: index, undo });
        index
    }

    pub fn note(&mut self, key: &TargetKey, message: String) {
        self.notes.push((key.clone(), message));
    }

    pub fn take_notes(&mut self) -> Vec<(TargetKey, String)> {
        std::mem::take(&mut self.notes)
    }

    /// The decisions made since the last call.
    pub fn decisions(&mut self) -> Vec<Decision> {
        std::mem::take(&mut self.decisions)
    }

    pub fn settle(
        &mut self,
        applied: &[Applied],
        targets: &mut BTreeMap<TargetKey, TargetState>,
        closing: &mut BTreeMap<TargetKey, Closing>,
    ) -> Settled {
        let mut settled = Settled::default();
        for (i, pending) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            let applied = applied
                .get(i)
                .cloned()
                .unwrap_or_else(|| Applied::new(Outcome::Failed, "not applied: the executor returned no outcome"));
            let record = match closing.get_mut(&pending.target) {
                // Ended this round: nothing of it is planned on any more.
                Some(ended) => fill(Some(&mut ended.episode), &pending, applied),
                None => {
                    let Some(state) = targets.get_mut(&pending.target) else { continue };
                    let record = fill(state.episode.as_mut(), &pending, applied);
                    if let Some(record) = &record {
                        undo_failed(&pending.undo, record, state);
                        if record.outcome == Outcome::Pending {
                            state.mark_pass_running(pending.record);
                        }
                        if record.action == ActionKind::Kill
                            && record.outcome == Outcome::Ok
                            && let Some(episode) = &state.episode
                        {
                            let kill = Closing::new(state, episode.clone(), record.t, IncidentEnd::Killed);
                            settled.incidents.push(kill.incident(&pending.target, IncidentKind::Kill));
                        }
                    }
                    record
                }
            };
            let Some(record) = record else { continue };
            settled.performed.push(Performed {
                target: pending.target,
                policy: pending.context.policy,
                level: pending.context.level,
                record,
            });
        }
        for (key, ended) in std::mem::take(closing) {
            settled.incidents.push(ended.incident(&key, IncidentKind::Episode));
        }
        settled
    }
}

/// Fills the placeholder record of `pending` with its outcome; returns it.
fn fill(episode: Option<&mut Episode>, pending: &Pending, applied: Applied) -> Option<ActionRecord> {
    let r = episode?.actions.get_mut(pending.record)?;
    let since = (r.t - pending.context.crossed_at).max(0.0) + applied.done_after_s;
    r.applied_after_ms = Some((since * 1e6).round() / 1e3);
    r.outcome = applied.outcome;
    r.detail = applied.detail;
    if applied.freed_bytes.is_some() {
        r.freed_bytes = applied.freed_bytes;
    }
    Some(r.clone())
}

/// Puts back what a decision planned as a success changed, when it failed.
fn undo_failed(undo: &Undo, record: &ActionRecord, state: &mut TargetState) {
    match undo {
        Undo::Throttled(previous) if record.outcome != Outcome::Ok => {
            if let Some(episode) = &mut state.episode {
                episode.throttled = previous.clone();
            }
        }
        Undo::Terminating(previous) if !matches!(record.outcome, Outcome::Ok | Outcome::DryRun) => {
            if matches!(state.step, Some(Step::Terminating { sent_at, .. }) if sent_at == record.t) {
                state.step = *previous;
            }
        }
        Undo::NotReady if record.outcome != Outcome::Ok => state.holds_not_ready = false,
        _ => {}
    }
}
