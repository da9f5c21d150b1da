//! HotSpot's option grammar and the heap it sizes for itself when given a
//! share of memory rather than a size: `-XX:MaxRAMPercentage` (or the
//! older `-XX:MaxRAMFraction`) of the memory it sees, which is
//! `-XX:MaxRAM` where given, else its cgroup's limit (container support,
//! on by default) or the host's memory. Containers are where this is set:
//! with `-XX:MaxRAMPercentage=75` the heap may grow to three quarters of
//! the pod's limit, and a JVM warming its heap up to that brings the pod
//! close to its limit without leaking anything.
//!
//! The sizing follows HotSpot's `Arguments::set_heap_size` (JDK 11 to 21)
//! before its rounding up to the heap's alignment (G1's region size, 1 to
//! 32 MiB).

const MIB: u64 = 1 << 20;
/// HotSpot's default `MaxHeapSize` (96 MiB scaled by 13/10 for 64-bit
/// words): an ergonomic heap is never smaller where memory is not small.
const DEFAULT_MAX_HEAP: u64 = 96 * MIB * 13 / 10;
/// HotSpot's defaults for what is not given.
const DEFAULT_MAX_RAM_PERCENTAGE: f64 = 25.0;
const DEFAULT_MIN_RAM_PERCENTAGE: f64 = 50.0;

/// A HotSpot size: digits and an optional k, m, g or t (either case).
pub fn size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 10),
        (i, 'm' | 'M') => (&text[..i], 20),
        (i, 'g' | 'G') => (&text[..i], 30),
        (i, 't' | 'T') => (&text[..i], 40),
        _ => (text, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// A percentage HotSpot accepts: a number from 0 to 100.
fn percentage(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|p| (0.0..=100.0).contains(p))
}

/// The options that size a heap from memory, as a JVM was given them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemoryShare {
    max_ram_percentage: Option<f64>,
    max_ram_fraction: Option<u64>,
    min_ram_percentage: Option<f64>,
    min_ram_fraction: Option<u64>,
    max_ram: Option<u64>,
    /// `-Xms`: the heap is never sized below it.
    initial_heap: Option<u64>,
    container_support: Option<bool>,
}

impl MemoryShare {
    /// Takes one of the JVM's option words (others are ignored); of an
    /// option given twice, the later counts, as for HotSpot.
    pub fn take(&mut self, word: &str) {
        if let Some(value) = word.strip_prefix("-Xms") {
            self.initial_heap = size(value);
            return;
        }
        let Some(flag) = word.strip_prefix("-XX:") else { return };
        let fraction = |value: &str| value.parse().ok().filter(|&f: &u64| f > 0);
        match flag.split_once('=') {
            Some(("MaxRAMPercentage", value)) => self.max_ram_percentage = percentage(value),
            Some(("MaxRAMFraction", value)) => self.max_ram_fraction = fraction(value),
            Some(("MinRAMPercentage", value)) => self.min_ram_percentage = percentage(value),
            Some(("MinRAMFraction", value)) => self.min_ram_fraction = fraction(value),
            Some(("MaxRAM", value)) => self.max_ram = size(value).filter(|&b| b > 0),
            Some(("InitialHeapSize", value)) => self.initial_heap = size(value),
            _ => match flag {
                "+UseContainerSupport" => self.container_support = Some(true),
                "-UseContainerSupport" => self.container_support = Some(false),
                _ => {}
            },
        }
    }

    /// Whether the heap was given a share of memory at all: without one,
    /// HotSpot's default quarter is no ceiling anyone declared.
    fn is_given(&self) -> bool {
        [self.max_ram_percentage, self.min_ram_percentage].iter().any(Option::is_some)
            || [self.max_ram_fraction, self.min_ram_fraction, self.max_ram].iter().any(Option::is_some)
    }

    /// Whether the JVM reads its cgroup's limit as its memory.
    fn container_support(&self) -> bool {
        self.container_support.unwrap_or(true)
    }

    /// The largest heap HotSpot sizes where `memory` says what memory it
    /// sees (its cgroup's limit or the host's memory, as
    /// [`Self::container_support`] says; asked only without `-XX:MaxRAM`,
    /// which replaces it); `None` when no share was given or the memory is
    /// not known. A share given lifts HotSpot's 128 GiB cap on what it
    /// counts (and its compressed pointers' 32 GiB cap on the heap).
    pub fn max_heap(&self, memory: impl FnOnce(bool) -> Option<u64>) -> Option<u64> {
        if !self.is_given() {
            return None;
        }
        let memory = match self.max_ram {
            Some(bytes) => bytes,
            None => memory(self.container_support())?,
        } as f64;
        let fraction = |f: Option<u64>| f.map(|f| 100.0 / f as f64);
        let max_share = self.max_ram_percentage.or(fraction(self.max_ram_fraction));
        let min_share = self.min_ram_percentage.or(fraction(self.min_ram_fraction));
        let share = |percent: f64| (memory * percent / 100.0) as u64;
        let small = share(min_share.unwrap_or(DEFAULT_MIN_RAM_PERCENTAGE));
        // Small memory: the minimum share of it, whatever the maximum says.
        let heap = if small < DEFAULT_MAX_HEAP {
            small
        } else {
            share(max_share.unwrap_or(DEFAULT_MAX_RAM_PERCENTAGE)).max(DEFAULT_MAX_HEAP)
        };
        let heap = heap.max(self.initial_heap.unwrap_or(0));
        (heap > 0).then_some(heap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn given(words: &[&str]) -> MemoryShare {
        let mut share = MemoryShare::default();
        for word in words {
            share.take(word);
        }
        share
    }

    #[test]
    fn a_share_of_memory_sizes_the_heap_as_hotspot_does() {
        let share = |words: &[&str], memory: u64| given(words).max_heap(|_| Some(memory));
        assert_eq!(share(&["-XX:MaxRAMPercentage=75"], 2 * GIB), Some(3 * GIB / 2));
        assert_eq!(share(&["-XX:MaxRAMPercentage=75.0"], 4 * GIB), Some(3 * GIB));
        assert_eq!(share(&["-XX:MaxRAMFraction=2"], 4 * GIB), Some(2 * GIB), "the older fraction");
        let both = ["-XX:MaxRAMFraction=2", "-XX:MaxRAMPercentage=75"];
        assert_eq!(share(&both, 4 * GIB), Some(3 * GIB), "the percentage over the fraction");
        assert_eq!(share(&["-XX:MaxRAM=2g"], 64 * GIB), Some(GIB / 2), "MaxRAM replaces what it sees; a quarter");
        assert_eq!(share(&["-XX:MaxRAMPercentage=50"], 512 * GIB), Some(256 * GIB), "no cap on what it counts");
        assert_eq!(share(&["-XX:MinRAMFraction=2", "-XX:MaxRAMFraction=4"], 4 * GIB), Some(GIB));
        assert_eq!(share(&["-XX:MinRAMPercentage=75"], 128 * MIB), Some(96 * MIB), "small, its minimum share given");
        assert_eq!(share(&["-XX:MinRAMPercentage=75"], 4 * GIB), Some(GIB), "not small: the default quarter");
        assert_eq!(share(&["-Xms2g", "-XX:MaxRAMPercentage=25"], 4 * GIB), Some(2 * GIB), "never under -Xms");
        assert_eq!(share(&["-XX:MaxRAMPercentage=10"], GIB), Some(DEFAULT_MAX_HEAP), "never under the default");
        assert_eq!(share(&["-XX:MaxRAMPercentage=90"], 200 * MIB), Some(100 * MIB), "small: its minimum half");
        let small = ["-XX:MaxRAMPercentage=90", "-XX:MinRAMPercentage=60"];
        assert_eq!(share(&small, 200 * MIB), Some(120 * MIB), "its minimum share is under the default: small");
        let not_small = ["-XX:MaxRAMPercentage=90", "-XX:MinRAMPercentage=80"];
        assert_eq!(share(&not_small, 200 * MIB), Some(180 * MIB), "its minimum share is not: the maximum");
        assert_eq!(share(&["-XX:MaxRAMPercentage=60", "-XX:MaxRAMPercentage=80"], GIB), Some(GIB * 4 / 5), "later");
    }

    #[test]
    fn no_share_given_declares_nothing() {
        for words in [
            &[][..],
            &["-Xms1g", "-XX:+UseG1GC", "-XX:InitialRAMPercentage=50"],
            &["-XX:MaxRAMPercentage=101"],
            &["-XX:MaxRAMPercentage=-5"],
            &["-XX:MaxRAMPercentage=NaN"],
            &["-XX:MaxRAMPercentage=lots"],
            &["-XX:MaxRAMFraction=0"],
            &["-XX:MaxRAM=0"],
            &["-XX:MaxRAMPercentage"],
            &["-XX:MaxRAMPercentage75"],
        ] {
            assert_eq!(given(words).max_heap(|_| Some(4 * GIB)), None, "{words:?}");
        }
        assert_eq!(given(&["-XX:MaxRAMPercentage=50"]).max_heap(|_| Some(0)), None, "no memory seen, no heap");
        assert_eq!(given(&["-XX:MaxRAMPercentage=50"]).max_heap(|_| None), None, "memory not known");
        let asked = std::cell::Cell::new(false);
        let memory = |_| {
            asked.set(true);
            None
        };
        assert_eq!(given(&["-XX:MaxRAM=2g", "-XX:MaxRAMPercentage=50"]).max_heap(memory), Some(GIB));
        assert!(!asked.get(), "MaxRAM given: what it sees is not asked");
    }

    #[test]
    fn container_support_is_on_unless_turned_off() {
        assert!(given(&[]).container_support());
        assert!(!given(&["-XX:-UseContainerSupport"]).container_support());
        assert!(given(&["-XX:-UseContainerSupport", "-XX:+UseContainerSupport"]).container_support());
    }

    #[test]
    fn sizes_take_hotspots_suffixes() {
        assert_eq!(size("512m"), Some(512 * MIB));
        assert_eq!(size("2G"), Some(2 * GIB));
        assert_eq!(size("524288k"), Some(512 * MIB));
        assert_eq!(size("1073741824"), Some(GIB));
        assert_eq!(size("1.5g"), None);
        assert_eq!(size(""), None);
        assert_eq!(size("99999999999999t"), None);
    }
}
