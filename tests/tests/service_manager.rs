//! What `memwatch run` tells a service manager (sd_notify(3)), read from a
//! datagram socket standing where systemd's NOTIFY_SOCKET would be. The
//! systemd VM lane shows the same against real systemd.
use std::{
    os::unix::net::UnixDatagram,
    process::Command,
    time::{Duration, Instant},
};

use memwatch_tests::{
    daemon::{Daemon, scenario_dir, write_config},
    memwatch_binary,
};

struct Manager(UnixDatagram);

impl Manager {
    /// The next message, or a panic after `timeout`.
    fn next(&self, timeout: Duration) -> String {
        self.0.set_read_timeout(Some(timeout)).unwrap();
        let mut buffer = [0u8; 4096];
        let n = self.0.recv(&mut buffer).unwrap_or_else(|e| panic!("no message from memwatch in {timeout:?}: {e}"));
        String::from_utf8_lossy(&buffer[..n]).trim_end().to_owned()
    }

    /// The next message that is not a watchdog ping or a status update.
    fn next_state(&self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.next(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
            if message != "WATCHDOG=1" && !message.starts_with("STATUS=") {
                return message;
            }
        }
    }
}

#[test]
fn run_tells_the_manager_ready_after_its_first_reading_then_status_watchdog_reloading_and_stopping() {
    let dir = scenario_dir("notify");
    let socket = dir.join("notify.sock");
    let manager = Manager(UnixDatagram::bind(&socket).unwrap());
    // Readings every 0.5 s (write_config); a 1 s watchdog, so pings every 0.5 s.
    let config = write_config(&dir, "");
    let mut command = Command::new(memwatch_binary());
    command
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID");
    let daemon = Daemon::start_command(command, &dir.join("daemon.log"));

    let ready = manager.next_state(Duration::from_secs(30));
    assert!(ready.starts_with("READY=1\nSTATUS=watching "), "{ready:?}");
    assert!(ready.contains("mode procfs") && ready.contains("worst level normal"), "{ready:?}");
    // Ready means serving: the API socket is there already.
    assert!(dir.join("memwatch.sock").exists(), "READY=1 before the API listens");

    let window = Instant::now();
    let mut pings = 0;
    while window.elapsed() < Duration::from_millis(2600) {
        if manager.next(Duration::from_secs(2)) == "WATCHDOG=1" {
            pings += 1;
        }
    }
    eprintln!("watchdog pings in 2.6 s at WATCHDOG_USEC=1 s: {pings}");
    assert!((3..=8).contains(&pings), "pings at half the watchdog period (0.5 s) expected, got {pings} in 2.6 s");

    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGHUP) };
    let reloading = manager.next_state(Duration::from_secs(10));
    let (first, monotonic) = reloading.split_once('\n').unwrap_or((&reloading, ""));
    assert_eq!(first, "RELOADING=1", "{reloading:?}");
    let usec: u64 = monotonic.strip_prefix("MONOTONIC_USEC=").and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        panic!("RELOADING=1 without MONOTONIC_USEC (systemd 253+ fails such a reload): {reloading:?}")
    });
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let now_usec = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000;
    assert!(
        now_usec >= usec && now_usec - usec < 10_000_000,
        "MONOTONIC_USEC {usec} is not CLOCK_MONOTONIC {now_usec}"
    );
    let reloaded = manager.next_state(Duration::from_secs(10));
    assert!(reloaded.starts_with("READY=1\nSTATUS=watching "), "{reloaded:?}");

    let pid = daemon.child.id();
    daemon.stop();
    let stopping = manager.next_state(Duration::from_secs(5));
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?} (pid {pid})");
}
