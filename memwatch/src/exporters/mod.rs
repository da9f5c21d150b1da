//! Metrics: one internal model (`frame`) fed per interval from the view, and
//! two exporters reading it: OTLP/gRPC (`otlp`) and Prometheus text (`prometheus`).
pub mod catalog;
pub mod frame;
pub mod otlp;
pub mod prometheus;

pub use frame::{Frame, FrameCell, frame_from};

#[cfg(test)]
mod otlp_tests;
