//! The collectors' shared bookkeeping: which processes are alive, who they
//! are, and which ones disappeared since the last scan.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use crate::{
    cache::{CacheLimits, NamedCache},
    model::sample::{Counters, ProcessId, ProcessInfo, ProcessSample},
    sources::procfs::{ProcFs, ProcStat},
};

/// Process identity -> who it is. Bounded (size, TTL, LRU) so that process
/// churn cannot grow the daemon; a process evicted early is simply re-read.
pub type ProcessInfoCache = NamedCache<ProcessId, Arc<ProcessInfo>>;
/// The name the API and the metrics know the process-info cache by.
pub const PROCESS_INFO_CACHE: &str = "process-info";

pub struct ProcessTable {
    pub procfs: ProcFs,
    /// Info is read once per process identity while it stays cached.
    info: Arc<ProcessInfoCache>,
    /// Last samples by pid, to find the processes that vanished.
    last: HashMap<u32, ProcessSample>,
}

/// One scan: the live processes, and the previous samples of those gone.
pub struct Scan {
    pub live: Vec<ProcessSample>,
    pub vanished: Vec<ProcessSample>,
}

impl ProcessTable {
    pub fn new(procfs: ProcFs) -> Self {
        let info = Arc::new(ProcessInfoCache::new(PROCESS_INFO_CACHE, CacheLimits::default()));
        Self { procfs, info, last: HashMap::new() }
    }

    /// Shares a cache built with the configured limits (and registered for
    /// the API) instead of the default one.
    pub fn set_info_cache(&mut self, cache: Arc<ProcessInfoCache>) {
        self.info = cache;
    }

    /// Reads every user process in /proc; `counters` supplies each one's
    /// figures (or `None` to skip a process that vanished mid-read).
    pub fn scan(
        &mut self,
        mut counters: impl FnMut(&ProcStat) -> Option<Counters>,
    ) -> Result<Scan, super::CollectError> {
        let pids = self.procfs.pids().map_err(|source| super::CollectError::ListProc {
            path: self.procfs.root().display().to_string(),
            source,
        })?;
        let mut live = Vec::with_capacity(pids.len());
        for pid in pids {
            let Some(stat) = self.procfs.stat(pid) else { continue };
            // Kernel threads have no user memory; zombies have none left.
            if stat.kernel_thread || stat.zombie {
                continue;
            }
            let Some(mut counters) = counters(&stat) else { continue };
            counters.virtual_bytes = stat.vsize;
            // exec keeps pid and start time but changes the name and
            // command line: a changed comm means the info is stale.
            let info = match self.info.get(&stat.id) {
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

    fn counters(stat: &ProcStat) -> Option<Counters> {
        Some(Counters { page_faults: stat.page_faults, ..Counters::default() })
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
    fn a_skipped_read_drops_the_process_from_the_live_set() {
        let dir = proc_tree(&[400, 500]);
        let mut table = ProcessTable::new(ProcFs::new(dir.path()));
        let scan = table.scan(|stat| (stat.id.pid != 500).then(Counters::default)).unwrap();
        assert_eq!(scan.live.iter().map(|s| s.id.pid).collect::<Vec<_>>(), [400]);
    }
}
