//! Holds memory resident for the reclaim scenarios: either a file mapped
//! and read page by page (page cache: the kernel may reclaim it) or
//! anonymous pages (without swap, it cannot).
//!
//!   resident --file PATH     map PATH read-only, read every page
//!   resident --anon MIB      MIB of anonymous memory, every page written
//!
//! Prints `ready`, waits for a line on stdin, makes the memory resident,
//! prints `resident`, then holds it until stdin closes. It catches SIGUSR1,
//! SIGUSR2 and SIGHUP and prints `signal N` for each: a scenario that must
//! send no signal checks for those lines.
use std::{
    io::BufRead as _,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use memwatch_tests::{
    pages::{PAGE, map_and_touch},
    workload::say,
};

/// One bit per signal caught (signal N: bit N).
static CAUGHT: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    CAUGHT.fetch_or(1 << signal, Ordering::SeqCst);
}

fn map_file(path: &str) -> (*mut u8, usize) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let len = file.metadata().expect("metadata").len() as usize;
    // SAFETY: a read-only shared mapping of a file we hold open; the fd may
    // close after mmap returns.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED, "mmap of {path} failed");
    (ptr.cast(), len)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    for signal in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGHUP] {
        // SAFETY: the handler only does an atomic or, which is async-signal-safe.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
    say("ready");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    match args.get(1).map(String::as_str) {
        Some("--file") => {
            let (ptr, len) = map_file(args.get(2).expect("--file PATH"));
            let mut sum = 0u64;
            for offset in (0..len).step_by(PAGE) {
                // SAFETY: inside the mapping just made.
                sum = sum.wrapping_add(u64::from(unsafe { ptr.add(offset).read_volatile() }));
            }
            std::hint::black_box(sum);
        }
        Some("--anon") => {
            let mib: usize = args.get(2).and_then(|v| v.parse().ok()).expect("--anon MIB");
            std::hint::black_box(map_and_touch(mib << 20));
        }
        _ => panic!("usage: resident --file PATH | --anon MIB"),
    }
    say("resident");
    let (tx, stdin_closed) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut rest = String::new();
        while std::io::stdin().lock().read_line(&mut rest).is_ok_and(|n| n > 0) {}
        let _ = tx.send(());
    });
    let mut reported = 0u64;
    loop {
        let caught = CAUGHT.load(Ordering::SeqCst);
        for signal in 1..64 {
            if caught & !reported & (1 << signal) != 0 {
                say(&format!("signal {signal}"));
            }
        }
        reported = caught;
        if stdin_closed.recv_timeout(Duration::from_millis(50)).is_ok() {
            return;
        }
    }
}
