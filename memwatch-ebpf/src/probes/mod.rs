//! The kernel programs, one module per kind of event, sharing the maps and
//! the per-process accounting helpers in `state`.
mod exec;
mod exit;
mod state;
mod syscall_fexit;
mod syscall_tracepoints;
mod syscalls;
