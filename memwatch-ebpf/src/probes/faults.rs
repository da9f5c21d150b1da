//! `exceptions:page_fault_user`: one count per user-mode page fault.
//!
//! The hottest probe of all, so it is a raw tracepoint: the kernel calls it
//! with the tracepoint's arguments and builds no perf record, and it reads
//! none of them.
use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

use super::state::{add, current_ids, proc_entry};

#[raw_tracepoint(tracepoint = "page_fault_user")]
pub fn page_fault_user(_ctx: RawTracePointContext) -> i32 {
    let (tgid, _) = current_ids();
    if let Some(entry) = proc_entry(tgid) {
        // SAFETY: `entry` points to a live PROCS value.
        add(unsafe { &raw mut (*entry).page_faults }, 1);
    }
    0
}
