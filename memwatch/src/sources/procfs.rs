//! What /proc says about a process: identity, counters, and who it belongs to.
//!
//! The root is injectable (like vector's PROCFS_ROOT) so tests can point it at
//! a fixture tree. Reads that fail because the process just exited return
//! `None`: that race is normal, not an error.
use std::path::{Path, PathBuf};

use procfs::{ProcessCGroup, process::Process};

use crate::{
    model::{
        heap_ceiling,
        sample::{Counters, ProcessId, ProcessInfo},
        signals::SignalMasks,
    },
    sources::{
        cgroup_namespace::CgroupNamespace,
        cgroupfs::{CgroupFs, SeenLimit, unit_from_cgroup},
        container_names::ContainerNames,
        environment::CeilingVariables,
        meminfo, runtime,
    },
};

/// The kernel marks its own threads with PF_KTHREAD in /proc/PID/stat flags.
const PF_KTHREAD: u32 = 0x0020_0000;

#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
    /// Reads container names under the host root this /proc belongs to.
    names: std::sync::Arc<ContainerNames>,
    /// memwatch's cgroup namespace, found on the first process read.
    namespace: std::sync::Arc<std::sync::OnceLock<CgroupNamespace>>,
    /// The cgroup filesystem of the same host: the limits JVMs size from.
    cgroups: CgroupFs,
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
    /// Virtual size, bytes.
    pub vsize: u64,
    /// Resident pages, all kinds together (the sum status splits).
    pub resident_pages: u64,
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
            virtual_bytes: 0,
        }
    }
}

impl ProcFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let host = root.parent().unwrap_or(Path::new("/")).to_path_buf();
        let cgroups = CgroupFs::new(host.join("sys/fs/cgroup"));
        Self { root, names: std::sync::Arc::new(ContainerNames::new(host)), namespace: Default::default(), cgroups }
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

    /// Read for every process every interval: one file, parsed in place.
    pub fn stat(&self, pid: u32) -> Option<ProcStat> {
        let text = read_record(&self.root.join(pid.to_string()).join("stat"))?;
        parse_stat(pid, &text)
    }

    /// The kernel's own per-process counters, summed over CPUs (the
    /// per-CPU parts that a probe reading the mm's shared count would miss:
    /// up to batch x CPUs pages per counter). Read for every process whose
    /// stat moved, so it takes the four lines it needs from the text
    /// instead of parsing all ~55 fields.
    pub fn rss(&self, pid: u32) -> Option<ProcRss> {
        let status = read_record(&self.root.join(pid.to_string()).join("status"))?;
        Some(status_rss(&status))
    }

    /// What the process does with each signal: SigCgt and SigIgn of the
    /// process, and SigBlk of *every* thread ANDed (a signal is delivered to
    /// any thread not blocking it). `None` if /proc cannot tell (gone).
    pub fn signal_masks(&self, pid: u32) -> Option<SignalMasks> {
        let dir = self.root.join(pid.to_string());
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        let caught = status_mask(&status, "SigCgt")?;
        let ignored = status_mask(&status, "SigIgn")?;
        let mut blocked = u64::MAX;
        for task in std::fs::read_dir(dir.join("task")).ok()?.flatten() {
            let text = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            blocked &= status_mask(&text, "SigBlk").unwrap_or(0);
        }
        Some(SignalMasks { caught, ignored, blocked: if blocked == u64::MAX { 0 } else { blocked } })
    }

    /// Command line, cgroup membership and the heap ceiling its runtime
    /// declared: read once per process identity.
    pub fn info(&self, pid: u32, comm: &str) -> ProcessInfo {
        let Some(process) = self.process(pid) else {
            return ProcessInfo { comm: comm.to_owned(), ..Default::default() };
        };
        let cmdline = process.cmdline().map(|args| args.join(" ")).unwrap_or_default();
        let (cgroup, unit) = match process.cgroups() {
            Ok(groups) => cgroup_and_unit(&self.host_paths(groups.0)),
            Err(_) => (None, None),
        };
        // Relative to the process's own directory, as the command line was:
        // a pid reused since is not read in its place.
        let variables = process.open_relative("environ").map(CeilingVariables::read).unwrap_or_default();
        let is_go = || process.open_relative("exe").is_ok_and(runtime::is_go);
        let memory = |container_support: bool| self.memory_seen_by_jvm(cgroup.as_deref().filter(|_| container_support));
        let ceiling = heap_ceiling::declared_with(&cmdline, |name| variables.get(name), is_go, memory);
        let mut info = ProcessInfo::with_heap_ceiling(comm.to_owned(), cmdline, cgroup, unit, ceiling);
        if let Some(container) = info.container.as_mut() {
            self.names.fill(container);
        }
        info
    }

    /// The memory a JVM in `cgroup` sees as its own: the host's, or its
    /// cgroup's limit where that is smaller (`None` where it is unknown).
    fn memory_seen_by_jvm(&self, cgroup: Option<&str>) -> Option<u64> {
        let host = meminfo::read(&self.root).ok()?.total;
        match cgroup.map_or(SeenLimit::Unlimited, |cgroup| self.cgroups.limit_seen_by_jvm(cgroup)) {
            SeenLimit::Unlimited => Some(host),
            SeenLimit::Bytes(limit) => Some(limit.min(host)),
            SeenLimit::Unsure => None,
        }
    }

    /// The cgroups as the host names them (see `cgroup_namespace`); one
    /// whose path cannot be is left out.
    fn host_paths(&self, groups: Vec<ProcessCGroup>) -> Vec<ProcessCGroup> {
        let namespace = self.namespace.get_or_init(|| CgroupNamespace::discover(&self.root, self.cgroups.root()));
        groups
            .into_iter()
            .filter_map(|mut group| {
                group.pathname = namespace.host_path(&group.pathname)?;
                Some(group)
            })
            .collect()
    }
}

/// A /proc status mask line such as `SigCgt:\t0000000000004a02`.
/// A /proc/PID file read for every process every interval, in as few
/// syscalls as it takes: these files are generated whole on the first read,
/// so one read into a buffer larger than the record returns all of it (the
/// generic reader would probe, grow and read again to see the end).
fn read_record(path: &Path) -> Option<String> {
    use std::io::Read as _;
    const RECORD_BYTES: usize = 4096;
    let mut file = std::fs::File::open(path).ok()?;
    let mut buffer = vec![0u8; RECORD_BYTES];
    let mut filled = 0;
    loop {
        let n = file.read(&mut buffer[filled..]).ok()?;
        filled += n;
        if n == 0 || filled < buffer.len() {
            break;
        }
        buffer.resize(buffer.len() * 2, 0); // longer than ever seen: read on
    }
    buffer.truncate(filled);
    String::from_utf8(buffer).ok()
}

/// /proc/PID/stat: `pid (comm) state ppid ...`. The name may hold spaces and
/// parentheses, so the fields are counted from the last `)`.
fn parse_stat(pid: u32, text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // Indexes after the name: 0 state, 6 flags, 7 minflt, 9 majflt,
    // 19 starttime, 20 vsize, 21 rss (proc(5) numbers them 3, 9, 10, 12,
    // 22, 23, 24).
    let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let state = fields.first()?.chars().next()?;
    Some(ProcStat {
        id: ProcessId { pid, start_time: number(19)? },
        comm,
        page_faults: number(7)? + number(9)?,
        kernel_thread: number(6)? & u64::from(PF_KTHREAD) != 0,
        zombie: matches!(state, 'Z' | 'X'),
        vsize: number(20)?,
        resident_pages: number(21)?,
    })
}

/// The RSS lines of /proc/PID/status ("RssAnon:\t  1234 kB"); a line that
/// is missing (a kernel thread, an older kernel) counts as zero.
fn status_rss(status: &str) -> ProcRss {
    let mut rss = ProcRss::default();
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let slot = match key {
            "RssAnon" => &mut rss.anon,
            "RssFile" => &mut rss.file,
            "RssShmem" => &mut rss.shmem,
            "VmSwap" => &mut rss.swap,
            _ => continue,
        };
        let kib = value.trim().strip_suffix("kB").and_then(|v| v.trim().parse::<u64>().ok());
        *slot = kib.unwrap_or(0) * 1024;
    }
    rss
}

fn status_mask(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    u64::from_str_radix(line.trim(), 16).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // GOMEMLIMIT and GOGC=off in its environment, but it has no Go executable.
        assert_eq!(info.heap_ceiling, None);
        assert!(procfs.stat(1).is_none(), "a missing process is None, not an error");
    }

    #[test]
    fn a_runtimes_ceiling_is_read_from_its_environment() {
        // memwatch/tests/fixtures/proc_runtimes: `node server.js` with
        // NODE_OPTIONS (and Go's variables, which node does not read).
        let procfs = ProcFs::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc_runtimes"));
        let info = procfs.info(4343, "node");
        assert_eq!(info.heap_ceiling, Some(heap_ceiling::HeapCeiling::hard(640 << 20)));
        assert_eq!(info.unit.as_deref(), Some("web.service"));
    }

    #[test]
    fn a_jvms_share_of_memory_is_of_its_cgroups_limit_or_of_the_host() {
        // 4344 to 4346: `java -XX:MaxRAMPercentage=75 -jar /srv/app.jar`
        // in api.service (1 GiB limit, on a 2 GiB slice, on a host of
        // 16303836 kB); 4345 with -XX:-UseContainerSupport.
        let procfs = ProcFs::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc_runtimes"));
        assert_eq!(procfs.info(4344, "java").heap_ceiling, Some(heap_ceiling::HeapCeiling::hard(768 << 20)));
        let host = 16_303_836 * 1024;
        assert_eq!(procfs.info(4345, "java").heap_ceiling, Some(heap_ceiling::HeapCeiling::hard(host / 4 * 3)));
        // 4346: the same JVM in worker.service, unlimited itself but on the
        // 2 GiB slice: JDKs differ on which they take, so it declares none.
        assert_eq!(procfs.info(4346, "java").heap_ceiling, None);
    }

    #[test]
    fn a_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let text = "77 (a) b (c)) S 1 77 77 0 -1 4194560 120 0 3 0 5 6 0 0 20 0 1 0 4455 8192000 300 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let stat = parse_stat(77, text).unwrap();
        assert_eq!(stat.comm, "a) b (c)");
        assert_eq!(stat.id, ProcessId { pid: 77, start_time: 4455 });
        assert_eq!((stat.page_faults, stat.vsize, stat.kernel_thread, stat.zombie), (123, 8_192_000, false, false));
        assert_eq!(stat.resident_pages, 300);
        assert!(parse_stat(77, "77 (truncated) S 1 2").is_none());
    }

    #[test]
    fn rss_lines_missing_or_malformed_count_as_zero() {
        let rss = status_rss("Name:\tkworker/0:1\nRssAnon:\t  12 kB\nRssFile:\tlots\nVmSwapX:\t9 kB\n");
        assert_eq!(rss, ProcRss { anon: 12 * 1024, ..ProcRss::default() });
    }

    fn masks_fixture(pid: u32, status: &str, threads: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("status"), status).unwrap();
        for (i, blk) in threads.iter().enumerate() {
            let task = dir.join("task").join((pid + i as u32).to_string());
            std::fs::create_dir_all(&task).unwrap();
            std::fs::write(task.join("status"), format!("SigBlk:\t{blk}\n")).unwrap();
        }
        root
    }

    const USR1: i32 = 10; // bit 9: 0x200

    #[test]
    fn caught_ignored_blocked_or_default() {
        let status = |cgt: &str, ign: &str| format!("Name:\tx\nSigBlk:\t0\nSigIgn:\t{ign}\nSigCgt:\t{cgt}\n");
        let terminates =
            |root: &tempfile::TempDir, pid| ProcFs::new(root.path()).signal_masks(pid).map(|m| m.would_terminate(USR1));
        let caught = masks_fixture(10, &status("0000000000000200", "0"), &["0"]);
        assert_eq!(ProcFs::new(caught.path()).signal_masks(10).unwrap().caught, 0x200);
        assert_eq!(terminates(&caught, 10), Some(false));
        let ignored = masks_fixture(10, &status("0", "0000000000000200"), &["0"]);
        assert_eq!(ProcFs::new(ignored.path()).signal_masks(10).unwrap().ignored, 0x200);
        assert_eq!(terminates(&ignored, 10), Some(false));
        let blocked = masks_fixture(10, &status("0", "0"), &["0000000000000200", "0000000000000200"]);
        assert_eq!(ProcFs::new(blocked.path()).signal_masks(10).unwrap().blocked, 0x200);
        assert_eq!(terminates(&blocked, 10), Some(false));
        // One thread leaves it unblocked: the signal would be delivered there and kill.
        let partly = masks_fixture(10, &status("0", "0"), &["0000000000000200", "0"]);
        assert_eq!(terminates(&partly, 10), Some(true));
        assert_eq!(terminates(&partly, 11), None, "no such process");
    }

    #[test]
    fn this_process_catches_nothing_by_default_but_sigpipe_is_ignored() {
        // The Rust runtime ignores SIGPIPE; SIGUSR1 is left at its default.
        let masks = ProcFs::default().signal_masks(std::process::id()).unwrap();
        assert!(!masks.would_terminate(libc::SIGPIPE));
        assert_ne!(masks.ignored & (1 << (libc::SIGPIPE - 1)), 0);
        assert!(masks.would_terminate(USR1));
    }
}
