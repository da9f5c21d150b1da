//! The Node.js example service (examples/node-service) with memwatch, as
//! its README describes: the service's cache grows with requests until the
//! process is at critical; memwatch's `http` step POSTs to its
//! /health/gc; the service clears the cache and collects; the incident
//! record shows the call and what it freed, measured by memwatch.
use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    process::Command,
    time::Duration,
};

use memwatch::{
    actions::incident_log::read_all,
    model::incident::{ActionKind, Outcome},
};
use memwatch_tests::{
    daemon::{Daemon, scenario_dir, wait_until},
    figure,
    real::{NODE, Spawned, config, installed},
};

const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/node-service/server.js");
const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/node-service/memwatch-policy.toml");
const MIB: u64 = 1 << 20;

/// One HTTP/1.1 exchange on loopback: (status, body).
fn request(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_owned()))
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn the_node_example_is_cleaned_through_its_own_endpoint_and_the_incident_shows_what_it_freed() {
    if !installed(NODE, "the_node_example_is_cleaned_through_its_own_endpoint") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut service =
        Spawned::start("node-service", Command::new(NODE).args(["--expose-gc", SERVER]).env("PORT", port.to_string()));
    let up = wait_until(Duration::from_secs(20), || request(port, "GET", "/health/metrics"));
    let (status, body) = up.expect("the example service never answered");
    assert_eq!(status, 200, "{body}");
    let idle_rss = json(&body)["rss"].as_u64().unwrap();

    // The example's policy, with this run's port and a limit that puts the
    // service at critical once its cache holds ~96 MiB.
    let limit = idle_rss + 120 * MIB;
    let policy = std::fs::read_to_string(POLICY)
        .expect("the example policy")
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{port}"))
        .replace("limit = \"512MiB\"", &format!("limit = {limit}"))
        .replace("exe = \"/usr/bin/node\"", &format!("exe = \"{NODE}\", process = \"^node$\""));
    assert!(policy.contains(&format!("127.0.0.1:{port}/health/gc")), "the example policy has no http step:\n{policy}");
    let dir = scenario_dir("node-service");
    let log = dir.join("memwatch.log");
    let daemon = Daemon::start(&config(&dir, &policy), &log);

    // Requests grow the cache (1 MiB per new key) until memwatch's step
    // has been and cleared it.
    let mut requests = 0;
    let called = wait_until(Duration::from_secs(60), || {
        for _ in 0..8 {
            requests += 1;
            request(port, "GET", &format!("/work?key=k{requests}"));
        }
        let metrics = json(&request(port, "GET", "/health/metrics")?.1);
        (metrics["gcRuns"].as_u64()? > 0).then_some(metrics)
    });
    let metrics = called.unwrap_or_else(|| panic!("memwatch never called /health/gc:\n{}", daemon.log_text()));
    let service_freed = metrics["lastGc"]["freedBytes"].as_u64().unwrap();
    assert!(metrics["lastGc"]["cleared"]["entries"].as_u64().unwrap() > 50, "{metrics}");
    std::thread::sleep(Duration::from_secs(2));
    daemon.stop();
    assert!(service.is_running(), "the service died");

    let incidents = read_all(&dir.join("incidents.jsonl")).unwrap();
    let incident =
        incidents.iter().find(|i| i.policy == "node-service").expect("an incident of the node-service policy");
    let step = incident.actions.iter().find(|a| a.action == ActionKind::Http).expect("an http step record");
    figure("node-service", "requests before the call", requests);
    figure("node-service", "http step record", &step.detail);
    figure(
        "node-service",
        "freed by the http step, memwatch's measure (MiB)",
        step.freed_bytes.unwrap_or(0) / MIB as i64,
    );
    figure("node-service", "freed, the service's own answer (MiB)", service_freed / MIB);
    assert_eq!(step.outcome, Outcome::Ok, "{step:?}");
    assert!(step.detail.contains(&format!("POST http://127.0.0.1:{port}/health/gc: 200")), "{}", step.detail);
    let freed = step.freed_bytes.expect("the step measured what it freed");
    assert!(freed >= 48 * MIB as i64, "the http step freed {freed} bytes by memwatch's measure: {step:?}");
    assert!(
        incident.actions.iter().all(|a| a.action != ActionKind::Signal),
        "no signal in the example's pass: {:#?}",
        incident.actions
    );
}
