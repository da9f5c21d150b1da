//! mmap / munmap / brk accounting: bytes mapped, unmapped and the program
//! break's moves, whichever front-end saw the call (`syscall_fexit` where
//! the kernel takes tracing programs, `syscall_tracepoints` otherwise).
use aya_ebpf::helpers::{bpf_get_current_comm, bpf_ktime_get_ns};
use memwatch_ebpf::{ErrorKind, ProcCounters, ProcEvent, event_kind};

use super::state::{EVENTS, LAYOUT, add, current_ids, proc_entry};

/// Syscalls return -errno in [-4095, -1]; anything else (addresses included) is success.
#[inline(always)]
pub fn succeeded(ret: i64) -> bool {
    !(-4095..0).contains(&ret)
}

/// A successful mmap of `len` bytes by the current process.
#[inline(always)]
pub fn count_mmap(len: u64) -> Result<(), ErrorKind> {
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

/// A successful munmap of `len` bytes by the current process.
#[inline(always)]
pub fn count_munmap(len: u64) -> Result<(), ErrorKind> {
    let (tgid, _) = current_ids();
    let entry = proc_entry(tgid)?;
    // SAFETY: `entry` points to a live PROCS value; the field is a u64.
    unsafe { add(&raw mut (*entry).munmap_bytes, len) };
    Ok(())
}

/// A brk call that left the break at `new_brk`. brk returns the new break
/// on success and the unchanged one on failure, so the result alone tells
/// how far the break moved.
#[inline(always)]
pub fn count_brk(new_brk: u64) -> Result<(), ErrorKind> {
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
