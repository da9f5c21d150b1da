//! What the planner is told about each target this interval: everything it
//! decides from, read by the daemon (or a trace) before it is asked.
use crate::{
    config::PolicySettings,
    model::{cgroup::KnobReading, runtime::Runtime, sample::ProcessId, signals::SignalMasks, target_key::TargetKey},
};

/// One process of a target, as this interval read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub id: ProcessId,
    pub rss: u64,
    /// Read only where a signal could be sent this interval; `None`: not
    /// read (or the process was gone), and then no cleanup signal is sent.
    pub signals: Option<SignalMasks>,
    /// Matched by the target's policy itself (not only in its cgroup): a
    /// cleanup signal goes only to these.
    pub matched: bool,
    /// What runtime it is, read with `signals`.
    pub runtime: Option<Runtime>,
}

/// One target as this interval saw it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub key: &'a TargetKey,
    pub policy: &'a str,
    pub settings: &'a PolicySettings,
    /// The cgroup to throttle: only for cgroup targets (a process target
    /// shares its cgroup with others, who must not be throttled with it).
    pub cgroup: Option<&'a str>,
    pub usage_bytes: u64,
    pub limit_bytes: u64,
    pub members: &'a [Member],
    /// A protected process target lives in this cgroup: throttling the
    /// cgroup would throttle it too, so it is refused.
    pub protected_inside: bool,
    /// The knob of `cgroup`, when there is one.
    pub knob: Option<&'a KnobReading>,
}
