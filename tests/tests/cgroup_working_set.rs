//! A cgroup target on a real kernel is judged on what its cgroup is
//! charged, not on its processes' RSS: a shell that writes 48 MiB into a
//! tmpfs file holds almost nothing resident, but the file's pages are
//! charged to its cgroup and count against the cgroup's limit. The daemon
//! must show that usage (`memwatch status`, `/metrics`), and the level it
//! implies. Runs on the host (memory controller on v1) and in the VM lanes
//! (v2, where the cgroup's memory.pressure is shown too).
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use memwatch_tests::{
    daemon::{Daemon, Leaker, http, scenario_dir, wait_until, write_config},
    figure, memwatch_binary, privileged,
};

const MIB: u64 = 1 << 20;
const FILE_MIB: u64 = 48;

/// The memory controller's hierarchy: v1's own, or the unified one.
fn memory_root() -> &'static Path {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.join("cgroup.procs").is_file() { v1 } else { Path::new("/sys/fs/cgroup") }
}

/// A tmpfs to write into: the host's /dev/shm, or the VM's root (an
/// initramfs, whose files are charged the same way).
fn tmpfs_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm.to_path_buf() } else { PathBuf::from("/tmp") }
}

/// The file, the shell that wrote it and the cgroup, removed in that order.
struct Scene {
    file: PathBuf,
    cgroup: PathBuf,
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_dir(&self.cgroup);
    }
}

/// USAGE (MiB) and LEVEL of the target's row in `memwatch status`.
fn row_figures(row: &str) -> Option<(f64, String)> {
    let words: Vec<&str> = row.split_whitespace().collect();
    let usage: f64 = words.get(2)?.parse().ok()?;
    (words.get(3) == Some(&"MiB")).then(|| (usage, words[1].to_owned()))
}

#[test]
fn a_cgroup_target_is_judged_on_its_charge_tmpfs_included() {
    let test = "a_cgroup_target_is_judged_on_its_charge_tmpfs_included";
    if !privileged(test) {
        return;
    }
    // Short: `status` truncates names past 32 characters.
    let name = format!("mw-ws-{}", std::process::id());
    let cgroup = memory_root().join(&name);
    std::fs::create_dir_all(&cgroup).unwrap_or_else(|e| panic!("mkdir {}: {e}", cgroup.display()));
    let file = tmpfs_dir().join(&name);
    let scene = Scene { file: file.clone(), cgroup: cgroup.clone() };

    let dir = scenario_dir("working_set");
    // 64 MiB: 48 MiB of tmpfs is 75%, RSS alone a few percent.
    let config = write_config(
        &dir,
        &format!(
            "[otlp]\nenabled = false\n[[policy]]\nname = \"tmpfs\"\nmatch = {{ cgroup = \"/{name}\" }}\nlimit = \"64MiB\"\n\
             [policy.thresholds]\nwarning = 0.5\ncritical = 0.9\nemergency = 0.95\n"
        ),
    );
    let script = format!("head -c {} /dev/zero > '{}' && echo ready && exec cat", FILE_MIB * MIB, file.display());
    let shell = Leaker::spawn_in(&cgroup, "/bin/sh", &["-c", &script]);
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let socket = dir.join("memwatch.sock");

    let key = format!("cgroup:/{name}");
    let (row, below) = wait_until(Duration::from_secs(30), || {
        let out = Command::new(memwatch_binary()).args(["status", "--socket"]).arg(&socket).output().ok()?;
        let table = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = table.lines().collect();
        let at = lines.iter().position(|l| l.starts_with(&key))?;
        let below = lines.get(at + 1)?;
        below.starts_with("  cgroup charged").then(|| (lines[at].to_owned(), (*below).to_owned()))
    })
    .unwrap_or_else(|| panic!("`memwatch status` never showed {key} with its charge:\n{}", daemon.log_text()));
    let (usage_mib, level) = row_figures(&row).unwrap_or_else(|| panic!("unreadable row {row:?}"));
    figure("working_set", "target usage (MiB)", usage_mib);
    figure("working_set", "line under the row", &below);
    // The shell and cat hold a few MiB resident; the file's 48 MiB is the rest.
    assert!(usage_mib >= FILE_MIB as f64, "the tmpfs file counts: {row}");
    assert!(usage_mib < (FILE_MIB + 16) as f64, "and little else: {row}");
    assert_eq!(level, "warning", "48 of 64 MiB is over the policy's 50%: {row}");
    let on_v2 = !memory_root().ends_with("memory");
    assert_eq!(below.contains("pressure"), on_v2, "PSI per cgroup is v2's: {below}");

    let (code, metrics) = http(&socket, "GET", "/metrics").expect("GET /metrics");
    assert_eq!(code, 200);
    let charged = metrics
        .lines()
        .find(|l| l.starts_with("memwatch_target_memory_charged_bytes{") && l.contains(&format!("\"{key}\"")))
        .unwrap_or_else(|| panic!("no charged series for {key}:\n{metrics}"));
    let bytes: f64 = charged.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{charged}"));
    assert!(bytes >= (FILE_MIB * MIB) as f64, "{charged}");
    if on_v2 {
        assert!(metrics.contains("memwatch_target_memory_pressure_ratio{"), "{metrics}");
    }

    daemon.stop();
    shell.finish();
    drop(scene);
}
