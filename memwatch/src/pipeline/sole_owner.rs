//! Which cgroup targets are alone in their cgroup's subtree.
//!
//! A cgroup is charged for every process in it and in the cgroups below
//! it. A cgroup target's charge is its own figure only when no other
//! target has processes there: a process target split out of the same
//! service (a policy with `target = "process"`), or a child cgroup judged
//! as a target of its own (cgroup v1 lets a cgroup hold processes beside
//! children). Elsewhere the target keeps its processes' RSS summed, so no
//! memory is counted against two targets.
use crate::model::targets::Target;

/// For each of `targets`, in order: whether no other target's cgroup is
/// its own or below it.
pub fn of_their_cgroups(targets: &[Target]) -> Vec<bool> {
    let mut cgroups: Vec<(&str, usize)> =
        targets.iter().enumerate().filter_map(|(i, t)| Some((t.cgroup.as_deref()?, i))).collect();
    cgroups.sort_unstable();
    targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let Some(own) = target.cgroup.as_deref() else { return false };
            // Every path starting with `own` sorts together; among them,
            // siblings such as "/app.old" sort before children ("/app/x").
            let from = cgroups.partition_point(|(cgroup, _)| *cgroup < own);
            cgroups[from..]
                .iter()
                .take_while(|(cgroup, _)| cgroup.starts_with(own))
                .filter(|(cgroup, _)| is_at_or_below(cgroup, own))
                .all(|&(_, other)| other == index)
        })
        .collect()
}

/// "/a/b" is at or below "/a" and "/a/b"; "/ab" is not below "/a". The
/// root "/" has every cgroup below it.
fn is_at_or_below(cgroup: &str, ancestor: &str) -> bool {
    let Some(rest) = cgroup.strip_prefix(ancestor) else { return false };
    rest.is_empty() || rest.starts_with('/') || ancestor.ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::target_key::TargetKey;

    fn target(key: &str, cgroup: Option<&str>) -> Target {
        Target {
            key: TargetKey::from(key),
            policy: None,
            usage_bytes: 0,
            cgroup: cgroup.map(str::to_owned),
            limit_cgroup: cgroup.map(str::to_owned),
            members: Vec::new(),
            heap_ceiling: None,
        }
    }

    #[test]
    fn a_target_is_sole_owner_unless_another_is_in_its_cgroup_or_below() {
        let targets = [
            target("cgroup:/system.slice/api.service", Some("/system.slice/api.service")),
            // A process of api.service's split out by a process policy.
            target("process:42:node", Some("/system.slice/api.service")),
            target("cgroup:/system.slice/db.service", Some("/system.slice/db.service")),
            // A sibling whose name only starts like db.service's.
            target("cgroup:/system.slice/db.service2", Some("/system.slice/db.service2")),
            target("cgroup:/batch", Some("/batch")),
            // Siblings that sort between /batch and its child.
            target("cgroup:/batch-old", Some("/batch-old")),
            target("cgroup:/batch.slice", Some("/batch.slice")),
            target("cgroup:/batch/child", Some("/batch/child")),
            target("cgroup:/", Some("/")),
            target("process:7:sh", None),
        ];
        assert_eq!(of_their_cgroups(&targets), [false, false, true, true, false, true, true, true, false, false]);
    }
}
