//! The procedures end to end: passes, throttles, emergencies, kills, dry
//! runs, protection, leaks, shutdown, and what the view is handed.
use std::time::Duration;

use rustix::process::Signal;

use super::*;
use crate::engine::planner::{Plan, Why};

#[test]
fn critical_runs_three_passes_then_throttles_and_recovery_restores() {
    let mut h = Harness::new(settings(), false);
    h.step(50, Level::Normal);
    h.step(91, Level::Critical);
    assert_eq!(h.signals(), [(100, Signal::USR1)], "pass 1 at once, on the crossing reading");
    h.step(90, Level::Critical); // pass 1 freed 1 MiB, still at the threshold; pass 2
    h.step(90, Level::Critical); // pass 2 freed nothing; pass 3
    assert_eq!(h.signals().len(), 3);
    assert_eq!(h.file("memory.high"), "max", "no throttling before the passes are done");
    h.step(92, Level::Critical); // pass 3: grew 2 MiB, still critical: throttle
    assert_eq!(h.signals().len(), 3, "three passes, no more");
    let headroom = (LIMIT as f64 * 0.02) as u64;
    assert_eq!(h.file("memory.high"), (92 * MIB + headroom).to_string(), "just above current usage");
    assert!(std::fs::read_to_string(&h.state_file).unwrap().contains("\"original\": \"max\""));

    // Cooldown: still critical, but no new procedure for 5 s.
    for _ in 0..4 {
        h.step(92, Level::Critical);
    }
    assert_eq!(h.signals().len(), 3, "nothing during the cooldown");
    h.step(92, Level::Critical);
    assert_eq!(h.signals().len(), 4, "a new round after the cooldown");

    h.step(40, Level::Warning);
    h.step(40, Level::Normal);
    assert_eq!(h.file("memory.high"), "max", "recovery restores the original");
    assert!(!std::fs::read_to_string(&h.state_file).unwrap().contains("app.service"));
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    let incident = &incidents[0];
    assert_eq!(incident.end, IncidentEnd::Recovered);
    let freed: Vec<Option<i64>> =
        incident.actions.iter().filter(|a| a.action == ActionKind::Signal).map(|a| a.freed_bytes).collect();
    assert_eq!(freed, [Some(MIB as i64), Some(0), Some(-2 * (MIB as i64)), Some(52 * MIB as i64)]);
    assert_eq!(
        kinds(incident),
        [
            (ActionKind::Signal, Outcome::Ok),
            (ActionKind::Signal, Outcome::Ok),
            (ActionKind::Signal, Outcome::Ok),
            (ActionKind::Throttle, Outcome::Ok),
            (ActionKind::Signal, Outcome::Ok),
            (ActionKind::Restore, Outcome::Ok),
        ]
    );
    assert_eq!(incident.levels.len(), 3, "critical, warning, normal");
    assert_eq!(incident.peak_level, Level::Critical);
    assert!(incident.timeline.len() >= 12 && incident.timeline.len() <= 60);
    assert_eq!(incident.actions[0].applied_after_ms.map(|ms| ms < 50.0), Some(true));
}

#[test]
fn passes_stop_when_the_signal_frees_enough() {
    let mut h = Harness::new(settings(), false);
    h.step(91, Level::Critical);
    h.step(70, Level::Warning); // the pass worked
    h.step(30, Level::Warning);
    h.step(30, Level::Normal);
    assert_eq!(h.signals().len(), 1, "no second pass once below critical");
    assert_eq!(h.file("memory.high"), "max", "never throttled");
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].freed_bytes, 21 * MIB as i64);
    assert_eq!(kinds(&incidents[0]), [(ActionKind::Signal, Outcome::Ok)]);
}

#[test]
fn passes_stop_once_usage_is_under_the_threshold_though_the_level_lags() {
    let mut h = Harness::new(settings(), false);
    h.step(95, Level::Critical);
    h.step(50, Level::Critical); // hysteresis: the engine still says critical
    h.step(50, Level::Critical);
    assert_eq!(h.signals().len(), 1, "the first pass did its job");
    assert_eq!(h.file("memory.high"), "max");
}

#[test]
fn emergency_clamps_holds_not_ready_and_kills_the_largest_grower_when_allowed() {
    let mut s = settings();
    s.actions.kill = true;
    s.actions.kill_grace_secs = 2.0;
    let mut h = Harness::new(s, false);
    h.members = vec![member(100, 10), member(101, 40)];
    h.step(10, Level::Normal);
    h.members[1].rss = 40 * MIB; // 101 stays put; 100 grows most from here
    h.step(60, Level::Emergency);
    let usage = (60 + 40) * MIB;
    assert_eq!(h.file("memory.high"), (usage + MIB).to_string(), "clamped at current usage, with room for the write");
    assert!(!h.exec.readiness().is_ready());
    assert!(h.signals().contains(&(100, Signal::TERM)), "{:?}", h.signals());
    assert!(!h.signals().contains(&(101, Signal::TERM)), "only the largest grower");
    h.step(60, Level::Emergency);
    assert!(!h.signals().contains(&(100, Signal::KILL)), "not before the grace period");
    h.step(60, Level::Emergency);
    assert!(h.signals().contains(&(100, Signal::KILL)));
    let kills = h.incidents();
    assert_eq!(kills.len(), 1, "a kill is recorded at once");
    assert_eq!(kills[0].end, IncidentEnd::Killed);

    h.members.remove(0);
    h.step(0, Level::Critical);
    assert!(!h.exec.readiness().is_ready(), "only normal releases it");
    h.step(0, Level::Normal);
    assert!(h.exec.readiness().is_ready());
    assert_eq!(h.file("memory.high"), "max");
    let last = h.incidents().pop().unwrap();
    assert_eq!(last.peak_level, Level::Emergency);
    assert!(kinds(&last).contains(&(ActionKind::Ready, Outcome::Ok)));
}

#[test]
fn an_emergency_kill_goes_only_to_a_process_the_policy_matched() {
    let mut s = settings();
    s.actions.kill = true;
    let mut h = Harness::new(s, false);
    // 101 shares the cgroup but the policy did not match it (a sidecar).
    h.members = vec![member(100, 10), Member { matched: false, ..member(101, 10) }];
    h.step(20, Level::Normal);
    h.members[1].rss = 70 * MIB; // the sidecar grows most
    h.step(25, Level::Emergency);
    assert!(h.signals().contains(&(100, Signal::TERM)), "{:?}", h.signals());
    assert!(!h.signals().iter().any(|&(pid, _)| pid == 101), "the sidecar: {:?}", h.signals());
}

#[test]
fn dry_run_globally_or_per_policy_touches_nothing() {
    for global in [true, false] {
        let mut s = settings();
        s.dry_run = !global;
        s.actions.kill = true;
        let mut h = Harness::new(s, global);
        h.step(97, Level::Emergency);
        for _ in 0..20 {
            h.step(97, Level::Emergency);
        }
        assert!(h.signals().is_empty(), "no signal in a dry run");
        assert_eq!(h.file("memory.high"), "max");
        assert!(!h.state_file.exists(), "no state recorded");
        assert!(h.exec.readiness().is_ready(), "readiness untouched");
        h.step(10, Level::Normal);
        let incident = h.incidents().pop().unwrap();
        assert!(incident.actions.iter().all(|a| matches!(a.outcome, Outcome::DryRun | Outcome::Skipped)));
        assert!(incident.actions.iter().any(|a| a.detail.starts_with("would send SIGTERM")));
        assert!(incident.actions.iter().any(|a| a.detail.starts_with("would send SIGKILL")));
        assert!(incident.actions.iter().any(|a| a.detail.starts_with("would set memory.high")));
    }
}

#[test]
fn protected_targets_are_recorded_but_never_touched() {
    let mut s = settings();
    s.protect = true;
    s.actions.kill = true;
    let mut h = Harness::new(s, false);
    for _ in 0..10 {
        h.step(99, Level::Emergency);
    }
    h.step(10, Level::Normal);
    assert!(h.signals().is_empty());
    assert_eq!(h.file("memory.high"), "max");
    assert!(h.exec.readiness().is_ready());
    let incident = h.incidents().pop().unwrap();
    assert!(incident.protected && incident.actions.is_empty());
}

#[test]
fn a_cgroup_gone_mid_action_is_recorded_not_fatal() {
    let mut h = Harness::new(settings(), false);
    h.step(91, Level::Critical);
    std::fs::remove_dir_all(h.root.path().join("app.slice/app.service")).unwrap();
    h.exec.signaller_mut().gone.lock().unwrap().insert(100);
    for _ in 0..3 {
        h.step(91, Level::Critical);
    }
    // The target then disappears from the readings altogether.
    h.tick_without_target();
    let incident = h.incidents().pop().unwrap();
    assert_eq!(incident.end, IncidentEnd::Gone);
    let throttle = incident.actions.iter().find(|a| a.action == ActionKind::Throttle).unwrap();
    assert_eq!(throttle.outcome, Outcome::Gone, "{throttle:?}");
    assert!(incident.actions.iter().any(|a| a.action == ActionKind::Signal && a.outcome == Outcome::Gone));
}

#[test]
fn init_and_the_daemon_are_never_signalled() {
    let mut h = Harness::new(settings(), false);
    h.members = vec![member(1, 50), member(DAEMON, 45)];
    h.step(0, Level::Critical);
    assert!(h.signals().is_empty());
    let incident_actions = {
        h.step(0, Level::Normal);
        h.incidents().pop().unwrap().actions
    };
    assert_eq!(incident_actions[0].outcome, Outcome::Refused, "{incident_actions:?}");
}

#[test]
fn a_throttling_leak_policy_holds_the_limit_until_the_leak_ends() {
    let mut s = settings();
    s.actions.on_leak = LeakAction::Throttle;
    let mut h = Harness::new(s, false);
    h.step(30, Level::Normal);
    h.t += 1.0;
    let verdict = LeakVerdict {
        slope_bytes_per_s: 1e5,
        confidence: 0.999,
        fit: 0.99,
        time_to_limit_s: Some(700.0),
        window_s: 600.0,
    };
    let leak = Event { t: h.t, key: key(), kind: EventKind::LeakDetected(verdict) };
    h.tick(30 * MIB, &[leak]);
    assert_eq!(h.file("memory.high"), (30 * MIB + 2 * MIB).to_string());
    assert!(h.signals().is_empty(), "throttle, not cleanup");
    h.step(30, Level::Normal);
    assert_ne!(h.file("memory.high"), "max", "held while the leak lasts");
    h.t += 1.0;
    let ended = Event { t: h.t, key: key(), kind: EventKind::LeakEnded { leaked_for_secs: 60.0 } };
    h.tick(30 * MIB, &[ended]);
    assert_eq!(h.file("memory.high"), "max");
    let incident = h.incidents().pop().unwrap();
    assert!(incident.leak.is_some());
}

#[test]
fn shutdown_restores_everything_and_closes_open_episodes() {
    let mut s = settings();
    s.actions.cleanup_passes = 0;
    let mut h = Harness::new(s, false);
    h.step(95, Level::Critical);
    assert_ne!(h.file("memory.high"), "max");
    h.shutdown(h.t + 1.0);
    assert_eq!(h.file("memory.high"), "max");
    assert_eq!(h.incidents().pop().unwrap().end, IncidentEnd::Shutdown);
}

#[test]
fn a_cleanup_leak_policy_runs_the_passes_and_a_report_policy_does_nothing() {
    for (on_leak, expected) in [(LeakAction::Cleanup, 3), (LeakAction::Report, 0)] {
        let mut s = settings();
        s.actions.on_leak = on_leak;
        let mut h = Harness::new(s, false);
        h.step(30, Level::Normal);
        h.t += 1.0;
        let verdict = LeakVerdict {
            slope_bytes_per_s: 1e5,
            confidence: 0.999,
            fit: 0.99,
            time_to_limit_s: None,
            window_s: 600.0,
        };
        h.tick(30 * MIB, &[Event { t: h.t, key: key(), kind: EventKind::LeakDetected(verdict) }]);
        for _ in 0..6 {
            h.step(30, Level::Normal);
        }
        assert_eq!(h.signals().len(), expected, "{on_leak:?}");
        assert_eq!(h.file("memory.high"), "max", "cleanup never throttles below critical");
        assert_eq!(h.incidents().len(), usize::from(expected > 0), "{on_leak:?}");
    }
}

#[test]
fn a_cleanup_signal_is_never_sent_to_a_process_it_would_kill() {
    let mut s = settings();
    s.actions.kill = true;
    s.actions.kill_grace_secs = 1.0;
    let mut h = Harness::new(s, false);
    h.members = vec![member(100, 0), member(101, 5)];
    h.unhandled.insert(101);
    h.step(91, Level::Critical);
    assert_eq!(h.signals(), [(100, Signal::USR1)], "101 has no handler: SIGUSR1 would kill it");
    // The emergency's SIGTERM is meant to end a process: no such check.
    h.step(97, Level::Emergency);
    assert!(h.signals().contains(&(100, Signal::TERM)));
    h.step(20, Level::Normal);
    let incident = h.incidents().pop().unwrap();
    assert!(incident.actions[0].detail.contains("1 skipped: no handler"), "{:?}", incident.actions[0]);
}

#[test]
fn a_cgroup_holding_a_protected_process_is_signalled_but_never_throttled() {
    let mut s = settings();
    s.actions.cleanup_passes = 0;
    let mut h = Harness::new(s, false);
    h.protected_inside = true;
    h.step(97, Level::Emergency);
    assert_eq!(h.file("memory.high"), "max");
    h.step(10, Level::Normal);
    let incident = h.incidents().pop().unwrap();
    let clamp = incident.actions.iter().find(|a| a.action == ActionKind::Clamp).unwrap();
    assert_eq!(clamp.outcome, Outcome::Refused, "{clamp:?}");
}

#[test]
fn every_action_taken_is_handed_out_once_for_the_view_and_counters() {
    let mut h = Harness::new(settings(), false);
    h.step(10, Level::Normal);
    assert!(h.take_performed().is_empty(), "nothing done at normal");
    h.step(60, Level::Emergency);
    let performed = h.take_performed();
    let kinds: Vec<(ActionKind, Outcome)> = performed.iter().map(|p| (p.record.action, p.record.outcome)).collect();
    assert!(performed.iter().all(|p| p.target == key()), "{performed:?}");
    assert!(kinds.contains(&(ActionKind::Clamp, Outcome::Ok)), "{kinds:?}");
    assert!(kinds.contains(&(ActionKind::NotReady, Outcome::Ok)), "{kinds:?}");
    assert!(h.take_performed().is_empty(), "handed out once");
    h.step(0, Level::Normal);
    let kinds: Vec<ActionKind> = h.take_performed().iter().map(|p| p.record.action).collect();
    assert!(kinds.contains(&ActionKind::Restore) && kinds.contains(&ActionKind::Ready), "{kinds:?}");
}

#[test]
fn a_clamp_never_lands_below_what_the_cgroup_uses_when_it_is_written() {
    // Below usage, the write itself would make memwatch reclaim for the target.
    let mut h = Harness::new(settings(), false);
    h.write_file("memory.current", &(80 * MIB).to_string());
    let t = h.t;
    let clamp = |bytes| Decision {
        t,
        target: key(),
        action: ActionKind::Clamp,
        why: Why::Emergency,
        plan: Plan::LowerLimit { cgroup: CGROUP.to_owned(), bytes, usage: bytes },
        pass: None,
    };
    let grown = h.exec.apply(&[clamp(60 * MIB)], Instant::now());
    assert_eq!(grown[0].outcome, Outcome::Ok, "{grown:?}");
    assert_eq!(h.file("memory.high"), (81 * MIB).to_string(), "held where it is now, with room for the write");
    h.write_file("memory.current", &(58 * MIB).to_string());
    h.exec.apply(&[clamp(60 * MIB)], Instant::now());
    assert_eq!(h.file("memory.high"), (60 * MIB).to_string(), "the planned value when usage is below it");
}

#[test]
fn a_limit_set_before_memwatch_is_never_raised_to_hold_usage_where_it_is() {
    // The admin's memory.high holds usage just under it; the planned clamp
    // is under both, the floor at usage would land above the admin's value.
    let mut h = Harness::new(settings(), false);
    h.write_file("memory.high", &(80 * MIB).to_string());
    h.write_file("memory.current", &(80 * MIB - 4096).to_string());
    let decision = Decision {
        t: h.t,
        target: key(),
        action: ActionKind::Clamp,
        why: Why::Emergency,
        plan: Plan::LowerLimit { cgroup: CGROUP.to_owned(), bytes: 79 * MIB, usage: 79 * MIB },
        pass: None,
    };
    let applied = h.exec.apply(&[decision], Instant::now());
    assert_eq!(applied[0].outcome, Outcome::Skipped, "{applied:?}");
    assert_eq!(h.file("memory.high"), (80 * MIB).to_string(), "left as the admin set it");
}

#[test]
fn a_limit_whose_restore_failed_is_put_back_by_a_later_sweep() {
    let mut h = Harness::new(settings(), false);
    h.write_file("memory.current", &(50 * MIB).to_string());
    let decide =
        |plan| Decision { t: h.t, target: key(), action: ActionKind::Clamp, why: Why::Emergency, plan, pass: None };
    let t0 = Instant::now();
    let lowered =
        h.exec.apply(&[decide(Plan::LowerLimit { cgroup: CGROUP.to_owned(), bytes: 60 * MIB, usage: 50 * MIB })], t0);
    assert_eq!(lowered[0].outcome, Outcome::Ok, "{lowered:?}");
    // The knob cannot be written when the episode ends: the restore fails.
    let knob = h.root.path().join("app.slice/app.service/memory.high");
    std::fs::remove_file(&knob).unwrap();
    std::fs::create_dir(&knob).unwrap();
    let failed = h.exec.apply(&[decide(Plan::Restore { cgroup: CGROUP.to_owned() })], t0);
    assert_eq!(failed[0].outcome, Outcome::Failed, "{failed:?}");
    std::fs::remove_dir(&knob).unwrap();
    h.write_file("memory.high", &(60 * MIB).to_string());
    h.exec.apply(&[], t0 + Duration::from_secs(30));
    assert_eq!(h.file("memory.high"), (60 * MIB).to_string(), "not tried again every interval");
    h.exec.apply(&[], t0 + Duration::from_secs(61));
    assert_eq!(h.file("memory.high"), "max", "put back within a minute, with no episode asking");
}

#[test]
fn an_episode_held_at_critical_for_long_keeps_its_newest_records_only() {
    let mut h = Harness::new(settings(), false);
    h.step(50, Level::Normal);
    // A procedure every 5 s cooldown, for what would be hours at this pace.
    for _ in 0..3000 {
        h.step(92, Level::Critical);
    }
    h.step(40, Level::Warning);
    h.step(40, Level::Normal);
    let incident = h.incidents().pop().unwrap();
    assert_eq!(incident.actions.len(), crate::engine::planner::KEPT_RECORDS);
    assert!(incident.actions_dropped > 0, "{}", incident.actions_dropped);
    assert_eq!(incident.actions.last().map(|a| a.action), Some(ActionKind::Restore), "the newest are kept");
    assert_eq!(h.file("memory.high"), "max");
}
