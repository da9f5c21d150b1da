use super::*;
use crate::sources::cgroupfs::tests::fixture;

const MIB: u64 = 1 << 20;

fn two_cgroups() -> (tempfile::TempDir, Cgroup, Cgroup) {
    let root = fixture(&[("web/memory.high", "max\n"), ("batch/memory.high", "805306368\n")]);
    let web = Cgroup::at(root.path().join("web")).unwrap();
    let batch = Cgroup::at(root.path().join("batch")).unwrap();
    (root, web, batch)
}

#[test]
fn the_original_is_on_disk_before_the_limit_changes_and_survives_a_crash() {
    let (root, web, batch) = two_cgroups();
    let state = root.path().join("state/throttles.json");
    let mut throttles = Throttles::load(&state).unwrap();
    assert_eq!(throttles.throttle(&web, "/web", Limit::Bytes(200 * MIB)).unwrap(), Limit::Max);
    assert_eq!(throttles.throttle(&batch, "/batch", Limit::Bytes(500 * MIB)).unwrap(), Limit::Bytes(768 * MIB));
    // Lowered again: the first original is what gets restored.
    assert_eq!(throttles.throttle(&web, "/web", Limit::Bytes(150 * MIB)).unwrap(), Limit::Max);
    assert_eq!(web.limit().unwrap(), Limit::Bytes(150 * MIB));
    let text = fs::read_to_string(&state).unwrap();
    assert!(text.contains("\"original\": \"max\"") && text.contains("\"applied\": \"157286400\""), "{text}");

    drop(throttles); // a crash: nothing restored
    let mut successor = Throttles::load(&state).unwrap();
    assert_eq!(successor.entries().len(), 2);
    let report = successor.restore_all().unwrap();
    assert_eq!(report.restored.len(), 2);
    assert!(report.gone.is_empty() && report.failed.is_empty());
    assert_eq!(web.limit().unwrap(), Limit::Max);
    assert_eq!(batch.limit().unwrap(), Limit::Bytes(768 * MIB));
    assert!(Throttles::load(&state).unwrap().entries().is_empty(), "restored entries are forgotten");
}

#[test]
fn records_from_another_boot_are_dropped_not_restored() {
    let (root, web, _) = two_cgroups();
    let state = root.path().join("state/throttles.json");
    let boot = |id: &str| Some(id.to_owned());
    let mut throttles = Throttles::load_in_boot(&state, boot("boot-a")).unwrap();
    throttles.throttle(&web, "/web", Limit::Bytes(200 * MIB)).unwrap();
    drop(throttles);
    assert!(fs::read_to_string(&state).unwrap().contains("\"boot_id\": \"boot-a\""));

    // The same boot: the record is restored.
    assert_eq!(Throttles::load_in_boot(&state, boot("boot-a")).unwrap().entries().len(), 1);
    // After a reboot the path may be another service's, with its own limit.
    web.set_limit(Limit::Bytes(300 * MIB)).unwrap();
    let mut rebooted = Throttles::load_in_boot(&state, boot("boot-b")).unwrap();
    assert_eq!(rebooted.dropped_from_another_boot(), 1);
    assert!(rebooted.entries().is_empty());
    assert!(rebooted.restore_all().unwrap().restored.is_empty());
    assert_eq!(web.limit().unwrap(), Limit::Bytes(300 * MIB), "another boot's limit is left alone");
    rebooted.throttle(&web, "/web", Limit::Bytes(250 * MIB)).unwrap();
    let reloaded = Throttles::load_in_boot(&state, boot("boot-b")).unwrap();
    assert_eq!(reloaded.dropped_from_another_boot(), 0, "rewritten for this boot");
    assert_eq!(reloaded.entries()[web.dir()].original, Limit::Bytes(300 * MIB), "this boot's original");
}

#[test]
fn a_file_without_a_boot_id_is_this_boots() {
    let (root, _, _) = two_cgroups();
    let state = root.path().join("throttles.json");
    let web = root.path().join("web");
    let record = format!(
        "{{\"version\": 1, \"throttles\": {{\"{}\": {{\"knob\": \"memory_high\", \"original\": \"max\", \"applied\": \"1048576\", \"since\": 1}}}}}}",
        web.display()
    );
    fs::write(&state, record).unwrap();
    let throttles = Throttles::load_in_boot(&state, Some("boot-a".to_owned())).unwrap();
    assert_eq!((throttles.entries().len(), throttles.dropped_from_another_boot()), (1, 0));
}

#[test]
fn no_change_without_a_record() {
    let (root, web, _) = two_cgroups();
    let mut throttles = Throttles::load(root.path().join("state/throttles.json")).unwrap();
    // The state file's directory cannot be made where a regular file is.
    fs::write(root.path().join("state"), "").unwrap();
    let err = throttles.throttle(&web, "/web", Limit::Bytes(MIB)).unwrap_err();
    assert!(matches!(err, ActError::Io { op: "creating", .. }), "{err}");
    assert_eq!(web.limit().unwrap(), Limit::Max, "the cgroup must stay untouched");
    assert!(throttles.entries().is_empty());
}

#[test]
fn a_failed_write_leaves_no_record_claiming_a_change() {
    let root = fixture(&[("job/memory.high", "max\n")]);
    let job = Cgroup::at(root.path().join("job")).unwrap();
    let state = root.path().join("throttles.json");
    let mut throttles = Throttles::load(&state).unwrap();
    // Make the knob unwritable: file modes are no obstacle for root, but
    // a directory cannot be opened for writing.
    fs::remove_file(job.dir().join("memory.high")).unwrap();
    fs::create_dir(job.dir().join("memory.high")).unwrap();
    let job = Cgroup::with_knob(job.dir(), Knob::MemoryHigh);
    assert!(throttles.throttle(&job, "/job", Limit::Bytes(MIB)).is_err());
    assert!(Throttles::load(&state).unwrap().entries().is_empty());
}

#[test]
fn gone_cgroups_are_dropped_and_failures_kept_for_next_time() {
    let (root, web, batch) = two_cgroups();
    let state = root.path().join("throttles.json");
    let mut throttles = Throttles::load(&state).unwrap();
    throttles.throttle(&web, "/web", Limit::Bytes(MIB)).unwrap();
    throttles.throttle(&batch, "/batch", Limit::Bytes(MIB)).unwrap();
    fs::remove_dir_all(web.dir()).unwrap(); // the service stopped
    fs::remove_file(batch.dir().join("memory.high")).unwrap();
    fs::create_dir(batch.dir().join("memory.high")).unwrap(); // unwritable
    let report = throttles.restore_all().unwrap();
    assert_eq!(report.gone, [web.dir().to_path_buf()]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, batch.dir());
    let kept = Throttles::load(&state).unwrap();
    assert_eq!(kept.entries().keys().collect::<Vec<_>>(), [batch.dir()]);
}

#[test]
fn restore_one_puts_back_the_original_and_ignores_unknown_cgroups() {
    let (root, web, _) = two_cgroups();
    let mut throttles = Throttles::load(root.path().join("throttles.json")).unwrap();
    throttles.throttle(&web, "/web", Limit::Bytes(MIB)).unwrap();
    assert_eq!(throttles.restore(web.dir()).unwrap(), Some(Restored::Original(Limit::Max)));
    assert_eq!(web.limit().unwrap(), Limit::Max);
    assert_eq!(throttles.restore(web.dir()).unwrap(), None);
}

#[test]
fn a_corrupt_file_is_set_aside_intact_with_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("throttles.json");
    let half_written = "{\"version\":1,\"throttles\":{\"/sys/fs/cgroup/web\":{\"knob\":\"memory_hi";
    for round in 0..2 {
        fs::write(&state, half_written).unwrap();
        let err = Throttles::load(&state).unwrap_err();
        let ActError::CorruptState { aside, .. } = &err else { panic!("{err}") };
        assert!(err.to_string().contains("corrupt") && err.to_string().contains(&aside.display().to_string()));
        assert_eq!(fs::read_to_string(aside).unwrap(), half_written, "round {round}: nothing lost");
        assert!(!state.exists());
    }
    let names: Vec<_> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "two distinct set-aside files: {names:?}");
    assert!(Throttles::load(&state).unwrap().entries().is_empty(), "then memwatch starts empty");
}

#[test]
fn a_file_another_version_wrote_is_still_restored_from() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("throttles.json");
    // A newer memwatch's file: another version, a field this one does not know.
    let newer = "{\"version\":2,\"written_by\":\"memwatch 9\",\"throttles\":{\"/sys/fs/cgroup/web\":\
                 {\"knob\":\"memory_high\",\"original\":\"max\",\"applied\":\"1048576\",\"since\":1,\"why\":\"x\"}}}";
    fs::write(&state, newer).unwrap();
    let throttles = Throttles::load(&state).unwrap();
    let entry = &throttles.entries()[Path::new("/sys/fs/cgroup/web")];
    assert_eq!(entry.original, Limit::Max, "its original limit is known, to be put back");
}

/// A stand-in for systemd: units by name, each with its own cgroup and
/// `MemoryHigh=`, shared so a test can look after the throttles used it.
#[derive(Clone, Default)]
struct FakeUnits(std::sync::Arc<std::sync::Mutex<FakeManager>>);

#[derive(Default)]
struct FakeManager {
    /// unit -> (its ControlGroup, its MemoryHigh)
    units: BTreeMap<String, (String, Limit)>,
    refuse: bool,
    /// Calls get no answer (a timeout): they may or may not have applied.
    silent: bool,
    calls: usize,
}

impl FakeUnits {
    fn with_unit(unit: &str, cgroup: &str, memory_high: Limit) -> Self {
        let fake = Self::default();
        fake.0.lock().unwrap().units.insert(unit.to_owned(), (cgroup.to_owned(), memory_high));
        fake
    }

    fn memory_high(&self, unit: &str) -> Option<Limit> {
        self.0.lock().unwrap().units.get(unit).map(|(_, limit)| *limit)
    }
}

impl UnitManager for FakeUnits {
    fn owner(&mut self, cgroup: &str) -> Result<Option<String>, ActError> {
        let manager = self.0.lock().unwrap();
        Ok(manager.units.iter().find(|(_, (own, _))| own == cgroup).map(|(unit, _)| unit.clone()))
    }

    fn memory_high(&mut self, unit: &str) -> Result<Option<Limit>, ActError> {
        Ok(FakeUnits::memory_high(self, unit))
    }

    fn set_memory_high(&mut self, unit: &str, limit: Limit) -> Result<bool, ActError> {
        let mut manager = self.0.lock().unwrap();
        manager.calls += 1;
        if manager.refuse || manager.silent {
            let detail = if manager.refuse { "Access denied" } else { "timed out" }.to_owned();
            let answered = manager.refuse;
            return Err(ActError::Systemd {
                unit: unit.to_owned(),
                what: "SetUnitProperties".to_owned(),
                detail,
                answered,
            });
        }
        Ok(manager.units.get_mut(unit).map(|(_, high)| *high = limit).is_some())
    }
}

/// A unit's cgroup under a slice, and a cgroup inside a delegated unit
/// that is named like a unit but is not one.
fn unit_cgroups() -> (tempfile::TempDir, Cgroup, Cgroup) {
    let root = fixture(&[
        ("system.slice/leaker.service/memory.high", "max\n"),
        ("system.slice/box.service/payload.scope/memory.high", "max\n"),
    ]);
    let unit = Cgroup::at(root.path().join("system.slice/leaker.service")).unwrap();
    let inside = Cgroup::at(root.path().join("system.slice/box.service/payload.scope")).unwrap();
    (root, unit, inside)
}

#[test]
fn a_units_own_cgroup_is_throttled_and_restored_through_systemd_and_the_record_says_so() {
    let (root, unit, _) = unit_cgroups();
    let state = root.path().join("throttles.json");
    let systemd = FakeUnits::with_unit("leaker.service", "/system.slice/leaker.service", Limit::Bytes(900 * MIB));
    let mut throttles = Throttles::load(&state).unwrap().with_units(systemd.clone());
    let original = throttles.throttle(&unit, "/system.slice/leaker.service", Limit::Bytes(300 * MIB)).unwrap();
    assert_eq!(original, Limit::Bytes(900 * MIB), "the unit's property, not the file, is the original");
    assert_eq!(systemd.memory_high("leaker.service"), Some(Limit::Bytes(300 * MIB)));
    assert_eq!(unit.limit().unwrap(), Limit::Max, "the file is systemd's to write");
    let text = fs::read_to_string(&state).unwrap();
    assert!(text.contains("\"systemd\": \"leaker.service\""), "{text}");

    drop(throttles); // a crash: the successor restores the same way
    let mut successor = Throttles::load(&state).unwrap().with_units(systemd.clone());
    let report = successor.restore_all().unwrap();
    assert_eq!(report.restored, [(unit.dir().to_path_buf(), Limit::Bytes(900 * MIB))]);
    assert_eq!(systemd.memory_high("leaker.service"), Some(Limit::Bytes(900 * MIB)));
}

#[test]
fn a_cgroup_inside_a_delegated_unit_is_written_directly() {
    let (root, _, inside) = unit_cgroups();
    // systemd knows a payload.scope elsewhere; this cgroup is not its.
    let systemd = FakeUnits::with_unit("payload.scope", "/machine.slice/payload.scope", Limit::Max);
    let mut throttles = Throttles::load(root.path().join("throttles.json")).unwrap().with_units(systemd.clone());
    throttles.throttle(&inside, "/system.slice/box.service/payload.scope", Limit::Bytes(MIB)).unwrap();
    assert_eq!(inside.limit().unwrap(), Limit::Bytes(MIB));
    assert_eq!(systemd.0.lock().unwrap().calls, 0, "systemd was not asked to set anything");
    assert_eq!(throttles.entries()[inside.dir()].via, Via::File);
}

#[test]
fn a_refusal_from_systemd_leaves_no_record_and_the_file_alone() {
    let (root, unit, _) = unit_cgroups();
    let state = root.path().join("throttles.json");
    let systemd = FakeUnits::with_unit("leaker.service", "/system.slice/leaker.service", Limit::Max);
    systemd.0.lock().unwrap().refuse = true;
    let mut throttles = Throttles::load(&state).unwrap().with_units(systemd.clone());
    let err = throttles.throttle(&unit, "/system.slice/leaker.service", Limit::Bytes(MIB)).unwrap_err();
    assert!(err.to_string().contains("Access denied") && err.to_string().contains("leaker.service"), "{err}");
    assert_eq!(unit.limit().unwrap(), Limit::Max, "no direct write behind systemd's back");
    assert!(Throttles::load(&state).unwrap().entries().is_empty());
}

#[test]
fn a_unit_systemd_no_longer_has_is_gone_when_restoring() {
    let (root, unit, _) = unit_cgroups();
    let systemd = FakeUnits::with_unit("leaker.service", "/system.slice/leaker.service", Limit::Max);
    let mut throttles = Throttles::load(root.path().join("throttles.json")).unwrap().with_units(systemd.clone());
    throttles.throttle(&unit, "/system.slice/leaker.service", Limit::Bytes(MIB)).unwrap();
    systemd.0.lock().unwrap().units.clear(); // the transient unit stopped and was unloaded
    assert_eq!(throttles.restore(unit.dir()).unwrap(), Some(Restored::Gone));
    assert!(throttles.entries().is_empty());
}

#[test]
fn a_record_without_a_way_was_a_direct_write() {
    let (root, web, _) = two_cgroups();
    let state = root.path().join("throttles.json");
    let record = format!(
        "{{\"version\":1,\"throttles\":{{\"{}\":{{\"knob\":\"memory_high\",\"original\":\"max\",\"applied\":\"1048576\",\"since\":1}}}}}}",
        web.dir().display()
    );
    fs::write(&state, record).unwrap();
    let throttles = Throttles::load(&state).unwrap();
    assert_eq!(throttles.entries()[web.dir()].via, Via::File);
}

#[test]
fn a_call_systemd_never_answered_keeps_its_record_for_a_restore() {
    let (root, unit, _) = unit_cgroups();
    let state = root.path().join("throttles.json");
    let systemd = FakeUnits::with_unit("leaker.service", "/system.slice/leaker.service", Limit::Max);
    systemd.0.lock().unwrap().silent = true;
    let mut throttles = Throttles::load(&state).unwrap().with_units(systemd.clone());
    let err = throttles.throttle(&unit, "/system.slice/leaker.service", Limit::Bytes(MIB)).unwrap_err();
    assert!(err.may_have_applied(), "{err}");
    assert!(state_names_unit(&state), "the unit may be throttled: restoring it must stay possible");
    systemd.0.lock().unwrap().silent = false;
    let report = Throttles::load(&state).unwrap().with_units(systemd.clone()).restore_all().unwrap();
    assert_eq!(report.restored, [(unit.dir().to_path_buf(), Limit::Max)]);
}

fn state_names_unit(state: &Path) -> bool {
    fs::read_to_string(state).is_ok_and(|text| text.contains("\"systemd\": \"leaker.service\""))
}
