//! Helpers for memwatch's privileged integration tests.
//!
//! These tests load the real kernel programs, so they need root. Without it
//! they skip with a printed reason, except under CI (`CI=true`), where a skip
//! would hide exactly what CI is there to prove, so it fails instead.
use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, ChildStdout, Command, Stdio},
};

pub mod cgroup_v2;
pub mod daemon;
pub mod pages;
pub mod real;
pub mod workload;

/// Prints one measured figure on its own line. `cargo xtask vm-test` (which
/// runs the tests with --nocapture) collects the `FIGURE` lines into its
/// summary, so the numbers behind each scenario are in the CI log.
pub fn figure(scenario: &str, name: &str, value: impl std::fmt::Display) {
    eprintln!("FIGURE {scenario}: {name} = {value}");
}

/// Whether the running test may go on. `false` means it printed why it skips.
pub fn privileged(test: &str) -> bool {
    if rustix_like_euid() == 0 {
        return true;
    }
    let reason = format!("{test}: needs root to load eBPF programs (running as uid {})", rustix_like_euid());
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{reason}; CI=true, where a privileged test must run, not skip");
    }
    eprintln!("SKIPPED {reason}");
    false
}

fn rustix_like_euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Runs the `alloc-workload` helper: it allocates and touches memory in steps
/// and reports each phase on stdout, so tests can read at known moments.
pub struct Workload {
    pub child: Child,
    lines: BufReader<ChildStdout>,
}

impl Workload {
    /// `binary` is `env!("CARGO_BIN_EXE_alloc-workload")`, which cargo only
    /// defines for integration tests, not for this library.
    pub fn spawn(binary: &str, args: &[&str]) -> Self {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning alloc-workload");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout"));
        Self { child, lines }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Blocks until the workload prints `line`; panics if it exits first.
    pub fn wait_for(&mut self, line: &str) {
        let mut buf = String::new();
        loop {
            buf.clear();
            let n = self.lines.read_line(&mut buf).expect("reading workload output");
            assert!(n > 0, "alloc-workload exited before printing {line:?}");
            if buf.trim_end() == line {
                return;
            }
        }
    }

    /// Lets the workload go on to its next phase (it waits for a line on stdin).
    pub fn proceed(&mut self) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        stdin.write_all(b"\n").and_then(|()| stdin.flush()).expect("writing to workload");
    }

    pub fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("waiting for alloc-workload");
        assert!(status.success(), "alloc-workload failed: {status}");
    }
}

/// A /proc/PID/status field in bytes (the file says kB).
pub fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading status");
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB");
    kib * 1024
}

/// The memwatch binary next to this test's own target directory, built by
/// `cargo xtask test` before the tests run.
pub fn memwatch_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash>  ->  target/<profile>/memwatch
    let path = exe.parent().and_then(|deps| deps.parent()).expect("target layout").join("memwatch");
    assert!(
        path.exists(),
        "{} not found: build it first (`cargo build -p memwatch` with this profile; `cargo xtask test` does)",
        path.display()
    );
    path
}
