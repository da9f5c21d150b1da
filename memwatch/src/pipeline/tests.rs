use std::sync::Arc;

use super::*;
use crate::model::{
    runtime::Runtime,
    sample::{Counters, ProcessId, ProcessInfo},
    signals::SignalMasks,
};

const MIB: u64 = 1 << 20;
const API: &str = "/system.slice/api.service";

/// Answers as a test says: every cgroup limited to 1000 MiB, charged 900
/// MiB of which 100 MiB inactive page cache.
struct Charged {
    asked: Vec<String>,
}

impl Facts for Charged {
    fn cgroup_limit(&mut self, _cgroup: &str) -> Option<u64> {
        Some(1000 * MIB)
    }

    fn cgroup_memory(&mut self, cgroup: &str) -> Option<CgroupMemory> {
        self.asked.push(cgroup.to_owned());
        let pressure = Pressure { some_avg10: 7.5, ..Default::default() };
        Some(CgroupMemory { charged_bytes: 900 * MIB, inactive_file_bytes: 100 * MIB, pressure: Some(pressure) })
    }

    fn knob(&mut self, _cgroup: &str) -> KnobReading {
        KnobReading::Unreadable { gone: false, detail: "not in this test".into() }
    }

    fn signals(&mut self, _id: crate::model::sample::ProcessId) -> Option<SignalMasks> {
        None
    }

    fn runtime(&mut self, _id: crate::model::sample::ProcessId) -> Option<Runtime> {
        None
    }
}

fn process(pid: u32, comm: &str, rss_mib: u64) -> ProcessSample {
    ProcessSample {
        id: ProcessId { pid, start_time: 1 },
        info: Arc::new(ProcessInfo::new(comm.into(), format!("/usr/bin/{comm}"), Some(API.into()), None)),
        counters: Counters { rss_anon: rss_mib * MIB, ..Default::default() },
    }
}

fn tick(config: &str) -> (Vec<Assessed>, Vec<String>) {
    let mut pipeline = Pipeline::new(Config::parse(config).unwrap(), 16 << 30, EngineOptions::default(), 1);
    let mut facts = Charged { asked: Vec::new() };
    pipeline.tick(1000.0, &[process(10, "api", 60), process(11, "worker", 40)], &mut facts);
    (pipeline.targets().to_vec(), facts.asked)
}

#[test]
fn a_cgroup_target_is_judged_on_its_working_set_not_its_processes_rss() {
    let (targets, asked) = tick("");
    let [api] = &targets[..] else { panic!("{targets:?}") };
    // 100 MiB of RSS would be normal; the cgroup's working set is 800 of 1000.
    assert_eq!((api.usage_bytes, api.limit_bytes, api.level), (800 * MIB, 1000 * MIB, Level::Warning));
    assert_eq!(api.memory.map(|m| m.charged_bytes), Some(900 * MIB));
    assert_eq!(asked, [API]);
}

#[test]
fn a_cgroup_shared_with_a_process_target_keeps_the_rss_sum() {
    // The api process is a target of its own: the cgroup's charge would
    // count its 60 MiB against both.
    let (targets, asked) = tick("[[policy]]\nname = \"api\"\ntarget = \"process\"\nmatch = { process = \"^api$\" }\n");
    let usage: Vec<(String, u64, bool)> =
        targets.iter().map(|t| (t.key.to_string(), t.usage_bytes / MIB, t.memory.is_some())).collect();
    assert_eq!(usage, [(format!("cgroup:{API}"), 40, false), ("process:10:api".to_owned(), 60, false)]);
    // Its pressure is the cgroup's whoever else is in it.
    assert_eq!(targets[0].pressure.map(|p| p.some_avg10), Some(7.5));
    assert_eq!(asked, [API]);
}

/// A cgroup charged 1 MiB more every second, from 300 MiB.
struct Growing {
    t: f64,
}

impl Facts for Growing {
    fn cgroup_limit(&mut self, _cgroup: &str) -> Option<u64> {
        Some(16 << 30)
    }

    fn cgroup_memory(&mut self, _cgroup: &str) -> Option<CgroupMemory> {
        let charged = 300 * MIB + (self.t * MIB as f64) as u64;
        Some(CgroupMemory { charged_bytes: charged, inactive_file_bytes: 0, pressure: None })
    }

    fn knob(&mut self, _cgroup: &str) -> KnobReading {
        KnobReading::Unreadable { gone: false, detail: "not in this test".into() }
    }

    fn signals(&mut self, _id: ProcessId) -> Option<SignalMasks> {
        None
    }

    fn runtime(&mut self, _id: ProcessId) -> Option<Runtime> {
        None
    }
}

#[test]
fn a_usage_that_changes_what_it_counts_starts_a_new_trend() {
    let mut pipeline = Pipeline::new(Config::parse("").unwrap(), 16 << 30, EngineOptions::default(), 1);
    let processes = [process(10, "api", 60), process(11, "worker", 40)];
    let mut facts = Growing { t: 0.0 };
    // The leak events of a tick at `t`.
    let tick = |pipeline: &mut Pipeline, facts: &mut Growing, t: f64| -> Vec<Event> {
        facts.t = t;
        let tick = pipeline.tick(t, &processes, facts);
        tick.events.into_iter().filter(|e| !matches!(e.kind, EventKind::State { .. })).collect()
    };
    // 20 minutes of a cgroup growing 1 MiB/s: a leak.
    let leak_events: Vec<Event> = (0..240).flat_map(|i| tick(&mut pipeline, &mut facts, f64::from(i) * 5.0)).collect();
    assert!(matches!(leak_events[..], [Event { kind: EventKind::LeakDetected(_), .. }]), "{leak_events:?}");
    // A policy now splits the api process out: the cgroup target is judged
    // on its RSS sum, which does not grow. The leak it had is over, by the
    // change of figure, at once.
    pipeline.set_config(
        Config::parse("[[policy]]\nname = \"api\"\ntarget = \"process\"\nmatch = { process = \"^api$\" }\n").unwrap(),
    );
    let leak_events = tick(&mut pipeline, &mut facts, 1200.0);
    assert!(matches!(leak_events[..], [Event { t: 1200.0, kind: EventKind::LeakEnded { .. }, .. }]), "{leak_events:?}");
}
