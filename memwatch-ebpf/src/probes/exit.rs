//! `sched:sched_process_exit`: report a process's final counters once, then
//! forget it, so its tgid starts clean if the kernel hands it out again.
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_ktime_get_ns},
    macros::tracepoint,
    programs::TracePointContext,
};
use memwatch_ebpf::{ErrorKind, ProcEvent, event_kind};

use super::state::{EVENTS, MM_OWNERS, PROCS, count_error, current_ids};

#[tracepoint]
pub fn sched_process_exit(_ctx: TracePointContext) -> u32 {
    let (tgid, pid) = current_ids();
    // Threads other than the leader exit without ending the process.
    if tgid != pid {
        return 0;
    }
    // SAFETY: copy of a live map value.
    let Some(counters) = (unsafe { PROCS.get(tgid) }).copied() else {
        return 0;
    };
    match EVENTS.reserve::<ProcEvent>(0) {
        Some(mut slot) => {
            slot.write(ProcEvent {
                kind: event_kind::EXIT,
                tgid,
                timestamp_ns: unsafe { bpf_ktime_get_ns() },
                bytes: 0,
                counters,
                comm: bpf_get_current_comm().unwrap_or_default(),
            });
            slot.submit(0);
        }
        // The daemon also notices the entry vanishing; it loses only the
        // activity since its last read.
        None => count_error(ErrorKind::EventReserve),
    }
    let _ = MM_OWNERS.remove(counters.mm);
    let _ = PROCS.remove(tgid);
    0
}
