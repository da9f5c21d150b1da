//! What the daemon tells systemd (sd_notify(3)), under `Type=notify`:
//! - `READY=1` once the probes are attached and the first reading is taken,
//!   so `systemctl start` returns when memwatch is really watching;
//! - `RELOADING=1` with `MONOTONIC_USEC` (systemd 253+ requires the pair)
//!   when a SIGHUP reload starts, and `READY=1` when it is done, applied or
//!   rejected;
//! - `STATUS=` (mode, targets, worst level), sent when it changes;
//! - `WATCHDOG=1` from the monitoring loop itself, never from a timer of its
//!   own: a loop that stalls stops the pings and systemd restarts it;
//! - `STOPPING=1` when it stops.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every call does nothing. A message
//! that cannot be sent is logged once: systemd would then kill a `Type=notify`
//! unit at its start timeout, and the log says why.
use std::time::Duration;

use sd_notify::NotifyState;

pub struct ServiceManager {
    /// `NOTIFY_SOCKET` is set: something listens.
    listening: bool,
    /// How often to ping: half of the unit's `WatchdogSec`, if it has one.
    watchdog_every: Option<Duration>,
    last_status: String,
    failed_once: bool,
}

impl ServiceManager {
    /// From the environment systemd started the daemon with.
    pub fn from_env() -> Self {
        let listening = std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        let watchdog_every = sd_notify::watchdog_enabled().map(|timeout| timeout / 2);
        Self { listening, watchdog_every, last_status: String::new(), failed_once: false }
    }

    /// Half of `WatchdogSec`: the loop pings at least this often.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog_every
    }

    pub fn ready(&mut self, status: String) {
        self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
        self.last_status = status;
    }

    pub fn reloading(&mut self) {
        let mut states = vec![NotifyState::Reloading];
        // Without the time systemd 253+ fails the reload; 252 (Debian 12)
        // takes RELOADING=1 alone. CLOCK_MONOTONIC does not fail on Linux.
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        self.send(&states);
    }

    /// `status`, if it differs from the last one sent.
    pub fn status(&mut self, status: String) {
        if status != self.last_status {
            self.send(&[NotifyState::Status(&status)]);
            self.last_status = status;
        }
    }

    pub fn watchdog(&mut self) {
        if self.watchdog_every.is_some() {
            self.send(&[NotifyState::Watchdog]);
        }
    }

    pub fn stopping(&mut self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping: restoring limits")]);
    }

    fn send(&mut self, states: &[NotifyState]) {
        if !self.listening {
            return;
        }
        if let Err(e) = sd_notify::notify(states)
            && !std::mem::replace(&mut self.failed_once, true)
        {
            tracing::warn!("telling systemd the daemon's state (NOTIFY_SOCKET): {e}; said once");
        }
    }
}

/// The `STATUS=` line: what `systemctl status memwatch` shows.
pub fn status_line(mode: impl std::fmt::Display, targets: usize, worst: crate::engine::Level) -> String {
    format!("watching {targets} target(s), mode {mode}, worst level {worst}")
}
