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
    model::{
        incident::{ActionRecord, Outcome},
        target_key::TargetKey,
    },
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
        let records = match decided {
            Ok(decisions) => {
                let (applied, performed) =
                    round::apply(&decisions, started, &mut daemon.pipeline, &mut daemon.executor);
                if let (Some(recorder), Some(answers)) = (&mut daemon.recorder, answers) {
                    round::record(recorder.request(t, key, answers).and_then(|()| recorder.applied(&applied)));
                }
                let records: Vec<ActionRecord> =
                    performed.iter().filter(|p| p.target == *key).map(|p| p.record.clone()).collect();
                self.performed.extend(performed);
                if records.is_empty() {
                    return Err(ControlError::Failed(format!("{key}: the cleanup decided no action")));
                }
                records
            }
            Err(refused) => {
                tracing::info!(target_key = %key, detail = %refused.detail, "requested cleanup not run");
                if let (Some(recorder), Some(answers)) = (&mut daemon.recorder, answers) {
                    round::record(recorder.request(t, key, answers).and_then(|()| recorder.applied(&[])));
                }
                vec![refused]
            }
        };
        let outcome = pass_outcome(&records);
        Ok(TargetCleanup {
            target: key.to_string(),
            level,
            outcome,
            sent_at: matches!(outcome, Outcome::Ok | Outcome::DryRun | Outcome::Pending).then_some(records[0].t),
            actions: records.into_iter().map(|r| r.detail).collect(),
            freed_bytes: 0,
            measured: false,
        })
    }

    /// Whether nothing is changed on `key` because of a `dry_run` (global or its policy's).
    fn is_dry_run(&self, key: &TargetKey) -> bool {
        let pipeline = &self.daemon.pipeline;
        let config = pipeline.config();
        let policy = pipeline.targets().binary_search_by(|t| t.key.cmp(key)).ok().map(|i| pipeline.targets()[i].policy);
        config.actions.dry_run || policy.is_some_and(|p| config.settings(p).dry_run)
    }
}

/// One outcome for a pass's records: it did something if any step did (or
/// is still doing it); else the first step's outcome says why not.
fn pass_outcome(records: &[ActionRecord]) -> Outcome {
    let any = |outcome| records.iter().any(|r| r.outcome == outcome);
    [Outcome::Ok, Outcome::Pending, Outcome::DryRun].into_iter().find(|o| any(*o)).unwrap_or(records[0].outcome)
}

impl<S: Signaller, F: Facts> Controller for Responder<'_, S, F> {
    fn cleanup(&mut self, target: Option<&str>) -> Result<CleanupReport, ControlError> {
        let pipeline = &self.daemon.pipeline;
        if !pipeline.targets_fit_to_act_on() {
            return Err(ControlError::Unavailable(
                "the configuration was just reloaded and the targets are not judged under it yet; \
                 ask again after the next reading (daemon.interval_secs)"
                    .to_owned(),
            ));
        }
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
        // What the answer says is what the config means, whatever the
        // targets' outcomes (a refused or skipped one changes nothing either).
        let dry_run = self.daemon.pipeline.config().actions.dry_run
            || (!chosen.is_empty() && chosen.iter().all(|key| self.is_dry_run(key)));
        let targets = chosen.iter().map(|key| self.clean(key)).collect::<Result<Vec<_>, _>>()?;
        let note = targets.is_empty().then(|| "no target at warning or above; name one with ?target=".to_owned());
        Ok(CleanupReport { dry_run, targets, freed_bytes: 0, note })
    }

    fn clear_cache(&mut self, name: &str) -> Result<u64, ControlError> {
        Ok(self.caches.clear(name)?)
    }
}
