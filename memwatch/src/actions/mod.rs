//! Applying the planner's decisions: the executor (`executor`), the steps
//! of a cleanup pass (`steps`) and the workers that apply the slow ones off
//! the loop (`passes`), the primitives they act through (`sys`: cgroup
//! knobs, throttle state, pidfd signals, memory.reclaim, http, exec), the incident log it writes (`incident_log`), and the host's
//! not-ready flag the health endpoint reads (`readiness`).
//!
//! Nothing here decides: the planner (`engine::planner`) did.
pub mod executor;
pub mod incident_log;
pub mod passes;
pub mod readiness;
pub mod steps;
pub mod sys;

#[cfg(test)]
mod tests;

pub use executor::{Executor, PidfdSignaller, Signaller};
pub use passes::PassDone;
pub use readiness::Readiness;

use crate::{
    actions::sys::{ActError, throttle_state::Throttles},
    config::ActionsConfig,
    sources::cgroupfs::CgroupFs,
};
use incident_log::IncidentLog;

/// The daemon's executor: loads the throttle state and first undoes
/// whatever a crashed predecessor left lowered. A state file that cannot be
/// read at all is an error: acting without it could lose original limits.
pub fn start(config: &ActionsConfig, readiness: Readiness) -> Result<Executor<PidfdSignaller>, ActError> {
    let mut throttles = match Throttles::load(&config.state_file) {
        Ok(throttles) => throttles,
        Err(e @ ActError::CorruptState { .. }) => {
            // `load` set the bad file aside; the second load starts empty.
            tracing::error!("{e}");
            Throttles::load(&config.state_file)?
        }
        Err(e) => return Err(e),
    };
    if throttles.dropped_from_another_boot() > 0 {
        tracing::info!(
            count = throttles.dropped_from_another_boot(),
            file = %config.state_file.display(),
            "throttle records from before the last reboot dropped: a reboot reset those limits"
        );
    }
    if !throttles.entries().is_empty() {
        tracing::warn!(
            count = throttles.entries().len(),
            "a previous memwatch left memory limits lowered; restoring them"
        );
        executor::restore_all(&mut throttles, "start-up");
    }
    if config.dry_run {
        tracing::warn!("[actions] dry_run = true: actions are logged as \"would ...\", nothing is touched");
    }
    let log = IncidentLog::new(&config.incident_log, config.incident_max_bytes, config.incident_keep);
    let mut executor = Executor::new(CgroupFs::default(), throttles, PidfdSignaller::default(), readiness, Some(log));
    executor.start_pass_workers();
    Ok(executor)
}
