//! The seed's leak rule, kept as a separate, comparable signal: "average
//! growth over the last 10 checks above 5 MB per check".
//!
//! It is a fixed-size difference, so it fires on anything that grows 50 MB
//! within 10 readings (a single big allocation, a GC cycle's upswing, a batch
//! job) and never on a leak slower than 5 MB per reading (3.6 GB/h at 5 s).
//! The scorer measures exactly how bad that is; the engine's verdict never
//! depends on it.
use super::history::Point;
use super::ring::Ring;

/// Checks the seed averaged over.
pub const SEED_CHECKS: usize = 10;
/// The seed's growth limit per check ("5 MB": the seed meant MiB).
pub const SEED_BYTES_PER_CHECK: f64 = 5.0 * 1024.0 * 1024.0;

/// The average growth per check over the last ten checks, when it exceeds
/// the seed's limit.
pub fn seed_rule(recent: &Ring<Point>) -> Option<f64> {
    let now = recent.newest()?;
    let then = recent.back(SEED_CHECKS)?;
    let per_check = (now.y - then.y) / SEED_CHECKS as f64;
    (per_check > SEED_BYTES_PER_CHECK).then_some(per_check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(values: impl IntoIterator<Item = f64>) -> Ring<Point> {
        let mut ring = Ring::new(60);
        for (i, y) in values.into_iter().enumerate() {
            ring.push(Point { t: i as f64 * 5.0, y });
        }
        ring
    }

    #[test]
    fn fires_above_five_mib_per_check_only_with_ten_checks_of_history() {
        let mib = 1024.0 * 1024.0;
        assert_eq!(seed_rule(&ring((0..10).map(|i| f64::from(i) * 100.0 * mib))), None);
        assert_eq!(seed_rule(&ring((0..11).map(|i| f64::from(i) * 6.0 * mib))), Some(6.0 * mib));
        assert_eq!(seed_rule(&ring((0..11).map(|i| f64::from(i) * 4.0 * mib))), None);
    }
}
