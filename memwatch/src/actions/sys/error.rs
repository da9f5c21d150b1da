//! The one error type of the action primitives (cgroup errors are the
//! reader's, `sources::cgroupfs::CgroupError`).
use std::{io, path::PathBuf};

use crate::{
    model::{sample::ProcessId, untouchable::Refusal},
    sources::cgroupfs::CgroupError,
};

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
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
    /// A cleanup step (`what`: "POST http://…", "exec …") did not work.
    #[error("{what}: {detail}")]
    Step { what: String, detail: String },
    /// systemd refused or failed a call about a unit's `MemoryHigh=`.
    /// `answered`: systemd replied with an error, so nothing was changed;
    /// otherwise (a timeout, a broken connection) it may have been.
    #[error("systemd, {what} of {unit}: {detail}")]
    Systemd { unit: String, what: String, detail: String, answered: bool },
    /// Lowering to `limit` would raise the knob above its value from
    /// before memwatch (usage already at it): nothing was written.
    #[error("{file} already {original} with usage at it: not raised to {limit}")]
    WouldRaise { file: &'static str, original: u64, limit: u64 },
    #[error("{call}({pid}): {source}")]
    Syscall {
        call: &'static str,
        pid: u32,
        #[source]
        source: io::Error,
    },
}

impl ActError {
    /// Whether the change that failed may have been made all the same: a
    /// call to systemd that got no answer.
    pub fn may_have_applied(&self) -> bool {
        matches!(self, Self::Systemd { answered: false, .. })
    }

    /// Whether the target disappeared: expected churn, not a failure to report loudly.
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::ProcessGone { .. } | Self::PidReused { .. })
            || matches!(self, Self::Cgroup(e) if e.is_gone())
    }
}
