//! A cgroup's memory knobs: the limit memwatch throttles with, and the
//! figures that show whether throttling bites.
//!
//! cgroup v2's `memory.high` is the real tool: above it the kernel reclaims
//! and slows the cgroup's allocations down instead of OOM-killing. On a v1
//! memory hierarchy the nearest thing is `memory.soft_limit_in_bytes`, which
//! only steers reclaim under global pressure: a documented degraded path.
//!
//! The root is injectable (like oomd's fixture cgroupfs) so all of this is
//! unit-tested against fixture trees.
use std::{
    fmt, io,
    io::Write as _,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde::{Deserialize, Serialize};

use super::ActError;

pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes (just under
/// 2^63, rounded to pages); anything this large means unlimited.
const V1_UNLIMITED_FROM: u64 = 1 << 62;

/// A memory limit as the cgroup files spell it: `max` or a byte count.
/// Serialized the same way ("max" / "268435456") so the state file reads
/// like the cgroup files it records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Limit {
    Max,
    Bytes(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Max => f.write_str("max"),
            Limit::Bytes(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "max" => Ok(Limit::Max),
            n => n.parse().map(Limit::Bytes).map_err(|e| format!("not `max` or a byte count: {e}")),
        }
    }
}

impl From<Limit> for String {
    fn from(limit: Limit) -> String {
        limit.to_string()
    }
}

impl TryFrom<String> for Limit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Which file carries the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    /// cgroup v2 `memory.high`.
    MemoryHigh,
    /// cgroup v1 `memory.soft_limit_in_bytes` (degraded: no throttling, only
    /// a reclaim preference under global pressure).
    SoftLimit,
}

impl Knob {
    pub const fn file(self) -> &'static str {
        match self {
            Knob::MemoryHigh => "memory.high",
            Knob::SoftLimit => "memory.soft_limit_in_bytes",
        }
    }

    /// The file with the cgroup's current usage.
    const fn usage_file(self) -> &'static str {
        match self {
            Knob::MemoryHigh => "memory.current",
            Knob::SoftLimit => "memory.usage_in_bytes",
        }
    }
}

/// Counters from v2 `memory.events` (cumulative since the cgroup was made).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    pub low: u64,
    /// Times usage went over memory.high and the cgroup was throttled.
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
    /// Absent before Linux 5.17; 0 there.
    pub oom_group_kill: u64,
}

impl MemoryEvents {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut events = Self::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let (Some(key), Some(value), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!("line {line:?} is not `key value`"));
            };
            let value: u64 = value.parse().map_err(|e| format!("{key}: {e}"))?;
            match key {
                "low" => events.low = value,
                "high" => events.high = value,
                "max" => events.max = value,
                "oom" => events.oom = value,
                "oom_kill" => events.oom_kill = value,
                "oom_group_kill" => events.oom_group_kill = value,
                // Newer kernels add keys; they are not ours to refuse.
                _ => {}
            }
        }
        Ok(events)
    }
}

/// Where the cgroup filesystem is mounted.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    root: PathBuf,
}

impl Default for CgroupFs {
    fn default() -> Self {
        Self::new(DEFAULT_ROOT)
    }
}

impl CgroupFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cgroup named `path` as /proc/PID/cgroup spells it ("/system.slice/x").
    ///
    /// Pure v2 hosts have it under the root; hybrid hosts have the memory
    /// controller's copy under `memory/`. The first with a limit knob wins.
    pub fn open(&self, path: &str) -> Result<Cgroup, ActError> {
        let relative = path.trim_start_matches('/');
        let v2 = self.root.join(relative);
        let v1 = self.root.join("memory").join(relative);
        match Cgroup::at(&v2) {
            Err(ActError::CgroupGone { .. }) | Err(ActError::NoMemoryControl { .. }) if v1.is_dir() => Cgroup::at(&v1),
            result => result,
        }
    }
}

/// One cgroup directory and the knob it is throttled with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    dir: PathBuf,
    knob: Knob,
}

impl Cgroup {
    /// The cgroup at `dir` (absolute), with whichever knob it has.
    pub fn at(dir: impl Into<PathBuf>) -> Result<Self, ActError> {
        let dir = dir.into();
        for knob in [Knob::MemoryHigh, Knob::SoftLimit] {
            if dir.join(knob.file()).is_file() {
                return Ok(Self { dir, knob });
            }
        }
        if !dir.is_dir() {
            return Err(ActError::CgroupGone { path: dir });
        }
        let detail = if dir.join("cgroup.controllers").is_file() {
            "cgroup v2 without the memory controller enabled for it (see the parent's \
             cgroup.subtree_control), or the root cgroup"
        } else {
            "not a cgroup v1 memory hierarchy either"
        };
        Err(ActError::NoMemoryControl { path: dir, detail: detail.to_owned() })
    }

    /// A cgroup whose knob is already known (as recorded in the state file).
    pub fn with_knob(dir: impl Into<PathBuf>, knob: Knob) -> Self {
        Self { dir: dir.into(), knob }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn knob(&self) -> Knob {
        self.knob
    }

    /// The current limit (`max` when there is none).
    pub fn limit(&self) -> Result<Limit, ActError> {
        let (path, text) = self.read(self.knob.file())?;
        match self.knob {
            Knob::MemoryHigh => text.parse().map_err(|detail| self.parse_error(path, &text, detail)),
            Knob::SoftLimit => {
                let bytes = parse_u64(&text).map_err(|detail| self.parse_error(path, &text, detail))?;
                Ok(if bytes >= V1_UNLIMITED_FROM { Limit::Max } else { Limit::Bytes(bytes) })
            }
        }
    }

    pub fn set_limit(&self, limit: Limit) -> Result<(), ActError> {
        let value = match (self.knob, limit) {
            // v1 takes -1 for "no limit" and has no `max` keyword.
            (Knob::SoftLimit, Limit::Max) => "-1".to_owned(),
            _ => limit.to_string(),
        };
        self.write(self.knob.file(), &value)
    }

    /// Bytes charged to the cgroup now.
    pub fn usage(&self) -> Result<u64, ActError> {
        let (path, text) = self.read(self.knob.usage_file())?;
        parse_u64(&text).map_err(|detail| self.parse_error(path, &text, detail))
    }

    /// v2 `memory.events`: `high` rising is the proof that throttling bites.
    pub fn memory_events(&self) -> Result<MemoryEvents, ActError> {
        let (path, text) = self.read("memory.events")?;
        MemoryEvents::parse(&text).map_err(|detail| self.parse_error(path, &text, detail))
    }

    fn read(&self, file: &str) -> Result<(PathBuf, String), ActError> {
        let path = self.dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((path, text)),
            Err(e) => Err(self.io_error("reading", path, e)),
        }
    }

    fn write(&self, file: &str, value: &str) -> Result<(), ActError> {
        let path = self.dir.join(file);
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
                ActError::NoMemoryControl { path: self.dir.clone(), detail: format!("writing {file}: {e}") }
            }
            _ => self.io_error("writing", path, e),
        })
    }

    /// ENODEV is what a write to a removed cgroup's open file gets; ENOENT
    /// with the directory gone is a removal between two of our steps.
    fn io_error(&self, op: &'static str, path: PathBuf, e: io::Error) -> ActError {
        let gone =
            e.raw_os_error() == Some(libc::ENODEV) || (e.kind() == io::ErrorKind::NotFound && !self.dir.is_dir());
        if gone { ActError::CgroupGone { path: self.dir.clone() } } else { ActError::Io { op, path, source: e } }
    }

    fn parse_error(&self, path: PathBuf, text: &str, detail: String) -> ActError {
        ActError::Parse { path, content: text.trim().to_owned(), detail }
    }
}

fn parse_u64(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|e| format!("not a byte count: {e}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake cgroupfs: `files` are (path relative to the root, content).
    pub(crate) fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        root
    }

    const V2_EVENTS: &str = "low 0\nhigh 17\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n";

    #[test]
    fn v2_reads_and_writes_memory_high_with_max() {
        let root = fixture(&[
            ("cgroup.controllers", "cpu memory pids\n"),
            ("app.slice/api.service/memory.high", "max\n"),
            ("app.slice/api.service/memory.current", "123456789\n"),
            ("app.slice/api.service/memory.events", V2_EVENTS),
        ]);
        let cgroup = CgroupFs::new(root.path()).open("/app.slice/api.service").unwrap();
        assert_eq!(cgroup.knob(), Knob::MemoryHigh);
        assert_eq!(cgroup.limit().unwrap(), Limit::Max);
        assert_eq!(cgroup.usage().unwrap(), 123_456_789);
        let events = cgroup.memory_events().unwrap();
        assert_eq!((events.high, events.max, events.oom_kill), (17, 2, 1));

        cgroup.set_limit(Limit::Bytes(100 << 20)).unwrap();
        assert_eq!(std::fs::read_to_string(cgroup.dir().join("memory.high")).unwrap(), "104857600");
        assert_eq!(cgroup.limit().unwrap(), Limit::Bytes(100 << 20));
        cgroup.set_limit(Limit::Max).unwrap();
        assert_eq!(std::fs::read_to_string(cgroup.dir().join("memory.high")).unwrap(), "max");
    }

    #[test]
    fn v1_hybrid_hosts_use_the_soft_limit_with_minus_one_for_no_limit() {
        let root = fixture(&[
            ("unified/cgroup.controllers", ""),
            ("memory/system.slice/redis.service/memory.soft_limit_in_bytes", "9223372036854771712\n"),
            ("memory/system.slice/redis.service/memory.usage_in_bytes", "4096\n"),
        ]);
        let cgroup = CgroupFs::new(root.path()).open("/system.slice/redis.service").unwrap();
        assert_eq!(cgroup.knob(), Knob::SoftLimit);
        assert_eq!(cgroup.limit().unwrap(), Limit::Max, "v1's huge value means unlimited");
        assert_eq!(cgroup.usage().unwrap(), 4096);
        cgroup.set_limit(Limit::Bytes(1 << 30)).unwrap();
        assert_eq!(cgroup.limit().unwrap(), Limit::Bytes(1 << 30));
        cgroup.set_limit(Limit::Max).unwrap();
        let written = std::fs::read_to_string(cgroup.dir().join("memory.soft_limit_in_bytes")).unwrap();
        assert_eq!(written, "-1");
    }

    #[test]
    fn a_cgroup_without_any_knob_is_a_clear_error() {
        let root = fixture(&[("cgroup.controllers", "cpu pids\n"), ("batch/cgroup.procs", "")]);
        let err = CgroupFs::new(root.path()).open("/batch").unwrap_err();
        assert!(matches!(err, ActError::NoMemoryControl { .. }), "{err}");
        assert!(err.to_string().contains("memory.high") && err.to_string().contains("soft_limit"), "{err}");
        assert!(!err.is_gone());
    }

    #[test]
    fn a_missing_or_removed_cgroup_is_gone_not_fatal() {
        let root = fixture(&[("cgroup.controllers", "memory\n"), ("job/memory.high", "max\n")]);
        let fs = CgroupFs::new(root.path());
        let err = fs.open("/no-such-job").unwrap_err();
        assert!(matches!(err, ActError::CgroupGone { .. }) && err.is_gone(), "{err}");

        // Removed between opening and acting on it.
        let cgroup = fs.open("/job").unwrap();
        std::fs::remove_dir_all(root.path().join("job")).unwrap();
        for err in [cgroup.limit().unwrap_err(), cgroup.set_limit(Limit::Max).unwrap_err()] {
            assert!(matches!(err, ActError::CgroupGone { .. }), "{err}");
        }
    }

    #[test]
    fn garbage_in_a_knob_is_a_parse_error_naming_the_file() {
        let root = fixture(&[("job/memory.high", "lots\n"), ("job/memory.events", "high\n")]);
        let cgroup = Cgroup::at(root.path().join("job")).unwrap();
        let err = cgroup.limit().unwrap_err();
        assert!(matches!(&err, ActError::Parse { content, .. } if content == "lots"), "{err}");
        assert!(err.to_string().contains("memory.high"), "{err}");
        assert!(matches!(cgroup.memory_events().unwrap_err(), ActError::Parse { .. }));
    }

    #[test]
    fn events_tolerate_older_and_newer_kernels() {
        let old = MemoryEvents::parse("low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\n").unwrap();
        assert_eq!(old, MemoryEvents { low: 1, high: 2, max: 3, oom: 4, oom_kill: 5, oom_group_kill: 0 });
        let new = MemoryEvents::parse(&format!("{V2_EVENTS}sock_throttled 9\n")).unwrap();
        assert_eq!(new.high, 17);
    }

    #[test]
    fn limits_round_trip_through_their_text_and_json() {
        for limit in [Limit::Max, Limit::Bytes(0), Limit::Bytes(268_435_456)] {
            assert_eq!(limit.to_string().parse::<Limit>().unwrap(), limit);
            let json = serde_json::to_string(&limit).unwrap();
            assert_eq!(serde_json::from_str::<Limit>(&json).unwrap(), limit);
        }
        assert_eq!(serde_json::to_string(&Limit::Max).unwrap(), "\"max\"");
        assert!("-5".parse::<Limit>().is_err());
    }
}
