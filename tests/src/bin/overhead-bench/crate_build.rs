//! The mixed workload: rustc compiling a real crate (one of the workspace's
//! own dependencies, found by `cargo xtask bench`), which reads and writes
//! files, maps memory, faults pages and runs threads. Timed in the CPU time
//! of rustc and all its threads, taken from `wait4`.
use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

pub struct CrateBuild {
    rustc: PathBuf,
    /// The crate's directory (holding `src/lib.rs`).
    source: PathBuf,
    edition: String,
    out: PathBuf,
}

impl CrateBuild {
    /// From `--rustc PATH --crate DIR --edition E`; `None` when not given
    /// (the bench run by hand without xtask).
    pub fn from_args(args: &[String]) -> Option<Self> {
        let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
        let (rustc, source, edition) = (value("--rustc")?, value("--crate")?, value("--edition")?);
        let out = std::env::temp_dir().join(format!("memwatch-bench-build-{}", std::process::id()));
        std::fs::create_dir_all(&out).expect("creating the crate build's output directory");
        Some(Self { rustc: rustc.into(), source: source.into(), edition, out })
    }

    pub fn name(&self) -> String {
        let dir = self.source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        format!("crate build (rustc, debug, {dir})")
    }

    /// One build. CPU ms of rustc, user + system, all threads.
    pub fn run(&self) -> f64 {
        let crate_name = self
            .source
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit_once('-'))
            .map_or("bench_crate".to_owned(), |(name, _version)| name.replace('-', "_"));
        #[expect(clippy::zombie_processes, reason = "reaped by the wait4 below, which also gives its rusage")]
        let child = Command::new(&self.rustc)
            .args([
                "--crate-type",
                "lib",
                "--edition",
                &self.edition,
                "--crate-name",
                &crate_name,
                "--cap-lints",
                "allow",
            ])
            .args(["-C", "opt-level=0", "--out-dir"])
            .arg(&self.out)
            .arg(self.source.join("src/lib.rs"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.rustc.display()));
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value to be overwritten.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waiting for our own child, with valid out-pointers; std's
        // `Child` is not waited on afterwards (its drop does not wait).
        let rc = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
        assert_eq!(rc, child.id() as libc::pid_t, "wait4 on rustc: {}", std::io::Error::last_os_error());
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "rustc failed to build {} (status {status:#x})",
            self.source.display()
        );
        let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
        ms(usage.ru_utime) + ms(usage.ru_stime)
    }
}

impl Drop for CrateBuild {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.out);
    }
}
