//! The kernel programs, one module per kind of tracepoint, sharing the maps
//! and the per-process accounting helpers in `state`.
mod exec;
mod exit;
mod faults;
mod rss;
mod state;
mod syscalls;
