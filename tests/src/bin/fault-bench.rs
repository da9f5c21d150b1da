//! How much the probes add to a page fault.
//!
//! A page-fault-heavy loop (map 64 MiB, touch every 4 KiB page, unmap) is
//! timed without the probes, with them attached, and without them again; the
//! overhead is the difference of the medians per fault. Every fault fires two
//! of our programs (exceptions:page_fault_user and kmem:rss_stat), so this is
//! the whole in-kernel cost a faulting process pays.
//!
//! `--quick` runs a few rounds only: CI uses it to prove the bench still works,
//! not to time anything. Needs root (it attaches the probes).
use std::time::Instant;

use memwatch::ebpf::Probes;

const REGION: usize = 64 << 20;
const PAGE: usize = 4096;
const FAULTS_PER_PASS: usize = REGION / PAGE;

/// One pass: fresh mapping, one write per page, unmap. Returns ns per fault.
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
    let start = Instant::now();
    for offset in (0..REGION).step_by(PAGE) {
        // SAFETY: inside the mapping made above.
        unsafe { base.add(offset).write_volatile(1) };
    }
    let elapsed = start.elapsed();
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

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let passes = if quick { 3 } else { 40 };
    let rounds = if quick { 1 } else { 5 };

    // The kernel's own accounting of each program's run time: exact where the
    // wall-clock difference below is at the mercy of a noisy machine.
    let stats_enabled = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .unwrap_or_else(|e| panic!("enabling BPF run-time statistics (needs root): {e}"));
    let mut without = Vec::new();
    let mut with = Vec::new();
    let mut per_program: Vec<(&str, u64, u128)> = Vec::new();
    for _ in 0..rounds {
        without.push(measure(passes));
        let probes = Probes::attach(u64::MAX)
            .unwrap_or_else(|e| panic!("fault-bench needs the eBPF probes (run as root): {e}"));
        with.push(measure(passes));
        for stat in probes.program_stats().expect("program stats") {
            match per_program.iter_mut().find(|(name, ..)| *name == stat.program) {
                Some(entry) => {
                    entry.1 += stat.runs;
                    entry.2 += stat.run_time.as_nanos();
                }
                None => per_program.push((stat.program, stat.runs, stat.run_time.as_nanos())),
            }
        }
        drop(probes);
    }
    without.push(measure(passes));
    drop(stats_enabled);

    let base = median(without);
    let probed = median(with);
    println!("faults per pass: {FAULTS_PER_PASS}, passes per measurement: {passes}, rounds: {rounds}");
    println!("page fault without probes: {base:.0} ns");
    println!("page fault with probes:    {probed:.0} ns");
    println!("probe overhead per fault:  {:.0} ns ({:.3}x)", probed - base, probed / base);
    println!("kernel-accounted cost per program run (BPF_ENABLE_STATS):");
    for (program, runs, nanos) in per_program.iter().filter(|(_, runs, _)| *runs > 0) {
        println!("  {program:<20} {runs:>10} runs  {:>6.1} ns/run", *nanos as f64 / *runs as f64);
    }
    if quick {
        println!("(quick mode: proves the bench runs; the figures are not meaningful)");
    }
}
