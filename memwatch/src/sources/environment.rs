//! The few variables of a process's environment that declare its heap
//! ceiling (`model::heap_ceiling::ENVIRONMENT_NAMES`), from
//! /proc/PID/environ: read once per process, like its command line.
//!
//! An environment holds a service's secrets. Only the values of those
//! names are kept, and only until the ceiling is read from them
//! (`ProcFs::info`); nothing of them is logged, recorded or exported. The
//! read is bounded: an environment past [`MAX_ENVIRONMENT_BYTES`] is read
//! up to there, and a ceiling declared after it is missed (never one made
//! up). Reading another user's environment takes `CAP_SYS_PTRACE`, which
//! the packaged unit grants; without it, nothing is read.
use std::{io::Read as _, path::Path};

use crate::model::heap_ceiling::ENVIRONMENT_NAMES;

/// Services' environments run to a few KiB; this bounds what one
/// unusual process makes the daemon allocate, once.
pub const MAX_ENVIRONMENT_BYTES: u64 = 256 * 1024;

/// The values of the heap-ceiling variables set in the environment file
/// at `path` (the first of each name, as `getenv` finds it).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CeilingVariables(Vec<(&'static str, String)>);

impl CeilingVariables {
    pub fn read(path: &Path) -> Self {
        let mut bytes = Vec::new();
        let Ok(file) = std::fs::File::open(path) else { return Self::default() };
        if file.take(MAX_ENVIRONMENT_BYTES).read_to_end(&mut bytes).is_err() {
            return Self::default();
        }
        Self::parse(&bytes)
    }

    /// `NAME=value` entries separated by NUL bytes, as the kernel gives them.
    fn parse(bytes: &[u8]) -> Self {
        let mut found: Vec<(&'static str, String)> = Vec::new();
        for entry in bytes.split(|&b| b == 0) {
            for name in ENVIRONMENT_NAMES {
                let Some(value) = entry.strip_prefix(name.as_bytes()).and_then(|rest| rest.strip_prefix(b"=")) else {
                    continue;
                };
                if found.iter().all(|(seen, _)| *seen != name)
                    && let Ok(value) = std::str::from_utf8(value)
                {
                    found.push((name, value.to_owned()));
                }
            }
        }
        Self(found)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_ceiling_variables_are_kept() {
        let environ = b"PATH=/usr/bin\0DB_PASSWORD=hunter2\0GOMEMLIMIT=1GiB\0NODE_OPTIONS=--max-old-space-size=512\0\
                        GOMEMLIMIT=2GiB\0XGOMEMLIMIT=9GiB\0JAVA_TOOL_OPTIONS\0";
        let found = CeilingVariables::parse(environ);
        assert_eq!(
            found,
            CeilingVariables(vec![("GOMEMLIMIT", "1GiB".into()), ("NODE_OPTIONS", "--max-old-space-size=512".into())])
        );
        assert_eq!(found.get("GOMEMLIMIT"), Some("1GiB"), "the first of a name, as getenv finds it");
        assert_eq!(found.get("JAVA_TOOL_OPTIONS"), None, "a name without '=' sets nothing");
        assert_eq!(found.get("DB_PASSWORD"), None);
    }

    #[test]
    fn a_missing_or_unreadable_environment_declares_nothing() {
        assert_eq!(CeilingVariables::read(Path::new("/nonexistent/environ")), CeilingVariables::default());
        assert_eq!(CeilingVariables::parse(b""), CeilingVariables::default());
        assert_eq!(CeilingVariables::parse(b"GOMEMLIMIT=\xff\xfe\0"), CeilingVariables::default(), "not UTF-8");
    }

    #[test]
    fn the_read_stops_at_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("environ");
        let mut environ = vec![b'x'; MAX_ENVIRONMENT_BYTES as usize];
        environ.extend_from_slice(b"\0GOMEMLIMIT=1GiB\0");
        std::fs::write(&path, &environ).unwrap();
        assert_eq!(CeilingVariables::read(&path).get("GOMEMLIMIT"), None);
        std::fs::write(&path, b"A=b\0GOMEMLIMIT=1GiB\0").unwrap();
        assert_eq!(CeilingVariables::read(&path).get("GOMEMLIMIT"), Some("1GiB"));
    }
}
