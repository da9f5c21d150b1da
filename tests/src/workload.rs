//! What the helper workloads (`src/bin/`) share: their numeric arguments,
//! their announcements on stdout, and a SIGUSR1 kept pending until they
//! take it.
use std::io::Write as _;

/// The number after `name` in `args`, or `default` when it is absent.
pub fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} wants a number, got {v}")))
        .unwrap_or(default)
}

/// One line on stdout, flushed at once: the tests wait for it.
pub fn say(what: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{what}").and_then(|()| out.flush()).expect("stdout");
}

/// Blocks SIGUSR1 so that it stays pending until the workload takes it
/// (`sigwait`, `sigtimedwait`): a signal sent early is neither lost nor
/// fatal (its default action). Call it while the process is still
/// single-threaded, so the mask is the whole process's.
pub fn block_sigusr1() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        assert_eq!(libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()), 0, "sigprocmask");
        set
    }
}
