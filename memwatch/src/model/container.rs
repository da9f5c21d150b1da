//! Which container (and Kubernetes pod) a cgroup belongs to, read from the
//! cgroup path alone: every runtime names the cgroup it makes after the
//! container, so no runtime socket or API call is needed, and a trace's
//! keys say as much as the live host did.
//!
//! Layouts recognised (the container's own cgroup is the outermost
//! component naming one, so a container's nested cgroups, such as podman's
//! `libpod-<id>.scope/container`, belong to it):
//! - Kubernetes, systemd driver: `/kubepods.slice/kubepods-<qos>.slice/
//!   kubepods-<qos>-pod<uid with _>.slice/<scope>` (Guaranteed pods have no
//!   QoS slice: `kubepods-pod<uid>.slice`), the scope being
//!   `cri-containerd-<id>.scope`, `crio-<id>.scope` or `docker-<id>.scope`;
//! - Kubernetes, cgroupfs driver: `/kubepods/<qos>/pod<uid>/<id>` (the path
//!   does not say which runtime; `crio-<id>` where CRI-O names it);
//! - Docker: `/system.slice/docker-<id>.scope`, cgroupfs `/docker/<id>`;
//! - Podman: `libpod-<id>.scope` under machine.slice or a user's slice,
//!   cgroupfs `/libpod_parent/libpod-<id>` (`libpod-conmon-*` is podman's
//!   monitor, not the container);
//! - systemd-nspawn: `/machine.slice/systemd-nspawn@<name>.service`, and a
//!   machine registered with machined, `/machine.slice/machine-<name>.scope`;
//! - LXC/LXD: `/lxc.payload.<name>` (LXC 4+), `/lxc/<name>` (older);
//!   `lxc.monitor.*` is LXC's monitor, not the container.
//!
//! Ids are the 64-hex-digit ids the runtimes give (nspawn and LXC: the
//! machine's name); anything else is not taken for a container.
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerRuntime {
    Containerd,
    CriO,
    Docker,
    Podman,
    SystemdNspawn,
    /// A machine registered with systemd-machined: an nspawn container, or a
    /// VM libvirt registers (its qemu process is then the "container").
    Machined,
    Lxc,
}

impl ContainerRuntime {
    /// The value of OpenTelemetry's `container.runtime`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ContainerRuntime::Containerd => "containerd",
            ContainerRuntime::CriO => "cri-o",
            ContainerRuntime::Docker => "docker",
            ContainerRuntime::Podman => "podman",
            ContainerRuntime::SystemdNspawn => "systemd-nspawn",
            ContainerRuntime::Machined => "systemd-machined",
            ContainerRuntime::Lxc => "lxc",
        }
    }
}

/// A Kubernetes pod's quality-of-service class, from its QoS slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub const fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }

    fn from_slice_word(word: &str) -> Option<Self> {
        match word {
            "burstable" => Some(QosClass::Burstable),
            "besteffort" => Some(QosClass::BestEffort),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pod {
    /// With dashes, as the API server spells it.
    pub uid: String,
    pub qos: QosClass,
    /// From the kubelet's files, where they say (`sources::container_names`).
    pub name: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    /// `None` where the path does not say (Kubernetes' cgroupfs driver).
    pub runtime: Option<ContainerRuntime>,
    pub id: String,
    /// The container's own cgroup: its processes form one target there, and
    /// its `memory.max` is the container's limit.
    pub cgroup: String,
    pub pod: Option<Pod>,
    /// From the runtime's or the kubelet's files, where they say
    /// (`sources::container_names`); nspawn and LXC ids are names already.
    pub name: Option<String>,
}

impl Container {
    /// The container a process in `cgroup` runs in, if the path says so.
    pub fn of_cgroup(cgroup: &str) -> Option<Container> {
        let components: Vec<&str> = cgroup.split('/').filter(|c| !c.is_empty()).collect();
        let (at, runtime, id) = components
            .iter()
            .enumerate()
            .find_map(|(i, c)| container_component(c, &components[..i]).map(|(r, id)| (i, r, id)))?;
        Some(Container {
            runtime,
            id,
            cgroup: format!("/{}", components[..=at].join("/")),
            pod: pod_of(&components[..at]),
            name: None,
        })
    }

    /// An id as `docker ps` and `crictl ps` show it: the runtimes' long
    /// ids cut to 12 digits, names (nspawn, LXC) whole.
    pub fn short(id: &str) -> &str {
        if is_runtime_id(id) { &id[..12] } else { id }
    }
}

/// A runtime's and an id from one path component, given the components above it.
fn container_component(component: &str, parents: &[&str]) -> Option<(Option<ContainerRuntime>, String)> {
    let scoped = |prefix: &str| {
        let id = component.strip_prefix(prefix)?.strip_suffix(".scope")?;
        is_runtime_id(id).then(|| id.to_owned())
    };
    let hex = |id: &str| is_runtime_id(id).then(|| id.to_owned());
    let parent = parents.last().copied();
    let under_pod = parent.is_some_and(|p| pod_uid_cgroupfs(p).is_some());
    let known = |runtime, id: Option<String>| id.map(|id| (Some(runtime), id));
    if let Some(found) = known(ContainerRuntime::Containerd, scoped("cri-containerd-"))
        .or_else(|| known(ContainerRuntime::CriO, scoped("crio-")))
        .or_else(|| known(ContainerRuntime::Docker, scoped("docker-")))
        .or_else(|| known(ContainerRuntime::Podman, scoped("libpod-")))
    {
        return Some(found);
    }
    if under_pod {
        if let Some(id) = component.strip_prefix("crio-").and_then(hex) {
            return Some((Some(ContainerRuntime::CriO), id));
        }
        return hex(component).map(|id| (None, id));
    }
    match (parents, component) {
        ([.., "docker"], id) => known(ContainerRuntime::Docker, hex(id)),
        ([.., "libpod_parent"], c) => known(ContainerRuntime::Podman, c.strip_prefix("libpod-").and_then(hex)),
        ([.., "machine.slice"], c) => {
            let name = |prefix: &str, suffix: &str| {
                c.strip_prefix(prefix)?.strip_suffix(suffix).filter(|n| !n.is_empty()).map(unescape)
            };
            known(ContainerRuntime::SystemdNspawn, name("systemd-nspawn@", ".service"))
                .or_else(|| known(ContainerRuntime::Machined, name("machine-", ".scope")))
        }
        ([], c) if c.starts_with("lxc.payload.") => {
            known(ContainerRuntime::Lxc, c.strip_prefix("lxc.payload.").filter(|n| !n.is_empty()).map(str::to_owned))
        }
        (["lxc"], name) => known(ContainerRuntime::Lxc, Some(name.to_owned())),
        _ => None,
    }
}

/// The pod above a container: the innermost pod component and its QoS.
fn pod_of(parents: &[&str]) -> Option<Pod> {
    parents.iter().enumerate().rev().find_map(|(i, c)| {
        if let Some((qos, uid)) = pod_uid_systemd(c) {
            return Some(Pod { uid, qos, name: None, namespace: None });
        }
        let uid = pod_uid_cgroupfs(c)?;
        let qos = i.checked_sub(1).and_then(|q| QosClass::from_slice_word(parents[q])).unwrap_or(QosClass::Guaranteed);
        Some(Pod { uid, qos, name: None, namespace: None })
    })
}

/// `kubepods-pod<uid>.slice`, `kubepods-<qos>-pod<uid>.slice` (systemd
/// spells the uid's dashes as underscores: a dash is its hierarchy separator).
fn pod_uid_systemd(component: &str) -> Option<(QosClass, String)> {
    let rest = component.strip_prefix("kubepods-")?.strip_suffix(".slice")?;
    let (qos, uid) = match rest.split_once("-pod") {
        Some((word, uid)) => (QosClass::from_slice_word(word)?, uid),
        None => (QosClass::Guaranteed, rest.strip_prefix("pod")?),
    };
    let uid = uid.replace('_', "-");
    is_uid(&uid).then_some((qos, uid))
}

/// `pod<uid>` (the cgroupfs driver keeps the dashes).
fn pod_uid_cgroupfs(component: &str) -> Option<String> {
    component.strip_prefix("pod").filter(|uid| is_uid(uid)).map(str::to_owned)
}

/// 64 lowercase hex digits: what Docker, containerd, CRI-O and podman use.
pub fn is_runtime_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A UUID as Kubernetes writes pod uids: 8-4-4-4-12 hex digits.
fn is_uid(uid: &str) -> bool {
    let groups: Vec<&str> = uid.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// systemd's unit-name escaping: `\x2d` is a dash in the name.
fn unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find("\\x") {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 2..at + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match code {
            Some(byte) if byte.is_ascii() => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            _ => {
                out.push_str("\\x");
                rest = &rest[at + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[path = "container_tests.rs"]
mod tests;
