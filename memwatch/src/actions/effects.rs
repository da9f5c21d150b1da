//! The executor's hands: each function does one action (or, in a dry run,
//! says what it would do), and returns its record. Failures become records
//! too: one target's gone cgroup or refused pid never stops the daemon.
use std::path::PathBuf;

use rustix::process::Signal;

use super::incident::{ActionKind, ActionRecord, Outcome};
use crate::{
    actions::sys::{
        ActError,
        cgroup::{CgroupFs, Limit},
        disposition::{self, Disposition},
        signal,
        throttle_state::{Restored, Throttles},
    },
    bytes::human_bytes,
    model::sample::ProcessId,
    sources::procfs::ProcFs,
};

/// Sends signals; the real one goes through pidfds, tests use a fake.
pub trait Signaller {
    fn send(&mut self, id: ProcessId, signal: Signal) -> Result<(), ActError>;
    /// Whether `signal` would run its default action (terminate) in `id`:
    /// a cleanup signal must then not be sent.
    fn would_terminate(&self, id: ProcessId, signal: Signal) -> bool;
}

/// `actions::sys::signal::send` against the host's /proc.
#[derive(Debug, Default)]
pub struct PidfdSignaller {
    pub procfs: ProcFs,
}

impl Signaller for PidfdSignaller {
    fn send(&mut self, id: ProcessId, signal: Signal) -> Result<(), ActError> {
        signal::send(&self.procfs, id, signal)
    }

    fn would_terminate(&self, id: ProcessId, signal: Signal) -> bool {
        disposition::of(&self.procfs, id.pid, signal.as_raw()) == Some(Disposition::Default)
    }
}

/// What the executor needs to touch the system, in one place.
pub struct Hands<S> {
    pub cgroupfs: CgroupFs,
    pub throttles: Throttles,
    pub signaller: S,
    /// Never signalled, and its cgroup never throttled.
    pub daemon_pid: u32,
}

/// The record of an action at `t` with `outcome` and `detail`.
pub fn record(t: f64, action: ActionKind, outcome: Outcome, detail: impl Into<String>) -> ActionRecord {
    ActionRecord { t, action, outcome, detail: detail.into(), freed_bytes: None, applied_after_ms: None }
}

/// How memory.high is to be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitChange {
    /// Just above current usage: the kernel reclaims before the cgroup grows further.
    Throttle { headroom_bytes: u64 },
    /// At current usage: new allocations wait for reclaim.
    Clamp,
}

impl<S: Signaller> Hands<S> {
    /// Signals every process in `members`; one record for the pass. A
    /// cleanup signal (`ActionKind::Signal`) skips processes it would kill.
    pub fn signal_all(
        &mut self,
        t: f64,
        kind: ActionKind,
        members: &[ProcessId],
        sig: Signal,
        name: &str,
        dry_run: bool,
    ) -> ActionRecord {
        if members.is_empty() {
            return record(t, kind, Outcome::Skipped, format!("{name}: no processes"));
        }
        if dry_run {
            return record(t, kind, Outcome::DryRun, format!("would send {name} to {} process(es)", members.len()));
        }
        let (mut sent, mut gone, mut refused, mut unhandled, mut errors) = (0, 0, 0, 0, Vec::new());
        for &id in members {
            if kind == ActionKind::Signal && self.signaller.would_terminate(id, sig) {
                unhandled += 1;
                continue;
            }
            let result = match signal::refusal(id, self.daemon_pid) {
                Some(reason) => Err(ActError::Refused { pid: id.pid, reason }),
                None => self.signaller.send(id, sig),
            };
            match result {
                Ok(()) => sent += 1,
                Err(e) if e.is_gone() => gone += 1,
                Err(ActError::Refused { .. }) => refused += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        let outcome = match (sent, errors.is_empty(), refused + unhandled, gone) {
            (1.., _, _, _) => Outcome::Ok,
            (0, false, _, _) => Outcome::Failed,
            (0, true, 1.., _) => Outcome::Refused,
            _ => Outcome::Gone,
        };
        let mut detail = format!("{name} to {sent} of {} process(es)", members.len());
        for (count, what) in
            [(gone, "gone"), (refused, "refused"), (unhandled, "skipped: no handler, the signal would kill them")]
        {
            if count > 0 {
                detail.push_str(&format!(", {count} {what}"));
            }
        }
        if !errors.is_empty() {
            detail.push_str(&format!(", errors: {}", errors.join("; ")));
        }
        record(t, kind, outcome, detail)
    }

    /// Lowers the cgroup's memory.high per `change`, never raising it. On
    /// success the cgroup's directory is returned, for restoring it later.
    pub fn lower_limit(
        &mut self,
        t: f64,
        cgroup: &str,
        fallback_usage: u64,
        change: LimitChange,
        dry_run: bool,
    ) -> (ActionRecord, Option<PathBuf>) {
        let kind = match change {
            LimitChange::Throttle { .. } => ActionKind::Throttle,
            LimitChange::Clamp => ActionKind::Clamp,
        };
        let cg = match self.cgroupfs.open(cgroup) {
            Ok(cg) => cg,
            Err(e) => return (failure(t, kind, &e), None),
        };
        // memory.current, not the RSS sum: it is what the kernel compares
        // memory.high with (page cache and kernel memory included).
        let usage = cg.usage().unwrap_or(fallback_usage);
        let target = match change {
            LimitChange::Throttle { headroom_bytes } => usage.saturating_add(headroom_bytes),
            LimitChange::Clamp => usage,
        };
        let file = cg.knob().file();
        match cg.limit() {
            Ok(Limit::Bytes(now)) if now <= target => {
                let detail = format!("{file} already {} (usage {})", human_bytes(now), human_bytes(usage));
                return (record(t, kind, Outcome::Skipped, detail), None);
            }
            Err(e) => return (failure(t, kind, &e), None),
            Ok(_) => {}
        }
        if dry_run {
            let detail = format!("would set {file} to {} (usage {})", human_bytes(target), human_bytes(usage));
            return (record(t, kind, Outcome::DryRun, detail), None);
        }
        match self.throttles.throttle(&cg, Limit::Bytes(target)) {
            Ok(original) => {
                let detail = format!("{file} {original} -> {target} (usage {})", human_bytes(usage));
                (record(t, kind, Outcome::Ok, detail), Some(cg.dir().to_path_buf()))
            }
            Err(e) => (failure(t, kind, &e), None),
        }
    }

    /// Puts back the original memory.high of a cgroup memwatch lowered.
    pub fn restore(&mut self, t: f64, dir: &std::path::Path) -> ActionRecord {
        match self.throttles.restore(dir) {
            Ok(Some(Restored::Original(limit))) => {
                record(t, ActionKind::Restore, Outcome::Ok, format!("{} back to {limit}", dir.display()))
            }
            Ok(Some(Restored::Gone)) => {
                record(t, ActionKind::Restore, Outcome::Gone, format!("{} is gone", dir.display()))
            }
            Ok(None) => record(t, ActionKind::Restore, Outcome::Skipped, "not throttled by memwatch"),
            Err(e) => failure(t, ActionKind::Restore, &e),
        }
    }
}

fn failure(t: f64, kind: ActionKind, e: &ActError) -> ActionRecord {
    let outcome = match e {
        e if e.is_gone() => Outcome::Gone,
        ActError::Refused { .. } => Outcome::Refused,
        _ => Outcome::Failed,
    };
    record(t, kind, outcome, e.to_string())
}
