//! Recorded traces, for `memwatch replay`.
//!
//! - Format 2 (`v2`, JSON lines, written by `memwatch record` and `memwatch
//!   run --record`): every input of the pipeline, interval by interval: the
//!   processes, the cgroup limits and knobs read, the signal dispositions
//!   read, the operators' requests and the outcomes of what was applied.
//!   Replaying it runs the same pipeline and decides what the live run
//!   decided.
//! - Format 1 (`v1`, CSV `timestamp_s,key,rss_bytes,limit_bytes`): one
//!   reading per target per row; enough for levels and leaks, not for
//!   actions. Still read.
//!
//! Parsing is strict: every malformed line is an error naming its line, and
//! nothing is skipped, because a replay that quietly dropped rows would give
//! verdicts about a trace that never happened.
pub mod v1;
pub mod v2;

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TraceError {
    pub line: usize,
    pub message: String,
}

pub(crate) fn error(line: usize, message: impl Into<String>) -> TraceError {
    TraceError { line, message: message.into() }
}

/// A trace of either format.
#[derive(Debug)]
pub enum Trace {
    V1(v1::Trace),
    V2(v2::Recording),
}

/// Why a trace file could not be used. `main` maps it to exit status 65 (EX_DATAERR).
#[derive(Debug, thiserror::Error)]
pub enum TraceFileError {
    #[error("reading trace {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("trace {path}: {source}")]
    Invalid { path: String, source: TraceError },
}

/// Reads a trace of either format: format 2 starts with `{`, format 1 with
/// its CSV header.
pub fn read(path: &Path) -> Result<Trace, TraceFileError> {
    let bytes =
        std::fs::read(path).map_err(|source| TraceFileError::Read { path: path.display().to_string(), source })?;
    let invalid = |source| TraceFileError::Invalid { path: path.display().to_string(), source };
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        invalid(error(line, format!("not UTF-8 text (byte {} of the file)", e.valid_up_to())))
    })?;
    if text.starts_with('{') {
        v2::parse(text).map(Trace::V2).map_err(invalid)
    } else {
        v1::parse(text).map(Trace::V1).map_err(invalid)
    }
}
