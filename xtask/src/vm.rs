//! `cargo xtask vm-test`: the integration tests on other, real kernels.
//!
//! The build machines' own kernel has the memory controller on cgroup v1, so
//! `memory.high` cannot be exercised there, and it has 2 CPUs, which hide
//! the per-CPU RSS counters' lag. This boots Debian's kernels under qemu
//! (software emulation: KVM hangs on these machines) with an initramfs
//! holding busybox, the static daemon and the static test executables, runs
//! the tests as /init, and reads the verdict from the serial console. Two
//! lanes: every test on 6.1 with 2 vCPUs, and the accuracy test on 6.12
//! (per-CPU RSS counters, status lines that can lag) with 16 vCPUs.
use std::{
    fs,
    io::BufWriter,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};

use crate::{initramfs::Archive, setup, shell};

mod artifacts;
pub use artifacts::static_daemon;
pub mod console;
mod pagecache;

use pagecache::PageCache;

/// Static binaries: the initramfs has no C library to link against. The
/// target is listed in rust-toolchain.toml, so `setup` installs it.
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// The kernel (6.1 on Debian 12), an emulator, and a static shell for /init.
/// squashfs-tools: the page-cache workload's file lives on a squashfs image
/// (the initramfs itself is never reclaimed, being RAM).
/// linux-image-6.12-amd64: Debian 12's security archive's newer kernel, for
/// the 16-vCPU accuracy lane.
const VM_PACKAGES: &[&str] =
    &["qemu-system-x86", "linux-image-amd64", "linux-image-6.12-amd64", "busybox-static", "squashfs-tools"];

/// One boot: a kernel, a machine, and the test executables run on it.
pub struct Lane {
    pub name: &'static str,
    /// The /boot/vmlinuz-* name's start; the newest match is booted.
    pub kernel_prefix: &'static str,
    pub cpus: u32,
    pub memory_mib: u32,
    /// The kernel command line.
    pub append: &'static str,
    /// qemu's -accel value.
    pub accel: &'static str,
    pub tests: &'static [&'static str],
    /// Whether the page-cache image (and the kernel modules it needs) is packed.
    pub page_cache: bool,
}

/// panic=-1 with qemu's -no-reboot: a kernel panic (or init exiting) ends
/// qemu at once instead of waiting for the timeout.
const BUSYBOX_APPEND: &str = "console=ttyS0 panic=-1 quiet";

const LANES: &[Lane] = &[
    // Room for the unpacked initramfs (~70 MiB), the 256 MiB attribution
    // workload, and the throttle workload, which grows to ~100-200 MiB
    // before memory.high stops it.
    Lane {
        name: "6.1, 2 vCPUs",
        kernel_prefix: "vmlinuz-6.1.",
        cpus: 2,
        memory_mib: 1024,
        append: BUSYBOX_APPEND,
        accel: "tcg",
        tests: TESTS,
        page_cache: true,
    },
    // The accuracy test's 1 GiB process, faulted on all 16 CPUs.
    Lane {
        name: "6.12, 16 vCPUs",
        kernel_prefix: "vmlinuz-6.12.",
        cpus: 16,
        memory_mib: 2560,
        append: BUSYBOX_APPEND,
        // One host thread runs all 16 vCPUs in turn. With a thread each,
        // the kernel's boot-time code patching (int3, then the new bytes)
        // can reach another vCPU out of order: seen as "Oops: int3" in
        // sched_clock_cpu and a panic before /init, under a loaded host.
        // The host has 2 cores, so little speed is lost.
        accel: "tcg,thread=single",
        tests: MANY_CPU_TESTS,
        page_cache: false,
    },
];
/// Whole-run limit; a healthy run takes a few minutes on 2 emulated cores.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The integration tests that run in the VM, in this order: probes first
/// (nothing else is meaningful if they do not load), then the daemon's CLI,
/// then the action primitives. Every test executable of memwatch-tests must
/// be listed, so a new one is not silently left out of the VM; `cgroup_v1`
/// (the degraded path for hybrid hosts) skips there, the VM being pure v2.
const TESTS: &[&str] = &[
    "ebpf_probes",
    "cli",
    "signal",
    "cgroup_actions",
    "daemon_actions",
    "reclaim",
    "containers",
    "cgroup_working_set",
    "cgroup_v1",
];
/// The accuracy test needs many CPUs and per-CPU RSS counters (6.2+) to
/// show anything; 6.1 has neither (it also runs on the host).
const MANY_CPU_TESTS: &[&str] = &["accuracy"];

/// Every test executable some lane runs, each once, in lane order.
fn vm_tests() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for name in LANES.iter().flat_map(|lane| lane.tests.iter().copied()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}
/// Test executables that run on the host only, and why.
const HOST_ONLY: &[(&str, &str)] = &[
    ("hardening", "procfs mode, loopback TCP, file modes and rlimits: nothing the VM's kernel changes"),
    ("runtimes", "real node and java from Debian's packages, which the VM's initramfs does not hold"),
    ("node_service", "the Node.js example service, on the host's node"),
    ("service_manager", "the sd_notify protocol against a fake NOTIFY_SOCKET: nothing the VM's kernel changes"),
    ("prometheus_alerts", "Debian's prometheus and promtool, which the VM's initramfs does not hold"),
    ("heap_ceilings", "real node, java and prometheus from Debian's packages, which the VM's initramfs does not hold"),
];

/// Runs every lane, or those whose name contains `only`.
pub fn run(timeout: Duration, only: Option<&str>) -> anyhow::Result<()> {
    let started = Instant::now();
    setup::build_chain()?;
    setup::apt_packages(VM_PACKAGES)?;
    let root = shell::workspace_root();
    let out = root.join("target/vm-test");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let artifacts = artifacts::build(&root)?;
    let mut failed = Vec::new();
    let lanes = LANES.iter().enumerate().filter(|(_, lane)| only.is_none_or(|only| lane.name.contains(only)));
    let mut ran = 0;
    for (index, lane) in lanes {
        ran += 1;
        let lane_started = Instant::now();
        let kernel = kernel(lane.kernel_prefix)?;
        let page_cache = if lane.page_cache { Some(pagecache::prepare(&kernel, &out)?) } else { None };
        let nonce = nonce()?;
        let initrd = out.join(format!("initramfs-{index}.cpio.gz"));
        let tests: Vec<(String, PathBuf)> =
            artifacts.tests.iter().filter(|(name, _)| lane.tests.contains(&name.as_str())).cloned().collect();
        pack(&artifacts.binaries, &tests, page_cache.as_ref(), &nonce, &initrd)?;
        let built = if index == 0 { started.elapsed() } else { lane_started.elapsed() };

        let log = out.join(format!("serial-{index}.log"));
        eprintln!("=== vm-test lane {}: {} ===", lane.name, kernel.display());
        let result = console::boot(lane, &kernel, &initrd, &log, &nonce, timeout)?;
        if let Err(e) = console::summarize(lane, &result, built, lane_started.elapsed(), &log) {
            eprintln!("lane {}: {e:#}", lane.name);
            failed.push(lane.name);
        }
    }
    if ran == 0 {
        let names: Vec<&str> = LANES.iter().map(|lane| lane.name).collect();
        bail!("no lane named like {only:?}; the lanes are {names:?}");
    }
    eprintln!("vm-test: {ran} lane(s) in {:.0} s", started.elapsed().as_secs_f64());
    if !failed.is_empty() {
        bail!("vm-test failed in lane(s): {}", failed.join("; "));
    }
    Ok(())
}

/// A word for one boot's verdict lines, so that nothing else on the console
/// (or an old log) can pass for them.
pub fn nonce() -> anyhow::Result<String> {
    Ok(format!("{:x}", SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() ^ std::process::id() as u128))
}

/// The newest Debian kernel image in /boot whose name starts with `prefix`.
pub fn kernel(prefix: &str) -> anyhow::Result<PathBuf> {
    let version =
        |name: &str| -> Vec<u64> { name.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect() };
    let mut kernels: Vec<String> = fs::read_dir("/boot")
        .context("reading /boot")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && n.ends_with("-amd64"))
        .collect();
    kernels.sort_by_key(|n| version(n));
    let newest = kernels.pop().with_context(|| format!("no /boot/{prefix}*-amd64 (from VM_PACKAGES)"))?;
    Ok(Path::new("/boot").join(newest))
}

/// The init script: mount what the tests need, run each test executable,
/// print one result line per executable and a final sentinel, power off.
/// Lines carry the run's nonce so nothing else on the console (or an old
/// log) can pass for a verdict.
fn init_script(tests: &[(String, PathBuf)], page_cache: bool, nonce: &str) -> String {
    let mut script = String::from(
        r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root CI=true MEMWATCH_VM=1 RUST_BACKTRACE=1
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
chmod 1777 /tmp
"#,
    );
    if page_cache {
        script.push_str(&pagecache::init_lines());
    }
    script.push_str(
        r#"echo "memwatch-vm: kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control), $(grep MemTotal /proc/meminfo)"
status=0
"#,
    );
    for (name, exe) in tests {
        script.push_str(&format!(
            "echo \"MEMWATCH-VM-START {nonce} {name}\"\n\
             '{exe}' --test-threads=1 --nocapture\n\
             rc=$?\n\
             echo \"MEMWATCH-VM-TEST {nonce} {name} exit=$rc\"\n\
             [ $rc -eq 0 ] || status=1\n",
            exe = exe.display()
        ));
    }
    script.push_str(&format!("echo \"MEMWATCH-VM-DONE {nonce} status=$status\"\npoweroff -f\n"));
    script
}

fn pack(
    binaries: &[PathBuf],
    tests: &[(String, PathBuf)],
    page_cache: Option<&PageCache>,
    nonce: &str,
    initrd: &Path,
) -> anyhow::Result<()> {
    eprintln!("+ packing {}", initrd.display());
    let file = fs::File::create(initrd).with_context(|| format!("creating {}", initrd.display()))?;
    let mut gzip =
        Command::new("gzip").args(["-1", "-c"]).stdin(Stdio::piped()).stdout(file).spawn().context("starting gzip")?;
    let mut archive = Archive::new(BufWriter::new(gzip.stdin.take().context("gzip stdin")?));
    for dir in ["bin", "dev", "proc", "sys", "tmp", "root", "run"] {
        archive.dir(dir)?;
    }
    archive.char_device("dev/console", 0o600, 5, 1)?;
    archive.copy("bin/busybox", Path::new("/bin/busybox")).context("adding /bin/busybox")?;
    archive.file("init", 0o755, init_script(tests, page_cache.is_some(), nonce).as_bytes())?;
    if let Some(page_cache) = page_cache {
        page_cache.add_to(&mut archive)?;
    }
    // Host paths are kept: the test executables find the helper binaries
    // through CARGO_BIN_EXE_* (absolute paths fixed at compile time) and the
    // daemon next to their own directory.
    for path in binaries.iter().chain(tests.iter().map(|(_, p)| p)) {
        archive.copy(&path.to_string_lossy(), path).with_context(|| format!("adding {}", path.display()))?;
    }
    drop(archive.finish()?);
    let status = gzip.wait()?;
    if !status.success() {
        bail!("gzip failed: {status}");
    }
    eprintln!("  {} MiB compressed", fs::metadata(initrd)?.len() >> 20);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_script_reports_every_test_with_the_nonce() {
        let tests = [("cli".to_owned(), PathBuf::from("/w/target/t/release/deps/cli-1"))];
        let script = init_script(&tests, false, "abc123");
        assert!(script.starts_with("#!/bin/busybox sh\n"));
        assert!(script.contains("'/w/target/t/release/deps/cli-1' --test-threads=1 --nocapture"));
        assert!(script.contains("MEMWATCH-VM-TEST abc123 cli exit=$rc"));
        assert!(script.contains("MEMWATCH-VM-DONE abc123 status=$status"));
        assert!(script.trim_end().ends_with("poweroff -f"));
    }
}
