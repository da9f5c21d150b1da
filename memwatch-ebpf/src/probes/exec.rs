//! `sched_process_exec`: exec replaces the process's memory, so the program
//! break we last saw belongs to the old image and must not be compared with
//! the new one's. Raw: exec is rare, but a raw tracepoint needs no tracefs.
use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

use super::state::{PROCS, current_ids};

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(_ctx: RawTracePointContext) -> i32 {
    let (tgid, _) = current_ids();
    if let Some(entry) = PROCS.get_ptr_mut(tgid) {
        // SAFETY: `entry` points to a live PROCS value; exec runs single-threaded.
        unsafe { (*entry).last_brk = 0 };
    }
    0
}
