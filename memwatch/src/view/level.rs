//! Levels and thresholds, as the engine defines them: the view shows the
//! engine's verdicts, so it uses the engine's types rather than copies.
pub use crate::engine::{Level, Thresholds};
