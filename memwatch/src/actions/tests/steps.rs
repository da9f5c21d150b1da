//! The cleanup steps other than signals: reclaim, http and exec, applied
//! off the loop by the pass workers, their outcomes and what they freed in
//! the incident record.
use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::PathBuf,
    thread::JoinHandle,
};

use rustix::process::Signal;

use super::*;
use crate::config::cleanup::{CleanupStep, HttpEndpoint};

fn with_steps(steps: Vec<CleanupStep>) -> PolicySettings {
    let mut s = settings();
    s.actions.cleanup = steps;
    s
}

fn only(performed: &[Performed]) -> &Performed {
    assert_eq!(performed.len(), 1, "{performed:#?}");
    &performed[0]
}

#[test]
fn reclaim_asks_for_the_excess_above_warning_off_the_loop_and_the_pass_waits_for_it() {
    let mut h = Harness::new(with_steps(vec![CleanupStep::Reclaim]), false);
    h.write_file("memory.reclaim", "");
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    let pending = h.take_performed();
    assert_eq!((only(&pending).record.action, only(&pending).record.outcome), (ActionKind::Reclaim, Outcome::Pending));
    // The next reading while the step runs judges nothing and starts nothing.
    let done = h.finish_pass();
    let record = &only(&done).record;
    assert_eq!(record.outcome, Outcome::Ok, "{record:?}");
    // 91 MiB used, warning at 80 MiB of the 100 MiB limit: 11 MiB asked.
    assert_eq!(h.file("memory.reclaim"), (11 * MIB).to_string());
    assert!(record.detail.starts_with("memory.reclaim asked for 11.0 MiB, freed 0 B"), "{}", record.detail);
    assert_eq!(record.freed_bytes, Some(0), "the fixture's usage did not fall: nothing freed, nothing claimed");
    assert!(h.signals().is_empty(), "no signal in a reclaim-only pass");

    h.step(91, Level::Critical); // pass_wait after the step was done: judged, pass 2 starts
    assert_eq!(only(&h.take_performed()).record.outcome, Outcome::Pending);
    h.finish_pass();
    h.step(40, Level::Warning);
    h.step(40, Level::Normal);
    h.shutdown(h.t + 1.0);
    let incident = &h.incidents()[0];
    assert_eq!(kinds(incident)[..2], [(ActionKind::Reclaim, Outcome::Ok), (ActionKind::Reclaim, Outcome::Ok)]);
}

#[test]
fn a_pass_under_way_is_not_judged_until_its_steps_are_done() {
    let mut h = Harness::new(with_steps(vec![CleanupStep::Reclaim]), false);
    h.write_file("memory.reclaim", "");
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    h.take_performed();
    // Readings go on while the pass runs; none judges it or starts another.
    h.step(91, Level::Critical);
    h.step(91, Level::Critical);
    assert!(h.take_performed().is_empty(), "nothing decided while the pass is under way");
    h.finish_pass();
    h.step(91, Level::Critical);
    assert_eq!(only(&h.take_performed()).record.action, ActionKind::Reclaim, "judged, then pass 2");
}

#[test]
fn without_memory_reclaim_the_step_says_so_once_and_is_left_out() {
    let mut h = Harness::new(with_steps(vec![CleanupStep::Reclaim]), false);
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    let first = h.take_performed();
    assert_eq!(only(&first).record.outcome, Outcome::Skipped);
    assert!(only(&first).record.detail.contains("has no memory.reclaim"), "{}", only(&first).record.detail);
    h.step(91, Level::Critical); // pass 2
    let second = h.take_performed();
    assert!(only(&second).record.detail.starts_with("no cleanup step applies"), "{second:#?}");
    assert!(h.signals().is_empty());
}

/// A loopback server answering one request with `response`, calling
/// `on_request` first (to "free" memory as a service would). Returns its
/// endpoint and the request head it got.
fn serve_once(
    response: &'static str,
    on_request: impl FnOnce() + Send + 'static,
) -> (HttpEndpoint, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        while reader.read_line(&mut head).unwrap() > 2 && !head.ends_with("\r\n\r\n") {}
        on_request();
        (&stream).write_all(response.as_bytes()).unwrap();
        head
    });
    (HttpEndpoint::Loopback { host: "127.0.0.1".into(), port, path: "/health/gc".into() }, server)
}

fn current_file(h: &Harness) -> PathBuf {
    h.root.path().join("app.slice/app.service/memory.current")
}

#[test]
fn the_http_step_posts_to_the_service_and_records_its_answer_and_what_it_freed() {
    let mut h = Harness::new(settings(), false);
    let current = current_file(&h);
    let (endpoint, server) = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"freed\":12345}", move || {
        std::fs::write(current, (71 * MIB).to_string()).unwrap();
    });
    h.settings.actions.cleanup = vec![CleanupStep::Http { endpoint, timeout_secs: 5.0 }];
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    let done = h.finish_pass();
    let head = server.join().unwrap();
    assert!(head.starts_with("POST /health/gc HTTP/1.1\r\n"), "{head}");
    assert!(head.to_lowercase().contains("content-length: 0"), "{head}");
    let record = &only(&done).record;
    assert_eq!((record.action, record.outcome), (ActionKind::Http, Outcome::Ok), "{record:?}");
    assert!(record.detail.contains(": 200 {\"freed\":12345} (freed 20.0 MiB)"), "{}", record.detail);
    assert_eq!(record.freed_bytes, Some(20 * MIB as i64), "measured on memory.current around the call");
}

#[test]
fn an_http_redirect_is_not_followed_and_counts_as_a_failure() {
    let mut h = Harness::new(settings(), false);
    let (endpoint, _server) =
        serve_once("HTTP/1.1 302 Found\r\nlocation: http://192.0.2.1/\r\ncontent-length: 0\r\n\r\n", || {});
    h.settings.actions.cleanup = vec![CleanupStep::Http { endpoint, timeout_secs: 5.0 }];
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    let record = only(&h.finish_pass()).record.clone();
    assert_eq!(record.outcome, Outcome::Failed);
    assert!(record.detail.contains("302 (redirects are not followed)"), "{}", record.detail);
}

#[test]
fn steps_run_in_order_and_a_failed_one_does_not_stop_the_next() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = HttpEndpoint::Loopback { host: "127.0.0.1".into(), port: closed, path: "/gc".into() };
    let mut h = Harness::new(
        with_steps(vec![
            CleanupStep::Http { endpoint, timeout_secs: 2.0 },
            CleanupStep::Signal { signal: Signal::USR1 },
        ]),
        false,
    );
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    // The pass runs on a worker: a refused connect fails at once, so the
    // signal may already be out here. The order the steps were recorded in
    // is the order they ran in.
    let done = h.finish_pass();
    let steps: Vec<(ActionKind, Outcome)> = done.iter().map(|p| (p.record.action, p.record.outcome)).collect();
    assert_eq!(steps, [(ActionKind::Http, Outcome::Failed), (ActionKind::Signal, Outcome::Ok)]);
    assert!(done[0].record.detail.contains("connect"), "{}", done[0].record.detail);
    assert_eq!(h.signals(), [(100, Signal::USR1)]);
}

#[test]
fn the_exec_step_runs_the_command_with_the_target_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    let script = format!("env > {}; echo trimmed", env_file.display());
    let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), script];
    let mut h = Harness::new(with_steps(vec![CleanupStep::Exec { argv, timeout_secs: 5.0 }]), false);
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    let record = only(&h.finish_pass()).record.clone();
    assert_eq!((record.action, record.outcome), (ActionKind::Exec, Outcome::Ok), "{record:?}");
    assert!(record.detail.contains("exit status 0: trimmed"), "{}", record.detail);
    let env = std::fs::read_to_string(env_file).unwrap();
    for line in [
        format!("MEMWATCH_TARGET={KEY}"),
        "MEMWATCH_LEVEL=critical".to_owned(),
        format!("MEMWATCH_USAGE_BYTES={}", 91 * MIB),
        format!("MEMWATCH_LIMIT_BYTES={LIMIT}"),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in:\n{env}");
    }
    assert!(!env.contains("CARGO"), "the daemon's own environment is not passed on:\n{env}");
}

#[test]
fn a_dry_run_pass_runs_nothing_and_says_what_it_would_do() {
    let argv = vec!["/bin/false".to_owned()];
    let mut h =
        Harness::new(with_steps(vec![CleanupStep::Reclaim, CleanupStep::Exec { argv, timeout_secs: 1.0 }]), true);
    h.write_file("memory.reclaim", "");
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    let performed = h.take_performed();
    let steps: Vec<(ActionKind, Outcome)> = performed.iter().map(|p| (p.record.action, p.record.outcome)).collect();
    assert_eq!(steps, [(ActionKind::Reclaim, Outcome::DryRun), (ActionKind::Exec, Outcome::DryRun)]);
    assert!(performed[1].record.detail.contains("would run /bin/false"));
    assert_eq!(h.file("memory.reclaim"), "", "nothing written");
}

#[test]
fn a_target_gone_while_its_pass_runs_is_closed_once_the_pass_is_done() {
    let mut h = Harness::new(with_steps(vec![CleanupStep::Reclaim]), false);
    h.write_file("memory.reclaim", "");
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    h.tick_without_target();
    assert!(h.incidents().is_empty(), "closed while its pass was still being applied");
    h.finish_pass();
    h.tick_without_target();
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].end, IncidentEnd::Gone);
    assert_eq!(kinds(&incidents[0]), [(ActionKind::Reclaim, Outcome::Ok)], "the outcome, not `pending`");
}
