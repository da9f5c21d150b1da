//! What the sources' readings mean: per-process samples (`sample`), the
//! targets policies group them into (`targets`), and per-process change
//! over a window (`delta`). Pure data and pure functions.
pub mod cgroup;
pub mod container;
pub mod delta;
pub mod heap_ceiling;
pub mod hotspot;
pub mod incident;
pub mod option_words;
pub mod runtime;
pub mod sample;
pub mod signals;
pub mod target_key;
pub mod targets;
pub mod untouchable;
pub mod working_set;
