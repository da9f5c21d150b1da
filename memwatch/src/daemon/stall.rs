//! Test-only fault injection (the `fault-injection` feature, never in a
//! release package): `MEMWATCH_FAULT_STALL_LOOP_AFTER_SECS=N` makes the
//! monitoring loop block for good N seconds after start, while the API and
//! every other task keep running. It shows that systemd's watchdog restarts
//! a daemon whose loop is stuck, not only one that died.
use std::time::{Duration, Instant};

pub const VARIABLE: &str = "MEMWATCH_FAULT_STALL_LOOP_AFTER_SECS";

pub struct Stall {
    at: Option<Instant>,
}

impl Stall {
    pub fn from_env() -> Self {
        let after = std::env::var(VARIABLE).ok().and_then(|v| v.parse::<u64>().ok());
        if let Some(secs) = after {
            tracing::warn!("fault injection: the monitoring loop stalls {secs} s after start ({VARIABLE})");
        }
        Self { at: after.map(|secs| Instant::now() + Duration::from_secs(secs)) }
    }

    /// Blocks the calling thread (the loop's) forever once due.
    pub fn stall_if_due(&self) {
        if self.at.is_some_and(|at| Instant::now() >= at) {
            tracing::warn!("fault injection: the monitoring loop stalls now");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}
