//! Builds the view each interval from what exists today: the host from
//! /proc/meminfo, per-process samples, and per-unit (else per-cgroup)
//! aggregates as provisional targets whose limit is the cgroup's memory
//! limit or else the host's MemTotal. The engine (issue 3) replaces the
//! target and level parts; the rest stays.
use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    path::PathBuf,
};

use procfs::process::Process;

use super::{
    CleanupView, EventView, HostView, Level, ProcessView, StatusView, TargetView, Thresholds,
    cgroups_old::CgroupFs,
    model::{ActionCount, ActionView, EVENTS_LEN, HISTORY_LEN},
};
use crate::{cache::CacheStats, model::sample::Snapshot};

/// Targets beyond this many (largest usage first) are folded into one, so a
/// host with thousands of scopes cannot grow the view, the metrics or `top`.
pub const MAX_TARGETS: usize = 100;
const OTHER_TARGET: &str = "(other)";

pub struct ViewBuilder {
    thresholds: Thresholds,
    top_processes: usize,
    proc_root: PathBuf,
    cgroups: CgroupFs,
    history: HashMap<String, VecDeque<u64>>,
    levels: HashMap<String, Level>,
    events: VecDeque<EventView>,
    last_cleanup: Option<CleanupView>,
    last_actions: HashMap<String, ActionView>,
    actions: BTreeMap<(String, String), u64>,
    cleanup_freed: u64,
}

/// One target as whoever judges targets (the engine, or the provisional
/// stand-in below) sees it this interval, before history and growth.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub name: String,
    pub kind: String,
    pub usage_bytes: u64,
    pub limit_bytes: u64,
    pub level: Level,
    pub leak: Option<super::LeakView>,
    pub processes: usize,
}

/// What a provisional target is, before its level.
struct Aggregate {
    kind: &'static str,
    cgroup: Option<String>,
    usage: u64,
    processes: usize,
}

/// Which target a process belongs to: its unit, else its cgroup, else the host.
fn target_of(info: &crate::model::sample::ProcessInfo) -> (String, &'static str) {
    match (&info.unit, &info.cgroup) {
        (Some(unit), _) => (unit.clone(), "unit"),
        (None, Some(cgroup)) => (cgroup.clone(), "cgroup"),
        (None, None) => ("host".to_owned(), "host"),
    }
}

impl ViewBuilder {
    pub fn new(thresholds: Thresholds, top_processes: usize, proc_root: PathBuf, cgroups: CgroupFs) -> Self {
        Self {
            thresholds,
            top_processes,
            proc_root,
            cgroups,
            history: HashMap::new(),
            levels: HashMap::new(),
            events: VecDeque::new(),
            last_cleanup: None,
            last_actions: HashMap::new(),
            actions: BTreeMap::new(),
            cleanup_freed: 0,
        }
    }

    pub fn event(&mut self, at_unix_s: u64, target: Option<String>, message: String) {
        if self.events.len() == EVENTS_LEN {
            self.events.pop_front();
        }
        self.events.push_back(EventView { at_unix_s, target, message });
    }

    /// A requested cleanup (`POST /health/gc`), whatever its outcome. The
    /// signals it sent are counted through `record_action` like any other.
    pub fn record_cleanup(&mut self, cleanup: CleanupView, per_target: Vec<(String, ActionView)>) {
        self.cleanup_freed += cleanup.freed_bytes;
        self.last_actions.extend(per_target);
        self.last_cleanup = Some(cleanup);
    }

    /// One action the executor took: counted by action and result, and
    /// shown as the target's last action.
    pub fn record_action(&mut self, target: String, action: ActionView) {
        *self.actions.entry((action.action.clone(), action.result.clone())).or_default() += 1;
        self.last_actions.insert(target, action);
    }

    /// Without the engine: targets per unit (else cgroup) with provisional levels.
    pub fn build(
        &mut self,
        previous: &Snapshot,
        now: &Snapshot,
        host: HostView,
        caches: Vec<CacheStats>,
        interval_s: f64,
        unix_now: u64,
    ) -> StatusView {
        let judged = self.provisional_targets(now, &host, unix_now);
        self.build_judged(previous, now, host, caches, interval_s, unix_now, judged, &|_, info| target_of(info).0)
    }

    /// With targets judged elsewhere (the engine); `target_of` names the
    /// target a process counts in.
    #[expect(clippy::too_many_arguments, reason = "one interval's inputs, all needed")]
    pub fn build_judged(
        &mut self,
        previous: &Snapshot,
        now: &Snapshot,
        host: HostView,
        caches: Vec<CacheStats>,
        interval_s: f64,
        unix_now: u64,
        judged: Vec<Judged>,
        target_of: &dyn Fn(u32, &crate::model::sample::ProcessInfo) -> String,
    ) -> StatusView {
        let elapsed = now.taken_at.saturating_duration_since(previous.taken_at).as_secs_f64().max(1e-3);
        let rows = crate::model::delta::diff(&previous.processes, &now.processes, &[]);
        let mut targets = self.finish_targets(judged, elapsed);
        targets.sort_by(|a, b| b.level.cmp(&a.level).then(b.usage_bytes.cmp(&a.usage_bytes)));

        let processes = rows
            .iter()
            .take(self.top_processes)
            .map(|row| ProcessView {
                pid: row.id.pid,
                comm: row.info.comm.clone(),
                cmdline: row.info.cmdline.clone(),
                cgroup: row.info.cgroup.clone(),
                target: target_of(row.id.pid, &row.info),
                rss_bytes: row.current.rss(),
                virtual_bytes: Process::new_with_root(self.proc_root.join(row.id.pid.to_string()))
                    .and_then(|p| p.stat())
                    .ok()
                    .map(|s| s.vsize),
                growth_bytes_per_s: row.rss_delta() as f64 / elapsed,
                page_faults: row.current.page_faults,
                pinned: false,
            })
            .collect();

        StatusView {
            generated_at_unix_s: unix_now,
            interval_s,
            mode: now.mode.as_str().to_owned(),
            monitoring: true,
            host,
            thresholds: self.thresholds,
            targets,
            processes,
            caches,
            last_cleanup: self.last_cleanup.clone(),
            events: self.events.iter().cloned().collect(),
            actions: self
                .actions
                .iter()
                .map(|((action, result), count)| ActionCount {
                    action: action.clone(),
                    result: result.clone(),
                    count: *count,
                })
                .collect(),
            cleanup_freed_bytes: self.cleanup_freed,
            bpf_events_lost: now.dropped.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        }
    }

    /// The stand-in for the engine: processes summed per unit (else cgroup,
    /// else host), limit from the cgroup (else the host), level from the
    /// default thresholds without hysteresis; level changes become events.
    fn provisional_targets(&mut self, now: &Snapshot, host: &HostView, unix_now: u64) -> Vec<Judged> {
        let mut aggregates: HashMap<String, Aggregate> = HashMap::new();
        for sample in &now.processes {
            let (name, kind) = target_of(&sample.info);
            let entry = aggregates.entry(name).or_insert_with(|| Aggregate {
                kind,
                cgroup: sample.info.cgroup.clone(),
                usage: 0,
                processes: 0,
            });
            entry.usage += sample.counters.rss();
            entry.processes += 1;
        }
        let mut judged = Vec::with_capacity(aggregates.len());
        for (name, a) in aggregates {
            let cgroup_limit = a.cgroup.as_deref().and_then(|c| self.cgroups.info(c).limit);
            let limit = cgroup_limit.map_or(host.total, |l| l.min(host.total));
            let ratio = if limit == 0 { 0.0 } else { a.usage as f64 / limit as f64 };
            let level = self.thresholds.level_for(ratio);
            let previous_level = self.levels.insert(name.clone(), level);
            if let Some(from) = previous_level.filter(|p| *p != level) {
                self.event(
                    unix_now,
                    Some(name.clone()),
                    format!("{name}: {} -> {} ({:.0}% of limit)", from.as_str(), level.as_str(), ratio * 100.0),
                );
            }
            judged.push(Judged {
                name,
                kind: a.kind.to_owned(),
                usage_bytes: a.usage,
                limit_bytes: limit,
                level,
                leak: None,
                processes: a.processes,
            });
        }
        let names: HashSet<&str> = judged.iter().map(|j| j.name.as_str()).collect();
        self.levels.retain(|name, _| names.contains(name.as_str()));
        judged
    }

    /// The cgroup cache, for limits read elsewhere (the engine's reader).
    pub fn cgroups(&self) -> &CgroupFs {
        &self.cgroups
    }

    /// Bounds the target list, appends each reading to its history and
    /// derives growth from the previous reading.
    fn finish_targets(&mut self, mut judged: Vec<Judged>, elapsed: f64) -> Vec<TargetView> {
        judged.sort_by(|a, b| b.usage_bytes.cmp(&a.usage_bytes).then(a.name.cmp(&b.name)));
        if judged.len() > MAX_TARGETS {
            let rest = judged.split_off(MAX_TARGETS - 1);
            let mut other = Judged {
                name: OTHER_TARGET.to_owned(),
                kind: "other".into(),
                usage_bytes: 0,
                limit_bytes: 0,
                level: Level::Normal,
                leak: None,
                processes: 0,
            };
            for j in rest {
                other.usage_bytes += j.usage_bytes;
                other.limit_bytes = other.limit_bytes.max(j.limit_bytes);
                other.level = other.level.max(j.level);
                other.processes += j.processes;
            }
            judged.push(other);
        }

        // Forget targets that are gone, so the history stays bounded too.
        let names: HashSet<&str> = judged.iter().map(|j| j.name.as_str()).collect();
        self.history.retain(|name, _| names.contains(name.as_str()));
        judged
            .into_iter()
            .map(|j| {
                let history = self.history.entry(j.name.clone()).or_default();
                let growth = history.back().map_or(0.0, |&last| (j.usage_bytes as f64 - last as f64) / elapsed);
                if history.len() == HISTORY_LEN {
                    history.pop_front();
                }
                history.push_back(j.usage_bytes);
                TargetView {
                    last_action: self.last_actions.get(&j.name).cloned(),
                    history: history.iter().copied().collect(),
                    name: j.name,
                    kind: j.kind,
                    usage_bytes: j.usage_bytes,
                    limit_bytes: j.limit_bytes,
                    level: j.level,
                    growth_bytes_per_s: growth,
                    leak: j.leak,
                    processes: j.processes,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::Arc,
        time::{Duration, Instant},
    };

    use super::*;
    use crate::{
        cache::CacheLimits,
        model::sample::{Counters, Mode, ProcessId, ProcessInfo, ProcessSample},
    };

    fn sample(pid: u32, unit: &str, rss: u64) -> ProcessSample {
        ProcessSample {
            id: ProcessId { pid, start_time: 1 },
            info: Arc::new(ProcessInfo {
                comm: format!("p{pid}"),
                unit: Some(unit.into()),
                cgroup: Some(format!("/system.slice/{unit}")),
                ..Default::default()
            }),
            counters: Counters { rss_anon: rss, ..Default::default() },
        }
    }

    fn snapshot(at: Instant, processes: Vec<ProcessSample>) -> Snapshot {
        Snapshot { taken_at: at, mode: Mode::Procfs, processes, exited: vec![], dropped: vec![("ringbuf", 3)] }
    }

    #[test]
    fn targets_aggregate_their_processes_with_growth_levels_history_and_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = ViewBuilder::new(
            Thresholds::default(),
            1,
            dir.path().to_path_buf(),
            CgroupFs::new(dir.path(), CacheLimits::default()),
        );
        let host = HostView { total: 1000, used: 500, usage_ratio: 0.5, ..Default::default() };
        let t0 = Instant::now();
        let a =
            snapshot(t0, vec![sample(1, "a.service", 100), sample(2, "a.service", 100), sample(3, "b.service", 10)]);
        let b = snapshot(
            t0 + Duration::from_secs(2),
            vec![sample(1, "a.service", 500), sample(2, "a.service", 350), sample(3, "b.service", 10)],
        );
        let first = builder.build(&a, &a, host.clone(), vec![], 2.0, 100);
        assert_eq!(first.target("a.service").unwrap().level, Level::Normal);
        let view = builder.build(&a, &b, host, vec![], 2.0, 102);

        let t = view.target("a.service").unwrap();
        assert_eq!((t.usage_bytes, t.limit_bytes, t.processes), (850, 1000, 2));
        assert_eq!(t.level, Level::Warning);
        assert!((t.growth_bytes_per_s - 325.0).abs() < 1e-6, "{}", t.growth_bytes_per_s);
        assert_eq!(t.history, [200, 850]);
        assert_eq!(view.targets[0].name, "a.service", "worst level first");
        assert_eq!(view.processes.len(), 1, "only the top N processes");
        assert_eq!(view.processes[0].pid, 1);
        assert_eq!(view.events.len(), 1);
        assert!(view.events[0].message.contains("normal -> warning"), "{:?}", view.events);
        assert_eq!(view.bpf_events_lost, [("ringbuf".to_owned(), 3)]);
    }

    #[test]
    fn target_count_and_history_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = ViewBuilder::new(
            Thresholds::default(),
            50,
            dir.path().to_path_buf(),
            CgroupFs::new(dir.path(), CacheLimits::default()),
        );
        let host = HostView { total: 1 << 40, ..Default::default() };
        let t0 = Instant::now();
        let mut last = None;
        for round in 0..(HISTORY_LEN as u32 + 10) {
            let procs = (0..300).map(|i| sample(i + 1, &format!("u{}-{round}.scope", i % 150), 10)).collect();
            let s = snapshot(t0 + Duration::from_secs(round as u64), procs);
            let view = builder.build(last.as_ref().unwrap_or(&s), &s, host.clone(), vec![], 1.0, 0);
            assert_eq!(view.targets.len(), MAX_TARGETS);
            assert!(view.target(OTHER_TARGET).is_some());
            last = Some(s);
        }
        assert!(builder.history.len() <= MAX_TARGETS);
        assert!(builder.history.values().all(|h| h.len() <= HISTORY_LEN));
    }

    #[test]
    fn judged_targets_keep_their_verdicts_and_gain_history_and_growth() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = ViewBuilder::new(
            Thresholds::default(),
            5,
            dir.path().to_path_buf(),
            CgroupFs::new(dir.path(), CacheLimits::default()),
        );
        let judged = |usage| {
            vec![Judged {
                name: "cgroup:/system.slice/a.service".into(),
                kind: "cgroup".into(),
                usage_bytes: usage,
                limit_bytes: 1000,
                level: Level::Critical,
                leak: Some(crate::view::LeakView {
                    slope_bytes_per_s: 5.0,
                    confidence: 0.99,
                    time_to_limit_s: Some(20.0),
                }),
                processes: 1,
            }]
        };
        let t0 = Instant::now();
        let a = snapshot(t0, vec![sample(1, "a.service", 100)]);
        let b = snapshot(t0 + Duration::from_secs(4), vec![sample(1, "a.service", 140)]);
        let name = |_: u32, _: &ProcessInfo| "cgroup:/system.slice/a.service".to_owned();
        builder.build_judged(&a, &a, HostView::default(), vec![], 4.0, 0, judged(900), &name);
        let view = builder.build_judged(&a, &b, HostView::default(), vec![], 4.0, 4, judged(940), &name);
        let t = &view.targets[0];
        assert_eq!((t.level, t.usage_bytes, t.limit_bytes), (Level::Critical, 940, 1000));
        assert_eq!(t.leak.as_ref().unwrap().time_to_limit_s, Some(20.0));
        assert_eq!(t.history, [900, 940]);
        assert!((t.growth_bytes_per_s - 10.0).abs() < 1e-9);
        assert_eq!(view.processes[0].target, "cgroup:/system.slice/a.service");
        assert!(view.events.is_empty(), "level events come from the engine on this path");
    }

    #[test]
    fn actions_the_executor_took_are_counted_by_action_and_result() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = ViewBuilder::new(
            Thresholds::default(),
            1,
            dir.path().to_path_buf(),
            CgroupFs::new(dir.path(), CacheLimits::default()),
        );
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
        let view = builder.build(&now, &now, HostView::default(), vec![], 1.0, 10);
        let count = |a: &str, r: &str| view.actions.iter().find(|c| c.action == a && c.result == r).map(|c| c.count);
        assert_eq!(count("signal", "ok"), Some(2));
        assert_eq!(count("clamp", "dry_run"), Some(1));
        assert_eq!(builder.last_actions.get("cgroup:/b").map(|a| a.action.as_str()), Some("clamp"));
    }
}
