//! Throwaway cgroup v2 groups for the action tests.
//!
//! They need a cgroup v2 hierarchy with the memory controller, which hybrid
//! hosts (memory on v1) do not have. There the tests skip with that reason,
//! except inside `cargo xtask vm-test` (MEMWATCH_VM=1), whose whole point is
//! to run them, so a skip there fails.
use std::{
    fs,
    path::{Path, PathBuf},
};

use memwatch::sources::cgroupfs::Cgroup;

const ROOT: &str = "/sys/fs/cgroup";

/// Whether the test may go on; `false` means it printed why it skips.
pub fn available(test: &str) -> bool {
    if !crate::privileged(test) {
        return false;
    }
    let subtree = fs::read_to_string(Path::new(ROOT).join("cgroup.subtree_control")).unwrap_or_default();
    if subtree.split_whitespace().any(|c| c == "memory") {
        return true;
    }
    let reason = format!(
        "{test}: needs cgroup v2 with the memory controller at {ROOT} (this host has none; \
         `cargo xtask vm-test` runs it in a VM)"
    );
    if std::env::var("MEMWATCH_VM").is_ok_and(|v| v == "1") {
        panic!("{reason}; MEMWATCH_VM=1, where it must run");
    }
    eprintln!("SKIPPED {reason}");
    false
}

/// A child of the root cgroup, removed (with anything left in it) on drop.
pub struct TestCgroup {
    pub dir: PathBuf,
}

impl TestCgroup {
    pub fn new(name: &str) -> Self {
        let dir = Path::new(ROOT).join(format!("memwatch-test-{name}-{}", std::process::id()));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        Self { dir }
    }

    /// The cgroup as memwatch's primitives see it.
    pub fn cgroup(&self) -> Cgroup {
        Cgroup::at(&self.dir).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The cgroup as /proc/PID/cgroup spells it ("/memwatch-test-…").
    pub fn path(&self) -> String {
        format!("/{}", self.dir.file_name().expect("a named child").to_string_lossy())
    }

    pub fn add(&self, pid: u32) {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string()).expect("moving a process into the cgroup");
    }

    pub fn write(&self, file: &str, value: &str) {
        fs::write(self.dir.join(file), value).unwrap_or_else(|e| panic!("writing {file}: {e}"));
    }

    pub fn read(&self, file: &str) -> String {
        fs::read_to_string(self.dir.join(file)).unwrap_or_else(|e| panic!("reading {file}: {e}")).trim().to_owned()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // cgroup.kill (Linux 5.14+) empties it so rmdir can succeed.
        let _ = fs::write(self.dir.join("cgroup.kill"), "1");
        for _ in 0..100 {
            if fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        eprintln!("warning: could not remove {}", self.dir.display());
    }
}
