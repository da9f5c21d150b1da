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
use memwatch_ebpf::{ErrorKind, ProcCounters, ProcEvent, event_kind};

use super::state::{EVENTS, LAYOUT, PENDING, add, current_ids, finish, proc_entry};

/// Syscalls return -errno in [-4095, -1]; anything else (addresses included) is success.
#[inline(always)]
fn succeeded(ret: i64) -> bool {
    !(-4095..0).contains(&ret)
}

/// Parks this thread's call length (at `offset` in the enter record).
#[inline(always)]
fn remember_len(ctx: &TracePointContext, offset: u32) -> Result<(), ErrorKind> {
    // SAFETY: offset from this kernel's format file; `len` is an unsigned long.
    let len = unsafe { ctx.read_at::<u64>(offset as usize) }.map_err(|_| ErrorKind::FieldRead)?;
    PENDING.insert(bpf_get_current_pid_tgid(), len, BPF_ANY as u64).map_err(|_| ErrorKind::PendingInsert)
}

/// The parked length of this thread's call, if the call succeeded.
#[inline(always)]
fn take_len_if_ok(ctx: &TracePointContext) -> Result<Option<u64>, ErrorKind> {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: a copy of a u64 map value.
    let len = unsafe { PENDING.get(key) }.copied();
    let _ = PENDING.remove(key);
    let len = len.ok_or(ErrorKind::PendingMissing)?;
    // SAFETY: offset from this kernel's format file; `ret` is a long.
    let ret = unsafe { ctx.read_at::<i64>(LAYOUT.load().syscall_ret as usize) }.map_err(|_| ErrorKind::FieldRead)?;
    Ok(succeeded(ret).then_some(len))
}

#[tracepoint]
pub fn sys_enter_mmap(ctx: TracePointContext) -> u32 {
    finish(remember_len(&ctx, LAYOUT.load().mmap_len))
}

#[tracepoint]
pub fn sys_exit_mmap(ctx: TracePointContext) -> u32 {
    finish(try_sys_exit_mmap(&ctx))
}

fn try_sys_exit_mmap(ctx: &TracePointContext) -> Result<(), ErrorKind> {
    let Some(len) = take_len_if_ok(ctx)? else { return Ok(()) };
    let (tgid, _) = current_ids();
    let entry = proc_entry(tgid)?;
    // SAFETY: `entry` points to a live PROCS value; the field is a u64.
    unsafe { add(&raw mut (*entry).mmap_bytes, len) };
    if len >= LAYOUT.load().large_mapping_bytes {
        // SAFETY: as above.
        unsafe { report_large_mapping(tgid, len, entry) }?;
    }
    Ok(())
}

/// Sends one `LARGE_MAPPING` event with the process's counters now.
///
/// # Safety
/// `entry` must point to a live `PROCS` value.
unsafe fn report_large_mapping(tgid: u32, len: u64, entry: *const ProcCounters) -> Result<(), ErrorKind> {
    let mut slot = EVENTS.reserve::<ProcEvent>(0).ok_or(ErrorKind::EventReserve)?;
    slot.write(ProcEvent {
        kind: event_kind::LARGE_MAPPING,
        tgid,
        // SAFETY: no preconditions; the monotonic clock.
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        bytes: len,
        // SAFETY: the caller's promise; a torn read (another CPU adding) only
        // affects this informational snapshot.
        counters: unsafe { *entry },
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    slot.submit(0);
    Ok(())
}

#[tracepoint]
pub fn sys_enter_munmap(ctx: TracePointContext) -> u32 {
    finish(remember_len(&ctx, LAYOUT.load().munmap_len))
}

#[tracepoint]
pub fn sys_exit_munmap(ctx: TracePointContext) -> u32 {
    finish(try_sys_exit_munmap(&ctx))
}

fn try_sys_exit_munmap(ctx: &TracePointContext) -> Result<(), ErrorKind> {
    let Some(len) = take_len_if_ok(ctx)? else { return Ok(()) };
    let (tgid, _) = current_ids();
    let entry = proc_entry(tgid)?;
    // SAFETY: `entry` points to a live PROCS value; the field is a u64.
    unsafe { add(&raw mut (*entry).munmap_bytes, len) };
    Ok(())
}

/// brk returns the new break on success and the unchanged one on failure, so
/// the exit alone tells how far the break moved; no enter side is needed.
#[tracepoint]
pub fn sys_exit_brk(ctx: TracePointContext) -> u32 {
    finish(try_sys_exit_brk(&ctx))
}

fn try_sys_exit_brk(ctx: &TracePointContext) -> Result<(), ErrorKind> {
    // SAFETY: offset from this kernel's format file; `ret` is a long.
    let new_brk =
        unsafe { ctx.read_at::<u64>(LAYOUT.load().syscall_ret as usize) }.map_err(|_| ErrorKind::FieldRead)?;
    let (tgid, _) = current_ids();
    let entry = proc_entry(tgid)?;
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
    Ok(())
}
