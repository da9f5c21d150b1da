//! The four-level threshold state machine, with hysteresis on the way down.
//!
//! Up moves are immediate: a target at 96% of its limit must be handled now,
//! even if it jumped there from 50% in one interval. Down moves wait until
//! usage has stayed below the level's threshold minus a margin for N
//! consecutive samples, so a target hovering at a threshold does not flap and
//! fire the same actions every interval.
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

    /// The value of the `memwatch.target.state` metric (0..3).
    pub const fn index(self) -> u8 {
        self as u8
    }

    const fn below(self) -> Option<Level> {
        match self {
            Level::Normal => None,
            Level::Warning => Some(Level::Normal),
            Level::Critical => Some(Level::Warning),
            Level::Emergency => Some(Level::Critical),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Fractions of the limit at which each level is entered. Validated by the
/// config (strictly increasing, within (0, 1]) before they get here.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub warning: f64,
    pub critical: f64,
    pub emergency: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Thresholds {
    /// The seed's table.
    pub const DEFAULT: Thresholds = Thresholds { warning: 0.80, critical: 0.90, emergency: 0.95 };

    /// The fraction at which `level` is entered (0 for normal).
    pub fn entry(&self, level: Level) -> f64 {
        match level {
            Level::Normal => 0.0,
            Level::Warning => self.warning,
            Level::Critical => self.critical,
            Level::Emergency => self.emergency,
        }
    }

    /// The highest level whose threshold `ratio` reaches.
    pub fn level_for(&self, ratio: f64) -> Level {
        if ratio >= self.emergency {
            Level::Emergency
        } else if ratio >= self.critical {
            Level::Critical
        } else if ratio >= self.warning {
            Level::Warning
        } else {
            Level::Normal
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hysteresis {
    /// How far below a level's threshold usage must fall to count towards leaving it.
    pub margin: f64,
    /// Consecutive samples below (threshold - margin) before stepping down.
    pub samples: u32,
}

impl Hysteresis {
    /// The defaults: 5 points of the limit, three samples (15 s at 5 s).
    pub const DEFAULT: Hysteresis = Hysteresis { margin: 0.05, samples: 3 };
}

/// A change of level, for the caller to turn into an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Level,
    pub to: Level,
}

#[derive(Debug, Clone, Default)]
pub struct LevelMachine {
    level: Level,
    below_for: u32,
}

impl LevelMachine {
    pub fn level(&self) -> Level {
        self.level
    }

    /// Feeds one reading as a fraction of the limit; `floor` is the level
    /// something else holds the target at (sustained pressure), which it
    /// rises to at once and does not fall below.
    pub fn observe(
        &mut self,
        ratio: f64,
        floor: Level,
        thresholds: &Thresholds,
        hysteresis: &Hysteresis,
    ) -> Option<Transition> {
        let from = self.level;
        let reached = thresholds.level_for(ratio).max(floor);
        if reached > from {
            self.level = reached;
            self.below_for = 0;
            return Some(Transition { from, to: reached });
        }
        let exit_line = |level: Level| thresholds.entry(level) - hysteresis.margin;
        if from == Level::Normal || ratio >= exit_line(from) || floor >= from {
            self.below_for = 0;
            return None;
        }
        self.below_for += 1;
        if self.below_for < hysteresis.samples.max(1) {
            return None;
        }
        // Land on the highest lower level whose own exit line the reading is
        // not below: one step when usage eased off a little, straight to
        // normal when it fell away entirely.
        let mut to = from.below().expect("from is above normal");
        while to != Level::Normal && ratio < exit_line(to) {
            to = to.below().expect("to is above normal");
        }
        let to = to.max(floor);
        self.level = to;
        self.below_for = 0;
        Some(Transition { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(machine: &mut LevelMachine, ratios: &[f64]) -> Vec<Option<(Level, Level)>> {
        ratios
            .iter()
            .map(|&r| {
                machine.observe(r, Level::Normal, &Thresholds::DEFAULT, &Hysteresis::DEFAULT).map(|t| (t.from, t.to))
            })
            .collect()
    }

    #[test]
    fn goes_up_immediately_even_several_levels_at_once() {
        let mut machine = LevelMachine::default();
        assert_eq!(feed(&mut machine, &[0.5, 0.96]), [None, Some((Level::Normal, Level::Emergency))]);
        assert_eq!(machine.level(), Level::Emergency);
    }

    #[test]
    fn goes_down_only_after_n_samples_below_threshold_minus_margin() {
        let mut machine = LevelMachine::default();
        feed(&mut machine, &[0.91]);
        assert_eq!(machine.level(), Level::Critical);
        // 0.86 is below 0.90 but within the margin: no progress towards leaving.
        assert_eq!(feed(&mut machine, &[0.86, 0.86, 0.86, 0.86]), [None; 4]);
        // Two below the exit line, then one back above it resets the count.
        assert_eq!(feed(&mut machine, &[0.84, 0.84, 0.87, 0.84, 0.84]), [None; 5]);
        assert_eq!(machine.level(), Level::Critical);
        assert_eq!(feed(&mut machine, &[0.84]), [Some((Level::Critical, Level::Warning))]);
    }

    #[test]
    fn a_deep_drop_lands_on_the_level_the_reading_belongs_to() {
        let mut machine = LevelMachine::default();
        feed(&mut machine, &[0.97]);
        assert_eq!(feed(&mut machine, &[0.10, 0.10, 0.10]), [None, None, Some((Level::Emergency, Level::Normal))]);
        let mut machine = LevelMachine::default();
        feed(&mut machine, &[0.97]);
        assert_eq!(
            feed(&mut machine, &[0.78, 0.78, 0.78]),
            [None, None, Some((Level::Emergency, Level::Warning))],
            "0.78 is not below warning's exit line (0.75)"
        );
    }

    #[test]
    fn up_moves_reset_the_down_count() {
        let mut machine = LevelMachine::default();
        feed(&mut machine, &[0.85, 0.5, 0.5, 0.91, 0.5]);
        assert_eq!(machine.level(), Level::Critical);
        assert_eq!(feed(&mut machine, &[0.5, 0.5]), [None, Some((Level::Critical, Level::Normal))]);
    }

    #[test]
    fn a_floor_raises_the_level_at_once_and_holds_it_until_it_drops() {
        let mut machine = LevelMachine::default();
        let mut observe = |ratio: f64, floor: Level| {
            machine.observe(ratio, floor, &Thresholds::DEFAULT, &Hysteresis::DEFAULT).map(|t| (t.from, t.to))
        };
        assert_eq!(observe(0.3, Level::Critical), Some((Level::Normal, Level::Critical)));
        // Usage far below: the floor holds the level however long.
        for _ in 0..10 {
            assert_eq!(observe(0.3, Level::Critical), None);
        }
        // Down to a warning floor: hysteresis on usage as ever, landing on the floor.
        assert_eq!(observe(0.3, Level::Warning), None);
        assert_eq!(observe(0.3, Level::Warning), None);
        assert_eq!(observe(0.3, Level::Warning), Some((Level::Critical, Level::Warning)));
        // Usage above the floor wins.
        assert_eq!(observe(0.92, Level::Warning), Some((Level::Warning, Level::Critical)));
    }
}
