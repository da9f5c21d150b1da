//! One incident record: what happened to a target during a critical or
//! emergency episode (or a kill), as one JSON line of the incident log.
use serde::{Deserialize, Serialize};

use crate::engine::{LeakVerdict, Level};

/// How many readings before (and during) the incident a record keeps.
pub const TIMELINE_SAMPLES: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// From entering critical (or a leak action) until back at normal.
    Episode,
    /// A process was killed; written at once, so a kill is on record even if
    /// memwatch dies before the episode ends.
    Kill,
}

impl IncidentKind {
    /// The name it has in the incident log and the metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Episode => "episode",
            IncidentKind::Kill => "kill",
        }
    }
}

impl std::fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the record was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentEnd {
    Recovered,
    /// The target disappeared (its cgroup or process is gone).
    Gone,
    /// memwatch stopped while the episode was still open.
    Shutdown,
    /// A kill record (the episode goes on).
    Killed,
}

impl IncidentEnd {
    /// The name it has in the incident log and the metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            IncidentEnd::Recovered => "recovered",
            IncidentEnd::Gone => "gone",
            IncidentEnd::Shutdown => "shutdown",
            IncidentEnd::Killed => "killed",
        }
    }
}

impl std::fmt::Display for IncidentEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// `memory.reclaim` on the target's cgroup (a cleanup step).
    Reclaim,
    /// A POST to the service's own cleanup endpoint (a cleanup step).
    Http,
    /// A command run for the target (a cleanup step).
    Exec,
    Signal,
    Throttle,
    Clamp,
    Restore,
    NotReady,
    Ready,
    Terminate,
    Kill,
}

impl ActionKind {
    /// A cleanup step measured on its own: what it freed is memory the
    /// workload gave back only because memwatch asked. (A signal step's
    /// effect is measured with its whole pass, a reading later; it most
    /// often asks a runtime for a collection, which the leak detector's
    /// envelope already sees through.)
    pub const fn frees_on_its_own(self) -> bool {
        matches!(self, ActionKind::Reclaim | ActionKind::Http | ActionKind::Exec)
    }

    /// The name it has in the incident log and the metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionKind::Reclaim => "reclaim",
            ActionKind::Http => "http",
            ActionKind::Exec => "exec",
            ActionKind::Signal => "signal",
            ActionKind::Throttle => "throttle",
            ActionKind::Clamp => "clamp",
            ActionKind::Restore => "restore",
            ActionKind::NotReady => "not_ready",
            ActionKind::Ready => "ready",
            ActionKind::Terminate => "terminate",
            ActionKind::Kill => "kill",
        }
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Dry run: logged as "would ...", nothing touched.
    DryRun,
    /// The cgroup or process went away first: nothing to do.
    Gone,
    /// A safety rule forbade it (pid 1, kernel thread, memwatch itself).
    Refused,
    /// Nothing needed doing (limit already lower, no processes, ...).
    Skipped,
    Failed,
    /// Still running (a cleanup step off the monitoring loop) when the
    /// record was written.
    Pending,
}

impl Outcome {
    /// The name it has in the incident log and the metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::DryRun => "dry_run",
            Outcome::Gone => "gone",
            Outcome::Refused => "refused",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
            Outcome::Pending => "pending",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Unix seconds of the reading that triggered it.
    pub t: f64,
    pub action: ActionKind,
    pub outcome: Outcome,
    pub detail: String,
    /// Cleanup passes: usage at the signal minus usage at the re-measure
    /// (negative when the target kept growing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freed_bytes: Option<i64>,
    /// From the reading that crossed the threshold to this action done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_after_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LevelChange {
    pub t: f64,
    pub from: Level,
    pub to: Level,
    pub usage_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimelineSample {
    pub t: f64,
    pub usage_bytes: u64,
    pub limit_bytes: u64,
    pub level: Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LeakRecord {
    pub slope_bytes_per_s: f64,
    pub confidence: f64,
    /// R² of the slope's line (records written before it was kept have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_r2: Option<f64>,
    pub time_to_limit_s: Option<f64>,
    pub window_s: f64,
}

impl From<LeakVerdict> for LeakRecord {
    fn from(v: LeakVerdict) -> Self {
        Self {
            slope_bytes_per_s: v.slope_bytes_per_s,
            confidence: v.confidence,
            fit_r2: Some(v.fit),
            time_to_limit_s: v.time_to_limit_s,
            window_s: v.window_s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub kind: IncidentKind,
    pub target: String,
    pub policy: String,
    pub cgroup: Option<String>,
    pub started: f64,
    pub ended: f64,
    pub duration_s: f64,
    pub end: IncidentEnd,
    pub peak_level: Level,
    pub peak_usage_bytes: u64,
    pub limit_bytes: u64,
    pub dry_run: bool,
    pub protected: bool,
    /// Sum of what the cleanup passes freed.
    pub freed_bytes: i64,
    pub levels: Vec<LevelChange>,
    /// Level changes older than those listed, not kept (a long episode).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub levels_dropped: usize,
    pub leak: Option<LeakRecord>,
    pub actions: Vec<ActionRecord>,
    /// Actions older than those listed, not kept (a target held at
    /// critical for days gets a procedure every cooldown).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub actions_dropped: usize,
    pub timeline: Vec<TimelineSample>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Incident {
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("an incident always serializes")
    }
}

/// Milliseconds are all a log reader needs, and they keep lines short.
pub fn round_ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialized_names() {
        let json = |v: serde_json::Value| v.as_str().unwrap().to_owned();
        for kind in [ActionKind::Signal, ActionKind::NotReady, ActionKind::Kill] {
            assert_eq!(kind.as_str(), json(serde_json::to_value(kind).unwrap()));
        }
        for outcome in [Outcome::Ok, Outcome::DryRun, Outcome::Failed] {
            assert_eq!(outcome.as_str(), json(serde_json::to_value(outcome).unwrap()));
        }
        assert_eq!(IncidentEnd::Recovered.as_str(), json(serde_json::to_value(IncidentEnd::Recovered).unwrap()));
        assert_eq!(IncidentKind::Kill.as_str(), json(serde_json::to_value(IncidentKind::Kill).unwrap()));
    }
}
