//! Requested cleanups (`POST /health/gc`): the daemon's pipeline and
//! executor borrowed by `Responder`, answered through `PendingCleanups` as
//! the loop does, against a fixture cgroupfs and a fake signaller, on a
//! fake clock. Levels come from the engine (the default thresholds of an
//! `app` policy with a 100 MiB limit); each step says which it expects.
use std::{
    collections::HashSet,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Instant,
};

use rustix::process::Signal;
use tokio::sync::{mpsc::UnboundedReceiver, oneshot};

use super::{Daemon, requests::Responder};
use crate::{
    actions::{
        Executor, PassDone, Readiness, Signaller,
        incident_log::{IncidentLog, read_all},
        sys::{ActError, throttle_state::Throttles},
    },
    api::control::{CleanupReport, ControlError, ControlRequest, PendingCleanups},
    cache::CacheRegistry,
    config::Config,
    engine::{EngineOptions, Level},
    model::{
        cgroup::KnobReading,
        incident::{ActionKind, Incident, IncidentEnd, Outcome},
        runtime::Runtime,
        sample::{Counters, ProcessId, ProcessInfo, ProcessSample},
        signals::SignalMasks,
        target_key::TargetKey,
        working_set::CgroupMemory,
    },
    pipeline::{Facts, Pipeline},
    sources::cgroupfs::{CgroupFs, tests::fixture},
};

const MIB: u64 = 1 << 20;
const DAEMON: u32 = 999;
const CGROUP: &str = "/app.slice/app.service";
const KEY: &str = "cgroup:/app.slice/app.service";

/// Shared, as the pass workers get copies of it.
#[derive(Clone, Default)]
struct Fake {
    sent: Arc<Mutex<Vec<(u32, Signal)>>>,
}

impl Signaller for Fake {
    fn send(&mut self, id: ProcessId, signal: Signal) -> Result<(), ActError> {
        self.sent.lock().unwrap().push((id.pid, signal));
        Ok(())
    }
}

/// The fixture cgroupfs for knobs; signal masks as the test says.
struct FixtureFacts {
    cgroupfs: CgroupFs,
    unhandled: HashSet<u32>,
}

impl Facts for FixtureFacts {
    fn cgroup_limit(&mut self, _cgroup: &str) -> Option<u64> {
        None
    }

    fn cgroup_memory(&mut self, cgroup: &str) -> Option<CgroupMemory> {
        self.cgroupfs.memory(cgroup)
    }

    fn knob(&mut self, cgroup: &str) -> KnobReading {
        self.cgroupfs.knob_reading(cgroup)
    }

    fn signals(&mut self, id: ProcessId) -> Option<SignalMasks> {
        let caught = if self.unhandled.contains(&id.pid) { 0 } else { 1 << (Signal::USR1.as_raw() - 1) };
        Some(SignalMasks { caught, ..Default::default() })
    }

    fn runtime(&mut self, _id: ProcessId) -> Option<Runtime> {
        None
    }
}

struct Harness {
    root: tempfile::TempDir,
    _state: tempfile::TempDir,
    log: PathBuf,
    daemon: Daemon<Fake, FixtureFacts>,
    passes_done: UnboundedReceiver<PassDone>,
    /// (pid, RSS MiB) of the target's processes.
    members: Vec<(u32, u64)>,
    t: f64,
}

/// The test target's policy.
fn app_policy(protect: bool, dry_run: bool) -> String {
    format!(
        r#"
        [[policy]]
        name = "app"
        match = {{ cgroup = "{CGROUP}" }}
        limit = "100MiB"
        protect = {protect}
        dry_run = {dry_run}
        [policy.leak]
        enabled = false
        [policy.actions]
        pass_wait = "1s"
        cooldown = "5s"
        cleanup = [{{ signal = "SIGUSR1" }}]
        "#
    )
}

fn config(protect: bool, dry_run: bool, global_dry_run: bool) -> Config {
    Config::parse(&format!("[actions]\ndry_run = {global_dry_run}\n{}", app_policy(protect, dry_run))).unwrap()
}

fn member(pid: u32, rss_mib: u64) -> (u32, u64) {
    (pid, rss_mib)
}

impl Harness {
    fn new(config: Config) -> Self {
        let root = fixture(&[
            ("cgroup.controllers", "memory\n"),
            ("app.slice/app.service/memory.high", "max\n"),
            ("app.slice/app.service/memory.current", "0\n"),
        ]);
        let state = tempfile::tempdir().unwrap();
        let log = state.path().join("incidents.jsonl");
        let cgroupfs = CgroupFs::new(root.path());
        let mut executor = Executor::new(
            cgroupfs.clone(),
            Throttles::load(state.path().join("throttles.json")).unwrap(),
            Fake::default(),
            Readiness::new(),
            Some(IncidentLog::new(&log, 1 << 20, 2)),
        );
        let pipeline = Pipeline::new(config, 16 << 30, EngineOptions::default(), DAEMON);
        let facts = FixtureFacts { cgroupfs, unhandled: HashSet::new() };
        let passes_done = executor.take_pass_results().unwrap();
        let daemon = Daemon { pipeline, executor, facts, recorder: None, capped: false };
        Self { root, _state: state, log, daemon, passes_done, members: vec![member(100, 0)], t: 1000.0 }
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.path().join("app.slice/app.service").join(name)).unwrap().trim().to_owned()
    }

    /// One reading: the first member uses `usage_mib`; the engine must say `level`.
    fn step(&mut self, usage_mib: u64, level: Level) {
        self.t += 1.0;
        self.members[0].1 = usage_mib;
        let processes: Vec<ProcessSample> = self
            .members
            .iter()
            .map(|&(pid, rss)| ProcessSample {
                id: ProcessId { pid, start_time: 7 },
                info: Arc::new(ProcessInfo {
                    comm: "app".into(),
                    cgroup: Some(CGROUP.into()),
                    unit: Some("app.service".into()),
                    ..Default::default()
                }),
                counters: Counters { rss_anon: rss * MIB, ..Default::default() },
            })
            .collect();
        let usage: u64 = self.members.iter().map(|m| m.1 * MIB).sum();
        std::fs::write(self.root.path().join("app.slice/app.service/memory.current"), usage.to_string()).unwrap();
        self.daemon.read(self.t, Instant::now(), &processes);
        assert_eq!(self.daemon.pipeline.planner().level(&TargetKey::from(KEY)), level, "at {usage_mib} MiB");
    }

    /// A `POST /health/gc` between readings, as the daemon loop serves it.
    fn request(&mut self, pending: &mut PendingCleanups, target: Option<&str>) -> Answer {
        let caches = CacheRegistry::default();
        // Between readings: half a tick after the last one.
        let mut responder = Responder::new(&mut self.daemon, &caches, self.t + 0.5);
        let (reply, answer) = oneshot::channel();
        let request = ControlRequest::Cleanup { target: target.map(str::to_owned), reply };
        pending.serve(request, &mut responder, Instant::now());
        answer
    }

    /// A reading, then what the loop does after each reading.
    fn step_and_settle(&mut self, pending: &mut PendingCleanups, usage_mib: u64, level: Level) {
        self.step(usage_mib, level);
        pending.settle(Instant::now(), |key, at| self.daemon.pipeline.planner().measured(key, at));
    }

    fn signals(&self) -> Vec<(u32, Signal)> {
        self.daemon.executor.signaller().sent.lock().unwrap().clone()
    }

    fn incidents(&self) -> Vec<Incident> {
        read_all(&self.log).unwrap()
    }
}

type Answer = oneshot::Receiver<Result<CleanupReport, ControlError>>;

fn answered(answer: &mut Answer) -> Option<CleanupReport> {
    answer.try_recv().ok().map(|r| r.expect("a report, not an error"))
}

#[test]
fn a_requested_cleanup_signals_now_and_answers_with_what_the_re_measure_freed() {
    let mut h = Harness::new(config(false, false, false));
    let mut pending = PendingCleanups::default();
    h.step(50, Level::Normal);
    let mut answer = h.request(&mut pending, Some(KEY));
    assert_eq!(h.signals(), [(100, Signal::USR1)], "sent at once, between readings");
    assert_eq!(answered(&mut answer), None, "the answer waits for the pass's re-measure");

    h.step_and_settle(&mut pending, 30, Level::Normal);
    assert_eq!(answered(&mut answer), None, "half a second after the signal: pass_wait is 1 s");
    h.step_and_settle(&mut pending, 30, Level::Normal);
    let report = answered(&mut answer).expect("answered after the re-measure");
    assert!(!report.dry_run);
    let t = &report.targets[0];
    assert_eq!((t.target.as_str(), t.outcome, t.measured), (KEY, Outcome::Ok, true));
    assert_eq!((t.freed_bytes, report.freed_bytes), (20 * MIB, 20 * MIB));
    assert!(t.actions[0].starts_with("SIGUSR1 (pass 1) to 1 of 1"), "{:?}", t.actions);
    assert_eq!(h.signals().len(), 1, "normal after the pass: no second pass, no throttle");
    assert_eq!(h.file("memory.high"), "max");

    // On record like any cleanup: one episode, the pass with what it freed.
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].end, IncidentEnd::Recovered);
    let pass = &incidents[0].actions[0];
    assert_eq!((pass.action, pass.outcome, pass.freed_bytes), (ActionKind::Signal, Outcome::Ok, Some(20 * MIB as i64)));
    assert_eq!(Some(pass.t), t.sent_at, "the answer and the incident name the same pass");

    // The cooldown holds for requests too: nothing sent, answered at once.
    let mut again = h.request(&mut pending, Some(KEY));
    let report = answered(&mut again).expect("nothing to wait for");
    assert_eq!(report.targets[0].outcome, Outcome::Skipped);
    assert!(report.targets[0].actions[0].starts_with("cooldown"), "{report:?}");
    assert_eq!(h.signals().len(), 1);
}

#[test]
fn a_request_on_a_critical_target_runs_the_whole_procedure_on_the_following_ticks() {
    let mut h = Harness::new(config(false, false, false));
    let mut pending = PendingCleanups::default();
    // Warning: the engine would not act yet; the operator does.
    h.step(85, Level::Warning);
    let mut answer = h.request(&mut pending, None);
    assert_eq!(h.signals().len(), 1, "no name: every target at warning or above");
    h.step_and_settle(&mut pending, 91, Level::Critical);
    h.step_and_settle(&mut pending, 91, Level::Critical);
    let report = answered(&mut answer).unwrap();
    assert_eq!(report.targets[0].freed_bytes, 0, "it grew: nothing freed");
    assert!(report.targets[0].measured);
    // Critical now: the next passes and the throttle follow as for a crossing.
    for _ in 0..2 {
        h.step_and_settle(&mut pending, 91, Level::Critical);
    }
    assert_eq!(h.signals().len(), 3);
    assert_ne!(h.file("memory.high"), "max", "throttled after the last pass");
}

#[test]
fn without_a_name_normal_targets_are_left_alone_and_an_unknown_name_is_an_error() {
    let mut h = Harness::new(config(false, false, false));
    let mut pending = PendingCleanups::default();
    h.step(10, Level::Normal);
    let report = answered(&mut h.request(&mut pending, None)).unwrap();
    assert!(report.targets.is_empty() && report.note.is_some(), "{report:?}");
    let mut unknown = h.request(&mut pending, Some("cgroup:/nope"));
    assert_eq!(unknown.try_recv().unwrap(), Err(ControlError::UnknownTarget("cgroup:/nope".into())));
    assert!(h.signals().is_empty());
}

#[test]
fn a_dry_run_request_reports_would_actions_and_signals_nothing() {
    for global in [true, false] {
        let mut h = Harness::new(config(false, !global, global));
        let mut pending = PendingCleanups::default();
        h.step(85, Level::Warning);
        let report = answered(&mut h.request(&mut pending, Some(KEY))).expect("a dry run is answered at once");
        assert!(report.dry_run);
        let t = &report.targets[0];
        assert_eq!(t.outcome, Outcome::DryRun);
        assert!(t.actions[0].starts_with("would send SIGUSR1"), "{:?}", t.actions);
        assert!(h.signals().is_empty(), "no signal in a dry run");
        assert_eq!(h.file("memory.high"), "max");
    }
}

#[test]
fn after_a_reload_no_request_acts_until_the_targets_are_judged_under_the_new_config() {
    let mut h = Harness::new(config(true, false, false));
    let mut pending = PendingCleanups::default();
    h.step(30, Level::Normal);
    // A policy inserted at the top: the protected target's index from the
    // last reading (0) now names a policy that would signal it.
    let inserted = Config::parse(&format!(
        r#"
        [[policy]]
        name = "other"
        match = {{ unit = "other.service" }}
        [policy.actions]
        cleanup = [{{ signal = "SIGUSR1" }}]
        {}"#,
        app_policy(true, false)
    ))
    .unwrap();
    h.daemon.pipeline.set_config(inserted);
    let answer = h.request(&mut pending, Some(KEY)).try_recv().unwrap();
    assert!(matches!(&answer, Err(ControlError::Unavailable(why)) if why.contains("reloaded")), "{answer:?}");
    assert!(h.signals().is_empty());
    h.step(30, Level::Normal);
    let report = answered(&mut h.request(&mut pending, Some(KEY))).unwrap();
    assert_eq!(report.targets[0].outcome, Outcome::Refused, "still protected: {report:?}");
    assert!(h.signals().is_empty());
}

#[test]
fn protected_targets_and_processes_without_a_handler_are_refused() {
    let mut h = Harness::new(config(true, false, false));
    let mut pending = PendingCleanups::default();
    h.step(91, Level::Critical);
    let report = answered(&mut h.request(&mut pending, Some(KEY))).unwrap();
    assert_eq!(report.targets[0].outcome, Outcome::Refused);
    assert!(h.signals().is_empty());

    let mut h = Harness::new(config(false, false, false));
    h.members = vec![member(1, 10), member(DAEMON, 10), member(100, 10)];
    h.daemon.facts.unhandled.insert(100);
    h.step(30, Level::Normal);
    let report = answered(&mut h.request(&mut pending, Some(KEY))).unwrap();
    assert_eq!(report.targets[0].outcome, Outcome::Refused, "{report:?}");
    assert!(h.signals().is_empty(), "pid 1, memwatch and a process the signal would kill");
}

#[test]
fn the_answer_says_dry_run_whenever_the_config_says_so_whatever_the_outcome() {
    // Protected and globally dry: refused, and still nothing would change.
    let mut h = Harness::new(config(true, false, true));
    let mut pending = PendingCleanups::default();
    h.step(91, Level::Critical);
    let report = answered(&mut h.request(&mut pending, Some(KEY))).unwrap();
    assert_eq!(report.targets[0].outcome, Outcome::Refused);
    assert!(report.dry_run, "[actions] dry_run = true: nothing is ever changed");
    // Nothing under pressure: still the config's word.
    let mut h = Harness::new(config(false, false, true));
    h.step(10, Level::Normal);
    let report = answered(&mut h.request(&mut pending, None)).unwrap();
    assert!(report.targets.is_empty() && report.dry_run);
    // Live config: false.
    let mut h = Harness::new(config(false, false, false));
    h.step(10, Level::Normal);
    assert!(!answered(&mut h.request(&mut pending, None)).unwrap().dry_run);
}

#[test]
fn at_exit_a_pass_under_way_finishes_and_its_outcome_is_in_the_incident() {
    let marks = tempfile::tempdir().unwrap();
    let started = marks.path().join("started");
    let config = Config::parse(&format!(
        r#"
        [[policy]]
        name = "app"
        match = {{ cgroup = "{CGROUP}" }}
        limit = "100MiB"
        [policy.leak]
        enabled = false
        [policy.actions]
        cleanup = [{{ exec = ["/bin/sh", "-c", "touch {started}; sleep 0.3"] }}]
        "#,
        started = started.display()
    ))
    .unwrap();
    let mut h = Harness::new(config);
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    assert_eq!(h.daemon.pipeline.planner().passes_running(), 1, "the exec step runs off the loop");
    // memwatch stops while the command runs.
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while !started.exists() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    h.daemon.shutdown(&mut h.passes_done);
    let incidents = h.incidents();
    let exec = incidents[0].actions.iter().find(|a| a.action == ActionKind::Exec).expect("the exec step's record");
    assert_eq!(exec.outcome, Outcome::Ok, "{exec:?}");
    assert!(exec.detail.contains("sleep 0.3: exit status 0"), "{}", exec.detail);
}
