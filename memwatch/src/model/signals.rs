//! What a process does with a signal, as /proc shows it.
use serde::{Deserialize, Serialize};

/// What a process does with each signal, as /proc/PID/status masks show it
/// (bit n-1 for signal n). `blocked` is blocked in *every* thread: a signal
/// is delivered to any thread not blocking it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalMasks {
    pub caught: u64,
    pub ignored: u64,
    pub blocked: u64,
}

impl SignalMasks {
    /// Whether `signo` would run its default action in the process: for the
    /// cleanup signals, terminate it. A "please drop your caches" must never
    /// become a kill.
    pub fn would_terminate(&self, signo: i32) -> bool {
        let Some(bit) = u32::try_from(signo - 1).ok().and_then(|b| 1u64.checked_shl(b)) else { return false };
        (self.caught | self.ignored | self.blocked) & bit == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_terminates_only_when_neither_caught_ignored_nor_blocked() {
        const USR1: i32 = 10; // bit 9
        let bit = 1 << 9;
        assert!(SignalMasks::default().would_terminate(USR1));
        for masks in [
            SignalMasks { caught: bit, ..Default::default() },
            SignalMasks { ignored: bit, ..Default::default() },
            SignalMasks { blocked: bit, ..Default::default() },
        ] {
            assert!(!masks.would_terminate(USR1), "{masks:?}");
        }
        assert!(SignalMasks { caught: 1 << 11, ..Default::default() }.would_terminate(USR1), "SIGUSR2's bit");
        assert!(!SignalMasks::default().would_terminate(0), "not a signal");
    }
}
