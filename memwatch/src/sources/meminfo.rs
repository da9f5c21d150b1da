//! The host's memory, from /proc/meminfo (root injectable for fixtures).
use std::path::{Path, PathBuf};

use procfs::{FromRead as _, Meminfo};

use crate::view::HostView;

pub fn read_host(proc_root: &Path) -> std::io::Result<HostView> {
    let path: PathBuf = proc_root.join("meminfo");
    let info = Meminfo::from_file(&path).map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
    // MemAvailable is the kernel's own estimate of what could be had without
    // swapping; total minus it is what is really in use.
    let available = info.mem_available.unwrap_or(info.mem_free + info.cached + info.buffers);
    let used = info.mem_total.saturating_sub(available);
    Ok(HostView {
        used,
        total: info.mem_total,
        usage_ratio: if info.mem_total == 0 { 0.0 } else { used as f64 / info.mem_total as f64 },
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
        let host = read_host(dir.path()).unwrap();
        assert_eq!((host.total, host.used, host.free), (1000 * 1024, 750 * 1024, 100 * 1024));
        assert!((host.usage_ratio - 0.75).abs() < 1e-9);
    }
}
