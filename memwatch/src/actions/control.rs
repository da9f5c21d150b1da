//! The executor answering the API's control requests inside the daemon
//! loop: it is borrowed for one request, so the executor keeps one owner
//! and no lock, and a requested cleanup goes through every rule the ticks
//! obey (dry run, protect, cooldown, pid 1 / self / kernel threads, only
//! processes that handle the signal).
use super::{
    effects::Signaller,
    executor::{Executor, Observed, Tick},
    incident::Outcome,
};
use crate::{
    api::control::{CleanupReport, ControlError, Controller, TargetCleanup},
    cache::CacheRegistry,
    engine::Level,
};

pub struct ExecutorControl<'a, S> {
    pub executor: &'a mut Executor<S>,
    /// The targets as the last reading saw them.
    pub observed: &'a [Observed<'a>],
    pub caches: &'a CacheRegistry,
    pub tick: Tick,
}

impl<S: Signaller> Controller for ExecutorControl<'_, S> {
    fn cleanup(&mut self, target: Option<&str>) -> Result<CleanupReport, ControlError> {
        let chosen: Vec<&Observed<'_>> = match target {
            Some(name) => vec![
                self.observed
                    .iter()
                    .find(|o| o.key == name)
                    .ok_or_else(|| ControlError::UnknownTarget(name.to_owned()))?,
            ],
            // Without a name: the targets under pressure. A normal target
            // is cleaned only when named.
            None => self.observed.iter().filter(|o| self.executor.level(o.key) >= Level::Warning).collect(),
        };
        let targets: Vec<TargetCleanup> = chosen
            .into_iter()
            .map(|o| {
                let r = self.executor.cleanup_now(self.tick, o);
                let outcome = serde_json::to_value(r.outcome).ok().and_then(|v| v.as_str().map(str::to_owned));
                TargetCleanup {
                    target: o.key.to_owned(),
                    level: self.executor.level(o.key),
                    outcome: outcome.unwrap_or_default(),
                    sent_at: matches!(r.outcome, Outcome::Ok | Outcome::DryRun).then_some(r.t),
                    actions: vec![r.detail],
                    freed_bytes: 0,
                    measured: false,
                }
            })
            .collect();
        let note = targets.is_empty().then(|| "no target at warning or above; name one with ?target=".to_owned());
        Ok(CleanupReport {
            dry_run: targets.iter().any(|t| t.outcome == "dry_run") && !targets.iter().any(|t| t.outcome == "ok"),
            targets,
            freed_bytes: 0,
            note,
        })
    }

    fn clear_cache(&mut self, name: &str) -> Result<u64, ControlError> {
        Ok(self.caches.clear(name)?)
    }
}
