//! The default cleanup step on a real cgroup v2 kernel (`cargo xtask
//! vm-test`): targets no policy names, at critical, are reclaimed through
//! `memory.reclaim` and sent no signal. A cgroup that also holds page cache
//! (a mapped file on a squashfs image) gives it back; an anonymous
//! workload, without swap, cannot, and its record says so: what each step
//! freed is measured on the cgroup's usage, never claimed.
//!
//! Levels read a cgroup's working set, which leaves inactive page cache
//! out (the kernel drops it before anything else): page cache read once
//! never raises a level by itself. So the page-cache cgroup is brought to
//! critical by anonymous memory beside the cache, as a service with a
//! growing heap and a warm file cache is.
use std::{path::Path, time::Duration};

use memwatch::{
    actions::incident_log::read_all,
    model::incident::{ActionKind, ActionRecord, Incident, Outcome},
};
use memwatch_tests::{
    cgroup_v2::{TestCgroup, available},
    daemon::{self, Daemon, Leaker, scenario_dir, wait_until},
    figure,
};

const RESIDENT: &str = env!("CARGO_BIN_EXE_resident");
/// Mounted by the VM's init (xtask/src/vm/pagecache.rs).
const PAGE_CACHE_FILE: &str = "/mnt/pagecache/big";
const MIB: u64 = 1 << 20;
/// Each cgroup's memory.max, which [defaults] takes as its limit.
const MAX_MIB: u64 = 256;

/// Targets no policy names are the cgroups here, judged against their own
/// memory.max with thresholds that put 160 MiB of 256 at critical.
fn write_config(dir: &Path) -> std::path::PathBuf {
    daemon::write_config(
        dir,
        r#"
[defaults.thresholds]
warning = 0.3
critical = 0.5
emergency = 0.9
[defaults.leak]
enabled = false
[defaults.actions]
pass_wait = "0.5s"
cooldown = "30s"
# cleanup is left at its default: [{ reclaim = true }]
"#,
    )
}

fn reclaims(incident: &Incident) -> Vec<&ActionRecord> {
    incident.actions.iter().filter(|a| a.action == ActionKind::Reclaim).collect()
}

fn incident_of<'a>(incidents: &'a [Incident], group: &TestCgroup) -> &'a Incident {
    let name = group.dir.file_name().unwrap().to_str().unwrap();
    incidents
        .iter()
        .find(|i| i.target.to_string().ends_with(name))
        .unwrap_or_else(|| panic!("no incident for {name}: {incidents:#?}"))
}

#[test]
fn reclaim_gives_back_page_cache_and_tells_the_truth_about_anonymous_memory() {
    if !available("reclaim_gives_back_page_cache_and_tells_the_truth_about_anonymous_memory") {
        return;
    }
    assert!(Path::new(PAGE_CACHE_FILE).is_file(), "{PAGE_CACHE_FILE} is not mounted (the VM's init mounts it)");
    let cache_group = TestCgroup::new("reclaim-cache");
    let anon_group = TestCgroup::new("reclaim-anon");
    for group in [&cache_group, &anon_group] {
        group.write("memory.max", &(MAX_MIB * MIB).to_string());
        assert!(group.dir.join("memory.reclaim").is_file(), "this kernel has no memory.reclaim");
    }
    let mut cache = Leaker::spawn_in(&cache_group.dir, RESIDENT, &["--file", PAGE_CACHE_FILE]);
    // 136 MiB of 256 is critical (0.5) on the working set alone; with the
    // file the cgroup is charged up to its memory.max.
    let mut heap = Leaker::spawn_in(&cache_group.dir, RESIDENT, &["--anon", "136"]);
    let mut anon = Leaker::spawn_in(&anon_group.dir, RESIDENT, &["--anon", "160"]);
    for worker in [&mut cache, &mut heap, &mut anon] {
        worker.start();
        worker.expect("resident", Duration::from_secs(60));
    }
    let cache_before = cache_group.cgroup().usage().unwrap();
    let anon_before = anon_group.cgroup().usage().unwrap();
    figure("reclaim", "page-cache cgroup usage before (MiB)", cache_before / MIB);
    figure("reclaim", "anonymous cgroup usage before (MiB)", anon_before / MIB);

    let dir = scenario_dir("reclaim");
    let daemon = Daemon::start(&write_config(&dir), &dir.join("memwatch.log"));
    // Every pass re-measured: the page-cache one after its first, the
    // anonymous one after its last (it stays critical, and is throttled).
    let done = wait_until(Duration::from_secs(60), || {
        let log = daemon.log_text();
        let measured = log.lines().filter(|l| l.contains("re-measured")).count();
        let throttled = log.lines().any(|l| l.contains("action=\"throttle\"") && l.contains("reclaim-anon"));
        (measured >= 2 && throttled).then_some(())
    });
    assert!(done.is_some(), "the passes did not run in 60 s:\n{}", daemon.log_text());
    let cache_after = cache_group.cgroup().usage().unwrap();
    daemon.stop();

    let incidents = read_all(&dir.join("incidents.jsonl")).expect("the incident log");
    let cache_incident = incident_of(&incidents, &cache_group);
    let anon_incident = incident_of(&incidents, &anon_group);
    for incident in [cache_incident, anon_incident] {
        assert!(incident.actions.iter().all(|a| a.action != ActionKind::Signal), "a signal was planned: {incident:#?}");
    }
    for worker in [&mut cache, &mut heap, &mut anon] {
        assert!(!worker.drain().iter().any(|l| l.starts_with("signal")), "a workload got a signal: {:?}", worker.seen);
    }

    let cache_steps = reclaims(cache_incident);
    let first = cache_steps.first().expect("a reclaim step");
    figure("reclaim", "page-cache reclaim record", &first.detail);
    figure("reclaim", "page-cache cgroup usage after (MiB)", cache_after / MIB);
    assert_eq!(first.outcome, Outcome::Ok, "{first:?}");
    let freed = first.freed_bytes.expect("the reclaim step measured what it freed");
    assert!(freed >= 48 * MIB as i64, "page cache gave back only {freed} bytes: {first:?}");
    assert!(freed as u64 <= cache_before, "it cannot free more than the cgroup held: {first:?}");

    let anon_steps = reclaims(anon_incident);
    assert!(!anon_steps.is_empty(), "{anon_incident:#?}");
    for step in &anon_steps {
        figure("reclaim", "anonymous reclaim record", &step.detail);
        let freed = step.freed_bytes.expect("measured");
        assert!((0..16 * MIB as i64).contains(&freed), "without swap anonymous memory stays: {step:?}");
    }
    drop(cache.finish());
    drop(heap.finish());
    drop(anon.finish());
}
