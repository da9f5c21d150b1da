//! The executor: applies the planner's decisions through the system layer
//! (`sys`) and reports what came of each. It decides nothing: every "should
//! we" was answered by the planner; what is left is "did it work". Failures
//! become outcomes too: one target's gone cgroup or refused pid never stops
//! the daemon.
use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use rustix::process::Signal;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{
    incident_log::IncidentLog,
    passes::{PassDone, Passes},
    readiness::Readiness,
    steps::{StepRunner, failure},
    sys::{
        ActError, signal,
        throttle_state::{Restored, Throttles, Via},
    },
};
use crate::{
    bytes::human_bytes,
    engine::planner::{Applied, Decision, Plan},
    model::{
        cgroup::{Knob, Limit},
        incident::Incident,
        incident::Outcome,
        sample::ProcessId,
    },
    sources::{
        cgroupfs::{Cgroup, CgroupFs},
        procfs::ProcFs,
    },
};

/// Sends signals; the real one goes through pidfds, tests use a fake. A
/// copy goes to each pass worker.
pub trait Signaller: Clone + Send + 'static {
    fn send(&mut self, id: ProcessId, signal: Signal) -> Result<(), ActError>;

    /// Just before a cleanup signal goes out: whether `id` still catches,
    /// ignores or blocks it and is no runtime that uses it for itself. The
    /// planner checked when it planned the pass, but a pass's earlier steps
    /// may have taken a while. `Err` says why not.
    fn still_welcome(&mut self, _id: ProcessId, _signal: Signal) -> Result<(), String> {
        Ok(())
    }
}

/// `sys::signal::send` against the host's /proc.
#[derive(Debug, Clone, Default)]
pub struct PidfdSignaller {
    pub procfs: ProcFs,
}

impl Signaller for PidfdSignaller {
    fn send(&mut self, id: ProcessId, signal: Signal) -> Result<(), ActError> {
        signal::send(&self.procfs, id, signal)
    }

    fn still_welcome(&mut self, id: ProcessId, signal: Signal) -> Result<(), String> {
        signal::still_welcome(&self.procfs, id, signal)
    }
}

pub struct Executor<S> {
    cgroupfs: CgroupFs,
    throttles: Throttles,
    /// Signals and cleanup steps, and the workers for passes that may block.
    passes: Passes<S>,
    readiness: Readiness,
    incidents: Option<IncidentLog>,
    /// The directory each lowered cgroup's knob is in, for its restore.
    lowered: HashMap<String, PathBuf>,
    /// When records no open lowering owns are next put back (`restore_left_over`).
    next_sweep: Option<Instant>,
}

/// How often records left over (a lowering systemd may have applied though
/// it never answered, a restore that failed) are tried again: each try may
/// wait on a busy systemd, so not every interval.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl<S: Signaller> Executor<S> {
    pub fn new(
        cgroupfs: CgroupFs,
        throttles: Throttles,
        signaller: S,
        readiness: Readiness,
        incidents: Option<IncidentLog>,
    ) -> Self {
        let runner = StepRunner {
            cgroupfs: cgroupfs.clone(),
            procfs: ProcFs::default(),
            signaller,
            running: Default::default(),
        };
        Self {
            cgroupfs,
            throttles,
            passes: Passes::new(runner),
            readiness,
            incidents,
            lowered: HashMap::new(),
            next_sweep: None,
        }
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub fn signaller(&self) -> &S {
        &self.passes.runner().signaller
    }

    pub fn signaller_mut(&mut self) -> &mut S {
        &mut self.passes.runner_mut().signaller
    }

    /// Starts the workers that apply passes off the loop (see
    /// `Passes::start_workers`).
    pub fn start_pass_workers(&mut self) {
        self.passes.start_workers();
    }

    /// Exit is near: no new pass starts off the loop, queued ones are
    /// reported as not run.
    pub fn stop_passes(&mut self) {
        self.passes.stop_queue();
    }

    /// Where the outcomes of passes applied off the loop arrive (once).
    pub fn take_pass_results(&mut self) -> Option<UnboundedReceiver<PassDone>> {
        self.passes.take_done()
    }

    /// Applies `decisions` in order; one outcome each. `started` is when the
    /// reading (or request) they were decided on was taken. A cleanup pass
    /// with a step that may block goes to a worker as a whole: its steps'
    /// outcomes are `pending` here and arrive later as one `PassDone`.
    pub fn apply(&mut self, decisions: &[Decision], started: Instant) -> Vec<Applied> {
        let mut applied = Vec::with_capacity(decisions.len());
        let mut rest = decisions;
        while let Some(decision) = rest.first() {
            let pass_len = decision.pass.map_or(0, |pass| rest.iter().take_while(|d| d.pass == Some(pass)).count());
            let pass = &rest[..pass_len];
            if let Some(id) = decision.pass
                && pass.iter().any(|d| d.plan.is_slow())
            {
                self.passes.start(id, pass.to_vec(), started);
                applied.extend(
                    pass.iter().map(|_| Applied::new(Outcome::Pending, "being applied off the monitoring loop")),
                );
                rest = &rest[pass_len..];
                continue;
            }
            let applied_one = self.apply_one(decision);
            applied.push(Applied { done_after_s: started.elapsed().as_secs_f64(), ..applied_one });
            rest = &rest[1..];
        }
        self.restore_left_over(started);
        applied
    }

    /// Puts back every recorded limit no open lowering owns, at the first
    /// call [`SWEEP_EVERY`] after one is seen, and so on: an episode
    /// that ended without its limit back must not leave it lowered until
    /// memwatch stops.
    fn restore_left_over(&mut self, now: Instant) {
        let owned: Vec<&PathBuf> = self.lowered.values().collect();
        let left_over: Vec<PathBuf> =
            self.throttles.entries().keys().filter(|dir| !owned.contains(dir)).cloned().collect();
        if left_over.is_empty() {
            self.next_sweep = None;
            return;
        }
        let due = *self.next_sweep.get_or_insert(now + SWEEP_EVERY);
        if now < due {
            return;
        }
        self.next_sweep = Some(now + SWEEP_EVERY);
        for dir in left_over {
            match self.throttles.restore(&dir) {
                Ok(Some(Restored::Original(limit))) => {
                    tracing::warn!(cgroup = %dir.display(), %limit, "memory limit restored (left over by a failed action)");
                }
                Ok(_) => {
                    tracing::info!(cgroup = %dir.display(), "left-over throttle record dropped: the cgroup is gone")
                }
                Err(e) => tracing::error!(cgroup = %dir.display(), "could not restore memory limit (will retry): {e}"),
            }
        }
    }

    fn apply_one(&mut self, decision: &Decision) -> Applied {
        let key = decision.target.to_string();
        let (outcome, detail) = match &decision.plan {
            Plan::LowerLimit { cgroup, bytes, usage } => self.lower_limit(cgroup, *bytes, *usage),
            Plan::Restore { cgroup } => self.restore(cgroup),
            Plan::HoldNotReady => {
                self.readiness.hold(&key);
                (Outcome::Ok, "host reported not ready".to_owned())
            }
            Plan::ReleaseReady => {
                self.readiness.release(&key);
                (Outcome::Ok, "host reported ready again".to_owned())
            }
            plan => {
                return self
                    .passes
                    .runner_mut()
                    .step(plan)
                    .unwrap_or_else(|| Applied::new(Outcome::Failed, "no way to apply this plan on the loop"));
            }
        };
        Applied::new(outcome, detail)
    }

    /// Lowers the cgroup's knob to `bytes`, recording its original value
    /// first (`Throttles`), so it can always be put back.
    fn lower_limit(&mut self, cgroup: &str, bytes: u64, usage: u64) -> (Outcome, String) {
        let cg = match self.cgroupfs.open(cgroup) {
            Ok(cg) => cg,
            Err(e) => return failed(&e.into()),
        };
        let bytes = floor_at_usage_now(&cg, bytes);
        match self.throttles.throttle(&cg, cgroup, Limit::Bytes(bytes)) {
            Ok(original) => {
                self.lowered.insert(cgroup.to_owned(), cg.dir().to_path_buf());
                let knob = match self.throttles.entries().get(cg.dir()).map(|entry| &entry.via) {
                    Some(Via::Systemd(unit)) => format!("MemoryHigh of {unit} (through systemd)"),
                    _ => cg.knob().file().to_owned(),
                };
                (Outcome::Ok, format!("{knob} {original} -> {bytes} (usage {})", human_bytes(usage)))
            }
            Err(e) => failed(&e),
        }
    }

    /// Puts back the original knob value of a cgroup memwatch lowered.
    fn restore(&mut self, cgroup: &str) -> (Outcome, String) {
        let dir =
            self.lowered.remove(cgroup).or_else(|| self.cgroupfs.open(cgroup).ok().map(|cg| cg.dir().to_path_buf()));
        let Some(dir) = dir else { return (Outcome::Skipped, "not throttled by memwatch".to_owned()) };
        match self.throttles.restore(&dir) {
            Ok(Some(Restored::Original(limit))) => (Outcome::Ok, format!("{} back to {limit}", dir.display())),
            Ok(Some(Restored::Gone)) => (Outcome::Gone, format!("{} is gone", dir.display())),
            Ok(None) => (Outcome::Skipped, "not throttled by memwatch".to_owned()),
            Err(e) => failed(&e),
        }
    }

    /// Appends records to the incident log; a record that cannot be
    /// written is logged, never fatal.
    pub fn write_incidents(&self, incidents: &[Incident]) {
        for incident in incidents {
            tracing::info!(
                target_key = %incident.target,
                end = %incident.end,
                duration_s = incident.duration_s,
                freed_bytes = incident.freed_bytes,
                "incident closed"
            );
            if let Some(log) = &self.incidents
                && let Err(e) = log.append(incident)
            {
                tracing::warn!("incident not recorded: {e}");
            }
        }
    }

    /// Clean exit, after the planner's own shutdown decisions: anything
    /// still recorded as lowered is put back, and the host is ready.
    pub fn shutdown(&mut self) {
        self.passes.stop();
        // Nothing recorded, nothing to write: a daemon that never acted leaves no state file.
        if !self.throttles.entries().is_empty() {
            restore_all(&mut self.throttles, "exit");
        }
        self.readiness.clear();
    }
}

fn failed(e: &ActError) -> (Outcome, String) {
    let applied = failure(e);
    (applied.outcome, applied.detail)
}

/// Restores every recorded throttle, logging what happened (start-up and exit).
pub fn restore_all(throttles: &mut Throttles, when: &str) {
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

/// Room left above what a cgroup uses when its `memory.high` is written: four
/// of the kernel's per-CPU charge batches (64 pages each), so a target still
/// growing while the write runs is not over the new value when the kernel
/// checks.
const WRITE_MARGIN_BYTES: u64 = 1 << 20;

/// `bytes`, or what the cgroup uses now plus [`WRITE_MARGIN_BYTES`] if that
/// is more. Writing `memory.high` below usage makes the writer reclaim the
/// excess: the kernel loops in the write until usage is under the new value
/// or reclaim gives up (16 fruitless rounds for an anonymous leak without
/// swap). That is the target's work, and it would stall memwatch's loop (or
/// systemd, for a unit) and every action after it. A target that grew since
/// the reading is held where it is now; its own allocations then pay for
/// reclaim and throttling.
fn floor_at_usage_now(cg: &Cgroup, bytes: u64) -> u64 {
    match (cg.knob(), cg.usage()) {
        (Knob::MemoryHigh, Ok(now)) => bytes.max(now.saturating_add(WRITE_MARGIN_BYTES)),
        _ => bytes,
    }
}
