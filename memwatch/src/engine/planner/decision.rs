//! A decision: one action the planner chose, as a value. The executor
//! applies it; `memwatch replay --actions` prints it; the daemon logs it in
//! the same words, so a replay of a recording can be compared line by line
//! with what the live daemon decided.
use rustix::process::Signal;
use serde::Serialize;

use crate::{
    config::cleanup::HttpEndpoint,
    model::{
        incident::{ActionKind, Outcome, round_ms},
        sample::ProcessId,
        target_key::TargetKey,
    },
};

/// Why an action was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// The target is at critical (or above) and nothing runs on it.
    Critical,
    /// The target is at emergency.
    Emergency,
    /// A leak verdict the policy's `on_leak` acts on.
    Leak,
    /// An operator asked (`POST /health/gc`).
    Request,
    /// The episode is over (back at normal, target gone, memwatch stopping):
    /// undo what it left.
    EpisodeEnd,
}

impl Why {
    pub const fn as_str(self) -> &'static str {
        match self {
            Why::Critical => "critical",
            Why::Emergency => "emergency",
            Why::Leak => "leak",
            Why::Request => "request",
            Why::EpisodeEnd => "episode_end",
        }
    }
}

/// What applying the decision means.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "plan", rename_all = "snake_case")]
pub enum Plan {
    /// Touch nothing: a refusal, a skip or a dry run's "would ...", with
    /// the outcome and words the record gets.
    Record { outcome: Outcome, detail: String },
    /// Send `signal` (`name` in the record) to `to`. `members` is how many
    /// processes the target has; `refused` of them are never signalled
    /// (init, memwatch), `unhandled` would be killed by the signal.
    Signal {
        #[serde(skip)]
        signal: Signal,
        name: String,
        to: Vec<ProcessId>,
        members: usize,
        refused: usize,
        unhandled: usize,
        /// Why members were left out beyond the counts (a runtime that uses
        /// the signal for itself, processes the policy did not match).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
    },
    /// Ask the kernel to reclaim `bytes` from the cgroup (`memory.reclaim`).
    Reclaim { cgroup: String, bytes: u64 },
    /// POST to the service's own cleanup endpoint.
    Http {
        #[serde(serialize_with = "display")]
        endpoint: HttpEndpoint,
        timeout_ms: u64,
        #[serde(skip)]
        measure: Measure,
    },
    /// Run `argv` (no shell) with `env` added to a minimal environment.
    Exec {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        timeout_ms: u64,
        #[serde(skip)]
        measure: Measure,
    },
    /// Lower the cgroup's throttle knob to `bytes` (the reading showed it
    /// higher, and usage at `usage`). Never raises it.
    LowerLimit { cgroup: String, bytes: u64, usage: u64 },
    /// Put back the limit the cgroup had before memwatch lowered it.
    Restore { cgroup: String },
    /// Report the host not ready (GET /health answers 503).
    HoldNotReady,
    /// This target no longer holds the host not ready.
    ReleaseReady,
}

/// Whose memory a cleanup step is judged by: the cgroup's usage when the
/// target is a cgroup, else its processes' resident memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measure {
    pub cgroup: Option<String>,
    pub processes: Vec<ProcessId>,
}

impl Plan {
    /// Steps that may block (the kernel reclaiming, a service answering, a
    /// command running): applied off the monitoring loop.
    pub fn is_slow(&self) -> bool {
        matches!(self, Plan::Reclaim { .. } | Plan::Http { .. } | Plan::Exec { .. })
    }
}

fn display<S: serde::Serializer, T: std::fmt::Display>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The reading (or request) it was decided on, unix seconds.
    pub t: f64,
    pub target: TargetKey,
    pub action: ActionKind,
    pub why: Why,
    pub plan: Plan,
    /// The cleanup pass it is a step of: the executor applies a pass's
    /// steps together, in order, and reports them done together.
    pub pass: Option<u64>,
}

#[derive(Serialize)]
struct Line<'a> {
    t: f64,
    target: &'a TargetKey,
    action: &'static str,
    why: &'static str,
    #[serde(flatten)]
    plan: &'a Plan,
}

impl Decision {
    /// One JSON object, no newline: what `replay --actions` prints and the
    /// daemon logs. Fixed field order and rounded times, so equal decisions
    /// give equal bytes.
    pub fn to_json_line(&self) -> String {
        let line = Line {
            t: round_ms(self.t),
            target: &self.target,
            action: self.action.as_str(),
            why: self.why.as_str(),
            plan: &self.plan,
        };
        serde_json::to_string(&line).expect("decisions always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_is_one_stable_json_line() {
        let decision = Decision {
            t: 1_700_000_000.123_4,
            target: TargetKey::cgroup("/app.slice/api.service"),
            action: ActionKind::Signal,
            why: Why::Critical,
            plan: Plan::Signal {
                signal: Signal::USR1,
                name: "SIGUSR1 (pass 1)".into(),
                to: vec![ProcessId { pid: 42, start_time: 7 }],
                members: 2,
                refused: 0,
                unhandled: 1,
                notes: vec![],
            },
            pass: Some(1),
        };
        assert_eq!(
            decision.to_json_line(),
            r#"{"t":1700000000.123,"target":"cgroup:/app.slice/api.service","action":"signal","why":"critical","plan":"signal","name":"SIGUSR1 (pass 1)","to":[{"pid":42,"start_time":7}],"members":2,"refused":0,"unhandled":1}"#
        );
    }
}
