//! Normal mode: counters aggregated by the kernel programs, joined with /proc
//! for identity (pid + start time) and names.
use std::{collections::HashMap, sync::Arc, time::Instant};

use memwatch_ebpf::{ProcCounters, RSS_UNKNOWN, event_kind};

use super::table::ProcessTable;
use crate::{
    ebpf::{ProbeError, Probes},
    procinfo::{ProcFs, ProcRss},
    sample::{Counters, Mode, ProcessId, ProcessInfo, ProcessSample, Snapshot},
};

pub struct EbpfCollector {
    probes: Probes,
    table: ProcessTable,
}

/// Kernel counters as a sample, taking RSS figures the kernel has not
/// reported yet (no rss_stat since attach) from /proc.
fn counters(kernel: &ProcCounters, fallback: impl FnOnce() -> ProcRss) -> Counters {
    let known = |v: i64| (v != RSS_UNKNOWN).then_some(v.max(0) as u64);
    let (anon, file, shmem, swap) =
        (known(kernel.rss_anon), known(kernel.rss_file), known(kernel.rss_shmem), known(kernel.rss_swap));
    let proc_rss = if [anon, file, shmem, swap].iter().any(Option::is_none) {
        fallback()
    } else {
        ProcRss::default()
    };
    Counters {
        rss_anon: anon.unwrap_or(proc_rss.anon),
        rss_file: file.unwrap_or(proc_rss.file),
        rss_shmem: shmem.unwrap_or(proc_rss.shmem),
        // rss_stat counts swap entries in pages' bytes already.
        swap: swap.unwrap_or(proc_rss.swap),
        mmap_bytes: Some(kernel.mmap_bytes),
        munmap_bytes: Some(kernel.munmap_bytes),
        brk_bytes: Some(kernel.brk_grow_bytes),
        page_faults: kernel.page_faults,
    }
}

impl EbpfCollector {
    pub fn attach(procfs: ProcFs, large_mapping_bytes: u64) -> Result<Self, ProbeError> {
        Ok(Self { probes: Probes::attach(large_mapping_bytes)?, table: ProcessTable::new(procfs) })
    }

    pub fn attached(&self) -> &[String] {
        self.probes.attached()
    }

    pub fn snapshot(&mut self) -> anyhow::Result<Snapshot> {
        self.probes.flush_diagnostics();
        let mut exits: HashMap<u32, (ProcCounters, String)> = HashMap::new();
        for event in self.probes.drain_events() {
            match event.0.kind {
                event_kind::EXIT => {
                    exits.insert(event.0.tgid, (event.0.counters, event.comm()));
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
        let kernel = self.probes.processes()?;
        let dropped = self.probes.dropped()?;

        let procfs = self.table.procfs.clone();
        let scan = self.table.scan(|stat| {
            let pid = stat.id.pid;
            // A process without a kernel entry has had no memory event since
            // the probes attached: its activity counters are zero.
            let entry = kernel.get(&pid).copied().unwrap_or(ProcCounters::NEW);
            Some(counters(&entry, || procfs.rss(pid).unwrap_or_default()))
        })?;

        // Processes gone since the last scan: their final kernel figures if
        // the exit event arrived, else their last sample.
        let mut exited: Vec<ProcessSample> = scan
            .vanished
            .into_iter()
            .map(|mut last| {
                if let Some((final_counters, _)) = exits.remove(&last.id.pid) {
                    let before = last.counters;
                    last.counters = counters(&final_counters, || ProcRss {
                        anon: before.rss_anon,
                        file: before.rss_file,
                        shmem: before.rss_shmem,
                        swap: before.swap,
                    });
                }
                last
            })
            .collect();
        // Born and gone between two scans: /proc never showed them, so their
        // start time is unknown (0) and their name is the one at exit.
        let mut short_lived: Vec<ProcessSample> = exits
            .into_iter()
            .map(|(pid, (final_counters, comm))| ProcessSample {
                id: ProcessId { pid, start_time: 0 },
                info: Arc::new(ProcessInfo { comm, ..Default::default() }),
                counters: counters(&final_counters, ProcRss::default),
            })
            .collect();
        short_lived.sort_by_key(|s| s.id);
        exited.append(&mut short_lived);

        Ok(Snapshot {
            taken_at: Instant::now(),
            mode: Mode::Ebpf,
            processes: scan.live,
            exited,
            dropped,
        })
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
        let c = counters(&kernel, || ProcRss { anon: 1, file: 4 << 20, shmem: 9, swap: 8192 });
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
        let c = counters(&kernel, || panic!("/proc read although the kernel knew every member"));
        assert_eq!(c.rss(), 6);
    }
}
