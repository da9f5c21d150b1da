//! Requested cleanups (`POST /health/gc`): the executor borrowed by
//! `ExecutorControl`, answered through `PendingCleanups` as the daemon loop
//! does, against the fixture cgroupfs and the fake signaller.
use std::time::Instant;

use rustix::process::Signal;
use tokio::sync::oneshot;

use super::{Harness, KEY, MIB, member, settings};
use crate::{
    actions::{
        control::ExecutorControl,
        executor::{Observed, Tick},
        incident::{ActionKind, IncidentEnd, Outcome},
    },
    api::control::{CleanupReport, ControlError, ControlRequest, PendingCleanups},
    cache::CacheRegistry,
    engine::Level,
};

type Answer = oneshot::Receiver<Result<CleanupReport, ControlError>>;

impl Harness {
    /// A `POST /health/gc` between ticks, as the daemon loop serves it.
    fn request(&mut self, pending: &mut PendingCleanups, target: Option<&str>) -> Answer {
        let usage: u64 = self.members.iter().map(|m| m.rss).sum();
        let observed = [Observed {
            key: KEY,
            policy: "app",
            settings: &self.settings,
            cgroup: Some(super::CGROUP),
            usage_bytes: usage,
            limit_bytes: super::LIMIT,
            members: &self.members,
            protected_inside: self.protected_inside,
        }];
        let caches = CacheRegistry::default();
        // Between readings: half a tick after the last one.
        let tick = Tick { t: self.t + 0.5, started: Instant::now() };
        let mut control = ExecutorControl { executor: &mut self.exec, observed: &observed, caches: &caches, tick };
        let (reply, answer) = oneshot::channel();
        let request = ControlRequest::Cleanup { target: target.map(str::to_owned), reply };
        pending.serve(request, &mut control, Instant::now());
        answer
    }

    /// A tick, then what the loop does after each reading.
    fn step_and_settle(&mut self, pending: &mut PendingCleanups, usage_mib: u64, level: Level) {
        self.step(usage_mib, level);
        pending.settle(Instant::now(), |key, at| self.exec.measured(key, at));
    }
}

fn answered(answer: &mut Answer) -> Option<CleanupReport> {
    answer.try_recv().ok().map(|r| r.expect("a report, not an error"))
}

#[test]
fn a_requested_cleanup_signals_now_and_answers_with_what_the_re_measure_freed() {
    let mut h = Harness::new(settings(), false);
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
    assert_eq!((t.target.as_str(), t.outcome.as_str(), t.measured), (KEY, "ok", true));
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
    assert_eq!(report.targets[0].outcome, "skipped");
    assert!(report.targets[0].actions[0].starts_with("cooldown"), "{report:?}");
    assert_eq!(h.signals().len(), 1);
}

#[test]
fn a_request_on_a_critical_target_runs_the_whole_procedure_on_the_following_ticks() {
    let mut h = Harness::new(settings(), false);
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
    let mut h = Harness::new(settings(), false);
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
        let mut s = settings();
        s.dry_run = !global;
        let mut h = Harness::new(s, global);
        let mut pending = PendingCleanups::default();
        h.step(85, Level::Warning);
        let report = answered(&mut h.request(&mut pending, Some(KEY))).expect("a dry run is answered at once");
        assert!(report.dry_run);
        let t = &report.targets[0];
        assert_eq!(t.outcome, "dry_run");
        assert!(t.actions[0].starts_with("would send SIGUSR1"), "{:?}", t.actions);
        assert!(h.signals().is_empty(), "no signal in a dry run");
        assert_eq!(h.file("memory.high"), "max");
    }
}

#[test]
fn protected_targets_and_processes_without_a_handler_are_refused() {
    let mut s = settings();
    s.protect = true;
    let mut h = Harness::new(s, false);
    let mut pending = PendingCleanups::default();
    h.step(91, Level::Critical);
    let report = answered(&mut h.request(&mut pending, Some(KEY))).unwrap();
    assert_eq!(report.targets[0].outcome, "refused");
    assert!(h.signals().is_empty());

    let mut h = Harness::new(settings(), false);
    h.members = vec![member(1, 10), member(super::DAEMON, 10), member(100, 10)];
    h.exec.hands_mut().signaller.unhandled.insert(100);
    h.step(30, Level::Normal);
    let report = answered(&mut h.request(&mut pending, Some(KEY))).unwrap();
    assert_eq!(report.targets[0].outcome, "refused", "{report:?}");
    assert!(h.signals().is_empty(), "pid 1, memwatch and a process the signal would kill");
}
