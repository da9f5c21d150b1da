//! Loading memwatch's kernel programs and reading what they aggregate.
pub mod btf;
pub mod format;
mod loader;
pub mod privileges;
pub mod tracefs;

pub use loader::{ProbeError, ProbeOptions, Probes, ProgramStats};
