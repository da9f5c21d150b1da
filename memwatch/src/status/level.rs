//! Levels and thresholds. A tiny pure stand-in for the engine (issue 3),
//! which replaces `level_for` with its per-target policy.
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Normal,
    Warning,
    Critical,
    Emergency,
}

impl Level {
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Warning => "warning",
            Level::Critical => "critical",
            Level::Emergency => "emergency",
        }
    }

    /// The value of `memwatch.target.state` (0..3).
    pub const fn index(self) -> u8 {
        self as u8
    }
}

impl From<crate::engine::Level> for Level {
    fn from(level: crate::engine::Level) -> Self {
        use crate::engine::Level as Engine;
        match level {
            Engine::Normal => Level::Normal,
            Engine::Warning => Level::Warning,
            Engine::Critical => Level::Critical,
            Engine::Emergency => Level::Emergency,
        }
    }
}

/// Usage ratios (of the limit) at which each level starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub warning: f64,
    pub critical: f64,
    pub emergency: f64,
}

impl Default for Thresholds {
    /// The seed's thresholds.
    fn default() -> Self {
        Self {
            warning: 0.80,
            critical: 0.90,
            emergency: 0.95,
        }
    }
}

/// The level of a target using `ratio` of its limit.
pub fn level_for(ratio: f64, thresholds: &Thresholds) -> Level {
    if ratio >= thresholds.emergency {
        Level::Emergency
    } else if ratio >= thresholds.critical {
        Level::Critical
    } else if ratio >= thresholds.warning {
        Level::Warning
    } else {
        Level::Normal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_start_at_their_thresholds() {
        let t = Thresholds::default();
        assert_eq!(level_for(0.0, &t), Level::Normal);
        assert_eq!(level_for(0.7999, &t), Level::Normal);
        assert_eq!(level_for(0.80, &t), Level::Warning);
        assert_eq!(level_for(0.90, &t), Level::Critical);
        assert_eq!(level_for(0.95, &t), Level::Emergency);
        assert_eq!(level_for(1.5, &t), Level::Emergency);
        assert_eq!(Level::Emergency.index(), 3);
    }
}
