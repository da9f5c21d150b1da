//! Builds the view each interval from what the tick decided: the targets as
//! the pipeline assessed them (limit, level, members), the leak verdicts
//! and actions the daemon passed on, the host's memory and the processes'
//! growth. Nothing is looked up a second time, so the view shows exactly
//! the figures memwatch acted on.
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::{
    CleanupView, EventView, HostView, LeakView, Level, ProcessView, ReloadView, StatusView, TargetView, Thresholds,
    model::{ActionCount, ActionView, ContainerView, EVENTS_LEN, HISTORY_LEN},
};
use crate::{
    cache::CacheStats,
    model::{
        container::Container,
        delta,
        sample::Snapshot,
        target_key::TargetKey,
        working_set::{CgroupMemory, Pressure},
    },
    pipeline::Assessed,
};

/// Targets beyond this many (largest usage first) are folded into one, so a
/// host with thousands of scopes cannot grow the view, the metrics or `top`.
pub const MAX_TARGETS: usize = 100;
const OTHER_TARGET: &str = "(other)";

/// One interval, as the daemon hands it to the view.
pub struct Interval<'a> {
    pub previous: &'a Snapshot,
    pub now: &'a Snapshot,
    pub host: HostView,
    pub caches: Vec<CacheStats>,
    pub interval_s: f64,
    pub unix_now: u64,
    /// The pipeline's targets this interval, sorted by key.
    pub targets: &'a [Assessed],
    /// Leak verdicts standing now, by target.
    pub leaks: &'a HashMap<TargetKey, LeakView>,
}

pub struct ViewBuilder {
    thresholds: Thresholds,
    top_processes: usize,
    history: HashMap<String, VecDeque<u64>>,
    events: VecDeque<EventView>,
    last_cleanup: Option<CleanupView>,
    last_actions: HashMap<String, ActionView>,
    actions: BTreeMap<(String, String), u64>,
    cleanup_freed: u64,
    reload: Option<ReloadView>,
}

/// A target before history and growth.
struct Judged {
    name: String,
    kind: &'static str,
    usage_bytes: u64,
    memory: Option<CgroupMemory>,
    pressure: Option<Pressure>,
    limit_bytes: u64,
    level: Level,
    leak: Option<LeakView>,
    processes: usize,
    container: Option<ContainerView>,
}

impl ViewBuilder {
    pub fn new(thresholds: Thresholds, top_processes: usize) -> Self {
        Self {
            thresholds,
            top_processes,
            history: HashMap::new(),
            events: VecDeque::new(),
            last_cleanup: None,
            last_actions: HashMap::new(),
            actions: BTreeMap::new(),
            cleanup_freed: 0,
            reload: None,
        }
    }

    /// A reloaded config's settings for the view.
    pub fn reconfigure(&mut self, thresholds: Thresholds, top_processes: usize) {
        self.thresholds = thresholds;
        self.top_processes = top_processes;
    }

    /// What the last SIGHUP came to.
    pub fn record_reload(&mut self, at_unix_s: u64, errors: Vec<String>, restart_needed: Vec<String>) {
        let applied = errors.is_empty();
        let (applied_total, rejected_total) =
            self.reload.as_ref().map_or((0, 0), |r| (r.applied_total, r.rejected_total));
        self.reload = Some(ReloadView {
            at_unix_s,
            applied,
            errors,
            restart_needed,
            applied_total: applied_total + u64::from(applied),
            rejected_total: rejected_total + u64::from(!applied),
        });
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

    pub fn build(&mut self, interval: Interval<'_>) -> StatusView {
        let Interval { previous, now, host, caches, interval_s, unix_now, targets, leaks } = interval;
        let elapsed = now.taken_at.saturating_duration_since(previous.taken_at).as_secs_f64().max(1e-3);
        // A target's container as its processes' info has it (with the
        // names read then); from its key where it has no process now.
        let container_of: HashMap<_, &Container> =
            now.processes.iter().filter_map(|p| Some((p.id, p.info.container.as_ref()?))).collect();
        let container = |t: &Assessed| {
            t.members
                .iter()
                .find_map(|m| container_of.get(&m.id).map(|c| ContainerView::from(*c)))
                .or_else(|| t.key.cgroup_path().and_then(Container::of_cgroup).as_ref().map(ContainerView::from))
        };
        let judged = targets
            .iter()
            .map(|t| Judged {
                name: t.key.to_string(),
                kind: t.key.kind().as_str(),
                usage_bytes: t.usage_bytes,
                memory: t.memory,
                pressure: t.pressure,
                limit_bytes: t.limit_bytes,
                level: t.level,
                leak: leaks.get(&t.key).cloned(),
                processes: t.members.len(),
                container: container(t),
            })
            .collect();
        let mut target_views = self.finish_targets(judged, elapsed);
        target_views.sort_by(|a, b| b.level.cmp(&a.level).then(b.usage_bytes.cmp(&a.usage_bytes)));

        let target_of: HashMap<_, &TargetKey> =
            targets.iter().flat_map(|t| t.members.iter().map(move |m| (m.id, &t.key))).collect();
        let rows = delta::diff(&previous.processes, &now.processes, &[]);
        let processes = rows
            .iter()
            .take(self.top_processes)
            .map(|row| ProcessView {
                pid: row.id.pid,
                comm: row.info.comm.clone(),
                cmdline: row.info.cmdline.clone(),
                cgroup: row.info.cgroup.clone(),
                container: row.info.container.as_ref().map(ContainerView::from),
                target: target_of.get(&row.id).map_or_else(|| "-".to_owned(), |k| k.to_string()),
                rss_bytes: row.current.rss(),
                virtual_bytes: Some(row.current.virtual_bytes).filter(|&v| v > 0),
                growth_bytes_per_s: row.rss_delta() as f64 / elapsed,
                page_faults: row.current.page_faults,
            })
            .collect();

        StatusView {
            generated_at_unix_s: unix_now,
            interval_s,
            mode: now.mode.as_str().to_owned(),
            monitoring: true,
            host,
            thresholds: self.thresholds,
            targets: target_views,
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
            config_reload: self.reload.clone(),
            // The daemon measures itself; a replay has no daemon.
            daemon: None,
        }
    }

    /// Bounds the target list, appends each reading to its history and
    /// derives growth from the previous reading.
    fn finish_targets(&mut self, mut judged: Vec<Judged>, elapsed: f64) -> Vec<TargetView> {
        judged.sort_by(|a, b| b.usage_bytes.cmp(&a.usage_bytes).then(a.name.cmp(&b.name)));
        // A target's last action is kept while the target is: process targets
        // and transient scopes come and go with new names all day.
        let all: HashSet<&str> = judged.iter().map(|j| j.name.as_str()).collect();
        self.last_actions.retain(|name, _| all.contains(name.as_str()));
        if judged.len() > MAX_TARGETS {
            let rest = judged.split_off(MAX_TARGETS - 1);
            let mut other = Judged {
                name: OTHER_TARGET.to_owned(),
                kind: "other",
                usage_bytes: 0,
                memory: None,
                pressure: None,
                limit_bytes: 0,
                level: Level::Normal,
                leak: None,
                processes: 0,
                container: None,
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
                    kind: j.kind.to_owned(),
                    usage_bytes: j.usage_bytes,
                    charged_bytes: j.memory.map(|m| m.charged_bytes),
                    pressure: j.pressure,
                    limit_bytes: j.limit_bytes,
                    level: j.level,
                    growth_bytes_per_s: growth,
                    leak: j.leak,
                    processes: j.processes,
                    container: j.container,
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "builder_tests.rs"]
mod tests;
