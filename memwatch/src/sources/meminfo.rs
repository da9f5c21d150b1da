//! The host's memory: the one reader of /proc/meminfo (root injectable
//! for fixtures).
use std::path::{Path, PathBuf};

use procfs::{FromRead as _, Meminfo};

/// /proc/meminfo's figures memwatch uses, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostMemory {
    pub total: u64,
    /// The kernel's own estimate of what could be had without swapping.
    pub available: u64,
    pub free: u64,
    pub buffers: u64,
    pub cached: u64,
}

impl HostMemory {
    /// Total minus available: what is really in use.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }
}

/// Reads `<proc_root>/meminfo`.
pub fn read(proc_root: &Path) -> std::io::Result<HostMemory> {
    let path: PathBuf = proc_root.join("meminfo");
    let info = Meminfo::from_file(&path).map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
    if info.mem_total == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: MemTotal is 0", path.display())));
    }
    Ok(HostMemory {
        total: info.mem_total,
        // Kernels before 3.14 have no MemAvailable; this is its old estimate.
        available: info.mem_available.unwrap_or(info.mem_free + info.cached + info.buffers),
        free: info.mem_free,
        buffers: info.buffers,
        cached: info.cached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_is_total_minus_available() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\nBuffers:          10 kB\nCached:          120 kB\nSwapCached:        0 kB\nActive:            0 kB\nInactive:          0 kB\nSwapTotal:         0 kB\nSwapFree:          0 kB\nDirty:             0 kB\nWriteback:         0 kB\nMapped:            0 kB\nSlab:              0 kB\nCommitLimit:       0 kB\nCommitted_AS:      0 kB\nVmallocTotal:      0 kB\nVmallocUsed:       0 kB\nVmallocChunk:      0 kB\nShmem:             0 kB\nActive(anon):      0 kB\nInactive(anon):    0 kB\nActive(file):      0 kB\nInactive(file):    0 kB\nUnevictable:       0 kB\nMlocked:           0 kB\nAnonPages:         0 kB\nKernelStack:       0 kB\nPageTables:        0 kB\nNFS_Unstable:      0 kB\nBounce:            0 kB\nWritebackTmp:      0 kB\nSReclaimable:      0 kB\nSUnreclaim:        0 kB\n",
        )
        .unwrap();
        let host = read(dir.path()).unwrap();
        assert_eq!((host.total, host.used(), host.free), (1000 * 1024, 750 * 1024, 100 * 1024));
    }

    #[test]
    fn the_fixture_hosts_total_is_read_and_a_missing_file_is_an_error() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc");
        assert_eq!(read(Path::new(fixtures)).unwrap().total, 16_303_836 * 1024);
        assert!(read(Path::new("/nonexistent")).is_err());
    }
}
