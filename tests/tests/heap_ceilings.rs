//! Heap ceilings declared where real runtimes read them, as `memwatch
//! record` reads them from /proc: Debian's node with `NODE_OPTIONS`, its
//! JVM with `JAVA_TOOL_OPTIONS` and `JDK_JAVA_OPTIONS` (the launcher's
//! wins), each runtime taking the option for real (controls: V8's heap
//! limit, the JVM's `MaxHeapSize`); Debian's prometheus, a Go program,
//! with `GOMEMLIMIT` and `GOGC=off` (a soft ceiling) and with `GOMEMLIMIT`
//! alone (none: its collector keeps its memory to its live data); and
//! python3 holding all of those variables, which it does not read.
use std::{collections::HashMap, process::Command, time::Duration};

use memwatch_tests::{
    daemon::scenario_dir,
    memwatch_binary,
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

    let out = dir.join("recording.jsonl");
    let status = Command::new(memwatch_binary())
        .args(["record", "--mode", "procfs", "--duration", "3", "--interval", "1", "--out"])
        .arg(&out)
        .status()
        .expect("running memwatch record");
    assert!(status.success(), "memwatch record: {status}");
    let recording = std::fs::read_to_string(&out).expect("the recording");
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
