//! What the pipeline asks of the world beyond the processes, as one trait:
//! the daemon answers from /sys and /proc (`SystemFacts`), a replay from the
//! recording, tests from fixtures.
use crate::{
    model::{
        cgroup::KnobReading, runtime::Runtime, sample::ProcessId, signals::SignalMasks, working_set::CgroupMemory,
    },
    sources::{cgroupfs::CgroupFs, procfs::ProcFs, runtime},
};

pub trait Facts {
    /// The memory limit in force for `cgroup`; `None` when nothing limits it.
    fn cgroup_limit(&mut self, cgroup: &str) -> Option<u64>;
    /// What `cgroup` is charged, its inactive page cache and its pressure;
    /// `None` for the root cgroup or when unreadable.
    fn cgroup_memory(&mut self, cgroup: &str) -> Option<CgroupMemory>;
    /// The throttle knob of `cgroup` and the usage it is compared with.
    fn knob(&mut self, cgroup: &str) -> KnobReading;
    /// What `id` does with each signal; `None` when it cannot be told.
    fn signals(&mut self, id: ProcessId) -> Option<SignalMasks>;
    /// What runtime `id` is (node, a JVM, ...), if one of those memwatch knows.
    fn runtime(&mut self, id: ProcessId) -> Option<Runtime>;
}

/// The live system.
#[derive(Debug, Clone, Default)]
pub struct SystemFacts {
    pub cgroupfs: CgroupFs,
    pub procfs: ProcFs,
    pub runtimes: runtime::RuntimeCache,
}

impl Facts for SystemFacts {
    fn cgroup_limit(&mut self, cgroup: &str) -> Option<u64> {
        self.cgroupfs.limit(cgroup)
    }

    fn cgroup_memory(&mut self, cgroup: &str) -> Option<CgroupMemory> {
        self.cgroupfs.memory(cgroup)
    }

    fn knob(&mut self, cgroup: &str) -> KnobReading {
        self.cgroupfs.knob_reading(cgroup)
    }

    fn signals(&mut self, id: ProcessId) -> Option<SignalMasks> {
        // Only the process we measured: a reused pid's masks are not its.
        let stat = self.procfs.stat(id.pid)?;
        if stat.id != id {
            return None;
        }
        self.procfs.signal_masks(id.pid)
    }

    fn runtime(&mut self, id: ProcessId) -> Option<Runtime> {
        // Only the process we measured: a reused pid's runtime is not its.
        if self.procfs.stat(id.pid)?.id != id {
            return None;
        }
        self.runtimes.identify(&self.procfs, id)
    }
}
