//! SIGHUP: re-read the config. A config `check-config` would refuse is
//! refused with the same errors, and the running one stays in force; a good
//! one replaces it, except for what only a restart can change (listeners,
//! probes, exporters, the state and incident files), which keeps its running
//! value and is logged as needing a restart.
use std::path::Path;

use crate::config::{Config, ConfigError};

/// What a reload came to.
#[derive(Debug, Clone)]
pub enum Reloaded {
    /// The config to run with now, and the keys whose change needs a restart.
    Applied { config: Box<Config>, restart_needed: Vec<&'static str> },
    /// Every problem, as `check-config` prints them.
    Rejected { errors: Vec<String> },
}

pub fn reload(path: &Path, running: &Config) -> Reloaded {
    match Config::load_for_daemon(path) {
        Ok(new) => {
            let restart_needed = restart_needed(running, &new);
            Reloaded::Applied { config: Box::new(live_part(running, new)), restart_needed }
        }
        Err(ConfigError::Invalid { errors, .. }) => Reloaded::Rejected { errors: errors.0 },
        Err(e @ ConfigError::Read { .. }) => Reloaded::Rejected { errors: vec![e.to_string()] },
    }
}

/// The keys whose new value differs from the running one but cannot be
/// applied without a restart.
fn restart_needed(running: &Config, new: &Config) -> Vec<&'static str> {
    let changed = [
        ("api", running.api != new.api),
        ("otlp", running.otlp != new.otlp),
        // Unset, the export interval is the sample interval as it was at start.
        ("otlp.interval_secs", running.otlp == new.otlp && exports_follow_a_new_interval(running, new)),
        ("daemon.mode", running.daemon.mode != new.daemon.mode),
        ("daemon.large_mapping_bytes", running.daemon.large_mapping_bytes != new.daemon.large_mapping_bytes),
        ("daemon.syscall_tracepoints", running.daemon.syscall_tracepoints != new.daemon.syscall_tracepoints),
        ("actions.state_file", running.actions.state_file != new.actions.state_file),
        ("actions.incident_log", running.actions.incident_log != new.actions.incident_log),
        ("actions.incident_max_bytes", running.actions.incident_max_bytes != new.actions.incident_max_bytes),
        ("actions.incident_keep", running.actions.incident_keep != new.actions.incident_keep),
    ];
    changed.into_iter().filter(|(_, changed)| *changed).map(|(key, _)| key).collect()
}

fn exports_follow_a_new_interval(running: &Config, new: &Config) -> bool {
    running.otlp.enabled && running.otlp.interval_secs.is_none() && running.daemon.interval() != new.daemon.interval()
}

/// `new`, with what needs a restart kept at its running value.
fn live_part(running: &Config, mut new: Config) -> Config {
    new.api = running.api.clone();
    new.otlp = running.otlp.clone();
    new.daemon.mode = running.daemon.mode;
    new.daemon.large_mapping_bytes = running.daemon.large_mapping_bytes;
    new.daemon.syscall_tracepoints = running.daemon.syscall_tracepoints;
    new.actions.state_file = running.actions.state_file.clone();
    new.actions.incident_log = running.actions.incident_log.clone();
    new.actions.incident_max_bytes = running.actions.incident_max_bytes;
    new.actions.incident_keep = running.actions.incident_keep;
    new
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let path = dir.join("memwatch.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    #[test]
    fn a_bad_config_is_rejected_with_every_error_and_a_good_one_applied_but_for_listeners() {
        let dir = tempfile::tempdir().unwrap();
        let running = Config::parse("[api]\nsocket = \"/run/a.sock\"\n").unwrap();
        let bad = write(dir.path(), "[daemon]\ninterval_secs = -1\n[defaults.thresholds]\nwarning = 2\n");
        let Reloaded::Rejected { errors } = reload(&bad, &running) else { panic!("accepted a bad config") };
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].starts_with("daemon.interval_secs: "), "{errors:#?}");

        let good = write(
            dir.path(),
            "[daemon]\ninterval_secs = 2\n[api]\nsocket = \"/run/b.sock\"\n[[policy]]\nname = \"x\"\nmatch = { unit = \"x.service\" }\n",
        );
        let Reloaded::Applied { config, restart_needed } = reload(&good, &running) else {
            panic!("refused a good config")
        };
        assert_eq!(config.daemon.interval_secs, 2.0, "live");
        assert_eq!(config.policies.len(), 1, "live");
        assert_eq!(config.api.socket, running.api.socket, "a listener keeps its running value");
        assert_eq!(restart_needed, ["api", "otlp.interval_secs"], "exports keep the interval they started with");

        let missing = reload(&dir.path().join("gone.toml"), &running);
        assert!(matches!(missing, Reloaded::Rejected { errors } if errors[0].contains("cannot read config file")));
    }
}
