//! Waiting for the signals that stop memwatch.
use tokio::signal::unix::{SignalKind, signal};

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (systemd stop).
pub async fn requested() -> std::io::Result<&'static str> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    })
}
