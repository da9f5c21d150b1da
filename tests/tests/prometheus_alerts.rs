//! The shipped alert rules on a real Prometheus (Debian 12's prometheus
//! 2.42): `promtool check rules` and `promtool test rules` on
//! `deploy/prometheus/`, then a Prometheus on loopback loading alerts.yml
//! unchanged and scraping a real memwatch daemon, a workload held at warning
//! level, and the warning alert firing, as Prometheus's HTTP API reports it,
//! with the target and level labels the rule file promises.
use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use memwatch_tests::{
    daemon::{Daemon, Leaker, scenario_dir, wait_until, write_config},
    real::{Spawned, installed},
};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
const LEAKER: &str = env!("CARGO_BIN_EXE_leaker");

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new(PROMTOOL).args(args).current_dir(rules_dir()).output().expect("running promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_the_rules_and_passes_their_unit_tests() {
    if !installed(PROMTOOL, "promtool_checks_the_rules_and_passes_their_unit_tests") {
        return;
    }
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS: 8 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

/// GET over HTTP/1.0, so the answer is never chunked: (status, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.split_whitespace().nth(1)?.parse().ok()?, body.to_owned()))
}

/// The alert named `name` that is firing for `target`, as /api/v1/alerts lists it.
fn firing(port: u16, name: &str, target: &str) -> Option<serde_json::Value> {
    let (200, body) = get(port, "/api/v1/alerts")? else { return None };
    let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
    answer["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == name && a["labels"]["memwatch_target"] == target && a["state"] == "firing"
        })
        .cloned()
}

#[test]
fn a_real_prometheus_fires_the_warning_alert_for_a_target_memwatch_holds_at_warning() {
    let test = "a_real_prometheus_fires_the_warning_alert_for_a_target_memwatch_holds_at_warning";
    if !installed(PROMETHEUS, test) {
        return;
    }
    let dir = scenario_dir("prometheus");
    let metrics_port = free_port();
    // The leaker holds 40 MiB (and its own few): over 80% of 48 MiB, under 90%.
    let config = write_config(
        &dir,
        &format!(
            "tcp_enabled = true\ntcp_listen = \"127.0.0.1:{metrics_port}\"\n[otlp]\nenabled = false\n\
             [[policy]]\nname = \"held\"\ntarget = \"process\"\nmatch = {{ process = \"^leaker$\" }}\n\
             limit = \"48MiB\"\ndry_run = true\n"
        ),
    );
    let mut leaker = Leaker::spawn(LEAKER, &["--max-mib", "40", "--step-mib", "4"]);
    leaker.start();
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let target = format!("process:{}:leaker", leaker.pid());

    let web_port = free_port();
    let prometheus_yml = dir.join("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules:?}\n\
             scrape_configs:\n  - job_name: memwatch\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n",
            rules = rules_dir().join("alerts.yml").canonicalize().unwrap().display().to_string()
        ),
    )
    .unwrap();
    let _prometheus = Spawned::start(
        "prometheus",
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", prometheus_yml.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .arg("--log.level=warn")
            .stderr(Stdio::null()),
    );
    wait_until(Duration::from_secs(30), || (get(web_port, "/-/ready")?.0 == 200).then_some(()))
        .expect("Prometheus never became ready");

    // 30 s of `for:` after the first scrape at warning, plus scrapes and evaluations.
    let alert = wait_until(Duration::from_secs(120), || firing(web_port, "MemwatchTargetWarning", &target))
        .unwrap_or_else(|| {
            let alerts = get(web_port, "/api/v1/alerts").map(|r| r.1).unwrap_or_default();
            let targets = get(web_port, "/api/v1/targets").map(|r| r.1).unwrap_or_default();
            panic!(
                "no firing MemwatchTargetWarning for {target}:\nalerts: {alerts}\ntargets: {targets}\n{}",
                daemon.log_text()
            )
        });
    let labels = &alert["labels"];
    assert_eq!(labels["level"], "warning", "{alert}");
    assert_eq!(labels["severity"], "warning", "{alert}");
    assert_eq!(labels["memwatch_target_kind"], "process", "{alert}");
    assert_eq!(labels["job"], "memwatch", "{alert}");
    assert!(firing(web_port, "MemwatchTargetCritical", &target).is_none(), "not critical at 40 of 48 MiB");

    // Every name the rules and the Grafana dashboard ask for is one this
    // Prometheus stores from memwatch (families without series yet, such as
    // the leak gauges, from the scrape's metadata).
    let stored = stored_names(web_port);
    let (200, rules) = get(web_port, "/api/v1/rules").expect("GET /api/v1/rules") else { panic!("rules") };
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let mut queries: Vec<String> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter().map(|r| r["query"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(queries.len(), 8, "alerts.yml's rules loaded: {queries:?}");
    let board: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/memwatch.json"))
            .unwrap(),
    )
    .unwrap();
    let panels = board["panels"].as_array().unwrap();
    queries.extend(
        panels
            .iter()
            .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_owned())),
    );
    for query in &queries {
        for name in metric_names(query) {
            // `up` is Prometheus's own; `a:b:c` names are the rule file's recording rules.
            if name == "up" || name.contains(':') {
                continue;
            }
            assert!(
                stored.contains(&name),
                "{query:?} asks for {name}, which Prometheus does not have from memwatch: {stored:?}"
            );
        }
    }

    daemon.stop();
    leaker.finish();
}

/// The sample names Prometheus has from the memwatch job: series it stores,
/// and the families the scrape declared (OpenMetrics declares a counter by
/// its name without `_total`).
fn stored_names(port: u16) -> std::collections::BTreeSet<String> {
    let (200, series) = get(port, "/api/v1/label/__name__/values").expect("names") else { panic!("names") };
    let series: serde_json::Value = serde_json::from_str(&series).unwrap();
    let mut names: std::collections::BTreeSet<String> =
        series["data"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
    let (200, metadata) = get(port, "/api/v1/metadata").expect("metadata") else { panic!("metadata") };
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    for (family, entries) in metadata["data"].as_object().unwrap() {
        let counter = entries.as_array().unwrap().iter().any(|e| e["type"] == "counter");
        names.insert(if counter && !family.ends_with("_total") { format!("{family}_total") } else { family.clone() });
    }
    names
}

/// The metric names a PromQL query selects: identifiers outside `{...}`,
/// `[...]` and strings that are not functions, keywords or the label lists
/// of `by (...)`-like groupings.
fn metric_names(query: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "group_left", "group_right"];
    const GROUPINGS: &[&str] = &["by", "without", "on", "ignoring"];
    let chars: Vec<char> = query.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(close) = match c {
            '{' => Some('}'),
            '[' => Some(']'),
            '"' | '\'' => Some(c),
            _ => None,
        } {
            i += 1;
            while i < chars.len() && chars[i] != close {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let rest: String = chars[i..].iter().collect();
            let rest = rest.trim_start();
            let next = rest.chars().next();
            // `sum by (...) (...)`: an aggregation, like `sum(...)`.
            let aggregation =
                GROUPINGS.iter().any(|g| rest.strip_prefix(g).is_some_and(|after| after.trim_start().starts_with('(')));
            if GROUPINGS.contains(&word.as_str()) {
                // Skip the label list.
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                continue;
            }
            if next != Some('(') && !aggregation && !KEYWORDS.contains(&word.as_str()) {
                names.push(word);
            }
            continue;
        }
        if c.is_ascii_digit() {
            // Numbers, durations (5m) and exponents: not names.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    names
}

#[test]
fn query_names_are_told_from_functions_labels_and_groupings() {
    assert_eq!(
        metric_names("sum by (instance, memwatch_cache) (rate(memwatch_cache_misses_total{a=\"x\"}[5m])) / 2 > 0.5"),
        ["memwatch_cache_misses_total"]
    );
    assert_eq!(
        metric_names("count(memwatch_target_state{job=~\"$job\"} == 0) or vector(0)"),
        ["memwatch_target_state"]
    );
    assert_eq!(metric_names("up{job=\"memwatch\"} == 0"), ["up"]);
}
