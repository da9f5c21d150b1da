//! The JSON of a `leak_evaluation` line (`memwatch replay --explain`): the
//! verdict, its confirmation, and each window's outcome with the test that
//! vetoed it and the figure it failed on. Rounded like the other lines, so
//! the output is byte-identical run to run.
use serde::Serialize;

use super::{
    event::{TrendLine, round_to, timestamp},
    leak::{Explanation, Tested, Trend, Verdict, WINDOW_MINUTES},
    window::{Outcome, Veto},
};

#[derive(Debug, Serialize)]
pub(super) struct EvaluationLine {
    verdict: VerdictLine,
    #[serde(skip_serializing_if = "Option::is_none")]
    held_for_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirm_after_s: Option<f64>,
    reported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    clear_for_s: Option<f64>,
    windows: Vec<WindowLine>,
}

impl EvaluationLine {
    /// The line of the evaluation at `t`.
    pub(super) fn new(explanation: &Explanation, t: f64) -> Self {
        let seconds = |s: Option<f64>| s.map(|s| round_to(s, 1));
        EvaluationLine {
            verdict: explanation.verdict.into(),
            held_for_s: seconds(explanation.held_for_secs),
            confirm_after_s: seconds(explanation.confirm_after_secs),
            reported: explanation.reported,
            clear_for_s: seconds(explanation.clear_for_secs),
            windows: WINDOW_MINUTES
                .iter()
                .zip(explanation.windows)
                .filter_map(|(&minutes, tested)| Some(WindowLine::new(minutes, tested?, t)))
                .collect(),
        }
    }
}

/// A verdict's trend, and the window (or the troughs' span) it rests on.
#[derive(Debug, Serialize)]
struct VerdictTrend {
    window_s: u64,
    #[serde(flatten)]
    trend: TrendLine,
}

impl From<Trend> for VerdictTrend {
    fn from(trend: Trend) -> Self {
        VerdictTrend { window_s: trend.window_secs.round() as u64, trend: trend.into() }
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum VerdictLine {
    None,
    Leak(VerdictTrend),
    RisingTroughs(VerdictTrend),
    LikeEarlierCycles(VerdictTrend),
    HeapSizing(VerdictTrend),
}

impl From<Verdict> for VerdictLine {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::None => VerdictLine::None,
            Verdict::Leak(trend) => VerdictLine::Leak(trend.into()),
            Verdict::RisingTroughs(trend) => VerdictLine::RisingTroughs(trend.into()),
            Verdict::LikeEarlierCycles(trend) => VerdictLine::LikeEarlierCycles(trend.into()),
            Verdict::HeapSizing(trend) => VerdictLine::HeapSizing(trend.into()),
        }
    }
}

#[derive(Debug, Serialize)]
struct WindowLine {
    window_s: u64,
    /// When the outcome was tested, where that was before this minute (a
    /// long window is re-tested only when it gains a point).
    #[serde(skip_serializing_if = "Option::is_none")]
    tested_t: Option<serde_json::Number>,
    #[serde(flatten)]
    outcome: OutcomeLine,
}

impl WindowLine {
    fn new(window_minutes: usize, tested: Tested, t: f64) -> Self {
        WindowLine {
            window_s: window_minutes as u64 * 60,
            tested_t: (tested.at < t).then(|| timestamp(tested.at)),
            outcome: tested.outcome.into(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum OutcomeLine {
    Leak(TrendLine),
    LevellingOff { late_to_early: f64, bend_z: Option<f64>, reaccelerating: bool },
    NoLeak(Veto),
}

impl From<Outcome> for OutcomeLine {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Leak(trend) => OutcomeLine::Leak(trend.into()),
            Outcome::LevellingOff { reaccelerating, late_to_early, bend_z } => OutcomeLine::LevellingOff {
                late_to_early: round_to(late_to_early, 3),
                bend_z: bend_z.map(|z| round_to(z, 2)),
                reaccelerating,
            },
            Outcome::NoLeak(veto) => OutcomeLine::NoLeak(rounded(veto)),
        }
    }
}

/// The veto with its figure rounded.
fn rounded(veto: Veto) -> Veto {
    match veto {
        Veto::TooFewPoints | Veto::NotRising => veto,
        Veto::BelowMinRate { slope_bytes_per_s } => {
            Veto::BelowMinRate { slope_bytes_per_s: round_to(slope_bytes_per_s, 3) }
        }
        Veto::NotSignificant { p_value } => Veto::NotSignificant { p_value: round_to(p_value, 6) },
        Veto::StepFitsBetter { line_to_step } => Veto::StepFitsBetter { line_to_step: round_to(line_to_step, 3) },
        Veto::LargeFall { fall_to_rise } => Veto::LargeFall { fall_to_rise: round_to(fall_to_rise, 3) },
    }
}

#[cfg(test)]
#[path = "evaluation_line_tests.rs"]
mod tests;
