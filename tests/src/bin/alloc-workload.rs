//! A process whose memory behaviour the integration tests know exactly.
//!
//! Phases, each announced on stdout and each waiting for a line on stdin
//! before the next (so a test can read the probes in between):
//! 1. `ready`: nothing allocated yet.
//! 2. `allocated`: MIB MiB allocated in STEP_MIB steps, every page touched;
//!    plus BRK_MIB grown through brk, touched; plus one 1 GiB mmap that
//!    fails (it must not be counted).
//! 3. `freed`: the last step unmapped again.
//!
//! Then it exits when stdin closes.
//!
//! With `--free-on-sigusr1`, phase 3 waits for SIGUSR1 instead of stdin and
//! unmaps every step (like a service dropping its caches on the signal), so a
//! test can measure what a cleanup signal frees.
use std::io::BufRead as _;

use memwatch_tests::{
    pages::{map_anonymous_small_pages, no_huge_pages, touch},
    workload::{arg, block_sigusr1, say},
};

fn wait_for_go() {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

/// Grows the program break by `len` bytes; returns the start of the new range.
#[cfg(not(target_env = "musl"))]
fn grow_break(len: usize) -> *mut u8 {
    // glibc's sbrk keeps its malloc's record of the break in step.
    // SAFETY: growing our own break; the new range is ours to write.
    let old = unsafe { libc::sbrk(len as libc::intptr_t) };
    assert_ne!(old as isize, -1, "sbrk failed");
    old.cast()
}

/// musl's sbrk refuses to grow the break (its malloc wants brk to itself),
/// so the VM's static build asks the kernel directly. musl's malloc may later
/// move the break back over this range; the tests read it before that.
#[cfg(target_env = "musl")]
fn grow_break(len: usize) -> *mut u8 {
    // SAFETY: brk(0) only reports the break; brk(old + len) grows our own.
    let old = unsafe { libc::syscall(libc::SYS_brk, 0) } as usize;
    // SAFETY: as above.
    let new = unsafe { libc::syscall(libc::SYS_brk, old + len) } as usize;
    assert_eq!(new, old + len, "brk failed");
    old as *mut u8
}

fn wait_for_sigusr1(set: &libc::sigset_t) {
    let mut signal = 0;
    // SAFETY: `set` was initialised by block_sigusr1; `signal` is writable.
    assert_eq!(unsafe { libc::sigwait(set, &mut signal) }, 0, "sigwait");
    assert_eq!(signal, libc::SIGUSR1);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib = arg(&args, "--mib", 256);
    let step_mib = arg(&args, "--step-mib", 16);
    let step_ms = arg(&args, "--step-ms", 20);
    let brk_mib = arg(&args, "--brk-mib", 8);
    let free_on_sigusr1 = args.iter().any(|a| a == "--free-on-sigusr1").then(block_sigusr1);

    say("ready");
    wait_for_go();

    let step = step_mib << 20;
    let mut chunks = Vec::new();
    for _ in 0..mib.div_ceil(step_mib) {
        let chunk = map_anonymous_small_pages(step);
        // SAFETY: the fresh writable mapping of `step` bytes made above.
        unsafe { touch(chunk, step) };
        chunks.push(chunk);
        std::thread::sleep(std::time::Duration::from_millis(step_ms as u64));
    }
    if brk_mib > 0 {
        let len = brk_mib << 20;
        let old = grow_break(len);
        no_huge_pages(old, len);
        // SAFETY: the `len` bytes the break just grew by are ours to write.
        unsafe { touch(old, len) };
    }
    // 1 GiB at a fixed address that is not page-aligned: EINVAL, whatever
    // the overcommit policy.
    // SAFETY: a failing mmap has no effect.
    let refused = unsafe {
        libc::mmap(
            std::ptr::without_provenance_mut::<libc::c_void>(1),
            1 << 30,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    assert_eq!(refused, libc::MAP_FAILED, "a misaligned MAP_FIXED mapping unexpectedly succeeded");
    say("allocated");
    if let Some(set) = free_on_sigusr1 {
        wait_for_sigusr1(&set);
        for chunk in chunks.drain(..) {
            // SAFETY: every chunk is a mapping of `step` bytes made above.
            assert_eq!(unsafe { libc::munmap(chunk.cast(), step) }, 0, "munmap failed");
        }
        say("freed");
        wait_for_go();
        return;
    }
    wait_for_go();

    let last = chunks.pop().expect("at least one chunk");
    // SAFETY: `last` is a mapping of `step` bytes made above.
    assert_eq!(unsafe { libc::munmap(last.cast(), step) }, 0, "munmap failed");
    say("freed");
    wait_for_go();
}
