//! Sustained memory pressure as a floor under a target's level.
//!
//! A cgroup can be in trouble well below its limit: when the host is short
//! of memory, its tasks stall in reclaim whatever their own usage. PSI
//! measures that stall (the share of time some task waited for memory), and
//! a policy may say that so many percent of stall, held for so long, is a
//! warning or a critical level. Off unless a policy sets it: what stall is
//! too much depends on the service.
use super::levels::Level;

/// A policy's pressure thresholds, in percent of `some avg10`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PressureSettings {
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// How long a threshold must be held before it raises the level: avg10
    /// moves within seconds, and one burst of reclaim is no trouble.
    pub sustain_secs: f64,
}

impl PressureSettings {
    pub const DEFAULT: PressureSettings = PressureSettings { warning: None, critical: None, sustain_secs: 60.0 };
}

impl Default for PressureSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// When each threshold was first reached, while it still is.
#[derive(Debug, Clone, Default)]
pub struct PressureWatch {
    warning_since: Option<f64>,
    critical_since: Option<f64>,
}

impl PressureWatch {
    /// The level sustained pressure holds the target at, after a reading at
    /// `t` of `some_avg10` (`None`: not measured, which holds nothing).
    pub fn floor(&mut self, t: f64, some_avg10: Option<f64>, settings: &PressureSettings) -> Level {
        let mut floor = Level::Normal;
        for (level, threshold, since) in [
            (Level::Warning, settings.warning, &mut self.warning_since),
            (Level::Critical, settings.critical, &mut self.critical_since),
        ] {
            let reached = matches!((threshold, some_avg10), (Some(threshold), Some(stall)) if stall >= threshold);
            if !reached {
                *since = None;
                continue;
            }
            if t - *since.get_or_insert(t) >= settings.sustain_secs {
                floor = level;
            }
        }
        floor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: PressureSettings =
        PressureSettings { warning: Some(20.0), critical: Some(50.0), sustain_secs: 60.0 };

    fn floors(readings: &[(f64, Option<f64>)], settings: &PressureSettings) -> Vec<Level> {
        let mut watch = PressureWatch::default();
        readings.iter().map(|&(t, stall)| watch.floor(t, stall, settings)).collect()
    }

    #[test]
    fn pressure_raises_the_level_only_once_held_for_the_sustain_time() {
        let readings =
            [(0.0, Some(30.0)), (30.0, Some(30.0)), (60.0, Some(60.0)), (90.0, Some(60.0)), (120.0, Some(60.0))];
        use Level::*;
        assert_eq!(floors(&readings, &SETTINGS), [Normal, Normal, Warning, Warning, Critical]);
    }

    #[test]
    fn a_dip_below_the_threshold_or_an_unmeasured_reading_starts_the_wait_again() {
        let readings =
            [(0.0, Some(30.0)), (50.0, Some(10.0)), (55.0, Some(30.0)), (100.0, Some(30.0)), (115.0, Some(30.0))];
        assert_eq!(
            floors(&readings, &SETTINGS),
            [Level::Normal, Level::Normal, Level::Normal, Level::Normal, Level::Warning]
        );
        let unmeasured = [(0.0, Some(30.0)), (50.0, None), (70.0, Some(30.0))];
        assert_eq!(floors(&unmeasured, &SETTINGS), [Level::Normal; 3]);
    }

    #[test]
    fn without_thresholds_pressure_holds_nothing() {
        assert_eq!(floors(&[(0.0, Some(100.0)), (600.0, Some(100.0))], &PressureSettings::DEFAULT), [Level::Normal; 2]);
    }
}
