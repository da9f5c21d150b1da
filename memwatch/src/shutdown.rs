//! Waiting for the signals that stop memwatch.
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (systemd stop).
pub async fn requested() -> std::io::Result<&'static str> {
    let mut stop = install()?;
    Ok(stop.requested().await)
}

/// The stop signals, caught from the moment `install` returns. The daemon
/// installs them before its start-up work, so a SIGTERM during start-up
/// (just after it restored a predecessor's limits, say) is a clean stop,
/// not the default action's instant death.
pub struct Stop {
    interrupt: Signal,
    terminate: Signal,
}

pub fn install() -> std::io::Result<Stop> {
    Ok(Stop { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
}

impl Stop {
    pub async fn requested(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
