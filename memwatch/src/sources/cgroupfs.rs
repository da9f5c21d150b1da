//! The one reader of cgroup files: a cgroup's memory limit, usage, working
//! set and pressure, throttle knob (`memory.high`), `memory.events`, and
//! the systemd unit its path names. cgroup v2 first, then v1's memory
//! hierarchy (hybrid hosts).
//!
//! One notion of "unlimited" for both: v2 spells it `max`; v1 writes
//! PAGE_COUNTER_MAX pages in bytes (9223372036854771712 on 4 KiB pages), so
//! any v1 value at or above `V1_UNLIMITED_FROM` is no limit at all.
//!
//! Writing a knob is an action, so it lives in `actions::sys::cgroup`. The
//! root is injectable (like oomd's fixture cgroupfs) so all of this is
//! unit-tested against fixture trees.
use std::{
    io,
    path::{Path, PathBuf},
};

pub use crate::model::{
    cgroup::{Knob, KnobReading, Limit, MemoryEvents},
    working_set::{CgroupMemory, Pressure},
};

pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// v1's "no limit" (PAGE_COUNTER_MAX pages, just under 2^63 bytes rounded
/// to pages, whatever the page size): anything this large means unlimited.
pub const V1_UNLIMITED_FROM: u64 = 1 << 62;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The cgroup was removed (ENOENT/ENODEV), possibly between two steps of
    /// an action. Normal when a service stops; callers drop it and go on.
    #[error("cgroup {} is gone", path.display())]
    Gone { path: PathBuf },
    /// Neither cgroup v2's memory.high nor v1's memory.soft_limit_in_bytes
    /// exists (or can be written) for this cgroup: memwatch cannot throttle it.
    #[error(
        "cgroup {}: no writable memory limit (neither memory.high of cgroup v2 nor \
         memory.soft_limit_in_bytes of cgroup v1): {detail}",
        path.display()
    )]
    NoMemoryControl { path: PathBuf, detail: String },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: unexpected content {content:?}: {detail}", path.display())]
    Parse { path: PathBuf, content: String, detail: String },
}

impl CgroupError {
    /// Whether the cgroup was removed: expected churn, not a failure.
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::Gone { .. })
    }
}

/// The memory limit a JVM in a cgroup sizes its heap from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenLimit {
    Unlimited,
    Bytes(u64),
    /// JDKs differ on which limit they take there.
    Unsure,
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

    /// The memory limit in force for `cgroup` (a path like
    /// "/system.slice/nginx.service"): the smallest finite limit on it or any
    /// ancestor, since a parent's limit caps its children. v2 first
    /// (memory.max), then v1 (memory/…/memory.limit_in_bytes). `None` when
    /// nothing limits it or the files cannot be read.
    pub fn limit(&self, cgroup: &str) -> Option<u64> {
        let v2 = smallest_on_path(&self.root, cgroup, "memory.max");
        v2.or_else(|| smallest_on_path(&self.root.join("memory"), cgroup, "memory.limit_in_bytes"))
    }

    /// The limit a JVM in `cgroup` takes for its memory (HotSpot's container
    /// support), where every JDK takes the same. On v1 the smallest on its
    /// path, which HotSpot reads as the hierarchical limit. On v2 its own
    /// `memory.max`: JDKs that predate JDK-8322420 read no ancestor's, so a
    /// smaller limit on an ancestor leaves it unknown which one a JVM took.
    pub fn limit_seen_by_jvm(&self, cgroup: &str) -> SeenLimit {
        let own = self.root.join(cgroup.trim_start_matches('/')).join("memory.max");
        let seen = match smallest_on_path(&self.root, cgroup, "memory.max") {
            Some(smallest) if read_limit_file(&own) != Some(smallest) => return SeenLimit::Unsure,
            Some(smallest) => Some(smallest),
            None => smallest_on_path(&self.root.join("memory"), cgroup, "memory.limit_in_bytes"),
        };
        seen.map_or(SeenLimit::Unlimited, SeenLimit::Bytes)
    }

    /// What `cgroup` is charged, how much of that is inactive page cache,
    /// and (v2) its memory pressure. `None` for the root cgroup (its
    /// figures are the whole host's, not its own processes') and when the
    /// files cannot be read (the cgroup is gone, or a kernel without them):
    /// the processes' RSS then stands in.
    pub fn memory(&self, cgroup: &str) -> Option<CgroupMemory> {
        let relative = cgroup.trim_start_matches('/');
        if relative.is_empty() {
            return None;
        }
        let v2 = self.root.join(relative);
        if let Some(charged_bytes) = read_bytes(&v2.join("memory.current")) {
            return Some(CgroupMemory {
                charged_bytes,
                inactive_file_bytes: stat_field(&v2.join("memory.stat"), "inactive_file")?,
                pressure: std::fs::read_to_string(v2.join("memory.pressure"))
                    .ok()
                    .and_then(|text| Pressure::parse(&text).ok()),
            });
        }
        let v1 = self.root.join("memory").join(relative);
        Some(CgroupMemory {
            charged_bytes: read_bytes(&v1.join("memory.usage_in_bytes"))?,
            inactive_file_bytes: stat_field(&v1.join("memory.stat"), "total_inactive_file")?,
            pressure: None,
        })
    }

    /// The throttle knob of `path` and the usage it is compared with, as the
    /// planner needs them; what went wrong if they cannot be read.
    pub fn knob_reading(&self, path: &str) -> KnobReading {
        let read = self.open(path).and_then(|cg| Ok((cg.knob(), cg.limit()?, cg.usage().ok(), cg.can_reclaim())));
        match read {
            Ok((knob, limit, usage, reclaim)) => KnobReading::Read { knob, limit, usage, reclaim },
            Err(e) => KnobReading::Unreadable { gone: matches!(e, CgroupError::Gone { .. }), detail: e.to_string() },
        }
    }

    /// The cgroup named `path` as /proc/PID/cgroup spells it ("/system.slice/x"),
    /// with its throttle knob.
    ///
    /// Pure v2 hosts have it under the root; hybrid hosts have the memory
    /// controller's copy under `memory/`. The first with a limit knob wins.
    pub fn open(&self, path: &str) -> Result<Cgroup, CgroupError> {
        let relative = path.trim_start_matches('/');
        let v2 = self.root.join(relative);
        let v1 = self.root.join("memory").join(relative);
        match Cgroup::at(&v2) {
            Err(CgroupError::Gone { .. }) | Err(CgroupError::NoMemoryControl { .. }) if v1.is_dir() => Cgroup::at(&v1),
            result => result,
        }
    }
}

/// Min over `root/<each ancestor of cgroup, and itself>/file`.
fn smallest_on_path(root: &Path, cgroup: &str, file: &str) -> Option<u64> {
    let mut dir = root.to_path_buf();
    let mut smallest = read_limit_file(&dir.join(file));
    for component in cgroup.split('/').filter(|c| !c.is_empty()) {
        dir.push(component);
        if let Some(limit) = read_limit_file(&dir.join(file)) {
            smallest = Some(smallest.map_or(limit, |s: u64| s.min(limit)));
        }
    }
    smallest
}

fn read_limit_file(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    match text.trim().parse::<Limit>().ok()? {
        Limit::Bytes(bytes) => finite(bytes),
        Limit::Max => None,
    }
}

fn read_bytes(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// One `key value` line of a `memory.stat` file.
fn stat_field(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A limit in bytes, or `None` for v1's "unlimited" and for 0 (no cgroup
/// is really limited to nothing; 0 is an unset v1 soft limit).
fn finite(bytes: u64) -> Option<u64> {
    (bytes > 0 && bytes < V1_UNLIMITED_FROM).then_some(bytes)
}

/// One cgroup directory and the knob it is throttled with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    dir: PathBuf,
    knob: Knob,
}

impl Cgroup {
    /// The cgroup at `dir` (absolute), with whichever knob it has.
    pub fn at(dir: impl Into<PathBuf>) -> Result<Self, CgroupError> {
        let dir = dir.into();
        for knob in [Knob::MemoryHigh, Knob::SoftLimit] {
            if dir.join(knob.file()).is_file() {
                return Ok(Self { dir, knob });
            }
        }
        if !dir.is_dir() {
            return Err(CgroupError::Gone { path: dir });
        }
        let detail = if dir.join("cgroup.controllers").is_file() {
            "cgroup v2 without the memory controller enabled for it (see the parent's \
             cgroup.subtree_control), or the root cgroup"
        } else {
            "not a cgroup v1 memory hierarchy either"
        };
        Err(CgroupError::NoMemoryControl { path: dir, detail: detail.to_owned() })
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

    /// The current throttle limit (`max` when there is none).
    pub fn limit(&self) -> Result<Limit, CgroupError> {
        let (path, text) = self.read(self.knob.file())?;
        let limit: Limit = text.parse().map_err(|detail| self.parse_error(path, &text, detail))?;
        Ok(match limit {
            Limit::Bytes(bytes) if bytes >= V1_UNLIMITED_FROM => Limit::Max,
            limit => limit,
        })
    }

    /// Bytes charged to the cgroup now.
    pub fn usage(&self) -> Result<u64, CgroupError> {
        let (path, text) = self.read(self.knob.usage_file())?;
        text.trim()
            .parse()
            .map_err(|e| format!("not a byte count: {e}"))
            .map_err(|detail| self.parse_error(path, &text, detail))
    }

    /// Whether v2 `memory.reclaim` exists here (Linux 5.19+).
    pub fn can_reclaim(&self) -> bool {
        self.dir.join("memory.reclaim").is_file()
    }

    /// v2 `memory.events`: `high` rising is the proof that throttling bites.
    pub fn memory_events(&self) -> Result<MemoryEvents, CgroupError> {
        let (path, text) = self.read("memory.events")?;
        MemoryEvents::parse(&text).map_err(|detail| self.parse_error(path, &text, detail))
    }

    fn read(&self, file: &str) -> Result<(PathBuf, String), CgroupError> {
        let path = self.dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((path, text)),
            Err(e) => Err(self.io_error("reading", path, e)),
        }
    }

    /// ENODEV is what a write to a removed cgroup's open file gets; ENOENT
    /// with the directory gone is a removal between two of our steps.
    pub(crate) fn io_error(&self, op: &'static str, path: PathBuf, e: io::Error) -> CgroupError {
        let gone =
            e.raw_os_error() == Some(libc::ENODEV) || (e.kind() == io::ErrorKind::NotFound && !self.dir.is_dir());
        if gone { CgroupError::Gone { path: self.dir.clone() } } else { CgroupError::Io { op, path, source: e } }
    }

    fn parse_error(&self, path: PathBuf, text: &str, detail: String) -> CgroupError {
        CgroupError::Parse { path, content: text.trim().to_owned(), detail }
    }
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
#[path = "cgroupfs_tests.rs"]
pub(crate) mod tests;
