//! What watching costs the watched: CPU time of three workloads with nothing
//! attached, with memwatch's probes attached, with `bpftrace` attaching the
//! events a tracing tool needs for the same per-process figures (RSS counter
//! changes, page faults, mmap/munmap/brk), aggregated per pid in maps, and
//! with prometheus-process-exporter reading /proc once per interval.
//!
//! - fault loop: map 64 MiB, touch every 4 KiB page, unmap (ns per fault);
//! - syscall loop: small `read()`s from /dev/zero (ns per call), which no
//!   probe of memwatch touches but any `syscalls:*` tracepoint slows;
//! - crate build: rustc compiling a real crate (CPU ms per build).
//!
//! Each is timed in the thread's CPU time (other processes taking the CPU
//! is not charged to it), in alternating rounds, so slow drifts of the
//! machine hit every side alike. A round's figure for a side is its fastest
//! of several passes: what the machine adds (interrupts, cache and TLB
//! eviction by other work, frequency dips) only ever adds CPU time, while a
//! probe's cost is in every pass, so the fastest pass keeps the cost and
//! sheds most of the noise. A ratio is the side's median over rounds over
//! the baseline's median of the same run; the spread is the range of the
//! per-round ratios.
//!
//! Then the daemons' own RSS and CPU beside the tools memwatch replaces
//! (`footprint`), at several host sizes and through a churn of short-lived
//! processes.
//!
//! `--quick` runs one short round: CI uses it to prove the bench still
//! works, not to time anything. Needs root (it attaches probes).
mod crate_build;
mod footprint;
mod process_exporter;

use std::{
    io::{BufRead as _, BufReader, Read as _},
    process::{Child, Command, Stdio},
    time::Duration,
};

use memwatch::sources::ebpf::{ProbeOptions, Probes};

const REGION: usize = 64 << 20;
use memwatch_tests::pages::PAGE;
const FAULTS_PER_PASS: usize = REGION / PAGE;

/// bpftrace collecting per pid what memwatch reports per process.
const BPFTRACE_SCRIPT: &str = "\
tracepoint:kmem:rss_stat { @rss[pid, args->member] = args->size; }
tracepoint:exceptions:page_fault_user { @faults[pid] = count(); }
tracepoint:syscalls:sys_enter_mmap { @len[tid] = args->len; }
tracepoint:syscalls:sys_exit_mmap /@len[tid]/ { if (args->ret >= 0) { @mmap[pid] = sum(@len[tid]); } delete(@len[tid]); }
tracepoint:syscalls:sys_enter_munmap { @ulen[tid] = args->len; }
tracepoint:syscalls:sys_exit_munmap /@ulen[tid]/ { if (args->ret == 0) { @munmap[pid] = sum(@ulen[tid]); } delete(@ulen[tid]); }
tracepoint:syscalls:sys_exit_brk { @brk[pid] = args->ret; }
";

/// CPU time of this thread, user and system.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write into.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One pass of the fault loop. Returns CPU ns per fault.
fn fault_pass() -> f64 {
    let base = memwatch_tests::pages::map_anonymous_small_pages(REGION);
    let start = thread_cpu_time();
    for offset in (0..REGION).step_by(PAGE) {
        // SAFETY: inside the mapping made above.
        unsafe { base.add(offset).write_volatile(1) };
    }
    let elapsed = thread_cpu_time() - start;
    // SAFETY: unmapping exactly what we mapped.
    unsafe { libc::munmap(base.cast(), REGION) };
    elapsed.as_nanos() as f64 / FAULTS_PER_PASS as f64
}

/// One pass of the syscall loop: `calls` reads of 64 bytes. CPU ns per call.
fn syscall_pass(zero: &std::fs::File, calls: usize) -> f64 {
    let mut buffer = [0u8; 64];
    let mut reader = zero;
    let start = thread_cpu_time();
    for _ in 0..calls {
        let n = reader.read(&mut buffer).expect("reading /dev/zero");
        assert_eq!(n, buffer.len());
    }
    (thread_cpu_time() - start).as_nanos() as f64 / calls as f64
}

/// The fastest of `passes` runs of `pass`.
fn fastest(passes: usize, mut pass: impl FnMut() -> f64) -> f64 {
    (0..passes).map(|_| pass()).fold(f64::INFINITY, f64::min)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Nothing,
    Memwatch,
    /// With `daemon.syscall_tracepoints = true` on a kernel without fexit.
    MemwatchSyscallTracepoints,
    Bpftrace,
    ProcessExporter,
}

impl Side {
    const ALL: [Side; 5] =
        [Side::Nothing, Side::Memwatch, Side::MemwatchSyscallTracepoints, Side::Bpftrace, Side::ProcessExporter];

    fn name(self) -> &'static str {
        match self {
            Side::Nothing => "nothing attached",
            Side::Memwatch => "memwatch (default)",
            Side::MemwatchSyscallTracepoints => "memwatch, syscall tracepoints",
            Side::Bpftrace => "bpftrace (same figures)",
            Side::ProcessExporter => "process-exporter (scraped)",
        }
    }
}

/// What is attached while one side is measured.
enum Attached {
    Nothing,
    /// The probes, and the kernel's BPF run-time statistics switched on
    /// while they are attached (closing the fd switches them off).
    Memwatch(Box<Probes>, #[expect(dead_code, reason = "held: closing it ends the statistics")] std::os::fd::OwnedFd),
    Bpftrace(Child),
    ProcessExporter(#[expect(dead_code, reason = "held: dropping it stops the exporter")] process_exporter::Scraped),
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Attached::Bpftrace(child) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Attached {
    /// How often memwatch's programs have run, and for how long, so far:
    /// what they cost, free of the machine's noise. `None` for other sides.
    fn program_runs(&self) -> Option<(u64, Duration)> {
        let Attached::Memwatch(probes, _) = self else { return None };
        let stats = probes.program_stats().unwrap_or_else(|e| panic!("reading the programs' statistics: {e}"));
        Some(stats.iter().fold((0, Duration::ZERO), |(runs, time), s| (runs + s.runs, time + s.run_time)))
    }
}

fn attach(side: Side, interval: Duration) -> Attached {
    match side {
        Side::Nothing => Attached::Nothing,
        Side::Memwatch | Side::MemwatchSyscallTracepoints => {
            let syscall_tracepoints = side == Side::MemwatchSyscallTracepoints;
            let options = ProbeOptions { large_mapping_bytes: u64::MAX, syscall_tracepoints };
            let probes = Probes::attach(options).unwrap_or_else(|e| panic!("memwatch's probes: {e}"));
            let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
                .unwrap_or_else(|e| panic!("enabling BPF run-time statistics: {e}"));
            Attached::Memwatch(Box::new(probes), stats)
        }
        Side::Bpftrace => Attached::Bpftrace(start_bpftrace()),
        Side::ProcessExporter => {
            Attached::ProcessExporter(process_exporter::Scraped::start(&std::env::temp_dir(), interval))
        }
    }
}

/// bpftrace running the script, returned once its probes are attached.
fn start_bpftrace() -> Child {
    let mut child = Command::new("bpftrace")
        .args(["-e", BPFTRACE_SCRIPT])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting bpftrace (Debian package bpftrace): {e}"));
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    // "Attaching 7 probes..." is printed before it attaches them one by
    // one, and nothing after; a settle time covers the attaching.
    match lines.next() {
        Some(Ok(line)) if line.starts_with("Attaching") => {}
        other => panic!("bpftrace did not start: {other:?}"),
    }
    std::thread::sleep(Duration::from_secs(2));
    std::thread::spawn(move || lines.for_each(drop));
    child
}

struct Workload {
    name: String,
    unit: &'static str,
    run: Box<dyn Fn() -> f64>,
}

fn workloads(quick: bool, crate_build: Option<crate_build::CrateBuild>) -> Vec<Workload> {
    let passes = if quick { 2 } else { 10 };
    // 3 M calls per round in all, as 10 passes of 300,000.
    let calls_per_pass = if quick { 100_000 } else { 300_000 };
    let zero = std::fs::File::open("/dev/zero").expect("opening /dev/zero");
    let mut workloads = vec![
        Workload {
            name: "page-fault loop (64 MiB, every 4 KiB page)".into(),
            unit: "ns/fault",
            run: Box::new(move || {
                fault_pass(); // warm-up: page tables, allocator, caches
                fastest(passes, fault_pass)
            }),
        },
        Workload {
            name: "syscall loop (64-byte read()s of /dev/zero)".into(),
            unit: "ns/call",
            run: Box::new(move || {
                syscall_pass(&zero, calls_per_pass / 10);
                fastest(passes, || syscall_pass(&zero, calls_per_pass))
            }),
        },
    ];
    match crate_build {
        Some(build) => {
            build.run(); // warm-up: the sources and rustc in the page cache
            let builds = if quick { 1 } else { 5 };
            workloads.push(Workload {
                name: build.name(),
                unit: "CPU ms",
                run: Box::new(move || fastest(builds, || build.run())),
            });
        }
        None => println!("crate build skipped: no --rustc/--crate/--edition given (`cargo xtask bench` gives them)"),
    }
    workloads
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // The interval process-exporter is scraped at: memwatch's default.
    let interval = Duration::from_secs(5);
    // bpftrace attaches tracepoints through tracefs, which a fresh host lacks.
    memwatch::sources::ebpf::tracefs::ensure_mounted().unwrap_or_else(|e| panic!("{e}"));
    let rounds = if quick { 1 } else { 15 };
    let workloads = workloads(quick, crate_build::CrateBuild::from_args(&args));
    // figures[workload][side] = one figure per round
    let mut figures = vec![vec![Vec::new(); Side::ALL.len()]; workloads.len()];
    // program_runs[workload][side] = memwatch's program runs and run time, all rounds
    let mut program_runs = vec![vec![(0u64, Duration::ZERO); Side::ALL.len()]; workloads.len()];
    for round in 0..rounds {
        // Rotate the order so no side always runs first after a change.
        for k in 0..Side::ALL.len() {
            let side_index = (k + round) % Side::ALL.len();
            let attached = attach(Side::ALL[side_index], interval);
            for (w, workload) in workloads.iter().enumerate() {
                let before = attached.program_runs();
                figures[w][side_index].push((workload.run)());
                if let (Some(before), Some(after)) = (before, attached.program_runs()) {
                    let (runs, time) = &mut program_runs[w][side_index];
                    *runs += after.0 - before.0;
                    *time += after.1 - before.1;
                }
            }
            drop(attached);
        }
    }
    println!("rounds: {rounds}, CPU time of the workload thread, fastest pass per round, medians over rounds");
    for (w, workload) in workloads.iter().enumerate() {
        println!("\n{}", workload.name);
        let baseline = &figures[w][0];
        for (s, side) in Side::ALL.iter().enumerate() {
            let ratios: Vec<f64> = figures[w][s].iter().zip(baseline).map(|(v, b)| v / b).collect();
            let (low, high) = ratios.iter().fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
            println!(
                "  {:<30} {:>8.1} {}  {:.3}x  (per-round ratios {low:.3}-{high:.3})",
                side.name(),
                median(&figures[w][s]),
                workload.unit,
                median(&figures[w][s]) / median(baseline),
            );
            if matches!(side, Side::Memwatch | Side::MemwatchSyscallTracepoints) {
                let (runs, time) = program_runs[w][s];
                println!(
                    "  {:<30} memwatch's programs ran {} times per round, {:.1} µs in all",
                    "",
                    runs / rounds as u64,
                    time.as_secs_f64() * 1e6 / rounds as f64
                );
            }
        }
    }
    print_footprints(quick);
    if quick {
        println!("\n(quick mode: proves the bench runs; the figures are not meaningful)");
    }
}

fn print_footprints(quick: bool) {
    let memwatch = std::env::current_exe().expect("current_exe").with_file_name("memwatch");
    assert!(memwatch.exists(), "{} missing: `cargo build --release -p memwatch` first", memwatch.display());
    let (sizes, warm_up, window, interval): (&[usize], _, _, _) = if quick {
        (&[100], Duration::from_secs(2), Duration::from_secs(3), Duration::from_secs(1))
    } else {
        (&[100, 1_000, 5_000], Duration::from_secs(10), Duration::from_secs(30), Duration::from_secs(5))
    };
    for &processes in sizes {
        let sleepers = footprint::Sleepers::spawn(processes);
        let host = std::fs::read_dir("/proc")
            .map_or(0, |d| d.flatten().filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok()).count());
        println!(
            "\ndaemon footprint, {host} processes on the host ({processes} added), {}s interval, {}s window",
            interval.as_secs(),
            window.as_secs()
        );
        for f in footprint::measure_all(&memwatch, warm_up, window, interval) {
            println!(
                "  {:<30} RSS {:>7.1} MiB (peak {:>6.1} MiB)  CPU {:>5.2}% of one core",
                f.name,
                f.rss_kib as f64 / 1024.0,
                f.hwm_kib as f64 / 1024.0,
                f.cpu_percent
            );
        }
        drop(sleepers);
    }
    print_churn(&memwatch, quick, warm_up, interval);
}

/// The daemons through a churn of short-lived processes: memwatch keeps
/// each one's final figures at exit, which must not pile up.
fn print_churn(memwatch: &std::path::Path, quick: bool, warm_up: Duration, interval: Duration) {
    let processes = if quick { 1_000 } else { 100_000 };
    println!("\ndaemon footprint through a churn of {processes} short-lived processes (/bin/true, one after another)");
    for f in footprint::measure_churn_all(memwatch, warm_up, processes, interval) {
        println!(
            "  {:<30} RSS {:>6.1} MiB before, {:>6.1} MiB after ({:+.1}%; peak {:>6.1} MiB)  CPU {:>5.2}% of one core over {:.0}s",
            f.name,
            f.rss_before_kib as f64 / 1024.0,
            f.rss_after_kib as f64 / 1024.0,
            (f.rss_after_kib as f64 / f.rss_before_kib.max(1) as f64 - 1.0) * 100.0,
            f.hwm_kib as f64 / 1024.0,
            f.cpu_percent,
            f.seconds,
        );
    }
}
