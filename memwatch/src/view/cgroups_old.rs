//! Memory limits of cgroups, cached by path (the "cgroup" cache).
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    cache::{CacheLimits, NamedCache},
    sources::procfs::unit_from_cgroup,
};

pub const CGROUP_CACHE: &str = "cgroup";

/// Limits at or above this mean "no limit" (cgroup v1 reports
/// PAGE_COUNTER_MAX pages, about 2^63 bytes rounded down to a page).
const UNLIMITED_V1: u64 = 1 << 62;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupInfo {
    /// The memory limit in bytes; None when unlimited or unreadable.
    pub limit: Option<u64>,
    pub unit: Option<String>,
}

pub struct CgroupFs {
    root: PathBuf,
    cache: Arc<NamedCache<String, CgroupInfo>>,
}

impl CgroupFs {
    pub fn new(root: impl Into<PathBuf>, limits: CacheLimits) -> Self {
        Self { root: root.into(), cache: Arc::new(NamedCache::new(CGROUP_CACHE, limits)) }
    }

    pub fn cache(&self) -> Arc<NamedCache<String, CgroupInfo>> {
        Arc::clone(&self.cache)
    }

    pub fn info(&self, path: &str) -> CgroupInfo {
        let root = self.root.clone();
        self.info_with(path, |p| read_limit(&root, p))
    }

    /// Like `info`, with the limit read by `read` on a miss (the daemon
    /// passes the engine's reader, which takes the smallest limit up the tree).
    pub fn info_with(&self, path: &str, read: impl FnOnce(&str) -> Option<u64>) -> CgroupInfo {
        if let Some(info) = self.cache.get(&path.to_owned()) {
            return info;
        }
        let info = CgroupInfo { limit: read(path), unit: unit_from_cgroup(path) };
        self.cache.insert(path.to_owned(), info.clone());
        info
    }
}

/// v1 (the memory controller's own hierarchy), then v2 (the unified one,
/// mounted at the root or, on hybrid hosts, under `unified`).
fn read_limit(root: &Path, path: &str) -> Option<u64> {
    let relative = path.trim_start_matches('/');
    let read = |p: PathBuf| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    if let Some(v1) = read(root.join("memory").join(relative).join("memory.limit_in_bytes")) {
        return v1.parse::<u64>().ok().filter(|&l| l < UNLIMITED_V1);
    }
    for base in [root.to_path_buf(), root.join("unified")] {
        if let Some(v2) = read(base.join(relative).join("memory.max")) {
            return v2.parse::<u64>().ok(); // "max" does not parse: unlimited
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ManagedCache as _;

    #[test]
    fn limits_come_from_v1_or_v2_and_are_cached() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("memory/system.slice/a.service");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "1048576\n").unwrap();
        let v2 = dir.path().join("system.slice/b.service");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.max"), "max\n").unwrap();
        let unlimited_v1 = dir.path().join("memory/c");
        std::fs::create_dir_all(&unlimited_v1).unwrap();
        std::fs::write(unlimited_v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();

        let fs = CgroupFs::new(dir.path(), CacheLimits::default());
        let a = fs.info("/system.slice/a.service");
        assert_eq!(a, CgroupInfo { limit: Some(1 << 20), unit: Some("a.service".into()) });
        assert_eq!(fs.info("/system.slice/b.service").limit, None);
        assert_eq!(fs.info("/c").limit, None);
        // Second read is a hit and survives the file changing.
        std::fs::write(v1.join("memory.limit_in_bytes"), "5\n").unwrap();
        assert_eq!(fs.info("/system.slice/a.service").limit, Some(1 << 20));
        let stats = fs.cache().stats();
        assert_eq!((stats.hits, stats.misses), (1, 3));
    }
}
