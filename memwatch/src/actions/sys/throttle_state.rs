//! What memwatch has throttled, kept on disk so that nothing stays throttled
//! after memwatch is gone.
//!
//! Before a cgroup's limit is first lowered, its original value is written
//! (atomically) to the state file; only then is the limit changed. A crash
//! of memwatch at any point therefore leaves either an unchanged cgroup or a
//! record of how to undo the change. On start-up the daemon calls
//! `restore_all()` to undo whatever a crashed predecessor left lowered, and
//! again on clean exit.
//!
//! The record only has to outlive memwatch's process, not the kernel: a
//! killed process loses nothing it wrote, and a reboot resets every cgroup
//! limit. So the file is not fsynced (a sync costs tens of milliseconds on a
//! busy disk, on the path from an emergency reading to its clamp), and it
//! names the boot it was written in: records from another boot describe
//! cgroups that no longer hold memwatch's limits (the same path may now be
//! another service, with a limit of its own), and are dropped, not restored.
//!
//! Each record says which way the limit was set: the cgroup's own file, or
//! the unit's `MemoryHigh=` through systemd for a cgroup systemd owns
//! (`systemd_unit`). Restoring goes the same way, so a unit's property, not
//! only its file, is what it was (`systemctl show -p MemoryHigh`).
//!
//! Restoring writes the recorded original even if someone changed the limit
//! in between: while a cgroup is in the file, memwatch owns its limit, and
//! "nothing stays throttled after memwatch" matters more than keeping a
//! change made under it. A crash while writing can leave a stray
//! `.throttles.json.tmp-<pid>` beside the file; it is never read.
use std::{
    collections::BTreeMap,
    fs,
    io::{self, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use super::{
    ActError,
    systemd_unit::{SystemBus, UnitManager},
};
use crate::sources::cgroupfs::{Cgroup, CgroupError, Knob, Limit};

pub const DEFAULT_PATH: &str = "/var/lib/memwatch/throttles.json";

/// Bumped on incompatible changes. A file of another version is still read
/// for what restoring needs (see `StateFile`): set aside, its limits would
/// stay lowered.
const FORMAT_VERSION: u32 = 1;

/// Read whatever version wrote it, and whatever else it holds: a record a
/// newer (or older) memwatch left is a limit still lowered, and the file's
/// job is to get it back. Only a file without the fields restoring needs is
/// set aside.
#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    /// The kernel's boot id when written; files from before this field
    /// existed are taken as this boot's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boot_id: Option<String>,
    /// By cgroup directory (absolute path, so the record stands on its own).
    throttles: BTreeMap<PathBuf, Entry>,
}

/// One throttled cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub knob: Knob,
    /// The limit before memwatch first changed it: what restoring writes back.
    pub original: Limit,
    /// The limit memwatch set last (for people reading the file).
    pub applied: Limit,
    /// Unix time (seconds) of the first change.
    pub since: u64,
    /// How the limit was set, and so how it is restored. Files written
    /// before this field existed were all direct writes.
    #[serde(default)]
    pub via: Via,
}

/// Which way a limit is set and restored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The cgroup's knob file, written directly.
    #[default]
    File,
    /// The `MemoryHigh=` property of this unit, through systemd.
    Systemd(String),
}

/// What happened to one cgroup when restoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The original limit is back.
    Original(Limit),
    /// The cgroup no longer exists: nothing to restore, record dropped.
    Gone,
}

#[derive(Debug, Default)]
pub struct RestoreReport {
    pub restored: Vec<(PathBuf, Limit)>,
    pub gone: Vec<PathBuf>,
    /// Kept in the state file, so the next start-up tries again.
    pub failed: Vec<(PathBuf, ActError)>,
}

/// The throttles memwatch is responsible for, mirrored in the state file.
pub struct Throttles {
    path: PathBuf,
    /// This boot's id, written with the records.
    boot_id: Option<String>,
    entries: BTreeMap<PathBuf, Entry>,
    /// Records read from a file another boot wrote, dropped unrestored.
    dropped_from_another_boot: usize,
    /// Who owns a cgroup as a unit, and its `MemoryHigh=`.
    units: Box<dyn UnitManager>,
}

impl std::fmt::Debug for Throttles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttles").field("path", &self.path).field("entries", &self.entries).finish_non_exhaustive()
    }
}

impl Throttles {
    /// Reads the state file; a missing file means nothing is throttled.
    ///
    /// A file that does not parse is renamed to `<name>.corrupt-<unix time>`
    /// and reported as `ActError::CorruptState`; loading again then starts
    /// empty (the bad file stays aside for a human to read).
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, ActError> {
        Self::load_in_boot(path, current_boot_id())
    }

    /// `load` as if the running kernel's boot id were `boot_id` (tests).
    pub fn load_in_boot(path: impl Into<PathBuf>, boot_id: Option<String>) -> Result<Self, ActError> {
        let path = path.into();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Self::new(path, boot_id, BTreeMap::new()));
            }
            Err(source) => return Err(ActError::Io { op: "reading", path, source }),
        };
        let detail = match serde_json::from_str::<StateFile>(&text) {
            Ok(file) => {
                if file.version != FORMAT_VERSION {
                    tracing::warn!(
                        file = %path.display(),
                        "throttle state of format version {} (this memwatch writes {FORMAT_VERSION}): its records are restored as read",
                        file.version
                    );
                }
                let another_boot = matches!((&file.boot_id, &boot_id), (Some(then), Some(now)) if then != now);
                if !another_boot {
                    return Ok(Self::new(path, boot_id, file.throttles));
                }
                // Left on disk until the next change rewrites it: dropping
                // it again on another start in this boot is harmless, and a
                // start must not fail on a file it cannot rewrite.
                let mut throttles = Self::new(path, boot_id, BTreeMap::new());
                throttles.dropped_from_another_boot = file.throttles.len();
                return Ok(throttles);
            }
            Err(e) => e.to_string(),
        };
        let aside = set_aside(&path)?;
        Err(ActError::CorruptState { path, aside, detail })
    }

    fn new(path: PathBuf, boot_id: Option<String>, entries: BTreeMap<PathBuf, Entry>) -> Self {
        Self { path, boot_id, entries, dropped_from_another_boot: 0, units: Box::new(SystemBus::default()) }
    }

    /// How many records the file held from another boot (dropped on load).
    pub fn dropped_from_another_boot(&self) -> usize {
        self.dropped_from_another_boot
    }

    /// Asks `units` instead of systemd on the system bus (tests).
    pub fn with_units(self, units: impl UnitManager + 'static) -> Self {
        Self { units: Box::new(units), ..self }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &BTreeMap<PathBuf, Entry> {
        &self.entries
    }

    /// Sets `cgroup`'s limit to `limit`, first recording its original value
    /// (unless memwatch already holds it lowered: the first original stays).
    /// `path` is the cgroup as /proc spells it, to ask systemd whether a
    /// unit owns it. Returns that original. If the record cannot be
    /// written, the cgroup is left untouched.
    pub fn throttle(&mut self, cgroup: &Cgroup, path: &str, limit: Limit) -> Result<Limit, ActError> {
        let key = cgroup.dir().to_path_buf();
        let previous = self.entries.get(&key).cloned();
        let entry = match &previous {
            Some(entry) => Entry { applied: limit, ..entry.clone() },
            None => {
                let via = self.way_for(cgroup, path)?;
                let original = match &via {
                    Via::File => cgroup.limit()?,
                    Via::Systemd(unit) => self.units.memory_high(unit)?.ok_or_else(|| gone(cgroup.dir()))?,
                };
                Entry { knob: cgroup.knob(), original, applied: limit, since: unix_now(), via }
            }
        };
        // Held where usage is now, a target at its own limit would have that
        // limit raised: never above what was there before memwatch.
        if let (Limit::Bytes(original), Limit::Bytes(limit)) = (entry.original, limit)
            && limit >= original
        {
            return Err(ActError::WouldRaise { file: entry.knob.file(), original, limit });
        }
        let original = entry.original;
        let via = entry.via.clone();
        self.entries.insert(key.clone(), entry);
        if let Err(e) = self.persist() {
            self.put_back(&key, previous);
            return Err(e);
        }
        if let Err(e) = set_limit(self.units.as_mut(), cgroup, &via, limit) {
            // Nothing changed, so the record must not claim otherwise (best
            // effort: a stale record only costs a harmless restore). A call
            // systemd never answered may have applied: the record stays.
            if !e.may_have_applied() {
                self.put_back(&key, previous);
                let _ = self.persist();
            }
            return Err(e);
        }
        Ok(original)
    }

    /// systemd's way for the `memory.high` of a unit's own cgroup, the file otherwise.
    fn way_for(&mut self, cgroup: &Cgroup, path: &str) -> Result<Via, ActError> {
        if cgroup.knob() != Knob::MemoryHigh {
            return Ok(Via::File);
        }
        Ok(self.units.owner(path)?.map_or(Via::File, Via::Systemd))
    }

    /// Puts one cgroup's original limit back and forgets it.
    pub fn restore(&mut self, dir: &Path) -> Result<Option<Restored>, ActError> {
        let Some(entry) = self.entries.get(dir).cloned() else { return Ok(None) };
        let restored = restore_one(self.units.as_mut(), dir, &entry)?;
        self.entries.remove(dir);
        self.persist()?;
        Ok(Some(restored))
    }

    /// Restores every recorded cgroup. Gone cgroups are dropped; failures are
    /// reported and kept for the next attempt. Errs only if the state file
    /// cannot be rewritten.
    pub fn restore_all(&mut self) -> Result<RestoreReport, ActError> {
        let mut report = RestoreReport::default();
        let entries = std::mem::take(&mut self.entries);
        for (dir, entry) in entries {
            match restore_one(self.units.as_mut(), &dir, &entry) {
                Ok(Restored::Original(limit)) => report.restored.push((dir, limit)),
                Ok(Restored::Gone) => report.gone.push(dir),
                Err(e) => {
                    self.entries.insert(dir.clone(), entry);
                    report.failed.push((dir, e));
                }
            }
        }
        self.persist()?;
        Ok(report)
    }

    fn put_back(&mut self, key: &Path, previous: Option<Entry>) {
        match previous {
            Some(entry) => self.entries.insert(key.to_path_buf(), entry),
            None => self.entries.remove(key),
        };
    }

    /// Replaces the state file atomically: a reader (or a crash) sees the old
    /// file or the new one, never a mix. Temp file in the same directory (so
    /// rename cannot cross filesystems), then rename; no fsync (see the
    /// module's comment).
    fn persist(&self) -> Result<(), ActError> {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| ActError::Io { op, path, source }
        };
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let file =
            StateFile { version: FORMAT_VERSION, boot_id: self.boot_id.clone(), throttles: self.entries.clone() };
        let mut json = serde_json::to_vec_pretty(&file).expect("the state serializes");
        json.push(b'\n');
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let written = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&json));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io("writing", &tmp)(e));
        }
        fs::rename(&tmp, &self.path).map_err(io("renaming into place", &self.path))
    }
}

fn restore_one(units: &mut dyn UnitManager, dir: &Path, entry: &Entry) -> Result<Restored, ActError> {
    match set_limit(units, &Cgroup::with_knob(dir, entry.knob), &entry.via, entry.original) {
        Ok(()) => Ok(Restored::Original(entry.original)),
        Err(e) if e.is_gone() => Ok(Restored::Gone),
        Err(e) => Err(e),
    }
}

/// Sets the limit the way `via` says; a unit systemd no longer has is gone
/// like a removed cgroup.
fn set_limit(units: &mut dyn UnitManager, cgroup: &Cgroup, via: &Via, limit: Limit) -> Result<(), ActError> {
    match via {
        Via::File => Ok(cgroup.set_limit(limit)?),
        Via::Systemd(unit) => match units.set_memory_high(unit, limit)? {
            true => Ok(()),
            false => Err(gone(cgroup.dir())),
        },
    }
}

/// The running kernel's boot id; None where /proc does not say (then every
/// record is taken as this boot's, as before boot ids were written).
fn current_boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_owned()).filter(|id| !id.is_empty())
}

fn gone(dir: &Path) -> ActError {
    CgroupError::Gone { path: dir.to_path_buf() }.into()
}

/// Renames a bad state file to a name no other set-aside file has.
fn set_aside(path: &Path) -> Result<PathBuf, ActError> {
    let base = format!("{}.corrupt-{}", path.display(), unix_now());
    let aside = (0..)
        .map(|n| PathBuf::from(if n == 0 { base.clone() } else { format!("{base}-{n}") }))
        .find(|p| !p.exists())
        .expect("some suffix is free");
    fs::rename(path, &aside).map_err(|source| ActError::Io {
        op: "setting aside",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(aside)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
#[path = "throttle_state_tests.rs"]
mod tests;
