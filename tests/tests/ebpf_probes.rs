//! The real kernel programs, loaded and read through memwatch's collector,
//! against a child whose allocations are known.
use memwatch::{
    model::delta,
    model::sample::{Mode, Snapshot},
    sources::collect::{Collector, ModeRequest},
    sources::ebpf::ProbeOptions,
    sources::procfs::ProcFs,
};
use memwatch_tests::{Workload, figure, privileged, proc_status_bytes};

const WORKLOAD: &str = env!("CARGO_BIN_EXE_alloc-workload");
const MIB: u64 = 1 << 20;

/// The probes with every figure they can give: fexit for the syscalls where
/// the kernel takes it (the 6.1 VM lane), the syscall tracepoints where it
/// does not (the host).
fn attach() -> Collector {
    attach_with(ProbeOptions { large_mapping_bytes: 64 * MIB, syscall_tracepoints: true })
}

fn attach_with(options: ProbeOptions) -> Collector {
    let (collector, fallback) = Collector::open(ModeRequest::Ebpf, ProcFs::default(), options)
        .unwrap_or_else(|e| panic!("the eBPF probes must attach as root: {e}"));
    assert!(fallback.is_none());
    assert_eq!(collector.mode(), Mode::Ebpf);
    collector
}

fn mib(bytes: i64) -> String {
    format!("{:.1}", bytes as f64 / MIB as f64)
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned()
}

fn row_of(base: &Snapshot, now: &Snapshot, pid: u32) -> delta::ProcessDelta {
    delta::diff(&base.processes, &now.processes, &now.exited)
        .into_iter()
        .find(|r| r.id.pid == pid)
        .unwrap_or_else(|| panic!("pid {pid} missing from the snapshot"))
}

#[test]
fn growth_faults_and_syscalls_are_attributed_to_the_allocating_child() {
    if !privileged("growth_faults_and_syscalls_are_attributed_to_the_allocating_child") {
        return;
    }
    let mut collector = attach();
    let mut workload = Workload::spawn(WORKLOAD, &["--mib", "256", "--step-mib", "16", "--brk-mib", "8"]);
    workload.wait_for("ready");
    let base = collector.snapshot().unwrap();

    workload.proceed();
    workload.wait_for("allocated");
    let vm_rss = proc_status_bytes(workload.pid(), "VmRSS");
    let now = collector.snapshot().unwrap();
    let row = row_of(&base, &now, workload.pid());
    let reported_rss = row.current.rss();
    let scenario = "ebpf attribution";
    figure(scenario, "kernel", kernel_release());
    figure(scenario, "probes", collector.attached().join(","));
    figure(scenario, "reported RSS of the child (MiB)", mib(reported_rss as i64));
    figure(scenario, "VmRSS of the child (MiB)", mib(vm_rss as i64));
    figure(scenario, "anon growth attributed to the child's pid (MiB)", mib(row.rss_anon_delta));
    figure(scenario, "page faults", row.page_faults);
    figure(scenario, "mmap (MiB)", mib(row.mmap_bytes.unwrap_or(0) as i64));
    figure(scenario, "brk (MiB)", mib(row.brk_bytes.unwrap_or(0) as i64));
    let error = (reported_rss as f64 - vm_rss as f64).abs() / vm_rss as f64;
    assert!(error <= 0.05, "reported RSS {reported_rss} is {:.1}% off VmRSS {vm_rss}", error * 100.0);
    assert!(row.rss_anon_delta >= (256 + 8) as i64 * MIB as i64 * 95 / 100, "anon growth {}", row.rss_anon_delta);
    assert!(row.page_faults >= 60_000, "page faults {}", row.page_faults);
    let mmap = row.mmap_bytes.expect("ebpf mode counts mmap");
    // 16 chunks of 16 MiB; the refused 1 GiB mapping must not count.
    assert!((256 * MIB..1 << 30).contains(&mmap), "mmap bytes {mmap}");
    assert!(row.brk_bytes.expect("ebpf mode counts brk") >= 8 * MIB, "brk {:?}", row.brk_bytes);

    workload.proceed();
    workload.wait_for("freed");
    let after_free = collector.snapshot().unwrap();
    let freed = row_of(&now, &after_free, workload.pid());
    assert!(freed.munmap_bytes.expect("ebpf mode counts munmap") >= 16 * MIB, "munmap {:?}", freed.munmap_bytes);
    assert!(freed.rss_anon_delta <= -(15 * MIB as i64), "anon after munmap {}", freed.rss_anon_delta);

    let pid = workload.pid();
    workload.finish();
    let gone = collector.snapshot().unwrap();
    let exited: Vec<_> = gone.exited.iter().filter(|s| s.id.pid == pid).collect();
    assert_eq!(exited.len(), 1, "the exit is reported exactly once: {:?}", gone.exited);
    assert!(gone.processes.iter().all(|s| s.id.pid != pid));
    let again = collector.snapshot().unwrap();
    assert!(again.exited.iter().all(|s| s.id.pid != pid), "exit reported twice");
}

#[test]
fn short_lived_processes_are_reported_at_exit_with_their_name() {
    if !privileged("short_lived_processes_are_reported_at_exit_with_their_name") {
        return;
    }
    let mut collector = attach();
    let _ = collector.snapshot().unwrap();
    // Born and gone between two readings: only the exit event can tell of it.
    let mut workload = Workload::spawn(WORKLOAD, &["--mib", "32", "--step-mib", "32", "--brk-mib", "0"]);
    let pid = workload.pid();
    workload.wait_for("ready");
    workload.proceed();
    workload.wait_for("allocated");
    workload.proceed();
    workload.wait_for("freed");
    workload.finish();
    let snapshot = collector.snapshot().unwrap();
    let sample = snapshot
        .exited
        .iter()
        .find(|s| s.id.pid == pid)
        .unwrap_or_else(|| panic!("exit of {pid} not reported: {:?}", snapshot.exited));
    assert_eq!(sample.info.comm, "alloc-workload");
    // Read from the task at exit: /proc never showed this process.
    assert!(sample.counters.page_faults >= 8_000, "faults {}", sample.counters.page_faults);
    assert!(sample.counters.mmap_bytes.unwrap() >= 32 * MIB);
}

/// Nothing on the page-fault path, and no `syscalls:*` tracepoint (which
/// would slow every syscall of every process) unless asked for: the
/// syscall figures come from fexit or stay unknown.
#[test]
fn by_default_no_probe_costs_other_syscalls_or_page_faults() {
    if !privileged("by_default_no_probe_costs_other_syscalls_or_page_faults") {
        return;
    }
    let mut collector = attach_with(ProbeOptions { large_mapping_bytes: 64 * MIB, syscall_tracepoints: false });
    let attached = collector.attached().to_vec();
    figure("default probes", "kernel", kernel_release());
    figure("default probes", "attached", attached.join(","));
    assert!(attached.iter().all(|p| !p.starts_with("syscalls:")), "{attached:?}");
    assert!(attached.iter().all(|p| !p.contains("page_fault") && !p.contains("rss_stat")), "{attached:?}");
    assert!(attached.contains(&"raw_tp:sched_process_exit".to_owned()), "{attached:?}");
    let fexit = attached.iter().any(|p| p.starts_with("fexit:"));

    let mut workload = Workload::spawn(WORKLOAD, &["--mib", "64", "--step-mib", "16", "--brk-mib", "0"]);
    workload.wait_for("ready");
    let base = collector.snapshot().unwrap();
    workload.proceed();
    workload.wait_for("allocated");
    let row = row_of(&base, &collector.snapshot().unwrap(), workload.pid());
    workload.proceed();
    workload.finish();
    assert!(row.rss_anon_delta >= 60 * MIB as i64, "RSS comes from /proc either way: {}", row.rss_anon_delta);
    assert!(row.page_faults >= 15_000, "faults from /proc: {}", row.page_faults);
    match row.mmap_bytes {
        Some(mmap) => assert!(fexit && mmap >= 64 * MIB, "mmap {mmap} counted, fexit attached: {fexit}"),
        None => assert!(!fexit, "fexit attached but mmap unknown"),
    }
}

#[test]
fn nothing_is_dropped_under_a_normal_load() {
    if !privileged("nothing_is_dropped_under_a_normal_load") {
        return;
    }
    let mut collector = attach();
    let mut workload = Workload::spawn(WORKLOAD, &["--mib", "64"]);
    workload.wait_for("ready");
    workload.proceed();
    workload.wait_for("allocated");
    let snapshot = collector.snapshot().unwrap();
    workload.proceed();
    workload.finish();
    // Every kind of drop is listed, and with room to spare none happened.
    assert_eq!(snapshot.dropped.len(), memwatch_ebpf::ErrorKind::COUNT as usize);
    let lost: Vec<_> = snapshot.dropped.iter().filter(|(kind, n)| *n > 0 && *kind != "pending_missing").collect();
    assert!(lost.is_empty(), "dropped: {lost:?}");
}
