//! A cgroup's memory knobs as values: what `sources::cgroupfs` reads and
//! `actions::sys` writes.
use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A memory limit as the cgroup files spell it: `max` or a byte count.
/// Serialized the same way ("max" / "268435456") so the state file and
/// traces read like the cgroup files they record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Limit {
    Max,
    Bytes(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Max => f.write_str("max"),
            Limit::Bytes(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "max" => Ok(Limit::Max),
            n => n.parse().map(Limit::Bytes).map_err(|e| format!("not `max` or a byte count: {e}")),
        }
    }
}

impl From<Limit> for String {
    fn from(limit: Limit) -> String {
        limit.to_string()
    }
}

impl TryFrom<String> for Limit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Which file carries the throttle limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    /// cgroup v2 `memory.high`.
    MemoryHigh,
    /// cgroup v1 `memory.soft_limit_in_bytes` (degraded: no throttling, only
    /// a reclaim preference under global pressure).
    SoftLimit,
}

impl Knob {
    pub const fn file(self) -> &'static str {
        match self {
            Knob::MemoryHigh => "memory.high",
            Knob::SoftLimit => "memory.soft_limit_in_bytes",
        }
    }

    /// The file with the cgroup's current usage.
    pub const fn usage_file(self) -> &'static str {
        match self {
            Knob::MemoryHigh => "memory.current",
            Knob::SoftLimit => "memory.usage_in_bytes",
        }
    }
}

/// Counters from v2 `memory.events` (cumulative since the cgroup was made).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    pub low: u64,
    /// Times usage went over memory.high and the cgroup was throttled.
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
    /// Absent before Linux 5.17; 0 there.
    pub oom_group_kill: u64,
}

impl MemoryEvents {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut events = Self::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let (Some(key), Some(value), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!("line {line:?} is not `key value`"));
            };
            let value: u64 = value.parse().map_err(|e| format!("{key}: {e}"))?;
            match key {
                "low" => events.low = value,
                "high" => events.high = value,
                "max" => events.max = value,
                "oom" => events.oom = value,
                "oom_kill" => events.oom_kill = value,
                "oom_group_kill" => events.oom_group_kill = value,
                // Newer kernels add keys; they are not ours to refuse.
                _ => {}
            }
        }
        Ok(events)
    }
}

/// A cgroup target's throttle knob and usage, as read this interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KnobReading {
    Read {
        knob: Knob,
        limit: Limit,
        /// What the kernel compares the knob with (memory.current; v1
        /// memory.usage_in_bytes): page cache and kernel memory included.
        /// `None` when unreadable: the processes' RSS sum stands in.
        usage: Option<u64>,
        /// v2 `memory.reclaim` exists (Linux 5.19+).
        #[serde(default)]
        reclaim: bool,
    },
    /// Opening the cgroup or reading its knob failed (`gone`: it was removed).
    Unreadable { gone: bool, detail: String },
}
