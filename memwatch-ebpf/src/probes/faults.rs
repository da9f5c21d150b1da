//! `exceptions:page_fault_user`: one count per user-mode page fault.
//!
//! The hottest probe of all, so it is a raw tracepoint: the kernel calls it
//! with the tracepoint's arguments and builds no perf record, and it reads
//! none of them.
use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use memwatch_ebpf::ErrorKind;

use super::state::{add, current_ids, finish, proc_entry};

#[raw_tracepoint(tracepoint = "page_fault_user")]
pub fn page_fault_user(_ctx: RawTracePointContext) -> i32 {
    finish(try_page_fault_user()) as i32
}

fn try_page_fault_user() -> Result<(), ErrorKind> {
    let (tgid, _) = current_ids();
    let entry = proc_entry(tgid)?;
    // SAFETY: `entry` points to a live PROCS value; the field is a u64.
    unsafe { add(&raw mut (*entry).page_faults, 1) };
    Ok(())
}
