//! Where figures come from: the kernel probes (`ebpf`) and /proc
//! (`procfs`), joined by the collectors (`collect`) into snapshots; cgroup
//! files (`cgroupfs`) and the paths that name them from a cgroup namespace
//! of memwatch's own (`cgroup_namespace`), host memory (`meminfo`), the container runtimes'
//! files that name containers (`container_names`) and the environment
//! variables that declare a runtime's heap ceiling (`environment`). Every read of /proc,
//! /sys/fs/cgroup and /proc/meminfo in memwatch goes through here.
pub mod cgroup_namespace;
pub mod cgroupfs;
pub mod collect;
pub mod container_names;
pub mod ebpf;
pub mod environment;
pub mod meminfo;
pub mod procfs;
pub mod runtime;
