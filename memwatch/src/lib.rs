//! memwatch: an eBPF-based memory monitor daemon.
//!
//! Data flows one way (docs/ARCHITECTURE.md draws it):
//! `sources` (probes, /proc, cgroupfs, meminfo) -> `model` (samples, targets)
//! -> `engine` (levels, leaks, the planner's decisions; pure) -> `actions`
//! (the executor applies decisions through `actions::sys`) -> `view`,
//! `exporters`, `api`. `pipeline` is the one pure path from a reading to
//! decisions, shared by the live `daemon` and by `memwatch replay`.
pub mod actions;
pub mod api;
pub mod bytes;
pub mod cache;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod exporters;
pub mod fuzzing;
pub mod logging;
pub mod model;
pub mod pipeline;
pub mod shutdown;
pub mod sources;
pub mod trace;
pub mod view;
