//! The collectors' shared bookkeeping: which processes are alive, who they
//! are, and which ones disappeared since the last scan.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use crate::{
    procinfo::{ProcFs, ProcStat},
    sample::{Counters, ProcessId, ProcessInfo, ProcessSample},
};

pub struct ProcessTable {
    pub procfs: ProcFs,
    /// Info is read once per process identity; entries live as long as the process.
    info: HashMap<ProcessId, Arc<ProcessInfo>>,
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
        Self { procfs, info: HashMap::new(), last: HashMap::new() }
    }

    /// Reads every user process in /proc; `counters` supplies each one's
    /// figures (or `None` to skip a process that vanished mid-read).
    pub fn scan(&mut self, mut counters: impl FnMut(&ProcStat) -> Option<Counters>) -> anyhow::Result<Scan> {
        let pids = self
            .procfs
            .pids()
            .map_err(|e| anyhow::anyhow!("listing {}: {e}", self.procfs.root().display()))?;
        let mut live = Vec::with_capacity(pids.len());
        for pid in pids {
            let Some(stat) = self.procfs.stat(pid) else { continue };
            // Kernel threads have no user memory; zombies have none left.
            if stat.kernel_thread || stat.zombie {
                continue;
            }
            let Some(counters) = counters(&stat) else { continue };
            // exec keeps pid and start time but changes the name and
            // command line: a changed comm means the info is stale.
            let info = match self.info.get(&stat.id) {
                Some(info) if info.comm == stat.comm => Arc::clone(info),
                _ => {
                    let info = Arc::new(self.procfs.info(pid, &stat.comm));
                    self.info.insert(stat.id, Arc::clone(&info));
                    info
                }
            };
            live.push(ProcessSample { id: stat.id, info, counters });
        }

        let alive: HashSet<ProcessId> = live.iter().map(|s| s.id).collect();
        self.info.retain(|id, _| alive.contains(id));
        let mut vanished: Vec<ProcessSample> =
            self.last.drain().map(|(_, s)| s).filter(|s| !alive.contains(&s.id)).collect();
        vanished.sort_by_key(|s| s.id);
        self.last = live.iter().map(|s| (s.id.pid, s.clone())).collect();
        Ok(Scan { live, vanished })
    }
}
