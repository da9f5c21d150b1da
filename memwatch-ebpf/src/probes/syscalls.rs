//! mmap / munmap / brk: bytes mapped, unmapped and the program break's moves.
//!
//! The length is only known at sys_enter and success only at sys_exit, so the
//! enter side parks the length in `PENDING` (keyed by thread: a thread is in
//! one syscall at a time) and the exit side counts it if the call succeeded.
use aya_ebpf::{
    bindings::BPF_ANY,
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::tracepoint,
    programs::TracePointContext,
};
use aya_log_ebpf::warn;
use memwatch_ebpf::{ErrorKind, ProcEvent, event_kind};

use super::state::{EVENTS, LAYOUT, PENDING, add, count_error, current_ids, proc_entry};

/// Syscalls return -errno in [-4095, -1]; anything else (addresses included) is success.
#[inline(always)]
fn succeeded(ret: i64) -> bool {
    !(-4095..0).contains(&ret)
}

#[inline(always)]
fn remember_len(ctx: &TracePointContext, offset: u32) -> u32 {
    // SAFETY: offset from this kernel's format file; `len` is an unsigned long.
    let Ok(len) = (unsafe { ctx.read_at::<u64>(offset as usize) }) else {
        count_error(ErrorKind::FieldRead);
        return 0;
    };
    if PENDING.insert(bpf_get_current_pid_tgid(), len, BPF_ANY as u64).is_err() {
        count_error(ErrorKind::PendingInsert);
    }
    0
}

/// The parked length of this thread's call, if the call succeeded.
#[inline(always)]
fn take_len_if_ok(ctx: &TracePointContext) -> Option<u64> {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: plain read of a u64 map value.
    let len = unsafe { PENDING.get(key) }.copied();
    let _ = PENDING.remove(key);
    let Some(len) = len else {
        count_error(ErrorKind::PendingMissing);
        return None;
    };
    // SAFETY: offset from this kernel's format file; `ret` is a long.
    let ret = unsafe { ctx.read_at::<i64>(LAYOUT.load().syscall_ret as usize) };
    match ret {
        Ok(ret) if succeeded(ret) => Some(len),
        Ok(_) => None,
        Err(_) => {
            count_error(ErrorKind::FieldRead);
            None
        }
    }
}

#[tracepoint]
pub fn sys_enter_mmap(ctx: TracePointContext) -> u32 {
    remember_len(&ctx, LAYOUT.load().mmap_len)
}

#[tracepoint]
pub fn sys_exit_mmap(ctx: TracePointContext) -> u32 {
    let Some(len) = take_len_if_ok(&ctx) else { return 0 };
    let (tgid, _) = current_ids();
    let Some(entry) = proc_entry(tgid) else { return 0 };
    // SAFETY: `entry` points to a live PROCS value.
    add(unsafe { &raw mut (*entry).mmap_bytes }, len);
    if len >= LAYOUT.load().large_mapping_bytes {
        report_large_mapping(&ctx, tgid, len, entry);
    }
    0
}

fn report_large_mapping(ctx: &TracePointContext, tgid: u32, len: u64, entry: *mut memwatch_ebpf::ProcCounters) {
    let Some(mut slot) = EVENTS.reserve::<ProcEvent>(0) else {
        count_error(ErrorKind::EventReserve);
        warn!(ctx, "memwatch: event ring full, lost large mapping of {} bytes by {}", len, tgid);
        return;
    };
    slot.write(ProcEvent {
        kind: event_kind::LARGE_MAPPING,
        tgid,
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        bytes: len,
        // SAFETY: `entry` points to a live PROCS value; a torn read only
        // affects this informational snapshot.
        counters: unsafe { *entry },
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    slot.submit(0);
}

#[tracepoint]
pub fn sys_enter_munmap(ctx: TracePointContext) -> u32 {
    remember_len(&ctx, LAYOUT.load().munmap_len)
}

#[tracepoint]
pub fn sys_exit_munmap(ctx: TracePointContext) -> u32 {
    let Some(len) = take_len_if_ok(&ctx) else { return 0 };
    let (tgid, _) = current_ids();
    if let Some(entry) = proc_entry(tgid) {
        // SAFETY: `entry` points to a live PROCS value.
        add(unsafe { &raw mut (*entry).munmap_bytes }, len);
    }
    0
}

/// brk returns the new break on success and the unchanged one on failure, so
/// the exit alone tells how far the break moved; no enter side is needed.
#[tracepoint]
pub fn sys_exit_brk(ctx: TracePointContext) -> u32 {
    // SAFETY: offset from this kernel's format file; `ret` is a long.
    let Ok(new_brk) = (unsafe { ctx.read_at::<u64>(LAYOUT.load().syscall_ret as usize) }) else {
        count_error(ErrorKind::FieldRead);
        return 0;
    };
    let (tgid, _) = current_ids();
    let Some(entry) = proc_entry(tgid) else { return 0 };
    // SAFETY: `entry` points to a live PROCS value. brk calls of one process
    // are serialised by its mmap lock, so this read-modify-write does not race.
    unsafe {
        let last = (*entry).last_brk;
        if last != 0 && new_brk > last {
            add(&raw mut (*entry).brk_grow_bytes, new_brk - last);
        } else if last != 0 && new_brk < last {
            add(&raw mut (*entry).brk_shrink_bytes, last - new_brk);
        }
        (*entry).last_brk = new_brk;
    }
    0
}
