//! The processes memwatch never signals, whatever a policy says: checked by
//! the planner before it decides and again by the signaller before it sends.
use crate::model::sample::ProcessId;

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

/// Why `id` must not be signalled at all, before touching anything.
pub fn refusal(id: ProcessId, daemon_pid: u32) -> Option<Refusal> {
    match id.pid {
        0 => Some(Refusal::NotAProcess),
        1 => Some(Refusal::Init),
        pid if pid == daemon_pid => Some(Refusal::Daemon),
        _ => None,
    }
}
