//! Heap ceilings declared where real runtimes read them, as `memwatch
//! record` reads them from /proc: Debian's node with `NODE_OPTIONS`, its
//! JVM with `JAVA_TOOL_OPTIONS` and `JDK_JAVA_OPTIONS` (the launcher's
//! wins), each runtime taking the option for real (controls: V8's heap
//! limit, the JVM's `MaxHeapSize`); Debian's prometheus, a Go program,
//! with `GOMEMLIMIT` and `GOGC=off` (a soft ceiling) and with `GOMEMLIMIT`
//! alone (none: its collector keeps its memory to its live data); and
//! python3 holding all of those variables, which it does not read. And
//! the JVM given a share of memory (`-XX:MaxRAMPercentage`) rather than a
//! size, in a memory cgroup of 1 GiB and outside it (control: the
//! `MaxHeapSize` HotSpot sized there).
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use memwatch_tests::{
    daemon::scenario_dir,
    memwatch_binary, privileged,
    real::{JAVA, NODE, Spawned, installed},
};

const MIB: u64 = 1 << 20;
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// The ceiling (bytes, soft) each pid's process line of a format-2
/// recording holds.
fn recorded_ceilings(recording: &str) -> HashMap<u32, Option<(u64, bool)>> {
    recording
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|line| {
            let process = line.get("process")?;
            let pid = u32::try_from(process["pid"].as_u64()?).ok()?;
            let ceiling = process.get("heap_ceiling").map(|c| {
                (
                    c["bytes"].as_u64().expect("bytes"),
                    c.get("soft").and_then(serde_json::Value::as_bool).unwrap_or(false),
                )
            });
            Some((pid, ceiling))
        })
        .collect()
}

/// Three seconds of `memwatch record` in procfs mode, as written.
fn record(dir: &Path) -> String {
    let out = dir.join("recording.jsonl");
    let status = Command::new(memwatch_binary())
        .args(["record", "--mode", "procfs", "--duration", "3", "--interval", "1", "--out"])
        .arg(&out)
        .status()
        .expect("running memwatch record");
    assert!(status.success(), "memwatch record: {status}");
    std::fs::read_to_string(&out).expect("the recording")
}

/// What a command prints on stdout, for the controls.
fn output(command: &mut Command) -> String {
    let out = command.output().expect("running a control");
    assert!(out.status.success(), "control failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ceilings_in_the_runtimes_environments_are_read_as_the_runtimes_read_them() {
    let test = "heap_ceilings";
    if !installed(NODE, test) || !installed(JAVA, test) || !installed(PROMETHEUS, test) {
        return;
    }
    // Controls: each runtime applies the variable, so a ceiling memwatch
    // reads there is the runtime's own.
    let heap_limit = |flag: Option<&str>, variable: Option<&str>| {
        let mut node = Command::new(NODE);
        node.args(flag).args(["-p", "require('v8').getHeapStatistics().heap_size_limit"]).env_remove("NODE_OPTIONS");
        if let Some(value) = variable {
            node.env("NODE_OPTIONS", value);
        }
        output(&mut node).trim().parse::<u64>().expect("a number of bytes")
    };
    let from_variable = heap_limit(None, Some("--max-old-space-size=96"));
    assert_eq!(from_variable, heap_limit(Some("--max-old-space-size=96"), None), "V8 took NODE_OPTIONS as its flag");
    assert_ne!(from_variable, heap_limit(None, None), "and without it, its default");
    let flags = output(
        Command::new(JAVA)
            .args(["-XX:+PrintFlagsFinal", "-version"])
            .env("JAVA_TOOL_OPTIONS", "-Xmx48m")
            .env("JDK_JAVA_OPTIONS", "-Xmx64m"),
    );
    let max_heap = flags.lines().find(|l| l.contains(" MaxHeapSize ")).expect("MaxHeapSize in the JVM's flags");
    assert!(max_heap.contains(&(64 * MIB).to_string()), "the JVM took JDK_JAVA_OPTIONS' 64 MiB: {max_heap}");

    let mut node = Command::new(NODE);
    node.args(["-e", "setInterval(() => {}, 1000)"]).env("NODE_OPTIONS", "--max-old-space-size=96");
    let node = Spawned::start("node", &mut node);
    let mut jvm = Command::new(JAVA);
    jvm.args(["-m", "java.rmi/sun.rmi.registry.RegistryImpl", "0"])
        .env("JAVA_TOOL_OPTIONS", "-Xmx48m")
        .env("JDK_JAVA_OPTIONS", "-Xmx64m");
    let jvm = Spawned::start("java", &mut jvm);
    let dir = scenario_dir(test);
    std::fs::write(dir.join("prometheus.yml"), "global:\n  scrape_interval: 1m\n").unwrap();
    let prometheus = |name: &str, gogc: Option<&str>| {
        let mut go = Command::new(PROMETHEUS);
        go.arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join(name).display()))
            .args(["--web.listen-address=127.0.0.1:0", "--log.level=warn"])
            .env("GOMEMLIMIT", "300MiB")
            .env_remove("GOGC");
        if let Some(value) = gogc {
            go.env("GOGC", value);
        }
        Spawned::start(name, &mut go)
    };
    let go = prometheus("prometheus-gogc-off", Some("off"));
    let go_collecting = prometheus("prometheus-gogc-default", None);
    let mut inherited = Command::new("python3");
    inherited
        .args(["-c", "import time; time.sleep(60)"])
        .env("NODE_OPTIONS", "--max-old-space-size=96")
        .env("JAVA_TOOL_OPTIONS", "-Xmx48m")
        .env("GOMEMLIMIT", "300MiB")
        .env("GOGC", "off");
    let inherited = Spawned::start("python3 with the runtimes' variables", &mut inherited);
    // The JVM starts slower than the others; a recording sees it once it has.
    std::thread::sleep(Duration::from_secs(2));

    let recording = record(&dir);
    let ceilings = recorded_ceilings(&recording);
    let ceiling = |spawned: &Spawned| {
        *ceilings.get(&spawned.pid()).unwrap_or_else(|| panic!("{} ({}) not recorded", spawned.name, spawned.pid()))
    };
    assert_eq!(ceiling(&node), Some((96 * MIB, false)), "node's NODE_OPTIONS");
    assert_eq!(ceiling(&jvm), Some((64 * MIB, false)), "the JVM's JDK_JAVA_OPTIONS after JAVA_TOOL_OPTIONS");
    assert_eq!(ceiling(&go), Some((300 * MIB, true)), "a Go program's GOMEMLIMIT under GOGC=off, soft");
    assert_eq!(ceiling(&go_collecting), None, "GOMEMLIMIT with the collector on");
    assert_eq!(ceiling(&inherited), None, "python3 reads none of them");
    assert!(!recording.contains("--max-old-space-size=96"), "the environment is not recorded");
}

/// A memory cgroup with a limit (v1's memory hierarchy, as on the
/// project's build machines, else v2), removed on drop.
struct LimitedCgroup {
    dir: PathBuf,
}

impl LimitedCgroup {
    /// `None` (with the reason printed, or a panic under CI) where this
    /// host has no memory controller to limit a group with.
    fn new(test: &str, bytes: u64) -> Option<Self> {
        let name = format!("memwatch-test-{test}-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let v2 = Path::new("/sys/fs/cgroup");
        let v2_memory = std::fs::read_to_string(v2.join("cgroup.subtree_control"))
            .is_ok_and(|controllers| controllers.split_whitespace().any(|c| c == "memory"));
        let (dir, limit_file) = if v1.join("memory.limit_in_bytes").is_file() {
            (v1.join(name), "memory.limit_in_bytes")
        } else if v2_memory {
            (v2.join(name), "memory.max")
        } else {
            let reason = format!("{test}: no memory controller to limit a cgroup with");
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "{reason}; CI=true, where it must run");
            eprintln!("SKIPPED {reason}");
            return None;
        };
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let group = Self { dir };
        std::fs::write(group.dir.join(limit_file), bytes.to_string()).expect("setting the cgroup's limit");
        Some(group)
    }

    /// `program` with `args`, started inside the group (a shell moves
    /// itself in, then becomes the program: the pid is the program's).
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", "echo $$ > \"$0\" && exec \"$@\""]).arg(self.dir.join("cgroup.procs")).arg(program);
        command.args(args);
        command
    }
}

impl Drop for LimitedCgroup {
    fn drop(&mut self) {
        // Its processes were killed before it is dropped, but their exit
        // may take a moment to leave the group empty; anything still in
        // it is killed.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|pid| pid.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) of a process this test started in its own group.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("WARNING: {} could not be removed", self.dir.display());
    }
}

/// `command` without the JVM's option variables, whatever the test's own
/// environment holds.
fn without_jvm_variables(command: &mut Command) -> &mut Command {
    command.env_remove("JAVA_TOOL_OPTIONS").env_remove("JDK_JAVA_OPTIONS").env_remove("_JAVA_OPTIONS")
}

/// The `MaxHeapSize` HotSpot sizes with `command`'s options.
fn max_heap_size(command: &mut Command) -> u64 {
    let flags = output(command.args(["-XX:+PrintFlagsFinal", "-version"]));
    let line = flags.lines().find(|l| l.contains(" MaxHeapSize ")).expect("MaxHeapSize in the JVM's flags");
    line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("a size in {line:?}"))
}

#[test]
fn a_jvms_share_of_memory_is_of_its_cgroups_limit_as_hotspot_reads_it() {
    let test = "heap_ceilings_share";
    if !installed(JAVA, test) || !privileged(test) {
        return;
    }
    let Some(group) = LimitedCgroup::new(test, 1 << 30) else { return };
    let share = "-XX:MaxRAMPercentage=75";
    // Controls: what HotSpot sizes in the group, and outside it (the
    // host's memory, or the limit of the cgroup this test runs in).
    let inside = max_heap_size(without_jvm_variables(&mut group.command(JAVA, &[share])));
    let outside = max_heap_size(without_jvm_variables(Command::new(JAVA).arg(share)));
    assert_eq!(inside, 768 * MIB, "HotSpot read the group's 1 GiB");
    assert!(outside > inside, "and more outside it: {outside}");

    let registry = ["-m", "java.rmi/sun.rmi.registry.RegistryImpl", "0"];
    let mut limited = group.command(JAVA, &[&[share][..], &registry].concat());
    let limited = Spawned::start("java in 1 GiB", without_jvm_variables(&mut limited));
    let host = Spawned::start("java outside", without_jvm_variables(Command::new(JAVA).arg(share).args(registry)));
    std::thread::sleep(Duration::from_secs(2));

    let ceilings = recorded_ceilings(&record(&scenario_dir(test)));
    let ceiling = |spawned: &Spawned| {
        ceilings
            .get(&spawned.pid())
            .unwrap_or_else(|| panic!("{} ({}) not recorded", spawned.name, spawned.pid()))
            .unwrap_or_else(|| panic!("{}: no ceiling recorded", spawned.name))
    };
    // HotSpot rounds its heap up to the heap's alignment (a few MiB).
    let near = |recorded: (u64, bool), sized: u64| !recorded.1 && recorded.0 <= sized && sized - recorded.0 <= 32 * MIB;
    assert!(near(ceiling(&limited), inside), "in the group: {:?} against HotSpot's {inside}", ceiling(&limited));
    assert!(near(ceiling(&host), outside), "outside: {:?} against HotSpot's {outside}", ceiling(&host));
}
