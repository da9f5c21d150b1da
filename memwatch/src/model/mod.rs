//! What the sources' readings mean: per-process samples (`sample`), the
//! targets policies group them into (`targets`), and per-process change
//! over a window (`delta`). Pure data and pure functions.
pub mod delta;
pub mod sample;
pub mod targets;
