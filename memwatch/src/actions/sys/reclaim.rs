//! `memory.reclaim` (cgroup v2, Linux 5.19+): ask the kernel to reclaim
//! bytes from a cgroup. The write blocks while the kernel works, so it runs
//! off the monitoring loop (`actions::passes`).
use std::{fs::OpenOptions, io::Write};

use super::ActError;
use crate::sources::cgroupfs::Cgroup;

/// What one reclaim came to, measured on the cgroup's own usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reclaimed {
    pub before: u64,
    pub after: u64,
    /// The kernel gave back less than asked (EAGAIN): without swap an
    /// anonymous working set has nothing to give.
    pub partial: bool,
}

impl Reclaimed {
    /// Bytes the cgroup's usage fell by; a cgroup that grew meanwhile freed
    /// nothing (never reported as more than it was).
    pub fn freed(&self) -> u64 {
        self.before.saturating_sub(self.after)
    }
}

/// Writes `bytes` to the cgroup's `memory.reclaim`.
pub fn reclaim(cgroup: &Cgroup, bytes: u64) -> Result<Reclaimed, ActError> {
    let before = cgroup.usage()?;
    let path = cgroup.dir().join("memory.reclaim");
    let io = |source| ActError::Io { op: "write", path: path.clone(), source };
    let mut file = OpenOptions::new().write(true).open(&path).map_err(io)?;
    let partial = match file.write_all(format!("{bytes}\n").as_bytes()) {
        Ok(()) => false,
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => true,
        Err(e) => return Err(io(e)),
    };
    let after = cgroup.usage()?;
    Ok(Reclaimed { before, after, partial })
}
