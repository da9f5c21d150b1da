//! How much the probes add to a page fault.
//!
//! A page-fault-heavy loop (map 64 MiB, touch every 4 KiB page, unmap) is
//! timed in the thread's CPU time, in alternating rounds without and with the
//! probes attached; the overhead is the difference of the medians per fault. Every fault fires two
//! of our programs (exceptions:page_fault_user and kmem:rss_stat), so this is
//! the whole in-kernel cost a faulting process pays.
//!
//! `--quick` runs a few rounds only: CI uses it to prove the bench still works,
//! not to time anything. Needs root (it attaches the probes).
use std::time::Duration;

use memwatch::sources::ebpf::Probes;

const REGION: usize = 64 << 20;
const PAGE: usize = 4096;
const FAULTS_PER_PASS: usize = REGION / PAGE;

/// CPU time of this thread, user and system: page-fault handling is charged
/// to the faulting thread, and time other processes take the CPU is not, so
/// this is far steadier than wall time on a busy machine.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write into.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One pass: fresh mapping, one write per page, unmap. Returns CPU ns per fault.
fn pass() -> f64 {
    // SAFETY: an anonymous private mapping has no preconditions.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            REGION,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED, "mmap failed");
    // Transparent huge pages would turn 16384 faults into 32: force 4 KiB
    // pages so every touch is a real fault.
    // SAFETY: advising our own fresh mapping.
    unsafe { libc::madvise(ptr, REGION, libc::MADV_NOHUGEPAGE) };
    let base = ptr.cast::<u8>();
    let start = thread_cpu_time();
    for offset in (0..REGION).step_by(PAGE) {
        // SAFETY: inside the mapping made above.
        unsafe { base.add(offset).write_volatile(1) };
    }
    let elapsed = thread_cpu_time() - start;
    // SAFETY: unmapping exactly what we mapped.
    unsafe { libc::munmap(ptr, REGION) };
    elapsed.as_nanos() as f64 / FAULTS_PER_PASS as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn measure(passes: usize) -> f64 {
    pass(); // warm-up: page tables, allocator, caches
    median((0..passes).map(|_| pass()).collect())
}

/// Each program's runs and average run time while `passes` passes run,
/// from the kernel's own accounting (BPF_ENABLE_STATS).
fn per_program_cost(passes: usize) -> Vec<(&'static str, u64, f64)> {
    let stats_enabled = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .unwrap_or_else(|e| panic!("enabling BPF run-time statistics (needs root): {e}"));
    let probes = attach();
    measure(passes);
    let stats = probes.program_stats().expect("program stats");
    drop(stats_enabled);
    stats
        .into_iter()
        .filter(|s| s.runs > 0)
        .map(|s| (s.program, s.runs, s.run_time.as_nanos() as f64 / s.runs as f64))
        .collect()
}

fn attach() -> Probes {
    Probes::attach(u64::MAX).unwrap_or_else(|e| panic!("fault-bench needs the eBPF probes (run as root): {e}"))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // Short alternating rounds: slow drifts of the machine (other load,
    // frequency) hit both sides alike.
    let passes = if quick { 3 } else { 10 };
    let rounds = if quick { 1 } else { 15 };

    // Phase 1, statistics off (they cost a clock read or two per run): the
    // whole overhead as the faulting thread pays it.
    let mut without = Vec::new();
    let mut with = Vec::new();
    for _ in 0..rounds {
        without.push(measure(passes));
        let probes = attach();
        with.push(measure(passes));
        drop(probes);
    }
    without.push(measure(passes));
    let base = median(without);
    let probed = median(with);
    println!("faults per pass: {FAULTS_PER_PASS}, passes per measurement: {passes}, rounds: {rounds}");
    println!("page fault without probes: {base:.0} ns CPU");
    println!("page fault with probes:    {probed:.0} ns CPU");
    println!("probe overhead per fault:  {:.0} ns ({:.3}x)", probed - base, probed / base);

    // Phase 2: where it goes, program by program.
    println!("kernel-accounted cost per program run (BPF_ENABLE_STATS, adds its own clock reads):");
    for (program, runs, nanos) in per_program_cost(passes) {
        println!("  {program:<20} {runs:>10} runs  {nanos:>6.1} ns/run");
    }
    if quick {
        println!("(quick mode: proves the bench runs; the figures are not meaningful)");
    }
}
