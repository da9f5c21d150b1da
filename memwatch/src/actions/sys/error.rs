//! The one error type of the action primitives.
use std::{io, path::PathBuf};

use crate::model::sample::ProcessId;

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// The cgroup was removed (ENOENT/ENODEV), possibly between two steps of
    /// an action. Normal when a service stops; callers drop it and go on.
    #[error("cgroup {} is gone", path.display())]
    CgroupGone { path: PathBuf },
    /// Neither cgroup v2's memory.high nor v1's memory.soft_limit_in_bytes
    /// exists (or can be written) for this cgroup: memwatch cannot throttle it.
    #[error(
        "cgroup {}: no writable memory limit (neither memory.high of cgroup v2 nor \
         memory.soft_limit_in_bytes of cgroup v1): {detail}",
        path.display()
    )]
    NoMemoryControl { path: PathBuf, detail: String },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: unexpected content {content:?}: {detail}", path.display())]
    Parse { path: PathBuf, content: String, detail: String },
    /// The throttle state file could not be parsed. It was renamed to `aside`
    /// (nothing is lost: its original values may still be read by a human),
    /// and memwatch starts with an empty state.
    #[error(
        "throttle state file {} is corrupt ({detail}); kept as {} for inspection, \
         starting with no recorded throttles",
        path.display(),
        aside.display()
    )]
    CorruptState { path: PathBuf, aside: PathBuf, detail: String },
    #[error("refusing to signal pid {pid}: {reason}")]
    Refused { pid: u32, reason: Refusal },
    /// The process exited; nothing was signalled.
    #[error("process {} (start time {}) is gone", id.pid, id.start_time)]
    ProcessGone { id: ProcessId },
    /// The pid now names another process: the one we meant exited and the
    /// kernel reused its pid. Nothing was signalled.
    #[error("pid {} was reused: start time is {found}, expected {}", id.pid, id.start_time)]
    PidReused { id: ProcessId, found: u64 },
    #[error("{call}({pid}): {source}")]
    Syscall {
        call: &'static str,
        pid: u32,
        #[source]
        source: io::Error,
    },
}

impl ActError {
    /// Whether the target disappeared: expected churn, not a failure to report loudly.
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::CgroupGone { .. } | Self::ProcessGone { .. } | Self::PidReused { .. })
    }
}

/// Processes memwatch never signals, whatever a policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// pid 1 (init): signalling it can take the whole machine down.
    Init,
    /// pid 0 is not a process; kill(0) would mean our whole process group.
    NotAProcess,
    KernelThread,
    /// memwatch itself: it must stay up to restore what it throttled.
    Daemon,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Init => "it is init (pid 1)",
            Self::NotAProcess => "pid 0 is not a process",
            Self::KernelThread => "it is a kernel thread",
            Self::Daemon => "it is memwatch itself",
        })
    }
}
