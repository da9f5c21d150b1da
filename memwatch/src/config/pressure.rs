//! `pressure` in `[defaults]` and `[[policy]]`: sustained memory stall (PSI
//! `some avg10` of the target's cgroup, cgroup v2) that raises the level.
use toml::Table;

use super::{
    policy::read_duration,
    walk::{Fields, Problems},
};
use crate::engine::PressureSettings;

/// Reads the `pressure` table at `path` over `base`.
pub fn read_settings(
    table: &Table,
    path: String,
    base: &PressureSettings,
    problems: &mut Problems,
) -> PressureSettings {
    let mut fields = Fields::new(table, path);
    let mut settings = *base;
    for (key, slot) in [("warning", &mut settings.warning), ("critical", &mut settings.critical)] {
        if let Some(percent) = fields.number(key, problems) {
            if percent > 0.0 && percent <= 100.0 {
                *slot = Some(percent);
            } else {
                problems
                    .push(&fields.path_of(key), format!("{percent} must be a share of time in percent, in (0, 100]"));
            }
        }
    }
    if let Some(secs) = fields.read("for", problems, read_duration) {
        settings.sustain_secs = secs;
    }
    if let (Some(warning), Some(critical)) = (settings.warning, settings.critical)
        && warning >= critical
    {
        problems.push(&fields.path_of("critical"), format!("{critical} must be above warning ({warning})"));
    }
    fields.finish(problems);
    settings
}
