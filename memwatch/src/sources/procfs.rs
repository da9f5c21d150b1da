//! What /proc says about a process: identity, counters, and who it belongs to.
//!
//! The root is injectable (like vector's PROCFS_ROOT) so tests can point it at
//! a fixture tree. Reads that fail because the process just exited return
//! `None`: that race is normal, not an error.
use std::path::{Path, PathBuf};

use procfs::{ProcessCGroup, process::Process};

use crate::model::sample::{Counters, ProcessId, ProcessInfo};

/// The kernel marks its own threads with PF_KTHREAD in /proc/PID/stat flags.
const PF_KTHREAD: u32 = 0x0020_0000;

#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> Self {
        Self::new("/proc")
    }
}

/// The cheap per-interval read of one process (/proc/PID/stat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub id: ProcessId,
    pub comm: String,
    /// Minor + major faults since the process started.
    pub page_faults: u64,
    pub kernel_thread: bool,
    /// Exited but not yet reaped: no memory left, and no longer in the kernel maps.
    pub zombie: bool,
}

/// RSS breakdown from /proc/PID/status, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcRss {
    pub anon: u64,
    pub file: u64,
    pub shmem: u64,
    pub swap: u64,
}

impl ProcRss {
    /// Counters as procfs mode reports them: no syscall figures.
    pub fn into_counters(self, page_faults: u64) -> Counters {
        Counters {
            rss_anon: self.anon,
            rss_file: self.file,
            rss_shmem: self.shmem,
            swap: self.swap,
            mmap_bytes: None,
            munmap_bytes: None,
            brk_bytes: None,
            page_faults,
        }
    }
}

impl ProcFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn process(&self, pid: u32) -> Option<Process> {
        Process::new_with_root(self.root.join(pid.to_string())).ok()
    }

    /// Every pid in /proc right now.
    pub fn pids(&self) -> std::io::Result<Vec<u32>> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            if let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    pub fn stat(&self, pid: u32) -> Option<ProcStat> {
        let stat = self.process(pid)?.stat().ok()?;
        Some(ProcStat {
            id: ProcessId { pid, start_time: stat.starttime },
            comm: stat.comm,
            page_faults: stat.minflt + stat.majflt,
            kernel_thread: stat.flags & PF_KTHREAD != 0,
            zombie: matches!(stat.state, 'Z' | 'X'),
        })
    }

    pub fn rss(&self, pid: u32) -> Option<ProcRss> {
        let status = self.process(pid)?.status().ok()?;
        const KIB: u64 = 1024;
        Some(ProcRss {
            anon: status.rssanon.unwrap_or(0) * KIB,
            file: status.rssfile.unwrap_or(0) * KIB,
            shmem: status.rssshmem.unwrap_or(0) * KIB,
            swap: status.vmswap.unwrap_or(0) * KIB,
        })
    }

    /// Command line and cgroup membership: read once per process identity.
    pub fn info(&self, pid: u32, comm: &str) -> ProcessInfo {
        let Some(process) = self.process(pid) else {
            return ProcessInfo { comm: comm.to_owned(), ..Default::default() };
        };
        let cmdline = process.cmdline().map(|args| args.join(" ")).unwrap_or_default();
        let (cgroup, unit) = process.cgroups().map(|groups| cgroup_and_unit(&groups.0)).unwrap_or((None, None));
        ProcessInfo { comm: comm.to_owned(), cmdline, cgroup, unit }
    }
}

/// The cgroup whose memory limits apply, and the systemd unit, from
/// /proc/PID/cgroup. On a pure v2 host both come from the single `0::` line;
/// on a hybrid host (memory controller on v1) the memory controller's line
/// gives the cgroup and systemd's own `name=systemd` line gives the unit.
pub fn cgroup_and_unit(groups: &[ProcessCGroup]) -> (Option<String>, Option<String>) {
    let unified = groups.iter().find(|g| g.hierarchy == 0).map(|g| g.pathname.as_str());
    let v1_memory = groups
        .iter()
        .find(|g| g.hierarchy != 0 && g.controllers.iter().any(|c| c == "memory"))
        .map(|g| g.pathname.as_str());
    let systemd =
        groups.iter().find(|g| g.controllers.iter().any(|c| c == "name=systemd")).map(|g| g.pathname.as_str());
    let cgroup = v1_memory.or(unified).map(str::to_owned);
    let unit = systemd.or(unified).or(v1_memory).and_then(unit_from_cgroup);
    (cgroup, unit)
}

/// The systemd unit a cgroup path belongs to: the innermost `.service` or
/// `.scope` component ("/system.slice/nginx.service" -> "nginx.service"),
/// else the innermost `.slice` other than the root slices.
pub fn unit_from_cgroup(path: &str) -> Option<String> {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let innermost = |suffixes: &[&str]| {
        components.iter().rev().find(|c| suffixes.iter().any(|s| c.ends_with(s))).map(|c| (*c).to_owned())
    };
    innermost(&[".service", ".scope"])
        .or_else(|| innermost(&[".slice"]).filter(|s| s != "system.slice" && s != "user.slice" && s != "-.slice"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_the_innermost_service_or_scope() {
        assert_eq!(unit_from_cgroup("/system.slice/nginx.service").as_deref(), Some("nginx.service"));
        assert_eq!(
            unit_from_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope").as_deref(),
            Some("run-r1.scope")
        );
        assert_eq!(unit_from_cgroup("/system.slice/postgresql.service/payload").as_deref(), Some("postgresql.service"));
        assert_eq!(unit_from_cgroup("/machine.slice").as_deref(), Some("machine.slice"));
        assert_eq!(unit_from_cgroup("/system.slice"), None);
        assert_eq!(unit_from_cgroup("/"), None);
        assert_eq!(unit_from_cgroup("/process_api/ee2efc7e"), None);
    }

    fn group(hierarchy: u32, controllers: &[&str], path: &str) -> ProcessCGroup {
        ProcessCGroup {
            hierarchy,
            controllers: controllers.iter().map(|c| (*c).to_owned()).collect(),
            pathname: path.to_owned(),
        }
    }

    #[test]
    fn hybrid_hosts_take_limits_from_v1_memory_and_units_from_systemd() {
        let groups = [
            group(9, &["name=systemd"], "/system.slice/redis.service"),
            group(4, &["memory"], "/system.slice/redis.service"),
            group(0, &[], "/"),
        ];
        assert_eq!(
            cgroup_and_unit(&groups),
            (Some("/system.slice/redis.service".into()), Some("redis.service".into()))
        );
    }

    #[test]
    fn pure_v2_hosts_use_the_unified_line_for_both() {
        let groups = [group(0, &[], "/system.slice/api.service")];
        assert_eq!(cgroup_and_unit(&groups), (Some("/system.slice/api.service".into()), Some("api.service".into())));
    }

    /// A fixture /proc (memwatch/tests/fixtures/proc) with one process, the
    /// way vector tests its collectors against fixture trees.
    fn fixture() -> ProcFs {
        ProcFs::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc"))
    }

    #[test]
    fn reads_identity_counters_and_info_from_a_fixture_tree() {
        let procfs = fixture();
        assert_eq!(procfs.pids().unwrap(), [4242]);
        let stat = procfs.stat(4242).unwrap();
        assert_eq!(stat.id, ProcessId { pid: 4242, start_time: 987654 });
        assert_eq!(stat.comm, "leaky worker");
        assert_eq!(stat.page_faults, 1525);
        assert!(!stat.kernel_thread);
        assert!(!stat.zombie);
        let rss = procfs.rss(4242).unwrap();
        assert_eq!(rss, ProcRss { anon: 6144 * 1024, file: 1024 * 1024, shmem: 1024 * 1024, swap: 12 * 1024 });
        let info = procfs.info(4242, &stat.comm);
        assert_eq!(info.cmdline, "/usr/bin/leaky --serve");
        assert_eq!(info.unit.as_deref(), Some("leaky.service"));
        assert!(procfs.stat(1).is_none(), "a missing process is None, not an error");
    }
}
