//! `sched:sched_process_exit`: report a process's final counters once, then
//! forget it, so its tgid starts clean if the kernel hands it out again.
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_ktime_get_ns},
    macros::tracepoint,
    programs::TracePointContext,
};
use memwatch_ebpf::{ErrorKind, ProcEvent, event_kind};

use super::state::{EVENTS, MM_OWNERS, PROCS, current_ids, finish};

#[tracepoint]
pub fn sched_process_exit(_ctx: TracePointContext) -> u32 {
    finish(try_sched_process_exit())
}

fn try_sched_process_exit() -> Result<(), ErrorKind> {
    let (tgid, pid) = current_ids();
    // Threads other than the leader exit without ending the process.
    if tgid != pid {
        return Ok(());
    }
    // SAFETY: a copy of a live map value.
    let Some(counters) = (unsafe { PROCS.get(tgid) }).copied() else {
        return Ok(());
    };
    // Forgotten whether or not the event goes out: the daemon also notices
    // the process vanishing, and loses only the activity since its last read.
    let _ = MM_OWNERS.remove(counters.mm);
    let _ = PROCS.remove(tgid);
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
