//! Normal mode: counters aggregated by the kernel programs, joined with /proc
//! for identity (pid + start time) and names.
use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use std::collections::BTreeSet;

use memwatch_ebpf::{Feature, ProcCounters, RSS_UNKNOWN, event_kind};

use super::{
    exits::{self, Exit},
    table::ProcessTable,
};
use crate::{
    model::sample::{Counters, Mode, Snapshot},
    sources::ebpf::{ProbeError, Probes},
    sources::procfs::{ProcFs, ProcRss},
};

pub struct EbpfCollector {
    probes: Probes,
    table: ProcessTable,
    /// Exit events not yet matched with a vanished process, by tgid.
    exits: HashMap<u32, Exit>,
}

/// Kernel counters as a sample, taking RSS figures the kernel has not
/// reported yet (no rss_stat since attach) from /proc; page faults from
/// /proc (`proc_faults`) when their probe is not attached; syscall figures
/// whose probes are not attached are unknown.
pub(super) fn counters(
    kernel: &ProcCounters,
    features: &BTreeSet<Feature>,
    proc_faults: u64,
    fallback: impl FnOnce() -> ProcRss,
) -> Counters {
    let has = |feature| features.contains(&feature);
    let known = |v: i64| (v != RSS_UNKNOWN).then_some(v.max(0) as u64);
    let (anon, file, shmem, swap) =
        (known(kernel.rss_anon), known(kernel.rss_file), known(kernel.rss_shmem), known(kernel.rss_swap));
    let proc_rss = if [anon, file, shmem, swap].iter().any(Option::is_none) { fallback() } else { ProcRss::default() };
    Counters {
        rss_anon: anon.unwrap_or(proc_rss.anon),
        rss_file: file.unwrap_or(proc_rss.file),
        rss_shmem: shmem.unwrap_or(proc_rss.shmem),
        // rss_stat counts swap entries in pages' bytes already.
        swap: swap.unwrap_or(proc_rss.swap),
        mmap_bytes: has(Feature::Mmap).then_some(kernel.mmap_bytes),
        munmap_bytes: has(Feature::Munmap).then_some(kernel.munmap_bytes),
        brk_bytes: has(Feature::Brk).then_some(kernel.brk_grow_bytes),
        page_faults: if has(Feature::Faults) { kernel.page_faults } else { proc_faults },
        virtual_bytes: 0,
    }
}

impl EbpfCollector {
    pub fn attach(procfs: ProcFs, large_mapping_bytes: u64) -> Result<Self, ProbeError> {
        Ok(Self {
            probes: Probes::attach(large_mapping_bytes)?,
            table: ProcessTable::new(procfs),
            exits: HashMap::new(),
        })
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
        let procfs = self.table.procfs.clone();
        let features = self.probes.features();
        let scan = self.table.scan(|stat| {
            let pid = stat.id.pid;
            // A process without a kernel entry has had no memory event since
            // the probes attached: its activity counters are zero.
            let entry = kernel.get(&pid).copied().unwrap_or(ProcCounters::NEW);
            Some(counters(&entry, features, stat.page_faults, || procfs.rss(pid).unwrap_or_default()))
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

    #[test]
    fn kernel_rss_wins_and_unknown_members_come_from_proc() {
        let kernel = ProcCounters {
            rss_anon: 300 << 20,
            rss_file: RSS_UNKNOWN,
            rss_shmem: 0,
            rss_swap: RSS_UNKNOWN,
            mmap_bytes: 256 << 20,
            page_faults: 65_600,
            brk_grow_bytes: 135_168,
            ..ProcCounters::NEW
        };
        let all = Feature::ALL.into_iter().collect();
        let c = counters(&kernel, &all, 0, || ProcRss { anon: 1, file: 4 << 20, shmem: 9, swap: 8192 });
        assert_eq!(c.rss_anon, 300 << 20);
        assert_eq!(c.rss_file, 4 << 20);
        assert_eq!(c.rss_shmem, 0);
        assert_eq!(c.swap, 8192);
        assert_eq!(c.mmap_bytes, Some(256 << 20));
        assert_eq!(c.brk_bytes, Some(135_168));
        assert_eq!(c.page_faults, 65_600);
    }

    #[test]
    fn proc_is_not_read_when_the_kernel_knows_everything() {
        let kernel = ProcCounters { rss_anon: 1, rss_file: 2, rss_shmem: 3, rss_swap: 4, ..ProcCounters::NEW };
        let all = Feature::ALL.into_iter().collect();
        let c = counters(&kernel, &all, 0, || panic!("/proc read although the kernel knew every member"));
        assert_eq!(c.rss(), 6);
    }

    #[test]
    fn figures_of_probes_not_attached_are_unknown_or_from_proc() {
        let kernel =
            ProcCounters { rss_anon: 1, rss_file: 2, rss_shmem: 3, rss_swap: 4, page_faults: 9, ..ProcCounters::NEW };
        let some: BTreeSet<Feature> = [Feature::Rss, Feature::Brk].into_iter().collect();
        let c = counters(&kernel, &some, 1234, ProcRss::default);
        assert_eq!((c.mmap_bytes, c.munmap_bytes, c.brk_bytes), (None, None, Some(0)));
        assert_eq!(c.page_faults, 1234, "from /proc without the fault probe");
    }
}
