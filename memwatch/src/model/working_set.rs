//! What a cgroup's memory is by the kernel's own accounting: the figure its
//! limit is enforced on, the part of it the kernel can drop without harm,
//! and how much its tasks stall waiting for memory (PSI).
//!
//! A cgroup is charged for more than its processes' RSS: tmpfs and shared
//! memory, kernel memory (sockets, dentries), and every page of page cache
//! it touched. The limit is enforced on that charge, but inactive file
//! pages are reclaimed before anything is killed, so the kubelet evicts on
//! `charged - inactive_file` (its "working set"), and memwatch judges a
//! cgroup target on the same figure.
use serde::{Deserialize, Serialize};

/// One cgroup's memory, read this interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupMemory {
    /// What the limit is enforced on: v2 `memory.current`, v1
    /// `memory.usage_in_bytes` (both count the cgroup's descendants).
    pub charged_bytes: u64,
    /// Page cache not touched lately: v2 `inactive_file` of `memory.stat`,
    /// v1 `total_inactive_file` (the hierarchical one).
    pub inactive_file_bytes: u64,
    /// v2 `memory.pressure`; v1 has no per-cgroup PSI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure: Option<Pressure>,
}

impl CgroupMemory {
    /// The charge less what the kernel drops first: what the kubelet evicts
    /// on and what memwatch's levels read for a cgroup target.
    pub fn working_set_bytes(&self) -> u64 {
        self.charged_bytes.saturating_sub(self.inactive_file_bytes)
    }
}

/// Memory pressure stall information: the share of wall time (percent, 0 to
/// 100) in which some, or all, of the tasks waited for memory, averaged
/// over the last 10 and 60 seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pressure {
    pub some_avg10: f64,
    pub some_avg60: f64,
    pub full_avg10: f64,
    pub full_avg60: f64,
}

impl Pressure {
    /// Parses the PSI format of `/proc/pressure/memory` and a v2 cgroup's
    /// `memory.pressure`:
    /// `some avg10=0.12 avg60=0.05 avg300=0.01 total=123456` and the same
    /// for `full`. Fields it does not know are skipped (kernels add them).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pressure = Self::default();
        let mut seen_some = false;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let (avg10, avg60) = match words.next() {
                Some("some") => {
                    seen_some = true;
                    (&mut pressure.some_avg10, &mut pressure.some_avg60)
                }
                Some("full") => (&mut pressure.full_avg10, &mut pressure.full_avg60),
                _ => return Err(format!("line {line:?} is neither `some ...` nor `full ...`")),
            };
            for word in words {
                let Some((key, value)) = word.split_once('=') else {
                    return Err(format!("{word:?} is not `key=value`"));
                };
                let slot = match key {
                    "avg10" => &mut *avg10,
                    "avg60" => &mut *avg60,
                    _ => continue,
                };
                *slot = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=100.0).contains(v))
                    .ok_or_else(|| format!("{key}={value} is not a share of time from 0 to 100"))?;
            }
        }
        // `full` is read where it is printed; `some` always is.
        if !seen_some {
            return Err("no `some` line".to_owned());
        }
        Ok(pressure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_set_is_the_charge_less_inactive_file_pages() {
        let memory = CgroupMemory { charged_bytes: 900, inactive_file_bytes: 300, pressure: None };
        assert_eq!(memory.working_set_bytes(), 600);
        // The counters are read one after the other: never below nothing.
        let raced = CgroupMemory { charged_bytes: 100, inactive_file_bytes: 300, pressure: None };
        assert_eq!(raced.working_set_bytes(), 0);
    }

    #[test]
    fn psi_lines_are_read_and_unknown_fields_skipped() {
        let text = "some avg10=12.50 avg60=3.10 avg300=0.50 total=98765\n\
                    full avg10=1.25 avg60=0.40 avg300=0.10 total=4321\n";
        let p = Pressure::parse(text).unwrap();
        assert_eq!((p.some_avg10, p.some_avg60, p.full_avg10, p.full_avg60), (12.5, 3.1, 1.25, 0.4));
        let only_some = Pressure::parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        assert_eq!(only_some, Pressure::default());
    }

    #[test]
    fn malformed_psi_is_refused_with_what_is_wrong() {
        for (text, says) in [
            ("", "no `some` line"),
            ("most avg10=1.00\n", "neither"),
            ("some avg10\n", "key=value"),
            ("some avg10=abc avg60=0\n", "avg10=abc"),
            ("some avg10=101.00\n", "from 0 to 100"),
            ("some avg10=NaN\n", "from 0 to 100"),
        ] {
            let err = Pressure::parse(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }
}
