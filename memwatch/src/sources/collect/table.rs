//! The collectors' shared bookkeeping: which processes are alive, who they
//! are, and which ones disappeared since the last scan.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use crate::{
    cache::{CacheLimits, NamedCache},
    model::sample::{Counters, ProcessId, ProcessInfo, ProcessSample},
    sources::procfs::{ProcFs, ProcRss, ProcStat},
};

/// A process's RSS split is read again at least this often (scans) even
/// when nothing says it changed.
const RSS_REFRESH_SCANS: u32 = 12;

/// The RSS split last read for a process, and what its stat said then.
#[derive(Debug, Clone, Copy)]
struct RssMemo {
    resident_pages: u64,
    page_faults: u64,
    rss: ProcRss,
    /// Scans since it was read.
    age: u32,
}

impl RssMemo {
    /// The split still holds when neither the resident total nor the fault
    /// count moved: pages are only added by faults, and anything that takes
    /// pages away (unmap, reclaim, swap-out) lowers the total.
    fn still_holds(&self, stat: &ProcStat) -> bool {
        self.resident_pages == stat.resident_pages
            && self.page_faults == stat.page_faults
            && self.age < RSS_REFRESH_SCANS
    }
}

/// Process identity -> who it is. Bounded (size, TTL, LRU) so that process
/// churn cannot grow the daemon; a process evicted early is simply re-read.
pub type ProcessInfoCache = NamedCache<ProcessId, Arc<ProcessInfo>>;
/// The name the API and the metrics know the process-info cache by.
pub const PROCESS_INFO_CACHE: &str = "process-info";

pub struct ProcessTable {
    pub procfs: ProcFs,
    /// Info of processes new to the table, read once per identity while it
    /// stays cached.
    info: Arc<ProcessInfoCache>,
    /// Last samples by pid, to find the processes that vanished, and whose
    /// info a process still alive keeps: the cache is only asked about new
    /// ones, so its size does not bound how many processes are cheap to scan.
    last: HashMap<u32, ProcessSample>,
    /// `info.clears()` at the last scan: a clear re-reads every process.
    clears_seen: u64,
    /// The RSS split of each live process, so an idle one's status is not
    /// read every interval (most of a host is idle; reading status is most
    /// of what a scan costs).
    rss: HashMap<ProcessId, RssMemo>,
}

/// One scan: the live processes, and the previous samples of those gone.
pub struct Scan {
    pub live: Vec<ProcessSample>,
    pub vanished: Vec<ProcessSample>,
}

impl ProcessTable {
    pub fn new(procfs: ProcFs) -> Self {
        let info = Arc::new(ProcessInfoCache::new(PROCESS_INFO_CACHE, CacheLimits::default()));
        Self { procfs, info, last: HashMap::new(), clears_seen: 0, rss: HashMap::new() }
    }

    /// Shares a cache built with the configured limits (and registered for
    /// the API) instead of the default one.
    pub fn set_info_cache(&mut self, cache: Arc<ProcessInfoCache>) {
        self.info = cache;
    }

    /// Reads every user process in /proc: its stat, and its RSS split where
    /// it may have changed; `counters` adds what the collector knows beyond
    /// /proc to those figures. A process that vanishes mid-read is skipped.
    pub fn scan(
        &mut self,
        mut counters: impl FnMut(&ProcStat, Counters) -> Counters,
    ) -> Result<Scan, super::CollectError> {
        let pids = self.procfs.pids().map_err(|source| super::CollectError::ListProc {
            path: self.procfs.root().display().to_string(),
            source,
        })?;
        let cleared = std::mem::replace(&mut self.clears_seen, self.info.clears()) != self.info.clears();
        let mut live = Vec::with_capacity(pids.len());
        let mut rss_now = HashMap::with_capacity(pids.len());
        for pid in pids {
            let Some(stat) = self.procfs.stat(pid) else { continue };
            // Kernel threads have no user memory; zombies have none left.
            if stat.kernel_thread || stat.zombie {
                continue;
            }
            let memo = match self.rss.get(&stat.id) {
                Some(memo) if memo.still_holds(&stat) => RssMemo { age: memo.age + 1, ..*memo },
                _ => {
                    let Some(rss) = self.procfs.rss(pid) else { continue };
                    RssMemo { resident_pages: stat.resident_pages, page_faults: stat.page_faults, rss, age: 0 }
                }
            };
            rss_now.insert(stat.id, memo);
            let mut counters = counters(&stat, memo.rss.into_counters(stat.page_faults));
            counters.virtual_bytes = stat.vsize;
            // exec keeps pid and start time but changes the name and
            // command line: a changed comm means the info is stale.
            let kept =
                self.last.get(&pid).filter(|last| !cleared && last.id == stat.id).map(|last| Arc::clone(&last.info));
            let info = match kept.or_else(|| self.info.get(&stat.id)) {
                Some(info) if info.comm == stat.comm => info,
                _ => {
                    let info = Arc::new(self.procfs.info(pid, &stat.comm));
                    self.info.insert(stat.id, Arc::clone(&info));
                    info
                }
            };
            live.push(ProcessSample { id: stat.id, info, counters });
        }

        let alive: HashSet<ProcessId> = live.iter().map(|s| s.id).collect();
        let mut vanished: Vec<ProcessSample> =
            self.last.drain().map(|(_, s)| s).filter(|s| !alive.contains(&s.id)).collect();
        // A dead identity never comes back: free its slot now rather than at the TTL.
        for gone in &vanished {
            self.info.remove(&gone.id);
        }
        vanished.sort_by_key(|s| s.id);
        self.last = live.iter().map(|s| (s.id.pid, s.clone())).collect();
        self.rss = rss_now;
        Ok(Scan { live, vanished })
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, path::Path};

    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc/4242");

    /// A /proc tree with copies of the fixture process under the given pids.
    fn proc_tree(pids: &[u32]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for pid in pids {
            add_process(dir.path(), *pid, "leaky worker");
        }
        dir
    }

    fn add_process(root: &Path, pid: u32, comm: &str) {
        let target = root.join(pid.to_string());
        fs::create_dir_all(&target).unwrap();
        for file in ["status", "cmdline", "cgroup"] {
            fs::copy(Path::new(FIXTURE).join(file), target.join(file)).unwrap();
        }
        let stat = fs::read_to_string(Path::new(FIXTURE).join("stat")).unwrap();
        let stat = stat.replacen("4242 (leaky worker)", &format!("{pid} ({comm})"), 1);
        fs::write(target.join("stat"), stat).unwrap();
    }

    fn counters(_: &ProcStat, base: Counters) -> Counters {
        base
    }

    #[test]
    fn processes_that_disappear_are_reported_once_as_vanished() {
        let dir = proc_tree(&[100, 200]);
        let mut table = ProcessTable::new(ProcFs::new(dir.path()));
        let first = table.scan(counters).unwrap();
        assert_eq!(first.live.iter().map(|s| s.id.pid).collect::<Vec<_>>(), [100, 200]);
        assert!(first.vanished.is_empty());

        fs::remove_dir_all(dir.path().join("200")).unwrap();
        let second = table.scan(counters).unwrap();
        assert_eq!(second.vanished.iter().map(|s| s.id.pid).collect::<Vec<_>>(), [200]);
        let third = table.scan(counters).unwrap();
        assert!(third.vanished.is_empty(), "reported once");
    }

    #[test]
    fn exec_renames_the_process_and_refreshes_its_info() {
        let dir = proc_tree(&[300]);
        let mut table = ProcessTable::new(ProcFs::new(dir.path()));
        let before = table.scan(counters).unwrap();
        assert_eq!(before.live[0].info.comm, "leaky worker");
        // Same pid and start time, new image.
        add_process(dir.path(), 300, "python3");
        let after = table.scan(counters).unwrap();
        assert_eq!(after.live[0].info.comm, "python3");
        assert!(after.vanished.is_empty(), "an exec is not an exit");
    }

    #[test]
    fn live_processes_keep_their_info_beyond_the_cache_size_until_a_clear() {
        let dir = proc_tree(&[600, 601, 602]);
        let mut table = ProcessTable::new(ProcFs::new(dir.path()));
        let limits = CacheLimits { max_entries: 1, ..CacheLimits::default() };
        let cache = Arc::new(ProcessInfoCache::new(PROCESS_INFO_CACHE, limits));
        table.set_info_cache(Arc::clone(&cache));
        table.scan(counters).unwrap();
        // Were info re-read each scan, the new command lines would show.
        for pid in [600, 601, 602] {
            fs::write(dir.path().join(pid.to_string()).join("cmdline"), b"changed\0").unwrap();
        }
        let again = table.scan(counters).unwrap();
        assert!(again.live.iter().all(|s| s.info.cmdline == "/usr/bin/leaky --serve"), "read once per identity");
        crate::cache::ManagedCache::clear(cache.as_ref());
        let after_clear = table.scan(counters).unwrap();
        assert!(after_clear.live.iter().all(|s| s.info.cmdline == "changed"), "a clear re-reads every process");
    }

    #[test]
    fn an_idle_process_keeps_its_rss_split_until_its_stat_moves() {
        let dir = proc_tree(&[700]);
        let mut table = ProcessTable::new(ProcFs::new(dir.path()));
        let first = table.scan(counters).unwrap().live[0].counters;
        let status = dir.path().join("700/status");
        let text = fs::read_to_string(&status).unwrap();
        fs::write(&status, text.replace("RssAnon:\t    6144 kB", "RssAnon:\t    9999 kB")).unwrap();
        let idle = table.scan(counters).unwrap().live[0].counters;
        assert_eq!(idle.rss_anon, first.rss_anon, "stat unchanged: status not read again");
        // One more fault: the split is read again.
        let stat_path = dir.path().join("700/stat");
        let stat = fs::read_to_string(&stat_path).unwrap();
        fs::write(&stat_path, stat.replacen(" 1500 ", " 1501 ", 1)).unwrap(); // minflt
        let moved = table.scan(counters).unwrap().live[0].counters;
        assert_eq!(moved.rss_anon, 9999 * 1024);
    }

    #[test]
    fn a_skipped_read_drops_the_process_from_the_live_set() {
        let dir = proc_tree(&[400, 500]);
        let mut table = ProcessTable::new(ProcFs::new(dir.path()));
        fs::remove_file(dir.path().join("500/status")).unwrap(); // gone between its stat and its status
        let scan = table.scan(counters).unwrap();
        assert_eq!(scan.live.iter().map(|s| s.id.pid).collect::<Vec<_>>(), [400]);
    }
}
