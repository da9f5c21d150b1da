//! The host's "not ready" flag: set while any target is in an emergency
//! memwatch acted on, so the health endpoint answers 503 and load balancers
//! drain the host (the seed's "block new requests"). Cleared when the last
//! such target is back at normal.
//!
//! Shared by handle: the executor writes it, the health endpoint (issue 5)
//! reads it from another task; a mutex over a small set is all it needs.
use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, PoisonError},
};

#[derive(Debug, Clone, Default)]
pub struct Readiness {
    /// Keys of the targets holding the host not ready.
    holders: Arc<Mutex<BTreeSet<String>>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the host should take new work.
    pub fn is_ready(&self) -> bool {
        self.lock().is_empty()
    }

    /// The targets in emergency, for the 503 body.
    pub fn reasons(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// Returns whether `key` was not already holding it.
    pub fn hold(&self, key: &str) -> bool {
        self.lock().insert(key.to_owned())
    }

    /// Returns whether `key` was holding it.
    pub fn release(&self, key: &str) -> bool {
        self.lock().remove(key)
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // The set is always consistent (one insert or remove at a time), so a
        // panic elsewhere while holding the lock leaves nothing half-done.
        self.holders.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_no_target_holds_it() {
        let readiness = Readiness::new();
        let reader = readiness.clone();
        assert!(reader.is_ready());
        assert!(readiness.hold("cgroup:/a"));
        assert!(!readiness.hold("cgroup:/a"), "holding twice is one hold");
        readiness.hold("cgroup:/b");
        assert!(!reader.is_ready());
        assert_eq!(reader.reasons(), ["cgroup:/a", "cgroup:/b"]);
        assert!(readiness.release("cgroup:/a"));
        assert!(!reader.is_ready(), "b still holds it");
        readiness.release("cgroup:/b");
        assert!(reader.is_ready());
    }
}
