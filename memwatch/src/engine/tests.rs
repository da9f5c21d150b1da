use super::*;

#[test]
fn state_events_carry_from_to_usage_limit_and_time() {
    let mut engine = Engine::default();
    let mut events = Vec::new();
    let settings = TargetSettings::default();
    let a = TargetKey::from("a");
    for (t, usage) in [(0.0, 10), (5.0, 85), (10.0, 97)] {
        engine.observe(
            &Reading { t, key: &a, usage_bytes: usage, limit_bytes: 100, pressure: None, heap_ceiling: None },
            &settings,
            &mut events,
        );
    }
    let lines: Vec<String> = events.iter().map(Event::to_json_line).collect();
    assert_eq!(
        lines,
        [
            r#"{"t":5,"key":"a","event":"state","from":"normal","to":"warning","usage_bytes":85,"limit_bytes":100}"#,
            r#"{"t":10,"key":"a","event":"state","from":"warning","to":"emergency","usage_bytes":97,"limit_bytes":100}"#,
        ]
    );
    assert_eq!(engine.level(&a), Some(Level::Emergency));
}

#[test]
fn sustained_pressure_raises_the_level_and_its_event_says_so() {
    let mut engine = Engine::default();
    let mut events = Vec::new();
    let settings = TargetSettings {
        pressure: PressureSettings { warning: Some(20.0), critical: None, sustain_secs: 10.0 },
        ..TargetSettings::default()
    };
    let a = TargetKey::from("a");
    for (t, usage, pressure) in [(0.0, 10, Some(35.0)), (5.0, 10, Some(35.0)), (10.0, 10, Some(35.0)), (15.0, 85, None)]
    {
        engine.observe(
            &Reading { t, key: &a, usage_bytes: usage, limit_bytes: 100, pressure, heap_ceiling: None },
            &settings,
            &mut events,
        );
    }
    let lines: Vec<String> = events.iter().map(Event::to_json_line).collect();
    assert_eq!(
        lines,
        [
            r#"{"t":10,"key":"a","event":"state","from":"normal","to":"warning","usage_bytes":10,"limit_bytes":100,"pressure_some_avg10":35.0}"#
        ],
        "a level set by usage (85% at t = 15) is no change and names no pressure"
    );
}

#[test]
fn a_level_hysteresis_holds_names_no_pressure() {
    let mut engine = Engine::default();
    let mut events = Vec::new();
    let settings = TargetSettings::default();
    let a = TargetKey::from("a");
    // Measured stall, no pressure policy: 97% is emergency, then 78%
    // lands on warning (not below its exit line), by usage alone.
    for (t, usage) in [(0.0, 97), (5.0, 78), (10.0, 78), (15.0, 78)] {
        let reading =
            Reading { t, key: &a, usage_bytes: usage, limit_bytes: 100, pressure: Some(5.0), heap_ceiling: None };
        engine.observe(&reading, &settings, &mut events);
    }
    let lines: Vec<String> = events.iter().map(Event::to_json_line).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains("pressure")), "{lines:?}");
}

#[test]
fn a_restarted_trend_ends_the_leak_it_reported_and_must_find_it_again() {
    let mut engine = Engine::default();
    let mut events = Vec::new();
    let settings = TargetSettings::default();
    let a = TargetKey::from("a");
    let feed = |engine: &mut Engine, events: &mut Vec<Event>, from: u32, to: u32| {
        for i in from..to {
            let t = f64::from(i) * 5.0;
            let usage = (1 << 30) + u64::from(i) * 5 * (1 << 20);
            let reading =
                Reading { t, key: &a, usage_bytes: usage, limit_bytes: 1 << 40, pressure: None, heap_ceiling: None };
            engine.observe(&reading, &settings, events);
        }
    };
    feed(&mut engine, &mut events, 0, 240);
    assert!(events.iter().any(|e| matches!(e.kind, EventKind::LeakDetected(_))), "a 1 MiB/s leak in 20 minutes");
    events.clear();
    engine.restart_trend(1200.0, &a, &mut events);
    assert!(matches!(events[..], [Event { kind: EventKind::LeakEnded { .. }, .. }]), "{events:?}");
    events.clear();
    feed(&mut engine, &mut events, 241, 300);
    assert!(events.is_empty(), "five minutes of new trend are too few for a verdict: {events:?}");
}

#[test]
fn targets_are_independent_and_can_be_forgotten() {
    let mut engine = Engine::default();
    let mut events = Vec::new();
    let settings = TargetSettings::default();
    let (a, b) = (TargetKey::from("a"), TargetKey::from("b"));
    engine.observe(
        &Reading { t: 0.0, key: &a, usage_bytes: 99, limit_bytes: 100, pressure: None, heap_ceiling: None },
        &settings,
        &mut events,
    );
    engine.observe(
        &Reading { t: 0.0, key: &b, usage_bytes: 1, limit_bytes: 100, pressure: None, heap_ceiling: None },
        &settings,
        &mut events,
    );
    assert_eq!(engine.level(&b), Some(Level::Normal));
    engine.retain(|key| *key == b);
    assert_eq!(engine.target_count(), 1);
    assert_eq!(engine.level(&a), None);
}

#[test]
fn the_seed_rule_is_reported_once_per_episode_when_asked() {
    let mut engine = Engine::new(EngineOptions { seed_rule_events: true, ..Default::default() });
    let mut events = Vec::new();
    let settings = TargetSettings::default();
    let mib = 1 << 20;
    for i in 0..40u64 {
        let usage = if i < 20 { 100 * mib + i * 10 * mib } else { 400 * mib };
        let reading = Reading {
            t: i as f64 * 5.0,
            key: &TargetKey::from("a"),
            usage_bytes: usage,
            limit_bytes: 1 << 40,
            pressure: None,
            heap_ceiling: None,
        };
        engine.observe(&reading, &settings, &mut events);
    }
    let seeds: Vec<f64> = events.iter().filter(|e| matches!(e.kind, EventKind::SeedRule { .. })).map(|e| e.t).collect();
    assert_eq!(seeds, [50.0]);
}

#[test]
fn time_to_limit_is_headroom_over_slope() {
    let mut engine = Engine::default();
    let mut events = Vec::new();
    let settings = TargetSettings::default();
    let gib = 1u64 << 30;
    // 1 MiB/s from 1 GiB towards a 4 GiB limit.
    for i in 0..720u64 {
        let usage = gib + i * 5 * (1 << 20);
        let reading = Reading {
            t: i as f64 * 5.0,
            key: &TargetKey::from("a"),
            usage_bytes: usage,
            limit_bytes: 4 * gib,
            pressure: None,
            heap_ceiling: None,
        };
        engine.observe(&reading, &settings, &mut events);
    }
    let leak = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::LeakDetected(v) => Some((e.t, *v)),
            _ => None,
        })
        .expect("a 1 MiB/s leak is found");
    let (t, verdict) = leak;
    let usage_then = gib as f64 + (t / 5.0) * 5.0 * 1048576.0;
    let expected = (4.0 * gib as f64 - usage_then) / 1048576.0;
    assert!((verdict.slope_bytes_per_s / 1048576.0 - 1.0).abs() < 0.01, "{verdict:?}");
    assert!((verdict.time_to_limit_s.unwrap() - expected).abs() < expected * 0.01, "{verdict:?} vs {expected}");
}
