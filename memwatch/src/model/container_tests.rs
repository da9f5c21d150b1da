//! One fixture per layout, with the paths each runtime's documentation (and
//! a real host running it) shows.
use super::*;

const ID: &str = "4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091";
const UID: &str = "8f1c0e3a-1b2c-4d5e-9f60-7a8b9c0d1e2f";

/// (runtime, id, the container's cgroup, (pod uid, QoS)): what a fixture expects.
type Found = (Option<&'static str>, String, String, Option<(String, &'static str)>);

fn container(path: &str) -> Option<Found> {
    Container::of_cgroup(path)
        .map(|c| (c.runtime.map(ContainerRuntime::as_str), c.id, c.cgroup, c.pod.map(|p| (p.uid, p.qos.as_str()))))
}

fn expect(path: &str, runtime: Option<&'static str>, id: &str, cgroup: &str, pod: Option<&'static str>) {
    let pod = pod.map(|qos| (UID.to_owned(), qos));
    assert_eq!(container(path), Some((runtime, id.to_owned(), cgroup.to_owned(), pod)), "{path}");
}

#[test]
fn kubernetes_with_the_systemd_driver() {
    let uid = UID.replace('-', "_");
    let burstable = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice");
    let scope = format!("{burstable}/cri-containerd-{ID}.scope");
    expect(&scope, Some("containerd"), ID, &scope, Some("Burstable"));
    let besteffort =
        format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid}.slice/crio-{ID}.scope");
    expect(&besteffort, Some("cri-o"), ID, &besteffort, Some("BestEffort"));
    let guaranteed = format!("/kubepods.slice/kubepods-pod{uid}.slice/docker-{ID}.scope");
    expect(&guaranteed, Some("docker"), ID, &guaranteed, Some("Guaranteed"));
    assert_eq!(container(&burstable), None, "the pod's own slice holds no container");
    let conmon =
        format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid}.slice/crio-conmon-{ID}.scope");
    assert_eq!(container(&conmon), None, "CRI-O's monitor is not the container");
}

#[test]
fn paths_seen_from_a_private_cgroup_namespace_still_name_the_pod() {
    // What a pod with its own cgroup namespace (the default for
    // unprivileged pods on cgroup v2) reads in another pod's /proc/PID/cgroup.
    let uid = UID.replace('-', "_");
    let path =
        format!("/../../../kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{ID}.scope");
    expect(&path, Some("containerd"), ID, &path, Some("Burstable"));
}

#[test]
fn kubernetes_with_the_cgroupfs_driver() {
    let burstable = format!("/kubepods/burstable/pod{UID}/{ID}");
    expect(&burstable, None, ID, &burstable, Some("Burstable"));
    let guaranteed = format!("/kubepods/pod{UID}/{ID}");
    expect(&guaranteed, None, ID, &guaranteed, Some("Guaranteed"));
    let crio = format!("/kubepods/besteffort/pod{UID}/crio-{ID}");
    expect(&crio, Some("cri-o"), ID, &crio, Some("BestEffort"));
}

#[test]
fn docker_with_either_driver() {
    let systemd = format!("/system.slice/docker-{ID}.scope");
    expect(&systemd, Some("docker"), ID, &systemd, None);
    let cgroupfs = format!("/docker/{ID}");
    expect(&cgroupfs, Some("docker"), ID, &cgroupfs, None);
    assert_eq!(container("/system.slice/docker.service"), None, "the daemon is not a container");
    assert_eq!(container("/docker/not-an-id"), None);
}

#[test]
fn podman_rootful_rootless_and_its_nested_cgroups() {
    let rootful = format!("/machine.slice/libpod-{ID}.scope");
    expect(&rootful, Some("podman"), ID, &rootful, None);
    expect(&format!("{rootful}/container"), Some("podman"), ID, &rootful, None);
    let rootless = format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope");
    expect(&rootless, Some("podman"), ID, &rootless, None);
    let cgroupfs = format!("/libpod_parent/libpod-{ID}");
    expect(&cgroupfs, Some("podman"), ID, &cgroupfs, None);
    assert_eq!(container(&format!("/machine.slice/libpod-conmon-{ID}.scope")), None, "podman's monitor");
}

#[test]
fn systemd_nspawn_and_machined() {
    expect(
        "/machine.slice/systemd-nspawn@web\\x2d1.service/payload",
        Some("systemd-nspawn"),
        "web-1",
        "/machine.slice/systemd-nspawn@web\\x2d1.service",
        None,
    );
    expect(
        "/machine.slice/machine-qemu\\x2d1\\x2ddb.scope",
        Some("systemd-machined"),
        "qemu-1-db",
        "/machine.slice/machine-qemu\\x2d1\\x2ddb.scope",
        None,
    );
}

#[test]
fn lxc_old_and_new() {
    assert_eq!(container("/machine.slice/systemd-nspawn@.service"), None, "a template without an instance");
    assert_eq!(
        Container::of_cgroup("/machine.slice/machine-a\\x+ab.scope").map(|c| c.id),
        Some("a\\x+ab".to_owned()),
        "only two hex digits are an escape"
    );
    expect("/lxc.payload.c1/system.slice/cron.service", Some("lxc"), "c1", "/lxc.payload.c1", None);
    expect("/lxc/c2", Some("lxc"), "c2", "/lxc/c2", None);
    assert_eq!(container("/lxc.monitor.c1"), None, "LXC's monitor");
}

#[test]
fn ordinary_cgroups_are_no_containers() {
    for path in [
        "/",
        "/system.slice/nginx.service",
        "/user.slice/user-1000.slice/session-2.scope",
        "/system.slice/docker-abc.scope",
        "/kubepods.slice/kubepods-burstable.slice",
        "/machine.slice",
    ] {
        assert_eq!(container(path), None, "{path}");
    }
}

#[test]
fn short_ids_are_what_the_runtimes_print() {
    assert_eq!(Container::short(ID), &ID[..12]);
    assert_eq!(Container::short("c2"), "c2");
}
