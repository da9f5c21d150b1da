//! The few variables of a process's environment that declare its heap
//! ceiling (`model::heap_ceiling::ENVIRONMENT_NAMES`), from
//! /proc/PID/environ: read once per process, like its command line.
//!
//! An environment holds a service's secrets. Only the values of those
//! names are kept, and only until the ceiling is read from them
//! (`ProcFs::info`); nothing of them is logged, recorded or exported (their
//! `Debug` names them without values). The read is bounded: an environment
//! past [`MAX_ENVIRONMENT_BYTES`] is read up to there, and an entry the
//! bound cuts is dropped, so a ceiling after it is missed, never one made
//! up from a cut value. Reading another user's environment takes
//! `CAP_SYS_PTRACE`, which the packaged unit grants; without it, nothing is
//! read.
use std::io::Read;

use crate::model::heap_ceiling::ENVIRONMENT_NAMES;

/// Services' environments run to a few KiB; this bounds what one
/// unusual process makes the daemon allocate, once.
pub const MAX_ENVIRONMENT_BYTES: u64 = 256 * 1024;

/// The values of the heap-ceiling variables set in an environment (the
/// first entry of each name, as `getenv` finds it; bytes that are not
/// UTF-8 replaced, as no size or option name holds them).
#[derive(Default, PartialEq, Eq)]
pub struct CeilingVariables(Vec<(&'static str, String)>);

impl CeilingVariables {
    /// From /proc/PID/environ, opened by the caller (relative to the
    /// process's own directory, so a reused pid is not read instead).
    pub fn read(environ: impl Read) -> Self {
        let mut bytes = Vec::new();
        if environ.take(MAX_ENVIRONMENT_BYTES).read_to_end(&mut bytes).is_err() {
            return Self::default();
        }
        Self::parse(&bytes)
    }

    /// `NAME=value` entries, each ended by a NUL byte as the kernel gives
    /// them; what follows the last NUL (an entry the bound cut) is dropped.
    fn parse(bytes: &[u8]) -> Self {
        let ended = bytes.iter().rposition(|&b| b == 0).map_or(&bytes[..0], |last| &bytes[..last]);
        let mut found: Vec<(&'static str, String)> = Vec::new();
        for entry in ended.split(|&b| b == 0) {
            for name in ENVIRONMENT_NAMES {
                let Some(value) = entry.strip_prefix(name.as_bytes()).and_then(|rest| rest.strip_prefix(b"=")) else {
                    continue;
                };
                if found.iter().all(|(seen, _)| *seen != name) {
                    found.push((name, String::from_utf8_lossy(value).into_owned()));
                }
            }
        }
        Self(found)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for CeilingVariables {
    /// The names only: `JAVA_TOOL_OPTIONS` often carries a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
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
        assert_eq!(found.get("GOMEMLIMIT"), Some("1GiB"), "the first of a name, as getenv finds it");
        assert_eq!(found.get("NODE_OPTIONS"), Some("--max-old-space-size=512"));
        assert_eq!(found.get("JAVA_TOOL_OPTIONS"), None, "a name without '=' sets nothing");
        assert_eq!(found.get("DB_PASSWORD"), None);
        assert_eq!(format!("{found:?}"), r#"["GOMEMLIMIT", "NODE_OPTIONS"]"#, "no value in Debug");
    }

    #[test]
    fn a_missing_unreadable_or_cut_environment_declares_nothing_made_up() {
        assert_eq!(CeilingVariables::parse(b""), CeilingVariables::default());
        let first_not_utf8 = CeilingVariables::parse(b"GOMEMLIMIT=\xff1GiB\0GOMEMLIMIT=1GiB\0");
        assert_eq!(first_not_utf8.get("GOMEMLIMIT"), Some("\u{fffd}1GiB"), "the first, as the runtime reads it");
        let latin1 = CeilingVariables::parse(b"JAVA_TOOL_OPTIONS=-Dcity=K\xf6ln -Xmx512m\0");
        assert_eq!(
            latin1.get("JAVA_TOOL_OPTIONS"),
            Some("-Dcity=K\u{fffd}ln -Xmx512m"),
            "the JVM applies it all the same"
        );
        let cut = CeilingVariables::parse(b"A=b\0GOMEMLIMIT=1024");
        assert_eq!(cut.get("GOMEMLIMIT"), None, "1024MiB cut to 1024 would be a made-up 1 KiB");
    }

    #[test]
    fn the_read_stops_at_its_bound() {
        let mut environ = vec![b'x'; MAX_ENVIRONMENT_BYTES as usize - 16];
        environ.extend_from_slice(b"\0GOMEMLIMIT=1024MiB\0");
        assert_eq!(CeilingVariables::read(&environ[..]).get("GOMEMLIMIT"), None, "cut by the bound");
        let far = [vec![b'x'; MAX_ENVIRONMENT_BYTES as usize], b"\0GOMEMLIMIT=1GiB\0".to_vec()].concat();
        assert_eq!(CeilingVariables::read(&far[..]).get("GOMEMLIMIT"), None, "past the bound");
        assert_eq!(CeilingVariables::read(&b"A=b\0GOMEMLIMIT=1GiB\0"[..]).get("GOMEMLIMIT"), Some("1GiB"));
    }
}
