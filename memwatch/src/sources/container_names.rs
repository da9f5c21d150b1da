//! Container and pod names from the files the runtimes and the kubelet keep
//! on the host, read once per container: no runtime socket, no API server.
//!
//! - Kubernetes: the kubelet's log directories name each pod
//!   (`/var/log/pods/<namespace>_<pod>_<uid>/`) and each container
//!   (`/var/log/containers/<pod>_<namespace>_<container>-<id>.log`), for
//!   every runtime;
//! - Docker: `/var/lib/docker/containers/<id>/config.v2.json` (`"Name"`);
//! - podman (root): `/var/lib/containers/storage/<driver>-containers/containers.json`,
//!   one per storage driver (`overlay`, `vfs`, `btrfs`, ...);
//! - nspawn and LXC: the id is the machine's name.
//!
//! A file that is missing or unreadable leaves the name unknown; nothing
//! here fails a reading. Rootless podman keeps its state in each user's home
//! and is not looked up.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::model::container::{Container, ContainerRuntime, is_runtime_id};

/// Containers whose names are remembered; beyond it the memory is dropped
/// and names are read again, so a host with endless containers costs a
/// bounded map.
const REMEMBERED: usize = 4096;
/// A container found without names is looked up again after this long: the
/// kubelet links a container's log only once it has started, which can be
/// after memwatch first sees its processes.
const RETRY_UNNAMED: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Names {
    container: Option<String>,
    pod: Option<String>,
    namespace: Option<String>,
}

#[derive(Debug)]
pub struct ContainerNames {
    /// The host's root directory ("/"; a fixture tree in tests).
    root: PathBuf,
    /// What was read for each container id, and when.
    known: Mutex<HashMap<String, (Names, Instant)>>,
    retry_unnamed: Duration,
}

impl ContainerNames {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), known: Mutex::new(HashMap::new()), retry_unnamed: RETRY_UNNAMED }
    }

    /// Fills in `container`'s names (and its pod's) where the host's files say.
    pub fn fill(&self, container: &mut Container) {
        let remembered = {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            known.get(&container.id).cloned()
        };
        let names = match remembered {
            Some((names, read_at)) if names != Names::default() || read_at.elapsed() < self.retry_unnamed => names,
            _ => {
                // Read without the lock held: file reads must not stall
                // another reader of the table.
                let names = self.read(container);
                let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
                if known.len() >= REMEMBERED {
                    known.clear();
                }
                known.insert(container.id.clone(), (names.clone(), Instant::now()));
                names
            }
        };
        container.name = names.container;
        if let Some(pod) = container.pod.as_mut() {
            pod.name = names.pod;
            pod.namespace = names.namespace;
        }
    }

    fn read(&self, c: &Container) -> Names {
        let (namespace, pod) = c.pod.as_ref().and_then(|p| self.kubelet_pod(&p.uid)).unzip();
        let container = self.kubelet_container(&c.id).or_else(|| match c.runtime {
            Some(ContainerRuntime::Docker) => self.docker(&c.id),
            Some(ContainerRuntime::Podman) => self.podman(&c.id),
            Some(ContainerRuntime::SystemdNspawn | ContainerRuntime::Machined | ContainerRuntime::Lxc) => {
                Some(c.id.clone())
            }
            _ => None,
        });
        Names { container, pod, namespace }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// (namespace, pod name) of the pod `uid`.
    fn kubelet_pod(&self, uid: &str) -> Option<(String, String)> {
        let suffix = format!("_{uid}");
        entries(&self.path("var/log/pods")).find_map(|name| {
            let (namespace, pod) = name.strip_suffix(&suffix)?.split_once('_')?;
            Some((namespace.to_owned(), pod.to_owned()))
        })
    }

    fn kubelet_container(&self, id: &str) -> Option<String> {
        if !is_runtime_id(id) {
            return None;
        }
        let suffix = format!("-{id}.log");
        entries(&self.path("var/log/containers")).find_map(|name| {
            // Pod, namespace and container names are DNS labels: no `_`.
            let mut parts = name.strip_suffix(&suffix)?.splitn(3, '_');
            let (_pod, _namespace, container) = (parts.next()?, parts.next()?, parts.next()?);
            Some(container.to_owned())
        })
    }

    fn docker(&self, id: &str) -> Option<String> {
        let text =
            std::fs::read_to_string(self.path(&format!("var/lib/docker/containers/{id}/config.v2.json"))).ok()?;
        let config: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(config["Name"].as_str()?.trim_start_matches('/').to_owned()).filter(|n| !n.is_empty())
    }

    fn podman(&self, id: &str) -> Option<String> {
        // The directory is named after the storage driver: overlay on most
        // hosts, vfs where overlayfs is unavailable.
        let storage = self.path("var/lib/containers/storage");
        entries(&storage).filter(|dir| dir.ends_with("-containers")).find_map(|dir| {
            let text = std::fs::read_to_string(storage.join(dir).join("containers.json")).ok()?;
            let containers: Vec<serde_json::Value> = serde_json::from_str(&text).ok()?;
            let entry = containers.iter().find(|c| c["id"] == id)?;
            entry["names"].as_array()?.first()?.as_str().map(str::to_owned)
        })
    }
}

/// The names in a directory; none if it cannot be read.
fn entries(dir: &Path) -> impl Iterator<Item = String> {
    std::fs::read_dir(dir).into_iter().flatten().flatten().filter_map(|e| e.file_name().into_string().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091";
    const UID: &str = "8f1c0e3a-1b2c-4d5e-9f60-7a8b9c0d1e2f";

    fn write(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn named(root: &Path, cgroup: &str) -> Container {
        let mut c = Container::of_cgroup(cgroup).unwrap();
        ContainerNames::new(root).fill(&mut c);
        c
    }

    #[test]
    fn kubernetes_pods_and_containers_are_named_from_the_kubelets_log_directories() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(format!("var/log/pods/shop_checkout-7d9f8_{UID}/api"))).unwrap();
        write(root.path(), &format!("var/log/containers/checkout-7d9f8_shop_api-{ID}.log"), "");
        let c = named(root.path(), &format!("/kubepods/burstable/pod{UID}/{ID}"));
        assert_eq!(c.name.as_deref(), Some("api"));
        let pod = c.pod.unwrap();
        assert_eq!((pod.namespace.as_deref(), pod.name.as_deref()), (Some("shop"), Some("checkout-7d9f8")));
    }

    #[test]
    fn docker_and_podman_containers_are_named_from_their_state_files() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), &format!("var/lib/docker/containers/{ID}/config.v2.json"), r#"{"ID":"x","Name":"/web"}"#);
        assert_eq!(named(root.path(), &format!("/system.slice/docker-{ID}.scope")).name.as_deref(), Some("web"));
        write(
            root.path(),
            "var/lib/containers/storage/overlay-containers/containers.json",
            &format!(r#"[{{"id":"{}","names":["other"]}},{{"id":"{ID}","names":["db"]}}]"#, "0".repeat(64)),
        );
        assert_eq!(named(root.path(), &format!("/machine.slice/libpod-{ID}.scope")).name.as_deref(), Some("db"));
    }

    #[test]
    fn podman_containers_are_named_whichever_storage_driver_keeps_them() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "var/lib/containers/storage/overlay-containers/containers.json", "[]");
        write(
            root.path(),
            "var/lib/containers/storage/vfs-containers/containers.json",
            &format!(r#"[{{"id":"{ID}","names":["batch"]}}]"#),
        );
        assert_eq!(named(root.path(), &format!("/machine.slice/libpod-{ID}.scope")).name.as_deref(), Some("batch"));
    }

    #[test]
    fn a_container_named_after_memwatch_first_saw_it_is_named_at_the_retry() {
        let root = tempfile::tempdir().unwrap();
        let mut names = ContainerNames::new(root.path());
        let cgroup = format!("/system.slice/docker-{ID}.scope");
        let fill = |names: &ContainerNames| {
            let mut c = Container::of_cgroup(&cgroup).unwrap();
            names.fill(&mut c);
            c.name
        };
        assert_eq!(fill(&names), None);
        write(root.path(), &format!("var/lib/docker/containers/{ID}/config.v2.json"), r#"{"Name":"/late"}"#);
        assert_eq!(fill(&names), None, "remembered until the retry");
        names.retry_unnamed = Duration::ZERO;
        assert_eq!(fill(&names).as_deref(), Some("late"));
        std::fs::remove_file(root.path().join(format!("var/lib/docker/containers/{ID}/config.v2.json"))).unwrap();
        assert_eq!(fill(&names).as_deref(), Some("late"), "a name once read is kept");
    }

    #[test]
    fn missing_or_broken_files_leave_the_names_unknown() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), &format!("var/lib/docker/containers/{ID}/config.v2.json"), "{ not json");
        let c = named(root.path(), &format!("/docker/{ID}"));
        assert_eq!(c.name, None);
        let pod = named(root.path(), &format!("/kubepods/pod{UID}/{ID}")).pod.unwrap();
        assert_eq!((pod.name, pod.namespace), (None, None));
        assert_eq!(named(root.path(), "/lxc.payload.c1").name.as_deref(), Some("c1"), "an LXC id is its name");
    }
}
