//! The leak detector: trend tests over several windows of the minute history,
//! then a confirmation period before a verdict is announced.
//!
//! Every closed minute, windows of the last 10, 20, 30, 60, 120 and 240
//! minutes (those the history covers) of the lower envelope are each reduced
//! to at most 24 points and tested (`window`: slope, significance, line
//! against step, levelling off, large falls); the longest window that says
//! "leak" and no longer one overrules is the verdict.
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
    HeapCeiling, cycles,
    history::{History, MINUTE_SECS, Point},
    ring::Ring,
    trend,
    window::{self, MAX_WINDOW_POINTS, Outcome as WindowOutcome},
};

/// Window lengths tested, in minutes.
pub const WINDOW_MINUTES: [usize; 6] = [10, 20, 30, 60, 120, 240];
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
/// Go's `GOMEMLIMIT` already counts all of its runtime's memory, and is
/// soft: a leak goes on past it while the collector works harder. Such a
/// ceiling allows only [`NON_HEAP_MIN_BYTES`] above it (what the Go runtime
/// does not count: C libraries, a page-aligned RSS), and nothing from this
/// share of the target's limit up: services set `GOMEMLIMIT` close to
/// their container's limit, and a leak passing it there is the one about
/// to be killed.
pub const SOFT_CEILING_LIMIT_SHARE: f64 = 0.9;
/// Over a full heap, a runtime's own memory settles for a while after
/// its warm-up (metaspace, code cache, allocator arenas: tens of MiB over
/// an hour); growth that would stay within the allowance for this long is
/// that, growth that would leave it sooner is judged.
pub const ALLOWANCE_HORIZON_SECS: f64 = 3600.0;

/// How far a target may grow: its limit, and the heap ceiling its runtime
/// declared, if any; and what its trend history adds to its usage (what
/// memwatch's own cleanups took, `Engine::note_freed`), which limits and
/// ceilings are not compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub limit_bytes: f64,
    pub heap_ceiling: Option<HeapCeiling>,
    pub trend_offset: f64,
}

impl Bounds {
    /// A limit, no heap ceiling, nothing added back.
    pub const fn limit(limit_bytes: f64) -> Self {
        Self { limit_bytes, heap_ceiling: None, trend_offset: 0.0 }
    }

    /// The usage a point of the trend history stands for.
    fn usage_of(&self, point: &Point) -> f64 {
        point.y - self.trend_offset
    }

    /// Whether the rise `trend` judged over `minutes` is set aside as a
    /// runtime's heap sizing itself: usage is within the heap allowance
    /// ([`Self::heap_allowance`]), and either the window began below the
    /// ceiling (the rise is the heap growing to it) or the trend keeps
    /// usage within the allowance for [`ALLOWANCE_HORIZON_SECS`] (the
    /// runtime's own memory settling over a full heap). Growth over a full heap that would leave the allowance
    /// sooner (threads, direct buffers, a native leak) is judged as any.
    pub fn heap_sizing(&self, minutes: &Ring<Point>, trend: &Trend) -> bool {
        let (Some((ceiling, top)), Some(newest)) = (self.heap_allowance(), minutes.newest()) else { return false };
        let usage = self.usage_of(newest);
        if !(ceiling..=top).contains(&usage) {
            return false;
        }
        let settling = usage + trend.slope_bytes_per_s * ALLOWANCE_HORIZON_SECS <= top;
        settling || self.window_began_below(minutes, trend.window_secs, ceiling)
    }

    /// Whether the first point of the window of `window_secs` that ends at
    /// the newest minute, as `window::fill` makes it (the lowest of its
    /// minute and the ones before it in the lower envelope), was below
    /// `ceiling`.
    fn window_began_below(&self, minutes: &Ring<Point>, window_secs: f64, ceiling: f64) -> bool {
        let Some(newest) = minutes.newest() else { return false };
        let start = newest.t - window_secs;
        let first = minutes.len() - minutes.iter().rev().take_while(|p| p.t > start).count();
        let from = first.saturating_sub(window::ENVELOPE_MINUTES - 1);
        (from..=first).filter_map(|i| minutes.get(i)).any(|p| self.usage_of(p) < ceiling)
    }

    /// Whether `usage_bytes` is a runtime at its declared heap ceiling: its
    /// heap has grown as far as it may. (`heap_sizing` reads the allowance
    /// itself, for its bounds; the tests pin the allowance through this.)
    #[cfg(test)]
    fn at_heap_ceiling(&self, usage_bytes: f64) -> bool {
        self.heap_allowance().is_some_and(|(ceiling, top)| (ceiling..=top).contains(&usage_bytes))
    }

    /// Where a runtime at its declared heap ceiling may be: from the
    /// ceiling up to the allowance above it for its own memory.
    fn heap_allowance(&self) -> Option<(f64, f64)> {
        let ceiling = self.heap_ceiling?;
        let bytes = ceiling.bytes as f64;
        let top = if ceiling.soft {
            (bytes + NON_HEAP_MIN_BYTES).min(SOFT_CEILING_LIMIT_SHARE * self.limit_bytes)
        } else {
            bytes * (1.0 + NON_HEAP_SHARE) + NON_HEAP_MIN_BYTES
        };
        Some((bytes, top))
    }
}

/// A verdict never waits longer than this share of the projected time to
/// limit: a leak that would reach its limit before its confirmation ends is
/// announced while there is still time to act. Half, not less: bounded
/// caches warming up to 97-98% of their limit project it within minutes
/// on their straight stretch, and a quarter's confirmation announced three
/// of the real corpus's tuning half before their levelling off showed
/// (`detection_score`, limits close to the peak).
pub const CONFIRM_SHARE_OF_TIME_TO_LIMIT: f64 = 0.5;
/// The shortest confirmation: two evaluations in a row, so one minute's
/// outlier is never announced alone.
pub const URGENT_CONFIRM_SECS: f64 = 60.0;

/// Urgency shortens the confirmation only while the readings still rise:
/// the lowest of the last minute stands above the lowest of the minute
/// before by at least this share of what the trend gains in a minute. The
/// lower envelope sees a plateau two minutes late, and a job or a cache
/// that topped out just under its limit would be announced in those two
/// minutes; the raw readings show the plateau at once. (Synthetic corpus
/// with each non-leak's limit 2% above its peak: 12 false alarms without
/// this check, 7 with it, the same 7 as with the host's memory as limit;
/// `detection_score`.)
pub const STILL_RISING_SHARE: f64 = 0.5;

/// Whether `history`'s readings of the last minute at `now` rose from the
/// minute before at [`STILL_RISING_SHARE`] of `trend`'s pace (of the last
/// reading and the one before, where readings are further apart).
pub fn still_rising(history: &History, now: f64, trend: &Trend) -> bool {
    let block = history.reading_gap().map_or(MINUTE_SECS, |gap| gap.max(MINUTE_SECS));
    let lowest = |to: f64| history.lowest_between(to - block, to);
    match (lowest(now), lowest(now - block)) {
        (Some(newer), Some(older)) => newer - older >= STILL_RISING_SHARE * trend.slope_bytes_per_s * block,
        _ => false,
    }
}

/// How long a window's verdict on `trend` must hold before it is announced:
/// the policy's confirmation, or half the projected time to limit if
/// that is shorter, but never under a minute (and only while the readings
/// are [`still_rising`]).
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
    /// How straight the rise is: R² of the slope's line through the points
    /// it was measured on (the window's minima, or the troughs).
    pub fit: f64,
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

/// What one evaluation concluded, before any confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Verdict {
    /// No window says leak, or a longer one overruled it.
    #[default]
    None,
    /// The longest window that says leak.
    Leak(Trend),
    /// The troughs of several cycles rise: a leak, confirmed by the cycles.
    RisingTroughs(Trend),
    /// A window says leak, but the rise is like the cycles before it.
    LikeEarlierCycles(Trend),
    /// A window says leak, but it is a runtime's heap sizing itself.
    HeapSizing(Trend),
}

impl Verdict {
    /// The trend that counts as a leak, and whether it needs no confirmation.
    fn leak(self) -> (Option<Trend>, bool) {
        match self {
            Verdict::Leak(trend) => (Some(trend), false),
            Verdict::RisingTroughs(trend) => (Some(trend), true),
            Verdict::None | Verdict::LikeEarlierCycles(_) | Verdict::HeapSizing(_) => (None, false),
        }
    }
}

/// A window's outcome, and when it was tested: a long window is re-tested
/// only when it gains a point, and its outcome stands until then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tested {
    pub outcome: WindowOutcome,
    pub at: f64,
}

/// Why the detector said what it said at its last evaluation (`memwatch
/// replay --explain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Explanation {
    /// Each window's outcome, in the order of [`WINDOW_MINUTES`]; `None`
    /// where the history does not cover it yet.
    pub windows: [Option<Tested>; WINDOW_MINUTES.len()],
    pub verdict: Verdict,
    /// Until a leak is announced, and at the minute it is: how long the
    /// verdict has been a leak, and how long it had to be.
    pub held_for_secs: Option<f64>,
    pub confirm_after_secs: Option<f64>,
    /// Whether a leak is being reported.
    pub reported: bool,
    /// How long a reported leak's verdict has been absent (it ends after
    /// the policy's confirmation).
    pub clear_for_secs: Option<f64>,
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
    outcomes: [Option<Tested>; WINDOW_MINUTES.len()],
    /// The last evaluation's verdict, and the confirmation it needed.
    verdict: Verdict,
    confirm_after_secs: Option<f64>,
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

    /// How long a reported leak has been reported at `now`.
    pub fn leaking_for(&self, now: f64) -> Option<f64> {
        self.reported_at.map(|at| now - at)
    }

    /// What the evaluation at `now` (the last one) saw and concluded.
    pub fn explain(&self, now: f64) -> Explanation {
        let confirming = self.reported_at.is_none_or(|at| at == now);
        Explanation {
            windows: self.outcomes,
            verdict: self.verdict,
            held_for_secs: self.suspected_since.filter(|_| confirming).map(|since| now - since),
            confirm_after_secs: self.confirm_after_secs.filter(|_| confirming),
            reported: self.reported_at.is_some(),
            clear_for_secs: self.clear_since.map(|since| now - since),
        }
    }

    /// Re-tests the trend after a minute closed at `now`, for a target
    /// with this limit (and this heap ceiling, where its runtime declared one).
    pub fn evaluate(
        &mut self,
        history: &History,
        now: f64,
        bounds: Bounds,
        settings: &LeakSettings,
        scratch: &mut Scratch,
    ) -> Option<LeakChange> {
        let minutes = history.minutes();
        let limit_bytes = bounds.limit_bytes;
        self.verdict =
            if settings.enabled { self.judge(minutes, now, bounds, settings, scratch) } else { Verdict::None };
        self.confirm_after_secs = None;
        let (trend, confirmed) = self.verdict.leak();
        match (trend, self.reported_at) {
            (Some(trend), None) => {
                let since = *self.suspected_since.get_or_insert(now);
                let usage = minutes.newest().map_or(0.0, |p| bounds.usage_of(p));
                let needed = if confirmed {
                    0.0
                } else if still_rising(history, now, &trend) {
                    confirmation_secs(settings.confirm_secs, &trend, usage, limit_bytes)
                } else {
                    settings.confirm_secs
                };
                self.confirm_after_secs = Some(needed);
                if now - since >= needed {
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

    /// This minute's verdict: the troughs of several cycles rising in a
    /// row need no confirmation, a window does.
    fn judge(
        &mut self,
        minutes: &Ring<Point>,
        now: f64,
        bounds: Bounds,
        settings: &LeakSettings,
        scratch: &mut Scratch,
    ) -> Verdict {
        // Tested every minute even when the cycles decide, so each window's
        // cached outcome stays current.
        let windows = self.strongest_trend(minutes, now, settings, scratch);
        let periodicity = cycles::read(minutes, bounds.limit_bytes, &mut scratch.troughs, &mut scratch.values);
        // Rising troughs start a leak; once it is reported, troughs still
        // climbing at the minimum rate keep it, so one cycle that kept a
        // little less does not end it.
        if let Some(troughs) = periodicity.troughs
            && troughs.slope >= settings.min_rate_bytes_per_s
            && (troughs.rising || self.reported_at.is_some())
        {
            let confidence = 1.0 - trend::mann_kendall(&scratch.troughs, &mut scratch.values).p_value;
            let intercept = trend::intercept(&scratch.troughs, troughs.slope, &mut scratch.values);
            let sse = trend::line_sse(&scratch.troughs, intercept, troughs.slope);
            let fit = trend::r_squared(&scratch.troughs, sse);
            let trend = Trend { slope_bytes_per_s: troughs.slope, confidence, fit, window_secs: troughs.span_secs };
            return Verdict::RisingTroughs(trend);
        }
        // Growth that brought a runtime to its heap ceiling was its heap
        // sizing itself; growth over a full heap that would soon pass its
        // allowance, and growth past it, is judged again. A leak already
        // reported is not called off for reaching the ceiling: a heap leak
        // heading for an OutOfMemoryError passes through it.
        match windows {
            None => Verdict::None,
            Some(trend) if periodicity.explains_current_rise => Verdict::LikeEarlierCycles(trend),
            Some(trend) if self.reported_at.is_none() && bounds.heap_sizing(minutes, &trend) => {
                Verdict::HeapSizing(trend)
            }
            Some(trend) => Verdict::Leak(trend),
        }
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
        now: f64,
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
            let tested = match self.outcomes[index] {
                Some(tested) if minute.rem_euclid(group) != 0 => tested,
                _ => {
                    window::fill(minutes, newest - window_secs, &mut scratch.window, &mut scratch.envelope);
                    let outcome = window::test(&scratch.window, window_secs, settings, &mut scratch.values);
                    Tested { outcome, at: now }
                }
            };
            self.outcomes[index] = Some(tested);
            match tested.outcome {
                WindowOutcome::Leak(trend) => verdict = Some(trend),
                // Levelling off over a longer view overrules every shorter
                // window inside it, unless the growth sped up again at its end.
                WindowOutcome::LevellingOff { reaccelerating: false, .. } => verdict = None,
                WindowOutcome::LevellingOff { reaccelerating: true, .. } | WindowOutcome::NoLeak(_) => {}
            }
        }
        verdict
    }
}

#[cfg(test)]
#[path = "leak_tests.rs"]
mod tests;
