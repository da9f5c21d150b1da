//! Collectors turn the kernel's (or /proc's) view into `Snapshot`s.
//!
//! Two sources, one output: RSS and faults always come from /proc (the kernel
//! keeps them exactly, at no cost per fault); with the probes attached the
//! mmap/munmap/brk figures and exits' final figures come from eBPF maps,
//! without them (no privileges, no BTF, a missing kernel function) those
//! are unknown.
mod ebpf;
mod exits;
mod procfs;
mod table;

pub use ebpf::EbpfCollector;
pub use procfs::ProcfsCollector;
pub use table::{PROCESS_INFO_CACHE, ProcessInfoCache};

use serde::Deserialize;

use crate::{
    model::sample::{Mode, Snapshot},
    sources::ebpf::{ProbeError, ProbeOptions},
    sources::procfs::ProcFs,
};

/// Why a reading could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("listing {path}: {source}")]
    ListProc { path: String, source: std::io::Error },
    #[error("reading the probes' maps: {0}")]
    Probes(#[from] ProbeError),
}

/// Which source to use, from the config or the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModeRequest {
    /// eBPF when it can load, /proc polling otherwise.
    #[default]
    Auto,
    /// eBPF or fail.
    Ebpf,
    /// /proc polling only.
    Procfs,
}

pub enum Collector {
    // Boxed: the probes' handles make this variant far larger than the other.
    Ebpf(Box<EbpfCollector>),
    Procfs(ProcfsCollector),
}

impl Collector {
    /// Opens the requested source. In `Auto`, when the probes cannot be used
    /// the reason is returned beside a procfs collector, for the caller to
    /// report once.
    pub fn open(
        request: ModeRequest,
        procfs: ProcFs,
        options: ProbeOptions,
    ) -> Result<(Self, Option<ProbeError>), ProbeError> {
        match request {
            ModeRequest::Procfs => Ok((Collector::Procfs(ProcfsCollector::new(procfs)), None)),
            ModeRequest::Ebpf => Ok((Collector::Ebpf(Box::new(EbpfCollector::attach(procfs, options)?)), None)),
            ModeRequest::Auto => match EbpfCollector::attach(procfs.clone(), options) {
                Ok(collector) => Ok((Collector::Ebpf(Box::new(collector)), None)),
                Err(reason) => Ok((Collector::Procfs(ProcfsCollector::new(procfs)), Some(reason))),
            },
        }
    }

    pub fn mode(&self) -> Mode {
        match self {
            Collector::Ebpf(_) => Mode::Ebpf,
            Collector::Procfs(_) => Mode::Procfs,
        }
    }

    /// "category:event" of each attached tracepoint (none in procfs mode).
    pub fn attached(&self) -> &[String] {
        match self {
            Collector::Ebpf(c) => c.attached(),
            Collector::Procfs(_) => &[],
        }
    }

    /// Uses `cache` (configured limits, registered for the API) for process info.
    pub fn set_info_cache(&mut self, cache: std::sync::Arc<ProcessInfoCache>) {
        match self {
            Collector::Ebpf(c) => c.set_info_cache(cache),
            Collector::Procfs(c) => c.set_info_cache(cache),
        }
    }

    pub fn snapshot(&mut self) -> Result<Snapshot, CollectError> {
        match self {
            Collector::Ebpf(c) => c.snapshot(),
            Collector::Procfs(c) => c.snapshot(),
        }
    }
}
