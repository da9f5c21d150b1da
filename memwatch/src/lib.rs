//! memwatch: an eBPF-based memory monitor daemon.
//!
//! Data flows one way: probes (`ebpf`) and /proc (`procinfo`) feed collectors
//! (`collect`), which produce `sample::Snapshot`s; `delta` turns snapshots
//! into per-process changes; `targets` groups processes into the targets
//! policies (`config`) name, `monitor` feeds them to the pure detection
//! `engine`, whose events the `commands` log or print (`replay` runs the
//! same path over a recorded `trace`).
//! `act` holds the primitives that change the system (throttle, signal).
//!
//! Observability and control (issue 5): each interval the daemon builds a
//! `status::StatusView`; `metrics` turns it into a frame that the OTLP and
//! Prometheus exporters read, `api` serves it (and takes control requests
//! back to the daemon loop), and `show` draws it for `memwatch status`/`top`.
//! The daemon's own caches (`cache`) are bounded and counted.
pub mod act;
pub mod actions;
pub mod api;
pub mod cache;
pub mod cli;
pub mod client;
pub mod collect;
pub mod commands;
pub mod config;
pub mod delta;
pub mod ebpf;
pub mod engine;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod observe_config;
pub mod procinfo;
pub mod report;
pub mod sample;
pub mod show;
pub mod shutdown;
pub mod status;
pub mod targets;
pub mod trace;
