//! A target's memory history at two resolutions.
//!
//! - `recent`: the seed's 60 raw readings (5 minutes at 5 s), for the seed's
//!   rule and the current usage.
//! - `minutes`: one point per wall-clock minute, holding the *lowest* reading
//!   of that minute, for four hours. The minimum is the lower envelope of the
//!   usage curve: after a garbage collection or an allocator trim the heap is
//!   back to its live set, so the envelope follows what is really retained
//!   and drops most of a GC sawtooth before any statistics run. Four hours of
//!   minute points let a leak of a few MB per hour rise above the noise
//!   while costing 240 points per target.
use super::ring::Ring;

/// The seed kept 60 readings.
pub const RECENT_SAMPLES: usize = 60;
/// Width of one long-history point.
pub const MINUTE_SECS: f64 = 60.0;
/// Long-history points kept: four hours of minutes.
pub const MINUTE_POINTS: usize = 240;

/// One point of a time series: seconds (any origin) and bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: f64,
    pub y: f64,
}

#[derive(Debug, Clone)]
pub struct History {
    recent: Ring<Point>,
    minutes: Ring<Point>,
    /// The minute being filled: its index and lowest reading so far.
    open: Option<(i64, Point)>,
}

impl Default for History {
    fn default() -> Self {
        Self { recent: Ring::new(RECENT_SAMPLES), minutes: Ring::new(MINUTE_POINTS), open: None }
    }
}

impl History {
    /// Adds a reading. Returns `true` when it closed a minute, i.e. when the
    /// long history gained a point and the trend is worth re-testing.
    pub fn push(&mut self, t: f64, usage: u64) -> bool {
        let point = Point { t, y: usage as f64 };
        self.recent.push(point);
        let minute = (t / MINUTE_SECS).floor() as i64;
        match &mut self.open {
            Some((open, lowest)) if *open == minute => {
                if point.y < lowest.y {
                    *lowest = point;
                }
                false
            }
            Some((_, lowest)) => {
                // The point keeps the time of its minimum: a sawtooth's troughs
                // do not fall on minute boundaries, and the regression should
                // see when each trough really was.
                self.minutes.push(*lowest);
                self.open = Some((minute, point));
                true
            }
            None => {
                self.open = Some((minute, point));
                false
            }
        }
    }

    pub fn recent(&self) -> &Ring<Point> {
        &self.recent
    }

    pub fn minutes(&self) -> &Ring<Point> {
        &self.minutes
    }

    /// The last reading.
    pub fn current(&self) -> Option<Point> {
        self.recent.newest().copied()
    }

    /// The time between the last two readings.
    pub fn reading_gap(&self) -> Option<f64> {
        Some(self.recent.back(0)?.t - self.recent.back(1)?.t)
    }

    /// The lowest reading in `(from, to]`: of the raw readings kept, and
    /// of the minute points where those do not reach back so far (60
    /// readings at a short interval span less than two minutes).
    pub fn lowest_between(&self, from: f64, to: f64) -> Option<f64> {
        let within = |p: &&Point| p.t > from && p.t <= to;
        self.recent.iter().filter(within).chain(self.minutes.iter().filter(within)).map(|p| p.y).reduce(f64::min)
    }

    /// The lowest reading before `t` of its minute and of the `minutes`
    /// before that: the lower envelope as the leak tests see it, at `t`.
    /// From the raw readings kept (five minutes at 5 s), else the minute
    /// points.
    pub fn envelope_before(&self, t: f64, minutes: usize) -> Option<f64> {
        let from = ((t / MINUTE_SECS).floor() - minutes as f64) * MINUTE_SECS;
        let recent = self.recent.iter().filter(|p| p.t >= from && p.t < t).map(|p| p.y);
        let closed = self.minutes.iter().filter(|p| p.t >= from && p.t < t).map(|p| p.y);
        recent.chain(closed).reduce(f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_points_are_the_lowest_reading_of_each_minute() {
        let mut history = History::default();
        let mut closed = 0;
        for i in 0..36u32 {
            // A 30 s sawtooth 0..50 on a base of 1000.
            let t = f64::from(i) * 5.0;
            closed += usize::from(history.push(t, 1000 + u64::from(i % 6) * 10));
        }
        assert_eq!(closed, 2, "minutes 0 and 1 closed, minute 2 still open");
        let lows: Vec<f64> = history.minutes().iter().map(|p| p.y).collect();
        assert_eq!(lows, [1000.0, 1000.0]);
        assert_eq!(history.recent().len(), 36);
        assert_eq!(history.current(), Some(Point { t: 175.0, y: 1050.0 }));
    }

    #[test]
    fn memory_is_bounded() {
        let mut history = History::default();
        for i in 0..100_000u32 {
            history.push(f64::from(i) * 5.0, 1);
        }
        assert_eq!(history.recent().len(), RECENT_SAMPLES);
        assert_eq!(history.minutes().len(), MINUTE_POINTS);
    }
}
