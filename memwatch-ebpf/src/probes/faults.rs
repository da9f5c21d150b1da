//! `exceptions:page_fault_user`: one count per user-mode page fault.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};

use super::state::{add, current_ids, proc_entry};

#[tracepoint]
pub fn page_fault_user(_ctx: TracePointContext) -> u32 {
    let (tgid, _) = current_ids();
    if let Some(entry) = proc_entry(tgid) {
        // SAFETY: `entry` points to a live PROCS value.
        add(unsafe { &raw mut (*entry).page_faults }, 1);
    }
    0
}
