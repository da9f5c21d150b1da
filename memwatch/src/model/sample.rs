//! What a collector produces each interval: one sample per live process, plus
//! the final sample of each process that exited since the previous snapshot.
use std::{fmt, sync::Arc, time::Instant};

use serde::Serialize;

use super::{container::Container, heap_ceiling::HeapCeiling};

/// A process's identity. The kernel reuses pids; (pid, start time) it does not,
/// so nothing keyed by this is ever mistaken for a later process with the same pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProcessId {
    pub pid: u32,
    /// Start time in clock ticks after boot (/proc/PID/stat field 22). 0 when
    /// the process was born and gone between two reads, so /proc never showed it.
    pub start_time: u64,
}

/// Who a process is, read once per `ProcessId` from /proc.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    pub comm: String,
    /// Arguments joined by spaces; empty for kernel threads.
    pub cmdline: String,
    /// The cgroup whose memory limits apply (v2 path, or the v1 memory controller's).
    pub cgroup: Option<String>,
    /// The systemd unit owning the process, from its cgroup path.
    pub unit: Option<String>,
    /// The container (and pod) it runs in, from `cgroup`.
    pub container: Option<Container>,
    /// The heap ceiling its runtime was started with (`-Xmx`, ...), from
    /// `cmdline` and, where /proc was read, the variables of its environment
    /// that runtimes read options from (`model::heap_ceiling`).
    pub heap_ceiling: Option<HeapCeiling>,
}

impl ProcessInfo {
    /// Who a process is; the container follows from the cgroup, the heap
    /// ceiling from the command line alone.
    pub fn new(comm: String, cmdline: String, cgroup: Option<String>, unit: Option<String>) -> Self {
        let heap_ceiling = super::heap_ceiling::declared(&cmdline);
        Self::with_heap_ceiling(comm, cmdline, cgroup, unit, heap_ceiling)
    }

    /// Who a process is, with the heap ceiling its reader found (the
    /// reader of /proc adds what the environment declares; a recording
    /// holds what was found live).
    pub fn with_heap_ceiling(
        comm: String,
        cmdline: String,
        cgroup: Option<String>,
        unit: Option<String>,
        heap_ceiling: Option<HeapCeiling>,
    ) -> Self {
        let container = cgroup.as_deref().and_then(Container::of_cgroup);
        Self { comm, cmdline, cgroup, unit, container, heap_ceiling }
    }
}

/// Memory counters of one process at one moment. RSS fields are absolute;
/// the others are cumulative since the collector started watching the process,
/// so only their differences mean anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub rss_anon: u64,
    pub rss_file: u64,
    pub rss_shmem: u64,
    pub swap: u64,
    /// Bytes mapped by successful mmap calls; `None` where the mode cannot see syscalls.
    pub mmap_bytes: Option<u64>,
    pub munmap_bytes: Option<u64>,
    /// Upward moves of the program break.
    pub brk_bytes: Option<u64>,
    pub page_faults: u64,
    /// Virtual size (/proc/PID/stat), bytes.
    pub virtual_bytes: u64,
}

impl Counters {
    /// Resident memory: anonymous + file-backed + shared.
    pub fn rss(&self) -> u64 {
        self.rss_anon + self.rss_file + self.rss_shmem
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessSample {
    pub id: ProcessId,
    pub info: Arc<ProcessInfo>,
    pub counters: Counters,
}

/// Where the figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Kernel probes, aggregated in eBPF maps.
    Ebpf,
    /// Polling /proc: no syscall counts, coarser timing.
    Procfs,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Ebpf => "ebpf",
            Mode::Procfs => "procfs",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything one collection round saw.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub taken_at: Instant,
    pub mode: Mode,
    pub processes: Vec<ProcessSample>,
    /// Processes that exited since the previous snapshot, with their last counters.
    pub exited: Vec<ProcessSample>,
    /// Kernel-side work dropped so far (map updates, ring-buffer reservations), by kind.
    pub dropped: Vec<(&'static str, u64)>,
}

impl Snapshot {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|(_, n)| n).sum()
    }
}
