use super::*;

/// A fake cgroupfs: `files` are (path relative to the root, content).
pub fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    root
}

const V2_EVENTS: &str = "low 0\nhigh 17\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n";

#[test]
fn v2_reads_and_writes_memory_high_with_max() {
    let root = fixture(&[
        ("cgroup.controllers", "cpu memory pids\n"),
        ("app.slice/api.service/memory.high", "max\n"),
        ("app.slice/api.service/memory.current", "123456789\n"),
        ("app.slice/api.service/memory.events", V2_EVENTS),
    ]);
    let cgroup = CgroupFs::new(root.path()).open("/app.slice/api.service").unwrap();
    assert_eq!(cgroup.knob(), Knob::MemoryHigh);
    assert_eq!(cgroup.limit().unwrap(), Limit::Max);
    assert_eq!(cgroup.usage().unwrap(), 123_456_789);
    let events = cgroup.memory_events().unwrap();
    assert_eq!((events.high, events.max, events.oom_kill), (17, 2, 1));

    cgroup.set_limit(Limit::Bytes(100 << 20)).unwrap();
    assert_eq!(std::fs::read_to_string(cgroup.dir().join("memory.high")).unwrap(), "104857600");
    assert_eq!(cgroup.limit().unwrap(), Limit::Bytes(100 << 20));
    cgroup.set_limit(Limit::Max).unwrap();
    assert_eq!(std::fs::read_to_string(cgroup.dir().join("memory.high")).unwrap(), "max");
}

#[test]
fn v1_hybrid_hosts_use_the_soft_limit_with_minus_one_for_no_limit() {
    let root = fixture(&[
        ("unified/cgroup.controllers", ""),
        ("memory/system.slice/redis.service/memory.soft_limit_in_bytes", "9223372036854771712\n"),
        ("memory/system.slice/redis.service/memory.usage_in_bytes", "4096\n"),
    ]);
    let cgroup = CgroupFs::new(root.path()).open("/system.slice/redis.service").unwrap();
    assert_eq!(cgroup.knob(), Knob::SoftLimit);
    assert_eq!(cgroup.limit().unwrap(), Limit::Max, "v1's huge value means unlimited");
    assert_eq!(cgroup.usage().unwrap(), 4096);
    cgroup.set_limit(Limit::Bytes(1 << 30)).unwrap();
    assert_eq!(cgroup.limit().unwrap(), Limit::Bytes(1 << 30));
    cgroup.set_limit(Limit::Max).unwrap();
    let written = std::fs::read_to_string(cgroup.dir().join("memory.soft_limit_in_bytes")).unwrap();
    assert_eq!(written, "-1");
}

#[test]
fn a_cgroup_without_any_knob_is_a_clear_error() {
    let root = fixture(&[("cgroup.controllers", "cpu pids\n"), ("batch/cgroup.procs", "")]);
    let err = CgroupFs::new(root.path()).open("/batch").unwrap_err();
    assert!(matches!(err, CgroupError::NoMemoryControl { .. }), "{err}");
    assert!(err.to_string().contains("memory.high") && err.to_string().contains("soft_limit"), "{err}");
    assert!(!err.is_gone());
}

#[test]
fn a_missing_or_removed_cgroup_is_gone_not_fatal() {
    let root = fixture(&[("cgroup.controllers", "memory\n"), ("job/memory.high", "max\n")]);
    let fs = CgroupFs::new(root.path());
    let err = fs.open("/no-such-job").unwrap_err();
    assert!(matches!(err, CgroupError::Gone { .. }) && err.is_gone(), "{err}");

    // Removed between opening and acting on it.
    let cgroup = fs.open("/job").unwrap();
    std::fs::remove_dir_all(root.path().join("job")).unwrap();
    for err in [cgroup.limit().unwrap_err(), cgroup.set_limit(Limit::Max).unwrap_err()] {
        assert!(matches!(err, CgroupError::Gone { .. }), "{err}");
    }
}

#[test]
fn garbage_in_a_knob_is_a_parse_error_naming_the_file() {
    let root = fixture(&[("job/memory.high", "lots\n"), ("job/memory.events", "high\n")]);
    let cgroup = Cgroup::at(root.path().join("job")).unwrap();
    let err = cgroup.limit().unwrap_err();
    assert!(matches!(&err, CgroupError::Parse { content, .. } if content == "lots"), "{err}");
    assert!(err.to_string().contains("memory.high"), "{err}");
    assert!(matches!(cgroup.memory_events().unwrap_err(), CgroupError::Parse { .. }));
}

#[test]
fn events_tolerate_older_and_newer_kernels() {
    let old = MemoryEvents::parse("low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\n").unwrap();
    assert_eq!(old, MemoryEvents { low: 1, high: 2, max: 3, oom: 4, oom_kill: 5, oom_group_kill: 0 });
    let new = MemoryEvents::parse(&format!("{V2_EVENTS}sock_throttled 9\n")).unwrap();
    assert_eq!(new.high, 17);
}

#[test]
fn limits_round_trip_through_their_text_and_json() {
    for limit in [Limit::Max, Limit::Bytes(0), Limit::Bytes(268_435_456)] {
        assert_eq!(limit.to_string().parse::<Limit>().unwrap(), limit);
        let json = serde_json::to_string(&limit).unwrap();
        assert_eq!(serde_json::from_str::<Limit>(&json).unwrap(), limit);
    }
    assert_eq!(serde_json::to_string(&Limit::Max).unwrap(), "\"max\"");
    assert!("-5".parse::<Limit>().is_err());
}

fn fixture_tree() -> CgroupFs {
    CgroupFs::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sys/fs/cgroup"))
}

#[test]
fn v2_limits_take_the_tightest_ancestor_and_ignore_max() {
    let cgroups = fixture_tree();
    // api.service: memory.max = 1 GiB under a slice capped at 2 GiB.
    assert_eq!(cgroups.limit("/system.slice/api.service"), Some(1 << 30));
    // worker.service has "max", its slice 2 GiB.
    assert_eq!(cgroups.limit("/system.slice/worker.service"), Some(2 << 30));
    // Nothing anywhere on the path limits user sessions.
    assert_eq!(cgroups.limit("/user.slice/user-1000.slice/session-2.scope"), None);
}

#[test]
fn v1_limits_are_used_when_v2_has_none_and_huge_means_unlimited() {
    let cgroups = fixture_tree();
    assert_eq!(cgroups.limit("/legacy/db"), Some(512 << 20));
    assert_eq!(cgroups.limit("/legacy/unlimited"), None);
}

#[test]
fn units_come_from_the_innermost_service_or_scope() {
    assert_eq!(unit_from_cgroup("/system.slice/nginx.service").as_deref(), Some("nginx.service"));
    assert_eq!(
        unit_from_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope").as_deref(),
        Some("run-r1.scope")
    );
    assert_eq!(unit_from_cgroup("/system.slice/postgresql.service/payload").as_deref(), Some("postgresql.service"));
    assert_eq!(unit_from_cgroup("/machine.slice").as_deref(), Some("machine.slice"));
    assert_eq!(unit_from_cgroup("/system.slice"), None);
    assert_eq!(unit_from_cgroup("/"), None);
    assert_eq!(unit_from_cgroup("/process_api/ee2efc7e"), None);
}

#[test]
fn the_working_set_is_read_from_v2_and_from_v1s_hierarchical_stat() {
    let root = fixture(&[
        ("cgroup.controllers", "cpu memory pids\n"),
        ("memory.current", "999999999\n"),
        ("app.slice/api.service/memory.current", "1000000\n"),
        ("app.slice/api.service/memory.stat", "anon 600000\nfile 400000\nactive_file 100000\ninactive_file 300000\n"),
        (
            "app.slice/api.service/memory.pressure",
            "some avg10=4.00 avg60=1.00 avg300=0.20 total=1\nfull avg10=0.50 avg60=0.10 avg300=0.00 total=1\n",
        ),
        ("app.slice/batch.service/memory.current", "5000\n"),
        ("app.slice/batch.service/memory.stat", "inactive_file 1000\n"),
        ("memory/system.slice/redis.service/memory.usage_in_bytes", "8000\n"),
        // v1's own-cgroup `inactive_file` comes first and is not the one:
        // children's page cache is charged to the parent too.
        ("memory/system.slice/redis.service/memory.stat", "inactive_file 1000\ntotal_inactive_file 3000\n"),
    ]);
    let cgroupfs = CgroupFs::new(root.path());
    let api = cgroupfs.memory("/app.slice/api.service").unwrap();
    assert_eq!((api.charged_bytes, api.inactive_file_bytes, api.working_set_bytes()), (1_000_000, 300_000, 700_000));
    assert_eq!(api.pressure.map(|p| (p.some_avg10, p.full_avg10)), Some((4.0, 0.5)));
    let batch = cgroupfs.memory("/app.slice/batch.service").unwrap();
    assert_eq!((batch.working_set_bytes(), batch.pressure), (4000, None), "no memory.pressure: none shown");
    let redis = cgroupfs.memory("/system.slice/redis.service").unwrap();
    assert_eq!((redis.working_set_bytes(), redis.pressure), (5000, None));
    assert_eq!(cgroupfs.memory("/"), None, "the root's figures are the host's");
    assert_eq!(cgroupfs.memory("/gone.service"), None);
}
