//! What a target is called: the one place its key is built and parsed.
//!
//! Keys say what the target is, so `memwatch replay` can match policies on
//! a recorded trace: `cgroup:<path>` for a cgroup (or unit) watched whole,
//! `process:<pid>:<comm>` for a process watched alone. Hand-made traces may
//! use any other name; it is kept as it is and matches only policies with
//! no criteria.
use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

const CGROUP_PREFIX: &str = "cgroup:";
const PROCESS_PREFIX: &str = "process:";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum TargetKey {
    /// A cgroup's processes together, by its path ("/system.slice/api.service").
    Cgroup(String),
    /// One process, by pid and the name it had when first seen.
    Process { pid: u32, comm: String },
    /// Any other name (hand-made traces).
    Other(String),
}

/// The kind of a target, as the view and the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Cgroup,
    Process,
    Other,
}

impl TargetKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetKind::Cgroup => "cgroup",
            TargetKind::Process => "process",
            TargetKind::Other => "target",
        }
    }
}

impl TargetKey {
    pub fn cgroup(path: &str) -> Self {
        Self::Cgroup(path.to_owned())
    }

    pub fn process(pid: u32, comm: &str) -> Self {
        Self::Process { pid, comm: comm.to_owned() }
    }

    pub fn kind(&self) -> TargetKind {
        match self {
            TargetKey::Cgroup(_) => TargetKind::Cgroup,
            TargetKey::Process { .. } => TargetKind::Process,
            TargetKey::Other(_) => TargetKind::Other,
        }
    }

    /// The cgroup path of a cgroup target.
    pub fn cgroup_path(&self) -> Option<&str> {
        match self {
            TargetKey::Cgroup(path) => Some(path),
            _ => None,
        }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetKey::Cgroup(path) => write!(f, "{CGROUP_PREFIX}{path}"),
            TargetKey::Process { pid, comm } => write!(f, "{PROCESS_PREFIX}{pid}:{comm}"),
            TargetKey::Other(name) => f.write_str(name),
        }
    }
}

impl From<&str> for TargetKey {
    /// Every string is some key: what is not a well-formed cgroup or process
    /// key is kept whole as `Other`, so parsing and printing give back the
    /// same text.
    fn from(text: &str) -> Self {
        if let Some(path) = text.strip_prefix(CGROUP_PREFIX) {
            return Self::Cgroup(path.to_owned());
        }
        if let Some(rest) = text.strip_prefix(PROCESS_PREFIX)
            && let Some((pid, comm)) = rest.split_once(':')
            && let Ok(pid) = pid.parse::<u32>()
            && pid.to_string() == pid_text(rest)
        {
            return Self::Process { pid, comm: comm.to_owned() };
        }
        Self::Other(text.to_owned())
    }
}

/// The pid part of "pid:comm", so that "007:x" (which would print back as
/// "7:x") stays `Other`.
fn pid_text(rest: &str) -> &str {
    rest.split_once(':').map_or(rest, |(pid, _)| pid)
}

impl From<String> for TargetKey {
    fn from(text: String) -> Self {
        Self::from(text.as_str())
    }
}

impl From<TargetKey> for String {
    fn from(key: TargetKey) -> String {
        key.to_string()
    }
}

impl FromStr for TargetKey {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_and_parse_back_to_the_same_text() {
        for text in [
            "cgroup:/system.slice/api.service",
            "process:11:java",
            "process:12:a:b",
            "lin00",
            "process:007:x",
            "process:x",
        ] {
            assert_eq!(TargetKey::from(text).to_string(), text);
        }
        assert_eq!(TargetKey::from("process:11:java"), TargetKey::process(11, "java"));
        assert_eq!(TargetKey::from("cgroup:/a").cgroup_path(), Some("/a"));
        assert_eq!(TargetKey::from("process:x").kind(), TargetKind::Other);
        assert_eq!(serde_json::to_string(&TargetKey::process(1, "sh")).unwrap(), "\"process:1:sh\"");
    }
}
