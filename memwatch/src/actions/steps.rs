//! Applying one cleanup step (or signal) and measuring what it freed:
//! shared by the executor, on the loop, and the pass workers, off it.
use std::time::Duration;

use rustix::process::Signal;

use super::{
    executor::Signaller,
    sys::{ActError, exec, http_post, reclaim},
};
use crate::{
    bytes::human_bytes,
    config::cleanup::{CLEANUP_SIGNALS, HttpEndpoint},
    engine::planner::{Applied, Measure, Plan, signal_result},
    model::{incident::Outcome, sample::ProcessId},
    sources::{cgroupfs::CgroupFs, procfs::ProcFs},
};

#[derive(Debug, Clone)]
pub struct StepRunner<S> {
    pub cgroupfs: CgroupFs,
    pub procfs: ProcFs,
    pub signaller: S,
    /// The `exec` commands running now, for the exit to kill.
    pub running: exec::Running,
}

impl<S: Signaller> StepRunner<S> {
    /// A step of a cleanup pass; `None` for a plan that is not one.
    pub fn step(&mut self, plan: &Plan) -> Option<Applied> {
        Some(match plan {
            Plan::Record { outcome, detail } => Applied::new(*outcome, detail.clone()),
            Plan::Signal { signal, name, to, members, refused, unhandled, notes } => {
                let (outcome, detail) = self.signal(*signal, name, to, *members, *refused, *unhandled, notes);
                Applied::new(outcome, detail)
            }
            Plan::Reclaim { cgroup, bytes } => self.reclaim(cgroup, *bytes),
            Plan::Http { endpoint, timeout_ms, measure } => self.http(endpoint, *timeout_ms, measure),
            Plan::Exec { argv, env, timeout_ms, measure } => self.exec(argv, env, *timeout_ms, measure),
            _ => return None,
        })
    }

    /// Sends `sig` to each of `to` (by identity: a reused pid is not signalled).
    #[expect(clippy::too_many_arguments, reason = "every count the record states")]
    pub fn signal(
        &mut self,
        sig: Signal,
        name: &str,
        to: &[ProcessId],
        members: usize,
        refused: usize,
        unhandled: usize,
        notes: &[String],
    ) -> (Outcome, String) {
        let (mut sent, mut gone, mut refused_now, mut errors) = (0, 0, 0, Vec::new());
        let mut notes = notes.to_vec();
        // A cleanup signal is checked again now; SIGTERM / SIGKILL of an
        // emergency are meant to end the process.
        let cleanup = CLEANUP_SIGNALS.iter().any(|(_, s)| *s == sig);
        for &id in to {
            if let Err(why) = if cleanup { self.signaller.still_welcome(id, sig) } else { Ok(()) } {
                refused_now += 1;
                notes.push(why);
                continue;
            }
            match self.signaller.send(id, sig) {
                Ok(()) => sent += 1,
                Err(e) if e.is_gone() => gone += 1,
                Err(ActError::Refused { .. }) => refused_now += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        signal_result(name, members, sent, gone, refused + refused_now, unhandled, &notes, &errors)
    }

    fn reclaim(&self, cgroup: &str, bytes: u64) -> Applied {
        let result = self.cgroupfs.open(cgroup).map_err(ActError::from).and_then(|cg| reclaim::reclaim(&cg, bytes));
        match result {
            Ok(done) => {
                let mut detail = format!(
                    "memory.reclaim asked for {}, freed {} (usage {} -> {})",
                    human_bytes(bytes),
                    human_bytes(done.freed()),
                    human_bytes(done.before),
                    human_bytes(done.after)
                );
                if done.partial {
                    detail.push_str("; the kernel found less to reclaim than asked");
                }
                Applied { freed_bytes: Some(done.freed() as i64), ..Applied::new(Outcome::Ok, detail) }
            }
            Err(e) => failure(&e),
        }
    }

    fn http(&self, endpoint: &HttpEndpoint, timeout_ms: u64, measure: &Measure) -> Applied {
        let before = self.usage(measure);
        let answer = match http_post::post(endpoint, Duration::from_millis(timeout_ms)) {
            Ok(answer) => answer,
            Err(e) => return failure(&e),
        };
        let outcome = match answer.status {
            200..=299 => Outcome::Ok,
            _ => Outcome::Failed,
        };
        let mut detail = format!("POST {endpoint}: {}", answer.status);
        if (300..400).contains(&answer.status) {
            detail.push_str(" (redirects are not followed)");
        }
        if !answer.body.is_empty() {
            detail.push_str(&format!(" {}", answer.body));
        }
        self.measured(before, measure, outcome, detail)
    }

    fn exec(&self, argv: &[String], env: &[(String, String)], timeout_ms: u64, measure: &Measure) -> Applied {
        let before = self.usage(measure);
        let done = match exec::run(argv, env, Duration::from_millis(timeout_ms), &self.running) {
            Ok(done) => done,
            Err(e) => return failure(&e),
        };
        let outcome = if done.status.success() { Outcome::Ok } else { Outcome::Failed };
        let mut detail = format!("{}: {}", argv.join(" "), done.describe());
        if !done.output.is_empty() {
            detail.push_str(&format!(": {}", done.output));
        }
        self.measured(before, measure, outcome, detail)
    }

    /// The step's record with what the target's usage fell by since `before`.
    fn measured(&self, before: Option<u64>, measure: &Measure, outcome: Outcome, mut detail: String) -> Applied {
        let freed = before.zip(self.usage(measure)).map(|(before, after)| before.saturating_sub(after));
        if let Some(freed) = freed {
            detail.push_str(&format!(" (freed {})", human_bytes(freed)));
        }
        Applied { freed_bytes: freed.map(|f| f as i64), ..Applied::new(outcome, detail) }
    }

    /// The target's usage now: its cgroup's charge, or its processes'
    /// resident memory (a process that is gone or reused counts nothing).
    fn usage(&self, measure: &Measure) -> Option<u64> {
        if let Some(cgroup) = &measure.cgroup {
            return self.cgroupfs.open(cgroup).ok()?.usage().ok();
        }
        let resident = |id: &ProcessId| {
            let same = self.procfs.stat(id.pid).is_some_and(|s| s.id == *id);
            let rss = if same { self.procfs.rss(id.pid) } else { None };
            rss.map_or(0, |r| r.anon + r.file + r.shmem)
        };
        Some(measure.processes.iter().map(resident).sum())
    }
}

pub fn failure(e: &ActError) -> Applied {
    let outcome = match e {
        e if e.is_gone() => Outcome::Gone,
        ActError::Refused { .. } => Outcome::Refused,
        ActError::WouldRaise { .. } => Outcome::Skipped,
        _ => Outcome::Failed,
    };
    Applied::new(outcome, e.to_string())
}
