//! Writing a cgroup's throttle knob: the one change memwatch makes to a
//! cgroup. Reading it (and everything else about cgroups) is
//! `sources::cgroupfs`.
//!
//! cgroup v2's `memory.high` is the real tool: above it the kernel reclaims
//! and slows the cgroup's allocations down instead of OOM-killing. On a v1
//! memory hierarchy the nearest thing is `memory.soft_limit_in_bytes`, which
//! only steers reclaim under global pressure: a documented degraded path.
use std::{io, io::Write as _};

use crate::sources::cgroupfs::{Cgroup, CgroupError, Knob, Limit};

impl Cgroup {
    pub fn set_limit(&self, limit: Limit) -> Result<(), CgroupError> {
        let value = match (self.knob(), limit) {
            // v1 takes -1 for "no limit" and has no `max` keyword.
            (Knob::SoftLimit, Limit::Max) => "-1".to_owned(),
            _ => limit.to_string(),
        };
        let file = self.knob().file();
        let path = self.dir().join(file);
        // One write(2) of the whole value: cgroup files parse each write alone.
        // O_TRUNC is what `echo > file` does; cgroupfs ignores it, and it keeps
        // fixture files (plain files) honest.
        let result = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()));
        result.map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => {
                CgroupError::NoMemoryControl { path: self.dir().to_path_buf(), detail: format!("writing {file}: {e}") }
            }
            _ => self.io_error("writing", path, e),
        })
    }
}
