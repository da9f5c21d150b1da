//! The one line per interval, and rate-limited warnings for a loop that
//! must go on.
use std::time::Duration;

use crate::{bytes::human_change, model::sample::Snapshot};

/// One line per interval: how many processes, who grew most.
pub fn log_summary(previous: &Snapshot, now: &Snapshot, top: usize) {
    let rows = crate::model::delta::diff(&previous.processes, &now.processes, &now.exited);
    let growers: Vec<String> = rows
        .iter()
        .filter(|r| r.rss_delta() > 0)
        .take(top)
        .map(|r| format!("{}/{} {}", r.id.pid, r.info.comm, human_change(r.rss_delta())))
        .collect();
    tracing::info!(
        mode = %now.mode,
        tracked = now.processes.len(),
        exited = now.exited.len(),
        dropped = now.dropped_total(),
        top_growers = %if growers.is_empty() { "none".to_owned() } else { growers.join(", ") },
        "interval"
    );
}

/// Logs a recurring failure at most once per period, counting the rest.
pub struct RateLimited {
    period: Duration,
    last: Option<tokio::time::Instant>,
    suppressed: u64,
}

impl RateLimited {
    pub fn new(period: Duration) -> Self {
        Self { period, last: None, suppressed: 0 }
    }

    pub fn warn(&mut self, message: impl FnOnce() -> String) {
        let now = tokio::time::Instant::now();
        if self.last.is_some_and(|last| now - last < self.period) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(suppressed = self.suppressed, "{}", message());
        self.last = Some(now);
        self.suppressed = 0;
    }
}
