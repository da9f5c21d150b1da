//! The API's control requests, answered inside the daemon loop by the same
//! pipeline and executor as the readings: borrowed for one request, so
//! there is one owner and no lock, and a requested cleanup goes through
//! every rule the readings obey (dry run, protect, cooldown, pid 1 / self /
//! kernel threads, only processes that handle the signal).
use std::time::Instant;

use super::{Daemon, round};
use crate::{
    actions::Signaller,
    api::control::{CleanupReport, ControlError, Controller, TargetCleanup},
    cache::CacheRegistry,
    engine::{Level, planner::Performed},
    model::{incident::Outcome, target_key::TargetKey},
    pipeline::Facts,
    trace::v2::RecordingFacts,
};

pub struct Responder<'a, S, F> {
    daemon: &'a mut Daemon<S, F>,
    caches: &'a CacheRegistry,
    /// When the request came (unix seconds).
    t: f64,
    performed: Vec<Performed>,
}

impl<'a, S: Signaller, F: Facts> Responder<'a, S, F> {
    pub fn new(daemon: &'a mut Daemon<S, F>, caches: &'a CacheRegistry, t: f64) -> Self {
        Self { daemon, caches, t, performed: Vec::new() }
    }

    /// The actions the requests took, for the view.
    pub fn into_performed(self) -> Vec<Performed> {
        self.performed
    }

    /// One target's requested cleanup: the first pass now, the rest with the
    /// readings.
    fn clean(&mut self, key: &TargetKey) -> Result<TargetCleanup, ControlError> {
        let daemon = &mut *self.daemon;
        let (t, started) = (self.t, Instant::now());
        let (asked, answers) = if daemon.recorder.is_some() {
            let mut recording = RecordingFacts::new(&mut daemon.facts);
            let asked = daemon.pipeline.request_cleanup(t, key, &mut recording);
            (asked, Some(recording.answers))
        } else {
            (daemon.pipeline.request_cleanup(t, key, &mut daemon.facts), None)
        };
        let level = daemon.pipeline.planner().level(key);
        let decided = asked.ok_or_else(|| ControlError::UnknownTarget(key.to_string()))?;
        let record = match decided {
            Ok(decisions) => {
                let (applied, performed) =
                    round::apply(&decisions, started, &mut daemon.pipeline, &mut daemon.executor);
                if let (Some(recorder), Some(answers)) = (&mut daemon.recorder, answers) {
                    round::record(recorder.request(t, key, answers).and_then(|()| recorder.applied(&applied)));
                }
                let first = performed.iter().find(|p| p.target == *key).map(|p| p.record.clone());
                self.performed.extend(performed);
                first.ok_or_else(|| ControlError::Failed(format!("{key}: the cleanup decided no action")))?
            }
            Err(refused) => {
                tracing::info!(target_key = %key, detail = %refused.detail, "requested cleanup not run");
                if let (Some(recorder), Some(answers)) = (&mut daemon.recorder, answers) {
                    round::record(recorder.request(t, key, answers).and_then(|()| recorder.applied(&[])));
                }
                refused
            }
        };
        Ok(TargetCleanup {
            target: key.to_string(),
            level,
            outcome: record.outcome,
            sent_at: matches!(record.outcome, Outcome::Ok | Outcome::DryRun).then_some(record.t),
            actions: vec![record.detail],
            freed_bytes: 0,
            measured: false,
        })
    }
}

impl<S: Signaller, F: Facts> Controller for Responder<'_, S, F> {
    fn cleanup(&mut self, target: Option<&str>) -> Result<CleanupReport, ControlError> {
        let pipeline = &self.daemon.pipeline;
        let chosen: Vec<TargetKey> = match target {
            Some(name) => {
                let key = TargetKey::from(name);
                if pipeline.targets().binary_search_by(|t| t.key.cmp(&key)).is_err() {
                    return Err(ControlError::UnknownTarget(name.to_owned()));
                }
                vec![key]
            }
            // Without a name: the targets under pressure. A normal target
            // is cleaned only when named.
            None => pipeline
                .targets()
                .iter()
                .filter(|t| pipeline.planner().level(&t.key) >= Level::Warning)
                .map(|t| t.key.clone())
                .collect(),
        };
        let targets = chosen.iter().map(|key| self.clean(key)).collect::<Result<Vec<_>, _>>()?;
        let note = targets.is_empty().then(|| "no target at warning or above; name one with ?target=".to_owned());
        Ok(CleanupReport {
            dry_run: targets.iter().any(|t| t.outcome == Outcome::DryRun)
                && !targets.iter().any(|t| t.outcome == Outcome::Ok),
            targets,
            freed_bytes: 0,
            note,
        })
    }

    fn clear_cache(&mut self, name: &str) -> Result<u64, ControlError> {
        Ok(self.caches.clear(name)?)
    }
}
