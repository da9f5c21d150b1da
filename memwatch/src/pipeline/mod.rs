//! The one pure path from a reading to what memwatch decides, shared by the
//! live daemon and `memwatch replay`: processes -> targets (`model::targets`)
//! -> levels and leak verdicts (`monitor`, the engine) -> decisions (the
//! planner). Whatever it needs beyond the processes it asks of `Facts`: the
//! daemon answers from the system (and records the answers), a replay from
//! the recording. So a replay of a recording decides exactly what the live
//! run decided.
pub mod facts;
pub mod monitor;
pub mod replay;
mod sole_owner;

use crate::{
    config::{Config, cleanup::CleanupStep},
    engine::{
        EngineOptions, Event, EventKind, Level,
        planner::{Applied, Decision, Member, Observed, Performed, Planner, Settled},
    },
    model::{
        cgroup::KnobReading,
        incident::ActionRecord,
        sample::ProcessSample,
        target_key::TargetKey,
        targets,
        working_set::{CgroupMemory, Pressure},
    },
};
pub use facts::Facts;
use monitor::{Measured, Monitor};

/// One target as this interval saw and judged it: what the planner was
/// given, and what the view shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessed {
    pub key: TargetKey,
    /// Index of the policy that applies; `None`: the defaults.
    pub policy: Option<usize>,
    pub cgroup: Option<String>,
    /// What the levels read: a cgroup target's working set where its
    /// cgroup could be read and holds no other target, else its processes'
    /// RSS summed.
    pub usage_bytes: u64,
    /// Its cgroup's own accounting, where `usage_bytes` came from it.
    pub memory: Option<CgroupMemory>,
    /// Its cgroup's memory pressure (cgroup v2).
    pub pressure: Option<Pressure>,
    /// The limit it was judged against.
    pub limit_bytes: u64,
    pub level: Level,
    pub members: Vec<Member>,
    /// Read where the planner may throttle this interval (cgroup targets only).
    pub knob: Option<KnobReading>,
    /// A protected target shares this target's cgroup.
    pub protected_inside: bool,
}

/// What one interval brought: the engine's events and the planner's decisions.
#[derive(Debug, Default)]
pub struct Tick {
    pub events: Vec<Event>,
    pub decisions: Vec<Decision>,
    /// Targets beyond `daemon.max_targets`, folded into their cgroups or
    /// left unjudged this interval.
    pub folded: usize,
}

pub struct Pipeline {
    monitor: Monitor,
    planner: Planner,
    /// The last interval's targets, sorted by key: for the view and for
    /// requests between readings.
    targets: Vec<Assessed>,
    /// A config was loaded since `targets` were judged: their policy indices
    /// and members' matches are the old config's, not fit to act on.
    reloaded_since_reading: bool,
}

impl Pipeline {
    /// `host_total` is the host's memory (the last-resort limit and the base
    /// of "NN%" limits); `daemon_pid` is never signalled.
    pub fn new(config: Config, host_total: u64, options: EngineOptions, daemon_pid: u32) -> Self {
        let planner = Planner::new(daemon_pid, config.actions.dry_run);
        Self {
            monitor: Monitor::new(config, host_total, options),
            planner,
            targets: Vec::new(),
            reloaded_since_reading: false,
        }
    }

    pub fn config(&self) -> &Config {
        self.monitor.config()
    }

    /// A reloaded config, from the next reading on. Open episodes go on under
    /// the policy that now matches their target.
    pub fn set_config(&mut self, config: Config) {
        self.planner.set_global_dry_run(config.actions.dry_run);
        self.monitor.set_config(config);
        self.reloaded_since_reading = true;
    }

    /// Whether the last interval's targets were judged under the config in
    /// force: after a reload, not until the next reading. (A policy added
    /// at the top shifts every index, so an old target's index would name
    /// another policy, perhaps one that does not protect it.)
    pub fn targets_fit_to_act_on(&self) -> bool {
        !self.reloaded_since_reading
    }

    pub fn planner(&self) -> &Planner {
        &self.planner
    }

    pub fn planner_mut(&mut self) -> &mut Planner {
        &mut self.planner
    }

    /// Settles a round's outcomes (`Planner::settle`), telling the engine
    /// what memwatch's cleanups freed.
    pub fn settle(&mut self, applied: &[Applied]) -> Settled {
        let settled = self.planner.settle(applied);
        self.note_freed(&settled.performed);
        settled
    }

    /// A pass applied off the loop is done (`Planner::pass_done`), telling
    /// the engine what its steps freed.
    pub fn pass_done(&mut self, t: f64, pass: u64, results: &[Applied]) -> Vec<Performed> {
        let performed = self.planner.pass_done(t, pass, results);
        self.note_freed(&performed);
        performed
    }

    /// A fall a cleanup step caused is memwatch's, not the workload's: the
    /// leak detector adds it back (`Engine::note_freed`).
    fn note_freed(&mut self, performed: &[Performed]) {
        for p in performed {
            if let Some(freed) = p.record.freed_bytes.filter(|&f| f > 0)
                && p.record.action.frees_on_its_own()
            {
                self.monitor.note_freed(&p.target, p.record.t, freed.unsigned_abs());
            }
        }
    }

    /// The last interval's targets, sorted by key.
    pub fn targets(&self) -> &[Assessed] {
        &self.targets
    }

    /// Whether `key` was judged on its cgroup's working set last interval;
    /// `None` for a target not seen then.
    fn on_working_set_before(&self, key: &TargetKey) -> Option<bool> {
        let index = self.targets.binary_search_by(|a| a.key.cmp(key)).ok()?;
        Some(self.targets[index].memory.is_some())
    }

    /// One interval at `t` (unix seconds) over the live `processes`.
    pub fn tick(&mut self, t: f64, processes: &[ProcessSample], facts: &mut dyn Facts) -> Tick {
        let mut events = Vec::new();
        let mut assessed = Vec::new();
        let (targets, folded) =
            targets::cap(targets::build(processes, self.config()), self.config().daemon.max_targets);
        let sole_owners = sole_owner::of_their_cgroups(&targets);
        for (target, sole_owner) in targets.into_iter().zip(sole_owners) {
            let observed_limit = target.limit_cgroup.as_deref().and_then(|c| facts.cgroup_limit(c));
            let cgroup_memory = match (&target.key, &target.cgroup) {
                (TargetKey::Cgroup(_), Some(cgroup)) => facts.cgroup_memory(cgroup),
                _ => None,
            };
            // The cgroup's charge counts every process in it and below:
            // the target's own figure only where no other target is there.
            // Its pressure is the cgroup's whoever else is in it.
            let memory = cgroup_memory.filter(|_| sole_owner);
            let pressure = cgroup_memory.and_then(|m| m.pressure);
            let usage_bytes = memory.map_or(target.usage_bytes, |m| m.working_set_bytes());
            // A figure that changed what it counts (another target moved
            // in, the cgroup could not be read) starts a new trend: the
            // step between the two is no fall and no rise of the workload.
            if self.on_working_set_before(&target.key).is_some_and(|before| before != memory.is_some()) {
                self.monitor.restart_trend(t, &target.key, &mut events);
            }
            let measured = Measured {
                usage_bytes,
                cgroup_limit: observed_limit,
                pressure: pressure.map(|p| p.some_avg10),
                heap_ceiling: target.heap_ceiling,
            };
            self.monitor.observe(t, &target.key, target.policy, measured, &mut events);
            let members = target
                .members
                .iter()
                .map(|m| Member { id: m.id, rss: m.rss, signals: None, matched: m.matched, runtime: None })
                .collect();
            assessed.push(Assessed {
                limit_bytes: self.monitor.limit_bytes(target.policy, observed_limit),
                level: self.monitor.level(&target.key).unwrap_or_default(),
                cgroup: target.cgroup,
                key: target.key,
                policy: target.policy,
                usage_bytes,
                memory,
                pressure,
                members,
                knob: None,
                protected_inside: false,
            });
        }
        // Targets are sorted by key: a binary search keeps this linear-ish.
        self.monitor.retain(|key| assessed.binary_search_by(|a| a.key.cmp(key)).is_ok());
        self.mark_protected_neighbours(&mut assessed);
        for target in &mut assessed {
            if self.planner.needs_readings(&target.key, target.level, &events) {
                self.read_for_acting(target, facts);
            }
        }
        self.targets = assessed;
        self.reloaded_since_reading = false;
        let observed = observe(self.monitor.config(), &self.targets);
        let decisions = self.planner.plan(t, &events, &observed);
        Tick { events, decisions, folded }
    }

    /// An operator's cleanup request on `key` between readings (see
    /// `Planner::request_cleanup`), on the last reading's figures.
    pub fn request_cleanup(
        &mut self,
        t: f64,
        key: &TargetKey,
        facts: &mut dyn Facts,
    ) -> Option<Result<Vec<Decision>, ActionRecord>> {
        debug_assert!(self.targets_fit_to_act_on(), "a request on targets of a config since replaced");
        let index = self.targets.binary_search_by(|a| a.key.cmp(key)).ok()?;
        let mut target = self.targets[index].clone();
        self.read_for_acting(&mut target, facts);
        self.targets[index] = target;
        let config = self.monitor.config();
        let observed = observe_one(config, &self.targets[index]);
        Some(self.planner.request_cleanup(t, &observed))
    }

    /// What acting on `target` needs beyond its figures: each member's
    /// signal dispositions, the runtime of each it may send a cleanup
    /// signal to (only those: telling a runtime reads its executable), and
    /// its cgroup's knob.
    fn read_for_acting(&self, target: &mut Assessed, facts: &mut dyn Facts) {
        let settings = self.monitor.config().settings(target.policy);
        let signals = settings.actions.cleanup.iter().any(|s| matches!(s, CleanupStep::Signal { .. }));
        for member in &mut target.members {
            member.signals = facts.signals(member.id);
            if signals && member.matched {
                member.runtime = facts.runtime(member.id);
            }
        }
        if target.key.cgroup_path().is_some()
            && let Some(cgroup) = &target.cgroup
        {
            target.knob = Some(facts.knob(cgroup));
        }
    }

    /// Throttling a cgroup throttles every process in it: a target sharing
    /// its cgroup with a protected one is never throttled.
    fn mark_protected_neighbours(&self, assessed: &mut [Assessed]) {
        let config = self.monitor.config();
        let protected: Vec<(TargetKey, String)> = assessed
            .iter()
            .filter(|a| config.settings(a.policy).protect)
            .filter_map(|a| Some((a.key.clone(), a.cgroup.clone()?)))
            .collect();
        for target in assessed.iter_mut() {
            target.protected_inside = target
                .cgroup
                .as_ref()
                .is_some_and(|cgroup| protected.iter().any(|(key, other)| *key != target.key && other == cgroup));
        }
    }
}

impl Planner {
    /// Whether the planner may signal or throttle `key` this interval, so
    /// its members' dispositions and its knob must be read: at warning or
    /// above, with a leak verdict, or with a procedure or episode open.
    /// Elsewhere they are not read (a /proc walk per thread of every
    /// process each interval would cost more than the whole rest).
    pub fn needs_readings(&self, key: &TargetKey, level: Level, events: &[Event]) -> bool {
        level >= Level::Warning
            || self.is_active(key)
            || self.has_leak(key)
            || events.iter().any(|e| e.key == *key && matches!(e.kind, EventKind::LeakDetected(_)))
    }
}

fn observe<'a>(config: &'a Config, targets: &'a [Assessed]) -> Vec<Observed<'a>> {
    targets.iter().map(|t| observe_one(config, t)).collect()
}

fn observe_one<'a>(config: &'a Config, target: &'a Assessed) -> Observed<'a> {
    Observed {
        key: &target.key,
        policy: config.policy_name(target.policy),
        settings: config.settings(target.policy),
        // Only a cgroup target may be throttled: a process target shares
        // its cgroup with others.
        cgroup: target.key.cgroup_path().and(target.cgroup.as_deref()),
        usage_bytes: target.usage_bytes,
        limit_bytes: target.limit_bytes,
        members: &target.members,
        protected_inside: target.protected_inside,
        knob: target.knob.as_ref(),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
