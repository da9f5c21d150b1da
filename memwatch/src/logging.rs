//! Logs go through `tracing`: to the journal, with structured fields, when
//! systemd connected stderr to it; to stderr otherwise. The probes' own
//! diagnostics (aya-log, which speaks the `log` crate) are bridged into the
//! same stream.
use std::io::IsTerminal as _;

use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

/// `default_level` applies unless MEMWATCH_LOG (or RUST_LOG) says otherwise.
pub fn init(default_level: &str) {
    let filter = std::env::var("MEMWATCH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    // try_init: tests may have installed a subscriber already. With the
    // `tracing-log` feature (on by default) this also forwards `log` records.
    if stderr_is_the_journal() {
        // Each event's fields become journal fields under their own names
        // (TARGET_KEY, POLICY, LEVEL, ACTION, OUTCOME...):
        // `journalctl -u memwatch ACTION=throttle` finds them.
        match tracing_journald::layer() {
            Ok(journal) => {
                let journal = journal.with_field_prefix(None).with_syslog_identifier("memwatch".to_owned());
                let _ = tracing_subscriber::registry().with(filter).with(journal).try_init();
                return;
            }
            Err(e) => eprintln!("memwatch: the journal's socket cannot be used ({e}); logging to stderr"),
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// systemd sets `JOURNAL_STREAM=<dev>:<inode>` to the stream it connected
/// stdout/stderr to; it is the journal only while stderr is still that file
/// (a child's redirected stderr inherits the variable, not the stream).
fn stderr_is_the_journal() -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else { return false };
    rustix::fs::fstat(std::io::stderr()).is_ok_and(|st| names_file(&stream, st.st_dev, st.st_ino))
}

/// `JOURNAL_STREAM`'s value names the file of device `dev`, inode `ino`.
fn names_file(stream: &str, dev: u64, ino: u64) -> bool {
    stream
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        .is_some_and(|named| named == (dev, ino))
}

#[cfg(test)]
mod tests {
    use super::names_file;

    #[test]
    fn only_the_exact_device_and_inode_are_the_journal() {
        assert!(names_file("8:123456", 8, 123456));
        assert!(!names_file("8:123456", 8, 123457), "another inode");
        assert!(!names_file("9:123456", 8, 123456), "another device");
        for garbage in ["", "8", "8:", ":1", "x:1", "8:1:2", "-8:1"] {
            assert!(!names_file(garbage, 8, 1), "{garbage:?}");
        }
    }
}
