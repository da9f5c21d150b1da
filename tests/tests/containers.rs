//! Containers on a real kernel: a process in a cgroup laid out the way
//! Kubernetes' cgroupfs driver lays out a pod's container is attributed to
//! that container and pod by a running daemon: one target, matched by a
//! policy on the pod uid, named in `memwatch status` and in the labels of
//! `/metrics`. The same test runs on the host (memory controller on v1) and
//! in the VM lanes (v2).
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use memwatch_tests::{
    daemon::{Daemon, Leaker, http, scenario_dir, wait_until, write_config},
    memwatch_binary, privileged,
};

const LEAKER: &str = env!("CARGO_BIN_EXE_leaker");
const POD_UID: &str = "0d1e2f30-4a5b-4c6d-8e7f-901a2b3c4d5e";

/// Removes the cgroups made for the test, innermost first.
struct Cgroups(Vec<PathBuf>);

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The memory controller's hierarchy: v1's own, or the unified one.
fn memory_root() -> &'static Path {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.join("cgroup.procs").is_file() { v1 } else { Path::new("/sys/fs/cgroup") }
}

#[test]
fn a_process_in_a_pod_containers_cgroup_is_attributed_to_the_container_and_pod() {
    let test = "a_process_in_a_pod_containers_cgroup_is_attributed_to_the_container_and_pod";
    if !privileged(test) {
        return;
    }
    let root = memory_root();
    let top = format!("memwatch-test-containers-{}", std::process::id());
    let id = format!("{:016x}", u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15)).repeat(4);
    let pod_dir = root.join(&top).join(format!("pod{POD_UID}"));
    let container_dir = pod_dir.join(&id);
    std::fs::create_dir_all(&container_dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", container_dir.display()));
    let _cgroups = Cgroups(vec![container_dir.clone(), pod_dir, root.join(&top)]);
    let cgroup_path = format!("/{top}/pod{POD_UID}/{id}");

    let dir = scenario_dir("containers");
    let config = write_config(
        &dir,
        &format!(
            "[otlp]\nenabled = false\n[[policy]]\nname = \"pod\"\nmatch = {{ pod_uid = \"{POD_UID}\" }}\nlimit = \"64MiB\"\n"
        ),
    );
    let leaker = Leaker::spawn_in(&container_dir, LEAKER, &[]);
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let socket = dir.join("memwatch.sock");

    let container_line = format!("  container {}, pod {POD_UID} (Guaranteed)", &id[..12]);
    let table = wait_until(Duration::from_secs(20), || {
        let out = Command::new(memwatch_binary()).args(["status", "--socket"]).arg(&socket).output().ok()?;
        let table = String::from_utf8_lossy(&out.stdout).into_owned();
        table.lines().any(|l| l == container_line).then_some(table)
    })
    .unwrap_or_else(|| panic!("`memwatch status` never showed {container_line:?}:\n{}", daemon.log_text()));
    let lines: Vec<&str> = table.lines().collect();
    let at = lines.iter().position(|l| *l == container_line).unwrap();
    assert!(lines[at - 1].starts_with("cgroup:/memwatch-test-contai"), "under its target's row:\n{table}");
    assert!(lines[at - 1].contains("64.0 MiB"), "the pod policy's limit applies:\n{table}");

    let (code, metrics) = http(&socket, "GET", "/metrics").expect("GET /metrics");
    assert_eq!(code, 200);
    let limit = metrics
        .lines()
        .find(|l| l.starts_with("memwatch_target_memory_limit_bytes{") && l.contains(&cgroup_path))
        .unwrap_or_else(|| panic!("no limit series for {cgroup_path}:\n{metrics}"));
    for label in [
        format!("container_id=\"{id}\""),
        format!("k8s_pod_uid=\"{POD_UID}\""),
        "memwatch_k8s_pod_qos_class=\"Guaranteed\"".into(),
    ] {
        assert!(limit.contains(&label), "{label} missing from {limit}");
    }
    let value: f64 = limit.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{limit}"));
    assert_eq!(value, f64::from(64 << 20), "the pod policy's limit: {limit}");
    assert!(!limit.contains("container_runtime="), "the cgroupfs layout does not say which runtime: {limit}");

    daemon.stop();
    leaker.finish();
}
