//! One round of acting, the same for a reading, a request and the exit:
//! the executor applies the planner's decisions, the planner takes the
//! outcomes back, and everything is logged: each decision as the same JSON
//! line `memwatch replay --actions` prints, each action with its outcome.
use std::time::Instant;

use crate::{
    actions::{Executor, Signaller},
    bytes::human_bytes,
    engine::{
        Event, EventKind, Level,
        planner::{Applied, Decision, Performed},
    },
    model::incident::Outcome,
    pipeline::Pipeline,
};

/// Where decision lines are logged: `grep 'memwatch::decision'` gives
/// exactly what `replay --actions` prints for a recording of the run.
pub const DECISION_LOG: &str = "memwatch::decision";

/// Seconds since the epoch, to the millisecond: the time every reading,
/// decision and record is stamped with.
pub fn unix_seconds() -> f64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.as_millis() as f64 / 1000.0
}

/// Applies `decisions`, settles their outcomes, writes the incident records
/// that closed, and logs it all. Returns the outcomes (for the recording)
/// and the performed actions (for the view).
pub fn apply<S: Signaller>(
    decisions: &[Decision],
    started: Instant,
    pipeline: &mut Pipeline,
    executor: &mut Executor<S>,
) -> (Vec<Applied>, Vec<Performed>) {
    let applied = executor.apply(decisions, started);
    for decision in decisions {
        tracing::info!(target: DECISION_LOG, "{}", decision.to_json_line());
    }
    let settled = pipeline.settle(&applied);
    log_performed(&settled.performed);
    for (key, note) in pipeline.planner_mut().take_notes() {
        tracing::info!(target_key = %key, "{note}");
    }
    executor.write_incidents(&settled.incidents);
    (applied, settled.performed)
}

pub fn log_performed(performed: &[Performed]) {
    for p in performed {
        log_action(p);
    }
}

fn log_action(p: &Performed) {
    let r = &p.record;
    let (action, outcome) = (r.action.as_str(), r.outcome.as_str());
    match r.outcome {
        Outcome::Failed => tracing::warn!(target_key = %p.target, action, outcome, detail = %r.detail, "action failed"),
        _ => tracing::warn!(
            target_key = %p.target,
            policy = %p.policy,
            level = %p.level,
            action,
            outcome,
            applied_after_ms = r.applied_after_ms.unwrap_or_default(),
            detail = %r.detail,
            "action"
        ),
    }
}

/// A recording that fails is logged once per failure, and the daemon goes on.
pub fn record(result: std::io::Result<()>) {
    if let Err(e) = result {
        tracing::warn!("recording: {e}");
    }
}

/// Level changes and leak verdicts, each with its target's policy.
pub fn log_events(events: &[Event], pipeline: &Pipeline) {
    let targets = pipeline.targets();
    for event in events {
        let policy = targets
            .binary_search_by(|t| t.key.cmp(&event.key))
            .ok()
            .map_or(crate::config::DEFAULTS_NAME, |i| pipeline.config().policy_name(targets[i].policy));
        let key = &event.key;
        match &event.kind {
            EventKind::State { from, to, usage_bytes, limit_bytes, pressure } => {
                let usage = human_bytes(*usage_bytes);
                let limit = human_bytes(*limit_bytes);
                // Where sustained pressure, not usage, set the level.
                let pressure = pressure.map(|stall| format!("{stall:.1}%"));
                let pressure = pressure.as_deref().unwrap_or("-");
                // Rising into critical or emergency is what an operator must see.
                if to > from && *to >= Level::Critical {
                    tracing::warn!(target_key = %key, %policy, %from, %to, %usage, %limit, %pressure, "memory level raised");
                } else {
                    tracing::info!(target_key = %key, %policy, %from, %to, %usage, %limit, %pressure, "memory level changed");
                }
            }
            EventKind::LeakDetected(v) => tracing::warn!(
                target_key = %key,
                %policy,
                rate = %format!("{}/h", human_bytes((v.slope_bytes_per_s * 3600.0) as u64)),
                confidence = %format!("{:.4}", v.confidence),
                fit_r2 = %format!("{:.3}", v.fit),
                time_to_limit = %v.time_to_limit_s.map_or("never".to_owned(), |s| format!("{:.0}s", s)),
                window = %format!("{:.0}s", v.window_s),
                "memory leak detected"
            ),
            EventKind::LeakEnded { leaked_for_secs } => {
                tracing::info!(target_key = %key, %policy, leaked_for = %format!("{leaked_for_secs:.0}s"), "memory leak ended")
            }
            EventKind::SeedRule { .. } | EventKind::LeakEvaluation(_) => {}
        }
    }
}
