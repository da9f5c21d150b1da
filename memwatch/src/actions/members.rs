//! Which processes make up each target, and the executor's view of this
//! interval's targets. Mirrors `model::targets::build`: a process is its own target
//! if a process key for it exists, else part of its cgroup's target.
use std::collections::BTreeMap;

use super::executor::{Member, Observed};
use crate::{
    config::Config,
    model::sample::ProcessSample,
    model::targets::{Target, cgroup_key, process_key},
};

/// Processes by target key, sorted by pid.
pub fn group(processes: &[ProcessSample], targets: &[Target]) -> BTreeMap<String, Vec<Member>> {
    let known = |key: &str| targets.binary_search_by(|t| t.key.as_str().cmp(key)).is_ok();
    let mut groups: BTreeMap<String, Vec<Member>> = BTreeMap::new();
    for process in processes {
        let own = process_key(process.id.pid, &process.info.comm);
        let key = if known(&own) {
            own
        } else if let Some(cgroup) = process.info.cgroup.as_deref().map(cgroup_key).filter(|k| known(k)) {
            cgroup
        } else {
            continue;
        };
        groups.entry(key).or_default().push(Member { id: process.id, rss: process.counters.rss() });
    }
    for members in groups.values_mut() {
        members.sort_by_key(|m| m.id);
    }
    groups
}

/// The executor's view of `targets`; `limits[i]` is target i's resolved limit.
pub fn observed<'a>(
    config: &'a Config,
    targets: &'a [Target],
    limits: &[u64],
    members: &'a BTreeMap<String, Vec<Member>>,
) -> Vec<Observed<'a>> {
    targets
        .iter()
        .zip(limits)
        .map(|(target, &limit_bytes)| Observed {
            key: &target.key,
            policy: target.policy.map_or("defaults", |p| config.policies[p].name.as_str()),
            settings: config.settings(target.policy),
            cgroup: target.key.starts_with("cgroup:").then_some(target.cgroup.as_deref()).flatten(),
            usage_bytes: target.usage_bytes,
            limit_bytes,
            members: members.get(&target.key).map_or(&[], Vec::as_slice),
            protected_inside: target.cgroup.is_some()
                && targets.iter().any(|other| {
                    other.key != target.key && other.cgroup == target.cgroup && config.settings(other.policy).protect
                }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::sample::{Counters, ProcessId, ProcessInfo};

    fn process(pid: u32, comm: &str, cgroup: &str, rss: u64) -> ProcessSample {
        ProcessSample {
            id: ProcessId { pid, start_time: 1 },
            info: Arc::new(ProcessInfo {
                comm: comm.into(),
                cmdline: comm.into(),
                cgroup: Some(cgroup.into()),
                unit: None,
            }),
            counters: Counters { rss_anon: rss, ..Default::default() },
        }
    }

    #[test]
    fn processes_join_their_own_target_or_their_cgroups() {
        let config = Config::parse(
            "[[policy]]\nname = \"java\"\ntarget = \"process\"\nprotect = true\nmatch = { process = \"^java$\" }\n\
             [[policy]]\nname = \"api\"\nmatch = { cgroup = \"/api\" }\n",
        )
        .unwrap();
        let processes =
            [process(10, "nginx", "/api", 5), process(11, "java", "/api", 50), process(12, "nginx", "/api", 7)];
        let targets = crate::model::targets::build(&processes, &config);
        let groups = group(&processes, &targets);
        let pids = |key: &str| groups[key].iter().map(|m| m.id.pid).collect::<Vec<_>>();
        assert_eq!(pids("cgroup:/api"), [10, 12]);
        assert_eq!(pids("process:11:java"), [11]);
        let limits = vec![100; targets.len()];
        let view = observed(&config, &targets, &limits, &groups);
        let api = view.iter().find(|o| o.key == "cgroup:/api").unwrap();
        assert_eq!((api.policy, api.cgroup, api.members.len()), ("api", Some("/api"), 2));
        assert!(api.protected_inside, "protected java shares /api: throttling /api would throttle it");
        let java = view.iter().find(|o| o.key == "process:11:java").unwrap();
        assert_eq!(java.cgroup, None, "a process target is never throttled through its shared cgroup");
    }
}
