//! From a snapshot of processes to the targets the engine judges.
//!
//! Each process belongs to exactly one target:
//! - a policy with `target = "cgroup"` that matches any process of a cgroup
//!   claims the whole cgroup: one target, its processes' RSS summed;
//! - a policy with `target = "process"` makes each matching process a target
//!   of its own (when both apply, the earlier policy wins, as everywhere);
//! - processes no policy matches are summed per cgroup under `[defaults]`;
//!   a container counts as one cgroup (its own, with its nested ones), so
//!   on a Kubernetes or Docker host each container is a target.
//!   Watching every process alone would bury the few that matter under a
//!   thousand short-lived shells; per cgroup is per service on a systemd
//!   host, which is what an operator acts on. Processes with no known cgroup
//!   (gone before /proc could be read) are left out.
//!
//! Keys (`TargetKey`) say what the target is, so `memwatch replay` can
//! match policies on a recorded trace.
use std::collections::BTreeMap;

use crate::{
    config::{Config, Granularity, Identity},
    model::{
        container::Container,
        heap_ceiling::HeapCeiling,
        sample::{ProcessId, ProcessInfo, ProcessSample},
        target_key::{TargetKey, TargetKind},
    },
    sources::cgroupfs::unit_from_cgroup,
};

/// One process of a target, with its resident memory this interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetMember {
    pub id: ProcessId,
    pub rss: u64,
    /// The target's policy matched this process itself, not only a process
    /// of its cgroup: only these may get the policy's cleanup signal.
    pub matched: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key: TargetKey,
    /// Index of the policy that applies; `None`: the defaults.
    pub policy: Option<usize>,
    pub usage_bytes: u64,
    /// The target's cgroup: where it is throttled.
    pub cgroup: Option<String>,
    /// The deepest cgroup holding every member: its limit (the smallest on
    /// its path) is the one in force. Deeper than `cgroup` for a container
    /// whose runtime limits a nested cgroup (podman's `.../container`).
    pub limit_cgroup: Option<String>,
    /// Sorted by process identity.
    pub members: Vec<TargetMember>,
    /// The sum of its members' heap ceilings, when every member declares
    /// one (a JVM alone, or a container holding only JVMs).
    pub heap_ceiling: Option<HeapCeiling>,
}

/// The policy for a key read from a trace of the first format (keys
/// only): what the key tells about its target. Keys of any other form
/// match only policies with no criteria.
pub fn policy_for_key(config: &Config, key: &TargetKey) -> Option<usize> {
    let unit = key.cgroup_path().and_then(unit_from_cgroup);
    let container = key.cgroup_path().and_then(Container::of_cgroup);
    let (container, pod_uid) = container_ids(container.as_ref());
    let identity = match key {
        TargetKey::Cgroup(path) => {
            Identity { cgroup: Some(path), unit: unit.as_deref(), container, pod_uid, ..Default::default() }
        }
        TargetKey::Process { comm, .. } => Identity { process: Some(comm), ..Default::default() },
        TargetKey::Other(_) => Identity::default(),
    };
    config.policy_for(&identity)
}

/// The container id and pod uid policies match on.
fn container_ids(container: Option<&Container>) -> (Option<&str>, Option<&str>) {
    let id = container.map(|c| c.id.as_str());
    (id, container.and_then(|c| c.pod.as_ref()).map(|p| p.uid.as_str()))
}

/// Who a process is for matching. Inside a container, its cgroup and unit
/// are the container's (`container_unit`): a host policy on `cron.service`
/// must not claim a container because a cron.service runs inside it.
fn identity<'a>(sample: &'a ProcessSample, container_unit: Option<&'a str>) -> Identity<'a> {
    let info = &sample.info;
    let (container, pod_uid) = container_ids(info.container.as_ref());
    let (cgroup, unit) = match &info.container {
        Some(c) => (Some(c.cgroup.as_str()), container_unit),
        None => (info.cgroup.as_deref(), info.unit.as_deref()),
    };
    Identity {
        unit,
        cgroup,
        process: Some(info.comm.as_str()),
        // The first argument is the executable as started; good enough for
        // path globs and free (the exe link would cost a readlink per process).
        exe: info.cmdline.split(' ').next().filter(|s| !s.is_empty()),
        container,
        pod_uid,
    }
}

/// The cgroup a process is grouped by: its container's own cgroup when it
/// runs in one (a container's nested cgroups are one target, measured
/// against the container's limit), else its own.
fn grouping_cgroup(info: &ProcessInfo) -> Option<&str> {
    info.container.as_ref().map(|c| c.cgroup.as_str()).or(info.cgroup.as_deref())
}

/// The length of the longest cgroup path both `a` and `b` are in
/// ("/a/b" and "/a/bc" share "/a", not "/a/b").
fn common_ancestor_len(a: &str, b: &str) -> usize {
    if a == b {
        return a.len();
    }
    let mut len = 0;
    for (i, (x, y)) in a.bytes().zip(b.bytes()).enumerate() {
        if x != y {
            break;
        }
        if x == b'/' {
            len = i;
        }
    }
    let shorter = a.len().min(b.len());
    let whole = a.as_bytes()[..shorter] == b.as_bytes()[..shorter]
        && [a, b].iter().all(|p| p.len() == shorter || p.as_bytes()[shorter] == b'/');
    if whole { shorter } else { len.max(1) }
}

/// Targets of one snapshot, sorted by key.
pub fn build(processes: &[ProcessSample], config: &Config) -> Vec<Target> {
    let container_units: Vec<Option<String>> =
        processes.iter().map(|p| p.info.container.as_ref().and_then(|c| unit_from_cgroup(&c.cgroup))).collect();
    let matched: Vec<Option<usize>> = processes
        .iter()
        .zip(&container_units)
        .map(|(p, unit)| config.policy_for(&identity(p, unit.as_deref())))
        .collect();
    let mut claims: BTreeMap<&str, usize> = BTreeMap::new();
    for (process, policy) in processes.iter().zip(&matched) {
        if let (Some(policy), Some(cgroup)) = (*policy, grouping_cgroup(&process.info))
            && config.policies[policy].granularity == Granularity::Cgroup
        {
            let claim = claims.entry(cgroup).or_insert(policy);
            *claim = (*claim).min(policy);
        }
    }
    let mut targets: BTreeMap<TargetKey, Target> = BTreeMap::new();
    for (process, own) in processes.iter().zip(matched) {
        let cgroup = grouping_cgroup(&process.info);
        let claim = cgroup.and_then(|c| claims.get(c).copied());
        let alone = match own {
            Some(p) if config.policies[p].granularity == Granularity::Process => claim.is_none_or(|c| p < c),
            // A cgroup policy on a process with no cgroup: watch it alone.
            Some(_) => cgroup.is_none(),
            None => false,
        };
        let (key, policy) = if alone {
            (TargetKey::process(process.id.pid, &process.info.comm), own)
        } else if let Some(cgroup) = cgroup {
            (TargetKey::cgroup(cgroup), claim)
        } else {
            continue;
        };
        let target = targets.entry(key.clone()).or_insert_with(|| Target {
            key,
            policy,
            usage_bytes: 0,
            cgroup: cgroup.map(str::to_owned),
            limit_cgroup: process.info.cgroup.clone(),
            members: Vec::new(),
            heap_ceiling: Some(HeapCeiling::hard(0)),
        });
        if let (Some(common), Some(own)) = (&mut target.limit_cgroup, &process.info.cgroup) {
            common.truncate(common_ancestor_len(common, own));
        }
        let rss = process.counters.rss();
        target.usage_bytes += rss;
        target.heap_ceiling = target.heap_ceiling.zip(process.info.heap_ceiling).and_then(|(sum, own)| sum.plus(own));
        let matched = target.policy.is_some() && own == target.policy;
        target.members.push(TargetMember { id: process.id, rss, matched });
    }
    let mut targets: Vec<Target> = targets.into_values().collect();
    for target in &mut targets {
        target.members.sort_by_key(|m| m.id);
    }
    targets
}

/// At most `max` targets, largest usage first kept: process targets
/// beyond that are folded into their cgroup's target (created under
/// `[defaults]` if none), and if cgroups alone are still too many, the
/// smallest are left unjudged. Returns the targets, sorted by key, and how
/// many were folded or left out, so a host with 100k processes matched one
/// by one costs at most `max` histories.
pub fn cap(targets: Vec<Target>, max: usize) -> (Vec<Target>, usize) {
    if targets.len() <= max {
        return (targets, 0);
    }
    let before = targets.len();
    let mut by_usage = targets;
    by_usage.sort_by(|a, b| b.usage_bytes.cmp(&a.usage_bytes).then_with(|| a.key.cmp(&b.key)));
    let overflow = by_usage.split_off(max.min(by_usage.len()));
    let mut kept: BTreeMap<TargetKey, Target> = by_usage.into_iter().map(|t| (t.key.clone(), t)).collect();
    for target in overflow {
        let Some(cgroup) = target.cgroup.clone().filter(|_| target.key.kind() == TargetKind::Process) else {
            continue;
        };
        let key = TargetKey::cgroup(&cgroup);
        let into = kept.entry(key.clone()).or_insert_with(|| Target {
            key,
            policy: None,
            usage_bytes: 0,
            limit_cgroup: Some(cgroup.clone()),
            cgroup: Some(cgroup),
            members: Vec::new(),
            heap_ceiling: None,
        });
        into.usage_bytes += target.usage_bytes;
        // What was folded in may not have declared one.
        into.heap_ceiling = into.heap_ceiling.zip(target.heap_ceiling).and_then(|(sum, own)| sum.plus(own));
        // Matched stays true only where the policy it matched is the one
        // of the target it is folded into: another policy's signal is not its.
        let same_policy = into.policy.is_some() && into.policy == target.policy;
        into.members
            .extend(target.members.into_iter().map(|m| TargetMember { matched: m.matched && same_policy, ..m }));
        into.members.sort_by_key(|m| m.id);
    }
    // Folding can add cgroup targets: keep the largest `max` of them.
    let mut targets: Vec<Target> = kept.into_values().collect();
    if targets.len() > max {
        targets.sort_by(|a, b| b.usage_bytes.cmp(&a.usage_bytes).then_with(|| a.key.cmp(&b.key)));
        targets.truncate(max);
        targets.sort_by(|a, b| a.key.cmp(&b.key));
    }
    (targets, before.saturating_sub(max.min(before)))
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;
