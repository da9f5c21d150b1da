//! `actions::sys::signal` against real processes: pidfds, identities, refusals.
use std::time::{Duration, Instant};

use memwatch::{
    actions::sys::{ActError, Refusal, signal},
    model::sample::ProcessId,
    sources::procfs::ProcFs,
};
use memwatch_tests::{Workload, figure, privileged, proc_status_bytes};
use rustix::process::Signal;

const WORKLOAD: &str = env!("CARGO_BIN_EXE_alloc-workload");
const MIB: u64 = 1 << 20;

fn identity(pid: u32) -> ProcessId {
    ProcFs::default().stat(pid).unwrap_or_else(|| panic!("pid {pid} has no /proc/PID/stat")).id
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose: it was killed, only not yet reaped.
    ProcFs::default().stat(pid).is_some_and(|s| !s.zombie)
}

#[test]
fn a_child_is_signalled_by_identity_and_a_stale_identity_is_refused() {
    // Signalling our own child needs no privilege.
    let mut workload = Workload::spawn(
        WORKLOAD,
        &["--mib", "64", "--step-mib", "16", "--step-ms", "0", "--brk-mib", "0", "--free-on-sigusr1"],
    );
    workload.wait_for("ready");
    workload.proceed();
    workload.wait_for("allocated");
    let id = identity(workload.pid());
    let rss_before = proc_status_bytes(id.pid, "VmRSS");

    // Same pid, another start time: a reused pid. SIGKILL, so that if the
    // identity check were broken the workload would visibly die.
    let stale = ProcessId { start_time: id.start_time + 1, ..id };
    let err = signal::send(&ProcFs::default(), stale, Signal::KILL).unwrap_err();
    assert!(matches!(err, ActError::PidReused { found, .. } if found == id.start_time), "{err}");
    std::thread::sleep(Duration::from_millis(50));
    assert!(alive(id.pid), "a stale identity must not reach the process");

    let sent = Instant::now();
    signal::send(&ProcFs::default(), id, Signal::USR1).expect("signalling the workload by identity");
    workload.wait_for("freed");
    let latency = sent.elapsed();
    let freed = rss_before.saturating_sub(proc_status_bytes(id.pid, "VmRSS"));
    figure("pidfd signal", "memory freed after SIGUSR1 (MiB)", freed / MIB);
    figure("pidfd signal", "signal to freed (ms)", latency.as_millis());
    assert!(freed >= 60 * MIB, "SIGUSR1 should free the 64 MiB, freed {freed} B");
    workload.proceed();
    workload.finish();
}

#[test]
fn an_exited_process_is_gone_not_signalled() {
    let mut workload = Workload::spawn(WORKLOAD, &["--mib", "1", "--step-mib", "1", "--brk-mib", "0"]);
    workload.wait_for("ready");
    let id = identity(workload.pid());
    workload.child.kill().unwrap();
    workload.child.wait().unwrap();
    let err = signal::send(&ProcFs::default(), id, Signal::KILL).unwrap_err();
    // Gone, or (if the pid was handed out again already) reused: never sent.
    assert!(err.is_gone(), "{err}");
}

#[test]
fn init_and_kernel_threads_are_refused() {
    // SIGCONT: harmless even if a refusal were broken.
    let init = identity(1);
    let err = signal::send(&ProcFs::default(), init, Signal::CONT).unwrap_err();
    assert!(matches!(err, ActError::Refused { pid: 1, reason: Refusal::Init }), "{err}");

    if !privileged("init_and_kernel_threads_are_refused (kernel thread part)") {
        return;
    }
    let procfs = ProcFs::default();
    let kthread = procfs
        .pids()
        .unwrap()
        .into_iter()
        .filter_map(|pid| procfs.stat(pid))
        .find(|s| s.kernel_thread)
        .expect("a kernel thread (kthreadd at least)");
    let err = signal::send(&procfs, kthread.id, Signal::CONT).unwrap_err();
    assert!(matches!(err, ActError::Refused { reason: Refusal::KernelThread, .. }), "{} {err}", kthread.comm);
}
