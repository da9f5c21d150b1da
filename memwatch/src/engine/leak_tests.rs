use super::*;
use crate::engine::history::History;

const MIB: f64 = 1024.0 * 1024.0;
/// The limit the detector is told of: far above every test's usage.
const LIMIT: f64 = 64.0 * 1024.0 * MIB;

/// Feeds `usage(t)` every 5 s for `secs` and returns when (if) the
/// detector announced a leak, with its trend.
fn first_verdict(secs: u32, usage: impl Fn(f64) -> f64) -> Option<(f64, Trend)> {
    let mut history = History::default();
    let mut detector = LeakDetector::default();
    for i in 0..secs / 5 {
        let t = f64::from(i) * 5.0;
        if history.push(t, usage(t).max(0.0) as u64)
            && let Some(LeakChange::Started(trend)) =
                detector.evaluate(&history, t, Bounds::limit(LIMIT), &LeakSettings::DEFAULT, &mut Scratch::default())
        {
            return Some((t, trend));
        }
    }
    None
}

/// Deterministic noise in [-1, 1] for tests (a hash of the time).
fn noise(t: f64) -> f64 {
    let mut x = (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 2001) as f64 / 1000.0 - 1.0
}

#[test]
fn a_linear_leak_is_found_with_its_rate() {
    // 200 MiB/h on 500 MiB with +-4 MiB of noise.
    let rate = 200.0 * MIB / 3600.0;
    let (t, trend) = first_verdict(7200, |t| 500.0 * MIB + rate * t + 4.0 * MIB * noise(t)).unwrap();
    assert!(t <= 30.0 * 60.0, "found after {t} s");
    assert!((trend.slope_bytes_per_s / rate - 1.0).abs() < 0.2, "{trend:?} vs {rate}");
    assert!(trend.confidence > 0.999);
}

#[test]
fn a_leak_under_a_gc_sawtooth_is_found() {
    // 300 MiB/h under a 100 MiB sawtooth with a 40 s period.
    let rate = 300.0 * MIB / 3600.0;
    let found = first_verdict(7200, |t| 800.0 * MIB + rate * t + 100.0 * MIB * ((t % 40.0) / 40.0));
    assert!(found.is_some_and(|(t, _)| t < 30.0 * 60.0), "{found:?}");
}

#[test]
fn a_sawtooth_on_a_flat_baseline_is_not_a_leak() {
    assert_eq!(first_verdict(7200, |t| 800.0 * MIB + 200.0 * MIB * ((t % 170.0) / 170.0)), None);
}

#[test]
fn a_single_kept_allocation_is_not_a_leak() {
    let usage = |t: f64| 300.0 * MIB + if t > 1800.0 { 700.0 * MIB } else { 0.0 } + 2.0 * MIB * noise(t);
    assert_eq!(first_verdict(7200, usage), None);
}

#[test]
fn a_cache_warming_up_to_a_plateau_is_not_a_leak() {
    let usage = |t: f64| 200.0 * MIB + 1000.0 * MIB * (1.0 - (-t / 480.0).exp()) + 2.0 * MIB * noise(t);
    assert_eq!(first_verdict(7200, usage), None);
}

#[test]
fn a_warm_up_with_a_time_constant_of_most_of_an_hour_is_not_a_leak_while_it_climbs() {
    // A JVM growing its heap by 1.5 GiB with tau = 40 minutes: over a
    // 10-minute window its rate falls by a fifth, but it bends. (Its
    // tail, once within a tenth of the plateau, can still pass for a slow
    // leak on the shortest window: docs/detection.md, "Limits".)
    let usage = |t: f64| 300.0 * MIB + 1536.0 * MIB * (1.0 - (-t / 2400.0).exp()) + 2.0 * MIB * noise(t);
    assert_eq!(first_verdict(5400, usage), None);
}

#[test]
fn a_leak_that_follows_a_slow_warm_up_is_still_found() {
    // The same warm-up's first 30 minutes, then 300 MiB/h for good.
    let warm_up = |t: f64| 1536.0 * MIB * (1.0 - (-t.min(1800.0) / 2400.0).exp());
    let rate = 300.0 * MIB / 3600.0;
    let usage = |t: f64| 300.0 * MIB + warm_up(t) + rate * (t - 1800.0).max(0.0) + 2.0 * MIB * noise(t);
    let found = first_verdict(7200, usage);
    assert!(found.is_some_and(|(t, _)| t > 1800.0 && t < 1800.0 + 30.0 * 60.0), "{found:?}");
}

#[test]
fn batch_jobs_that_free_what_they_took_are_not_a_leak() {
    // Every 20 min: grow 400 MiB over 6 min, hold 2 min, free.
    let usage = |t: f64| {
        let phase = t % 1200.0;
        let job = if phase < 360.0 {
            400.0 * MIB * phase / 360.0
        } else if phase < 480.0 {
            400.0 * MIB
        } else {
            0.0
        };
        300.0 * MIB + job + 2.0 * MIB * noise(t)
    };
    assert_eq!(first_verdict(7200, usage), None);
}

#[test]
fn noise_is_not_a_leak() {
    assert_eq!(first_verdict(7200, |t| 1000.0 * MIB + 30.0 * MIB * noise(t)), None);
}

#[test]
fn a_stepwise_leak_is_found() {
    // 8 MiB every 3 minutes (160 MiB/h) in whole steps.
    let found = first_verdict(7200, |t| 400.0 * MIB + 8.0 * MIB * (t / 180.0).floor() + MIB * noise(t));
    assert!(found.is_some(), "stepwise leak missed");
}

#[test]
fn an_accelerating_leak_is_found() {
    let found = first_verdict(7200, |t| 400.0 * MIB + 50.0 * MIB * (t / 3600.0).powi(2) * 4.0 + MIB * noise(t));
    assert!(found.is_some(), "accelerating leak missed");
}

#[test]
fn disabled_detection_never_reports() {
    let mut history = History::default();
    let mut detector = LeakDetector::default();
    let off = LeakSettings { enabled: false, ..LeakSettings::DEFAULT };
    for i in 0..1440 {
        let t = f64::from(i) * 5.0;
        if history.push(t, (t * 100_000.0) as u64) {
            assert_eq!(detector.evaluate(&history, t, Bounds::limit(LIMIT), &off, &mut Scratch::default()), None);
        }
    }
}

#[test]
fn a_new_leak_after_the_end_of_one_is_announced_again_and_only_once() {
    let mut history = History::default();
    let mut detector = LeakDetector::default();
    let mut changes = Vec::new();
    for i in 0..4320u32 {
        let t = f64::from(i) * 5.0;
        // Leak for 1 h, flat (restarted) for 2 h, leak again for 3 h.
        let usage = match t {
            t if t < 3600.0 => 100.0 * MIB + MIB * t / 60.0,
            t if t < 3.0 * 3600.0 => 100.0 * MIB,
            t => 100.0 * MIB + MIB * (t - 3.0 * 3600.0) / 60.0,
        };
        if history.push(t, usage as u64)
            && let Some(change) =
                detector.evaluate(&history, t, Bounds::limit(LIMIT), &LeakSettings::DEFAULT, &mut Scratch::default())
        {
            changes.push(change);
        }
    }
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| match c {
            LeakChange::Started(_) => "started",
            LeakChange::Ended { .. } => "ended",
        })
        .collect();
    assert_eq!(kinds, ["started", "ended", "started"]);
}

#[test]
fn a_leak_ends_after_the_confirmation_window_without_one() {
    let mut history = History::default();
    let mut detector = LeakDetector::default();
    let mut changes = Vec::new();
    for i in 0..2880 {
        let t = f64::from(i) * 5.0;
        // Leaks 1 MiB/min for 1 h, then the process restarts and stays flat.
        let usage = if t < 3600.0 { 100.0 * MIB + MIB * t / 60.0 } else { 100.0 * MIB };
        if history.push(t, usage as u64)
            && let Some(change) =
                detector.evaluate(&history, t, Bounds::limit(LIMIT), &LeakSettings::DEFAULT, &mut Scratch::default())
        {
            changes.push((t, change));
        }
    }
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(matches!(changes[0].1, LeakChange::Started(_)));
    let (ended_at, LeakChange::Ended { .. }) = changes[1] else { panic!("{changes:?}") };
    assert!(ended_at > 3600.0 && ended_at <= 3600.0 + 600.0, "{ended_at}");
    assert!(!detector.is_leaking());
}

/// A job every 20 minutes on a 1 GiB limit: builds 300 MiB over 12 minutes
/// on 200 MiB, frees it all, rests 8 minutes; each cycle keeps `kept` more.
fn periodic_job(t: f64, kept: f64) -> f64 {
    let (cycle, phase) = ((t / 1200.0).floor(), t % 1200.0);
    let job = if phase < 720.0 { 300.0 * MIB * phase / 720.0 } else { kept };
    200.0 * MIB + cycle * kept + job + 2.0 * MIB * noise(t)
}

/// Every announcement over `secs` of `usage` against a 1 GiB limit.
fn changes_under_a_gib(secs: u32, usage: impl Fn(f64) -> f64) -> Vec<(f64, LeakChange)> {
    let mut history = History::default();
    let mut detector = LeakDetector::default();
    let mut changes = Vec::new();
    for i in 0..secs / 5 {
        let t = f64::from(i) * 5.0;
        if history.push(t, usage(t).max(0.0) as u64)
            && let Some(change) = detector.evaluate(
                &history,
                t,
                Bounds::limit(1024.0 * MIB),
                &LeakSettings::DEFAULT,
                &mut Scratch::default(),
            )
        {
            changes.push((t, change));
        }
    }
    changes
}

#[test]
fn a_periodic_job_that_returns_to_its_baseline_is_never_a_leak() {
    assert_eq!(changes_under_a_gib(5 * 1200, |t| periodic_job(t, 0.0)), []);
}

#[test]
fn a_periodic_job_whose_troughs_rise_is_a_leak_by_its_second_cycle() {
    let kept = 0.05 * 1024.0 * MIB;
    let changes = changes_under_a_gib(5 * 1200, |t| periodic_job(t, kept));
    let Some(&(t, LeakChange::Started(trend))) = changes.first() else { panic!("{changes:?}") };
    assert!(t <= 2.0 * 1200.0, "found at {t} s");
    // Three troughs date the first cycle by its start and the others by
    // their returns: the first estimate is rough (within a third here).
    assert!((trend.slope_bytes_per_s * 1200.0 / kept - 1.0).abs() < 0.35, "{trend:?}: the troughs' slope");
    assert_eq!(changes.len(), 1, "reported once, not once a cycle: {changes:?}");
}

#[test]
fn a_long_build_like_the_cycles_before_it_is_not_reported_again() {
    // Builds 300 MiB over 16 minutes every 20: as straight as a leak for
    // longer than the shortest window and its confirmation. The first cycle
    // has nothing to be told apart by; the later ones do.
    let usage = |t: f64| {
        let phase = t % 1200.0;
        let job = if phase < 960.0 { 300.0 * MIB * phase / 960.0 } else { 0.0 };
        200.0 * MIB + job + 2.0 * MIB * noise(t)
    };
    let changes = changes_under_a_gib(5 * 1200, usage);
    let later: Vec<_> = changes.iter().filter(|(t, c)| *t > 1200.0 && matches!(c, LeakChange::Started(_))).collect();
    assert_eq!(later, Vec::<&(f64, LeakChange)>::new(), "all: {changes:?}");
}

#[test]
fn confirmation_is_never_longer_than_half_the_time_left() {
    let trend = |slope_mib_per_s: f64| Trend {
        slope_bytes_per_s: slope_mib_per_s * MIB,
        confidence: 1.0,
        fit: 1.0,
        window_secs: 600.0,
    };
    let confirm = |usage_mib: f64, slope_mib_per_s: f64| {
        confirmation_secs(180.0, &trend(slope_mib_per_s), usage_mib * MIB, 1024.0 * MIB)
    };
    assert_eq!(confirm(100.0, 0.01), 180.0, "a day away: the policy's confirmation");
    assert_eq!(confirm(424.0, 1.0), 180.0, "10 minutes away: the policy's 3");
    assert!((confirm(724.0, 1.0) - 150.0).abs() < 1e-9, "5 minutes away: 2.5 minutes");
    assert_eq!(confirm(1000.0, 1.0), 60.0, "at the limit: still two evaluations in a row");
    assert_eq!(confirm(100.0, 0.0), 180.0, "not growing");
    assert_eq!(confirmation_secs(30.0, &trend(1.0), 1000.0 * MIB, 1024.0 * MIB), 30.0, "never above the policy's own");
}

#[test]
fn a_fast_leak_close_to_its_limit_is_announced_sooner_than_the_same_leak_far_from_it() {
    // 1.3 MiB/s from 50 MiB: under two minutes from a 1 GiB limit when the
    // first window says leak.
    let leak = |t: f64| 50.0 * MIB + 1.3 * MIB * t + 2.0 * MIB * noise(t);
    let (far, _) = first_verdict(3600, leak).unwrap();
    let near = changes_under_a_gib(3600, leak);
    let Some(&(near, LeakChange::Started(_))) = near.first() else { panic!("{near:?}") };
    assert!(near < far, "near the limit at {near} s, far from it at {far} s");
    assert!(far - near >= 60.0, "at least a minute sooner: {near} s vs {far} s");
}

#[test]
fn still_rising_reads_the_last_minute_of_readings_or_the_last_two_readings() {
    let trend = Trend { slope_bytes_per_s: MIB, confidence: 1.0, fit: 1.0, window_secs: 600.0 };
    let fed = |every: u32, usage: &dyn Fn(f64) -> f64| {
        let mut history = History::default();
        let mut t = 0.0;
        for i in 0..600 / every {
            t = f64::from(i * every);
            history.push(t, usage(t) as u64);
        }
        still_rising(&history, t, &trend)
    };
    assert!(fed(5, &|t| t * MIB), "rising at the trend's pace");
    assert!(!fed(5, &|t| t.min(200.0) * MIB), "flat for its last minutes");
    assert!(!fed(5, &|t| t * 0.4 * MIB), "rising at less than half the pace");
    assert!(fed(1, &|t| t * MIB), "a reading a second: the minute before from the minute points");
    assert!(!fed(1, &|t| t.min(500.0) * MIB), "a reading a second, flat");
    assert!(fed(120, &|t| t * MIB), "one reading every two minutes, rising");
    assert!(!fed(120, &|t| t.min(200.0) * MIB), "one reading every two minutes, flat");
}

#[test]
fn a_job_that_tops_out_just_under_its_limit_is_not_hurried() {
    // After 15 quiet minutes on 500 MiB, a job builds 60 MiB a minute for
    // 8 minutes, to 980 of 1024 MiB, holds it for 3 and frees it. The lower
    // envelope still rises two minutes into the hold, when the time left
    // is seconds; the raw readings are flat by then.
    let job = |t: f64| {
        let built = match t - 900.0 {
            s if s < 0.0 => 0.0,
            s if s < 480.0 => 60.0 * MIB * s / 60.0,
            s if s < 660.0 => 480.0 * MIB,
            _ => 0.0,
        };
        500.0 * MIB + built + MIB * noise(t)
    };
    assert_eq!(changes_under_a_gib(3600, job), []);
    // The same build going on, a leak: still hurried by its limit.
    let leak = |t: f64| 500.0 * MIB + 60.0 * MIB * (t - 900.0).max(0.0) / 60.0 + MIB * noise(t);
    let (far, _) = first_verdict(3600, leak).unwrap();
    let near = changes_under_a_gib(3600, leak);
    assert!(matches!(near.first(), Some(&(t, LeakChange::Started(_))) if t <= far - 60.0), "{near:?}, far: {far} s");
}

/// The first verdict on `usage` (every 5 s for `secs`) with `bounds`.
fn first_verdict_within(secs: u32, bounds: Bounds, usage: impl Fn(f64) -> f64) -> Option<f64> {
    let mut history = History::default();
    let mut detector = LeakDetector::default();
    (0..secs / 5).find_map(|i| {
        let t = f64::from(i) * 5.0;
        let closed = history.push(t, usage(t).max(0.0) as u64);
        let change =
            closed.then(|| detector.evaluate(&history, t, bounds, &LeakSettings::DEFAULT, &mut Scratch::default()));
        matches!(change, Some(Some(LeakChange::Started(_)))).then_some(t)
    })
}

#[test]
fn growth_at_a_runtimes_heap_ceiling_is_its_heap_not_a_leak_and_growth_past_it_is_judged() {
    let gib = 1024.0 * MIB;
    let at = Bounds { heap_ceiling: Some(HeapCeiling::hard(1 << 30)), ..Bounds::limit(LIMIT) };
    assert!(!at.at_heap_ceiling(gib - 1.0) && at.at_heap_ceiling(gib) && at.at_heap_ceiling(1.25 * gib + 64.0 * MIB));
    assert!(!at.at_heap_ceiling(1.25 * gib + 65.0 * MIB), "past the allowance");
    assert!(!Bounds::limit(LIMIT).at_heap_ceiling(gib), "no ceiling declared");
    let go = Bounds { heap_ceiling: Some(HeapCeiling { bytes: 1 << 30, soft: true }), ..Bounds::limit(LIMIT) };
    assert!(go.at_heap_ceiling(gib + 64.0 * MIB) && !go.at_heap_ceiling(gib + 65.0 * MIB), "GOMEMLIMIT: soft");
    // GOMEMLIMIT close to a 1 GiB limit: nothing from 90% of it up is set aside.
    let soft_at =
        |mib: u64| Bounds { heap_ceiling: Some(HeapCeiling { bytes: mib << 20, soft: true }), ..Bounds::limit(gib) };
    assert!((973..1024).all(|mib| !soft_at(973).at_heap_ceiling(f64::from(mib) * MIB)), "a leak about to be killed");
    assert!(soft_at(900).at_heap_ceiling(910.0 * MIB) && !soft_at(900).at_heap_ceiling(930.0 * MIB));
    let hard_near = Bounds { heap_ceiling: Some(HeapCeiling::hard(900 << 20)), ..Bounds::limit(gib) };
    assert!(hard_near.at_heap_ceiling(1000.0 * MIB), "a JVM's heap stops at -Xmx wherever its limit");

    // Set aside: the heap's growth to its ceiling, and what settles over a
    // full heap; judged: growth over it that would soon pass the allowance.
    let mut minutes = Ring::new(60);
    for minute in 0..30 {
        // Up to the ceiling over 15 minutes, then 60 MiB above it.
        let y = if minute < 15 { 0.5 * gib + f64::from(minute) * 0.034 * gib } else { gib + 60.0 * MIB };
        minutes.push(Point { t: f64::from(minute) * 60.0, y });
    }
    let rising = |mib_per_h: f64, window_minutes: f64| Trend {
        slope_bytes_per_s: mib_per_h * MIB / 3600.0,
        confidence: 1.0,
        fit: 1.0,
        window_secs: window_minutes * 60.0,
    };
    assert!(at.heap_sizing(&minutes, &rising(2000.0, 20.0)), "the window holds the heap's growth");
    assert!(at.heap_sizing(&minutes, &rising(100.0, 10.0)), "settling within the allowance for the hour");
    assert!(!at.heap_sizing(&minutes, &rising(300.0, 10.0)), "leaving the allowance within the hour");
    assert!(!Bounds::limit(LIMIT).heap_sizing(&minutes, &rising(100.0, 10.0)), "no ceiling declared");
    // 200 MiB/h over a full heap (from just above its 1 GiB ceiling): past
    // the allowance after 80 minutes, found once within an hour of it.
    let above = |t: f64| 1.05 * gib + 200.0 * MIB * t / 3600.0 + 2.0 * MIB * noise(t);
    let found = first_verdict_within(3600, at, above);
    assert!(found.is_some_and(|t| t < 40.0 * 60.0), "growing over a full heap: {found:?}");
    // A JVM's own memory settling over a full heap near its limit: 30 MiB
    // more over its first hour, ever slower.
    let near = Bounds { heap_ceiling: Some(HeapCeiling::hard(1 << 30)), ..Bounds::limit(1.2 * gib) };
    let settling = |t: f64| 1.1 * gib + 30.0 * MIB * (1.0 - (-t / 3600.0).exp()) + 0.3 * MIB * noise(t);
    assert_eq!(first_verdict_within(3600, near, settling), None, "settling over a full heap");
    let no_ceiling = Bounds::limit(1.2 * gib);
    assert!(first_verdict_within(3600, no_ceiling, settling).is_some(), "the same growth, no ceiling");
    // The runtime's own memory growing far past its heap's ceiling.
    let small = Bounds { heap_ceiling: Some(HeapCeiling::hard(100 << 20)), ..Bounds::limit(LIMIT) };
    let native = |t: f64| 400.0 * MIB + 300.0 * MIB * t / 3600.0 + 2.0 * MIB * noise(t);
    assert!(first_verdict_within(3600, small, native).is_some_and(|t| t < 20.0 * 60.0));
}

#[test]
fn the_explanation_follows_the_confirmation_and_dates_each_window_s_test() {
    // 200 MiB/h on 500 MiB: a leak from the start, held for the policy's
    // three minutes before it is announced.
    let rate = 200.0 * MIB / 3600.0;
    let mut history = History::default();
    let mut detector = LeakDetector::default();
    let mut held = Vec::new();
    let (mut previous_test, mut carried_over) = (None, 0);
    for i in 0..(45 * 60 / 5) {
        let t = f64::from(i) * 5.0;
        if !history.push(t, (500.0 * MIB + rate * t + MIB * noise(t)) as u64) {
            continue;
        }
        let change =
            detector.evaluate(&history, t, Bounds::limit(LIMIT), &LeakSettings::DEFAULT, &mut Scratch::default());
        let explained = detector.explain(t);
        let confirming = !explained.reported || matches!(change, Some(LeakChange::Started(_)));
        if confirming && matches!(explained.verdict, Verdict::Leak(_)) {
            held.push((explained.held_for_secs, explained.confirm_after_secs));
        }
        assert_eq!(explained.reported, detector.is_leaking());
        // The 30-minute window (two minutes to a point) is tested when the
        // history first covers it, then every other minute; its outcome in
        // between is the one before.
        if let Some(tested) = explained.windows[2] {
            let minute = (history.minutes().newest().unwrap().t / 60.0).floor() as i64;
            let carried = previous_test.filter(|_| minute % 2 != 0);
            assert_eq!(tested.at, carried.unwrap_or(t), "at {t}");
            carried_over += usize::from(carried.is_some());
            previous_test = Some(tested.at);
        }
    }
    assert!(carried_over >= 5, "{carried_over}");
    assert_eq!(
        held,
        [0.0, 60.0, 120.0, 180.0].map(|s| (Some(s), Some(180.0))),
        "held for 0 to 3 minutes, announced at the third"
    );
}
