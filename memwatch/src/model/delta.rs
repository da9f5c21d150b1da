//! Per-process change between two moments: what `memwatch probe` prints and
//! what the daemon's interval summary ranks. Pure: snapshots in, rows out.
use std::{collections::HashMap, sync::Arc};

use crate::model::sample::{Counters, ProcessId, ProcessInfo, ProcessSample};

/// How one process changed over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessDelta {
    pub id: ProcessId,
    pub info: Arc<ProcessInfo>,
    /// Counters at the end of the window (at exit, for processes that exited).
    pub current: Counters,
    pub rss_anon_delta: i64,
    pub rss_file_delta: i64,
    pub rss_shmem_delta: i64,
    pub mmap_bytes: Option<u64>,
    pub munmap_bytes: Option<u64>,
    pub brk_bytes: Option<u64>,
    pub page_faults: u64,
    /// The process exited inside the window.
    pub exited: bool,
}

impl ProcessDelta {
    /// Change in resident memory, the ranking key ("largest growth first").
    pub fn rss_delta(&self) -> i64 {
        self.rss_anon_delta + self.rss_file_delta + self.rss_shmem_delta
    }

    /// Whether anything happened to this process in the window.
    pub fn is_active(&self) -> bool {
        self.rss_anon_delta != 0
            || self.rss_file_delta != 0
            || self.rss_shmem_delta != 0
            || self.page_faults != 0
            || self.mmap_bytes.is_some_and(|b| b != 0)
            || self.munmap_bytes.is_some_and(|b| b != 0)
            || self.brk_bytes.is_some_and(|b| b != 0)
            || self.exited
    }
}

fn signed_change(before: u64, after: u64) -> i64 {
    (after as i128 - before as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Cumulative counters only grow; if one went down, the kernel entry was
/// recreated (LRU eviction), and the part since then is all we can know.
fn growth(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    match (before, after) {
        (Some(b), Some(a)) if a >= b => Some(a - b),
        (_, after) => after,
    }
}

fn delta(base: Option<&Counters>, end: &ProcessSample, exited: bool) -> ProcessDelta {
    let zero = Counters {
        mmap_bytes: end.counters.mmap_bytes.map(|_| 0),
        munmap_bytes: end.counters.munmap_bytes.map(|_| 0),
        brk_bytes: end.counters.brk_bytes.map(|_| 0),
        ..Counters::default()
    };
    let base = base.unwrap_or(&zero);
    let now = &end.counters;
    ProcessDelta {
        id: end.id,
        info: Arc::clone(&end.info),
        current: *now,
        rss_anon_delta: signed_change(base.rss_anon, now.rss_anon),
        rss_file_delta: signed_change(base.rss_file, now.rss_file),
        rss_shmem_delta: signed_change(base.rss_shmem, now.rss_shmem),
        mmap_bytes: growth(base.mmap_bytes, now.mmap_bytes),
        munmap_bytes: growth(base.munmap_bytes, now.munmap_bytes),
        brk_bytes: growth(base.brk_bytes, now.brk_bytes),
        page_faults: growth(Some(base.page_faults), Some(now.page_faults)).unwrap_or(0),
        exited,
    }
}

/// Changes from `base` to the end of a window, largest RSS growth first.
///
/// `live` are the processes alive at the end, `exited` those that ended inside
/// the window (with their last counters). A process absent from `base` started
/// inside the window and counts from zero.
pub fn diff(base: &[ProcessSample], live: &[ProcessSample], exited: &[ProcessSample]) -> Vec<ProcessDelta> {
    let before: HashMap<ProcessId, &Counters> = base.iter().map(|s| (s.id, &s.counters)).collect();
    let mut rows: Vec<ProcessDelta> = live
        .iter()
        .map(|s| delta(before.get(&s.id).copied(), s, false))
        .chain(exited.iter().map(|s| delta(before.get(&s.id).copied(), s, true)))
        .collect();
    sort_by_growth(&mut rows);
    rows
}

/// Largest RSS growth first; ties broken by page faults, then pid, so the
/// order is the same run to run.
pub fn sort_by_growth(rows: &mut [ProcessDelta]) {
    rows.sort_by(|a, b| {
        b.rss_delta().cmp(&a.rss_delta()).then(b.page_faults.cmp(&a.page_faults)).then(a.id.cmp(&b.id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pid: u32, start_time: u64, anon: u64, faults: u64, mmap: Option<u64>) -> ProcessSample {
        ProcessSample {
            id: ProcessId { pid, start_time },
            info: Arc::new(ProcessInfo { comm: format!("p{pid}"), ..Default::default() }),
            counters: Counters {
                rss_anon: anon,
                rss_file: 100,
                page_faults: faults,
                mmap_bytes: mmap,
                munmap_bytes: mmap.map(|_| 0),
                brk_bytes: mmap.map(|_| 0),
                ..Default::default()
            },
        }
    }

    #[test]
    fn growth_is_measured_from_the_base_and_sorted_largest_first() {
        let base = [sample(1, 10, 1000, 5, Some(0)), sample(2, 20, 5000, 0, Some(0))];
        let live = [sample(1, 10, 9000, 25, Some(8192)), sample(2, 20, 4000, 0, Some(0))];
        let rows = diff(&base, &live, &[]);
        assert_eq!(rows.iter().map(|r| r.id.pid).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(rows[0].rss_anon_delta, 8000);
        assert_eq!(rows[0].page_faults, 20);
        assert_eq!(rows[0].mmap_bytes, Some(8192));
        assert_eq!(rows[1].rss_anon_delta, -1000);
    }

    #[test]
    fn a_reused_pid_is_a_new_process_not_a_change_of_the_old_one() {
        let base = [sample(7, 100, 50_000, 10, Some(0))];
        let live = [sample(7, 999, 2_000, 3, Some(0))];
        let rows = diff(&base, &live, &[]);
        assert_eq!(rows.len(), 1);
        // Counted from zero, not as a 48 kB shrink of the old process.
        assert_eq!(rows[0].rss_anon_delta, 2_000);
        assert_eq!(rows[0].page_faults, 3);
    }

    #[test]
    fn exited_processes_are_reported_with_their_final_counters() {
        let base = [sample(3, 1, 4096, 0, Some(0))];
        let gone = [sample(3, 1, 0, 7, Some(0))];
        let rows = diff(&base, &[], &gone);
        assert!(rows[0].exited);
        assert_eq!(rows[0].rss_anon_delta, -4096);
        assert!(rows[0].is_active());
    }

    #[test]
    fn a_counter_that_went_backwards_counts_only_what_came_after() {
        // The kernel entry was evicted and recreated: 100 is all we know.
        let base = [sample(4, 1, 0, 500, Some(1 << 20))];
        let live = [sample(4, 1, 0, 100, Some(4096))];
        let rows = diff(&base, &live, &[]);
        assert_eq!(rows[0].page_faults, 100);
        assert_eq!(rows[0].mmap_bytes, Some(4096));
    }

    #[test]
    fn procfs_mode_keeps_syscall_fields_unknown() {
        let base = [sample(5, 1, 0, 0, None)];
        let live = [sample(5, 1, 10, 1, None)];
        let rows = diff(&base, &live, &[]);
        assert_eq!(rows[0].mmap_bytes, None);
        assert_eq!(rows[0].brk_bytes, None);
    }

    #[test]
    fn idle_processes_are_not_active() {
        let s = sample(6, 1, 10, 1, Some(0));
        let both = std::slice::from_ref(&s);
        let rows = diff(both, both, &[]);
        assert!(!rows[0].is_active());
    }
}
