//! The planner and the executor together, as the daemon drives them, on a
//! fake clock against a fixture cgroupfs and a fake signaller: one call of
//! `step` is one sampling tick, with the level the engine would have said.
use std::{
    collections::HashSet,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Instant,
};

use rustix::process::Signal;

use tokio::sync::mpsc::UnboundedReceiver;

use super::{
    executor::{Executor, Signaller},
    incident_log::{IncidentLog, read_all},
    passes::PassDone,
    readiness::Readiness,
    sys::{ActError, throttle_state::Throttles},
};
use crate::{
    config::{LeakAction, PolicySettings, cleanup::CleanupStep},
    engine::{
        Event, EventKind, LeakVerdict, Level,
        planner::{Decision, Member, Observed, Performed, Planner},
    },
    model::{
        incident::{ActionKind, Incident, IncidentEnd, Outcome},
        sample::ProcessId,
        signals::SignalMasks,
        target_key::TargetKey,
    },
    sources::cgroupfs::{CgroupFs, tests::fixture},
};

const MIB: u64 = 1 << 20;
const LIMIT: u64 = 100 * MIB;
const DAEMON: u32 = 999;
const CGROUP: &str = "/app.slice/app.service";
const KEY: &str = "cgroup:/app.slice/app.service";

fn key() -> TargetKey {
    TargetKey::from(KEY)
}

/// Shared, as the pass workers get copies of it.
#[derive(Clone, Default)]
struct Fake {
    sent: Arc<Mutex<Vec<(u32, Signal)>>>,
    gone: Arc<Mutex<HashSet<u32>>>,
}

impl Signaller for Fake {
    fn send(&mut self, id: ProcessId, signal: Signal) -> Result<(), ActError> {
        if self.gone.lock().unwrap().contains(&id.pid) {
            return Err(ActError::ProcessGone { id });
        }
        self.sent.lock().unwrap().push((id.pid, signal));
        Ok(())
    }
}

struct Harness {
    root: tempfile::TempDir,
    _state: tempfile::TempDir,
    state_file: PathBuf,
    log: PathBuf,
    planner: Planner,
    exec: Executor<Fake>,
    /// Passes the executor applied off the loop, as they finish.
    passes_done: UnboundedReceiver<PassDone>,
    cgroupfs: CgroupFs,
    settings: PolicySettings,
    members: Vec<Member>,
    /// Processes with no handler for the cleanup signal.
    unhandled: HashSet<u32>,
    t: f64,
    level: Level,
    protected_inside: bool,
    performed: Vec<Performed>,
}

/// A member the policy matched, that catches the cleanup signals (what its
/// /proc masks would say) and is no runtime memwatch knows.
fn member(pid: u32, rss_mib: u64) -> Member {
    Member { id: ProcessId { pid, start_time: 7 }, rss: rss_mib * MIB, signals: None, matched: true, runtime: None }
}

impl Harness {
    fn new(settings: PolicySettings, global_dry_run: bool) -> Self {
        let root = fixture(&[
            ("cgroup.controllers", "memory\n"),
            ("app.slice/app.service/memory.high", "max\n"),
            ("app.slice/app.service/memory.current", "0\n"),
        ]);
        let state = tempfile::tempdir().unwrap();
        let state_file = state.path().join("throttles.json");
        let log = state.path().join("incidents.jsonl");
        let cgroupfs = CgroupFs::new(root.path());
        let mut exec = Executor::new(
            cgroupfs.clone(),
            Throttles::load(&state_file).unwrap(),
            Fake::default(),
            Readiness::new(),
            Some(IncidentLog::new(&log, 1 << 20, 2)),
        );
        let passes_done = exec.take_pass_results().unwrap();
        Self {
            root,
            _state: state,
            state_file,
            log,
            planner: Planner::new(DAEMON, global_dry_run),
            exec,
            passes_done,
            cgroupfs,
            settings,
            members: vec![member(100, 0)],
            unhandled: HashSet::new(),
            t: 1000.0,
            level: Level::Normal,
            protected_inside: false,
            performed: Vec::new(),
        }
    }

    /// Writes `content` to the target cgroup's file `name`.
    fn write_file(&self, name: &str, content: &str) {
        std::fs::write(self.root.path().join("app.slice/app.service").join(name), content).unwrap();
    }

    /// Waits for the next pass applied off the loop and hands its outcomes
    /// to the planner, as the daemon loop does; returns the pass's records
    /// (not kept with the rounds' `performed`).
    fn finish_pass(&mut self) -> Vec<Performed> {
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        let done = loop {
            match self.passes_done.try_recv() {
                Ok(done) => break done,
                Err(_) if Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(5)),
                Err(e) => panic!("no pass finished: {e}"),
            }
        };
        self.planner.pass_done(self.t, done.pass, &done.results)
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.path().join("app.slice/app.service").join(name)).unwrap().trim().to_owned()
    }

    /// One tick: the target uses `usage_mib` (all in the first member) and
    /// the engine says it is at `level` now.
    fn step(&mut self, usage_mib: u64, level: Level) {
        self.t += 1.0;
        self.members[0].rss = usage_mib * MIB;
        let usage: u64 = self.members.iter().map(|m| m.rss).sum();
        let current = self.root.path().join("app.slice/app.service/memory.current");
        if current.exists() {
            // Whole, as the kernel's file is: a pass worker may read it meanwhile.
            let next = current.with_extension("next");
            std::fs::write(&next, usage.to_string()).unwrap();
            std::fs::rename(next, current).unwrap();
        }
        let mut events = Vec::new();
        if level != self.level {
            let kind = EventKind::State {
                from: self.level,
                to: level,
                usage_bytes: usage,
                limit_bytes: LIMIT,
                pressure: None,
            };
            events.push(Event { t: self.t, key: key(), kind });
            self.level = level;
        }
        self.tick(usage, &events);
    }

    /// The members as the daemon reads them before planning: each one's
    /// signal masks (caught, unless listed as unhandled).
    fn read_members(&self) -> Vec<Member> {
        let usr1 = 1 << (Signal::USR1.as_raw() - 1);
        self.members
            .iter()
            .map(|m| {
                let caught = if self.unhandled.contains(&m.id.pid) { 0 } else { usr1 };
                Member { signals: Some(SignalMasks { caught, ..Default::default() }), ..*m }
            })
            .collect()
    }

    fn tick(&mut self, usage: u64, events: &[Event]) {
        let members = self.read_members();
        let knob = self.cgroupfs.knob_reading(CGROUP);
        let key = key();
        let observed = Observed {
            key: &key,
            policy: "app",
            settings: &self.settings,
            cgroup: Some(CGROUP),
            usage_bytes: usage,
            limit_bytes: LIMIT,
            members: &members,
            protected_inside: self.protected_inside,
            knob: Some(&knob),
        };
        let decisions = self.planner.plan(self.t, events, &[observed]);
        self.apply(&decisions);
    }

    /// A tick in which the target was not seen at all.
    fn tick_without_target(&mut self) {
        self.t += 1.0;
        let decisions = self.planner.plan(self.t, &[], &[]);
        self.apply(&decisions);
    }

    fn apply(&mut self, decisions: &[Decision]) {
        let applied = self.exec.apply(decisions, Instant::now());
        let settled = self.planner.settle(&applied);
        self.exec.write_incidents(&settled.incidents);
        self.performed.extend(settled.performed);
    }

    fn shutdown(&mut self, t: f64) {
        let decisions = self.planner.shutdown(t);
        self.apply(&decisions);
        self.exec.shutdown();
    }

    fn take_performed(&mut self) -> Vec<Performed> {
        std::mem::take(&mut self.performed)
    }

    fn signals(&self) -> Vec<(u32, Signal)> {
        self.exec.signaller().sent.lock().unwrap().clone()
    }

    fn incidents(&self) -> Vec<Incident> {
        read_all(&self.log).unwrap()
    }
}

/// A policy naming the service, whose cleanup pass is one SIGUSR1: the
/// step whose timing these tests follow (the others have tests of their own).
fn settings() -> PolicySettings {
    let mut settings = PolicySettings::default();
    settings.actions.pass_wait_secs = 1.0;
    settings.actions.cooldown_secs = 5.0;
    settings.actions.cleanup = vec![CleanupStep::Signal { signal: Signal::USR1 }];
    settings
}

fn kinds(incident: &Incident) -> Vec<(ActionKind, Outcome)> {
    incident.actions.iter().map(|a| (a.action, a.outcome)).collect()
}

mod procedures;
mod steps;
