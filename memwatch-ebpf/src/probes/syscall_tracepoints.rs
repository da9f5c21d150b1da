//! The syscall figures through `syscalls:sys_enter_*`/`sys_exit_*`, for
//! kernels that refuse tracing programs. Attaching any of these puts every
//! syscall of every task on the slow path (about 20% on a loop of small
//! reads), so the daemon attaches them only when the config asks.
//!
//! The length is only known at sys_enter and success only at sys_exit, so the
//! enter side parks the length in `PENDING` (keyed by thread: a thread is in
//! one syscall at a time) and the exit side counts it if the call succeeded.
use aya_ebpf::{bindings::BPF_ANY, helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext};
use memwatch_ebpf::ErrorKind;

use super::{
    state::{LAYOUT, PENDING, finish},
    syscalls::{count_brk, count_mmap, count_munmap, succeeded},
};

/// Parks this thread's call length (at `offset` in the enter record).
#[inline(always)]
fn remember_len(ctx: &TracePointContext, offset: u32) -> Result<(), ErrorKind> {
    // SAFETY: offset from this kernel's format file; `len` is an unsigned long.
    let len = unsafe { ctx.read_at::<u64>(offset as usize) }.map_err(|_| ErrorKind::FieldRead)?;
    PENDING.insert(bpf_get_current_pid_tgid(), len, BPF_ANY as u64).map_err(|_| ErrorKind::PendingInsert)
}

/// The call's result, from the exit record.
#[inline(always)]
fn ret(ctx: &TracePointContext) -> Result<i64, ErrorKind> {
    // SAFETY: offset from this kernel's format file; `ret` is a long.
    unsafe { ctx.read_at::<i64>(LAYOUT.load().syscall_ret as usize) }.map_err(|_| ErrorKind::FieldRead)
}

/// The parked length of this thread's call, if the call succeeded.
#[inline(always)]
fn take_len_if_ok(ctx: &TracePointContext) -> Result<Option<u64>, ErrorKind> {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: a copy of a u64 map value.
    let len = unsafe { PENDING.get(key) }.copied();
    let _ = PENDING.remove(key);
    let len = len.ok_or(ErrorKind::PendingMissing)?;
    Ok(succeeded(ret(ctx)?).then_some(len))
}

#[tracepoint]
pub fn sys_enter_mmap(ctx: TracePointContext) -> u32 {
    finish(remember_len(&ctx, LAYOUT.load().mmap_len))
}

#[tracepoint]
pub fn sys_exit_mmap(ctx: TracePointContext) -> u32 {
    finish(take_len_if_ok(&ctx).and_then(|len| len.map_or(Ok(()), count_mmap)))
}

#[tracepoint]
pub fn sys_enter_munmap(ctx: TracePointContext) -> u32 {
    finish(remember_len(&ctx, LAYOUT.load().munmap_len))
}

#[tracepoint]
pub fn sys_exit_munmap(ctx: TracePointContext) -> u32 {
    finish(take_len_if_ok(&ctx).and_then(|len| len.map_or(Ok(()), count_munmap)))
}

#[tracepoint]
pub fn sys_exit_brk(ctx: TracePointContext) -> u32 {
    finish(ret(&ctx).and_then(|new_brk| count_brk(new_brk as u64)))
}
