//! The syscall figures through fexit of each syscall's entry function
//! (`__x64_sys_mmap(const struct pt_regs *regs)`): it sees the call's
//! arguments and its result at once, and costs nothing to any other syscall.
use aya_ebpf::{macros::fexit, programs::FExitContext};
use memwatch_ebpf::ErrorKind;

use super::{
    state::{LAYOUT, finish, read_kernel},
    syscalls::{count_brk, count_mmap, count_munmap, succeeded},
};

/// The call's length argument when it succeeded.
#[inline(always)]
fn length_if_ok(ctx: &FExitContext) -> Result<Option<u64>, ErrorKind> {
    let ret: i64 = ctx.ret().map_err(|_| ErrorKind::FieldRead)?;
    if !succeeded(ret) {
        return Ok(None);
    }
    let regs: u64 = ctx.arg(0);
    read_kernel::<u64>(regs + u64::from(LAYOUT.load().regs_arg1)).map(Some)
}

#[fexit]
pub fn mmap_fexit(ctx: FExitContext) -> i32 {
    finish(length_if_ok(&ctx).and_then(|len| len.map_or(Ok(()), count_mmap))) as i32
}

#[fexit]
pub fn munmap_fexit(ctx: FExitContext) -> i32 {
    finish(length_if_ok(&ctx).and_then(|len| len.map_or(Ok(()), count_munmap))) as i32
}

#[fexit]
pub fn brk_fexit(ctx: FExitContext) -> i32 {
    finish(ctx.ret::<u64>().map_err(|_| ErrorKind::FieldRead).and_then(count_brk)) as i32
}
