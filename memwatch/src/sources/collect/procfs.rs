//! Degraded mode: per-process figures by polling /proc.
use std::time::Instant;

use super::table::ProcessTable;
use crate::{
    model::sample::{Mode, Snapshot},
    sources::procfs::ProcFs,
};

pub struct ProcfsCollector {
    table: ProcessTable,
}

impl ProcfsCollector {
    pub fn new(procfs: ProcFs) -> Self {
        Self { table: ProcessTable::new(procfs) }
    }

    pub fn set_info_cache(&mut self, cache: std::sync::Arc<super::table::ProcessInfoCache>) {
        self.table.set_info_cache(cache);
    }

    pub fn snapshot(&mut self) -> Result<Snapshot, super::CollectError> {
        let scan = self.table.scan(|_, from_proc| from_proc)?;
        Ok(Snapshot {
            taken_at: Instant::now(),
            mode: Mode::Procfs,
            processes: scan.live,
            // /proc keeps nothing of a process after it is reaped: its last
            // sample is the best account of it there is.
            exited: scan.vanished,
            dropped: Vec::new(),
        })
    }
}
