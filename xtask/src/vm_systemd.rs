//! `cargo xtask vm-systemd-test`: memwatch as Debian hosts run it, from its
//! .deb under real systemd as PID 1 (which these build machines do not
//! have), on Debian 12's own kernel (6.1, cgroup v2) under qemu.
//!
//! The VM boots a debootstrap root (`rootfs`) plus an overlay holding the
//! package, a leaking workload, a memwatch built with test faults, and the
//! scenario script, which a oneshot unit runs once the system is up. The
//! script (`xtask/vm-systemd/scenarios.sh`) prints one verdict per scenario
//! and its figures on the serial console, read as the other VM lanes' are.
use std::{
    fs,
    os::unix::fs::{PermissionsExt as _, symlink},
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::{
    deb, setup, shell,
    vm::{self, Lane, console},
};

mod rootfs;

/// debootstrap and cpio build the root; the kernel and qemu are the other
/// lanes' (Debian 12's 6.1).
const PACKAGES: &[&str] = &["qemu-system-x86", "linux-image-amd64", "debootstrap", "cpio"];

/// The scenarios, in the order the script runs them (each needs the one
/// before: installed, then reloaded onto the scenario config, ...).
const SCENARIOS: &[&str] = &[
    "install",
    "reload",
    "throttle_unit",
    "restore_on_crash_and_stop",
    "watchdog",
    "capabilities",
    "podman",
    "image",
    "purge",
];

const LANE: Lane = Lane {
    name: "systemd 252 as PID 1, 6.1, 2 vCPUs",
    kernel_prefix: "vmlinuz-6.1.",
    cpus: 2,
    // The unpacked root (~210 MiB) lives in RAM, beside the workloads and
    // podman's images (vfs copies each layer whole).
    memory_mib: 2048,
    // rdinit: systemd itself is the initramfs's init.
    append: "console=ttyS0 rdinit=/sbin/init panic=-1 quiet systemd.unified_cgroup_hierarchy=1 \
             systemd.show_status=error",
    accel: "tcg",
    tests: SCENARIOS,
    page_cache: false,
};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(900);

const SCRIPT: &str = include_str!("../vm-systemd/scenarios.sh");
const SCENARIOS_UNIT: &str = include_str!("../vm-systemd/memwatch-scenarios.service");
const CONTAINERFILE: &str = include_str!("../../deploy/container/Containerfile");
const CONTAINERIGNORE: &str = include_str!("../../.containerignore");
/// The VM has no kernel modules, and overlayfs is one: podman stores its
/// images with the vfs driver (plain copies) instead.
const PODMAN_STORAGE: &str = "[storage]\ndriver = \"vfs\"\nrunroot = \"/run/containers/storage\"\n\
                              graphroot = \"/var/lib/containers/storage\"\n";
/// The VM's root is the initramfs, which pivot_root(2) cannot leave (crun
/// moves the container's root over it instead), and it has no network.
const PODMAN_ENGINE: &str = "[containers]\nnetns = \"none\"\n\n[engine]\nno_pivot_root = true\n";

/// The scenario script with this run's nonce and the scenarios to run.
fn script(nonce: &str) -> String {
    SCRIPT.replace("@NONCE@", nonce).replace("@SCENARIOS@", &SCENARIOS.join(" "))
}

pub fn run(timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    setup::build_chain()?;
    setup::apt_packages(PACKAGES)?;
    let root = shell::workspace_root();
    let out = root.join("target/vm-systemd");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let base = rootfs::base_archive(&out)?;

    // The faulty build first: the package's build after it puts the
    // release binary back as it ships.
    let faulty = out.join("memwatch-fault-injection");
    shell::run(
        Command::new("cargo")
            .args(["build", "--release", "--locked", "-p", "memwatch", "--features", "fault-injection"])
            .current_dir(&root),
    )?;
    fs::copy(root.join("target/release/memwatch"), &faulty).context("keeping the fault-injection build")?;
    shell::run(
        Command::new("cargo")
            .args(["build", "--release", "--locked", "-p", "memwatch-tests", "--bin", "leaker"])
            .current_dir(&root),
    )?;
    let package = deb::build()?;
    let static_daemon = vm::static_daemon(&root)?;

    let nonce = vm::nonce()?;
    let overlay = out.join("overlay");
    if overlay.exists() {
        fs::remove_dir_all(&overlay)?;
    }
    let write = |path: &str, bytes: &[u8], mode: u32| -> anyhow::Result<()> {
        let to = overlay.join(path);
        fs::create_dir_all(to.parent().expect("a file in a directory"))?;
        fs::write(&to, bytes).with_context(|| format!("writing {} into the overlay", to.display()))?;
        fs::set_permissions(&to, fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    let read = |from: &Path| fs::read(from).with_context(|| format!("reading {}", from.display()));
    write("root/memwatch.deb", &read(&package)?, 0o644)?;
    write("usr/local/bin/leaker", &read(&root.join("target/release/leaker"))?, 0o755)?;
    write("usr/local/lib/memwatch-fault/memwatch", &read(&faulty)?, 0o755)?;
    write("root/scenarios.sh", script(&nonce).as_bytes(), 0o755)?;
    // The image's build context, laid out as the repository is.
    write("root/image/deploy/container/Containerfile", CONTAINERFILE.as_bytes(), 0o644)?;
    write("root/image/.containerignore", CONTAINERIGNORE.as_bytes(), 0o644)?;
    let in_context = static_daemon.strip_prefix(&root).context("the static daemon is built in the workspace")?;
    write(&format!("root/image/{}", in_context.display()), &read(&static_daemon)?, 0o755)?;
    write("etc/containers/storage.conf", PODMAN_STORAGE.as_bytes(), 0o644)?;
    write("etc/containers/containers.conf", PODMAN_ENGINE.as_bytes(), 0o644)?;
    write("etc/systemd/system/memwatch-scenarios.service", SCENARIOS_UNIT.as_bytes(), 0o644)?;
    let units = overlay.join("etc/systemd/system");
    fs::create_dir_all(units.join("multi-user.target.wants"))?;
    symlink(
        "/etc/systemd/system/memwatch-scenarios.service",
        units.join("multi-user.target.wants/memwatch-scenarios.service"),
    )?;
    // The scenarios own the serial console.
    symlink("/dev/null", units.join("serial-getty@ttyS0.service"))?;
    let overlay_archive = out.join("overlay.cpio");
    rootfs::pack_tree(&overlay, &overlay_archive)?;

    // The kernel unpacks concatenated archives in turn: the overlay's
    // files land on top of the base system's.
    let initrd = out.join("initrd.cpio");
    let mut joined = fs::read(&base)?;
    joined.extend(fs::read(&overlay_archive)?);
    fs::write(&initrd, joined)?;
    let built = started.elapsed();

    let kernel = vm::kernel(LANE.kernel_prefix)?;
    let log = out.join("serial.log");
    eprintln!("=== vm-systemd-test: {} ===", kernel.display());
    let outcome = console::boot(&LANE, &kernel, &initrd, &log, &nonce, timeout)?;
    console::summarize(&LANE, &outcome, built, started.elapsed(), &log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_runs_every_scenario_it_defines_under_this_runs_nonce() {
        let script = script("abc123");
        assert!(script.contains("NONCE=abc123\n"));
        assert!(!script.contains("@NONCE@") && !script.contains("@SCENARIOS@"), "every placeholder is filled");
        let defined: Vec<&str> =
            script.lines().filter_map(|l| l.strip_prefix("scenario_")?.strip_suffix("() {")).collect();
        assert_eq!(defined, SCENARIOS, "each scenario is defined once, in the order it runs");
        assert!(script.contains(&format!("for scenario in {}; do", SCENARIOS.join(" "))));
    }
}
