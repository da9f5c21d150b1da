//! `cargo xtask vm-test`: the integration tests on a second, real kernel.
//!
//! The build machines' own kernel has the memory controller on cgroup v1, so
//! `memory.high` cannot be exercised there. This boots Debian's 6.1 kernel
//! under qemu (software emulation: KVM hangs on these machines) with an
//! initramfs holding busybox, the static daemon and the static test
//! executables, runs the tests as /init, and reads the verdict from the
//! serial console.
use std::{
    fs,
    io::{BufRead as _, BufReader, BufWriter, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};

use crate::{initramfs::Archive, setup, shell};

/// Static binaries: the initramfs has no C library to link against.
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// The kernel (6.1 on Debian 12), an emulator, and a static shell for /init.
const VM_PACKAGES: &[&str] = &["qemu-system-x86", "linux-image-amd64", "busybox-static"];
/// Room for the unpacked initramfs (~100 MiB), the 256 MiB attribution
/// workload, and the throttle workload, which grows to ~300 MiB before
/// memory.high stops it.
const MEMORY_MIB: u32 = 1024;
/// Whole-run limit; a healthy run takes a few minutes on 2 emulated cores.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The integration tests that run in the VM, in this order: probes first
/// (nothing else is meaningful if they do not load), then the daemon's CLI,
/// then the action primitives. Every test executable of memwatch-tests must
/// be listed, so a new one is not silently left out of the VM; `cgroup_v1`
/// (the degraded path for hybrid hosts) skips there, the VM being pure v2.
const TESTS: &[&str] = &["ebpf_probes", "cli", "signal", "cgroup_actions", "cgroup_v1"];

pub fn run(timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    setup::build_chain()?;
    setup::apt_packages(VM_PACKAGES)?;
    musl_target()?;
    let root = shell::workspace_root();
    let out = root.join("target/vm-test");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let artifacts = build(&root)?;
    let kernel = kernel()?;
    let nonce = format!("{:x}", SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() ^ std::process::id() as u128);
    let initrd = out.join("initramfs.cpio.gz");
    pack(&artifacts, &nonce, &initrd)?;
    let built = started.elapsed();

    let log = out.join("serial.log");
    let result = boot(&kernel, &initrd, &log, &nonce, timeout)?;
    summarize(&result, built, started.elapsed(), &log)
}

fn musl_target() -> anyhow::Result<()> {
    let installed = shell::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if installed.lines().any(|l| l.trim() == MUSL_TARGET) {
        return Ok(());
    }
    shell::run(Command::new("rustup").args(["target", "add", MUSL_TARGET]))
}

/// What goes into the VM, each at its host path (see `pack`).
struct Artifacts {
    binaries: Vec<PathBuf>,
    /// (name, executable) in `TESTS` order.
    tests: Vec<(String, PathBuf)>,
}

fn cargo(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(args).args(["--release", "--target", MUSL_TARGET]).current_dir(root);
    // An empty stand-in object would make every probe test fail confusingly.
    cmd.env_remove("AYA_BUILD_SKIP");
    cmd
}

fn build(root: &Path) -> anyhow::Result<Artifacts> {
    // The daemon: the CLI tests run it, and aya-build embeds the kernel
    // programs in it exactly as for the host (it keys on the target's arch
    // and endianness, which musl shares with the host).
    shell::run(&mut cargo(root, &["build", "-p", "memwatch"]))?;
    let daemon = root.join("target").join(MUSL_TARGET).join("release/memwatch");
    ebpf_object_embedded(&root.join("target").join(MUSL_TARGET).join("release/build"))?;

    // The integration tests themselves, not a separate VM-only binary: the
    // same assertions then hold on both kernels. Cargo reports each built
    // executable as a JSON message; the helper binaries come along because
    // the tests name them with CARGO_BIN_EXE_*.
    let mut cmd =
        cargo(root, &["test", "-p", "memwatch-tests", "--no-run", "--message-format=json-render-diagnostics"]);
    eprintln!("+ {}", shell::describe(&cmd));
    let output = cmd.stderr(Stdio::inherit()).output().context("running cargo test --no-run")?;
    if !output.status.success() {
        bail!("building the test executables for {MUSL_TARGET} failed: {}", output.status);
    }
    let mut binaries = vec![daemon];
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(executable) = message["executable"].as_str() else {
            continue;
        };
        // Package ids look like "path+file:///repo/tests#memwatch-tests@0.1.0".
        let package = message["package_id"].as_str().unwrap_or_default();
        if message["reason"] != "compiler-artifact" || !package.contains("#memwatch-tests@") {
            continue;
        }
        let kinds = message["target"]["kind"].as_array().cloned().unwrap_or_default();
        let name = message["target"]["name"].as_str().unwrap_or_default().to_owned();
        if kinds.iter().any(|k| k == "test") {
            found.push((name, PathBuf::from(executable)));
        } else if kinds.iter().any(|k| k == "bin") {
            binaries.push(PathBuf::from(executable));
        }
    }
    let mut tests = Vec::new();
    for name in TESTS {
        let position = found.iter().position(|(n, _)| n == name);
        tests.push(found.remove(position.with_context(|| format!("cargo built no test executable `{name}`"))?));
    }
    if !found.is_empty() {
        let names: Vec<_> = found.iter().map(|(n, _)| n.as_str()).collect();
        bail!("test executables not listed in xtask/src/vm.rs TESTS: {names:?}; add them (or say why not)");
    }
    Ok(Artifacts { binaries, tests })
}

/// Fails unless memwatch's build script left a real (non-empty) kernel
/// object for `include_bytes_aligned!`: an empty stand-in would only show up
/// later, as probe tests failing in the VM for no obvious reason.
fn ebpf_object_embedded(build_dir: &Path) -> anyhow::Result<()> {
    let newest = fs::read_dir(build_dir)
        .with_context(|| format!("reading {}", build_dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("memwatch-"))
        .filter_map(|e| {
            let object = e.path().join("out/memwatch-probes");
            let meta = fs::metadata(&object).ok()?;
            Some((meta.modified().ok()?, meta.len(), object))
        })
        .max();
    match newest {
        Some((_, len, object)) if len > 0 => {
            eprintln!("  kernel programs: {} ({len} bytes)", object.display());
            Ok(())
        }
        Some((_, _, object)) => bail!("{} is empty: the daemon was built without its eBPF programs", object.display()),
        None => bail!("no memwatch-probes object under {}: did memwatch's build script run?", build_dir.display()),
    }
}

/// The newest Debian kernel image in /boot.
fn kernel() -> anyhow::Result<PathBuf> {
    let version =
        |name: &str| -> Vec<u64> { name.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect() };
    let mut kernels: Vec<String> = fs::read_dir("/boot")
        .context("reading /boot")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("vmlinuz-") && n.ends_with("-amd64"))
        .collect();
    kernels.sort_by_key(|n| version(n));
    let newest = kernels.pop().context("no /boot/vmlinuz-*-amd64 (linux-image-amd64 installs one)")?;
    Ok(Path::new("/boot").join(newest))
}

/// The init script: mount what the tests need, run each test executable,
/// print one result line per executable and a final sentinel, power off.
/// Lines carry the run's nonce so nothing else on the console (or an old
/// log) can pass for a verdict.
fn init_script(tests: &[(String, PathBuf)], nonce: &str) -> String {
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
echo "memwatch-vm: kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control), $(grep MemTotal /proc/meminfo)"
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

fn pack(artifacts: &Artifacts, nonce: &str, initrd: &Path) -> anyhow::Result<()> {
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
    archive.file("init", 0o755, init_script(&artifacts.tests, nonce).as_bytes())?;
    // Host paths are kept: the test executables find the helper binaries
    // through CARGO_BIN_EXE_* (absolute paths fixed at compile time) and the
    // daemon next to their own directory.
    for path in artifacts.binaries.iter().chain(artifacts.tests.iter().map(|(_, p)| p)) {
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

/// What the console said.
#[derive(Debug, Default)]
struct Outcome {
    /// (test executable, exit status, seconds it ran).
    tests: Vec<(String, i32, f64)>,
    figures: Vec<String>,
    status: Option<i32>,
    booted_after: Option<Duration>,
}

fn boot(kernel: &Path, initrd: &Path, log: &Path, nonce: &str, timeout: Duration) -> anyhow::Result<Outcome> {
    let mut qemu = Command::new("qemu-system-x86_64");
    // No network card: nothing needs one, and it saves the firmware's PXE ROM.
    qemu.args([
        "-accel",
        "tcg",
        "-m",
        &MEMORY_MIB.to_string(),
        "-smp",
        "2",
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
    ])
    .arg("-kernel")
    .arg(kernel)
    .arg("-initrd")
    .arg(initrd)
    // panic=-1 with -no-reboot: a kernel panic (or init exiting) ends qemu
    // at once instead of waiting for the timeout.
    .args(["-append", "console=ttyS0 panic=-1 quiet"])
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    eprintln!("+ {}", shell::describe(&qemu));
    let started = Instant::now();
    let mut child = qemu.spawn().context("starting qemu-system-x86_64")?;
    let lines = console_lines(&mut child)?;
    let mut log_file = BufWriter::new(fs::File::create(log).with_context(|| format!("creating {}", log.display()))?);

    let mut outcome = Outcome::default();
    let mut test_started = Instant::now();
    let deadline = started + timeout;
    loop {
        let line = match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                log_file.flush()?;
                bail!("the VM did not finish within {timeout:?}; killed it. Console log: {}", log.display());
            }
        };
        println!("[vm] {line}");
        writeln!(log_file, "{line}")?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("MEMWATCH-VM-START"), Some(n)) if n == nonce => {
                outcome.booted_after.get_or_insert(started.elapsed());
                test_started = Instant::now();
            }
            (Some("MEMWATCH-VM-TEST"), Some(n)) if n == nonce => {
                let name = words.next().unwrap_or_default().to_owned();
                let rc = words.next().and_then(|w| w.strip_prefix("exit=")?.parse().ok()).unwrap_or(-1);
                outcome.tests.push((name, rc, test_started.elapsed().as_secs_f64()));
            }
            (Some("MEMWATCH-VM-DONE"), Some(n)) if n == nonce => {
                outcome.status = words.next().and_then(|w| w.strip_prefix("status=")?.parse().ok());
            }
            // The test harness prints "test name ... " without a newline,
            // so a test's first figure shares that line.
            _ => {
                if let Some(at) = line.find("FIGURE ") {
                    outcome.figures.push(line[at + "FIGURE ".len()..].to_owned());
                }
            }
        }
    }
    log_file.flush()?;
    let exit = child.wait()?;
    if !exit.success() {
        eprintln!("qemu exited with {exit}");
    }
    Ok(outcome)
}

/// The serial console, line by line, from a reader thread (so the caller
/// can time out while the VM is silent).
fn console_lines(child: &mut Child) -> anyhow::Result<mpsc::Receiver<String>> {
    let stdout = child.stdout.take().context("qemu stdout")?;
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
            // The serial console ends lines with \r\n.
            let line = without_escapes(&String::from_utf8_lossy(&buf));
            if send.send(line).is_err() {
                return;
            }
            buf.clear();
        }
    });
    Ok(receive)
}

/// The line without terminal escape sequences (the firmware clears the
/// screen) and without the serial console's \r\n.
fn without_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            // ESC [ parameters final-letter, or ESC plus one character.
            '\x1b' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
    out
}

fn summarize(outcome: &Outcome, built: Duration, total: Duration, log: &Path) -> anyhow::Result<()> {
    println!("\n=== vm-test summary (console log: {}) ===", log.display());
    println!(
        "build + pack: {:.0} s; boot to first test: {:.1} s",
        built.as_secs_f64(),
        outcome.booted_after.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    for (name, rc, secs) in &outcome.tests {
        println!(
            "{:<16} {} ({secs:.1} s)",
            name,
            if *rc == 0 { "ok".to_owned() } else { format!("FAILED (exit {rc})") }
        );
    }
    for figure in &outcome.figures {
        println!("  {figure}");
    }
    println!("total: {:.0} s", total.as_secs_f64());
    let failed: Vec<&str> = outcome.tests.iter().filter(|(_, rc, _)| *rc != 0).map(|(n, _, _)| n.as_str()).collect();
    match outcome.status {
        None => {
            bail!("the VM stopped without reporting a result (crash, panic or broken /init): see {}", log.display())
        }
        Some(_) if !failed.is_empty() => bail!("tests failed in the VM: {}", failed.join(", ")),
        Some(0) if outcome.tests.len() == TESTS.len() => Ok(()),
        Some(status) => bail!(
            "the VM reported status {status} with {} of {} test executables run",
            outcome.tests.len(),
            TESTS.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_line_ends_are_dropped() {
        assert_eq!(without_escapes("\x1bc\x1b[?7l\x1b[2JSeaBIOS (version 1.16)\r\n"), "SeaBIOS (version 1.16)");
        assert_eq!(without_escapes("plain\ttext"), "plain\ttext");
    }

    #[test]
    fn the_init_script_reports_every_test_with_the_nonce() {
        let tests = [("cli".to_owned(), PathBuf::from("/w/target/t/release/deps/cli-1"))];
        let script = init_script(&tests, "abc123");
        assert!(script.starts_with("#!/bin/busybox sh\n"));
        assert!(script.contains("'/w/target/t/release/deps/cli-1' --test-threads=1 --nocapture"));
        assert!(script.contains("MEMWATCH-VM-TEST abc123 cli exit=$rc"));
        assert!(script.contains("MEMWATCH-VM-DONE abc123 status=$status"));
        assert!(script.trim_end().ends_with("poweroff -f"));
    }
}
