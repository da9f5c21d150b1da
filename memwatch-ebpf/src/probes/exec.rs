//! `sched:sched_process_exec`: exec replaces the process's memory, so the
//! program break we last saw belongs to the old image and must not be
//! compared with the new one's.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use memwatch_ebpf::ErrorKind;

use super::state::{PROCS, current_ids, finish};

#[tracepoint]
pub fn sched_process_exec(_ctx: TracePointContext) -> u32 {
    finish(try_sched_process_exec())
}

fn try_sched_process_exec() -> Result<(), ErrorKind> {
    let (tgid, _) = current_ids();
    if let Some(entry) = PROCS.get_ptr_mut(tgid) {
        // SAFETY: `entry` points to a live PROCS value; exec runs single-threaded.
        unsafe { (*entry).last_brk = 0 };
    }
    Ok(())
}
