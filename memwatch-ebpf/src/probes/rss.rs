//! `kmem:rss_stat`: the kernel's own absolute per-mm RSS counters.
//!
//! The event names the mm (`mm_id`) and says whether it is the current task's
//! (`curr`). When it is, we learn mm_id -> tgid; when it is not (reclaim by
//! kswapd, teardown after exit_mm), that mapping attributes the update.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use memwatch_ebpf::{ErrorKind, RSS_STAT_RECORD_BYTES, rss_member};

use super::state::{LAYOUT, MM_OWNERS, PROCS, count_error, current_ids, proc_entry};

#[tracepoint]
pub fn rss_stat(ctx: TracePointContext) -> u32 {
    match try_rss_stat(&ctx) {
        Ok(()) => 0,
        Err(kind) => {
            count_error(kind);
            0
        }
    }
}

/// The fields of an rss_stat record that the probe uses.
struct RssStat {
    mm_id: u32,
    curr: bool,
    member: i32,
    size: i64,
}

/// Bytes of the record read in one go. Every kernel so far keeps the four
/// fields within the first 32 bytes; one helper call instead of four is the
/// difference that matters on a path taken once per page fault.
const RECORD_BYTES: usize = RSS_STAT_RECORD_BYTES as usize;

fn field<const N: usize>(record: &[u8; RECORD_BYTES], offset: u32) -> Option<[u8; N]> {
    let start = offset as usize;
    record.get(start..start + N)?.try_into().ok()
}

fn read_record(ctx: &TracePointContext) -> Result<RssStat, ErrorKind> {
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
    Ok(RssStat {
        mm_id: u32::from_ne_bytes(mm_id),
        curr: curr[0] != 0,
        member: i32::from_ne_bytes(member),
        size: i64::from_ne_bytes(size),
    })
}

fn try_rss_stat(ctx: &TracePointContext) -> Result<(), ErrorKind> {
    let RssStat { mm_id, curr, member, size } = read_record(ctx)?;

    let entry = if curr {
        let (tgid, _) = current_ids();
        let Some(entry) = proc_entry(tgid) else {
            return Ok(()); // counted by proc_entry
        };
        // SAFETY: `entry` points to a live PROCS value.
        if unsafe { (*entry).mm_id } != mm_id {
            unsafe { (*entry).mm_id = mm_id };
            if MM_OWNERS.insert(mm_id, tgid, 0).is_err() {
                count_error(ErrorKind::OwnerInsert);
            }
        }
        entry
    } else {
        // Not the owner's context: only update a process we already track.
        // SAFETY: plain read of a u32 map value.
        let Some(tgid) = (unsafe { MM_OWNERS.get(mm_id) }) else {
            return Ok(());
        };
        let Some(entry) = PROCS.get_ptr_mut(*tgid) else {
            return Ok(());
        };
        entry
    };

    // SAFETY: `entry` points to a live PROCS value; the last writer wins,
    // which is what an absolute counter wants.
    let field: *mut i64 = unsafe {
        match member {
            rss_member::FILE => &raw mut (*entry).rss_file,
            rss_member::ANON => &raw mut (*entry).rss_anon,
            rss_member::SWAP_ENTRIES => &raw mut (*entry).rss_swap,
            rss_member::SHMEM => &raw mut (*entry).rss_shmem,
            _ => return Ok(()),
        }
    };
    unsafe { core::ptr::write_volatile(field, size) };
    Ok(())
}
