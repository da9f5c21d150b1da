use super::*;
use crate::engine::history::History;

const MIB: f64 = 1024.0 * 1024.0;
const LIMIT: f64 = 1024.0 * MIB;

/// A job every 20 minutes: builds 300 MiB over 12 minutes on 200 MiB, frees
/// it all, rests 8 minutes; each cycle keeps `kept` more (a leak under it).
fn job(t: f64, kept: f64) -> f64 {
    let (cycle, phase) = ((t / 1200.0).floor(), t % 1200.0);
    // What a cycle keeps stays once it has freed the rest.
    let job = if phase < 720.0 { 300.0 * MIB * phase / 720.0 } else { kept };
    200.0 * MIB + cycle * kept + job
}

/// The cycles seen after `secs` of `usage` read every 5 s.
fn periodicity(secs: u32, usage: impl Fn(f64) -> f64) -> (Periodicity, Vec<Point>) {
    let mut history = History::default();
    for i in 0..secs / 5 {
        let t = f64::from(i) * 5.0;
        history.push(t, usage(t) as u64);
    }
    let mut troughs = Vec::new();
    let found = read(history.minutes(), LIMIT, &mut troughs, &mut Vec::new());
    (found, troughs)
}

#[test]
fn a_rise_like_the_cycles_before_it_is_explained() {
    // Five minutes into the third cycle.
    let (found, troughs) = periodicity(2 * 1200 + 300, |t| job(t, 0.0));
    assert!(found.explains_current_rise, "{found:?}");
    let troughs_found = found.troughs.expect("three troughs make a trend");
    assert!(!troughs_found.rising && troughs_found.slope.abs() < 1000.0, "{troughs_found:?}");
    assert_eq!(troughs.len(), 3, "two cycles' troughs and the current one: {troughs:?}");
}

#[test]
fn the_first_cycle_has_nothing_to_be_explained_by() {
    let (found, _) = periodicity(600, |t| job(t, 0.0));
    assert_eq!(found, Periodicity::default());
}

#[test]
fn a_rise_past_the_cycles_peaks_is_not_explained() {
    // Two cycles, then a rise that goes on at the job's pace for 30 minutes.
    let usage = |t: f64| if t < 2400.0 { job(t, 0.0) } else { 200.0 * MIB + 300.0 * MIB * (t - 2400.0) / 720.0 };
    let (found, _) = periodicity(2400 + 1800, usage);
    assert!(!found.explains_current_rise, "{found:?}");
}

#[test]
fn troughs_rising_cycle_after_cycle_are_retained_growth() {
    let kept = 0.05 * LIMIT;
    // Just after the third cycle's return (its trough counts once a later minute closed).
    let (found, troughs) = periodicity(2 * 1200 + 860, |t| job(t, kept));
    let troughs_found = found.troughs.expect("four troughs");
    assert!(troughs_found.rising, "{troughs_found:?}");
    let (slope, span) = (troughs_found.slope, troughs_found.span_secs);
    assert_eq!(troughs.len(), 4, "{troughs:?}");
    let per_cycle = slope * 1200.0;
    assert!((per_cycle / kept - 1.0).abs() < 0.1, "{per_cycle} per cycle vs {kept}");
    assert!(span > 2.0 * 1200.0, "{span}");
    // Two cycles that each kept some are enough (the start and two
    // returns); one is not.
    let after_two = periodicity(1200 + 860, |t| job(t, kept)).0.troughs.expect("three troughs");
    assert!(after_two.rising, "{after_two:?}");
    assert_eq!(periodicity(860, |t| job(t, kept)).0.troughs, None);
    // Troughs that climb by less than the noise's scale rise by chance.
    let noisy = |t: f64| job(t, 0.0) + if (t / 1200.0).floor() as u32 % 2 == 1 { 4096.0 } else { 0.0 };
    assert!(!periodicity(2 * 1200 + 860, noisy).0.troughs.expect("four troughs").rising);
}

#[test]
fn a_restart_after_a_long_leak_clears_the_cycles_before_it() {
    // Two cycles of the job, then a leak for an hour, a restart, and a rise
    // the size of a cycle: nothing explains it any more.
    let usage = |t: f64| match t {
        t if t < 2400.0 => job(t, 0.0),
        t if t < 6000.0 => 200.0 * MIB + 2.0 * MIB * (t - 2400.0) / 60.0,
        t => 200.0 * MIB + 300.0 * MIB * ((t - 6000.0) / 720.0).min(1.0),
    };
    assert!(periodicity(2400 + 300, usage).0.explains_current_rise, "the cycles explain the leak's start");
    let (found, troughs) = periodicity(6000 + 300, usage);
    assert_eq!(found, Periodicity::default(), "{troughs:?}");
}

#[test]
fn a_job_that_stopped_long_ago_explains_nothing() {
    // Two cycles, two hours at rest, then a rise like theirs.
    let usage = |t: f64| match t {
        t if t < 2400.0 => job(t, 0.0),
        t if t < 2400.0 + 7200.0 => 200.0 * MIB,
        t => 200.0 * MIB + 300.0 * MIB * (t - 9600.0) / 720.0,
    };
    let (found, _) = periodicity(9600 + 300, usage);
    assert!(!found.explains_current_rise, "{found:?}");
}

#[test]
fn a_collectors_sawtooth_is_no_cycle() {
    // 100 MiB every 3 minutes.
    let (found, _) = periodicity(7200, |t| 500.0 * MIB + 100.0 * MIB * ((t % 180.0) / 180.0));
    assert_eq!(found, Periodicity::default());
}

#[test]
fn a_rise_under_way_when_the_history_began_does_not_bound_the_next() {
    // The history begins 8 minutes into a 12-minute build, whose rise is
    // seen for 4 minutes; 11 minutes into the next build, that is still
    // one more cycle, not a rise nearly three times as long as the last.
    let (found, _) = periodicity(720 + 660, |t| job(t + 480.0, 0.0));
    assert!(found.explains_current_rise, "{found:?}");
}

#[test]
fn a_rise_under_way_when_the_history_began_still_returns_to_be_a_cycle() {
    // Only a rise that gave most of itself back counts: a history that
    // begins on a kept allocation's ramp holds no cycle.
    let (found, troughs) = periodicity(3600, |t| 200.0 * MIB + 300.0 * MIB * (t / 600.0).min(1.0));
    assert_eq!((found, troughs.len()), (Periodicity::default(), 0));
}

#[test]
fn a_start_up_ramp_explains_a_leak_after_it_for_a_bounded_time_only() {
    // A 4-minute start-up ramp to 400 MiB (its minute minima climb for 3
    // minutes, to 350), back to 250 MiB, then a leak of 300 MiB/h: under
    // the ramp's peak for 20 minutes.
    let usage = |t: f64| match t {
        t if t < 240.0 => 200.0 * MIB + 200.0 * MIB * t / 240.0,
        t if t < 300.0 => 250.0 * MIB,
        t => 250.0 * MIB + 300.0 * MIB * (t - 300.0) / 3600.0,
    };
    assert!(periodicity(300 + 10 * 60, usage).0.explains_current_rise, "ten minutes in, like the ramp");
    // 19 minutes of minute points past its start: longer than 1.5 x 4 x the
    // 3 minutes seen of the ramp, though still under its peak.
    assert!(!periodicity(300 + 21 * 60, usage).0.explains_current_rise);
}
