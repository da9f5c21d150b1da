//! Real software from Debian's packages (node, java) under the real daemon
//! in procfs mode, on the host: the helpers the runtime tests share.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{
    daemon::{wait_until, write_config},
    proc_status_bytes,
};

pub const NODE: &str = "/usr/bin/node";
/// Debian's openjdk-17-jre-headless, by its path: `java` on PATH may be another JDK.
pub const JAVA: &str = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java";

/// Whether `program` (installed by `cargo xtask setup`'s test packages) is
/// there; without it the test skips with the reason, except under CI.
pub fn installed(program: &str, test: &str) -> bool {
    if Path::new(program).exists() {
        return true;
    }
    let reason = format!("{test}: {program} is not installed (`cargo xtask test` installs it)");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{reason}; CI=true, where it must run, not skip");
    }
    eprintln!("SKIPPED {reason}");
    false
}

/// A child process killed when dropped, so a failing test leaves nothing.
pub struct Spawned {
    pub child: Child,
    pub name: String,
}

impl Spawned {
    pub fn start(name: &str, command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self { child, name: name.to_owned() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    pub fn rss(&self) -> u64 {
        proc_status_bytes(self.pid(), "VmRSS")
    }

    /// Waits until the process catches `signal` (its runtime has set up its
    /// handlers), up to 20 s.
    pub fn wait_catching(&self, signal: i32) {
        let caught = wait_until(Duration::from_secs(20), || catches(self.pid(), signal).then_some(()));
        assert!(caught.is_some(), "{} (pid {}) never caught signal {signal}", self.name, self.pid());
    }

    /// Sends `signal` directly (the controls: what the runtime does with it).
    pub fn send(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, signal) }, 0, "kill {signal} {}", self.pid());
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `pid`'s SigCgt has `signal`.
pub fn catches(pid: u32, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    mask & (1 << (signal - 1)) != 0
}

/// Whether anything listens on TCP `port` (IPv4 or IPv6), from /proc/net.
pub fn listening_on(port: u16) -> bool {
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).unwrap_or_default().lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1 (ADDR:PORT), st is field 3 (0A: LISTEN).
            fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "0A"
        })
    })
}

/// A daemon config for `dir`, every target no policy names protected,
/// and `policies`.
pub fn config(dir: &Path, policies: &str) -> PathBuf {
    write_config(
        dir,
        &format!("[defaults]\n# Nothing else on the host is the tests' to touch.\nprotect = true\n{policies}"),
    )
}

/// A process-target policy for the executable `exe`, whose limit puts a
/// process of `rss` bytes at critical (40% to 95% of the limit) with room
/// to grow; `actions` are extra `[policy.actions]` keys.
pub fn critical_policy(name: &str, exe: &str, rss: u64, actions: &str) -> String {
    format!(
        r#"
[[policy]]
name = "{name}"
match = {{ exe = "{exe}" }}
target = "process"
# [defaults] protects everything else; this one is the test's.
protect = false
limit = {limit}
[policy.thresholds]
warning = 0.3
critical = 0.4
emergency = 0.95
[policy.leak]
enabled = false
[policy.actions]
pass_wait = "0.5s"
cooldown = "60s"
cleanup_passes = 1
{actions}
"#,
        limit = rss * 2
    )
}
