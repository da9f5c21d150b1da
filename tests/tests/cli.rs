//! memwatch as a user runs it: the binary, its output and its exit.
use std::{
    io::{BufRead as _, BufReader},
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use memwatch_tests::{
    Workload,
    daemon::{ScenarioDir, scenario_dir},
    memwatch_binary, privileged,
};

const WORKLOAD: &str = env!("CARGO_BIN_EXE_alloc-workload");
const MIB: i64 = 1 << 20;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `memwatch probe --json` with the syscall figures allowed through the
/// syscalls tracepoints where fexit is refused (`extra` adds arguments).
fn probe_attributes_a_256_mib_allocation(extra: &[&str]) -> serde_json::Value {
    let mut workload = Workload::spawn(WORKLOAD, &["--mib", "256", "--step-mib", "16", "--brk-mib", "0"]);
    workload.wait_for("ready");
    let mut probe = Command::new(memwatch_binary())
        .args(["probe", "--duration", "5", "--json", "--pid", &workload.pid().to_string()])
        .args(extra)
        .env("MEMWATCH_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Allocate only once the probes are attached and the window has begun.
    let mut stderr = BufReader::new(probe.stderr.take().unwrap()).lines().map_while(Result::ok);
    wait_for_line(&mut stderr, "watching", Duration::from_secs(60));
    let rest_of_stderr = std::thread::spawn(move || stderr.collect::<Vec<_>>().join("\n"));
    workload.proceed();
    workload.wait_for("allocated");
    let out = probe.wait_with_output().unwrap();
    assert!(out.status.success(), "probe failed: {}", rest_of_stderr.join().unwrap());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "--pid prints that one process: {stdout}");
    let row: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    eprintln!("probe {extra:?}: {row}");
    assert_eq!(row["mode"], "ebpf");
    assert_eq!(row["pid"], workload.pid());
    assert!(row["rss_anon_delta_bytes"].as_i64().unwrap() >= 240 * MIB, "{row}");
    assert!(row["page_faults"].as_u64().unwrap() >= 60_000, "{row}");
    workload.proceed();
    workload.proceed();
    workload.finish();
    row
}

#[test]
fn probe_json_attributes_a_256_mib_allocation_to_its_pid() {
    if !privileged("probe_json_attributes_a_256_mib_allocation_to_its_pid") {
        return;
    }
    let row = probe_attributes_a_256_mib_allocation(&["--syscall-tracepoints"]);
    assert!(row["mmap_bytes"].as_i64().unwrap() >= 256 * MIB, "{row}");
}

#[test]
fn probe_without_syscall_tracepoints_still_attributes_growth_and_faults() {
    if !privileged("probe_without_syscall_tracepoints_still_attributes_growth_and_faults") {
        return;
    }
    // mmap is counted where fexit loads and unknown (null) where not.
    let row = probe_attributes_a_256_mib_allocation(&[]);
    assert!(row["mmap_bytes"].is_null() || row["mmap_bytes"].as_i64().unwrap() >= 256 * MIB, "{row}");
}

/// A copy of the binary that an unprivileged user can execute, wherever the
/// checkout lives (a clone under /root is not reachable for `nobody`).
fn world_executable_copy() -> (ScenarioDir, std::path::PathBuf) {
    let dir = scenario_dir("cli");
    let copy = dir.join("memwatch");
    std::fs::copy(memwatch_binary(), &copy).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, copy)
}

/// Runs `binary args` as an unprivileged user: `nobody` when we are root,
/// ourselves otherwise.
fn unprivileged(binary: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(binary);
    cmd.args(args);
    if is_root() {
        // std also drops root's supplementary groups when it changes uid.
        cmd.uid(65534).gid(65534);
    }
    cmd.output().unwrap()
}

#[test]
fn probe_without_privileges_falls_back_to_procfs_and_says_why() {
    let (_dir, binary) = world_executable_copy();
    let out = unprivileged(&binary, &["probe", "--duration", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stdout.trim_end().ends_with("mode=procfs"), "stdout: {stdout}");
    assert!(stdout.trim_start().starts_with("PID"), "a table with a header: {stdout}");
    assert!(
        stderr.contains("eBPF probes not used: not permitted to load eBPF programs"),
        "the reason is given: {stderr}"
    );
    assert_eq!(stderr.matches("eBPF probes not used").count(), 1, "said once: {stderr}");

    let out = unprivileged(&binary, &["probe", "--duration", "1", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["mode"], "procfs");
        assert!(row["mmap_bytes"].is_null(), "procfs cannot see mmap: {row}");
    }
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    let out = Command::new(memwatch_binary()).args(["probe", "--duration", "0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration"), "{out:?}");
    let out = Command::new(memwatch_binary()).args(["run", "--config", "/nonexistent/memwatch.toml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/memwatch.toml"), "{out:?}");
}

/// Reads stderr lines until one contains `needle`, within `timeout`.
fn wait_for_line(lines: &mut impl Iterator<Item = String>, needle: &str, timeout: Duration) -> String {
    let start = Instant::now();
    for line in lines.by_ref() {
        if line.contains(needle) {
            return line;
        }
        assert!(start.elapsed() < timeout, "no line with {needle:?} within {timeout:?}");
    }
    panic!("stream ended before a line with {needle:?}");
}

/// Starts `memwatch run` on a config in `dir` with readings every 0.5 s,
/// `daemon` (more `[daemon]` keys), its own API socket and no OTLP (a
/// daemon already running on this host, or another test, must not be
/// disturbed, nor disturb this one). Returns the config's path, the child
/// and its stderr's lines.
fn run_with_stderr(
    dir: &std::path::Path,
    daemon: &str,
    socket: &std::path::Path,
) -> (std::path::PathBuf, std::process::Child, impl Iterator<Item = String>) {
    let config = dir.join("config.toml");
    let text = format!(
        "[daemon]\ninterval_secs = 0.5\n{daemon}[api]\nsocket = {:?}\n[otlp]\nenabled = false\n",
        socket.display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(memwatch_binary())
        .args(["run", "--config"])
        .arg(&config)
        .env("MEMWATCH_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok);
    (config, child, lines)
}

#[test]
fn run_logs_a_banner_and_interval_summaries_and_stops_cleanly_on_sigterm() {
    let dir = scenario_dir("run");
    let socket = dir.join("api.sock");
    let (config, mut daemon, mut lines) = run_with_stderr(&dir, "", &socket);
    let banner = wait_for_line(&mut lines, "memwatch started", Duration::from_secs(20));
    let expected_mode = if is_root() { "mode=ebpf" } else { "mode=procfs" };
    assert!(banner.contains(expected_mode), "{banner}");
    assert!(banner.contains("interval=500ms"), "{banner}");
    assert!(banner.contains(&config.display().to_string()), "{banner}");
    if is_root() {
        // Nothing on the page-fault path; exits through a raw tracepoint.
        assert!(banner.contains("raw_tp:sched_process_exit"), "{banner}");
        assert!(!banner.contains("syscalls:") && !banner.contains("rss_stat"), "{banner}");
    }
    let summary = wait_for_line(&mut lines, "interval", Duration::from_secs(10));
    assert!(summary.contains("tracked="), "{summary}");
    assert!(summary.contains("top_growers="), "{summary}");

    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) }, 0);
    wait_for_line(&mut lines, "SIGTERM received", Duration::from_secs(10));
    wait_for_line(&mut lines, "probes detached", Duration::from_secs(10));
    let status = daemon.wait().unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status}");
}

/// One incident line as the daemon writes it.
fn incident_line(target: &str, started: f64, freed: i64) -> String {
    serde_json::json!({
        "kind": "episode", "target": target, "policy": "api", "cgroup": "/api.service",
        "started": started, "ended": started + 12.5, "duration_s": 12.5, "end": "recovered",
        "peak_level": "emergency", "peak_usage_bytes": 120 * MIB, "limit_bytes": 128 * MIB,
        "dry_run": false, "protected": false, "freed_bytes": freed,
        "levels": [{"t": started, "from": "warning", "to": "emergency", "usage_bytes": 120 * MIB}],
        "leak": null,
        "actions": [
            {"t": started, "action": "signal", "outcome": "ok", "detail": "SIGUSR1 (pass 1) to 1 of 1 process(es)",
             "freed_bytes": freed, "applied_after_ms": 1.5},
            {"t": started, "action": "clamp", "outcome": "ok", "detail": "memory.high max -> 1"},
            {"t": started + 12.5, "action": "restore", "outcome": "ok", "detail": "back to max"}
        ],
        "timeline": [{"t": started, "usage_bytes": 120 * MIB, "limit_bytes": 128 * MIB, "level": "emergency"}]
    })
    .to_string()
}

#[test]
fn incidents_prints_the_log_as_a_table_or_json_and_filters_by_time() {
    let dir = scenario_dir("incidents");
    let log = dir.join("incidents.jsonl");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    // An old record in the rotated file, a recent one in the live file.
    std::fs::write(dir.join("incidents.jsonl.1"), incident_line("cgroup:/old.service", 1_000_000_000.0, 0) + "\n")
        .unwrap();
    std::fs::write(&log, incident_line("cgroup:/api.service", now - 60.0, 40 * MIB) + "\n").unwrap();
    let incidents = |args: &[&str]| {
        let out = Command::new(memwatch_binary()).arg("incidents").arg("--file").arg(&log).args(args).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };

    let table = incidents(&[]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "header and two incidents, oldest first:\n{table}");
    assert!(rows[0].starts_with("STARTED (UTC)"), "{table}");
    assert!(rows[1].starts_with("2001-09-09 01:46:40") && rows[1].contains("cgroup:/old.service"), "{table}");
    assert!(rows[2].contains("cgroup:/api.service (api)") && rows[2].contains("emergency"), "{table}");
    assert!(rows[2].contains("40.0 MiB") && rows[2].contains("signal, clamp, restore"), "{table}");

    let recent = incidents(&["--since", "1h", "--json"]);
    assert_eq!(recent.lines().count(), 1, "{recent}");
    let record: serde_json::Value = serde_json::from_str(recent.trim()).unwrap();
    assert_eq!(record["target"], "cgroup:/api.service");
    assert_eq!(incidents(&["--since", "2001-09-09T00:00:00Z", "--json"]).lines().count(), 2);

    std::fs::write(&log, incident_line("cgroup:/api.service", now, 0) + "\n{\"kind\": \"episode\"}\n").unwrap();
    let out = Command::new(memwatch_binary()).arg("incidents").arg("--file").arg(&log).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    assert!(stderr.contains("incidents.jsonl:2: malformed incident record"), "{stderr}");
}

#[test]
fn status_and_the_health_api_answer_from_the_running_daemon_over_its_socket() {
    let dir = scenario_dir("status");
    let socket = dir.join("run/api.sock");
    let (_config, mut daemon, mut lines) = run_with_stderr(&dir, "mode = \"procfs\"\n", &socket);
    wait_for_line(&mut lines, "API listening", Duration::from_secs(20));
    // The first interval summary, logged as the second reading is judged: the
    // start-up reading's view is published by then.
    wait_for_line(&mut lines, "tracked=", Duration::from_secs(10));

    let out = Command::new(memwatch_binary()).args(["status", "--socket"]).arg(&socket).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "status failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(table.starts_with("host: ") && table.contains("mode: procfs"), "{table}");
    // Indented lines are details under a row (a container, a cgroup's charge).
    let rows: Vec<&str> =
        table.lines().skip_while(|l| !l.starts_with("TARGET")).skip(1).filter(|l| !l.starts_with("  ")).collect();
    assert!(!rows.is_empty(), "no target rows:\n{table}");
    assert!(
        rows.iter().all(|r| ["normal", "warning", "critical", "emergency"].iter().any(|l| r.contains(l))),
        "{table}"
    );

    // No daemon on the other end: a clear error, not a hang or a panic.
    let out = Command::new(memwatch_binary()).args(["status", "--socket"]).arg(dir.join("none.sock")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `memwatch run` running"), "{out:?}");

    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) }, 0);
    assert!(daemon.wait().unwrap().success());
    assert!(!socket.exists(), "the socket outlived the daemon");
}
