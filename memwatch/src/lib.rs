//! memwatch: an eBPF-based memory monitor daemon.
//!
//! Data flows one way: probes (`ebpf`) and /proc (`procinfo`) feed collectors
//! (`collect`), which produce `sample::Snapshot`s; `delta` turns snapshots
//! into per-process changes; `targets` groups processes into the targets
//! policies (`config`) name, `monitor` feeds them to the pure detection
//! `engine`, whose events the `commands` log or print (`replay` runs the
//! same path over a recorded `trace`).
//! `act` holds the primitives that change the system (throttle, signal).
pub mod act;
pub mod actions;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod delta;
pub mod engine;
pub mod ebpf;
pub mod limits;
pub mod logging;
pub mod monitor;
pub mod procinfo;
pub mod report;
pub mod sample;
pub mod shutdown;
pub mod targets;
pub mod trace;
