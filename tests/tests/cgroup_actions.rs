//! The action primitives on a real cgroup v2 memory controller: the
//! acceptance scenarios of issue 4, short of the engine's decisions.
//! Hybrid hosts have no such controller, so these run in `cargo xtask vm-test`.
use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use memwatch::{
    actions::sys::{ActError, signal, throttle_state::Throttles},
    sources::{
        cgroupfs::{Cgroup, CgroupError, Limit},
        procfs::ProcFs,
    },
};
use memwatch_tests::{
    Workload,
    cgroup_v2::{TestCgroup, available},
    figure,
};
use rustix::process::Signal;

const WORKLOAD: &str = env!("CARGO_BIN_EXE_alloc-workload");
const THROTTLER: &str = env!("CARGO_BIN_EXE_throttler");
const MIB: u64 = 1 << 20;

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB as f64)
}

/// Growth of the cgroup's charged memory over `window`, in MiB/s.
fn growth_rate(cgroup: &Cgroup, window: Duration) -> f64 {
    let start = cgroup.usage().unwrap();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let end = cgroup.usage().unwrap();
    (end as f64 - start as f64) / MIB as f64 / t0.elapsed().as_secs_f64()
}

fn state_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("memwatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("throttles.json")
}

#[test]
fn lowering_memory_high_throttles_a_growing_workload() {
    if !available("lowering_memory_high_throttles_a_growing_workload") {
        return;
    }
    let scenario = "throttle";
    let group = TestCgroup::new("throttle");
    let cgroup = group.cgroup();
    // ~200 MiB/s at most (2 MiB per 10 ms), for longer than the test watches.
    let mut workload =
        Workload::spawn(WORKLOAD, &["--mib", "700", "--step-mib", "2", "--step-ms", "10", "--brk-mib", "0"]);
    workload.wait_for("ready");
    group.add(workload.pid());
    workload.proceed();
    std::thread::sleep(Duration::from_millis(300));

    let before = growth_rate(&cgroup, Duration::from_secs(1));
    let events_before = cgroup.memory_events().unwrap();
    let usage = cgroup.usage().unwrap();
    let limit = usage + 8 * MIB;
    let mut throttles = Throttles::load(state_file("throttle")).unwrap();
    let t0 = Instant::now();
    let original = throttles.throttle(&cgroup, &group.path(), Limit::Bytes(limit)).unwrap();
    let apply = t0.elapsed();
    // Let it reach the limit before measuring the throttled rate.
    std::thread::sleep(Duration::from_millis(300));
    let after = growth_rate(&cgroup, Duration::from_secs(1));
    let events_after = cgroup.memory_events().unwrap();
    let usage_after = cgroup.usage().unwrap();

    figure(scenario, "usage when throttled (MiB)", mib(usage));
    figure(scenario, "memory.high set to (MiB)", mib(limit));
    figure(scenario, "time to apply memory.high, state file included (us)", apply.as_micros());
    figure(scenario, "growth before (MiB/s)", format!("{before:.1}"));
    figure(scenario, "growth after (MiB/s)", format!("{after:.1}"));
    figure(scenario, "memory.events high before", events_before.high);
    figure(scenario, "memory.events high after", events_after.high);
    figure(scenario, "usage after (MiB)", mib(usage_after));

    assert_eq!(original, Limit::Max);
    assert_eq!(group.read("memory.high"), limit.to_string());
    assert!(before >= 20.0, "the workload should grow before throttling: {before:.1} MiB/s");
    assert!(
        events_after.high > events_before.high,
        "memory.events high must rise: {events_before:?} -> {events_after:?}"
    );
    assert!(after < before / 4.0, "growth should fall well below {before:.1} MiB/s, is {after:.1}");
    assert!(usage_after < limit + 32 * MIB, "usage {usage_after} should stay near memory.high {limit}");

    let report = throttles.restore_all().unwrap();
    assert_eq!(report.restored.len(), 1);
    assert_eq!(group.read("memory.high"), "max");
    workload.child.kill().unwrap();
    workload.child.wait().unwrap();
}

#[test]
fn a_crashed_throttler_is_undone_by_restore_all() {
    if !available("a_crashed_throttler_is_undone_by_restore_all") {
        return;
    }
    let scenario = "crash restore";
    let kept = TestCgroup::new("crash-kept");
    let removed = TestCgroup::new("crash-removed");
    let original = 300 * MIB;
    kept.write("memory.high", &original.to_string());
    let lowered = 64 * MIB;
    let state = state_file("crash");

    let mut throttler = Command::new(THROTTLER)
        .arg(&state)
        .arg(lowered.to_string())
        .args([&kept.dir, &removed.dir])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(throttler.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "throttled");
    assert_eq!(kept.read("memory.high"), lowered.to_string(), "the throttler lowered it");
    throttler.kill().unwrap(); // SIGKILL: no chance to clean up
    throttler.wait().unwrap();
    assert_eq!(kept.read("memory.high"), lowered.to_string(), "nothing restored it yet");
    let removed_dir = removed.dir.clone();
    drop(removed); // that service stopped while memwatch was down

    let t0 = Instant::now();
    let mut successor = Throttles::load(&state).unwrap();
    let report = successor.restore_all().unwrap();
    let took = t0.elapsed();
    figure(scenario, "original memory.high (MiB)", mib(original));
    figure(scenario, "left lowered by the killed throttler (MiB)", mib(lowered));
    figure(scenario, "after restore_all (MiB)", mib(kept.read("memory.high").parse().unwrap()));
    figure(scenario, "restore_all took (us)", took.as_micros());
    figure(scenario, "cgroups restored / gone", format!("{} / {}", report.restored.len(), report.gone.len()));

    assert_eq!(kept.read("memory.high"), original.to_string());
    assert_eq!(report.restored, [(kept.dir.clone(), Limit::Bytes(original))]);
    assert_eq!(report.gone, [removed_dir]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(Throttles::load(&state).unwrap().entries().is_empty());
}

#[test]
fn a_gone_cgroup_mid_action_is_not_fatal() {
    if !available("a_gone_cgroup_mid_action_is_not_fatal") {
        return;
    }
    let group = TestCgroup::new("gone");
    let cgroup = group.cgroup();
    let path = group.path();
    drop(group);
    let err = cgroup.set_limit(Limit::Bytes(MIB)).unwrap_err();
    assert!(matches!(err, CgroupError::Gone { .. }), "{err}");
    let mut throttles = Throttles::load(state_file("gone")).unwrap();
    assert!(throttles.throttle(&cgroup, &path, Limit::Bytes(MIB)).unwrap_err().is_gone());
    assert!(throttles.entries().is_empty());
}

#[test]
fn a_cleanup_signal_by_pidfd_frees_the_workloads_memory() {
    if !available("a_cleanup_signal_by_pidfd_frees_the_workloads_memory") {
        return;
    }
    let scenario = "cleanup signal";
    let group = TestCgroup::new("signal");
    let cgroup = group.cgroup();
    let mut workload = Workload::spawn(
        WORKLOAD,
        &["--mib", "128", "--step-mib", "16", "--step-ms", "0", "--brk-mib", "0", "--free-on-sigusr1"],
    );
    workload.wait_for("ready");
    group.add(workload.pid());
    workload.proceed();
    workload.wait_for("allocated");
    let procfs = ProcFs::default();
    let id = procfs.stat(workload.pid()).unwrap().id;
    let before = cgroup.usage().unwrap();

    let stale = memwatch::model::sample::ProcessId { start_time: id.start_time + 1, ..id };
    assert!(matches!(signal::send(&procfs, stale, Signal::USR1), Err(ActError::PidReused { .. })));

    let t0 = Instant::now();
    signal::send(&procfs, id, Signal::USR1).unwrap();
    workload.wait_for("freed");
    let latency = t0.elapsed();
    let after = cgroup.usage().unwrap();
    let freed = before.saturating_sub(after);
    figure(scenario, "cgroup usage before SIGUSR1 (MiB)", mib(before));
    figure(scenario, "cgroup usage after (MiB)", mib(after));
    figure(scenario, "memory freed (MiB)", mib(freed));
    figure(scenario, "signal sent to memory freed (ms)", format!("{:.1}", latency.as_secs_f64() * 1e3));
    assert!(freed >= 120 * MIB, "SIGUSR1 should free the 128 MiB, freed {freed} B");
    workload.proceed();
    workload.finish();
}
