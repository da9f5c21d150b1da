//! A leaking service for the daemon scenarios: grows by STEP_MIB every
//! STEP_MS up to MAX_MIB, touching every page, and answers the daemon's
//! cleanup signal the way the scenario needs.
//!
//! `--free-on-signal N`: on the Nth SIGUSR1, unmap everything and stop
//! growing (a service that drops its caches once asked often enough);
//! 0 (the default): never (a real leak). Every SIGUSR1 is announced on
//! stdout as `signal <n>`, the freeing as `freed`, so a test can tell what
//! the daemon sent. `--ignore-sigterm`: only SIGKILL ends it. It starts growing after a line on stdin (time for the
//! test to move it into its cgroup) and exits when stdin closes.
//! `--detached`: starts at once and runs until killed (a service under
//! systemd, whose stdin is /dev/null).
use std::{io::BufRead as _, time::Duration};

use memwatch_tests::{
    pages::map_and_touch,
    workload::{arg, block_sigusr1, say},
};

/// Whether a SIGUSR1 is pending (takes it).
fn sigusr1_pending(set: &libc::sigset_t) -> bool {
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `set` is initialised; a null siginfo pointer is allowed.
    unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &zero) == libc::SIGUSR1 }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let step = arg(&args, "--step-mib", 1) << 20;
    let step_ms = arg(&args, "--step-ms", 30) as u64;
    let max = arg(&args, "--max-mib", 100) << 20;
    let free_on = arg(&args, "--free-on-signal", 0);
    if args.iter().any(|a| a == "--ignore-sigterm") {
        // A service that will not stop when asked: only SIGKILL ends it.
        // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    let set = block_sigusr1();

    // stdin: one line to start; EOF to stop (read on a thread, so the
    // growing loop never blocks on it).
    say("ready");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let detached = args.iter().any(|a| a == "--detached");
    let _never_stops = detached.then(|| tx.clone());
    std::thread::spawn(move || {
        if detached {
            let _ = tx.send(());
            return;
        }
        let mut lines = std::io::stdin().lock().lines();
        let _ = lines.next();
        let _ = tx.send(());
        for _ in lines {}
        let _ = tx.send(());
    });
    rx.recv().expect("start line");

    let mut chunks = Vec::new();
    let (mut signals, mut freed) = (0, false);
    loop {
        if rx.try_recv().is_ok() {
            break;
        }
        while sigusr1_pending(&set) {
            signals += 1;
            say(&format!("signal {signals}"));
            if signals == free_on && !freed {
                for chunk in chunks.drain(..) {
                    // SAFETY: every chunk is a mapping of `step` bytes made below.
                    assert_eq!(unsafe { libc::munmap(chunk, step) }, 0, "munmap failed");
                }
                freed = true;
                say("freed");
            }
        }
        if !freed && chunks.len() * step < max {
            chunks.push(map_and_touch(step).cast::<libc::c_void>());
            if chunks.len() * step >= max {
                say("full");
            }
        }
        std::thread::sleep(Duration::from_millis(step_ms));
    }
    say(&format!("signals {signals}"));
}
