//! Reading the limits targets live under: cgroup memory limits and host
//! memory. This is the I/O half of limit resolution (the engine's
//! `resolve_limit` is the pure half). Roots are injectable, so tests run
//! against fixture trees (memwatch/tests/fixtures/sys, .../proc).
use std::path::{Path, PathBuf};

/// cgroup v1 reports "no limit" as the largest page-aligned counter
/// (9223372036854771712 on 4 KiB pages); anything this large is unlimited.
const V1_UNLIMITED_FROM: u64 = 1 << 60;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Where sysfs is mounted ("/sys").
    sys: PathBuf,
    /// Where procfs is mounted ("/proc").
    proc: PathBuf,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new("/sys", "/proc")
    }
}

impl Limits {
    pub fn new(sys: impl Into<PathBuf>, proc: impl Into<PathBuf>) -> Self {
        Self { sys: sys.into(), proc: proc.into() }
    }

    /// The memory limit in force for `cgroup` (a path like
    /// "/system.slice/nginx.service"): the smallest finite limit on it or any
    /// ancestor, since a parent's limit caps its children. v2 first
    /// (memory.max), then v1 (memory/…/memory.limit_in_bytes). `None` when
    /// nothing limits it or the files cannot be read.
    pub fn cgroup_limit(&self, cgroup: &str) -> Option<u64> {
        let v2_root = self.sys.join("fs/cgroup");
        let v1_root = self.sys.join("fs/cgroup/memory");
        let v2 = smallest_on_path(&v2_root, cgroup, "memory.max", parse_v2);
        v2.or_else(|| smallest_on_path(&v1_root, cgroup, "memory.limit_in_bytes", parse_v1))
    }

    /// MemTotal from /proc/meminfo, in bytes.
    pub fn host_total(&self) -> std::io::Result<u64> {
        let path = self.proc.join("meminfo");
        let text = std::fs::read_to_string(&path)?;
        parse_mem_total(&text).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("no MemTotal line in {}", path.display()))
        })
    }
}

/// Min over `root/<each ancestor of cgroup, and itself>/file`.
fn smallest_on_path(root: &Path, cgroup: &str, file: &str, parse: fn(&str) -> Option<u64>) -> Option<u64> {
    let mut dir = root.to_path_buf();
    let mut smallest = read_limit(&dir.join(file), parse);
    for component in cgroup.split('/').filter(|c| !c.is_empty()) {
        dir.push(component);
        if let Some(limit) = read_limit(&dir.join(file), parse) {
            smallest = Some(smallest.map_or(limit, |s: u64| s.min(limit)));
        }
    }
    smallest
}

fn read_limit(path: &Path, parse: fn(&str) -> Option<u64>) -> Option<u64> {
    std::fs::read_to_string(path).ok().and_then(|text| parse(text.trim()))
}

fn parse_v2(text: &str) -> Option<u64> {
    if text == "max" { None } else { text.parse().ok().filter(|&l| l > 0) }
}

fn parse_v1(text: &str) -> Option<u64> {
    text.parse().ok().filter(|&l| l > 0 && l < V1_UNLIMITED_FROM)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Limits {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        Limits::new(format!("{root}/sys"), format!("{root}/proc"))
    }

    #[test]
    fn v2_limits_take_the_tightest_ancestor_and_ignore_max() {
        let limits = fixture();
        // api.service: memory.max = 1 GiB under a slice capped at 2 GiB.
        assert_eq!(limits.cgroup_limit("/system.slice/api.service"), Some(1 << 30));
        // worker.service has "max", its slice 2 GiB.
        assert_eq!(limits.cgroup_limit("/system.slice/worker.service"), Some(2 << 30));
        // Nothing anywhere on the path limits user sessions.
        assert_eq!(limits.cgroup_limit("/user.slice/user-1000.slice/session-2.scope"), None);
    }

    #[test]
    fn v1_limits_are_used_when_v2_has_none_and_huge_means_unlimited() {
        let limits = fixture();
        assert_eq!(limits.cgroup_limit("/legacy/db"), Some(512 << 20));
        assert_eq!(limits.cgroup_limit("/legacy/unlimited"), None);
    }

    #[test]
    fn host_total_comes_from_meminfo() {
        assert_eq!(fixture().host_total().unwrap(), 16_303_836 * 1024);
        assert!(Limits::new("/nonexistent", "/nonexistent").host_total().is_err());
    }
}
