//! Signalling a process by identity, never by bare pid.
//!
//! A pid names whichever process holds it now; after the process we measured
//! exits, the kernel may hand the pid to another one. So: open a pidfd (which
//! pins the process the pid names *at that moment*), then check that this
//! process's start time is the one we measured, then signal through the
//! pidfd. A reuse before `pidfd_open` shows up as a different start time; a
//! reuse after it cannot redirect the pidfd; an exit after it makes the send
//! fail with ESRCH. No window is left in which a stranger gets the signal.
use std::os::fd::OwnedFd;

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use super::{ActError, Refusal};
use crate::model::untouchable::refusal;
use crate::{
    config::cleanup::signal_name,
    model::sample::ProcessId,
    sources::{
        procfs::{ProcFs, ProcStat},
        runtime,
    },
};

/// Checks what /proc says about the process a pidfd pins against `id`.
pub fn verify(id: ProcessId, stat: Option<&ProcStat>) -> Result<(), ActError> {
    let Some(stat) = stat else { return Err(ActError::ProcessGone { id }) };
    if stat.id.start_time != id.start_time {
        return Err(ActError::PidReused { id, found: stat.id.start_time });
    }
    if stat.kernel_thread {
        return Err(ActError::Refused { pid: id.pid, reason: Refusal::KernelThread });
    }
    Ok(())
}

/// Sends `signal` to the process `id`, if it is still that process and one
/// memwatch may signal. `procfs` must be the /proc of the pid namespace the
/// pids come from (the real one outside tests).
pub fn send(procfs: &ProcFs, id: ProcessId, signal: Signal) -> Result<(), ActError> {
    if let Some(reason) = refusal(id, std::process::id()) {
        return Err(ActError::Refused { pid: id.pid, reason });
    }
    let pidfd = open(id)?;
    // Only now, with the process pinned, is its start time worth checking.
    verify(id, procfs.stat(id.pid).as_ref())?;
    pidfd_send_signal(&pidfd, signal).map_err(|e| match e {
        rustix::io::Errno::SRCH => ActError::ProcessGone { id },
        e => ActError::Syscall { call: "pidfd_send_signal", pid: id.pid, source: e.into() },
    })
}

/// Whether `id` still catches, ignores or blocks the cleanup signal
/// `signal` and is no runtime that uses it for itself, read now. (A gone or
/// reused pid passes here: `send` tells those apart by identity.)
pub fn still_welcome(procfs: &ProcFs, id: ProcessId, signal: Signal) -> Result<(), String> {
    if procfs.stat(id.pid).is_none_or(|stat| stat.id != id) {
        return Ok(());
    }
    let name = signal_name(signal);
    match procfs.signal_masks(id.pid) {
        Some(masks) if !masks.would_terminate(signal.as_raw()) => {}
        Some(_) => return Err(format!("pid {} no longer catches {name}: it would kill it", id.pid)),
        None => return Err(format!("pid {}: what it does with {name} can no longer be read", id.pid)),
    }
    match runtime::identify_readable(procfs, id.pid) {
        Err(e) => {
            Err(format!("pid {}: what it runs cannot be read ({e}), so {name} may mean something else to it", id.pid))
        }
        Ok(Some(runtime)) => match runtime.reserved(signal) {
            Some(meaning) => Err(format!("pid {} is {}: {name} {meaning}", id.pid, runtime.as_str())),
            None => Ok(()),
        },
        Ok(None) => Ok(()),
    }
}

fn open(id: ProcessId) -> Result<OwnedFd, ActError> {
    let raw = i32::try_from(id.pid).ok();
    let pid = raw.and_then(Pid::from_raw).ok_or(ActError::Refused { pid: id.pid, reason: Refusal::NotAProcess })?;
    pidfd_open(pid, PidfdFlags::empty()).map_err(|e| match e {
        rustix::io::Errno::SRCH => ActError::ProcessGone { id },
        // EINVAL: the pid is a thread, not a thread-group leader; it is not
        // the process we measured (memwatch's identities are processes).
        rustix::io::Errno::INVAL => ActError::ProcessGone { id },
        e => ActError::Syscall { call: "pidfd_open", pid: id.pid, source: e.into() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: u32, start_time: u64, kernel_thread: bool) -> ProcStat {
        ProcStat {
            id: ProcessId { pid, start_time },
            comm: "worker".into(),
            page_faults: 0,
            kernel_thread,
            zombie: false,
            vsize: 0,
            resident_pages: 0,
        }
    }

    #[test]
    fn init_pid_zero_and_the_daemon_are_never_signalled() {
        let id = |pid| ProcessId { pid, start_time: 5 };
        assert_eq!(refusal(id(1), 700), Some(Refusal::Init));
        assert_eq!(refusal(id(0), 700), Some(Refusal::NotAProcess));
        assert_eq!(refusal(id(700), 700), Some(Refusal::Daemon));
        assert_eq!(refusal(id(701), 700), None);
    }

    #[test]
    fn a_different_start_time_means_the_pid_was_reused() {
        let id = ProcessId { pid: 4242, start_time: 987_654 };
        assert!(verify(id, Some(&stat(4242, 987_654, false))).is_ok());
        let err = verify(id, Some(&stat(4242, 999_999, false))).unwrap_err();
        assert!(matches!(err, ActError::PidReused { found: 999_999, .. }) && err.is_gone(), "{err}");
        assert!(matches!(verify(id, None).unwrap_err(), ActError::ProcessGone { .. }));
        let err = verify(id, Some(&stat(4242, 987_654, true))).unwrap_err();
        assert!(matches!(err, ActError::Refused { reason: Refusal::KernelThread, .. }), "{err}");
    }

    #[test]
    fn the_fixture_process_is_checked_against_its_stat_file() {
        // memwatch/tests/fixtures/proc/4242/stat: start time 987654.
        let procfs = ProcFs::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc"));
        let id = ProcessId { pid: 4242, start_time: 987_654 };
        assert!(verify(id, procfs.stat(4242).as_ref()).is_ok());
        let stale = ProcessId { start_time: 1, ..id };
        assert!(matches!(verify(stale, procfs.stat(4242).as_ref()), Err(ActError::PidReused { .. })));
    }

    #[test]
    fn refusals_happen_before_any_syscall() {
        let err = send(&ProcFs::default(), ProcessId { pid: 1, start_time: 1 }, Signal::TERM).unwrap_err();
        assert!(matches!(err, ActError::Refused { pid: 1, reason: Refusal::Init }), "{err}");
        let me = ProcessId { pid: std::process::id(), start_time: 0 };
        let err = send(&ProcFs::default(), me, Signal::KILL).unwrap_err();
        assert!(matches!(err, ActError::Refused { reason: Refusal::Daemon, .. }), "{err}");
    }
}

#[cfg(test)]
mod welcome {
    use std::process::Command;

    use super::*;

    #[test]
    fn a_process_that_does_not_catch_the_signal_is_not_welcome_to_it_now() {
        let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let procfs = ProcFs::default();
        let id = procfs.stat(child.id()).unwrap().id;
        let answer = still_welcome(&procfs, id, Signal::USR1);
        let _ = child.kill();
        let _ = child.wait();
        let why = answer.expect_err("sleep has no SIGUSR1 handler");
        assert!(why.contains("no longer catches SIGUSR1"), "{why}");
    }
}
