//! Periodic usage: rises that give back what they took.
//!
//! A batch job, a report builder or a cache rebuilt on a timer grows for
//! minutes, frees it all and starts again. Within one cycle its rise is as
//! straight as a leak's; across cycles nothing is retained. Once the history
//! holds such a return, a rise no longer and no higher than the cycles
//! before it is explained by them, and what is retained is judged on the
//! troughs: a leak under a periodic job lifts them cycle after cycle.
//!
//! Cycles are read off the minute minima as a zigzag: a rise from a trough
//! to a peak of at least the cycle threshold, then a fall giving back a
//! large part of it. Only rises of 4 to 30 minutes (from trough to peak as minute
//! minima show them: a 5-minute build spans 4) are a job's cycles: shorter ones are
//! a collector's sawtooth, which the lower envelope already removes, and a
//! service that leaked for an hour before it was restarted is not periodic.
use super::{history::Point, ring::Ring, trend};

/// A fall giving back at least this share of the rise before it is a
/// return. Not most of it: a job that keeps part of what each cycle built
/// gives back less than it took, and it is the very job whose troughs must
/// be read (real corpus: a job keeping 51 MiB of a 120 MiB build returned
/// 55%).
pub const RETURN_SHARE: f64 = 0.4;
/// Rises shorter than this are a collector's sawtooth, not a job's cycle.
pub const MIN_CYCLE_RISE_SECS: f64 = 4.0 * 60.0;
/// The rise under way when the history began is seen only in part: it is
/// a cycle from this long (a collector's sawtooth rises for at most two
/// minutes of minute minima) ...
pub const MIN_UNDER_WAY_RISE_SECS: f64 = 3.0 * 60.0;
/// ... and bounds the rises after it as one this many times as long as
/// the part seen: a job first seen 5 minutes into a 19-minute build has
/// its next build explained, but a start-up ramp does not explain a leak
/// after it for longer than a few times its own length.
pub const UNDER_WAY_STRETCH: f64 = 4.0;
/// Rises longer than this that fall back are a restart, not a cycle.
pub const MAX_CYCLE_RISE_SECS: f64 = 30.0 * 60.0;
/// A cycle rises by at least this many noise scales ...
pub const MIN_CYCLE_TO_NOISE: f64 = 8.0;
/// ... and by at least this share of the limit.
pub const MIN_CYCLE_TO_LIMIT: f64 = 0.002;
/// A rise is explained by the cycles before it while it has lasted at most
/// this multiple of their longest rise (and is no higher than their peaks).
pub const EXPLAINED_DURATION: f64 = 1.5;
/// ... and began at most this long after the last return: a job that has
/// stopped explains nothing that comes later.
pub const MAX_REST_SECS: f64 = 60.0 * 60.0;
/// Troughs kept for the retained trend: the newest ones.
pub const MAX_TROUGHS: usize = 10;
/// Consecutive higher troughs that show growth is retained ...
pub const RISING_TROUGHS: usize = 2;
/// ... each higher by at least this many noise scales. Troughs are minute
/// minima after a full return, so their scatter is the noise's: two rises
/// of four noise scales in a row are far beyond chance, and a job keeping
/// a share of each cycle is reported one cycle after it first kept some.
pub const MIN_TROUGH_RISE_TO_NOISE: f64 = 4.0;

/// What the cycles in a history say.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Periodicity {
    /// The current rise is one more cycle like those before it.
    pub explains_current_rise: bool,
    /// The troughs' trend, once there are more than [`RISING_TROUGHS`].
    pub troughs: Option<Troughs>,
}

/// What the troughs say: what each cycle keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Troughs {
    /// Theil–Sen slope of the troughs, bytes/s.
    pub slope: f64,
    /// The time they span.
    pub span_secs: f64,
    /// The last [`RISING_TROUGHS`] each stood above the one before by more
    /// than noise: growth is retained.
    pub rising: bool,
}

/// Reads the cycles of `minutes` (minute minima) of a target with this
/// limit; `troughs` and `values` are working buffers.
pub fn read(minutes: &Ring<Point>, limit_bytes: f64, troughs: &mut Vec<Point>, values: &mut Vec<f64>) -> Periodicity {
    troughs.clear();
    let noise = noise_scale(minutes, values);
    let threshold = (MIN_CYCLE_TO_NOISE * noise).max(MIN_CYCLE_TO_LIMIT * limit_bytes);
    // A rise starts at the last point near its trough: a job resting at its
    // baseline has not begun its next cycle, whatever the noise says.
    let near = 0.25 * threshold;
    let mut points = minutes.iter().copied();
    let Some(first) = points.next() else { return Periodicity::default() };
    let (mut low, mut start, mut high) = (first, first, first);
    let (mut longest_rise, mut highest_peak) = (0.0_f64, f64::NEG_INFINITY);
    // The rise under way when the history began is seen in part: its
    // length says nothing of how long the job's rises last.
    let mut under_way = true;
    let (mut last, mut before_last, mut last_return) = (first, first, f64::NEG_INFINITY);
    for p in points {
        (before_last, last) = (last, p);
        let rise = high.y - low.y;
        if rise >= threshold && high.y - p.y >= RETURN_SHARE * rise {
            let secs = high.t - start.t;
            let shortest = if under_way { MIN_UNDER_WAY_RISE_SECS } else { MIN_CYCLE_RISE_SECS };
            if (shortest..=MAX_CYCLE_RISE_SECS).contains(&secs) {
                troughs.push(low);
                longest_rise = longest_rise.max(if under_way { UNDER_WAY_STRETCH * secs } else { secs });
                highest_peak = highest_peak.max(high.y);
                last_return = p.t;
            } else if secs > MAX_CYCLE_RISE_SECS {
                // A long rise undone at once breaks the pattern: what came
                // before a restart says nothing about what follows it.
                troughs.clear();
                (longest_rise, highest_peak) = (0.0, f64::NEG_INFINITY);
            }
            (low, start, high) = (p, p, p);
            under_way = false;
        } else if p.y <= low.y {
            (low, start, high) = (p, p, p);
            under_way = false;
        } else {
            if p.y <= low.y + near {
                start = p;
            }
            if p.y > high.y {
                high = p;
            }
        }
    }
    if troughs.is_empty() {
        return Periodicity::default();
    }
    // The trough after the last return counts once the fall has bottomed
    // out: while usage is still falling, the trough may be lower yet.
    if last.y >= before_last.y {
        troughs.push(low);
    }
    let explains_current_rise = last.t - start.t <= EXPLAINED_DURATION * longest_rise
        && last.y <= highest_peak + near
        && start.t - last_return <= MAX_REST_SECS;
    Periodicity { explains_current_rise, troughs: trough_trend(troughs, noise, values) }
}

/// The newest troughs' trend.
fn trough_trend(troughs: &mut Vec<Point>, noise: f64, values: &mut Vec<f64>) -> Option<Troughs> {
    if troughs.len() > MAX_TROUGHS {
        troughs.drain(..troughs.len() - MAX_TROUGHS);
    }
    let n = troughs.len();
    if n <= RISING_TROUGHS {
        return None;
    }
    let rising =
        troughs[n - RISING_TROUGHS - 1..].windows(2).all(|w| w[1].y - w[0].y >= MIN_TROUGH_RISE_TO_NOISE * noise);
    let slope = trend::theil_sen(troughs, values)?;
    Some(Troughs { slope, span_secs: troughs[n - 1].t - troughs[0].t, rising })
}

/// The noise of the minute minima: from their second differences, which a
/// straight rise or a flat stretch leaves at zero, so neither a job's ramp
/// nor a leak is taken for noise (1.4826 x MAD, over sqrt 6 for a second
/// difference of independent noise). Never below one page.
fn noise_scale(minutes: &Ring<Point>, values: &mut Vec<f64>) -> f64 {
    const PAGE: f64 = 4096.0;
    values.clear();
    let mut ys = minutes.iter().map(|p| p.y);
    let (Some(mut a), Some(mut b)) = (ys.next(), ys.next()) else { return PAGE };
    for c in ys {
        values.push(c - 2.0 * b + a);
        (a, b) = (b, c);
    }
    let Some(median) = trend::median(values) else { return PAGE };
    for v in values.iter_mut() {
        *v = (*v - median).abs();
    }
    let mad = trend::median(values).unwrap_or(0.0);
    (1.4826 * mad / 6f64.sqrt()).max(PAGE)
}

#[cfg(test)]
#[path = "cycles_tests.rs"]
mod tests;
