//! The planner alone: decisions as values, from inputs only.
use super::*;
use crate::{
    config::{PolicySettings, cleanup::CleanupStep},
    model::{
        cgroup::{Knob, KnobReading, Limit},
        sample::ProcessId,
        signals::SignalMasks,
    },
};

const MIB: u64 = 1 << 20;

fn member(pid: u32, masks: Option<SignalMasks>) -> Member {
    Member { id: ProcessId { pid, start_time: 3 }, rss: 10 * MIB, signals: masks, matched: true, runtime: None }
}

fn catches_usr1() -> Option<SignalMasks> {
    Some(SignalMasks { caught: 1 << 9, ..Default::default() })
}

struct Input {
    key: TargetKey,
    settings: PolicySettings,
    members: Vec<Member>,
    knob: KnobReading,
}

impl Input {
    fn new() -> Self {
        let mut settings = PolicySettings::default();
        settings.actions.pass_wait_secs = 1.0;
        settings.actions.cleanup = vec![CleanupStep::Signal { signal: rustix::process::Signal::USR1 }];
        Self {
            key: TargetKey::cgroup("/app.slice/app.service"),
            settings,
            members: vec![member(10, catches_usr1()), member(11, None), member(12, Some(SignalMasks::default()))],
            knob: KnobReading::Read {
                knob: Knob::MemoryHigh,
                limit: Limit::Max,
                usage: Some(95 * MIB),
                reclaim: false,
            },
        }
    }

    fn observed(&self, usage_mib: u64) -> Observed<'_> {
        Observed {
            key: &self.key,
            policy: "app",
            settings: &self.settings,
            cgroup: self.key.cgroup_path(),
            usage_bytes: usage_mib * MIB,
            limit_bytes: 100 * MIB,
            members: &self.members,
            protected_inside: false,
            knob: Some(&self.knob),
        }
    }

    fn level(&self, t: f64, from: Level, to: Level) -> Event {
        Event {
            t,
            key: self.key.clone(),
            kind: EventKind::State { from, to, usage_bytes: 0, limit_bytes: 100 * MIB, pressure: None },
        }
    }
}

/// A run of five readings into critical and out; every decision as its line.
fn run(planner: &mut Planner, input: &Input, fail: Option<ActionKind>) -> Vec<String> {
    let mut lines = Vec::new();
    let script = [
        (1.0, 50, None),
        (2.0, 95, Some((Level::Normal, Level::Critical))),
        (3.0, 95, None),
        (4.0, 95, None),
        (5.0, 95, None),
        (6.0, 10, Some((Level::Critical, Level::Normal))),
    ];
    for (t, usage, change) in script {
        let events: Vec<Event> = change.map(|(from, to)| input.level(t, from, to)).into_iter().collect();
        let decisions = planner.plan(t, &events, &[input.observed(usage)]);
        lines.extend(decisions.iter().map(Decision::to_json_line));
        let mut applied = assume_success(&decisions);
        for (decision, applied) in decisions.iter().zip(&mut applied) {
            if Some(decision.action) == fail {
                applied.outcome = Outcome::Failed;
            }
        }
        planner.settle(&applied);
    }
    lines
}

#[test]
fn an_episode_lists_the_level_changes_since_its_target_was_last_normal() {
    let input = Input::new();
    let mut planner = Planner::new(999, false);
    let mut incidents = Vec::new();
    let mut t = 0.0;
    let mut read = |planner: &mut Planner, usage: u64, change: Option<(Level, Level)>| {
        t += 1.0;
        let events: Vec<Event> = change.map(|(from, to)| input.level(t, from, to)).into_iter().collect();
        let decisions = planner.plan(t, &events, &[input.observed(usage)]);
        incidents.extend(planner.settle(&assume_success(&decisions)).incidents);
    };
    // In and out of warning all day: no episode, and nothing kept for one.
    for _ in 0..50 {
        read(&mut planner, 85, Some((Level::Normal, Level::Warning)));
        read(&mut planner, 50, Some((Level::Warning, Level::Normal)));
    }
    read(&mut planner, 85, Some((Level::Normal, Level::Warning)));
    read(&mut planner, 95, Some((Level::Warning, Level::Critical)));
    read(&mut planner, 10, Some((Level::Critical, Level::Normal)));
    let levels: Vec<(Level, Level)> = incidents[0].levels.iter().map(|c| (c.from, c.to)).collect();
    assert_eq!(
        levels,
        [(Level::Normal, Level::Warning), (Level::Warning, Level::Critical), (Level::Critical, Level::Normal)]
    );
}

#[test]
fn the_same_inputs_give_the_same_decisions_byte_for_byte() {
    let input = Input::new();
    let first = run(&mut Planner::new(999, false), &input, None);
    let second = run(&mut Planner::new(999, false), &input, None);
    assert!(!first.is_empty());
    assert_eq!(first, second);
}

#[test]
fn critical_plans_passes_a_throttle_after_them_and_a_restore_at_recovery() {
    let lines = run(&mut Planner::new(999, false), &Input::new(), None);
    let actions: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            let action = if l.contains("\"action\":\"signal\"") {
                "signal"
            } else if l.contains("\"action\":\"throttle\"") {
                "throttle"
            } else if l.contains("\"action\":\"restore\"") {
                "restore"
            } else {
                "other"
            };
            let why = ["critical", "episode_end"]
                .into_iter()
                .find(|w| l.contains(&format!("\"why\":\"{w}\"")))
                .unwrap_or("?");
            (action, why)
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("signal", "critical"),
            ("signal", "critical"),
            ("signal", "critical"),
            ("throttle", "critical"),
            ("restore", "episode_end")
        ],
        "{lines:#?}"
    );
    // 95 MiB of memory.current + 2% of the limit: the knob's new value.
    let bytes = 95 * MIB + (100.0 * MIB as f64 * 0.02) as u64;
    assert!(lines[3].contains(&format!("\"bytes\":{bytes}")), "{}", lines[3]);
}

#[test]
fn a_cleanup_signal_is_planned_only_for_members_known_to_handle_it() {
    let input = Input::new();
    let mut planner = Planner::new(999, false);
    planner.plan(1.0, &[], &[input.observed(50)]);
    let decisions = planner.plan(2.0, &[input.level(2.0, Level::Normal, Level::Critical)], &[input.observed(95)]);
    let Plan::Signal { to, members, unhandled, .. } = &decisions[0].plan else { panic!("{decisions:?}") };
    assert_eq!(to.iter().map(|id| id.pid).collect::<Vec<_>>(), [10], "11: masks unknown; 12: no handler");
    assert_eq!((*members, *unhandled), (3, 2));
}

#[test]
fn a_throttle_that_failed_is_not_restored() {
    let lines = run(&mut Planner::new(999, false), &Input::new(), Some(ActionKind::Throttle));
    assert!(lines.iter().any(|l| l.contains("\"action\":\"throttle\"")));
    assert!(!lines.iter().any(|l| l.contains("\"action\":\"restore\"")), "{lines:#?}");
}

#[test]
fn the_daemon_is_never_planned_a_signal_and_its_cgroup_never_a_throttle() {
    let mut input = Input::new();
    input.members = vec![member(999, catches_usr1()), member(1, catches_usr1())];
    let lines = run(&mut Planner::new(999, false), &input, None);
    assert!(lines[0].contains("\"plan\":\"record\"") && lines[0].contains("\"outcome\":\"refused\""), "{}", lines[0]);
    let throttle = lines.iter().find(|l| l.contains("\"action\":\"throttle\"")).expect("a throttle decision");
    assert!(throttle.contains("memwatch itself runs in this cgroup"), "{throttle}");
}

/// The first reading at critical's decisions for `input`.
fn crossing(input: &Input) -> Vec<Decision> {
    let mut planner = Planner::new(999, false);
    planner.plan(1.0, &[], &[input.observed(50)]);
    planner.plan(2.0, &[input.level(2.0, Level::Normal, Level::Critical)], &[input.observed(95)])
}

#[test]
fn a_runtime_that_uses_the_signal_for_itself_is_left_out_and_the_record_says_why() {
    use crate::model::runtime::Runtime;
    let mut input = Input::new();
    input.members = vec![member(10, catches_usr1()), member(11, catches_usr1())];
    input.members[0].runtime = Some(Runtime::Node);
    let decisions = crossing(&input);
    let Plan::Signal { to, refused, notes, .. } = &decisions[0].plan else { panic!("{decisions:?}") };
    assert_eq!(to.iter().map(|id| id.pid).collect::<Vec<_>>(), [11]);
    assert_eq!(*refused, 1);
    assert_eq!(
        notes,
        &["pid 10 is node: SIGUSR1 opens the V8 inspector (a debugger port any local user can attach to)"]
    );

    input.members[1].runtime = Some(Runtime::Node);
    let decisions = crossing(&input);
    let Plan::Record { outcome, detail } = &decisions[0].plan else { panic!("{decisions:?}") };
    assert_eq!(*outcome, Outcome::Refused, "nobody left to signal: {detail}");
    assert!(detail.contains("pid 11 is node"), "{detail}");
}

#[test]
fn a_signal_goes_only_to_the_processes_the_policy_matched() {
    let mut input = Input::new();
    input.members = vec![member(10, catches_usr1()), member(11, catches_usr1())];
    input.members[1].matched = false;
    let decisions = crossing(&input);
    let Plan::Signal { to, members, notes, .. } = &decisions[0].plan else { panic!("{decisions:?}") };
    assert_eq!((to.iter().map(|id| id.pid).collect::<Vec<_>>(), *members), (vec![10], 1));
    assert_eq!(notes, &["1 process(es) in the target not matched by the policy"]);

    input.members[0].matched = false;
    let decisions = crossing(&input);
    assert!(
        matches!(&decisions[0].plan, Plan::Record { outcome: Outcome::Skipped, detail } if detail.contains("no process the policy matched")),
        "{decisions:?}"
    );
}

#[test]
fn the_default_pass_reclaims_the_excess_above_warning_and_signals_nobody() {
    let mut input = Input::new();
    input.settings.actions.cleanup = crate::config::cleanup::default_steps();
    input.knob = KnobReading::Read { knob: Knob::MemoryHigh, limit: Limit::Max, usage: Some(95 * MIB), reclaim: true };
    let decisions = crossing(&input);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(
        decisions[0].plan,
        Plan::Reclaim { cgroup: "/app.slice/app.service".into(), bytes: 15 * MIB },
        "95 MiB used, warning at 80 MiB"
    );
    assert!(decisions[0].plan.is_slow() && decisions[0].pass.is_some());
}

#[test]
fn the_daemons_own_cgroup_is_never_reclaimed() {
    let mut input = Input::new();
    input.settings.actions.cleanup = crate::config::cleanup::default_steps();
    input.knob = KnobReading::Read { knob: Knob::MemoryHigh, limit: Limit::Max, usage: Some(95 * MIB), reclaim: true };
    input.members = vec![member(999, None), member(10, None)];
    let decisions = crossing(&input);
    assert!(
        matches!(&decisions[0].plan, Plan::Record { outcome: Outcome::Refused, detail } if detail == "memwatch itself runs in this cgroup"),
        "{decisions:?}"
    );
}
