//! Requests from the API back to the daemon: run a cleanup now, clear a
//! cache. They travel over a channel to the daemon loop, which owns the
//! state that decides (the engine) and acts (the actions), so the HTTP side
//! never touches either directly.
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::engine::Level;
use crate::{
    cache::UnknownCache,
    engine::planner::Measured,
    model::{incident::Outcome, target_key::TargetKey},
};

/// Requests queued beyond this are refused (503) rather than buffered.
const QUEUE: usize = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCleanup {
    pub target: String,
    pub level: Level,
    /// The action's outcome: "ok", "dry_run", "refused", "skipped", "gone", "failed".
    pub outcome: Outcome,
    /// What was done (or, in a dry run, what would be; or why nothing was).
    pub actions: Vec<String>,
    /// Unix seconds of the signal; the incident log's record of the pass has
    /// the same time.
    pub sent_at: Option<f64>,
    /// Usage at the reading before the signal minus usage at the pass's
    /// re-measure (0 when it grew).
    pub freed_bytes: u64,
    /// Whether `freed_bytes` was measured (false when nothing was sent, or
    /// the re-measure did not come in time).
    pub measured: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    /// True when nothing was changed because of `dry_run` (global or policy).
    pub dry_run: bool,
    pub targets: Vec<TargetCleanup>,
    pub freed_bytes: u64,
    pub note: Option<String>,
}

impl CleanupReport {
    /// Whether some signal went out, so the answer waits for its re-measure.
    pub fn sent(&self) -> bool {
        // Pending: its steps are being applied off the loop; the pass is
        // re-measured once they are done, and the answer waits for that.
        self.targets.iter().any(|t| matches!(t.outcome, Outcome::Ok | Outcome::Pending))
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    #[error("no target named {0:?}")]
    UnknownTarget(String),
    #[error(transparent)]
    UnknownCache(#[from] UnknownCache),
    #[error("the daemon is not accepting requests: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// Whoever answers the requests inside the daemon loop: the daemon's
/// pipeline and executor, borrowed for one request (`daemon::requests`).
pub trait Controller {
    /// Starts the critical-level cleanup on `target`, or on every target at
    /// warning or above. The report's passes are not measured yet.
    fn cleanup(&mut self, target: Option<&str>) -> Result<CleanupReport, ControlError>;
    fn clear_cache(&mut self, name: &str) -> Result<u64, ControlError>;
}

pub enum ControlRequest {
    Cleanup { target: Option<String>, reply: oneshot::Sender<Result<CleanupReport, ControlError>> },
    ClearCache { name: String, reply: oneshot::Sender<Result<u64, ControlError>> },
}

/// The API's end of the channel.
#[derive(Clone)]
pub struct ControlHandle {
    tx: mpsc::Sender<ControlRequest>,
}

pub fn channel() -> (ControlHandle, mpsc::Receiver<ControlRequest>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (ControlHandle { tx }, rx)
}

impl ControlHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ControlError>>) -> ControlRequest,
    ) -> Result<T, ControlError> {
        let (reply, answer) = oneshot::channel();
        self.tx.try_send(make(reply)).map_err(|e| ControlError::Unavailable(format!("control queue: {e}")))?;
        answer.await.map_err(|_| ControlError::Unavailable("the daemon loop dropped the request".into()))?
    }

    pub async fn cleanup(&self, target: Option<String>) -> Result<CleanupReport, ControlError> {
        self.ask(|reply| ControlRequest::Cleanup { target, reply }).await
    }

    pub async fn clear_cache(&self, name: String) -> Result<u64, ControlError> {
        self.ask(|reply| ControlRequest::ClearCache { name, reply }).await
    }
}

/// A waiting answer gives up on its re-measure after this, well inside the
/// API's 30 s timeout: a long `pass_wait` must not turn a cleanup into a 504.
pub const REPLY_WITHIN: Duration = Duration::from_secs(20);

/// Cleanup answers waiting for their passes to be re-measured. The daemon
/// loop never waits: it parks the answer and settles it after each reading,
/// and at the earliest deadline (`next_deadline`) where readings are further
/// apart than the answer may wait.
#[derive(Default)]
pub struct PendingCleanups {
    parked: Vec<Parked>,
}

struct Parked {
    target: Option<String>,
    report: CleanupReport,
    reply: oneshot::Sender<Result<CleanupReport, ControlError>>,
    deadline: Instant,
}

/// A finished cleanup, for the view: the request's target and the report.
pub type Settled = (Option<String>, CleanupReport);

impl PendingCleanups {
    /// Answers one request with `controller`. A cleanup is answered at once
    /// when nothing was sent (dry run, refused, cooldown), else parked until
    /// `settle` has its re-measure. Returns a cleanup when it was answered.
    pub fn serve(&mut self, request: ControlRequest, controller: &mut dyn Controller, now: Instant) -> Option<Settled> {
        match request {
            ControlRequest::Cleanup { target, reply } => {
                let result = controller.cleanup(target.as_deref());
                self.answer(target, result, reply, now)
            }
            ControlRequest::ClearCache { name, reply } => {
                // A requester that gave up is not an error.
                let _ = reply.send(controller.clear_cache(&name));
                None
            }
        }
    }

    fn answer(
        &mut self,
        target: Option<String>,
        result: Result<CleanupReport, ControlError>,
        reply: oneshot::Sender<Result<CleanupReport, ControlError>>,
        now: Instant,
    ) -> Option<Settled> {
        match result {
            Ok(report) if report.sent() => {
                self.parked.push(Parked { target, report, reply, deadline: now + REPLY_WITHIN });
                None
            }
            Ok(report) => {
                let _ = reply.send(Ok(report.clone()));
                Some((target, report))
            }
            Err(e) => {
                // A requester that gave up is not an error.
                let _ = reply.send(Err(e));
                None
            }
        }
    }

    /// When the first parked answer is due whether re-measured or not.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.parked.iter().map(|p| p.deadline).min()
    }

    /// Fills in each waiting pass's freed memory from `measured(target,
    /// sent_at)` and answers the reports that are complete or out of time.
    pub fn settle(&mut self, now: Instant, measured: impl Fn(&TargetKey, f64) -> Measured) -> Vec<Settled> {
        let mut done = Vec::new();
        for mut parked in std::mem::take(&mut self.parked) {
            let mut waiting = false;
            for t in parked
                .report
                .targets
                .iter_mut()
                .filter(|t| matches!(t.outcome, Outcome::Ok | Outcome::Pending) && !t.measured)
            {
                match t.sent_at.map(|at| measured(&TargetKey::from(t.target.as_str()), at)) {
                    Some(Measured::Pending) => waiting = true,
                    Some(Measured::Freed(freed)) => {
                        t.freed_bytes = freed.max(0) as u64;
                        t.measured = true;
                        // Its steps are done (each one's outcome is in the incident record).
                        if t.outcome == Outcome::Pending {
                            t.outcome = Outcome::Ok;
                        }
                    }
                    Some(Measured::Unknown) | None => t.measured = false,
                }
            }
            if waiting && now < parked.deadline {
                self.parked.push(parked);
                continue;
            }
            let report = &mut parked.report;
            report.freed_bytes = report.targets.iter().map(|t| t.freed_bytes).sum();
            if waiting {
                report.note = Some(format!(
                    "not re-measured within {} s (see pass_wait); the incident log records it",
                    REPLY_WITHIN.as_secs()
                ));
            }
            let _ = parked.reply.send(Ok(report.clone()));
            done.push((parked.target, parked.report));
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sends;

    impl Controller for Sends {
        fn cleanup(&mut self, target: Option<&str>) -> Result<CleanupReport, ControlError> {
            let target = target.ok_or_else(|| ControlError::Failed("name one".into()))?;
            Ok(CleanupReport {
                dry_run: false,
                targets: vec![TargetCleanup {
                    target: target.to_owned(),
                    level: Level::Critical,
                    outcome: Outcome::Ok,
                    actions: vec!["SIGUSR1 (pass 1) to 1 of 1 process(es)".into()],
                    sent_at: Some(10.0),
                    freed_bytes: 0,
                    measured: false,
                }],
                freed_bytes: 0,
                note: None,
            })
        }

        fn clear_cache(&mut self, name: &str) -> Result<u64, ControlError> {
            Err(UnknownCache(name.to_owned()).into())
        }
    }

    #[tokio::test]
    async fn requests_travel_to_the_loop_and_cleanups_are_answered_once_measured_or_out_of_time() {
        let (handle, mut rx) = channel();
        let loop_side = tokio::spawn(async move {
            let mut pending = PendingCleanups::default();
            let start = Instant::now();
            for _ in 0..3 {
                let request = rx.recv().await.unwrap();
                assert!(pending.serve(request, &mut Sends, start).is_none(), "nothing answered at once");
            }
            // Two cleanups parked: "a" is re-measured, "b" never is.
            let measured = |key: &TargetKey, at: f64| {
                assert_eq!(at, 10.0);
                if key.to_string() == "a" { Measured::Freed(5) } else { Measured::Pending }
            };
            assert_eq!(pending.next_deadline(), Some(start + REPLY_WITHIN));
            assert_eq!(pending.settle(start, measured).len(), 1, "a");
            assert!(pending.settle(start + REPLY_WITHIN / 2, measured).is_empty(), "b waits");
            let late = pending.settle(start + REPLY_WITHIN, measured);
            assert_eq!(late.len(), 1, "b, out of time");
            assert_eq!(pending.next_deadline(), None, "nothing left to answer");
        });
        let (a, b, cache) = tokio::join!(
            handle.cleanup(Some("a".into())),
            handle.cleanup(Some("b".into())),
            handle.clear_cache("nope".into()),
        );
        let a = a.unwrap();
        assert_eq!((a.freed_bytes, a.targets[0].measured), (5, true));
        let b = b.unwrap();
        assert_eq!((b.freed_bytes, b.targets[0].measured), (0, false));
        assert!(b.note.unwrap().contains("not re-measured"));
        assert!(matches!(cache, Err(ControlError::UnknownCache(_))));
        loop_side.await.unwrap();
        // The loop is gone: requests fail instead of hanging.
        assert!(matches!(handle.cleanup(None).await, Err(ControlError::Unavailable(_))));
    }
}
