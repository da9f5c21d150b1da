//! What memwatch has throttled, kept on disk so that nothing stays throttled
//! after memwatch is gone.
//!
//! Before a cgroup's limit is first lowered, its original value is written
//! (atomically, and synced) to the state file; only then is the limit changed.
//! A crash at any point therefore leaves either an unchanged cgroup or a
//! record of how to undo the change. On start-up the daemon calls
//! `restore_all()` to undo whatever a crashed predecessor left lowered, and
//! again on clean exit.
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

use super::ActError;
use crate::sources::cgroupfs::{Cgroup, CgroupError, Knob, Limit};

pub const DEFAULT_PATH: &str = "/var/lib/memwatch/throttles.json";

/// Bumped on incompatible changes; a file of another version is set aside
/// like a corrupt one rather than misread.
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    /// By cgroup directory (absolute path, so the record stands on its own).
    throttles: BTreeMap<PathBuf, Entry>,
}

/// One throttled cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub knob: Knob,
    /// The limit before memwatch first changed it: what restoring writes back.
    pub original: Limit,
    /// The limit memwatch set last (for people reading the file).
    pub applied: Limit,
    /// Unix time (seconds) of the first change.
    pub since: u64,
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
#[derive(Debug)]
pub struct Throttles {
    path: PathBuf,
    entries: BTreeMap<PathBuf, Entry>,
}

impl Throttles {
    /// Reads the state file; a missing file means nothing is throttled.
    ///
    /// A file that does not parse is renamed to `<name>.corrupt-<unix time>`
    /// and reported as `ActError::CorruptState`; loading again then starts
    /// empty (the bad file stays aside for a human to read).
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, ActError> {
        let path = path.into();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Self { path, entries: BTreeMap::new() });
            }
            Err(source) => return Err(ActError::Io { op: "reading", path, source }),
        };
        let detail = match serde_json::from_str::<StateFile>(&text) {
            Ok(file) if file.version == FORMAT_VERSION => {
                return Ok(Self { path, entries: file.throttles });
            }
            Ok(file) => format!("format version {}, this memwatch reads {FORMAT_VERSION}", file.version),
            Err(e) => e.to_string(),
        };
        let aside = set_aside(&path)?;
        Err(ActError::CorruptState { path, aside, detail })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &BTreeMap<PathBuf, Entry> {
        &self.entries
    }

    /// Sets `cgroup`'s limit to `limit`, first recording its original value
    /// (unless memwatch already holds it lowered: the first original stays).
    /// Returns that original. If the record cannot be written, the cgroup is
    /// left untouched.
    pub fn throttle(&mut self, cgroup: &Cgroup, limit: Limit) -> Result<Limit, ActError> {
        let key = cgroup.dir().to_path_buf();
        let previous = self.entries.get(&key).cloned();
        let entry = match &previous {
            Some(entry) => Entry { applied: limit, ..entry.clone() },
            None => Entry { knob: cgroup.knob(), original: cgroup.limit()?, applied: limit, since: unix_now() },
        };
        let original = entry.original;
        self.entries.insert(key.clone(), entry);
        if let Err(e) = self.persist() {
            self.put_back(&key, previous);
            return Err(e);
        }
        if let Err(e) = cgroup.set_limit(limit) {
            // Nothing changed, so the record must not claim otherwise
            // (best effort: a stale record only costs a harmless restore).
            self.put_back(&key, previous);
            let _ = self.persist();
            return Err(e.into());
        }
        Ok(original)
    }

    /// Puts one cgroup's original limit back and forgets it.
    pub fn restore(&mut self, dir: &Path) -> Result<Option<Restored>, ActError> {
        let Some(entry) = self.entries.get(dir).cloned() else { return Ok(None) };
        let restored = restore_one(dir, &entry)?;
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
            match restore_one(&dir, &entry) {
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
    /// rename cannot cross filesystems), fsync, rename, fsync the directory
    /// (so the rename itself survives a power cut).
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
        let file = StateFile { version: FORMAT_VERSION, throttles: self.entries.clone() };
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
            .and_then(|mut f| f.write_all(&json).and_then(|()| f.sync_all()));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io("writing", &tmp)(e));
        }
        fs::rename(&tmp, &self.path).map_err(io("renaming into place", &self.path))?;
        fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io("syncing", &dir))
    }
}

fn restore_one(dir: &Path, entry: &Entry) -> Result<Restored, ActError> {
    match Cgroup::with_knob(dir, entry.knob).set_limit(entry.original) {
        Ok(()) => Ok(Restored::Original(entry.original)),
        Err(CgroupError::Gone { .. }) => Ok(Restored::Gone),
        Err(e) => Err(e.into()),
    }
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
mod tests {
    use super::*;
    use crate::sources::cgroupfs::tests::fixture;

    const MIB: u64 = 1 << 20;

    fn two_cgroups() -> (tempfile::TempDir, Cgroup, Cgroup) {
        let root = fixture(&[("web/memory.high", "max\n"), ("batch/memory.high", "805306368\n")]);
        let web = Cgroup::at(root.path().join("web")).unwrap();
        let batch = Cgroup::at(root.path().join("batch")).unwrap();
        (root, web, batch)
    }

    #[test]
    fn the_original_is_on_disk_before_the_limit_changes_and_survives_a_crash() {
        let (root, web, batch) = two_cgroups();
        let state = root.path().join("state/throttles.json");
        let mut throttles = Throttles::load(&state).unwrap();
        assert_eq!(throttles.throttle(&web, Limit::Bytes(200 * MIB)).unwrap(), Limit::Max);
        assert_eq!(throttles.throttle(&batch, Limit::Bytes(500 * MIB)).unwrap(), Limit::Bytes(768 * MIB));
        // Lowered again: the first original is what gets restored.
        assert_eq!(throttles.throttle(&web, Limit::Bytes(150 * MIB)).unwrap(), Limit::Max);
        assert_eq!(web.limit().unwrap(), Limit::Bytes(150 * MIB));
        let text = fs::read_to_string(&state).unwrap();
        assert!(text.contains("\"original\": \"max\"") && text.contains("\"applied\": \"157286400\""), "{text}");

        drop(throttles); // a crash: nothing restored
        let mut successor = Throttles::load(&state).unwrap();
        assert_eq!(successor.entries().len(), 2);
        let report = successor.restore_all().unwrap();
        assert_eq!(report.restored.len(), 2);
        assert!(report.gone.is_empty() && report.failed.is_empty());
        assert_eq!(web.limit().unwrap(), Limit::Max);
        assert_eq!(batch.limit().unwrap(), Limit::Bytes(768 * MIB));
        assert!(Throttles::load(&state).unwrap().entries().is_empty(), "restored entries are forgotten");
    }

    #[test]
    fn no_change_without_a_record() {
        let (root, web, _) = two_cgroups();
        let mut throttles = Throttles::load(root.path().join("state/throttles.json")).unwrap();
        // The state file's directory cannot be made where a regular file is.
        fs::write(root.path().join("state"), "").unwrap();
        let err = throttles.throttle(&web, Limit::Bytes(MIB)).unwrap_err();
        assert!(matches!(err, ActError::Io { op: "creating", .. }), "{err}");
        assert_eq!(web.limit().unwrap(), Limit::Max, "the cgroup must stay untouched");
        assert!(throttles.entries().is_empty());
    }

    #[test]
    fn a_failed_write_leaves_no_record_claiming_a_change() {
        let root = fixture(&[("job/memory.high", "max\n")]);
        let job = Cgroup::at(root.path().join("job")).unwrap();
        let state = root.path().join("throttles.json");
        let mut throttles = Throttles::load(&state).unwrap();
        // Make the knob unwritable: file modes are no obstacle for root, but
        // a directory cannot be opened for writing.
        fs::remove_file(job.dir().join("memory.high")).unwrap();
        fs::create_dir(job.dir().join("memory.high")).unwrap();
        let job = Cgroup::with_knob(job.dir(), Knob::MemoryHigh);
        assert!(throttles.throttle(&job, Limit::Bytes(MIB)).is_err());
        assert!(Throttles::load(&state).unwrap().entries().is_empty());
    }

    #[test]
    fn gone_cgroups_are_dropped_and_failures_kept_for_next_time() {
        let (root, web, batch) = two_cgroups();
        let state = root.path().join("throttles.json");
        let mut throttles = Throttles::load(&state).unwrap();
        throttles.throttle(&web, Limit::Bytes(MIB)).unwrap();
        throttles.throttle(&batch, Limit::Bytes(MIB)).unwrap();
        fs::remove_dir_all(web.dir()).unwrap(); // the service stopped
        fs::remove_file(batch.dir().join("memory.high")).unwrap();
        fs::create_dir(batch.dir().join("memory.high")).unwrap(); // unwritable
        let report = throttles.restore_all().unwrap();
        assert_eq!(report.gone, [web.dir().to_path_buf()]);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, batch.dir());
        let kept = Throttles::load(&state).unwrap();
        assert_eq!(kept.entries().keys().collect::<Vec<_>>(), [batch.dir()]);
    }

    #[test]
    fn restore_one_puts_back_the_original_and_ignores_unknown_cgroups() {
        let (root, web, _) = two_cgroups();
        let mut throttles = Throttles::load(root.path().join("throttles.json")).unwrap();
        throttles.throttle(&web, Limit::Bytes(MIB)).unwrap();
        assert_eq!(throttles.restore(web.dir()).unwrap(), Some(Restored::Original(Limit::Max)));
        assert_eq!(web.limit().unwrap(), Limit::Max);
        assert_eq!(throttles.restore(web.dir()).unwrap(), None);
    }

    #[test]
    fn a_corrupt_file_is_set_aside_intact_with_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("throttles.json");
        let half_written = "{\"version\":1,\"throttles\":{\"/sys/fs/cgroup/web\":{\"knob\":\"memory_hi";
        for round in 0..2 {
            fs::write(&state, half_written).unwrap();
            let err = Throttles::load(&state).unwrap_err();
            let ActError::CorruptState { aside, .. } = &err else { panic!("{err}") };
            assert!(err.to_string().contains("corrupt") && err.to_string().contains(&aside.display().to_string()));
            assert_eq!(fs::read_to_string(aside).unwrap(), half_written, "round {round}: nothing lost");
            assert!(!state.exists());
        }
        let names: Vec<_> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "two distinct set-aside files: {names:?}");
        assert!(Throttles::load(&state).unwrap().entries().is_empty(), "then memwatch starts empty");

        fs::write(&state, "{\"version\":99,\"throttles\":{}}").unwrap();
        let err = Throttles::load(&state).unwrap_err();
        assert!(err.to_string().contains("version 99"), "{err}");
    }
}
