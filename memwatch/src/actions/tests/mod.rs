//! The planner and the executor together, as the daemon drives them, on a
//! fake clock against a fixture cgroupfs and a fake signaller: one call of
//! `step` is one sampling tick, with the level the engine would have said.
use std::{collections::HashSet, path::PathBuf, time::Instant};

use rustix::process::Signal;

use super::{
    executor::{Executor, Signaller},
    incident_log::{IncidentLog, read_all},
    readiness::Readiness,
    sys::{ActError, throttle_state::Throttles},
};
use crate::{
    config::{LeakAction, PolicySettings},
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

#[derive(Default)]
struct Fake {
    sent: Vec<(u32, Signal)>,
    gone: HashSet<u32>,
}

impl Signaller for Fake {
    fn send(&mut self, id: ProcessId, signal: Signal) -> Result<(), ActError> {
        if self.gone.contains(&id.pid) {
            return Err(ActError::ProcessGone { id });
        }
        self.sent.push((id.pid, signal));
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

/// A member that catches the cleanup signals (what its /proc masks would say).
fn member(pid: u32, rss_mib: u64) -> Member {
    Member { id: ProcessId { pid, start_time: 7 }, rss: rss_mib * MIB, signals: None }
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
        let exec = Executor::new(
            cgroupfs.clone(),
            Throttles::load(&state_file).unwrap(),
            Fake::default(),
            Readiness::new(),
            Some(IncidentLog::new(&log, 1 << 20, 2)),
        );
        Self {
            root,
            _state: state,
            state_file,
            log,
            planner: Planner::new(DAEMON, global_dry_run),
            exec,
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
            std::fs::write(current, usage.to_string()).unwrap();
        }
        let mut events = Vec::new();
        if level != self.level {
            let kind = EventKind::State { from: self.level, to: level, usage_bytes: usage, limit_bytes: LIMIT };
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

    fn signals(&self) -> &[(u32, Signal)] {
        &self.exec.signaller().sent
    }

    fn incidents(&self) -> Vec<Incident> {
        read_all(&self.log).unwrap()
    }
}

fn settings() -> PolicySettings {
    let mut settings = PolicySettings::default();
    settings.actions.pass_wait_secs = 1.0;
    settings.actions.cooldown_secs = 5.0;
    settings
}

fn kinds(incident: &Incident) -> Vec<(ActionKind, Outcome)> {
    incident.actions.iter().map(|a| (a.action, a.outcome)).collect()
}

mod procedures;
