//! Normal mode: the figures the kernel keeps per process (RSS by kind, page
//! faults) read from /proc each interval, joined with what the probes add
//! (mmap, munmap and brk bytes, final figures at exit).
use std::{
    collections::{BTreeSet, HashMap, HashSet},
    time::Instant,
};

use memwatch_ebpf::{Feature, ProcCounters, RSS_UNKNOWN, event_kind};

use super::{
    exits::{self, Exit},
    table::ProcessTable,
};
use crate::{
    model::sample::{Counters, Mode, Snapshot},
    sources::ebpf::{ProbeError, ProbeOptions, Probes},
    sources::procfs::{ProcFs, ProcRss},
};

pub struct EbpfCollector {
    probes: Probes,
    table: ProcessTable,
    /// Exit events not yet matched with a vanished process, by tgid.
    exits: HashMap<u32, Exit>,
}

/// A live process's sample: RSS and faults as /proc gives them, the syscall
/// figures from the kernel entry (unknown when their probes are not attached).
pub(super) fn live_counters(kernel: &ProcCounters, features: &BTreeSet<Feature>, proc: Counters) -> Counters {
    let has = |feature| features.contains(&feature);
    Counters {
        mmap_bytes: has(Feature::Mmap).then_some(kernel.mmap_bytes),
        munmap_bytes: has(Feature::Munmap).then_some(kernel.munmap_bytes),
        brk_bytes: has(Feature::Brk).then_some(kernel.brk_grow_bytes),
        ..proc
    }
}

/// A process's last sample, from its exit event: the RSS and faults the
/// exit probe read where it could (RSS only while the process still had
/// its memory at the tracepoint: 6.16+), else `last`'s.
pub(super) fn exit_counters(exit: &ProcCounters, features: &BTreeSet<Feature>, last: Counters) -> Counters {
    let bytes = |v: i64| v.max(0) as u64;
    let rss = if exit.rss_anon == RSS_UNKNOWN {
        ProcRss { anon: last.rss_anon, file: last.rss_file, shmem: last.rss_shmem, swap: last.swap }
    } else {
        ProcRss {
            anon: bytes(exit.rss_anon),
            file: bytes(exit.rss_file),
            shmem: bytes(exit.rss_shmem),
            // The mm counts swap entries; the probe gave them in pages' bytes.
            swap: bytes(exit.rss_swap),
        }
    };
    // Every process faults at least once, so 0 means "not read".
    let faults = if exit.page_faults > 0 { exit.page_faults.max(last.page_faults) } else { last.page_faults };
    live_counters(exit, features, Counters { virtual_bytes: last.virtual_bytes, ..rss.into_counters(faults) })
}

impl EbpfCollector {
    pub fn attach(procfs: ProcFs, options: ProbeOptions) -> Result<Self, ProbeError> {
        Ok(Self { probes: Probes::attach(options)?, table: ProcessTable::new(procfs), exits: HashMap::new() })
    }

    pub fn attached(&self) -> &[String] {
        self.probes.attached()
    }

    pub fn set_info_cache(&mut self, cache: std::sync::Arc<super::table::ProcessInfoCache>) {
        self.table.set_info_cache(cache);
    }

    pub fn snapshot(&mut self) -> Result<Snapshot, super::CollectError> {
        self.probes.flush_diagnostics();
        let kernel = self.probes.processes()?;
        let dropped = self.probes.dropped()?;
        let features = self.probes.features();
        let scan = self.table.scan(|stat, from_proc| {
            // A process without a kernel entry has made no mmap, munmap or
            // brk call since the probes attached: those counters are zero.
            let entry = kernel.get(&stat.id.pid).copied().unwrap_or(ProcCounters::NEW);
            live_counters(&entry, features, from_proc)
        })?;
        // Drained after the scan: a process missing from /proc has already
        // passed sched_process_exit, so its exit event is in the ring by now.
        self.collect_events();

        let alive: HashSet<u32> = scan.live.iter().map(|s| s.id.pid).collect();
        let exited = exits::reconcile(scan.vanished, &alive, &mut self.exits, self.probes.features());

        Ok(Snapshot { taken_at: Instant::now(), mode: Mode::Ebpf, processes: scan.live, exited, dropped })
    }

    /// Moves exit events from the ring buffer into `self.exits`; logs the rest.
    fn collect_events(&mut self) {
        for event in self.probes.drain_events() {
            match event.0.kind {
                event_kind::EXIT => {
                    let exit = Exit::new(event.0.counters, event.comm());
                    self.exits.insert(event.0.tgid, exit);
                }
                event_kind::LARGE_MAPPING => tracing::debug!(
                    pid = event.0.tgid,
                    comm = %event.comm(),
                    bytes = event.0.bytes,
                    "large mapping"
                ),
                other => tracing::warn!(kind = other, "unknown event kind from the probes, ignored"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> BTreeSet<Feature> {
        Feature::ALL.into_iter().collect()
    }

    #[test]
    fn live_rss_and_faults_come_from_proc_and_syscall_figures_from_the_kernel() {
        let kernel = ProcCounters {
            rss_anon: 300 << 20, // never set for a live process; ignored if it were
            mmap_bytes: 256 << 20,
            munmap_bytes: 16 << 20,
            brk_grow_bytes: 135_168,
            ..ProcCounters::NEW
        };
        let proc = ProcRss { anon: 1, file: 4 << 20, shmem: 9, swap: 8192 }.into_counters(65_600);
        let c = live_counters(&kernel, &all(), proc);
        assert_eq!((c.rss_anon, c.rss_file, c.rss_shmem, c.swap), (1, 4 << 20, 9, 8192));
        assert_eq!(c.page_faults, 65_600);
        assert_eq!((c.mmap_bytes, c.munmap_bytes, c.brk_bytes), (Some(256 << 20), Some(16 << 20), Some(135_168)));
    }

    #[test]
    fn figures_of_probes_not_attached_are_unknown() {
        let kernel = ProcCounters { mmap_bytes: 5, brk_grow_bytes: 7, ..ProcCounters::NEW };
        let some: BTreeSet<Feature> = [Feature::Brk].into_iter().collect();
        let c = live_counters(&kernel, &some, Counters::default());
        assert_eq!((c.mmap_bytes, c.munmap_bytes, c.brk_bytes), (None, None, Some(7)));
    }

    #[test]
    fn an_exit_read_by_the_probe_gives_the_final_figures() {
        let exit = ProcCounters {
            rss_anon: 40 << 20,
            rss_file: 2 << 20,
            rss_shmem: 0,
            rss_swap: 0,
            page_faults: 9_000,
            mmap_bytes: 64 << 20,
            ..ProcCounters::NEW
        };
        let last = Counters { rss_anon: 10 << 20, page_faults: 3_000, virtual_bytes: 99, ..Default::default() };
        let c = exit_counters(&exit, &all(), last);
        assert_eq!((c.rss_anon, c.rss_file, c.page_faults), (40 << 20, 2 << 20, 9_000));
        assert_eq!((c.mmap_bytes, c.virtual_bytes), (Some(64 << 20), 99));
    }

    #[test]
    fn an_exit_without_its_memory_keeps_the_last_rss_but_takes_the_faults() {
        // Before 6.16 the mm is gone at the tracepoint; the task's faults are not.
        let exit = ProcCounters { mmap_bytes: 1 << 20, page_faults: 5_000, ..ProcCounters::NEW };
        let last = Counters { rss_anon: 10 << 20, page_faults: 3_000, ..Default::default() };
        let c = exit_counters(&exit, &all(), last);
        assert_eq!((c.rss_anon, c.page_faults, c.mmap_bytes), (10 << 20, 5_000, Some(1 << 20)));
        let unread = ProcCounters { page_faults: 0, ..exit };
        assert_eq!(exit_counters(&unread, &all(), last).page_faults, 3_000, "0 faults means not read");
    }
}
