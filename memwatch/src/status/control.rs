//! Requests from the API back to the daemon: run a cleanup now, clear a
//! cache. They travel over a channel to the daemon loop, which owns the
//! state that decides (the engine) and acts (the actions), so the HTTP side
//! never touches either directly.
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{Level, StatusView};
use crate::cache::{CacheRegistry, UnknownCache};

/// Requests queued beyond this are refused (503) rather than buffered.
const QUEUE: usize = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCleanup {
    pub target: String,
    pub level: Level,
    /// What was done (or, in a dry run, what would be).
    pub actions: Vec<String>,
    pub freed_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    /// True when nothing was changed (no action primitives wired).
    pub dry_run: bool,
    pub targets: Vec<TargetCleanup>,
    pub freed_bytes: u64,
    pub note: Option<String>,
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

/// Whoever answers the requests inside the daemon loop. The lead's engine +
/// actions implement this; `ProvisionalController` stands in until then.
pub trait Controller: Send {
    fn cleanup(
        &mut self,
        target: Option<&str>,
        view: &StatusView,
    ) -> Result<CleanupReport, ControlError>;
    fn clear_cache(&mut self, name: &str) -> Result<u64, ControlError>;
}

pub enum ControlRequest {
    Cleanup {
        target: Option<String>,
        reply: oneshot::Sender<Result<CleanupReport, ControlError>>,
    },
    ClearCache {
        name: String,
        reply: oneshot::Sender<Result<u64, ControlError>>,
    },
}

impl ControlRequest {
    /// Answers with `controller`; a requester that gave up is not an error.
    pub fn serve(self, controller: &mut dyn Controller, view: &StatusView) {
        match self {
            ControlRequest::Cleanup { target, reply } => {
                let _ = reply.send(controller.cleanup(target.as_deref(), view));
            }
            ControlRequest::ClearCache { name, reply } => {
                let _ = reply.send(controller.clear_cache(&name));
            }
        }
    }
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
        self.tx
            .try_send(make(reply))
            .map_err(|e| ControlError::Unavailable(format!("control queue: {e}")))?;
        answer
            .await
            .map_err(|_| ControlError::Unavailable("the daemon loop dropped the request".into()))?
    }

    pub async fn cleanup(&self, target: Option<String>) -> Result<CleanupReport, ControlError> {
        self.ask(|reply| ControlRequest::Cleanup { target, reply })
            .await
    }

    pub async fn clear_cache(&self, name: String) -> Result<u64, ControlError> {
        self.ask(|reply| ControlRequest::ClearCache { name, reply })
            .await
    }
}

/// Until the action primitives are wired: cleanups are dry runs that name
/// the targets at critical level or above (what the critical-level cleanup
/// would act on) and free nothing; cache clears are real.
pub struct ProvisionalController {
    pub caches: CacheRegistry,
}

impl Controller for ProvisionalController {
    fn cleanup(
        &mut self,
        target: Option<&str>,
        view: &StatusView,
    ) -> Result<CleanupReport, ControlError> {
        let chosen: Vec<_> = match target {
            Some(name) => vec![
                view.target(name)
                    .ok_or_else(|| ControlError::UnknownTarget(name.to_owned()))?,
            ],
            None => view
                .targets
                .iter()
                .filter(|t| t.level >= Level::Critical)
                .collect(),
        };
        Ok(CleanupReport {
            dry_run: true,
            targets: chosen
                .into_iter()
                .map(|t| TargetCleanup {
                    target: t.name.clone(),
                    level: t.level,
                    actions: vec!["critical-level cleanup (not run: actions not wired yet)".into()],
                    freed_bytes: 0,
                })
                .collect(),
            freed_bytes: 0,
            note: Some("dry run: the cleanup actions are not wired into this build yet".into()),
        })
    }

    fn clear_cache(&mut self, name: &str) -> Result<u64, ControlError> {
        Ok(self.caches.clear(name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::TargetView;

    fn target(name: &str, level: Level) -> TargetView {
        TargetView {
            name: name.into(),
            kind: "unit".into(),
            usage_bytes: 1,
            limit_bytes: 2,
            level,
            growth_bytes_per_s: 0.0,
            leak: None,
            last_action: None,
            processes: 1,
            history: vec![],
        }
    }

    #[tokio::test]
    async fn requests_travel_to_the_loop_and_answers_come_back() {
        let (handle, mut rx) = channel();
        let view = StatusView {
            targets: vec![
                target("a.service", Level::Critical),
                target("b.service", Level::Normal),
            ],
            ..Default::default()
        };
        let mut controller = ProvisionalController {
            caches: CacheRegistry::default(),
        };
        let loop_side = tokio::spawn(async move {
            for _ in 0..3 {
                rx.recv().await.unwrap().serve(&mut controller, &view);
            }
        });
        let all = handle.cleanup(None).await.unwrap();
        assert!(all.dry_run);
        assert_eq!(
            all.targets
                .iter()
                .map(|t| t.target.as_str())
                .collect::<Vec<_>>(),
            ["a.service"]
        );
        assert_eq!(
            handle.cleanup(Some("zzz".into())).await,
            Err(ControlError::UnknownTarget("zzz".into()))
        );
        assert!(matches!(
            handle.clear_cache("nope".into()).await,
            Err(ControlError::UnknownCache(_))
        ));
        loop_side.await.unwrap();
        // The loop is gone: requests fail instead of hanging.
        assert!(matches!(
            handle.cleanup(None).await,
            Err(ControlError::Unavailable(_))
        ));
    }
}
