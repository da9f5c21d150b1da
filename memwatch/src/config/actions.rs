//! `[actions]` (daemon-wide: files, global dry run) and the per-policy
//! `actions` sub-table (`[defaults.actions]`, `[policy.actions]`): what the
//! daemon does about a target's level, and how hard.
use std::path::PathBuf;

use toml::{Table, Value};

use super::{
    cleanup::{CleanupStep, default_steps},
    policy::read_duration,
    walk::{Fields, Problems, expected},
};

/// Where the original memory.high values are kept (see actions::sys::throttle_state).
pub const DEFAULT_STATE_FILE: &str = crate::actions::sys::throttle_state::DEFAULT_PATH;
pub const DEFAULT_INCIDENT_LOG: &str = "/var/lib/memwatch/incidents.jsonl";
/// 10 MiB per file and 5 files: years of incidents on a healthy host, and a
/// hard bound on disk use on a sick one.
pub const DEFAULT_INCIDENT_MAX_BYTES: u64 = 10 << 20;
pub const DEFAULT_INCIDENT_KEEP: u32 = 5;
/// The seed's "multiple passes".
pub const DEFAULT_CLEANUP_PASSES: u32 = 3;
/// Long enough for a service to act on its cleanup signal and the next
/// reading to show it.
pub const DEFAULT_PASS_WAIT_SECS: f64 = 2.0;
/// As oomd and systemd-oomd: give the last action time to show its effect.
pub const DEFAULT_COOLDOWN_SECS: f64 = 15.0;
/// memory.high goes this fraction of the target's limit above current usage:
/// enough that the kernel reclaims instead of stalling at once.
pub const DEFAULT_THROTTLE_HEADROOM: f64 = 0.02;
/// systemd's default stop timeout is 90 s; an emergency cannot wait that long.
pub const DEFAULT_KILL_GRACE_SECS: f64 = 10.0;

/// Daemon-wide action settings (`[actions]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionsConfig {
    /// Log every action as "would ..." and touch nothing, whatever the policies say.
    pub dry_run: bool,
    pub state_file: PathBuf,
    pub incident_log: PathBuf,
    /// The incident log is rotated before it would grow past this.
    pub incident_max_bytes: u64,
    /// Rotated incident files kept (`incidents.jsonl.1` ... `.N`).
    pub incident_keep: u32,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        Self {
            dry_run: false,
            state_file: DEFAULT_STATE_FILE.into(),
            incident_log: DEFAULT_INCIDENT_LOG.into(),
            incident_max_bytes: DEFAULT_INCIDENT_MAX_BYTES,
            incident_keep: DEFAULT_INCIDENT_KEEP,
        }
    }
}

/// What a leak verdict makes the daemon do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LeakAction {
    /// Log and record it only: a slow leak is a bug to fix, not an emergency.
    #[default]
    Report,
    /// Run the cleanup-signal passes.
    Cleanup,
    /// Lower memory.high to just above current usage.
    Throttle,
}

/// Per-policy action settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSettings {
    /// The steps of each critical-level cleanup pass, in order.
    pub cleanup: Vec<CleanupStep>,
    pub cleanup_passes: u32,
    /// Seconds between a cleanup signal and the re-measure that judges it.
    pub pass_wait_secs: f64,
    /// Seconds after an action before the next one on the same target.
    pub cooldown_secs: f64,
    /// Fraction of the limit above current usage that memory.high is set to.
    pub throttle_headroom: f64,
    pub on_leak: LeakAction,
    /// Whether an emergency may SIGTERM (then SIGKILL) the largest grower.
    pub kill: bool,
    pub kill_grace_secs: f64,
}

impl Default for ActionSettings {
    fn default() -> Self {
        Self {
            cleanup: default_steps(),
            cleanup_passes: DEFAULT_CLEANUP_PASSES,
            pass_wait_secs: DEFAULT_PASS_WAIT_SECS,
            cooldown_secs: DEFAULT_COOLDOWN_SECS,
            throttle_headroom: DEFAULT_THROTTLE_HEADROOM,
            on_leak: LeakAction::Report,
            kill: false,
            kill_grace_secs: DEFAULT_KILL_GRACE_SECS,
        }
    }
}

/// Reads a duration into `slot` if it lies in `range` (seconds).
fn duration_in(
    fields: &mut Fields<'_>,
    key: &'static str,
    min_exclusive: bool,
    max: f64,
    slot: &mut f64,
    problems: &mut Problems,
) {
    if let Some(secs) = fields.read(key, problems, read_duration) {
        let low_ok = if min_exclusive { secs > 0.0 } else { secs >= 0.0 };
        if low_ok && secs <= max {
            *slot = secs;
        } else {
            let low = if min_exclusive { "more than 0" } else { "at least 0" };
            problems.push(&fields.path_of(key), format!("{secs}: must be {low} and at most {max} seconds"));
        }
    }
}

/// `actions` inside `[defaults]` or a `[[policy]]`, over `base`.
/// `may_signal`: whether a `signal` step is allowed here (see `cleanup`).
pub fn read_settings(
    table: &Table,
    path: String,
    base: &ActionSettings,
    may_signal: bool,
    problems: &mut Problems,
) -> ActionSettings {
    let mut fields = Fields::new(table, path);
    let mut settings = base.clone();
    if fields.raw("cleanup_signal").is_some() {
        problems.push(
            &fields.path_of("cleanup_signal"),
            "replaced by `cleanup`, a list of steps: cleanup = [{ signal = \"SIGUSR2\" }] in a policy that names \
             the service (docs/actions.md)",
        );
    }
    if let Some(value) = fields.raw("cleanup")
        && let Some(steps) = super::cleanup::read_steps(value, &fields.path_of("cleanup"), may_signal, problems)
    {
        settings.cleanup = steps;
    }
    if let Some(passes) = fields.unsigned("cleanup_passes", problems) {
        match u32::try_from(passes) {
            Ok(p @ 0..=10) => settings.cleanup_passes = p,
            _ => problems.push(&fields.path_of("cleanup_passes"), format!("{passes} must be between 0 and 10")),
        }
    }
    duration_in(&mut fields, "pass_wait", true, 600.0, &mut settings.pass_wait_secs, problems);
    duration_in(&mut fields, "cooldown", false, 86_400.0, &mut settings.cooldown_secs, problems);
    if let Some(headroom) = fields.number("throttle_headroom", problems) {
        if (0.0..=0.5).contains(&headroom) {
            settings.throttle_headroom = headroom;
        } else {
            problems.push(&fields.path_of("throttle_headroom"), format!("{headroom} must be between 0 and 0.5"));
        }
    }
    if let Some(action) = fields.read("on_leak", problems, |v| match v.as_str() {
        Some("report") => Ok(LeakAction::Report),
        Some("cleanup") => Ok(LeakAction::Cleanup),
        Some("throttle") => Ok(LeakAction::Throttle),
        Some(other) => Err(format!("{other:?} is not a leak action (use \"report\", \"cleanup\" or \"throttle\")")),
        None => Err(expected("\"report\", \"cleanup\" or \"throttle\"", v)),
    }) {
        settings.on_leak = action;
    }
    if let Some(kill) = fields.bool("kill", problems) {
        settings.kill = kill;
    }
    duration_in(&mut fields, "kill_grace", true, 600.0, &mut settings.kill_grace_secs, problems);
    fields.finish(problems);
    settings
}

/// The top-level `[actions]` table.
pub fn read_config(table: &Table, problems: &mut Problems) -> ActionsConfig {
    let mut fields = Fields::new(table, "actions");
    let mut config = ActionsConfig::default();
    if let Some(dry_run) = fields.bool("dry_run", problems) {
        config.dry_run = dry_run;
    }
    for (key, slot) in [("state_file", &mut config.state_file), ("incident_log", &mut config.incident_log)] {
        if let Some(path) = fields.string(key, problems) {
            if path.trim().is_empty() {
                problems.push(&fields.path_of(key), "must not be empty");
            } else {
                *slot = path.into();
            }
        }
    }
    if let Some(bytes) = fields.read("incident_max_bytes", problems, |v| match v {
        Value::Integer(i) if *i >= 4096 => Ok(*i as u64),
        Value::String(s) => super::units::parse_size(s)
            .and_then(|b| if b >= 4096 { Ok(b) } else { Err(format!("{s:?} must be at least 4096 bytes")) }),
        Value::Integer(i) => Err(format!("{i} must be at least 4096 bytes (one record)")),
        other => Err(expected("bytes (an integer) or a size string", other)),
    }) {
        config.incident_max_bytes = bytes;
    }
    if let Some(keep) = fields.unsigned("incident_keep", problems) {
        match u32::try_from(keep) {
            Ok(k @ 1..=100) => config.incident_keep = k,
            _ => problems.push(&fields.path_of("incident_keep"), format!("{keep} must be between 1 and 100")),
        }
    }
    fields.finish(problems);
    config
}

#[cfg(test)]
mod tests {
    use rustix::process::Signal;

    use crate::config::{Config, cleanup::CleanupStep};

    use super::*;

    #[test]
    fn policy_actions_inherit_the_defaults_and_override_what_they_set() {
        let config = Config::parse(
            "[actions]\ndry_run = true\nincident_log = \"/tmp/i.jsonl\"\nincident_max_bytes = \"1MiB\"\nincident_keep = 2\n\
             [defaults.actions]\ncooldown = \"30s\"\non_leak = \"throttle\"\n\
             [[policy]]\nname = \"a\"\nmatch = { unit = \"a.service\" }\n[policy.actions]\n\
             cleanup = [{ reclaim = true }, { signal = \"USR2\" }]\nkill = true\nkill_grace = 3\n",
        )
        .unwrap();
        assert!(config.actions.dry_run);
        assert_eq!(config.actions.incident_log, PathBuf::from("/tmp/i.jsonl"));
        assert_eq!((config.actions.incident_max_bytes, config.actions.incident_keep), (1 << 20, 2));
        let policy = &config.policies[0].settings.actions;
        assert_eq!(policy.cooldown_secs, 30.0, "inherited from [defaults.actions]");
        assert_eq!(policy.on_leak, LeakAction::Throttle);
        assert_eq!(policy.cleanup, [CleanupStep::Reclaim, CleanupStep::Signal { signal: Signal::USR2 }]);
        assert!(policy.kill);
        assert_eq!(policy.kill_grace_secs, 3.0);
        assert_eq!(config.defaults.actions.cleanup, [CleanupStep::Reclaim], "reclaim only: no signal by default");
    }

    #[test]
    fn bad_action_keys_are_all_reported_with_their_paths() {
        let errors = Config::parse(
            "[actions]\nincident_keep = 0\nstate_file = \"\"\nsurprise = 1\n\
             [[policy]]\nname = \"a\"\n[policy.actions]\ncleanup_signal = \"SIGKILL\"\ncleanup_passes = 11\n\
             cooldown = \"-1s\"\nthrottle_headroom = 0.9\non_leak = \"panic\"\nkill_grace = 0\n",
        )
        .unwrap_err()
        .0;
        let paths: Vec<&str> = errors.iter().map(|e| e.split(": ").next().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "actions.state_file",
                "actions.incident_keep",
                "actions.surprise",
                "policy[0].actions.cleanup_signal",
                "policy[0].actions.cleanup_passes",
                "policy[0].actions.cooldown",
                "policy[0].actions.throttle_headroom",
                "policy[0].actions.on_leak",
                "policy[0].actions.kill_grace",
            ],
            "{errors:#?}"
        );
        assert!(errors[3].contains("replaced by `cleanup`"), "{errors:#?}");
    }
}
