//! Each test of a window on a shape made to fail it alone: the outcome
//! names that test and the figure it failed on (`memwatch replay --explain`
//! prints them).
use super::*;

const MIB: f64 = 1024.0 * 1024.0;

/// One point a minute, in MiB above 500 MiB.
fn outcome(values_mib: impl IntoIterator<Item = f64>) -> Outcome {
    let points: Vec<Point> = values_mib
        .into_iter()
        .enumerate()
        .map(|(i, y)| Point { t: i as f64 * 60.0, y: 500.0 * MIB + y * MIB })
        .collect();
    test(&points, 1440.0, &LeakSettings::DEFAULT, &mut Vec::new())
}

/// 24 minutes rising `mib_per_min`, half a MiB of noise either way.
fn line(mib_per_min: f64) -> impl Iterator<Item = f64> {
    (0..24).map(move |i| mib_per_min * i as f64 + if i % 2 == 0 { 0.5 } else { -0.5 })
}

#[test]
fn a_straight_rise_is_a_leak() {
    let found = outcome(line(2.0));
    let Outcome::Leak(trend) = found else { panic!("{found:?}") };
    assert!((trend.slope_bytes_per_s / (2.0 * MIB / 60.0) - 1.0).abs() < 0.01, "{trend:?}");
    assert!(trend.confidence > 1.0 - MAX_P_VALUE && trend.fit > 0.99, "{trend:?}");
}

#[test]
fn too_few_points_and_a_fall_are_no_leak() {
    assert_eq!(outcome(line(2.0).take(MIN_WINDOW_POINTS - 1)), Outcome::NoLeak(Veto::TooFewPoints));
    assert_eq!(outcome(line(-2.0)), Outcome::NoLeak(Veto::NotRising));
}

#[test]
fn a_rise_below_the_policy_s_rate_says_how_fast_it_is() {
    let found = outcome(line(0.05));
    let Outcome::NoLeak(Veto::BelowMinRate { slope_bytes_per_s }) = found else { panic!("{found:?}") };
    assert!((slope_bytes_per_s / (0.05 * MIB / 60.0) - 1.0).abs() < 0.01, "{slope_bytes_per_s}");
}

#[test]
fn noise_around_a_slight_rise_is_not_significant() {
    let noisy = (0..24).map(|i| [0.0, 30.0, 5.0, 25.0, 10.0, 20.0][i % 6] + 0.3 * i as f64);
    let found = outcome(noisy);
    let Outcome::NoLeak(Veto::NotSignificant { p_value }) = found else { panic!("{found:?}") };
    // Nowhere near: a cycle of six minutes repeated four times has no trend
    // a rank test can see beyond chance.
    assert!(p_value > 0.05, "{p_value}");
}

#[test]
fn an_allocation_kept_on_a_slow_rise_is_a_step() {
    let kept = line(1.0).enumerate().map(|(i, y)| if i >= 18 { y + 30.0 } else { y });
    let found = outcome(kept);
    let Outcome::NoLeak(Veto::StepFitsBetter { line_to_step }) = found else { panic!("{found:?}") };
    // 30 MiB kept at once against 1 MiB a minute: the step is the shape,
    // its error several times below the line's.
    assert!(line_to_step > 3.0, "{line_to_step}");
}

#[test]
fn a_warm_up_levels_off_by_its_thirds_and_its_bend() {
    let warm = (0..24).map(|i| 200.0 * (1.0 - (-f64::from(i) / 8.0).exp()));
    let found = outcome(warm);
    let Outcome::LevellingOff { reaccelerating, late_to_early, bend_z } = found else { panic!("{found:?}") };
    // exp(-16/8): the late third's pace against the early third's.
    assert!((late_to_early - (-2.0f64).exp()).abs() < 0.01, "{late_to_early}");
    assert!(bend_z.is_some_and(|z| z < -MAX_CURVATURE_Z), "{bend_z:?}");
    assert!(!reaccelerating);
}

#[test]
fn a_deep_fall_inside_a_rise_is_memory_coming_back() {
    let dip = line(5.0).enumerate().map(|(i, y)| if i == 12 { y - 70.0 } else { y });
    let found = outcome(dip);
    let Outcome::NoLeak(Veto::LargeFall { fall_to_rise }) = found else { panic!("{found:?}") };
    // The 70 MiB fall from the 11th minute's high against the trend's rise
    // over 23 minutes: a little more than half of it.
    let rise = 5.0 * 23.0;
    assert!((fall_to_rise - (70.0 - 5.0 - 1.0) / rise).abs() < 0.05, "{fall_to_rise} of {rise} MiB");
}
