//! The detection commands as a user runs them: the built binary, its output
//! and its exit status. Unprivileged: nothing here loads eBPF.
use std::{path::Path, process::Command};

const MEMWATCH: &str = env!("CARGO_BIN_EXE_memwatch");
/// sysexits.h EX_CONFIG and EX_DATAERR.
const EX_CONFIG: i32 = 78;
const EX_DATAERR: i32 = 65;

fn memwatch(args: &[&str]) -> std::process::Output {
    Command::new(MEMWATCH)
        .args(args)
        // The seed's variables must not leak in from the test's environment.
        .env_remove("MEMORY_WARNING_THRESHOLD")
        .env_remove("MEMWATCH_WARNING_THRESHOLD")
        .output()
        .expect("running memwatch")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

const BAD_CONFIG: &str = "[daemon]\ninterval_secs = 0\n\
    [defaults.thresholds]\nwarning = 0.9\ncritical = 0.85\n\
    [[policy]]\nname = \"a\"\nmatch = { process = \"(\" }\n\
    [[policy]]\nname = \"a\"\nlimit = -1\ncolour = \"red\"\n";

const BAD_CONFIG_PATHS: [&str; 6] = [
    "daemon.interval_secs",
    "defaults.thresholds.critical",
    "policy[0].match.process",
    "policy[1].limit",
    "policy[1].colour",
    "policy[1].name",
];

#[test]
fn check_config_accepts_the_repository_config() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../config.toml");
    let out = memwatch(&["check-config", config]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(&format!("{config}: ok\n")), "{stdout}");
    assert!(stdout.contains("thresholds 0.8/0.9/0.95"), "{stdout}");
    assert!(stdout.contains("\"system-services\""), "{stdout}");
}

#[test]
fn check_config_reports_every_error_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "bad.toml", BAD_CONFIG);
    let out = memwatch(&["check-config", &config]);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{out:?}");
    let stderr = text(&out.stderr);
    for path in BAD_CONFIG_PATHS {
        assert!(stderr.contains(&format!("  {path}: ")), "{path} missing from:\n{stderr}");
    }
    assert!(stderr.contains(&config), "names the file: {stderr}");
}

#[test]
fn run_refuses_a_bad_config_with_every_error_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "bad.toml", BAD_CONFIG);
    let out = memwatch(&["run", "--config", &config, "--mode", "procfs"]);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{out:?}");
    let stderr = text(&out.stderr);
    for path in BAD_CONFIG_PATHS {
        assert!(stderr.contains(path), "{path} missing from:\n{stderr}");
    }
    // A bad environment value is a config error too.
    let good = write(dir.path(), "good.toml", "");
    let out = Command::new(MEMWATCH)
        .args(["check-config", &good])
        .env("MEMWATCH_CRITICAL_THRESHOLD", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{out:?}");
    assert!(text(&out.stderr).contains("MEMWATCH_CRITICAL_THRESHOLD: \"lots\" is not a number"), "{out:?}");
}

const LIMIT: u64 = 7 << 29;

/// A trace that leaks steadily through warning, critical and emergency.
fn leaking_trace() -> String {
    let mut trace = String::from("timestamp_s,key,rss_bytes,limit_bytes\n");
    for i in 0..1440u64 {
        let t = i * 5;
        // 20 MiB per minute from 1 GiB towards a 3.5 GiB limit, with a little wobble.
        let leak = (1u64 << 30) + t * (20 << 20) / 60 + (i % 7) * (1 << 20);
        trace.push_str(&format!("{t},cgroup:/system.slice/leaky.service,{leak},{LIMIT}\n"));
        trace.push_str(&format!("{t},cgroup:/system.slice/steady.service,{},\n", 500u64 << 20));
    }
    trace
}

#[test]
fn replay_prints_the_issue_s_json_lines_byte_identical_run_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "trace.csv", &leaking_trace());
    let run = || memwatch(&["replay", "--trace", &trace, "--host-memory", "16GiB"]);
    let (first, second) = (run(), run());
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(first.stdout, second.stdout, "byte-identical");
    let stdout = text(&first.stdout);
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let leak = lines.iter().find(|l| l["event"] == "leak_detected").expect("the leak is found");
    assert_eq!(leak["key"], "cgroup:/system.slice/leaky.service");
    let slope = leak["slope_bytes_per_s"].as_f64().unwrap();
    assert!((slope / (20.0 * 1048576.0 / 60.0) - 1.0).abs() < 0.1, "{leak}");
    assert!(leak["confidence"].as_f64().unwrap() > 0.99, "{leak}");
    assert!(leak["fit_r2"].as_f64().unwrap() > 0.95, "a straight rise with a wobble: {leak}");
    assert!(leak["time_to_limit_s"].as_f64().unwrap() > 0.0, "{leak}");
    let states: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["event"] == "state")
        .map(|l| (l["from"].as_str().unwrap(), l["to"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("normal", "warning"), ("warning", "critical"), ("critical", "emergency")], "{stdout}");
    let warning = lines.iter().find(|l| l["event"] == "state").unwrap();
    assert_eq!(warning["limit_bytes"], LIMIT);
    assert!(warning["usage_bytes"].as_u64().unwrap() >= LIMIT * 8 / 10);
    // Time to limit is the headroom over the slope, from the usage then.
    let usage_then = (1u64 << 30) as f64 + leak["t"].as_f64().unwrap() * 20.0 * 1048576.0 / 60.0;
    let expected = (LIMIT as f64 - usage_then) / slope;
    let ttl = leak["time_to_limit_s"].as_f64().unwrap();
    assert!((ttl / expected - 1.0).abs() < 0.02, "{ttl} vs {expected}");
    let times: Vec<f64> = lines.iter().map(|l| l["t"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order: {stdout}");
    assert!(!stdout.contains("steady.service"), "a flat target says nothing: {stdout}");
}

#[test]
fn replay_applies_the_config_s_policies() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "trace.csv", &leaking_trace());
    // Leak detection off for the leaky service, and a limit that puts the
    // steady one straight into emergency.
    let config = write(
        dir.path(),
        "config.toml",
        "[[policy]]\nname = \"leaky\"\nmatch = { unit = \"leaky.service\" }\nleak = { enabled = false }\n\
         [[policy]]\nname = \"steady\"\nmatch = { cgroup = \"/system.slice/steady.service\" }\nlimit = \"512MiB\"\n",
    );
    let out = memwatch(&["replay", "--trace", &trace, "--config", &config, "--host-memory", "16GiB"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("leak_detected"), "{stdout}");
    assert!(
        stdout.lines().next().unwrap().starts_with(
            r#"{"t":0,"key":"cgroup:/system.slice/steady.service","event":"state","from":"normal","to":"emergency""#
        ),
        "{stdout}"
    );
}

#[test]
fn replay_rejects_a_malformed_trace_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "trace.csv", "timestamp_s,key,rss_bytes,limit_bytes\n0,a,1,\n5,a,lots,\n");
    let out = memwatch(&["replay", "--trace", &trace, "--host-memory", "16GiB"]);
    assert_eq!(out.status.code(), Some(EX_DATAERR), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 3: rss_bytes \"lots\" is not a whole number"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing printed from a bad trace");
}

/// `memwatch replay` of corpus/examples/NAME.csv (written by `cargo xtask
/// corpus`): its leak_detected lines.
fn leaks_replayed(name: &str) -> Vec<serde_json::Value> {
    leaks_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/examples").join(format!("{name}.csv")))
}

#[test]
fn replay_of_a_periodic_job_that_returns_to_its_baseline_reports_no_leak() {
    assert_eq!(leaks_replayed("periodic_job"), Vec::<serde_json::Value>::new(), "five cycles of 20 minutes");
}

#[test]
fn replay_of_a_periodic_job_whose_troughs_rise_reports_a_leak_by_the_third_cycle() {
    let leaks = leaks_replayed("periodic_job_rising");
    assert_eq!(leaks.len(), 1, "once, not once a cycle: {leaks:?}");
    assert!(leaks[0]["t"].as_f64().unwrap() <= 3.0 * 1200.0, "{}", leaks[0]);
    // 5% of 1 GiB every 20 minutes.
    let per_cycle = leaks[0]["slope_bytes_per_s"].as_f64().unwrap() * 1200.0;
    assert!((per_cycle / (0.05 * 1073741824.0) - 1.0).abs() < 0.2, "{}", leaks[0]);
    assert!(leaks[0]["fit_r2"].as_f64().unwrap() > 0.9, "the troughs' line: {}", leaks[0]);
}

/// `memwatch replay` of `trace`: its leak_detected lines.
fn leaks_in(trace: &Path) -> Vec<serde_json::Value> {
    let out = memwatch(&["replay", "--trace", trace.to_str().unwrap(), "--host-memory", "16GiB"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["event"] == "leak_detected")
        .collect()
}

#[test]
fn a_jvm_warming_up_to_its_xmx_is_no_leak_because_its_ceiling_is_known() {
    // Recorded from a real OpenJDK 17 with -Xmx460m under a 512 MiB limit:
    // its RSS climbs for 17 minutes to 530 MiB and holds.
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/real/test/jvm_heap_to_xmx-10.csv");
    assert_eq!(leaks_in(&real), Vec::<serde_json::Value>::new());
    // The same readings without the ceiling its command line declared:
    // the climb's last minutes pass for a leak.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&real).unwrap();
    let stripped: String = text.lines().map(|l| format!("{}\n", l.rsplit_once(',').unwrap().0)).collect();
    let without = write(dir.path(), "without-ceiling.csv", &stripped);
    assert_eq!(leaks_in(Path::new(&without)).len(), 1, "{stripped:.200}");
}

/// `memwatch replay --explain` of `trace`: every line, parsed. Its other
/// lines are exactly those of a plain replay.
fn explained(trace: &Path) -> Vec<serde_json::Value> {
    let args = ["replay", "--trace", trace.to_str().unwrap(), "--host-memory", "16GiB"];
    let plain = memwatch(&args);
    let out = memwatch(&[&args[..], &["--explain"]].concat());
    assert!(out.status.success() && plain.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let events: String =
        stdout.lines().filter(|l| !l.contains(r#""event":"leak_evaluation""#)).map(|l| format!("{l}\n")).collect();
    assert_eq!(events, text(&plain.stdout));
    stdout.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect()
}

fn evaluations(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    lines.iter().filter(|l| l["event"] == "leak_evaluation").collect()
}

#[test]
fn replay_explains_which_test_held_the_node_case_back() {
    let trace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/real/node_case/node_case-01.csv");
    let lines = explained(&trace);
    // An evaluation follows every closed minute.
    let evaluations = evaluations(&lines);
    let times: Vec<f64> = evaluations.iter().map(|e| e["t"].as_f64().unwrap()).collect();
    assert!(times.len() >= 20 && times.windows(2).all(|pair| pair[1] - pair[0] == 60.0), "{times:?}");

    // The leak begins at 600 s. Until it is found, the 10-minute window
    // holds the cache's warm-up levelling off, then a step of V8's heap
    // (docs/detection.md, "The fast Node.js leak, looked into").
    let detected =
        lines.iter().find(|l| l["event"] == "leak_detected").expect("the leak is found")["t"].as_f64().unwrap();
    let ten_minute =
        |e: &serde_json::Value| e["windows"].as_array().unwrap().iter().find(|w| w["window_s"] == 600).cloned();
    let held_back: Vec<serde_json::Value> = evaluations
        .iter()
        .filter(|e| (600.0..detected).contains(&e["t"].as_f64().unwrap()))
        .filter_map(|e| ten_minute(e))
        .collect();
    let first_said = |what: &str| held_back.iter().position(|w| w["outcome"] == what || w["veto"] == what);
    let (levelling, step) = (first_said("levelling_off"), first_said("step_fits_better"));
    assert!(levelling.is_some() && step > levelling, "{held_back:?}");

    // It is announced at the first minute its verdict has held for the
    // confirmation, not before.
    let at = |t: f64| *evaluations.iter().find(|e| e["t"].as_f64() == Some(t)).unwrap();
    let held = |e: &serde_json::Value| (e["held_for_s"].as_f64().unwrap(), e["confirm_after_s"].as_f64().unwrap());
    let (before, announced) = (at(detected - 60.0), at(detected));
    assert_eq!(before["verdict"]["kind"], "leak", "{before}");
    assert!(held(before).0 < held(before).1 && held(announced).0 >= held(announced).1, "{before}\n{announced}");
    assert_eq!((&before["reported"], &announced["reported"]), (&false.into(), &true.into()), "{announced}");
}

#[test]
fn replay_explains_why_a_rise_was_set_aside() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/examples");
    let kinds = |trace: &Path| -> Vec<String> {
        evaluations(&explained(trace)).iter().map(|e| e["verdict"]["kind"].as_str().unwrap().to_owned()).collect()
    };
    let first = |kinds: &[String], kind: &str| kinds.iter().position(|k| k == kind);
    let last = |kinds: &[String], kind: &str| kinds.iter().rposition(|k| k == kind);
    // A periodic job's first build is a rise like a leak's (not held for
    // its confirmation); once the job has returned to its baseline, each
    // build is like the cycles before it.
    let job = kinds(&examples.join("periodic_job.csv"));
    assert!(last(&job, "leak").is_some() && first(&job, "like_earlier_cycles") > last(&job, "leak"), "{job:?}");
    // Its troughs rising.
    assert!(kinds(&examples.join("periodic_job_rising.csv")).contains(&"rising_troughs".into()));
    // A real JVM growing its heap to its -Xmx.
    let jvm = kinds(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/real/test/jvm_heap_to_xmx-10.csv"));
    assert!(jvm.contains(&"heap_sizing".into()) && !jvm.contains(&"leak".into()), "{jvm:?}");
}

#[test]
fn explain_refuses_to_go_with_actions() {
    let trace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/examples/periodic_job.csv");
    let out = memwatch(&["replay", "--trace", trace.to_str().unwrap(), "--explain", "--actions"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("cannot be used with"), "{}", text(&out.stderr));
}
