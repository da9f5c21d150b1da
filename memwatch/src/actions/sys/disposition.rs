//! What a process does with a signal, from /proc: memwatch's cleanup
//! signals (SIGUSR1, SIGUSR2, SIGHUP) *terminate* a process that neither
//! catches, ignores nor blocks them. A "please drop your caches" must never
//! become a kill, so the executor asks first.
use crate::sources::procfs::ProcFs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A handler is installed (process-wide).
    Caught,
    Ignored,
    /// Blocked in every thread: it stays pending for sigwait-style handling.
    Blocked,
    /// The default action runs (for the cleanup signals: terminate).
    Default,
}

/// The bit of `signo` in a /proc status mask line such as `SigCgt:\t0000000000004a02`.
fn mask_has(status: &str, field: &str, signo: i32) -> Option<bool> {
    let line = status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    let mask = u64::from_str_radix(line.trim(), 16).ok()?;
    Some(mask & (1u64 << (signo - 1)) != 0)
}

/// `signo`'s disposition in process `pid`; `None` if /proc cannot tell (gone).
pub fn of(procfs: &ProcFs, pid: u32, signo: i32) -> Option<Disposition> {
    let status = std::fs::read_to_string(procfs.root().join(pid.to_string()).join("status")).ok()?;
    if mask_has(&status, "SigCgt", signo)? {
        return Some(Disposition::Caught);
    }
    if mask_has(&status, "SigIgn", signo)? {
        return Some(Disposition::Ignored);
    }
    // A signal is delivered to any thread not blocking it, so blocked means
    // blocked in all of them.
    let tasks = std::fs::read_dir(procfs.root().join(pid.to_string()).join("task")).ok()?;
    let mut blocked = true;
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        blocked &= mask_has(&text, "SigBlk", signo).unwrap_or(false);
    }
    Some(if blocked { Disposition::Blocked } else { Disposition::Default })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(pid: u32, status: &str, threads: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("status"), status).unwrap();
        for (i, blk) in threads.iter().enumerate() {
            let task = dir.join("task").join((pid + i as u32).to_string());
            std::fs::create_dir_all(&task).unwrap();
            std::fs::write(task.join("status"), format!("SigBlk:\t{blk}\n")).unwrap();
        }
        root
    }

    const USR1: i32 = 10; // bit 9: 0x200

    #[test]
    fn caught_ignored_blocked_or_default() {
        let status = |cgt: &str, ign: &str| format!("Name:\tx\nSigBlk:\t0\nSigIgn:\t{ign}\nSigCgt:\t{cgt}\n");
        let caught = fixture(10, &status("0000000000000200", "0"), &["0"]);
        assert_eq!(of(&ProcFs::new(caught.path()), 10, USR1), Some(Disposition::Caught));
        let ignored = fixture(10, &status("0", "0000000000000200"), &["0"]);
        assert_eq!(of(&ProcFs::new(ignored.path()), 10, USR1), Some(Disposition::Ignored));
        let blocked = fixture(10, &status("0", "0"), &["0000000000000200", "0000000000000200"]);
        assert_eq!(of(&ProcFs::new(blocked.path()), 10, USR1), Some(Disposition::Blocked));
        // One thread leaves it unblocked: the signal would be delivered there and kill.
        let partly = fixture(10, &status("0", "0"), &["0000000000000200", "0"]);
        assert_eq!(of(&ProcFs::new(partly.path()), 10, USR1), Some(Disposition::Default));
        assert_eq!(of(&ProcFs::new(partly.path()), 11, USR1), None, "no such process");
    }

    #[test]
    fn this_process_catches_nothing_by_default_but_sigpipe_is_ignored() {
        // The Rust runtime ignores SIGPIPE; SIGUSR1 is left at its default.
        let procfs = ProcFs::default();
        assert_eq!(of(&procfs, std::process::id(), libc::SIGPIPE), Some(Disposition::Ignored));
        assert_eq!(of(&procfs, std::process::id(), USR1), Some(Disposition::Default));
    }
}
