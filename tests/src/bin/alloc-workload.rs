//! A process whose memory behaviour the integration tests know exactly.
//!
//! Phases, each announced on stdout and each waiting for a line on stdin
//! before the next (so a test can read the probes in between):
//!
//! 1. `ready`: nothing allocated yet.
//! 2. `allocated`: MIB MiB allocated in STEP_MIB steps, every page touched;
//!    plus BRK_MIB grown through sbrk, touched; plus one 1 GiB mmap that
//!    fails (it must not be counted).
//! 3. `freed`: the last step unmapped again.
//!
//! Then it exits when stdin closes.
use std::io::{BufRead as _, Write as _};

const PAGE: usize = 4096;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} wants a number, got {v}")))
        .unwrap_or(default)
}

fn say(what: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{what}").and_then(|()| out.flush()).expect("stdout");
}

fn wait_for_go() {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

fn touch(ptr: *mut u8, len: usize) {
    for offset in (0..len).step_by(PAGE) {
        // SAFETY: `ptr..ptr+len` is a fresh writable mapping of ours.
        unsafe { ptr.add(offset).write_volatile(1) };
    }
}

fn map_anonymous(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping has no preconditions.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED, "mmap of {len} bytes failed");
    ptr.cast()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib = arg(&args, "--mib", 256);
    let step_mib = arg(&args, "--step-mib", 16);
    let step_ms = arg(&args, "--step-ms", 20);
    let brk_mib = arg(&args, "--brk-mib", 8);

    say("ready");
    wait_for_go();

    let step = step_mib << 20;
    let mut chunks = Vec::new();
    for _ in 0..mib.div_ceil(step_mib) {
        let chunk = map_anonymous(step);
        touch(chunk, step);
        chunks.push(chunk);
        std::thread::sleep(std::time::Duration::from_millis(step_ms as u64));
    }
    if brk_mib > 0 {
        let len = brk_mib << 20;
        // SAFETY: growing our own break; the new range is ours to write.
        let old = unsafe { libc::sbrk(len as libc::intptr_t) };
        assert_ne!(old as isize, -1, "sbrk failed");
        touch(old.cast(), len);
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
    wait_for_go();

    let last = chunks.pop().expect("at least one chunk");
    // SAFETY: `last` is a mapping of `step` bytes made above.
    assert_eq!(unsafe { libc::munmap(last.cast(), step) }, 0, "munmap failed");
    say("freed");
    wait_for_go();
}
