//! What the engine tells its caller, and the JSON line each event becomes.
//!
//! Floats are rounded to fixed precision before printing and printed by
//! serde_json's shortest round-trip formatting, so output is byte-identical
//! run to run and does not show noise digits.
use serde::Serialize;

use super::{
    evaluation_line::EvaluationLine,
    leak::{Explanation, Trend},
    levels::Level,
};
use crate::model::target_key::TargetKey;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The reading's timestamp (seconds).
    pub t: f64,
    pub key: TargetKey,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    State {
        from: Level,
        to: Level,
        usage_bytes: u64,
        limit_bytes: u64,
        /// PSI `some avg10` (percent) where sustained pressure, not usage,
        /// set the new level.
        pressure: Option<f64>,
    },
    LeakDetected(LeakVerdict),
    LeakEnded {
        leaked_for_secs: f64,
    },
    /// The seed's rule started firing (only with `EngineOptions::seed_rule_events`).
    SeedRule {
        growth_bytes_per_check: f64,
    },
    /// What the leak detector saw at a closed minute (only with
    /// `EngineOptions::leak_evaluations`).
    LeakEvaluation(Box<Explanation>),
}

/// A leak as announced: how fast, how sure, how long until the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakVerdict {
    pub slope_bytes_per_s: f64,
    /// 1 - p of the Mann–Kendall test on the window that found it.
    pub confidence: f64,
    /// R² of the slope's line through the points it was measured on.
    pub fit: f64,
    /// `None` when usage is not rising towards the limit; 0 when at or past it.
    pub time_to_limit_s: Option<f64>,
    /// The history window the verdict rests on.
    pub window_s: f64,
}

impl LeakVerdict {
    pub(super) fn new(trend: Trend, usage_bytes: u64, limit_bytes: u64) -> Self {
        let time_to_limit_s = trend.time_to_limit_s(usage_bytes as f64, limit_bytes as f64);
        Self {
            slope_bytes_per_s: trend.slope_bytes_per_s,
            confidence: trend.confidence,
            fit: trend.fit,
            time_to_limit_s,
            window_s: trend.window_secs,
        }
    }
}

pub(super) fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    let rounded = (value * scale).round() / scale;
    // -0.0 prints as "-0.0"; nothing here is meaningfully negative zero.
    if rounded == 0.0 { 0.0 } else { rounded }
}

/// Whole-second timestamps (every trace `memwatch record` writes at whole
/// intervals, and the corpus) print as integers, as they were read; others
/// keep millisecond precision.
pub(super) fn timestamp(t: f64) -> serde_json::Number {
    let t = round_to(t, 3);
    if t.fract() == 0.0 && t.abs() < 9.0e15 {
        serde_json::Number::from(t as i64)
    } else {
        serde_json::Number::from_f64(t).unwrap_or_else(|| serde_json::Number::from(0))
    }
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line {
    State {
        from: Level,
        to: Level,
        usage_bytes: u64,
        limit_bytes: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        pressure_some_avg10: Option<f64>,
    },
    LeakDetected {
        #[serde(flatten)]
        trend: TrendLine,
        time_to_limit_s: Option<f64>,
        window_s: u64,
    },
    LeakEnded {
        leaked_for_s: f64,
    },
    SeedRule {
        growth_bytes_per_check: f64,
    },
    LeakEvaluation(EvaluationLine),
}

/// A trend's figures as every line prints them (`leak_detected`, and the
/// verdict and windows of `leak_evaluation`).
#[derive(Debug, Serialize)]
pub(super) struct TrendLine {
    slope_bytes_per_s: f64,
    confidence: f64,
    fit_r2: f64,
}

impl TrendLine {
    fn rounded(slope_bytes_per_s: f64, confidence: f64, fit: f64) -> Self {
        TrendLine {
            slope_bytes_per_s: round_to(slope_bytes_per_s, 3),
            confidence: round_to(confidence, 6),
            fit_r2: round_to(fit, 3),
        }
    }
}

impl From<Trend> for TrendLine {
    fn from(trend: Trend) -> Self {
        TrendLine::rounded(trend.slope_bytes_per_s, trend.confidence, trend.fit)
    }
}

#[derive(Serialize)]
struct Record<'a> {
    t: serde_json::Number,
    key: &'a TargetKey,
    #[serde(flatten)]
    line: Line,
}

impl Event {
    /// The event as one JSON object (no newline), in the shape `memwatch
    /// replay` documents.
    pub fn to_json_line(&self) -> String {
        let line = match &self.kind {
            EventKind::State { from, to, usage_bytes, limit_bytes, pressure } => Line::State {
                from: *from,
                to: *to,
                usage_bytes: *usage_bytes,
                limit_bytes: *limit_bytes,
                pressure_some_avg10: pressure.map(|p| round_to(p, 2)),
            },
            EventKind::LeakDetected(v) => Line::LeakDetected {
                trend: TrendLine::rounded(v.slope_bytes_per_s, v.confidence, v.fit),
                time_to_limit_s: v.time_to_limit_s.map(|s| round_to(s, 1)),
                window_s: v.window_s.round() as u64,
            },
            EventKind::LeakEnded { leaked_for_secs } => Line::LeakEnded { leaked_for_s: round_to(*leaked_for_secs, 1) },
            EventKind::SeedRule { growth_bytes_per_check } => {
                Line::SeedRule { growth_bytes_per_check: round_to(*growth_bytes_per_check, 0) }
            }
            EventKind::LeakEvaluation(explanation) => Line::LeakEvaluation(EvaluationLine::new(explanation, self.t)),
        };
        serde_json::to_string(&Record { t: timestamp(self.t), key: &self.key, line })
            .expect("numbers and strings always serialise")
    }
}
