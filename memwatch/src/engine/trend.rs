//! Trend statistics on short series (at most a few dozen points).
//!
//! Why these tools:
//! - **Theil–Sen slope** (median of pairwise slopes): memory series are full
//!   of outliers (a burst of requests, a GC that has not run yet). Least
//!   squares lets one outlier tilt the line; Theil–Sen ignores up to ~29% of
//!   arbitrary points and needs no normal noise.
//! - **Mann–Kendall test**: is the series monotone increasing beyond chance?
//!   It only compares ranks, so it is indifferent to the noise's shape and
//!   scale, and gives a p-value we report as confidence.
//! - **Line vs single step**: a kept allocation is monotone too, so Mann–Kendall
//!   and Theil–Sen alone call it a leak. A leak keeps growing; a step grows once.
//!   Comparing how well the Theil–Sen line fits with how well the best
//!   two-level step fits (least squares over every break point) tells them apart.
//! - **Slope of the first vs last third**: a cache warming up grows fast then
//!   flattens; a leak grows at a steady (or rising) rate. A late slope far
//!   below the early one marks a curve that is levelling off.
//!
//! Everything here is a pure function of its input; medians use a total order
//! so ties and NaNs cannot make results depend on sort internals.
use super::history::Point;

/// Median of `values` (reordered in place); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (_, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..mid].iter().copied().max_by(f64::total_cmp).expect("mid >= 1");
    Some((lower + upper) / 2.0)
}

/// Theil–Sen slope (y units per t unit) of `points`, using `scratch` to avoid
/// allocating on every call. `None` with fewer than two distinct times.
pub fn theil_sen(points: &[Point], scratch: &mut Vec<f64>) -> Option<f64> {
    scratch.clear();
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            let dt = b.t - a.t;
            if dt > 0.0 {
                scratch.push((b.y - a.y) / dt);
            }
        }
    }
    median(scratch)
}

/// The Theil–Sen line's intercept at t = 0: the median of `y - slope * t`.
pub fn intercept(points: &[Point], slope: f64, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(points.iter().map(|p| p.y - slope * p.t));
    median(scratch).unwrap_or(0.0)
}

/// The outcome of a one-sided Mann–Kendall test for an increasing trend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    /// Concordant minus discordant pairs.
    pub s: i64,
    /// Normal score with continuity correction.
    pub z: f64,
    /// Probability of an S this large without a trend.
    pub p_value: f64,
}

/// Mann–Kendall on `points` taken in time order. The variance is corrected
/// for tied values (a process whose RSS does not move for a while is common:
/// pages are only counted when touched). The normal approximation is the
/// standard one and is adequate from about 10 points on, which is the
/// smallest window the leak detector uses.
pub fn mann_kendall(points: &[Point], scratch: &mut Vec<f64>) -> MannKendall {
    let n = points.len();
    let mut s: i64 = 0;
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            s += match b.y.total_cmp(&a.y) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
            };
        }
    }
    // Tie groups: sort the values and count runs of equal ones.
    scratch.clear();
    scratch.extend(points.iter().map(|p| p.y));
    scratch.sort_unstable_by(f64::total_cmp);
    let mut tie_term = 0.0;
    let mut run = 1usize;
    for i in 1..=scratch.len() {
        if i < scratch.len() && scratch[i] == scratch[i - 1] {
            run += 1;
        } else {
            let t = run as f64;
            tie_term += t * (t - 1.0) * (2.0 * t + 5.0);
            run = 1;
        }
    }
    let nf = n as f64;
    let variance = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - tie_term) / 18.0;
    let z = if variance <= 0.0 {
        0.0
    } else if s > 0 {
        (s as f64 - 1.0) / variance.sqrt()
    } else if s < 0 {
        (s as f64 + 1.0) / variance.sqrt()
    } else {
        0.0
    };
    MannKendall { s, z, p_value: normal_upper_tail(z) }
}

/// P(Z > z) for a standard normal Z, from the complementary error function
/// (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7: far finer than
/// any decision made with it). Written out rather than taken from a crate so
/// the engine's numbers depend on nothing but IEEE arithmetic and `exp`.
pub fn normal_upper_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let erfc_abs = {
        let a = x.abs();
        let t = 1.0 / (1.0 + 0.327_591_1 * a);
        let poly =
            t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        poly * (-a * a).exp()
    };
    let erfc = if x >= 0.0 { erfc_abs } else { 2.0 - erfc_abs };
    (erfc / 2.0).clamp(0.0, 1.0)
}

/// How far the curvature of `points` is from none, in standard errors:
/// the quadratic term of a least-squares fit `a + b t + c t^2` over its
/// standard error. Strongly negative is a curve levelling off (a warm-up
/// slowing down), whatever the growth rate; a straight or accelerating
/// rise is near 0 or positive. `None` below 5 points or on a perfect fit
/// (no noise to compare with).
///
/// Least squares, not ranks: what is asked is the shape of the bend, and
/// the window's points are already minima (bursts removed), so outliers
/// are few. The quadratic is made orthogonal to the line so the two are
/// estimated independently and the sums stay exact on byte-sized values.
pub fn curvature_z(points: &[Point]) -> Option<f64> {
    let n = points.len();
    if n < 5 {
        return None;
    }
    let nf = n as f64;
    let mean_t = points.iter().map(|p| p.t).sum::<f64>() / nf;
    let mean_y = points.iter().map(|p| p.y).sum::<f64>() / nf;
    let centred = |p: &Point| p.t - mean_t;
    let tt: f64 = points.iter().map(|p| centred(p).powi(2)).sum();
    if tt <= 0.0 {
        return None;
    }
    let mean_sq = tt / nf;
    // t^2 less its mean and its projection on t: orthogonal to 1 and t.
    let cubed: f64 = points.iter().map(|p| centred(p).powi(3)).sum();
    let quadratic = |p: &Point| centred(p).powi(2) - mean_sq - cubed / tt * centred(p);
    let qq: f64 = points.iter().map(|p| quadratic(p).powi(2)).sum();
    if qq <= 0.0 {
        return None;
    }
    let slope = points.iter().map(|p| centred(p) * (p.y - mean_y)).sum::<f64>() / tt;
    let curvature = points.iter().map(|p| quadratic(p) * (p.y - mean_y)).sum::<f64>() / qq;
    let sse: f64 = points.iter().map(|p| (p.y - mean_y - slope * centred(p) - curvature * quadratic(p)).powi(2)).sum();
    // A fit exact to rounding leaves no noise to measure the bend against.
    let spread: f64 = points.iter().map(|p| (p.y - mean_y).powi(2)).sum();
    if sse <= 1e-18 * spread {
        return None;
    }
    let variance = sse / (nf - 3.0);
    Some(curvature / (variance / qq).sqrt())
}

/// The share of the points' variance a line whose squared error around
/// them is `line_sse` ([`line_sse`]) accounts for (R², at least 0: a
/// Theil–Sen line is not fitted to the squares, so it can do worse than the
/// mean); 1 for points too flat to have any variance.
pub fn r_squared(points: &[Point], line_sse: f64) -> f64 {
    let n = points.len() as f64;
    let mean = points.iter().map(|p| p.y).sum::<f64>() / n;
    let total: f64 = points.iter().map(|p| (p.y - mean).powi(2)).sum();
    if total <= 0.0 {
        return 1.0;
    }
    (1.0 - line_sse / total).max(0.0)
}

/// Sum of squared residuals of `points` around the line `a + b t`.
pub fn line_sse(points: &[Point], intercept: f64, slope: f64) -> f64 {
    points.iter().map(|p| (p.y - intercept - slope * p.t).powi(2)).sum()
}

/// Sum of squared residuals of the best two-level step (a constant before a
/// break, another after it), over every break leaving at least `min_side`
/// points on each side. `None` when the series is too short for any break.
pub fn best_step_sse(points: &[Point], min_side: usize) -> Option<f64> {
    let n = points.len();
    if n < 2 * min_side.max(1) {
        return None;
    }
    // Centre the values first: the SSE formula below subtracts large,
    // nearly equal numbers, and bytes around 1e10 squared would lose digits.
    let mean = points.iter().map(|p| p.y).sum::<f64>() / n as f64;
    let total: f64 = points.iter().map(|p| p.y - mean).sum();
    let total_sq: f64 = points.iter().map(|p| (p.y - mean).powi(2)).sum();
    let (mut left, mut left_sq) = (0.0, 0.0);
    let mut best = f64::INFINITY;
    for (k, p) in points.iter().enumerate().take(n - min_side.max(1)) {
        let y = p.y - mean;
        left += y;
        left_sq += y * y;
        let left_n = (k + 1) as f64;
        if k + 1 < min_side.max(1) {
            continue;
        }
        let right_n = (n - k - 1) as f64;
        let right = total - left;
        let right_sq = total_sq - left_sq;
        let sse = (left_sq - left * left / left_n) + (right_sq - right * right / right_n);
        best = best.min(sse.max(0.0));
    }
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<Point> {
        values.iter().enumerate().map(|(i, &y)| Point { t: i as f64, y }).collect()
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn theil_sen_ignores_outliers_least_squares_would_follow() {
        let mut values: Vec<f64> = (0..20).map(|i| 100.0 + 2.0 * f64::from(i)).collect();
        values[3] = 10_000.0;
        values[15] = -5_000.0;
        let slope = theil_sen(&series(&values), &mut Vec::new()).unwrap();
        assert!((slope - 2.0).abs() < 1e-9, "{slope}");
    }

    #[test]
    fn mann_kendall_tells_a_trend_from_noise() {
        let mut scratch = Vec::new();
        let rising = series(&(0..20).map(f64::from).collect::<Vec<_>>());
        let mk = mann_kendall(&rising, &mut scratch);
        assert_eq!(mk.s, 190);
        assert!(mk.p_value < 1e-6, "{mk:?}");
        let zigzag = series(&(0..20).map(|i| f64::from(i % 2)).collect::<Vec<_>>());
        let mk = mann_kendall(&zigzag, &mut scratch);
        assert!(mk.p_value > 0.3, "{mk:?}");
        let flat = series(&[5.0; 12]);
        assert!((mann_kendall(&flat, &mut scratch).p_value - 0.5).abs() < 1e-6);
    }

    #[test]
    fn normal_tail_matches_known_values() {
        assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_upper_tail(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_upper_tail(-1.644_854) - 0.95).abs() < 1e-6);
    }

    #[test]
    fn curvature_tells_a_warm_up_from_a_line_and_an_acceleration() {
        // The same small alternating noise on each, so the fits have residuals.
        let shaped = |f: fn(f64) -> f64| {
            series(&(0..20).map(|i| f(f64::from(i)) + if i % 2 == 0 { 0.5 } else { -0.5 }).collect::<Vec<_>>())
        };
        let warm_up = curvature_z(&shaped(|t| 100.0 * (1.0 - (-t / 15.0).exp()))).unwrap();
        let line = curvature_z(&shaped(|t| 3.0 * t)).unwrap();
        let accelerating = curvature_z(&shaped(|t| 3.0 * t + 0.1 * t * t)).unwrap();
        assert!(warm_up < -10.0, "{warm_up}");
        assert!(line.abs() < 1.0, "{line}");
        assert!(accelerating > 10.0, "{accelerating}");
        assert_eq!(curvature_z(&series(&[1.0, 2.0, 3.0, 4.0])), None);
        assert_eq!(curvature_z(&series(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])), None, "a perfect line has no noise");
    }

    #[test]
    fn a_step_fits_a_step_and_a_line_fits_a_ramp() {
        let step = series(&[0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 10.0, 10.0]);
        assert_eq!(best_step_sse(&step, 2), Some(0.0));
        let mut scratch = Vec::new();
        let slope = theil_sen(&step, &mut scratch).unwrap();
        let a = intercept(&step, slope, &mut scratch);
        assert!(line_sse(&step, a, slope) > 50.0);

        let ramp = series(&(0..10).map(f64::from).collect::<Vec<_>>());
        let slope = theil_sen(&ramp, &mut scratch).unwrap();
        let a = intercept(&ramp, slope, &mut scratch);
        assert!(line_sse(&ramp, a, slope) < 1e-12);
        assert!((r_squared(&ramp, line_sse(&ramp, a, slope)) - 1.0).abs() < 1e-12);
        let step_slope = theil_sen(&step, &mut scratch).unwrap();
        let step_fit = r_squared(&step, line_sse(&step, intercept(&step, step_slope, &mut scratch), step_slope));
        assert!((0.0..0.9).contains(&step_fit), "a line explains a step only in part: {step_fit}");
        assert_eq!(r_squared(&series(&[3.0; 5]), 0.0), 1.0);
        assert!(best_step_sse(&ramp, 2).unwrap() > 10.0);
    }
}
