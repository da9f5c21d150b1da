//! Maps and the small helpers every program uses to account into them.
//!
//! Each syscall probe does one hash lookup and an atomic add on the
//! per-process entry: no per-event ring-buffer traffic, no userspace work.
//!
//! Every program is a thin entry point over a `try_` function returning
//! `Result<(), ErrorKind>`; `finish` counts the error, if any, so dropped work
//! is always accounted in one place.
use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    Global,
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::map,
    maps::{LruHashMap, PerCpuArray, RingBuf},
};
use memwatch_ebpf::{EVENTS_BYTES, ErrorKind, MAX_PENDING, MAX_PROCS, ProbeLayout, ProcCounters};

// The statics' names are the map and global names the daemon looks up:
// they must equal `memwatch_ebpf::names::*` (a test of the daemon parses the
// built object and checks every one).
#[unsafe(no_mangle)]
pub static LAYOUT: Global<ProbeLayout> = Global::new(ProbeLayout::DEFAULT);

#[map]
pub static PROCS: LruHashMap<u32, ProcCounters> = LruHashMap::with_max_entries(MAX_PROCS, 0);

#[map]
pub static PENDING: LruHashMap<u64, u64> = LruHashMap::with_max_entries(MAX_PENDING, 0);

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

#[map]
pub static ERRORS: PerCpuArray<u64> = PerCpuArray::with_max_entries(ErrorKind::COUNT, 0);

/// What every entry point returns: 0, with the dropped work counted.
#[inline(always)]
pub fn finish(result: Result<(), ErrorKind>) -> u32 {
    if let Err(kind) = result {
        count_error(kind);
    }
    0
}

/// Reads a value the kernel keeps at `address` (a kernel pointer plus a BTF
/// offset). The helper copes with any address without faulting.
#[inline(always)]
pub fn read_kernel<T>(address: u64) -> Result<T, ErrorKind> {
    // SAFETY: bpf_probe_read_kernel validates the address itself.
    unsafe { bpf_probe_read_kernel(address as *const T) }.map_err(|_| ErrorKind::FieldRead)
}

/// The calling task's (tgid, pid).
#[inline(always)]
pub fn current_ids() -> (u32, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    ((pid_tgid >> 32) as u32, pid_tgid as u32)
}

/// Counts one dropped piece of work. Per-CPU, so no atomics are needed.
#[inline(always)]
pub fn count_error(kind: ErrorKind) {
    if let Some(slot) = ERRORS.get_ptr_mut(kind as u32) {
        // SAFETY: the pointer is to this CPU's slot of a live array element,
        // which no other CPU writes.
        unsafe { *slot += 1 };
    }
}

/// The entry of `tgid`, created when missing. The pointer is to a live
/// `PROCS` value and stays valid for the rest of this program's run.
#[inline(always)]
pub fn proc_entry(tgid: u32) -> Result<*mut ProcCounters, ErrorKind> {
    if let Some(entry) = PROCS.get_ptr_mut(tgid) {
        return Ok(entry);
    }
    // NOEXIST: if another CPU created it in between, its entry is the one we use.
    let _ = PROCS.insert(tgid, ProcCounters::NEW, BPF_NOEXIST as u64);
    PROCS.get_ptr_mut(tgid).ok_or(ErrorKind::ProcInsert)
}

/// Adds to a counter that other CPUs may be adding to at the same time.
///
/// The bpf target has no compare-and-swap, so core's `AtomicU64::fetch_add` is
/// not offered; the intrinsic is. With its result unused it compiles to the
/// classic `BPF_XADD` (`lock *(u64 *)(r1 + 0) += r2`), which every kernel
/// memwatch supports.
///
/// # Safety
/// `counter` must point into a live map value and be 8-byte aligned (a
/// `u64` field of a `repr(C)` value is).
#[inline(always)]
pub unsafe fn add(counter: *mut u64, value: u64) {
    // SAFETY: the caller's promise above.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(counter, value) };
}
