use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::*;
use crate::{
    engine::planner::Member,
    model::sample::{Counters, Mode, ProcessId, ProcessInfo, ProcessSample},
};

fn sample(pid: u32, unit: &str, rss: u64) -> ProcessSample {
    ProcessSample {
        id: ProcessId { pid, start_time: 1 },
        info: Arc::new(ProcessInfo::new(
            format!("p{pid}"),
            String::new(),
            Some(format!("/system.slice/{unit}")),
            Some(unit.into()),
        )),
        counters: Counters { rss_anon: rss, ..Default::default() },
    }
}

fn snapshot(at: Instant, processes: Vec<ProcessSample>) -> Snapshot {
    Snapshot { taken_at: at, mode: Mode::Procfs, processes, exited: vec![], dropped: vec![("ringbuf", 3)] }
}

/// The pipeline's view of one cgroup target made of `processes`.
fn assessed(unit: &str, processes: &[&ProcessSample], limit: u64, level: Level) -> Assessed {
    let members: Vec<Member> = processes
        .iter()
        .map(|p| Member { id: p.id, rss: p.counters.rss(), signals: None, matched: true, runtime: None })
        .collect();
    Assessed {
        key: TargetKey::cgroup(&format!("/system.slice/{unit}")),
        policy: None,
        cgroup: Some(format!("/system.slice/{unit}")),
        usage_bytes: members.iter().map(|m| m.rss).sum(),
        memory: None,
        pressure: None,
        limit_bytes: limit,
        level,
        members,
        knob: None,
        protected_inside: false,
    }
}

fn interval<'a>(
    previous: &'a Snapshot,
    now: &'a Snapshot,
    targets: &'a [Assessed],
    leaks: &'a HashMap<TargetKey, LeakView>,
    unix_now: u64,
) -> Interval<'a> {
    let host = HostView { total: 1000, used: 500, usage_ratio: 0.5, ..Default::default() };
    Interval { previous, now, host, caches: vec![], interval_s: 2.0, unix_now, targets, leaks }
}

#[test]
fn targets_show_the_pipelines_figures_with_growth_history_and_their_processes() {
    let mut builder = ViewBuilder::new(Thresholds::default(), 1);
    let t0 = Instant::now();
    let a = snapshot(t0, vec![sample(1, "a.service", 100), sample(2, "a.service", 100), sample(3, "b.service", 10)]);
    let b = snapshot(
        t0 + Duration::from_secs(2),
        vec![sample(1, "a.service", 500), sample(2, "a.service", 350), sample(3, "b.service", 10)],
    );
    let leaks = HashMap::new();
    let first = [
        assessed("a.service", &[&a.processes[0], &a.processes[1]], 1000, Level::Normal),
        assessed("b.service", &[&a.processes[2]], 1000, Level::Normal),
    ];
    let view = builder.build(interval(&a, &a, &first, &leaks, 100));
    assert_eq!(view.target("cgroup:/system.slice/a.service").unwrap().level, Level::Normal);
    let second = [
        assessed("a.service", &[&b.processes[0], &b.processes[1]], 1000, Level::Warning),
        assessed("b.service", &[&b.processes[2]], 1000, Level::Normal),
    ];
    let view = builder.build(interval(&a, &b, &second, &leaks, 102));

    let t = view.target("cgroup:/system.slice/a.service").unwrap();
    assert_eq!((t.usage_bytes, t.limit_bytes, t.processes, t.kind.as_str()), (850, 1000, 2, "cgroup"));
    assert_eq!(t.level, Level::Warning);
    assert!((t.growth_bytes_per_s - 325.0).abs() < 1e-6, "{}", t.growth_bytes_per_s);
    assert_eq!(t.history, [200, 850]);
    assert_eq!(view.targets[0].name, "cgroup:/system.slice/a.service", "worst level first");
    assert_eq!(view.processes.len(), 1, "only the top N processes");
    assert_eq!(view.processes[0].pid, 1);
    assert_eq!(view.processes[0].target, "cgroup:/system.slice/a.service", "the target it was judged in");
    assert_eq!(view.bpf_events_lost, [("ringbuf".to_owned(), 3)]);
}

#[test]
fn target_count_and_history_stay_bounded() {
    let mut builder = ViewBuilder::new(Thresholds::default(), 50);
    let t0 = Instant::now();
    let leaks = HashMap::new();
    let mut last = None;
    for round in 0..(HISTORY_LEN as u32 + 10) {
        let procs: Vec<ProcessSample> =
            (0..300).map(|i| sample(i + 1, &format!("u{}-{round}.scope", i % 150), 10)).collect();
        let targets: Vec<Assessed> = (0..150)
            .map(|u| {
                let members: Vec<&ProcessSample> = procs.iter().filter(|p| (p.id.pid - 1) % 150 == u).collect();
                assessed(&format!("u{u}-{round}.scope"), &members, 1 << 40, Level::Normal)
            })
            .collect();
        let s = snapshot(t0 + Duration::from_secs(round as u64), procs);
        let previous = last.take().unwrap_or_else(|| s.clone());
        let acted_on = targets[round as usize % 150].key.to_string();
        builder.record_action(
            acted_on,
            ActionView { action: "reclaim".into(), result: "ok".into(), at_unix_s: 1, freed_bytes: 0 },
        );
        let view = builder.build(interval(&previous, &s, &targets, &leaks, 0));
        assert_eq!(view.targets.len(), MAX_TARGETS);
        assert!(view.target(OTHER_TARGET).is_some());
        last = Some(s);
    }
    assert!(builder.history.len() <= MAX_TARGETS);
    assert!(builder.history.values().all(|h| h.len() <= HISTORY_LEN));
    // Every round's targets are new: only the last round's action is left.
    assert_eq!(builder.last_actions.len(), 1);
}

#[test]
fn judged_targets_keep_their_verdicts_and_gain_history_and_growth() {
    let mut builder = ViewBuilder::new(Thresholds::default(), 5);
    let t0 = Instant::now();
    let a = snapshot(t0, vec![sample(1, "a.service", 900)]);
    let b = snapshot(t0 + Duration::from_secs(4), vec![sample(1, "a.service", 940)]);
    let key = TargetKey::cgroup("/system.slice/a.service");
    let leaks = HashMap::from([(
        key.clone(),
        LeakView { slope_bytes_per_s: 5.0, confidence: 0.99, time_to_limit_s: Some(20.0) },
    )]);
    let first = [assessed("a.service", &[&a.processes[0]], 1000, Level::Critical)];
    builder.build(interval(&a, &a, &first, &leaks, 0));
    let second = [assessed("a.service", &[&b.processes[0]], 1000, Level::Critical)];
    let mut at_four = interval(&a, &b, &second, &leaks, 4);
    at_four.interval_s = 4.0;
    let view = builder.build(at_four);
    let t = &view.targets[0];
    assert_eq!((t.level, t.usage_bytes, t.limit_bytes), (Level::Critical, 940, 1000));
    assert_eq!(t.leak.as_ref().unwrap().time_to_limit_s, Some(20.0));
    assert_eq!(t.history, [900, 940]);
    assert!((t.growth_bytes_per_s - 10.0).abs() < 1e-9);
    assert_eq!(view.processes[0].target, key.to_string());
    assert!(view.events.is_empty(), "level events come from the engine, through the daemon");
}

#[test]
fn actions_the_executor_took_are_counted_by_action_and_result() {
    let mut builder = ViewBuilder::new(Thresholds::default(), 1);
    let action = |name: &str, result: &str| ActionView {
        action: name.into(),
        result: result.into(),
        at_unix_s: 5,
        freed_bytes: 0,
    };
    builder.record_action("cgroup:/a".into(), action("signal", "ok"));
    builder.record_action("cgroup:/a".into(), action("signal", "ok"));
    builder.record_action("cgroup:/b".into(), action("clamp", "dry_run"));
    let now = snapshot(Instant::now(), vec![]);
    let leaks = HashMap::new();
    let view = builder.build(interval(&now, &now, &[], &leaks, 10));
    let count = |a: &str, r: &str| view.actions.iter().find(|c| c.action == a && c.result == r).map(|c| c.count);
    assert_eq!(count("signal", "ok"), Some(2));
    assert_eq!(count("clamp", "dry_run"), Some(1));
    assert!(builder.last_actions.is_empty(), "neither target was seen: their last actions are gone");
}

#[test]
fn a_container_target_shows_the_names_its_processes_were_read_with() {
    let unit = format!("docker-{}.scope", "ab".repeat(32));
    let mut process = sample(7, &unit, 100);
    let mut info = (*process.info).clone();
    let container = info.container.as_mut().expect("a docker scope is a container");
    container.name = Some("web".into());
    process.info = Arc::new(info);
    let now = snapshot(Instant::now(), vec![process]);
    let targets = [assessed(&unit, &[&now.processes[0]], 1000, Level::Normal)];
    let leaks = HashMap::new();
    let view = ViewBuilder::new(Thresholds::default(), 1).build(interval(&now, &now, &targets, &leaks, 1));
    let shown = view.targets[0].container.as_ref().expect("the target's container");
    assert_eq!((shown.name.as_deref(), shown.runtime.as_deref()), (Some("web"), Some("docker")));
    let named_by_key = [Assessed { members: vec![], ..assessed(&unit, &[], 1000, Level::Normal) }];
    let view = ViewBuilder::new(Thresholds::default(), 1).build(interval(&now, &now, &named_by_key, &leaks, 1));
    let from_key = view.targets[0].container.as_ref().expect("from the key alone");
    assert_eq!((from_key.id.len(), from_key.name.as_deref()), (64, None));
}
