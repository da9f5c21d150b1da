//! Where figures come from: the kernel probes (`ebpf`) and /proc
//! (`procfs`), joined by the collectors (`collect`) into snapshots; cgroup
//! files (`cgroupfs`) and the paths that name them from a cgroup namespace
//! of memwatch's own (`cgroup_namespace`), host memory (`meminfo`) and the container runtimes'
//! files that name containers (`container_names`). Every read of /proc,
//! /sys/fs/cgroup and /proc/meminfo in memwatch goes through here.
pub mod cgroup_namespace;
pub mod cgroupfs;
pub mod collect;
pub mod container_names;
pub mod ebpf;
pub mod meminfo;
pub mod procfs;
pub mod runtime;
