//! Low-level action primitives: the only code in memwatch that changes the
//! system. Each one is safe on its own (it refuses what must never be touched
//! and can be undone), so the layer that decides *when* to act need not
//! re-check any of it.
//!
//! - `cgroup`: write a cgroup's throttle knob (v2 `memory.high`, v1
//!   `memory.soft_limit_in_bytes` as the degraded path).
//! - `systemd_unit`: the same knob for a cgroup systemd owns as a unit,
//!   set through systemd (`MemoryHigh=` over D-Bus).
//! - `throttle_state`: remember each cgroup's original limit on disk before
//!   lowering it, and put it back (also after a crash).
//! - `signal`: signal a process by identity through a pidfd.
//! - `reclaim`, `http_post`, `exec`: the cleanup steps that may block
//!   (`memory.reclaim`, a service's endpoint, a command), run off the loop.
pub mod cgroup;
mod error;
pub mod exec;
pub mod http_post;
pub mod reclaim;
pub mod signal;
pub mod systemd_unit;
pub mod throttle_state;

pub use crate::model::untouchable::Refusal;
pub use error::ActError;
