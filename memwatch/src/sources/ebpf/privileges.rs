//! Can this process load and attach tracepoint programs?
//!
//! Checked up front so the fallback message says what is missing instead of
//! relaying an EPERM from deep inside the loader.
use procfs::process::Process;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Whether the effective capability set `capeff` allows loading and attaching
/// tracepoint programs: CAP_BPF with CAP_PERFMON (5.8+), or CAP_SYS_ADMIN.
pub fn can_trace(capeff: u64) -> bool {
    let has = |cap: u32| capeff & (1u64 << cap) != 0;
    (has(CAP_BPF) && has(CAP_PERFMON)) || has(CAP_SYS_ADMIN)
}

/// `Err` with a sentence saying what is missing and what to do.
pub fn check() -> Result<(), String> {
    let status = Process::myself()
        .and_then(|me| me.status())
        .map_err(|e| format!("cannot read /proc/self/status to check capabilities: {e}"))?;
    if can_trace(status.capeff) {
        return Ok(());
    }
    let euid = rustix::process::geteuid().as_raw();
    Err(format!(
        "not permitted to load eBPF programs: running as uid {euid} without CAP_BPF + CAP_PERFMON \
         (or CAP_SYS_ADMIN) (effective capabilities {:#x}); run memwatch as root, or grant them \
         with `setcap cap_bpf,cap_perfmon,cap_sys_admin+ep <path to memwatch>`",
        status.capeff
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_needs_perfmon_too_and_sys_admin_covers_both() {
        assert!(!can_trace(0));
        assert!(!can_trace(1 << CAP_BPF));
        assert!(can_trace((1 << CAP_BPF) | (1 << CAP_PERFMON)));
        assert!(can_trace(1 << CAP_SYS_ADMIN));
        // root's full set
        assert!(can_trace(0x1ff_ffff_ffff));
    }
}
