//! Issue 4's acceptance scenarios with the real daemon: `memwatch run` with
//! a test config watches leaking workloads in their own cgroups on a real
//! cgroup v2 kernel (`cargo xtask vm-test`) and acts on them. Every figure
//! printed is measured here or by the daemon (its incident records and log).
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use memwatch::{
    actions::incident_log::read_all,
    model::incident::{ActionKind, Incident, IncidentEnd, IncidentKind, Outcome},
};
use memwatch_tests::{
    cgroup_v2::{TestCgroup, available},
    daemon::{self, Daemon, Leaker, http, logged_decisions, scenario_dir, wait_for_health, wait_until},
    figure,
};

const LEAKER: &str = env!("CARGO_BIN_EXE_leaker");
const MIB: u64 = 1 << 20;
/// Every policy's limit: critical at 60% (76.8 MiB), emergency at 80% (102.4 MiB).
const LIMIT_MIB: u64 = 128;

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB as f64)
}

/// A policy for the test cgroup `name`; `keys` are extra policy-level keys,
/// `actions` extra `[policy.actions]` keys (a SIGUSR1 cleanup pass unless
/// they set `cleanup`).
fn policy(name: &str, protect: bool, keys: &str, actions: &str) -> String {
    format!(
        r#"
[[policy]]
name = "{name}"
match = {{ cgroup = "/memwatch-test-{name}-*" }}
target = "cgroup"
limit = "{LIMIT_MIB}MiB"
protect = {protect}
{keys}
[policy.thresholds]
warning = 0.4
critical = 0.6
emergency = 0.8
[policy.hysteresis]
margin = 0.05
samples = 2
[policy.leak]
enabled = false
[policy.actions]
cooldown = "3s"
{actions}
"#,
        actions = [
            (!actions.contains("pass_wait")).then_some("pass_wait = \"0.5s\""),
            // The leaker frees on SIGUSR1, as a service documents its signal.
            (!actions.contains("cleanup")).then_some("cleanup = [{ signal = \"SIGUSR1\" }]"),
            Some(actions),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
    )
}

fn write_config(dir: &Path, policies: &str) -> PathBuf {
    write_config_every(dir, 0.5, policies)
}

fn write_config_every(dir: &Path, interval_secs: f64, policies: &str) -> PathBuf {
    // Nothing else in the VM is the scenarios' to touch.
    daemon::write_config_every(dir, interval_secs, &format!("[defaults]\nprotect = true\n{policies}"))
}

fn incidents_of(dir: &Path, name: &str) -> Vec<Incident> {
    let all = read_all(&dir.join("incidents.jsonl")).expect("reading the incident log");
    all.into_iter().filter(|i| i.policy == name).collect()
}

/// Growth of the cgroup's memory.current over `window`, in MiB/s.
fn growth_rate(group: &TestCgroup, window: Duration) -> f64 {
    let cgroup = group.cgroup();
    let start = cgroup.usage().unwrap();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let end = cgroup.usage().unwrap();
    (end as f64 - start as f64) / MIB as f64 / t0.elapsed().as_secs_f64()
}

/// The value of `key=` on the first daemon log line containing every needle.
fn log_field(log: &str, needles: &[&str], key: &str) -> Option<String> {
    let line = log.lines().find(|l| needles.iter().all(|n| l.contains(n)))?;
    let rest = &line[line.find(&format!("{key}="))? + key.len() + 1..];
    Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
}

#[test]
fn cleanup_signals_free_a_cooperative_leak_and_recovery_restores_memory_high() {
    if !available("cleanup_signals_free_a_cooperative_leak_and_recovery_restores_memory_high") {
        return;
    }
    let scenario = "daemon: cleanup frees";
    let name = "frees";
    let dir = scenario_dir(name);
    let group = TestCgroup::new(name);
    let config = write_config(&dir, &policy(name, false, "", ""));
    let recording = dir.join("recording.jsonl");
    let daemon = Daemon::start_with(&config, &dir.join("daemon.log"), &["--record".as_ref(), recording.as_ref()]);

    // Ignores the first round of 3 passes (so memory.high gets lowered), frees on the 4th.
    let mut leaker = Leaker::spawn_in(
        &group.dir,
        LEAKER,
        &["--step-mib", "1", "--step-ms", "30", "--max-mib", "92", "--free-on-signal", "4"],
    );
    leaker.start();
    let mut lowest_high: Option<u64> = None;
    let freed = wait_until(Duration::from_secs(90), || {
        if let Ok(bytes) = group.read("memory.high").parse::<u64>() {
            lowest_high = Some(lowest_high.map_or(bytes, |l| l.min(bytes)));
        }
        leaker.drain().iter().any(|l| l == "freed").then_some(())
    });
    assert!(freed.is_some(), "the leaker never freed; it saw {:?}\n{}", leaker.seen, daemon.log_text());
    let recovered = wait_until(Duration::from_secs(30), || {
        incidents_of(&dir, name).into_iter().find(|i| i.end == IncidentEnd::Recovered)
    });
    let incident = recovered.unwrap_or_else(|| panic!("no recovered incident:\n{}", daemon.log_text()));
    let high_after = group.read("memory.high");
    let signals: Vec<_> = incident.actions.iter().filter(|a| a.action == ActionKind::Signal).collect();
    let throttle = incident.actions.iter().find(|a| a.action == ActionKind::Throttle && a.outcome == Outcome::Ok);
    let restore = incident.actions.iter().find(|a| a.action == ActionKind::Restore);

    figure(scenario, "usage peak (MiB)", mib(incident.peak_usage_bytes));
    figure(scenario, "crossing critical -> first SIGUSR1 sent (ms)", signals[0].applied_after_ms.unwrap_or(-1.0));
    let per_pass: Vec<String> = signals.iter().map(|s| mib(s.freed_bytes.unwrap_or(0).max(0) as u64)).collect();
    figure(scenario, "memory freed per signal pass (MiB)", per_pass.join(" / "));
    figure(scenario, "memory.high lowered to (MiB)", lowest_high.map_or("never".to_owned(), mib));
    figure(scenario, "memory.high after recovery", &high_after);
    figure(scenario, "episode duration (s)", incident.duration_s);

    assert!(signals.len() >= 4, "3 passes, then a new round after the cooldown: {signals:#?}");
    assert!(signals.iter().all(|s| s.outcome == Outcome::Ok), "{signals:#?}");
    let last = signals.last().unwrap().freed_bytes.unwrap_or(0);
    assert!(last >= 60 * MIB as i64, "the 4th signal frees ~92 MiB, freed {last} B");
    assert!(throttle.is_some(), "still critical after 3 passes: memory.high lowered: {:#?}", incident.actions);
    assert!(lowest_high.is_some_and(|l| l < LIMIT_MIB * MIB), "memory.high was seen lowered: {lowest_high:?}");
    assert_eq!(restore.map(|r| r.outcome), Some(Outcome::Ok), "{:#?}", incident.actions);
    assert_eq!(high_after, "max", "recovery restores the original memory.high");
    assert!(signals[0].applied_after_ms.is_some_and(|ms| ms < 50.0), "{:?}", signals[0]);
    assert!(incident.levels.iter().any(|l| l.to >= memwatch::engine::Level::Critical));
    assert!(incident.timeline.len() > 5 && incident.timeline.len() <= 60);
    let lines = leaker.finish();
    assert_eq!(lines.iter().filter(|l| l.starts_with("signal ")).count(), signals.len(), "{lines:?}");
    let log = dir.join("daemon.log");
    daemon.stop();

    // What the live daemon decided, and what a replay of its recording
    // says it would decide: the same lines, in the same order.
    let live = logged_decisions(&log);
    let replayed = replay_actions(&recording, &config);
    figure(
        scenario,
        "decisions logged live / replayed from the recording",
        format!("{} / {}", live.len(), replayed.len()),
    );
    assert!(live.iter().any(|l| l.contains("\"action\":\"throttle\"")), "{live:#?}");
    assert!(live.iter().any(|l| l.contains("\"action\":\"restore\"")), "{live:#?}");
    assert_eq!(live, replayed, "replay --actions of the recording differs from what the daemon logged");
}

/// `memwatch replay --actions` of `recording` under `config`: its lines.
fn replay_actions(recording: &Path, config: &Path) -> Vec<String> {
    let out = std::process::Command::new(memwatch_tests::memwatch_binary())
        .args(["replay", "--actions", "--trace"])
        .arg(recording)
        .arg("--config")
        .arg(config)
        .output()
        .expect("running memwatch replay");
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn a_leak_that_ignores_signals_is_throttled_and_a_restart_restores_memory_high() {
    if !available("a_leak_that_ignores_signals_is_throttled_and_a_restart_restores_memory_high") {
        return;
    }
    let scenario = "daemon: throttle";
    let name = "throttle";
    let dir = scenario_dir(name);
    let group = TestCgroup::new(name);
    let config = write_config(&dir, &policy(name, false, "", "pass_wait = \"1s\""));
    let log = dir.join("daemon.log");
    let daemon = Daemon::start(&config, &log);

    let mut leaker = Leaker::spawn_in(&group.dir, LEAKER, &["--step-mib", "1", "--step-ms", "30", "--max-mib", "400"]);
    leaker.start();
    std::thread::sleep(Duration::from_millis(300));
    let before = growth_rate(&group, Duration::from_secs(1));
    let events_before = group.cgroup().memory_events().unwrap();

    let lowered = wait_until(Duration::from_secs(60), || group.read("memory.high").parse::<u64>().ok());
    let lowered = lowered.unwrap_or_else(|| panic!("memory.high never set:\n{}", daemon.log_text()));
    // Give the passes time to end and the kernel time to reach the limit.
    std::thread::sleep(Duration::from_secs(4));
    let after = growth_rate(&group, Duration::from_secs(2));
    let events_after = group.cgroup().memory_events().unwrap();
    let high = group.read("memory.high");
    let text = daemon.log_text();
    let clamp_ms = log_field(&text, &["action=\"clamp\"", "outcome=\"ok\""], "applied_after_ms");
    let signal_ms = log_field(&text, &["action=\"signal\"", "outcome=\"ok\""], "applied_after_ms");

    figure(scenario, "growth before (MiB/s)", format!("{before:.1}"));
    figure(scenario, "growth after throttling (MiB/s)", format!("{after:.1}"));
    figure(scenario, "memory.high first seen set to (MiB)", mib(lowered));
    figure(scenario, "memory.high now (MiB)", high.parse::<u64>().map_or(high.clone(), mib));
    figure(scenario, "memory.events high before / after", format!("{} / {}", events_before.high, events_after.high));
    figure(scenario, "crossing critical -> first SIGUSR1 (ms, daemon log)", signal_ms.clone().unwrap_or_default());
    figure(
        scenario,
        "crossing emergency -> memory.high clamped (ms, daemon log)",
        clamp_ms.clone().unwrap_or_default(),
    );

    assert!(text.contains("to=critical") || text.contains("to=emergency"), "{text}");
    assert!(text.contains("to=emergency"), "the leak must cross emergency:\n{text}");
    assert!(
        clamp_ms.as_deref().and_then(|ms| ms.parse::<f64>().ok()).is_some_and(|ms| ms < 50.0),
        "{clamp_ms:?}\n{text}"
    );
    assert!(signal_ms.is_some(), "cleanup signals were sent first:\n{text}");
    assert!(leaker.drain().iter().any(|l| l == "signal 1"), "the leaker got the signal: {:?}", leaker.seen);
    assert!(
        events_after.high > events_before.high,
        "memory.events high must rise: {events_before:?} -> {events_after:?}"
    );
    assert!(before >= 10.0, "the leak grows before throttling: {before:.1} MiB/s");
    assert!(after < before / 4.0, "growth should fall well below {before:.1} MiB/s, is {after:.1}");

    // Crash mid-throttle: the limit stays lowered until a memwatch restarts.
    daemon.crash();
    let still = group.read("memory.high");
    assert_ne!(still, "max", "SIGKILL gives memwatch no chance to restore");
    let _ = leaker.child.kill(); // the service stops too; its cgroup stays
    let _ = leaker.child.wait();
    let t0 = Instant::now();
    let successor = Daemon::start(&config, &log);
    let restored = wait_until(Duration::from_secs(10), || (group.read("memory.high") == "max").then(|| t0.elapsed()));
    figure(scenario, "left lowered by the killed daemon (MiB)", still.parse::<u64>().map_or(still.clone(), mib));
    figure(
        scenario,
        "restart -> memory.high restored (ms, incl. start-up)",
        restored.map_or(-1, |d| d.as_millis() as i64),
    );
    assert!(restored.is_some(), "the restarted daemon restores memory.high:\n{}", successor.log_text());
    // The log line follows the write it reports: wait for it, do not race it.
    let said = wait_until(Duration::from_secs(5), || {
        successor.log_text().contains("memory limit restored (start-up)").then_some(())
    });
    assert!(said.is_some(), "{}", successor.log_text());
    successor.stop();
}

#[test]
fn protected_and_dry_run_workloads_are_never_touched() {
    if !available("protected_and_dry_run_workloads_are_never_touched") {
        return;
    }
    let scenario = "daemon: protect and dry run";
    let dir = scenario_dir("untouched");
    let protected = TestCgroup::new("protected");
    let dry = TestCgroup::new("dryrun");
    let policies = policy("protected", true, "", "kill = true")
        + &policy("dryrun", false, "dry_run = true", "kill = true\nkill_grace = \"1s\"");
    let config = write_config(&dir, &policies);
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));

    let args = ["--step-mib", "2", "--step-ms", "20", "--max-mib", "112", "--free-on-signal", "1"];
    let mut leakers = Vec::new();
    for group in [&protected, &dry] {
        let mut leaker = Leaker::spawn_in(&group.dir, LEAKER, &args);
        leaker.start();
        leakers.push(leaker);
    }
    for leaker in &mut leakers {
        leaker.expect("full", Duration::from_secs(60));
    }
    // Emergency for both (112 of 128 MiB); watch for longer than 3 passes and a cooldown.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(5) {
        for group in [&protected, &dry] {
            assert_eq!(group.read("memory.high"), "max", "{} was touched:\n{}", group.dir.display(), daemon.log_text());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.stop();
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
    let would = log.lines().filter(|l| l.contains("would ")).count();
    figure(
        scenario,
        "memory.high of both after 5 s in emergency",
        format!("{} / {}", protected.read("memory.high"), dry.read("memory.high")),
    );
    figure(scenario, "\"would ...\" actions logged for the dry-run target", would);

    for leaker in leakers {
        let lines = leaker.finish();
        assert!(!lines.iter().any(|l| l.starts_with("signal ")), "a signal reached a workload: {lines:?}");
        assert!(lines.iter().any(|l| l == "signals 0"), "{lines:?}");
    }
    let p = incidents_of(&dir, "protected");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].protected && p[0].actions.is_empty() && p[0].end == IncidentEnd::Shutdown, "{:#?}", p[0]);
    assert_eq!(p[0].peak_level, memwatch::engine::Level::Emergency);
    let d = incidents_of(&dir, "dryrun");
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(d[0].dry_run);
    assert!(
        d[0].actions.iter().all(|a| matches!(a.outcome, Outcome::DryRun | Outcome::Skipped)),
        "{:#?}",
        d[0].actions
    );
    for needle in ["would send SIGTERM", "would set memory.high", "would report the host not ready"] {
        assert!(d[0].actions.iter().any(|a| a.detail.starts_with(needle)), "{needle}: {:#?}", d[0].actions);
    }
}

#[test]
fn an_emergency_may_kill_the_largest_grower_where_the_policy_allows() {
    if !available("an_emergency_may_kill_the_largest_grower_where_the_policy_allows") {
        return;
    }
    use std::os::unix::process::ExitStatusExt as _;
    let scenario = "daemon: kill";
    let name = "kill";
    let dir = scenario_dir(name);
    let group = TestCgroup::new(name);
    let config = write_config(&dir, &policy(name, false, "", "kill = true\nkill_grace = \"1s\""));
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));

    let mut leaker = Leaker::spawn_in(
        &group.dir,
        LEAKER,
        &["--step-mib", "2", "--step-ms", "20", "--max-mib", "400", "--ignore-sigterm"],
    );
    leaker.start();
    // GET /health as a load balancer would, until the daemon kills the leaker.
    let socket = dir.join("memwatch.sock");
    let mut unhealthy: Option<String> = None;
    let status = wait_until(Duration::from_secs(60), || {
        if let Some((503, body)) = http(&socket, "GET", "/health") {
            unhealthy.get_or_insert(body);
        }
        leaker.child.try_wait().ok().flatten()
    });
    let status = status.unwrap_or_else(|| panic!("the leaker was not killed:\n{}", daemon.log_text()));
    let closed = wait_until(Duration::from_secs(20), || {
        let incidents = incidents_of(&dir, name);
        incidents.iter().any(|i| i.kind == IncidentKind::Episode).then_some(incidents)
    });
    let incidents = closed.unwrap_or_else(|| panic!("no episode record after the kill:\n{}", daemon.log_text()));
    let high = group.read("memory.high");
    // The record is written as the round that closed the episode acts; /health
    // reads the view, published just after that round: give it a reading.
    let healthy_after =
        wait_until(Duration::from_secs(10), || http(&socket, "GET", "/health").filter(|(status, _)| *status == 200))
            .or_else(|| http(&socket, "GET", "/health"));
    daemon.stop();

    let kill = incidents.iter().find(|i| i.kind == IncidentKind::Kill).expect("a kill record");
    let episode = incidents.iter().find(|i| i.kind == IncidentKind::Episode).unwrap();
    let term = episode.actions.iter().find(|a| a.action == ActionKind::Terminate).expect("SIGTERM first");
    let sigkill = episode.actions.iter().find(|a| a.action == ActionKind::Kill).expect("then SIGKILL");
    figure(scenario, "crossing emergency -> SIGTERM (ms)", term.applied_after_ms.unwrap_or(-1.0));
    figure(
        scenario,
        "SIGTERM -> SIGKILL (s, grace 1 s, rounded up to a reading)",
        format!("{:.2}", sigkill.t - term.t),
    );
    figure(scenario, "leaker ended by signal", status.signal().unwrap_or(0));
    figure(scenario, "memory.high after the target went away", &high);
    figure(
        scenario,
        "GET /health during the emergency / after the episode",
        format!(
            "{} / {}",
            if unhealthy.is_some() { "503" } else { "never 503" },
            healthy_after.as_ref().map_or("no answer".to_owned(), |h| h.0.to_string())
        ),
    );

    assert_eq!(status.signal(), Some(libc::SIGKILL), "SIGTERM is ignored, so SIGKILL ends it: {status:?}");
    assert_eq!((term.outcome, sigkill.outcome), (Outcome::Ok, Outcome::Ok), "{:#?}", episode.actions);
    assert!(sigkill.t - term.t >= 1.0, "SIGKILL only after the grace period");
    assert_eq!(kill.end, IncidentEnd::Killed);
    assert_eq!(episode.end, IncidentEnd::Gone, "the cgroup emptied: the target is gone");
    assert_eq!(episode.peak_level, memwatch::engine::Level::Emergency);
    assert_eq!(high, "max", "the clamp is undone when the episode ends");
    assert!(term.applied_after_ms.is_some_and(|ms| ms < 50.0), "{term:?}");
    let body: serde_json::Value =
        serde_json::from_str(unhealthy.as_deref().expect("GET /health never said 503")).expect("a JSON 503 body");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("emergency")), "{body}");
    assert!(body["memoryUsage"]["total"].as_u64().is_some_and(|t| t > 0) && body["heapUsage"].is_f64(), "{body}");
    assert_eq!(healthy_after.map(|h| h.0), Some(200), "ready again once the episode is over");
}

#[test]
fn a_requested_cleanup_signals_the_workload_and_reports_what_it_freed() {
    if !available("a_requested_cleanup_signals_the_workload_and_reports_what_it_freed") {
        return;
    }
    let scenario = "daemon: POST /health/gc";
    let name = "gc";
    let dir = scenario_dir(name);
    let group = TestCgroup::new(name);
    let config = write_config(&dir, &policy(name, false, "", ""));
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let socket = dir.join("memwatch.sock");

    // 64 MiB: warning (51.2 MiB), under critical (76.8 MiB): the daemon
    // would not act on its own. The leaker frees on the first SIGUSR1.
    let mut leaker = Leaker::spawn_in(
        &group.dir,
        LEAKER,
        &["--step-mib", "2", "--step-ms", "20", "--max-mib", "64", "--free-on-signal", "1"],
    );
    leaker.start();
    let warned = wait_until(Duration::from_secs(30), || {
        let text = daemon.log_text();
        (text.contains("memwatch-test-gc") && text.contains("to=warning")).then_some(())
    });
    assert!(warned.is_some(), "the workload never reached warning:\n{}", daemon.log_text());
    std::thread::sleep(Duration::from_secs(1)); // settled at its 64 MiB
    assert!(leaker.drain().iter().all(|l| !l.starts_with("signal")), "the daemon acted on its own: {:?}", leaker.seen);

    let t0 = Instant::now();
    let answer = http(&socket, "POST", "/health/gc");
    let took = t0.elapsed();
    let (code, body) = answer.unwrap_or_else(|| panic!("no answer to POST /health/gc:\n{}", daemon.log_text()));
    let report: serde_json::Value = serde_json::from_str(&body).expect("a JSON report");
    leaker.expect("freed", Duration::from_secs(5));
    let target = &report["targets"][0];
    let freed = report["freedBytes"].as_u64().unwrap_or(0);
    figure(scenario, "POST /health/gc answered after (ms, incl. the re-measure)", took.as_millis());
    figure(scenario, "memory freed, as reported (MiB)", mib(freed));
    figure(scenario, "action", target["actions"][0].as_str().unwrap_or("?"));

    assert_eq!(code, 200, "{body}");
    assert_eq!((report["dryRun"].as_bool(), target["outcome"].as_str()), (Some(false), Some("ok")), "{report}");
    assert_eq!(target["measured"], true, "{report}");
    assert!(freed >= 40 * MIB, "the leaker unmapped ~64 MiB: {report}");
    assert!(took < Duration::from_secs(5), "answered within a few readings: {took:?}");
    // The view is published right after the answer, in the same loop turn.
    let last_cleanup = wait_until(Duration::from_secs(2), || {
        let (_, body) = http(&socket, "GET", "/health/metrics")?;
        let metrics: serde_json::Value = serde_json::from_str(&body).ok()?;
        metrics["memory"]["lastCleanup"]["freedBytes"].as_u64()
    });
    assert_eq!(last_cleanup, Some(freed), "GET /health/metrics shows the last cleanup");

    // On record like the daemon's own cleanups, once back at normal.
    let recorded = wait_until(Duration::from_secs(20), || incidents_of(&dir, name).pop());
    let incident = recorded.unwrap_or_else(|| panic!("no incident record:\n{}", daemon.log_text()));
    let pass = &incident.actions[0];
    assert_eq!((pass.action, pass.outcome), (ActionKind::Signal, Outcome::Ok), "{incident:#?}");
    assert_eq!(pass.freed_bytes.map(|f| f.max(0) as u64), Some(freed), "the answer and the record agree");
    assert_eq!(leaker.finish().iter().filter(|l| l.starts_with("signal ")).count(), 1, "one signal, on request");
    daemon.stop();
}

#[test]
fn a_requested_cleanup_is_answered_in_time_when_readings_are_a_minute_apart() {
    if !available("a_requested_cleanup_is_answered_in_time_when_readings_are_a_minute_apart") {
        return;
    }
    let scenario = "daemon: POST /health/gc, readings 60 s apart";
    let name = "gcslow";
    let dir = scenario_dir(name);
    let group = TestCgroup::new(name);
    // Running before the daemon starts, so its first reading (the only one
    // for a minute) sees the target.
    let mut leaker = Leaker::spawn_in(
        &group.dir,
        LEAKER,
        &["--step-mib", "2", "--step-ms", "20", "--max-mib", "16", "--free-on-signal", "1"],
    );
    leaker.start();
    std::thread::sleep(Duration::from_secs(1));
    let config = write_config_every(&dir, 60.0, &policy(name, false, "", ""));
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let socket = dir.join("memwatch.sock");
    wait_for_health(&socket);

    // The pass is sent at once; its re-measure waits for a reading a minute
    // away, longer than an answer may wait (20 s) and than the API's 30 s.
    let t0 = Instant::now();
    let answer = http(&socket, "POST", &format!("/health/gc?target=cgroup:{}", group.path()));
    let took = t0.elapsed();
    let (code, body) = answer.unwrap_or_else(|| panic!("no answer to POST /health/gc:\n{}", daemon.log_text()));
    figure(scenario, "answered after (ms)", took.as_millis());
    assert_eq!(code, 200, "not a 504: {body}\n{}", daemon.log_text());
    let report: serde_json::Value = serde_json::from_str(&body).expect("a JSON report");
    assert_eq!(report["targets"][0]["measured"], false, "{report}");
    assert!(report["note"].as_str().is_some_and(|n| n.contains("not re-measured within 20 s")), "{report}");
    assert!(took >= Duration::from_secs(19) && took < Duration::from_secs(29), "at its deadline: {took:?}");
    leaker.expect("freed", Duration::from_secs(5));
    daemon.stop();
}
