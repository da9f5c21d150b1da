//! Real runtimes from Debian's packages in critical targets, under a policy
//! that inherits [defaults]' steps and under one that asks for the very
//! signal the runtime uses for something else: node (and a renamed copy of
//! its binary) never gets SIGUSR1, which opens its inspector on port 9229;
//! a JVM never gets SIGHUP, on which it exits. Each refusal is in the
//! incident record. Controls first: each runtime really does what the guard
//! fears, so the test would fail if the guard did not hold.
use std::{path::Path, process::Command, time::Duration};

use memwatch::{
    actions::incident_log::read_all,
    model::incident::{ActionKind, Incident, Outcome},
};
use memwatch_tests::{
    daemon::{Daemon, scenario_dir, wait_until},
    figure,
    real::{JAVA, NODE, Spawned, config, critical_policy, installed, listening_on},
};

const INSPECTOR_PORT: u16 = 9229;
const IDLE_JS: &str = "setInterval(() => {}, 1000)";

fn node(name: &str, binary: &str) -> Spawned {
    let spawned = Spawned::start(name, Command::new(binary).args(["-e", IDLE_JS]));
    spawned.wait_catching(libc::SIGUSR1);
    spawned
}

fn jvm(name: &str, binary: &str, args: &[&str]) -> Spawned {
    let spawned = Spawned::start(name, Command::new(binary).args(args));
    spawned.wait_catching(libc::SIGHUP);
    // Let its heap settle before its RSS sets the test's limit.
    std::thread::sleep(Duration::from_secs(2));
    spawned
}

/// Runs the daemon on `policies` until every policy in `names` has acted
/// (an action line for it), then stops it: the episodes end and their
/// incidents are written.
fn run_until_acted(dir: &Path, policies: &str, names: &[&str]) -> Vec<Incident> {
    let log = dir.join("memwatch.log");
    let daemon = Daemon::start(&config(dir, policies), &log);
    let acted = wait_until(Duration::from_secs(30), || {
        let text = daemon.log_text();
        names
            .iter()
            .all(|n| text.lines().any(|l| l.contains("action") && l.contains(&format!("policy={n}"))))
            .then_some(())
    });
    assert!(acted.is_some(), "not every policy of {names:?} acted in 30 s:\n{}", daemon.log_text());
    daemon.stop();
    read_all(&dir.join("incidents.jsonl")).expect("the incident log")
}

fn incident<'a>(incidents: &'a [Incident], policy: &str) -> &'a Incident {
    incidents.iter().find(|i| i.policy == policy).unwrap_or_else(|| panic!("no incident of {policy}: {incidents:#?}"))
}

fn signal_records(incident: &Incident) -> Vec<(Outcome, String)> {
    incident.actions.iter().filter(|a| a.action == ActionKind::Signal).map(|a| (a.outcome, a.detail.clone())).collect()
}

#[test]
fn node_never_gets_sigusr1_from_memwatch_and_its_inspector_stays_closed() {
    let test = "node_never_gets_sigusr1_from_memwatch_and_its_inspector_stays_closed";
    if !installed(NODE, test) {
        return;
    }
    assert!(!listening_on(INSPECTOR_PORT), "something already listens on {INSPECTOR_PORT}: the test cannot tell");
    // Control: SIGUSR1 does open node's inspector.
    {
        let control = node("control node", NODE);
        control.send(libc::SIGUSR1);
        let opened = wait_until(Duration::from_secs(10), || listening_on(INSPECTOR_PORT).then_some(()));
        assert!(opened.is_some(), "control: SIGUSR1 did not open port {INSPECTOR_PORT}: the check proves nothing");
    }
    let closed = wait_until(Duration::from_secs(10), || (!listening_on(INSPECTOR_PORT)).then_some(()));
    assert!(closed.is_some(), "the control node's inspector is still open");

    let dir = scenario_dir("runtimes-node");
    // node itself and a copy of its binary under another name: the guard
    // knows node by what the binary is (its exports), not by its name.
    let renamed = dir.join("api-server");
    std::fs::copy(NODE, &renamed).expect("copying node");
    let renamed = renamed.to_str().unwrap().to_owned();
    let mut plain = node("node", NODE);
    let mut copy = node("renamed node", &renamed);
    figure("runtimes: node", "RSS of node at start (KiB)", plain.rss() / 1024);

    // Round 1: a policy that names the service but sets no steps: it
    // inherits [defaults], which sends no signal.
    let inherit = critical_policy("node-inherits", NODE, plain.rss(), "");
    let incidents = run_until_acted(&dir, &inherit, &["node-inherits"]);
    let inherited = incident(&incidents, "node-inherits");
    assert!(signal_records(inherited).is_empty(), "[defaults] sent a signal: {inherited:#?}");
    assert!(!inherited.actions.is_empty(), "the episode recorded no step at all: {inherited:#?}");

    // Round 2: policies that ask for SIGUSR1 by name.
    let _ = std::fs::remove_file(dir.join("incidents.jsonl"));
    let ask = |name: &str, exe: &str, rss: u64| critical_policy(name, exe, rss, "cleanup = [{ signal = \"SIGUSR1\" }]");
    let policies = ask("node-usr1", NODE, plain.rss()) + &ask("renamed-usr1", &renamed, copy.rss());
    let incidents = run_until_acted(&dir, &policies, &["node-usr1", "renamed-usr1"]);
    for (policy, pid) in [("node-usr1", plain.pid()), ("renamed-usr1", copy.pid())] {
        let records = signal_records(incident(&incidents, policy));
        assert_eq!(records.len(), 1, "{policy}: {records:#?}");
        let (outcome, detail) = &records[0];
        assert_eq!(*outcome, Outcome::Refused, "{policy}: {detail}");
        assert!(detail.contains(&format!("pid {pid} is node: SIGUSR1 opens the V8 inspector")), "{policy}: {detail}");
        figure("runtimes: node", &format!("{policy} record"), detail);
    }
    assert!(plain.is_running() && copy.is_running(), "a node process died");
    assert!(!listening_on(INSPECTOR_PORT), "an inspector port opened: memwatch sent SIGUSR1");
}

#[test]
fn a_jvm_never_gets_sighup_from_memwatch_and_keeps_running() {
    let test = "a_jvm_never_gets_sighup_from_memwatch_and_keeps_running";
    if !installed(JAVA, test) {
        return;
    }
    let registry = ["-Xmx32m", "-m", "java.rmi/sun.rmi.registry.RegistryImpl", "0"];
    // Control: SIGHUP does stop a JVM.
    let mut control = jvm("control JVM", JAVA, &registry);
    control.send(libc::SIGHUP);
    let exited = wait_until(Duration::from_secs(20), || (!control.is_running()).then_some(()));
    assert!(exited.is_some(), "control: the JVM survived SIGHUP: the check proves nothing");

    let dir = scenario_dir("runtimes-jvm");
    let mut java = jvm("java", JAVA, &registry);
    // Another launcher of the same JRE, another name: a JVM all the same,
    // known by the libjvm.so it maps.
    let rmiregistry = JAVA.replace("/bin/java", "/bin/rmiregistry");
    let mut launcher = jvm("rmiregistry", &rmiregistry, &["-J-Xmx32m", "0"]);
    figure("runtimes: jvm", "RSS of java at start (KiB)", java.rss() / 1024);

    let inherit = critical_policy("jvm-inherits", JAVA, java.rss(), "");
    let incidents = run_until_acted(&dir, &inherit, &["jvm-inherits"]);
    assert!(signal_records(incident(&incidents, "jvm-inherits")).is_empty(), "[defaults] sent a signal");

    let _ = std::fs::remove_file(dir.join("incidents.jsonl"));
    let ask = |name: &str, exe: &str, rss: u64| critical_policy(name, exe, rss, "cleanup = [{ signal = \"SIGHUP\" }]");
    let policies = ask("java-hup", JAVA, java.rss()) + &ask("rmiregistry-hup", &rmiregistry, launcher.rss());
    let incidents = run_until_acted(&dir, &policies, &["java-hup", "rmiregistry-hup"]);
    for (policy, pid) in [("java-hup", java.pid()), ("rmiregistry-hup", launcher.pid())] {
        let records = signal_records(incident(&incidents, policy));
        assert_eq!(records.len(), 1, "{policy}: {records:#?}");
        let (outcome, detail) = &records[0];
        assert_eq!(*outcome, Outcome::Refused, "{policy}: {detail}");
        assert!(detail.contains(&format!("pid {pid} is jvm: SIGHUP runs the shutdown hooks")), "{policy}: {detail}");
        figure("runtimes: jvm", &format!("{policy} record"), detail);
    }
    assert!(java.is_running() && launcher.is_running(), "a JVM stopped: memwatch sent SIGHUP");
}
