//! Which limit a target's usage is measured against.
//!
//! The order is the issue's: the policy's limit when set (bytes, or a share
//! of host memory), else the target's own cgroup limit when it has one, else
//! the host's total memory. The readings come from the caller; nothing here
//! touches /sys or /proc.

/// A policy's `limit`, as configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LimitSpec {
    Bytes(u64),
    /// A fraction (0, 1] of host memory.
    HostFraction(f64),
}

/// The limit in bytes, never 0 (a target with no usable limit at all is
/// measured against the host, and a host reports its memory).
pub fn resolve_limit(policy: Option<LimitSpec>, cgroup_limit: Option<u64>, host_total: u64) -> u64 {
    let limit = match policy {
        Some(LimitSpec::Bytes(bytes)) => bytes,
        Some(LimitSpec::HostFraction(fraction)) => (host_total as f64 * fraction).round() as u64,
        None => cgroup_limit.filter(|&l| l > 0).unwrap_or(host_total),
    };
    limit.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_then_cgroup_then_host() {
        let gib = 1 << 30;
        assert_eq!(resolve_limit(Some(LimitSpec::Bytes(512)), Some(gib), 8 * gib), 512);
        assert_eq!(resolve_limit(Some(LimitSpec::HostFraction(0.25)), Some(gib), 8 * gib), 2 * gib);
        assert_eq!(resolve_limit(None, Some(gib), 8 * gib), gib);
        assert_eq!(resolve_limit(None, None, 8 * gib), 8 * gib);
        assert_eq!(resolve_limit(None, Some(0), 0), 1, "never zero");
    }
}
