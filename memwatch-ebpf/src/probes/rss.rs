//! `kmem:rss_stat`: the kernel's own absolute per-mm RSS counters.
//!
//! Two front-ends feed one recorder. The classic tracepoint reads the
//! event's record (offsets from tracefs); the BTF one is a raw tracepoint
//! that gets the mm pointer and member and reads the counter from the mm
//! itself (offsets from the kernel's BTF), which skips building a perf record
//! on every page fault. Only one of them is attached.
//!
//! Either way the update names an mm and says whether it is the current
//! task's. When it is, we learn mm -> tgid; when it is not (reclaim by
//! kswapd, teardown after exit_mm), that mapping attributes the update.
use aya_ebpf::{
    helpers::{bpf_get_current_task, bpf_probe_read_kernel},
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use memwatch_ebpf::{ErrorKind, ProcCounters, RSS_STAT_RECORD_BYTES, rss_member};

use super::state::{LAYOUT, MM_OWNERS, PROCS, count_error, current_ids, finish, proc_entry};

/// One counter update, whichever front-end read it.
struct RssUpdate {
    /// `MM_OWNERS` key of the mm.
    mm: u64,
    /// The mm is the current task's.
    curr: bool,
    member: i32,
    /// Bytes.
    size: i64,
}

#[tracepoint]
pub fn rss_stat(ctx: TracePointContext) -> u32 {
    finish(read_record(&ctx).and_then(record))
}

#[raw_tracepoint(tracepoint = "rss_stat")]
pub fn rss_stat_btf(ctx: RawTracePointContext) -> i32 {
    finish(try_rss_stat_btf(&ctx)) as i32
}

fn try_rss_stat_btf(ctx: &RawTracePointContext) -> Result<(), ErrorKind> {
    let (mm, member, size) = read_mm(ctx)?;
    // Fast path, nearly every event: the faulting process's own mm, which
    // its entry already names. No need to read current->mm.
    let (tgid, _) = current_ids();
    if let Some(entry) = PROCS.get_ptr_mut(tgid) {
        // SAFETY: `entry` points to a live PROCS value.
        if unsafe { (*entry).mm } == mm {
            // SAFETY: as above.
            unsafe { store(entry, member, size) };
            return Ok(());
        }
    }
    let layout = LAYOUT.load();
    // SAFETY: the current task's `mm` pointer, at its BTF offset; the helper
    // copes with any address without faulting.
    let task = unsafe { bpf_get_current_task() };
    let current_mm: u64 = unsafe { bpf_probe_read_kernel((task + u64::from(layout.task_mm)) as *const u64) }
        .map_err(|_| ErrorKind::FieldRead)?;
    record(RssUpdate { mm, curr: current_mm == mm, member, size })
}

/// Bytes of the record read in one go. Every kernel so far keeps the four
/// fields within the first 32 bytes; one helper call instead of four is the
/// difference that matters on a path taken once per page fault.
const RECORD_BYTES: usize = RSS_STAT_RECORD_BYTES as usize;

fn field<const N: usize>(record: &[u8; RECORD_BYTES], offset: u32) -> Option<[u8; N]> {
    let start = offset as usize;
    record.get(start..start + N)?.try_into().ok()
}

fn read_record(ctx: &TracePointContext) -> Result<RssUpdate, ErrorKind> {
    let layout = LAYOUT.load();
    // SAFETY: the record is at least RECORD_BYTES long on every kernel with
    // this event (the daemon checked the offsets against the format file).
    let record = unsafe { ctx.read_at::<[u8; RECORD_BYTES]>(0) }.map_err(|_| ErrorKind::FieldRead)?;
    let fields = (
        field::<4>(&record, layout.rss_stat_mm_id),
        // `curr` is a bool on some kernels and an unsigned int on others:
        // its low byte is 0 or 1 on every little-endian one.
        field::<1>(&record, layout.rss_stat_curr),
        field::<4>(&record, layout.rss_stat_member),
        field::<8>(&record, layout.rss_stat_size),
    );
    let (Some(mm_id), Some(curr), Some(member), Some(size)) = fields else {
        return Err(ErrorKind::FieldRead);
    };
    Ok(RssUpdate {
        mm: u64::from(u32::from_ne_bytes(mm_id)),
        curr: curr[0] != 0,
        member: i32::from_ne_bytes(member),
        size: i64::from_ne_bytes(size),
    })
}

/// Members the mm keeps counters for (NR_MM_COUNTERS).
const MEMBERS: i32 = 4;

/// The mm, member and counter value (bytes) of a raw rss_stat event.
fn read_mm(ctx: &RawTracePointContext) -> Result<(u64, i32, i64), ErrorKind> {
    // TP_PROTO(struct mm_struct *mm, int member)
    let mm: u64 = ctx.arg(0);
    let member: i32 = ctx.arg(1);
    if !(0..MEMBERS).contains(&member) {
        return Ok((mm, member, 0)); // not a counter we keep: `store` ignores it
    }
    let layout = LAYOUT.load();
    let counter = mm + u64::from(layout.mm_rss_base) + member as u64 * u64::from(layout.mm_rss_stride);
    // SAFETY: a kernel address from the tracepoint plus BTF offsets; the
    // helper copes with any address without faulting.
    let pages: i64 = unsafe { bpf_probe_read_kernel(counter as *const i64) }.map_err(|_| ErrorKind::FieldRead)?;
    // What the classic event reports: the counter clamped at zero (a
    // per-CPU counter's global part can dip below), in bytes.
    Ok((mm, member, pages.max(0) << layout.page_shift))
}

fn record(update: RssUpdate) -> Result<(), ErrorKind> {
    let RssUpdate { mm, curr, member, size } = update;
    let entry = if curr {
        let (tgid, _) = current_ids();
        let entry = proc_entry(tgid)?;
        // SAFETY: `entry` points to a live PROCS value.
        if unsafe { (*entry).mm } != mm {
            // SAFETY: as above.
            unsafe { (*entry).mm = mm };
            if MM_OWNERS.insert(mm, tgid, 0).is_err() {
                count_error(ErrorKind::OwnerInsert);
            }
        }
        entry
    } else {
        // Not the owner's context: only update a process we already track.
        // SAFETY: plain read of a u32 map value.
        let Some(tgid) = (unsafe { MM_OWNERS.get(mm) }) else {
            return Ok(());
        };
        let Some(entry) = PROCS.get_ptr_mut(*tgid) else {
            return Ok(());
        };
        entry
    };

    // SAFETY: `entry` points to a live PROCS value (looked up just above).
    unsafe { store(entry, member, size) };
    Ok(())
}

/// Sets one absolute counter of a process entry; the last writer wins,
/// which is what an absolute counter wants.
///
/// # Safety
/// `entry` must point to a live `PROCS` value.
#[inline(always)]
unsafe fn store(entry: *mut ProcCounters, member: i32, size: i64) {
    // SAFETY: the caller's promise; the fields are aligned i64s.
    let field: *mut i64 = unsafe {
        match member {
            rss_member::FILE => &raw mut (*entry).rss_file,
            rss_member::ANON => &raw mut (*entry).rss_anon,
            rss_member::SWAP_ENTRIES => &raw mut (*entry).rss_swap,
            rss_member::SHMEM => &raw mut (*entry).rss_shmem,
            _ => return,
        }
    };
    // SAFETY: `field` points into the live value, aligned.
    unsafe { core::ptr::write_volatile(field, size) };
}
