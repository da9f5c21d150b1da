//! The executor: applies the planner's decisions through the system layer
//! (`sys`) and reports what came of each. It decides nothing: every "should
//! we" was answered by the planner; what is left is "did it work". Failures
//! become outcomes too: one target's gone cgroup or refused pid never stops
//! the daemon.
use std::{collections::HashMap, path::PathBuf, time::Instant};

use rustix::process::Signal;

use super::{
    incident_log::IncidentLog,
    readiness::Readiness,
    sys::{
        ActError, signal,
        throttle_state::{Restored, Throttles},
    },
};
use crate::{
    bytes::human_bytes,
    engine::planner::{Applied, Decision, Plan, signal_result},
    model::{cgroup::Limit, incident::Incident, incident::Outcome, sample::ProcessId},
    sources::{cgroupfs::CgroupFs, procfs::ProcFs},
};

/// Sends signals; the real one goes through pidfds, tests use a fake.
pub trait Signaller {
    fn send(&mut self, id: ProcessId, signal: Signal) -> Result<(), ActError>;
}

/// `sys::signal::send` against the host's /proc.
#[derive(Debug, Default)]
pub struct PidfdSignaller {
    pub procfs: ProcFs,
}

impl Signaller for PidfdSignaller {
    fn send(&mut self, id: ProcessId, signal: Signal) -> Result<(), ActError> {
        signal::send(&self.procfs, id, signal)
    }
}

pub struct Executor<S> {
    cgroupfs: CgroupFs,
    throttles: Throttles,
    signaller: S,
    readiness: Readiness,
    incidents: Option<IncidentLog>,
    /// The directory each lowered cgroup's knob is in, for its restore.
    lowered: HashMap<String, PathBuf>,
}

impl<S: Signaller> Executor<S> {
    pub fn new(
        cgroupfs: CgroupFs,
        throttles: Throttles,
        signaller: S,
        readiness: Readiness,
        incidents: Option<IncidentLog>,
    ) -> Self {
        Self { cgroupfs, throttles, signaller, readiness, incidents, lowered: HashMap::new() }
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub fn signaller(&self) -> &S {
        &self.signaller
    }

    pub fn signaller_mut(&mut self) -> &mut S {
        &mut self.signaller
    }

    /// Applies `decisions` in order; one outcome each. `started` is when the
    /// reading (or request) they were decided on was taken.
    pub fn apply(&mut self, decisions: &[Decision], started: Instant) -> Vec<Applied> {
        decisions
            .iter()
            .map(|decision| {
                let (outcome, detail) = self.apply_one(decision);
                Applied { outcome, detail, done_after_s: started.elapsed().as_secs_f64() }
            })
            .collect()
    }

    fn apply_one(&mut self, decision: &Decision) -> (Outcome, String) {
        let key = decision.target.to_string();
        match &decision.plan {
            Plan::Record { outcome, detail } => (*outcome, detail.clone()),
            Plan::Signal { signal, name, to, members, refused, unhandled } => {
                self.signal(*signal, name, to, *members, *refused, *unhandled)
            }
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
        }
    }

    fn signal(
        &mut self,
        sig: Signal,
        name: &str,
        to: &[ProcessId],
        members: usize,
        refused: usize,
        unhandled: usize,
    ) -> (Outcome, String) {
        let (mut sent, mut gone, mut refused_now, mut errors) = (0, 0, 0, Vec::new());
        for &id in to {
            match self.signaller.send(id, sig) {
                Ok(()) => sent += 1,
                Err(e) if e.is_gone() => gone += 1,
                Err(ActError::Refused { .. }) => refused_now += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        signal_result(name, members, sent, gone, refused + refused_now, unhandled, &errors)
    }

    /// Lowers the cgroup's knob to `bytes`, recording its original value
    /// first (`Throttles`), so it can always be put back.
    fn lower_limit(&mut self, cgroup: &str, bytes: u64, usage: u64) -> (Outcome, String) {
        let cg = match self.cgroupfs.open(cgroup) {
            Ok(cg) => cg,
            Err(e) => return failure(&e.into()),
        };
        match self.throttles.throttle(&cg, Limit::Bytes(bytes)) {
            Ok(original) => {
                self.lowered.insert(cgroup.to_owned(), cg.dir().to_path_buf());
                let file = cg.knob().file();
                (Outcome::Ok, format!("{file} {original} -> {bytes} (usage {})", human_bytes(usage)))
            }
            Err(e) => failure(&e),
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
            Err(e) => failure(&e),
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
        // Nothing recorded, nothing to write: a daemon that never acted leaves no state file.
        if !self.throttles.entries().is_empty() {
            restore_all(&mut self.throttles, "exit");
        }
        self.readiness.clear();
    }
}

fn failure(e: &ActError) -> (Outcome, String) {
    let outcome = match e {
        e if e.is_gone() => Outcome::Gone,
        ActError::Refused { .. } => Outcome::Refused,
        _ => Outcome::Failed,
    };
    (outcome, e.to_string())
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
