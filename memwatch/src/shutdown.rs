//! The signals the daemon acts on: SIGINT (Ctrl-C) and SIGTERM (systemd
//! stop) stop it, SIGHUP (`systemctl reload`) reloads its config.
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Resolves on the first SIGINT or SIGTERM (for one-shot commands).
pub async fn requested() -> std::io::Result<&'static str> {
    let mut signals = install()?;
    loop {
        if let Request::Stop(name) = signals.next().await {
            return Ok(name);
        }
    }
}

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Stop cleanly (the signal's name).
    Stop(&'static str),
    /// Re-read the config (SIGHUP).
    Reload,
}

/// The signals, caught from the moment `install` returns. The daemon
/// installs them before its start-up work, so a SIGTERM during start-up
/// (just after it restored a predecessor's limits, say) is a clean stop,
/// and a SIGHUP is never the default action's instant death.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

pub fn install() -> std::io::Result<Signals> {
    Ok(Signals {
        interrupt: signal(SignalKind::interrupt())?,
        terminate: signal(SignalKind::terminate())?,
        hangup: signal(SignalKind::hangup())?,
    })
}

impl Signals {
    /// The next signal (cancel-safe, for `select!`).
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.interrupt.recv() => Request::Stop("SIGINT"),
            _ = self.terminate.recv() => Request::Stop("SIGTERM"),
            _ = self.hangup.recv() => Request::Reload,
        }
    }
}
