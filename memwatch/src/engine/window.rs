//! One window of the lower envelope and the five tests that say whether it
//! shows a leak (`engine::leak` combines the windows):
//! 1. the Theil–Sen slope is at least the policy's minimum rate;
//! 2. Mann–Kendall finds the rise significant (p below [`MAX_P_VALUE`]);
//! 3. the line fits clearly better than a single step (a kept allocation is
//!    one step; a leak, even a stepwise one, is many);
//! 4. the curve does not level off: its last third grows not much slower
//!    than its first third or the whole window, and it does not bend down
//!    beyond noise (a cache warming up levels off; a leak does not);
//! 5. nothing in the window fell by a large part of what the trend claims to
//!    have gained (a batch job that frees what it took is not a leak).
use super::{
    history::Point,
    leak::{LeakSettings, Trend},
    ring::Ring,
    trend,
};

/// Each window is reduced to at most this many points (by taking each
/// group's minimum, like the minute points themselves), so every window costs
/// the same: at most 276 pairwise slopes, and a 240-minute window is no dearer
/// than a 30-minute one. Mann–Kendall's normal approximation is already good
/// from 10 points; 24 keeps replay above a million samples per second with
/// the same scores as 30 on the corpus and held-out corpora.
pub const MAX_WINDOW_POINTS: usize = 24;
/// The lower envelope's reach: each minute's value is the lowest reading of
/// the last three minutes. A minute's minimum already drops a sawtooth faster
/// than a minute; three reach the troughs of collectors cycling every few
/// minutes, at the cost of seeing any rise three minutes late.
pub const ENVELOPE_MINUTES: usize = 3;
/// Below this many points a window is not tested. A new target's first
/// 10-minute window has 8 (its first two minutes have no full envelope):
/// 8 let a JVM's heap growing to its `-Xmx` through (real corpus, tuning
/// half), 10 cost a minute of delay on every leak from the start.
pub const MIN_WINDOW_POINTS: usize = 9;
/// One-sided Mann–Kendall significance. Six windows tested every minute make
/// many looks at the same data; 0.1% per look keeps false alarms on noise
/// rare even before the confirmation period.
pub const MAX_P_VALUE: f64 = 0.001;
/// The line's squared error must be below this share of the best step's:
/// "clearly better", so a step with a little slope on either side is not
/// mistaken for a line.
pub const LINE_VS_STEP: f64 = 0.7;
/// A late-third slope below this share of the early-third slope (or of the
/// whole window's) is levelling off. An exponential warm-up with time
/// constant tau has a late/early ratio of exp(-d/tau) for thirds d minutes
/// apart: 0.7 rejects warm-ups up to tau ~ 14 minutes on the 10-minute window
/// and ~ 56 minutes on the 30-minute one, while a linear leak sits at 1.
pub const MIN_LATE_TO_EARLY: f64 = 0.7;
/// A window whose curve bends down by more than this many standard errors
/// is levelling off, however steady its thirds look: a warm-up with a time
/// constant of an hour slows by 15% across a 10-minute window,
/// too little for the thirds' slopes, but at hundreds of MiB its bend
/// stands far above the noise. A straight leak's bend is noise, within a
/// few standard errors of 0; an accelerating one bends up.
pub const MAX_CURVATURE_Z: f64 = 3.0;
/// A window levelling off whose late third rises more than this many times
/// as fast as its first two thirds predict (the middle third's pace, slowed
/// again by as much as it slowed from the early third) has stopped slowing
/// down: a warm-up that ended and a leak that followed it, not one curve
/// flattening out. Its shorter windows keep their "leak". A warm-up slows
/// by about the same factor from third to third.
pub const REACCELERATION: f64 = 1.5;
/// A fall inside the window larger than this share of the trend's rise over
/// the window means memory comes back: a cycle, not a leak.
pub const MAX_DRAWDOWN_TO_RISE: f64 = 0.5;

/// The points after `start` on the lower envelope (each minute's value is
/// the lowest of it and the [`ENVELOPE_MINUTES`] - 1 before it, so the
/// history's first minutes, which lack those, are left out), grouped
/// down to at most MAX_WINDOW_POINTS by keeping each group's lowest point,
/// into `window` (`envelope` is a working buffer). Groups are counted from the newest point so the
/// latest group is always complete.
pub fn fill(minutes: &Ring<Point>, start: f64, window: &mut Vec<Point>, envelope: &mut Vec<Point>) {
    envelope.clear();
    let count = minutes.iter().rev().take_while(|p| p.t > start).count();
    // The oldest minutes have fewer before them than the envelope needs:
    // theirs would be the history's first value, a flat start that bends
    // any curve up (a warm-up would pass for a steady or accelerating leak).
    let first = (minutes.len() - count).max(ENVELOPE_MINUTES - 1);
    let at = |i: usize| *minutes.get(i).expect("index within the ring");
    for i in (first..minutes.len()).rev() {
        let from = i.saturating_sub(ENVELOPE_MINUTES - 1);
        let low = (from..=i).map(|j| at(j).y).fold(f64::INFINITY, f64::min);
        envelope.push(Point { t: at(i).t, y: low });
    }
    let group = envelope.len().div_ceil(MAX_WINDOW_POINTS).max(1);
    window.clear();
    for chunk in envelope.chunks(group) {
        let lowest = chunk.iter().copied().min_by(|a, b| a.y.total_cmp(&b.y)).expect("chunks are non-empty");
        window.push(lowest);
    }
    window.reverse();
    // Times relative to the window's start keep the products in the
    // regressions small and exact enough.
    if let Some(t0) = window.first().map(|p| p.t) {
        for p in window.iter_mut() {
            p.t -= t0;
        }
    }
}

/// What one window says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Leak(Trend),
    /// Growing, but the last third much slower than before, or bending
    /// down: a curve levelling off; `reaccelerating` when it stopped
    /// slowing down.
    LevellingOff {
        reaccelerating: bool,
        /// The late third's slope over the larger of the early third's and
        /// the whole window's (levelling off below [`MIN_LATE_TO_EARLY`]).
        late_to_early: f64,
        /// The bend in standard errors (levelling off below
        /// -[`MAX_CURVATURE_Z`]); `None` where it cannot be measured.
        bend_z: Option<f64>,
    },
    NoLeak(Veto),
}

/// The test a window that is not a leak failed, with the figure it failed
/// on (serialised as `replay --explain` prints it).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "veto", rename_all = "snake_case")]
pub enum Veto {
    /// Fewer than [`MIN_WINDOW_POINTS`] points.
    TooFewPoints,
    /// The slope is not positive.
    NotRising,
    /// Rising slower than the policy's minimum rate.
    BelowMinRate { slope_bytes_per_s: f64 },
    /// Mann–Kendall's p-value is above [`MAX_P_VALUE`].
    NotSignificant { p_value: f64 },
    /// A single step fits about as well as the line: the line's squared
    /// error over the step's, at least [`LINE_VS_STEP`].
    StepFitsBetter { line_to_step: f64 },
    /// Something fell by more than [`MAX_DRAWDOWN_TO_RISE`] of the trend's
    /// rise: the fall over the rise.
    LargeFall { fall_to_rise: f64 },
}

/// The five conditions of the module doc, on one window.
pub fn test(points: &[Point], window_secs: f64, settings: &LeakSettings, scratch: &mut Vec<f64>) -> Outcome {
    let n = points.len();
    if n < MIN_WINDOW_POINTS {
        return Outcome::NoLeak(Veto::TooFewPoints);
    }
    let Some(slope) = trend::theil_sen(points, scratch).filter(|slope| *slope > 0.0) else {
        return Outcome::NoLeak(Veto::NotRising);
    };
    // Thirds, but never fewer than 5 points: a slope through 3 points is noise.
    let part = (n / 3).max(5);
    let (Some(early), Some(late)) =
        (trend::theil_sen(&points[..part], scratch), trend::theil_sen(&points[n - part..], scratch))
    else {
        return Outcome::NoLeak(Veto::TooFewPoints);
    };
    let bend_z = trend::curvature_z(points);
    let bends_down = bend_z.is_some_and(|z| z < -MAX_CURVATURE_Z);
    if late < MIN_LATE_TO_EARLY * early.max(slope) || bends_down {
        let middle = trend::theil_sen(&points[n / 3..n - n / 3], scratch).unwrap_or(0.0).max(0.0);
        // A curve slowing down slows by about the same factor from each
        // third to the next; its late third is predicted by the other two.
        let slowing = if early > 0.0 { (middle / early).min(1.0) } else { 1.0 };
        let predicted_late = middle * slowing;
        // By a rate worth reporting, too: a flat middle predicts nothing,
        // and noise alone would then pass for growth again.
        let reaccelerating =
            late > REACCELERATION * predicted_late && late - predicted_late >= settings.min_rate_bytes_per_s;
        return Outcome::LevellingOff { reaccelerating, late_to_early: late / early.max(slope), bend_z };
    }
    if slope < settings.min_rate_bytes_per_s {
        return Outcome::NoLeak(Veto::BelowMinRate { slope_bytes_per_s: slope });
    }
    let mk = trend::mann_kendall(points, scratch);
    if mk.p_value > MAX_P_VALUE {
        return Outcome::NoLeak(Veto::NotSignificant { p_value: mk.p_value });
    }
    let intercept = trend::intercept(points, slope, scratch);
    let line = trend::line_sse(points, intercept, slope);
    let Some(step) = trend::best_step_sse(points, 2) else {
        return Outcome::NoLeak(Veto::TooFewPoints);
    };
    if line >= LINE_VS_STEP * step {
        return Outcome::NoLeak(Veto::StepFitsBetter { line_to_step: line / step });
    }
    let rise = slope * (points[n - 1].t - points[0].t);
    let fall = max_drawdown(points);
    if fall > MAX_DRAWDOWN_TO_RISE * rise {
        return Outcome::NoLeak(Veto::LargeFall { fall_to_rise: fall / rise });
    }
    let fit = trend::r_squared(points, line);
    Outcome::Leak(Trend { slope_bytes_per_s: slope, confidence: 1.0 - mk.p_value, fit, window_secs })
}

/// The largest fall from an earlier high to a later low.
fn max_drawdown(points: &[Point]) -> f64 {
    let mut high = f64::NEG_INFINITY;
    let mut worst: f64 = 0.0;
    for p in points {
        high = high.max(p.y);
        worst = worst.max(high - p.y);
    }
    worst
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
