//! Logs go to stderr through `tracing`; the probes' own diagnostics (aya-log,
//! which speaks the `log` crate) are bridged into the same stream.
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// `default_level` applies unless MEMWATCH_LOG (or RUST_LOG) says otherwise.
pub fn init(default_level: &str) {
    let filter = std::env::var("MEMWATCH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    // try_init: tests may have installed a subscriber already. With the
    // `tracing-log` feature (on by default) this also forwards `log` records.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
