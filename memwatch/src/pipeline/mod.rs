//! The one pure path from a reading to what memwatch decides, shared by the
//! live daemon and `memwatch replay` so their verdicts and decisions agree.
pub mod monitor;
