//! The degraded path: hosts whose memory controller is on cgroup v1 (this
//! project's build machines) throttle through memory.soft_limit_in_bytes.
//! Pure cgroup v2 hosts and the VM have no v1 hierarchy and skip.
use std::path::Path;

use memwatch::{
    actions::sys::throttle_state::Throttles,
    sources::cgroupfs::{CgroupFs, Knob, Limit},
};
use memwatch_tests::privileged;

const V1_MEMORY: &str = "/sys/fs/cgroup/memory";
const MIB: u64 = 1 << 20;

struct Removed<'a>(&'a Path);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0);
    }
}

#[test]
fn v1_hosts_throttle_through_the_soft_limit_and_restore_it() {
    let test = "v1_hosts_throttle_through_the_soft_limit_and_restore_it";
    if !privileged(test) {
        return;
    }
    if !Path::new(V1_MEMORY).join("memory.soft_limit_in_bytes").is_file() {
        eprintln!("SKIPPED {test}: no cgroup v1 memory hierarchy at {V1_MEMORY} (a pure cgroup v2 host)");
        return;
    }
    let name = format!("memwatch-test-v1-{}", std::process::id());
    let dir = Path::new(V1_MEMORY).join(&name);
    std::fs::create_dir(&dir).unwrap();
    let _removed = Removed(&dir);

    let cgroup = CgroupFs::default().open(&format!("/{name}")).unwrap();
    assert_eq!(cgroup.knob(), Knob::SoftLimit, "found through the v1 memory hierarchy");
    assert_eq!(cgroup.limit().unwrap(), Limit::Max);
    let state = std::env::temp_dir().join(format!("memwatch-v1-{}/throttles.json", std::process::id()));
    let mut throttles = Throttles::load(&state).unwrap();
    assert_eq!(throttles.throttle(&cgroup, &format!("/{name}"), Limit::Bytes(64 * MIB)).unwrap(), Limit::Max);
    let written = std::fs::read_to_string(dir.join("memory.soft_limit_in_bytes")).unwrap();
    assert_eq!(written.trim(), (64 * MIB).to_string());

    let report = Throttles::load(&state).unwrap().restore_all().unwrap();
    assert_eq!(report.restored.len(), 1, "{report:?}");
    assert_eq!(cgroup.limit().unwrap(), Limit::Max, "v1 'no limit' is back");
    let _ = std::fs::remove_dir_all(state.parent().unwrap());
}
