//! Handing back what start-up used. Loading the probes parses the kernel's
//! BTF (tens of MiB of heap, freed right after), and start-up runs code the
//! loop never runs again (argument and config parsing, the eBPF loader);
//! both would otherwise stay in the daemon's RSS, which is watched like
//! any other process's. Later, each reading's own work is handed back too.
use std::path::Path;

use crate::view::DaemonView;

/// Returns freed heap to the kernel and drops the executable's file pages
/// from this process's RSS. The pages the loop uses fault back in at its
/// next round; clean file pages are only unmapped, never written.
pub fn shed_start_up_memory() {
    return_freed_heap();
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else { return };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return };
    for (start, end) in executable_mappings(&maps, &exe) {
        // SAFETY: a range of this process's own file-backed mappings;
        // MADV_PAGEOUT only reclaims pages, it changes no contents.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT) };
        if rc != 0 {
            // Kernels before 5.4 lack MADV_PAGEOUT: nothing to hand back then.
            tracing::debug!("madvise(MADV_PAGEOUT) on the executable: {}", std::io::Error::last_os_error());
            return;
        }
    }
}

/// Hands the heap a reading freed back to the kernel. A reading's
/// snapshots and diffs are freed when it ends, but glibc returns only the
/// top of its heap by itself: a burst (thousands of processes exiting in
/// one interval) would leave its high-water mark resident for good (+40%
/// RSS after 100,000 short-lived processes, docs/BENCHMARKS.md). Trimming a
/// heap of a few MiB costs microseconds.
pub fn return_freed_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks glibc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The daemon's own RSS and CPU time, for `memwatch.daemon.*`: memwatch
/// is watched like any process, but its own figures must not depend on
/// being among the top growers. `None` when /proc/self cannot be read.
pub fn measure() -> Option<DaemonView> {
    let stat = procfs::process::Process::myself().and_then(|p| p.stat()).ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    Some(DaemonView {
        rss_bytes: stat.rss * procfs::page_size(),
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
    })
}

/// `(start, end)` of each line of /proc/self/maps that maps `exe`.
fn executable_mappings(maps: &str, exe: &Path) -> Vec<(usize, usize)> {
    let exe = exe.to_string_lossy();
    maps.lines()
        .filter(|line| line.split_whitespace().nth(5) == Some(exe.as_ref()))
        .filter_map(|line| {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            Some((usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_executables_own_mappings_are_chosen() {
        let maps = "55d0c0000000-55d0c0100000 r--p 00000000 fd:01 123 /usr/bin/memwatch\n\
                    55d0c0100000-55d0c0900000 r-xp 00100000 fd:01 123 /usr/bin/memwatch\n\
                    55d0c1000000-55d0c1100000 rw-p 00000000 00:00 0 [heap]\n\
                    7f0000000000-7f0000200000 r-xp 00000000 fd:01 9 /usr/lib/x86_64-linux-gnu/libc.so.6\n";
        let chosen = executable_mappings(maps, Path::new("/usr/bin/memwatch"));
        assert_eq!(chosen, [(0x55d0c0000000, 0x55d0c0100000), (0x55d0c0100000, 0x55d0c0900000)]);
    }

    /// Resident KiB of this process's mappings of its own executable.
    fn executable_rss_kib() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").unwrap().to_string_lossy().into_owned();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut ours = false;
        let mut kib = 0;
        for line in smaps.lines() {
            if line.split_whitespace().next().is_some_and(|f| f.contains('-') && !f.ends_with(':')) {
                ours = line.split_whitespace().nth(5) == Some(exe.as_str());
            } else if let Some(rss) = line.strip_prefix("Rss:").filter(|_| ours) {
                kib += rss.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0);
            }
        }
        kib
    }

    #[test]
    fn shedding_drops_the_executables_pages_and_the_process_goes_on() {
        let before = executable_rss_kib();
        shed_start_up_memory();
        let after = executable_rss_kib();
        // Reading smaps runs code again, which faults some pages back in.
        assert!(after < before, "executable RSS {before} KiB -> {after} KiB");
    }
}
