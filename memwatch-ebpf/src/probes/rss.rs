//! `kmem:rss_stat`: the kernel's own absolute per-mm RSS counters.
//!
//! The event names the mm (`mm_id`) and says whether it is the current task's
//! (`curr`). When it is, we learn mm_id -> tgid; when it is not (reclaim by
//! kswapd, teardown after exit_mm), that mapping attributes the update.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use memwatch_ebpf::{ErrorKind, rss_member};

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

fn try_rss_stat(ctx: &TracePointContext) -> Result<(), ErrorKind> {
    let layout = LAYOUT.load();
    // SAFETY: offsets come from this kernel's tracefs format file.
    let (mm_id, curr, member, size) = unsafe {
        (
            ctx.read_at::<u32>(layout.rss_stat_mm_id as usize),
            // `curr` is a bool on some kernels and an unsigned int on others:
            // its low byte is 0 or 1 on every little-endian one.
            ctx.read_at::<u8>(layout.rss_stat_curr as usize),
            ctx.read_at::<i32>(layout.rss_stat_member as usize),
            ctx.read_at::<i64>(layout.rss_stat_size as usize),
        )
    };
    let (Ok(mm_id), Ok(curr), Ok(member), Ok(size)) = (mm_id, curr, member, size) else {
        return Err(ErrorKind::FieldRead);
    };

    let entry = if curr != 0 {
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
