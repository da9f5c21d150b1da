//! memwatch: an eBPF-based memory monitor daemon.
//!
//! Data flows one way: probes (`ebpf`) and /proc (`procinfo`) feed collectors
//! (`collect`), which produce `sample::Snapshot`s; `delta` turns snapshots
//! into per-process changes; `commands` drive it all and `report` prints it.
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod delta;
pub mod engine;
pub mod ebpf;
pub mod logging;
pub mod procinfo;
pub mod report;
pub mod sample;
pub mod shutdown;
