//! `sched_process_exit` (raw): report a process's final figures once, then
//! forget it, so its tgid starts clean if the kernel hands it out again.
//!
//! Faults are read from the task. RSS only where the task still has its mm
//! at this tracepoint (6.16+, where it fires before `exit_mm`); elsewhere
//! the last reading stands. The mm's counters read here are their shared
//! parts: on 6.2+ each CPU may still hold a batch of uncounted pages, so
//! this last figure is within (batch x CPUs) pages of the exact one; every
//! live reading comes from /proc, which is exact.
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_task, bpf_ktime_get_ns},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use memwatch_ebpf::{ErrorKind, ProcCounters, ProcEvent, event_kind};

use super::state::{EVENTS, LAYOUT, PROCS, current_ids, finish, read_kernel};

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    finish(try_process_exit()) as i32
}

fn try_process_exit() -> Result<(), ErrorKind> {
    let (tgid, pid) = current_ids();
    // Threads other than the leader exit without ending the process.
    if tgid != pid {
        return Ok(());
    }
    // A process that made no counted syscall has no entry: it is reported
    // all the same (a short-lived one may never have been seen in /proc).
    // SAFETY: a copy of a live map value.
    let mut counters = (unsafe { PROCS.get(tgid) }).copied().unwrap_or(ProcCounters::NEW);
    // Forgotten whether or not the event goes out: the daemon also notices
    // the process vanishing, and keeps its last reading.
    let _ = PROCS.remove(tgid);
    read_final_figures(&mut counters)?;
    let mut slot = EVENTS.reserve::<ProcEvent>(0).ok_or(ErrorKind::EventReserve)?;
    slot.write(ProcEvent {
        kind: event_kind::EXIT,
        tgid,
        // SAFETY: no preconditions; the monotonic clock.
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        bytes: 0,
        counters,
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    slot.submit(0);
    Ok(())
}

/// The mm counters in `NR_MM_COUNTERS` order (stable since 4.x).
const RSS_MEMBERS: u64 = 4;

/// RSS by member and page faults of the exiting leader, from its task.
fn read_final_figures(counters: &mut ProcCounters) -> Result<(), ErrorKind> {
    let layout = LAYOUT.load();
    if layout.task_mm == 0 {
        return Ok(()); // the daemon had no BTF offsets: figures stay unknown
    }
    // SAFETY: no preconditions; the current task_struct's address.
    let task = unsafe { bpf_get_current_task() };
    let own = read_kernel::<u64>(task + u64::from(layout.task_min_flt))?
        + read_kernel::<u64>(task + u64::from(layout.task_maj_flt))?;
    let signal = read_kernel::<u64>(task + u64::from(layout.task_signal))?;
    let exited_threads = read_kernel::<u64>(signal + u64::from(layout.signal_min_flt))?
        + read_kernel::<u64>(signal + u64::from(layout.signal_maj_flt))?;
    counters.page_faults = own + exited_threads;

    let mm = read_kernel::<u64>(task + u64::from(layout.task_mm))?;
    if mm == 0 {
        return Ok(()); // already released (kernels before 6.16)
    }
    let mut bytes = [0i64; RSS_MEMBERS as usize];
    for (member, slot) in bytes.iter_mut().enumerate() {
        let counter = mm + u64::from(layout.mm_rss_base) + member as u64 * u64::from(layout.mm_rss_stride);
        // A per-CPU counter's shared part can dip below zero: clamp.
        *slot = read_kernel::<i64>(counter)?.max(0) << layout.page_shift;
    }
    [counters.rss_file, counters.rss_anon, counters.rss_swap, counters.rss_shmem] = bytes;
    Ok(())
}
