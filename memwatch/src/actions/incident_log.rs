//! The incident log: JSON lines, rotated by size (`incidents.jsonl`, then
//! `.1` the newest rotated file ... `.N` the oldest), and read back in order.
use std::{
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use crate::model::incident::Incident;

#[derive(Debug, thiserror::Error)]
pub enum IncidentLogError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: malformed incident record: {detail}", path.display())]
    Malformed { path: PathBuf, line: usize, detail: String },
}

#[derive(Debug, Clone)]
pub struct IncidentLog {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
}

impl IncidentLog {
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64, keep: u32) -> Self {
        Self { path: path.into(), max_bytes, keep: keep.max(1) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record, rotating first if it would push the file past
    /// `max_bytes`. One write(2) of the whole line with O_APPEND, so a reader
    /// never sees half a record from us.
    pub fn append(&self, incident: &Incident) -> Result<(), IncidentLogError> {
        let mut line = incident.to_json_line();
        line.push('\n');
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
        }
        let size = fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io_error("opening", &self.path))?;
        file.write_all(line.as_bytes()).map_err(io_error("writing", &self.path))
    }

    fn rotate(&self) -> Result<(), IncidentLogError> {
        let oldest = rotated(&self.path, self.keep);
        match fs::remove_file(&oldest) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error("removing", &oldest)(e)),
            _ => {}
        }
        for n in (1..self.keep).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                let to = rotated(&self.path, n + 1);
                fs::rename(&from, &to).map_err(io_error("renaming", &from))?;
            }
        }
        fs::rename(&self.path, rotated(&self.path, 1)).map_err(io_error("renaming", &self.path))
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> IncidentLogError {
    let path = path.to_path_buf();
    move |source| IncidentLogError::Io { op, path, source }
}

/// Every record in `path` and its rotated files, oldest first. A missing
/// log is no incidents; a line that does not parse is an error naming it.
pub fn read_all(path: &Path) -> Result<Vec<Incident>, IncidentLogError> {
    let mut files: Vec<PathBuf> = (1..=1000).map(|n| rotated(path, n)).take_while(|p| p.exists()).collect();
    files.reverse();
    files.push(path.to_path_buf());
    let mut incidents = Vec::new();
    for file in files {
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("reading", &file)(e)),
        };
        incidents.extend(parse(&file, &text)?);
    }
    Ok(incidents)
}

pub fn parse(path: &Path, text: &str) -> Result<Vec<Incident>, IncidentLogError> {
    let mut incidents = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let incident = serde_json::from_str(line).map_err(|e| IncidentLogError::Malformed {
            path: path.to_path_buf(),
            line: index + 1,
            detail: e.to_string(),
        })?;
        incidents.push(incident);
    }
    Ok(incidents)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{
        engine::Level,
        model::incident::{IncidentEnd, IncidentKind},
    };

    pub(crate) fn sample(target: &str, started: f64) -> Incident {
        Incident {
            kind: IncidentKind::Episode,
            target: target.into(),
            policy: "p".into(),
            cgroup: None,
            started,
            ended: started + 10.0,
            duration_s: 10.0,
            end: IncidentEnd::Recovered,
            peak_level: Level::Critical,
            peak_usage_bytes: 1,
            limit_bytes: 2,
            dry_run: false,
            protected: false,
            freed_bytes: 0,
            levels: vec![],
            levels_dropped: 0,
            leak: None,
            actions: vec![],
            actions_dropped: 0,
            timeline: vec![],
        }
    }

    #[test]
    fn rotation_keeps_n_files_and_reading_returns_them_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/incidents.jsonl");
        let one_line = sample("cgroup:/x", 0.0).to_json_line().len() as u64 + 1;
        // Two records per file; keep two rotated files.
        let log = IncidentLog::new(&path, 2 * one_line + 5, 2);
        for i in 0..7 {
            log.append(&sample("cgroup:/x", f64::from(i))).unwrap();
        }
        assert!(rotated(&path, 2).exists() && !rotated(&path, 3).exists());
        let started: Vec<f64> = read_all(&path).unwrap().iter().map(|i| i.started).collect();
        // 7 records, 2 per file, 3 files kept: the oldest file (0, 1) is gone.
        assert_eq!(started, [2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn a_malformed_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("incidents.jsonl");
        let good = sample("cgroup:/x", 1.0).to_json_line();
        fs::write(&path, format!("{good}\n\n{good}\n{{\"kind\": \"episode\"\n")).unwrap();
        let err = read_all(&path).unwrap_err();
        assert!(matches!(err, IncidentLogError::Malformed { line: 4, .. }), "{err}");
        assert!(err.to_string().contains("incidents.jsonl:4: malformed incident record"), "{err}");
    }

    #[test]
    fn a_missing_log_has_no_incidents() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_all(&dir.path().join("none.jsonl")).unwrap().is_empty());
    }
}
