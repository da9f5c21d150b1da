use std::sync::Arc;

use super::*;
use crate::model::sample::{Counters, ProcessId, ProcessInfo};

fn process(pid: u32, comm: &str, cgroup: Option<&str>, rss: u64) -> ProcessSample {
    ProcessSample {
        id: ProcessId { pid, start_time: 1 },
        info: Arc::new(ProcessInfo::new(
            comm.into(),
            format!("/usr/bin/{comm}"),
            cgroup.map(Into::into),
            cgroup.and_then(unit_from_cgroup),
        )),
        counters: Counters { rss_anon: rss, ..Default::default() },
    }
}

#[test]
fn processes_are_grouped_by_the_first_matching_policy() {
    let config = Config::parse(
        r#"
        [[policy]]
        name = "java-alone"
        target = "process"
        match = { process = "^java$" }
        [[policy]]
        name = "api"
        match = { unit = "api.service" }
        "#,
    )
    .unwrap();
    let processes = [
        process(10, "nginx", Some("/system.slice/api.service"), 100),
        process(11, "java", Some("/system.slice/api.service"), 1000),
        process(12, "nginx", Some("/system.slice/api.service"), 50),
        process(20, "bash", Some("/user.slice/user-1000.slice/session-1.scope"), 7),
        process(21, "vim", Some("/user.slice/user-1000.slice/session-1.scope"), 3),
        process(30, "ghost", None, 9),
    ];
    let targets = build(&processes, &config);
    let summary: Vec<(String, Option<usize>, u64, usize)> =
        targets.iter().map(|t| (t.key.to_string(), t.policy, t.usage_bytes, t.members.len())).collect();
    assert_eq!(
        summary,
        [
            ("cgroup:/system.slice/api.service".to_owned(), Some(1), 150, 2),
            ("cgroup:/user.slice/user-1000.slice/session-1.scope".to_owned(), None, 10, 2),
            ("process:11:java".to_owned(), Some(0), 1000, 1),
        ]
    );
    let api = &targets[0];
    assert_eq!(api.members.iter().map(|m| m.id.pid).collect::<Vec<_>>(), [10, 12], "members, by identity");
}

#[test]
fn a_container_is_one_target_and_policies_match_its_id_and_pod() {
    let id = "4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091";
    let scope = format!("/machine.slice/libpod-{id}.scope");
    let pod =
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod8f1c0e3a_1b2c_4d5e_9f60_7a8b9c0d1e2f.slice";
    let config = Config::parse(
        r#"
        [[policy]]
        name = "web"
        match = { container = "4e5f6a7b8c9d*" }
        [[policy]]
        name = "batch"
        match = { pod_uid = "8f1c0e3a-1b2c-4d5e-9f60-7a8b9c0d1e2f" }
        "#,
    )
    .unwrap();
    let processes = [
        process(10, "nginx", Some(&format!("{scope}/container")), 100),
        process(11, "nginx", Some(&format!("{scope}/container/worker")), 50),
        process(12, "conmon", Some(&format!("/machine.slice/libpod-conmon-{id}.scope")), 1),
        process(20, "job", Some(&format!("{pod}/cri-containerd-{}.scope", "ab".repeat(32))), 7),
    ];
    let targets = build(&processes, &config);
    let summary: Vec<(String, Option<usize>, u64)> =
        targets.iter().map(|t| (t.key.to_string(), t.policy, t.usage_bytes)).collect();
    assert_eq!(
        summary,
        [
            (format!("cgroup:{pod}/cri-containerd-{}.scope", "ab".repeat(32)), Some(1), 7),
            (format!("cgroup:{scope}"), Some(0), 150),
            (format!("cgroup:/machine.slice/libpod-conmon-{id}.scope"), None, 1),
        ],
        "the container's nested cgroups are its target; its monitor is not in it"
    );
    assert_eq!(targets[1].cgroup.as_deref(), Some(scope.as_str()), "throttled as the container");
    assert_eq!(
        targets[1].limit_cgroup.as_deref(),
        Some(format!("{scope}/container").as_str()),
        "the limit podman sets on the nested cgroup holding every process applies"
    );
    assert_eq!(policy_for_key(&config, &TargetKey::cgroup(&scope)), Some(0), "replay matches the same");
}

#[test]
fn the_common_ancestor_of_two_cgroups_ends_at_a_whole_component() {
    let common = |a: &str, b: &str| a[..common_ancestor_len(a, b)].to_owned();
    assert_eq!(common("/a/b", "/a/b"), "/a/b");
    assert_eq!(common("/a/b", "/a/b/c"), "/a/b");
    assert_eq!(common("/a/b/c", "/a/b"), "/a/b");
    assert_eq!(common("/a/b", "/a/bc"), "/a");
    assert_eq!(common("/a/b/x", "/a/b/y"), "/a/b");
    assert_eq!(common("/a", "/b"), "/");
}

#[test]
fn a_host_units_policy_does_not_claim_a_container_running_a_unit_of_that_name() {
    let config =
        Config::parse("[[policy]]\nname = \"cron\"\nmatch = { unit = \"cron.service\" }\nlimit = \"1GiB\"\n").unwrap();
    let processes = [
        process(10, "cron", Some("/system.slice/cron.service"), 10),
        process(20, "cron", Some("/lxc.payload.c1/system.slice/cron.service"), 20),
        process(21, "sshd", Some("/lxc.payload.c1/system.slice/ssh.service"), 30),
    ];
    let summary: Vec<(String, Option<usize>, u64)> =
        build(&processes, &config).iter().map(|t| (t.key.to_string(), t.policy, t.usage_bytes)).collect();
    assert_eq!(
        summary,
        [
            ("cgroup:/lxc.payload.c1".to_owned(), None, 50),
            ("cgroup:/system.slice/cron.service".to_owned(), Some(0), 10),
        ]
    );
    assert_eq!(policy_for_key(&config, &TargetKey::cgroup("/lxc.payload.c1")), None, "replay agrees");
}

#[test]
fn keys_give_back_what_replay_matches_on() {
    let config = Config::parse(
        "[[policy]]\nname = \"api\"\nmatch = { unit = \"api.service\" }\n\
         [[policy]]\nname = \"java\"\nmatch = { process = \"^java$\" }\n",
    )
    .unwrap();
    let policy = |key: &str| policy_for_key(&config, &TargetKey::from(key));
    assert_eq!(policy("cgroup:/system.slice/api.service"), Some(0));
    assert_eq!(policy("process:11:java"), Some(1));
    assert_eq!(policy("process:12:javac"), None);
    assert_eq!(policy("lin00"), None);
}

#[test]
fn beyond_the_cap_process_targets_fold_into_their_cgroups() {
    let config = Config::parse("[[policy]]\nname = \"each\"\ntarget = \"process\"\n").unwrap();
    let processes: Vec<ProcessSample> = (0..100)
        .map(|i| {
            process(
                100 + i,
                "worker",
                Some(if i % 2 == 0 { "/a.slice/x.service" } else { "/b.slice/y.service" }),
                10 + u64::from(i),
            )
        })
        .collect();
    let all = build(&processes, &config);
    assert_eq!(all.len(), 100, "one target per process");
    let (capped, over) = cap(all, 10);
    assert!(capped.len() <= 10, "{}", capped.len());
    assert_eq!(over, 90);
    let total: u64 = capped.iter().map(|t| t.usage_bytes).sum();
    let members: usize = capped.iter().map(|t| t.members.len()).sum();
    assert!(capped.iter().any(|t| t.key == TargetKey::cgroup("/a.slice/x.service")), "folded into their cgroup");
    assert!(members > 10 && total > 0, "folded processes still count");
    assert!(capped.windows(2).all(|w| w[0].key < w[1].key), "sorted by key");
    let (small, none) = cap(build(&processes[..5], &config), 10);
    assert_eq!((small.len(), none), (5, 0), "under the cap nothing changes");
}

#[test]
fn a_targets_heap_ceiling_is_its_members_when_every_one_declares_one() {
    let started = |pid: u32, cmdline: &str, cgroup: &str| ProcessSample {
        id: ProcessId { pid, start_time: 1 },
        info: Arc::new(ProcessInfo::new("java".into(), cmdline.into(), Some(cgroup.into()), None)),
        counters: Counters { rss_anon: 1, ..Default::default() },
    };
    let processes = [
        started(10, "/usr/bin/java -Xmx512m -jar a.jar", "/jvms"),
        started(11, "/usr/bin/java -Xmx256m -jar b.jar", "/jvms"),
        started(20, "/usr/bin/java -Xmx512m -jar c.jar", "/mixed"),
        started(21, "/bin/sh /opt/c/run.sh", "/mixed"),
        started(30, "/usr/bin/java -Xmx1g Main", "/alone"),
    ];
    let config =
        Config::parse("[[policy]]\nname = \"alone\"\ntarget = \"process\"\nmatch = { cgroup = \"/alone\" }\n").unwrap();
    let ceilings: Vec<(String, Option<u64>)> =
        build(&processes, &config).iter().map(|t| (t.key.to_string(), t.heap_ceiling.map(|c| c.bytes >> 20))).collect();
    assert_eq!(
        ceilings,
        [
            ("cgroup:/jvms".to_owned(), Some(768)),
            ("cgroup:/mixed".to_owned(), None),
            ("process:30:java".to_owned(), Some(1024)),
        ]
    );
}
