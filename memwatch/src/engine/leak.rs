//! The leak detector: trend tests over several windows of the minute history,
//! then a confirmation period before a verdict is announced.
//!
//! Every closed minute, windows of the last 10, 20, 30, 60, 120 and 240
//! minutes (those the history covers) of the lower envelope are each reduced
//! to at most 24 points and tested. A window says "leak" when all of these hold:
//! 1. the Theil–Sen slope is at least the policy's minimum rate;
//! 2. Mann–Kendall finds the rise significant (p below [`MAX_P_VALUE`]);
//! 3. the line fits clearly better than a single step (a kept allocation is
//!    one step; a leak, even a stepwise one, is many);
//! 4. the curve does not level off: its last third grows not much slower
//!    than its first third or the whole window, and it does not bend down
//!    beyond noise (a cache warming up levels off; a leak does not);
//! 5. nothing in the window fell by a large part of what the trend claims to
//!    have gained (a batch job that frees what it took is not a leak).
//!
//! A target whose usage keeps returning to a baseline is judged on its
//! cycles instead (`cycles`): a rise like the cycles before it is not a
//! leak, troughs rising cycle after cycle are, without further confirmation.
//!
//! Short windows catch fast leaks early; long windows give slow leaks the
//! time they need to rise above noise. Several windows mean several tests,
//! so the significance level is strict and the verdict must hold for the
//! whole confirmation window before it is announced; it is withdrawn
//! (`leak_ended`) only after failing for as long. The constants were chosen
//! on the synthetic corpus and checked on held-out ones (docs/detection.md).
use super::{
    cycles,
    history::{MINUTE_SECS, Point},
    ring::Ring,
    trend,
};

/// Window lengths tested, in minutes.
pub const WINDOW_MINUTES: [usize; 6] = [10, 20, 30, 60, 120, 240];
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

/// Per-policy leak settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakSettings {
    pub enabled: bool,
    /// Slopes below this are not worth reporting.
    pub min_rate_bytes_per_s: f64,
    /// How long a leak must be seen without interruption before it is
    /// reported, and absent before it is declared over.
    pub confirm_secs: f64,
}

impl LeakSettings {
    /// 4 KiB/s is ~14 MiB/h: slower than that, a process needs days to
    /// matter. Three minutes of confirmation (four evaluations in a row) is
    /// what the delay budget (15 minutes median) leaves after the shortest
    /// window (10 minutes) has filled.
    pub const DEFAULT: LeakSettings = LeakSettings { enabled: true, min_rate_bytes_per_s: 4096.0, confirm_secs: 180.0 };
}

/// Resident memory of a runtime includes more than its heap (a JVM's
/// metaspace, code cache and thread stacks; V8's code and new space): a
/// runtime counts as at its declared heap ceiling from the ceiling up to
/// this share above it, plus [`NON_HEAP_MIN_BYTES`]. Growth beyond is its
/// own memory growing, which is judged as any other (real corpus: JVMs
/// whose heap reached `-Xmx` held 9-21% above it).
pub const NON_HEAP_SHARE: f64 = 0.25;
pub const NON_HEAP_MIN_BYTES: f64 = 64.0 * 1024.0 * 1024.0;

/// How far a target may grow: its limit, and the heap ceiling its runtime
/// declared, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub limit_bytes: f64,
    pub heap_ceiling: Option<f64>,
}

impl Bounds {
    /// A limit and no heap ceiling.
    pub const fn limit(limit_bytes: f64) -> Self {
        Self { limit_bytes, heap_ceiling: None }
    }

    /// Whether `usage_bytes` is a runtime at its declared heap ceiling: its
    /// heap has grown as far as it may, so the growth that brought it there
    /// was the heap sizing itself, not a leak.
    pub fn at_heap_ceiling(&self, usage_bytes: f64) -> bool {
        self.heap_ceiling
            .is_some_and(|c| usage_bytes >= c && usage_bytes <= c * (1.0 + NON_HEAP_SHARE) + NON_HEAP_MIN_BYTES)
    }
}

/// A verdict never waits longer than this share of the projected time to
/// limit: a leak that would reach its limit before its confirmation ends is
/// announced while there is still time to act.
pub const CONFIRM_SHARE_OF_TIME_TO_LIMIT: f64 = 0.25;
/// The shortest confirmation: two evaluations in a row, so one minute's
/// outlier is never announced alone.
pub const URGENT_CONFIRM_SECS: f64 = 60.0;

/// How long a window's verdict on `trend` must hold before it is announced:
/// the policy's confirmation, or a quarter of the projected time to limit if
/// that is shorter, but never under a minute.
pub fn confirmation_secs(confirm_secs: f64, trend: &Trend, usage_bytes: f64, limit_bytes: f64) -> f64 {
    let Some(time_to_limit) = trend.time_to_limit_s(usage_bytes, limit_bytes) else { return confirm_secs };
    (CONFIRM_SHARE_OF_TIME_TO_LIMIT * time_to_limit).clamp(URGENT_CONFIRM_SECS.min(confirm_secs), confirm_secs)
}

/// What a window that says "leak" found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    pub slope_bytes_per_s: f64,
    /// 1 - the Mann–Kendall p-value.
    pub confidence: f64,
    pub window_secs: f64,
}

impl Trend {
    /// Seconds until `usage_bytes` reaches `limit_bytes` at this slope: `None`
    /// when usage is not rising (or the slope is not a number), 0 when it
    /// is already at or past the limit.
    pub fn time_to_limit_s(&self, usage_bytes: f64, limit_bytes: f64) -> Option<f64> {
        let slope = self.slope_bytes_per_s;
        (slope > 0.0).then(|| ((limit_bytes - usage_bytes) / slope).max(0.0))
    }
}

/// Announcements of the detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LeakChange {
    Started(Trend),
    Ended { leaked_for_secs: f64 },
}

#[derive(Debug, Clone, Default)]
pub struct LeakDetector {
    /// When the current unbroken run of "leak" evaluations began.
    suspected_since: Option<f64>,
    /// When the reported leak started being announced, and when the current
    /// run of "no leak" evaluations began.
    reported_at: Option<f64>,
    clear_since: Option<f64>,
    /// Each window's last outcome (see `strongest_trend`).
    outcomes: [Option<WindowOutcome>; WINDOW_MINUTES.len()],
}

/// Working buffers of an evaluation: one set for the whole engine, not one
/// per target, so a target costs only its history.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    window: Vec<Point>,
    envelope: Vec<Point>,
    values: Vec<f64>,
    troughs: Vec<Point>,
}

impl LeakDetector {
    pub fn is_leaking(&self) -> bool {
        self.reported_at.is_some()
    }

    /// Re-tests the trend after a minute closed at `now`, for a target
    /// with this limit (and this heap ceiling, where its runtime declared one).
    pub fn evaluate(
        &mut self,
        minutes: &Ring<Point>,
        now: f64,
        bounds: Bounds,
        settings: &LeakSettings,
        scratch: &mut Scratch,
    ) -> Option<LeakChange> {
        let limit_bytes = bounds.limit_bytes;
        let (trend, confirmed) =
            if settings.enabled { self.judge(minutes, bounds, settings, scratch) } else { (None, false) };
        match (trend, self.reported_at) {
            (Some(trend), None) => {
                let since = *self.suspected_since.get_or_insert(now);
                let usage = minutes.newest().map_or(0.0, |p| p.y);
                let needed = confirmation_secs(settings.confirm_secs, &trend, usage, limit_bytes);
                if confirmed || now - since >= needed {
                    self.reported_at = Some(now);
                    self.clear_since = None;
                    return Some(LeakChange::Started(trend));
                }
                None
            }
            (Some(_), Some(_)) => {
                self.clear_since = None;
                None
            }
            (None, reported) => {
                self.suspected_since = None;
                let reported = reported?;
                let since = *self.clear_since.get_or_insert(now);
                if now - since >= settings.confirm_secs || !settings.enabled {
                    self.reported_at = None;
                    self.clear_since = None;
                    return Some(LeakChange::Ended { leaked_for_secs: now - reported });
                }
                None
            }
        }
    }

    /// This minute's verdict, and whether it is already confirmed: the
    /// troughs of several cycles rising in a row are, a window is not.
    fn judge(
        &mut self,
        minutes: &Ring<Point>,
        bounds: Bounds,
        settings: &LeakSettings,
        scratch: &mut Scratch,
    ) -> (Option<Trend>, bool) {
        // Tested every minute even when the cycles decide, so each window's
        // cached outcome stays current.
        let windows = self.strongest_trend(minutes, settings, scratch);
        let periodicity = cycles::read(minutes, bounds.limit_bytes, &mut scratch.troughs, &mut scratch.values);
        // Rising troughs start a leak; once it is reported, troughs still
        // climbing at the minimum rate keep it, so one cycle that kept a
        // little less does not end it.
        if let Some(troughs) = periodicity.troughs
            && troughs.slope >= settings.min_rate_bytes_per_s
            && (troughs.rising || self.reported_at.is_some())
        {
            let confidence = 1.0 - trend::mann_kendall(&scratch.troughs, &mut scratch.values).p_value;
            return (
                Some(Trend { slope_bytes_per_s: troughs.slope, confidence, window_secs: troughs.span_secs }),
                true,
            );
        }
        // Growth that brought a runtime to its heap ceiling was its heap
        // sizing itself; past its allowance, it is judged again.
        let at_ceiling = minutes.newest().is_some_and(|p| bounds.at_heap_ceiling(p.y));
        (windows.filter(|_| !periodicity.explains_current_rise && !at_ceiling), false)
    }

    /// The longest window that says "leak": the most evidence behind the
    /// slope. A window's "leak" is overruled when a longer window sees the
    /// growth levelling off: a warm-up looks straight over ten minutes but
    /// not over thirty, and the longer view is the truer one; unless the
    /// longer window's growth sped up again at its end (a leak that
    /// followed a warm-up).
    fn strongest_trend(
        &mut self,
        minutes: &Ring<Point>,
        settings: &LeakSettings,
        scratch: &mut Scratch,
    ) -> Option<Trend> {
        let newest = minutes.newest()?.t;
        let oldest = minutes.iter().next()?.t;
        let minute = (newest / MINUTE_SECS).floor() as i64;
        let mut verdict: Option<Trend> = None;
        for (index, window_minutes) in WINDOW_MINUTES.into_iter().enumerate() {
            let window_secs = window_minutes as f64 * MINUTE_SECS;
            // Only windows the history covers: a 60-minute test on 20 minutes
            // of data is the 20-minute test again, counted twice.
            if newest - oldest < window_secs - 1.5 * MINUTE_SECS {
                self.outcomes[index] = None;
                break;
            }
            // A window grouped k minutes to a point gains one new point every
            // k minutes; re-testing it in between costs as much and changes
            // little, so its last outcome stands until then.
            let group = window_minutes.div_ceil(MAX_WINDOW_POINTS) as i64;
            let outcome = match self.outcomes[index] {
                Some(outcome) if minute.rem_euclid(group) != 0 => outcome,
                _ => {
                    fill_window(minutes, newest - window_secs, scratch);
                    test_window(&scratch.window, window_secs, settings, &mut scratch.values)
                }
            };
            self.outcomes[index] = Some(outcome);
            match outcome {
                WindowOutcome::Leak(trend) => verdict = Some(trend),
                // Levelling off over a longer view overrules every shorter
                // window inside it, unless the growth sped up again at its end.
                WindowOutcome::LevellingOff { reaccelerating: false } => verdict = None,
                WindowOutcome::LevellingOff { reaccelerating: true } | WindowOutcome::NoLeak => {}
            }
        }
        verdict
    }
}

/// The points after `start` on the lower envelope (each minute's value is
/// the lowest of it and the [`ENVELOPE_MINUTES`] - 1 before it, so the
/// history's first minutes, which lack those, are left out), grouped
/// down to at most MAX_WINDOW_POINTS by keeping each group's lowest point,
/// into `scratch.window`. Groups are counted from the newest point so the
/// latest group is always complete.
fn fill_window(minutes: &Ring<Point>, start: f64, scratch: &mut Scratch) {
    let Scratch { window, envelope, .. } = scratch;
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
#[derive(Debug, Clone, Copy)]
enum WindowOutcome {
    Leak(Trend),
    /// Growing, but the last third much slower than before: a curve
    /// levelling off; `reaccelerating` when it stopped slowing down.
    LevellingOff {
        reaccelerating: bool,
    },
    NoLeak,
}

/// The five conditions of the module doc, on one window.
fn test_window(points: &[Point], window_secs: f64, settings: &LeakSettings, scratch: &mut Vec<f64>) -> WindowOutcome {
    let n = points.len();
    if n < MIN_WINDOW_POINTS {
        return WindowOutcome::NoLeak;
    }
    let Some(slope) = trend::theil_sen(points, scratch) else {
        return WindowOutcome::NoLeak;
    };
    if slope <= 0.0 {
        return WindowOutcome::NoLeak;
    }
    // Thirds, but never fewer than 5 points: a slope through 3 points is noise.
    let part = (n / 3).max(5);
    let (Some(early), Some(late)) =
        (trend::theil_sen(&points[..part], scratch), trend::theil_sen(&points[n - part..], scratch))
    else {
        return WindowOutcome::NoLeak;
    };
    let bends_down = trend::curvature_z(points).is_some_and(|z| z < -MAX_CURVATURE_Z);
    if slope > 0.0 && (late < MIN_LATE_TO_EARLY * early.max(slope) || bends_down) {
        let middle = trend::theil_sen(&points[n / 3..n - n / 3], scratch).unwrap_or(0.0).max(0.0);
        // A curve slowing down slows by about the same factor from each
        // third to the next; its late third is predicted by the other two.
        let slowing = if early > 0.0 { (middle / early).min(1.0) } else { 1.0 };
        let predicted_late = middle * slowing;
        return WindowOutcome::LevellingOff { reaccelerating: late > 0.0 && late > REACCELERATION * predicted_late };
    }
    if slope < settings.min_rate_bytes_per_s || slope <= 0.0 {
        return WindowOutcome::NoLeak;
    }
    let mk = trend::mann_kendall(points, scratch);
    if mk.p_value > MAX_P_VALUE {
        return WindowOutcome::NoLeak;
    }
    let intercept = trend::intercept(points, slope, scratch);
    let line = trend::line_sse(points, intercept, slope);
    let Some(step) = trend::best_step_sse(points, 2) else {
        return WindowOutcome::NoLeak;
    };
    if line >= LINE_VS_STEP * step {
        return WindowOutcome::NoLeak;
    }
    let span = points[n - 1].t - points[0].t;
    if max_drawdown(points) > MAX_DRAWDOWN_TO_RISE * slope * span {
        return WindowOutcome::NoLeak;
    }
    WindowOutcome::Leak(Trend { slope_bytes_per_s: slope, confidence: 1.0 - mk.p_value, window_secs })
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
#[path = "leak_tests.rs"]
mod tests;
